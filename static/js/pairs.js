// Each child's step on the drawing, in the lecture's words ("blocked" — with a countdown
// when the kernel's sleep countdown is not drawn already —, "serving", "closing"), the fork
// clients drawn beside the children that serve them (a client's address is its child's
// peer), and the clients console of the forking server's card.
import { el, svg } from "./dom.js";

const CLIENT_LINES = 300;
const PAIR_ROW = 124; // a row of children with their clients under them
const BOX_HEIGHT = 22;

export function setupPairs({ store, clock, schedule }) {
  const clients = new Map(); // server -> Map(address -> {pid, last})
  const stories = new Map(); // server -> Map(pid -> its latest `story` event)

  function clientsOf(name) {
    if (!clients.has(name)) clients.set(name, new Map());
    return clients.get(name);
  }

  function lastLines(name) {
    const lines = new Map();
    for (const client of clientsOf(name).values()) lines.set(client.pid, client.last);
    return lines;
  }

  function onClients(payload) {
    const known = new Map([...clients.keys()].map((name) => [name, lastLines(name)]));
    clients.clear();
    for (const group of payload.groups || []) {
      const byAddress = clientsOf(group.server);
      const last = known.get(group.server) || new Map();
      for (const client of group.clients || []) {
        if (client.address && client.alive) byAddress.set(client.address, { pid: client.pid, last: last.get(client.pid) || "" });
      }
    }
    for (const name of store.servers.keys()) schedule(name);
  }

  function onClientOutput(out) {
    appendClientLines(out.server, out.lines.map((text) => ({ pid: out.pid, text })));
    for (const client of clientsOf(out.server).values()) {
      if (client.pid === out.pid) client.last = out.lines[out.lines.length - 1];
    }
    schedule(out.server);
  }

  function onStory(story) {
    if (!stories.has(story.server)) stories.set(story.server, new Map());
    if (story.step === "gone") stories.get(story.server).delete(story.pid);
    else stories.get(story.server).set(story.pid, story);
    schedule(story.server);
  }

  function onSnapshot(snapshot) {
    stories.clear();
    for (const info of snapshot.servers) {
      stories.set(info.name, new Map((info.stories || []).map((story) => [story.pid, story])));
    }
    for (const pre of document.querySelectorAll("pre.clients-console")) pre.replaceChildren();
    for (const [name, lines] of Object.entries(snapshot.client_lines || {})) appendClientLines(name, lines);
    onClients({ groups: snapshot.clients || [] });
    for (const [name, lines] of Object.entries(snapshot.client_lines || {})) {
      for (const { pid, text } of lines) {
        for (const client of clientsOf(name).values()) if (client.pid === pid) client.last = text;
      }
    }
  }

  // What drawTree draws under each child: its step, and the client it serves.
  function decorate(server) {
    const byAddress = clientsOf(server.info.name);
    const paired = [...server.procs.values()].some((proc) => proc.peer && byAddress.has(proc.peer));
    return {
      rowHeight: paired ? PAIR_ROW : undefined,
      below: (proc, x, y, room) => under(server, byAddress.get(proc.peer), proc, x, y, room),
    };
  }

  function under(server, client, proc, x, y, room) {
    const story = (stories.get(server.info.name) || new Map()).get(proc.pid);
    const g = svg("g", { class: "story", "data-pid": proc.pid });
    const label = stepLabel(story, proc);
    if (label) {
      const text = svg("text", { class: `step step-${story.step}`, x, y: y + 13 });
      text.textContent = label;
      g.append(text);
    }
    if (client) {
      const width = Math.max(34, Math.min(room - 6, 84));
      const top = y + 24;
      g.append(svg("line", { class: "pair-link", x1: x, y1: label ? y + 17 : y, x2: x, y2: top }));
      const box = svg("g", { class: "client", "data-pid": client.pid, "data-serves": proc.pid });
      const title = svg("title");
      title.textContent = `fork client ${client.pid} at ${proc.peer}, served by child ${proc.pid}${client.last ? ": " + client.last : ""}`;
      box.append(title, svg("rect", { x: x - width / 2, y: top, width, height: BOX_HEIGHT, rx: 4 }));
      const name = svg("text", { x, y: top + 15 });
      name.textContent = width >= 70 ? `client ${client.pid}` : String(client.pid);
      box.append(name);
      const fits = Math.floor((room - 8) / 6.7); // characters of 11px monospace in the room
      if (client.last && fits >= 12) {
        const said = svg("text", { class: "client-said", x, y: top + BOX_HEIGHT + 13 });
        said.textContent = client.last.length > fits ? client.last.slice(0, fits - 1) + "…" : client.last;
        box.append(said);
      }
      g.append(box);
    }
    return g.childNodes.length ? g : null;
  }

  function stepLabel(story, proc) {
    if (!story || proc.status === "zombie") return "";
    if (story.step === "blocked") {
      const left = story.until ? Math.ceil(story.until - clock.now()) : 0;
      return left > 0 && proc.sleep_left_s == null ? `blocked ${left}s` : "blocked";
    }
    return { serving: "serving", closing: "closing" }[story.step] || "";
  }

  return { onClients, onClientOutput, onStory, onSnapshot, decorate };
}

function appendClientLines(name, lines) {
  const pre = document.querySelector(`#card-${CSS.escape(name)} pre.clients-console`);
  if (!pre) return;
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  const fragment = document.createDocumentFragment();
  for (const { pid, text } of lines) {
    fragment.append(el("span", { class: "client-line", "data-pid": pid }, el("span", { class: "pid", text: `[${pid}] ` }), text + "\n"));
  }
  pre.append(fragment);
  while (pre.childNodes.length > CLIENT_LINES) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}
