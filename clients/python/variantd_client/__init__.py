"""variantd_client — a client for variantd's decision port (MessagePack-RPC
over TCP, docs/PROTOCOL.md), for Python page renderers: `Client` (blocking
sockets) and `AsyncClient` (asyncio).

What it promises a page:

* one persistent connection per client object, opened on first use and
  reopened transparently after a daemon restart or idle-timeout;
* a total time budget per call (default 50 ms) covering connect, send, wait
  and the retry;
* one retry on a new connection when the connection turns out dead
  (`decide` and `explain` are idempotent: safe to send twice), never on an
  error reply or past the budget;
* defaults on any failure: `decide` and `explain` never raise; they return the
  defaults with ``ok: False`` and ``error: {code, message}``. `track` never
  raises either.

Needs only msgpack (Debian python3-msgpack).
"""
import asyncio
import itertools
import select
import socket
import time

import msgpack

__all__ = ["Client", "AsyncClient"]

REQUEST, RESPONSE, NOTIFY = 0, 1, 2


class _Lost(Exception):
    """The connection died under the call: worth one retry."""


class _Timeout(Exception):
    pass


def _slot_default(d):
    if isinstance(d, dict):
        return {"variant": d.get("variant"), "payload": d.get("payload"), "segment": None}
    return {"variant": d, "payload": None, "segment": None}


class _Base:
    def __init__(self, host="127.0.0.1", port=7700, budget=0.050, defaults=None, on_error=None):
        self.host = host
        self.port = port
        self.budget = budget
        self.defaults = dict(defaults or {})
        self.on_error = on_error
        self._ids = itertools.count(1)

    def _msgid(self):
        return next(self._ids) & 0xFFFFFFFF

    def _report(self, error):
        if self.on_error:
            try:
                self.on_error(error)
            except Exception:  # a failing logger never reaches the page
                pass

    def _defaults(self, slots):
        return {s: _slot_default(self.defaults.get(s)) for s in (slots or [])}

    def _fail(self, req, error):
        self._report(error)
        slots = req.get("slots") if isinstance(req, dict) else None
        return {"ok": False, "error": error, "version": None, "slots": self._defaults(slots),
                "segments": [], "valid_until": None}

    def _result(self, req, reply):
        err, res = reply
        if err is not None or not isinstance(res, dict):
            if not isinstance(err, dict):
                err = {"code": "bad_reply", "message": repr(err)}
            return self._fail(req, err)
        slots = res.get("slots") or {}
        for s, d in self._defaults(req.get("slots")).items():
            if not isinstance(slots.get(s), dict) or "error" in slots[s]:
                slots[s] = d          # unknown slot: its default
        res["slots"] = slots
        res["ok"] = True
        return res

    @staticmethod
    def _frame(kind, *rest):
        return msgpack.packb([kind, *rest], use_bin_type=True)


class Client(_Base):
    """Blocking client: one connection, reused across calls (one per
    process/thread; it is not thread-safe)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._sock = None
        self._unpacker = None

    # ---- connection ----

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._unpacker = None

    def _dead(self):
        """True if the daemon closed the idle connection (readable with EOF)."""
        try:
            r, _, _ = select.select([self._sock], [], [], 0)
            if not r:
                return False
            return self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (OSError, ValueError):
            return True

    def _connection(self, deadline):
        if self._sock is not None and self._dead():
            self.close()
        if self._sock is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout("time budget spent")
            try:
                s = socket.create_connection((self.host, self.port), timeout=left)
            except socket.timeout:
                raise _Timeout("connect timed out") from None
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = s
            self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        return self._sock

    def _attempt(self, method, params, deadline):
        sock = self._connection(deadline)
        msgid = self._msgid()
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.0001))
            sock.sendall(self._frame(REQUEST, msgid, method, params))
            while True:
                for msg in self._unpacker:
                    if isinstance(msg, list) and len(msg) == 4 and msg[0] == RESPONSE and msg[1] == msgid:
                        return msg[2], msg[3]
                    # anything else: the late answer to a call that gave up
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    raise _Lost("connection closed by the daemon")
                self._unpacker.feed(data)
        except socket.timeout:
            self.close()      # a half-sent frame or a late answer: start clean next time
            raise _Timeout(f"no answer within {self.budget * 1000:.0f} ms") from None
        except (ConnectionError, OSError) as e:
            self.close()
            raise _Lost(str(e)) from None

    def _call(self, method, params):
        deadline = time.monotonic() + self.budget
        try:
            try:
                return self._attempt(method, params, deadline)
            except _Lost:
                return self._attempt(method, params, deadline)   # once, on a new connection
        except _Timeout as e:
            return {"code": "timeout", "message": str(e)}, None
        except (_Lost, OSError) as e:
            self.close()
            return {"code": "unavailable", "message": str(e)}, None

    # ---- methods ----

    def _decide_like(self, method, req):
        try:
            return self._result(req, self._call(method, [req]))
        except Exception as e:   # never into the page
            return self._fail(req, {"code": "client", "message": str(e)})

    def decide(self, req):
        """The decision for req (a dict: slots, vid, ip, ua, …), or the defaults."""
        return self._decide_like("decide", req)

    def explain(self, req):
        """decide plus context, trace and ruleset."""
        return self._decide_like("explain", req)

    def ping(self):
        """The daemon's status, or None."""
        err, res = self._call("ping", [])
        return None if err is not None else res

    def track(self, event):
        """Sends [2, "track", [event]] (no answer). True if written."""
        try:
            sock = self._connection(time.monotonic() + self.budget)
            sock.settimeout(self.budget)
            sock.sendall(self._frame(NOTIFY, "track", [event]))
            return True
        except Exception as e:
            self.close()
            self._report({"code": "unavailable", "message": str(e)})
            return False


class AsyncClient(_Base):
    """asyncio client: one connection per client (and per event loop);
    concurrent calls are pipelined on it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._reader = self._writer = None
        self._task = None
        self._pending = {}
        self._connecting = None

    async def close(self):
        self._drop()

    def _drop(self, exc=None):
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc or _Lost("connection closed"))
        self._pending.clear()

    async def _read_loop(self, reader):
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                unpacker.feed(data)
                for msg in unpacker:
                    if isinstance(msg, list) and len(msg) == 4 and msg[0] == RESPONSE:
                        fut = self._pending.pop(msg[1], None)
                        if fut is not None and not fut.done():
                            fut.set_result((msg[2], msg[3]))
        except (ConnectionError, OSError, ValueError):
            pass
        if self._reader is reader:
            self._drop(_Lost("connection closed by the daemon"))

    async def _connection(self):
        if self._writer is not None and (self._writer.is_closing() or self._reader.at_eof()):
            self._drop()
        if self._writer is None:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(
                    asyncio.open_connection(self.host, self.port))
            connecting = self._connecting
            try:
                reader, writer = await asyncio.shield(connecting)
            except (ConnectionError, OSError) as e:
                raise _Lost(str(e)) from None
            finally:
                if self._connecting is connecting and connecting.done():
                    self._connecting = None
            if self._writer is None:
                self._reader, self._writer = reader, writer
                self._task = asyncio.ensure_future(self._read_loop(reader))
        return self._writer

    async def _attempt(self, method, params):
        writer = await self._connection()
        msgid = self._msgid()
        fut = asyncio.get_running_loop().create_future()
        self._pending[msgid] = fut
        try:
            writer.write(self._frame(REQUEST, msgid, method, params))
            return await fut
        finally:
            self._pending.pop(msgid, None)

    async def _retrying(self, method, params):
        try:
            return await self._attempt(method, params)
        except _Lost:
            return await self._attempt(method, params)

    async def _call(self, method, params):
        try:
            return await asyncio.wait_for(self._retrying(method, params), self.budget)
        except asyncio.TimeoutError:
            return {"code": "timeout", "message": f"no answer within {self.budget * 1000:.0f} ms"}, None
        except (_Lost, OSError) as e:
            return {"code": "unavailable", "message": str(e)}, None

    async def _decide_like(self, method, req):
        try:
            return self._result(req, await self._call(method, [req]))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            return self._fail(req, {"code": "client", "message": str(e)})

    async def decide(self, req):
        return await self._decide_like("decide", req)

    async def explain(self, req):
        return await self._decide_like("explain", req)

    async def ping(self):
        err, res = await self._call("ping", [])
        return None if err is not None else res

    async def track(self, event):
        """Sends [2, "track", [event]] (no answer). True if written."""
        try:
            writer = await asyncio.wait_for(self._connection(), self.budget)
            writer.write(self._frame(NOTIFY, "track", [event]))
            return True
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._report({"code": "unavailable", "message": str(e) or type(e).__name__})
            return False
