/* main.c — start-up, signals and shutdown of variantd.
 *
 * Start-up may fail loudly (bad config, unreadable database, invalid
 * definitions in file mode); once serving, nothing a client or a reload does
 * stops the daemon or loses the ruleset being served. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "context/bots.h"
#include "context/geo.h"
#include "context/netdb.h"
#include "context/tz.h"
#include "core/alloc.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/http_stats.h"
#include "net/listener.h"
#include "net/rpc_server.h"
#include "profile/master.h"
#include "runtime/learner.h"
#include "runtime/pool.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "core/config.h"
#include "runtime/worker.h"
#include "store/files.h"
#include "store/live.h"
#include "store/redis_sync.h"
#include "store/sentinel.h"
#include "variantd/limits.h"

typedef struct daemon_state {
    vd_config cfg;
    double bandit_floor;          /* cfg.bandit_floor, parsed */
    vd_learner *learner;          /* NULL: no counters store */
    vd_env env;
    vd_geo_db *geo;
    vd_netdb *asn, *anon;          /* --asn-db, --anonymous-ip-db; NULL = off */
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
    /* File mode: reloads run on their own thread, one at a time, with at
     * most one more pending however many SIGHUPs arrive (the control loop,
     * its stats port and SIGTERM never wait for a compile). */
    pthread_t reloader;
    bool reloader_started;
    pthread_mutex_t reload_mu;
    pthread_cond_t reload_cv;
    bool reload_pending, reload_running, reload_quit;
    unsigned long reload_coalesced;
    /* GeoIP reloads, on the same thread: SIGHUP and a periodic check of the
     * file's identity (geoip-check-interval) ask for one. */
    bool geo_pending;
    vd_geo_file_id geo_id;        /* of the database served (under reload_mu) */
    vd_geo_file_id geo_bad_id;    /* of a file refused: not retried until it changes */
    bool geo_bad;
    struct event *geo_timer;
    /* The network databases reload with it (same triggers, same thread):
     * [0] asn-db, [1] anonymous-ip-db; ids under reload_mu. */
    struct net_file {
        vd_geo_file_id id, bad_id;
        bool bad;
    } nets[2];
    vd_sentinel *profile_sentinel;   /* --profiles redis-sentinel://: follows the master */
} daemon_state;

static const struct {
    const char *flag;
    vd_netdb_kind kind;
} net_kinds[2] = {
    { "asn-db", VD_NETDB_ASN },
    { "anonymous-ip-db", VD_NETDB_ANONYMOUS },
};

static const char *net_path(const daemon_state *d, int i)
{
    const char *p = i == 0 ? d->cfg.asn_db : d->cfg.anonymous_ip_db;
    return p ? p : "";
}

static bool have_net(const daemon_state *d)
{
    return net_path(d, 0)[0] || net_path(d, 1)[0];
}

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

/* A compile parses every document on the reload thread, whose malloc arena
 * glibc does not shrink by itself: a rejected 100,001-segment set left RSS
 * at ~130 MB. After each reload the freed memory goes back to the system. */
static void give_back_memory(void)
{
    malloc_trim(0);
}

/* An optional network database; a wrong type or an unreadable file stops
 * start-up. */
static int open_netdb(const char *flag, const char *path, vd_netdb_kind kind, vd_netdb **out,
                      vd_geo_file_id *id)
{
    char err[512];
    *out = NULL;
    if (!path || !path[0])
        return 0;
    *out = vd_netdb_open(path, kind, err, sizeof err);
    if (!*out) {
        vd_error("%s: %s", flag, err);
        return -1;
    }
    *id = *vd_netdb_file(*out);
    vd_info("%s %s: %s", flag, path, vd_netdb_describe(*out));
    return 0;
}

/* File mode: compile both folders; swap in only a fully valid set. */
static int reload_files(daemon_state *d, int at_start)
{
    vd_errors *err = vd_malloc(sizeof *err);
    if (!err)
        return -1;
    vd_errors_init(err);
    uint64_t t0 = vd_now_ns();
    vd_ruleset *rs = vd_files_compile_all(d->cfg.segments, d->cfg.content_map, d->cfg.scores, err);
    if (!rs && vd_ruleset_compiles_cancelled()) {
        vd_info("reload cancelled: shutting down");
        vd_free(err);
        return -1;
    }
    if (!rs) {
        char summary[VD_ERROR_LEN + 32];
        log_errors(at_start ? "definitions rejected" : "reload rejected, still serving the previous ruleset", err);
        vd_live_failed(vd_errors_summary(err, summary, sizeof summary));
        vd_free(err);
        give_back_memory();
        return -1;
    }
    vd_free(err);
    vd_info("ruleset %s loaded from %s + %s: %u segments, %u slots, compiled in %.1f ms",
            vd_ruleset_version(rs), d->cfg.segments, d->cfg.content_map, vd_ruleset_nsegments(rs),
            vd_ruleset_nslots(rs), (double)(vd_now_ns() - t0) / 1e6);
    vd_live_set(rs, VD_SOURCE_FILES);
    give_back_memory();
    return 0;
}

/* File descriptors kept out of max-connections / http-max-connections:
 * the stats port (up to its 256 connections, but a few always), reloads
 * (definition files, the snapshot, GeoIP), Redis links, listeners, each
 * worker's event-loop fds and the log. Like Redis's maxclients, the
 * connection limits are lowered to what the fd limit leaves after this, so
 * clients holding every allowed connection never starve those. */
#define FD_RESERVE_BASE 96
#define FD_RESERVE_PER_WORKER 8

static void fit_fd_limit(vd_config *cfg)
{
    long workers = cfg->workers > 0 ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
        workers = 1;
    long reserve = FD_RESERVE_BASE + FD_RESERVE_PER_WORKER * workers;
    long conns = cfg->max_connections + (cfg->http_listen[0] ? cfg->http_max_connections : 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)(conns + reserve);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        /* Raise the soft limit as far as the hard one allows. */
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    long avail = (long)rl.rlim_cur - reserve;
    if (avail < 2)
        avail = 2;
    long old_rpc = cfg->max_connections, old_http = cfg->http_max_connections;
    if (cfg->http_listen[0]) {
        /* Both ports: each keeps its share of what is left. */
        long r = (long)((double)avail * (double)old_rpc / (double)conns);
        if (r < 1)
            r = 1;
        long h = avail - r;
        if (h < 1)
            h = 1;
        cfg->max_connections = r < old_rpc ? r : old_rpc;
        cfg->http_max_connections = h < old_http ? h : old_http;
        vd_warn("max-connections %ld and http-max-connections %ld need %ld file descriptors "
                "with %ld kept in reserve (stats HTTP port, reloads, Redis), but the limit "
                "(RLIMIT_NOFILE, LimitNOFILE=) is %llu: lowered to %ld and %ld",
                old_rpc, old_http, conns + reserve, reserve, (unsigned long long)rl.rlim_cur,
                cfg->max_connections, cfg->http_max_connections);
    } else {
        cfg->max_connections = avail < old_rpc ? avail : old_rpc;
        vd_warn("max-connections %ld needs %ld file descriptors with %ld kept in reserve "
                "(stats HTTP port, reloads, Redis), but the limit (RLIMIT_NOFILE, "
                "LimitNOFILE=) is %llu: lowered to %ld",
                old_rpc, conns + reserve, reserve, (unsigned long long)rl.rlim_cur,
                cfg->max_connections);
    }
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

/* A new GeoIP database, if the file's identity changed: read into memory
 * we own, validated with the start-up checks, swapped in for every worker
 * at once (each moves between requests; the old copy is unmapped by the
 * last of them). On any error the database served stays. Reload thread. */
static void reload_geo(daemon_state *d)
{
    vd_geo_file_id now;
    if (vd_geo_file_stat(d->cfg.geoip_db, &now) != 0) {
        vd_warn("geoip-db %s: cannot stat it (%s); still serving the database loaded before",
                d->cfg.geoip_db, strerror(errno));
        return;
    }
    pthread_mutex_lock(&d->reload_mu);
    bool same = vd_geo_file_same(&now, &d->geo_id) ||
                (d->geo_bad && vd_geo_file_same(&now, &d->geo_bad_id));
    pthread_mutex_unlock(&d->reload_mu);
    if (same)
        return;
    char err[600];
    uint64_t t0 = vd_now_ns();
    vd_geo_db *db = vd_geo_open(d->cfg.geoip_db, err, sizeof err);
    if (!db) {
        vd_error("geoip-db reload rejected, still serving the database loaded before: %s", err);
        /* A file caught being written is retried at the next check; a bad
         * one only once it changes again. */
        pthread_mutex_lock(&d->reload_mu);
        d->geo_bad = !strstr(err, "changed while being read");
        d->geo_bad_id = now;
        pthread_mutex_unlock(&d->reload_mu);
        return;
    }
    pthread_mutex_lock(&d->reload_mu);
    d->geo_id = *vd_geo_file(db);
    d->geo_bad = false;
    pthread_mutex_unlock(&d->reload_mu);
    vd_info("geoip-db %s reloaded in %.1f ms: %s", d->cfg.geoip_db,
            (double)(vd_now_ns() - t0) / 1e6, vd_geo_describe(db));
    vd_live_geo_set(db);
}

/* The network databases whose file's identity changed, reopened and checked
 * as at start-up, then swapped in for every worker as a pair. A database
 * that fails keeps the one served. Reload thread. */
static void reload_net(daemon_state *d)
{
    vd_netdb *cur[2];
    vd_live_net_acquire(&cur[0], &cur[1]);
    bool changed = false;
    for (int i = 0; i < 2; i++) {
        const char *path = net_path(d, i);
        struct net_file *nf = &d->nets[i];
        vd_geo_file_id now;
        if (!path[0])
            continue;
        if (vd_geo_file_stat(path, &now) != 0) {
            vd_warn("%s %s: cannot stat it (%s); still serving the database loaded before",
                    net_kinds[i].flag, path, strerror(errno));
            continue;
        }
        pthread_mutex_lock(&d->reload_mu);
        bool same = vd_geo_file_same(&now, &nf->id) || (nf->bad && vd_geo_file_same(&now, &nf->bad_id));
        pthread_mutex_unlock(&d->reload_mu);
        if (same)
            continue;
        char err[600];
        vd_netdb *db = vd_netdb_open(path, net_kinds[i].kind, err, sizeof err);
        pthread_mutex_lock(&d->reload_mu);
        if (db) {
            nf->id = *vd_netdb_file(db);
            nf->bad = false;
        } else {
            /* A file caught being written is retried at the next check; a
             * bad one only once it changes again. */
            nf->bad = !strstr(err, "changed while being read");
            nf->bad_id = now;
        }
        pthread_mutex_unlock(&d->reload_mu);
        if (!db) {
            vd_error("%s reload rejected, still serving the database loaded before: %s",
                     net_kinds[i].flag, err);
            continue;
        }
        vd_info("%s %s reloaded: %s", net_kinds[i].flag, path, vd_netdb_describe(db));
        vd_netdb_release(cur[i]);
        cur[i] = db;
        changed = true;
    }
    if (changed) {
        vd_live_net_set(cur[0], cur[1]);
    } else {
        vd_netdb_release(cur[0]);
        vd_netdb_release(cur[1]);
    }
}

static void *reloader_main(void *arg)
{
    daemon_state *d = arg;
    pthread_setname_np(pthread_self(), "vd-reload");
    /* Linux nice is per thread. With a nice below the workers' (compile-nice,
     * default -10), a reload on a machine the workers keep busy takes about
     * its own CPU time instead of a third of the CPU: a 10,000-segment swap
     * under the bench's load went from ~300 to ~100 ms; the workers lose
     * that compile's CPU time once per reload. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), (int)d->cfg.compile_nice) != 0)
        vd_info("compile-nice %ld not permitted (%s; needs CAP_SYS_NICE or LimitNICE): reloads run at "
                "the workers' priority", d->cfg.compile_nice, strerror(errno));
    pthread_mutex_lock(&d->reload_mu);
    for (;;) {
        while (!d->reload_pending && !d->geo_pending && !d->reload_quit)
            pthread_cond_wait(&d->reload_cv, &d->reload_mu);
        if (d->reload_quit)
            break;
        bool defs = d->reload_pending, geo = d->geo_pending;
        d->reload_pending = false;
        d->geo_pending = false;
        d->reload_running = true;
        pthread_mutex_unlock(&d->reload_mu);
        if (geo && d->cfg.geoip_db[0])
            reload_geo(d);
        if (geo)
            reload_net(d);
        if (defs) {
            sd_notify(0, "RELOADING=1");
            reload_files(d, 0);
            notify_status();
        }
        pthread_mutex_lock(&d->reload_mu);
        d->reload_running = false;
    }
    pthread_mutex_unlock(&d->reload_mu);
    return NULL;
}

/* Control loop, every geoip-check-interval: one stat() per database file
 * (geoip-db, asn-db, anonymous-ip-db), like nginx geoip2's auto_reload. A
 * changed identity (device, inode, size, mtime: a rename or an overwrite)
 * asks the reload thread for a reload. */
static void on_geo_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    vd_geo_file_id now;
    if (d->stopping)
        return;
    pthread_mutex_lock(&d->reload_mu);
    bool changed = d->cfg.geoip_db[0] && vd_geo_file_stat(d->cfg.geoip_db, &now) == 0 &&
                   !vd_geo_file_same(&now, &d->geo_id) &&
                   !(d->geo_bad && vd_geo_file_same(&now, &d->geo_bad_id));
    for (int i = 0; i < 2 && !changed; i++)      /* the network databases too */
        changed = net_path(d, i)[0] && vd_geo_file_stat(net_path(d, i), &now) == 0 &&
                  !vd_geo_file_same(&now, &d->nets[i].id) &&
                  !(d->nets[i].bad && vd_geo_file_same(&now, &d->nets[i].bad_id));
    if (changed) {
        d->geo_pending = true;
        pthread_cond_signal(&d->reload_cv);
    }
    pthread_mutex_unlock(&d->reload_mu);
}

static int reloader_start(daemon_state *d)
{
    pthread_mutex_init(&d->reload_mu, NULL);
    pthread_cond_init(&d->reload_cv, NULL);
    if (pthread_create(&d->reloader, NULL, reloader_main, d) != 0)
        return -1;
    d->reloader_started = true;
    return 0;
}

/* At shutdown: a compile in progress is cancelled (vd_ruleset_cancel_compiles
 * was called by on_term), a pending one dropped. */
static void reloader_stop(daemon_state *d)
{
    if (!d->reloader_started)
        return;
    pthread_mutex_lock(&d->reload_mu);
    d->reload_quit = true;
    d->reload_pending = false;
    pthread_cond_signal(&d->reload_cv);
    pthread_mutex_unlock(&d->reload_mu);
    pthread_join(d->reloader, NULL);
    d->reloader_started = false;
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    if (d->stopping)
        return;
    if (d->cfg.geoip_db[0] || have_net(d)) {
        /* Loaded if a database file changed (reload thread). */
        pthread_mutex_lock(&d->reload_mu);
        d->geo_pending = true;
        pthread_cond_signal(&d->reload_cv);
        pthread_mutex_unlock(&d->reload_mu);
    }
    if (d->redis) {
        vd_info("SIGHUP: checking the current release in Redis");
        vd_redis_sync_check_now(d->redis);
        return;
    }
    /* libevent calls this once per signal caught: a storm of SIGHUPs is one
     * compile running and at most one pending. */
    pthread_mutex_lock(&d->reload_mu);
    bool busy = d->reload_running, already = d->reload_pending;
    d->reload_pending = true;
    if (already)
        d->reload_coalesced++;
    pthread_cond_signal(&d->reload_cv);
    pthread_mutex_unlock(&d->reload_mu);
    if (already)
        vd_debug("SIGHUP: a reload is already pending; coalesced");
    else
        vd_info("SIGHUP: reloading definitions%s", busy ? " after the one in progress" : "");
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
    /* Next in line and prompt: a compile in progress (file reload or Redis
     * release) stops at its next segment. */
    vd_ruleset_cancel_compiles();
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

/* The sentinel watcher for the profile store: publishes the master's
 * address for the workers (profile/master.h). */
static void on_profile_master(void *arg, const char *host, int port)
{
    (void)arg;
    char old[256];
    int old_port = 0;
    if (vd_profile_master_get(old, sizeof old, &old_port) && (old_port != port || strcmp(old, host)))
        vd_warn("profiles: the sentinels name a new master %s:%d (was %s:%d): workers reconnect",
                host, port, old, old_port);
    vd_profile_master_set(host, port);
}

/* --profiles redis-sentinel://: resolve the master once (blocking, so the
 * workers connect at once), then follow it from the control thread. */
static int start_profile_sentinel(daemon_state *d)
{
    vd_redis_url u;
    char err[512];
    if (vd_redis_url_parse(d->cfg.profiles, &u, err, sizeof err) != 0 || !u.is_sentinel)
        return 0;              /* validated earlier; not a sentinel URL */
    vd_redis_url m = u;
    if (vd_sentinel_resolve(&m, (int)d->cfg.redis_timeout, err, sizeof err) == 0)
        vd_profile_master_set(m.host, m.port);
    else
        vd_warn("profiles: %s; decisions go on without profiles until a sentinel answers", err);
    d->profile_sentinel = vd_sentinel_new(&u, d->cfg.redis_timeout, d->cfg.redis_poll_interval, err,
                                          sizeof err);
    if (!d->profile_sentinel) {
        vd_error("profiles: %s", err);
        return -1;
    }
    if (vd_sentinel_start(d->profile_sentinel, d->base, on_profile_master, NULL) != 0) {
        vd_error("profiles: cannot start the sentinel watcher (out of memory)");
        return -1;
    }
    return 0;
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
    if (vd_config_defaults(&d.cfg) != 0) {
        fprintf(stderr, "variantd: out of memory at start-up\n");
        vd_config_free(&d.cfg);
        return 1;
    }
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
    {
        char *end;
        d.bandit_floor = strtod(d.cfg.bandit_floor, &end);
        if (end == d.cfg.bandit_floor || *end || !(d.bandit_floor >= 0.0 && d.bandit_floor < 1.0)) {
            fprintf(stderr, "variantd: bandit-floor must be a number 0 <= x < 1\n");
            return 2;
        }
    }

    char err[512];
    vd_consent consent;
    if (!vd_consent_parse(vd_str_cstr(d.cfg.consent_default), &consent)) {
        fprintf(stderr, "variantd: consent-default must be none or personalization\n");
        return 2;
    }
    if (d.cfg.profiles[0]) {
        vd_profile_config pc;
        if (vd_worker_profile_config(&d.cfg, &pc, err, sizeof err) != 0) {
            fprintf(stderr, "variantd: %s\n", err);
            return 2;
        }
        vd_info("profiles on: store %s, timeout %ld ms, ttl %ld days, session gap %ld min, consent "
                "default %s", pc.is_unix ? pc.path : pc.host, d.cfg.profile_timeout, d.cfg.profile_ttl,
                d.cfg.session_gap, d.cfg.consent_default);
    }
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
    if (open_netdb("asn-db", d.cfg.asn_db, VD_NETDB_ASN, &d.asn, &d.nets[0].id) != 0 ||
        open_netdb("anonymous-ip-db", d.cfg.anonymous_ip_db, VD_NETDB_ANONYMOUS, &d.anon,
                   &d.nets[1].id) != 0)
        return 1;
    if (vd_bots_init(err, sizeof err) != 0) {
        vd_error("bot pattern list: %s", err);
        return 1;
    }
    vd_info("bot patterns: %s", vd_bots_describe());
    d.env.geo = d.geo;
    d.env.tzdb = d.tzdb;
    d.env.asn = d.asn;
    d.env.anon = d.anon;

    /* Before loading definitions: a taken port fails start-up at once, and
     * Redis registration advertises the resolved address. */
    fit_fd_limit(&d.cfg);
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
            .compile_nice = d.cfg.compile_nice,
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
        vd_netdb_close(d.asn);
        vd_netdb_close(d.anon);
        vd_tzdb_close(d.tzdb);
        vd_config_free(&d.cfg);
        return 0;
    }

    release_ports(held);
    if (d.geo) {
        /* The holder takes main's reference: reloads swap it from now on. */
        d.geo_id = *vd_geo_file(d.geo);
        vd_live_geo_set(d.geo);
    }
    if (d.asn || d.anon) {
        /* Likewise for the network databases. */
        vd_live_net_set(d.asn, d.anon);
        d.asn = d.anon = NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Signals are caught before any port accepts: a client that sees the
     * port open may stop us at once, and must get a drain, not a kill.
     * libevent must know about threads before the first base exists. */
    evthread_use_pthreads();
    d.base = event_base_new();
    if (!d.base) {
        vd_error("out of memory at start-up");
        return 1;
    }
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    d.sig_term = evsignal_new(d.base, SIGTERM, on_term, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_term, &d);
    event_add(d.sig_hup, NULL);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    if (d.cfg.profiles[0] && start_profile_sentinel(&d) != 0)
        return 1;
    d.pool = vd_pool_start(&d.cfg, &d.env, (unsigned)d.cfg.workers, err, sizeof err);
    if (!d.pool) {
        vd_error("decision port: %s", err);
        return 1;
    }
    if (d.redis)
        vd_redis_sync_on_change(d.redis, notify_status);
    if (d.redis && vd_redis_sync_start(d.redis, d.base) != 0) {
        vd_error("redis: cannot start the sync (out of memory or threads)");
        return 1;
    }
    if (reloader_start(&d) != 0) {
        vd_error("cannot start the reload thread");
        return 1;
    }
    if ((d.cfg.geoip_db[0] || have_net(&d)) && d.cfg.geoip_check_interval > 0) {
        struct timeval every = { .tv_sec = d.cfg.geoip_check_interval, .tv_usec = 0 };
        d.geo_timer = event_new(d.base, -1, EV_PERSIST, on_geo_timer, &d);
        if (d.geo_timer)
            event_add(d.geo_timer, &every);
    }
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
    /* Learning: the counters live in the profile store (else the
     * definitions' Redis); without either, bandits keep their written
     * weights and `report` says the counters are unavailable. */
    const char *counters_url = d.cfg.profiles[0] ? d.cfg.profiles : d.cfg.redis;
    if (counters_url[0]) {
        vd_learner_options lo = { .url = counters_url, .ns = d.cfg.redis_namespace,
                                  .timeout_ms = (int)d.cfg.redis_timeout,
                                  .interval_s = d.cfg.bandit_interval, .floor = d.bandit_floor,
                                  .min_exposures = d.cfg.bandit_min_exposures };
        d.learner = vd_learner_start(&lo, err, sizeof err);
        if (!d.learner) {
            vd_error("%s", err);
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
    vd_alloc_init_serving_from_env();
    event_base_dispatch(d.base);

    reloader_stop(&d);
    vd_pool_free(d.pool);
    vd_learner_stop(d.learner);
    vd_stats_port_free(d.stats);
    if (d.watchdog)
        event_free(d.watchdog);
    if (vd_alloc_injected())   /* tests that inject failures check they did */
        vd_info("allocations failed on purpose: %lu", vd_alloc_injected());
    vd_info("stopped");
    vd_redis_sync_free(d.redis);
    vd_sentinel_free(d.profile_sentinel);
    if (d.stop_timer)
        event_free(d.stop_timer);
    if (d.geo_timer)
        event_free(d.geo_timer);
    event_free(d.sig_hup);
    event_free(d.sig_term);
    event_free(d.sig_int);
    event_base_free(d.base);
    vd_live_clear();
    vd_live_geo_clear();   /* the last reference: the workers are gone */
    vd_live_net_clear();
    vd_netdb_close(d.asn);
    vd_netdb_close(d.anon);
    vd_tzdb_close(d.tzdb);
    vd_config_free(&d.cfg);
    return 0;
}
