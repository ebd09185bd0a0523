// The process tree drawn: the server as the root, children as nodes that pop in and
// fade out, zombies greyed and dashed; each node's colour, badge and tooltip say what it
// waits in (glyphs.js), a sleeping child's ring and number count its delay down. `extra`
// may add what goes under each child (below(proc, x, y, room) -> an SVG element) and a
// taller row for it (rowHeight).
import { svg } from "./dom.js";
import { activityOf, badge, countdownRing } from "./glyphs.js";

const WIDTH = 600;
const BASE_RADIUS = 22; // a card's node, for which extra draws
const BASE_ROW = 64; // a card's row, which extra.rowHeight is given against
const BELOW = 20; // room under the last row for what extra.below draws
const MOST_DRAWN = 120; // past this the table still lists every process; the drawing says how many more

// The drawing's units are the screen's pixels (its width is the width it is shown at), so
// the labels are as large as the CSS says, on a phone as on the stage; the node size
// comes from the CSS too (--node-radius).
function geometry(target) {
  const style = getComputedStyle(target);
  const radius = parseFloat(style.getPropertyValue("--node-radius")) || 22;
  return { WIDTH: Math.round(target.clientWidth) || WIDTH, RADIUS: radius, ROW: Math.round(radius * 2.9) };
}

export function drawTree(target, procs, rootPid, leaving, extra = {}) {
  const { WIDTH, RADIUS, ROW } = geometry(target);
  const all = procs.filter((p) => p.pid !== rootPid);
  const children = all.slice(0, MOST_DRAWN);
  const hidden = all.length - children.length;
  const fits = Math.max(2, Math.floor(WIDTH / (RADIUS * 2.6)));
  const perRow = Math.min(fits, Math.max(6, Math.min(14, Math.ceil(Math.sqrt(children.length * 3)))));
  const rows = Math.ceil(children.length / perRow);
  // What goes under each child (extra) is drawn for a card's node size (BASE_RADIUS, rows of
  // BASE_ROW) and scaled with the nodes, so it stays as legible as they are on the stage.
  const scale = RADIUS / BASE_RADIUS;
  const underRoom = (Math.max(0, (extra.rowHeight || BASE_ROW) - BASE_ROW) + (extra.below ? BELOW : 0)) * scale;
  const rowHeight = ROW + underRoom;
  const rootY = RADIUS + 6;
  const lowest = rows ? rootY + ROW + rowHeight * (rows - 1) + underRoom : rootY; // the last row, and what is under it
  const foldedZombies = extra.foldedZombies || 0;
  const height = lowest + RADIUS + 6 + (hidden || foldedZombies ? 30 : 0);
  target.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  const known = new Set();
  for (const node of target.querySelectorAll("g.node")) known.add(Number(node.dataset.pid));
  target.replaceChildren();
  const root = procs.find((p) => p.pid === rootPid);
  if (!root) return;
  const rootX = WIDTH / 2;
  const placed = [];
  children.forEach((proc, index) => {
    const row = Math.floor(index / perRow);
    const inRow = Math.min(perRow, children.length - row * perRow);
    const gap = WIDTH / (inRow + 1);
    placed.push({ proc, x: gap * ((index % perRow) + 1), y: rootY + ROW + rowHeight * row, room: gap });
  });
  const edges = svg("g");
  for (const { x, y } of placed) {
    edges.append(svg("line", { class: "edge", x1: rootX, y1: rootY + RADIUS, x2: x, y2: y - RADIUS }));
  }
  target.append(edges);
  target.append(node(root, rootX, rootY, "root", known, RADIUS));
  for (const { proc, x, y, room } of placed) {
    const kind = proc.status === "zombie" ? "zombie" : "";
    const g = node(proc, x, y, kind, known, RADIUS);
    if (leaving && leaving.has(proc.pid)) g.classList.add("leave");
    target.append(g);
    const more = extra.below ? extra.below(proc, x, y + RADIUS, room / scale) : null;
    if (more) {
      more.setAttribute("transform", `translate(${x} ${y + RADIUS}) scale(${scale}) translate(${-x} ${-(y + RADIUS)})`);
      target.append(more);
    }
  }
  if (hidden || foldedZombies) {
    const more = svg("text", { class: "more", x: WIDTH / 2, y: height - 12, "text-anchor": "middle" });
    const parts = [hidden ? `${hidden} more children (all listed below)` : "", foldedZombies ? `${foldedZombies} zombies` : ""];
    more.textContent = `+ ${parts.filter(Boolean).join(", + ")}`;
    target.append(more);
  }
}

function node(proc, x, y, kind, known, RADIUS) {
  const g = svg("g", { class: `node ${kind}`.trim(), "data-pid": proc.pid });
  if (!known.has(proc.pid)) g.classList.add("enter");
  const activity = activityOf(proc);
  if (activity) {
    g.classList.add(`doing-${activity}`);
    g.dataset.activity = activity;
  }
  const title = svg("title");
  title.textContent = `PID ${proc.pid} — ${proc.doing || proc.status}${proc.peer ? " — serving " + proc.peer : ""}`;
  g.append(title);
  g.append(svg("circle", { class: "body", cx: x, cy: y, r: RADIUS }));
  const label = svg("text", { x, y: y + RADIUS * 0.2 });
  label.textContent = proc.status === "zombie" ? `Z ${proc.pid}` : String(proc.pid);
  g.append(label);
  let seconds = null;
  if (activity === "sleep" && proc.sleep_left_s != null) {
    g.append(countdownRing(x, y, RADIUS + 5, proc.sleep_left_s, proc.sleep_s));
    seconds = String(Math.max(1, Math.ceil(proc.sleep_left_s - 1e-6))); // the badge counts down
  }
  if (activity) g.append(badge(activity, x + RADIUS * 0.85, y - RADIUS * 0.85, Math.max(11, RADIUS * 0.45), seconds));
  return g;
}
