/* metrics.h — renders the metrics table of stats.h (VD_METRICS and
 * VD_METRICS_DYNAMIC) as Prometheus text and as JSON, from one snapshot:
 * the workers' counters summed, plus the served ruleset and its per-slot,
 * per-variant and per-segment counts.
 *
 * The snapshot is taken on another thread than the workers': counters are
 * read with relaxed loads, and each worker's per-ruleset arrays under its
 * counts_lock (which the worker takes only when it swaps rulesets). */
#ifndef VD_NET_METRICS_H
#define VD_NET_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stats.h"
#include "decision/decider.h"
#include "store/live.h"

struct evbuffer;
struct vd_json;

typedef struct vd_stats_snap {
#define VD_SNAP_FIELD(name) uint64_t name;
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
    /* The served ruleset (a reference, dropped by vd_stats_snapshot_done)
     * and its counts summed over the workers serving it; NULL if none or
     * out of memory. */
    vd_ruleset *rs;
    uint64_t *variant_counts;                   /* slot by slot, variants in order */
    uint64_t *segment_counts;
    /* Profiles (profile/store.h), summed over the workers; profiles_on
     * false when no worker has a store. */
    bool profiles_on;
    struct {
#define VD_SNAP_PFIELD(name, help) uint64_t name;
        VD_PROFILE_COUNTERS(VD_SNAP_PFIELD)
#undef VD_SNAP_PFIELD
        int64_t inflight, connected;
    } prof;
    uint32_t ntypes;                            /* tracked event types, summed by name */
    char type_name[VD_TRACK_TYPES + 1][48];     /* the last one: "other" */
    uint64_t type_count[VD_TRACK_TYPES + 1];
} vd_stats_snap;

/* One decision worker as the snapshot reads it: its counters and its
 * decider's per-ruleset counts. */
typedef struct vd_stats_source {
    const vd_stats *stats;
    vd_decider *decider;
} vd_stats_source;

/* stp: the stats port's own counters (it runs on the control thread). */
void vd_stats_snapshot(const vd_stats_source *workers, unsigned n, const vd_http_stats *stp,
                       int64_t started_at, vd_stats_snap *out);
void vd_stats_snapshot_done(vd_stats_snap *s);

/* variantd_* Prometheus text exposition (version 0.0.4). */
void vd_metrics_prometheus(struct evbuffer *out, const vd_stats_snap *s);
/* The same numbers as members of the open JSON object j:
 * "metrics", "latency", "decisions", "segments". */
void vd_metrics_json(struct vd_json *j, const vd_stats_snap *s);

#endif
