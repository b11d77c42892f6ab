/* json.c — the one-pass JSON reader (core/json.h).
 *
 * One walk over the bytes, no recursion: an explicit stack of open
 * containers; the items of an array (members of an object) collect on a
 * shared stack and are copied into the document's blocks, contiguous, when
 * the container closes. Strings are decoded into one buffer the size of the
 * document (a decoded string plus its NUL is never longer than its quoted
 * source), so a document costs a handful of allocations however many values
 * it holds. Replaces jansson for definitions: there, a 10,000-segment
 * compile spent 60 % of its instructions in json_loadb (a malloc and a hash
 * table per object) and another 13 % in json_decref. */
#include "core/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"

struct vd_json_block {
    vd_json_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

typedef struct frame {
    uint32_t start;           /* first item/member of this container on its stack */
    uint32_t serial;          /* object number, for the duplicate-key table */
    bool is_obj;
    bool hashed;              /* its keys are in the duplicate-key table */
} frame;

typedef struct key_slot {
    uint64_t hash;
    uint32_t serial;          /* 0: empty */
    uint32_t member;          /* index on the member stack */
} key_slot;

/* Objects with more members than this check new keys through a hash table
 * instead of comparing with every earlier key. */
#define LINEAR_KEYS 16

typedef struct parser {
    const unsigned char *base, *p, *end;
    char *sp;                 /* next free byte of the string buffer */
    vd_json_doc *doc;
    size_t block_size;
    vd_json *vals;
    size_t nvals, capvals;
    vd_json_member *mems;
    size_t nmems, capmems;
    frame *frames;
    size_t depth, capframes;
    key_slot *keys;
    size_t nkeys, capkeys;
    uint32_t serial;
    vd_json_error *err;
    bool oom;
    bool err_before;          /* the error is placed before `at`, not on it */
    /* vd_json_parse_each: the callback, the next item's index, and where
     * the blocks and the string buffer stood before the first item (each
     * item's memory is taken back to there once it is handed over; blocks
     * opened for it wait in `spare` for the next one). */
    vd_json_each_fn each;
    void *ctx;
    size_t index;
    vd_json_block *mark, *spare;
    size_t mark_used;
    char *mark_sp;
} parser;

/* ---- memory ---- */

static void *block_alloc(parser *ps, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    vd_json_block *b = ps->doc->blocks;
    if (b && b->cap - b->used >= size) {
        void *r = b->data + b->used;
        b->used += size;
        return r;
    }
    vd_json_block *nb = ps->spare;
    if (nb && nb->cap >= size) {
        ps->spare = nb->next;
    } else {
        /* Blocks double up to 4 MB: a small document stays small, a
         * large one takes few allocations. A request larger than a block
         * gets one of its own size. */
        size_t cap = ps->block_size;
        if (ps->block_size < 4u * 1024 * 1024)
            ps->block_size *= 2;
        if (size > cap)
            cap = size;
        nb = vd_malloc(sizeof *nb + cap);
        if (!nb) {
            ps->oom = true;
            return NULL;
        }
        nb->cap = cap;
    }
    nb->used = size;
    nb->next = b;
    ps->doc->blocks = nb;
    return nb->data;
}

static __attribute__((noinline)) bool grow_slow(void **arr, size_t *cap, size_t elem, size_t need)
{
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *a = vd_realloc(*arr, n * elem);
    if (!a)
        return false;
    *arr = a;
    *cap = n;
    return true;
}

static inline bool grow(void **arr, size_t *cap, size_t elem, size_t need)
{
    return need <= *cap || grow_slow(arr, cap, elem, need);
}

void vd_json_doc_free(vd_json_doc *doc)
{
    if (!doc)
        return;
    vd_json_block *b = doc->blocks;
    while (b) {
        vd_json_block *next = b->next;
        vd_free(b);
        b = next;
    }
    memset(doc, 0, sizeof *doc);
}

/* ---- errors ---- */

/* Length of the token starting at `at`, to quote it: a literal or number
 * runs to the next delimiter, a multi-byte character is whole, anything
 * else is one byte. */
static size_t token_len(const parser *ps, const unsigned char *at)
{
    const unsigned char *q = at;
    if (q >= ps->end)
        return 0;
    if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' ||
        *q == '+' || *q == '.') {
        while (q < ps->end && q - at < 20 &&
               ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                *q == '-' || *q == '+' || *q == '.'))
            q++;
        return (size_t)(q - at);
    }
    if (*q >= 0xC0) {
        q++;
        while (q < ps->end && q - at < 4 && (*q & 0xC0) == 0x80)
            q++;
        return (size_t)(q - at);
    }
    return 1;
}

/* Records the error at `at` (the offending byte; ps->end: end of input). */
static int fail(parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(parser *ps, const unsigned char *at, const char *fmt, ...)
{
    vd_json_error *e = ps->err;
    char msg[100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t tl = token_len(ps, at);
    if (tl == 0)
        snprintf(e->text, sizeof e->text, "%s near end of file", msg);
    else
        snprintf(e->text, sizeof e->text, "%s near '%.*s'", msg, (int)tl, (const char *)at);
    /* Line and column of the offending byte (or of the byte before it, for
     * a control byte in a string, as jansson reports those), columns in
     * characters (a UTF-8 continuation byte does not start one). */
    const unsigned char *stop = at < ps->end && !ps->err_before ? at + 1 : at;
    int line = 1, col = 0;
    for (const unsigned char *q = ps->base; q < stop; q++) {
        if (*q == '\n') {
            line++;
            col = 0;
        } else if ((*q & 0xC0) != 0x80) {
            col++;
        }
    }
    e->line = line;
    e->column = col;
    e->offset = (size_t)(stop - ps->base);
    return -1;
}

/* ---- lexing ---- */

/* Bytes that end a run of plain string bytes: '"', '\\', controls, and
 * the lead of a multi-byte character (validated separately). */
static const unsigned char str_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* A flag (the byte's top bit) on each byte of w, read little-endian, that
 * str_stop marks: '"', '\\', below 0x20, 0x80 and up. Bytes after the
 * first flagged one may be flagged wrongly (borrows); only the first is
 * used. */
static inline uint64_t stop_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t t = ((w - ones * 0x20) & ~w) | w | ((q - ones) & ~q) | ((b - ones) & ~b);
    return t & highs;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms,
 * no surrogates, at most U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = vd_hex_value((char)p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static char *put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* The rest of a string from p (source) and d (output) on, when the fast
 * path met an escape, a control byte, a multi-byte character or the last
 * seven bytes of the input. */
static __attribute__((noinline)) int lex_string_slow(parser *ps, const unsigned char *p, char *d,
                                                     const char **out, uint32_t *outlen)
{
    const unsigned char *end = ps->end;
    char *start = ps->sp;
    /* A bad code point (lone surrogate, \u0000) is reported only once the
     * string is otherwise well-formed: a syntax error later in it wins (as
     * in jansson, which checks a string's syntax before decoding it). */
    const unsigned char *bad_cp = NULL;
    unsigned bad_val = 0;
    for (;;) {
        while (p < end && !str_stop[*p])
            *d++ = (char)*p++;
        if (p == end)
            return fail(ps, end, "premature end of input");
        unsigned c = *p;
        if (c == '"') {
            p++;
            if (bad_cp && bad_val == 0)
                return fail(ps, bad_cp, "\\u0000 is not allowed in a string");
            if (bad_cp)
                return fail(ps, bad_cp, "invalid Unicode '\\u%04X'", bad_val);
            break;
        }
        if (c == '\\') {
            if (end - p < 2)
                return fail(ps, end, "premature end of input");
            unsigned e = p[1];
            switch (e) {
            case '"': case '\\': case '/': *d++ = (char)e; p += 2; continue;
            case 'b': *d++ = '\b'; p += 2; continue;
            case 'f': *d++ = '\f'; p += 2; continue;
            case 'n': *d++ = '\n'; p += 2; continue;
            case 'r': *d++ = '\r'; p += 2; continue;
            case 't': *d++ = '\t'; p += 2; continue;
            case 'u': break;
            default:
                return fail(ps, p + 1, "invalid escape");
            }
            int cp = hex4(p + 2, end);
            if (cp < 0) {
                const unsigned char *bad = p + 2;
                while (bad < end && bad < p + 6 && vd_hex_value((char)*bad) >= 0)
                    bad++;
                return fail(ps, bad, "invalid escape");
            }
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = end - p >= 2 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, end) : -1;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else if (!bad_cp) {
                    bad_cp = p - 6;
                    bad_val = (unsigned)cp;
                    continue;
                } else {
                    continue;
                }
            } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                if (!bad_cp) {
                    bad_cp = p - 6;
                    bad_val = (unsigned)cp;
                }
                continue;
            }
            d = put_utf8(d, (unsigned)cp);
            continue;
        }
        if (c < 0x20) {
            ps->err_before = true;
            if (c == '\n')
                return fail(ps, p, "unexpected newline in a string");
            return fail(ps, p, "control character 0x%x in a string", c);
        }
        size_t n = utf8_len(p, end);
        if (!n)
            return fail(ps, p, "unable to decode byte 0x%x", c);
        memcpy(d, p, n);
        d += n;
        p += n;
    }
    *d = '\0';
    *out = start;
    *outlen = (uint32_t)(d - start);   /* < VD_JSON_MAX_BYTES */
    ps->sp = d + 1;
    ps->p = p;
    return 0;
}

static inline bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

/* A number at ps->p (on '-' or a digit). */
static int lex_number(parser *ps, vd_json *v)
{
    const unsigned char *s = ps->p, *p = s, *end = ps->end;
    bool neg = false, real = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(ps, s, "invalid token");
    } else if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return fail(ps, s, "invalid token");
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return fail(ps, s, "invalid token");
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return fail(ps, s, "invalid token");
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    if (!real) {
        /* 64-bit, out of range an error (jansson's strtoll + ERANGE). */
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
        for (const unsigned char *q = s + neg; q < p; q++) {
            unsigned dg = *q - '0';
            if (acc > (limit - dg) / 10)
                return fail(ps, s, neg ? "too big negative integer" : "too big integer");
            acc = acc * 10 + dg;
        }
        v->type = VD_JSON_INTEGER;
        v->n = 0;
        v->u.i = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)acc) : (long long)acc;
        ps->p = p;
        return 0;
    }
    char small[64], *buf = small;
    size_t n = (size_t)(p - s);
    if (n >= sizeof small && !(buf = vd_malloc(n + 1))) {
        ps->oom = true;
        return -2;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    bool overflow = errno == ERANGE && (d > 1.0 || d < -1.0);
    if (buf != small)
        vd_free(buf);
    if (overflow)
        return fail(ps, s, "real number overflow");
    v->type = VD_JSON_REAL;
    v->n = 0;
    v->u.d = d;
    ps->p = p;
    return 0;
}

/* ---- duplicate keys ---- */

static bool key_eq(const vd_json_member *a, const char *k, uint32_t n)
{
    return a->klen == n && memcmp(a->key, k, n) == 0;
}

static int keys_insert(parser *ps, uint64_t h, uint32_t serial, uint32_t member)
{
    if ((ps->nkeys + 1) * 2 > ps->capkeys) {
        /* Entries of closed objects stay (their serial never comes back):
         * at most one per member of a large object in the document. */
        size_t cap = ps->capkeys ? ps->capkeys * 2 : 256;
        key_slot *t = vd_calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < ps->capkeys; i++) {
            if (!ps->keys[i].serial)
                continue;
            size_t j = (size_t)ps->keys[i].hash & (cap - 1);
            while (t[j].serial)
                j = (j + 1) & (cap - 1);
            t[j] = ps->keys[i];
        }
        vd_free(ps->keys);
        ps->keys = t;
        ps->capkeys = cap;
    }
    size_t j = (size_t)h & (ps->capkeys - 1);
    while (ps->keys[j].serial)
        j = (j + 1) & (ps->capkeys - 1);
    ps->keys[j] = (key_slot){ h, serial, member };
    ps->nkeys++;
    return 0;
}

/* True if the open object f already has key k. */
static int has_key(parser *ps, frame *f, const char *k, uint32_t n)
{
    size_t count = ps->nmems - f->start;
    if (count < LINEAR_KEYS) {
        for (size_t i = f->start; i < ps->nmems; i++)
            if (key_eq(&ps->mems[i], k, n))
                return 1;
        return 0;
    }
    if (!f->hashed) {
        f->hashed = true;
        for (size_t i = f->start; i < ps->nmems; i++)
            if (keys_insert(ps, vd_hash64(ps->mems[i].key, ps->mems[i].klen), f->serial, (uint32_t)i) < 0)
                return -1;
    }
    uint64_t h = vd_hash64(k, n);
    size_t j = (size_t)h & (ps->capkeys - 1);
    for (; ps->keys[j].serial; j = (j + 1) & (ps->capkeys - 1)) {
        const key_slot *s = &ps->keys[j];
        if (s->hash == h && s->serial == f->serial && key_eq(&ps->mems[s->member], k, n))
            return 1;
    }
    return keys_insert(ps, h, f->serial, (uint32_t)ps->nmems) < 0 ? -1 : 0;
}

/* ---- the parser ---- */

static inline int push_frame(parser *ps, bool is_obj)
{
    if (!grow((void **)&ps->frames, &ps->capframes, sizeof *ps->frames, ps->depth + 1)) {
        ps->oom = true;
        return -2;
    }
    ps->frames[ps->depth++] = (frame){
        .start = (uint32_t)(is_obj ? ps->nmems : ps->nvals),
        .serial = is_obj ? ++ps->serial : 0,
        .is_obj = is_obj,
    };
    return 0;
}

/* Takes back the memory of the item just handed over. */
static void rewind_items(parser *ps)
{
    while (ps->doc->blocks != ps->mark) {
        vd_json_block *b = ps->doc->blocks;
        ps->doc->blocks = b->next;
        b->next = ps->spare;
        ps->spare = b;
    }
    if (ps->mark)
        ps->mark->used = ps->mark_used;
    ps->sp = ps->mark_sp;
}

/* The usual string at p (its opening quote): no escape, ASCII, and not
 * within eight bytes of the end; decoded at *sp. Returns the byte after the
 * closing quote, or NULL (nothing done) for lex_string_slow. */
static inline const unsigned char *str_fast(const unsigned char *p, const unsigned char *end, char **sp,
                                            const char **s, uint32_t *n)
{
    const unsigned char *q = p + 1;
    char *start = *sp, *d = start;
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        memcpy(d, &w, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        uint64_t m = stop_bytes(w);
        if (m) {
            size_t k = (size_t)__builtin_ctzll(m) / 8;
            q += k;
            d += k;
            if (*q != '"')
                return NULL;
            *d = '\0';
            *s = start;
            *n = (uint32_t)(d - start);
            *sp = d + 1;
            return q + 1;
        }
        q += 8;
        d += 8;
    }
    return NULL;
}

/* "X expected" at p. A string or a number there is read first, so an
 * error inside it is the one reported (jansson reads the whole next token
 * before its parser looks at it). */
static int fail_expected(parser *ps, const unsigned char *p, const char *msg)
{
    vd_json tok;
    int rc;
    if (p < ps->end && *p == '"') {
        if ((rc = lex_string_slow(ps, p + 1, ps->sp, &tok.u.s, &tok.n)) != 0)
            return rc;
    } else if (p < ps->end && (*p == '-' || is_digit(*p))) {
        ps->p = p;
        if ((rc = lex_number(ps, &tok)) != 0)
            return rc;
    }
    return fail(ps, p, "%s", msg);
}

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

/* The parser proper. The cursor (p) and the string buffer's (sp) live in
 * registers; ps->p and ps->sp are brought up to date around the calls that
 * use them (SYNC / LOAD). */
static int parse(parser *ps)
{
    const unsigned char *p = ps->p;
    const unsigned char *const end = ps->end;
    char *sp = ps->sp;
    vd_json cur;
    int rc;
#define SYNC() (ps->p = p, ps->sp = sp)
#define LOAD() (p = ps->p, sp = ps->sp)
#define WS()                                                                                                   \
    do {                                                                                                       \
        if (p < end && *p <= ' ') {                                                                            \
            while (p < end && IS_WS(*p))                                                                       \
                p++;                                                                                           \
        }                                                                                                      \
    } while (0)
#define FAIL(at, ...) (SYNC(), fail(ps, (at), __VA_ARGS__))
#define EXPECTED(at, msg) (SYNC(), fail_expected(ps, (at), (msg)))

    WS();
    if (p == end || (*p != '[' && *p != '{'))
        return EXPECTED(p, "'[' or '{' expected");
    ps->mark = ps->doc->blocks;
    ps->mark_used = ps->mark ? ps->mark->used : 0;
    ps->mark_sp = sp;

value:
    /* Every value counts one level, scalars too (as jansson counts). */
    if (ps->depth >= VD_JSON_MAX_DEPTH)
        return FAIL(p, "maximum parsing depth reached");
    if (p == end)
        return FAIL(end, "unexpected end of input");
    switch (*p) {
    case '"': {
        const unsigned char *q = str_fast(p, end, &sp, &cur.u.s, &cur.n);
        cur.type = VD_JSON_STRING;
        if (q) {
            p = q;
        } else {
            SYNC();
            if ((rc = lex_string_slow(ps, p + 1, sp, &cur.u.s, &cur.n)) != 0)
                return rc;
            LOAD();
        }
        goto done;
    }
    case '{':
        SYNC();
        if ((rc = push_frame(ps, true)) != 0)
            return rc;
        p++;
        WS();
        if (p < end && *p == '}') {
            p++;
            ps->depth--;
            cur = (vd_json){ .type = VD_JSON_OBJECT, .n = 0, .u.members = NULL };
            goto done;
        }
        goto key;
    case '[':
        SYNC();
        if ((rc = push_frame(ps, false)) != 0)
            return rc;
        p++;
        WS();
        if (p < end && *p == ']') {
            p++;
            ps->depth--;
            cur = (vd_json){ .type = VD_JSON_ARRAY, .n = 0, .u.items = NULL };
            goto done;
        }
        goto value;
    case 't':
    case 'f':
    case 'n': {
        static const char *const lit[3] = { "true", "false", "null" };
        static const uint32_t type[3] = { VD_JSON_TRUE, VD_JSON_FALSE, VD_JSON_NULL };
        int k = *p == 't' ? 0 : *p == 'f' ? 1 : 2;
        size_t n = k == 1 ? 5 : 4;
        const unsigned char *q = p + n;
        if ((size_t)(end - p) < n || memcmp(p, lit[k], n) != 0 ||
            (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))))
            return FAIL(p, "invalid token");
        p = q;
        cur = (vd_json){ .type = type[k], .n = 0, .u.i = 0 };
        goto done;
    }
    default:
        if (*p == '-' || is_digit(*p)) {
            SYNC();
            if ((rc = lex_number(ps, &cur)) != 0)
                return rc;
            LOAD();
            goto done;
        }
        if (*p == ']' || *p == '}' || *p == ',' || *p == ':')
            return FAIL(p, "unexpected token");
        if (*p >= 0x80 && !utf8_len(p, end))
            return FAIL(p, "unable to decode byte 0x%x", *p);
        return FAIL(p, "invalid token");
    }

key: {
        /* In an object, after '{' or ',' (whitespace skipped). */
        if (p == end || *p != '"')
            return EXPECTED(p, "string or '}' expected");
        const unsigned char *at = p;
        const char *k;
        uint32_t kn;
        const unsigned char *q = str_fast(p, end, &sp, &k, &kn);
        if (q) {
            p = q;
        } else {
            SYNC();
            if ((rc = lex_string_slow(ps, p + 1, sp, &k, &kn)) != 0)
                return rc;
            LOAD();
        }
        frame *f = &ps->frames[ps->depth - 1];
        if ((rc = has_key(ps, f, k, kn)) != 0) {
            if (rc < 0) {
                ps->oom = true;
                return -2;
            }
            return FAIL(at, "duplicate object key");
        }
        if (!grow((void **)&ps->mems, &ps->capmems, sizeof *ps->mems, ps->nmems + 1)) {
            ps->oom = true;
            return -2;
        }
        ps->mems[ps->nmems++] = (vd_json_member){ .key = k, .klen = kn };
        WS();
        if (p == end || *p != ':')
            return EXPECTED(p, "':' expected");
        p++;
        WS();
        goto value;
    }

done:
    /* cur is a complete value: file it in its container. */
    if (ps->depth == 0) {
        ps->doc->root = cur;
        WS();
        if (p != end)
            return EXPECTED(p, "end of file expected");
        SYNC();
        if (ps->each && cur.type == VD_JSON_OBJECT && ps->each(ps->ctx, &cur, SIZE_MAX) != 0)
            return 1;
        return 0;
    }
    {
        frame *f = &ps->frames[ps->depth - 1];
        if (f->is_obj) {
            ps->mems[ps->nmems - 1].val = cur;
            WS();
            if (p < end && *p == ',') {
                p++;
                WS();
                goto key;
            }
            if (p == end || *p != '}')
                return EXPECTED(p, "'}' expected");
            p++;
            size_t n = ps->nmems - f->start;
            vd_json_member *m = block_alloc(ps, n * sizeof *m);
            if (!m)
                return -2;
            memcpy(m, ps->mems + f->start, n * sizeof *m);
            ps->nmems = f->start;
            cur = (vd_json){ .type = VD_JSON_OBJECT, .n = (uint32_t)n, .u.members = m };
        } else {
            if (ps->each && ps->depth == 1) {
                /* An item of the top-level array: handed over, then its
                 * memory is taken back. */
                SYNC();
                if (ps->each(ps->ctx, &cur, ps->index++) != 0)
                    return 1;
                rewind_items(ps);
                LOAD();
            } else {
                if (!grow((void **)&ps->vals, &ps->capvals, sizeof *ps->vals, ps->nvals + 1)) {
                    ps->oom = true;
                    return -2;
                }
                ps->vals[ps->nvals++] = cur;
            }
            WS();
            if (p < end && *p == ',') {
                p++;
                WS();
                goto value;
            }
            if (p == end || *p != ']')
                return EXPECTED(p, "']' expected");
            p++;
            /* n is 0 for the top-level array read item by item. */
            size_t n = ps->nvals - f->start;
            vd_json *items = n ? block_alloc(ps, n * sizeof *items) : NULL;
            if (n && !items)
                return -2;
            if (n)
                memcpy(items, ps->vals + f->start, n * sizeof *items);
            ps->nvals = f->start;
            cur = (vd_json){ .type = VD_JSON_ARRAY, .n = (uint32_t)n, .u.items = items };
        }
        ps->depth--;
        goto done;
    }
#undef SYNC
#undef LOAD
#undef WS
#undef FAIL
#undef EXPECTED
}

static int run(const char *text, size_t len, vd_json_doc *doc, vd_json_error *err, vd_json_each_fn each,
               void *ctx)
{
    memset(doc, 0, sizeof *doc);
    memset(err, 0, sizeof *err);
    parser ps = {
        .base = (const unsigned char *)text,
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .doc = doc,
        .block_size = 64 * 1024,
        .err = err,
        .each = each,
        .ctx = ctx,
    };
    if (len > VD_JSON_MAX_BYTES) {
        snprintf(err->text, sizeof err->text, "document of %zu bytes, over the limit of %u", len,
                 VD_JSON_MAX_BYTES);
        err->line = err->column = 1;
        return -1;
    }
    /* Every decoded string (with its NUL) is no longer than its quoted
     * source, so one buffer of the document's size holds them all. */
    ps.sp = block_alloc(&ps, len + 1);
    int rc = ps.sp ? parse(&ps) : -2;
    if (ps.oom)
        rc = -2;
    vd_free(ps.vals);
    vd_free(ps.mems);
    vd_free(ps.frames);
    vd_free(ps.keys);
    while (ps.spare) {
        vd_json_block *b = ps.spare;
        ps.spare = b->next;
        vd_free(b);
    }
    if (rc != 0 || each) {
        vd_json_doc_free(doc);
        if (rc == -2) {
            snprintf(err->text, sizeof err->text, "out of memory");
            err->line = err->column = 0;
        }
    }
    return rc;
}

int vd_json_parse(const char *text, size_t len, vd_json_doc *doc, vd_json_error *err)
{
    return run(text, len, doc, err, NULL, NULL);
}

int vd_json_parse_each(const char *text, size_t len, vd_json_each_fn each, void *ctx, vd_json_error *err)
{
    vd_json_doc doc;
    return run(text, len, &doc, err, each, ctx);
}

/* ---- compact output ---- */

/* jansson's jsonp_dtostr: %.17g, ".0" if it would read as an integer, no
 * '+' and no leading zeros in the exponent. */
static size_t fmt_real(double d, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%.17g", d);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t len = (size_t)n;
    if (!strchr(buf, '.') && !strchr(buf, 'e') && len + 2 < cap) {
        buf[len++] = '.';
        buf[len++] = '0';
        buf[len] = '\0';
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *q = e + 2;
        if (*start == '-')
            start++;
        while (*q == '0')
            q++;
        if (q != start) {
            memmove(start, q, len - (size_t)(q - buf) + 1);
            len -= (size_t)(q - start);
        }
    }
    return len;
}

static size_t str_dump_len(const char *s, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            len += 2;
        else if (c < 0x20)
            len += 6;
        else
            len++;
    }
    return len;
}

static char *str_dump(const char *s, size_t n, char *o)
{
    static const char hex[] = "0123456789ABCDEF";
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    return o;
}

size_t vd_json_dump_len(const vd_json *v)
{
    char buf[64];
    size_t len = 0;
    switch (v->type) {
    case VD_JSON_NULL: return 4;
    case VD_JSON_TRUE: return 4;
    case VD_JSON_FALSE: return 5;
    case VD_JSON_INTEGER: return (size_t)snprintf(buf, sizeof buf, "%lld", v->u.i);
    case VD_JSON_REAL: return fmt_real(v->u.d, buf, sizeof buf);
    case VD_JSON_STRING: return str_dump_len(v->u.s, v->n);
    case VD_JSON_ARRAY:
        len = 2 + (v->n ? v->n - 1 : 0);
        for (uint32_t i = 0; i < v->n; i++)
            len += vd_json_dump_len(&v->u.items[i]);
        return len;
    case VD_JSON_OBJECT:
        len = 2 + (v->n ? v->n - 1 : 0);
        for (uint32_t i = 0; i < v->n; i++)
            len += str_dump_len(v->u.members[i].key, v->u.members[i].klen) + 1 +
                   vd_json_dump_len(&v->u.members[i].val);
        return len;
    default:
        return 0;
    }
}

char *vd_json_dump(const vd_json *v, char *o)
{
    char buf[64];
    size_t n;
    switch (v->type) {
    case VD_JSON_NULL: memcpy(o, "null", 4); return o + 4;
    case VD_JSON_TRUE: memcpy(o, "true", 4); return o + 4;
    case VD_JSON_FALSE: memcpy(o, "false", 5); return o + 5;
    case VD_JSON_INTEGER:
        n = (size_t)snprintf(buf, sizeof buf, "%lld", v->u.i);
        memcpy(o, buf, n);
        return o + n;
    case VD_JSON_REAL:
        n = fmt_real(v->u.d, buf, sizeof buf);
        memcpy(o, buf, n);
        return o + n;
    case VD_JSON_STRING:
        return str_dump(v->u.s, v->n, o);
    case VD_JSON_ARRAY:
        *o++ = '[';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o = vd_json_dump(&v->u.items[i], o);
        }
        *o++ = ']';
        return o;
    case VD_JSON_OBJECT:
        *o++ = '{';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o = str_dump(v->u.members[i].key, v->u.members[i].klen, o);
            *o++ = ':';
            o = vd_json_dump(&v->u.members[i].val, o);
        }
        *o++ = '}';
        return o;
    default:
        return o;
    }
}
