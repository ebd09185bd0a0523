// The replay page: a recording played back through the live page's store and renderers
// (cards, drawing, table, console, timeline); play, pause, 1×/4×/16×, a scrubber with the
// timeline's marks, and the timeline's lines to jump to. The same module runs in a saved
// page, reading the recording inlined in it instead of the API.
import { notify } from "./api.js";
import { el } from "./dom.js";
import { Player } from "./player.js";
import { confirmedTwice, remove, rename } from "./recording_edit.js";
import { offlineSource, onlineSource } from "./recording_source.js";
import { appendConsole, renderUptime, resetConsole, resetTimeline } from "./render.js";
import { LEAVE_MS, createStore } from "./store.js";

const TIMELINE_ITEMS = 400;
const MARK_GAP = 0.5;
const meta = JSON.parse(document.getElementById("recording").textContent);
const base = JSON.parse(document.getElementById("snapshot").textContent);
const exported = document.getElementById("recording-export");
const source = exported ? offlineSource(JSON.parse(exported.textContent)) : onlineSource(meta.id);
const end = meta.ended ?? meta.started + meta.duration; // a recording under way: as far as it went
const length = end - meta.started;
const clock = { now: () => player.now() };
const { store, load, schedule, apply } = createStore({ clock, isInstructor: false });
let timeline = []; // the recording's timeline entries, in order
const timeOf = new Map(); // a timeline entry's id -> when it was recorded
let consoleFrom = new Map(); // server -> the number of its first console line not yet shown

// --- the state at a moment, and each event after it ---------------------------------------

function restore(state, t) {
  store.leaveMs = 0;
  const snapshot = state.snapshot && state.snapshot.state;
  const servers = base.servers.map((info) => {
    const recorded = snapshot && snapshot.servers.find((server) => server.name === info.name);
    return structuredClone(recorded || info);
  });
  load({ servers, events: [] });
  consoleFrom = new Map();
  for (const info of servers) {
    resetConsole(info.name);
    if (info.output && info.output.length) appendConsole(info.name, "stdout", info.output);
    if (snapshot) consoleFrom.set(info.name, info.output_seq ?? 0);
  }
  for (const event of state.events) show(event);
  showTimelineUpTo(t);
  store.leaveMs = LEAVE_MS / player.speed;
}

// One recorded event; console lines the snapshot already showed are skipped.
function show({ kind, payload }) {
  if (kind === "output" && payload.seq !== undefined) {
    const skip = (consoleFrom.get(payload.server) ?? 0) - payload.seq;
    if (skip >= payload.lines.length) return;
    if (skip > 0) payload = { ...payload, lines: payload.lines.slice(skip) };
  }
  apply(kind, payload);
}

function showTimelineUpTo(t) {
  const shown = timeline.filter((entry) => entry.t <= t).slice(-TIMELINE_ITEMS);
  resetTimeline(shown.map((entry) => entry.payload));
}

const player = new Player({
  source,
  start: meta.started,
  end,
  restore,
  apply: show,
  changed: showPosition,
  failed: (err) => notify(`the recording cannot be read: ${err.message}`),
});

function seek(t) {
  player.seek(t).catch((err) => notify(`the recording cannot be read: ${err.message}`));
}

// --- the controls ---------------------------------------------------------------------------

const playButton = document.getElementById("play");
const scrubber = document.getElementById("scrubber");
const position = document.getElementById("position");
let dragging = false;
let lastAges = 0;

function clockText(seconds) {
  const s = Math.max(0, seconds);
  const minutes = Math.floor(s / 60);
  return `${minutes}:${(s - minutes * 60).toFixed(1).padStart(4, "0")}`;
}

function showPosition() {
  const now = player.now();
  if (!dragging) scrubber.value = String(Math.round((now - meta.started) * 1000));
  position.textContent = `${clockText(now - meta.started)} / ${clockText(length)}`;
  playButton.textContent = player.playing ? "Pause" : "Play";
  playButton.setAttribute("aria-pressed", String(player.playing));
  for (const button of document.querySelectorAll("[data-speed]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.speed) === player.speed));
  }
  if (Math.abs(now - lastAges) >= 1) {
    lastAges = now; // ages and uptimes move with the recording's time
    for (const server of store.servers.values()) {
      renderUptime(server, clock);
      if (server.procs.size) schedule(server.info.name);
    }
  }
}

playButton.addEventListener("click", () => {
  if (player.playing) player.pause();
  else player.play().catch((err) => notify(`the recording cannot be read: ${err.message}`));
});
for (const button of document.querySelectorAll("[data-speed]")) {
  button.addEventListener("click", () => {
    player.setSpeed(Number(button.dataset.speed));
    store.leaveMs = LEAVE_MS / player.speed;
  });
}
scrubber.addEventListener("input", () => {
  dragging = true;
  position.textContent = `${clockText(Number(scrubber.value) / 1000)} / ${clockText(length)}`;
});
scrubber.addEventListener("change", () => {
  dragging = false;
  const atEnd = Number(scrubber.value) >= Number(scrubber.max);
  seek(atEnd ? end : meta.started + Number(scrubber.value) / 1000);
});
document.getElementById("timeline").addEventListener("click", (event) => {
  const item = event.target.closest("li[data-id]");
  if (item && timeOf.has(Number(item.dataset.id))) seek(timeOf.get(Number(item.dataset.id)));
});

// --- the marks: forks, kills, Ctrl-C ----------------------------------------------------------

function markKind(entry) {
  const { kind, text } = entry.payload;
  if (kind === "interrupt" || (kind === "kill" && /^SIGINT\b/.test(text))) return "ctrl-c";
  if (kind === "kill" || kind === "fork") return kind;
  return null;
}

// Marks of a kind closer than MARK_GAP (% of the scrubber) would overlap: they are one
// mark, which jumps to the last of them.
function drawMarks() {
  const groups = [];
  const open = new Map(); // kind -> its latest group
  for (const entry of timeline) {
    const kind = markKind(entry);
    if (!kind) continue;
    const at = length ? Math.max(0, Math.min(100, ((entry.t - meta.started) / length) * 100)) : 0;
    let group = open.get(kind);
    if (!group || at - group.at > MARK_GAP) {
      group = { kind, at, entries: [] };
      groups.push(group);
      open.set(kind, group);
    }
    group.entries.push(entry);
  }
  const box = document.getElementById("marks");
  box.replaceChildren(...groups.map(({ kind, at, entries }) => {
    const last = entries[entries.length - 1];
    const words = `${clockText(last.t - meta.started)} ${entries.map((entry) => entry.payload.text).join("; ")}`;
    const mark = el("button", {
      type: "button", class: `mark mark-${kind}`, title: words, "aria-label": `jump to ${words}`, "data-t": last.t,
    });
    mark.style.left = `${at}%`;
    mark.addEventListener("click", () => seek(last.t));
    return mark;
  }));
}

// --- the instructor's rename and delete -------------------------------------------------------

const renameForm = document.getElementById("rename");
if (renameForm) {
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const renamed = await rename(meta.id, renameForm.querySelector("input[name=title]").value);
      document.getElementById("replay-title").textContent = renamed.title;
      notify("renamed", "info");
    } catch (err) {
      notify(err.message);
    }
  });
  document.getElementById("delete").addEventListener("click", async (event) => {
    if (!confirmedTwice(event.currentTarget)) return;
    try {
      await remove(meta.id);
      window.location.assign("/recordings");
    } catch (err) {
      notify(err.message);
    }
  });
}

// --- start: the first moment at once; the marks and the timeline's lines once read ------------

async function open() {
  const reading = source.timeline(); // a long recording's takes a while: it comes after
  await player.seek(meta.started);
  timeline = await reading;
  for (const entry of timeline) timeOf.set(entry.payload.id, entry.t);
  drawMarks();
  showTimelineUpTo(player.now());
  document.body.dataset.replay = "ready";
}

open().catch((err) => notify(`the recording cannot be read: ${err.message}`));
window.forkwatch = { store, player };
