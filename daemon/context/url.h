/* url.h — URL pieces and query parameters, without copying the URL. */
#ifndef VD_CONTEXT_URL_H
#define VD_CONTEXT_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

typedef struct vd_url {
    vd_str scheme;            /* "https" or empty */
    vd_str host;              /* as written (lower-case it when comparing), no port */
    vd_str path;              /* "/" when an absolute URL has none; raw (not decoded) */
    vd_str query;             /* after '?', before '#'; raw */
} vd_url;

/* Accepts absolute URLs (scheme://host[:port]/path?query#frag), scheme-less
 * "//host/path" and origin-form "/path?query". Returns false (out zeroed) for
 * anything else or for bytes that cannot be in a URL (controls, spaces). */
bool vd_url_parse(vd_str s, vd_url *out);

/* Finds the first parameter called name (exact, case-sensitive key as in
 * GA and utm conventions... keys compare ASCII case-insensitively) in query,
 * percent- and '+'-decodes its value into buf. Returns true if present
 * (value may be empty); *out points into buf. Values longer than cap-1 are cut. */
bool vd_url_query_get(vd_str query, vd_str name, char *buf, size_t cap, vd_str *out);

/* The key test of vd_url_query_get, for callers matching one key against
 * several names: whether the raw key k holds '%' or '+' (then it is decoded
 * while compared), and whether it equals name ASCII case-insensitively
 * (encoded: vd_url_key_encoded(k)). A key never decodes to more bytes. */
bool vd_url_key_encoded(vd_str k);
bool vd_url_key_eq(vd_str k, bool encoded, vd_str name);

/* Iterates parameters: *pos starts at 0. Returns false at the end. Key and
 * value are raw (not decoded). */
bool vd_url_query_next(vd_str query, size_t *pos, vd_str *key, vd_str *value);

/* Percent- and '+'-decode into buf (NUL-terminated); returns the length. */
size_t vd_url_decode(vd_str s, char *buf, size_t cap);

#endif
