// Asking first without a modal dialog: the first click arms the button ("Click again to
// …"), a second click within a few seconds does it; otherwise it disarms by itself.
const ARMED_MS = 4000;

export function confirmed(button, question) {
  if (button.dataset.armed === "yes") {
    disarm(button);
    return true;
  }
  button.dataset.armed = "yes";
  button.dataset.label = button.textContent;
  button.textContent = question;
  button.classList.add("armed");
  button.armedTimer = setTimeout(() => disarm(button), ARMED_MS);
  return false;
}

function disarm(button) {
  clearTimeout(button.armedTimer);
  if (button.dataset.armed !== "yes") return;
  button.dataset.armed = "";
  button.textContent = button.dataset.label;
  button.classList.remove("armed");
}
