#include "net/rpc_codec.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static vd_str obj_str(const msgpack_object *o)
{
    return vd_str_make(o->via.str.ptr, o->via.str.size);
}

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/* Unix seconds within years 0001..9999: anything else is a client error. */
#define TS_MIN (-62135596800LL)
#define TS_MAX 253402300799LL

static int read_number(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            return -1;
        *out = o->via.f64;
        return 0;
    default: return -1;
    }
}

static int read_attrs(const msgpack_object *m, vd_request *req, char *err, size_t cap)
{
    if (m->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (m->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, cap, "attrs must be a map");
        return -1;
    }
    if (m->via.map.size > VD_MAX_ATTRS_PER_REQUEST) {
        snprintf(err, cap, "attrs has %u entries, the limit is %d", m->via.map.size,
                 VD_MAX_ATTRS_PER_REQUEST);
        return -1;
    }
    req->nattrs = 0;   /* a repeated key replaces, never overflows */
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0) {
            snprintf(err, cap, "attrs keys must be non-empty strings");
            return -1;
        }
        vd_kv *kv = &req->attrs[req->nattrs];
        kv->key = obj_str(k);
        switch (v->type) {
        case MSGPACK_OBJECT_NIL:
            continue;                      /* nil = not given */
        case MSGPACK_OBJECT_STR:
            kv->val.kind = VD_VAL_STR;
            kv->val.u.s = obj_str(v);
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            kv->val.kind = VD_VAL_BOOL;
            kv->val.u.b = v->via.boolean;
            break;
        default:
            kv->val.kind = VD_VAL_NUM;
            if (read_number(v, &kv->val.u.num) != 0) {
                snprintf(err, cap, "attrs.%.*s must be a string, number or boolean",
                         (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
                return -1;
            }
        }
        req->nattrs++;
    }
    return 0;
}

int vd_rpc_read_params(const msgpack_object *params, unsigned max_slots, vd_request *req,
                       char *err, size_t cap)
{
    memset(req, 0, offsetof(vd_request, slots));
    req->nslots = 0;
    req->nattrs = 0;
    const msgpack_object *m = params;
    if (m->type == MSGPACK_OBJECT_ARRAY) {
        if (m->via.array.size != 1) {
            snprintf(err, cap, "params must be [ {request map} ]");
            return -1;
        }
        m = &m->via.array.ptr[0];
    }
    if (m->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, cap, "params must be a map or an array holding one map");
        return -1;
    }
    bool have_slots = false;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            snprintf(err, cap, "request keys must be strings");
            return -1;
        }
        vd_str *field = NULL;
        if (key_is(k, "ip")) field = &req->ip;
        else if (key_is(k, "ua")) field = &req->ua;
        else if (key_is(k, "referer")) field = &req->referer;
        else if (key_is(k, "url")) field = &req->url;
        else if (key_is(k, "lang")) field = &req->lang;
        else if (key_is(k, "vid")) field = &req->vid;
        else if (key_is(k, "tz")) field = &req->tz;
        if (field) {
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if (v->type != MSGPACK_OBJECT_STR) {
                snprintf(err, cap, "%.*s must be a string", (int)k->via.str.size, k->via.str.ptr);
                return -1;
            }
            *field = obj_str(v);
        } else if (key_is(k, "slots")) {
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                snprintf(err, cap, "slots must be an array of slot names");
                return -1;
            }
            if (v->via.array.size > max_slots) {
                snprintf(err, cap, "%u slots requested, the limit is %u", v->via.array.size,
                         max_slots);
                return -1;
            }
            req->nslots = 0;   /* a repeated key replaces, never overflows */
            for (uint32_t s = 0; s < v->via.array.size; s++) {
                const msgpack_object *so = &v->via.array.ptr[s];
                if (so->type != MSGPACK_OBJECT_STR || so->via.str.size == 0) {
                    snprintf(err, cap, "slots[%u] must be a non-empty string", s);
                    return -1;
                }
                req->slots[req->nslots++] = obj_str(so);
            }
            have_slots = true;
        } else if (key_is(k, "ts")) {
            double ts;
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if (read_number(v, &ts) != 0 || ts < (double)TS_MIN || ts > (double)TS_MAX) {
                snprintf(err, cap, "ts must be unix seconds between years 1 and 9999");
                return -1;
            }
            req->ts = (int64_t)floor(ts);
            req->has_ts = true;
        } else if (key_is(k, "explain")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN) {
                snprintf(err, cap, "explain must be a boolean");
                return -1;
            }
            req->explain = req->explain || v->via.boolean;
        } else if (key_is(k, "segments")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN) {
                snprintf(err, cap, "segments must be a boolean");
                return -1;
            }
            req->segments = v->via.boolean;
        } else if (key_is(k, "attrs")) {
            if (read_attrs(v, req, err, cap) != 0)
                return -1;
        }
        /* Unknown keys are ignored: newer clients may send more. */
    }
    if (!have_slots) {
        snprintf(err, cap, "slots is required (an array of slot names)");
        return -1;
    }
    return 0;
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
    char *p = realloc(sb->data, n);
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

static void e_str(void *a, const char *s, size_t n)
{
    vd_msgpack_out *o = a;
    msgpack_sbuffer *sb = o->sb;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    unsigned char *p = room(o, 5 + n);
    if (!p)
        return;
    size_t h = put_len(p, (uint32_t)n, 0xa0, 32, 0xd9, 0xda);
    if (n)
        memcpy(p + h, s, n);
    sb->size += h + n;
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

void vd_msgpack_emitter(vd_msgpack_out *o, vd_emitter *out)
{
    o->failed = false;
    *out = (vd_emitter){ e_map, e_array, e_str, e_i64, e_f64, e_bool, e_nil, e_payload, o };
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
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, s[i], n);
    }
    msgpack_pack_nil(pk);
}
