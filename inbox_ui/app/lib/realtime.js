// The live feed of inbox events: Server-Sent Events first, long polling when the stream fails.
//
// Both transports read the same numbered feed, so switching never loses or repeats anything: the
// feed starts at the `last_event_id` the conversation list was loaded at, every event with an id
// at or below the last one handled is dropped, and each transport resumes after that id.
//
// * SSE (`/api/events?last_event_id=N`): the browser reconnects by itself and sends
//   Last-Event-ID. Two errors without a successful open in between (or no open within
//   OPEN_TIMEOUT_MS) mean the stream does not work here (a proxy buffering it, a blocked route):
//   switch to polling.
// * Polling (`/api/events/poll?after=N&timeout=25`): one request at a time, backing off on errors.
//   Every PROBE_EVERY_MS it tries SSE again in the background and switches back once it opens.

import { api, ApiError } from "./api.js";

const OPEN_TIMEOUT_MS = 8000;
const POLL_TIMEOUT_S = 25;
const PROBE_EVERY_MS = 120000;
// SSE delivers a named event only to a listener for that name (onmessage gets unnamed ones only),
// so every type the inbox handles must be listed here.
const EVENT_TYPES = ["message_created", "message_updated", "conversation_updated", "ticket_created", "ticket_updated"];

export class EventFeed {
  /**
   * @param {{onEvent: (ev: object) => void, onStatus: (status: string) => void}} handlers
   * status is one of "connecting", "live" (SSE), "polling", "offline" (retrying).
   */
  constructor({ onEvent, onStatus }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.lastId = 0;
    this.status = "";
    this.es = null;
    this.stopped = true;
    this.polling = false;
    this.pollAbort = null;
    this.probe = null;
    this.lastProbe = 0;
    this.sseErrors = 0;
    this.openTimer = null;
  }

  start(lastEventId) {
    this.stop();
    this.stopped = false;
    this.lastId = Math.max(this.lastId, Number(lastEventId) || 0);
    this.openSse();
  }

  stop() {
    this.stopped = true;
    this.closeSse();
    this.closeProbe();
    this.polling = false;
    if (this.pollAbort) this.pollAbort.abort();
    this.pollAbort = null;
  }

  get mode() {
    return this.polling ? "poll" : "sse";
  }

  setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.onStatus(status);
    }
  }

  handle(ev) {
    if (!ev || typeof ev.id !== "number" || ev.id <= this.lastId) return;
    this.lastId = ev.id;
    try {
      this.onEvent(ev);
    } catch (err) {
      console.error("inbox: handling event", ev.id, "failed", err);
    }
  }

  listen(es, onData) {
    const fn = (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      onData(data);
    };
    for (const type of EVENT_TYPES) es.addEventListener(type, fn);
    es.onmessage = fn; // frames without an event name
  }

  // -- SSE --------------------------------------------------------------------------------------
  openSse() {
    this.closeSse();
    this.sseErrors = 0;
    this.setStatus("connecting");
    const es = new EventSource(`/api/events?last_event_id=${this.lastId}`);
    this.es = es;
    this.listen(es, (data) => this.handle(data));
    es.onopen = () => {
      this.sseErrors = 0;
      clearTimeout(this.openTimer);
      this.setStatus("live");
    };
    es.onerror = () => {
      if (this.es !== es) return;
      this.sseErrors += 1;
      if (es.readyState === EventSource.CLOSED || this.sseErrors >= 2) {
        this.fallBackToPolling("stream failed");
      } else {
        this.setStatus("connecting");
      }
    };
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => {
      if (this.es === es && es.readyState !== EventSource.OPEN) this.fallBackToPolling("stream did not open");
    }, OPEN_TIMEOUT_MS);
  }

  closeSse() {
    clearTimeout(this.openTimer);
    if (this.es) {
      this.es.onerror = null;
      this.es.close();
      this.es = null;
    }
  }

  fallBackToPolling(why) {
    if (this.stopped) return;
    console.info(`inbox: live stream unavailable (${why}); switching to polling`);
    this.closeSse();
    this.lastProbe = Date.now();
    if (!this.polling) this.pollLoop();
  }

  // -- long polling -----------------------------------------------------------------------------
  async pollLoop() {
    this.polling = true;
    this.setStatus("polling");
    let backoff = 1000;
    while (this.polling && !this.stopped) {
      if (Date.now() - this.lastProbe > PROBE_EVERY_MS) this.probeSse();
      const abort = new AbortController();
      this.pollAbort = abort;
      try {
        const res = await api.poll(this.lastId, POLL_TIMEOUT_S, abort.signal);
        if (!this.polling) break; // the SSE probe took over while this request was open
        for (const ev of res.events || []) this.handle(ev);
        if (typeof res.last_event_id === "number" && res.last_event_id > this.lastId && !(res.events || []).length) {
          this.lastId = res.last_event_id;
        }
        this.setStatus("polling");
        backoff = 1000;
      } catch (err) {
        if (err && err.name === "AbortError") break;
        if (err instanceof ApiError && err.status === 401) break; // the app logs out
        this.setStatus("offline");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 15000);
      } finally {
        if (this.pollAbort === abort) this.pollAbort = null;
      }
    }
  }

  /** While polling, try the stream again; if it opens, it takes over. */
  probeSse() {
    this.lastProbe = Date.now();
    if (this.probe) return;
    const es = new EventSource(`/api/events?last_event_id=${this.lastId}`);
    this.probe = es;
    const buffered = [];
    let sink = (data) => buffered.push(data);
    this.listen(es, (data) => sink(data));
    es.onopen = () => {
      if (this.probe !== es || this.stopped) return;
      // Promote the probe: stop polling and hand over to SSE, with what it already received.
      this.probe = null;
      this.polling = false;
      if (this.pollAbort) this.pollAbort.abort();
      this.closeSse();
      this.es = es;
      this.sseErrors = 0;
      sink = (data) => this.handle(data);
      for (const data of buffered.splice(0)) this.handle(data);
      es.onopen = () => {
        this.sseErrors = 0;
        this.setStatus("live");
      };
      es.onerror = () => {
        if (this.es !== es) return;
        this.sseErrors += 1;
        if (es.readyState === EventSource.CLOSED || this.sseErrors >= 2) this.fallBackToPolling("stream failed again");
        else this.setStatus("connecting");
      };
      this.setStatus("live");
    };
    es.onerror = () => {
      if (this.probe === es) this.closeProbe();
    };
  }

  closeProbe() {
    if (this.probe) {
      this.probe.close();
      this.probe = null;
    }
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
