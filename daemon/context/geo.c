/* geo.c — client IP -> place via libmaxminddb (memory-mapped, read-only).
 *
 * Every value read checks the lookup status, entry_data.has_data and the
 * data type: Debian's libmaxminddb 1.7.1 opens some corrupt files without an
 * error, so a broken tree or data section must show up as "not found" here,
 * never as garbage or a crash. Strings in an MMDB are not NUL-terminated and
 * are copied with their length, truncated to the field (at a UTF-8 boundary).
 * MMDB_get_value allocates nothing, so a lookup does not either.
 *
 * Flat layout: geo.region is an ISO 3166-2 code by contract, and the flat
 * files' state1 is a name ("California"), so region is read only from a
 * region_code key when a file has one. Codes (country, continent, region,
 * postal, time zone) that do not fit their field are dropped, not cut. */
#include "context/geo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <maxminddb.h>

#include "context/geo_countries.h"
#include "context/mmdb.h"
#include "context/ip.h"
#include "core/alloc.h"

enum geo_layout {
    LAYOUT_UNKNOWN = 0,  /* try nested, then flat */
    LAYOUT_NESTED,       /* GeoIP2 / GeoLite2 / DB-IP */
    LAYOUT_FLAT,         /* ip-location-db: country_code, state1, city, ... */
};

struct vd_geo_db {
    MMDB_s mmdb;
    enum geo_layout layout;
    uint32_t id;              /* unique per open: cache keys never outlive a db */
    _Atomic long refs;        /* the holder's and each worker's reference */
    vd_geo_file_id file;      /* identity of the file this copy was read from */
    bool no_geo;              /* records, but none with country, city or time zone */
    char desc[192];
};

/* What the search tree gives for every address of one /24 (IPv4) or /48
 * (IPv6): kept only when the tree walk ended within those bits, so any
 * address sharing them walks the same path to the same record. */
typedef struct geo_net {
    uint64_t prefix;          /* the address's first 3 (IPv4) or 6 (IPv6) bytes */
    uint32_t db;              /* db id; 0 = empty */
    uint32_t offset;          /* the record's offset (found) */
    uint8_t family;
    bool found;
} geo_net;

struct vd_geo_cache {
    size_t mask;
    uint64_t *keys;           /* (db id << 32) | record offset; 0 = empty */
    vd_geo *vals;
    uint64_t hits, misses;
    geo_net *nets;            /* mask + 1 entries, direct-mapped */
    uint64_t net_hits, net_misses;
};

/* Outcome of one field read. */
enum { FIELD_ABSENT = 0, FIELD_OK = 1, FIELD_ERROR = -1 };

/* Lookup paths. Static arrays: MMDB_aget_value walks them without copying. */
static const char *const P_COUNTRY[] = { "country", "iso_code", NULL };
static const char *const P_CONTINENT[] = { "continent", "code", NULL };
static const char *const P_REGION[] = { "subdivisions", "0", "iso_code", NULL };
static const char *const P_CITY[] = { "city", "names", "en", NULL };
static const char *const P_POSTAL[] = { "postal", "code", NULL };
static const char *const P_LAT[] = { "location", "latitude", NULL };
static const char *const P_LON[] = { "location", "longitude", NULL };
static const char *const P_TZ[] = { "location", "time_zone", NULL };
static const char *const K_ISO_CODE[] = { "iso_code", NULL };
static const char *const K_EU[] = { "is_in_european_union", NULL };
static const char *const K_TIME_ZONE[] = { "time_zone", NULL };
static const char *const K_LATITUDE[] = { "latitude", NULL };
static const char *const K_LONGITUDE[] = { "longitude", NULL };
static const char *const P_NESTED_ANY[] = { "country", NULL };
static const char *const P_NESTED_CONT[] = { "continent", NULL };
static const char *const P_NESTED_LOC[] = { "location", NULL };

static const char *const F_COUNTRY[] = { "country_code", NULL };
static const char *const F_CONTINENT[] = { "continent_code", NULL };
static const char *const F_REGION[] = { "region_code", NULL };
static const char *const F_CITY[] = { "city", NULL };
static const char *const F_POSTAL[] = { "postcode", NULL };
static const char *const F_LAT[] = { "latitude", NULL };
static const char *const F_LON[] = { "longitude", NULL };
static const char *const F_TZ[] = { "timezone", NULL };

static int get_data(MMDB_entry_s *e, const char *const *path, int type, MMDB_entry_data_s *d)
{
    memset(d, 0, sizeof *d);
    int rc = MMDB_aget_value(e, d, path);
    /* A path that runs into a value of another shape (e.g. "0" on a map)
     * just means this entry does not have the field. */
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        return FIELD_ABSENT;
    if (rc != MMDB_SUCCESS)
        return FIELD_ERROR;
    if (!d->has_data)
        return FIELD_ABSENT;
    if (type >= 0 && (int)d->type != type)
        return FIELD_ABSENT;
    return FIELD_OK;
}

/* Copies a utf8_string value: at most cap-1 bytes, stops at an embedded NUL,
 * never cuts a UTF-8 sequence in half, control bytes become spaces. */
static int get_str(MMDB_entry_s *e, const char *const *path, char *dst, size_t cap)
{
    dst[0] = '\0';
    MMDB_entry_data_s d;
    int rc = get_data(e, path, MMDB_DATA_TYPE_UTF8_STRING, &d);
    if (rc != FIELD_OK)
        return rc;
    const char *s = d.utf8_string;
    size_t len = d.data_size;
    if (!s)
        return len ? FIELD_ERROR : FIELD_ABSENT;
    const char *nul = memchr(s, '\0', len);
    if (nul)
        len = (size_t)(nul - s);
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    dst[n] = '\0';
    return n ? FIELD_OK : FIELD_ABSENT;
}

static int get_double(MMDB_entry_s *e, const char *const *path, double *out)
{
    MMDB_entry_data_s d;
    int rc = get_data(e, path, -1, &d);
    if (rc != FIELD_OK)
        return rc;
    if (d.type == MMDB_DATA_TYPE_DOUBLE)
        *out = d.double_value;
    else if (d.type == MMDB_DATA_TYPE_FLOAT)
        *out = (double)d.float_value;
    else
        return FIELD_ABSENT;
    return isfinite(*out) ? FIELD_OK : FIELD_ABSENT;
}

static bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool is_alnum(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* Two ASCII letters, upper-cased in place; anything else is cleared. */
static void norm_code2(char *s)
{
    if (!(is_alpha(s[0]) && is_alpha(s[1]) && s[2] == '\0')) {
        s[0] = '\0';
        return;
    }
    for (int i = 0; i < 2; i++)
        if (s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 'a' + 'A');
}

static void norm_region(char *s)
{
    for (size_t i = 0; s[i]; i++)
        if (!is_alnum(s[i])) {
            s[0] = '\0';
            return;
        }
}

/* An IANA name: [A-Za-z0-9/_+-]. A truncated or odd name would resolve to
 * the wrong zone, so it is dropped instead. */
static void norm_tz(char *s)
{
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!(is_alnum(c) || c == '/' || c == '_' || c == '+' || c == '-')) {
            s[0] = '\0';
            return;
        }
    }
}

/* The map at path in e as an entry of its own: keys inside it are then found
 * without rescanning the record from the top. */
static int sub_map(MMDB_entry_s *e, const char *const *path, MMDB_entry_s *sub)
{
    MMDB_entry_data_s d;
    int rc = get_data(e, path, MMDB_DATA_TYPE_MAP, &d);
    if (rc == FIELD_OK) {
        sub->mmdb = e->mmdb;
        sub->offset = d.offset;
    }
    return rc;
}

/* Copies a code read into a larger scratch buffer: a value that does not
 * fit is wrong, not truncatable ("DEU" must not become "DE"). */
static void put_code(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = 0;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads one layout into out; returns FIELD_ERROR if the data is corrupt,
 * else whether any of the layout's keys were present. */
static int read_fields(MMDB_entry_s *e, bool nested, vd_geo *out)
{
    char cc[8], cont[8], reg[32], post[32], tz[64];
    double lat = 0, lon = 0;
    int rc[9];
    int eu = FIELD_ABSENT;
    MMDB_entry_data_s d;
    const char *const *const *paths;
    static const char *const *const nested_paths[] = { P_COUNTRY, P_CONTINENT, P_REGION, P_CITY,
                                                       P_POSTAL, P_TZ, P_LAT, P_LON };
    static const char *const *const flat_paths[] = { F_COUNTRY, F_CONTINENT, F_REGION, F_CITY,
                                                     F_POSTAL, F_TZ, F_LAT, F_LON };
    paths = nested ? nested_paths : flat_paths;
    rc[1] = get_str(e, paths[1], cont, sizeof cont);
    rc[2] = get_str(e, paths[2], reg, sizeof reg);
    rc[3] = get_str(e, paths[3], out->city, sizeof out->city);
    rc[4] = get_str(e, paths[4], post, sizeof post);
    rc[8] = FIELD_ABSENT;
    if (nested) {
        /* country.* and location.* are read from their maps, so the record
         * is not rescanned from the top for each of their keys. */
        MMDB_entry_s sub;
        int rs = sub_map(e, P_NESTED_ANY, &sub);
        rc[0] = rs == FIELD_OK ? get_str(&sub, K_ISO_CODE, cc, sizeof cc) : rs;
        if (rs == FIELD_OK)
            rc[8] = eu = get_data(&sub, K_EU, MMDB_DATA_TYPE_BOOLEAN, &d);
        if (rc[0] != FIELD_OK)
            cc[0] = '\0';
        rs = sub_map(e, P_NESTED_LOC, &sub);
        rc[5] = rs == FIELD_OK ? get_str(&sub, K_TIME_ZONE, tz, sizeof tz) : rs;
        rc[6] = rs == FIELD_OK ? get_double(&sub, K_LATITUDE, &lat) : rs;
        rc[7] = rs == FIELD_OK ? get_double(&sub, K_LONGITUDE, &lon) : rs;
        if (rc[5] != FIELD_OK)
            tz[0] = '\0';
    } else {
        rc[0] = get_str(e, paths[0], cc, sizeof cc);
        rc[5] = get_str(e, paths[5], tz, sizeof tz);
        rc[6] = get_double(e, paths[6], &lat);
        rc[7] = get_double(e, paths[7], &lon);
    }
    bool any = false;
    for (int i = 0; i < 9; i++) {
        if (rc[i] == FIELD_ERROR)
            return FIELD_ERROR;
        any |= rc[i] == FIELD_OK;
    }
    put_code(out->country, sizeof out->country, cc);
    put_code(out->continent, sizeof out->continent, cont);
    put_code(out->region, sizeof out->region, reg);
    put_code(out->postal, sizeof out->postal, post);
    put_code(out->timezone, sizeof out->timezone, tz);
    norm_code2(out->country);
    norm_code2(out->continent);
    norm_region(out->region);
    norm_tz(out->timezone);
    if (rc[6] == FIELD_OK && rc[7] == FIELD_OK && fabs(lat) <= 90.0 && fabs(lon) <= 180.0) {
        out->has_location = true;
        out->lat = lat;
        out->lon = lon;
    }
    if (eu == FIELD_OK)
        out->eu = d.boolean ? 1 : 0;
    return any ? FIELD_OK : FIELD_ABSENT;
}

static void derive_from_country(vd_geo *out)
{
    if (!out->country[0])
        return;
    char cont[3];
    int8_t eu;
    if (!vd_geo_country_info(out->country, cont, &eu))
        return;
    if (!out->continent[0])
        memcpy(out->continent, cont, sizeof cont);
    if (out->eu < 0)
        out->eu = eu;
}

static void clear_geo(vd_geo *out)
{
    memset(out, 0, sizeof *out);
    out->eu = -1;
}

/* MMDB_lookup_sockaddr on a vd_ipaddr. An IPv4 address in an IPv6 tree is
 * looked up from the tree's IPv4 start node by the library itself. */
static int raw_lookup(const vd_geo_db *db, const vd_ipaddr *ip, MMDB_lookup_result_s *res)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    if (ip->family == 4) {
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, ip->addr, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, ip->addr, 16);
        sa = (const struct sockaddr *)&sin6;
    }
    int mmdb_error = MMDB_SUCCESS;
    *res = MMDB_lookup_sockaddr(&db->mmdb, sa, &mmdb_error);
    return mmdb_error;
}

/* The bits of an address that key its network entry, and how many of the
 * tree walk's bits they cover: the walk of an IPv4 address in an IPv6 tree
 * starts at bit 96 (the library maps it to ::a.b.c.d), so a netmask up to
 * 96 + 24 means no bit past the /24 was read. */
static uint64_t net_prefix(const vd_ipaddr *ip)
{
    uint64_t p = 0;
    int nb = ip->family == 4 ? 3 : 6;
    for (int i = 0; i < nb; i++)
        p = p << 8 | ip->addr[i];
    return p;
}

static bool net_within_prefix(const vd_geo_db *db, const vd_ipaddr *ip, uint16_t netmask)
{
    if (ip->family == 4)
        return netmask <= (db->mmdb.metadata.ip_version == 6 ? 96 + 24 : 24);
    return netmask <= 48;
}

/* MMDB_lookup_sockaddr, or the answer the tree gave for another address of
 * the same /24 or /48 when its walk ended within those bits. */
static int tree_lookup(const vd_geo_db *db, vd_geo_cache *cache, const vd_ipaddr *ip,
                       MMDB_lookup_result_s *res)
{
    if (!cache || !cache->nets)
        return raw_lookup(db, ip, res);
    uint64_t prefix = net_prefix(ip);
    uint64_t h = (prefix ^ ((uint64_t)db->id << 48) ^ ip->family) * 0x9E3779B97F4A7C15ULL;
    geo_net *g = &cache->nets[(size_t)(h >> 40) & cache->mask];
    if (g->db == db->id && g->family == ip->family && g->prefix == prefix) {
        cache->net_hits++;
        memset(res, 0, sizeof *res);
        res->found_entry = g->found;
        if (g->found) {
            res->entry.mmdb = &db->mmdb;
            res->entry.offset = g->offset;
        }
        return MMDB_SUCCESS;
    }
    cache->net_misses++;
    int mmdb_error = raw_lookup(db, ip, res);
    if (mmdb_error == MMDB_SUCCESS && net_within_prefix(db, ip, res->netmask)) {
        g->db = db->id;
        g->family = ip->family;
        g->prefix = prefix;
        g->found = res->found_entry;
        g->offset = res->found_entry ? res->entry.offset : 0;
    }
    return mmdb_error;
}

/* Returns FIELD_ERROR on any corruption, FIELD_ABSENT if not in the DB. */
static int lookup(const vd_geo_db *db, vd_geo_cache *cache, const vd_ipaddr *ip, vd_geo *out)
{
    clear_geo(out);
    if (!db || !ip)
        return FIELD_ABSENT;
    if (ip->family != 4 && ip->family != 6)
        return FIELD_ABSENT;
    MMDB_lookup_result_s res;
    int mmdb_error = tree_lookup(db, cache, ip, &res);
    if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return FIELD_ABSENT;
    if (mmdb_error != MMDB_SUCCESS)
        return FIELD_ERROR;
    if (!res.found_entry)
        return FIELD_ABSENT;
    uint64_t key = 0, *slot = NULL;
    if (cache) {
        key = (uint64_t)db->id << 32 | res.entry.offset;
        size_t i = (size_t)((res.entry.offset * 0x9E3779B97F4A7C15ULL) >> 40) & cache->mask;
        slot = &cache->keys[i];
        if (*slot == key) {
            cache->hits++;
            *out = cache->vals[i];
            return FIELD_OK;
        }
        cache->misses++;
    }
    int rc = FIELD_ABSENT;
    if (db->layout != LAYOUT_FLAT)
        rc = read_fields(&res.entry, true, out);
    if (rc == FIELD_ABSENT && db->layout != LAYOUT_NESTED) {
        clear_geo(out);
        rc = read_fields(&res.entry, false, out);
    }
    if (rc == FIELD_ERROR) {
        clear_geo(out);
        return FIELD_ERROR;
    }
    out->found = true;
    derive_from_country(out);
    if (slot) {
        *slot = key;
        cache->vals[slot - cache->keys] = *out;
    }
    return FIELD_OK;
}

bool vd_geo_lookup(const vd_geo_db *db, const vd_ipaddr *ip, vd_geo *out)
{
    lookup(db, NULL, ip, out);
    return out->found;
}

bool vd_geo_lookup_cached(const vd_geo_db *db, vd_geo_cache *c, const vd_ipaddr *ip,
                          vd_geo *out)
{
    lookup(db, c, ip, out);
    return out->found;
}

vd_geo_cache *vd_geo_cache_new(size_t entries)
{
    size_t n = 1;
    while (n < entries && n < ((size_t)1 << 24))
        n <<= 1;
    vd_geo_cache *c = vd_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->mask = n - 1;
    c->keys = vd_calloc(n, sizeof *c->keys);
    c->vals = vd_calloc(n, sizeof *c->vals);
    c->nets = vd_calloc(n, sizeof *c->nets);
    if (!c->keys || !c->vals || !c->nets) {
        vd_geo_cache_free(c);
        return NULL;
    }
    return c;
}

void vd_geo_cache_free(vd_geo_cache *c)
{
    if (!c)
        return;
    vd_free(c->keys);
    vd_free(c->vals);
    vd_free(c->nets);
    vd_free(c);
}

void vd_geo_cache_stats(const vd_geo_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}

void vd_geo_cache_net_stats(const vd_geo_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->net_hits : 0;
    *misses = c ? c->net_misses : 0;
}

/* Probe addresses: a spread over the IPv4 space and the IPv6 global unicast
 * range, enough to touch most of a tree's upper levels and many data records. */
static void probe_addr(unsigned i, bool v6, vd_ipaddr *ip)
{
    memset(ip, 0, sizeof *ip);
    uint32_t h = i * 2654435761u;
    if (!v6) {
        ip->family = 4;
        ip->addr[0] = (uint8_t)i;
        ip->addr[1] = (uint8_t)(h >> 8);
        ip->addr[2] = (uint8_t)(h >> 16);
        ip->addr[3] = (uint8_t)(h >> 24);
    } else {
        ip->family = 6;
        ip->addr[0] = (uint8_t)(0x20 | ((i >> 6) & 0x1f));
        ip->addr[1] = (uint8_t)(i << 2);
        for (int k = 2; k < 16; k++)
            ip->addr[k] = (uint8_t)(h >> ((k % 4) * 8));
    }
}

static bool has_key(MMDB_entry_s *e, const char *const *path)
{
    MMDB_entry_data_s d;
    return get_data(e, path, -1, &d) == FIELD_OK;
}

/* Walks the first part of the search tree depth-first (bounded: a corrupt
 * tree may loop) and reads our fields from every data record it meets, so a
 * broken tree, pointer or value shows up here instead of on requests. */
#define WALK_MAX_NODES 100000
#define WALK_MAX_DATA 5000

static const char *tree_walk(vd_geo_db *db, int *nested, int *flat, long *records)
{
    struct { uint32_t node; uint16_t depth; } stack[300];
    int sp = 0;
    unsigned max_depth = db->mmdb.metadata.ip_version == 6 ? 128 : 32;
    long nodes = 0, data = 0;
    stack[sp++].node = 0;
    stack[0].depth = 0;
    /* Every node must be well-formed, reachable or not (libmaxminddb 1.7.1
     * opens a file whose unreachable nodes are garbage). A linear pass costs
     * ~6 ns a node: ~25 ms for a 4M-node city database. */
    for (uint32_t i = 0; i < db->mmdb.metadata.node_count; i++) {
        MMDB_search_node_s sn;
        if (MMDB_read_node(&db->mmdb, i, &sn) != MMDB_SUCCESS)
            return "unreadable search tree node";
        if (sn.left_record_type == MMDB_RECORD_TYPE_INVALID ||
            sn.right_record_type == MMDB_RECORD_TYPE_INVALID)
            return "search tree record points outside the file";
    }
    while (sp > 0 && nodes < WALK_MAX_NODES) {
        uint32_t node = stack[sp - 1].node;
        unsigned depth = stack[sp - 1].depth;
        sp--;
        nodes++;
        MMDB_search_node_s sn;
        if (MMDB_read_node(&db->mmdb, node, &sn) != MMDB_SUCCESS)
            return "unreadable search tree node";
        for (int side = 0; side < 2; side++) {
            uint8_t type = side ? sn.right_record_type : sn.left_record_type;
            uint64_t rec = side ? sn.right_record : sn.left_record;
            MMDB_entry_s entry = side ? sn.right_record_entry : sn.left_record_entry;
            if (type == MMDB_RECORD_TYPE_INVALID)
                return "search tree record points outside the file";
            if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
                if (depth + 1 >= max_depth)
                    return "search tree deeper than the address length";
                if (sp < (int)(sizeof stack / sizeof stack[0])) {
                    stack[sp].node = (uint32_t)rec;
                    stack[sp].depth = (uint16_t)(depth + 1);
                    sp++;
                }
            } else if (type == MMDB_RECORD_TYPE_DATA && data < WALK_MAX_DATA) {
                data++;
                vd_geo g;
                clear_geo(&g);
                int rn = read_fields(&entry, true, &g);
                clear_geo(&g);
                int rf = read_fields(&entry, false, &g);
                if (rn == FIELD_ERROR || rf == FIELD_ERROR)
                    return "corrupt data record";
                if (rn == FIELD_OK && (has_key(&entry, P_NESTED_ANY) ||
                                       has_key(&entry, P_NESTED_CONT) ||
                                       has_key(&entry, P_NESTED_LOC)))
                    (*nested)++;
                else if (rf == FIELD_OK)
                    (*flat)++;
            }
        }
    }
    *records = data;
    return NULL;
}

/* Looks the layout up on a few found entries; rejects the file if a probe
 * lookup or field read reports corruption. */
static bool sanity_probe(vd_geo_db *db, char *err, size_t errcap)
{
    int nested = 0, flat = 0;
    char txt[64];
    long walk_records = 0;
    const char *why = tree_walk(db, &nested, &flat, &walk_records);
    if (why) {
        snprintf(err, errcap, "corrupt database: %s", why);
        return false;
    }
    /* A MaxMind or DB-IP database of another kind (ASN, ISP, Anonymous-IP,
     * ...) has records, but none with a country, city or time zone: every
     * geo.* would be missing. Refused by its type; a database of an unknown
     * type without such records is only described as such (lookup tests). */
    static const char *const non_geo[] = { "ASN", "Anonymous", "ISP", "Domain", "Connection-Type",
                                           "IP-Risk", "Static-IP", "User-Count", "Densit" };
    const char *type = db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "";
    bool other_kind = false;
    for (size_t i = 0; i < sizeof non_geo / sizeof non_geo[0]; i++)
        if (strcasestr(type, non_geo[i]))
            other_kind = true;
    db->no_geo = walk_records > 0 && nested == 0 && flat == 0;
    if (other_kind && (db->no_geo || !(strcasestr(type, "City") || strcasestr(type, "Country")))) {
        snprintf(err, errcap, "a \"%.64s\" database has no country or city data: give a City or "
                 "Country database (GeoIP2/GeoLite2-City or -Country, DB-IP city or country)",
                 db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "?");
        return false;
    }
    for (unsigned i = 0; i < 512; i++) {
        vd_ipaddr ip;
        probe_addr(i & 255, i >= 256, &ip);
        if (ip.family == 6 && db->mmdb.metadata.ip_version == 4)
            continue;
        vd_geo g;
        db->layout = LAYOUT_UNKNOWN;
        if (lookup(db, NULL, &ip, &g) == FIELD_ERROR) {
            snprintf(err, errcap, "corrupt database: lookup of %s fails",
                     vd_ip_format(&ip, txt, sizeof txt));
            return false;
        }
        if (!g.found)
            continue;
        /* Re-run the raw lookup to see which layout's keys the entry has. */
        MMDB_lookup_result_s r;
        int e = raw_lookup(db, &ip, &r);
        if (e != MMDB_SUCCESS || !r.found_entry)
            continue;
        if (has_key(&r.entry, P_NESTED_ANY) || has_key(&r.entry, P_NESTED_CONT) ||
            has_key(&r.entry, P_NESTED_LOC))
            nested++;
        else if (has_key(&r.entry, F_COUNTRY) || has_key(&r.entry, F_CITY) ||
                 has_key(&r.entry, F_TZ))
            flat++;
    }
    if (nested && !flat)
        db->layout = LAYOUT_NESTED;
    else if (flat && !nested)
        db->layout = LAYOUT_FLAT;
    else if (!nested && !flat &&
             (strncmp(type, "GeoIP2", 6) == 0 || strncmp(type, "GeoLite2", 8) == 0))
        db->layout = LAYOUT_NESTED;
    else
        db->layout = LAYOUT_UNKNOWN;
    return true;
}

int vd_geo_file_stat(const char *path, vd_geo_file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (int64_t)st.st_size;
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}

bool vd_geo_file_same(const vd_geo_file_id *a, const vd_geo_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

static void fill_id(const struct stat *st, vd_geo_file_id *id)
{
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (int64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* The database file, read into a sealed memfd: the fd, or -1 with a
 * message. Opened without blocking (a FIFO is refused, not waited on), and
 * a file that changes while it is read is refused (try again later). */
#define VD_GEO_MAX_BYTES (4LL << 30)

int vd_geo_file_copy(const char *path, vd_geo_file_id *id, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size <= 0 || st.st_size > VD_GEO_MAX_BYTES) {
        snprintf(err, errcap, "%s: %lld bytes is not a MaxMind DB", path, (long long)st.st_size);
        close(fd);
        return -1;
    }
    int mfd = memfd_create("variantd-geoip", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        snprintf(err, errcap, "%s: memfd_create: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char buf[1 << 16];
    long long got = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errcap, "%s: read: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(mfd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                snprintf(err, errcap, "%s: copying into memory: %s", path,
                         w < 0 ? strerror(errno) : "short write");
                goto fail;
            }
            off += w;
        }
        got += n;
        if (got > VD_GEO_MAX_BYTES) {
            snprintf(err, errcap, "%s: grows while being read", path);
            goto fail;
        }
    }
    struct stat st2;
    if (fstat(fd, &st2) != 0 || got != st.st_size || st2.st_size != st.st_size ||
        st2.st_mtim.tv_sec != st.st_mtim.tv_sec || st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
        snprintf(err, errcap, "%s: changed while being read (being written?): not used", path);
        goto fail;
    }
    close(fd);
    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    fill_id(&st, id);
    return mfd;
fail:
    close(fd);
    close(mfd);
    return -1;
}

vd_geo_db *vd_geo_open(const char *path, char *err, size_t errcap)
{
    if (!path || !*path) {
        snprintf(err, errcap, "no GeoIP database path");
        return NULL;
    }
    vd_geo_db *db = vd_calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errcap, "%s: out of memory", path);
        return NULL;
    }
    static _Atomic uint32_t next_id = 1;
    db->id = next_id++;
    atomic_init(&db->refs, 1);
    if (vd_mmdb_open_copy(path, &db->mmdb, &db->file, err, errcap) != 0) {
        vd_free(db);
        return NULL;
    }
    char perr[400];
    if (!sanity_probe(db, perr, sizeof perr)) {
        snprintf(err, errcap, "%s: %s", path, perr);
        MMDB_close(&db->mmdb);
        vd_free(db);
        return NULL;
    }
    char what[160];
    vd_mmdb_describe(&db->mmdb, what, sizeof what);
    snprintf(db->desc, sizeof db->desc, "%.140s, %s layout%s", what,
             db->layout == LAYOUT_NESTED ? "GeoIP2"
             : db->layout == LAYOUT_FLAT ? "flat"
                                         : "mixed",
             db->no_geo ? ", NO country or city data found" : "");
    return db;
}

void vd_geo_retain(const vd_geo_db *db)
{
    if (db)
        atomic_fetch_add_explicit(&((vd_geo_db *)db)->refs, 1, memory_order_relaxed);
}

void vd_geo_release(const vd_geo_db *db)
{
    vd_geo_db *d = (vd_geo_db *)db;
    if (d && atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1) {
        MMDB_close(&d->mmdb);
        vd_free(d);
    }
}

void vd_geo_close(vd_geo_db *db)
{
    vd_geo_release(db);
}

const vd_geo_file_id *vd_geo_file(const vd_geo_db *db)
{
    return &db->file;
}

const char *vd_geo_describe(const vd_geo_db *db)
{
    return db ? db->desc : "none";
}
