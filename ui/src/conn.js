// conn.js — the dashboard's one WebSocket to /ws (docs/http.md, "WebSocket").
//
// Keeps the connection up by itself: on a close or an error it reconnects with
// exponential backoff (0.5 s doubling to 5 s, with jitter), and it resubscribes
// everything on every new connection. A connection that brings nothing for
// `staleMs` is treated as dead (a half-open TCP connection would otherwise look
// live forever). The state it reports is one of:
//   "connecting"   the first attempt, nothing received yet
//   "live"         open, and messages arrive
//   "reconnecting" lost; retrying (the page keeps showing the last data)
//   "offline"      retrying for longer than `offlineAfterMs` (or the browser is offline)
//
// Subscriptions are matched to the server's answers in order: the server answers
// every subscribe, in the order sent, with a snapshot (which carries the id of
// the new subscription) or with an error without a subscription id.

export class Conn {
  constructor(url, { onState, staleMs = 10000, offlineAfterMs = 30000 } = {}) {
    this.url = url;
    this.onState = onState || (() => {});
    this.staleMs = staleMs;
    this.offlineAfterMs = offlineAfterMs;
    this.subs = new Set(); // every wanted subscription: {source, params, onData, onError, id}
    this.byId = new Map(); // server id -> sub, for this connection
    this.pending = []; // subs sent, not yet answered, in order
    this.ws = null;
    this.state = null;
    this.attempt = 0;
    this.lostAt = null; // when the last good connection ended
    this.retryAt = null; // when the next attempt is due (for "retrying in 3 s")
    this.lastMessageAt = 0;
    this.everLive = false;
    this.timer = null;
    this.watchdog = setInterval(() => this.checkStale(), 1000);
    window.addEventListener('online', () => this.retryNow());
    window.addEventListener('offline', () => this.setState('offline'));
    this.open();
  }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.onState(s, this);
  }

  open() {
    clearTimeout(this.timer);
    this.retryAt = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.lost();
      return;
    }
    this.ws = ws;
    this.byId.clear();
    this.pending = [];
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      for (const sub of this.subs) this.send(sub);
    };
    ws.onmessage = (ev) => {
      this.lastMessageAt = Date.now();
      this.attempt = 0;
      this.lostAt = null;
      this.everLive = true;
      this.setState('live');
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.dispatch(msg);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.lost();
    };
    ws.onerror = () => {}; // onclose follows
  }

  lost() {
    this.ws = null;
    if (this.lostAt === null) this.lostAt = Date.now();
    const base = Math.min(5000, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt++;
    this.retryAt = Date.now() + delay;
    const long = Date.now() - this.lostAt > this.offlineAfterMs || navigator.onLine === false;
    this.setState(long ? 'offline' : this.everLive ? 'reconnecting' : 'connecting');
    this.onState(this.state, this); // refresh "retrying in"
    this.timer = setTimeout(() => this.open(), delay);
  }

  retryNow() {
    if (this.ws) return;
    this.open();
  }

  checkStale() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && Date.now() - this.lastMessageAt > this.staleMs) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
      this.lost();
    } else if (!this.ws) {
      this.onState(this.state, this); // countdown
    }
  }

  dispatch(msg) {
    if (msg.type === 'snapshot') {
      const sub = this.pending.shift();
      if (!sub || !this.subs.has(sub)) {
        // unsubscribed meanwhile: drop it at the server too
        this.raw({ unsubscribe: msg.subscription });
        return;
      }
      sub.id = msg.subscription;
      this.byId.set(sub.id, sub);
      sub.onData(msg.data, true);
    } else if (msg.type === 'update') {
      const sub = this.byId.get(msg.subscription);
      if (sub) sub.onData(msg.data, false);
    } else if (msg.type === 'error') {
      if (msg.subscription) {
        const sub = this.byId.get(msg.subscription);
        if (sub && sub.onError) sub.onError(msg.message);
      } else {
        const sub = this.pending.shift();
        if (sub && sub.onError) sub.onError(msg.message);
      }
    }
  }

  raw(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  send(sub) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    sub.id = null;
    this.pending.push(sub);
    this.raw({ subscribe: sub.source, ...sub.params });
  }

  // Subscribes now (if connected) and on every reconnect. Returns a handle for
  // unsubscribe().
  subscribe(source, params, onData, onError) {
    const sub = { source, params, onData, onError, id: null };
    this.subs.add(sub);
    this.send(sub);
    return sub;
  }

  unsubscribe(sub) {
    this.subs.delete(sub);
    if (sub.id) {
      this.byId.delete(sub.id);
      this.raw({ unsubscribe: sub.id });
    }
  }
}
