/* msgpack_scan.c — structural pre-scan of MessagePack frames (see the header).
 *
 * Invariant between items: pos + pending <= max_bytes, where pending is the
 * number of items still owed (every item takes at least one byte). So the
 * "budget" max_bytes - pos - pending is the slack left for bytes beyond that
 * one-per-item minimum, and any header that needs more than the slack can never
 * complete within the limit: TOO_LARGE at once, before its bytes arrive. All
 * sums are done in uint64_t on values bounded by 2^33, so nothing overflows. */
#include "net/msgpack_scan.h"

/* What the type byte alone says about an item, one table load instead of a
 * chain of range tests and a switch (the scan's cost is per item):
 * OP_FIXED   a scalar or fixstr whose whole size, type byte included, is n;
 * OP_VAR     str/bin/ext 8/16/32: a lenk-byte big-endian length, then extra
 *            bytes (the ext type), then the payload;
 * OP_ARRAY, OP_MAP  n items/pairs inline (fix*) when lenk == 0, else a
 *            lenk-byte count;
 * OP_INVALID the never-used 0xc1.
 * tests/unit/test_msgpack_scan.c compares the scan, every type byte and
 * random frames, with the earlier switch-based scanner. */
enum { OP_INVALID, OP_FIXED, OP_VAR, OP_ARRAY, OP_MAP };

typedef struct scan_op {
    uint8_t kind, lenk, extra, n;
} scan_op;

static const scan_op ops[256] = {
    /* 00 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 04 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 08 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 0c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 10 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 14 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 18 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 1c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 20 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 24 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 28 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 2c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 30 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 34 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 38 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 3c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 40 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 44 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 48 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 4c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 50 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 54 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 58 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 5c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 60 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 64 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 68 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 6c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 70 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 74 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 78 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 7c */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* 80 */ {OP_MAP,0,0, 0}, {OP_MAP,0,0, 1}, {OP_MAP,0,0, 2}, {OP_MAP,0,0, 3},
    /* 84 */ {OP_MAP,0,0, 4}, {OP_MAP,0,0, 5}, {OP_MAP,0,0, 6}, {OP_MAP,0,0, 7},
    /* 88 */ {OP_MAP,0,0, 8}, {OP_MAP,0,0, 9}, {OP_MAP,0,0,10}, {OP_MAP,0,0,11},
    /* 8c */ {OP_MAP,0,0,12}, {OP_MAP,0,0,13}, {OP_MAP,0,0,14}, {OP_MAP,0,0,15},
    /* 90 */ {OP_ARRAY,0,0, 0}, {OP_ARRAY,0,0, 1}, {OP_ARRAY,0,0, 2}, {OP_ARRAY,0,0, 3},
    /* 94 */ {OP_ARRAY,0,0, 4}, {OP_ARRAY,0,0, 5}, {OP_ARRAY,0,0, 6}, {OP_ARRAY,0,0, 7},
    /* 98 */ {OP_ARRAY,0,0, 8}, {OP_ARRAY,0,0, 9}, {OP_ARRAY,0,0,10}, {OP_ARRAY,0,0,11},
    /* 9c */ {OP_ARRAY,0,0,12}, {OP_ARRAY,0,0,13}, {OP_ARRAY,0,0,14}, {OP_ARRAY,0,0,15},
    /* a0 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 2}, {OP_FIXED,0,0, 3}, {OP_FIXED,0,0, 4},
    /* a4 */ {OP_FIXED,0,0, 5}, {OP_FIXED,0,0, 6}, {OP_FIXED,0,0, 7}, {OP_FIXED,0,0, 8},
    /* a8 */ {OP_FIXED,0,0, 9}, {OP_FIXED,0,0,10}, {OP_FIXED,0,0,11}, {OP_FIXED,0,0,12},
    /* ac */ {OP_FIXED,0,0,13}, {OP_FIXED,0,0,14}, {OP_FIXED,0,0,15}, {OP_FIXED,0,0,16},
    /* b0 */ {OP_FIXED,0,0,17}, {OP_FIXED,0,0,18}, {OP_FIXED,0,0,19}, {OP_FIXED,0,0,20},
    /* b4 */ {OP_FIXED,0,0,21}, {OP_FIXED,0,0,22}, {OP_FIXED,0,0,23}, {OP_FIXED,0,0,24},
    /* b8 */ {OP_FIXED,0,0,25}, {OP_FIXED,0,0,26}, {OP_FIXED,0,0,27}, {OP_FIXED,0,0,28},
    /* bc */ {OP_FIXED,0,0,29}, {OP_FIXED,0,0,30}, {OP_FIXED,0,0,31}, {OP_FIXED,0,0,32},
    /* c0 */ {OP_FIXED,0,0, 1}, {OP_INVALID,0,0, 0}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* c4 */ {OP_VAR,1,0, 0}, {OP_VAR,2,0, 0}, {OP_VAR,4,0, 0}, {OP_VAR,1,1, 0},
    /* c8 */ {OP_VAR,2,1, 0}, {OP_VAR,4,1, 0}, {OP_FIXED,0,0, 5}, {OP_FIXED,0,0, 9},
    /* cc */ {OP_FIXED,0,0, 2}, {OP_FIXED,0,0, 3}, {OP_FIXED,0,0, 5}, {OP_FIXED,0,0, 9},
    /* d0 */ {OP_FIXED,0,0, 2}, {OP_FIXED,0,0, 3}, {OP_FIXED,0,0, 5}, {OP_FIXED,0,0, 9},
    /* d4 */ {OP_FIXED,0,1, 3}, {OP_FIXED,0,1, 4}, {OP_FIXED,0,1, 6}, {OP_FIXED,0,1,10},
    /* d8 */ {OP_FIXED,0,1,18}, {OP_VAR,1,0, 0}, {OP_VAR,2,0, 0}, {OP_VAR,4,0, 0},
    /* dc */ {OP_ARRAY,2,0, 0}, {OP_ARRAY,4,0, 0}, {OP_MAP,2,0, 0}, {OP_MAP,4,0, 0},
    /* e0 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* e4 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* e8 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* ec */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* f0 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* f4 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* f8 */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
    /* fc */ {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1}, {OP_FIXED,0,0, 1},
};

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

static uint64_t read_len(const uint8_t *p, unsigned n)
{
    switch (n) {
    case 1: return p[0];
    case 2: return (uint64_t)p[0] << 8 | p[1];
    default: return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    }
}

/* The frame at buf[0], if it is whole within len bytes, nests no deeper
 * than max_depth and holds no 0xc1: its length. 0 otherwise (a frame is
 * never 0 bytes), and the caller runs the full scan, which says which of
 * NEED_MORE, TOO_LARGE, TOO_DEEP or INVALID it is.
 *
 * A frame that is whole within len <= max_bytes can never be TOO_LARGE:
 * every budget check of the full scan compares a lower bound of the frame's
 * length (the bytes consumed, this item's, one for each item still owed)
 * with max_bytes. So this pass keeps no budget: per item a table load,
 * one bounds check and the count of the innermost container, about half
 * the full scan's work. It is the common case (a request read whole, or
 * pipelined ones); a frame cut off by a read costs this pass once, then the
 * resumable scan takes over (st->pos > 0), so a trickle stays O(frame). */
static size_t scan_whole(const uint8_t *buf, size_t len, unsigned max_depth)
{
    uint64_t stack[VD_SCAN_MAX_DEPTH + 1];
    size_t pos = 0;                      /* may pass len by a fixed item's size: */
    unsigned sp = 1;                     /* then the next turn (or the end) refuses */
    uint64_t top = 1;                    /* items still owed by the innermost container */
    while (pos < len) {
        const uint8_t *p = buf + pos;
        const scan_op *op = &ops[p[0]];
        if (op->kind == OP_FIXED) {
            pos += op->n;                /* at most 18: checked by the loop or the end */
        } else if (op->kind == OP_VAR) {
            if (len - pos < 1u + op->lenk)
                return 0;
            uint64_t total = 1u + op->lenk + op->extra + read_len(p + 1, op->lenk);
            if (total > len - pos)
                return 0;
            pos += (size_t)total;
        } else if (op->kind == OP_INVALID || sp > max_depth) {
            return 0;
        } else {
            uint64_t n = op->n;
            if (op->lenk) {
                if (len - pos < 1u + op->lenk)
                    return 0;
                n = read_len(p + 1, op->lenk);
            }
            uint64_t items = op->kind == OP_MAP ? 2 * n : n;
            pos += 1u + op->lenk;
            if (items > 0) {
                if (items > len - pos)   /* early out: every item takes a byte */
                    return 0;
                stack[sp - 1] = top - 1;
                sp++;
                top = items;
                continue;
            }
        }
        if (--top == 0) {
            do {
                if (--sp == 0)
                    return pos <= len ? pos : 0;
                top = stack[sp - 1];
            } while (top == 0);
        }
    }
    return 0;
}

vd_scan_result vd_msgpack_scan_resume(vd_scan_state *st, const uint8_t *buf, size_t len,
                                      const vd_scan_limits *lim, size_t *frame_len)
{
    unsigned max_depth = lim->max_depth < VD_SCAN_MAX_DEPTH ? lim->max_depth : VD_SCAN_MAX_DEPTH;
    uint64_t max = lim->max_bytes;

    *frame_len = 0;
    if (st->sp == 0 || st->sp > VD_SCAN_MAX_DEPTH + 1)
        vd_msgpack_scan_reset(st);   /* a zeroed (or nonsense) state starts a frame */
    if (st->pos == 0 && st->sp == 1 && st->pending == 1) {
        /* A fresh frame: try it whole first (see scan_whole), and leave
         * the state as the full scan leaves it after OK. */
        size_t whole = scan_whole(buf, len < max ? len : (size_t)max, max_depth);
        if (whole) {
            st->pos = whole;
            st->pending = 0;
            st->sp = 0;
            *frame_len = whole;
            return VD_SCAN_OK;
        }
    }
    /* Guards the invariant even if the caller changed the limits between calls. */
    if ((uint64_t)st->pos > max || st->pending > max - st->pos)
        return VD_SCAN_TOO_LARGE;

    /* The state in locals: the frame's bytes are uint8_t, which may alias
     * anything, so through st every field would be reloaded after each
     * byte read. Only the budget is kept (pending = max - pos - budget),
     * and the innermost container's count in `top` (stack[sp - 1] on
     * return). Each item: one table load, its checks, its bytes. */
    size_t pos = st->pos;
    uint64_t budget = max - pos - st->pending;
    unsigned sp = st->sp;
    uint64_t *stack = st->stack;
    uint64_t top = stack[sp - 1];
    vd_scan_result r = VD_SCAN_OK;

    for (;;) {
        if (pos >= len) {
            r = VD_SCAN_NEED_MORE;
            break;
        }
        const uint8_t *p = buf + pos;
        size_t avail = len - pos;
        scan_op op = ops[p[0]];
        uint64_t total, items;           /* this item's bytes, and the items it opens */
        if (op.kind == OP_FIXED) {
            /* The header check (extra > budget) is implied by this one. */
            total = op.n;
            items = 0;
            if (total - 1 > budget) {
                r = VD_SCAN_TOO_LARGE;
                break;
            }
        } else {
            if (op.kind == OP_INVALID) {
                r = VD_SCAN_INVALID;
                break;
            }
            if (op.kind != OP_VAR && sp > max_depth) {
                r = VD_SCAN_TOO_DEEP;     /* the new container would be at depth sp */
                break;
            }
            uint64_t hdr = 1u + op.lenk + op.extra;
            if (hdr - 1 > budget) {
                r = VD_SCAN_TOO_LARGE;
                break;
            }
            if (avail < 1u + op.lenk) {
                r = VD_SCAN_NEED_MORE;
                break;
            }
            uint64_t n = op.lenk ? read_len(p + 1, op.lenk) : op.n;
            if (op.kind == OP_VAR) {
                total = hdr + n;
                items = 0;
            } else {
                total = hdr;
                items = op.kind == OP_MAP ? 2 * n : n;
            }
            if (total - 1 > budget || items > budget - (total - 1)) {
                r = VD_SCAN_TOO_LARGE;
                break;
            }
        }
        if (avail < total) {
            r = VD_SCAN_NEED_MORE;
            break;
        }

        pos += (size_t)total;            /* total <= budget + 1 <= max, fits size_t */
        budget -= (total - 1) + items;   /* pos grew by total, pending by items - 1 */
        top -= 1;
        if (items > 0) {
            stack[sp - 1] = top;          /* sp <= max_depth here, so sp+1 fits */
            sp++;
            top = items;
        } else {
            while (top == 0) {
                if (--sp == 0)
                    break;
                top = stack[sp - 1];
            }
            if (sp == 0)
                break;
        }
    }
    if (sp > 0)
        stack[sp - 1] = top;
    st->pos = pos;
    st->pending = max - pos - budget;
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
