/* compile_segment.c — segment nodes and predicates, JSON -> flat compiled form.
 * Every check of the language (contract v1, docs/RULES.md) lives here;
 * errors carry document, segment and JSON path and never stop the walk. */
#include "rules/compile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/ip.h"
#include "context/tz.h"
#include "core/alloc.h"
#include "variantd/limits.h"

/* ---- errors and paths ---------------------------------------------------- */

/* The path of the parts pushed so far: "$.match.all[1]". */
static void cpath_format(const vd_compiler *c, char *buf, size_t cap)
{
    size_t len = 0, n = c->plen < VD_CPATH_PARTS ? c->plen : VD_CPATH_PARTS;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len + 1 < cap; i++) {
        const struct vd_cpath_part *p = &c->parts[i];
        const char *pct = p->fmt[0] && p->fmt[1] == '%' ? p->fmt + 1 : NULL;
        int w;
        if (!pct)
            w = snprintf(buf + len, cap - len, "%s", p->fmt);
        else if (pct[1] == 's')
            w = snprintf(buf + len, cap - len, "%.*s%s%s", (int)(pct - p->fmt), p->fmt, p->s, pct + 2);
        else
            w = snprintf(buf + len, cap - len, "%.*s%zu%s", (int)(pct - p->fmt), p->fmt, p->u,
                         pct + (pct[1] == 'u' ? 2 : 3));
        if (w < 0)
            break;
        len += (size_t)w;
        if (len >= cap)
            len = cap - 1;
    }
}

void vd_cerr(vd_compiler *c, const char *fmt, ...)
{
    char msg[VD_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->nerr++;
    char path[512];
    cpath_format(c, path, sizeof path);
    const char *sep1 = c->what[0] ? ": " : "";
    const char *sep2 = c->plen ? ": " : "";
    char line[VD_ERROR_LEN];
    if (snprintf(line, sizeof line, "%s: %s%s%s%s%s", c->doc ? c->doc : "(definitions)",
                 c->what, sep1, path, sep2, msg) < 0)
        line[0] = '\0';                 /* cut at VD_ERROR_LEN like any message */
    /* Messages quote definition text (ids, attribute names, the JSON
     * reader's "near '...'" token) and end up in one-line logs: a control
     * byte such as "\n" in a document must not forge or break a log line. */
    for (char *q = line; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
    vd_errors_addf(c->err, "%s", line);
}

/* Called for every node and value of every definition: it only records the
 * part (the path is written out by vd_cerr); formatting it here was a tenth
 * of compiling 10,000 segments. */
size_t vd_cpath_push(vd_compiler *c, const char *fmt, ...)
{
    size_t old = c->plen;
    if (old < VD_CPATH_PARTS) {
        struct vd_cpath_part *p = &c->parts[old];
        p->fmt = fmt;
        /* The forms with an argument: ".%s", "[%u]", "[%zu]". */
        if (fmt[0] && fmt[1] == '%') {
            va_list ap;
            va_start(ap, fmt);
            if (fmt[2] == 's')
                p->s = va_arg(ap, const char *);
            else
                p->u = fmt[2] == 'u' ? va_arg(ap, unsigned) : va_arg(ap, size_t);
            va_end(ap);
        }
    }
    c->plen = old + 1;
    return old;
}

void vd_cpath_pop(vd_compiler *c, size_t len)
{
    c->plen = len;
}

void vd_cpath_reset(vd_compiler *c)
{
    c->parts[0].fmt = "$";
    c->plen = 1;
}

bool vd_check_id(vd_compiler *c, const char *s, size_t n, const char *kind)
{
    if (n == 0 || n > VD_MAX_ID_LEN) {
        vd_cerr(c, "%s must be 1 to %d characters long (got %zu)", kind, VD_MAX_ID_LEN, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-')) {
            vd_cerr(c, "%s \"%.*s\" has a character outside [A-Za-z0-9._:-] at offset %zu", kind,
                    (int)(n > 64 ? 64 : n), s, i);
            return false;
        }
    }
    return true;
}

/* ---- node storage -------------------------------------------------------- */

uint32_t vd_node_alloc(vd_compiler *c, uint32_t count)
{
    vd_ruleset *rs = c->rs;
    if (rs->nnodes + (uint64_t)count >= UINT32_MAX - 1) {
        c->oom = true;
        return VD_NODE_NONE;
    }
    if (rs->nnodes + count > rs->cap_nodes) {
        uint32_t cap = rs->cap_nodes ? rs->cap_nodes : 1024;
        while (cap < rs->nnodes + count)
            cap *= 2;
        vd_node *n = vd_realloc(rs->nodes, (size_t)cap * sizeof *n);
        if (!n) {
            c->oom = true;
            return VD_NODE_NONE;
        }
        rs->nodes = n;
        rs->cap_nodes = cap;
    }
    uint32_t first = rs->nnodes;
    for (uint32_t i = 0; i < count; i++)
        rs->nodes[first + i] = (vd_node){ VD_N_ALL, 0, 0 };
    rs->nnodes += count;
    return first;
}

void vd_compile_reserve(vd_compiler *c, size_t nodes, size_t preds)
{
    vd_ruleset *rs = c->rs;
    if (nodes > UINT32_MAX / 4)
        nodes = UINT32_MAX / 4;
    if (preds > UINT32_MAX / 4)
        preds = UINT32_MAX / 4;
    if (rs->nnodes + nodes > rs->cap_nodes) {
        vd_node *n = vd_realloc(rs->nodes, (rs->nnodes + nodes) * sizeof *n);
        if (n) {
            rs->nodes = n;
            rs->cap_nodes = (uint32_t)(rs->nnodes + nodes);
        }
    }
    if (rs->npreds + preds > rs->cap_preds) {
        vd_pred *p = vd_realloc(rs->preds, (rs->npreds + preds) * sizeof *p);
        if (p) {
            rs->preds = p;
            rs->cap_preds = (uint32_t)(rs->npreds + preds);
        }
    }
}

static vd_pred *pred_alloc(vd_compiler *c, uint32_t *idx)
{
    vd_ruleset *rs = c->rs;
    if (rs->npreds == rs->cap_preds) {
        uint32_t cap = rs->cap_preds ? rs->cap_preds * 2 : 1024;
        vd_pred *p = vd_realloc(rs->preds, (size_t)cap * sizeof *p);
        if (!p) {
            c->oom = true;
            return NULL;
        }
        rs->preds = p;
        rs->cap_preds = cap;
    }
    *idx = rs->npreds;
    vd_pred *p = &rs->preds[rs->npreds++];
    memset(p, 0, sizeof *p);
    return p;
}

static void *arena_alloc(vd_compiler *c, size_t size)
{
    void *p = vd_arena_alloc(&c->rs->arena, size);
    if (!p)
        c->oom = true;
    return p;
}

/* ---- ops and the type/op matrix ------------------------------------------ */

static const char *const op_names[VD_OP__COUNT] = {
#define VD_OP_NAME(id, name) [VD_OP_##id] = name,
    VD_OP_LIST(VD_OP_NAME)
#undef VD_OP_NAME
};

#define B(op) (1u << VD_OP_##op)
#define EQS (B(EQ) | B(NE) | B(IN) | B(NOT_IN))
#define RANGES (B(LT) | B(LTE) | B(GT) | B(GTE) | B(BETWEEN))
#define STRS (B(PREFIX) | B(SUFFIX) | B(CONTAINS))

/* Which ops each attribute type accepts (docs/RULES.md has the same matrix). */
static const uint32_t type_ops[] = {
    [VD_AT_STRING] = EQS | STRS | B(EXISTS),
    [VD_AT_NUMBER] = EQS | RANGES | B(EXISTS),
    [VD_AT_BOOL] = B(EQ) | B(NE) | B(EXISTS),
    [VD_AT_IP] = EQS | B(CIDR) | B(EXISTS),
    [VD_AT_LOCATION] = B(WITHIN) | B(EXISTS),
    [VD_AT_HOUR] = EQS | RANGES | B(EXISTS),
    [VD_AT_MINUTE] = EQS | RANGES | B(EXISTS),
    [VD_AT_WEEKDAY] = EQS | B(EXISTS),
    [VD_AT_DATE] = B(EQ) | B(NE) | RANGES | B(EXISTS),
    [VD_AT_INSTANT] = RANGES | B(EXISTS),
    [VD_AT_ANY] = EQS | STRS | RANGES | B(EXISTS),
};

static const char *const type_names[] = {
    [VD_AT_STRING] = "string", [VD_AT_NUMBER] = "number",   [VD_AT_BOOL] = "bool",
    [VD_AT_IP] = "ip",         [VD_AT_LOCATION] = "location", [VD_AT_HOUR] = "hour",
    [VD_AT_MINUTE] = "minute", [VD_AT_WEEKDAY] = "weekday", [VD_AT_DATE] = "date",
    [VD_AT_INSTANT] = "instant", [VD_AT_ANY] = "any",
};

static int op_lookup(const char *s, size_t n)
{
    for (int i = 0; i < VD_OP__COUNT; i++)
        if (op_names[i][0] == s[0] && strlen(op_names[i]) == n && memcmp(op_names[i], s, n) == 0)
            return i;
    return -1;
}

static void valid_ops(uint32_t mask, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < VD_OP__COUNT; i++)
        if (mask & (1u << i)) {
            int n = snprintf(buf + len, cap - len, "%s%s", len ? " " : "", op_names[i]);
            if (n < 0 || (size_t)n >= cap - len)
                break;
            len += (size_t)n;
        }
}

/* ---- value parsing helpers ----------------------------------------------- */

/* The elements of a value that may be one item or a list: arrays as they
 * are; a scalar counts as a list of one when `scalar_ok`. */
typedef struct vlist {
    const vd_json *v;
    size_t n;
    bool is_array;
} vlist;

static const vd_json *vl_at(const vlist *l, size_t i)
{
    return l->is_array ? vd_json_at(l->v, i) : l->v;
}

static bool get_list(vd_compiler *c, const vd_json *v, bool scalar_ok, vlist *out)
{
    out->v = v;
    out->is_array = vd_json_is_array(v);
    out->n = out->is_array ? vd_json_size(v) : 1;
    if (!out->is_array && !scalar_ok) {
        vd_cerr(c, "needs an array");
        return false;
    }
    if (out->n == 0) {
        vd_cerr(c, "needs a non-empty array");
        return false;
    }
    return true;
}

static size_t push_elem(vd_compiler *c, const vlist *l, size_t i)
{
    return l->is_array ? vd_cpath_index(c, i) : c->plen;
}

static bool get_int(const vd_json *v, long long lo, long long hi, long long *out)
{
    double d;
    if (vd_json_is_integer(v))
        d = (double)vd_json_int(v);
    else if (vd_json_is_real(v))
        d = vd_json_real(v);
    else
        return false;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return false;
    *out = (long long)d;
    return true;
}

static bool get_num(const vd_json *v, double *out)
{
    if (vd_json_is_integer(v))
        *out = (double)vd_json_int(v);
    else if (vd_json_is_real(v))
        *out = vd_json_real(v);
    else
        return false;
    return isfinite(*out);
}

static int weekday_index(const char *s, size_t n)
{
    static const char *const names[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    if (n != 3)
        return -1;
    for (int i = 0; i < 7; i++)
        if (vd_str_eq_ci(vd_str_make(s, 3), vd_str_make(names[i], 3)))
            return i;
    return -1;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool valid_ymd(int y, int m, int d)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DD" -> days since 1970-01-01. */
static bool parse_date(const char *s, size_t n, int64_t *days)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 0 || d < 0 || !valid_ymd(y, m, d))
        return false;
    *days = vd_days_from_civil(y, m, d);
    return true;
}

/* ISO-8601 "YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+HH:MM|-HH:MM)" -> unix seconds.
 * An offset is required: a bare local time has no defined instant. */
static bool parse_instant(const char *s, size_t n, int64_t *out)
{
    int64_t days;
    if (n < 17 || !parse_date(s, 10, &days) || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return false;
    int hh = digits(s + 11, 2), mm = (s[13] == ':') ? digits(s + 14, 2) : -1, ss = 0;
    size_t i = 16;
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
        return false;
    if (i < n && s[i] == ':') {
        if (i + 3 > n || (ss = digits(s + i + 1, 2)) < 0 || ss > 60)
            return false;
        i += 3;
        if (i < n && s[i] == '.') {     /* fractions are dropped: instants are whole seconds */
            i++;
            size_t f = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == f)
                return false;
        }
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    *out = days * 86400 + hh * 3600 + mm * 60 + (ss > 59 ? 59 : ss) - off;
    return true;
}

static int net_cmp(const void *a, const void *b)
{
    const vd_ipnet *x = a, *y = b;
    if (x->addr.family != y->addr.family)
        return x->addr.family < y->addr.family ? -1 : 1;
    int d = memcmp(x->addr.addr, y->addr.addr, 16);
    return d ? d : (int)x->plen - (int)y->plen;
}

static int str_cmp(const void *a, const void *b)
{
    return vd_str_cmp_ci(*(const vd_str *)a, *(const vd_str *)b);
}

/* ---- predicate value compilers ------------------------------------------- */

/* Strings (lower-cased, interned). For ANY attributes, numbers and bools
 * may sit in the same list (allow_other). */
static bool compile_strs(vd_compiler *c, vd_pred *p, const vd_json *v, bool scalar_ok, bool allow_other)
{
    vlist l;
    if (!get_list(c, v, scalar_ok, &l))
        return false;
    vd_str *strs = arena_alloc(c, l.n * sizeof *strs);
    double *nums = allow_other ? arena_alloc(c, l.n * sizeof *nums) : NULL;
    if (!strs || (allow_other && !nums))
        return false;
    bool ok = true;
    for (size_t i = 0; i < l.n; i++) {
        const vd_json *e = vl_at(&l, i);
        size_t saved = push_elem(c, &l, i);
        if (vd_json_is_string(e)) {
            vd_str s = vd_intern_str(&c->in, vd_json_str(e), vd_json_strlen(e), 1);
            if (!s.p)
                c->oom = true;
            strs[p->nstrs++] = s;
        } else if (allow_other && (vd_json_is_integer(e) || vd_json_is_real(e))) {
            if (!get_num(e, &nums[p->nnums])) {
                vd_cerr(c, "number out of range");
                ok = false;
            }
            p->nnums++;
        } else if (allow_other && vd_json_is_boolean(e)) {
            p->bools |= vd_json_is_true(e) ? 2 : 1;
        } else {
            vd_cerr(c, allow_other ? "needs a string, number or bool" : "needs a string");
            ok = false;
        }
        vd_cpath_pop(c, saved);
    }
    p->strs = strs;
    p->nums = nums;
    if (p->nstrs > 8) {
        qsort(strs, p->nstrs, sizeof *strs, str_cmp);
        p->sorted = true;
    }
    if (ok && !c->oom && p->test == VD_T_CONTAINS && p->nstrs >= VD_ACM_MIN_TERMS) {
        p->acm = vd_acm_build(&c->rs->arena, strs, p->nstrs, VD_ACM_DENSE_BUDGET);
        if (!p->acm)
            c->oom = true;
    }
    return ok;
}

static bool compile_nums(vd_compiler *c, vd_pred *p, const vd_json *v, bool scalar_ok)
{
    vlist l;
    if (!get_list(c, v, scalar_ok, &l))
        return false;
    double *nums = arena_alloc(c, l.n * sizeof *nums);
    if (!nums)
        return false;
    bool ok = true;
    for (size_t i = 0; i < l.n; i++) {
        size_t saved = push_elem(c, &l, i);
        if (!get_num(vl_at(&l, i), &nums[p->nnums++])) {
            vd_cerr(c, "needs a number");
            ok = false;
        }
        vd_cpath_pop(c, saved);
    }
    p->nums = nums;
    return ok;
}

/* lt/lte/gt/gte with one number, between with [from, to] (from <= to). */
static bool compile_range(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    double a, b;
    p->lo = -INFINITY;
    p->hi = INFINITY;
    p->lo_incl = p->hi_incl = true;
    if (p->op == VD_OP_BETWEEN) {
        if (!vd_json_is_array(v) || vd_json_size(v) != 2 || !get_num(vd_json_at(v, 0), &a) ||
            !get_num(vd_json_at(v, 1), &b)) {
            vd_cerr(c, "between needs [from, to] with two numbers");
            return false;
        }
        if (a > b) {
            vd_cerr(c, "between needs from <= to (got [%g, %g])", a, b);
            return false;
        }
        p->lo = a;
        p->hi = b;
        return true;
    }
    if (!get_num(v, &a)) {
        vd_cerr(c, "%s needs a number", op_names[p->op]);
        return false;
    }
    switch (p->op) {
    case VD_OP_LT:  p->hi = a; p->hi_incl = false; break;
    case VD_OP_LTE: p->hi = a; break;
    case VD_OP_GT:  p->lo = a; p->lo_incl = false; break;
    default:        p->lo = a; break;
    }
    return true;
}

/* Dates and instants: whole numbers (days / seconds); the bounds are
 * stored inclusive so eval can find the next flip exactly. */
static bool time_value(vd_compiler *c, vd_pred *p, const vd_json *v, int64_t *out)
{
    if (p->type == VD_AT_DATE) {
        if (!vd_json_is_string(v) || !parse_date(vd_json_str(v), vd_json_strlen(v), out)) {
            vd_cerr(c, "needs a date \"YYYY-MM-DD\"");
            return false;
        }
        return true;
    }
    long long secs;
    if (vd_json_is_string(v)) {
        if (!parse_instant(vd_json_str(v), vd_json_strlen(v), out)) {
            vd_cerr(c, "needs an ISO-8601 instant with an offset (\"2026-11-27T00:00:00Z\", "
                       "\"...+01:00\") or unix seconds");
            return false;
        }
        return true;
    }
    if (!get_int(v, -62135596800LL, 253402300799LL, &secs)) {
        vd_cerr(c, "needs an ISO-8601 instant or whole unix seconds (years 1..9999)");
        return false;
    }
    *out = secs;
    return true;
}

static bool compile_timerange(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    int64_t a = 0, b = 0;
    p->lo = -INFINITY;
    p->hi = INFINITY;
    p->lo_incl = p->hi_incl = true;
    if (p->op == VD_OP_BETWEEN) {
        if (!vd_json_is_array(v) || vd_json_size(v) != 2) {
            vd_cerr(c, "between needs [from, to]");
            return false;
        }
        size_t saved = vd_cpath_push(c, "[0]");
        bool ok = time_value(c, p, vd_json_at(v, 0), &a);
        vd_cpath_pop(c, saved);
        saved = vd_cpath_push(c, "[1]");
        ok = time_value(c, p, vd_json_at(v, 1), &b) && ok;
        vd_cpath_pop(c, saved);
        if (!ok)
            return false;
        if (a > b) {
            vd_cerr(c, "between needs from <= to");
            return false;
        }
        p->lo = (double)a;
        p->hi = (double)b;
        return true;
    }
    if (!time_value(c, p, v, &a))
        return false;
    switch (p->op) {
    case VD_OP_EQ: case VD_OP_NE: p->lo = p->hi = (double)a; break;
    case VD_OP_LT:  p->hi = (double)(a - 1); break;
    case VD_OP_LTE: p->hi = (double)a; break;
    case VD_OP_GT:  p->lo = (double)(a + 1); break;
    default:        p->lo = (double)a; break;
    }
    return true;
}

static void bit_set(uint64_t *w, uint32_t i)
{
    w[i >> 6] |= 1ULL << (i & 63);
}

/* Hours, minutes and weekdays become a bitmap over their cycle; a
 * wrapping between is just more bits, and eval finds the next flip by
 * scanning it. */
static bool compile_bits(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    uint32_t nbits = p->type == VD_AT_HOUR ? 24 : p->type == VD_AT_MINUTE ? 1440 : 7;
    uint64_t *w = arena_alloc(c, ((nbits + 63) / 64) * sizeof *w);
    if (!w)
        return false;
    p->bits = w;
    p->nbits = nbits;
    const long long max = nbits - 1;
    const char *unit = p->type == VD_AT_HOUR ? "hour" : "minute of the day";

    if (p->type == VD_AT_WEEKDAY) {
        vlist l;
        if (!get_list(c, v, p->op == VD_OP_EQ || p->op == VD_OP_NE, &l))
            return false;
        bool ok = true;
        for (size_t i = 0; i < l.n; i++) {
            const vd_json *e = vl_at(&l, i);
            size_t saved = push_elem(c, &l, i);
            int d = vd_json_is_string(e) ? weekday_index(vd_json_str(e), vd_json_strlen(e)) : -1;
            if (d < 0) {
                vd_cerr(c, "needs a weekday: mon tue wed thu fri sat sun");
                ok = false;
            } else {
                bit_set(w, (uint32_t)d);
            }
            vd_cpath_pop(c, saved);
        }
        return ok;
    }

    long long a, b;
    switch (p->op) {
    case VD_OP_EQ: case VD_OP_NE: case VD_OP_IN: case VD_OP_NOT_IN: {
        vlist l;
        bool list = p->op == VD_OP_IN || p->op == VD_OP_NOT_IN;
        if (list && !vd_json_is_array(v)) {
            vd_cerr(c, "%s needs an array", op_names[p->op]);
            return false;
        }
        if (!get_list(c, v, !list, &l))
            return false;
        bool ok = true;
        for (size_t i = 0; i < l.n; i++) {
            size_t saved = push_elem(c, &l, i);
            if (!get_int(vl_at(&l, i), 0, max, &a)) {
                vd_cerr(c, "needs a whole %s, 0 <= %s <= %lld", unit, unit, max);
                ok = false;
            } else {
                bit_set(w, (uint32_t)a);
            }
            vd_cpath_pop(c, saved);
        }
        return ok;
    }
    case VD_OP_BETWEEN:
        if (!vd_json_is_array(v) || vd_json_size(v) != 2 || !get_int(vd_json_at(v, 0), 0, max, &a) ||
            !get_int(vd_json_at(v, 1), 0, max, &b)) {
            vd_cerr(c, "between needs [from, to] with 0 <= %s <= %lld", unit, max);
            return false;
        }
        break;
    default:
        if (!get_int(v, 0, max, &a)) {
            vd_cerr(c, "%s needs a whole %s, 0 <= %s <= %lld", op_names[p->op], unit, unit, max);
            return false;
        }
        b = a;
        if (p->op == VD_OP_LT) {
            b = a - 1;
            a = 0;
        } else if (p->op == VD_OP_LTE) {
            a = 0;
        } else if (p->op == VD_OP_GT) {
            a = a + 1;
            b = max;
        } else {
            b = max;
        }
        if (a > b)
            return true;     /* lt 0 / gt max: never true, but well-formed */
        break;
    }
    /* [a, b] inclusive; a > b only for a wrapping between. */
    for (long long i = a;; i = (i + 1) % (max + 1)) {
        bit_set(w, (uint32_t)i);
        if (i == b)
            break;
    }
    return true;
}

static bool compile_nets(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    bool prefix = p->op == VD_OP_CIDR;
    bool list = p->op != VD_OP_EQ && p->op != VD_OP_NE;
    vlist l;
    if (list && p->op != VD_OP_CIDR && !vd_json_is_array(v)) {
        vd_cerr(c, "%s needs an array of addresses", op_names[p->op]);
        return false;
    }
    if (!list && !vd_json_is_string(v)) {
        vd_cerr(c, "needs an IP address string");
        return false;
    }
    if (!get_list(c, v, true, &l))
        return false;
    vd_ipnet *nets = arena_alloc(c, l.n * sizeof *nets);
    if (!nets)
        return false;
    bool ok = true;
    for (size_t i = 0; i < l.n; i++) {
        const vd_json *e = vl_at(&l, i);
        size_t saved = push_elem(c, &l, i);
        if (!vd_json_is_string(e) || !vd_ipnet_parse(vd_str_make(vd_json_str(e), vd_json_strlen(e)), prefix, &nets[p->nnets])) {
            vd_cerr(c, prefix ? "needs an IPv4/IPv6 network like \"10.0.0.0/8\" or \"2001:db8::/32\""
                              : "needs an IPv4/IPv6 address");
            ok = false;
        } else {
            p->nnets++;
        }
        vd_cpath_pop(c, saved);
    }
    qsort(nets, p->nnets, sizeof *nets, net_cmp);
    p->nets = nets;
    return ok;
}

static bool compile_within(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    if (!vd_json_is_object(v)) {
        vd_cerr(c, "within needs {\"lat\", \"lon\", \"km\"}");
        return false;
    }
    bool ok = true;
    vd_json_foreach(v, m) {
        const char *key = m->key;
        if (strcmp(key, "lat") && strcmp(key, "lon") && strcmp(key, "km")) {
            vd_cerr(c, "within: unknown key \"%s\" (expected lat, lon, km)", key);
            ok = false;
        }
    }
    if (!get_num(vd_json_get(v, "lat"), &p->lat) || p->lat < -90 || p->lat > 90) {
        vd_cerr(c, "within needs lat, -90 <= lat <= 90");
        ok = false;
    }
    if (!get_num(vd_json_get(v, "lon"), &p->lon) || p->lon < -180 || p->lon > 180) {
        vd_cerr(c, "within needs lon, -180 <= lon <= 180");
        ok = false;
    }
    if (!get_num(vd_json_get(v, "km"), &p->km) || p->km <= 0 || p->km > 20038) {
        vd_cerr(c, "within needs km, 0 < km <= 20038");
        ok = false;
    }
    return ok;
}

/* The value, by attribute type and op; the path points at "value". */
static bool compile_value(vd_compiler *c, vd_pred *p, const vd_json *v)
{
    int op = p->op;
    bool list = op == VD_OP_IN || op == VD_OP_NOT_IN;
    bool eqs = op == VD_OP_EQ || op == VD_OP_NE || list;
    if ((op == VD_OP_EQ || op == VD_OP_NE) && vd_json_is_array(v)) {
        vd_cerr(c, "%s needs a single value (use %s for a list)", op_names[op], op == VD_OP_EQ ? "in" : "not_in");
        return false;
    }
    if (list && !vd_json_is_array(v) && p->type != VD_AT_WEEKDAY && p->type != VD_AT_HOUR &&
        p->type != VD_AT_MINUTE && p->type != VD_AT_IP) {
        vd_cerr(c, "%s needs an array", op_names[op]);
        return false;
    }
    switch (p->type) {
    case VD_AT_STRING:
        if (eqs) {
            p->test = VD_T_SET;
            if (!list && !vd_json_is_string(v)) {
                vd_cerr(c, "%s needs a string", op_names[op]);
                return false;
            }
            return compile_strs(c, p, v, !list, false);
        }
        p->test = op == VD_OP_PREFIX ? VD_T_PREFIX : op == VD_OP_SUFFIX ? VD_T_SUFFIX : VD_T_CONTAINS;
        return compile_strs(c, p, v, true, false);
    case VD_AT_ANY:
        if (eqs) {
            p->test = VD_T_SET;
            if (!list && !vd_json_is_string(v) && !vd_json_is_number(v) && !vd_json_is_boolean(v)) {
                vd_cerr(c, "%s needs a string, number or bool", op_names[op]);
                return false;
            }
            return compile_strs(c, p, v, !list, true);
        }
        if (op == VD_OP_PREFIX || op == VD_OP_SUFFIX || op == VD_OP_CONTAINS) {
            p->test = op == VD_OP_PREFIX ? VD_T_PREFIX : op == VD_OP_SUFFIX ? VD_T_SUFFIX : VD_T_CONTAINS;
            return compile_strs(c, p, v, true, false);
        }
        p->test = VD_T_RANGE;
        return compile_range(c, p, v);
    case VD_AT_NUMBER:
        if (eqs) {
            p->test = VD_T_SET;
            if (!list && !vd_json_is_number(v)) {
                vd_cerr(c, "%s needs a number", op_names[op]);
                return false;
            }
            return compile_nums(c, p, v, !list);
        }
        p->test = VD_T_RANGE;
        return compile_range(c, p, v);
    case VD_AT_BOOL:
        if (!vd_json_is_boolean(v)) {
            vd_cerr(c, "%s needs true or false", op_names[op]);
            return false;
        }
        p->test = VD_T_SET;
        p->bools = vd_json_is_true(v) ? 2 : 1;
        return true;
    case VD_AT_IP:
        p->test = VD_T_IPNET;
        return compile_nets(c, p, v);
    case VD_AT_LOCATION:
        p->test = VD_T_WITHIN;
        return compile_within(c, p, v);
    case VD_AT_HOUR:
    case VD_AT_MINUTE:
    case VD_AT_WEEKDAY:
        p->test = VD_T_BITS;
        return compile_bits(c, p, v);
    case VD_AT_DATE:
    case VD_AT_INSTANT:
        p->test = VD_T_RANGE;
        return compile_timerange(c, p, v);
    default:
        vd_cerr(c, "attribute type not supported");
        return false;
    }
}

/* vd_attr_resolve through the compiler's memo: it compares the name
 * with every attribute of the table in turn. */
static bool attr_resolve(vd_compiler *c, vd_str name, vd_attr_ref *ref)
{
    uint32_t h = (uint32_t)vd_hash_mem(name.p, name.n);
    for (uint32_t k = 0; k < 8; k++) {
        struct vd_attr_memo *m = &c->attr_memo[(h + k) & (VD_ATTR_MEMO - 1)];
        if (!m->p) {
            if (!vd_attr_resolve(name, ref))
                return false;
            /* A copy: the name's JSON is gone once its segment is compiled. */
            vd_str key = vd_intern_str(&c->in, name.p, name.n, 0);
            if (key.p)
                *m = (struct vd_attr_memo){ key.p, (uint32_t)key.n, ref->sub.n ? (uint32_t)(key.n - ref->sub.n) : 0,
                                            ref->id };
            return true;
        }
        if (m->n == name.n && memcmp(m->p, name.p, name.n) == 0) {
            ref->id = m->id;
            ref->sub = m->sub_off ? vd_str_make(name.p + m->sub_off, name.n - m->sub_off) : VD_STR_NULL;
            return true;
        }
    }
    return vd_attr_resolve(name, ref);
}

/* The keys a node may have, found in one pass over its members (a node
 * used to be looked up by name eight times). */
enum { K_ALL, K_ANY, K_NOT, K_SEGMENT, K_ATTR, K_OP, K_VALUE, K__COUNT, K_OTHER = K__COUNT };

static int node_key(const vd_json_member *m)
{
    const char *k = m->key;
    switch (m->klen) {
    case 2: return memcmp(k, "op", 2) ? K_OTHER : K_OP;
    case 3: return !memcmp(k, "all", 3) ? K_ALL : !memcmp(k, "any", 3) ? K_ANY : !memcmp(k, "not", 3) ? K_NOT : K_OTHER;
    case 4: return memcmp(k, "attr", 4) ? K_OTHER : K_ATTR;
    case 5: return memcmp(k, "value", 5) ? K_OTHER : K_VALUE;
    case 7: return memcmp(k, "segment", 7) ? K_OTHER : K_SEGMENT;
    default: return K_OTHER;
    }
}

/* A predicate node j; at[K_ATTR], at[K_OP], at[K_VALUE] are its members
 * (NULL if absent). */
static void compile_pred(vd_compiler *c, const vd_json *j, const vd_json *const *at, uint32_t idx)
{
    const vd_json *ja = at[K_ATTR], *jo = at[K_OP], *jv = at[K_VALUE];
    bool ok = true;
    if (vd_json_size(j) > (size_t)(!!ja + !!jo + !!jv)) {
        vd_json_foreach(j, m) {
            int k = node_key(m);
            if (k != K_ATTR && k != K_OP && k != K_VALUE) {
                vd_cerr(c, "unknown key \"%s\" in a predicate (expected attr, op, value)", m->key);
                ok = false;
            }
        }
    }
    vd_attr_ref ref = { 0 };
    size_t saved = vd_cpath_name(c, ".attr");
    if (!vd_json_is_string(ja)) {
        vd_cerr(c, "needs an attribute name string");
        ok = false;
    } else if (!attr_resolve(c, vd_str_make(vd_json_str(ja), vd_json_strlen(ja)), &ref)) {
        vd_cerr(c, "unknown attribute \"%.*s\"", (int)(vd_json_strlen(ja) > 64 ? 64 : vd_json_strlen(ja)),
                vd_json_str(ja));
        ok = false;
        ja = NULL;
    }
    if (ok && ja && (ref.id == VD_ATTR_VISITOR_SCORE || ref.id == VD_ATTR_VISITOR_PEAK ||
                     ref.id == VD_ATTR_VISITOR_DECLINE) &&
        !vd_ruleset_find_score(c->rs, ref.sub)) {
        vd_cerr(c, "unknown score \"%.*s\" in %s (define it in scores/)",
                (int)(ref.sub.n > 64 ? 64 : ref.sub.n), ref.sub.p, vd_json_str(ja));
        ok = false;
    }
    vd_cpath_pop(c, saved);
    int op = -1;
    saved = vd_cpath_name(c, ".op");
    if (!vd_json_is_string(jo)) {
        vd_cerr(c, "needs an op string");
        ok = false;
    } else if ((op = op_lookup(vd_json_str(jo), vd_json_strlen(jo))) < 0) {
        vd_cerr(c, "unknown op \"%.*s\"", (int)(vd_json_strlen(jo) > 32 ? 32 : vd_json_strlen(jo)),
                vd_json_str(jo));
        ok = false;
    } else if (vd_json_is_string(ja)) {
        const vd_attr_info *info = vd_attr_info_get(ref.id);
        if (!(type_ops[info->type] & (1u << op))) {
            char buf[160];
            valid_ops(type_ops[info->type], buf, sizeof buf);
            vd_cerr(c, "op \"%s\" is not valid for %s (%s); valid: %s", op_names[op], vd_json_str(ja),
                    type_names[info->type], buf);
            ok = false;
        }
    }
    vd_cpath_pop(c, saved);
    if (!ok)
        return;

    uint32_t pidx;
    vd_pred *p = pred_alloc(c, &pidx);
    if (!p)
        return;
    p->attr.id = ref.id;
    if (ref.sub.n) {
        p->attr.sub = vd_intern_str(&c->in, ref.sub.p, ref.sub.n, 0);
        if (!p->attr.sub.p)
            c->oom = true;
    }
    p->type = vd_attr_info_get(ref.id)->type;
    p->op = (uint8_t)op;
    p->negate = op == VD_OP_NE || op == VD_OP_NOT_IN;
    p->if_missing = p->negate;

    saved = vd_cpath_name(c, ".value");
    if (op == VD_OP_EXISTS) {
        bool want = true;
        if (jv && !vd_json_is_boolean(jv)) {
            vd_cerr(c, "exists takes no value, or true/false");
            ok = false;
        } else if (jv) {
            want = vd_json_is_true(jv);
        }
        p->test = VD_T_EXISTS;
        p->negate = !want;
        p->if_missing = !want;
    } else if (!jv) {
        vd_cerr(c, "missing (op \"%s\" needs a value)", op_names[op]);
        ok = false;
    } else {
        ok = compile_value(c, p, jv);
    }
    vd_cpath_pop(c, saved);
    if (ok) {
        vd_node *n = &c->rs->nodes[idx];
        n->kind = VD_N_PRED;
        n->a = pidx;
    }
}

/* ---- nodes ---------------------------------------------------------------- */

void vd_compile_ref(vd_compiler *c, const char *id, size_t n, uint32_t idx)
{
    int32_t seg = vd_ruleset_find_segment(c->rs, vd_str_make(id, n));
    if (seg >= 0) {
        c->rs->nodes[idx] = (vd_node){ VD_N_REF, (uint32_t)seg, 0 };
        return;
    }
    /* The parts of a match tree's path are literals, the node kinds
     * (static) and numbers: they can be kept past the JSON. */
    size_t np = c->plen < VD_CPATH_PARTS ? c->plen : VD_CPATH_PARTS;
    if (c->nrefs == c->cap_refs) {
        size_t cap = c->cap_refs ? c->cap_refs * 2 : 64;
        struct vd_pending_ref *r = vd_realloc(c->refs, cap * sizeof *r);
        if (!r) {
            c->oom = true;
            return;
        }
        c->refs = r;
        c->cap_refs = cap;
    }
    if (c->nref_parts + np > c->cap_ref_parts) {
        size_t cap = c->cap_ref_parts ? c->cap_ref_parts : 256;
        while (cap < c->nref_parts + np)
            cap *= 2;
        struct vd_cpath_part *p = vd_realloc(c->ref_parts, cap * sizeof *p);
        if (!p) {
            c->oom = true;
            return;
        }
        c->ref_parts = p;
        c->cap_ref_parts = cap;
    }
    vd_str s = vd_intern_str(&c->in, id, n, 0);
    if (!s.p) {
        c->oom = true;
        return;
    }
    memcpy(c->ref_parts + c->nref_parts, c->parts, np * sizeof *c->parts);
    c->refs[c->nrefs++] = (struct vd_pending_ref){
        .node = idx, .owner = c->cur_seg, .id = s, .doc = c->doc,
        .part_first = (uint32_t)c->nref_parts, .nparts = (uint32_t)np, .plen = c->plen,
    };
    c->nref_parts += np;
}

/* An all inside an all (an any inside an any) is the same condition as
 * its children in its place, with the same time bounds (the bounds an
 * all/any passes on, docs/RULES.md "valid_until", compose the same way
 * nested or flat): spliced at compile time, so the index sees guards one
 * level down and the evaluator walks one level less. Only a well-formed
 * {"all": [...]} (its only key, an array) within the depth limit is
 * spliced; its children keep their JSON paths and depth, so errors read
 * as before. */
static bool spliceable(const vd_json *e, int kind, int depth)
{
    if (depth > VD_MAX_RULE_DEPTH || !vd_json_is_object(e) || e->n != 1)
        return false;
    const char *k = e->u.members[0].key;
    return (kind == 0 ? k[0] == 'a' && k[1] == 'l' && k[2] == 'l' : k[0] == 'a' && k[1] == 'n' && k[2] == 'y') &&
           k[3] == '\0' && vd_json_is_array(&e->u.members[0].val);
}

/* Children of the all/any at depth whose array is v, spliced. */
static uint32_t spliced_count(const vd_json *v, int kind, int depth)
{
    uint32_t n = 0;
    for (size_t i = 0; i < vd_json_size(v); i++) {
        const vd_json *e = vd_json_at(v, i);
        n += spliceable(e, kind, depth + 1) ? spliced_count(&e->u.members[0].val, kind, depth + 1) : 1;
    }
    return n;
}

static void compile_spliced(vd_compiler *c, const vd_json *v, int kind, uint32_t *at, int depth)
{
    for (size_t i = 0; i < vd_json_size(v); i++) {
        const vd_json *e = vd_json_at(v, i);
        size_t s2 = vd_cpath_index(c, i);
        if (spliceable(e, kind, depth + 1)) {
            size_t s3 = vd_cpath_name(c, kind == 0 ? ".all" : ".any");
            compile_spliced(c, &e->u.members[0].val, kind, at, depth + 1);
            vd_cpath_pop(c, s3);
        } else {
            vd_compile_node(c, e, (*at)++, depth + 1);
        }
        vd_cpath_pop(c, s2);
    }
}

void vd_compile_node(vd_compiler *c, const vd_json *j, uint32_t idx, int depth)
{
    if (c->oom)
        return;
    if (depth > VD_MAX_RULE_DEPTH) {
        vd_cerr(c, "nested deeper than %d levels", VD_MAX_RULE_DEPTH);
        return;
    }
    if (!vd_json_is_object(j)) {
        vd_cerr(c, "a node must be an object: {\"all\"}, {\"any\"}, {\"not\"}, {\"segment\"} or "
                   "{\"attr\", \"op\", \"value\"}");
        return;
    }
    static const char *const kinds[] = { "all", "any", "not", "segment" };
    const vd_json *at[K__COUNT] = { 0 };
    vd_json_foreach(j, m) {
        int k = node_key(m);
        if (k != K_OTHER)
            at[k] = &m->val;
    }
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if (at[k]) {
            if (kind >= 0) {
                vd_cerr(c, "a node has both \"%s\" and \"%s\"", kinds[kind], kinds[k]);
                return;
            }
            kind = k;
        }
    if (kind < 0) {
        if (at[K_ATTR] || at[K_OP]) {
            compile_pred(c, j, at, idx);
            return;
        }
        const char *key = vd_json_size(j) ? j->u.members[0].key : NULL;
        if (key)
            vd_cerr(c, "unknown key \"%s\" (expected all, any, not, segment or attr/op/value)", key);
        else
            vd_cerr(c, "empty node (expected all, any, not, segment or attr/op/value)");
        return;
    }
    if (vd_json_size(j) != 1) {
        vd_json_foreach(j, m) {
            const char *key = m->key;
            if (strcmp(key, kinds[kind]))
                vd_cerr(c, "unknown key \"%s\" next to \"%s\"", key, kinds[kind]);
        }
        return;
    }
    const vd_json *v = at[kind];
    static const char *const kind_parts[] = { ".all", ".any", ".not", ".segment" };
    size_t saved = vd_cpath_name(c, kind_parts[kind]);
    if (kind <= 1) {
        if (!vd_json_is_array(v)) {
            vd_cerr(c, "needs an array of nodes");
        } else {
            uint32_t n = spliced_count(v, kind, depth);
            uint32_t first = vd_node_alloc(c, n);
            if (first != VD_NODE_NONE) {
                uint32_t next = first;
                compile_spliced(c, v, kind, &next, depth);
                c->rs->nodes[idx] = (vd_node){ kind == 0 ? VD_N_ALL : VD_N_ANY, first, n };
            }
        }
    } else if (kind == 2) {
        uint32_t child = vd_node_alloc(c, 1);
        if (child != VD_NODE_NONE) {
            vd_compile_node(c, v, child, depth + 1);
            c->rs->nodes[idx] = (vd_node){ VD_N_NOT, child, 1 };
        }
    } else {
        if (!vd_json_is_string(v))
            vd_cerr(c, "needs a segment id string");
        else
            vd_compile_ref(c, vd_json_str(v), vd_json_strlen(v), idx);
    }
    vd_cpath_pop(c, saved);
}
