/* url.c — split a URL into slices and read query parameters, no allocation.
 *
 * Input is hostile (Referer and page URLs come straight from clients), so the
 * parser is strict about the authority and lenient about path and query:
 *   - any byte <= 0x20 or 0x7f anywhere rejects the URL (controls, spaces);
 *   - the host is a DNS-ish name (letters, digits, '-', '.', '_'), at most 255
 *     bytes, or an IPv6 literal "[...]" of hex digits, ':' and '.', kept with
 *     its brackets so "host" never contains a bare ':';
 *   - the port, if any, is up to 5 digits and <= 65535;
 *   - bytes >= 0x80 are accepted in path and query (raw UTF-8 happens), never
 *     in the host (browsers send punycode).
 * The fragment is dropped. */
#include "context/url.h"

#include <string.h>

#define URL_HOST_MAX 255

static bool is_alpha(unsigned char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_hex(unsigned char c) { return vd_hex_value((char)c) >= 0; }

/* Byte classes, one table look-up per byte instead of a chain of tests. */
enum { C_HOST = 1, C_SCHEME = 2 };
#define HOST_CLASS_ROW(c) ((((c) | 32) >= 'a' && ((c) | 32) <= 'z') ? C_HOST | C_SCHEME    \
                           : ((c) >= '0' && (c) <= '9') ? C_HOST | C_SCHEME                 \
                           : ((c) == '-' || (c) == '.') ? C_HOST | C_SCHEME                 \
                           : (c) == '_' ? C_HOST : (c) == '+' ? C_SCHEME : 0)
#define R4(c) HOST_CLASS_ROW(c), HOST_CLASS_ROW((c) + 1), HOST_CLASS_ROW((c) + 2), HOST_CLASS_ROW((c) + 3)
#define R16(c) R4(c), R4((c) + 4), R4((c) + 8), R4((c) + 12)
static const unsigned char byte_class[256] = {
    R16(0), R16(16), R16(32), R16(48), R16(64), R16(80), R16(96), R16(112),
    /* 0x80-0xff: nothing (0) */
};
#undef R16
#undef R4
#undef HOST_CLASS_ROW

static bool is_host_char(unsigned char c) { return byte_class[c] & C_HOST; }

/* Whether any byte of s is <= 0x20 or 0x7f: eight bytes a step (the classic
 * "has a byte less than n" and "has a zero byte" word tests; both exact for
 * "any byte", and bytes >= 0x80 never count as less than 0x21). */
static bool has_control(const char *s, size_t n)
{
    const unsigned long long ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned long long w;
        memcpy(&w, s + i, 8);
        unsigned long long del = w ^ (0x7fULL * ones);
        if (((w - 0x21ULL * ones) & ~w & highs) | ((del - ones) & ~del & highs))
            return true;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* "[v6]" with the brackets; at least one ':' inside. */
static bool valid_ipv6_literal(vd_str h)
{
    if (h.n < 4 || h.p[0] != '[' || h.p[h.n - 1] != ']')
        return false;
    bool colon = false;
    for (size_t i = 1; i + 1 < h.n; i++) {
        unsigned char c = (unsigned char)h.p[i];
        if (c == ':')
            colon = true;
        else if (!is_hex(c) && c != '.')
            return false;
    }
    return colon;
}

static bool valid_reg_name(vd_str h)
{
    if (h.n == 0 || h.n > URL_HOST_MAX)
        return false;
    for (size_t i = 0; i < h.n; i++)
        if (!is_host_char((unsigned char)h.p[i]))
            return false;
    return true;
}

static bool valid_port(const char *p, size_t n)
{
    if (n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* authority = [userinfo@]host[:port]; fills out->host. */
static bool parse_authority(const char *p, size_t n, vd_url *out)
{
    /* userinfo ends at the last '@' (passwords may contain '@' unencoded). */
    for (size_t i = n; i > 0; i--) {
        if (p[i - 1] == '@') {
            p += i;
            n -= i;
            break;
        }
    }
    size_t hn;
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close)
            return false;
        hn = (size_t)(close - p) + 1;
        if (!valid_ipv6_literal(vd_str_make(p, hn)))
            return false;
    } else {
        const char *colon = memchr(p, ':', n);
        hn = colon ? (size_t)(colon - p) : n;
        if (!valid_reg_name(vd_str_make(p, hn)))
            return false;
    }
    if (hn < n) {
        if (p[hn] != ':' || !valid_port(p + hn + 1, n - hn - 1))
            return false;
    }
    out->host = vd_str_make(p, hn);
    return true;
}

/* path?query (fragment already cut). */
static void split_path_query(const char *p, size_t n, vd_url *out)
{
    const char *q = memchr(p, '?', n);
    size_t pn = q ? (size_t)(q - p) : n;
    out->path = pn ? vd_str_make(p, pn) : VD_STR_LIT("/");
    if (q)
        out->query = vd_str_make(q + 1, n - pn - 1);
}

bool vd_url_parse(vd_str s, vd_url *out)
{
    memset(out, 0, sizeof *out);
    if (!s.p || s.n == 0)
        return false;
    if (has_control(s.p, s.n))
        return false;
    const char *hash = memchr(s.p, '#', s.n);
    size_t n = hash ? (size_t)(hash - s.p) : s.n;
    const char *p = s.p;
    if (n == 0)
        return false;

    if (p[0] == '/' && !(n >= 2 && p[1] == '/')) {      /* origin-form */
        split_path_query(p, n, out);
        return true;
    }

    size_t i = 0;
    if (p[0] != '/') {                                   /* scheme "://" */
        if (!is_alpha((unsigned char)p[0]))
            return false;
        while (i < n && (byte_class[(unsigned char)p[i]] & C_SCHEME))
            i++;
        if (i + 3 > n || p[i] != ':' || p[i + 1] != '/' || p[i + 2] != '/') {
            memset(out, 0, sizeof *out);
            return false;
        }
        out->scheme = vd_str_make(p, i);
        i += 3;
    } else {
        i = 2;                                           /* "//host" */
    }

    size_t a = i;
    /* Fast path, the usual authority: a plain host name up to the path,
     * the query or the end (what parse_authority accepts for it without
     * userinfo, port or brackets). Anything else takes the general path. */
    while (i < n && (byte_class[(unsigned char)p[i]] & C_HOST))
        i++;
    if ((i == n || p[i] == '/' || p[i] == '?') && i > a && i - a <= URL_HOST_MAX) {
        out->host = vd_str_make(p + a, i - a);
        split_path_query(p + i, n - i, out);
        return true;
    }
    while (i < n && p[i] != '/' && p[i] != '?')
        i++;
    if (!parse_authority(p + a, i - a, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    split_path_query(p + i, n - i, out);
    return true;
}

bool vd_url_query_next(vd_str query, size_t *pos, vd_str *key, vd_str *value)
{
    size_t i = *pos;
    if (!query.p)
        return false;
    if (i == 0 && query.n > 0 && query.p[0] == '?')
        i = 1;
    while (i < query.n) {
        size_t start = i;
        const char *amp = memchr(query.p + i, '&', query.n - i);
        i = amp ? (size_t)(amp - query.p) : query.n;
        size_t end = i;
        if (i < query.n)
            i++;                                          /* skip '&' */
        if (end == start)
            continue;                                     /* "a=1&&b=2" */
        const char *eq = memchr(query.p + start, '=', end - start);
        if (eq) {
            *key = vd_str_make(query.p + start, (size_t)(eq - query.p) - start);
            *value = vd_str_make(eq + 1, end - (size_t)(eq - query.p) - 1);
        } else {
            *key = vd_str_make(query.p + start, end - start);
            *value = vd_str_make(query.p + end, 0);
        }
        *pos = i;
        return true;
    }
    *pos = i;
    return false;
}

size_t vd_url_decode(vd_str s, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < s.n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < s.n && is_hex((unsigned char)s.p[i + 1]) &&
                   is_hex((unsigned char)s.p[i + 2])) {
            c = (unsigned char)(vd_hex_value((char)s.p[i + 1]) * 16 +
                                vd_hex_value((char)s.p[i + 2]));
            i += 2;
        }
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return o;
}

/* True if the raw key k, percent- and '+'-decoded as vd_url_decode does,
 * equals name ASCII case-insensitively. Decodes while comparing: a key
 * decoded into a fixed buffer first would be cut, and a long encoded key
 * ("aaa...a%62") then matched the name equal to its cut prefix. */
static bool key_eq_decoded(vd_str k, vd_str name)
{
    size_t j = 0;
    for (size_t i = 0; i < k.n; i++, j++) {
        unsigned char c = (unsigned char)k.p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < k.n && is_hex((unsigned char)k.p[i + 1]) &&
                   is_hex((unsigned char)k.p[i + 2])) {
            c = (unsigned char)(vd_hex_value((char)k.p[i + 1]) * 16 +
                                vd_hex_value((char)k.p[i + 2]));
            i += 2;
        }
        if (j >= name.n)
            return false;
        unsigned char d = (unsigned char)name.p[j];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c | 32);
        if (d >= 'A' && d <= 'Z') d = (unsigned char)(d | 32);
        if (c != d)
            return false;
    }
    return j == name.n;
}

bool vd_url_key_encoded(vd_str k)
{
    return memchr(k.p, '%', k.n) || memchr(k.p, '+', k.n);
}

bool vd_url_key_eq(vd_str k, bool encoded, vd_str name)
{
    return encoded ? key_eq_decoded(k, name) : vd_str_eq_ci(k, name);
}

bool vd_url_query_get(vd_str query, vd_str name, char *buf, size_t cap, vd_str *out)
{
    size_t pos = 0;
    vd_str k, v;
    *out = VD_STR_NULL;
    if (buf && cap)
        buf[0] = '\0';
    while (vd_url_query_next(query, &pos, &k, &v)) {
        /* Encoded keys ("utm%5Fsource") are rare; decode only when needed. */
        bool encoded = memchr(k.p, '%', k.n) || memchr(k.p, '+', k.n);
        if (encoded ? !key_eq_decoded(k, name) : !vd_str_eq_ci(k, name))
            continue;
        size_t n = vd_url_decode(v, buf, cap);
        *out = vd_str_make(buf, n);
        return true;
    }
    return false;
}
