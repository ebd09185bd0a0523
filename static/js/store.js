// The page's model of every server: its facts and its process tree, fed by events (live
// from the socket, or read back from a recording) and rendered on animation frames.
import {
  LIVE_STATES, addTimeline, appendConsole, renderInfo, renderMode, renderTree, resetConsole, resetTimeline, showOptions,
} from "./render.js";

const LEAVE_MS = 600;

// clock.now() is the time the page shows (server time, or a replay's position);
// onLoad(snapshot) runs after each snapshot is loaded, onServer(info) after each server
// event; decorate(server), when given, says what the drawing adds under each child
// (pairs.js); keepConsole: a start goes on with the console (the live page: the server
// adds a separator line) instead of a new one (a replay, as the recording keeps it).
export function createStore({
  clock, isInstructor, onLoad = () => {}, onServer: afterServer = () => {}, decorate = () => undefined, keepConsole = false,
}) {
  const store = { servers: new Map(), offset: 0, leaveMs: LEAVE_MS };
  const dirty = new Set();
  let frame = null;

  function schedule(name) {
    dirty.add(name);
    if (frame === null) frame = requestAnimationFrame(flush);
  }

  function flush() {
    frame = null;
    for (const name of dirty) {
      const server = store.servers.get(name);
      if (server) renderTree(server, clock, isInstructor, decorate(server));
    }
    dirty.clear();
  }

  function load(snapshot) {
    if (snapshot.now) store.offset = snapshot.now - Date.now() / 1000;
    for (const info of snapshot.servers) {
      // Many zombies come folded into a count (their PIDs on demand): those are `folded`.
      const server = { info, procs: new Map(), leaving: new Set(), folded: info.zombies_folded ? info.zombies : 0 };
      for (const proc of info.tree || []) server.procs.set(proc.pid, proc);
      store.servers.set(info.name, server);
      if (info.started_at) showOptions(info);
      renderInfo(server, clock);
      renderMode(info);
      schedule(info.name);
    }
    resetTimeline(snapshot.events || []);
    if (snapshot.mechanism) showMechanism(snapshot.mechanism);
    onLoad(snapshot);
  }

  function showMechanism(name) {
    const badge = document.getElementById("mechanism");
    if (badge) badge.textContent = `watching by ${name}`;
  }

  function onEvent(event) {
    addTimeline(event);
    if (event.kind === "watch" && event.mechanism) showMechanism(event.mechanism); // the source was replaced
  }

  function onServer(info) {
    const server = store.servers.get(info.name);
    if (!server) return;
    const wasLive = LIVE_STATES.has(server.info.state);
    Object.assign(server.info, info);
    if (info.state === "STARTING") {
      server.procs.clear(); // a start begins a new tree
      server.folded = 0;
      server.zombiePids = "";
      server.info.started_at = info.t;
      showOptions(info);
      renderMode(info);
      if (!wasLive && !keepConsole) resetConsole(info.name);
    }
    if (info.pid && LIVE_STATES.has(info.state) && !server.procs.has(info.pid)) {
      server.procs.set(info.pid, { pid: info.pid, ppid: null, status: "running", create_time: info.t, peer: null });
    }
    if (!LIVE_STATES.has(info.state)) {
      server.procs.clear();
      server.folded = 0;
    }
    renderInfo(server, clock);
    schedule(info.name);
    afterServer(info);
  }

  function onProc(proc) {
    const server = store.servers.get(proc.server);
    if (!server) return;
    if (proc.kind === "exit") {
      if (!server.procs.has(proc.pid)) {
        if (server.folded > 0) server.folded -= 1; // one of the zombies the snapshot folded
        schedule(proc.server);
        return;
      }
      if (!store.leaveMs) {
        server.procs.delete(proc.pid); // no fading out (a replay jumping to a moment)
        schedule(proc.server);
        return;
      }
      server.leaving.add(proc.pid);
      schedule(proc.server);
      setTimeout(() => {
        server.leaving.delete(proc.pid);
        server.procs.delete(proc.pid);
        schedule(proc.server);
      }, store.leaveMs);
      return;
    }
    const known = server.procs.get(proc.pid);
    if (proc.kind === "doing" && !known) return; // news of a process already gone from the tree
    server.procs.set(proc.pid, { ...(known || {}), ...proc });
    schedule(proc.server);
  }

  function onStats(stats) {
    const server = store.servers.get(stats.server);
    if (!server) return;
    for (const item of stats.procs) {
      const proc = server.procs.get(item.pid);
      if (proc) Object.assign(proc, item);
    }
    schedule(stats.server);
  }

  const handlers = {
    server: onServer,
    proc: onProc,
    stats: onStats,
    output: (out) => appendConsole(out.server, out.stream, out.lines, out.pids),
    event: onEvent,
  };

  // One published event, by its kind; kinds the page does not show are ignored.
  function apply(kind, payload) {
    const handler = handlers[kind];
    if (handler) handler(payload);
  }

  return { store, load, schedule, apply, kinds: Object.keys(handlers) };
}

export { LEAVE_MS };
