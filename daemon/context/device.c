/* PLACEHOLDER: replaced by the device classifier work. */
#include "context/device.h"
#include <stdlib.h>
struct vd_device_cache { int unused; };
void vd_device_classify(vd_str ua, vd_device *out) { out->type = VD_DEVICE_OTHER; out->os = NULL; out->browser = NULL; if (vd_str_contains_ci(ua, VD_STR_LIT("mobile"))) out->type = VD_DEVICE_MOBILE; else if (ua.n) out->type = VD_DEVICE_DESKTOP; }
const char *vd_device_type_name(unsigned type) { static const char *const n[] = { "other", "mobile", "tablet", "desktop", "bot" }; return type < VD_DEVICE__COUNT ? n[type] : "other"; }
vd_device_cache *vd_device_cache_new(size_t entries) { (void)entries; return calloc(1, sizeof(vd_device_cache)); }
void vd_device_cache_free(vd_device_cache *c) { free(c); }
void vd_device_lookup(vd_device_cache *c, vd_str ua, vd_device *out) { (void)c; vd_device_classify(ua, out); }
void vd_device_cache_stats(const vd_device_cache *c, uint64_t *hits, uint64_t *misses) { (void)c; *hits = 0; *misses = 0; }
