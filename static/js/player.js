// Playing a recording back: a position in the recording's time that runs at 1×, 4× or 16×
// while playing, the recorded events applied as the position passes them (read ahead in
// pages), and seeking: the newest snapshot before a time plus the events up to it.
const TICK_MS = 20;
const PAGE = 2000;
const READ_AHEAD = 500;

export class Player {
  // source: recording_source.js; restore(state, t) shows a seek's state at once;
  // apply(event) shows one event; changed() after every move of the position;
  // failed(error) when the recording cannot be read (playing stops).
  constructor({ source, start, end, restore, apply, changed, failed }) {
    Object.assign(this, { source, start, end, restore, apply, changed, failed });
    this.speed = 1;
    this.playing = false;
    this.position = start; // the position when last anchored
    this.anchor = 0; // performance.now() at that moment
    this.buffer = [];
    this.next = 0; // the first event of the buffer not yet applied
    this.readUpTo = 0; // the id of the last event read
    this.exhausted = false;
    this.reading = null;
    this.generation = 0; // a seek starts a new one; older answers are dropped
    this.seeking = false;
    this.timer = null;
  }

  now() {
    if (!this.playing) return this.position;
    const moved = ((performance.now() - this.anchor) / 1000) * this.speed;
    return Math.min(this.end, this.position + moved);
  }

  async seek(t) {
    const target = Math.max(this.start, Math.min(this.end, t));
    const generation = ++this.generation;
    this.seeking = true;
    try {
      const state = await this.source.stateAt(target);
      if (generation !== this.generation) return;
      this.position = target;
      this.anchor = performance.now();
      this.restore(state, target);
      const last = state.events.length ? state.events[state.events.length - 1].id : 0;
      this.readUpTo = Math.max(last, state.snapshot ? state.snapshot.event_id : 0);
      this.buffer = [];
      this.next = 0;
      this.exhausted = false;
      this.reading = null;
    } finally {
      if (generation === this.generation) this.seeking = false;
    }
    this.changed();
    await this.readAhead();
  }

  readAhead() {
    if (this.reading || this.exhausted) return this.reading;
    const generation = this.generation;
    this.reading = this.source.eventsAfter(this.readUpTo, PAGE).then((events) => {
      if (generation !== this.generation) return;
      this.buffer = this.buffer.slice(this.next).concat(events);
      this.next = 0;
      if (events.length) this.readUpTo = events[events.length - 1].id;
      if (events.length < PAGE) this.exhausted = true;
      this.reading = null;
    }, (error) => {
      if (generation === this.generation) this.reading = null;
      throw error;
    });
    return this.reading;
  }

  tick() {
    if (this.seeking) return;
    const t = this.now();
    while (this.next < this.buffer.length && this.buffer[this.next].t <= t) {
      this.apply(this.buffer[this.next]);
      this.next += 1;
    }
    if (this.buffer.length - this.next < READ_AHEAD) {
      this.readAhead()?.catch((error) => {
        this.pause();
        this.failed(error);
      });
    }
    const unread = this.reading !== null || (!this.exhausted && this.next >= this.buffer.length);
    if (t >= this.end && !unread) this.pause();
    this.changed();
  }

  async play() {
    if (this.playing) return;
    if (this.position >= this.end) await this.seek(this.start);
    this.position = this.now();
    this.anchor = performance.now();
    this.playing = true;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.changed();
  }

  pause() {
    if (!this.playing) return;
    this.position = this.now();
    this.playing = false;
    clearInterval(this.timer);
    this.timer = null;
    this.changed();
  }

  setSpeed(speed) {
    this.position = this.now();
    this.anchor = performance.now();
    this.speed = speed;
    this.changed();
  }
}
