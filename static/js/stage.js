// The stage: the one server (or comparison, or recording) the instructor puts in front of the room,
// filling the first screen. Viewers follow it unless they step off to browse; the other
// cards come running first, in the lecture's order, and stopped ones fold to one line
// (on a phone every card but the staged one folds); a tap on a folded card opens it.
import { card, LIVE_STATES } from "./render.js";

const FOLLOW_KEY = "forkwatch-follow-stage";
const PHONE = window.matchMedia("(max-width: 700px)");

export function setupStage(ctx) {
  const section = document.getElementById("stage");
  const body = section.querySelector(".stage-body");
  const title = section.querySelector('[data-field="stage-title"]');
  const follow = document.getElementById("follow");
  const followBack = document.getElementById("follow-back");
  const cards = document.querySelector(".cards");
  const timeline = document.getElementById("timeline-block");
  const timelineHome = timeline.parentElement;
  const order = [...cards.querySelectorAll(".card")].map((node) => node.dataset.server);
  const opened = new Set(); // cards a viewer unfolded by hand
  let stage = { kind: null, name: null };
  let shown = { kind: null, name: null };
  let following = ctx.isInstructor || localStorage.getItem(FOLLOW_KEY) !== "off";

  function titleOf(kind, name) {
    if (kind === "server") return ctx.store.servers.get(name)?.info.title || name;
    if (kind === "compare") return ctx.compare.titleOf(name);
    return `recording ${name}`;
  }

  function unstage() {
    if (shown.kind === "server") {
      const node = card(shown.name);
      if (node) {
        node.classList.remove("staged");
        cards.append(node);
        ctx.redraw(shown.name);
      }
    } else if (shown.kind === "compare") {
      ctx.compare.showOnStage(null, body);
    }
    if (timeline.parentElement !== timelineHome) timelineHome.append(timeline);
    body.replaceChildren();
    shown = { kind: null, name: null };
  }

  function show() {
    const want = following ? stage : { kind: null, name: null };
    if (want.kind !== shown.kind || want.name !== shown.name) {
      unstage();
      if (want.kind === "server" && card(want.name)) {
        const node = card(want.name);
        node.classList.add("staged");
        node.classList.remove("folded");
        node.style.order = "";
        const details = node.querySelector("details.console-block");
        if (details) details.open = true;
        body.append(node, timeline);
        ctx.redraw(want.name);
        shown = { ...want };
      } else if (want.kind === "compare") {
        ctx.compare.showOnStage(want.name, body);
        shown = { ...want };
      } else if (want.kind === "recording") {
        // The replay page itself, with its player: each laptop plays it at its own pace.
        const frame = document.createElement("iframe");
        frame.className = "stage-recording";
        frame.src = `/recordings/${encodeURIComponent(want.name)}?on_stage=1`;
        frame.title = `recording ${want.name}`;
        body.append(frame);
        shown = { ...want };
      }
      if (shown.kind) window.scrollTo({ top: 0 }); // what is new on stage is seen at once
    }
    section.hidden = !shown.kind;
    fit();
    title.textContent = shown.kind ? titleOf(shown.kind, shown.name) : "";
    document.body.classList.toggle("has-stage", Boolean(shown.kind));
    follow.hidden = ctx.isInstructor || !shown.kind;
    follow.textContent = "Step off to browse";
    followBack.hidden = ctx.isInstructor || following || !stage.kind;
    followBack.textContent = stage.kind ? `Follow the stage: ${titleOf(stage.kind, stage.name)}` : "";
    arrange();
  }

  // On a projector the stage is the rest of the first screen: no more, no less.
  function fit() {
    section.style.height = shown.kind && !PHONE.matches ? `calc(100vh - ${section.offsetTop}px)` : "";
  }

  function setFollowing(value) {
    following = value;
    localStorage.setItem(FOLLOW_KEY, value ? "on" : "off");
    show();
  }

  // Running servers first (in the lecture's order), then the rest. Stopped ones fold; one
  // that ended by itself (EXITED, FATAL) stays open, for its exit code and last lines.
  function arrange() {
    order.forEach((name, index) => {
      const node = card(name);
      const server = ctx.store.servers.get(name);
      if (!node || !server || node.classList.contains("staged")) return;
      const state = server.info.state;
      const live = LIVE_STATES.has(state) || state === "BACKOFF";
      node.style.order = String(live ? index : order.length + index);
      node.classList.toggle("folded", !opened.has(name) && (state === "STOPPED" || PHONE.matches));
    });
  }

  function open(name) {
    opened.add(name);
    arrange();
  }

  follow.addEventListener("click", () => setFollowing(false));
  followBack.addEventListener("click", () => setFollowing(true));
  cards.addEventListener("click", (event) => {
    const head = event.target.closest(".card-head");
    if (!head || event.target.closest("button, a, input")) return;
    const node = head.closest(".card");
    if (!node.classList.contains("folded") && !opened.has(node.dataset.server)) return;
    if (opened.has(node.dataset.server)) opened.delete(node.dataset.server);
    else opened.add(node.dataset.server);
    arrange();
  });
  PHONE.addEventListener("change", arrange);
  document.querySelector(".games-nav")?.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-open]");
    if (!link) return;
    event.preventDefault();
    open(link.dataset.open);
    card(link.dataset.open)?.scrollIntoView({ block: "start" });
  });

  return {
    onStage(next) {
      stage = { kind: next.kind || null, name: next.name || null };
      show();
    },
    onSnapshot(snapshot) {
      if (snapshot.stage) stage = { kind: snapshot.stage.kind, name: snapshot.stage.name };
      show();
    },
    arrange,
    open,
    fit,
    toggleFollowing() {
      if (!ctx.isInstructor) setFollowing(!following);
    },
    get staged() {
      return stage;
    },
  };
}
