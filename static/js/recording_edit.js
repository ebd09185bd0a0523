// The instructor's changes to a recording, on the list and on the replay page: rename,
// and delete after a second click.
import { request } from "./api.js";

const ARMED_MS = 4000;

export function rename(id, title) {
  return request("PATCH", `/api/recordings/${encodeURIComponent(id)}`, { title });
}

export function remove(id) {
  return request("DELETE", `/api/recordings/${encodeURIComponent(id)}`);
}

// True on the second click within a few seconds; the first turns the button into a question.
export function confirmedTwice(button) {
  if (button.dataset.armed) return true;
  const text = button.textContent;
  button.dataset.armed = "1";
  button.textContent = "Really delete?";
  setTimeout(() => {
    delete button.dataset.armed;
    button.textContent = text;
  }, ARMED_MS);
  return false;
}
