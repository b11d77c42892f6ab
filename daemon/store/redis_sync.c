#include "store/redis_sync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/adapters/libevent.h>

#include "core/alloc.h"
#include "core/errors.h"
#include "core/log.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "store/live.h"
#include "store/redis_url.h"
#include "store/release.h"
#include "store/sentinel.h"
#include "store/snapshot.h"
#include "variantd/limits.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define VLEN 128

enum { LINK_DOWN = 0, LINK_CONNECTING, LINK_UP };

/* Handed to the compile thread; it owns the docset from then on. */
typedef struct compile_job {
    vd_docset ds;
    char version[VLEN];
} compile_job;

struct vd_redis_sync {
    struct event_base *base;
    vd_redis_url url;
    char connect_host[256];       /* numeric address actually dialled ("" = master not known yet) */
    vd_sentinel *sentinel;        /* redis-sentinel:// URLs: where the master is */
    bool await_master;            /* link_start waits for the sentinel's first answer */
    char desc[1400];
    char snapshot[4096];
    char k_current[128], k_channel[128], k_release[128], k_daemon[512];
    char listen[256];
    long poll_ms, timeout_ms;
    long compile_nice;            /* compile-nice */

    redisAsyncContext *cmd, *sub;
    int link;
    int pending;                  /* replies owed on either connection */
    long backoff_ms;
    unsigned rand_state;
    struct event *deadline, *poll_timer, *retry_timer, *teardown_ev;

    bool fetching;                /* GET current / HGETALL in flight */
    bool compiling;               /* a job is with the compile thread */
    bool recheck;                 /* a check was asked for while busy */
    bool empty_logged;
    bool fail_logged;             /* this outage was already logged at warn */
    unsigned fails_quiet;         /* failures since then (about 1/min logged at the cap) */
    char served[VLEN];            /* accepted (or snapshot) version */
    char rejected[VLEN];          /* last version rejected: not fetched again */
    char missing[VLEN];           /* current points to a missing release (logged once) */
    char broken[256];             /* last broken-key complaint logged: once per change */
    char inflight[VLEN];
    void (*on_change)(void);

    /* compile thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    compile_job *job;             /* next job, guarded by mu */
    bool quit;
    bool result_ok;               /* last result, guarded by mu */
    char result_version[VLEN];
    int pipe_fd[2];               /* thread -> loop: "a result is ready" */
    struct event *pipe_ev;
};

static void link_fail(vd_redis_sync *s, const char *why);
static void check(vd_redis_sync *s);

/* A key holding what it should not (the wrong type, an absurd size) is a
 * state, not an event: logged when it appears or changes, not on every
 * poll. A good read clears it, so the same fault coming back is logged
 * again. */
static void broken_key(vd_redis_sync *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void broken_key(vd_redis_sync *s, const char *fmt, ...)
{
    char msg[sizeof s->broken];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(msg, s->broken) == 0)
        return;
    memcpy(s->broken, msg, sizeof msg);
    vd_warn("%s; still serving %s", msg, s->served[0] ? s->served : "nothing (not ready)");
}

/* ---- compile thread ---- */

static void *compile_main(void *arg)
{
    vd_redis_sync *s = arg;
    /* Linux nice is per thread: with a nice below the workers' (compile-nice,
     * default -10), a compile on a machine the workers keep busy takes about
     * its own CPU time instead of a third of the CPU (a 10,000-segment swap
     * went from ~300 to ~100 ms under the bench's load). */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)s->compile_nice) != 0)
        vd_info("compile-nice %ld not permitted (%s; needs CAP_SYS_NICE or LimitNICE): compiles run at "
                "the workers' priority", s->compile_nice, strerror(errno));
    vd_errors *err = vd_malloc(sizeof *err);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->job && !s->quit)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        compile_job *j = s->job;
        s->job = NULL;
        pthread_mutex_unlock(&s->mu);

        bool ok = false;
        if (err) {
            vd_errors_init(err);
            vd_ruleset *rs = vd_ruleset_compile(&j->ds, j->version, err);
            if (rs) {
                vd_info("ruleset %s loaded from Redis: %u segments, %u slots", j->version,
                        vd_ruleset_nsegments(rs), vd_ruleset_nslots(rs));
                vd_live_set(rs, VD_SOURCE_REDIS);
                ok = true;
                if (s->snapshot[0]) {
                    char m[600];
                    if (vd_snapshot_write(s->snapshot, j->version, &j->ds, m, sizeof m) != 0)
                        vd_warn("snapshot not written: %s", m);
                }
            } else if (vd_ruleset_compiles_cancelled()) {
                vd_info("release %s: compile cancelled: shutting down", j->version);
            } else {
                char what[200], summary[VD_ERROR_LEN + 32];
                snprintf(what, sizeof what, "release %s rejected, still serving the previous ruleset",
                         j->version);
                for (size_t i = 0; i < err->n; i++)
                    vd_error("%s: %s", what, err->msg[i]);
                if (err->dropped)
                    vd_error("%s: ... and %zu more errors", what, err->dropped);
                vd_live_failed(vd_errors_summary(err, summary, sizeof summary));
            }
        } else {
            vd_live_failed("out of memory compiling a release");
        }
        pthread_mutex_lock(&s->mu);
        s->result_ok = ok;
        snprintf(s->result_version, sizeof s->result_version, "%s", j->version);
        pthread_mutex_unlock(&s->mu);
        vd_docset_free(&j->ds);
        vd_free(j);
        malloc_trim(0);   /* the compile's memory back to the system (thread arena) */
        char b = 1;
        ssize_t w;
        do
            w = write(s->pipe_fd[1], &b, 1);
        while (w < 0 && errno == EINTR);
    }
    vd_free(err);
    return NULL;
}

static void register_self(vd_redis_sync *s);

static void on_compiled(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    vd_redis_sync *s = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    bool ok = s->result_ok;
    char v[VLEN];
    snprintf(v, sizeof v, "%s", s->result_version);
    pthread_mutex_unlock(&s->mu);
    s->compiling = false;
    if (ok)
        snprintf(s->served, sizeof s->served, "%s", v);
    else
        snprintf(s->rejected, sizeof s->rejected, "%s", v);
    register_self(s);
    if (s->on_change)
        s->on_change();
    if (s->recheck) {
        s->recheck = false;
        check(s);
    }
}

/* ---- deadlines and commands ---- */

static void arm_deadline(vd_redis_sync *s)
{
    if (s->pending > 0) {
        struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };
        event_add(s->deadline, &tv);
    } else {
        event_del(s->deadline);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_redis_sync *s = arg;
    char why[96];
    snprintf(why, sizeof why, "no answer within %ld ms", s->timeout_ms);
    link_fail(s, why);
}

/* A reply arrived on context c. Returns false if it belongs to a context
 * being torn down (reply NULL or stale) and must be ignored. */
static bool got_reply(vd_redis_sync *s, redisAsyncContext *c, redisReply *r, bool counted)
{
    if (!r || !c || (c != s->cmd && c != s->sub) || s->link == LINK_DOWN)
        return false;
    /* Only an answer to a command is progress; a pushed message says
     * nothing about the command connection. */
    if (counted) {
        if (s->pending > 0)
            s->pending--;
        arm_deadline(s);
    }
    return true;
}

/* A command answered properly: Redis is usable. Only then does the link
 * count as up and the backoff reset (a refused AUTH must not make a
 * reconnect loop without backoff). */
static void link_ok(vd_redis_sync *s)
{
    vd_live_store_contact();
    s->fail_logged = false;
    s->fails_quiet = 0;
    if (s->link == LINK_CONNECTING) {
        s->link = LINK_UP;
        s->backoff_ms = BACKOFF_MIN_MS;
        if (s->sentinel)
            vd_info("redis: connected to %s (master at %s:%d)", s->desc, s->connect_host, s->url.port);
        else
            vd_info("redis: connected to %s", s->desc);
    }
}

static int send_cmd(vd_redis_sync *s, redisAsyncContext *c, redisCallbackFn *fn, const char *fmt,
                    ...)
{
    if (!c)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(c, fn, s, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        link_fail(s, "cannot queue a command");
        return -1;
    }
    /* The deadline runs from the oldest unanswered command: later sends do
     * not push it back (a stopped server must not stay "alive" by polls). */
    if (s->pending++ == 0)
        arm_deadline(s);
    return 0;
}

static void on_setup_reply(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "AUTH/SELECT refused: %.200s", r->str);
        link_fail(s, why);
    }
}

static void on_fire_and_forget(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (got_reply(s, c, r, true) && r->type == REDIS_REPLY_ERROR)
        vd_debug("redis: %s", r->str);
}

/* ---- release fetch ---- */

static void reject(vd_redis_sync *s, const char *version, const vd_errors *err)
{
    char summary[VD_ERROR_LEN + 32];
    for (size_t i = 0; i < err->n; i++)
        vd_error("release %s rejected, still serving the previous ruleset: %s", version, err->msg[i]);
    vd_live_failed(vd_errors_summary(err, summary, sizeof summary));
    snprintf(s->rejected, sizeof s->rejected, "%s", version);
}

static void on_release(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    s->fetching = false;
    if (r->type != REDIS_REPLY_ERROR)
        link_ok(s);
    char version[VLEN];
    snprintf(version, sizeof version, "%s", s->inflight);
    if (r->type != REDIS_REPLY_ARRAY) {
        vd_warn("redis: HGETALL of release %s: %s", version,
                r->type == REDIS_REPLY_ERROR ? r->str : "not a hash");
        goto done;
    }
    if (r->elements == 0) {
        /* Perhaps written out of order by hand: retried at the next poll. */
        if (strcmp(s->missing, version) != 0) {
            vd_error("redis: current points to release %s, which does not exist; still serving %s",
                     version, s->served[0] ? s->served : "nothing (not ready)");
            vd_live_failed("current points to a missing release");
            snprintf(s->missing, sizeof s->missing, "%s", version);
        }
        goto done;
    }
    size_t nf = r->elements / 2;
    vd_release_field *f = vd_calloc(nf ? nf : 1, sizeof *f);
    vd_errors *err = vd_malloc(sizeof *err);
    compile_job *j = vd_calloc(1, sizeof *j);
    if (!f || !err || !j) {
        vd_free(f);
        vd_free(err);
        vd_free(j);
        vd_error("redis: out of memory reading release %s", version);
        goto done;
    }
    vd_errors_init(err);
    bool bad = false;
    for (size_t i = 0; i < nf; i++) {
        redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            bad = true;
            break;
        }
        f[i] = (vd_release_field){ k->str, k->len, v->str, v->len };
    }
    vd_docset_init(&j->ds);
    if (bad)
        vd_errors_addf(err, "release hash holds a non-string field");
    if (bad || vd_release_to_docset(f, nf, &j->ds, err) != 0) {
        reject(s, version, err);
        vd_free(j);
    } else {
        snprintf(j->version, sizeof j->version, "%s", version);
        pthread_mutex_lock(&s->mu);
        if (s->job) { /* cannot happen: one job at a time; be safe */
            vd_docset_free(&s->job->ds);
            vd_free(s->job);
        }
        s->job = j;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        s->compiling = true;
    }
    vd_free(f);
    vd_free(err);
done:
    if (s->recheck && !s->compiling) {
        s->recheck = false;
        check(s);
    }
}

/* {fields, total bytes of names and values, largest value} of a hash. */
#define RELEASE_SIZE_LUA                                                                    \
    "local n, t, m = 0, 0, 0 "                                                            \
    "for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do "                                   \
    "local l = redis.call('HSTRLEN', KEYS[1], f) "                                           \
    "n = n + 1 t = t + l + #f if l > m then m = l end end "                                  \
    "return {n, t, m}"

static void on_release_size(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    char version[VLEN];
    snprintf(version, sizeof version, "%s", s->inflight);
    if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        s->fetching = false;
        if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "WRONGTYPE")) {
            link_ok(s);
            vd_errors e1;
            vd_errors_init(&e1);
            vd_errors_addf(&e1, "%s%s is not a hash", s->k_release, version);
            reject(s, version, &e1);
        } else {
            /* Scripting refused (a managed Redis without EVAL): fetch. */
            if (r->type == REDIS_REPLY_ERROR)
                vd_debug("redis: size check not available (%.100s); fetching", r->str);
            char key[VLEN + 160];
            snprintf(key, sizeof key, "%s%s", s->k_release, version);
            if (send_cmd(s, s->cmd, on_release, "HGETALL %s", key) == 0)
                s->fetching = true;
        }
        goto done;
    }
    link_ok(s);
    long long n = r->element[0]->integer, total = r->element[1]->integer,
              big = r->element[2]->integer;
    vd_errors e1;
    vd_errors_init(&e1);
    if (n > VD_RELEASE_MAX_DOCS + 1)
        vd_errors_addf(&e1, "%lld fields, more than %d documents: not fetched", n,
                       VD_RELEASE_MAX_DOCS);
    else if (total > (long long)VD_RELEASE_MAX_BYTES)
        vd_errors_addf(&e1, "%lld bytes, more than the limit of %ld: not fetched", total,
                       (long)VD_RELEASE_MAX_BYTES);
    else if (big > VD_MAX_DEF_FILE_BYTES)
        vd_errors_addf(&e1, "a document of %lld bytes, more than the limit of %d: not fetched",
                       big, VD_MAX_DEF_FILE_BYTES);
    if (e1.n) {
        s->fetching = false;
        reject(s, version, &e1);
        goto done;
    }
    char key[VLEN + 160];
    snprintf(key, sizeof key, "%s%s", s->k_release, version);
    if (send_cmd(s, s->cmd, on_release, "HGETALL %s", key) == 0)
        return;                   /* still fetching */
    s->fetching = false;
done:
    if (s->recheck && !s->fetching && !s->compiling) {
        s->recheck = false;
        check(s);
    }
}

static void handle_current(vd_redis_sync *s, redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL) {
        /* An empty (restarted, flushed) Redis never wipes what we serve. */
        if (!s->empty_logged) {
            if (s->served[0])
                vd_warn("redis: no current release in Redis; keeping %s", s->served);
            else
                vd_warn("redis: no current release in Redis yet; not ready until one is published");
            s->empty_logged = true;
        }
        return;
    }
    s->empty_logged = false;
    if (r->type != REDIS_REPLY_STRING) {
        broken_key(s, "redis: %s: %.160s", s->k_current,
                   r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
        return;
    }
    char version[VLEN];
    if (!vd_release_version_ok(r->str, r->len)) {
        snprintf(version, sizeof version, "%.*s", (int)(r->len > 64 ? 64 : r->len), r->str);
        if (strcmp(s->rejected, version) != 0) {
            vd_errors err1;
            vd_errors_init(&err1);
            vd_errors_addf(&err1, "current holds an invalid version string");
            reject(s, version, &err1);
        }
        return;
    }
    snprintf(version, sizeof version, "%.*s", (int)r->len, r->str);
    s->broken[0] = '\0';
    if (strcmp(version, s->served) == 0) {
        vd_live_confirm(version, VD_SOURCE_REDIS);
        return;
    }
    if (strcmp(version, s->rejected) == 0)
        return;
    char key[VLEN + 160];
    snprintf(key, sizeof key, "%s%s", s->k_release, version);
    snprintf(s->inflight, sizeof s->inflight, "%s", version);
    /* Sizes first, computed in Redis (HLEN, HSTRLEN of every field): a
     * release too large to accept is refused without being fetched (a
     * 300 MB HGETALL timed out and was fetched again, in a loop). */
    if (send_cmd(s, s->cmd, on_release_size, "EVAL %s 1 %s", RELEASE_SIZE_LUA, key) == 0)
        s->fetching = true;
}

static void on_current(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    s->fetching = false;
    if (r->type != REDIS_REPLY_ERROR)
        link_ok(s);
    handle_current(s, r);
    /* A notification that came while this GET was out may name a newer
     * release than the one it returned. */
    if (s->recheck && !s->fetching && !s->compiling) {
        s->recheck = false;
        check(s);
    }
}

/* STRLEN before GET: a "current" of 100 MB is refused from its size, not
 * fetched on every poll. */
static void on_current_len(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        s->fetching = false;
        broken_key(s, "redis: %s: %.160s", s->k_current, r->str);
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer > VD_RELEASE_MAX_VERSION) {
        s->fetching = false;
        link_ok(s);
        broken_key(s, "redis: %s holds %lld bytes, more than a release version (%d bytes): "
                   "not fetched", s->k_current, r->integer, VD_RELEASE_MAX_VERSION);
    } else {
        link_ok(s);
        /* 0 is a missing key (or an empty string): GET tells which. */
        if (send_cmd(s, s->cmd, on_current, "GET %s", s->k_current) == 0)
            return;               /* still fetching */
        s->fetching = false;
    }
    if (s->recheck && !s->fetching && !s->compiling) {
        s->recheck = false;
        check(s);
    }
}

static void check(vd_redis_sync *s)
{
    if (s->link != LINK_UP && s->link != LINK_CONNECTING)
        return;
    if (s->fetching || s->compiling) {
        s->recheck = true;
        return;
    }
    if (send_cmd(s, s->cmd, on_current_len, "STRLEN %s", s->k_current) == 0)
        s->fetching = true;
}

/* NS:daemons:<host>:<pid> = what we serve, expiring unless refreshed. */
static void register_self(vd_redis_sync *s)
{
    if (s->link != LINK_UP || !s->cmd)
        return;
    vd_live_info info;
    vd_live_get_info(&info);
    char val[700];
    bool ready = info.loaded_at != 0;
    snprintf(val, sizeof val,
             "{\"version\":%s%s%s,\"source\":\"%s\",\"loaded_at\":%lld,\"stale\":%s,"
             "\"listen\":\"%s\",\"at\":%lld}",
             ready ? "\"" : "", ready ? info.version : "null", ready ? "\"" : "",
             vd_source_name(ready ? info.source : VD_SOURCE_NONE), (long long)info.loaded_at,
             info.stale ? "true" : "false", s->listen, (long long)time(NULL));
    long ttl = s->poll_ms * 5 / 1000;
    if (ttl < 10)
        ttl = 10;
    send_cmd(s, s->cmd, on_fire_and_forget, "SET %s %s EX %ld", s->k_daemon, val, ttl);
}

/* ---- subscriber ---- */

static void on_sub(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!r || (c != s->sub) || s->link == LINK_DOWN)
        return;
    bool msg = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0;
    /* The subscribe confirmation is the one reply we are owed here. */
    if (!got_reply(s, c, r, !msg))
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "SUBSCRIBE refused: %.200s", r->str);
        link_fail(s, why);
        return;
    }
    if (!msg)
        link_ok(s);
    if (msg)
        vd_debug("redis: notified of release %.*s", (int)(r->element[2]->len > 100 ? 100 : r->element[2]->len),
                 r->element[2]->str ? r->element[2]->str : "");
    /* After (re)subscribing, too: a release may have been missed meanwhile. */
    check(s);
}

/* ---- link lifecycle ---- */

static void on_connect(const redisAsyncContext *c, int status)
{
    vd_redis_sync *s = c->data;
    if (status == REDIS_OK || (c != s->cmd && c != s->sub))
        return;
    /* hiredis frees c after this callback returns. */
    char why[300];
    snprintf(why, sizeof why, "connect failed: %.200s", c->errstr);
    if (c == s->cmd)
        s->cmd = NULL;
    else
        s->sub = NULL;
    link_fail(s, why);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    vd_redis_sync *s = c->data;
    if (c != s->cmd && c != s->sub)
        return;               /* our own teardown */
    (void)status;
    char why[300];
    snprintf(why, sizeof why, "connection lost: %.200s", c->err ? c->errstr : "closed by server");
    if (c == s->cmd)
        s->cmd = NULL;
    else
        s->sub = NULL;
    link_fail(s, why);
}

static redisAsyncContext *open_ctx(vd_redis_sync *s, char *why, size_t cap)
{
    redisAsyncContext *c = s->url.is_unix ? redisAsyncConnectUnix(s->url.path)
                                          : redisAsyncConnect(s->connect_host, s->url.port);
    if (!c) {
        snprintf(why, cap, "connect: out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, cap, "connect failed: %.200s", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    c->data = s;
    redisLibeventAttach(c, s->base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

/* Sentinel mode: the server we reached must still be the master (during a
 * failover the old one answers as a replica for a while). */
static void on_role(redisAsyncContext *c, void *reply, void *priv)
{
    vd_redis_sync *s = priv;
    redisReply *r = reply;
    if (!got_reply(s, c, r, true))
        return;
    bool master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                  r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (!master) {
        vd_sentinel_refresh(s->sentinel);
        link_fail(s, r->type == REDIS_REPLY_ERROR ? "ROLE refused" : "it is not the master (any more)");
    }
}

static void setup_cmds(vd_redis_sync *s, redisAsyncContext *c)
{
    if (s->url.has_password) {
        if (s->url.user[0])
            send_cmd(s, c, on_setup_reply, "AUTH %s %s", s->url.user, s->url.password);
        else
            send_cmd(s, c, on_setup_reply, "AUTH %s", s->url.password);
    }
    if (s->url.db)
        send_cmd(s, c, on_setup_reply, "SELECT %d", s->url.db);
    if (s->sentinel && c == s->cmd)
        send_cmd(s, c, on_role, "ROLE");
}

static void link_start(vd_redis_sync *s)
{
    if (s->sentinel && !s->connect_host[0]) {
        s->await_master = true;   /* on_master starts the link */
        return;
    }
    s->link = LINK_CONNECTING;
    s->pending = 0;
    char why[300] = "";
    s->cmd = open_ctx(s, why, sizeof why);
    s->sub = s->cmd ? open_ctx(s, why, sizeof why) : NULL;
    if (!s->cmd || !s->sub) {
        link_fail(s, why);
        return;
    }
    setup_cmds(s, s->cmd);
    setup_cmds(s, s->sub);
    if (s->link != LINK_CONNECTING)
        return;
    if (redisAsyncCommand(s->sub, on_sub, s, "SUBSCRIBE %s", s->k_channel) != REDIS_OK) {
        link_fail(s, "cannot queue SUBSCRIBE");
        return;
    }
    s->pending++;
    s->fetching = false;
    check(s);
    arm_deadline(s);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_redis_sync *s = arg;
    vd_live_store_reconnect();
    link_start(s);
}

/* Runs from its own event, never inside a hiredis callback. */
static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_redis_sync *s = arg;
    redisAsyncContext *a = s->cmd, *b = s->sub;
    s->cmd = s->sub = NULL;   /* callbacks fired by the frees see stale contexts */
    if (a)
        redisAsyncFree(a);
    if (b)
        redisAsyncFree(b);
    /* Full jitter in [d/2, d]: a fleet does not reconnect in lockstep. */
    long d = s->backoff_ms;
    s->rand_state = s->rand_state * 1103515245u + 12345u;
    long wait = d / 2 + (long)((s->rand_state >> 8) % (unsigned)(d / 2 + 1));
    s->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    struct timeval tv = { wait / 1000, (wait % 1000) * 1000 };
    event_add(s->retry_timer, &tv);
}

static void link_fail(vd_redis_sync *s, const char *why)
{
    if (s->link == LINK_DOWN)
        return;
    /* The master may have moved: ask before the next attempt. */
    vd_sentinel_refresh(s->sentinel);
    bool first = !s->fail_logged;
    s->fail_logged = true;
    s->link = LINK_DOWN;
    s->pending = 0;
    s->fetching = false;
    event_del(s->deadline);
    vd_live_store_lost();
    /* warn once per outage, then quieter */
    if (first)
        vd_warn("redis: %s: %s; still serving %s, reconnecting", s->desc, why,
                s->served[0] ? s->served : "nothing (not ready)");
    else if (++s->fails_quiet <= 4 || s->fails_quiet % 12 == 0)
        vd_info("redis: %s: %s; retrying (attempt %u)", s->desc, why, s->fails_quiet + 1);
    else
        vd_debug("redis: %s: %s; retrying", s->desc, why);
    struct timeval zero = { 0, 0 };
    event_add(s->teardown_ev, &zero);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_redis_sync *s = arg;
    if (s->link != LINK_UP)
        return;
    check(s);
    register_self(s);
}

/* The sentinel named a (new) master: reconnect there at once. */
static void on_master(void *arg, const char *host, int port)
{
    vd_redis_sync *s = arg;
    snprintf(s->connect_host, sizeof s->connect_host, "%s", host);
    s->url.port = port;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (s->await_master) {
        s->await_master = false;
        link_start(s);
    } else if (s->link != LINK_DOWN) {
        link_fail(s, "the master moved");
    } else if (event_pending(s->retry_timer, EV_TIMEOUT, NULL)) {
        struct timeval zero = { 0, 0 };
        event_del(s->retry_timer);
        event_add(s->retry_timer, &zero);
    }
}

/* ---- public ---- */

static int resolve_host(vd_redis_sync *s, char *err, size_t cap)
{
    struct in_addr a4;
    struct in6_addr a6;
    const char *h = s->url.host;
    if (inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1) {
        snprintf(s->connect_host, sizeof s->connect_host, "%s", h);
        return 0;
    }
    if (strcmp(h, "localhost") == 0) {
        snprintf(s->connect_host, sizeof s->connect_host, "127.0.0.1");
        return 0;
    }
    /* hiredis resolves inside connect, blocking the loop: resolve once, now. */
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, cap, "redis host '%s' does not resolve (%s); give an IP address", h,
                 gai_strerror(rc));
        return -1;
    }
    void *addr = res->ai_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr
                                            : (void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, s->connect_host, sizeof s->connect_host);
    freeaddrinfo(res);
    vd_info("redis: %s resolved once to %s", h, s->connect_host);
    return 0;
}

static void load_snapshot(vd_redis_sync *s)
{
    if (!s->snapshot[0])
        return;
    vd_docset ds;
    vd_docset_init(&ds);
    char version[VLEN], m[700];
    int eno = 0;
    if (vd_snapshot_read(s->snapshot, version, sizeof version, &ds, &eno, m, sizeof m) != 0) {
        if (eno == ENOENT)
            vd_info("snapshot %s does not exist yet", s->snapshot);
        else
            vd_error("snapshot not used: %s", m);
        return;
    }
    if (!vd_release_version_ok(version, strlen(version))) {
        vd_error("snapshot not used: %s: bad release version", s->snapshot);
        vd_docset_free(&ds);
        return;
    }
    vd_errors *err = vd_malloc(sizeof *err);
    if (!err) {
        vd_docset_free(&ds);
        return;
    }
    vd_errors_init(err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, version, err);
    vd_docset_free(&ds);
    if (!rs) {
        char summary[VD_ERROR_LEN + 32];
        vd_error("snapshot %s rejected by this build's compiler: %s", s->snapshot,
                 vd_errors_summary(err, summary, sizeof summary));
        vd_free(err);
        return;
    }
    vd_free(err);
    vd_warn("serving the snapshot %s (release %s) until Redis answers", s->snapshot, version);
    vd_live_set(rs, VD_SOURCE_SNAPSHOT);
    snprintf(s->served, sizeof s->served, "%s", version);
}

vd_redis_sync *vd_redis_sync_new(const vd_redis_sync_options *opt, char *err, size_t cap)
{
    vd_redis_sync *s = vd_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->pipe_fd[0] = s->pipe_fd[1] = -1;
    char m[300];
    if (vd_redis_url_parse(opt->url, &s->url, m, sizeof m) != 0) {
        snprintf(err, cap, "redis: %s", m);
        vd_free(s);
        return NULL;
    }
    if (!vd_release_namespace_ok(opt->namespace_)) {
        snprintf(err, cap, "redis-namespace must be 1..%d printable bytes", VD_RELEASE_MAX_NS);
        vd_free(s);
        return NULL;
    }
    vd_redis_url_describe(&s->url, s->desc, sizeof s->desc);
    if (s->url.is_sentinel) {
        s->sentinel = vd_sentinel_new(&s->url, opt->timeout_ms, opt->poll_ms, m, sizeof m);
        if (!s->sentinel) {
            snprintf(err, cap, "redis: %s", m);
            vd_free(s);
            return NULL;
        }
    } else if (!s->url.is_unix && resolve_host(s, err, cap) != 0) {
        vd_free(s);
        return NULL;
    }
    const char *ns = opt->namespace_;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    char who[320];
    snprintf(who, sizeof who, "daemons:%s:%d", host, (int)getpid());
    vd_release_key(s->k_current, sizeof s->k_current, ns, "current");
    vd_release_key(s->k_channel, sizeof s->k_channel, ns, "events");
    vd_release_key(s->k_release, sizeof s->k_release, ns, "release:");
    vd_release_key(s->k_daemon, sizeof s->k_daemon, ns, who);
    snprintf(s->listen, sizeof s->listen, "%s", opt->listen);
    for (char *p = s->listen; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';
    snprintf(s->snapshot, sizeof s->snapshot, "%s", opt->snapshot ? opt->snapshot : "");
    s->poll_ms = opt->poll_ms;
    s->timeout_ms = opt->timeout_ms;
    s->compile_nice = opt->compile_nice;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->rand_state = (unsigned)getpid() ^ (unsigned)time(NULL);
    vd_live_store_enable((int)opt->stale_after_s);
    load_snapshot(s);
    return s;
}

int vd_redis_sync_start(vd_redis_sync *s, struct event_base *base)
{
    s->base = base;
    if (pipe2(s->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->deadline = evtimer_new(base, on_deadline, s);
    s->poll_timer = event_new(base, -1, EV_PERSIST, on_poll, s);
    s->retry_timer = evtimer_new(base, on_retry, s);
    s->teardown_ev = evtimer_new(base, on_teardown, s);
    s->pipe_ev = event_new(base, s->pipe_fd[0], EV_READ | EV_PERSIST, on_compiled, s);
    if (!s->deadline || !s->poll_timer || !s->retry_timer || !s->teardown_ev || !s->pipe_ev)
        return -1;
    if (pthread_create(&s->thread, NULL, compile_main, s) != 0)
        return -1;
    if (s->sentinel && vd_sentinel_start(s->sentinel, base, on_master, s) != 0)
        return -1;
    s->thread_started = true;
    event_add(s->pipe_ev, NULL);
    struct timeval tv = { s->poll_ms / 1000, (s->poll_ms % 1000) * 1000 };
    event_add(s->poll_timer, &tv);
    vd_info("redis: syncing releases from %s (current: %s, poll every %ld ms)", s->desc,
            s->k_current, s->poll_ms);
    link_start(s);
    return 0;
}

void vd_redis_sync_on_change(vd_redis_sync *s, void (*fn)(void))
{
    s->on_change = fn;
}

void vd_redis_sync_check_now(vd_redis_sync *s)
{
    s->rejected[0] = '\0';
    s->missing[0] = '\0';
    check(s);
}

/* At shutdown, after the loop: drop our status key so `variantctl status`
 * stops listing us at once (else it expires by itself). Blocking, bounded
 * by redis-timeout, and only tried if Redis was answering. */
static void unregister_self(vd_redis_sync *s)
{
    vd_redis_url u = s->url;
    snprintf(u.host, sizeof u.host, "%s", s->connect_host);
    u.is_sentinel = false;    /* the master we were connected to */
    char err[256];
    struct redisContext *c = vd_release_connect(&u, (int)s->timeout_ms, err, sizeof err);
    if (!c)
        return;
    redisReply *r = redisCommand(c, "DEL %s", s->k_daemon);
    if (r)
        freeReplyObject(r);
    vd_release_close(c);
}

void vd_redis_sync_free(vd_redis_sync *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->job) {
        vd_docset_free(&s->job->ds);
        vd_free(s->job);
    }
    bool was_up = s->link == LINK_UP;
    s->link = LINK_DOWN;
    vd_sentinel_free(s->sentinel);
    s->sentinel = NULL;
    redisAsyncContext *a = s->cmd, *b = s->sub;
    s->cmd = s->sub = NULL;
    if (a)
        redisAsyncFree(a);
    if (b)
        redisAsyncFree(b);
    if (was_up)
        unregister_self(s);
    struct event *evs[] = { s->deadline, s->poll_timer, s->retry_timer, s->teardown_ev, s->pipe_ev };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (s->pipe_fd[0] >= 0) {
        close(s->pipe_fd[0]);
        close(s->pipe_fd[1]);
    }
    if (s->base) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    vd_free(s);
}
