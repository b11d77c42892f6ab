/* config.h — every setting declared once, in one table (config.c), which
 * drives the config file parser, the command-line flags, bounds checks,
 * defaults, `variantd --help` and the /stats dump. A config file is
 * `key value` lines; `#` starts a comment; a flag `--key value` overrides the
 * file. A bad file stops start-up with the file and line. */
#ifndef VD_CORE_CONFIG_H
#define VD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct vd_config {
    char *listen;             /* decision port HOST:PORT (MessagePack-RPC over TCP) */
    char *http_listen;        /* edge HTTP port, "" = off */
    char *stats_listen;       /* stats HTTP port, "" = off */
    char *segments;           /* segments directory (file mode) */
    char *content_map;        /* content-map directory (file mode) */
    char *geoip_db;           /* MaxMind / DB-IP .mmdb, "" = no geo */
    char *asn_db;             /* GeoLite2-ASN .mmdb, "" = no net.asn/net.org */
    char *anonymous_ip_db;    /* GeoIP2-Anonymous-IP .mmdb, "" = no net.anonymous/... */
    char *zoneinfo;           /* TZif directory */
    char *redis;              /* redis://host:port/db or unix:/path, "" = file mode */
    char *snapshot;           /* last-known-good snapshot file, "" = none */
    char *log_level;          /* debug info warn error */
    long max_frame;           /* bytes of one MessagePack request */
    long max_depth;           /* nesting of one request */
    long max_slots;           /* slots per request */
    long max_connections;     /* open client connections on the decision port */
    long idle_timeout;        /* seconds a connection may stay silent */
    long max_output;          /* unsent reply bytes before reading pauses */
    long workers;             /* decision worker threads, 0 = online CPUs */
    long compile_nice;        /* nice value of the threads that compile definitions */
    long ua_cache;            /* User-Agent verdict cache entries per worker */
    long answer_cache;        /* whole-answer cache entries per worker (0 = off) */
    long answer_cache_min_slots;  /* smallest page it serves */
    long geo_cache;           /* decoded GeoIP record cache entries per worker */
    long geoip_check_interval;/* seconds between geoip-db identity checks (0 = off) */
    /* HTTP ports (edge and stats) */
    long http_max_header;     /* bytes of a request line + headers (431 beyond) */
    long http_max_body;       /* bytes of a request body (413 beyond) */
    long http_max_connections;/* open connections per HTTP port (503 beyond) */
    long http_header_timeout; /* seconds to receive a whole request (408 beyond) */
    long http_idle_timeout;   /* seconds a keep-alive connection may wait */
    long http_max_age;        /* Cache-Control max-age ceiling, and its value when valid_until is null */
    char *trusted_proxies;    /* CIDR list whose X-Forwarded-For / X-Real-IP are believed */
    char *vid_cookie;         /* cookie holding the visitor id on the edge port */
    /* Redis mode (store/redis_sync.c) */
    char *redis_namespace;    /* key prefix of releases, "variantd" */
    long redis_poll_interval; /* ms between version polls */
    long redis_timeout;       /* ms a Redis connect/command may take */
    long stale_after;         /* s of Redis unreachable before ping says stale */
    /* Profiles (profile/, docs/PROFILES.md) */
    char *scores;             /* scores directory (file mode), "" = none */
    char *profiles;           /* profile store URL, "" = off */
    char *profile_key_secret; /* 32 hex digits */
    char *consent_default;    /* none | personalization */
    long profile_timeout;     /* ms */
    long profile_ttl;         /* days */
    long session_gap;         /* minutes */
    long profile_queue;       /* pending writes per worker */
    long profile_batch_keys;  /* profiles per track batch script (1: one per profile, proxies) */
    long profile_edge;        /* 1 = /v1/track, /v1/profile, /v1/flag, /v1/forget on the edge port */
    /* Learning (docs/LEARNING.md) */
    long attribution_window;  /* days an exposure can convert */
    long bandit_interval;     /* s between bandit weight computations */
    char *bandit_floor;       /* minimum weight per arm, a number 0 <= x < 1 */
    long bandit_min_exposures;/* exposures every arm needs before the weights move */
    char *event_stream;       /* Redis Stream key for exposures and conversions ("" = off) */
    long event_stream_maxlen; /* its approximate cap */
} vd_config;

/* -1 on out of memory (start-up: the caller stops). */
int vd_config_defaults(vd_config *c);
void vd_config_free(vd_config *c);
/* Parses argv (with -c FILE loaded first, then flags on top). Returns 0 to
 * run, 1 when it printed help/version (exit 0), -1 on error (printed). */
int vd_config_from_args(vd_config *c, int argc, char **argv, bool *check_only);
void vd_config_usage(FILE *out, const char *prog);
/* Writes "key value" lines (for logs and /stats). */
void vd_config_dump(const vd_config *c, void (*emit)(void *arg, const char *key, const char *val),
                    void *arg);

#endif
