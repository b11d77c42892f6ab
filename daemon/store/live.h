/* live.h — the ruleset being served, and where it came from.
 *
 * Loaders (file reload, Redis sync) compile off the request path and call
 * vd_live_set; workers notice the new generation with one atomic load per
 * request and take a reference to the new ruleset between requests, so a
 * request sees exactly one ruleset. The old one is freed when the last
 * worker lets go of it. */
#ifndef VD_STORE_LIVE_H
#define VD_STORE_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "context/geo.h"
#include "context/netdb.h"
#include "rules/ruleset.h"

typedef enum vd_rules_source {
    VD_SOURCE_NONE = 0,
    VD_SOURCE_FILES,
    VD_SOURCE_REDIS,
    VD_SOURCE_SNAPSHOT,
} vd_rules_source;

typedef struct vd_live_info {
    char version[128];
    int source;               /* vd_rules_source */
    int64_t loaded_at;        /* unix seconds */
    uint64_t reloads;         /* accepted rulesets since start */
    uint64_t failures;        /* rejected rulesets since start */
    char last_error[512];     /* "" if the last attempt succeeded */
    /* Remote store (Redis mode; all zero/false in file mode). */
    bool store_mode;          /* a remote store is configured */
    bool store_connected;     /* the last command got its answer */
    bool stale;               /* store unreachable for longer than stale-after */
    int64_t store_last_contact;      /* unix seconds of the last answer, 0 = never */
    int64_t store_unreachable_since; /* unix seconds, 0 = reachable */
    uint64_t store_reconnects;       /* connection attempts after a loss */
    uint64_t store_errors;           /* failed/timed-out commands and lost links */
} vd_live_info;

/* Takes over the caller's reference. */
void vd_live_set(vd_ruleset *rs, int source);
void vd_live_failed(const char *error);
/* +1 reference to the current ruleset (NULL if none yet). */
vd_ruleset *vd_live_acquire(void);
uint64_t vd_live_generation(void);
void vd_live_get_info(vd_live_info *out);
const char *vd_source_name(int source);
/* Remote store bookkeeping, called by the store's sync (one thread). */
void vd_live_store_enable(int stale_after_s);
void vd_live_store_contact(void);
void vd_live_store_lost(void);
void vd_live_store_reconnect(void);
/* If the served ruleset has this version, relabel its source (a snapshot
 * confirmed by Redis becomes "redis") and return true. */
bool vd_live_confirm(const char *version, int source);

/* The GeoIP database being served, swapped the same way: a reload opens
 * and validates the new one, vd_live_geo_set publishes it (taking over the
 * caller's reference, dropping the holder's reference to the old one), and
 * each worker moves its own reference between requests when the geo
 * generation moved. The old database is unmapped by the last release, never
 * while a worker may still read it. Generation 0: never set (a decider then
 * uses the geo of its vd_env as given). */
void vd_live_geo_set(vd_geo_db *db);
vd_geo_db *vd_live_geo_acquire(void);      /* +1 reference, NULL if none */
uint64_t vd_live_geo_generation(void);
void vd_live_geo_clear(void);

/* The network databases (--asn-db, --anonymous-ip-db), swapped as a pair the
 * same way: vd_live_net_set takes over the caller's reference to each
 * non-NULL one and drops the holder's to the old ones; acquire gives +1 on
 * each (NULL where none). Generation 0: never set. */
void vd_live_net_set(vd_netdb *asn, vd_netdb *anon);
void vd_live_net_acquire(vd_netdb **asn, vd_netdb **anon);
uint64_t vd_live_net_generation(void);
void vd_live_net_clear(void);

/* Drops the current ruleset (at shutdown). */
void vd_live_clear(void);

#endif
