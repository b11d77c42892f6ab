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
    /* Profiles (contract v2): the store is decider.profiles (NULL = off). */
    vd_profile_stats pstats;
    vd_track_types track_types;
} vd_worker;

/* w must not move afterwards (fe points into it). -1 on out of memory. */
int vd_worker_init(vd_worker *w, unsigned id, struct event_base *base, const vd_config *cfg,
                   const vd_env *env);
void vd_worker_destroy(vd_worker *w);

/* Fills a profile store configuration from the settings; -1 with a message
 * (bad URL, missing or malformed profile-key-secret, bad consent-default). */
int vd_worker_profile_config(const vd_config *cfg, vd_profile_config *out, char *err, size_t cap);

#endif
