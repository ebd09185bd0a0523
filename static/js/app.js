// The dashboard: a store fed by the /live Socket.IO stream (a snapshot on every
// connect, then diffs), rendering on animation frames, and the instructor's controls.
import { io } from "/static/vendor/socket.io-client-4.8.4/socket.io.esm.min.js";
import { notify, post } from "./api.js";
import { setupChecks } from "./checks.js";
import { setupCodePane } from "./code_pane.js";
import { setupCompare } from "./compare.js";
import { confirmed } from "./confirm.js";
import { setupGames } from "./games.js";
import { setupKeys } from "./keys.js";
import { setupLesson } from "./lesson.js";
import { setupPairs } from "./pairs.js";
import { appendConsole, card, offerZombiePids, renderUptime, resetConsole } from "./render.js";
import { setupStage } from "./stage.js";
import { createStore } from "./store.js";

const initial = JSON.parse(document.getElementById("snapshot").textContent);
const isInstructor = document.body.dataset.role === "instructor";
// Server time = local time + offset, so ages are right even when the laptop's clock is not.
const clock = { now: () => Date.now() / 1000 + store.offset };
const { store, load, schedule, apply, kinds } = createStore({
  clock,
  isInstructor,
  onLoad: (snapshot) => {
    showFeed(snapshot.feed);
    loadConsoles(snapshot);
    checks.onSnapshot(snapshot);
    pairs.onSnapshot(snapshot);
    games.onSnapshot(snapshot);
    codePane.onSnapshot(snapshot);
    compare.onSnapshot(snapshot);
    lesson.onSnapshot(snapshot);
    stage.onSnapshot(snapshot);
  },
  onServer: (info) => {
    if (info.state === "STARTING") games.onStart(info.name);
    stage.arrange();
  },
  decorate: (server) => pairs.decorate(server),
  keepConsole: true,
});
store.role = initial.role;

// --- the consoles: the snapshot's last lines at once, then each live line once ---------

const consoleFrom = new Map(); // server -> the number of its first console line not yet shown

function loadConsoles(snapshot) {
  for (const info of snapshot.servers) {
    resetConsole(info.name);
    appendConsole(info.name, "stdout", info.output || []);
    consoleFrom.set(info.name, info.output_seq ?? 0);
  }
}

// A live batch numbers its first line (`seq`): the lines the snapshot already showed are left out.
function onOutput(out) {
  const from = consoleFrom.get(out.server) ?? 0;
  if (out.seq === undefined) return apply("output", out);
  consoleFrom.set(out.server, Math.max(from, out.seq + out.lines.length));
  const skip = Math.max(0, from - out.seq);
  if (skip < out.lines.length) apply("output", { ...out, lines: out.lines.slice(skip), pids: (out.pids || []).slice(skip) });
}

// --- the connection ------------------------------------------------------------------

// With viewer workers: whether live updates reach this page (the message queue, the
// supervisor); a fresh snapshot follows when they come back.
function showFeed(feed) {
  const box = document.getElementById("feed");
  if (!box) return;
  const paused = Boolean(feed && !feed.ok);
  box.textContent = paused ? feed.text : "";
  box.hidden = !paused;
}

const conn = document.getElementById("conn");
function setConn(kind, text) {
  conn.className = `conn conn-${kind}`;
  conn.textContent = text;
}

// A viewer worker takes WebSocket only (any worker can then take any browser: no sticky
// sessions); the one process also falls back to long-polling.
const transports = JSON.parse(document.getElementById("transports").textContent);
const socket = io("/live", { transports, reconnectionDelay: 500, reconnectionDelayMax: 2000 });
const checks = setupChecks();
const games = setupGames({ socket, store, isInstructor, clock });
const codePane = setupCodePane({ socket, store, isInstructor });
const pairs = setupPairs({ store, clock, schedule });
const compare = setupCompare({ store, isInstructor, clock });
const lesson = setupLesson({ isInstructor });
const stage = setupStage({ store, isInstructor, compare, redraw: schedule });
setupKeys({ isInstructor, stage, lesson, optionsOf });
socket.on("connect", () => setConn("live", "live"));
socket.on("disconnect", () => setConn("connecting", "reconnecting…"));
socket.on("connect_error", () => setConn("offline", "offline — retrying"));
socket.on("snapshot", load);
socket.on("feed", showFeed);
for (const kind of kinds) socket.on(kind, (payload) => (kind === "output" ? onOutput(payload) : apply(kind, payload)));
socket.on("play", (play) => games.onPlay(play));
socket.on("clients", (clients) => { games.onClients(clients); pairs.onClients(clients); });
socket.on("client_output", pairs.onClientOutput);
socket.on("check", checks.onCheck);
socket.on("story", pairs.onStory);
socket.on("focus", (focus) => codePane.onFocus(focus));
socket.on("stage", (next) => stage.onStage(next));
socket.on("lesson", (next) => { lesson.onLesson(next); stage.fit(); });
socket.on("compare", (run) => compare.onCompare(run));
window.addEventListener("resize", () => {
  stage.fit();
  for (const name of store.servers.keys()) schedule(name);
  compare.redrawAll();
});

load(initial);
setInterval(() => {
  for (const server of store.servers.values()) {
    renderUptime(server, clock);
    if (server.procs.size) schedule(server.info.name);
  }
}, 1000);

// Zombies folded into a count: their PIDs, for anyone who asks.
offerZombiePids();
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-zombies]");
  const server = button && store.servers.get(button.dataset.zombies);
  if (!server) return;
  try {
    const response = await fetch(`/api/servers/${encodeURIComponent(server.info.name)}/zombies`);
    const data = await response.json();
    server.zombiePids = data.zombies.map((z) => z.pid).join(" ");
    schedule(server.info.name);
  } catch (err) {
    notify(`${server.info.name}: the zombies' PIDs could not be fetched`);
  }
});

// --- the instructor's controls --------------------------------------------------------

function optionsOf(form) {
  const options = {};
  for (const input of form.querySelectorAll("input[name]")) {
    if (input.type === "checkbox") options[input.name] = input.checked;
    else if (input.value !== "") options[input.name] = Number(input.value);
  }
  return options;
}

async function command(name, what, form) {
  const base = `/api/servers/${encodeURIComponent(name)}`;
  try {
    if (what === "start") await post(`${base}/start`, { options: optionsOf(form) });
    else if (what === "stop") await post(`${base}/stop`);
    else if (what === "interrupt") await post(`${base}/interrupt`);
    else if (what === "restart") await post(`${base}/restart`, { options: optionsOf(form) });
    else if (what === "check") await post(`${base}/check`);
    else if (what === "kill-children") {
      const result = await post(`${base}/kill-children`, { signal: "SIGKILL" });
      const skipped = result.skipped.length ? `; skipped ${result.skipped.length} zombies` : "";
      notify(`forkwatch killed ${result.killed.length} children from outside (SIGKILL)${skipped}`, "info", form);
    } else if (what === "new-round") {
      await post(`${base}/new-round`);
      notify(`${name}: a new round with a new secret`, "info", form);
    }
  } catch (err) {
    notify(`${name}: ${err.message}`, "error", form);
  }
}

// The secret is a private peek: shown on the instructor's own screen only while the button
// is held, never left on the projector.
async function peek(name, button) {
  const box = button.closest("form").querySelector('[data-field="secret"]');
  const release = () => { box.hidden = true; box.textContent = ""; };
  button.addEventListener("pointerup", release, { once: true });
  button.addEventListener("pointerleave", release, { once: true });
  try {
    const result = await post(`/api/servers/${encodeURIComponent(name)}/secret`);
    if (button.matches(":active")) {
      box.textContent = `secret: ${result.secret}`;
      box.hidden = false;
    }
  } catch (err) {
    notify(`${name}: ${err.message}`, "error", button);
  }
}

if (isInstructor) {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const root = form.closest(".card");
    if (!root) return;
    if (form.matches("form.controls")) {
      event.preventDefault();
      command(root.dataset.server, "start", form);
    }
  });
  document.addEventListener("pointerdown", (event) => {
    const button = event.target.closest('button[data-command="peek"]');
    if (button) peek(button.closest(".card").dataset.server, button);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const root = button.closest(".card");
    const what = button.dataset.command;
    if (what === "kill-children" && !confirmed(button, "Click again: kill every child")) return;
    if (what && !["start", "peek"].includes(what) && root) {
      command(root.dataset.server, what, button.closest("form"));
    } else if (button.dataset.stdin !== undefined && root) {
      post(`/api/servers/${root.dataset.server}/stdin`, { line: button.dataset.stdin })
        .catch((err) => notify(`${root.dataset.server}: ${err.message}`, "error", button));
    } else if (button.dataset.kill) {
      const pid = Number(button.dataset.kill);
      button.disabled = true;
      post(`/api/processes/${pid}/signal`, { signal: "SIGKILL", create_time: Number(button.dataset.createTime) })
        .catch((err) => { notify(err.message, "error", button); button.disabled = false; });
    } else if (button.id === "stop-all" && confirmed(button, "Click again to stop everything")) {
      post("/api/stop-all").then(() => notify("stopping everything", "info")).catch((err) => notify(err.message));
    }
  });
}

window.forkwatch = { store, socket, card, stage };
