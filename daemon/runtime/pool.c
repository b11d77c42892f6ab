#include "runtime/pool.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/http_edge.h"
#include "net/rpc_server.h"
#include "variantd/limits.h"

typedef struct pool_slot {
    vd_worker w;
    vd_rpc_server *rpc;
    vd_http_edge *edge;           /* the edge HTTP port on this worker; NULL if off */
    pthread_t thread;
    int started;
    struct event *stop_ev, *drain_ev, *refresh_ev;
    unsigned drain_ms, drained_ms;
    _Atomic int finished;
    _Atomic int64_t heartbeat_ms; /* monotonic ms of this loop's last refresh tick */
    _Atomic int stopping;         /* vd_pool_stop asked: no more refresh ticks */
} pool_slot;

struct vd_pool {
    unsigned n;
    pool_slot *slots;
};

static int64_t mono_ms(void)
{
    return (int64_t)(vd_now_ns() / 1000000);
}

static void *worker_main(void *arg)
{
    pool_slot *s = arg;
    /* "vd-worker-3" in top -H, ps -L and core dumps. */
    char name[16];
    snprintf(name, sizeof name, "vd-worker-%u", s->w.id);
    pthread_setname_np(pthread_self(), name);
    event_base_dispatch(s->w.base);
    atomic_store(&s->finished, 1);
    return NULL;
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_slot *s = arg;
    size_t left = vd_rpc_server_drain(s->rpc);
    if (s->edge)
        left += vd_http_server_drain(vd_http_edge_server(s->edge));
    s->drained_ms += 100;
    if (left == 0 || s->drained_ms >= s->drain_ms) {
        if (left)
            vd_warn("worker %u: closing %zu connections that did not take their replies",
                    s->w.id, left);
        event_base_loopexit(s->w.base, NULL);
    }
}

/* An idle worker still holds the ruleset it last served; picking up the
 * published one every second lets the old one be freed without traffic. */
static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_slot *s = arg;
    vd_decider_ruleset(&s->w.decider);
    /* The loop turned: the control thread's watchdog check reads this. */
    atomic_store_explicit(&s->heartbeat_ms, mono_ms(), memory_order_relaxed);
}

/* Runs on the worker's own thread. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_slot *s = arg;
    event_del(s->refresh_ev);
    vd_rpc_server_stop_accepting(s->rpc);
    if (s->edge)
        vd_http_server_stop_accepting(vd_http_edge_server(s->edge));
    s->drain_ev = event_new(s->w.base, -1, EV_PERSIST, drain_tick, s);
    struct timeval tv = { 0, 100000 };
    event_add(s->drain_ev, &tv);
    drain_tick(-1, 0, s);
}

static void slot_destroy(pool_slot *s)
{
    vd_rpc_server_free(s->rpc);
    vd_http_edge_free(s->edge);
    if (s->stop_ev)
        event_free(s->stop_ev);
    if (s->drain_ev)
        event_free(s->drain_ev);
    if (s->refresh_ev)
        event_free(s->refresh_ev);
    struct event_base *base = s->w.base;
    vd_worker_destroy(&s->w);
    if (base)
        event_base_free(base);
}

/* libevent must know about threads before the first base is created. */
static void use_threads(void)
{
    evthread_use_pthreads();
}

vd_pool *vd_pool_start(const vd_config *cfg, const vd_env *env, unsigned n, char *err, size_t cap)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, use_threads);
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (n > VD_MAX_WORKERS)
        n = VD_MAX_WORKERS;
    vd_pool *p = vd_calloc(1, sizeof *p);
    if (!p || !(p->slots = vd_calloc(n, sizeof *p->slots))) {
        vd_free(p);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    p->n = n;
    for (unsigned i = 0; i < n; i++) {
        pool_slot *s = &p->slots[i];
        struct event_base *base = event_base_new();
        if (!base || vd_worker_init(&s->w, i, base, cfg, env) != 0) {
            if (base)
                event_base_free(base);
            s->w.base = NULL;     /* vd_worker_init kept it: slot_destroy must not free it again */
            snprintf(err, cap, "out of memory creating worker %u", i);
            goto fail;
        }
        s->rpc = vd_rpc_server_start(&s->w.fe, cfg->listen, err, cap);
        s->stop_ev = event_new(base, -1, 0, stop_cb, s);
        s->refresh_ev = event_new(base, -1, EV_PERSIST, refresh_cb, s);
        if (!s->rpc || !s->stop_ev || !s->refresh_ev)
            goto fail;
        struct timeval second = { 1, 0 };
        event_add(s->refresh_ev, &second);
        if (cfg->http_listen[0]) {
            char e2[256];
            s->edge = vd_http_edge_start(&s->w.fe, cfg->http_listen, e2, sizeof e2);
            if (!s->edge) {
                snprintf(err, cap, "edge port: %s", e2);
                goto fail;
            }
        }
    }
    for (unsigned i = 0; i < n; i++) {
        atomic_store(&p->slots[i].heartbeat_ms, mono_ms());   /* not "silent since boot" */
        if (pthread_create(&p->slots[i].thread, NULL, worker_main, &p->slots[i]) != 0) {
            snprintf(err, cap, "cannot start worker thread %u", i);
            vd_pool_stop(p, 0);
            vd_pool_free(p);
            return NULL;
        }
        p->slots[i].started = 1;
    }
    return p;
fail:
    for (unsigned i = 0; i < n; i++)
        slot_destroy(&p->slots[i]);
    vd_free(p->slots);
    vd_free(p);
    return NULL;
}

int vd_pool_stalled(const vd_pool *p, unsigned max_age_ms, unsigned *age_ms)
{
    int64_t now = mono_ms();
    for (unsigned i = 0; i < p->n; i++) {
        const pool_slot *s = &p->slots[i];
        if (!s->started || atomic_load(&s->finished) || atomic_load(&s->stopping))
            continue;
        int64_t age = now - atomic_load_explicit(&s->heartbeat_ms, memory_order_relaxed);
        if (age > (int64_t)max_age_ms) {
            if (age_ms)
                *age_ms = (unsigned)age;
            return (int)i;
        }
    }
    return -1;
}

unsigned vd_pool_size(const vd_pool *p)
{
    return p->n;
}

unsigned vd_pool_stats_sources(vd_pool *p, vd_stats_source *out, unsigned cap)
{
    unsigned n = 0;
    for (; n < p->n && n < cap; n++)
        out[n] = (vd_stats_source){ .stats = &p->slots[n].w.stats, .decider = &p->slots[n].w.decider };
    return n;
}

void vd_pool_stop(vd_pool *p, unsigned drain_ms)
{
    for (unsigned i = 0; i < p->n; i++) {
        pool_slot *s = &p->slots[i];
        s->drain_ms = drain_ms;
        atomic_store(&s->stopping, 1);
        /* event_active from another thread is safe with evthread_use_pthreads:
         * the base is woken up and runs stop_cb on its own thread. */
        event_active(s->stop_ev, EV_TIMEOUT, 0);
    }
}

int vd_pool_finished(const vd_pool *p)
{
    for (unsigned i = 0; i < p->n; i++)
        if (p->slots[i].started && !atomic_load(&p->slots[i].finished))
            return 0;
    return 1;
}

void vd_pool_free(vd_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++)
        if (p->slots[i].started)
            pthread_join(p->slots[i].thread, NULL);
    for (unsigned i = 0; i < p->n; i++)
        slot_destroy(&p->slots[i]);
    vd_free(p->slots);
    vd_free(p);
}
