// The embedded clients: each card with a client gets a panel that plays through
// POST /api/play/NAME and shows the real exchange. Everything shown is text.
import { notify, post } from "./api.js";
import { el, fmtTime } from "./dom.js";

const HISTORY_ITEMS = 100;

function nickname() {
  const input = document.getElementById("nickname");
  return (input && input.value.trim()) || "someone";
}

function nicknameBox(isInstructor) {
  // The instructor plays as "instructor" (kept apart from a student nickname this browser had).
  const key = isInstructor ? "forkwatch-nickname-instructor" : "forkwatch-nickname";
  let saved = localStorage.getItem(key);
  if (!saved) {
    saved = isInstructor ? "instructor" : `student-${Math.floor(Math.random() * 9000 + 1000)}`;
    localStorage.setItem(key, saved);
  }
  const input = el("input", { id: "nickname", type: "text", maxLength: 24, value: saved, "aria-label": "your nickname" });
  input.addEventListener("change", () => localStorage.setItem(key, input.value.trim()));
  const label = el("label", { class: "badge" }, "you are ", input);
  const topbar = document.querySelector(".topbar");
  topbar.insertBefore(label, document.getElementById("stop-all") || null);
}

export function transcript(result) {
  const box = el("div", { class: "transcript" });
  for (const step of result.transcript || []) {
    box.append(
      el("div", { class: step.dir },
        el("span", { text: step.text }),
        el("span", { class: "meta", text: `  (${step.bytes} bytes, ${step.ms} ms)` })),
    );
  }
  return box;
}

function httpResponse(result) {
  const frame = el("iframe", { sandbox: "", title: `response of ${result.url}` });
  frame.srcdoc = result.body; // sandboxed: no scripts, no same-origin
  const headers = el("div", { class: "headers" });
  for (const [key, value] of result.headers || []) headers.append(el("div", { text: `${key}: ${value}` }));
  const parts = [el("div", { class: "status-line", text: result.status_line || "(no status line)" }), headers, frame];
  const onThisMachine = ["127.0.0.1", "localhost", "[::1]"].includes(location.hostname);
  if (onThisMachine) parts.push(el("a", { href: result.url, target: "_blank", rel: "noopener", text: result.url }));
  return el("div", { class: "http-response" }, ...parts);
}

async function play(name, data, out, waitingText) {
  out.replaceChildren(el("p", { class: "waiting", text: waitingText }));
  try {
    const result = await post(`/api/play/${encodeURIComponent(name)}`, { nickname: nickname(), ...data });
    out.replaceChildren();
    return result;
  } catch (err) {
    out.replaceChildren(el("p", { class: "answer wrong", text: err.message }));
    return null;
  }
}

function clockPanel(panel, name, ctx) {
  const out = el("div", { class: "result" });
  const button = el("button", { type: "button", text: "Ask the time", "data-play": "ask" });
  panel.append(el("h3", { text: "Ask the time" }), button, out);
  button.addEventListener("click", async () => {
    const server = ctx.store.servers.get(name);
    const delay = server && server.info.options ? server.info.options.delay : 0;
    const waiting = delay ? `waiting for the child… (it sleeps ${delay} s before answering)` : "asking…";
    button.disabled = true;
    const result = await play(name, {}, out, waiting);
    button.disabled = false;
    if (!result) return;
    // what a real client gets, refused or not
    out.append(el("p", { class: result.outcome === "answered" ? "answer" : "answer wrong", text: result.answer }));
    if (result.child_pid) out.append(el("p", { text: `answered by child PID ${result.child_pid}` }));
    out.append(transcript(result));
  });
}

function forkClientsPanel(panel, name, ctx) {
  if (!ctx.isInstructor) return;
  const count = el("input", { type: "number", min: 1, max: 50, value: 5, name: "count", "aria-label": "how many clients" });
  const spawn = el("button", { type: "button", text: "Spawn clients", "data-play": "spawn" });
  const stop = el("button", { type: "button", text: "Stop clients", "data-play": "stop-clients" });
  const groups = el("div", { class: "groups", "data-field": "groups" });
  panel.append(el("h3", { text: "Looping fork clients" }), el("form", {}, count, spawn, stop), groups);
  spawn.addEventListener("click", () => {
    post(`/api/servers/${name}/clients`, { count: Number(count.value) })
      .then((r) => notify(`starting ${r.count} fork clients`, "info"))
      .catch((err) => notify(err.message));
  });
  stop.addEventListener("click", () => post("/api/clients/stop").catch((err) => notify(err.message)));
}

function webPanel(panel, name) {
  const out = el("div", { class: "result" });
  const root = el("button", { type: "button", text: "GET /", "data-play": "get-root" });
  const test = el("button", { type: "button", text: "GET /test", "data-play": "get-test" });
  const path = el("input", { type: "text", name: "path", maxLength: 200, placeholder: "any/path", "aria-label": "the path to GET" });
  const go = el("button", { type: "submit", text: "GET", "data-play": "get-path" });
  const typed = el("form", { class: "path-form" }, el("span", { class: "mono", text: "GET /" }), path, go);
  panel.append(el("h3", { text: "Fetch pages" }), el("form", {}, root, test), typed, out);
  const fetchOne = async (wanted) => {
    const result = await play(name, { path: wanted }, out, `GET ${wanted}…`);
    if (result) out.append(httpResponse(result));
  };
  root.addEventListener("click", () => fetchOne("/"));
  test.addEventListener("click", () => fetchOne("/test"));
  typed.addEventListener("submit", (event) => {
    event.preventDefault();
    fetchOne(`/${path.value.replace(/^\/+/, "")}`);
  });
}

// A swap form: with `nick`, its own nickname field (the A/B demo); without, the page's
// "you are" nickname as it is when the form is sent.
function swapForm(name, label, nick) {
  const nickInput = nick ? el("input", { type: "text", maxLength: 24, value: nick, "aria-label": `${label} nickname` }) : null;
  const text = el("input", { type: "text", maxLength: 200, placeholder: "a string to swap", name: "text" });
  const send = el("button", { type: "submit", text: "Send" });
  const out = el("div", { class: "result" });
  const form = el("form", {}, nickInput, text, send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    out.replaceChildren(el("p", { class: "waiting", text: "waiting for a partner…" }));
    const who = nickInput ? nickInput.value.trim() || "someone" : nickname();
    try {
      const result = await post(`/api/play/${name}`, { nickname: who, text: text.value });
      out.replaceChildren(
        result.partner
          ? el("p", { class: "answer right", text: `${result.partner} sent you: ${result.partner_text}` })
          : el("p", { class: "answer wrong", text: result.answer }),
        transcript(result),
      );
    } catch (err) {
      out.replaceChildren(el("p", { class: "answer wrong", text: err.message }));
    }
    send.disabled = false;
  });
  return el("div", { "data-pane": label }, el("strong", { text: label }), form, out);
}

function swapPanel(panel, name) {
  const single = swapForm(name, "you", null);
  const panes = el("div", { class: "swap-panes", hidden: true }, swapForm(name, "A", "Alice"), swapForm(name, "B", "Bob"));
  const toggle = el("button", { type: "button", text: "Two-pane demo (A/B)", "aria-pressed": "false" });
  toggle.addEventListener("click", () => {
    const twoPanes = panes.hidden; // showing the panes now
    panes.hidden = !twoPanes;
    single.hidden = twoPanes;
    toggle.setAttribute("aria-pressed", String(twoPanes));
    toggle.textContent = twoPanes ? "Back to one form" : "Two-pane demo (A/B)";
  });
  const history = el("ul", { class: "history", "data-field": "history" });
  panel.append(el("h3", { text: "Swap strings" }), toggle, single, panes, el("h3", { text: "Swaps so far" }), history);
}

function guessPanel(panel, name, kind) {
  const input = el("input", kind === "number"
    ? { type: "text", inputMode: "numeric", maxLength: 12, placeholder: "a number 1–100", name: "guess" }
    : { type: "text", maxLength: 40, placeholder: "a word", name: "word" });
  const send = el("button", { type: "submit", text: "Guess" });
  const out = el("div", { class: "result" });
  const history = el("ul", { class: "history", "data-field": "history" });
  const form = el("form", {}, input, send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    const data = kind === "number" ? { guess: input.value } : { word: input.value };
    const result = await play(name, data, out, "guessing…");
    send.disabled = false;
    if (!result) return;
    if (kind === "number") {
      const css = result.answer === "right" ? "right" : result.answer === "secret found" ? "found" : "wrong";
      out.append(el("p", { class: `answer ${css}`, text: result.answer }));
    } else {
      out.append(el("p", { class: `answer ${result.outcome === "wrong" ? "wrong" : "right"}`, text: result.outcome }));
      out.append(httpResponse(result));
    }
  });
  panel.append(
    el("h3", { text: kind === "number" ? "Guess the secret number" : "Guess the word" }),
    form, out, el("h3", { text: "Everyone's guesses" }), history,
  );
}

function showBanner(event, ctx) {
  const banner = document.getElementById("banner");
  const title = ctx.store.servers.get(event.server)?.info.title || event.server;
  const close = el("button", { type: "button", class: "quiet", text: "×", "aria-label": "close" });
  close.addEventListener("click", () => { banner.hidden = true; });
  banner.replaceChildren(el("span", { text: `${event.who} found the secret of ${title}!` }), close);
  banner.dataset.server = event.server;
  banner.hidden = false;
}

export function setupGames(ctx) {
  nicknameBox(ctx.isInstructor);
  for (const panel of document.querySelectorAll(".client-panel")) {
    const name = panel.closest(".card").dataset.server;
    const kind = panel.dataset.client;
    if (kind === "clock") clockPanel(panel, name, ctx);
    else if (kind === "fork") { clockPanel(panel, name, ctx); forkClientsPanel(panel, name, ctx); }
    else if (kind === "web") webPanel(panel, name);
    else if (kind === "swap") swapPanel(panel, name);
    else if (kind === "number" || kind === "word") guessPanel(panel, name, kind);
  }
  return {
    onStart(name) {
      // A (re)start begins afresh: the last answer and a finder's banner of that game go.
      const panel = document.querySelector(`#card-${CSS.escape(name)} .client-panel`);
      if (panel) for (const out of panel.querySelectorAll(".result")) out.replaceChildren();
      const banner = document.getElementById("banner");
      if (banner.dataset.server === name) banner.hidden = true;
    },
    onPlay(event) {
      if (event.found) showBanner(event, ctx);
      const list = document.querySelector(`#card-${CSS.escape(event.server)} [data-field="history"]`);
      if (!list) return;
      list.prepend(el("li", {}, el("time", { text: fmtTime(event.t) + " " }), el("b", { text: event.who }), ` ${event.summary}`));
      while (list.childNodes.length > HISTORY_ITEMS) list.lastChild.remove();
    },
    onClients(clients) {
      for (const box of document.querySelectorAll('[data-field="groups"]')) {
        const groups = clients.groups || [];
        box.replaceChildren(...groups.map((g) => el("div", { text: `batch ${g.id}: ${g.alive} of ${g.count} clients running (PIDs ${g.pids.join(", ")})` })));
        if (!groups.length) box.textContent = "no fork clients running";
      }
    },
    onSnapshot(snapshot) {
      this.onClients({ groups: snapshot.clients || [] });
    },
  };
}
