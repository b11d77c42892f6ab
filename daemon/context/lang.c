/* lang.c — primary language from an Accept-Language value.
 *
 * "de-CH,de;q=0.9,en;q=0.8,*;q=0.5" -> "de". Rules:
 *   - items are split on ','; whitespace around items and parameters is ignored;
 *   - the highest q wins; equal q keeps header order (first one wins);
 *   - "*" and q=0 are ignored;
 *   - the primary subtag (before '-' or '_') must be 2-8 ASCII letters, else
 *     the item is skipped ("i-klingon", "x-foo", "12", "en1");
 *   - q is read as RFC 9110 qvalue (0, 0.xxx, 1, 1.000; extra decimals are
 *     ignored). A malformed q ("q=abc", "q=2", "q=") is treated as the lowest
 *     non-zero weight (0.001): the language is still usable when nothing else
 *     is, but a garbled item never outranks a well-formed one;
 *   - one linear pass, no allocation: a 100 KB header costs 100 KB of reading. */
#include "context/lang.h"

#include <string.h>

static bool is_ws(char c) { return c == ' ' || c == '\t'; }
static bool is_letter(char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static vd_str trim(const char *p, size_t n)
{
    while (n && is_ws(*p)) {
        p++;
        n--;
    }
    while (n && is_ws(p[n - 1]))
        n--;
    return vd_str_make(p, n);
}

/* qvalue in thousandths, or -1 if malformed. */
static int parse_q(vd_str v)
{
    size_t i = 0;
    if (v.n == 0 || !is_digit(v.p[0]))
        return -1;
    int ip = v.p[i++] - '0';
    if (ip > 1)
        return -1;
    int frac = 0, scale = 100;
    if (i < v.n) {
        if (v.p[i++] != '.')
            return -1;
        for (; i < v.n; i++) {
            if (!is_digit(v.p[i]))
                return -1;
            if (scale) {
                frac += (v.p[i] - '0') * scale;
                scale /= 10;
            }
        }
    }
    int q = ip * 1000 + frac;
    return q > 1000 ? -1 : q;
}

/* Weight of one item's parameter list ("; q=0.5; foo=bar"). */
static int item_q(const char *p, size_t n)
{
    int q = 1000;
    while (n) {
        const char *semi = memchr(p, ';', n);
        size_t len = semi ? (size_t)(semi - p) : n;
        vd_str param = trim(p, len);
        if (param.n >= 1 && (param.p[0] | 32) == 'q') {
            vd_str rest = trim(param.p + 1, param.n - 1);
            if (rest.n && rest.p[0] == '=') {
                int v = parse_q(trim(rest.p + 1, rest.n - 1));
                q = v < 0 ? 1 : v;
            }
        }
        if (!semi)
            break;
        p = semi + 1;
        n -= len + 1;
    }
    return q;
}

bool vd_lang_primary(vd_str al, char out[9])
{
    int best_q = 0;
    out[0] = '\0';
    if (!al.p)
        return false;
    const char *p = al.p;
    size_t n = al.n;
    while (n) {
        const char *comma = memchr(p, ',', n);
        size_t len = comma ? (size_t)(comma - p) : n;
        const char *semi = memchr(p, ';', len);
        size_t rlen = semi ? (size_t)(semi - p) : len;
        vd_str range = trim(p, rlen);

        size_t k = 0;
        while (k < range.n && range.p[k] != '-' && range.p[k] != '_')
            k++;
        bool ok = k >= 2 && k <= 8;
        for (size_t j = 0; ok && j < k; j++)
            ok = is_letter(range.p[j]);
        if (ok) {
            int q = semi ? item_q(semi + 1, len - rlen - 1) : 1000;
            if (q > best_q) {
                best_q = q;
                for (size_t j = 0; j < k; j++)
                    out[j] = (char)(range.p[j] | 32);
                out[k] = '\0';
                if (q == 1000)
                    break;                              /* nothing later can win */
            }
        }
        if (!comma)
            break;
        p = comma + 1;
        n -= len + 1;
    }
    return best_q > 0;
}
