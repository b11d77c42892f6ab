#include "store/live.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The mutex guards swaps and info reads, never a request: workers take it
 * only when the generation moved, i.e. once per release. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static vd_ruleset *live_rs;
static _Atomic uint64_t live_gen;
static vd_live_info live_info;
static int stale_after = 30;

void vd_live_set(vd_ruleset *rs, int source)
{
    pthread_mutex_lock(&live_lock);
    vd_ruleset *old = live_rs;
    live_rs = rs;
    snprintf(live_info.version, sizeof live_info.version, "%s", vd_ruleset_version(rs));
    live_info.source = source;
    live_info.loaded_at = (int64_t)time(NULL);
    live_info.reloads++;
    live_info.last_error[0] = '\0';
    atomic_fetch_add_explicit(&live_gen, 1, memory_order_release);
    pthread_mutex_unlock(&live_lock);
    if (old)
        vd_ruleset_release(old);
}

void vd_live_failed(const char *error)
{
    pthread_mutex_lock(&live_lock);
    live_info.failures++;
    snprintf(live_info.last_error, sizeof live_info.last_error, "%s", error);
    pthread_mutex_unlock(&live_lock);
}

vd_ruleset *vd_live_acquire(void)
{
    pthread_mutex_lock(&live_lock);
    vd_ruleset *rs = live_rs;
    if (rs)
        vd_ruleset_retain(rs);
    pthread_mutex_unlock(&live_lock);
    return rs;
}

uint64_t vd_live_generation(void)
{
    return atomic_load_explicit(&live_gen, memory_order_acquire);
}

void vd_live_get_info(vd_live_info *out)
{
    pthread_mutex_lock(&live_lock);
    *out = live_info;
    pthread_mutex_unlock(&live_lock);
    out->stale = out->store_mode && out->store_unreachable_since &&
                 (int64_t)time(NULL) - out->store_unreachable_since >= stale_after;
}

void vd_live_store_enable(int stale_after_s)
{
    pthread_mutex_lock(&live_lock);
    live_info.store_mode = true;
    /* Not reached yet: the clock for "stale" starts now. */
    live_info.store_unreachable_since = (int64_t)time(NULL);
    stale_after = stale_after_s;
    pthread_mutex_unlock(&live_lock);
}

void vd_live_store_contact(void)
{
    pthread_mutex_lock(&live_lock);
    live_info.store_connected = true;
    live_info.store_last_contact = (int64_t)time(NULL);
    live_info.store_unreachable_since = 0;
    pthread_mutex_unlock(&live_lock);
}

void vd_live_store_lost(void)
{
    pthread_mutex_lock(&live_lock);
    live_info.store_connected = false;
    live_info.store_errors++;
    if (!live_info.store_unreachable_since)
        live_info.store_unreachable_since = (int64_t)time(NULL);
    pthread_mutex_unlock(&live_lock);
}

void vd_live_store_reconnect(void)
{
    pthread_mutex_lock(&live_lock);
    live_info.store_reconnects++;
    pthread_mutex_unlock(&live_lock);
}

bool vd_live_confirm(const char *version, int source)
{
    bool same = false;
    pthread_mutex_lock(&live_lock);
    if (live_rs && strcmp(live_info.version, version) == 0) {
        live_info.source = source;
        same = true;
    }
    pthread_mutex_unlock(&live_lock);
    return same;
}

const char *vd_source_name(int source)
{
    switch (source) {
    case VD_SOURCE_FILES: return "files";
    case VD_SOURCE_REDIS: return "redis";
    case VD_SOURCE_SNAPSHOT: return "snapshot";
    default: return "none";
    }
}

void vd_live_clear(void)
{
    pthread_mutex_lock(&live_lock);
    vd_ruleset *old = live_rs;
    live_rs = NULL;
    atomic_fetch_add_explicit(&live_gen, 1, memory_order_release);
    pthread_mutex_unlock(&live_lock);
    if (old)
        vd_ruleset_release(old);
}

/* ---- GeoIP database ---- */

static pthread_mutex_t geo_lock = PTHREAD_MUTEX_INITIALIZER;
static vd_geo_db *live_geo;
static _Atomic uint64_t geo_gen;

void vd_live_geo_set(vd_geo_db *db)
{
    pthread_mutex_lock(&geo_lock);
    vd_geo_db *old = live_geo;
    live_geo = db;
    atomic_fetch_add_explicit(&geo_gen, 1, memory_order_release);
    pthread_mutex_unlock(&geo_lock);
    vd_geo_release(old);
}

vd_geo_db *vd_live_geo_acquire(void)
{
    pthread_mutex_lock(&geo_lock);
    vd_geo_db *db = live_geo;
    vd_geo_retain(db);
    pthread_mutex_unlock(&geo_lock);
    return db;
}

uint64_t vd_live_geo_generation(void)
{
    return atomic_load_explicit(&geo_gen, memory_order_acquire);
}

void vd_live_geo_clear(void)
{
    pthread_mutex_lock(&geo_lock);
    vd_geo_db *old = live_geo;
    live_geo = NULL;
    pthread_mutex_unlock(&geo_lock);
    vd_geo_release(old);
}

/* ---- network databases ---- */

static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;
static vd_netdb *live_asn, *live_anon;
static _Atomic uint64_t net_gen;

void vd_live_net_set(vd_netdb *asn, vd_netdb *anon)
{
    pthread_mutex_lock(&net_lock);
    vd_netdb *old_asn = live_asn, *old_anon = live_anon;
    live_asn = asn;
    live_anon = anon;
    atomic_fetch_add_explicit(&net_gen, 1, memory_order_release);
    pthread_mutex_unlock(&net_lock);
    vd_netdb_release(old_asn);
    vd_netdb_release(old_anon);
}

void vd_live_net_acquire(vd_netdb **asn, vd_netdb **anon)
{
    pthread_mutex_lock(&net_lock);
    *asn = live_asn;
    *anon = live_anon;
    vd_netdb_retain(*asn);
    vd_netdb_retain(*anon);
    pthread_mutex_unlock(&net_lock);
}

uint64_t vd_live_net_generation(void)
{
    return atomic_load_explicit(&net_gen, memory_order_acquire);
}

void vd_live_net_clear(void)
{
    vd_live_net_set(NULL, NULL);
}
