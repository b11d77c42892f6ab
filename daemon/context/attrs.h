/* attrs.h — the attribute catalogue of the contract (v1, and v2's net.* and visitor.*), one table.
 * The rules compiler resolves names here; the context computes values by id;
 * explain output and docs list them in this order. */
#ifndef VD_CONTEXT_ATTRS_H
#define VD_CONTEXT_ATTRS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

/* How a predicate value is compiled and compared. */
typedef enum vd_attr_type {
    VD_AT_STRING,             /* case-insensitive string */
    VD_AT_NUMBER,             /* double */
    VD_AT_BOOL,
    VD_AT_IP,                 /* for eq/cidr */
    VD_AT_LOCATION,           /* for within */
    VD_AT_HOUR,               /* 0-23, between wraps midnight */
    VD_AT_MINUTE,             /* 0-1439, between wraps midnight */
    VD_AT_WEEKDAY,            /* mon..sun, value as string */
    VD_AT_DATE,               /* local date; values "YYYY-MM-DD", compared as days */
    VD_AT_INSTANT,            /* UTC; values ISO-8601 or unix seconds */
    VD_AT_ANY,                /* attr.*: string, number or bool as the caller sent it */
} vd_attr_type;

/* Which lazily computed part of the context an attribute needs. */
typedef enum vd_attr_family {
    VD_FAM_NONE = 0,
    VD_FAM_IP   = 1u << 0,
    VD_FAM_GEO  = 1u << 1,
    VD_FAM_TIME = 1u << 2,
    VD_FAM_DEVICE = 1u << 3,
    VD_FAM_SOURCE = 1u << 4,
    VD_FAM_URL  = 1u << 5,
    VD_FAM_LANG = 1u << 6,
    VD_FAM_NET  = 1u << 7,
    VD_FAM_VISITOR = 1u << 8,  /* needs the visitor's profile (context/visitor.h) */
} vd_attr_family;

#define VD_ATTR_LIST(X)                                             \
    X(IP,             "ip",             VD_AT_IP,       VD_FAM_IP)     \
    X(GEO_COUNTRY,    "geo.country",    VD_AT_STRING,   VD_FAM_GEO)    \
    X(GEO_CONTINENT,  "geo.continent",  VD_AT_STRING,   VD_FAM_GEO)    \
    X(GEO_REGION,     "geo.region",     VD_AT_STRING,   VD_FAM_GEO)    \
    X(GEO_CITY,       "geo.city",       VD_AT_STRING,   VD_FAM_GEO)    \
    X(GEO_POSTAL,     "geo.postal",     VD_AT_STRING,   VD_FAM_GEO)    \
    X(GEO_TIMEZONE,   "geo.timezone",   VD_AT_STRING,   VD_FAM_GEO | VD_FAM_TIME) \
    X(GEO_LOCATION,   "geo.location",   VD_AT_LOCATION, VD_FAM_GEO)    \
    X(GEO_EU,         "geo.eu",         VD_AT_BOOL,     VD_FAM_GEO)    \
    X(TIME_HOUR,      "time.hour",      VD_AT_HOUR,     VD_FAM_TIME)   \
    X(TIME_MINUTE,    "time.minute",    VD_AT_MINUTE,   VD_FAM_TIME)   \
    X(TIME_WEEKDAY,   "time.weekday",   VD_AT_WEEKDAY,  VD_FAM_TIME)   \
    X(TIME_DATE,      "time.date",      VD_AT_DATE,     VD_FAM_TIME)   \
    X(TIME_UTC,       "time.utc",       VD_AT_INSTANT,  VD_FAM_NONE)   \
    X(DEVICE_TYPE,    "device.type",    VD_AT_STRING,   VD_FAM_DEVICE) \
    X(DEVICE_OS,      "device.os",      VD_AT_STRING,   VD_FAM_DEVICE) \
    X(DEVICE_BROWSER, "device.browser", VD_AT_STRING,   VD_FAM_DEVICE) \
    X(SOURCE_MEDIUM,  "source.medium",  VD_AT_STRING,   VD_FAM_SOURCE) \
    X(SOURCE_NAME,    "source.name",    VD_AT_STRING,   VD_FAM_SOURCE) \
    X(SOURCE_HOST,    "source.host",    VD_AT_STRING,   VD_FAM_SOURCE) \
    X(SOURCE_CAMPAIGN,"source.campaign",VD_AT_STRING,   VD_FAM_SOURCE) \
    X(SOURCE_TERM,    "source.term",    VD_AT_STRING,   VD_FAM_SOURCE) \
    X(SOURCE_CONTENT, "source.content", VD_AT_STRING,   VD_FAM_SOURCE) \
    X(URL_HOST,       "url.host",       VD_AT_STRING,   VD_FAM_URL)    \
    X(URL_PATH,       "url.path",       VD_AT_STRING,   VD_FAM_URL)    \
    X(URL_QUERY,      "url.query.",     VD_AT_STRING,   VD_FAM_URL)    \
    X(LANG,           "lang",           VD_AT_STRING,   VD_FAM_LANG)   \
    X(NET_ASN,        "net.asn",        VD_AT_NUMBER,   VD_FAM_NET)    \
    X(NET_ORG,        "net.org",        VD_AT_STRING,   VD_FAM_NET)    \
    X(NET_ANONYMOUS,  "net.anonymous",  VD_AT_BOOL,     VD_FAM_NET)    \
    X(NET_VPN,        "net.vpn",        VD_AT_BOOL,     VD_FAM_NET)    \
    X(NET_HOSTING,    "net.hosting",    VD_AT_BOOL,     VD_FAM_NET)    \
    X(NET_TOR,        "net.tor",        VD_AT_BOOL,     VD_FAM_NET)    \
    X(ATTR,           "attr.",          VD_AT_ANY,      VD_FAM_NONE)   \
    X(VISITOR_KNOWN,  "visitor.known",  VD_AT_BOOL,     VD_FAM_VISITOR) \
    X(VISITOR_VISITS, "visitor.visits", VD_AT_NUMBER,   VD_FAM_VISITOR) \
    X(VISITOR_NEW,    "visitor.new",    VD_AT_BOOL,     VD_FAM_VISITOR) \
    X(VISITOR_DAYS_SINCE_LAST, "visitor.days_since_last_visit", VD_AT_NUMBER, VD_FAM_VISITOR) \
    X(VISITOR_FIRST_SEEN, "visitor.first_seen", VD_AT_INSTANT, VD_FAM_VISITOR) \
    X(VISITOR_SCORE,  "visitor.score.", VD_AT_NUMBER,   VD_FAM_VISITOR) \
    X(VISITOR_PEAK,   "visitor.peak.",  VD_AT_NUMBER,   VD_FAM_VISITOR) \
    X(VISITOR_DECLINE,"visitor.decline.", VD_AT_NUMBER, VD_FAM_VISITOR) \
    X(VISITOR_EVENTS, "visitor.events.", VD_AT_NUMBER,  VD_FAM_VISITOR) \
    X(VISITOR_FLAG,   "visitor.flag.",  VD_AT_BOOL,     VD_FAM_VISITOR)

typedef enum vd_attr_id {
#define VD_ATTR_ENUM(id, name, type, fam) VD_ATTR_##id,
    VD_ATTR_LIST(VD_ATTR_ENUM)
#undef VD_ATTR_ENUM
    VD_ATTR__COUNT
} vd_attr_id;

typedef struct vd_attr_info {
    const char *name;         /* names ending in '.' are prefixes: url.query.NAME, attr.NAME */
    uint8_t type;             /* vd_attr_type */
    uint16_t family;          /* vd_attr_family bits */
} vd_attr_info;

/* A resolved attribute reference, as compiled into a predicate. */
typedef struct vd_attr_ref {
    uint8_t id;               /* vd_attr_id */
    vd_str sub;               /* NAME of url.query.NAME / attr.NAME; owned by the ruleset */
} vd_attr_ref;

const vd_attr_info *vd_attr_info_get(unsigned id);
/* Resolves "geo.city", "url.query.utm_id", "attr.role" ...; false if unknown
 * (or a prefix attribute with an empty NAME). sub points into name. */
bool vd_attr_resolve(vd_str name, vd_attr_ref *out);

#endif
