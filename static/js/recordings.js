// The recordings list: the instructor renames a recording in its row, or deletes it.
import { notify } from "./api.js";
import { confirmedTwice, remove, rename } from "./recording_edit.js";

const table = document.getElementById("recordings");

if (table) {
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    const row = button && button.closest("tr[data-recording]");
    if (!row) return;
    if (button.dataset.rename !== undefined) {
      const form = row.querySelector("form.rename-form");
      form.hidden = false;
      form.querySelector("input[name=title]").focus();
    } else if (button.dataset.delete !== undefined && confirmedTwice(button)) {
      try {
        await remove(row.dataset.recording);
        row.remove();
        notify("the recording was deleted", "info");
      } catch (err) {
        notify(err.message);
      }
    }
  });
  table.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.rename-form");
    if (!form) return;
    event.preventDefault();
    const row = form.closest("tr[data-recording]");
    try {
      const meta = await rename(row.dataset.recording, form.querySelector("input[name=title]").value);
      row.querySelector('[data-field="title"]').textContent = meta.title;
      form.hidden = true;
    } catch (err) {
      notify(err.message);
    }
  });
}
