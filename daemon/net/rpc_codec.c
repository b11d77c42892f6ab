#include "net/rpc_codec.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"
#include "decision/request.h"

/* ---- request: msgpack-c objects as the validator sees them ---- */

/* Well-formed UTF-8, by the one definition of core/str.h. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if ((k = vd_utf8_seq_len(p + i, n - i)) == 0)
            return false;
    return true;
}

static void mp_val(const msgpack_object *o, vd_reqval *out)
{
    memset(out, 0, sizeof *out);
    out->node = o;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: out->kind = VD_RV_NIL; break;
    case MSGPACK_OBJECT_BOOLEAN: out->kind = VD_RV_BOOL; out->b = o->via.boolean; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: out->kind = VD_RV_NUM; out->num = (double)o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: out->kind = VD_RV_NUM; out->num = (double)o->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        out->kind = isfinite(o->via.f64) ? VD_RV_NUM : VD_RV_OTHER;
        out->num = o->via.f64;
        break;
    case MSGPACK_OBJECT_STR:
        out->kind = VD_RV_STR;
        out->s = vd_str_make(o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        /* bin holding UTF-8 is a string (Python bytes, ASGI headers). */
        out->kind = utf8_valid((const unsigned char *)o->via.bin.ptr, o->via.bin.size)
                        ? VD_RV_STR : VD_RV_BADSTR;
        out->s = vd_str_make(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY: out->kind = VD_RV_ARRAY; out->n = o->via.array.size; break;
    case MSGPACK_OBJECT_MAP: out->kind = VD_RV_MAP; out->n = o->via.map.size; break;
    default: out->kind = VD_RV_OTHER; break;
    }
}

static void mp_at(const void *node, uint32_t i, vd_reqval *out)
{
    mp_val(&((const msgpack_object *)node)->via.array.ptr[i], out);
}

static bool mp_next(const void *node, uintptr_t *it, vd_reqval *k, vd_reqval *v)
{
    const msgpack_object *m = node;
    if (*it >= m->via.map.size)
        return false;
    mp_val(&m->via.map.ptr[*it].key, k);
    mp_val(&m->via.map.ptr[*it].val, v);
    (*it)++;
    return true;
}

static const vd_reqcodec mp_codec = { mp_at, mp_next };

int vd_rpc_read_params(const msgpack_object *params, unsigned max_slots, vd_request *req,
                       char *err, size_t cap)
{
    vd_reqval v;
    mp_val(params, &v);
    return vd_request_read(&mp_codec, &v, max_slots, req, err, cap);
}

int vd_rpc_read_profile_params(const msgpack_object *params, vd_profile_params *p, char *err,
                               size_t cap)
{
    vd_reqval v;
    mp_val(params, &v);
    return vd_profile_params_read(&mp_codec, &v, p, err, cap);
}

/* ---- request: straight from the frame's bytes ---- */

/* A frame that passed vd_msgpack_scan is complete and well-formed: every
 * length and count in it fits inside it. The view below reads it in place
 * (no msgpack-c objects, no zone): a node is the address of an object's
 * first byte. Reads are still bounded by the frame's end (raw.end), so a
 * caller that skipped the scan could only get wrong kinds, never a read
 * outside the frame. One decode at a time per thread. */
static _Thread_local struct {
    const uint8_t *end;
    const uint8_t *memo_node;     /* at(): the last element found, for i + 1 */
    uint32_t memo_i;
    const uint8_t *memo_p;
} raw;

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The header of the object at p: its kind (as the validator sees it), and
 * for containers the element/entry count and the first child, for the rest
 * the value and the address after it. NULL if the bytes run out. */
typedef struct raw_hdr {
    vd_reqval_kind kind;
    bool bin;                     /* STR read from a bin: UTF-8 still to check */
    uint32_t n;
    const uint8_t *body;          /* str/bin bytes; containers: the first child */
    const uint8_t *next;          /* after the whole object (scalars, str, bin, ext) */
    double num;
    bool b;
} raw_hdr;

static bool raw_read_rest(const uint8_t *p, raw_hdr *h);

/* Inline for what requests are made of (fixstr, fixmap, fixarray, small
 * integers, nil, booleans); the rest out of line. */
static inline bool raw_read(const uint8_t *p, raw_hdr *h)
{
    const uint8_t *end = raw.end;
    if (p >= end)
        return false;
    uint8_t c = p[0];
    h->bin = false;
    h->num = 0;
    h->b = false;
    if (c >= 0xa0 && c <= 0xbf) {
        h->kind = VD_RV_STR;
        h->n = c & 0x1fu;
        if ((size_t)(end - p) < 1u + h->n)
            return false;
        h->body = p + 1;
        h->next = p + 1 + h->n;
        return true;
    }
    if (c >= 0x80 && c <= 0x9f) {
        h->kind = c <= 0x8f ? VD_RV_MAP : VD_RV_ARRAY;
        h->n = c & 0x0fu;
        h->body = p + 1;
        return true;
    }
    if (c <= 0x7f) {
        h->kind = VD_RV_NUM;
        h->num = c;
        h->next = p + 1;
        return true;
    }
    if (c == 0xc0 || c == 0xc2 || c == 0xc3) {
        h->kind = c == 0xc0 ? VD_RV_NIL : VD_RV_BOOL;
        h->b = c == 0xc3;
        h->next = p + 1;
        return true;
    }
    return raw_read_rest(p, h);
}

static bool raw_read_rest(const uint8_t *p, raw_hdr *h)
{
    const uint8_t *end = raw.end;
    uint8_t c = p[0];
    size_t avail = (size_t)(end - p);
    unsigned lenk = 0;            /* bytes of a length field */
    if (c <= 0x7f) {
        h->kind = VD_RV_NUM;
        h->num = c;
        h->next = p + 1;
        return true;
    }
    if (c >= 0xe0) {
        h->kind = VD_RV_NUM;
        h->num = (int8_t)c;
        h->next = p + 1;
        return true;
    }
    if (c <= 0x8f || (c >= 0x90 && c <= 0x9f)) {
        h->kind = c <= 0x8f ? VD_RV_MAP : VD_RV_ARRAY;
        h->n = c & 0x0fu;
        h->body = p + 1;
        return true;
    }
    if (c <= 0xbf) {
        h->kind = VD_RV_STR;
        h->n = c & 0x1fu;
        if (avail < 1u + h->n)
            return false;
        h->body = p + 1;
        h->next = p + 1 + h->n;
        return true;
    }
    switch (c) {
    case 0xc0: h->kind = VD_RV_NIL; h->next = p + 1; return true;
    case 0xc2: case 0xc3: h->kind = VD_RV_BOOL; h->b = c == 0xc3; h->next = p + 1; return true;
    case 0xc4: case 0xc5: case 0xc6:                       /* bin 8/16/32 */
    case 0xd9: case 0xda: case 0xdb: {                     /* str 8/16/32 */
        lenk = c <= 0xc6 ? 1u << (c - 0xc4) : 1u << (c - 0xd9);
        if (avail < 1u + lenk)
            return false;
        uint64_t n = be(p + 1, lenk);
        if (n > avail - 1 - lenk)
            return false;
        h->kind = VD_RV_STR;
        h->bin = c <= 0xc6;
        h->n = (uint32_t)n;
        h->body = p + 1 + lenk;
        h->next = h->body + n;
        return true;
    }
    case 0xc7: case 0xc8: case 0xc9: {                     /* ext 8/16/32 */
        lenk = 1u << (c - 0xc7);
        if (avail < 2u + lenk)
            return false;
        uint64_t n = be(p + 1, lenk);
        if (n > avail - 2 - lenk)
            return false;
        h->kind = VD_RV_OTHER;
        h->next = p + 2 + lenk + n;
        return true;
    }
    case 0xca: case 0xcb: {                                /* float 32/64 */
        unsigned k = c == 0xca ? 4 : 8;
        if (avail < 1u + k)
            return false;
        double d;
        if (k == 4) {
            uint32_t bits = (uint32_t)be(p + 1, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            d = f;
        } else {
            uint64_t bits = be(p + 1, 8);
            memcpy(&d, &bits, sizeof d);
        }
        h->kind = isfinite(d) ? VD_RV_NUM : VD_RV_OTHER;
        h->num = d;
        h->next = p + 1 + k;
        return true;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:            /* uint 8..64 */
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {          /* int 8..64 */
        unsigned k = 1u << ((c - 0xcc) & 3);
        if (avail < 1u + k)
            return false;
        uint64_t v = be(p + 1, k);
        if (c >= 0xd0 && (v >> (8 * k - 1)) & 1u)          /* negative: sign-extend */
            h->num = (double)(int64_t)(k == 8 ? v : v | (~(uint64_t)0 << (8 * k)));
        else
            h->num = (double)v;
        h->kind = VD_RV_NUM;
        h->next = p + 1 + k;
        return true;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {   /* fixext 1..16 */
        unsigned k = 1u << (c - 0xd4);
        if (avail < 2u + k)
            return false;
        h->kind = VD_RV_OTHER;
        h->next = p + 2 + k;
        return true;
    }
    case 0xdc: case 0xdd: case 0xde: case 0xdf: {          /* array/map 16/32 */
        lenk = (c & 1) ? 4 : 2;
        if (avail < 1u + lenk)
            return false;
        uint64_t n = be(p + 1, lenk);
        if (n > avail)                                     /* every item takes a byte */
            return false;
        h->kind = c <= 0xdd ? VD_RV_ARRAY : VD_RV_MAP;
        h->n = (uint32_t)n;
        h->body = p + 1 + lenk;
        return true;
    }
    default:                                               /* 0xc1 */
        return false;
    }
}

/* The address after the object at p, or NULL. Iterative: a count of the
 * items still owed, no stack. */
static const uint8_t *raw_skip(const uint8_t *p)
{
    uint64_t pending = 1;
    while (pending) {
        raw_hdr h;
        if (!raw_read(p, &h))
            return NULL;
        pending--;
        if (h.kind == VD_RV_ARRAY || h.kind == VD_RV_MAP) {
            pending += h.kind == VD_RV_MAP ? 2 * (uint64_t)h.n : h.n;
            p = h.body;
        } else {
            p = h.next;
        }
    }
    return p;
}

/* The view of the object at p if it is one of what requests are mostly
 * made of — fixstr and str 8 (keys, most values), small non-negative
 * integers, nil, booleans — written straight into *out, without the
 * intermediate header. Returns the address after it; NULL if p is not one
 * of these (or cut off), for the caller's general path, which then decides
 * the same as if this were not here. */
static inline const uint8_t *raw_fast(const uint8_t *p, vd_reqval *out)
{
    const uint8_t *end = raw.end;
    if (p >= end)
        return NULL;
    uint8_t c = p[0];
    size_t n;
    const uint8_t *body;
    if (c >= 0xa0 && c <= 0xbf) {
        n = c & 0x1fu;
        body = p + 1;
    } else if (c == 0xd9 && end - p >= 2) {
        n = p[1];
        body = p + 2;
    } else if (c <= 0x7f || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        out->node = p;
        out->kind = c <= 0x7f ? VD_RV_NUM : c == 0xc0 ? VD_RV_NIL : VD_RV_BOOL;
        out->b = c == 0xc3;
        out->num = c <= 0x7f ? c : 0;
        out->n = 0;
        out->s = VD_STR_NULL;
        return p + 1;
    } else {
        return NULL;
    }
    if ((size_t)(end - body) < n)
        return NULL;
    out->node = p;
    out->kind = VD_RV_STR;
    out->b = false;
    out->num = 0;
    out->n = 0;
    out->s = vd_str_make((const char *)body, n);
    return body + n;
}

/* The view of an object from its header h (read at p). */
static void raw_fill(const uint8_t *p, const raw_hdr *h, vd_reqval *out)
{
    out->node = p;
    out->kind = h->kind;
    out->b = h->b;
    out->num = h->num;
    out->n = 0;
    out->s = VD_STR_NULL;
    switch (h->kind) {
    case VD_RV_STR:
        out->s = vd_str_make((const char *)h->body, h->n);
        /* bin holding UTF-8 is a string (Python bytes, ASGI headers). */
        if (h->bin && !utf8_valid(h->body, h->n))
            out->kind = VD_RV_BADSTR;
        break;
    case VD_RV_ARRAY:
    case VD_RV_MAP:
        out->n = h->n;
        break;
    default:
        break;
    }
}

/* The view of the object at p; an unreadable one (only if the frame was
 * not scanned) is OTHER, which every field refuses. */
static void raw_val(const uint8_t *p, vd_reqval *out)
{
    if (p && raw_fast(p, out))
        return;
    if (p && p < raw.end && p[0] >= 0x80 && p[0] <= 0x9f) {
        /* fixmap / fixarray (params, the request map, slots): what
         * raw_read and raw_fill make of them, without the header. */
        out->node = p;
        out->kind = p[0] <= 0x8f ? VD_RV_MAP : VD_RV_ARRAY;
        out->b = false;
        out->num = 0;
        out->n = p[0] & 0x0fu;
        out->s = VD_STR_NULL;
        return;
    }
    raw_hdr h;
    if (!p || !raw_read(p, &h)) {
        memset(out, 0, sizeof *out);
        out->node = p;
        out->kind = VD_RV_OTHER;
        return;
    }
    raw_fill(p, &h, out);
}

/* The view of the object at p, and the address after it (NULL: unreadable).
 * Containers are skipped. */
static const uint8_t *raw_take(const uint8_t *p, vd_reqval *out)
{
    const uint8_t *q = raw_fast(p, out);
    if (q)
        return q;
    raw_hdr h;
    if (!raw_read(p, &h))
        return NULL;
    raw_fill(p, &h, out);
    if (h.kind == VD_RV_ARRAY || h.kind == VD_RV_MAP)
        return raw_skip(p);
    return h.next;
}

static void raw_at(const void *node, uint32_t i, vd_reqval *out)
{
    const uint8_t *p;
    raw_hdr h;
    if (!raw_read(node, &h) || h.kind != VD_RV_ARRAY || i >= h.n) {
        raw_val(NULL, out);
        return;
    }
    /* The validator walks arrays in order: continue from element i - 1. */
    if (raw.memo_node == node && raw.memo_p && raw.memo_i + 1 == i) {
        p = raw_skip(raw.memo_p);
    } else {
        p = h.body;
        for (uint32_t k = 0; k < i && p; k++)
            p = raw_skip(p);
    }
    raw.memo_node = node;
    raw.memo_i = i;
    raw.memo_p = p;
    raw_val(p, out);
}

/* *it: 0 before the first entry; then the entries still to come in the
 * high 32 bits and the offset of the next key from the map's first byte in
 * the low 32 (never 0: the header comes first; frames are far below 4 GB). */
static bool raw_next(const void *node, uintptr_t *it, vd_reqval *k, vd_reqval *v)
{
    const uint8_t *m = node;
    uint64_t left;
    const uint8_t *kp;
    if (*it == 0) {
        raw_hdr h;
        if (!raw_read(m, &h) || h.kind != VD_RV_MAP)
            return false;
        left = h.n;
        kp = h.body;
    } else {
        left = (uint64_t)*it >> 32;
        kp = m + (uint32_t)*it;
    }
    if (left == 0)
        return false;
    const uint8_t *vp = raw_take(kp, k);
    const uint8_t *np = vp ? raw_take(vp, v) : NULL;
    if (!np) {
        *it = (uintptr_t)1;           /* nothing left, offset 1: ends the walk */
        return false;
    }
    *it = (uintptr_t)((left - 1) << 32 | (uint64_t)(np - m));
    return true;
}

static const vd_reqcodec raw_codec = { raw_at, raw_next };

static void raw_begin(const uint8_t *end)
{
    raw.end = end;
    raw.memo_node = NULL;
    raw.memo_p = NULL;
}

int vd_rpc_read_params_raw(const uint8_t *params, const uint8_t *frame_end, unsigned max_slots,
                           vd_request *req, char *err, size_t cap)
{
    raw_begin(frame_end);
    vd_reqval v;
    raw_val(params, &v);
    return vd_request_read(&raw_codec, &v, max_slots, req, err, cap);
}

/* An integer of any encoding equal to a non-negative value: msgpack-c's
 * POSITIVE_INTEGER (signed encodings of values >= 0 included). */
static bool raw_uint(const uint8_t *p, uint64_t *u, const uint8_t **next)
{
    raw_hdr h;
    if (!raw_read(p, &h) || h.kind != VD_RV_NUM)
        return false;
    uint8_t c = p[0];
    if (c == 0xca || c == 0xcb || c >= 0xe0)
        return false;                                      /* floats, negative fixints */
    if (c <= 0x7f) {
        *u = c;
    } else {
        unsigned k = 1u << ((c - 0xcc) & 3);
        uint64_t v = be(p + 1, k);
        if (c >= 0xd0 && (v >> (8 * k - 1)) & 1u)
            return false;                                  /* negative */
        *u = v;
    }
    *next = h.next;
    return true;
}

/* What clients send: 94 00 <msgid as fixint/uint 8/16/32> a6 "decide" (or
 * a7 "explain") and params; true if the frame starts so. Anything else (or
 * a frame ending there) is left to the general path, which answers it the
 * same either way. */
static bool peek_decide_fast(const uint8_t *frame, size_t len, uint32_t *msgid, bool *explain,
                             const uint8_t **params)
{
    if (len < 10 || frame[0] != 0x94 || frame[1] != 0x00)
        return false;
    const uint8_t *p = frame + 2;
    uint32_t id;
    uint8_t c = *p;
    if (c <= 0x7f) {
        id = c;
        p += 1;
    } else if (c == 0xcc) {
        id = p[1];
        p += 2;
    } else if (c == 0xcd) {
        id = (uint32_t)p[1] << 8 | p[2];
        p += 3;
    } else if (c == 0xce) {
        id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        p += 5;
    } else {
        return false;
    }
    const uint8_t *end = frame + len;
    if (end - p > 7 && p[0] == 0xa6 && memcmp(p + 1, "decide", 6) == 0) {
        *explain = false;
        p += 7;
    } else if (end - p > 8 && p[0] == 0xa7 && memcmp(p + 1, "explain", 7) == 0) {
        *explain = true;
        p += 8;
    } else {
        return false;
    }
    raw_begin(end);
    *msgid = id;
    *params = p;
    return true;
}

bool vd_rpc_peek_decide(const uint8_t *frame, size_t len, uint32_t *msgid, bool *explain,
                        const uint8_t **params)
{
    if (peek_decide_fast(frame, len, msgid, explain, params))
        return true;
    raw_begin(frame + len);
    raw_hdr h;
    if (!raw_read(frame, &h) || h.kind != VD_RV_ARRAY || h.n != 4)
        return false;
    uint64_t type, id;
    const uint8_t *p;
    if (!raw_uint(h.body, &type, &p) || type != 0 || !raw_uint(p, &id, &p) || id > UINT32_MAX)
        return false;
    raw_hdr m;
    if (!raw_read(p, &m) || m.kind != VD_RV_STR)           /* str or bin, as method_is reads it */
        return false;
    if (m.n == 6 && memcmp(m.body, "decide", 6) == 0)
        *explain = false;
    else if (m.n == 7 && memcmp(m.body, "explain", 7) == 0)
        *explain = true;
    else
        return false;
    *msgid = (uint32_t)id;
    *params = m.next;
    return m.next < frame + len;
}

/* ---- emitter ---- */

/* Room for need more bytes (grown as msgpack_sbuffer_write grows it), or
 * NULL once memory ran out: from then on the reply is marked failed and
 * nothing more is written, so the caller sends an error instead. */
static unsigned char *grow(vd_msgpack_out *o, size_t need)
{
    msgpack_sbuffer *sb = o->sb;
    size_t n = sb->alloc ? sb->alloc : MSGPACK_SBUFFER_INIT_SIZE;
    while (n < sb->size + need)
        n *= 2;
    char *p = vd_realloc(sb->data, n);
    if (!p) {
        o->failed = true;
        return NULL;
    }
    sb->data = p;
    sb->alloc = n;
    return (unsigned char *)sb->data + sb->size;
}

static inline unsigned char *room(vd_msgpack_out *o, size_t need)
{
    msgpack_sbuffer *sb = o->sb;
    if (o->failed)
        return NULL;
    if (sb->alloc - sb->size < need)
        return grow(o, need);
    return (unsigned char *)sb->data + sb->size;
}

static size_t put_be(unsigned char *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return bytes;
}

/* A map/array/str header: fix form below fix_max, else the 16/32-bit forms
 * (str also has an 8-bit one). */
static size_t put_len(unsigned char *p, uint32_t n, unsigned char fix, uint32_t fix_max,
                      unsigned char c8, unsigned char c16)
{
    if (n < fix_max) {
        p[0] = (unsigned char)(fix | n);
        return 1;
    }
    if (c8 && n < 256) {
        p[0] = c8;
        p[1] = (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        p[0] = c16;
        return 1 + put_be(p + 1, n, 2);
    }
    p[0] = (unsigned char)(c16 + 1);
    return 1 + put_be(p + 1, n, 4);
}

static void e_map(void *a, uint32_t n)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 5);
    if (!p)
        return;
    if (n < 16) {                  /* fixmap: the usual case, inline */
        p[0] = (unsigned char)(0x80 | n);
        sb->size += 1;
        return;
    }
    sb->size += put_len(p, n, 0x80, 16, 0, 0xde);
}

static void e_array(void *a, uint32_t n)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 5);
    if (p)
        sb->size += put_len(p, n, 0x90, 16, 0, 0xdc);
}

/* Keys and ruleset ids: valid UTF-8 by construction, no check. */
static void e_ascii(void *a, const char *s, size_t n)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 5 + n);
    if (!p)
        return;
    size_t h;
    if (n < 32) {                  /* fixstr: the usual case, inline */
        p[0] = (unsigned char)(0xa0 | n);
        h = 1;
    } else {
        h = put_len(p, (uint32_t)n, 0xa0, 32, 0xd9, 0xda);
    }
    if (n)
        memcpy(p + h, s, n);
    sb->size += h + n;
}

static void e_str(void *a, const char *s, size_t n)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    if (n > UINT32_MAX / 3)
        n = UINT32_MAX / 3;
    /* A str is UTF-8 by the MessagePack spec: echoed client bytes that are
     * not become U+FFFD, as on the edge port, so a strict decoder reads the
     * whole reply. */
    size_t fixed = vd_utf8_fixed_len(s, n);
    unsigned char *p = room(o, 5 + fixed);
    if (!p)
        return;
    size_t h = put_len(p, (uint32_t)fixed, 0xa0, 32, 0xd9, 0xda);
    if (fixed == n) {
        if (n)
            memcpy(p + h, s, n);
    } else {
        vd_utf8_fix((char *)p + h, s, n);
    }
    sb->size += h + fixed;
}

static void e_byte(void *a, unsigned char b)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 1);
    if (p) {
        p[0] = b;
        sb->size++;
    }
}

/* msgpack_pack_int64's choice of the smallest form: a fixint, else the
 * narrowest int (negative) or uint (non-negative) of 1, 2, 4 or 8 bytes. */
static void e_i64(void *a, int64_t v)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 9);
    if (!p)
        return;
    if (v >= -(1LL << 5) && v < (1LL << 7)) {
        p[0] = (unsigned char)(int8_t)v;
        sb->size += 1;
        return;
    }
    unsigned k;   /* 0..3: 1, 2, 4, 8 bytes */
    if (v < 0)
        k = v >= -(1LL << 7) ? 0 : v >= -(1LL << 15) ? 1 : v >= -(1LL << 31) ? 2 : 3;
    else
        k = v < (1LL << 8) ? 0 : v < (1LL << 16) ? 1 : v < (1LL << 32) ? 2 : 3;
    p[0] = (unsigned char)((v < 0 ? 0xd0 : 0xcc) + k);
    sb->size += 1 + put_be(p + 1, (uint64_t)v, 1u << k);
}

static void e_f64(void *a, double v)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    unsigned char *p = room(o, 9);
    if (!p)
        return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    p[0] = 0xcb;
    sb->size += 1 + put_be(p + 1, bits, 8);
}

static void e_bool(void *a, bool v) { e_byte(a, v ? 0xc3 : 0xc2); }
static void e_nil(void *a) { e_byte(a, 0xc0); }

static void e_payload(void *a, const vd_variant *v)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    if (!v->payload_mp_len) {
        e_nil(a);
        return;
    }
    unsigned char *p = room(o, v->payload_mp_len);
    if (p) {
        memcpy(p, v->payload_mp, v->payload_mp_len);
        sb->size += v->payload_mp_len;
    }
}

static bool e_slot_entry(void *a, const vd_variant *v, const vd_str *segment)
{
    vd_msgpack_out *o = a;
    size_t en = v->entry_mp_len, sn = segment ? segment->n : 0;
    if (!en)
        return false;
    unsigned char *p = room(o, en + 5 + sn);
    if (!p)
        return true;               /* failed: the reply is dropped anyway */
    /* The entry, then the segment id (an ASCII id: no check) or nil, in
     * one reservation. */
    memcpy(p, v->entry_mp, en);
    p += en;
    size_t h = 1;
    if (!segment) {
        p[0] = 0xc0;
    } else {
        h = put_len(p, (uint32_t)sn, 0xa0, 32, 0xd9, 0xda);
        if (sn)
            memcpy(p + h, segment->p, sn);
        h += sn;
    }
    o->sb->size += en + h;
    return true;
}

/* Whole pre-encoded slot entries (result.h: entries), one reservation. */
static void e_entries(void *a, const vd_piece *v, unsigned n)
{
    vd_msgpack_out *o = a;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += v[i].n;
    unsigned char *p = room(o, total);
    if (!p)
        return;                    /* failed: the reply is dropped anyway */
    for (unsigned i = 0; i < n; i++) {
        memcpy(p, v[i].p, v[i].n);
        p += v[i].n;
    }
    o->sb->size += total;
}

void vd_msgpack_emitter(vd_msgpack_out *o, vd_emitter *out)
{
    o->failed = false;
    *out = (vd_emitter){ e_map, e_array, e_str, e_i64, e_f64, e_bool, e_nil, e_payload, o, e_ascii,
                         e_slot_entry, e_entries };
}

size_t vd_rpc_reply_head(unsigned char *b, uint32_t msgid)
{
    size_t n = 0;
    b[n++] = 0x94;                 /* [1, msgid, nil, result] */
    b[n++] = 0x01;
    if (msgid < 128) {
        b[n++] = (unsigned char)msgid;
    } else if (msgid < 256) {
        b[n++] = 0xcc;
        b[n++] = (unsigned char)msgid;
    } else if (msgid < 65536) {
        b[n++] = 0xcd;
        n += put_be(b + n, msgid, 2);
    } else {
        b[n++] = 0xce;
        n += put_be(b + n, msgid, 4);
    }
    b[n++] = 0xc0;
    return n;
}

void vd_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_map(pk, 2);
    const char *s[4] = { "code", code, "message", message };
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(s[i]);
        size_t fixed = vd_utf8_fixed_len(s[i], n);
        if (fixed == n) {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, s[i], n);
        } else {
            /* Messages quote client bytes: U+FFFD for what is not UTF-8. */
            char buf[3 * 512];
            if (n > 512)
                n = 512;
            fixed = vd_utf8_fixed_len(s[i], n);
            vd_utf8_fix(buf, s[i], n);
            msgpack_pack_str(pk, fixed);
            msgpack_pack_str_body(pk, buf, fixed);
        }
    }
    msgpack_pack_nil(pk);
}
