/* http_stats.h — the stats port (loopback by default):
 *   GET /metrics   Prometheus text (variantd_*, see docs/OPERATIONS.md)
 *   GET /stats     the same numbers as JSON, plus ruleset, config, uptime
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 once a ruleset is loaded, 503 before
 *   GET /          the dashboard page (self-contained, polls /stats) */
#ifndef VD_NET_HTTP_STATS_H
#define VD_NET_HTTP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "net/http_server.h"
#include "core/config.h"
#include "net/metrics.h"

typedef struct vd_stats_port vd_stats_port;

/* Serves on base (the control loop, not a decision worker), reading the
 * workers' counters (the array is copied); counts its own requests itself. */
vd_stats_port *vd_stats_port_start(struct event_base *base, const vd_stats_source *workers,
                                   unsigned nworkers, const vd_config *cfg, const char *addr,
                                   int64_t started_at, char *err, size_t cap);
vd_http_server *vd_stats_port_server(vd_stats_port *p);
void vd_stats_port_free(vd_stats_port *p);

/* The dashboard page, embedded at build time (net/dashboard.c). */
extern const char vd_dashboard_html[];
extern const char vd_dashboard_html_end[];

#endif
