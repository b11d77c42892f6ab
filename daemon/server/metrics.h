/* metrics.h — renders the metrics table of stats.h (VD_METRICS and
 * VD_METRICS_DYNAMIC) as Prometheus text and as JSON, from one snapshot:
 * the workers' counters summed, plus the served ruleset's info. */
#ifndef VD_SERVER_METRICS_H
#define VD_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/stats.h"
#include "server/worker.h"
#include "store/live.h"

struct evbuffer;
struct vd_json;

typedef struct vd_stats_snap {
#define VD_SNAP_FIELD(name, help) uint64_t name;
    VD_COUNTERS(VD_SNAP_FIELD)
    int64_t connections;
    struct {
        VD_HTTP_COUNTERS(VD_SNAP_FIELD)
        int64_t connections;
    } edge, stp;
#undef VD_SNAP_FIELD
    uint64_t hist[VD_LATENCY_NBUCKETS + 1];     /* non-cumulative */
    uint64_t decisions;                         /* sum of hist */
    vd_live_info live;
    bool ready;
    int64_t loaded_at, ruleset_age, started_at, uptime;
    uint64_t reloads, failures, nsegments, nslots;
    int redis_connected;
} vd_stats_snap;

/* Sums n workers' counters (readers on other threads see relaxed values). */
void vd_stats_snapshot(vd_worker *const *workers, unsigned n, int64_t started_at,
                       vd_stats_snap *out);

/* variantd_* Prometheus text exposition (version 0.0.4). */
void vd_metrics_prometheus(struct evbuffer *out, vd_worker *const *workers, unsigned n,
                           const vd_stats_snap *s);
/* The same numbers as members of the open JSON object j:
 * "metrics", "latency", "decisions", "segments". */
void vd_metrics_json(struct vd_json *j, vd_worker *const *workers, unsigned n,
                     const vd_stats_snap *s);

#endif
