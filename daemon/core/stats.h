/* stats.h — counters and the one metric table. Each worker owns one
 * vd_stats and is its only writer (relaxed atomics: no lock, no shared
 * cache line written on the request path); readers sum over workers.
 * VD_METRICS is the only place a metric is named, typed and explained:
 * /metrics (Prometheus), /stats (JSON, with "help") and the dashboard all
 * read it, and docs/OPERATIONS.md lists it (a test compares). */
#ifndef VD_CORE_STATS_H
#define VD_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* X(field): the struct fields. What each one means, and how it is shown,
 * is said once, in VD_METRICS below. */
#define VD_COUNTERS(X)                                                              \
    X(rpc_requests) \
    X(rpc_decide) \
    X(rpc_explain) \
    X(rpc_ping) \
    X(rpc_notifications) \
    X(slots_decided) \
    X(slots_unknown) \
    X(splits_no_vid) \
    X(err_parse) \
    X(err_too_large) \
    X(err_too_deep) \
    X(err_invalid_request) \
    X(err_method) \
    X(err_params) \
    X(err_not_ready) \
    X(err_internal) \
    X(conn_accepted) \
    X(conn_rejected) \
    X(conn_closed_error) \
    X(conn_closed_idle) \
    X(src_cache_hits) \
    X(src_cache_misses) \
    X(decide_ns_total)

/* ---- HTTP ports (edge, stats): one block of these per interface ---- */

/* X(field), shown by VD_HTTP_*_ROWS below. */
#define VD_HTTP_COUNTERS(X)                                                         \
    X(requests) \
    X(s200) \
    X(s400) \
    X(s404) \
    X(s405) \
    X(s408) \
    X(s413) \
    X(s431) \
    X(s500) \
    X(s503) \
    X(sother) \
    X(err_parse) \
    X(err_invalid_request) \
    X(err_header_too_large) \
    X(err_body_too_large) \
    X(err_timeout) \
    X(err_method) \
    X(err_not_found) \
    X(err_not_ready) \
    X(err_internal) \
    X(conn_accepted) \
    X(conn_rejected) \
    X(conn_closed_idle) \
    X(conn_closed_error)

typedef struct vd_http_stats {
#define VD_STATS_FIELD(name) _Atomic uint64_t name;
    VD_HTTP_COUNTERS(VD_STATS_FIELD)
#undef VD_STATS_FIELD
    _Atomic int64_t connections;      /* open now (gauge) */
} vd_http_stats;

/* Server-side decision latency buckets (upper bounds, seconds) for the
 * histogram variantd_decision_duration_seconds. */
#define VD_LATENCY_BOUNDS_NS                                                        \
    { 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,          \
      5000000, 10000000, 50000000 }
#define VD_LATENCY_NBUCKETS 12          /* plus +Inf */

typedef struct vd_stats {
#define VD_STATS_FIELD(name) _Atomic uint64_t name;
    VD_COUNTERS(VD_STATS_FIELD)
#undef VD_STATS_FIELD
    _Atomic int64_t connections;      /* open now (gauge) */
    /* Non-cumulative per bucket; the last one is +Inf. */
    _Atomic uint64_t decide_hist[VD_LATENCY_NBUCKETS + 1];
    vd_http_stats edge;               /* the edge HTTP port (served by every worker) */
} vd_stats;

/* Single writer per vd_stats: a relaxed load+store, not a locked add. */
#define VD_STAT_ADD(st, field, n)                                                           \
    atomic_store_explicit(&(st)->field,                                                     \
                          atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n),   \
                          memory_order_relaxed)
#define VD_STAT_INC(st, field) VD_STAT_ADD(st, field, 1)


/* ---- Exposition: every metric the stats port shows, defined once ----
 *
 * X(key, type, family, labels, help, value) — one row per time series.
 * `key` names it in /stats JSON ("metrics": {key: value}); `family` (after
 * the variantd_ prefix) and `labels` name it in /metrics, where rows of one
 * family are adjacent and the first row's help is the family's HELP line.
 * `value` is an expression over `s`, a const vd_stats_snap * (the counters
 * summed over workers plus the served ruleset's info). Labels carry only
 * fixed words: never visitor data. docs/OPERATIONS.md lists every family
 * and a test checks it against /metrics. */
#define VD_HTTP_STATUS_ROWS(X, IF, F)                                                      \
    X("http." IF ".200", counter, "http_responses_total", "interface=\"" IF "\",code=\"200\"", \
      "HTTP answers by interface and status code", s->F.s200)                              \
    X("http." IF ".400", counter, "http_responses_total", "interface=\"" IF "\",code=\"400\"", "", s->F.s400) \
    X("http." IF ".404", counter, "http_responses_total", "interface=\"" IF "\",code=\"404\"", "", s->F.s404) \
    X("http." IF ".405", counter, "http_responses_total", "interface=\"" IF "\",code=\"405\"", "", s->F.s405) \
    X("http." IF ".408", counter, "http_responses_total", "interface=\"" IF "\",code=\"408\"", "", s->F.s408) \
    X("http." IF ".413", counter, "http_responses_total", "interface=\"" IF "\",code=\"413\"", "", s->F.s413) \
    X("http." IF ".431", counter, "http_responses_total", "interface=\"" IF "\",code=\"431\"", "", s->F.s431) \
    X("http." IF ".500", counter, "http_responses_total", "interface=\"" IF "\",code=\"500\"", "", s->F.s500) \
    X("http." IF ".503", counter, "http_responses_total", "interface=\"" IF "\",code=\"503\"", "", s->F.s503) \
    X("http." IF ".other", counter, "http_responses_total", "interface=\"" IF "\",code=\"other\"", "", s->F.sother)

#define VD_HTTP_ERROR_ROWS(X, IF, F)                                                       \
    X("errors." IF ".parse", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"parse\"", "", s->F.err_parse) \
    X("errors." IF ".invalid_request", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"invalid_request\"", "", s->F.err_invalid_request) \
    X("errors." IF ".header_too_large", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"header_too_large\"", "", s->F.err_header_too_large) \
    X("errors." IF ".body_too_large", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"body_too_large\"", "", s->F.err_body_too_large) \
    X("errors." IF ".timeout", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"timeout\"", "", s->F.err_timeout) \
    X("errors." IF ".method", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"method\"", "", s->F.err_method) \
    X("errors." IF ".not_found", counter, "protocol_errors_total", "interface=\"" IF "\",kind=\"not_found\"", "", s->F.err_not_found)

#define VD_HTTP_CONN_ROWS(X, IF, F)                                                        \
    X("connections." IF ".accepted", counter, "connections_total", "interface=\"" IF "\",event=\"accepted\"", "", s->F.conn_accepted) \
    X("connections." IF ".rejected", counter, "connections_total", "interface=\"" IF "\",event=\"rejected\"", "", s->F.conn_rejected) \
    X("connections." IF ".closed_idle", counter, "connections_total", "interface=\"" IF "\",event=\"closed_idle\"", "", s->F.conn_closed_idle) \
    X("connections." IF ".closed_error", counter, "connections_total", "interface=\"" IF "\",event=\"closed_error\"", "", s->F.conn_closed_error)

#define VD_HTTP_CLIENT_ERRORS(F) \
    (s->F.s400 + s->F.s404 + s->F.s405 + s->F.s408 + s->F.s413 + s->F.s431 + s->F.sother)

#define VD_METRICS(X)                                                                      \
    X("requests.rpc.ok", counter, "requests_total", "interface=\"rpc\",outcome=\"ok\"",    \
      "Requests answered, by interface and outcome (ok, client_error, server_error)",       \
      s->rpc_decide + s->rpc_explain + s->rpc_ping)                                        \
    X("requests.rpc.client_error", counter, "requests_total", "interface=\"rpc\",outcome=\"client_error\"", "", \
      s->err_parse + s->err_too_large + s->err_too_deep + s->err_invalid_request + s->err_method + s->err_params) \
    X("requests.rpc.server_error", counter, "requests_total", "interface=\"rpc\",outcome=\"server_error\"", "", \
      s->err_not_ready + s->err_internal)                                                  \
    X("requests.edge.ok", counter, "requests_total", "interface=\"edge\",outcome=\"ok\"", "", s->edge.s200) \
    X("requests.edge.client_error", counter, "requests_total", "interface=\"edge\",outcome=\"client_error\"", "", \
      VD_HTTP_CLIENT_ERRORS(edge))                                                         \
    X("requests.edge.server_error", counter, "requests_total", "interface=\"edge\",outcome=\"server_error\"", "", \
      s->edge.s500 + s->edge.s503)                                                         \
    X("requests.stats.ok", counter, "requests_total", "interface=\"stats\",outcome=\"ok\"", "", s->stp.s200) \
    X("requests.stats.client_error", counter, "requests_total", "interface=\"stats\",outcome=\"client_error\"", "", \
      VD_HTTP_CLIENT_ERRORS(stp))                                                          \
    X("requests.stats.server_error", counter, "requests_total", "interface=\"stats\",outcome=\"server_error\"", "", \
      s->stp.s500 + s->stp.s503)                                                           \
    X("rpc.decide", counter, "rpc_calls_total", "method=\"decide\"",                        \
      "MessagePack-RPC calls answered, by method", s->rpc_decide)                          \
    X("rpc.explain", counter, "rpc_calls_total", "method=\"explain\"", "", s->rpc_explain) \
    X("rpc.ping", counter, "rpc_calls_total", "method=\"ping\"", "", s->rpc_ping)          \
    X("rpc.notification", counter, "rpc_calls_total", "method=\"notification\"", "", s->rpc_notifications) \
    VD_HTTP_STATUS_ROWS(X, "edge", edge)                                                   \
    VD_HTTP_STATUS_ROWS(X, "stats", stp)                                                   \
    X("decisions", counter, "decisions_total", "",                                         \
      "Requests answered with a decision (decide and explain, every interface)", s->decisions) \
    X("slots.decided", counter, "slots_total", "result=\"decided\"",                       \
      "Requested slots, by result (decided, unknown)", s->slots_decided)                   \
    X("slots.unknown", counter, "slots_total", "result=\"unknown\"", "", s->slots_unknown) \
    X("cache.referrer.hit", counter, "cache_lookups_total", "cache=\"referrer\",result=\"hit\"", \
      "Lookups in the per-worker caches, by cache and result (referrer: the referring host's traffic-source verdict)", \
      s->src_cache_hits)                                                                   \
    X("cache.referrer.miss", counter, "cache_lookups_total", "cache=\"referrer\",result=\"miss\"", "", \
      s->src_cache_misses)                                                                 \
    X("splits.no_vid", counter, "splits_without_vid_total", "",                            \
      "Slots decided by a weighted split for a request without vid: all such visitors get the same arm", \
      s->splits_no_vid)                                                                    \
    X("errors.rpc.parse", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"parse\"", \
      "Bad requests, by interface and kind", s->err_parse)                                 \
    X("errors.rpc.too_large", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"too_large\"", "", s->err_too_large) \
    X("errors.rpc.too_deep", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"too_deep\"", "", s->err_too_deep) \
    X("errors.rpc.invalid_request", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"invalid_request\"", "", s->err_invalid_request) \
    X("errors.rpc.method", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"method\"", "", s->err_method) \
    X("errors.rpc.params", counter, "protocol_errors_total", "interface=\"rpc\",kind=\"params\"", "", s->err_params) \
    VD_HTTP_ERROR_ROWS(X, "edge", edge)                                                    \
    VD_HTTP_ERROR_ROWS(X, "stats", stp)                                                    \
    X("refused.rpc.not_ready", counter, "refused_total", "interface=\"rpc\",reason=\"not_ready\"", \
      "Requests refused by the server, by interface and reason", s->err_not_ready)         \
    X("refused.rpc.internal", counter, "refused_total", "interface=\"rpc\",reason=\"internal\"", "", s->err_internal) \
    X("refused.edge.not_ready", counter, "refused_total", "interface=\"edge\",reason=\"not_ready\"", "", s->edge.err_not_ready) \
    X("refused.edge.internal", counter, "refused_total", "interface=\"edge\",reason=\"internal\"", "", s->edge.err_internal) \
    X("connections.rpc", gauge, "connections", "interface=\"rpc\"",                        \
      "Open client connections, by interface", s->connections)                             \
    X("connections.edge", gauge, "connections", "interface=\"edge\"", "", s->edge.connections) \
    X("connections.stats", gauge, "connections", "interface=\"stats\"", "", s->stp.connections) \
    X("connections.rpc.accepted", counter, "connections_total", "interface=\"rpc\",event=\"accepted\"", \
      "Connection events, by interface (accepted, rejected at max-connections, closed idle, closed after an error)", \
      s->conn_accepted)                                                                    \
    X("connections.rpc.rejected", counter, "connections_total", "interface=\"rpc\",event=\"rejected\"", "", s->conn_rejected) \
    X("connections.rpc.closed_idle", counter, "connections_total", "interface=\"rpc\",event=\"closed_idle\"", "", s->conn_closed_idle) \
    X("connections.rpc.closed_error", counter, "connections_total", "interface=\"rpc\",event=\"closed_error\"", "", s->conn_closed_error) \
    VD_HTTP_CONN_ROWS(X, "edge", edge)                                                     \
    VD_HTTP_CONN_ROWS(X, "stats", stp)                                                     \
    X("ruleset.ready", gauge, "ready", "", "1 once a ruleset is loaded and served", s->ready) \
    X("ruleset.loaded_timestamp", gauge, "ruleset_loaded_timestamp_seconds", "",          \
      "Unix time the served ruleset was loaded", s->loaded_at)                             \
    X("ruleset.age", gauge, "ruleset_age_seconds", "", "Seconds since the served ruleset was loaded", \
      s->ruleset_age)                                                                      \
    X("ruleset.segments", gauge, "ruleset_segments", "", "Segments in the served ruleset", s->nsegments) \
    X("ruleset.slots", gauge, "ruleset_slots", "", "Slots in the served ruleset", s->nslots) \
    X("ruleset.reloads", counter, "ruleset_reloads_total", "",                             \
      "Rulesets accepted since start (the first load included)", s->reloads)               \
    X("ruleset.failures", counter, "ruleset_reload_failures_total", "",                    \
      "Rulesets rejected since start (the previous one kept serving)", s->failures)        \
    X("redis.connected", gauge, "redis_connected", "", "1 while connected to Redis (always 0 in file mode)", \
      s->redis_connected)                                                                  \
    X("redis.reconnects", counter, "redis_reconnects_total", "",                           \
      "Connection attempts to Redis after a lost or failed link", s->live.store_reconnects) \
    X("redis.errors", counter, "redis_errors_total", "",                                   \
      "Redis links lost or reset (refused connects, timeouts, disconnects)", s->live.store_errors) \
    X("ruleset.stale", gauge, "ruleset_stale", "",                                         \
      "1 while Redis has been unreachable for longer than stale-after", s->live.stale)     \
    X("uptime", gauge, "uptime_seconds", "", "Seconds since the daemon started", s->uptime) \
    X("start_time", gauge, "start_time_seconds", "", "Unix time the daemon started", s->started_at)

/* Families whose series come from the ruleset or the histogram, not from
 * one row each: X(family, type, labels, help). */
#define VD_METRICS_DYNAMIC(X)                                                              \
    X("ruleset_info", gauge, "version, source",                                            \
      "The served ruleset: always 1, its version and source in labels")                    \
    X("decision_duration_seconds", histogram, "le",                                        \
      "Server-side decision time (context, segments, content map), every interface")       \
    X("slot_decisions_total", counter, "slot, variant",                                    \
      "Decisions by slot and chosen variant (slots and variants of the served ruleset; restarts at each new ruleset)") \
    X("segment_matches_total", counter, "segment",                                         \
      "Decisions in which each segment matched (segments of the served ruleset; restarts at each new ruleset)")

#endif
