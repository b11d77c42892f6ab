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
    if (p)
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
    size_t h = put_len(p, (uint32_t)n, 0xa0, 32, 0xd9, 0xda);
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
    msgpack_sbuffer *sb = o->sb;
    if (!v->entry_mp_len)
        return false;
    unsigned char *p = room(o, v->entry_mp_len + 5 + (segment ? segment->n : 0));
    if (!p)
        return true;               /* failed: the reply is dropped anyway */
    memcpy(p, v->entry_mp, v->entry_mp_len);
    sb->size += v->entry_mp_len;
    if (segment)
        e_ascii(a, segment->p ? segment->p : "", segment->n);
    else
        e_nil(a);
    return true;
}

void vd_msgpack_emitter(vd_msgpack_out *o, vd_emitter *out)
{
    o->failed = false;
    *out = (vd_emitter){ e_map, e_array, e_str, e_i64, e_f64, e_bool, e_nil, e_payload, o, e_ascii,
                         e_slot_entry };
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
