#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "variantd/limits.h"

enum { CT_STR, CT_INT };

typedef struct config_row {
    const char *name;
    int type;
    size_t offset;
    const char *def_str;
    long def_int, min, max;
    const char *help;
} config_row;

#define STR(n, field, def, help) { n, CT_STR, offsetof(vd_config, field), def, 0, 0, 0, help }
#define INT(n, field, def, lo, hi, help) { n, CT_INT, offsetof(vd_config, field), NULL, def, lo, hi, help }

static const config_row rows[] = {
    STR("listen", listen, "127.0.0.1:7700", "decision port HOST:PORT (MessagePack-RPC over TCP)"),
    STR("http-listen", http_listen, "", "edge HTTP port HOST:PORT (empty = off)"),
    STR("stats-listen", stats_listen, "", "stats HTTP port HOST:PORT (empty = off)"),
    STR("segments", segments, "segments", "segments directory (file mode)"),
    STR("content-map", content_map, "content-map", "content-map directory (file mode)"),
    STR("geoip-db", geoip_db, "", "GeoIP2/GeoLite2/DB-IP .mmdb file (empty = no geo)"),
    STR("asn-db", asn_db, "", "GeoLite2-ASN .mmdb for net.asn, net.org (empty = off)"),
    STR("anonymous-ip-db", anonymous_ip_db, "",
        "GeoIP2-Anonymous-IP .mmdb for net.anonymous, .vpn, .hosting, .tor (empty = off)"),
    STR("zoneinfo", zoneinfo, "/usr/share/zoneinfo", "TZif directory for visitor-local time"),
    STR("redis", redis, "", "redis://host:port/db, unix:/path or redis-sentinel://h1:26379,h2/master (empty = file mode)"),
    STR("snapshot", snapshot, "", "last-known-good snapshot file (empty = none)"),
    STR("log-level", log_level, "info", "debug, info, warn or error"),
    INT("max-frame", max_frame, VD_DEFAULT_MAX_FRAME, 64, VD_MAX_FRAME_CEILING,
        "largest request frame in bytes"),
    INT("max-depth", max_depth, VD_DEFAULT_MAX_DEPTH, 4, 64, "deepest nesting of a request"),
    INT("max-slots", max_slots, VD_DEFAULT_SLOTS_PER_REQUEST, 1, VD_MAX_SLOTS_PER_REQUEST,
        "slots per request"),
    INT("max-connections", max_connections, VD_DEFAULT_MAX_CONNS, 1, 1000000,
        "open connections on the decision port; more are closed at accept"),
    INT("idle-timeout", idle_timeout, VD_DEFAULT_IDLE_TIMEOUT_S, 1, 86400,
        "seconds a silent connection is kept"),
    INT("max-output", max_output, VD_DEFAULT_MAX_OUTPUT, 4096, 1L << 30,
        "unsent reply bytes per connection before reading from it pauses"),
    INT("workers", workers, 0, 0, VD_MAX_WORKERS, "decision worker threads (0 = one per online CPU)"),
    INT("compile-nice", compile_nice, -10, -20, 19,
        "nice value of the threads that compile definitions (reloads, Redis releases), so a swap is not "
        "starved by busy workers; below 0 needs CAP_SYS_NICE or LimitNICE (else they keep the workers' priority)"),
    INT("ua-cache", ua_cache, 16384, 0, 1 << 24, "User-Agent verdict cache entries per worker"),
    INT("answer-cache", answer_cache, 0, 0, 1 << 22,
        "whole-answer cache entries per worker (0 = off; 424 bytes each; docs/PERFORMANCE.md)"),
    INT("answer-cache-min-slots", answer_cache_min_slots, 5, 1, VD_MAX_SLOTS_PER_REQUEST,
        "smallest page (requested slots) the answer cache serves"),
    INT("geoip-check-interval", geoip_check_interval, 60, 0, 86400,
        "seconds between checks of the geoip-db, asn-db and anonymous-ip-db files' identity; a new file is loaded (0 = only on SIGHUP)"),
    INT("geo-cache", geo_cache, 4096, 0, 1 << 24,
        "decoded GeoIP record cache entries per worker (~200 bytes each; 0 = off)"),
    /* HTTP ports (edge and stats) */
    INT("http-max-header", http_max_header, 8192, 1024, 1 << 20,
        "bytes of an HTTP request line + headers; more get 431"),
    INT("http-max-body", http_max_body, 65536, 0, 16 << 20,
        "bytes of an HTTP request body; more get 413"),
    INT("http-max-connections", http_max_connections, VD_DEFAULT_MAX_CONNS, 1, 1000000,
        "open connections per HTTP port; more get 503 and are closed"),
    INT("http-header-timeout", http_header_timeout, 10, 1, 3600,
        "seconds for a client to send a whole HTTP request once started; then 408"),
    INT("http-idle-timeout", http_idle_timeout, 60, 1, 86400,
        "seconds an HTTP keep-alive connection may wait for its next request"),
    INT("http-max-age", http_max_age, 60, 0, 86400,
        "edge X-Variant-Max-Age ceiling (page TTL); the value used when valid_until is null"),
    STR("trusted-proxies", trusted_proxies, "127.0.0.0/8,::1",
        "CIDR list of proxies whose X-Forwarded-For/X-Real-IP the edge port believes"),
    STR("vid-cookie", vid_cookie, "vid", "cookie holding the visitor id on the edge port"),
    STR("redis-namespace", redis_namespace, "variantd", "key prefix of the releases in Redis"),
    INT("redis-poll-interval", redis_poll_interval, 2000, 100, 600000,
        "milliseconds between polls of the current release version"),
    INT("redis-timeout", redis_timeout, 2000, 50, 60000,
        "milliseconds a Redis connect or command may take before the link is reset"),
    INT("stale-after", stale_after, 30, 1, 86400,
        "seconds Redis may be unreachable before ping reports the ruleset stale"),
    /* Profiles (contract v2, docs/PROFILES.md) */
    STR("scores", scores, "", "scores directory (file mode; empty = the scores folder beside segments, if any)"),
    STR("profiles", profiles, "", "profile store redis://host:port/db or unix:/path (empty = off)"),
    STR("profile-key-secret", profile_key_secret, "",
        "32 hex digits keying the profile ids' hash; required with profiles (variantctl secret)"),
    STR("consent-default", consent_default, "none",
        "consent of a request that sends none: none or personalization"),
    INT("profile-timeout", profile_timeout, VD_DEFAULT_PROFILE_TIMEOUT_MS, 1, 10000,
        "milliseconds a decision waits for its profile; then it decides without it"),
    INT("profile-ttl", profile_ttl, VD_DEFAULT_PROFILE_TTL_DAYS, 1, 3650,
        "days a profile is kept without a visit"),
    INT("session-gap", session_gap, VD_DEFAULT_SESSION_GAP_MIN, 1, 10080,
        "minutes of inactivity after which the next decide or track starts a visit"),
    INT("profile-queue", profile_queue, 10000, 16, 1000000,
        "profile store commands in flight per worker; at 3/4 a client connection waits, when full work is refused and counted"),
    INT("profile-batch-keys", profile_batch_keys, 1, 1, 256,
        "profiles one track batch script may write: 1 through a nutcracker/twemproxy pool; up to 256 on one Redis server"),
    INT("profile-edge", profile_edge, 0, 0, 1,
        "1 = serve /v1/track, /v1/profile, /v1/flag, /v1/forget on the edge port: anyone reaching them reads, flags or erases any profile, so only on an internal address or behind auth"),
    /* learning: goals, exposures, conversions, bandit (docs/LEARNING.md) */
    INT("attribution-window", attribution_window, 7, 1, 365,
        "days after an exposure in which a goal event converts it"),
    INT("bandit-interval", bandit_interval, 60, 1, 86400,
        "seconds between recomputations of the bandit weights (aligned to the clock)"),
    STR("bandit-floor", bandit_floor, "0.05", "minimum weight of every bandit arm, 0 <= x < 1"),
    INT("bandit-min-exposures", bandit_min_exposures, 100, 0, 1000000000,
        "exposures every arm needs before bandit weights move from the written ones"),
    STR("event-stream", event_stream, "", "Redis Stream key receiving exposures and conversions (empty = off)"),
    INT("event-stream-maxlen", event_stream_maxlen, 1000000, 1000, 1000000000,
        "approximate cap of the event stream (XADD MAXLEN ~)"),
};
#define NROWS (sizeof rows / sizeof rows[0])

static char **str_at(vd_config *c, const config_row *r) { return (char **)((char *)c + r->offset); }
static long *int_at(vd_config *c, const config_row *r) { return (long *)((char *)c + r->offset); }

int vd_config_defaults(vd_config *c)
{
    memset(c, 0, sizeof *c);
    int rc = 0;
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].type == CT_STR) {
            if (!(*str_at(c, &rows[i]) = vd_strdup(rows[i].def_str)))
                rc = -1;
        } else {
            *int_at(c, &rows[i]) = rows[i].def_int;
        }
    }
    return rc;
}

void vd_config_free(vd_config *c)
{
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].type == CT_STR) {
            vd_free(*str_at(c, &rows[i]));
            *str_at(c, &rows[i]) = NULL;
        }
}

static const config_row *find_row(const char *name)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

/* Sets one key; on error writes a message into err and returns -1. */
static int set_value(vd_config *c, const char *key, const char *val, char *err, size_t cap)
{
    const config_row *r = find_row(key);
    if (!r) {
        snprintf(err, cap, "unknown setting '%s' (see variantd --help)", key);
        return -1;
    }
    if (r->type == CT_STR) {
        char *s = vd_strdup(val);
        if (!s) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        vd_free(*str_at(c, r));
        *str_at(c, r) = s;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end) {
        snprintf(err, cap, "'%s' needs a whole number, got '%s'", key, val);
        return -1;
    }
    if (v < r->min || v > r->max) {
        snprintf(err, cap, "'%s' must be between %ld and %ld, got %ld", key, r->min, r->max, v);
        return -1;
    }
    *int_at(c, r) = v;
    return 0;
}

static int load_file(vd_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "*** FATAL CONFIG FILE ERROR: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "*** FATAL CONFIG FILE ERROR: %s:%d: line too long\n", path, lineno);
            rc = -1;
            break;
        }
        char *p = line;
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
            *--e = '\0';
        if (!*p)
            continue;
        char *key = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        /* "key" alone sets an empty string: `redis` with no value = off. */
        char err[256];
        if (set_value(c, key, p, err, sizeof err) != 0) {
            fprintf(stderr, "*** FATAL CONFIG FILE ERROR: %s:%d: %s\n", path, lineno, err);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

void vd_config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [-c FILE] [--KEY VALUE ...] [-t] [--help] [--version]\n"
            "\n"
            "variantd answers which variant of each content slot a visitor should see.\n"
            "Every setting can be given in the config file as `KEY VALUE` or as a flag.\n"
            "  -c, --config FILE   read settings from FILE first (flags override it)\n"
            "  -t, --check         load config and definitions, report, exit (0 = valid)\n"
            "\nsettings (default):\n",
            prog);
    for (size_t i = 0; i < NROWS; i++) {
        char def[64];
        if (rows[i].type == CT_STR)
            snprintf(def, sizeof def, "\"%s\"", rows[i].def_str);
        else
            snprintf(def, sizeof def, "%ld, %ld..%ld", rows[i].def_int, rows[i].min, rows[i].max);
        fprintf(out, "  --%-20s %s (%s)\n", rows[i].name, rows[i].help, def);
    }
}

int vd_config_from_args(vd_config *c, int argc, char **argv, bool *check_only)
{
    *check_only = false;
    /* The file first, wherever -c stands, so flags always win. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a file\n", argv[0], argv[i]);
                return -1;
            }
            if (load_file(c, argv[++i]) != 0)
                return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            vd_config_usage(stdout, argv[0]);
            return 1;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("variantd %s\n", VD_VERSION);
            return 1;
        }
        if (strcmp(a, "-t") == 0 || strcmp(a, "--check") == 0) {
            *check_only = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", argv[0], a);
            return -1;
        }
        const char *key = a + 2;
        char keybuf[64];
        const char *val;
        const char *eq = strchr(key, '=');
        if (eq) {
            snprintf(keybuf, sizeof keybuf, "%.*s", (int)(eq - key), key);
            key = keybuf;
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "%s: --%s needs a value\n", argv[0], key);
            return -1;
        }
        char err[256];
        if (set_value(c, key, val, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err);
            return -1;
        }
    }
    return 0;
}

void vd_config_dump(const vd_config *c, void (*emit)(void *arg, const char *key, const char *val),
                    void *arg)
{
    for (size_t i = 0; i < NROWS; i++) {
        char buf[32];
        if (rows[i].type == CT_STR) {
            emit(arg, rows[i].name, *str_at((vd_config *)c, &rows[i]));
        } else {
            snprintf(buf, sizeof buf, "%ld", *int_at((vd_config *)c, &rows[i]));
            emit(arg, rows[i].name, buf);
        }
    }
}
