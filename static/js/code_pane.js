// The code pane: click a process in a drawing or a table, and its program's text shows
// with the line it is on highlighted and its Python stack beside it (read from outside
// with py-spy), refreshed while the pane is open. The instructor can show it to the class:
// the `focus` event, which every page follows. Program text goes in through textContent.
import { notify } from "./api.js";
import { el } from "./dom.js";

const REFRESH_MS = 1000;
const FINAL = new Set([400, 403, 404, 409]); // not ours, gone, or a zombie: no use asking again

export function setupCodePane({ socket, store, isInstructor }) {
  const pane = document.getElementById("code-pane");
  const field = (name) => pane.querySelector(`[data-field="${name}"]`);
  const sources = new Map(); // URL -> Promise of the program's lines
  let view = null; // {server, pid, followed, file, line, timer}
  let shown = null; // {server, pid} the instructor shows the class, or null

  function procOf(server, pid) {
    const entry = store.servers.get(server);
    return entry ? { proc: entry.procs.get(pid), isRoot: entry.info.pid === pid } : { proc: null, isRoot: false };
  }

  function linesOf(url) {
    if (!sources.has(url)) {
      const loading = fetch(url, { credentials: "same-origin" }).then((response) => {
        if (!response.ok) throw new Error(`${url} could not be loaded (${response.status})`);
        return response.text();
      });
      sources.set(url, loading.then((text) => text.replace(/\n$/, "").split("\n")));
      loading.catch(() => sources.delete(url));
    }
    return sources.get(url);
  }

  function open(server, pid, followed = false) {
    if (view && view.pid === pid) {
      view.followed = view.followed || followed;
      markShown();
      return;
    }
    stop();
    view = { server, pid, followed, file: null, line: null, timer: null };
    pane.hidden = false;
    pane.dataset.pid = String(pid);
    pane.dataset.server = server;
    field("title").textContent = `${server}: PID ${pid}`;
    field("where").textContent = "reading its stack…";
    field("file").textContent = "";
    field("lines").replaceChildren();
    field("stack").replaceChildren();
    showError(null);
    markShown();
    refresh();
  }

  function stop() {
    if (view) clearTimeout(view.timer);
    view = null;
  }

  function close() {
    if (isInstructor && view && shown && shown.pid === view.pid) focus(null);
    stop();
    pane.hidden = true;
    delete pane.dataset.pid;
  }

  function showError(message) {
    const box = field("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  async function refresh() {
    const current = view;
    if (!current) return;
    let status = 0;
    let answer = null;
    try {
      const response = await fetch(`/api/processes/${current.pid}/stack`, { credentials: "same-origin" });
      status = response.status;
      answer = await response.json();
    } catch (err) {
      answer = { error: "the dashboard cannot be reached" };
    }
    if (view !== current) return;
    showDoing(current);
    if (status === 200) {
      showError(null);
      await showStack(current, answer);
    } else {
      showError((answer && answer.error) || `the stack could not be read (${status})`);
      if (FINAL.has(status)) return;
    }
    if (view === current) current.timer = setTimeout(refresh, REFRESH_MS);
  }

  function showDoing(current) {
    const { proc } = procOf(current.server, current.pid);
    field("doing").textContent = proc && proc.doing ? proc.doing : "";
  }

  async function showStack(current, stack) {
    const top = stack.frames.find((frame) => frame.source);
    field("stack").replaceChildren(...stack.frames.map((frame) => stackRow(frame, frame === top)));
    if (!top) {
      field("where").textContent = `PID ${current.pid} is in no line of a lecture program right now`;
      return;
    }
    const { isRoot } = procOf(current.server, current.pid);
    const who = isRoot ? "server" : "child";
    field("where").textContent = `${who} ${current.pid} is at line ${top.line}: ${top.code} in ${top.function}`;
    if (current.file !== top.source) {
      let lines;
      try {
        lines = await linesOf(top.source);
      } catch (err) {
        showError(err.message);
        return;
      }
      if (view !== current) return;
      field("file").textContent = top.source.replace("/source/", "");
      field("lines").replaceChildren(...lines.map(sourceRow));
      current.file = top.source;
      current.line = null;
    }
    const list = field("lines");
    for (const marked of list.querySelectorAll("li.current, li.caller")) marked.classList.remove("current", "caller");
    for (const frame of stack.frames) {
      if (frame.source !== top.source || frame === top) continue;
      const row = list.querySelector(`li[data-line="${frame.line}"]`);
      if (row) row.classList.add("caller");
    }
    const row = list.querySelector(`li[data-line="${top.line}"]`);
    if (row) {
      row.classList.add("current");
      if (current.line !== top.line) row.scrollIntoView({ block: "center" });
    }
    current.line = top.line;
  }

  function sourceRow(text, index) {
    return el(
      "li",
      { "data-line": String(index + 1) },
      el("span", { class: "ln", text: String(index + 1) }),
      el("code", { text }),
    );
  }

  function stackRow(frame, isTop) {
    const where = frame.source ? `${frame.source.replace("/source/", "")}:${frame.line}` : `${frame.file}:${frame.line}`;
    return el(
      "li",
      { class: isTop ? "top" : "" },
      el("b", { text: frame.function }),
      el("span", { class: "where", text: ` ${where}` }),
      frame.code ? el("code", { text: frame.code }) : null,
    );
  }

  function markShown() {
    const isShown = Boolean(view && shown && shown.pid === view.pid);
    field("shown").hidden = !isShown;
    for (const button of pane.querySelectorAll("[data-pane=show]")) button.hidden = isShown;
    for (const button of pane.querySelectorAll("[data-pane=unshow]")) button.hidden = !isShown;
  }

  function focus(pid) {
    const server = view ? view.server : null;
    socket.emit("focus", { server, pid }, (ack) => {
      if (ack && !ack.ok) notify(ack.error);
    });
  }

  function onFocus(next) {
    shown = next && next.pid ? { server: next.server, pid: next.pid } : null;
    if (shown) open(shown.server, shown.pid, true);
    else if (view && view.followed && !isInstructor) close();
    markShown();
  }

  pane.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-pane]");
    if (!button) return;
    if (button.dataset.pane === "close") close();
    else if (button.dataset.pane === "show" && view) focus(view.pid);
    else if (button.dataset.pane === "unshow") focus(null);
  });

  document.addEventListener("click", (event) => {
    if (event.target.closest("button, a, input, form")) return;
    const picked = event.target.closest("svg.tree-drawing g.node, table.tree tbody tr[data-pid]");
    const root = picked && picked.closest(".card");
    if (!picked || !root) return;
    open(root.dataset.server, Number(picked.dataset.pid));
  });

  return {
    onSnapshot(snapshot) {
      if (snapshot.focus) onFocus(snapshot.focus);
    },
    onFocus,
  };
}
