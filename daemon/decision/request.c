/* request.c — validates the request map (see the header). */
#include "decision/request.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "variantd/limits.h"

static bool key_is(const vd_reqval *k, const char *name)
{
    size_t n = strlen(name);
    return k->s.n == n && memcmp(k->s.p, name, n) == 0;
}

/* PHP's empty array is a list: [] stands for {}. */
static bool empty_list(const vd_reqval *v)
{
    return v->kind == VD_RV_ARRAY && v->n == 0;
}

/* A PHP list index: a non-negative integer, or its decimal string (JSON). */
static bool list_index(const vd_reqval *k)
{
    if (k->kind == VD_RV_NUM)
        return k->num >= 0 && k->num == floor(k->num);
    if (k->kind != VD_RV_STR || k->s.n == 0 || k->s.n > 10)
        return false;
    for (size_t i = 0; i < k->s.n; i++)
        if (k->s.p[i] < '0' || k->s.p[i] > '9')
            return false;
    return true;
}

static int read_attrs(const vd_reqcodec *c, const vd_reqval *m, vd_request *req, char *err,
                      size_t cap)
{
    if (m->kind == VD_RV_NIL || empty_list(m)) {
        req->nattrs = 0;
        return 0;
    }
    if (m->kind != VD_RV_MAP) {
        snprintf(err, cap, "attrs must be a map");
        return -1;
    }
    if (m->n > VD_MAX_ATTRS_PER_REQUEST) {
        snprintf(err, cap, "attrs has %u entries, the limit is %d", m->n, VD_MAX_ATTRS_PER_REQUEST);
        return -1;
    }
    req->nattrs = 0;   /* a repeated key replaces, never overflows */
    uintptr_t it = 0;
    vd_reqval k, v;
    while (req->nattrs < VD_MAX_ATTRS_PER_REQUEST && c->next(m->node, &it, &k, &v)) {
        if (k.kind != VD_RV_STR || k.s.n == 0) {
            snprintf(err, cap, k.kind == VD_RV_BADSTR ? "attrs keys must be non-empty strings (UTF-8)"
                                                      : "attrs keys must be non-empty strings");
            return -1;
        }
        vd_kv *kv = &req->attrs[req->nattrs];
        kv->key = k.s;
        switch (v.kind) {
        case VD_RV_NIL:
            continue;                      /* nil = not given */
        case VD_RV_STR:
            kv->val.kind = VD_VAL_STR;
            kv->val.u.s = v.s;
            break;
        case VD_RV_BOOL:
            kv->val.kind = VD_VAL_BOOL;
            kv->val.u.b = v.b;
            break;
        case VD_RV_NUM:
            kv->val.kind = VD_VAL_NUM;
            kv->val.u.num = v.num;
            break;
        case VD_RV_BADSTR:
            snprintf(err, cap, "attrs.%.*s is binary that is not UTF-8",
                     (int)(k.s.n > 64 ? 64 : k.s.n), k.s.p);
            return -1;
        default:
            snprintf(err, cap, "attrs.%.*s must be a string, number or boolean",
                     (int)(k.s.n > 64 ? 64 : k.s.n), k.s.p);
            return -1;
        }
        req->nattrs++;
    }
    return 0;
}

/* hints: {"sec-ch-ua": "...", "sec-ch-ua-mobile": "?1", ...}: the Client
 * Hint headers by their lower-case names, as received; other names are
 * ignored (browsers have more hints than the device needs). */
static int read_hints(const vd_reqcodec *c, const vd_reqval *m, vd_request *req, char *err,
                      size_t cap)
{
    if (m->kind == VD_RV_NIL || empty_list(m))
        return 0;
    if (m->kind != VD_RV_MAP) {
        snprintf(err, cap, "hints must be a map of Client Hint headers");
        return -1;
    }
    uintptr_t it = 0;
    vd_reqval k, v;
    while (c->next(m->node, &it, &k, &v)) {
        if (k.kind != VD_RV_STR) {
            snprintf(err, cap, "hints keys must be strings");
            return -1;
        }
        vd_str *field = NULL;
        if (key_is(&k, "sec-ch-ua")) field = &req->hints.ua;
        else if (key_is(&k, "sec-ch-ua-mobile")) field = &req->hints.mobile;
        else if (key_is(&k, "sec-ch-ua-platform")) field = &req->hints.platform;
        else if (key_is(&k, "sec-ch-ua-model")) field = &req->hints.model;
        if (!field || v.kind == VD_RV_NIL)
            continue;
        if (v.kind != VD_RV_STR) {
            snprintf(err, cap, v.kind == VD_RV_BADSTR ? "hints.%.*s is binary that is not UTF-8"
                                                      : "hints.%.*s must be a string",
                     (int)k.s.n, k.s.p);
            return -1;
        }
        *field = v.s;
    }
    return 0;
}

static int read_slot(const vd_reqval *so, uint32_t s, vd_request *req, char *err, size_t cap)
{
    if (so->kind != VD_RV_STR || so->s.n == 0) {
        snprintf(err, cap, so->kind == VD_RV_BADSTR ? "slots[%u] is binary that is not UTF-8"
                                                    : "slots[%u] must be a non-empty string", s);
        return -1;
    }
    req->slots[req->nslots++] = so->s;
    return 0;
}

static int read_slots(const vd_reqcodec *c, const vd_reqval *v, unsigned max_slots,
                      vd_request *req, char *err, size_t cap)
{
    if (v->kind != VD_RV_ARRAY && v->kind != VD_RV_MAP) {
        snprintf(err, cap, "slots must be an array of slot names");
        return -1;
    }
    if (v->n > max_slots) {
        snprintf(err, cap, "%u slots requested, the limit is %u", v->n, max_slots);
        return -1;
    }
    req->nslots = 0;   /* a repeated key replaces, never overflows */
    if (v->kind == VD_RV_MAP) {
        /* A PHP list with gaps (after unset or array_filter). */
        uintptr_t it = 0;
        vd_reqval k, so;
        for (uint32_t s = 0; req->nslots < max_slots && c->next(v->node, &it, &k, &so); s++) {
            if (!list_index(&k)) {
                snprintf(err, cap, "slots must be an array of slot names (a map only with "
                                   "integer keys, as a PHP list with gaps)");
                return -1;
            }
            if (read_slot(&so, s, req, err, cap) != 0)
                return -1;
        }
        return 0;
    }
    for (uint32_t s = 0; s < v->n; s++) {
        vd_reqval so;
        c->at(v->node, s, &so);
        if (read_slot(&so, s, req, err, cap) != 0)
            return -1;
    }
    return 0;
}

/* The request map's keys, told apart by length and then bytes (one switch
 * instead of a chain of up to fifteen comparisons per key). */
enum req_key {
    RK_OTHER, RK_IP, RK_UA, RK_REFERER, RK_URL, RK_LANG, RK_VID, RK_TZ, RK_UID, RK_CONSENT,
    RK_SLOTS, RK_TS, RK_EXPLAIN, RK_SEGMENTS, RK_ATTRS, RK_HINTS,
};

static enum req_key req_key_of(vd_str k)
{
    const char *p = k.p;
    switch (k.n) {
    case 2:
        if (p[0] == 'i' && p[1] == 'p') return RK_IP;
        if (p[0] == 'u' && p[1] == 'a') return RK_UA;
        if (p[0] == 't' && p[1] == 'z') return RK_TZ;
        if (p[0] == 't' && p[1] == 's') return RK_TS;
        return RK_OTHER;
    case 3:
        if (memcmp(p, "url", 3) == 0) return RK_URL;
        if (memcmp(p, "vid", 3) == 0) return RK_VID;
        if (memcmp(p, "uid", 3) == 0) return RK_UID;
        return RK_OTHER;
    case 4:
        return memcmp(p, "lang", 4) == 0 ? RK_LANG : RK_OTHER;
    case 5:
        if (memcmp(p, "slots", 5) == 0) return RK_SLOTS;
        if (memcmp(p, "attrs", 5) == 0) return RK_ATTRS;
        if (memcmp(p, "hints", 5) == 0) return RK_HINTS;
        return RK_OTHER;
    case 7:
        if (memcmp(p, "referer", 7) == 0) return RK_REFERER;
        if (memcmp(p, "explain", 7) == 0) return RK_EXPLAIN;
        if (memcmp(p, "consent", 7) == 0) return RK_CONSENT;
        return RK_OTHER;
    case 8:
        return memcmp(p, "segments", 8) == 0 ? RK_SEGMENTS : RK_OTHER;
    default:
        return RK_OTHER;
    }
}

int vd_request_read(const vd_reqcodec *c, const vd_reqval *params, unsigned max_slots,
                    vd_request *req, char *err, size_t cap)
{
    memset(req, 0, offsetof(vd_request, slots));
    req->nslots = 0;
    req->nattrs = 0;
    vd_reqval m = *params;
    if (m.kind == VD_RV_ARRAY && m.n > 0) {
        if (m.n != 1) {
            snprintf(err, cap, "params must be [ {request map} ]");
            return -1;
        }
        vd_reqval first;
        c->at(m.node, 0, &first);
        m = first;
    }
    /* PHP's [] and [[]]: an empty request map (refused below for its
     * missing slots). */
    bool empty = empty_list(&m);
    if (m.kind != VD_RV_MAP && !empty) {
        snprintf(err, cap, "params must be a map or an array holding one map");
        return -1;
    }
    bool have_slots = false;
    uintptr_t it = 0;
    vd_reqval k, v;
    while (!empty && c->next(m.node, &it, &k, &v)) {
        if (k.kind != VD_RV_STR) {
            snprintf(err, cap, k.kind == VD_RV_BADSTR ? "request keys must be strings (UTF-8)"
                                                      : "request keys must be strings");
            return -1;
        }
        vd_str *field = NULL;
        enum req_key key = req_key_of(k.s);
        switch (key) {
        case RK_IP: field = &req->ip; break;
        case RK_UA: field = &req->ua; break;
        case RK_REFERER: field = &req->referer; break;
        case RK_URL: field = &req->url; break;
        case RK_LANG: field = &req->lang; break;
        case RK_VID: field = &req->vid; break;
        case RK_TZ: field = &req->tz; break;
        case RK_UID: field = &req->uid; break;
        case RK_CONSENT: field = &req->consent; break;
        default: break;
        }
        if (field) {
            if (v.kind == VD_RV_NIL)
                continue;
            if (v.kind != VD_RV_STR) {
                snprintf(err, cap, v.kind == VD_RV_BADSTR ? "%.*s is binary that is not UTF-8"
                                                          : "%.*s must be a string",
                         (int)k.s.n, k.s.p);
                return -1;
            }
            *field = v.s;
        } else if (key == RK_SLOTS) {
            if (read_slots(c, &v, max_slots, req, err, cap) != 0)
                return -1;
            have_slots = true;
        } else if (key == RK_TS) {
            if (v.kind == VD_RV_NIL)
                continue;
            if (v.kind != VD_RV_NUM || v.num < (double)VD_REQUEST_TS_MIN ||
                v.num > (double)VD_REQUEST_TS_MAX) {
                snprintf(err, cap, "ts must be unix seconds between years 1 and 9999");
                return -1;
            }
            req->ts = (int64_t)floor(v.num);
            req->has_ts = true;
        } else if (key == RK_EXPLAIN) {
            if (v.kind != VD_RV_BOOL) {
                snprintf(err, cap, "explain must be a boolean");
                return -1;
            }
            req->explain = req->explain || v.b;
        } else if (key == RK_SEGMENTS) {
            if (v.kind != VD_RV_BOOL) {
                snprintf(err, cap, "segments must be a boolean");
                return -1;
            }
            req->segments = v.b;
        } else if (key == RK_ATTRS) {
            if (read_attrs(c, &v, req, err, cap) != 0)
                return -1;
        } else if (key == RK_HINTS) {
            if (read_hints(c, &v, req, err, cap) != 0)
                return -1;
        }
        /* Unknown keys are ignored: newer clients may send more. */
    }
    if (!have_slots) {
        snprintf(err, cap, "slots is required (an array of slot names)");
        return -1;
    }
    return vd_request_check_ids(req, err, cap);
}

bool vd_profile_name_ok(vd_str s)
{
    if (s.n == 0 || s.n > 128)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

int vd_profile_params_read(const vd_reqcodec *c, const vd_reqval *params, vd_profile_params *p,
                           char *err, size_t cap)
{
    memset(p, 0, sizeof *p);
    vd_reqval m = *params;
    if (m.kind == VD_RV_ARRAY && m.n == 1)
        c->at(m.node, 0, &m);
    if (m.kind != VD_RV_MAP) {
        snprintf(err, cap, "params must be a map or an array holding one map");
        return -1;
    }
    uintptr_t it = 0;
    vd_reqval k, v;
    while (c->next(m.node, &it, &k, &v)) {
        if (k.kind != VD_RV_STR) {
            snprintf(err, cap, "request keys must be strings");
            return -1;
        }
        if (v.kind == VD_RV_NIL)
            continue;
        vd_str *field = NULL;
        if (key_is(&k, "vid")) field = &p->ids.vid;
        else if (key_is(&k, "uid")) field = &p->ids.uid;
        else if (key_is(&k, "event")) field = &p->event;
        else if (key_is(&k, "category")) field = &p->category;
        else if (key_is(&k, "consent")) field = &p->consent;
        else if (key_is(&k, "flag")) field = &p->flag;
        if (field) {
            if (v.kind != VD_RV_STR) {
                snprintf(err, cap, "%.*s must be a string", (int)k.s.n, k.s.p);
                return -1;
            }
            *field = v.s;
        } else if (key_is(&k, "ts") || key_is(&k, "ttl") || key_is(&k, "value")) {
            if (v.kind != VD_RV_NUM) {
                snprintf(err, cap, "%.*s must be a number", (int)k.s.n, k.s.p);
                return -1;
            }
            double d = v.num;
            if (key_is(&k, "value")) {
                p->value = d;
                p->has_value = true;
            } else if (key_is(&k, "ts")) {
                if (d < (double)VD_REQUEST_TS_MIN || d > (double)VD_REQUEST_TS_MAX) {
                    snprintf(err, cap, "ts must be unix seconds between years 1 and 9999");
                    return -1;
                }
                p->ts = (int64_t)floor(d);
                p->has_ts = true;
            } else {
                if (d <= 0 || d > 10.0 * 365 * 86400) {
                    snprintf(err, cap, "ttl must be seconds > 0 (at most ten years)");
                    return -1;
                }
                p->ttl = (int64_t)ceil(d);
                p->has_ttl = true;
            }
        } else if (key_is(&k, "clear")) {
            if (v.kind != VD_RV_BOOL) {
                snprintf(err, cap, "clear must be a boolean");
                return -1;
            }
            p->clear = v.b;
        }
    }
    vd_consent cs;
    if (p->consent.n && !vd_consent_parse(p->consent, &cs)) {
        snprintf(err, cap, "consent must be \"none\" or \"personalization\"");
        return -1;
    }
    if (p->ids.vid.n > VD_MAX_VISITOR_ID_LEN || p->ids.uid.n > VD_MAX_VISITOR_ID_LEN) {
        snprintf(err, cap, "vid and uid must be at most %d bytes", VD_MAX_VISITOR_ID_LEN);
        return -1;
    }
    if (!p->ids.vid.n && !p->ids.uid.n) {
        snprintf(err, cap, "vid or uid is required");
        return -1;
    }
    if (p->category.n > 128) {
        snprintf(err, cap, "category must be at most 128 bytes");
        return -1;
    }
    return 0;
}

int vd_profile_params_check(vd_profile_method m, const vd_profile_params *p, int64_t now,
                            char *err, size_t cap)
{
    if (m == VD_PM_TRACK && !vd_profile_name_ok(p->event)) {
        snprintf(err, cap, "event is required: 1 to 128 characters of [A-Za-z0-9._:-]");
        return -1;
    }
    if (m == VD_PM_TRACK && p->has_ts && p->ts > now + VD_MAX_EVENT_FUTURE_S) {
        snprintf(err, cap, "ts is more than %d s in the future", VD_MAX_EVENT_FUTURE_S);
        return -1;
    }
    if (m == VD_PM_FLAG && !vd_profile_name_ok(p->flag)) {
        snprintf(err, cap, "flag is required: 1 to 128 characters of [A-Za-z0-9._:-]");
        return -1;
    }
    return 0;
}
