/* value.h — a typed attribute value, as the context hands it to the rules. */
#ifndef VD_CORE_VALUE_H
#define VD_CORE_VALUE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/str.h"

typedef enum vd_value_kind {
    VD_VAL_MISSING = 0,
    VD_VAL_STR,      /* s: not NUL-terminated, valid for the request */
    VD_VAL_NUM,      /* num: hours, minutes, days since 1970-01-01, unix seconds */
    VD_VAL_BOOL,
    VD_VAL_LOC,      /* lat/lon in degrees */
    VD_VAL_IP,
} vd_value_kind;

typedef struct vd_ipaddr {
    uint8_t family;           /* 4 or 6; 0 = none */
    uint8_t addr[16];         /* IPv4 in addr[0..3]; v4-mapped IPv6 is stored as IPv4 */
} vd_ipaddr;

typedef struct vd_value {
    vd_value_kind kind;
    union {
        vd_str s;
        double num;
        bool b;
        struct { double lat, lon; } loc;
        vd_ipaddr ip;
    } u;
} vd_value;

/* A 64-bit digest of a value, its kind included (cache keys: equal values
 * give equal digests; strings compared without case, as the rules do). */
static inline uint64_t vd_value_digest(const vd_value *v)
{
    switch (v->kind) {
    case VD_VAL_STR:
        return vd_mix64(vd_hash64_ci(v->u.s.p, v->u.s.n) ^ 1);
    case VD_VAL_NUM: {
        uint64_t b;
        memcpy(&b, &v->u.num, sizeof b);
        return vd_mix64(b ^ 2);
    }
    case VD_VAL_BOOL:
        return vd_mix64((uint64_t)v->u.b + 3);
    case VD_VAL_LOC:
        return vd_mix64(vd_hash64(&v->u.loc, sizeof v->u.loc) ^ 4);
    case VD_VAL_IP:
        return vd_mix64(vd_hash64(&v->u.ip, sizeof v->u.ip) ^ 5);
    default:
        return 0x6d697373696e67ULL;   /* missing */
    }
}

#endif
