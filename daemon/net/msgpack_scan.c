/* msgpack_scan.c — structural pre-scan of MessagePack frames (see the header).
 *
 * Invariant between items: pos + pending <= max_bytes, where pending is the
 * number of items still owed (every item takes at least one byte). So the
 * "budget" max_bytes - pos - pending is the slack left for bytes beyond that
 * one-per-item minimum, and any header that needs more than the slack can never
 * complete within the limit: TOO_LARGE at once, before its bytes arrive. All
 * sums are done in uint64_t on values bounded by 2^33, so nothing overflows. */
#include "net/msgpack_scan.h"

enum item_kind { K_INVALID, K_SCALAR, K_BYTES, K_ARRAY, K_MAP };

typedef struct item_type {
    enum item_kind kind;
    unsigned lenk;       /* bytes of the big-endian length/count field after the type byte */
    unsigned extra;      /* bytes between that field and the payload (ext type byte) */
    uint32_t inline_n;   /* payload length / count when lenk == 0 */
} item_type;

static item_type classify(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0) return (item_type){ K_SCALAR, 0, 0, 0 };   /* fixint */
    if (b <= 0x8f) return (item_type){ K_MAP, 0, 0, b & 0x0fu };
    if (b <= 0x9f) return (item_type){ K_ARRAY, 0, 0, b & 0x0fu };
    if (b <= 0xbf) return (item_type){ K_BYTES, 0, 0, b & 0x1fu };           /* fixstr */
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return (item_type){ K_SCALAR, 0, 0, 0 };
    case 0xc4: return (item_type){ K_BYTES, 1, 0, 0 };                      /* bin 8/16/32 */
    case 0xc5: return (item_type){ K_BYTES, 2, 0, 0 };
    case 0xc6: return (item_type){ K_BYTES, 4, 0, 0 };
    case 0xc7: return (item_type){ K_BYTES, 1, 1, 0 };                      /* ext 8/16/32 */
    case 0xc8: return (item_type){ K_BYTES, 2, 1, 0 };
    case 0xc9: return (item_type){ K_BYTES, 4, 1, 0 };
    case 0xca: return (item_type){ K_SCALAR, 0, 0, 4 };                     /* float 32/64 */
    case 0xcb: return (item_type){ K_SCALAR, 0, 0, 8 };
    case 0xcc: case 0xd0: return (item_type){ K_SCALAR, 0, 0, 1 };          /* (u)int 8..64 */
    case 0xcd: case 0xd1: return (item_type){ K_SCALAR, 0, 0, 2 };
    case 0xce: case 0xd2: return (item_type){ K_SCALAR, 0, 0, 4 };
    case 0xcf: case 0xd3: return (item_type){ K_SCALAR, 0, 0, 8 };
    case 0xd4: return (item_type){ K_SCALAR, 0, 1, 1 };                     /* fixext 1..16 */
    case 0xd5: return (item_type){ K_SCALAR, 0, 1, 2 };
    case 0xd6: return (item_type){ K_SCALAR, 0, 1, 4 };
    case 0xd7: return (item_type){ K_SCALAR, 0, 1, 8 };
    case 0xd8: return (item_type){ K_SCALAR, 0, 1, 16 };
    case 0xd9: return (item_type){ K_BYTES, 1, 0, 0 };                      /* str 8/16/32 */
    case 0xda: return (item_type){ K_BYTES, 2, 0, 0 };
    case 0xdb: return (item_type){ K_BYTES, 4, 0, 0 };
    case 0xdc: return (item_type){ K_ARRAY, 2, 0, 0 };
    case 0xdd: return (item_type){ K_ARRAY, 4, 0, 0 };
    case 0xde: return (item_type){ K_MAP, 2, 0, 0 };
    case 0xdf: return (item_type){ K_MAP, 4, 0, 0 };
    default:   return (item_type){ K_INVALID, 0, 0, 0 };                    /* 0xc1 */
    }
}

static uint64_t read_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

void vd_msgpack_scan_reset(vd_scan_state *st)
{
    st->pos = 0;
    st->pending = 1;
    st->sp = 1;
    st->stack[0] = 1;
}

vd_scan_result vd_msgpack_scan_resume(vd_scan_state *st, const uint8_t *buf, size_t len,
                                      const vd_scan_limits *lim, size_t *frame_len)
{
    unsigned max_depth = lim->max_depth < VD_SCAN_MAX_DEPTH ? lim->max_depth : VD_SCAN_MAX_DEPTH;
    uint64_t max = lim->max_bytes;

    *frame_len = 0;
    if (st->sp == 0 || st->sp > VD_SCAN_MAX_DEPTH + 1)
        vd_msgpack_scan_reset(st);   /* a zeroed (or nonsense) state starts a frame */

    /* The state in locals: the frame's bytes are uint8_t, which may alias
     * anything, so through st every field would be reloaded after each
     * byte read (twice the instructions per item). Written back on return. */
    size_t pos = st->pos;
    uint64_t pending = st->pending;
    unsigned sp = st->sp;
    uint64_t *stack = st->stack;
    vd_scan_result r = VD_SCAN_OK;

    while (sp > 0) {
        /* Guards the invariant even if the caller changed the limits between calls. */
        if ((uint64_t)pos > max || pending > max - pos) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        uint64_t budget = max - pos - pending;
        if (pos >= len) {
            r = VD_SCAN_NEED_MORE;
            break;
        }

        const uint8_t *p = buf + pos;
        size_t avail = len - pos;
        item_type t = classify(p[0]);
        if (t.kind == K_INVALID) {
            r = VD_SCAN_INVALID;
            break;
        }
        if ((t.kind == K_ARRAY || t.kind == K_MAP) && sp > max_depth) {
            r = VD_SCAN_TOO_DEEP;     /* the new container would be at depth sp */
            break;
        }

        uint64_t hdr = 1u + t.lenk + t.extra;
        if (hdr - 1 > budget) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        if (avail < 1u + t.lenk) {
            r = VD_SCAN_NEED_MORE;
            break;
        }
        uint64_t n = t.lenk ? read_be(p + 1, t.lenk) : t.inline_n;

        uint64_t total, items = 0;       /* this item's bytes, and the items it opens */
        if (t.kind == K_ARRAY || t.kind == K_MAP) {
            total = hdr;
            items = t.kind == K_MAP ? 2 * n : n;
        } else {
            total = hdr + n;
        }
        if (total - 1 > budget || items > budget - (total - 1)) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        if (avail < total) {
            r = VD_SCAN_NEED_MORE;
            break;
        }

        pos += (size_t)total;            /* total <= budget + 1 <= max, fits size_t */
        pending -= 1;
        stack[sp - 1] -= 1;
        if (items > 0) {
            stack[sp++] = items;          /* sp <= max_depth here, so sp+1 fits */
            pending += items;
        } else {
            while (sp > 0 && stack[sp - 1] == 0)
                sp--;
        }
    }
    st->pos = pos;
    st->pending = pending;
    st->sp = sp;
    if (r == VD_SCAN_OK)
        *frame_len = pos;
    return r;
}

vd_scan_result vd_msgpack_scan(const uint8_t *buf, size_t len, const vd_scan_limits *lim,
                               size_t *frame_len)
{
    vd_scan_state st;
    vd_msgpack_scan_reset(&st);
    return vd_msgpack_scan_resume(&st, buf, len, lim, frame_len);
}

const char *vd_scan_result_name(vd_scan_result r)
{
    switch (r) {
    case VD_SCAN_OK:        return "ok";
    case VD_SCAN_NEED_MORE: return "need_more";
    case VD_SCAN_TOO_LARGE: return "too_large";
    case VD_SCAN_TOO_DEEP:  return "too_deep";
    case VD_SCAN_INVALID:   return "invalid";
    }
    return "unknown";
}

/* Reads one integer of any encoding at *pos; false if it is not an integer or
 * is cut off. A negative value only sets *neg (with *u = 0): callers need no
 * more than "is it 0" and "does it fit uint32". */
static bool peek_int(const uint8_t *buf, size_t len, size_t *pos, bool *neg, uint64_t *u)
{
    if (*pos >= len)
        return false;
    uint8_t b = buf[*pos];
    size_t avail = len - *pos;
    *neg = false;
    if (b <= 0x7f) { *u = b; *pos += 1; return true; }
    if (b >= 0xe0) { *neg = true; *u = 0; *pos += 1; return true; }
    unsigned n;
    bool is_signed;
    switch (b) {
    case 0xcc: n = 1; is_signed = false; break;
    case 0xcd: n = 2; is_signed = false; break;
    case 0xce: n = 4; is_signed = false; break;
    case 0xcf: n = 8; is_signed = false; break;
    case 0xd0: n = 1; is_signed = true; break;
    case 0xd1: n = 2; is_signed = true; break;
    case 0xd2: n = 4; is_signed = true; break;
    case 0xd3: n = 8; is_signed = true; break;
    default: return false;
    }
    if (avail < 1u + n)
        return false;
    uint64_t v = read_be(buf + *pos + 1, n);
    *pos += 1u + n;
    if (is_signed && (v >> (8 * n - 1)) & 1u) {   /* sign bit of the n-byte field */
        *neg = true;
        *u = 0;
        return true;
    }
    *u = v;
    return true;
}

bool vd_msgpack_peek_msgid(const uint8_t *buf, size_t len, uint32_t *msgid)
{
    if (len == 0)
        return false;
    size_t pos;
    uint64_t count;
    uint8_t b = buf[0];
    if (b >= 0x90 && b <= 0x9f) {
        count = b & 0x0fu;
        pos = 1;
    } else if (b == 0xdc || b == 0xdd) {
        unsigned k = b == 0xdc ? 2 : 4;
        if (len < 1u + k)
            return false;
        count = read_be(buf + 1, k);
        pos = 1u + k;
    } else {
        return false;
    }
    if (count < 2)
        return false;

    bool neg;
    uint64_t v;
    if (!peek_int(buf, len, &pos, &neg, &v) || neg || v != 0)
        return false;
    if (!peek_int(buf, len, &pos, &neg, &v) || neg || v > UINT32_MAX)
        return false;
    *msgid = (uint32_t)v;
    return true;
}
