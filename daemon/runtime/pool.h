/* pool.h — the worker threads of the decision port.
 *
 * Each worker runs its own libevent base with its own SO_REUSEPORT listener,
 * so the kernel spreads connections over them and no request ever crosses a
 * thread. The control thread (main) keeps signals, reloads and the store;
 * it talks to workers only through the published ruleset (store/live.h) and
 * by scheduling a stop on their bases. */
#ifndef VD_RUNTIME_POOL_H
#define VD_RUNTIME_POOL_H

#include <stddef.h>

#include "net/metrics.h"
#include "runtime/worker.h"

typedef struct vd_pool vd_pool;

/* n = 0: one worker per online CPU. Binds every listener before any thread
 * starts, so a bad address fails start-up synchronously. */
vd_pool *vd_pool_start(const vd_config *cfg, const vd_env *env, unsigned n, char *err,
                       size_t cap);
unsigned vd_pool_size(const vd_pool *p);
/* Each worker's counters and decider, for the stats port (at most cap). */
unsigned vd_pool_stats_sources(vd_pool *p, vd_stats_source *out, unsigned cap);
/* Asks every worker to stop accepting and drain (replies in flight are sent,
 * at most drain_ms later the connections close). Thread-safe. */
void vd_pool_stop(vd_pool *p, unsigned drain_ms);
/* A worker whose event loop has not turned (its 1 s refresh tick) for more
 * than max_age_ms: its index, with the age in *age_ms; -1 if all are live.
 * Draining or finished workers are not counted. Thread-safe. */
int vd_pool_stalled(const vd_pool *p, unsigned max_age_ms, unsigned *age_ms);
/* True once every worker thread has finished. */
int vd_pool_finished(const vd_pool *p);
/* Joins the threads and frees everything. */
void vd_pool_free(vd_pool *p);

#endif
