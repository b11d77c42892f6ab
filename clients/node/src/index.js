// @variantd/client — a client for variantd's decision port (MessagePack-RPC
// over TCP, docs/PROTOCOL.md) for Node.js page renderers.
//
// What it promises a page:
//  * one persistent connection per client object, opened on first use and
//    reopened transparently after a daemon restart or idle-timeout;
//  * a total time budget per call (default 50 ms): connecting, retrying and
//    waiting all count against it;
//  * one retry on a dropped connection (decide and explain are idempotent:
//    safe to send twice), never on an error reply or after the budget;
//  * defaults on any failure: decide() and explain() always resolve, never
//    reject; track() never throws. `result.ok` and `result.error` say what
//    happened.
import net from 'node:net';
import { Encoder, Decoder } from '@msgpack/msgpack';

const REQUEST = 0;
const RESPONSE = 1;
const NOTIFY = 2;

class Connection {
  constructor(host, port, onMessage, onGone) {
    this.pending = new Map();
    this.alive = true;
    this.sock = net.connect({ host, port, noDelay: true });
    this.sock.setKeepAlive(true, 30000);
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
    this.ready.catch(() => {});
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      this.alive = false;
      onGone(this);
      for (const p of this.pending.values()) p.reject(new ConnectionLost('connection closed'));
      this.pending.clear();
    });
    this.sock.on('end', () => { this.alive = false; });
    this.read(onMessage);
  }

  async read(onMessage) {
    const dec = new Decoder();
    try {
      for await (const msg of dec.decodeStream(this.sock)) onMessage(this, msg);
    } catch {
      // A broken stream: the close handler rejects what is pending.
    }
    this.destroy();
  }

  destroy() {
    this.alive = false;
    this.sock.destroy();
  }
}

class ConnectionLost extends Error {}
class Timeout extends Error {}

function defaultsFor(slots, defaults) {
  const out = {};
  for (const s of slots || []) {
    const d = defaults && Object.prototype.hasOwnProperty.call(defaults, s) ? defaults[s] : null;
    if (d && typeof d === 'object') {
      out[s] = { variant: d.variant ?? null, payload: d.payload ?? null, segment: null };
    } else {
      out[s] = { variant: d ?? null, payload: null, segment: null };
    }
  }
  return out;
}

export class VariantdClient {
  /**
   * @param {object} [options] see index.d.ts
   */
  constructor(options = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 7700;
    this.budgetMs = options.budgetMs ?? 50;
    this.defaults = options.defaults ?? {};
    this.onError = options.onError ?? null;
    this.encoder = new Encoder({ ignoreUndefined: true });
    this.msgid = 0;
    this.conn = null;
  }

  connection() {
    if (!this.conn || !this.conn.alive) {
      if (this.conn) this.conn.destroy();
      this.conn = new Connection(this.host, this.port, (c, msg) => this.onMessage(c, msg),
        (c) => { if (this.conn === c) this.conn = null; });
    }
    return this.conn;
  }

  onMessage(conn, msg) {
    if (!Array.isArray(msg) || msg[0] !== RESPONSE) return;
    const p = conn.pending.get(msg[1]);
    if (!p) return;                       // the answer to a call that gave up
    conn.pending.delete(msg[1]);
    p.resolve({ error: msg[2], result: msg[3] });
  }

  nextId() {
    this.msgid = (this.msgid + 1) >>> 0;
    return this.msgid;
  }

  // One attempt on the current connection, within the deadline.
  async attempt(method, params, deadline) {
    const conn = this.connection();
    const left = deadline - Date.now();
    if (left <= 0) throw new Timeout('time budget spent');
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(`no answer within ${this.budgetMs} ms`)), left);
    });
    const id = this.nextId();
    try {
      return await Promise.race([
        (async () => {
          try {
            await conn.ready;
          } catch (e) {
            throw new ConnectionLost(e.message);
          }
          if (!conn.alive) throw new ConnectionLost('connection closed');
          const answer = new Promise((resolve, reject) => conn.pending.set(id, { resolve, reject }));
          conn.sock.write(this.encoder.encode([REQUEST, id, method, params]));
          return answer;
        })(),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
      conn.pending.delete(id);
    }
  }

  async call(method, params) {
    const deadline = Date.now() + this.budgetMs;
    try {
      try {
        return await this.attempt(method, params, deadline);
      } catch (e) {
        if (!(e instanceof ConnectionLost)) throw e;
        // The daemon restarted or closed an idle connection: once more on a
        // new connection (decide/explain/ping are idempotent).
        if (this.conn) this.conn.destroy();
        this.conn = null;
        return await this.attempt(method, params, deadline);
      }
    } catch (e) {
      if (e instanceof Timeout && this.conn && this.conn.sock.connecting) {
        // Not even connected within the budget: start afresh next time. A
        // connected socket stays: a late answer is dropped by its msgid.
        this.conn.destroy();
        this.conn = null;
      }
      return { error: { code: e instanceof Timeout ? 'timeout' : 'unavailable', message: e.message } };
    }
  }

  fail(req, error) {
    if (this.onError) {
      try { this.onError(error); } catch { /* never into the page */ }
    }
    return {
      ok: false,
      error,
      version: null,
      slots: defaultsFor(req && req.slots, this.defaults),
      segments: [],
      valid_until: null,
    };
  }

  async decideLike(method, req) {
    try {
      const { error, result } = await this.call(method, [req]);
      if (error || !result || typeof result !== 'object') return this.fail(req, error || { code: 'bad_reply', message: 'no result' });
      // An unknown slot is answered {error: "unknown slot"}: the default then.
      const slots = result.slots || {};
      const fallback = defaultsFor(req.slots, this.defaults);
      for (const s of Object.keys(fallback)) {
        if (!slots[s] || slots[s].error) slots[s] = fallback[s];
      }
      result.slots = slots;
      result.ok = true;
      return result;
    } catch (e) {
      return this.fail(req, { code: 'client', message: String(e && e.message) });
    }
  }

  /** decide: resolves to the result, or to the defaults (ok: false). */
  decide(req) {
    return this.decideLike('decide', req);
  }

  /** explain: decide plus context, trace and ruleset. */
  explain(req) {
    return this.decideLike('explain', req);
  }

  /** ping: the daemon's status, or null. */
  async ping() {
    const { error, result } = await this.call('ping', []);
    return error ? null : result;
  }

  /**
   * track: a notification [2, "track", [event]]; no answer comes back.
   * Returns true if it was written to a live connection.
   */
  track(event) {
    try {
      const conn = this.connection();
      const frame = this.encoder.encode([NOTIFY, 'track', [event]]);
      const send = () => conn.alive && conn.sock.write(frame) !== undefined;
      if (conn.sock.connecting) {
        conn.ready.then(send, () => {});
        return true;
      }
      return send();
    } catch (e) {
      if (this.onError) {
        try { this.onError({ code: 'client', message: String(e && e.message) }); } catch { /* ignore */ }
      }
      return false;
    }
  }

  /** Closes the connection (the next call opens a new one). */
  close() {
    if (this.conn) this.conn.destroy();
    this.conn = null;
  }
}

export default VariantdClient;
