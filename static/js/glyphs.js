// What a process waits in, drawn: a glyph and a colour per activity (the words of
// supervisor/core/doing.py), a countdown ring for a sleep, and the legend that explains them.
import { el, svg } from "./dom.js";

// Each glyph is a path on a 16×16 box centred on 0,0, stroked in the activity's colour.
const GLYPHS = {
  accept: { path: "M-7 0 H3 M-1 -4 L3 0 L-1 4 M6 -6 V6", text: "accept(): waits for a client" },
  sleep: { path: "M-5 -5 H5 L-5 5 H5", text: "sleep(): the ring counts down" },
  recv: { path: "M-6 -4 H6 V4 H-6 Z M-6 -4 L0 1 L6 -4", text: "recv(): waits for its client" },
  send: { path: "M-6 0 H5 M1 -4 L5 0 L1 4", text: "send(): waits for its client to read" },
  poll: { path: "M5 -2 A5 5 0 1 0 5 2 M5 -6 V-2 H1", text: "poll(): looks again every 0.5 s" },
  wait: { path: "M-5 -6 H5 L-5 6 H5 Z", text: "wait(): waits for a child" },
  input: { path: "M-6 -4 L-2 0 L-6 4 M0 4 H6", text: "input(): waits for a line" },
  zombie: { path: "M-5 -5 L5 5 M5 -5 L-5 5", text: "zombie: exited, not yet reaped" },
  running: { path: "M-4 -6 L6 0 L-4 6 Z", text: "running on a CPU", filled: true },
  stopped: { path: "M-3 -5 V5 M3 -5 V5", text: "stopped by a signal" },
  other: { path: "M-1 0 H1", text: "something else (see the sentence)" },
};
const LEGEND = ["accept", "sleep", "recv", "poll", "wait", "input", "zombie", "running"];
const OTHER_WORDS = new Set(["signal", "lock", "connect", "kernel", "other", "unknown", "gone"]);

export function activityOf(proc) {
  if (proc.status === "zombie") return "zombie";
  const word = proc.activity;
  if (!word) return null;
  return OTHER_WORDS.has(word) || !GLYPHS[word] ? "other" : word;
}

function glyphPath(activity, x, y, scale = 1) {
  const glyph = GLYPHS[activity] || GLYPHS.other;
  return svg("path", {
    class: `glyph${glyph.filled ? " filled" : ""}`,
    d: glyph.path,
    transform: `translate(${x} ${y}) scale(${scale})`,
  });
}

// The small badge beside a node: a white disc with the activity's glyph, or a number (a
// sleep's seconds left).
export function badge(activity, x, y, radius, number = null) {
  const g = svg("g", { class: `glyph-badge doing-${activity}` });
  g.append(svg("circle", { cx: x, cy: y, r: radius }));
  if (number === null) {
    g.append(glyphPath(activity, x, y, radius / 10));
  } else {
    const text = svg("text", { class: "count", x, y: y + radius * 0.4 });
    text.textContent = number;
    g.append(text);
  }
  return g;
}

// A ring around a sleeping node: the arc left is the part of the delay still to sleep.
export function countdownRing(x, y, radius, left, total) {
  const length = 2 * Math.PI * radius;
  const share = total ? Math.max(0, Math.min(1, left / total)) : 1;
  return svg("circle", {
    class: "countdown",
    cx: x,
    cy: y,
    r: radius,
    "stroke-dasharray": `${(length * share).toFixed(1)} ${length.toFixed(1)}`,
    transform: `rotate(-90 ${x} ${y})`,
  });
}

// The legend under a drawing: each glyph with what it means.
export function fillLegend(list) {
  if (!list || list.childElementCount) return;
  for (const activity of LEGEND) {
    const icon = svg("svg", { viewBox: "-10 -10 20 20", width: 22, height: 22, "aria-hidden": "true" });
    icon.append(badge(activity, 0, 0, 9));
    list.append(el("li", { class: `doing-${activity}`, "data-activity": activity }, icon, el("span", { text: GLYPHS[activity].text })));
  }
}
