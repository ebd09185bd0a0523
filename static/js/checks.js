// The exercises' checks on each card: every check's pass or fail line with its transcript
// as it ends (`check` events), and the run's summary; a page opened later gets the last
// run from the snapshot. Everything the server or the program sent goes in as text. The
// instructor can put a card with its checks on stage.
import { notify, post } from "./api.js";
import { el } from "./dom.js";
import { card } from "./render.js";

const MARKS = { true: "PASS", false: "FAIL", null: "NOT RUN" };

function step(s) {
  const text = s.dir === "sent" || s.dir === "received" ? `'${s.text}'` : s.text;
  return `${s.ms.toFixed(1).padStart(9)} ms  ${(s.who || "").padEnd(4)} ${s.dir.padEnd(9)} ${text}`;
}

function pendingItem(check) {
  return el(
    "li",
    { class: "check-result check-pending", "data-check": check.name },
    el("span", { class: "check-mark", text: "…" }),
    " ",
    el("code", { text: check.name }),
    " ",
    el("span", { class: "check-rule", text: check.rule }),
  );
}

function resultItem(result) {
  const kind = result.passed === true ? "pass" : result.passed === false ? "fail" : "skip";
  const item = el(
    "li",
    { class: `check-result check-${kind}`, "data-check": result.name },
    el("span", { class: "check-mark", text: MARKS[result.passed] }),
    " ",
    el("code", { text: result.name }),
    " ",
    el("span", { class: "check-rule", text: result.rule }),
  );
  if (result.fault) item.append(el("p", { class: "check-fault", text: result.fault }));
  if (result.transcript.length) {
    const more = result.steps_not_shown ? `\n… and ${result.steps_not_shown} more steps` : "";
    item.append(
      el(
        "details",
        { class: "check-transcript" },
        el("summary", { text: `transcript: ${result.transcript.length + (result.steps_not_shown || 0)} steps, ${result.ms} ms` }),
        el("pre", { text: result.transcript.map(step).join("\n") + more }),
      ),
    );
  }
  return item;
}

function summaryWords(run) {
  if (run.state === "running") {
    const done = run.passed + run.failed + run.not_run;
    return `checking… ${done} of ${run.total} done`;
  }
  if (run.error) return `could not be checked: ${run.error}`;
  const failed = run.failed ? `, ${run.failed} failed` : "";
  const peak = run.peak_processes;
  return `${run.passed} of ${run.total} passed${failed}; at most ${peak} process${peak === 1 ? "" : "es"} at once`;
}

export function setupChecks() {
  const runs = new Map(); // server -> the summary the card shows
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-check-stage]");
    if (!button) return;
    post("/api/stage", { kind: "server", name: button.dataset.checkStage }).catch((err) => notify(err.message, "error", button));
  });

  function parts(name) {
    const root = card(name);
    const block = root && root.querySelector(".check-block");
    return block && { root, block, list: block.querySelector(".check-results") };
  }

  function show(name) {
    const run = runs.get(name);
    const found = parts(name);
    if (!run || !found) return;
    const words = found.block.querySelector('[data-field="check-summary"]');
    words.textContent = summaryWords(run);
    found.block.dataset.state = run.state;
    const button = found.root.querySelector('button[data-command="check"]');
    if (button) button.disabled = run.state === "running";
  }

  function render(run) {
    runs.set(run.server, run);
    const found = parts(run.server);
    if (!found) return;
    const done = new Map(run.results.map((result) => [result.name, result]));
    found.list.replaceChildren(...run.checks.map((check) => (done.has(check.name) ? resultItem(done.get(check.name)) : pendingItem(check))));
    found.block.open = true; // a card that was checked shows its results (on stage too)
    show(run.server);
  }

  function onCheck(event) {
    if (event.kind === "begin") {
      render({ server: event.server, run: event.run, state: "running", passed: 0, failed: 0, not_run: 0, total: event.checks.length, checks: event.checks, results: [], error: null });
      return;
    }
    const run = runs.get(event.server);
    if (!run || run.run !== event.run) return; // a run this page did not see begin: the next snapshot has it
    const found = parts(event.server);
    if (event.kind === "result") {
      run.results.push(event.result);
      if (event.result.passed === true) run.passed += 1;
      else if (event.result.passed === false) run.failed += 1;
      else run.not_run += 1;
      const item = found && found.list.querySelector(`li[data-check="${CSS.escape(event.result.name)}"]`);
      if (item) item.replaceWith(resultItem(event.result));
    } else if (event.kind === "end") {
      Object.assign(run, event.summary);
    }
    show(event.server);
  }

  function onSnapshot(snapshot) {
    for (const run of Object.values(snapshot.checks || {})) render(run);
  }

  return { onCheck, onSnapshot };
}
