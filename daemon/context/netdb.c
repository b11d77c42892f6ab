/* netdb.c — ASN and Anonymous-IP databases via libmaxminddb; see netdb.h.
 *
 * Every lookup checks mmdb_error and found_entry, and every value read the
 * status of MMDB_get_value, entry_data.has_data and the entry type, so a
 * corrupt file reads as "not found", never as garbage (Debian's libmaxminddb
 * 1.7.1 opens some corrupt files without an error). Lookups go through
 * MMDB_lookup_sockaddr on the already parsed address, so there is no
 * getaddrinfo and no gai_error to check. utf8_string values are not
 * NUL-terminated: they are copied with their length. */
#include "context/netdb.h"

#include "context/mmdb.h"
#include "core/alloc.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

struct vd_netdb {
    _Atomic unsigned refs;
    vd_geo_file_id file;      /* identity of the file read */
    MMDB_s mmdb;
    vd_netdb_kind kind;
    char desc[192];
};

static bool type_ok(const char *type, vd_netdb_kind kind)
{
    if (kind == VD_NETDB_ASN)
        return strstr(type, "ASN") || strcmp(type, "GeoIP2-ISP") == 0;
    return strstr(type, "Anonymous-IP") != NULL;
}

vd_netdb *vd_netdb_open(const char *path, vd_netdb_kind kind, char *err, size_t errcap)
{
    const char *want = kind == VD_NETDB_ASN ? "an ASN database (GeoLite2-ASN layout)"
                                            : "an Anonymous-IP database (GeoIP2-Anonymous-IP layout)";
    if (!path || !*path) {
        snprintf(err, errcap, "no database path");
        return NULL;
    }
    vd_netdb *db = vd_calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errcap, "%s: out of memory", path);
        return NULL;
    }
    db->kind = kind;
    atomic_init(&db->refs, 1);
    /* Like the GeoIP database: a private sealed copy is mapped (mmdb.h). */
    if (vd_mmdb_open_copy(path, &db->mmdb, &db->file, err, errcap) != 0) {
        vd_free(db);
        return NULL;
    }
    const char *type = db->mmdb.metadata.database_type;
    if (!type_ok(type, kind)) {
        snprintf(err, errcap, "%s: database type \"%.64s\" is not %s", path, type, want);
        MMDB_close(&db->mmdb);
        vd_free(db);
        return NULL;
    }
    vd_mmdb_describe(&db->mmdb, db->desc, sizeof db->desc);
    return db;
}

void vd_netdb_retain(const vd_netdb *db)
{
    if (db)
        atomic_fetch_add_explicit(&((vd_netdb *)db)->refs, 1, memory_order_relaxed);
}

void vd_netdb_release(const vd_netdb *db)
{
    vd_netdb *d = (vd_netdb *)db;
    if (!d || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    MMDB_close(&d->mmdb);
    vd_free(d);
}

void vd_netdb_close(vd_netdb *db)
{
    vd_netdb_release(db);
}

const vd_geo_file_id *vd_netdb_file(const vd_netdb *db)
{
    return &db->file;
}

const char *vd_netdb_describe(const vd_netdb *db)
{
    return db ? db->desc : "";
}

/* The record of ip, or false (not in the tree, IPv6 in an IPv4 tree, or a
 * lookup error). */
static bool find(const vd_netdb *db, const vd_ipaddr *ip, MMDB_entry_s *entry)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    if (ip->family == 4) {
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, ip->addr, 4);
        sa = (const struct sockaddr *)&sin;
    } else if (ip->family == 6) {
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, ip->addr, 16);
        sa = (const struct sockaddr *)&sin6;
    } else {
        return false;
    }
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr((MMDB_s *)&db->mmdb, sa, &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS || !res.found_entry)
        return false;
    *entry = res.entry;
    return true;
}

/* 1 with the value, 0 absent (or another type), -1 a read error. */
static int get(MMDB_entry_s *e, const char *key, uint32_t type, MMDB_entry_data_s *d)
{
    memset(d, 0, sizeof *d);
    int rc = MMDB_get_value(e, d, key, NULL);
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        return 0;
    if (rc != MMDB_SUCCESS)
        return -1;
    return d->has_data && d->type == type;
}

static int get_flag(MMDB_entry_s *e, const char *key, bool *out)
{
    MMDB_entry_data_s d;
    int rc = get(e, key, MMDB_DATA_TYPE_BOOLEAN, &d);
    *out = rc == 1 && d.boolean;
    return rc;
}

void vd_net_lookup(const vd_netdb *asn, const vd_netdb *anon, const vd_ipaddr *ip, vd_net *out)
{
    memset(out, 0, sizeof *out);
    MMDB_entry_s e;
    MMDB_entry_data_s d;
    if (asn && ip && find(asn, ip, &e) && get(&e, "autonomous_system_number", MMDB_DATA_TYPE_UINT32, &d) == 1) {
        out->has_asn = true;
        out->asn = d.uint32;
        if (get(&e, "autonomous_system_organization", MMDB_DATA_TYPE_UTF8_STRING, &d) == 1 &&
            d.utf8_string) {
            size_t n = d.data_size < sizeof out->org - 1 ? d.data_size : sizeof out->org - 1;
            const char *nul = memchr(d.utf8_string, '\0', n);
            if (nul)
                n = (size_t)(nul - d.utf8_string);
            if (n < d.data_size)          /* cut: not inside a UTF-8 sequence */
                while (n > 0 && ((unsigned char)d.utf8_string[n] & 0xc0) == 0x80)
                    n--;
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)d.utf8_string[i];
                out->org[i] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
            }
            out->org[n] = '\0';
        }
    }
    if (anon) {
        out->has_anon = true;            /* absent from the database: all false */
        if (ip && find(anon, ip, &e)) {
            bool ok = get_flag(&e, "is_anonymous", &out->anonymous) >= 0 &&
                      get_flag(&e, "is_anonymous_vpn", &out->vpn) >= 0 &&
                      get_flag(&e, "is_hosting_provider", &out->hosting) >= 0 &&
                      get_flag(&e, "is_tor_exit_node", &out->tor) >= 0 &&
                      get_flag(&e, "is_public_proxy", &out->public_proxy) >= 0 &&
                      get_flag(&e, "is_residential_proxy", &out->residential_proxy) >= 0;
            if (!ok) {                   /* a corrupt record says nothing */
                out->has_anon = false;
                out->anonymous = out->vpn = out->hosting = out->tor = false;
                out->public_proxy = out->residential_proxy = false;
            }
        }
    }
}
