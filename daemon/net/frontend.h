/* frontend.h — what a front end (decision port, edge port) needs from the
 * worker thread that runs it: its event base, the settings, the counters it
 * writes and the decider it asks. The worker (runtime/) fills one in and
 * keeps it alive as long as its servers; net/ never sees the worker. */
#ifndef VD_NET_FRONTEND_H
#define VD_NET_FRONTEND_H

#include "core/config.h"
#include "core/stats.h"
#include "decision/decider.h"

struct event_base;

typedef struct vd_frontend {
    struct event_base *base;
    const vd_config *cfg;
    vd_stats *stats;              /* single writer: this worker's thread */
    vd_decider *decider;
} vd_frontend;

#endif
