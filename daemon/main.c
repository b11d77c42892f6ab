/* main.c — start-up, signals and shutdown of variantd.
 *
 * Start-up may fail loudly (bad config, unreadable database, invalid
 * definitions in file mode); once serving, nothing a client or a reload does
 * stops the daemon or loses the ruleset being served. */
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "context/geo.h"
#include "context/tz.h"
#include "core/alloc.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/http_stats.h"
#include "net/listener.h"
#include "net/rpc_server.h"
#include "runtime/pool.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "core/config.h"
#include "runtime/worker.h"
#include "store/files.h"
#include "store/live.h"
#include "store/redis_sync.h"
#include "variantd/limits.h"

typedef struct daemon_state {
    vd_config cfg;
    vd_env env;
    vd_geo_db *geo;
    vd_tzdb *tzdb;
    struct event_base *base;       /* control loop: signals, reloads, stores */
    vd_pool *pool;                 /* decision workers, one event loop each */
    vd_redis_sync *redis;          /* Redis mode; NULL in file mode */
    struct event *sig_hup, *sig_term, *sig_int, *stop_timer;
    int stopping;
    vd_stats_port *stats;          /* NULL: stats-listen off; on the control loop */
    struct event *watchdog;        /* systemd WATCHDOG=1 keep-alives */
    unsigned wd_stall_ms;          /* a worker silent this long is stuck */
    bool wd_withheld;              /* keep-alives withheld for a stuck worker */
    int stop_ticks;
    int64_t started_at;
} daemon_state;

/* ---- systemd (sd_notify is a no-op without NOTIFY_SOCKET) ---- */

/* Called once serving starts and after every reload attempt (file mode:
 * SIGHUP; Redis mode: each release accepted or rejected). */
static void notify_status(void)
{
    vd_live_info info;
    vd_live_get_info(&info);
    if (!info.reloads) {
        sd_notifyf(0, "STATUS=waiting for a ruleset (%s)", info.last_error[0] ? info.last_error : "none loaded yet");
        return;
    }
    /* READY only once a ruleset is served, so a unit ordered After= this
     * one gets answers, not "not ready" errors; repeated after each reload,
     * where it also ends the RELOADING=1. */
    sd_notifyf(0, "READY=1\nSTATUS=serving ruleset %s from %s (reloads %llu, rejected %llu)%s%s",
               info.version, vd_source_name(info.source),
               (unsigned long long)info.reloads, (unsigned long long)info.failures,
               info.last_error[0] ? "; last reload rejected: " : "", info.last_error);
}

/* Sent from the control loop, and only while every decision worker's loop
 * still turns (each ticks once a second): a stuck control loop or a stuck
 * worker stops the keep-alives, and systemd restarts the service. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    unsigned age = 0;
    int stuck = d->pool ? vd_pool_stalled(d->pool, d->wd_stall_ms, &age) : -1;
    if (stuck >= 0) {
        if (!d->wd_withheld)
            vd_error("worker %d has not run its event loop for %u ms: withholding the systemd "
                     "watchdog keep-alive, so systemd restarts the service", stuck, age);
        d->wd_withheld = true;
        return;
    }
    if (d->wd_withheld)
        vd_warn("every worker runs again: watchdog keep-alives resumed");
    d->wd_withheld = false;
    sd_notify(0, "WATCHDOG=1");
}

static void log_errors(const char *what, const vd_errors *err)
{
    for (size_t i = 0; i < err->n; i++)
        vd_error("%s: %s", what, err->msg[i]);
    if (err->dropped)
        vd_error("%s: ... and %zu more errors", what, err->dropped);
}

/* File mode: compile both folders; swap in only a fully valid set. */
static int reload_files(daemon_state *d, int at_start)
{
    vd_errors *err = vd_malloc(sizeof *err);
    if (!err)
        return -1;
    vd_errors_init(err);
    uint64_t t0 = vd_now_ns();
    vd_parsed *parsed = NULL;
    vd_ruleset *rs = vd_files_compile_keep(d->cfg.segments, d->cfg.content_map, err, &parsed);
    if (!rs) {
        char summary[VD_ERROR_LEN + 32];
        log_errors(at_start ? "definitions rejected" : "reload rejected, still serving the previous ruleset", err);
        vd_live_failed(vd_errors_summary(err, summary, sizeof summary));
        vd_free(err);
        return -1;
    }
    vd_free(err);
    vd_info("ruleset %s loaded from %s + %s: %u segments, %u slots, compiled in %.1f ms",
            vd_ruleset_version(rs), d->cfg.segments, d->cfg.content_map, vd_ruleset_nsegments(rs),
            vd_ruleset_nslots(rs), (double)(vd_now_ns() - t0) / 1e6);
    vd_live_set(rs, VD_SOURCE_FILES);
    vd_parsed_free(parsed);       /* after the swap: not on the path to serving it */
    return 0;
}

/* Every port is checked free before the workers bind it with SO_REUSEPORT
 * (which would otherwise share it with whatever already listens there), two
 * of our own ports may not take the same connections, and port 0 becomes one
 * concrete port for all workers. The claiming sockets stay bound (held[])
 * while the definitions load, so the ports stay ours until the workers bind;
 * release_ports closes them just before. */
static int claim_ports(vd_config *cfg, int held[3])
{
    struct {
        char **addr;
        const char *what;
    } ports[] = {
        { &cfg->listen, "decision port (--listen)" },
        { &cfg->http_listen, "edge port (--http-listen)" },
        { &cfg->stats_listen, "stats port (--stats-listen)" },
    };
    const size_t n = sizeof ports / sizeof ports[0];
    char err[256];
    for (size_t i = 0; i < n; i++) {
        if (!(*ports[i].addr)[0])
            continue;
        for (size_t j = 0; j < i; j++)
            if ((*ports[j].addr)[0] && vd_listen_overlap(*ports[i].addr, *ports[j].addr)) {
                vd_error("%s %s and %s %s take the same connections: give them different ports",
                         ports[j].what, *ports[j].addr, ports[i].what, *ports[i].addr);
                return -1;
            }
        char *resolved;
        if (vd_listen_claim(*ports[i].addr, ports[i].what, &resolved, &held[i], err,
                            sizeof err) != 0) {
            vd_error("%s", err);
            return -1;
        }
        vd_free(*ports[i].addr);
        *ports[i].addr = resolved;
    }
    return 0;
}

static void release_ports(int held[3])
{
    for (int i = 0; i < 3; i++)
        if (held[i] >= 0) {
            close(held[i]);
            held[i] = -1;
        }
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    if (d->redis) {
        vd_info("SIGHUP: checking the current release in Redis");
        vd_redis_sync_check_now(d->redis);
        return;
    }
    vd_info("SIGHUP: reloading definitions");
    sd_notify(0, "RELOADING=1");
    reload_files(d, 0);
    notify_status();
}

/* Replies already computed get this long to reach slow readers at shutdown. */
#define DRAIN_MS 5000

static void stop_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    size_t left = d->stats ? vd_http_server_drain(vd_stats_port_server(d->stats)) : 0;
    d->stop_ticks++;
    if (vd_pool_finished(d->pool) && (left == 0 || d->stop_ticks * 50 >= DRAIN_MS))
        event_base_loopexit(d->base, NULL);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    daemon_state *d = arg;
    if (d->stopping) {
        vd_warn("second signal: exiting now");
        vd_pool_stop(d->pool, 0);
        return;
    }
    d->stopping = 1;
    vd_info("%s: draining (no new connections, replies in flight are sent)",
            fd == SIGINT ? "SIGINT" : "SIGTERM");
    sd_notify(0, "STOPPING=1\nSTATUS=draining connections");
    vd_pool_stop(d->pool, DRAIN_MS);
    if (d->stats)
        vd_http_server_stop_accepting(vd_stats_port_server(d->stats));
    struct timeval tv = { 0, 50000 };
    d->stop_timer = event_new(d->base, -1, EV_PERSIST, stop_tick, d);
    event_add(d->stop_timer, &tv);
}

int main(int argc, char **argv)
{
    static daemon_state d;
    bool check_only;
    /* A SIGHUP before the reload handler exists (the workers already accept
     * while main is still starting) must not kill the daemon: the
     * definitions are being loaded right now anyway. */
    signal(SIGHUP, SIG_IGN);
    /* Failure injection for tests (VD_ALLOC_FAIL_EVERY=N): off unless set. */
    vd_alloc_init_from_env();
    d.started_at = (int64_t)time(NULL);
    vd_config_defaults(&d.cfg);
    int rc = vd_config_from_args(&d.cfg, argc, argv, &check_only);
    if (rc != 0) {
        vd_config_free(&d.cfg);
        return rc > 0 ? 0 : 2;
    }
    int lvl = vd_log_level_parse(d.cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "variantd: log-level must be debug, info, warn or error\n");
        return 2;
    }
    vd_log_level = lvl;

    char err[512];
    d.tzdb = vd_tzdb_open(d.cfg.zoneinfo, err, sizeof err);
    if (!d.tzdb) {
        vd_error("time zones: %s", err);
        return 1;
    }
    if (d.cfg.geoip_db[0]) {
        d.geo = vd_geo_open(d.cfg.geoip_db, err, sizeof err);
        if (!d.geo) {
            vd_error("geoip-db: %s", err);
            return 1;
        }
        vd_info("geoip-db %s: %s", d.cfg.geoip_db, vd_geo_describe(d.geo));
    } else {
        vd_warn("no geoip-db: geo.* attributes are missing, time.* uses UTC unless the request gives tz");
    }
    d.env.geo = d.geo;
    d.env.tzdb = d.tzdb;

    /* Before loading definitions: a taken port fails start-up at once, and
     * Redis registration advertises the resolved address. */
    int held[3] = { -1, -1, -1 };
    if (!check_only && claim_ports(&d.cfg, held) != 0)
        return 1;

    if (d.cfg.redis[0]) {
        /* Redis mode: serve the snapshot (if any) now, Redis when it answers;
         * with neither, start not ready rather than serve an empty ruleset. */
        vd_redis_sync_options ro = {
            .url = d.cfg.redis,
            .namespace_ = d.cfg.redis_namespace,
            .listen = d.cfg.listen,
            .snapshot = d.cfg.snapshot,
            .poll_ms = d.cfg.redis_poll_interval,
            .timeout_ms = d.cfg.redis_timeout,
            .stale_after_s = d.cfg.stale_after,
        };
        d.redis = vd_redis_sync_new(&ro, err, sizeof err);
        if (!d.redis) {
            vd_error("%s", err);
            return 1;
        }
    } else {
        if (d.cfg.snapshot[0])
            vd_warn("snapshot is used only with --redis; ignored in file mode");
        if (reload_files(&d, 1) != 0)
            return 1;
    }
    if (check_only) {
        vd_redis_sync_free(d.redis);
        vd_info("check: configuration and definitions are valid");
        vd_live_clear();
        vd_geo_close(d.geo);
        vd_tzdb_close(d.tzdb);
        vd_config_free(&d.cfg);
        return 0;
    }

    release_ports(held);
    signal(SIGPIPE, SIG_IGN);
    d.pool = vd_pool_start(&d.cfg, &d.env, (unsigned)d.cfg.workers, err, sizeof err);
    if (!d.pool) {
        vd_error("decision port: %s", err);
        return 1;
    }
    d.base = event_base_new();
    if (!d.base) {
        vd_error("out of memory at start-up");
        return 1;
    }
    if (d.redis)
        vd_redis_sync_on_change(d.redis, notify_status);
    if (d.redis && vd_redis_sync_start(d.redis, d.base) != 0) {
        vd_error("redis: cannot start the sync (out of memory or threads)");
        return 1;
    }
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    d.sig_term = evsignal_new(d.base, SIGTERM, on_term, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_term, &d);
    event_add(d.sig_hup, NULL);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    if (d.cfg.stats_listen[0]) {
        vd_stats_source src[VD_MAX_WORKERS];
        unsigned nsrc = vd_pool_stats_sources(d.pool, src, VD_MAX_WORKERS);
        d.stats = vd_stats_port_start(d.base, src, nsrc, &d.cfg, d.cfg.stats_listen, d.started_at,
                                      err, sizeof err);
        if (!d.stats) {
            vd_error("stats port: %s", err);
            vd_pool_stop(d.pool, 0);
            vd_pool_free(d.pool);
            return 1;
        }
    }
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        struct timeval half = { .tv_sec = (time_t)(wd_usec / 2 / 1000000),
                                .tv_usec = (suseconds_t)(wd_usec / 2 % 1000000) };
        /* Workers tick every second; a loop silent for 3 s (or half the
         * watchdog period, if longer) is stuck, not busy. */
        d.wd_stall_ms = (unsigned)(wd_usec / 2000) > 3000 ? (unsigned)(wd_usec / 2000) : 3000;
        d.watchdog = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
        event_add(d.watchdog, &half);
        vd_info("systemd watchdog: keep-alive every %llu ms", (unsigned long long)(wd_usec / 2000));
    }

    vd_info("variantd %s %s: decision port %s (MessagePack-RPC: decide, explain, ping), "
            "%u worker%s", VD_VERSION,
            vd_live_generation() ? "ready" : "listening, NOT READY until a release loads",
            d.cfg.listen, vd_pool_size(d.pool), vd_pool_size(d.pool) == 1 ? "" : "s");
    if (d.cfg.http_listen[0])
        vd_info("edge port %s (HTTP: GET/POST /v1/decide)", d.cfg.http_listen);
    if (d.stats)
        vd_info("stats port %s (HTTP: /metrics /stats /healthz /readyz, dashboard at /)",
                d.cfg.stats_listen);
    notify_status();
    event_base_dispatch(d.base);

    vd_pool_free(d.pool);
    vd_stats_port_free(d.stats);
    if (d.watchdog)
        event_free(d.watchdog);
    vd_info("stopped");
    vd_redis_sync_free(d.redis);
    if (d.stop_timer)
        event_free(d.stop_timer);
    event_free(d.sig_hup);
    event_free(d.sig_term);
    event_free(d.sig_int);
    event_base_free(d.base);
    vd_live_clear();
    vd_geo_close(d.geo);
    vd_tzdb_close(d.tzdb);
    vd_config_free(&d.cfg);
    return 0;
}
