/* learner.h — the thread that reads the learning counters and moves the
 * bandit (docs/LEARNING.md).
 *
 * Every second it reads the counters of the served ruleset's slots that have
 * a goal (one HGETALL per slot on its own blocking connection, so a slow
 * Redis never stalls a decision worker or the stats port) and publishes the
 * report snapshot (learn/snapshot.h). At every multiple of bandit-interval
 * on the wall clock — the same instants on every daemon — and whenever a new
 * ruleset is served, it computes the bandit weights from those counters
 * (learn/stats.c: deterministic) and publishes them to the workers
 * (learn/alloc.h). When Redis does not answer, nothing is published: the
 * last weights keep serving. */
#ifndef VD_RUNTIME_LEARNER_H
#define VD_RUNTIME_LEARNER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vd_learner_options {
    const char *url;              /* the counters' Redis (profiles, else redis) */
    const char *ns;               /* redis-namespace */
    int timeout_ms;
    long interval_s;              /* bandit-interval */
    double floor;                 /* bandit-floor */
    long min_exposures;           /* bandit-min-exposures */
} vd_learner_options;

typedef struct vd_learner vd_learner;

/* NULL with err on a bad URL or no thread. */
vd_learner *vd_learner_start(const vd_learner_options *o, char *err, size_t cap);
void vd_learner_stop(vd_learner *l);

#endif
