// The per-client chart of one side of a comparison, drawn from the measured times: a row
// per client in the order the answers came, a bar from when it asked to when its answer
// came (growing while it waits), the seconds at its end. All sides share one time scale.
import { svg } from "./dom.js";

const LABEL = 9; // characters of the row label ("client 4") and a gap
const TICKS = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];

function niceStep(scale, most = 6) {
  return TICKS.find((step) => scale / step <= most) || 60;
}

// Seconds as the chart says them: milliseconds when under a tenth of a second.
export function seconds(value) {
  return value < 0.1 ? `${(value * 1000).toFixed(1)} ms` : `${value.toFixed(2)} s`;
}

// The seconds a chart spans: at least what every side measured (or has waited so far).
export function chartScale(run, elapsedOf) {
  let most = 0.5;
  for (const side of run.sides) {
    for (const client of side.clients) {
      const end = client.answered ?? (client.asked !== null ? elapsedOf(side) : null);
      if (end !== null && end !== undefined) most = Math.max(most, end);
    }
  }
  const step = niceStep(most);
  return Math.ceil((most * 1.08) / step) * step;
}

export function drawChart(target, side, scale, elapsed) {
  const fontSize = parseFloat(getComputedStyle(target).fontSize) || 16;
  const width = Math.max(240, Math.round(target.clientWidth || target.parentElement.clientWidth || 400));
  const rowHeight = Math.round(fontSize * 1.7);
  const left = Math.round(fontSize * 0.62 * LABEL + 8);
  const right = Math.round(fontSize * 3.6);
  const plot = Math.max(40, width - left - right);
  // In the order the answers came (waiting ones last): one at a time makes a staircase.
  const order = (c) => (c.answered ?? Infinity);
  const clients = [...side.clients].sort((a, b) => order(a) - order(b) || a.index - b.index);
  const height = rowHeight * clients.length + Math.round(fontSize * 2.2);
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  target.setAttribute("height", String(height));
  const x = (seconds) => left + (Math.min(seconds, scale) / scale) * plot;
  const parts = [];
  const step = niceStep(scale, Math.max(1, Math.floor(plot / (fontSize * 3.6))));
  for (let t = 0; t <= scale + 1e-9; t += step) {
    parts.push(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: 0, y2: rowHeight * clients.length }));
    const tick = svg("text", { class: "tick", x: x(t), y: rowHeight * clients.length + fontSize * 1.2, "text-anchor": "middle" });
    tick.textContent = `${Number(t.toFixed(2))} s`;
    parts.push(tick);
  }
  clients.forEach((client, row) => {
    const y = row * rowHeight;
    const label = svg("text", { class: "row-label", x: 0, y: y + rowHeight * 0.65 });
    label.textContent = `client ${client.index + 1}`;
    parts.push(label);
    if (client.asked === null || client.asked === undefined) return;
    const end = client.answered ?? elapsed;
    const done = client.answered !== null && client.answered !== undefined;
    const kind = !done ? "pending" : client.outcome === "answered" ? "answered" : "failed";
    const bar = svg("rect", {
      class: `bar ${kind}`,
      x: x(client.asked),
      y: y + rowHeight * 0.18,
      width: Math.max(3, x(end) - x(client.asked)),
      height: rowHeight * 0.64,
      rx: 3,
      "data-client": client.index,
    });
    const tip = svg("title");
    tip.textContent = done
      ? `client ${client.index + 1}: asked at ${client.asked.toFixed(2)} s, ${client.outcome} at ${client.answered.toFixed(2)} s: ${client.answer}`
      : `client ${client.index + 1}: waiting since ${client.asked.toFixed(2)} s`;
    bar.append(tip);
    parts.push(bar);
    const note = svg("text", { class: `bar-note ${kind}`, x: x(end) + 6, y: y + rowHeight * 0.65 });
    note.textContent = !done ? "…" : kind === "answered" ? seconds(client.answered) : `✗ ${client.outcome}`;
    parts.push(note);
  });
  target.replaceChildren(...parts);
}
