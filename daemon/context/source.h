/* source.h — traffic source (medium, name, utm fields) from Referer + landing
 * URL, following GA4's default channel rules (see docs/RULES.md):
 *   click ids (gclid, gbraid, wbraid, dclid, msclkid, fbclid with a paid
 *   medium, ...) or a paid utm_medium -> paid; utm_medium=email or a webmail
 *   host -> email; a known search engine -> organic; a known social network
 *   -> social; same registrable domain as the landing page (libpsl) ->
 *   internal; no referrer and no utm -> direct; anything else -> referral.
 * Pure and thread-safe. */
#ifndef VD_CONTEXT_SOURCE_H
#define VD_CONTEXT_SOURCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "context/url.h"
#include "core/str.h"

typedef enum vd_medium {
    VD_MEDIUM_DIRECT = 0,
    VD_MEDIUM_ORGANIC,
    VD_MEDIUM_PAID,
    VD_MEDIUM_SOCIAL,
    VD_MEDIUM_EMAIL,
    VD_MEDIUM_REFERRAL,
    VD_MEDIUM_INTERNAL,
    VD_MEDIUM__COUNT
} vd_medium;

typedef struct vd_source {
    uint8_t medium;           /* vd_medium */
    char name[64];            /* "google", "facebook", "newsletter" (utm_source), or the
                                 referring host; "" for direct */
    char host[256];           /* referring host, lower case, no "www." stripping; "" none */
    char campaign[128];       /* utm_campaign, decoded; "" none */
    char term[128];           /* utm_term (or the search engine's query parameter) */
    char content[128];        /* utm_content */
} vd_source;

void vd_source_classify(vd_str referer, vd_str page_url, vd_source *out);
/* The same with the landing URL already parsed (page NULL: none), so a
 * request parses it once for url.* and source.* together. */
void vd_source_classify_parsed(vd_str referer, const vd_url *page, vd_source *out);
const char *vd_medium_name(unsigned medium);   /* "direct", ... */

/* A per-worker cache of what the referring host alone decides (same site as
 * the landing page, the host table's entry, the heuristic guess): the
 * Public Suffix List and host-table walks are most of a classification,
 * and a few hundred hosts send most visits. Exact: keyed by every byte the
 * verdict depends on (referring host, landing host, and the Referer's path
 * for the few hosts whose table entries have paths). Fixed size,
 * direct-mapped, no allocation after creation; one thread at a time.
 * hits/misses: counters to bump (the worker's stats), or NULL for the
 * cache's own; every classification of a Referer with a host counts one. */
typedef struct vd_source_cache vd_source_cache;
vd_source_cache *vd_source_cache_new(size_t entries, _Atomic uint64_t *hits,
                                     _Atomic uint64_t *misses);   /* rounded up to a power of 2 */
void vd_source_cache_free(vd_source_cache *c);
void vd_source_cache_stats(const vd_source_cache *c, uint64_t *hits, uint64_t *misses);
/* The whole-answer entries: a Referer on a landing page without utm_* or
 * click-id keys is answered from an entry keyed by the Referer's bytes and
 * the landing host (as many entries as the host verdicts). Such a hit also
 * counts as a hit above (the host verdict it holds was not looked up). */
void vd_source_cache_answer_stats(const vd_source_cache *c, uint64_t *hits, uint64_t *misses);
/* vd_source_classify_parsed through the cache (NULL: none). */
void vd_source_classify_cached(vd_source_cache *cache, vd_str referer, const vd_url *page,
                               vd_source *out);

#endif
