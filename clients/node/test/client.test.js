// Tests against the real daemon (build/variantd, or $VARIANTD_BUILD/variantd),
// started on free loopback ports and stopped by its pid: `npm test`
// (node --test), run by `make test`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

import { VariantdClient } from '../src/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BUILD = path.resolve(ROOT, process.env.VARIANTD_BUILD || 'build');
const VARIANTD = path.join(BUILD, 'variantd');

const SEGMENTS = [
  { id: 'gold', match: { attr: 'attr.tier', op: 'eq', value: 'gold' } },
  { id: 'everyone', match: { all: [] } },
];
const CONTENT = [
  { slot: 'home.hero', rules: [{ segment: 'gold', variant: 'hero-gold' }],
    default: 'hero-generic', variants: { 'hero-gold': { t: 'gold' }, 'hero-generic': { t: 'generic' } } },
  { slot: 'ab', rules: [{ segment: 'everyone', split: [{ variant: 'ab-a', weight: 50 }, { variant: 'ab-b', weight: 50 }] }],
    default: 'ab-a', variants: { 'ab-a': null, 'ab-b': null } },
];
const DEFAULTS = { 'home.hero': { variant: 'hero-fallback', payload: { t: 'fallback' } }, ab: 'ab-a' };

let tmp;
const running = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startDaemon({ port, statsPort, args = [] } = {}) {
  port = port ?? await freePort();
  statsPort = statsPort ?? await freePort();
  // Two closed listeners in a row may get the same port back.
  while (statsPort === port) statsPort = await freePort();
  const log = fs.openSync(path.join(tmp, `variantd-${port}.log`), 'a');
  const proc = spawn(VARIANTD, ['--listen', `127.0.0.1:${port}`, '--stats-listen', `127.0.0.1:${statsPort}`,
    '--segments', path.join(tmp, 'segments'), '--content-map', path.join(tmp, 'content-map'), ...args],
  { stdio: ['ignore', log, log] });
  running.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code) => { running.delete(proc); resolve(code); }));
  const deadline = Date.now() + 15000;
  const listening = (p) => new Promise((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  for (;;) {
    // Both ports: the stats port opens a moment after the decision port.
    const ok = await listening(port) && await listening(statsPort);
    if (ok) break;
    assert.ok(Date.now() < deadline, 'variantd did not listen');
    assert.equal(proc.exitCode, null, fs.readFileSync(path.join(tmp, `variantd-${port}.log`), 'utf8'));
    await sleep(50);
  }
  return {
    port, statsPort, proc,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const code = await exited;
      fs.closeSync(log);
      return code;
    },
  };
}

function metrics(statsPort) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: statsPort, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const out = {};
        for (const line of body.split('\n')) {
          if (!line || line.startsWith('#')) continue;
          const i = line.lastIndexOf(' ');
          out[line.slice(0, i)] = Number(line.slice(i + 1));
        }
        resolve(out);
      });
    }).on('error', reject);
  });
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'variantd-node-'));
  fs.mkdirSync(path.join(tmp, 'segments'));
  fs.mkdirSync(path.join(tmp, 'content-map'));
  fs.writeFileSync(path.join(tmp, 'segments', 'all.json'), JSON.stringify(SEGMENTS));
  fs.writeFileSync(path.join(tmp, 'content-map', 'all.json'), JSON.stringify(CONTENT));
});

after(() => {
  for (const p of running) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('decide, explain, unknown slots and error replies', async () => {
  const d = await startDaemon();
  const c = new VariantdClient({ port: d.port, defaults: DEFAULTS, budgetMs: 2000 });
  try {
    const r = await c.decide({ slots: ['home.hero', 'nope'], vid: 'v-1', attrs: { tier: 'gold' } });
    assert.equal(r.ok, true);
    assert.deepEqual(r.slots['home.hero'], { variant: 'hero-gold', payload: { t: 'gold' }, segment: 'gold' });
    assert.equal(r.slots.nope.variant, null);          // unknown slot, no default: null
    assert.match(r.version, /^f-/);
    const x = await c.explain({ slots: ['home.hero'], attrs: { tier: 'silver' } });
    assert.equal(x.ok, true);
    assert.equal(x.slots['home.hero'].variant, 'hero-generic');
    assert.equal(x.context['attr.tier'], 'silver');
    assert.ok(Array.isArray(x.trace['home.hero']));
    // The daemon refuses the request: defaults, never an exception.
    const bad = await c.decide({ slots: ['home.hero'], ts: 'yesterday' });
    assert.equal(bad.ok, false);
    assert.equal(bad.error.code, 'invalid_params');
    assert.deepEqual(bad.slots['home.hero'], { variant: 'hero-fallback', payload: { t: 'fallback' }, segment: null });
    assert.equal((await c.ping()).pong, true);
    // Concurrent calls share the one connection (pipelined, matched by msgid).
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      c.decide({ slots: ['home.hero'], attrs: { tier: i % 2 ? 'gold' : 'none' } })));
    assert.deepEqual(many.map((x) => x.slots['home.hero'].variant),
      Array.from({ length: 20 }, (_, i) => (i % 2 ? 'hero-gold' : 'hero-generic')));
  } finally {
    c.close();
    assert.equal(await d.stop(), 0);
  }
});

test('track reaches the daemon as a notification', async () => {
  const d = await startDaemon();
  const c = new VariantdClient({ port: d.port, budgetMs: 2000 });
  try {
    assert.equal(c.track({ vid: 'v-1', event: 'purchase', value: 42.5 }), true);
    assert.equal(c.track({ vid: 'v-1', event: 'signup' }), true);
    const key = 'variantd_rpc_calls_total{method="notification"}';
    let m;
    for (let i = 0; i < 100; i++) {
      m = await metrics(d.statsPort);
      if (m[key] === 2) break;
      await sleep(20);
    }
    assert.equal(m[key], 2);
    assert.equal((await c.decide({ slots: ['ab'], vid: 'v-1' })).ok, true);   // connection still usable
  } finally {
    c.close();
    assert.equal(await d.stop(), 0);
  }
});

test('a daemon restart or idle-timeout costs no failed call', async () => {
  let d = await startDaemon({ args: ['--idle-timeout', '1'] });
  const c = new VariantdClient({ port: d.port, budgetMs: 2000 });
  try {
    assert.equal((await c.decide({ slots: ['home.hero'] })).ok, true);
    // idle-timeout closes the persistent connection; the next call reconnects.
    await sleep(1600);
    const r = await c.decide({ slots: ['home.hero'] });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    const m = await metrics(d.statsPort);
    assert.ok(m['variantd_connections_total{interface="rpc",event="closed_idle"}'] >= 1);
    // Restart on the same ports.
    const { port, statsPort } = d;
    assert.equal(await d.stop(), 0);
    d = await startDaemon({ port, statsPort });
    const again = await c.decide({ slots: ['home.hero'], attrs: { tier: 'gold' } });
    assert.equal(again.ok, true, JSON.stringify(again.error));
    assert.equal(again.slots['home.hero'].variant, 'hero-gold');
  } finally {
    c.close();
    assert.equal(await d.stop(), 0);
  }
});

test('a dead connection is retried once: the write succeeds, the read sees EOF', async () => {
  // A server that accepts, reads one frame and closes without answering (as
  // a daemon that restarts under a call): the client retries once on a new
  // connection, which the second server answers.
  const d = await startDaemon();
  let accepted = 0;
  const proxy = net.createServer((sock) => {
    accepted++;
    if (accepted === 1) {
      sock.once('data', () => sock.destroy());
      return;
    }
    const up = net.connect(d.port, '127.0.0.1');
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const c = new VariantdClient({ port: proxy.address().port, budgetMs: 2000 });
  try {
    const r = await c.decide({ slots: ['home.hero'], attrs: { tier: 'gold' } });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.equal(r.slots['home.hero'].variant, 'hero-gold');
    assert.equal(accepted, 2);
  } finally {
    c.close();
    proxy.close();
    assert.equal(await d.stop(), 0);
  }
});

test('defaults within the budget when the daemon is down or silent', async () => {
  const port = await freePort();             // nothing listens here
  const down = new VariantdClient({ port, defaults: DEFAULTS });
  let t0 = Date.now();
  const r = await down.decide({ slots: ['home.hero', 'ab'] });
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'unavailable');
  assert.deepEqual(r.slots, {
    'home.hero': { variant: 'hero-fallback', payload: { t: 'fallback' }, segment: null },
    ab: { variant: 'ab-a', payload: null, segment: null },
  });
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(down.track({ event: 'x' }), true);   // written into a connecting socket, then lost: no throw
  down.close();

  // A daemon that accepts but never answers (stopped, overloaded): the budget holds.
  const silent = net.createServer(() => {});
  await new Promise((res) => silent.listen(0, '127.0.0.1', res));
  const errors = [];
  const c = new VariantdClient({ port: silent.address().port, budgetMs: 50, defaults: DEFAULTS,
    onError: (e) => { errors.push(e.code); throw new Error('a logger that throws'); } });
  t0 = Date.now();
  const s = await c.decide({ slots: ['home.hero'] });
  const took = Date.now() - t0;
  assert.equal(s.ok, false);
  assert.equal(s.error.code, 'timeout');
  assert.equal(s.slots['home.hero'].variant, 'hero-fallback');
  assert.ok(took >= 45 && took < 1000, `took ${took} ms`);
  assert.deepEqual(errors, ['timeout']);
  c.close();
  silent.close();
});
