// Rendering a server card from the store: facts, controls, the tree table, the console.
import { el, fmtAge, fmtBytes, fmtTime } from "./dom.js";
import { fillLegend } from "./glyphs.js";
import { drawTree } from "./tree_svg.js";

const LIVE_STATES = new Set(["STARTING", "RUNNING", "STOPPING"]);
const ZOMBIES_FOLDED_PAST = 50; // as the dashboard's snapshot: more zombies show as one row
const CONSOLE_LINES = 1000;
const TIMELINE_ITEMS = 400;

export function card(name) {
  return document.getElementById(`card-${name}`);
}

function setField(root, field, value) {
  const node = root.querySelector(`[data-field="${field}"]`);
  if (node) node.textContent = value;
  return node;
}

export function renderInfo(server, clock) {
  const root = card(server.info.name);
  if (!root) return;
  const info = server.info;
  const badge = setField(root, "state", info.state);
  badge.className = `state state-${info.state.toLowerCase()}`;
  setField(root, "port", info.port ?? (info.unix_path ? "unix" : "—"));
  setField(root, "pid", LIVE_STATES.has(info.state) ? info.pid ?? "—" : "—");
  setField(root, "children", String(childCount(server)));
  setField(root, "exit", info.exit_code ?? "—");
  const reason = setField(root, "reason", info.reason || "");
  reason.hidden = !info.reason;
  // An exit the program meant (finished) is calm; only a crash is an alarm.
  root.dataset.exitClass = info.state === "EXITED" ? info.exit_class || "" : "";
  renderUptime(server, clock);
  const running = info.state === "RUNNING";
  for (const button of root.querySelectorAll("[data-command]")) {
    const command = button.dataset.command;
    if (command === "start") button.disabled = !["STOPPED", "EXITED", "FATAL"].includes(info.state);
    else if (command === "stop") button.disabled = !["STARTING", "RUNNING", "BACKOFF"].includes(info.state);
    else if (command === "restart") button.disabled = info.state === "STOPPING" || info.state === "STARTING";
    else if (command === "kill-children" || command === "interrupt") button.disabled = !running;
  }
  root.dataset.state = info.state;
}

export function showOptions(info) {
  // The start form shows the options of the current (or last) run.
  const root = card(info.name);
  const form = root && root.querySelector("form.controls");
  if (!form || !info.options) return;
  for (const [name, value] of Object.entries(info.options)) {
    const input = form.querySelector(`input[name="${name}"]`);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = String(value);
  }
}

// The badge that says how a socketserver serves: handle_request() once, or serve_forever().
export function renderMode(info) {
  const badge = card(info.name)?.querySelector('[data-field="mode"]');
  if (!badge || !info.options) return;
  const how = info.options.once ? "handle_request()" : "serve_forever()";
  badge.textContent = info.options.threading ? `${how} · a thread per client` : how;
}

export function renderUptime(server, clock) {
  const root = card(server.info.name);
  if (!root) return;
  const started = server.info.started_at;
  const up = server.info.state === "RUNNING" && started ? fmtAge(clock.now() - started) : "—";
  setField(root, "uptime", up);
}

function childCount(server) {
  let count = server.folded || 0;
  for (const proc of server.procs.values()) if (proc.pid !== server.info.pid) count += 1;
  return count;
}

export function renderTree(server, clock, isInstructor, extra) {
  const root = card(server.info.name);
  if (!root) return;
  const body = root.querySelector("table.tree tbody");
  const all = [...server.procs.values()].sort((a, b) => (a.pid === server.info.pid ? -1 : b.pid === server.info.pid ? 1 : a.pid - b.pid));
  const zombieCount = (server.folded || 0) + all.filter((p) => p.status === "zombie").length;
  const fold = zombieCount > ZOMBIES_FOLDED_PAST;
  const procs = fold ? all.filter((p) => p.status !== "zombie") : all;
  const rows = procs.map((proc) => row(proc, server.info.pid, clock, isInstructor));
  if (fold) rows.push(foldedRow(server, zombieCount, isInstructor));
  body.replaceChildren(...rows);
  root.querySelector(".zombie-help").hidden = !zombieCount;
  setField(root, "children", String(childCount(server)));
  const drawing = root.querySelector("svg.tree-drawing");
  drawing.style.display = procs.length ? "" : "none";
  const legend = root.querySelector("ul.legend");
  if (legend) {
    fillLegend(legend);
    legend.hidden = !procs.length;
  }
  root.querySelector("table.tree").hidden = !procs.length;
  if (procs.length) {
    drawTree(drawing, procs, server.info.pid, server.leaving, { ...(extra || {}), foldedZombies: fold ? zombieCount : 0 });
  } else drawing.replaceChildren();
}

let zombiePidsOnDemand = false; // the live page fetches them (app.js); a replay cannot

export function offerZombiePids() {
  zombiePidsOnDemand = true;
}

function foldedRow(server, count, isInstructor) {
  // Many zombies as one row; their PIDs are fetched when asked for (see app.js).
  const cell = el("td", { colspan: isInstructor ? 9 : 8 }, el("span", { text: `${count} zombies` }));
  if (server.zombiePids) cell.append(el("span", { class: "zombie-pids", text: `: ${server.zombiePids}` }));
  if (zombiePidsOnDemand) {
    const label = server.zombiePids ? "again" : "show their PIDs";
    cell.append(" ", el("button", { type: "button", class: "quiet", text: label, "data-zombies": server.info.name }));
  }
  return el("tr", { class: "zombie folded" }, cell);
}

function row(proc, rootPid, clock, isInstructor) {
  const isRoot = proc.pid === rootPid;
  const age = proc.create_time ? clock.now() - proc.create_time : proc.age_s;
  const tr = el(
    "tr",
    { class: [isRoot ? "root" : "", proc.status === "zombie" ? "zombie" : ""].join(" ").trim(), "data-pid": proc.pid },
    el("td", { text: String(proc.pid) }),
    el("td", { text: String(proc.ppid ?? "") }),
    el("td", { class: "status", text: isRoot ? `${proc.status} (server)` : proc.status }),
    el("td", { class: "doing", text: proc.doing || "", "data-activity": proc.activity || "" }),
    el("td", { text: fmtAge(age) }),
    el("td", { text: proc.cpu_percent === undefined ? "—" : `${proc.cpu_percent.toFixed(1)}%` }),
    el("td", { text: fmtBytes(proc.rss) }),
    el("td", { text: proc.peer || "" }),
  );
  if (isInstructor) {
    const cell = el("td");
    if (!isRoot && proc.status !== "zombie") {
      cell.append(el("button", { type: "button", class: "danger", text: "Kill", "data-kill": proc.pid, "data-create-time": proc.create_time }));
    }
    tr.append(cell);
  }
  return tr;
}

// Console lines of one stream; `pids`, when known, says which process printed each.
export function appendConsole(name, stream, lines, pids = []) {
  const root = card(name);
  if (!root) return;
  const pre = root.querySelector("pre.server-console");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  const fragment = document.createDocumentFragment();
  lines.forEach((line, i) => {
    const pid = pids[i];
    fragment.append(el("span", { class: stream, text: line + "\n", "data-pid": pid, title: pid ? `printed by PID ${pid}` : null }));
  });
  pre.append(fragment);
  while (pre.childNodes.length > CONSOLE_LINES) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

export function resetConsole(name) {
  const root = card(name);
  if (root) root.querySelector("pre.server-console").replaceChildren();
}

export function addTimeline(event) {
  const list = document.getElementById("timeline");
  if (!list || list.querySelector(`[data-id="${event.id}"]`)) return;
  const item = el(
    "li",
    { class: `k-${event.kind}`, "data-id": event.id },
    el("time", { text: fmtTime(event.t) }),
    el("span", { text: event.text }),
  );
  list.prepend(item);
  while (list.childNodes.length > TIMELINE_ITEMS) list.lastChild.remove();
}

export function resetTimeline(events) {
  const list = document.getElementById("timeline");
  if (!list) return;
  list.replaceChildren();
  for (const event of events) addTimeline(event);
}

export { LIVE_STATES };
