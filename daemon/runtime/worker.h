/* worker.h — one decision worker thread's state: its event base, its
 * counters, its decider and the front-end view of both. Nothing here is
 * shared between workers, so the request path takes no lock. runtime/pool.c
 * runs the thread and its servers. */
#ifndef VD_RUNTIME_WORKER_H
#define VD_RUNTIME_WORKER_H

#include "core/config.h"
#include "core/stats.h"
#include "decision/decider.h"
#include "net/frontend.h"

struct event_base;

typedef struct vd_worker {
    unsigned id;
    struct event_base *base;
    const vd_config *cfg;
    vd_stats stats;
    vd_decider decider;
    vd_frontend fe;               /* base, cfg, &stats, &decider: what the ports use */
} vd_worker;

/* w must not move afterwards (fe points into it). -1 on out of memory. */
int vd_worker_init(vd_worker *w, unsigned id, struct event_base *base, const vd_config *cfg,
                   const vd_env *env);
void vd_worker_destroy(vd_worker *w);

#endif
