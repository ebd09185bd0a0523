// Bursts on the timeline fold into one line: six forks or exits of one server within a
// few seconds read "6 children of forking_clock gone", each event still in the tooltip.
import { fmtTime } from "./dom.js";

const WINDOW_S = 3;
const WORDS = {
  fork: (count, server) => `${server} forked ${count} children`,
  exit: (count, server) => `${count} children of ${server} gone`,
};

// Folds `event` into the newest line when both belong to one burst (on a timeline that
// asks for it: the live page's; a replay keeps every line, to jump to).
export function foldBurst(list, event) {
  if (list.dataset.fold !== "bursts") return false;
  const words = WORDS[event.kind];
  const top = list.firstElementChild;
  if (!words || !top || top.dataset.kind !== event.kind || top.dataset.server !== (event.server || "")) return false;
  if (event.t - Number(top.dataset.t) > WINDOW_S) return false;
  const count = Number(top.dataset.count || 1) + 1;
  top.dataset.count = String(count);
  top.dataset.t = String(event.t);
  top.dataset.ids = `${top.dataset.ids || ""} ${event.id}`.trim();
  top.querySelector("time").textContent = fmtTime(event.t);
  top.querySelector("span").textContent = words(count, event.server);
  top.title = `${top.title || top.dataset.first}\n${event.text}`;
  return true;
}
