#include "net/rpc_codec.h"

#include <math.h>
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

static void e_map(void *a, uint32_t n) { msgpack_pack_map(a, n); }
static void e_array(void *a, uint32_t n) { msgpack_pack_array(a, n); }
static void e_str(void *a, const char *p, size_t n)
{
    msgpack_pack_str(a, n);
    msgpack_pack_str_body(a, p, n);
}
static void e_i64(void *a, int64_t v) { msgpack_pack_int64(a, v); }
static void e_f64(void *a, double v) { msgpack_pack_double(a, v); }
static void e_bool(void *a, bool v)
{
    if (v)
        msgpack_pack_true(a);
    else
        msgpack_pack_false(a);
}
static void e_nil(void *a) { msgpack_pack_nil(a); }
static void e_payload(void *a, const vd_variant *v)
{
    msgpack_packer *pk = a;
    if (v->payload_mp_len)
        pk->callback(pk->data, (const char *)v->payload_mp, v->payload_mp_len);
    else
        msgpack_pack_nil(pk);
}

void vd_msgpack_emitter(msgpack_packer *pk, vd_emitter *out)
{
    *out = (vd_emitter){ e_map, e_array, e_str, e_i64, e_f64, e_bool, e_nil, e_payload, pk };
}

void vd_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_map(pk, 2);
    e_str(pk, "code", 4);
    e_str(pk, code, strlen(code));
    e_str(pk, "message", 7);
    e_str(pk, message, strlen(message));
    msgpack_pack_nil(pk);
}
