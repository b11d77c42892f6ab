#include "store/sentinel.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/adapters/libevent.h>

#include "core/alloc.h"
#include "core/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

enum { S_DOWN = 0, S_CONNECTING, S_UP };

struct vd_sentinel {
    struct event_base *base;
    char master[128];
    unsigned n, cur;
    char host[VD_SENTINEL_MAX][64];   /* numeric */
    int port[VD_SENTINEL_MAX];
    long timeout_ms, refresh_ms;

    redisAsyncContext *cmd, *sub;
    int state;
    int pending;                       /* replies owed */
    unsigned failed_in_row;            /* sentinels that failed since the last answer */
    long backoff_ms;
    bool logged_down;
    struct event *deadline, *retry, *teardown, *refresh;

    char mhost[256];                   /* master; "" = unknown */
    int mport;
    vd_sentinel_fn fn;
    void *arg;
};

static void fail(vd_sentinel *s, const char *why);

/* ---- addresses ---- */

static int numeric_host(const char *h, char *out, size_t cap, char *err, size_t ecap)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1) {
        snprintf(out, cap, "%s", h);
        return 0;
    }
    if (strcmp(h, "localhost") == 0) {
        snprintf(out, cap, "127.0.0.1");
        return 0;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, ecap, "sentinel host '%s' does not resolve (%s)", h, gai_strerror(rc));
        return -1;
    }
    void *addr = res->ai_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr
                                            : (void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, out, (socklen_t)cap);
    freeaddrinfo(res);
    return 0;
}

/* An answer to get-master-addr-by-name: [host, port]. */
static bool master_reply(const redisReply *r, char *host, size_t cap, int *port)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= cap)
        return false;
    char *end;
    long p = strtol(r->element[1]->str, &end, 10);
    if (*end || p < 1 || p > 65535)
        return false;
    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';
    *port = (int)p;
    return true;
}

/* ---- the watcher ---- */

static void set_master(vd_sentinel *s, const char *host, int port, const char *how)
{
    if (strcmp(s->mhost, host) == 0 && s->mport == port)
        return;
    bool first = !s->mhost[0];
    snprintf(s->mhost, sizeof s->mhost, "%s", host);
    s->mport = port;
    if (first)
        vd_info("sentinel: master '%s' is at %s:%d (%s)", s->master, host, port, how);
    else
        vd_warn("sentinel: master '%s' moved to %s:%d (%s)", s->master, host, port, how);
    if (s->fn)
        s->fn(s->arg, host, port);
}

static void arm_deadline(vd_sentinel *s)
{
    if (s->pending > 0) {
        struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };
        event_add(s->deadline, &tv);
    } else {
        event_del(s->deadline);
    }
}

static bool ours(vd_sentinel *s, const redisAsyncContext *c, const redisReply *r)
{
    return r && c && (c == s->cmd || c == s->sub) && s->state != S_DOWN;
}

static void answered(vd_sentinel *s)
{
    if (s->pending > 0)
        s->pending--;
    arm_deadline(s);
}

static void on_addr(redisAsyncContext *c, void *reply, void *priv)
{
    vd_sentinel *s = priv;
    redisReply *r = reply;
    if (!ours(s, c, r))
        return;
    answered(s);
    char host[256];
    int port;
    if (!master_reply(r, host, sizeof host, &port)) {
        char why[300];
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(why, sizeof why, "refused: %.200s", r->str);
        else
            snprintf(why, sizeof why, "does not know master '%s'", s->master);
        fail(s, why);
        return;
    }
    if (s->state == S_CONNECTING) {
        s->state = S_UP;
        s->backoff_ms = BACKOFF_MIN_MS;
        if (s->logged_down)
            vd_info("sentinel: %s:%d answers", s->host[s->cur], s->port[s->cur]);
        s->logged_down = false;
    }
    s->failed_in_row = 0;
    set_master(s, host, port, "asked");
}

static void on_sub(redisAsyncContext *c, void *reply, void *priv)
{
    vd_sentinel *s = priv;
    redisReply *r = reply;
    if (!ours(s, c, r))
        return;
    bool msg = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0 &&
               r->element[2]->type == REDIS_REPLY_STRING;
    if (!msg) {
        answered(s);              /* the subscribe confirmation */
        if (r->type == REDIS_REPLY_ERROR) {
            char why[300];
            snprintf(why, sizeof why, "SUBSCRIBE refused: %.200s", r->str);
            fail(s, why);
        }
        return;
    }
    /* "<master> <old-ip> <old-port> <new-ip> <new-port>" */
    char name[128], oh[64], nh[64];
    int op, np;
    if (r->element[2]->len < 200 &&
        sscanf(r->element[2]->str, "%127s %63s %d %63s %d", name, oh, &op, nh, &np) == 5 &&
        strcmp(name, s->master) == 0 && np >= 1 && np <= 65535)
        set_master(s, nh, np, "+switch-master");
}

static void ctx_lost(vd_sentinel *s, const redisAsyncContext *c, const char *what)
{
    char why[300];
    snprintf(why, sizeof why, "%s: %.200s", what, c->err ? c->errstr : "closed");
    if (c == s->cmd)
        s->cmd = NULL;           /* hiredis frees it after this callback */
    else
        s->sub = NULL;
    fail(s, why);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    vd_sentinel *s = c->data;
    if (status == REDIS_OK || (c != s->cmd && c != s->sub))
        return;
    ctx_lost(s, c, "connect failed");
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    vd_sentinel *s = c->data;
    (void)status;
    if (c != s->cmd && c != s->sub)
        return;
    ctx_lost(s, c, "connection lost");
}

static redisAsyncContext *open_ctx(vd_sentinel *s)
{
    redisAsyncContext *c = redisAsyncConnect(s->host[s->cur], s->port[s->cur]);
    if (!c)
        return NULL;
    if (c->err) {
        redisAsyncFree(c);
        return NULL;
    }
    c->data = s;
    redisLibeventAttach(c, s->base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

static void ask(vd_sentinel *s)
{
    if (!s->cmd)
        return;
    if (redisAsyncCommand(s->cmd, on_addr, s, "SENTINEL get-master-addr-by-name %s", s->master) != REDIS_OK) {
        fail(s, "cannot queue a command");
        return;
    }
    if (s->pending++ == 0)
        arm_deadline(s);
}

static void connect_cur(vd_sentinel *s)
{
    s->state = S_CONNECTING;
    s->pending = 0;
    s->cmd = open_ctx(s);
    s->sub = s->cmd ? open_ctx(s) : NULL;
    if (!s->cmd || !s->sub) {
        fail(s, "cannot connect");
        return;
    }
    if (redisAsyncCommand(s->sub, on_sub, s, "SUBSCRIBE +switch-master") != REDIS_OK) {
        fail(s, "cannot queue SUBSCRIBE");
        return;
    }
    s->pending++;
    ask(s);
    arm_deadline(s);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_sentinel *s = arg;
    char why[64];
    snprintf(why, sizeof why, "no answer within %ld ms", s->timeout_ms);
    fail(s, why);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_cur(arg);
}

static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_sentinel *s = arg;
    redisAsyncContext *a = s->cmd, *b = s->sub;
    s->cmd = s->sub = NULL;
    if (a)
        redisAsyncFree(a);
    if (b)
        redisAsyncFree(b);
    /* Next sentinel at once; after a whole round of failures, back off. */
    s->cur = (s->cur + 1) % s->n;
    long wait = 0;
    if (s->failed_in_row >= s->n) {
        wait = s->backoff_ms;
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    }
    struct timeval tv = { wait / 1000, (wait % 1000) * 1000 };
    event_add(s->retry, &tv);
}

static void fail(vd_sentinel *s, const char *why)
{
    if (s->state == S_DOWN)
        return;
    s->state = S_DOWN;
    s->pending = 0;
    event_del(s->deadline);
    s->failed_in_row++;
    if (s->failed_in_row <= s->n || !s->logged_down)
        vd_warn("sentinel: %s:%d: %s; trying the next sentinel", s->host[s->cur], s->port[s->cur], why);
    if (s->failed_in_row >= s->n)
        s->logged_down = true;
    struct timeval zero = { 0, 0 };
    event_add(s->teardown, &zero);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_sentinel_refresh(arg);
}

/* ---- public ---- */

vd_sentinel *vd_sentinel_new(const vd_redis_url *u, long timeout_ms, long refresh_ms, char *err,
                             size_t cap)
{
    if (!u->is_sentinel || u->nsentinels == 0) {
        snprintf(err, cap, "not a redis-sentinel:// URL");
        return NULL;
    }
    vd_sentinel *s = vd_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    snprintf(s->master, sizeof s->master, "%s", u->master);
    s->n = u->nsentinels;
    for (unsigned i = 0; i < s->n; i++) {
        if (numeric_host(u->sentinels[i].host, s->host[i], sizeof s->host[i], err, cap) != 0) {
            vd_free(s);
            return NULL;
        }
        s->port[i] = u->sentinels[i].port;
    }
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    s->refresh_ms = refresh_ms > 0 ? refresh_ms : 1000;
    s->backoff_ms = BACKOFF_MIN_MS;
    return s;
}

int vd_sentinel_start(vd_sentinel *s, struct event_base *base, vd_sentinel_fn fn, void *arg)
{
    s->base = base;
    s->fn = fn;
    s->arg = arg;
    s->deadline = evtimer_new(base, on_deadline, s);
    s->retry = evtimer_new(base, on_retry, s);
    s->teardown = evtimer_new(base, on_teardown, s);
    s->refresh = event_new(base, -1, EV_PERSIST, on_refresh, s);
    if (!s->deadline || !s->retry || !s->teardown || !s->refresh)
        return -1;
    struct timeval tv = { s->refresh_ms / 1000, (s->refresh_ms % 1000) * 1000 };
    event_add(s->refresh, &tv);
    vd_info("sentinel: watching master '%s' through %u sentinel%s", s->master, s->n, s->n == 1 ? "" : "s");
    connect_cur(s);
    return 0;
}

void vd_sentinel_refresh(vd_sentinel *s)
{
    if (s && s->state == S_UP && s->pending == 0)
        ask(s);
}

bool vd_sentinel_master(const vd_sentinel *s, char *host, size_t cap, int *port)
{
    if (!s || !s->mhost[0])
        return false;
    snprintf(host, cap, "%s", s->mhost);
    *port = s->mport;
    return true;
}

void vd_sentinel_free(vd_sentinel *s)
{
    if (!s)
        return;
    s->state = S_DOWN;
    redisAsyncContext *a = s->cmd, *b = s->sub;
    s->cmd = s->sub = NULL;
    if (a)
        redisAsyncFree(a);
    if (b)
        redisAsyncFree(b);
    struct event *evs[] = { s->deadline, s->retry, s->teardown, s->refresh };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    vd_free(s);
}

int vd_sentinel_resolve(vd_redis_url *u, int timeout_ms, char *err, size_t cap)
{
    if (!u->is_sentinel) {
        snprintf(err, cap, "not a redis-sentinel:// URL");
        return -1;
    }
    size_t o = (size_t)snprintf(err, cap, "no sentinel named master '%s':", u->master);
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    for (unsigned i = 0; i < u->nsentinels; i++) {
        const vd_redis_hostport *h = &u->sentinels[i];
        char why[256] = "";
        redisContext *c = redisConnectWithTimeout(h->host, h->port, tv);
        if (!c || c->err) {
            snprintf(why, sizeof why, "%s", c ? c->errstr : "out of memory");
        } else {
            redisSetTimeout(c, tv);
            redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", u->master);
            char host[256];
            int port;
            if (r && master_reply(r, host, sizeof host, &port)) {
                snprintf(u->host, sizeof u->host, "%s", host);
                u->port = port;
                freeReplyObject(r);
                redisFree(c);
                return 0;
            }
            snprintf(why, sizeof why, "%s", !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unknown master");
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
        if (o < cap)
            o += (size_t)snprintf(err + o, cap - o, " %s:%d %.100s;", h->host, h->port, why);
    }
    return -1;
}
