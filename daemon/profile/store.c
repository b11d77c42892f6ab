/* store.c — one worker's profile store connection (store.h). */
#include "profile/store.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "learn/snapshot.h"
#include "profile/master.h"
#include "profile/reply_pool.h"
#include "profile/scripts.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STALL_MS 2000          /* no reply for this long with commands in flight: reconnect */
#define MERGE_CACHE 4096       /* vids recently claimed, direct-mapped */
#define VISIT_CACHE 32768      /* profiles recently written by a visit */
#define VISIT_WAYS 8           /* ... 8-way set-associative: busy visitors do not evict each other */
#define TTL_CACHE 8192         /* profiles whose TTL a track batch set recently, direct-mapped */
#define MAX_REDIRECTS 2
#define BATCH_MAX 256          /* track events per batch (one flush) */
#define BATCH_SLOTS 512        /* the flush's key table: a power of two > BATCH_MAX */

#define EXPOSE_CACHE 16384     /* exposures recently recorded, 8-way like the visits' */
#define EXPOSE_BATCH 16        /* exposures per decide command */

typedef struct expose_seen {
    uint64_t h;               /* hash of (profile key, slot, rule key, variant) | 1; 0 = empty */
    int64_t t;                /* the ts of the exposure the profile holds for the pair */
    int64_t at;               /* the request ts it was recorded at */
    uint64_t gen;             /* vd_learn_epochs() then */
} expose_seen;

typedef struct visit_seen {
    uint64_t h;               /* key hash | 1; 0 = empty */
    int64_t ts;               /* the request ts of the last write */
} visit_seen;

/* A field a key's track events touch: "e:" or "s:" + name (track batches). */
typedef struct batch_field_t {
    char prefix;
    const char *p;
    size_t n;
} batch_field_t;

enum op_kind { OP_VISIT, OP_EVENT, OP_SHOW, OP_FLAG, OP_FORGET, OP_CLAIM, OP_MERGE, OP_RAW, OP_BATCH,
                OP_DECIDE };

struct vd_profile_op {
    vd_profile_store *s;
    int kind;
    int script;
    vd_profile_cb cb;
    vd_profile_raw_cb raw_cb;
    void *arg;
    bool answered;            /* deadline passed or cancelled: the callback is done with */
    bool timer_armed;
    int redirects;
    struct event timer;
    vd_ruleset *rs;           /* retained while in flight (reads, tracks, claims) */
    /* The command, kept for a NOSCRIPT re-send and alias redirects:
     * argv[0] EVALSHA/EVAL, [1] sha/body, [2] "1", [3] key, [4..] args. */
    int argc;
    const char **argv;
    size_t *argvlen;
    int cap_argv;
    char *buf;                /* the bytes argv points into */
    size_t used, cap;
    char key[VD_PROFILE_KEY_LEN];
    char aux[VD_PROFILE_KEY_LEN];   /* claim: the uid's key to merge into */
    uint64_t claim_h;               /* claim: the vid's slot in the merged cache */
    /* Track batches: an OP_EVENT waiting in the batch keeps its own argv
     * (event_lua's, for an alias re-send); the OP_BATCH sent for it lists
     * its members in argument order. */
    uint64_t kh;                    /* event: hash of key | 1 */
    vd_profile_op *group_next;      /* event: the next event of the same key in a flush */
    int shape;                      /* event: its shape's number in the batch being built */
    vd_profile_op *fail_next;       /* event: the next on s->failing */
    vd_profile_op **members;        /* batch: the events it carries */
    int nmembers, cap_members;
    /* A decision's read (OP_VISIT with a callback): the visit script, then
     * a plain HGETALL pipelined behind it; or, when the visit is coalesced,
     * the HGETALL alone (`plain`). */
    bool waited;                    /* counted in waiters: someone waits for the reply */
    bool reads;
    bool plain;
    int parts;                      /* its commands not answered yet: released at 0 */
    int skip_reads;                 /* HGETALL replies to drop (a NOSCRIPT re-send) */
    bool have_visit, lost;
    long long visits, began;
    char alias[65];                 /* the visit part answered "alias" */
    char err[128];                  /* the visit part's error reply */
    /* decide: the exposures sent, to remember when Redis answers */
    unsigned nx;
    uint64_t xh[EXPOSE_BATCH];
    int64_t ts;
    uint64_t gen;
    vd_profile_op *next_free;
};

struct vd_profile_store {
    struct event_base *base;
    vd_profile_config cfg;
    vd_profile_stats *stats;
    vd_track_types *types;
    redisAsyncContext *ctx;   /* NULL while down */
    bool connected;
    /* Scripts sent as EVAL (with the body) on this link: Redis caches them,
     * so from then on EVALSHA. Until then EVAL: an EVALSHA answered NOSCRIPT
     * is sent again after the commands sent meanwhile, which would apply a
     * profile's track events out of order (test_track_batch_model). */
    uint32_t evaled;
    long backoff_ms;
    struct event *retry_ev, *watch_ev, *teardown_ev;
    const char *teardown_why; /* why on_teardown drops the link */
    uint64_t link_gen;        /* follow_master: the master generation ctx was made to */
    uint64_t last_progress_ns;
    bool flushing;            /* inside redisAsyncHandleWrite (link_events) */
    struct link_events *link; /* ctx's events */
    long waiters;             /* commands in flight someone waits for */
    char *fmt;                /* a command's RESP, built by hand (format_resp) */
    size_t fmt_cap;
    int64_t day_of;           /* decide: ts / 86400 of day[] */
    char day[9];
    vd_profile_op *free_ops;
    uint64_t merged[MERGE_CACHE];
    visit_seen seen[VISIT_CACHE];
    expose_seen exposed[EXPOSE_CACHE];
    vd_visitor visitor;       /* decoding scratch, one callback at a time */
    vd_profile_hook on_visit, on_track;
    void *hook_arg;
    /* Track events of this event-loop turn, sent as one batch script when
     * the turn ends, when BATCH_MAX are waiting, or before any other
     * command (the pipeline keeps the order of the calls). */
    vd_profile_op *batch[BATCH_MAX];
    int nbatch;
    batch_field_t *bfields;          /* a batch's fields while it is built */
    int bfields_cap;
    vd_profile_op **bshapes;         /* a batch's event shapes: one event of each */
    int bshapes_cap;
    vd_reply_pool *replies;          /* the link's reply objects (reply_pool.h) */
    visit_seen ttl_set[TTL_CACHE];   /* h, and when (time(NULL)) the batch set its TTL */
    struct event *flush_ev;
    /* Events of a batch that could not be sent, failed from on_flush: a
     * flush also runs inside a caller (op_start, vd_profile_send, a full
     * batch), and callbacks run only from the event loop. */
    vd_profile_op *failing;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#define STAT_INC(s, f) atomic_fetch_add_explicit(&(s)->stats->f, 1, memory_order_relaxed)

/* Drops the link from a deferred event (never inside a hiredis callback). */
static void request_teardown(vd_profile_store *s, const char *why)
{
    s->teardown_why = why;
    event_active(s->teardown_ev, EV_TIMEOUT, 0);
}

/* Sentinel: a failover published a new master since our link was made. */
static bool master_moved(const vd_profile_store *s)
{
    return s->cfg.follow_master && s->ctx && vd_profile_master_gen() != s->link_gen;
}

/* ---- ops ------------------------------------------------------------------ */

static void on_deadline(evutil_socket_t fd, short what, void *arg);

static vd_profile_op *op_new(vd_profile_store *s, int kind, int script)
{
    vd_profile_op *op = s->free_ops;
    if (op) {
        s->free_ops = op->next_free;
    } else {
        op = vd_calloc(1, sizeof *op);
        if (!op)
            return NULL;
    }
    op->s = s;
    op->kind = kind;
    op->script = script;
    op->cb = NULL;
    op->raw_cb = NULL;
    op->arg = NULL;
    op->answered = false;
    op->timer_armed = false;
    op->redirects = 0;
    op->rs = NULL;
    op->argc = 0;
    op->used = 0;
    op->key[0] = op->aux[0] = '\0';
    op->kh = 0;
    op->group_next = NULL;
    op->fail_next = NULL;
    op->nmembers = 0;
    op->waited = op->reads = op->plain = false;
    op->parts = op->skip_reads = 0;
    op->have_visit = op->lost = false;
    op->visits = op->began = 0;
    op->alias[0] = op->err[0] = '\0';
    op->nx = 0;
    op->next_free = NULL;
    return op;
}

static void op_release(vd_profile_op *op)
{
    vd_profile_store *s = op->s;
    if (op->waited) {
        op->waited = false;
        s->waiters--;
    }
    if (op->timer_armed) {
        evtimer_del(&op->timer);
        op->timer_armed = false;
    }
    if (op->rs) {
        vd_ruleset_release(op->rs);
        op->rs = NULL;
    }
    op->next_free = s->free_ops;
    s->free_ops = op;
}

/* Appends one argument (copied). Pointers are fixed up at send time, since
 * buf may move while growing. */
/* Appends one argument made of two pieces (a field prefix and a name). */
static int op_arg2(vd_profile_op *op, const char *p, size_t n, const char *q, size_t qn)
{
    if (op->argc == op->cap_argv) {
        int cap = op->cap_argv ? op->cap_argv * 2 : 32;
        const char **a = vd_realloc(op->argv, (size_t)cap * sizeof *a);
        if (!a)
            return -1;
        op->argv = a;
        size_t *l = vd_realloc(op->argvlen, (size_t)cap * sizeof *l);
        if (!l)
            return -1;
        op->argvlen = l;
        op->cap_argv = cap;
    }
    size_t len = n + qn;
    if (op->used + len + 1 > op->cap) {
        size_t cap = op->cap ? op->cap * 2 : 512;
        while (cap < op->used + len + 1)
            cap *= 2;
        char *b = vd_realloc(op->buf, cap);
        if (!b)
            return -1;
        op->buf = b;
        op->cap = cap;
    }
    memcpy(op->buf + op->used, p, n);
    if (qn)
        memcpy(op->buf + op->used + n, q, qn);
    op->buf[op->used + len] = '\0';
    op->argv[op->argc] = (const char *)(uintptr_t)op->used;   /* offset until send */
    op->argvlen[op->argc] = len;
    op->argc++;
    op->used += len + 1;
    return 0;
}

static int op_arg(vd_profile_op *op, const char *p, size_t n)
{
    return op_arg2(op, p, n, NULL, 0);
}

static int op_argd(vd_profile_op *op, double v)
{
    char b[64];
    int n = snprintf(b, sizeof b, "%.17g", v);
    return op_arg(op, b, (size_t)n);
}

static int op_argi(vd_profile_op *op, int64_t v)
{
    /* Decimal by hand: a decision formats several of these. */
    char b[24], *p = b + sizeof b;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return op_arg(op, p, (size_t)(b + sizeof b - p));
}

/* Starts the EVALSHA argv: name, sha, numkeys, key. */
static int op_begin(vd_profile_op *op, const char *key)
{
    const vd_script *sc = vd_script_get(op->script);
    snprintf(op->key, sizeof op->key, "%s", key);
    return op_arg(op, "EVALSHA", 7) | op_arg(op, sc->sha, 40) | op_arg(op, "1", 1) |
           op_arg(op, key, strlen(key));
}

static void exposed_note(vd_profile_store *s, uint64_t h, long long t, int64_t at, uint64_t gen);
static void on_reply(redisAsyncContext *c, void *reply, void *priv);
static void on_visit_part(redisAsyncContext *c, void *reply, void *priv);
static void on_read_part(redisAsyncContext *c, void *reply, void *priv);

/* Commands sent and track events queued, until their reply: the queue bound
 * (room) and the stall watchdog read it. */
static void inflight_add(vd_profile_store *s)
{
    if (atomic_fetch_add_explicit(&s->stats->inflight, 1, memory_order_relaxed) == 0)
        s->last_progress_ns = now_ns();
}

static void inflight_sub(vd_profile_store *s)
{
    atomic_fetch_sub_explicit(&s->stats->inflight, 1, memory_order_relaxed);
}
static char *put_len(char *p, size_t v)
{
    char b[24], *q = b + sizeof b;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t n = (size_t)(b + sizeof b - q);
    memcpy(p, q, n);
    return p + n;
}

/* The command's RESP into s->fmt, for redisAsyncFormattedCommand: hiredis'
 * own formatting (sdscatfmt per argument) cost more instructions than the
 * rest of a decision's exposure step. */
static int format_resp(vd_profile_store *s, int argc, const char *const *av, const size_t *lens, size_t *out)
{
    size_t need = 32;
    for (int i = 0; i < argc; i++)
        need += lens[i] + 32;
    if (need > s->fmt_cap) {
        size_t cap = s->fmt_cap ? s->fmt_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *b = vd_realloc(s->fmt, cap);
        if (!b)
            return -1;
        s->fmt = b;
        s->fmt_cap = cap;
    }
    char *p = s->fmt;
    *p++ = '*';
    p = put_len(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = put_len(p, lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, av[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *out = (size_t)(p - s->fmt);
    return 0;
}

/* Sends op's command; `eval` sends the script body instead of its SHA. */
static int op_send_cb(vd_profile_op *op, bool eval, redisCallbackFn *fn)
{
    vd_profile_store *s = op->s;
    if (!s->ctx)
        return -1;
    /* Most commands are short: their argv lives on the stack. */
    const char *small[32];
    const char **av = op->argc <= 32 ? small : vd_malloc((size_t)op->argc * sizeof *av);
    if (!av)
        return -1;
    for (int i = 0; i < op->argc; i++)
        av[i] = op->buf + (uintptr_t)op->argv[i];
    size_t len0 = op->argvlen[0], len1 = op->argvlen[1];
    if (op->kind != OP_RAW && !(s->evaled & (1u << op->script)))
        eval = true;          /* the first use of the script on this link */
    if (op->kind != OP_RAW && eval) {
        const vd_script *sc = vd_script_get(op->script);
        av[0] = "EVAL";
        op->argvlen[0] = 4;
        av[1] = sc->body;
        op->argvlen[1] = sc->len;
    }
    size_t n;
    int rc = format_resp(s, op->argc, av, op->argvlen, &n) != 0
                 ? REDIS_ERR
                 : redisAsyncFormattedCommand(s->ctx, fn, op, s->fmt, n);
    op->argvlen[0] = len0;
    op->argvlen[1] = len1;
    if (av != small)
        vd_free(av);
    if (rc != REDIS_OK)
        return -1;
    if (op->kind != OP_RAW && eval)
        s->evaled |= 1u << op->script;
    inflight_add(s);
    return 0;
}

static int op_send(vd_profile_op *op, bool eval)
{
    return op_send_cb(op, eval, on_reply);
}

static int send_hgetall(vd_profile_op *op)
{
    vd_profile_store *s = op->s;
    const char *av[2] = { "HGETALL", op->key };
    size_t lens[2] = { 7, strlen(op->key) }, n;
    if (!s->ctx || format_resp(s, 2, av, lens, &n) != 0 ||
        redisAsyncFormattedCommand(s->ctx, on_read_part, op, s->fmt, n) != REDIS_OK)
        return -1;
    inflight_add(s);
    return 0;
}

/* A decision's read: the visit script (unless coalesced), then HGETALL of
 * the same key in the same write, so one round trip. */
static int read_send(vd_profile_op *op)
{
    if (!op->plain) {
        if (op_send_cb(op, false, on_visit_part) != 0)
            return -1;
        op->parts++;
    }
    if (send_hgetall(op) != 0) {
        if (op->plain)
            return -1;
        op->lost = true;          /* the visit part went: its reply answers (unavailable) */
        return 0;
    }
    op->parts++;
    return 0;
}

bool vd_profile_store_busy(const vd_profile_store *s)
{
    return s && s->ctx &&
           atomic_load_explicit(&s->stats->inflight, memory_order_relaxed) >= s->cfg.queue_max * 3 / 4;
}

static bool room(vd_profile_store *s)
{
    if (!s->ctx)
        return false;
    return atomic_load_explicit(&s->stats->inflight, memory_order_relaxed) < s->cfg.queue_max;
}

static void op_finish(vd_profile_op *op, const vd_profile_result *res)
{
    if (!op->answered && op->cb) {
        op->answered = true;
        op->cb(op->arg, res);
    }
    op_release(op);
}

static void finish_status(vd_profile_op *op, vd_profile_status st, const char *error)
{
    vd_profile_result res = { .status = st, .error = error };
    op_finish(op, &res);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_profile_op *op = arg;
    op->timer_armed = false;
    if (op->answered)
        return;
    op->answered = true;
    STAT_INC(op->s, profile_timeouts);
    if (op->cb) {
        vd_profile_result res = { .status = VD_PROFILE_TIMEOUT };
        op->cb(op->arg, &res);
    }
    /* The op stays in flight until its reply (or the connection's end). */
}

static void arm_deadline(vd_profile_op *op)
{
    vd_profile_store *s = op->s;
    evtimer_assign(&op->timer, s->base, on_deadline, op);
    struct timeval tv = { s->cfg.timeout_ms / 1000, (s->cfg.timeout_ms % 1000) * 1000 };
    evtimer_add(&op->timer, &tv);
    op->timer_armed = true;
}

static void flush_batch(vd_profile_store *s);
static void link_want_read(vd_profile_store *s);

/* Queues op (and its deadline when someone waits). On refusal, counts it
 * and releases op; returns NULL. */
static vd_profile_op *op_start(vd_profile_op *op, bool deadline)
{
    vd_profile_store *s = op->s;
    flush_batch(s);           /* the track events called before go first */
    if (master_moved(s))
        request_teardown(s, "the master moved (sentinel failover)");
    if (!room(s) || (op->reads ? read_send(op) : op_send(op, false)) != 0) {
        STAT_INC(s, profile_overflow);
        op->cb = NULL;
        if (!op->parts)
            op_release(op);
        return NULL;
    }
    if (deadline && op->cb)
        arm_deadline(op);
    if (op->cb) {
        op->waited = true;
        if (s->waiters++ == 0)
            link_want_read(s);
    }
    return op->cb ? op : NULL;
}

void vd_profile_cancel(vd_profile_op *op)
{
    if (!op)
        return;
    op->answered = true;
    if (op->timer_armed) {
        evtimer_del(&op->timer);
        op->timer_armed = false;
    }
}

/* ---- decoding --------------------------------------------------------------- */

static double num_slow(vd_str s);

/* The fields are integers but for scores: decimal digits by hand, strtod
 * for anything else (strtod was a tenth of a profile read's instructions). */
static double num(vd_str s)
{
    size_t i = 0;
    bool neg = s.n > 0 && s.p[0] == '-';
    i = neg;
    if (i == s.n || s.n - i > 18)
        return num_slow(s);
    int64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return num_slow(s);
        v = v * 10 + (s.p[i] - '0');
    }
    return (double)(neg ? -v : v);
}

static double num_slow(vd_str s)
{
    char b[64];
    vd_str_copy(b, sizeof b, s);
    return strtod(b, NULL);
}

/* A score's value, either encoding (scripts.c, SCORE_IO): 2 is the byte 2
 * then value, t, peak, peak_t as little-endian doubles; 1 the text
 * "value t peak peak_t". Anything else leaves the score at 0. */
static void score_decode(vd_str val, vd_score_state *st)
{
    if (val.n == 33 && val.p[0] == 2) {
        double d[4];
        for (int i = 0; i < 4; i++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--)
                u = u << 8 | (unsigned char)val.p[1 + 8 * i + b];
            memcpy(&d[i], &u, sizeof u);
        }
        /* Times are whole seconds; a corrupt value must not trap the cast. */
        if (!(d[1] >= -9e15 && d[1] <= 9e15 && d[3] >= -9e15 && d[3] <= 9e15))
            return;
        *st = (vd_score_state){ d[0], (int64_t)d[1], d[2], (int64_t)d[3] };
        return;
    }
    char b[160];
    vd_str_copy(b, sizeof b, val);
    double a, c;
    long long t, pt;
    if (sscanf(b, "%lf %lld %lf %lld", &a, &t, &c, &pt) == 4)
        *st = (vd_score_state){ a, t, c, pt };
}

void vd_profile_decode(const vd_ruleset *rs, const vd_str *fields, const vd_str *values, size_t n,
                       vd_visitor *v)
{
    v->known = false;
    memset(&v->visit, 0, sizeof v->visit);
    v->nscores = v->nevents = v->nflags = v->nexposures = 0;
    uint32_t ns = rs ? vd_ruleset_nscores(rs) : 0;
    for (uint32_t i = 0; i < ns && i < VD_MAX_SCORES; i++) {
        const vd_score_def *d = vd_ruleset_score_at(rs, i);
        v->scores[i].id = d->id;
        v->scores[i].half_life_s = d->half_life_s;
        memset(&v->scores[i].st, 0, sizeof v->scores[i].st);
        v->nscores++;
    }
    for (size_t i = 0; i < n; i++) {
        vd_str f = fields[i], val = values[i];
        if (f.n == 1) {
            switch (f.p[0]) {
            case 'k': v->known = val.n == 1 && val.p[0] == '1'; break;
            case 'v': v->visit.visits = (uint32_t)num(val); break;
            default: break;
            }
        } else if (f.n == 2 && f.p[0] == 'f' && f.p[1] == 's') {
            v->visit.first_seen = (int64_t)num(val);
        } else if (f.n == 2 && f.p[0] == 'l' && f.p[1] == 's') {
            v->visit.last_seen = (int64_t)num(val);
        } else if (f.n == 2 && f.p[0] == 'v' && f.p[1] == 's') {
            v->visit.visit_start = (int64_t)num(val);
        } else if (f.n == 2 && f.p[0] == 'p' && f.p[1] == 'e') {
            v->visit.prev_end = (int64_t)num(val);
        } else if (f.n > 2 && f.p[1] == ':') {
            vd_str name = vd_str_make(f.p + 2, f.n - 2);
            if (f.p[0] == 's') {
                for (uint32_t k = 0; k < v->nscores; k++) {
                    if (!vd_str_eq(v->scores[k].id, name))
                        continue;
                    score_decode(val, &v->scores[k].st);
                    break;
                }
            } else if (f.p[0] == 'e' && v->nevents < VD_MAX_PROFILE_EVENTS) {
                v->events[v->nevents++] = (vd_visitor_count){ name, num(val) };
            } else if (f.p[0] == 'f' && v->nflags < VD_MAX_PROFILE_FLAGS) {
                v->flags[v->nflags++] = (vd_visitor_flag){ name, (int64_t)num(val) };
            } else if (f.p[0] == 'x' && v->nexposures < VD_MAX_PROFILE_EXPOSURES) {
                if (vd_visitor_exposure_parse(name, val, &v->exposures[v->nexposures]))
                    v->nexposures++;
            }
        }
    }
}

static const vd_visitor *decode_reply(vd_profile_store *s, const vd_ruleset *rs, const redisReply *h)
{
    enum { MAXF = 2 * (VD_MAX_SCORES + VD_MAX_PROFILE_EVENTS + VD_MAX_PROFILE_FLAGS + VD_MAX_PROFILE_EXPOSURES + 64) };
    static _Thread_local vd_str fields[MAXF / 2], values[MAXF / 2];
    size_t n = 0;
    for (size_t i = 0; i + 1 < h->elements && n < MAXF / 2; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        fields[n] = vd_str_make(f->str, (size_t)f->len);
        values[n] = vd_str_make(v->str, (size_t)v->len);
        n++;
    }
    vd_profile_decode(rs, fields, values, n, &s->visitor);
    return &s->visitor;
}

/* ---- replies ------------------------------------------------------------------- */

static bool is_str(const redisReply *r, const char *s)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           (size_t)r->len == strlen(s) && memcmp(r->str, s, (size_t)r->len) == 0;
}

static long long int_of(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static void send_merge(vd_profile_store *s, vd_profile_op *claim, const redisReply *dump);
static void send_forget_key(vd_profile_store *s, const char *key);

/* Follows an alias left by a merge: the same command on the uid's key. */
static bool redirect(vd_profile_op *op, const redisReply *alias)
{
    if (op->redirects >= MAX_REDIRECTS || !alias || alias->type != REDIS_REPLY_STRING || alias->len > 64)
        return false;
    op->redirects++;
    char key[VD_PROFILE_KEY_LEN];
    snprintf(key, sizeof key, "vdp1:{%.*s}", (int)alias->len, alias->str);
    /* argv[3] is the key: rewrite it in place (same length: 32 hex digits). */
    if (strlen(key) != op->argvlen[3])
        return false;
    memcpy(op->buf + (uintptr_t)op->argv[3], key, op->argvlen[3]);
    snprintf(op->key, sizeof op->key, "%s", key);
    return op_send(op, false) == 0;
}

/* ---- track batches --------------------------------------------------------------- */

/* An event of a batch that will not be applied. */
static void event_fail(vd_profile_op *ev, const char *why)
{
    if (!ev->cb)
        STAT_INC(ev->s, track_lost);
    finish_status(ev, VD_PROFILE_UNAVAILABLE, why);
}

static int batch_member(vd_profile_op *b, vd_profile_op *ev)
{
    if (b->nmembers == b->cap_members) {
        int cap = b->cap_members ? b->cap_members * 2 : 64;
        vd_profile_op **m = vd_realloc(b->members, (size_t)cap * sizeof *m);
        if (!m)
            return -1;
        b->members = m;
        b->cap_members = cap;
    }
    b->members[b->nmembers++] = ev;
    return 0;
}

/* An event's own argv (event_lua's layout, kept for an alias re-send):
 * [4] ts, [7] known, [8] type, [9] count, then from [10] (score id, points,
 * half_life_s) triples. */
#define EV_ARG(ev, i) ((ev)->buf + (uintptr_t)(ev)->argv[i])

typedef struct batch_group { vd_profile_op *head, *tail; int n; } batch_group;

/* The field number (1-based) of prefix + name in the batch's field table,
 * added if new; 0 when the table cannot grow. */
static int batch_field(vd_profile_store *s, int *nf, char prefix, const char *p, size_t n)
{
    for (int f = 0; f < *nf; f++) {
        batch_field_t *b = &s->bfields[f];
        if (b->prefix == prefix && b->n == n && memcmp(b->p, p, n) == 0)
            return f + 1;
    }
    if (*nf == s->bfields_cap) {
        int cap = s->bfields_cap ? s->bfields_cap * 2 : 16;
        batch_field_t *t = vd_realloc(s->bfields, (size_t)cap * sizeof *t);
        if (!t)
            return 0;
        s->bfields = t;
        s->bfields_cap = cap;
    }
    s->bfields[*nf] = (batch_field_t){ prefix, p, n };
    return ++*nf;
}

/* Two events of one shape: the same known mark, type, counting and score
 * (id, points, half-life) list -- everything but the time. */
static bool same_shape(const vd_profile_op *a, const vd_profile_op *b)
{
    if (a->argc != b->argc)
        return false;
    for (int i = 7; i < a->argc; i++)
        if (a->argvlen[i] != b->argvlen[i] || memcmp(EV_ARG(a, i), EV_ARG(b, i), a->argvlen[i]) != 0)
            return false;
    return true;
}

/* The batch-wide part of the script's arguments (scripts.c,
 * track_batch_lua): the fields its events touch, then their shapes. Most
 * batches hold one or two shapes, so a key's part is its times alone. */
static int batch_shape_args(vd_profile_store *s, vd_profile_op *b, const batch_group *gs, int ng)
{
    int nshapes = 0, nf = 0, bad = 0;
    for (int g = 0; g < ng; g++)
        for (vd_profile_op *ev = gs[g].head; ev; ev = ev->group_next) {
            int k = 0;
            while (k < nshapes && !same_shape(s->bshapes[k], ev))
                k++;
            if (k == nshapes) {
                if (nshapes == s->bshapes_cap) {
                    int cap = s->bshapes_cap ? s->bshapes_cap * 2 : 8;
                    vd_profile_op **t = vd_realloc(s->bshapes, (size_t)cap * sizeof *t);
                    if (!t)
                        return -1;
                    s->bshapes = t;
                    s->bshapes_cap = cap;
                }
                s->bshapes[nshapes++] = ev;
            }
            ev->shape = k + 1;
        }
    for (int k = 0; k < nshapes; k++) {
        const vd_profile_op *ev = s->bshapes[k];
        if (EV_ARG(ev, 9)[0] == '1')
            bad |= !batch_field(s, &nf, 'e', EV_ARG(ev, 8), ev->argvlen[8]);
        for (int a = 10; a + 2 < ev->argc; a += 3)
            bad |= !batch_field(s, &nf, 's', EV_ARG(ev, a), ev->argvlen[a]);
    }
    if (bad)
        return -1;
    bad |= op_argi(b, nf);
    for (int f = 0; f < nf; f++) {
        const batch_field_t *bf = &s->bfields[f];
        char pre[2] = { bf->prefix, ':' };
        bad |= op_arg2(b, pre, 2, bf->p, bf->n);
    }
    bad |= op_argi(b, nshapes);
    for (int k = 0; k < nshapes && !bad; k++) {
        const vd_profile_op *ev = s->bshapes[k];
        int c = EV_ARG(ev, 9)[0] == '1' ? batch_field(s, &nf, 'e', EV_ARG(ev, 8), ev->argvlen[8]) : 0;
        bad |= op_arg(b, EV_ARG(ev, 7), ev->argvlen[7]) | op_argi(b, c) | op_argi(b, (ev->argc - 10) / 3);
        for (int a = 10; a + 2 < ev->argc; a += 3)
            bad |= op_argi(b, batch_field(s, &nf, 's', EV_ARG(ev, a), ev->argvlen[a])) |
                   op_arg(b, EV_ARG(ev, a + 1), ev->argvlen[a + 1]) |
                   op_arg(b, EV_ARG(ev, a + 2), ev->argvlen[a + 2]);
    }
    return bad;
}

/* One key's part: expire (0/1), n, then (ts, shape) per event. */
static int batch_key_args(vd_profile_op *b, vd_profile_op *head, int n, bool expire)
{
    int bad = op_arg(b, expire ? "1" : "0", 1) | op_argi(b, n);
    for (vd_profile_op *ev = head; ev && !bad; ev = ev->group_next)
        bad |= op_arg(b, EV_ARG(ev, 4), ev->argvlen[4]) | op_argi(b, ev->shape) | batch_member(b, ev);
    return bad;
}

/* Sends the waiting track events: grouped by profile (each profile's events
 * in the order they came), at most batch-keys profiles per command (1
 * through a proxy that routes a script by its first key). */
static void flush_batch(vd_profile_store *s)
{
    int n = s->nbatch;
    if (!n)
        return;
    s->nbatch = 0;
    int16_t table[BATCH_SLOTS];
    batch_group groups[BATCH_MAX];
    int ng = 0;
    memset(table, 0xff, sizeof table);
    for (int i = 0; i < n; i++) {
        vd_profile_op *ev = s->batch[i];
        ev->group_next = NULL;
        size_t slot = (size_t)ev->kh & (BATCH_SLOTS - 1);
        while (table[slot] >= 0 && strcmp(groups[table[slot]].head->key, ev->key) != 0)
            slot = (slot + 1) & (BATCH_SLOTS - 1);
        if (table[slot] < 0) {
            table[slot] = (int16_t)ng;
            groups[ng++] = (batch_group){ ev, ev, 1 };
        } else {
            batch_group *g = &groups[table[slot]];
            g->tail->group_next = ev;
            g->tail = ev;
            g->n++;
        }
    }
    int per = s->cfg.batch_keys > 0 ? (int)s->cfg.batch_keys : 1;
    for (int g0 = 0; g0 < ng; g0 += per) {
        int g1 = g0 + per < ng ? g0 + per : ng;
        vd_profile_op *b = s->ctx ? op_new(s, OP_BATCH, VD_SCRIPT_TRACK_BATCH) : NULL;
        int bad = !b;
        if (b) {
            const vd_script *sc = vd_script_get(VD_SCRIPT_TRACK_BATCH);
            bad |= op_arg(b, "EVALSHA", 7) | op_arg(b, sc->sha, 40) | op_argi(b, g1 - g0);
            for (int g = g0; g < g1; g++)
                bad |= op_arg(b, groups[g].head->key, strlen(groups[g].head->key));
            bad |= op_argi(b, s->cfg.gap_s) | op_argi(b, s->cfg.ttl_s) | batch_shape_args(s, b, groups + g0, g1 - g0);
            int64_t now = (int64_t)time(NULL), window = s->cfg.gap_s / 30;
            for (int g = g0; g < g1 && !bad; g++) {
                /* The TTL is set again at most session-gap/30 late (the
                 * precision of coalesced visits); a new key always gets it. */
                uint64_t h = groups[g].head->kh;
                visit_seen *e = &s->ttl_set[h % TTL_CACHE];
                bool expire = !(e->h == h && now >= e->ts && now - e->ts < window);
                if (expire)
                    *e = (visit_seen){ h, now };
                bad |= batch_key_args(b, groups[g].head, groups[g].n, expire);
            }
        }
        if (!bad && op_send(b, false) == 0) {
            /* A track request in it waits for the reply: read it as it comes
             * (notifications alone are collected by the link's drain). */
            for (int i = 0; i < b->nmembers; i++)
                if (b->members[i]->cb) {
                    b->waited = true;
                    if (s->waiters++ == 0)
                        link_want_read(s);
                    break;
                }
            continue;
        }
        /* Not sent (store down, out of memory): every event of it is lost,
         * told from the event loop (on_flush). */
        if (b)
            op_release(b);
        for (int g = g0; g < g1; g++)
            for (vd_profile_op *ev = groups[g].head, *next; ev; ev = next) {
                next = ev->group_next;
                inflight_sub(s);
                STAT_INC(s, profile_overflow);
                ev->fail_next = s->failing;
                s->failing = ev;
            }
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    }
}

static void fail_deferred(vd_profile_store *s, const char *why)
{
    while (s->failing) {
        vd_profile_op *ev = s->failing;
        s->failing = ev->fail_next;
        event_fail(ev, why);
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_batch(arg);
    fail_deferred(arg, "profile store unavailable");
}

/* Queues a track event for this turn's batch. false when refused (store
 * down or queue full: counted, op released). */
static bool batch_add(vd_profile_op *op)
{
    vd_profile_store *s = op->s;
    if (master_moved(s))
        request_teardown(s, "the master moved (sentinel failover)");
    if (!room(s)) {
        STAT_INC(s, profile_overflow);
        op->cb = NULL;
        op_release(op);
        return false;
    }
    op->kh = (uint64_t)vd_hash64(op->key, strlen(op->key)) | 1;
    s->batch[s->nbatch++] = op;
    inflight_add(s);
    if (s->nbatch == 1)
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    if (s->nbatch == BATCH_MAX)
        flush_batch(s);
    return true;
}

static bool redirect(vd_profile_op *op, const redisReply *alias);

/* A batch's reply: one element per key, in KEYS order (the members are
 * grouped by key in that order). */
static void batch_reply(vd_profile_store *s, vd_profile_op *b, const redisReply *r)
{
    const char *why = "profile store connection lost";
    if (r && r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOSCRIPT", 8) == 0 && op_send(b, true) == 0)
            return;            /* sent again with the body; Redis caches it from now on */
        STAT_INC(s, profile_errors);
        vd_debug("profile store: %s", r->str);
        if (s->cfg.follow_master && (strncmp(r->str, "READONLY", 8) == 0 || strstr(r->str, "-READONLY")))
            request_teardown(s, "the server is a replica (READONLY)");
        why = r->str;
    }
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    /* Where each key's events begin, before a redirect renames a key. */
    bool first[BATCH_MAX];
    for (int i = 0; i < b->nmembers; i++)
        first[i] = i == 0 || strcmp(b->members[i - 1]->key, b->members[i]->key) != 0;
    size_t k = 0;
    for (int i = 0; i < b->nmembers; i++) {
        vd_profile_op *ev = b->members[i];
        if (i > 0 && first[i])
            k++;
        inflight_sub(s);
        const redisReply *e = ok && k < r->elements ? r->element[k] : NULL;
        if (!e) {
            event_fail(ev, why);
            continue;
        }
        if (e->type == REDIS_REPLY_STRING) {
            /* A merged vid: this event goes to the uid's profile on its own. */
            if (redirect(ev, e))
                continue;
            STAT_INC(s, profile_errors);
            event_fail(ev, "alias chain too long");
            continue;
        }
        if (first[i] && int_of(e) == 1)
            STAT_INC(s, profile_new);
        STAT_INC(s, track_events);
        vd_profile_result res = { .status = VD_PROFILE_OK };
        op_finish(ev, &res);
    }
    b->nmembers = 0;
    op_release(b);
}

static void on_reply(redisAsyncContext *c, void *reply, void *priv)
{
    (void)c;
    vd_profile_op *op = priv;
    vd_profile_store *s = op->s;
    redisReply *r = reply;
    inflight_sub(s);
    s->last_progress_ns = now_ns();
    if (op->kind == OP_RAW) {
        if (op->raw_cb)
            op->raw_cb(op->arg, r);
        op_release(op);
        return;
    }
    if (op->kind == OP_BATCH) {
        batch_reply(s, op, r);
        return;
    }
    if (!r) {
        if (op->kind == OP_EVENT && !op->cb)
            STAT_INC(s, track_lost);
        finish_status(op, VD_PROFILE_UNAVAILABLE, "profile store connection lost");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOSCRIPT", 8) == 0 && op_send(op, true) == 0)
            return;            /* sent again with the body; Redis caches it from now on */
        STAT_INC(s, profile_errors);
        vd_debug("profile store: %s", r->str);
        /* A replica (a failover demoted the server we reached): reconnect
         * to the master the sentinels name. Scripts wrap the error. */
        if (s->cfg.follow_master && (strncmp(r->str, "READONLY", 8) == 0 || strstr(r->str, "-READONLY")))
            request_teardown(s, "the server is a replica (READONLY)");
        if (op->kind == OP_EVENT && !op->cb)
            STAT_INC(s, track_lost);
        finish_status(op, VD_PROFILE_UNAVAILABLE, r->str);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && is_str(r->element[0], "alias") &&
        op->kind != OP_FORGET) {
        if (redirect(op, r->element[1]))
            return;
        STAT_INC(s, profile_errors);
        finish_status(op, VD_PROFILE_UNAVAILABLE, "alias chain too long");
        return;
    }
    vd_profile_result res = { .status = VD_PROFILE_OK };
    switch (op->kind) {
    case OP_VISIT:
    case OP_SHOW:
    case OP_EVENT:
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
            long long visits = int_of(r->element[1]), began = int_of(r->element[2]);
            if (visits == 1 && began)
                STAT_INC(s, profile_new);
            res.found = !(visits == 1 && began) && op->kind != OP_SHOW;
            if (r->elements >= 4 && r->element[3]->type == REDIS_REPLY_ARRAY) {
                res.visitor = decode_reply(s, op->rs, r->element[3]);
                if (op->kind == OP_SHOW)
                    res.found = r->element[3]->elements > 0;
                else if (res.found)
                    STAT_INC(s, profile_hits);
            }
        }
        if (op->kind == OP_EVENT)
            STAT_INC(s, track_events);
        break;
    case OP_FORGET:
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
            res.deleted = int_of(r->element[1]) > 0;
            if (r->element[2]->type == REDIS_REPLY_STRING && r->element[2]->len <= 64) {
                char key[VD_PROFILE_KEY_LEN];
                snprintf(key, sizeof key, "vdp1:{%.*s}", (int)r->element[2]->len, r->element[2]->str);
                send_forget_key(s, key);
                res.deleted = true;
            }
        }
        if (res.deleted)
            STAT_INC(s, profile_forgets);
        break;
    case OP_CLAIM:
        /* Claimed now or before: either way this vid needs no more claims.
         * (A claim lost with its connection is tried again later.) */
        s->merged[op->claim_h % MERGE_CACHE] = op->claim_h;
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
            send_merge(s, op, r);
        break;
    case OP_MERGE:
        STAT_INC(s, profile_merges);
        break;
    case OP_DECIDE:
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 4) {
            if (int_of(r->element[1]) == 1 && int_of(r->element[2]))
                STAT_INC(s, profile_new);
            const redisReply *x = r->element[3];
            for (unsigned i = 0; x->type == REDIS_REPLY_ARRAY && i < op->nx && 2 * i + 1 < x->elements; i++)
                exposed_note(s, op->xh[i], int_of(x->element[2 * i + 1]), op->ts, op->gen);
        }
        break;
    default:
        break;
    }
    op_finish(op, &res);
}

/* ---- a decision's read: visit part + HGETALL --------------------------------- */

static uint64_t key_hash(const char *key);
static void seen_forget(vd_profile_store *s, const char *key);

static void reply_seen(vd_profile_store *s)
{
    inflight_sub(s);
    s->last_progress_ns = now_ns();
}

/* The last reply of a read is in (or the link is gone): answer if nobody
 * has been, release when no command of it is outstanding. */
static void read_settle(vd_profile_op *op)
{
    if (op->parts > 0)
        return;
    if (!op->answered && op->cb) {
        if (op->err[0])
            finish_status(op, VD_PROFILE_UNAVAILABLE, op->err);
        else
            finish_status(op, VD_PROFILE_UNAVAILABLE, "profile store connection lost");
        return;
    }
    op_release(op);
}

static void on_visit_part(redisAsyncContext *c, void *reply, void *priv)
{
    (void)c;
    vd_profile_op *op = priv;
    vd_profile_store *s = op->s;
    redisReply *r = reply;
    reply_seen(s);
    op->parts--;
    if (!r) {
        op->lost = true;
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOSCRIPT", 8) == 0 && !op->lost) {
            /* Sent again with the body (Redis caches it from now on), and
             * the HGETALL behind it again, so the read follows the visit;
             * the first HGETALL's reply is dropped. */
            if (op_send_cb(op, true, on_visit_part) == 0) {
                op->parts++;
                op->skip_reads++;
                if (send_hgetall(op) == 0)
                    op->parts++;
                else
                    op->lost = true;
                return;
            }
            op->lost = true;
        } else {
            STAT_INC(s, profile_errors);
            vd_debug("profile store: %s", r->str);
            if (s->cfg.follow_master && (strncmp(r->str, "READONLY", 8) == 0 || strstr(r->str, "-READONLY")))
                request_teardown(s, "the server is a replica (READONLY)");
            snprintf(op->err, sizeof op->err, "%s", r->str);
        }
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && is_str(r->element[0], "alias")) {
        const redisReply *a = r->element[1];
        if (a->type == REDIS_REPLY_STRING && a->len > 0 && a->len < (int)sizeof op->alias) {
            memcpy(op->alias, a->str, (size_t)a->len);
            op->alias[a->len] = '\0';
        }
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        op->have_visit = true;
        op->visits = int_of(r->element[1]);
        op->began = int_of(r->element[2]);
    }
    read_settle(op);
}

/* Sends the read again on the uid's key a merged vid's key names. */
static bool read_redirect(vd_profile_op *op, const char *h, size_t n)
{
    if (op->redirects >= MAX_REDIRECTS || n != 32)
        return false;
    op->redirects++;
    char key[VD_PROFILE_KEY_LEN];
    snprintf(key, sizeof key, "vdp1:{%.*s}", (int)n, h);
    if (strlen(key) != op->argvlen[3])
        return false;
    memcpy(op->buf + (uintptr_t)op->argv[3], key, op->argvlen[3]);
    snprintf(op->key, sizeof op->key, "%s", key);
    op->alias[0] = '\0';
    op->have_visit = false;
    return read_send(op) == 0;
}

static void on_read_part(redisAsyncContext *c, void *reply, void *priv)
{
    (void)c;
    vd_profile_op *op = priv;
    vd_profile_store *s = op->s;
    redisReply *r = reply;
    reply_seen(s);
    op->parts--;
    if (op->skip_reads > 0) {
        op->skip_reads--;
        read_settle(op);
        return;
    }
    if (!r || op->lost || op->answered || op->err[0]) {
        if (r && r->type == REDIS_REPLY_ERROR && !op->err[0]) {
            STAT_INC(s, profile_errors);
            snprintf(op->err, sizeof op->err, "%s", r->str);
        }
        read_settle(op);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        STAT_INC(s, profile_errors);
        snprintf(op->err, sizeof op->err, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to HGETALL");
        read_settle(op);
        return;
    }
    /* A merged vid's key holds only the alias. */
    const char *alias = op->alias[0] ? op->alias : NULL;
    size_t alias_n = alias ? strlen(alias) : 0;
    if (!alias && r->elements == 2 && is_str(r->element[0], "a") && r->element[1]->type == REDIS_REPLY_STRING) {
        alias = r->element[1]->str;
        alias_n = (size_t)r->element[1]->len;
    }
    if (alias) {
        if (!read_redirect(op, alias, alias_n)) {
            STAT_INC(s, profile_errors);
            snprintf(op->err, sizeof op->err, "alias chain too long");
        }
        read_settle(op);
        return;
    }
    if (op->plain && r->elements == 0) {
        /* Coalesced, but the profile is gone (forgotten through another
         * worker or daemon, expired, the store flushed): count the visit
         * after all. */
        op->plain = false;
        seen_forget(s, op->key);
        if (read_send(op) != 0)
            op->lost = true;
        read_settle(op);
        return;
    }
    vd_profile_result res = { .status = VD_PROFILE_OK };
    if (op->plain) {
        res.found = true;
    } else if (op->have_visit) {
        if (op->visits == 1 && op->began)
            STAT_INC(s, profile_new);
        res.found = !(op->visits == 1 && op->began);
    }
    res.visitor = decode_reply(s, op->rs, r);
    if (res.found)
        STAT_INC(s, profile_hits);
    if (!op->answered && op->cb) {
        op->answered = true;
        op->cb(op->arg, &res);
    }
    read_settle(op);
}

/* ---- connection ----------------------------------------------------------------- */

static void link_down(vd_profile_store *s, const char *why);

static void on_connect(const redisAsyncContext *c, int status)
{
    vd_profile_store *s = c->data;
    if (c != s->ctx)
        return;
    if (status != REDIS_OK) {
        s->ctx = NULL;        /* hiredis frees c after this callback */
        link_down(s, c->errstr);
        return;
    }
    s->connected = true;
    s->backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&s->stats->connected, 1);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    (void)status;
    vd_profile_store *s = c->data;
    if (c != s->ctx)
        return;               /* our own teardown */
    s->ctx = NULL;
    link_down(s, c->err ? c->errstr : "closed by the server");
}

static void link_down(vd_profile_store *s, const char *why)
{
    if (s->connected)
        vd_warn("profile store: connection lost (%s); decisions go on without profiles", why);
    s->connected = false;
    atomic_store(&s->stats->connected, 0);
    STAT_INC(s, profile_errors);
    long d = s->backoff_ms;
    s->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    struct timeval tv = { d / 1000, (d % 1000) * 1000 };
    evtimer_add(s->retry_ev, &tv);
}

/* The connection's events. Like hiredis' libevent adapter, with three
 * differences that count at tens of thousands of commands a second:
 * - the commands queued during one turn of the event loop (every decision
 *   of every connection that was readable) go out together at its end, in
 *   one write(2): hiredis asks for the write event on each command, and we
 *   answer by activating an event that runs after the callbacks already
 *   due, instead of arming EPOLLOUT and waiting a turn (the write event is
 *   armed only while connecting and when the kernel took less than all);
 * - the read event stays armed while someone waits for a reply (no
 *   epoll_ctl per reply);
 * - while nobody waits (visits, exposures, track notifications: writes
 *   nobody waits for) replies are not read as they come, which would wake
 *   the worker once more per batch, but every DRAIN_MS, a few hundred at a
 *   time. Errors, NOSCRIPT re-sends and the stall watchdog see them then. */
#define DRAIN_MS 1

typedef struct link_events {
    vd_profile_store *s;
    redisAsyncContext *ac;
    struct event *rev, *wev, *flush, *drain;
    bool flush_due, reading;
} link_events;

static bool link_should_read(const link_events *e)
{
    const vd_profile_store *s = e->s;
    return !(e->ac->c.flags & REDIS_CONNECTED) || s->waiters > 0 ||
           atomic_load_explicit(&s->stats->inflight, memory_order_relaxed) > s->cfg.queue_max / 4;
}

static void link_arm_drain(link_events *e)
{
    if (!e->reading && !evtimer_pending(e->drain, NULL) &&
        atomic_load_explicit(&e->s->stats->inflight, memory_order_relaxed) > 0) {
        struct timeval tv = { 0, DRAIN_MS * 1000 };
        evtimer_add(e->drain, &tv);
    }
}

static void link_handle_write(vd_profile_store *s, redisAsyncContext *ac)
{
    s->flushing = true;
    redisAsyncHandleWrite(ac);    /* may free ac and its link_events */
    s->flushing = false;
    if (s->ctx == ac && s->link)
        link_arm_drain(s->link);
}

static void link_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_events *e = arg;
    vd_profile_store *s = e->s;
    redisAsyncContext *ac = e->ac;
    redisAsyncHandleRead(ac);     /* may free ac and its link_events */
    if (s->ctx == ac && s->link)
        link_arm_drain(s->link);
}

/* DRAIN_MS passed: read what came (hiredis reads 16 KB a go: a few more
 * while replies keep coming). */
static void link_on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_events *e = arg;
    vd_profile_store *s = e->s;
    redisAsyncContext *ac = e->ac;
    for (int i = 0; i < 16; i++) {
        int64_t before = atomic_load_explicit(&s->stats->inflight, memory_order_relaxed);
        redisAsyncHandleRead(ac);     /* may free ac and its link_events */
        if (s->ctx != ac || !s->link ||
            atomic_load_explicit(&s->stats->inflight, memory_order_relaxed) >= before)
            break;
    }
    if (s->ctx == ac && s->link)
        link_arm_drain(s->link);
}

static void link_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_events *e = arg;
    link_handle_write(e->s, e->ac);
}

static void link_on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_events *e = arg;
    e->flush_due = false;
    link_handle_write(e->s, e->ac);
}

static void link_add_read(void *p)
{
    link_events *e = p;
    if (!link_should_read(e)) {
        if (e->reading) {     /* nobody waits any more */
            event_del(e->rev);
            e->reading = false;
        }
        return;
    }
    if (!e->reading) {
        event_add(e->rev, NULL);
        e->reading = true;
    }
}

static void link_del_read(void *p)
{
    link_events *e = p;
    event_del(e->rev);
    e->reading = false;
}

/* A command someone waits for was queued: read as replies come. */
static void link_want_read(vd_profile_store *s)
{
    if (s->ctx && s->link && !s->link->reading) {
        event_add(s->link->rev, NULL);
        s->link->reading = true;
    }
}

static void link_add_write(void *p)
{
    link_events *e = p;
    if (e->s->flushing || !(e->ac->c.flags & REDIS_CONNECTED)) {
        event_add(e->wev, NULL);  /* connecting, or the kernel took less than all */
        return;
    }
    if (!e->flush_due && !event_pending(e->wev, EV_WRITE, NULL)) {
        e->flush_due = true;
        event_active(e->flush, EV_TIMEOUT, 1);
    }
}

static void link_del_write(void *p)
{
    link_events *e = p;
    if (event_pending(e->wev, EV_WRITE, NULL))
        event_del(e->wev);
}

static void link_cleanup(void *p)
{
    link_events *e = p;
    if (e->s->link == e)
        e->s->link = NULL;
    event_free(e->rev);
    event_free(e->wev);
    event_free(e->flush);
    event_free(e->drain);
    vd_free(e);
}

static int link_attach(vd_profile_store *s, redisAsyncContext *ac)
{
    link_events *e = vd_calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->s = s;
    e->ac = ac;
    e->rev = event_new(s->base, ac->c.fd, EV_READ | EV_PERSIST, link_on_read, e);
    e->wev = event_new(s->base, ac->c.fd, EV_WRITE, link_on_write, e);
    e->flush = event_new(s->base, -1, 0, link_on_flush, e);
    e->drain = evtimer_new(s->base, link_on_drain, e);
    if (!e->rev || !e->wev || !e->flush || !e->drain) {
        if (e->rev) event_free(e->rev);
        if (e->wev) event_free(e->wev);
        if (e->flush) event_free(e->flush);
        if (e->drain) event_free(e->drain);
        vd_free(e);
        return -1;
    }
    ac->ev.addRead = link_add_read;
    ac->ev.delRead = link_del_read;
    ac->ev.addWrite = link_add_write;
    ac->ev.delWrite = link_del_write;
    ac->ev.cleanup = link_cleanup;
    ac->ev.data = e;
    s->link = e;
    event_add(e->rev, NULL);
    e->reading = true;
    event_add(e->wev, NULL);      /* writable: the connection is made */
    return 0;
}

static void raw_setup(vd_profile_store *s, const char **argv, int argc)
{
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    vd_profile_send(s, argc, argv, lens, NULL, NULL);
}

static void link_start(vd_profile_store *s)
{
    if (s->cfg.follow_master) {
        /* Sentinel: the master main.c's watcher published last. */
        s->link_gen = vd_profile_master_get(s->cfg.host, sizeof s->cfg.host, &s->cfg.port);
        if (!s->link_gen) {
            link_down(s, "no master known yet (sentinels not answering)");
            return;
        }
    }
    redisAsyncContext *c = s->cfg.is_unix ? redisAsyncConnectUnix(s->cfg.path)
                                          : redisAsyncConnect(s->cfg.host, s->cfg.port);
    if (!c || c->err) {
        const char *why = c ? c->errstr : "out of memory";
        char buf[256];
        snprintf(buf, sizeof buf, "%s", why);
        if (c)
            redisAsyncFree(c);
        link_down(s, buf);
        return;
    }
    c->data = s;
    vd_reply_pool_attach(s->replies, c);
    if (link_attach(s, c) != 0) {
        redisAsyncFree(c);
        link_down(s, "out of memory");
        return;
    }
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    s->ctx = c;
    s->evaled = 0;            /* a new connection: maybe a server without the scripts */
    if (s->cfg.has_password) {
        if (s->cfg.user[0])
            raw_setup(s, (const char *[]){ "AUTH", s->cfg.user, s->cfg.password }, 3);
        else
            raw_setup(s, (const char *[]){ "AUTH", s->cfg.password }, 2);
    }
    if (s->cfg.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->cfg.db);
        raw_setup(s, (const char *[]){ "SELECT", db }, 2);
    }
    /* No SCRIPT LOAD here: twemproxy closes a connection that sends it.
     * The first command of each script on this link goes as EVAL (op_send_cb,
     * s->evaled); Redis caches the body from then on. Through a pool of
     * servers another server may still answer an EVALSHA with NOSCRIPT: it
     * is sent again as EVAL (on_reply). */
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_start(arg);
}

/* Runs from its own event, never inside a hiredis callback. */
static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_profile_store *s = arg;
    redisAsyncContext *c = s->ctx;
    if (!c)
        return;
    s->ctx = NULL;            /* callbacks fired by the free see a stale context */
    redisAsyncFree(c);        /* every op in flight gets a NULL reply */
    link_down(s, s->teardown_why ? s->teardown_why : "no reply in time");
    s->teardown_why = NULL;
}

/* A stopped or wedged server: commands in flight and no reply for STALL_MS. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_profile_store *s = arg;
    if (s->ctx && atomic_load(&s->stats->inflight) > 0 && now_ns() - s->last_progress_ns > STALL_MS * 1000000ULL)
        request_teardown(s, "no reply in time");
    else if (master_moved(s))
        request_teardown(s, "the master moved (sentinel failover)");
}

vd_profile_store *vd_profile_store_new(struct event_base *base, const vd_profile_config *cfg,
                                       vd_profile_stats *stats, vd_track_types *types)
{
    vd_scripts_init();
    vd_profile_store *s = vd_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->cfg = *cfg;
    s->stats = stats;
    s->types = types;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->day_of = INT64_MIN;
    s->retry_ev = evtimer_new(base, on_retry, s);
    s->teardown_ev = evtimer_new(base, on_teardown, s);
    s->watch_ev = event_new(base, -1, EV_PERSIST, on_watch, s);
    s->flush_ev = event_new(base, -1, 0, on_flush, s);
    s->replies = vd_reply_pool_new();
    if (!s->retry_ev || !s->teardown_ev || !s->watch_ev || !s->flush_ev || !s->replies) {
        vd_profile_store_free(s);
        return NULL;
    }
    struct timeval tv = { 0, 500000 };
    event_add(s->watch_ev, &tv);
    link_start(s);
    return s;
}

void vd_profile_store_free(vd_profile_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nbatch; i++) {
        inflight_sub(s);
        event_fail(s->batch[i], "profile store closed");
    }
    s->nbatch = 0;
    fail_deferred(s, "profile store closed");
    if (s->ctx) {
        redisAsyncContext *c = s->ctx;
        s->ctx = NULL;
        redisAsyncFree(c);
    }
    if (s->retry_ev)
        event_free(s->retry_ev);
    if (s->teardown_ev)
        event_free(s->teardown_ev);
    if (s->watch_ev)
        event_free(s->watch_ev);
    if (s->flush_ev)
        event_free(s->flush_ev);
    vd_free(s->fmt);
    vd_free(s->bfields);
    vd_free(s->bshapes);
    vd_reply_pool_free(s->replies);
    while (s->free_ops) {
        vd_profile_op *op = s->free_ops;
        s->free_ops = op->next_free;
        vd_free(op->argv);
        vd_free(op->argvlen);
        vd_free(op->buf);
        vd_free(op->members);
        vd_free(op);
    }
    vd_free(s);
}

bool vd_profile_store_up(const vd_profile_store *s)
{
    return s && s->ctx && s->connected;
}

/* ---- operations ---------------------------------------------------------------- */

static bool hash_of(const vd_profile_store *s, vd_str id, bool known, char out[VD_PROFILE_KEY_LEN],
                    char hex[VD_ID_HASH_HEX])
{
    if (!id.n)
        return false;
    vd_id_hash(s->cfg.key, known, id, hex);
    snprintf(out, VD_PROFILE_KEY_LEN, "vdp1:{%s}", hex);
    return true;
}

bool vd_profile_key(const vd_profile_store *s, const vd_profile_ids *ids, char out[VD_PROFILE_KEY_LEN])
{
    char hex[VD_ID_HASH_HEX];
    if (ids->uid.n)
        return hash_of(s, ids->uid, true, out, hex);
    return hash_of(s, ids->vid, false, out, hex);
}

int vd_profile_send(vd_profile_store *s, int argc, const char **argv, const size_t *argvlen,
                    vd_profile_raw_cb raw_cb, void *arg)
{
    flush_batch(s);           /* the track events called before go first */
    if (!room(s)) {
        STAT_INC(s, profile_overflow);
        return -1;
    }
    vd_profile_op *op = op_new(s, OP_RAW, 0);
    if (!op)
        return -1;
    int bad = 0;
    for (int i = 0; i < argc; i++)
        bad |= op_arg(op, argv[i], argvlen[i]);
    op->raw_cb = raw_cb;
    op->arg = arg;
    if (bad || op_send(op, false) != 0) {
        op_release(op);
        STAT_INC(s, profile_overflow);
        return -1;
    }
    return 0;
}

void vd_profile_set_hooks(vd_profile_store *s, vd_profile_hook on_visit, vd_profile_hook on_track,
                          void *hook_arg)
{
    s->on_visit = on_visit;
    s->on_track = on_track;
    s->hook_arg = hook_arg;
}

/* Merge, step 1 (once per vid; a recently claimed vid is remembered). */
static void maybe_claim(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids)
{
    if (!ids->vid.n || !ids->uid.n || !s->ctx)
        return;               /* the next request with both ids claims it */
    char vkey[VD_PROFILE_KEY_LEN], ukey[VD_PROFILE_KEY_LEN], vhex[VD_ID_HASH_HEX], uhex[VD_ID_HASH_HEX];
    hash_of(s, ids->vid, false, vkey, vhex);
    hash_of(s, ids->uid, true, ukey, uhex);
    uint64_t h = strtoull(vhex + 16, NULL, 16) | 1;
    uint64_t *slot = &s->merged[h % MERGE_CACHE];
    if (*slot == h)
        return;
    vd_profile_op *op = op_new(s, OP_CLAIM, VD_SCRIPT_CLAIM);
    if (!op)
        return;
    if (op_begin(op, vkey) | op_arg(op, uhex, 32) | op_argi(op, s->cfg.ttl_s)) {
        op_release(op);
        return;
    }
    snprintf(op->aux, sizeof op->aux, "%s", ukey);
    op->claim_h = h;
    vd_ruleset_retain((vd_ruleset *)rs);
    op->rs = (vd_ruleset *)rs;
    op_start(op, false);      /* the cache is set when Redis answered */
}

static void send_merge(vd_profile_store *s, vd_profile_op *claim, const redisReply *dump)
{
    vd_profile_op *op = op_new(s, OP_MERGE, VD_SCRIPT_MERGE);
    if (!op)
        return;
    uint32_t ns = claim->rs ? vd_ruleset_nscores(claim->rs) : 0;
    int bad = op_begin(op, claim->aux) | op_argi(op, s->cfg.ttl_s) | op_argi(op, ns);
    for (uint32_t i = 0; i < ns; i++) {
        const vd_score_def *d = vd_ruleset_score_at(claim->rs, i);
        bad |= op_arg(op, d->id.p, d->id.n) | op_argd(op, d->half_life_s);
    }
    for (size_t i = 0; i < dump->elements; i++) {
        const redisReply *e = dump->element[i];
        bad |= e->type == REDIS_REPLY_STRING ? op_arg(op, e->str, (size_t)e->len) : op_arg(op, "", 0);
    }
    if (bad) {
        op_release(op);
        return;
    }
    op_start(op, false);
}

static void send_forget_key(vd_profile_store *s, const char *key)
{
    vd_profile_op *op = op_new(s, OP_FORGET, VD_SCRIPT_FORGET);
    if (!op)
        return;
    if (op_begin(op, key)) {
        op_release(op);
        return;
    }
    op_start(op, false);
}

/* start_common with the key already named. */
static vd_profile_op *start_keyed(vd_profile_store *s, int kind, int script, vd_profile_cb cb, void *arg,
                                  const char *key)
{
    if (!room(s)) {
        STAT_INC(s, profile_overflow);
        return NULL;
    }
    vd_profile_op *op = op_new(s, kind, script);
    if (!op)
        return NULL;
    op->cb = cb;
    op->arg = arg;
    if (op_begin(op, key)) {
        op_release(op);
        return NULL;
    }
    return op;
}

static vd_profile_op *start_common(vd_profile_store *s, int kind, int script, const vd_profile_ids *ids,
                                   vd_profile_cb cb, void *arg, char key[VD_PROFILE_KEY_LEN])
{
    if (!vd_profile_key(s, ids, key))
        return NULL;
    return start_keyed(s, kind, script, cb, arg, key);
}

static uint64_t key_hash(const char *key)
{
    return (uint64_t)vd_hash64(key, strlen(key)) | 1;
}

/* A visit of a profile this worker wrote less than session-gap/30 before
 * (one minute at the default 30) changes nothing but last_seen by less than
 * that: the write is skipped, and a decision that reads the profile reads
 * it with a plain HGETALL. Visits, visit starts and days between visits
 * stay exact to that precision; tracks always go to Redis. */
static visit_seen *seen_set(vd_profile_store *s, uint64_t h)
{
    return &s->seen[(h / 2) % (VISIT_CACHE / VISIT_WAYS) * VISIT_WAYS];
}

static void seen_forget(vd_profile_store *s, const char *key)
{
    uint64_t h = key_hash(key);
    visit_seen *set = seen_set(s, h);
    for (int i = 0; i < VISIT_WAYS; i++)
        if (set[i].h == h)
            set[i].h = 0;
}

static bool visit_coalesced(vd_profile_store *s, const char *key, int64_t ts)
{
    uint64_t h = key_hash(key);
    int64_t window = s->cfg.gap_s / 30;
    visit_seen *set = seen_set(s, h), *e = NULL;
    for (int i = 0; i < VISIT_WAYS && !e; i++)
        if (set[i].h == h)
            e = &set[i];
    if (e && window > 0 && ts >= e->ts && ts - e->ts < window)
        return true;
    if (!e) {                 /* an empty way, else the one written longest ago */
        e = &set[0];
        for (int i = 1; i < VISIT_WAYS && e->h; i++)
            if (!set[i].h || set[i].ts < e->ts)
                e = &set[i];
    }
    e->h = h;
    e->ts = ts;
    return false;
}

vd_profile_op *vd_profile_visit(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                                int64_t ts, bool read, vd_profile_cb cb, void *arg)
{
    char key[VD_PROFILE_KEY_LEN] = "";
    maybe_claim(s, rs, ids);
    bool coalesced = vd_profile_key(s, ids, key) && s->ctx && visit_coalesced(s, key, ts);
    if (coalesced && !(read && cb)) {
        STAT_INC(s, profile_visits_coalesced);
        if (s->on_visit)
            s->on_visit(s->hook_arg, s, rs, key, ids, ts, NULL);
        return NULL;
    }
    read = read && cb;
    vd_profile_op *op = key[0] ? start_keyed(s, OP_VISIT, VD_SCRIPT_VISIT, read ? cb : NULL, arg, key)
                               : start_common(s, OP_VISIT, VD_SCRIPT_VISIT, ids, read ? cb : NULL, arg, key);
    if (!op)
        return NULL;
    if (op_argi(op, ts) | op_argi(op, s->cfg.gap_s) | op_argi(op, s->cfg.ttl_s) |
        op_arg(op, ids->uid.n ? "1" : "0", 1)) {
        op_release(op);
        return NULL;
    }
    if (read) {
        vd_ruleset_retain((vd_ruleset *)rs);
        op->rs = (vd_ruleset *)rs;
        op->reads = true;
        op->plain = coalesced;
        STAT_INC(s, profile_reads);
        if (coalesced)
            STAT_INC(s, profile_visits_coalesced);
    } else {
        STAT_INC(s, profile_visits);
    }
    vd_profile_op *r = op_start(op, read);
    if (s->on_visit && s->ctx)
        s->on_visit(s->hook_arg, s, rs, key, ids, ts, NULL);
    return r;
}

/* ---- exposures ---------------------------------------------------------------- */

static uint64_t exposure_hash(const char *key, const vd_profile_exposure *x)
{
    char b[VD_PROFILE_KEY_LEN + 3 * (VD_MAX_ID_LEN + 1) + 8];
    size_t n = strlen(key);
    if (n + x->slot.n + x->rule.n + x->variant.n + 3 > sizeof b)
        return 0;
    memcpy(b, key, n);
    b[n++] = '\0';
    memcpy(b + n, x->slot.p, x->slot.n);
    n += x->slot.n;
    b[n++] = '\0';
    memcpy(b + n, x->rule.p, x->rule.n);
    n += x->rule.n;
    b[n++] = '\0';
    memcpy(b + n, x->variant.p, x->variant.n);
    n += x->variant.n;
    return (uint64_t)vd_hash64(b, n) | 1;
}

static expose_seen *exposed_set(vd_profile_store *s, uint64_t h)
{
    return &s->exposed[(h / 2) % (EXPOSE_CACHE / VISIT_WAYS) * VISIT_WAYS];
}

/* Redis answered an exposure: the profile holds the pair at t (-1: it
 * holds another). */
static void exposed_note(vd_profile_store *s, uint64_t h, long long t, int64_t at, uint64_t gen)
{
    if (!h)
        return;
    expose_seen *set = exposed_set(s, h), *e = NULL;
    for (int i = 0; i < VISIT_WAYS && !e; i++)
        if (set[i].h == h)
            e = &set[i];
    if (t < 0) {
        if (e)
            e->h = 0;
        return;
    }
    if (!e) {
        e = &set[0];
        for (int i = 1; i < VISIT_WAYS && e->h; i++)
            if (!set[i].h || set[i].at < e->at)
                e = &set[i];
    }
    *e = (expose_seen){ h, (int64_t)t, at, gen };
}

/* The script would answer "already exposed" (as far as this worker can
 * know: within session-gap/30 of its last word from Redis on the pair). */
static bool exposed_fresh(vd_profile_store *s, uint64_t h, int64_t ts, int64_t window, uint64_t gen)
{
    int64_t horizon = s->cfg.gap_s / 30;
    if (!h || horizon <= 0)
        return false;
    expose_seen *set = exposed_set(s, h);
    for (int i = 0; i < VISIT_WAYS; i++)
        if (set[i].h == h)
            return set[i].gen == gen && ts >= set[i].at && ts - set[i].at < horizon &&
                   (ts > set[i].t ? ts - set[i].t : set[i].t - ts) < window;
    return false;
}

static unsigned expose_batch(vd_profile_store *s, const vd_profile_ids *ids, const char *key, int64_t ts,
                             bool touch, const vd_learn_opts *o, const vd_profile_exposure *x,
                             const uint64_t *xh, unsigned n, uint64_t gen)
{
    vd_profile_op *op = start_keyed(s, OP_DECIDE, VD_SCRIPT_DECIDE, NULL, NULL, key);
    if (!op)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    int64_t dn = (ts >= 0 ? ts : ts - 86399) / 86400;
    if (dn != s->day_of) {    /* the UTC day changes once a day */
        vd_learn_day(ts, s->day);
        s->day_of = dn;
    }
    const char *day = s->day;
    const char *stream = o->stream ? o->stream : "";
    int bad = op_argi(op, ts) | op_argi(op, s->cfg.gap_s) | op_argi(op, s->cfg.ttl_s) |
              op_arg(op, ids->uid.n ? "1" : "0", 1) | op_arg(op, touch ? "1" : "0", 1) |
              op_arg(op, o->ns, strlen(o->ns)) | op_argi(op, o->window_s) | op_arg(op, day, 8) |
              op_arg(op, stream, strlen(stream)) | op_argi(op, o->stream_maxlen) | op_argi(op, us) |
              op_argi(op, o->ttl_s);
    for (unsigned i = 0; i < n; i++) {
        bad |= op_arg(op, x[i].slot.p, x[i].slot.n) | op_arg(op, x[i].rule.p, x[i].rule.n) |
               op_arg(op, x[i].variant.p, x[i].variant.n) |
               op_arg(op, x[i].bandit ? "bandit" : "", x[i].bandit ? 6 : 0);
        op->xh[i] = xh[i];
    }
    if (bad) {
        op_release(op);
        return 0;
    }
    op->nx = n;
    op->ts = ts;
    op->gen = gen;
    op_start(op, false);
    return n;
}

unsigned vd_profile_expose(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids, int64_t ts,
                           bool visit, const vd_learn_opts *o, const vd_profile_exposure *x, unsigned n)
{
    char key[VD_PROFILE_KEY_LEN];
    if (!vd_profile_key(s, ids, key))
        return 0;
    uint64_t gen = vd_learn_epochs();
    vd_profile_exposure keep[EXPOSE_BATCH];
    uint64_t kh[EXPOSE_BATCH];
    unsigned nk = 0, sent = 0;
    bool touch = visit;
    if (visit) {
        maybe_claim(s, rs, ids);
        if (s->ctx && visit_coalesced(s, key, ts)) {
            touch = false;
            STAT_INC(s, profile_visits_coalesced);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t h = x[i].stable ? exposure_hash(key, &x[i]) : 0;
        if (exposed_fresh(s, h, ts, o->window_s, gen)) {
            STAT_INC(s, profile_exposures_coalesced);
            continue;
        }
        keep[nk] = x[i];
        kh[nk++] = h;
        if (nk == EXPOSE_BATCH || i + 1 == n) {
            sent += expose_batch(s, ids, key, ts, touch, o, keep, kh, nk, gen);
            if (touch)
                STAT_INC(s, profile_visits);
            touch = false;
            nk = 0;
        }
    }
    if (nk) {
        sent += expose_batch(s, ids, key, ts, touch, o, keep, kh, nk, gen);
        if (touch)
            STAT_INC(s, profile_visits);
        touch = false;
    }
    if (touch) {
        /* Every exposure was known: the visit alone. */
        vd_profile_op *op = start_keyed(s, OP_VISIT, VD_SCRIPT_VISIT, NULL, NULL, key);
        if (op && (op_argi(op, ts) | op_argi(op, s->cfg.gap_s) | op_argi(op, s->cfg.ttl_s) |
                   op_arg(op, ids->uid.n ? "1" : "0", 1))) {
            op_release(op);
            op = NULL;
        }
        if (op) {
            STAT_INC(s, profile_visits);
            op_start(op, false);
        }
    }
    return sent;
}

static void count_type(vd_profile_store *s, vd_str type)
{
    vd_track_types *t = s->types;
    if (!t)
        return;
    uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        if (strlen(t->name[i]) == type.n && memcmp(t->name[i], type.p, type.n) == 0) {
            atomic_fetch_add_explicit(&t->count[i], 1, memory_order_relaxed);
            return;
        }
    if (n < VD_TRACK_TYPES && type.n < sizeof t->name[0]) {
        vd_str_copy(t->name[n], sizeof t->name[n], type);
        atomic_fetch_add_explicit(&t->count[n], 1, memory_order_relaxed);
        atomic_store_explicit(&t->n, n + 1, memory_order_release);
        return;
    }
    atomic_fetch_add_explicit(&t->count[VD_TRACK_TYPES], 1, memory_order_relaxed);
}

vd_profile_op *vd_profile_track(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                                int64_t ts, const vd_profile_event *ev, bool count,
                                vd_profile_cb cb, void *arg)
{
    vd_str type = ev->type, category = ev->category;
    char key[VD_PROFILE_KEY_LEN];
    maybe_claim(s, rs, ids);
    count_type(s, type);
    /* Kept in event_lua's layout: the batch takes its arguments from it, and
     * an event for a merged vid is re-sent with it to the uid's profile. */
    vd_profile_op *op = start_common(s, OP_EVENT, VD_SCRIPT_EVENT, ids, cb, arg, key);
    if (!op) {
        if (!cb)
            STAT_INC(s, track_lost);
        return NULL;
    }
    uint32_t ns = rs ? vd_ruleset_nscores(rs) : 0;
    int bad = 0;
    for (uint32_t i = 0; i < ns && !count; i++) {
        const vd_score_def *d = vd_ruleset_score_at(rs, i);
        for (uint32_t k = 0; k < d->nevents && !count; k++)
            count = vd_str_eq(d->events[k].type, type);
    }
    bad |= op_argi(op, ts) | op_argi(op, s->cfg.gap_s) | op_argi(op, s->cfg.ttl_s) |
           op_arg(op, ids->uid.n ? "1" : "0", 1) | op_arg(op, type.p, type.n) |
           op_arg(op, count ? "1" : "0", 1);
    for (uint32_t i = 0; i < ns; i++) {
        const vd_score_def *d = vd_ruleset_score_at(rs, i);
        double pts;
        if (vd_score_counts(d, type, category, &pts))
            bad |= op_arg(op, d->id.p, d->id.n) | op_argd(op, pts) |
                   op_argd(op, d->half_life_s);
    }
    if (bad) {
        op_release(op);
        if (!cb)
            STAT_INC(s, track_lost);
        return NULL;
    }
    if (!batch_add(op)) {
        if (!cb)
            STAT_INC(s, track_lost);
        return NULL;
    }
    vd_profile_op *r = cb ? op : NULL;
    if (s->on_track && s->ctx)
        s->on_track(s->hook_arg, s, rs, key, ids, ts, ev);
    return r;
}

vd_profile_op *vd_profile_show(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                               vd_profile_cb cb, void *arg)
{
    char key[VD_PROFILE_KEY_LEN];
    vd_profile_op *op = start_common(s, OP_SHOW, VD_SCRIPT_SHOW, ids, cb, arg, key);
    if (!op)
        return NULL;
    if (rs) {
        vd_ruleset_retain((vd_ruleset *)rs);
        op->rs = (vd_ruleset *)rs;
    }
    STAT_INC(s, profile_shows);
    return op_start(op, false);
}

vd_profile_op *vd_profile_flag(vd_profile_store *s, const vd_profile_ids *ids, vd_str flag,
                               int64_t expires_at, bool clear, vd_profile_cb cb, void *arg)
{
    char key[VD_PROFILE_KEY_LEN];
    vd_profile_op *op = start_common(s, OP_FLAG, VD_SCRIPT_FLAG, ids, cb, arg, key);
    if (!op)
        return NULL;
    if (op_arg(op, flag.p, flag.n) | op_argi(op, expires_at) | op_arg(op, clear ? "1" : "0", 1) |
        op_argi(op, s->cfg.ttl_s)) {
        op_release(op);
        return NULL;
    }
    STAT_INC(s, profile_flags);
    return op_start(op, false);
}

vd_profile_op *vd_profile_forget(vd_profile_store *s, const vd_profile_ids *ids, vd_profile_cb cb,
                                 void *arg)
{
    char key[VD_PROFILE_KEY_LEN];
    vd_profile_op *op = start_common(s, OP_FORGET, VD_SCRIPT_FORGET, ids, cb, arg, key);
    if (!op)
        return NULL;
    seen_forget(s, key);      /* the next visit writes again */
    s->ttl_set[key_hash(key) % TTL_CACHE].h = 0;
    /* A forgotten vid+uid pair: both keys. */
    if (ids->uid.n && ids->vid.n) {
        char vkey[VD_PROFILE_KEY_LEN], vhex[VD_ID_HASH_HEX];
        hash_of(s, ids->vid, false, vkey, vhex);
        send_forget_key(s, vkey);
    }
    return op_start(op, false);
}
