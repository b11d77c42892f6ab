/* http_stats.c — the stats port's handler (see the header). */
#include "net/http_stats.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "net/http_edge.h"
#include "net/json_out.h"
#include "net/metrics.h"
#include "net/recent_errors.h"
#include "variantd/limits.h"

#define MAX_WORKERS VD_MAX_WORKERS

struct vd_stats_port {
    const vd_config *cfg;
    vd_http_server *srv;
    vd_http_stats st;             /* this port's own counters (one thread) */
    int64_t started_at;
    unsigned nworkers;
    vd_stats_source workers[MAX_WORKERS];
    vd_stats_snap snap;
};

/* A setting whose name says it holds a secret shows only whether it is set. */
static bool secret_key(const char *key)
{
    static const char *const words[] = { "password", "secret", "token", "auth", "credential" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(key, words[i]))
            return true;
    return false;
}

static void dump_config(void *arg, const char *key, const char *val)
{
    vd_json *j = arg;
    vd_json_key(j, key);
    if (secret_key(key)) {
        vd_json_cstr(j, val && val[0] ? "***" : "");
        return;
    }
    /* A URL's user:password@ (a Redis password) is not for a dashboard. */
    const char *scheme = strstr(val, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    if (at) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s***%s", (int)(scheme + 3 - val), val, at);
        vd_json_cstr(j, buf);
        return;
    }
    vd_json_cstr(j, val);
}

/* "recent_errors": [{time (unix s, ms precision), interface, port, code,
 * message}], newest first; "recent_errors_total": all since start. */
static void recent_errors_json(vd_json *j)
{
    static vd_recent_error errs[VD_RECENT_ERRORS];   /* the control thread only */
    uint64_t total = 0;
    unsigned n = vd_recent_errors_get(errs, &total);
    vd_json_key(j, "recent_errors_total");
    vd_json_u64(j, total);
    vd_json_key(j, "recent_errors");
    vd_json_arr(j);
    for (unsigned i = 0; i < n; i++) {
        vd_json_obj(j);
        vd_json_key(j, "time");
        vd_json_f64(j, (double)errs[i].time_ms / 1000.0);
        vd_json_key(j, "interface");
        vd_json_cstr(j, errs[i].iface);
        vd_json_key(j, "port");
        vd_json_i64(j, errs[i].port);
        vd_json_key(j, "code");
        vd_json_cstr(j, errs[i].code);
        vd_json_key(j, "message");
        vd_json_cstr(j, errs[i].message);
        vd_json_end(j);
    }
    vd_json_end(j);
}

static void stats_json(vd_stats_port *p, vd_http_resp *r)
{
    vd_stats_snap *s = &p->snap;
    vd_stats_snapshot(p->workers, p->nworkers, &p->st, p->started_at, s);
    vd_json j;
    vd_json_init(&j, r->body);
    vd_json_obj(&j);
    vd_json_key(&j, "daemon");
    vd_json_cstr(&j, "variantd " VD_VERSION);
    vd_json_key(&j, "time");
    vd_json_i64(&j, (int64_t)time(NULL));
    vd_json_key(&j, "uptime_seconds");
    vd_json_i64(&j, s->uptime);
    vd_json_key(&j, "ready");
    vd_json_bool(&j, s->ready);
    vd_json_key(&j, "ruleset");
    vd_json_obj(&j);
    vd_json_key(&j, "version");
    if (s->ready)
        vd_json_cstr(&j, s->live.version);
    else
        vd_json_null(&j);
    vd_json_key(&j, "source");
    vd_json_cstr(&j, vd_source_name(s->ready ? s->live.source : VD_SOURCE_NONE));
    vd_json_key(&j, "loaded_at");
    vd_json_i64(&j, s->loaded_at);
    vd_json_key(&j, "age_seconds");
    vd_json_i64(&j, s->ruleset_age);
    vd_json_key(&j, "reloads");
    vd_json_u64(&j, s->reloads);
    vd_json_key(&j, "failures");
    vd_json_u64(&j, s->failures);
    vd_json_key(&j, "last_error");
    vd_json_cstr(&j, s->live.last_error);
    vd_json_key(&j, "segments");
    vd_json_u64(&j, s->nsegments);
    vd_json_key(&j, "slots");
    vd_json_u64(&j, s->nslots);
    vd_json_end(&j);
    vd_json_key(&j, "sync");
    vd_json_obj(&j);
    vd_json_key(&j, "mode");
    vd_json_cstr(&j, p->cfg->redis && p->cfg->redis[0] ? "redis" : "files");
    vd_json_key(&j, "redis_connected");
    vd_json_bool(&j, s->redis_connected != 0);
    vd_json_end(&j);
    vd_json_key(&j, "workers");
    vd_json_u64(&j, p->nworkers);
    vd_metrics_json(&j, s);
    vd_stats_snapshot_done(s);
    vd_json_key(&j, "config");
    vd_json_obj(&j);
    vd_config_dump(p->cfg, dump_config, &j);
    vd_json_end(&j);
    recent_errors_json(&j);
    vd_json_end(&j);
    evbuffer_add(r->body, "\n", 1);
    r->content_type = "application/json";
}

static void handle(void *arg, const vd_http_req *req, vd_http_resp *r)
{
    vd_stats_port *p = arg;
    vd_http_stats *st = &p->st;
    static const char *const paths[] = { "/metrics", "/stats", "/healthz", "/readyz", "/" };
    size_t route = sizeof paths / sizeof paths[0];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (vd_str_eq(req->path, vd_str_cstr(paths[i])))
            route = i;
    if (route == sizeof paths / sizeof paths[0]) {
        VD_STAT_INC(st, err_not_found);
        vd_http_resp_error(r, 404, "not_found", "no such path: /metrics, /stats, /healthz, /readyz, /");
        return;
    }
    if (req->method != VD_HTTP_GET && req->method != VD_HTTP_HEAD) {
        VD_STAT_INC(st, err_method);
        vd_http_resp_header(r, VD_STR_LIT("Allow"), VD_STR_LIT("GET, HEAD"));
        vd_http_resp_error(r, 405, "method_not_allowed", "the stats port takes GET and HEAD");
        return;
    }
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("no-store"));
    switch (route) {
    case 0: {
        vd_stats_snapshot(p->workers, p->nworkers, &p->st, p->started_at, &p->snap);
        vd_metrics_prometheus(r->body, &p->snap);
        vd_stats_snapshot_done(&p->snap);
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        break;
    }
    case 1:
        stats_json(p, r);
        break;
    case 2:
        vd_http_resp_body(r, 200, "text/plain", "ok\n", 3);
        break;
    case 3: {
        vd_ruleset *rs = vd_live_acquire();
        if (rs) {
            vd_ruleset_release(rs);
            vd_http_resp_body(r, 200, "text/plain", "ready\n", 6);
        } else {
            VD_STAT_INC(st, err_not_ready);
            vd_http_resp_body(r, 503, "text/plain", "not ready: no ruleset loaded yet\n", 33);
        }
        break;
    }
    default:
        vd_http_resp_body(r, 200, "text/html; charset=utf-8", vd_dashboard_html,
                          (size_t)(vd_dashboard_html_end - vd_dashboard_html));
        /* The page is self-contained: let the browser load nothing else. */
        vd_http_resp_header(r, VD_STR_LIT("Content-Security-Policy"),
                            VD_STR_LIT("default-src 'none'; script-src 'unsafe-inline'; "
                                       "style-src 'unsafe-inline'; connect-src 'self'; img-src data:"));
        break;
    }
}

vd_stats_port *vd_stats_port_start(struct event_base *base, const vd_stats_source *workers,
                                   unsigned nworkers, const vd_config *cfg, const char *addr,
                                   int64_t started_at, char *err, size_t cap)
{
    vd_stats_port *p = vd_calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->started_at = started_at;
    for (unsigned i = 0; i < nworkers && i < MAX_WORKERS; i++)
        p->workers[p->nworkers++] = workers[i];
    vd_http_limits lim;
    vd_http_limits_from_config(cfg, &lim);
    /* Scrapers and a few dashboards: a small, fixed connection budget. */
    if (lim.max_conns > 256)
        lim.max_conns = 256;
    lim.max_body = 1024;     /* nothing takes a body: enough to answer 405 */
    lim.name = "stats";
    p->srv = vd_http_server_start(base, addr, &lim, &p->st, handle, p, err, cap);
    if (!p->srv) {
        vd_free(p);
        return NULL;
    }
    return p;
}

vd_http_server *vd_stats_port_server(vd_stats_port *p)
{
    return p->srv;
}

void vd_stats_port_free(vd_stats_port *p)
{
    if (!p)
        return;
    vd_http_server_free(p->srv);
    vd_free(p);
}
