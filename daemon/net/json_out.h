/* json_out.h — a streaming JSON writer into an evbuffer, and a vd_emitter on
 * top of it, so the edge port answers `decide` with the very result the
 * decision port packs as MessagePack (payloads are appended pre-encoded,
 * from vd_variant.payload_json).
 *
 * Containers are either counted (the emitter's map(n)/array(n): closed
 * automatically after n items) or open (vd_json_obj/arr ... vd_json_end).
 * In a map, items alternate key, value. Strings are any bytes: invalid
 * UTF-8 becomes U+FFFD and control characters are escaped, so the output is
 * always valid JSON. Nesting beyond VD_JSON_MAX_DEPTH is written as null. */
#ifndef VD_NET_JSON_OUT_H
#define VD_NET_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision/result.h"

struct evbuffer;

#define VD_JSON_MAX_DEPTH 32

typedef struct vd_json_frame {
    uint8_t is_map;
    uint8_t counted;
    uint32_t index;          /* items written (keys and values count apart) */
    uint32_t remaining;      /* counted containers: items still owed */
} vd_json_frame;

typedef struct vd_json {
    struct evbuffer *out;
    unsigned depth;
    unsigned skipped;        /* containers beyond the depth limit, written as null */
    vd_json_frame st[VD_JSON_MAX_DEPTH];
} vd_json;

void vd_json_init(vd_json *j, struct evbuffer *out);

void vd_json_obj(vd_json *j);                /* open object: close with vd_json_end */
void vd_json_arr(vd_json *j);
void vd_json_end(vd_json *j);
void vd_json_key(vd_json *j, const char *key);
void vd_json_strn(vd_json *j, const char *p, size_t n);
void vd_json_cstr(vd_json *j, const char *s);
void vd_json_i64(vd_json *j, int64_t v);
void vd_json_u64(vd_json *j, uint64_t v);
void vd_json_f64(vd_json *j, double v);      /* NaN/Inf -> null */
void vd_json_bool(vd_json *j, bool v);
void vd_json_null(vd_json *j);
void vd_json_raw(vd_json *j, const char *p, size_t n);   /* a pre-encoded value */

/* An emitter writing through j. */
void vd_json_emitter(vd_json *j, vd_emitter *out);

/* A quoted, escaped JSON string appended to out. */
void vd_json_quote(struct evbuffer *out, const char *p, size_t n);

#endif
