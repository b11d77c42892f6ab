/* fuzz_edge_query.c — libFuzzer target for the edge port's query string
 * (context/url.c: vd_url_query_next, which the edge uses) and Cookie header
 * parsing (net/http_edge.c), and the percent-decoder they feed.
 *
 *   make build/fuzz/fuzz_edge_query
 *   build/fuzz/fuzz_edge_query -max_total_time=60 /tmp/variantd-fuzz/edge_query \
 *       tests/fuzz/corpus/edge_query
 *
 * Input: query \0 cookie-header \0 cookie-name (missing parts are empty).
 * Each part is an exact-size heap copy (ASan sees any read past its end).
 * Checks:
 *   - vd_url_query_next yields key/value slices inside the query, advances
 *     strictly, ends, and the pairs it yields are exactly those of a
 *     reference split on '&' (a leading '?' skipped, empty items skipped, no
 *     '=' gives an empty value at the item's end);
 *   - vd_url_decode writes at most cap bytes and never more than its input;
 *   - vd_edge_cookie_get returns a slice inside the header, with no
 *     surrounding spaces, equal to what a reference parser finds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "context/url.h"
#include "net/http_edge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static bool inside(vd_str s, vd_str in)
{
    if (s.n == 0)
        return true;
    return s.p >= in.p && s.p + s.n <= in.p + in.n;
}

static void check_query(vd_str q)
{
    size_t pos = 0, prev = 0, n = 0;
    vd_str k, v;
    /* The reference: items between separators, empty ones skipped. */
    size_t rpos = q.n > 0 && q.p[0] == '?' ? 1 : 0;
    while (vd_url_query_next(q, &pos, &k, &v)) {
        CHECK(pos > prev || n == 0);
        CHECK(pos <= q.n);
        prev = pos;
        CHECK(inside(k, q) && inside(v, q));
        while (rpos < q.n && q.p[rpos] == '&')
            rpos++;
        CHECK(rpos < q.n);
        size_t end = rpos;
        while (end < q.n && q.p[end] != '&')
            end++;
        const char *eq = memchr(q.p + rpos, '=', end - rpos);
        CHECK(k.p == q.p + rpos);
        CHECK(k.n == (size_t)((eq ? eq : q.p + end) - (q.p + rpos)));
        CHECK(eq ? (v.p == eq + 1 && v.n == (size_t)(q.p + end - eq - 1)) : v.n == 0);
        rpos = end;
        char out[64];
        size_t cap = (size_t)(n % 3 == 0 ? 1 : n % 3 == 1 ? 8 : sizeof out);
        size_t m = vd_url_decode(v, out, cap);
        CHECK(m < cap && m <= v.n);
        CHECK(out[m] == '\0');
        if (++n > q.n + 1)
            abort();
    }
    while (rpos < q.n && q.p[rpos] == '&')
        rpos++;
    CHECK(rpos >= q.n);
}

static bool sp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static vd_str ref_cookie(vd_str h, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < h.n) {
        size_t start = i;
        while (i < h.n && h.p[i] != ';')
            i++;
        size_t end = i;
        i++;
        while (start < end && (h.p[start] == ' ' || h.p[start] == ';'))
            start++;
        const char *eq = memchr(h.p + start, '=', end - start);
        if (!eq)
            continue;
        size_t ks = start, ke = (size_t)(eq - h.p);
        while (ks < ke && sp(h.p[ks]))
            ks++;
        while (ke > ks && sp(h.p[ke - 1]))
            ke--;
        if (ke - ks != nlen || memcmp(h.p + ks, name, nlen) != 0)
            continue;
        size_t vs = (size_t)(eq - h.p) + 1, ve = end;
        while (vs < ve && sp(h.p[vs]))
            vs++;
        while (ve > vs && sp(h.p[ve - 1]))
            ve--;
        if (ve - vs >= 2 && h.p[vs] == '"' && h.p[ve - 1] == '"') {
            vs++;
            ve--;
        }
        return vd_str_make(h.p + vs, ve - vs);
    }
    return VD_STR_NULL;
}

static void check_cookie(vd_str h, vd_str name)
{
    char nm[64];
    size_t nlen = name.n < sizeof nm - 1 ? name.n : sizeof nm - 1;
    memcpy(nm, name.p, nlen);
    nm[nlen] = '\0';
    nlen = strlen(nm);        /* the cookie name is a C string */
    vd_str v = vd_edge_cookie_get(h, nm);
    CHECK(inside(v, h));
    vd_str r = ref_cookie(h, nm, nlen);
    CHECK(v.n == r.n);
    CHECK(v.n == 0 || v.p == r.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *parts[3] = { NULL, NULL, NULL };
    size_t lens[3] = { 0, 0, 0 };
    size_t at = 0;
    for (int i = 0; i < 3 && at <= size; i++) {
        const uint8_t *z = i < 2 ? memchr(data + at, 0, size - at) : NULL;
        size_t n = z ? (size_t)(z - (data + at)) : size - at;
        parts[i] = (const char *)data + at;
        lens[i] = n;
        at += n + 1;
    }
    char *cp[3];
    for (int i = 0; i < 3; i++) {
        cp[i] = malloc(lens[i] ? lens[i] : 1);
        if (!cp[i])
            abort();
        if (lens[i])
            memcpy(cp[i], parts[i], lens[i]);
    }
    check_query(vd_str_make(cp[0], lens[0]));
    check_cookie(vd_str_make(cp[1], lens[1]), vd_str_make(cp[2], lens[2]));
    /* The query string as a Cookie header, too: many separators. */
    check_cookie(vd_str_make(cp[0], lens[0]), vd_str_make(cp[2], lens[2]));
    for (int i = 0; i < 3; i++)
        free(cp[i]);
    return 0;
}
