// Talking to the JSON API: every change (POST, PATCH, DELETE) carries the page's CSRF
// token; errors become exceptions whose message is the server's sentence.
const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const csrf = csrfMeta ? csrfMeta.content : "";

export function post(url, body) {
  return request("POST", url, body);
}

export function getJSON(url) {
  return request("GET", url);
}

export async function request(method, url, body) {
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: method === "GET" ? {} : { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: method === "GET" ? undefined : JSON.stringify(body ?? {}),
    });
  } catch (err) {
    throw new Error("the dashboard cannot be reached");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `the request failed (${response.status})`);
  }
  return data;
}

const NOTICE_MS = 8000;
const timers = new WeakMap();

// A notice pinned where it was caused: in the card (or section) that holds `where`, over
// its top edge so nothing below moves; the page-wide box at the top otherwise.
export function notify(message, kind = "error", where = null) {
  const holder = where && where.closest ? where.closest(".card, .comparisons, .compare-view, .lesson-bar") : null;
  const box = (holder && holder.querySelector(":scope > .card-notice")) || document.getElementById("notice");
  if (!box) return;
  box.textContent = message;
  box.classList.toggle("notice-info", kind !== "error");
  box.hidden = false;
  clearTimeout(timers.get(box));
  timers.set(box, setTimeout(() => { box.hidden = true; }, NOTICE_MS));
}
