// The keyboard: the instructor drives the staged server and the lesson without the
// mouse; `?` shows the map (to everyone: viewers have `f` to follow or step off).
import { notify, post } from "./api.js";
import { el } from "./dom.js";

const INSTRUCTOR_KEYS = [
  ["s", "start the staged server (with the options on its card)"],
  ["x", "stop it"],
  ["c", "Ctrl-C: interrupt it (SIGINT: its own shutdown runs)"],
  ["r", "restart it"],
  ["n  →", "next step of the lesson"],
  ["b  ←", "back one step"],
];
const VIEWER_KEYS = [["f", "follow the stage, or step off to browse"]];

function typing(event) {
  const target = event.target;
  return target.closest && target.closest("input, textarea, select, [contenteditable]");
}

export function setupKeys(ctx) {
  const keys = [...(ctx.isInstructor ? INSTRUCTOR_KEYS : VIEWER_KEYS), ["?", "this map"], ["Esc", "close it"]];
  const rows = keys.map(([key, what]) => el("tr", {}, el("th", {}, el("kbd", { text: key })), el("td", { text: what })));
  const map = el("div", { id: "keymap", class: "keymap", role: "dialog", "aria-label": "keyboard map", hidden: true },
    el("h2", { text: "Keys" }), el("table", {}, el("tbody", {}, ...rows)),
    el("p", { class: "muted", text: "Press ? again or Esc to close." }));
  document.body.append(map);

  function staged() {
    const stage = ctx.stage.staged;
    if (stage.kind !== "server") {
      notify("no server is on stage");
      return null;
    }
    return stage.name;
  }

  function serverCommand(what) {
    const name = staged();
    if (!name) return;
    const base = `/api/servers/${encodeURIComponent(name)}`;
    const form = document.querySelector(`#card-${CSS.escape(name)} form.controls`);
    const body = what === "start" || what === "restart" ? { options: ctx.optionsOf(form) } : {};
    post(`${base}/${what}`, body).catch((err) => notify(`${name}: ${err.message}`, "error", form));
  }

  const actions = {
    s: () => serverCommand("start"),
    x: () => serverCommand("stop"),
    c: () => serverCommand("interrupt"),
    r: () => serverCommand("restart"),
    n: () => ctx.lesson.next(),
    ArrowRight: () => ctx.lesson.next(),
    b: () => ctx.lesson.back(),
    ArrowLeft: () => ctx.lesson.back(),
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    if (event.key === "?") {
      map.hidden = !map.hidden;
    } else if (event.key === "Escape") {
      map.hidden = true;
    } else if (event.key === "f" && !ctx.isInstructor) {
      ctx.stage.toggleFollowing();
    } else if (ctx.isInstructor && actions[event.key]) {
      actions[event.key]();
    } else {
      return;
    }
    event.preventDefault();
  });
}
