/* context.h — one request's visitor context, computed lazily.
 *
 * The front end fills a vd_request with slices into its own buffer; the
 * context computes each family of attributes (geo, local time, device,
 * source, url, lang) the first time a rule asks for one of them, at most
 * once per request, and never allocates. */
#ifndef VD_CONTEXT_CONTEXT_H
#define VD_CONTEXT_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "context/attrs.h"
#include "context/device.h"
#include "context/geo.h"
#include "context/netdb.h"
#include "context/source.h"
#include "context/tz.h"
#include "context/url.h"
#include "context/visitor.h"
#include "core/str.h"
#include "core/value.h"
#include "variantd/limits.h"

typedef struct vd_kv {
    vd_str key;
    vd_value val;
} vd_kv;

/* What the client sent. Empty slices mean "not given". */
typedef struct vd_request {
    vd_str ip, ua, referer, url, lang, vid;
    vd_str uid;               /* the known customer's id (contract v2) */
    vd_str consent;           /* "none" | "personalization"; empty: consent-default */
    vd_str tz;                /* optional IANA zone overriding the geo one */
    vd_ipaddr ip_addr;        /* family != 0: the client IP already parsed by the
                               * front end (the edge port); ip is then unused */
    vd_ua_hints hints;        /* User-Agent Client Hints (Sec-CH-UA*) */
    int64_t ts;               /* unix seconds; used when has_ts */
    bool has_ts;
    bool explain;
    bool segments;            /* list every matching segment (forces evaluating all) */
    unsigned nslots;
    vd_str slots[VD_MAX_SLOTS_PER_REQUEST];
    unsigned nattrs;
    vd_kv attrs[VD_MAX_ATTRS_PER_REQUEST];
} vd_request;

/* Shared, read-only resources (opened at start-up). Any may be NULL. */
typedef struct vd_env {
    const vd_geo_db *geo;
    const vd_tzdb *tzdb;
    const vd_netdb *asn;             /* --asn-db: net.asn, net.org */
    const vd_netdb *anon;            /* --anonymous-ip-db: net.anonymous, .vpn, .hosting, .tor */
} vd_env;

/* Per-worker caches of derived verdicts; any may be NULL. */
typedef struct vd_context_caches {
    vd_device_cache *ua;             /* User-Agent -> device */
    vd_geo_cache *geo;               /* MMDB record -> decoded geo */
    vd_source_cache *src;            /* referring host -> its verdict (context/source.h) */
} vd_context_caches;

typedef struct vd_context {
    const vd_request *req;
    const vd_env *env;
    vd_device_cache *ua_cache;       /* per worker; may be NULL */
    vd_geo_cache *geo_cache;         /* per worker; may be NULL */
    vd_source_cache *src_cache;      /* per worker; may be NULL */
    const vd_visitor *visitor;       /* the decoded profile; NULL: visitor.* missing */
    int64_t now;                     /* request time, unix seconds */
    unsigned done;                   /* vd_attr_family bits already computed */

    vd_ipaddr ip;                    /* family 0 if absent/invalid */
    vd_geo geo;
    const vd_tz *tz;                 /* NULL if unknown */
    vd_localtime local;              /* valid when tz != NULL */
    vd_device device;
    bool has_device;
    vd_net net;
    vd_source source;
    vd_url url;
    bool has_url;
    char lang[9];
    char qbuf[1024];                 /* decoded url.query value of the last get */
} vd_context;

/* now: the request's ts if it has one, else the caller's clock. caches may
 * be NULL (every verdict computed afresh). */
void vd_context_init(vd_context *ctx, const vd_request *req, const vd_env *env,
                     const vd_context_caches *caches, int64_t now);

/* The v2 identity fields of a parsed request: consent is "none" or
 * "personalization". Both codecs call it so the messages are the same. -1
 * with a message. */
int vd_request_check_ids(const vd_request *req, char *err, size_t cap);

/* Hands the context the visitor's profile (NULL: none, every visitor.*
 * attribute is missing). Set before the first vd_context_get. */
static inline void vd_context_set_visitor(vd_context *ctx, const vd_visitor *v)
{
    ctx->visitor = v;
}

/* The value of one attribute; VD_VAL_MISSING if the request cannot give it.
 * String values stay valid until the next vd_context_get on this context. */
void vd_context_get(vd_context *ctx, const vd_attr_ref *attr, vd_value *out);

/* The zone used for time.*, computing geo if needed (NULL = none). */
const vd_tz *vd_context_tz(vd_context *ctx);

#endif
