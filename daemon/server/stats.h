/* stats.h — counters, defined once in a table. Each worker owns one
 * vd_stats and is its only writer (relaxed atomics: no lock, no shared
 * cache line written on the request path); readers sum over workers.
 * The same table names the metrics for logs and the stats port. */
#ifndef VD_SERVER_STATS_H
#define VD_SERVER_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* X(field, help) */
#define VD_COUNTERS(X)                                                              \
    X(rpc_requests,          "MessagePack-RPC requests answered (all methods)")    \
    X(rpc_decide,            "decide requests answered")                           \
    X(rpc_explain,           "explain requests answered")                          \
    X(rpc_ping,              "ping requests answered")                             \
    X(rpc_notifications,     "notifications received (no reply)")                  \
    X(slots_decided,         "slots answered with a variant")                      \
    X(slots_unknown,         "slots answered with an unknown-slot error")          \
    X(err_parse,             "frames that were not valid MessagePack")             \
    X(err_too_large,         "frames over max-frame")                              \
    X(err_too_deep,          "frames nested deeper than max-depth")                \
    X(err_invalid_request,   "frames that were not a MessagePack-RPC request")     \
    X(err_method,            "requests naming an unknown method")                  \
    X(err_params,            "requests with invalid params")                       \
    X(err_not_ready,         "requests refused because no ruleset is loaded")      \
    X(err_internal,          "requests failed by an internal error (out of memory)") \
    X(conn_accepted,         "connections accepted on the decision port")          \
    X(conn_rejected,         "connections closed at accept: max-connections")      \
    X(conn_closed_error,     "connections closed after a protocol error")          \
    X(conn_closed_idle,      "connections closed by idle-timeout")                 \
    X(decide_ns_total,       "server-side decision time, nanoseconds summed")

typedef struct vd_stats {
#define VD_STATS_FIELD(name, help) _Atomic uint64_t name;
    VD_COUNTERS(VD_STATS_FIELD)
#undef VD_STATS_FIELD
    _Atomic int64_t connections;      /* open now (gauge) */
} vd_stats;

/* Single writer per vd_stats: a relaxed load+store, not a locked add. */
#define VD_STAT_ADD(st, field, n)                                                           \
    atomic_store_explicit(&(st)->field,                                                     \
                          atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n),   \
                          memory_order_relaxed)
#define VD_STAT_INC(st, field) VD_STAT_ADD(st, field, 1)

#endif
