// A third-party MessagePack-RPC client (msgpack5rpc from npm, pinned in
// package.json) against the decision port: node msgpack5rpc_check.js PORT.
// Prints one JSON line with what it got; test_third_party.py checks it.
'use strict';
const net = require('net');
const Session = require('msgpack5rpc');

const port = Number(process.argv[2]);
const sock = net.connect(port, '127.0.0.1');
const session = new Session();
session.attach(sock, sock);

function call(method, args) {
  return new Promise((resolve) => {
    session.request(method, args, (err, res) => resolve({ err, res }));
  });
}

sock.on('connect', async () => {
  const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(2); }, 10000);
  // Pipelined: three requests in flight at once, answered in order.
  const [ping, berlin, mobile] = await Promise.all([
    call('ping', []),
    call('decide', [{ slots: ['hero', 'banner'], ip: '1.0.0.7', vid: 'v-1' }]),
    call('decide', [{ slots: ['hero'], ua: process.env.IPHONE, attrs: {} }]),
  ]);
  const bad = await call('decide', [{ ip: '1.0.0.7' }]);
  const unknown = await call('frobnicate', []);
  session.notify('track', [{ vid: 'v-1', event: 'purchase' }]);
  const after = await call('ping', []);
  clearTimeout(timer);
  console.log(JSON.stringify({ ping, berlin, mobile, bad, unknown, after }));
  sock.end();
});
sock.on('error', (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
