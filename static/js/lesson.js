// The lesson bar: "step 5 of 13", the step's title and its two lines of what to watch;
// the instructor's Back and Next (POST /api/lesson/back|next) walk the plan.
import { notify, post } from "./api.js";
import { el } from "./dom.js";

export function setupLesson(ctx) {
  const bar = document.getElementById("lesson");
  const plan = JSON.parse(document.getElementById("lesson-data").textContent);
  const where = bar.querySelector('[data-field="lesson-step"]');
  const title = bar.querySelector('[data-field="lesson-title"]');
  const watch = bar.querySelector('[data-field="lesson-watch"]');
  let state = plan;

  function render() {
    const begun = state.step > 0;
    where.textContent = begun ? `step ${state.step} of ${state.of}` : `${state.of} steps`;
    title.textContent = begun ? state.title : `${state.lesson}${ctx.isInstructor ? " — Next begins" : ""}`;
    watch.replaceChildren(...(state.watch || []).map((line) => el("li", { text: line })));
    for (const button of bar.querySelectorAll("[data-lesson]")) {
      button.disabled = button.dataset.lesson === "back" ? state.step <= 1 : state.step >= state.of;
    }
    bar.dataset.step = String(state.step);
  }

  async function move(direction) {
    try {
      state = { ...state, ...(await post(`/api/lesson/${direction}`)) };
      render();
    } catch (err) {
      notify(err.message);
    }
  }

  bar.addEventListener("click", (event) => {
    const button = event.target.closest("[data-lesson]");
    if (button && ctx.isInstructor) move(button.dataset.lesson);
  });
  render();

  return {
    onLesson(next) {
      state = { ...state, ...next };
      render();
    },
    onSnapshot(snapshot) {
      if (snapshot.lesson) this.onLesson(snapshot.lesson);
    },
    next: () => move("next"),
    back: () => move("back"),
  };
}
