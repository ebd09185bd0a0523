// One side of a comparison drawn: its server process, every child it forked and the
// threads inside each process (a process tree hides them), with the CPU each used.
import { svg } from "./dom.js";

function caption(target, x, y, text, kind = "caption") {
  const node = svg("text", { class: kind, x, y, "text-anchor": "middle" });
  node.textContent = text;
  target.push(node);
}

function processNode(parts, proc, x, y, r, showCpu) {
  const g = svg("g", { class: `proc ${proc.root ? "root" : ""} ${proc.status === "zombie" ? "zombie" : ""}`.trim(), "data-pid": proc.pid });
  const tip = svg("title");
  tip.textContent = `PID ${proc.pid}${proc.root ? " (the server)" : ""}: ${proc.threads.length} thread(s), ${proc.cpu_seconds} s of CPU`;
  g.append(tip, svg("circle", { cx: x, cy: y, r }));
  const label = svg("text", { x, y: y + r * 0.18, "text-anchor": "middle" });
  label.textContent = String(proc.pid);
  g.append(label);
  parts.push(g);
  if (showCpu && proc.cpu_percent !== null && proc.cpu_percent !== undefined) {
    caption(parts, x, y + r + r * 0.75, `${proc.cpu_percent}% CPU`, "cpu");
  }
}

function threadRow(parts, proc, x, y, r, width, showCpu) {
  const threads = proc.threads.filter((t) => !t.main);
  if (!threads.length) return 0;
  const size = r * 0.55;
  const gap = Math.min(size * 2.6, (width - size * 2) / threads.length);
  const start = x - (gap * (threads.length - 1)) / 2;
  const rowY = y + r * 2.4;
  threads.forEach((thread, i) => {
    const tx = start + gap * i;
    parts.push(svg("line", { class: "thread-edge", x1: x, y1: y + r, x2: tx, y2: rowY - size }));
    const g = svg("g", { class: "thread", "data-tid": thread.tid });
    const tip = svg("title");
    tip.textContent = `thread ${thread.tid} of PID ${proc.pid}: ${thread.cpu_seconds} s of CPU`;
    g.append(tip, svg("rect", { x: tx - size, y: rowY - size, width: size * 2, height: size * 2, rx: size * 0.4 }));
    parts.push(g);
    if (showCpu && thread.cpu_percent !== null && thread.cpu_percent !== undefined) {
      caption(parts, tx, rowY + size + r * 0.6, `${thread.cpu_percent}%`, "cpu");
    }
  });
  caption(parts, x, rowY + size + r * (showCpu ? 1.4 : 0.8), `${threads.length} threads in one process`);
  return rowY + size + r * 1.6 - y;
}

export function drawSide(target, side, showCpu) {
  const fontSize = parseFloat(getComputedStyle(target).fontSize) || 16;
  const width = Math.max(220, Math.round(target.clientWidth || target.parentElement.clientWidth || 360));
  const r = Math.round(fontSize * 1.5);
  const procs = side.processes || [];
  const root = procs.find((p) => p.root);
  const children = procs.filter((p) => !p.root);
  const parts = [];
  let height = r * 2;
  if (root) {
    const top = r + 4;
    const below = threadRow(parts, root, width / 2, top, r, width, showCpu);
    processNode(parts, root, width / 2, top, r, showCpu && !below);
    const rowY = top + Math.max(below, r * (showCpu ? 2.2 : 1.6)) + r * 1.6;
    const gap = children.length ? Math.min(r * 3, width / children.length) : 0;
    const start = width / 2 - (gap * (children.length - 1)) / 2;
    children.forEach((child, i) => {
      const cx = start + gap * i;
      parts.unshift(svg("line", { class: "edge", x1: width / 2, y1: top + r, x2: cx, y2: rowY - r }));
      processNode(parts, child, cx, rowY, Math.min(r, gap * 0.45), showCpu);
    });
    height = children.length ? rowY + r * (showCpu ? 2.6 : 1.4) : top + Math.max(below, r * (showCpu ? 2.2 : 1.2)) + 4;
  }
  const peaks = svg("text", { class: "caption", x: width / 2, y: height + fontSize, "text-anchor": "middle" });
  const processes = side.peak_processes || 0;
  peaks.textContent = processes
    ? `at most ${processes} process${processes === 1 ? "" : "es"}, ${side.peak_threads} thread${side.peak_threads === 1 ? "" : "s"}`
    : "";
  parts.push(peaks);
  height += fontSize * 1.6;
  target.setAttribute("viewBox", `0 0 ${width} ${Math.ceil(height)}`);
  target.setAttribute("height", String(Math.ceil(height)));
  target.replaceChildren(...parts);
}
