/* geo.h — client IP -> place, via libmaxminddb.
 *
 * Reads both layouts: GeoIP2/GeoLite2 (nested country.iso_code, city.names.en,
 * subdivisions[0].iso_code, location.{latitude,longitude,time_zone},
 * postal.code, continent.code, country.is_in_european_union) and the flat
 * layout of the DB-IP / ip-location-db files (country_code, state1, city,
 * postcode, latitude, longitude, timezone). Where a layout lacks a field that
 * follows from the country (continent, EU membership) it is derived.
 *
 * A database is opened once and read-only afterwards: lookups are thread-safe
 * and allocate nothing. */
#ifndef VD_CONTEXT_GEO_H
#define VD_CONTEXT_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/value.h"

typedef struct vd_geo_db vd_geo_db;

/* Each string field is "" when the database has no value for it. */
typedef struct vd_geo {
    bool found;               /* the IP is in the database at all */
    char country[3];          /* ISO 3166-1 alpha-2, upper case */
    char continent[3];        /* two-letter code: EU, NA, AS, ... */
    char region[8];           /* ISO 3166-2 subdivision code without country, e.g. "BE" */
    char city[64];            /* English name */
    char postal[16];
    char timezone[48];        /* IANA name */
    bool has_location;
    double lat, lon;
    int8_t eu;                /* 1 in the EU, 0 not, -1 unknown */
} vd_geo;

/* NULL on error, with a message in err (file missing or not a regular file,
 * not an MMDB, corrupt metadata, a search tree that fails a sanity probe, a
 * database with no country or city data such as an ASN or Anonymous-IP one,
 * or a file that changed while it was read). The file is read once into
 * memory the daemon owns (a sealed memfd), so replacing or overwriting the
 * file later never affects an open database. */
vd_geo_db *vd_geo_open(const char *path, char *err, size_t errcap);
/* Reference counted, so a reload can swap databases while workers still
 * read the old one: vd_geo_open gives one reference, vd_geo_close drops it
 * (= vd_geo_release); the last release unmaps. */
void vd_geo_retain(const vd_geo_db *db);
void vd_geo_release(const vd_geo_db *db);
void vd_geo_close(vd_geo_db *db);

/* A database file's identity, for a cheap "did it change?" check (like
 * nginx geoip2's auto_reload): device, inode, size, modification time. */
typedef struct vd_geo_file_id {
    uint64_t dev, ino;
    int64_t size, mtime_ns;
} vd_geo_file_id;
int vd_geo_file_stat(const char *path, vd_geo_file_id *id);   /* -1: stat failed */
bool vd_geo_file_same(const vd_geo_file_id *a, const vd_geo_file_id *b);
/* An .mmdb file read into a sealed memfd (what vd_geo_open maps, and the
 * network databases too): the fd, with the identity of the file read, or -1
 * with a message (not a regular file, too large, changed while read). */
int vd_geo_file_copy(const char *path, vd_geo_file_id *id, char *err, size_t errcap);
/* The identity of the file as it was when this database was read. */
const vd_geo_file_id *vd_geo_file(const vd_geo_db *db);
/* "GeoIP2-City, built 2024-01-02, 1234 nodes" — for logs and /stats. */
const char *vd_geo_describe(const vd_geo_db *db);

/* Fills out (zeroed first). Returns out->found. Never fails loudly: a lookup
 * error (corrupt tree, wrong entry type) counts as not found. */
bool vd_geo_lookup(const vd_geo_db *db, const vd_ipaddr *ip, vd_geo *out);

/* Per-worker cache of decoded records. Reading ten fields out of the data
 * section costs ~15k instructions. Every network of one city shares one
 * data record, so the decoded record is cached under (database, record
 * offset): exact, since equal offsets are the same bytes. The search-tree
 * walk (~950 instructions for an IPv4 address) is cached too, per /24
 * (IPv4) or /48 (IPv6) network of the address, and only when the walk
 * ended within those bits (the netmask the library reports): every
 * address of that network then takes the same path to the same record, so
 * this is exact as well. Direct-mapped, fixed size, allocates nothing
 * after _new. */
typedef struct vd_geo_cache vd_geo_cache;
vd_geo_cache *vd_geo_cache_new(size_t entries);  /* rounded up to a power of 2 */
void vd_geo_cache_free(vd_geo_cache *c);
/* vd_geo_lookup through the cache (c may be NULL). */
bool vd_geo_lookup_cached(const vd_geo_db *db, vd_geo_cache *c, const vd_ipaddr *ip,
                          vd_geo *out);
void vd_geo_cache_stats(const vd_geo_cache *c, uint64_t *hits, uint64_t *misses);
/* The network entries' hits and misses (tree walks saved and made). */
void vd_geo_cache_net_stats(const vd_geo_cache *c, uint64_t *hits, uint64_t *misses);

#endif
