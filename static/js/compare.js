// The side-by-side comparisons: a list to run them from (one click each, the instructor)
// and the view of a run — per side, the live per-client chart, the processes and threads
// it had, and what differs (the state after, the transcript, the CPU each process used).
// Runs come as `compare` events, each with the whole run, measured on the server.
import { notify, post } from "./api.js";
import { chartScale, drawChart, seconds } from "./chart.js";
import { el, svg } from "./dom.js";
import { drawSide } from "./side_drawing.js";

const TICK_MS = 150;

function loadWords(definition, run) {
  const clients = run ? run.clients : definition.clients;
  const seconds = run ? run.seconds : definition.seconds;
  const together = definition.stagger ? `one every ${definition.stagger} s` : "at once";
  const work = definition.takes_seconds ? ` · each answer takes ${seconds} s` : "";
  return `${clients} client${clients === 1 ? "" : "s"} ${together}${work} · the same on each side, one side after another`;
}

function stateWords(run) {
  if (!run) return "not run yet";
  if (run.state === "running") {
    const index = run.sides.findIndex((s) => !["done", "failed", "skipped"].includes(s.state));
    return `running: ${run.sides[index]?.label ?? ""} (side ${index + 1} of ${run.sides.length})`;
  }
  return run.state === "done" ? "done: measured, not assumed" : `failed: ${run.error}`;
}

function totalWords(side) {
  if (side.state === "waiting" || side.state === "starting") return side.state === "starting" ? "starting the server…" : "waiting for its turn";
  if (side.state === "skipped") return "skipped";
  const done = side.clients.filter((c) => c.answered !== null);
  const failed = done.filter((c) => c.outcome !== "answered");
  const head = `${side.answered} of ${side.clients.length} answered`;
  const time = side.total !== null ? ` · all done after ${seconds(side.total)}` : "";
  const why = failed.length ? ` · ${failed.length} ${failed[0].outcome}` : "";
  return side.state === "asking" ? `${head}…` : head + time + why;
}

function afterWords(after) {
  if (!after) return "";
  if (after.state === "RUNNING") return "after: still running, still serving";
  if (after.state === "EXITED" && after.exit_code === 0) return "after: the program ended by itself (exit code 0)";
  return `after: ${after.state.toLowerCase()}${after.exit_code !== null ? ` (exit code ${after.exit_code})` : ""}`;
}

function extra(definition, side) {
  const box = el("div", { class: "side-extra" });
  if (definition.shows === "after") box.append(el("p", { class: "after", text: afterWords(side.after) }));
  if (definition.shows === "transcript") {
    box.append(el("p", { class: "address", text: side.address ? `address: ${side.address}` : "" }));
    const list = el("ol", { class: "transcript" });
    for (const step of side.transcript || []) {
      list.append(el("li", { class: step.dir }, el("span", { text: step.text }), el("span", { class: "meta", text: ` ${step.ms} ms` })));
    }
    box.append(list);
  }
  if (definition.shows === "students" && side.state === "done") {
    const children = Math.max(0, side.peak_processes - 1);
    box.append(el("p", { class: "students-figures", text: `children at most: ${children} · zombies left: ${side.zombies} · errors: ${side.errors}` }));
  }
  if (definition.shows === "cpu" && side.cores) {
    const busy = side.others_busy ? `; other programs kept ${side.others_busy} of them busy meanwhile` : "";
    box.append(el("p", { class: "machine", text: `this machine: ${side.cores} cores${busy}` }));
  }
  return box;
}

export function setupCompare(ctx) {
  const definitions = new Map(JSON.parse(document.getElementById("comparisons-data").textContent).map((d) => [d.name, d]));
  const runs = new Map(); // name -> the latest run of it
  const section = document.getElementById("comparisons");
  const panelView = section.querySelector(".compare-view");
  const views = new Map(); // container -> name shown there
  let timer = null;

  function elapsedOf(side) {
    return side.state === "asking" && side.t0 ? Math.max(0, ctx.clock.now() - side.t0) : null;
  }

  async function run(name, form) {
    const body = {};
    if (form) {
      const clients = form.querySelector("input[name=clients]");
      const seconds = form.querySelector("input[name=seconds]");
      if (clients && clients.value) body.clients = Number(clients.value);
      if (seconds && seconds.value) body.seconds = Number(seconds.value);
      const picked = [...form.querySelectorAll("select[name=server]")].map((select) => select.value);
      if (picked.length) body.servers = picked;
    }
    try {
      await post(`/api/comparisons/${encodeURIComponent(name)}/run`, body);
    } catch (err) {
      notify(err.message, "error", form || section);
    }
  }

  function loadForm(definition) {
    const form = el("form", { class: "compare-load", "data-compare": definition.name });
    if (ctx.isInstructor) {
      // Two students' servers side by side: the instructor picks which.
      definition.sides.forEach((side, index) => {
        if (!definition.choices.length) return;
        const select = el("select", { name: "server", "aria-label": `side ${index + 1}` });
        for (const choice of definition.choices) {
          select.append(el("option", { value: choice.name, text: `${choice.title} (${choice.exercise || "no exercise"})`, selected: choice.name === side.server }));
        }
        form.append(index ? " against " : "", select, " ");
      });
      form.append(el("label", {}, "clients ", el("input", { type: "number", name: "clients", min: 1, max: 8, value: definition.clients })));
      if (definition.takes_seconds) {
        form.append(el("label", {}, "seconds ", el("input", { type: "number", name: "seconds", min: 0, max: 5, step: "any", value: definition.seconds })));
      }
      form.append(el("button", { type: "submit", class: "primary", text: "Run", "data-run": definition.name }));
    } else {
      form.append(el("button", { type: "submit", text: "Show", "data-show": definition.name }));
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (ctx.isInstructor) run(definition.name, form);
      else show(definition.name, panelView);
    });
    return form;
  }

  function renderList() {
    const list = section.querySelector(".compare-list");
    list.replaceChildren(...[...definitions.values()].map((d) => el(
      "div", { class: "compare-row", "data-compare": d.name },
      el("div", {}, el("strong", { text: d.title }), el("p", { class: "desc", text: d.question })),
      loadForm(d),
    )));
  }

  // The view's frame is built once per comparison shown there; updates fill it in, so an
  // instructor typing in its form is not interrupted by the run's events.
  function renderView(container, name) {
    const definition = definitions.get(name);
    const latest = runs.get(name) || null;
    const shownSides = latest ? latest.sides : definition.sides; // the students comparison: the two picked
    const keys = shownSides.map((side) => side.key).join(" ");
    if (container.dataset.compare !== name || container.dataset.sides !== keys) {
      const sides = el("div", { class: "sides", style: `--sides: ${shownSides.length}` });
      for (const side of shownSides) {
        sides.append(el("div", { class: "side", "data-side": side.key },
          el("h4", { text: side.label }),
          el("p", { class: "says", text: side.says }),
          svg("svg", { class: "chart", role: "img", "aria-label": `when each client of ${side.label} asked and got its answer` }),
          el("p", { class: "total" }),
          svg("svg", { class: "side-drawing", role: "img", "aria-label": `the processes and threads of ${side.label}` }),
          el("div", { class: "side-extra" })));
      }
      const head = el("div", { class: "compare-head" },
        el("div", {}, el("h3", { text: latest ? latest.title : definition.title }), el("p", { class: "question", text: definition.question }),
          el("p", { class: "load" })),
        ctx.isInstructor ? loadForm(definition) : "");
      const notice = el("p", { class: "card-notice", role: "status", hidden: true });
      container.replaceChildren(notice, head, sides);
      container.dataset.compare = name;
      container.dataset.sides = keys;
    }
    container.querySelector(".load").textContent = `${loadWords(definition, latest)} — ${stateWords(latest)}`;
    container.dataset.state = latest ? latest.state : "none";
    for (const side of latest ? latest.sides : []) {
      const box = container.querySelector(`[data-side="${CSS.escape(side.key)}"]`);
      if (!box) continue;
      box.className = `side side-${side.state}`;
      box.querySelector(".total").textContent = totalWords(side);
      box.querySelector(".side-extra").replaceWith(extra(definition, side));
    }
    drawCharts(container, name);
  }

  function drawCharts(container, name) {
    const latest = runs.get(name);
    if (!latest) return;
    const scale = chartScale(latest, elapsedOf);
    const definition = definitions.get(name);
    latest.sides.forEach((side) => {
      const box = container.querySelector(`[data-side="${CSS.escape(side.key)}"]`);
      if (!box) return;
      drawChart(box.querySelector("svg.chart"), side, scale, elapsedOf(side));
      drawSide(box.querySelector("svg.side-drawing"), side, definition.shows === "cpu");
    });
  }

  function show(name, container) {
    views.set(container, name);
    container.hidden = false;
    renderView(container, name);
  }

  function tick() {
    const running = [...runs.values()].some((r) => r.state === "running");
    for (const [container, name] of views) if (runs.get(name)?.state === "running") drawCharts(container, name);
    if (!running) {
      clearInterval(timer);
      timer = null;
    }
  }

  renderList();

  return {
    titleOf: (name) => runs.get(name)?.title || definitions.get(name)?.title || name,
    // The stage's view of comparison `name` in `container` (null: the stage moved on).
    showOnStage(name, container) {
      for (const key of [...views.keys()]) if (key.classList.contains("on-stage")) views.delete(key);
      if (name === null) return;
      const view = el("div", { class: "compare-view on-stage" });
      container.append(view);
      show(name, view);
    },
    onCompare(latest) {
      runs.set(latest.name, latest);
      // every form of it shows the load it runs with (unless someone is typing there)
      for (const input of document.querySelectorAll(`form[data-compare="${CSS.escape(latest.name)}"] input`)) {
        if (input !== document.activeElement) input.value = String(latest[input.name]);
      }
      for (const form of document.querySelectorAll(`form[data-compare="${CSS.escape(latest.name)}"]`)) {
        form.querySelectorAll("select[name=server]").forEach((select, index) => {
          if (select !== document.activeElement && latest.sides[index]) select.value = latest.sides[index].server;
        });
      }
      for (const [container, name] of views) if (name === latest.name) renderView(container, name);
      if (latest.state === "running" && timer === null) timer = setInterval(tick, TICK_MS);
    },
    onSnapshot(snapshot) {
      if (snapshot.compare) this.onCompare(snapshot.compare);
    },
    redrawAll() {
      for (const [container, name] of views) drawCharts(container, name);
    },
  };
}
