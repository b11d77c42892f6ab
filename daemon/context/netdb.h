/* netdb.h — the client's network: ASN and organisation (GeoLite2-ASN
 * layout) and anonymizer flags (GeoIP2-Anonymous-IP layout), from two
 * optional MaxMind databases read through libmaxminddb.
 *
 * Each database is opened (at start-up, and again when its file changes: see
 * main.c), checked for its type (an ASN database where an Anonymous-IP one
 * is expected is refused with a clear error) and read only afterwards:
 * lookups are thread-safe and allocate nothing. */
#ifndef VD_CONTEXT_NETDB_H
#define VD_CONTEXT_NETDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context/geo.h"
#include "core/value.h"

typedef enum vd_netdb_kind {
    VD_NETDB_ASN,             /* GeoLite2-ASN, GeoIP2-ASN, GeoIP2-ISP */
    VD_NETDB_ANONYMOUS,       /* GeoIP2-Anonymous-IP */
} vd_netdb_kind;

typedef struct vd_netdb vd_netdb;

/* NULL with a message in err: file missing, not an MMDB, bad metadata, or a
 * database_type that is not of this kind. */
vd_netdb *vd_netdb_open(const char *path, vd_netdb_kind kind, char *err, size_t errcap);
/* Reference counted like the GeoIP database, so a reload swaps databases
 * while workers still read the old one: vd_netdb_open gives one reference,
 * vd_netdb_close drops it (= vd_netdb_release); the last release unmaps.
 * NULL is accepted by all three. */
void vd_netdb_retain(const vd_netdb *db);
void vd_netdb_release(const vd_netdb *db);
void vd_netdb_close(vd_netdb *db);
const char *vd_netdb_describe(const vd_netdb *db);   /* for the start-up log */
const vd_geo_file_id *vd_netdb_file(const vd_netdb *db);   /* the file read, for reloads */

typedef struct vd_net {
    bool has_asn;             /* net.asn / net.org: in the ASN database */
    uint32_t asn;
    char org[128];            /* "" when the record has none */
    bool has_anon;            /* net.anonymous ...: an Anonymous-IP database is set */
    bool anonymous, vpn, hosting, tor, public_proxy, residential_proxy;
} vd_net;

/* Either database may be NULL (its attributes are then missing). An IP
 * absent from the Anonymous-IP database has every flag false; one absent
 * from the ASN database (or a corrupt record) has no ASN. */
void vd_net_lookup(const vd_netdb *asn, const vd_netdb *anon, const vd_ipaddr *ip, vd_net *out);

#endif
