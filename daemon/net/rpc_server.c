#include "net/rpc_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "learn/snapshot.h"
#include "net/listener.h"
#include "net/msgpack_scan.h"
#include "net/recent_errors.h"
#include "net/sockio.h"
#include "net/rpc_codec.h"

/* Connection I/O is done by hand on two events and two flat buffers, like
 * Redis: read, answer every complete frame, then write the replies at once.
 * The write event is armed only when the kernel did not take everything, so
 * a request costs a read and a write system call, with no epoll_ctl churn.
 * A frame is contiguous in the input buffer (scanned and read in place),
 * and a reply is one memcpy into the output buffer: no evbuffer chains,
 * whose allocation, pull-up and drain cost ~1,200 instructions a request.
 * The buffers stay allocated while the connection talks; idle_sweep frees
 * those of a connection silent for two seconds with nothing buffered. */
struct rpc_pending;

typedef struct rpc_buf {
    uint8_t *data;
    size_t off, len, cap;         /* bytes [off, len) are buffered */
} rpc_buf;

#define RPC_BUF_MIN 16384         /* first allocation */
#define RPC_READ_MIN 4096         /* room a read needs before it grows the buffer */
#define RPC_REPLY_ROOM 1024       /* room reserved before a decision writes its reply */

static inline size_t buf_used(const rpc_buf *b)
{
    return b->len - b->off;
}

static void buf_release(rpc_buf *b)
{
    vd_free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

static inline void buf_consume(rpc_buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

/* Room for need more bytes at data + len: moves what is buffered to the
 * front, then grows. False if memory ran out (nothing lost). */
static bool buf_reserve(rpc_buf *b, size_t need)
{
    if (b->cap - b->len >= need)
        return true;
    if (b->off) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= need)
            return true;
    }
    if (need > SIZE_MAX / 4 - b->len)
        return false;
    size_t cap = b->cap ? b->cap : RPC_BUF_MIN;
    while (cap - b->len < need)
        cap *= 2;
    uint8_t *p = vd_realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

typedef struct rpc_conn {
    vd_rpc_server *srv;
    struct rpc_pending *pend;     /* a request waiting for the profile store: later
                                   * frames wait in `in`, so replies stay in order */
    const uint8_t *frame;         /* the frame being handled, and its length */
    size_t frame_len;
    evutil_socket_t fd;
    struct event *rev, *wev;      /* rev: EV_READ|EV_PERSIST, no timeout (see idle_sweep) */
    rpc_buf in, out;
    int reading;                  /* rev is armed (0 while backpressure pauses it) */
    int writing;                  /* wev is armed (the kernel did not take everything) */
    int out_failed;               /* a reply did not fit in memory: close */
    struct rpc_conn *prev, *next;
    int closing;                  /* close once the output is flushed */
    struct event *busy_ev;        /* retries reading once the profile store has room */
    int half_closed;              /* our side shut down: discarding input until EOF */
    int peer_eof;                 /* the client shut its side down */
    vd_scan_state scan;           /* progress through a frame that arrives in pieces */
    unsigned long active_tick;    /* srv->tick when rev last fired or was armed */
    char peer[64];
} rpc_conn;

/* Open connections of the whole process: max-connections is one limit for
 * all workers (touched at accept and close only, never per request). */
static _Atomic long open_conns;

struct vd_rpc_server {
    const vd_frontend *fe;
    vd_listener *listener;
    int port;                     /* bound port (for the recent-errors panel) */
    rpc_conn *conns;
    size_t nconns;
    int draining;
    msgpack_zone zone;            /* reused for every frame: no allocation per request */
    msgpack_sbuffer out;          /* one reply at a time, then copied to the connection */
    msgpack_packer pk;
    vd_scan_limits limits;
    struct event *sweep_ev;       /* idle_sweep, RPC_SWEEP_HZ times a second */
    unsigned long tick;           /* sweeps so far */
};

/* A request answered when the profile store replies (or its deadline
 * passes). A decide keeps a copy of its frame and is parsed again then: the
 * input buffer moves on meanwhile. Only requests that need the store
 * allocate one; every other request is answered synchronously. */
enum { PM_DECIDE, PM_TRACK, PM_PROFILE, PM_FLAG, PM_FORGET };
typedef struct rpc_pending {
    rpc_conn *c;
    uint32_t msgid;
    int method;
    bool explain;
    vd_profile_op *op;
    size_t len;
    uint8_t frame[];
} rpc_pending;

/* ---- connections ---- */

static void conn_free(rpc_conn *c)
{
    vd_rpc_server *s = c->srv;
    if (c->pend) {
        vd_profile_cancel(c->pend->op);
        vd_free(c->pend);
        c->pend = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    atomic_fetch_sub(&open_conns, 1);
    VD_STAT_ADD(s->fe->stats, connections, -1);
    event_free(c->rev);
    event_free(c->wev);
    if (c->busy_ev)
        event_free(c->busy_ev);
    buf_release(&c->in);
    buf_release(&c->out);
    evutil_closesocket(c->fd);
    vd_free(c);
}

/* The idle timeout is not a libevent timeout on rev: a persistent event
 * with a timeout has it re-added to the timer heap on every activation
 * (~200 instructions per read). Instead a read stamps the server's tick
 * counter and idle_sweep closes, ten times a second, every reading
 * connection silent for more than idle-timeout seconds (Redis' clientsCron
 * does the same at hz 10): closed within 0.1 s after idle-timeout, never
 * early. */
#define RPC_SWEEP_HZ 10
static void arm_reading(rpc_conn *c)
{
    event_add(c->rev, NULL);
    c->active_tick = c->srv->tick;
    c->reading = 1;
}

static void pause_reading(rpc_conn *c)
{
    if (c->reading) {
        event_del(c->rev);
        c->reading = 0;
    }
}

/* After the last reply: close only our side (FIN), then read and drop what
 * the client still sends until its EOF or LINGER_SECONDS. Closing a socket
 * with unread input would send a reset instead, which also destroys the
 * replies the client has not read yet (nginx's lingering close). */
#define LINGER_SECONDS 2

static void start_linger(rpc_conn *c)
{
    if (c->peer_eof) {
        conn_free(c);
        return;
    }
    c->half_closed = 1;
    shutdown(c->fd, SHUT_WR);
    buf_release(&c->in);
    if (c->reading)
        event_del(c->rev);
    struct timeval tv = { .tv_sec = LINGER_SECONDS, .tv_usec = 0 };
    event_add(c->rev, &tv);
    c->reading = 1;
}

/* Writes what the kernel takes now; arms the write event (with the idle
 * timeout: a peer that stops reading is dropped) for the rest. Returns -1
 * if the connection was freed. */
static int conn_flush(rpc_conn *c)
{
    rpc_buf *b = &c->out;
    while (b->off < b->len) {
        ssize_t n = send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            conn_free(c);
            return -1;
        }
        if (n == 0)
            break;
        buf_consume(b, (size_t)n);
    }
    if (buf_used(b) > 0) {
        if (!c->writing) {
            struct timeval idle = { .tv_sec = c->srv->fe->cfg->idle_timeout, .tv_usec = 0 };
            event_add(c->wev, &idle);
            c->writing = 1;
        }
        return 0;
    }
    if (c->writing) {
        event_del(c->wev);
        c->writing = 0;
    }
    if (c->closing && !c->half_closed) {
        int freed = c->peer_eof;
        start_linger(c);          /* frees c if the client already closed its side */
        return freed ? -1 : 0;
    }
    return 0;
}

/* Sends what is queued, then closes. */
static void conn_close_after_flush(rpc_conn *c)
{
    c->closing = 1;
    pause_reading(c);
    conn_flush(c);
}

/* Appends the reply staged in srv->out. Out of memory: the reply is lost,
 * so the connection is closed (process_input sees out_failed). */
static void queue_reply(rpc_conn *c)
{
    vd_rpc_server *s = c->srv;
    size_t n = s->out.size;
    if (buf_reserve(&c->out, n)) {
        memcpy(c->out.data + c->out.len, s->out.data, n);
        c->out.len += n;
    } else {
        c->out_failed = 1;
    }
    msgpack_sbuffer_clear(&s->out);
}

static void reply_error(rpc_conn *c, uint32_t msgid, const char *code, const char *msg)
{
    vd_recent_error_add("rpc", c->srv->port, code, msg);
    vd_rpc_pack_error(&c->srv->pk, msgid, code, msg);
    queue_reply(c);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void handle_ping(rpc_conn *c, uint32_t msgid)
{
    const vd_frontend *fe = c->srv->fe;
    msgpack_packer *pk = &c->srv->pk;
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    vd_live_info info;
    vd_live_get_info(&info);
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_nil(pk);
    msgpack_pack_map(pk, 6);
    pack_str(pk, "pong");
    msgpack_pack_true(pk);
    pack_str(pk, "ready");
    if (rs)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    pack_str(pk, "version");
    if (rs)
        pack_str(pk, vd_ruleset_version(rs));
    else
        msgpack_pack_nil(pk);
    pack_str(pk, "source");
    pack_str(pk, vd_source_name(rs ? info.source : VD_SOURCE_NONE));
    pack_str(pk, "age");
    if (rs)
        msgpack_pack_int64(pk, (int64_t)time(NULL) - info.loaded_at);
    else
        msgpack_pack_nil(pk);
    pack_str(pk, "stale");
    if (info.stale)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    queue_reply(c);
    VD_STAT_INC(fe->stats, rpc_ping);
}

/* The reply is written straight into the connection's output buffer (an
 * msgpack_sbuffer view of it for the emitter, which grows it with realloc
 * as its own buffer), not staged in srv->out and copied: a decision's
 * reply is most of what a request writes. On failure what was written is
 * dropped again and an error is sent instead. */
static void answer_decide(rpc_conn *c, uint32_t msgid, const vd_request *reqp, bool explain,
                          vd_profile_status pst, const vd_visitor *visitor)
{
    const vd_frontend *fe = c->srv->fe;
    rpc_buf *ob = &c->out;
    vd_decide_status st = VD_DECIDE_INTERNAL;
    if (buf_reserve(ob, RPC_REPLY_ROOM)) {
        size_t start = ob->len;
        size_t head = vd_rpc_reply_head(ob->data + start, msgid);
        msgpack_sbuffer sb = { .size = start + head, .data = (char *)ob->data, .alloc = ob->cap };
        vd_emitter e;
        vd_msgpack_out mo = { .sb = &sb };
        vd_msgpack_emitter(&mo, &e);
        vd_decision d;
        st = vd_decider_run_with(fe->decider, reqp, &e, &d, pst, visitor);
        if (st == VD_DECIDE_OK && mo.failed)
            st = VD_DECIDE_INTERNAL;     /* the reply buffer could not grow */
        ob->data = (uint8_t *)sb.data;   /* it may have moved and grown */
        ob->cap = sb.alloc;
        ob->len = st == VD_DECIDE_OK ? sb.size : start;
    }
    if (st != VD_DECIDE_OK) {
        if (st == VD_DECIDE_NOT_READY) {
            VD_STAT_INC(fe->stats, err_not_ready);
            reply_error(c, msgid, "not_ready", "no ruleset loaded yet");
        } else {
            VD_STAT_INC(fe->stats, err_internal);
            reply_error(c, msgid, "internal", "out of memory");
        }
        return;
    }
    if (explain)
        VD_STAT_INC(fe->stats, rpc_explain);
    else
        VD_STAT_INC(fe->stats, rpc_decide);
}

static void on_store_reply(void *arg, const vd_profile_result *res);

/* Waits for the store: reading pauses until the answer is queued. */
static bool start_pending(rpc_conn *c, uint32_t msgid, int method, bool explain, bool keep_frame,
                          rpc_pending **out)
{
    size_t len = keep_frame ? c->frame_len : 0;
    rpc_pending *p = vd_malloc(sizeof *p + len);
    if (!p)
        return false;
    p->c = c;
    p->msgid = msgid;
    p->method = method;
    p->explain = explain;
    p->op = NULL;
    p->len = len;
    if (len)
        memcpy(p->frame, c->frame, len);
    *out = p;
    return true;
}

/* Reading goes on while a request waits (no epoll_ctl to stop and start
 * it for each one): what arrives meanwhile waits in `in` (process_input
 * answers nothing while c->pend), bounded by conn_readable. */
static void wait_for(rpc_conn *c, rpc_pending *p, vd_profile_op *op)
{
    p->op = op;
    c->pend = p;
}

/* params: msgpack-c's object, or (NULL) raw: its address in the current
 * frame (vd_rpc_peek_decide's fast path). */
static void handle_decide(rpc_conn *c, uint32_t msgid, const msgpack_object *params,
                          const uint8_t *raw, bool explain)
{
    const vd_frontend *fe = c->srv->fe;
    vd_request req;
    char err[256];
    unsigned max_slots = (unsigned)fe->cfg->max_slots;
    if ((params ? vd_rpc_read_params(params, max_slots, &req, err, sizeof err)
                : vd_rpc_read_params_raw(raw, c->frame + c->frame_len, max_slots, &req, err,
                                         sizeof err)) != 0) {
        VD_STAT_INC(fe->stats, err_params);
        reply_error(c, msgid, "invalid_params", err);
        return;
    }
    req.explain = req.explain || explain;
    vd_profile_status pst = VD_PROFILE_OFF;
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    if (rs && fe->decider->profiles) {
        vd_profile_plan plan;
        vd_decider_profile_plan(fe->decider, rs, &req, &plan);
        pst = plan.status;
        if (plan.read) {
            rpc_pending *p;
            if (start_pending(c, msgid, PM_DECIDE, explain, true, &p)) {
                vd_profile_op *op = vd_profile_visit(fe->decider->profiles, rs, &plan.ids, plan.ts, true,
                                                     on_store_reply, p);
                if (op) {
                    wait_for(c, p, op);
                    return;
                }
                vd_free(p);
            }
            VD_STAT_INC(fe->decider->pstats, profile_unavailable);
            pst = VD_PROFILE_UNAVAILABLE;
        }
    }
    answer_decide(c, msgid, &req, explain, pst, NULL);
}

/* ---- track, profile, flag, forget ---- */

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void reply_head(rpc_conn *c, uint32_t msgid)
{
    unsigned char head[VD_RPC_REPLY_HEAD_MAX];
    msgpack_sbuffer_write(&c->srv->out, (const char *)head, vd_rpc_reply_head(head, msgid));
}

static void reply_ok(rpc_conn *c, uint32_t msgid, const char *extra_key, const char *extra_val)
{
    msgpack_packer *pk = &c->srv->pk;
    reply_head(c, msgid);
    msgpack_pack_map(pk, extra_key ? 2 : 1);
    pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
    if (extra_key) {
        pack_cstr(pk, extra_key);
        pack_cstr(pk, extra_val);
    }
    queue_reply(c);
}

/* The profile result, written once for every wire format (decision/result.c). */
static void pack_profile(rpc_conn *c, uint32_t msgid, const vd_profile_result *res)
{
    reply_head(c, msgid);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = &c->srv->out };
    vd_msgpack_emitter(&mo, &e);
    vd_result_emit_profile(&e, res, (int64_t)time(NULL));
    queue_reply(c);
}

static void answer_store(rpc_conn *c, rpc_pending *p, const vd_profile_result *res)
{
    vd_rpc_server *s = c->srv;
    const vd_frontend *fe = s->fe;
    if (p->method == PM_DECIDE) {
        msgpack_object obj;
        size_t off = 0;
        vd_request req;
        char err[256];
        uint32_t id;
        bool ex;
        const uint8_t *raw;
        unsigned max_slots = (unsigned)fe->cfg->max_slots;
        /* The copy is the frame that was read (and scanned) before: read
         * in place, as handle_decide did; msgpack-c only for the frames
         * that took the general path. */
        int rc;
        if (vd_rpc_peek_decide(p->frame, p->len, &id, &ex, &raw)) {
            rc = vd_rpc_read_params_raw(raw, p->frame + p->len, max_slots, &req, err, sizeof err);
        } else {
            msgpack_unpack_return ur = msgpack_unpack((const char *)p->frame, p->len, &off, &s->zone, &obj);
            rc = (ur == MSGPACK_UNPACK_SUCCESS || ur == MSGPACK_UNPACK_EXTRA_BYTES) &&
                 obj.type == MSGPACK_OBJECT_ARRAY && obj.via.array.size == 4
                     ? vd_rpc_read_params(&obj.via.array.ptr[3], max_slots, &req, err, sizeof err)
                     : -1;
        }
        if (rc == 0) {
            req.explain = req.explain || p->explain;
            if (res->status == VD_PROFILE_UNAVAILABLE)
                VD_STAT_INC(fe->decider->pstats, profile_unavailable);
            answer_decide(c, p->msgid, &req, p->explain, res->status, res->visitor);
        } else {
            VD_STAT_INC(fe->stats, err_internal);
            reply_error(c, p->msgid, "internal", "request copy unreadable");
        }
        msgpack_zone_clear(&s->zone);
        return;
    }
    if (res->status != VD_PROFILE_OK) {
        reply_error(c, p->msgid, "unavailable",
                    res->status == VD_PROFILE_TIMEOUT ? "profile store did not answer in time"
                                                      : "profile store unavailable");
        return;
    }
    switch (p->method) {
    case PM_TRACK:
    case PM_FLAG:
        reply_ok(c, p->msgid, NULL, NULL);
        break;
    case PM_PROFILE:
        pack_profile(c, p->msgid, res);
        break;
    case PM_FORGET:
        reply_head(c, p->msgid);
        msgpack_pack_map(&s->pk, 1);
        pack_cstr(&s->pk, "deleted");
        if (res->deleted) msgpack_pack_true(&s->pk); else msgpack_pack_false(&s->pk);
        queue_reply(c);
        break;
    default:
        break;
    }
}

static int process_input(rpc_conn *c);

static void on_store_reply(void *arg, const vd_profile_result *res)
{
    rpc_pending *p = arg;
    rpc_conn *c = p->c;
    vd_rpc_server *s = c->srv;
    c->pend = NULL;
    answer_store(c, p, res);
    vd_free(p);
    /* Read again and answer what waited behind it. */
    if (!c->closing && !c->half_closed && !c->reading &&
        buf_used(&c->out) <= (size_t)s->fe->cfg->max_output / 2) {
        arm_reading(c);       /* while draining too: drain_one reads what is left */
    }
    if (!c->closing && process_input(c) < 0)
        return;
    conn_flush(c);
}

/* What the profile methods share: profiles on, params readable. */
static bool profile_params(rpc_conn *c, uint32_t msgid, const msgpack_object *params,
                           vd_profile_params *pp, bool notify)
{
    const vd_frontend *fe = c->srv->fe;
    char err[256];
    if (!fe->decider->profiles) {
        if (!notify)
            reply_error(c, msgid, "profiles_off", "profiles are not configured (--profiles)");
        return false;
    }
    if (vd_rpc_read_profile_params(params, pp, err, sizeof err) != 0) {
        VD_STAT_INC(fe->stats, err_params);
        if (!notify)
            reply_error(c, msgid, "invalid_params", err);
        return false;
    }
    return true;
}

static void handle_track(rpc_conn *c, uint32_t msgid, const msgpack_object *params, bool notify)
{
    const vd_frontend *fe = c->srv->fe;
    vd_profile_params pp;
    if (!profile_params(c, msgid, params, &pp, notify)) {
        if (notify)
            VD_STAT_INC(fe->decider->pstats, track_lost);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    char bad[160];
    if (vd_profile_params_check(VD_PM_TRACK, &pp, now, bad, sizeof bad) != 0) {
        VD_STAT_INC(fe->stats, err_params);
        if (notify)
            VD_STAT_INC(fe->decider->pstats, track_lost);
        else
            reply_error(c, msgid, "invalid_params", bad);
        return;
    }
    vd_consent consent = fe->decider->consent_default;
    if (pp.consent.n)
        vd_consent_parse(pp.consent, &consent);
    if (consent != VD_CONSENT_PERSONALIZATION) {
        /* Nothing about the visitor is kept. */
        if (!notify)
            reply_ok(c, msgid, "profile", "no_consent");
        return;
    }
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    vd_profile_event ev = { .type = pp.event, .category = pp.category, .value = pp.value,
                            .has_value = pp.has_value };
    int64_t ts = pp.has_ts ? pp.ts : now;
    if (notify) {
        /* visitor.events.TYPE counts the types named in scores or goals */
        vd_profile_track(fe->decider->profiles, rs, &pp.ids, ts, &ev, vd_ruleset_is_goal(rs, pp.event), NULL, NULL);
        return;
    }
    rpc_pending *p;
    if (!start_pending(c, msgid, PM_TRACK, false, false, &p)) {
        reply_error(c, msgid, "internal", "out of memory");
        return;
    }
    vd_profile_op *op = vd_profile_track(fe->decider->profiles, rs, &pp.ids, ts, &ev, vd_ruleset_is_goal(rs, pp.event),
                                         on_store_reply, p);
    if (!op) {
        vd_free(p);
        reply_error(c, msgid, "unavailable", "profile store unavailable");
        return;
    }
    wait_for(c, p, op);
}

static void handle_profile_method(rpc_conn *c, uint32_t msgid, const msgpack_object *params, int method)
{
    const vd_frontend *fe = c->srv->fe;
    vd_profile_params pp;
    if (!profile_params(c, msgid, params, &pp, false))
        return;
    char bad[160];
    if (method == PM_FLAG && vd_profile_params_check(VD_PM_FLAG, &pp, 0, bad, sizeof bad) != 0) {
        VD_STAT_INC(fe->stats, err_params);
        reply_error(c, msgid, "invalid_params", bad);
        return;
    }
    rpc_pending *p;
    if (!start_pending(c, msgid, method, false, false, &p)) {
        reply_error(c, msgid, "internal", "out of memory");
        return;
    }
    vd_profile_op *op = NULL;
    if (method == PM_PROFILE)
        op = vd_profile_show(fe->decider->profiles, vd_decider_ruleset(fe->decider), &pp.ids, on_store_reply, p);
    else if (method == PM_FORGET)
        op = vd_profile_forget(fe->decider->profiles, &pp.ids, on_store_reply, p);
    else
        op = vd_profile_flag(fe->decider->profiles, &pp.ids, pp.flag,
                             pp.has_ttl ? (int64_t)time(NULL) + pp.ttl : 0, pp.clear, on_store_reply, p);
    if (!op) {
        vd_free(p);
        reply_error(c, msgid, "unavailable", "profile store unavailable");
        return;
    }
    wait_for(c, p, op);
}

/* ---- report: from the learner's latest reading (learn/snapshot.h) ---- */

static void pack_json(msgpack_packer *pk, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *key;
        json_t *e;
        json_object_foreach(v, key, e) {
            pack_str(pk, key);
            pack_json(pk, e);
        }
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            pack_json(pk, json_array_get(v, i));
        break;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
    }
}

static void handle_report(rpc_conn *c, uint32_t msgid, const msgpack_object *params)
{
    msgpack_packer *pk = &c->srv->pk;
    const msgpack_object *m = params;
    if (m->type == MSGPACK_OBJECT_ARRAY && m->via.array.size == 1)
        m = &m->via.array.ptr[0];
    else if (m->type == MSGPACK_OBJECT_ARRAY && m->via.array.size == 0)
        m = NULL;
    char slot[VD_MAX_ID_LEN + 1] = "";
    if (m && m->type != MSGPACK_OBJECT_MAP && m->type != MSGPACK_OBJECT_NIL) {
        reply_error(c, msgid, "invalid_params", "report takes one map {slot?}");
        return;
    }
    for (uint32_t i = 0; m && m->type == MSGPACK_OBJECT_MAP && i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != 4 ||
            memcmp(kv->key.via.str.ptr, "slot", 4)) {
            reply_error(c, msgid, "invalid_params", "report: unknown key (expected slot)");
            return;
        }
        if (kv->val.type != MSGPACK_OBJECT_STR || kv->val.via.str.size == 0 ||
            kv->val.via.str.size > VD_MAX_ID_LEN) {
            reply_error(c, msgid, "invalid_params", "report: slot needs a slot name");
            return;
        }
        memcpy(slot, kv->val.via.str.ptr, kv->val.via.str.size);
        slot[kv->val.via.str.size] = 0;
    }
    vd_learn_snapshot *snap = vd_learn_snapshot_acquire();
    json_t *slots = snap && snap->report ? json_object_get(snap->report, "slots") : NULL;
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_nil(pk);
    msgpack_pack_map(pk, 3);
    pack_str(pk, "slots");
    if (!slots) {
        msgpack_pack_map(pk, 0);
    } else if (slot[0]) {
        json_t *one = json_object_get(slots, slot);
        msgpack_pack_map(pk, one ? 1 : 0);
        if (one) {
            pack_str(pk, slot);
            pack_json(pk, one);
        }
    } else {
        pack_json(pk, slots);
    }
    /* How fresh: the reading's time, and whether the store answered it. */
    pack_str(pk, "as_of");
    if (snap && snap->as_of)
        msgpack_pack_int64(pk, snap->as_of);
    else
        msgpack_pack_nil(pk);
    pack_str(pk, "available");
    if (snap && snap->available)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    vd_learn_snapshot_release(snap);
    queue_reply(c);
}

static bool read_msgid(const msgpack_object *o, uint32_t *msgid)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return false;
    *msgid = (uint32_t)o->via.u64;
    return true;
}

static bool method_is(const msgpack_object *m, const char *name)
{
    size_t n = strlen(name);
    return m->via.str.size == n && memcmp(m->via.str.ptr, name, n) == 0;
}

/* One well-formed MessagePack object. Returns false if the connection must
 * close (no msgid to answer a malformed request with). */
static bool handle_object(rpc_conn *c, const msgpack_object *o)
{
    const vd_frontend *fe = c->srv->fe;
    uint32_t msgid;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0) {
        VD_STAT_INC(fe->stats, err_invalid_request);
        vd_debug("%s: frame is not a MessagePack-RPC array; closing", c->peer);
        return false;
    }
    const msgpack_object *a = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    if (a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[0].via.u64 == 2 && n == 3) {
        /* Notifications get no reply by definition: track is the one defined. */
        VD_STAT_INC(fe->stats, rpc_notifications);
        if (a[1].type == MSGPACK_OBJECT_STR && method_is(&a[1], "track"))
            handle_track(c, 0, &a[2], true);
        return true;
    }
    if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 != 0 || n < 2 ||
        !read_msgid(&a[1], &msgid)) {
        VD_STAT_INC(fe->stats, err_invalid_request);
        vd_debug("%s: not a request [0, msgid, method, params]; closing", c->peer);
        return false;
    }
    VD_STAT_INC(fe->stats, rpc_requests);
    if (n != 4) {
        VD_STAT_INC(fe->stats, err_invalid_request);
        reply_error(c, msgid, "invalid_request", "a request is [0, msgid, method, params]");
        return true;
    }
    /* A method sent as bin (Python bytes) is read like a str: method_is
     * compares bytes, so bin that is not UTF-8 is simply not a method. */
    if (a[2].type != MSGPACK_OBJECT_STR && a[2].type != MSGPACK_OBJECT_BIN) {
        VD_STAT_INC(fe->stats, err_invalid_request);
        reply_error(c, msgid, "invalid_request", "method must be a string");
        return true;
    }
    if (method_is(&a[2], "decide"))
        handle_decide(c, msgid, &a[3], NULL, false);
    else if (method_is(&a[2], "explain"))
        handle_decide(c, msgid, &a[3], NULL, true);
    else if (method_is(&a[2], "ping"))
        handle_ping(c, msgid);
    else if (method_is(&a[2], "track"))
        handle_track(c, msgid, &a[3], false);
    else if (method_is(&a[2], "profile"))
        handle_profile_method(c, msgid, &a[3], PM_PROFILE);
    else if (method_is(&a[2], "flag"))
        handle_profile_method(c, msgid, &a[3], PM_FLAG);
    else if (method_is(&a[2], "forget"))
        handle_profile_method(c, msgid, &a[3], PM_FORGET);
    else if (method_is(&a[2], "report"))
        handle_report(c, msgid, &a[3]);
    else {
        VD_STAT_INC(fe->stats, err_method);
        char msg[160];
        snprintf(msg, sizeof msg, "unknown method '%.*s' (decide, explain, ping, track, profile, flag, forget, report)",
                 (int)(a[2].via.str.size > 64 ? 64 : a[2].via.str.size), a[2].via.str.ptr);
        reply_error(c, msgid, "method_not_found", msg);
    }
    return true;
}

/* Frames that cannot be trusted: answer if a msgid is readable, then close. */
static void fail_stream(rpc_conn *c, const uint8_t *buf, size_t len, const char *code,
                        const char *msg)
{
    uint32_t msgid;
    if (vd_msgpack_peek_msgid(buf, len, &msgid))
        reply_error(c, msgid, code, msg);
    else
        vd_recent_error_add("rpc", c->srv->port, code, msg);
    VD_STAT_INC(c->srv->fe->stats, conn_closed_error);
    vd_debug("%s: %s: %s; closing", c->peer, code, msg);
    conn_close_after_flush(c);
}

/* Answers every complete frame in the input. Returns -1 if the connection
 * was freed. */
static int process_input(rpc_conn *c)
{
    vd_rpc_server *s = c->srv;
    const vd_frontend *fe = s->fe;
    rpc_buf *in = &c->in;
    size_t max_frame = s->limits.max_bytes;
    while (!c->closing && !c->pend) {
        if (c->out_failed) {
            VD_STAT_INC(fe->stats, err_internal);
            VD_STAT_INC(fe->stats, conn_closed_error);
            vd_recent_error_add("rpc", s->port, "internal",
                                "out of memory for a reply; connection closed");
            conn_close_after_flush(c);
            return -1;
        }
        if (c->busy_ev && vd_profile_store_busy(fe->decider->profiles)) {
            /* The store is behind: wait (TCP backpressure), don't drop. */
            pause_reading(c);
            struct timeval tv = { 0, 1000 };
            event_add(c->busy_ev, &tv);
            break;
        }
        size_t len = buf_used(in);
        if (len == 0)
            break;
        size_t avail = len < max_frame ? len : max_frame;
        const uint8_t *buf = in->data + in->off;
        size_t flen = 0;
        /* Resumable: a frame trickling in byte by byte is scanned once in
         * total, not once per read. */
        vd_scan_result r = vd_msgpack_scan_resume(&c->scan, buf, avail, &s->limits, &flen);
        if (r != VD_SCAN_NEED_MORE)
            vd_msgpack_scan_reset(&c->scan);
        if (r == VD_SCAN_NEED_MORE) {
            if (avail < max_frame)
                break;            /* wait for the rest */
            r = VD_SCAN_TOO_LARGE;
        }
        if (r != VD_SCAN_OK) {
            char msg[128];
            const char *code = "parse_error";
            if (r == VD_SCAN_TOO_LARGE) {
                VD_STAT_INC(fe->stats, err_too_large);
                code = "frame_too_large";
                snprintf(msg, sizeof msg, "frame larger than max-frame (%zu bytes)", max_frame);
            } else if (r == VD_SCAN_TOO_DEEP) {
                VD_STAT_INC(fe->stats, err_too_deep);
                code = "too_deep";
                snprintf(msg, sizeof msg, "nesting deeper than max-depth (%u)", s->limits.max_depth);
            } else {
                VD_STAT_INC(fe->stats, err_parse);
                snprintf(msg, sizeof msg, "not valid MessagePack");
            }
            fail_stream(c, buf, avail, code, msg);
            return -1;
        }
        c->frame = buf;
        c->frame_len = flen;
        bool keep = true;
        uint32_t msgid;
        bool explain;
        const uint8_t *params;
        if (vd_rpc_peek_decide(buf, flen, &msgid, &explain, &params)) {
            /* decide/explain, the hot path: read in place, no msgpack-c
             * objects (handle_object would answer it the same way). */
            VD_STAT_INC(fe->stats, rpc_requests);
            handle_decide(c, msgid, NULL, params, explain);
        } else {
            msgpack_object obj;
            size_t off = 0;
            msgpack_unpack_return ur = msgpack_unpack((const char *)buf, flen, &off, &s->zone, &obj);
            if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES) {
                VD_STAT_INC(fe->stats, err_parse);
                msgpack_zone_clear(&s->zone);
                c->frame = NULL;
                fail_stream(c, buf, flen, "parse_error", "not valid MessagePack");
                return -1;
            }
            keep = handle_object(c, &obj);
            msgpack_zone_clear(&s->zone);
        }
        c->frame = NULL;
        buf_consume(in, flen);
        if (!keep) {
            vd_recent_error_add("rpc", s->port, "invalid_request",
                                "frame is not a MessagePack-RPC request [type, msgid, ...]; "
                                "connection closed");
            VD_STAT_INC(fe->stats, conn_closed_error);
            conn_close_after_flush(c);
            return -1;
        }
        /* Backpressure: a client that does not read its replies stops
         * being read, instead of growing our memory without bound. The
         * replies are offered to the kernel first: only what it does not
         * take pauses reading, with the write event armed (conn_writable
         * resumes below half). Pausing with everything taken would leave
         * no event to resume the connection: it stalled for good. */
        if (buf_used(&c->out) > (size_t)fe->cfg->max_output) {
            if (conn_flush(c) < 0)
                return -1;
            if (buf_used(&c->out) > (size_t)fe->cfg->max_output / 2) {
                pause_reading(c);
                break;
            }
        }
    }
    return 0;
}

/* The client shut its side down: answer what it sent, then close. */
static void on_peer_eof(rpc_conn *c)
{
    c->peer_eof = 1;
    pause_reading(c);
    if (c->pend)
        return;                   /* its answer re-arms reading, which finds the EOF again */
    if (process_input(c) == 0)
        conn_close_after_flush(c);
}

/* Reads what the kernel has into the input buffer: as vd_sock_read. */
static ssize_t conn_recv(rpc_conn *c)
{
    rpc_buf *b = &c->in;
    if (!buf_reserve(b, RPC_READ_MIN))
        return -1;
    ssize_t n = recv(c->fd, b->data + b->len, b->cap - b->len, 0);
    if (n > 0) {
        b->len += (size_t)n;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return VD_SOCK_AGAIN;
    return n;
}

static void conn_readable(evutil_socket_t fd, short what, void *arg)
{
    rpc_conn *c = arg;
    if (what & EV_TIMEOUT) {
        conn_free(c);             /* only the lingering close has a timeout on rev */
        return;
    }
    c->active_tick = c->srv->tick;
    if (c->half_closed) {
        char sink[16384];
        ssize_t n = 1;
        for (int i = 0; i < 16 && n > 0; i++)   /* bounded: the loop serves others too */
            n = recv(fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_free(c);         /* EOF (or an error): the lingering close is over */
        return;
    }
    ssize_t n = conn_recv(c);
    if (n == VD_SOCK_AGAIN)
        return;
    if (n == 0) {
        on_peer_eof(c);
        return;
    }
    if (n < 0) {
        conn_free(c);             /* reset */
        return;
    }
    if (c->pend) {
        /* Pipelined behind a request that waits for the store: keep at
         * most a frame's worth, then let TCP hold the rest. */
        if (buf_used(&c->in) > c->srv->limits.max_bytes)
            pause_reading(c);
        return;
    }
    if (process_input(c) == 0)
        conn_flush(c);
}

static void conn_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    rpc_conn *c = arg;
    if (what & EV_TIMEOUT) {
        /* Not reading its replies for idle-timeout seconds. */
        VD_STAT_INC(c->srv->fe->stats, conn_closed_idle);
        conn_free(c);
        return;
    }
    if (conn_flush(c) < 0)
        return;
    /* Drained below half of max-output: read again, and answer what
     * arrived meanwhile. */
    if (!c->reading && !c->closing &&
        buf_used(&c->out) <= (size_t)c->srv->fe->cfg->max_output / 2) {
        arm_reading(c);
        if (process_input(c) == 0)
            conn_flush(c);
    }
}

/* The profile store had no room: try the waiting input again. */
static void conn_busy_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rpc_conn *c = arg;
    vd_rpc_server *s = c->srv;
    if (c->closing || c->pend)
        return;
    if (!c->reading && !s->draining &&
        buf_used(&c->out) <= (size_t)s->fe->cfg->max_output / 2) {
        arm_reading(c);
    }
    if (process_input(c) == 0)
        conn_flush(c);
}

static void accept_cb(evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)salen;
    vd_rpc_server *s = arg;
    const vd_frontend *fe = s->fe;
    /* Over the limit: accept and close at once (taking it off the queue, so
     * the listener does not spin), and count it. */
    if (atomic_fetch_add(&open_conns, 1) >= fe->cfg->max_connections || s->draining) {
        atomic_fetch_sub(&open_conns, 1);
        VD_STAT_INC(fe->stats, conn_rejected);
        evutil_closesocket(fd);
        vd_debug("max-connections (%ld) reached: refusing a connection", fe->cfg->max_connections);
        return;
    }
    rpc_conn *c = vd_calloc(1, sizeof *c);
    if (c) {
        c->rev = event_new(fe->base, fd, EV_READ | EV_PERSIST, conn_readable, c);
        c->wev = event_new(fe->base, fd, EV_WRITE | EV_PERSIST, conn_writable, c);
        if (fe->decider->profiles)
            c->busy_ev = evtimer_new(fe->base, conn_busy_retry, c);
    }
    if (!c || !c->rev || !c->wev) {
        if (c) {
            if (c->rev) event_free(c->rev);
            if (c->wev) event_free(c->wev);
            if (c->busy_ev) event_free(c->busy_ev);
            vd_free(c);
        }
        evutil_closesocket(fd);
        atomic_fetch_sub(&open_conns, 1);
        VD_STAT_INC(fe->stats, conn_rejected);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    c->srv = s;
    c->fd = fd;
    vd_msgpack_scan_reset(&c->scan);
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
    snprintf(c->peer, sizeof c->peer, "%s", host);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    VD_STAT_INC(fe->stats, conn_accepted);
    VD_STAT_ADD(fe->stats, connections, 1);
    arm_reading(c);
}

static void idle_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_rpc_server *s = arg;
    unsigned long idle = (unsigned long)s->fe->cfg->idle_timeout * RPC_SWEEP_HZ;
    s->tick++;
    rpc_conn *c = s->conns;
    while (c) {
        rpc_conn *next = c->next;
        /* Reading (not paused by backpressure: the write event's timeout
         * covers that), not lingering, silent for more than idle seconds. */
        if (c->reading && !c->half_closed && s->tick - c->active_tick > idle) {
            VD_STAT_INC(s->fe->stats, conn_closed_idle);
            conn_free(c);
        } else if (s->tick - c->active_tick >= 2 * RPC_SWEEP_HZ && !c->pend && !c->writing) {
            /* Silent for two seconds: give its buffers back if empty. */
            if (c->in.cap && buf_used(&c->in) == 0)
                buf_release(&c->in);
            if (c->out.cap && buf_used(&c->out) == 0)
                buf_release(&c->out);
        }
        c = next;
    }
}

vd_rpc_server *vd_rpc_server_start(const vd_frontend *fe, const char *listen_addr, char *err, size_t cap)
{
    vd_rpc_server *s = vd_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->fe = fe;
    s->limits.max_bytes = (size_t)fe->cfg->max_frame;
    s->limits.max_depth = (unsigned)fe->cfg->max_depth;
    msgpack_zone_init(&s->zone, 4096);
    msgpack_sbuffer_init(&s->out);
    msgpack_packer_init(&s->pk, &s->out, msgpack_sbuffer_write);
    s->sweep_ev = event_new(fe->base, -1, EV_PERSIST, idle_sweep, s);
    struct timeval every = { .tv_sec = 0, .tv_usec = 1000000 / RPC_SWEEP_HZ };
    if (!s->sweep_ev || event_add(s->sweep_ev, &every) != 0) {
        snprintf(err, cap, "out of memory");
        vd_rpc_server_free(s);
        return NULL;
    }
    s->listener = vd_listener_start(fe->base, listen_addr, "decision port", accept_cb, s, err, cap);
    if (!s->listener) {
        vd_rpc_server_free(s);
        return NULL;
    }
    s->port = vd_listener_port(s->listener);
    return s;
}

void vd_rpc_server_stop_accepting(vd_rpc_server *s)
{
    /* Connections already queued are taken (and drained), not reset. */
    vd_listener_accept_queued(s->listener, 4096);
    s->draining = 1;
    vd_listener_free(s->listener);
    s->listener = NULL;
}

/* One connection at shutdown, as Redis and nginx do: read what the kernel
 * holds, answer every complete frame, and once the client has nothing more
 * queued and every reply is out, half-close and linger (start_linger). A
 * frame still arriving, or replies the client has not read yet, wait for
 * the next tick, up to the grace period. */
static void drain_one(rpc_conn *c)
{
    if (c->closing || c->half_closed || c->pend)
        return;                   /* a request waiting for the profile store: next tick */
    bool more = false;
    for (int i = 0; c->reading && !c->closing; i++) {
        if (i == 16) {
            more = true;          /* still arriving: look again next tick */
            break;
        }
        ssize_t n = conn_recv(c);
        if (n == VD_SOCK_AGAIN)
            break;
        if (n == 0) {
            on_peer_eof(c);
            return;
        }
        if (n < 0) {
            conn_free(c);
            return;
        }
        if (process_input(c) != 0)
            return;
    }
    if (c->closing)
        return;                   /* conn_close_after_flush is under way */
    if (conn_flush(c) != 0)
        return;
    if (!more && c->reading && buf_used(&c->out) == 0 && buf_used(&c->in) == 0)
        conn_close_after_flush(c);
}

size_t vd_rpc_server_drain(vd_rpc_server *s)
{
    s->draining = 1;
    rpc_conn *c = s->conns;
    while (c) {
        rpc_conn *next = c->next;
        drain_one(c);             /* may free c */
        c = next;
    }
    return s->nconns;
}

size_t vd_rpc_server_connections(const vd_rpc_server *s)
{
    return s->nconns;
}

void vd_rpc_server_free(vd_rpc_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    vd_listener_free(s->listener);
    if (s->sweep_ev)
        event_free(s->sweep_ev);
    msgpack_zone_destroy(&s->zone);
    msgpack_sbuffer_destroy(&s->out);
    vd_free(s);
}
