/* device.h — device type, OS family and browser family from a User-Agent.
 *
 * Our own classifier (no rule sets of other projects embedded): a handful of
 * ordered token tests over the lower-cased UA. Accuracy is measured on the
 * labelled corpus in ../shared/data/ua/ (tools/vd-accuracy-ua.c).
 * vd_device_classify is pure and thread-safe; the cache is per worker thread. */
#ifndef VD_CONTEXT_DEVICE_H
#define VD_CONTEXT_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef enum vd_device_type {
    VD_DEVICE_OTHER = 0,
    VD_DEVICE_MOBILE,
    VD_DEVICE_TABLET,
    VD_DEVICE_DESKTOP,
    VD_DEVICE_BOT,
    VD_DEVICE__COUNT
} vd_device_type;

typedef struct vd_device {
    uint8_t type;             /* vd_device_type */
    const char *os;           /* static family name ("Android", "iOS", "Windows", "Mac",
                                 "GNU/Linux", ...) or NULL if unknown */
    const char *browser;      /* static family name ("Chrome", "Safari", "Firefox", ...)
                                 or NULL if unknown */
} vd_device;

/* UAs longer than this are classified on their first VD_UA_MAX bytes. */
#define VD_UA_MAX 2048

/* User-Agent Client Hints as received (Sec-CH-UA, Sec-CH-UA-Mobile,
 * Sec-CH-UA-Platform, Sec-CH-UA-Model), each an empty slice when absent.
 * Values may be structured-header strings ("\"Android\"") or bare. */
typedef struct vd_ua_hints {
    vd_str ua, mobile, platform, model;
} vd_ua_hints;

static inline bool vd_ua_hints_any(const vd_ua_hints *h)
{
    return h && (h->ua.n || h->mobile.n || h->platform.n || h->model.n);
}

void vd_device_classify(vd_str ua, vd_device *out);
/* The same with Client Hints (h may be NULL): where present, the hints
 * decide device.type and device.os before the User-Agent does (a reduced
 * Chromium UA says "Android 10; K" whatever the device); a UA that names a
 * robot, a TV or another non-PC device keeps that verdict. */
void vd_device_classify_hints(vd_str ua, const vd_ua_hints *h, vd_device *out);
const char *vd_device_type_name(unsigned type);       /* "mobile", ... */

/* A fixed-size verdict cache keyed by the full UA bytes and the hints that
 * were present (a hinted request never reuses an unhinted verdict). */
typedef struct vd_device_cache vd_device_cache;
vd_device_cache *vd_device_cache_new(size_t entries);  /* rounded up to a power of 2 */
void vd_device_cache_free(vd_device_cache *c);
/* c and h may be NULL */
void vd_device_lookup(vd_device_cache *c, vd_str ua, const vd_ua_hints *h, vd_device *out);
void vd_device_cache_stats(const vd_device_cache *c, uint64_t *hits, uint64_t *misses);

#endif
