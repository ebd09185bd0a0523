// Where a replay reads its recording: the dashboard's API, or the export inlined in a
// saved page. Both answer the same three questions:
//   stateAt(t)              {snapshot: {t, event_id, state} | null, events}: the newest
//                           snapshot at or before t and the events after it up to t
//   eventsAfter(id, limit)  the next events by id
//   timeline()              every timeline entry (kind "event") of the recording
import { getJSON } from "./api.js";

const PAGE = 5000;

export function onlineSource(id) {
  const base = `/api/recordings/${encodeURIComponent(id)}`;
  async function eventsAfter(after, limit, kind) {
    const query = new URLSearchParams({ after: String(after), limit: String(limit) });
    if (kind) query.set("kind", kind);
    return (await getJSON(`${base}/events?${query}`)).events;
  }
  return {
    stateAt: (t) => getJSON(`${base}/state?t=${encodeURIComponent(t)}`),
    eventsAfter: (after, limit) => eventsAfter(after, limit),
    async timeline() {
      const all = [];
      for (;;) {
        const page = await eventsAfter(all.length ? all[all.length - 1].id : 0, PAGE, "event");
        all.push(...page);
        if (page.length < PAGE) return all;
      }
    },
  };
}

// The export: {recording, events (by id), snapshots (by time)}; the same rule as the
// dashboard's state_at, on arrays.
export function offlineSource(doc) {
  const events = doc.events;
  const snapshots = doc.snapshots;
  const firstAfter = (list, key, value) => {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (list[mid][key] <= value) low = mid + 1;
      else high = mid;
    }
    return low; // the first index whose key is above value
  };
  return {
    async stateAt(t) {
      const index = firstAfter(snapshots, "t", t) - 1;
      const snapshot = index >= 0 ? snapshots[index] : null;
      const from = snapshot ? firstAfter(events, "id", snapshot.event_id) : 0;
      const found = [];
      for (let i = from; i < events.length && events[i].t <= t; i += 1) {
        if (!snapshot || events[i].t >= snapshot.t) found.push(events[i]);
      }
      return { t, snapshot, events: found };
    },
    async eventsAfter(after, limit) {
      const from = firstAfter(events, "id", after);
      return events.slice(from, from + limit);
    },
    async timeline() {
      return events.filter((event) => event.kind === "event");
    },
  };
}
