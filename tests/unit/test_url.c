/* test_url.c — vd_url_parse, query parameters and percent-decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "context/url.h"

static bool slice_is(vd_str s, const char *want)
{
    return s.n == strlen(want) && (s.n == 0 || memcmp(s.p, want, s.n) == 0);
}

#define ASSERT_SLICE(s, want) assert_true(slice_is((s), (want)))

static void test_absolute(void **state)
{
    (void)state;
    vd_url u;
    assert_true(vd_url_parse(VD_STR_LIT("https://user:pw@Shop.Example.com:8443/a/b?x=1&y=2#frag"), &u));
    ASSERT_SLICE(u.scheme, "https");
    ASSERT_SLICE(u.host, "Shop.Example.com");
    ASSERT_SLICE(u.path, "/a/b");
    ASSERT_SLICE(u.query, "x=1&y=2");

    assert_true(vd_url_parse(VD_STR_LIT("http://example.com"), &u));
    ASSERT_SLICE(u.host, "example.com");
    ASSERT_SLICE(u.path, "/");
    assert_int_equal(u.query.n, 0);

    assert_true(vd_url_parse(VD_STR_LIT("http://example.com?q=1"), &u));
    ASSERT_SLICE(u.path, "/");
    ASSERT_SLICE(u.query, "q=1");

    /* '@' in the password: userinfo ends at the last '@' */
    assert_true(vd_url_parse(VD_STR_LIT("ftp://a@b@host.org/x"), &u));
    ASSERT_SLICE(u.host, "host.org");

    assert_true(vd_url_parse(VD_STR_LIT("android-app://com.google.android.gm/"), &u));
    ASSERT_SLICE(u.scheme, "android-app");
    ASSERT_SLICE(u.host, "com.google.android.gm");
}

static void test_schemeless_and_origin(void **state)
{
    (void)state;
    vd_url u;
    assert_true(vd_url_parse(VD_STR_LIT("//cdn.example.net/p?q"), &u));
    assert_int_equal(u.scheme.n, 0);
    ASSERT_SLICE(u.host, "cdn.example.net");
    ASSERT_SLICE(u.path, "/p");
    ASSERT_SLICE(u.query, "q");

    assert_true(vd_url_parse(VD_STR_LIT("/landing?utm_source=x#top"), &u));
    assert_int_equal(u.host.n, 0);
    ASSERT_SLICE(u.path, "/landing");
    ASSERT_SLICE(u.query, "utm_source=x");
}

static void test_ipv6(void **state)
{
    (void)state;
    vd_url u;
    assert_true(vd_url_parse(VD_STR_LIT("http://[::1]:8080/x"), &u));
    ASSERT_SLICE(u.host, "[::1]");
    ASSERT_SLICE(u.path, "/x");
    assert_true(vd_url_parse(VD_STR_LIT("http://[2001:db8::7]/"), &u));
    ASSERT_SLICE(u.host, "[2001:db8::7]");
    assert_false(vd_url_parse(VD_STR_LIT("http://[::1/x"), &u));        /* unclosed */
    assert_false(vd_url_parse(VD_STR_LIT("http://[zz::1]/"), &u));      /* not hex */
    assert_false(vd_url_parse(VD_STR_LIT("http://[1234]/"), &u));       /* no colon */
    assert_false(vd_url_parse(VD_STR_LIT("http://[::1]x/"), &u));       /* junk after ] */
}

static void test_garbage(void **state)
{
    (void)state;
    vd_url u;
    static const char *const bad[] = {
        "", "example.com/path", "http:/x", "http//x", "://x", "1http://x",
        "http://exa mple.com/", "http://example.com/a b", "http://exa\tmple.com/",
        "http://ex\x01.com/", "http://example.com/\x7f", "http://ex<am>ple.com/",
        "http://ex%41mple.com/", "http://\xc3\xa9t\xc3\xa9.fr/", "http:///path",
        "http://:80/", "http://host:99999/", "http://host:12a/", "http://host:123456/",
        "mailto:someone@example.com", "javascript:alert(1)", "#frag", "?q=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&u, 0x55, sizeof u);
        if (vd_url_parse(vd_str_cstr(bad[i]), &u))
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(u.host.n, 0);              /* zeroed on failure */
        assert_null(u.host.p);
    }
    assert_false(vd_url_parse(VD_STR_NULL, &u));
    /* a host longer than 255 bytes */
    char big[400];
    memcpy(big, "http://", 7);
    memset(big + 7, 'a', 300);
    memcpy(big + 307, "/x", 3);
    assert_false(vd_url_parse(vd_str_cstr(big), &u));
    /* port 65535 and an empty port are fine */
    assert_true(vd_url_parse(VD_STR_LIT("http://h:65535/"), &u));
    assert_true(vd_url_parse(VD_STR_LIT("http://h:/"), &u));
    ASSERT_SLICE(u.host, "h");
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    char buf[] = "http://a.example/p?q=1XXXXXXXX";
    vd_url u;
    assert_true(vd_url_parse(vd_str_make(buf, 20), &u));   /* "http://a.example/p?q" */
    ASSERT_SLICE(u.query, "q");
}

static void test_big_input(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *s = malloc(n);
    assert_non_null(s);
    memcpy(s, "https://example.com/?a=", 23);
    memset(s + 23, 'x', n - 23);
    vd_url u;
    assert_true(vd_url_parse(vd_str_make(s, n), &u));
    assert_int_equal(u.query.n, n - 21);
    char out[16];
    vd_str v;
    assert_true(vd_url_query_get(u.query, VD_STR_LIT("a"), out, sizeof out, &v));
    assert_int_equal(v.n, 15);                      /* cut at cap-1 */
    assert_int_equal(out[15], '\0');
    s[n / 2] = ' ';
    assert_false(vd_url_parse(vd_str_make(s, n), &u));
    free(s);
}

static void test_query_get(void **state)
{
    (void)state;
    char buf[64];
    vd_str v;
    vd_str q = VD_STR_LIT("a=1&UTM_Source=News%20Letter&b=x+y&empty=&flag&c=%zz%4&d=%41%62");
    assert_true(vd_url_query_get(q, VD_STR_LIT("utm_source"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "News Letter");
    assert_ptr_equal(v.p, buf);
    assert_true(vd_url_query_get(q, VD_STR_LIT("b"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "x y");
    assert_true(vd_url_query_get(q, VD_STR_LIT("empty"), buf, sizeof buf, &v));
    assert_int_equal(v.n, 0);
    assert_true(vd_url_query_get(q, VD_STR_LIT("flag"), buf, sizeof buf, &v));
    assert_int_equal(v.n, 0);
    assert_true(vd_url_query_get(q, VD_STR_LIT("c"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "%zz%4");                       /* invalid escapes kept */
    assert_true(vd_url_query_get(q, VD_STR_LIT("d"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "Ab");
    assert_false(vd_url_query_get(q, VD_STR_LIT("missing"), buf, sizeof buf, &v));
    assert_int_equal(v.n, 0);
    assert_false(vd_url_query_get(q, VD_STR_LIT("utm_sourc"), buf, sizeof buf, &v));
    /* first occurrence wins; an encoded key matches */
    assert_true(vd_url_query_get(VD_STR_LIT("k=1&k=2"), VD_STR_LIT("k"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "1");
    assert_true(vd_url_query_get(VD_STR_LIT("utm%5Fmedium=cpc"), VD_STR_LIT("utm_medium"), buf,
                                 sizeof buf, &v));
    ASSERT_SLICE(v, "cpc");
    /* truncation */
    char small[4];
    assert_true(vd_url_query_get(VD_STR_LIT("k=abcdef"), VD_STR_LIT("k"), small, sizeof small, &v));
    ASSERT_SLICE(v, "abc");
    /* a leading '?' is tolerated */
    assert_true(vd_url_query_get(VD_STR_LIT("?k=v"), VD_STR_LIT("k"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "v");
    assert_false(vd_url_query_get(VD_STR_NULL, VD_STR_LIT("k"), buf, sizeof buf, &v));
}

/* Caught by fuzz_context's reference check: a long encoded key used to be
 * decoded into a 128-byte buffer and cut, so "aaa...a%62" (127 a's + 'b')
 * matched the name of 127 a's. Keys now compare while decoding. */
static void test_query_get_long_encoded_key(void **state)
{
    (void)state;
    char q[600], name[300], buf[16];
    vd_str v;
    memset(q, 'a', 127);
    memcpy(q + 127, "%62=v", 6);
    memset(name, 'a', 127);
    assert_false(vd_url_query_get(vd_str_cstr(q), vd_str_make(name, 127), buf, sizeof buf, &v));
    assert_int_equal(v.n, 0);
    /* the whole decoded key matches, however long (was skipped past 383 bytes) */
    name[127] = 'B';
    assert_true(vd_url_query_get(vd_str_cstr(q), vd_str_make(name, 128), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "v");
    memset(q, 0, sizeof q);
    for (int i = 0; i < 150; i++)
        memcpy(q + 3 * i, "%41", 3);
    memcpy(q + 450, "=x", 3);
    memset(name, 'a', 150);
    assert_true(vd_url_query_get(vd_str_cstr(q), vd_str_make(name, 150), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "x");
    assert_false(vd_url_query_get(vd_str_cstr(q), vd_str_make(name, 149), buf, sizeof buf, &v));
    /* '+' and a cut escape decode as vd_url_decode does */
    assert_true(vd_url_query_get(VD_STR_LIT("a+b%4=1"), VD_STR_LIT("A B%4"), buf, sizeof buf, &v));
    ASSERT_SLICE(v, "1");
}

static void test_query_next(void **state)
{
    (void)state;
    vd_str q = VD_STR_LIT("a=1&&b&c=x=y&");
    size_t pos = 0;
    vd_str k, v;
    assert_true(vd_url_query_next(q, &pos, &k, &v));
    ASSERT_SLICE(k, "a");
    ASSERT_SLICE(v, "1");
    assert_true(vd_url_query_next(q, &pos, &k, &v));
    ASSERT_SLICE(k, "b");
    assert_int_equal(v.n, 0);
    assert_true(vd_url_query_next(q, &pos, &k, &v));
    ASSERT_SLICE(k, "c");
    ASSERT_SLICE(v, "x=y");
    assert_false(vd_url_query_next(q, &pos, &k, &v));
    assert_false(vd_url_query_next(q, &pos, &k, &v));
    pos = 0;
    assert_false(vd_url_query_next(VD_STR_LIT(""), &pos, &k, &v));
}

static void test_decode(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(vd_url_decode(VD_STR_LIT("a+b%2Bc"), buf, sizeof buf), 5);
    assert_string_equal(buf, "a b+c");
    assert_int_equal(vd_url_decode(VD_STR_LIT("%"), buf, sizeof buf), 1);
    assert_string_equal(buf, "%");
    assert_int_equal(vd_url_decode(VD_STR_LIT("%4"), buf, sizeof buf), 2);
    assert_string_equal(buf, "%4");
    assert_int_equal(vd_url_decode(VD_STR_LIT("0123456789"), buf, sizeof buf), 7);
    assert_string_equal(buf, "0123456");
    assert_int_equal(vd_url_decode(VD_STR_LIT("%C3%A9"), buf, sizeof buf), 2);
    assert_int_equal((unsigned char)buf[0], 0xC3);
    assert_int_equal(vd_url_decode(VD_STR_LIT("abc"), buf, 0), 0);
    assert_int_equal(vd_url_decode(VD_STR_LIT("abc"), buf, 1), 0);
    assert_string_equal(buf, "");
}

/* ---- the parser before its fast paths, kept as the reference ---------- */

#define URL_HOST_MAX 255
static bool ref_is_alpha(unsigned char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static bool ref_is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool ref_is_hex(unsigned char c) { return vd_hex_value((char)c) >= 0; }

static bool ref_is_host_char(unsigned char c)
{
    return ref_is_alpha(c) || ref_is_digit(c) || c == '-' || c == '.' || c == '_';
}

/* "[v6]" with the brackets; at least one ':' inside. */
static bool ref_valid_ipv6_literal(vd_str h)
{
    if (h.n < 4 || h.p[0] != '[' || h.p[h.n - 1] != ']')
        return false;
    bool colon = false;
    for (size_t i = 1; i + 1 < h.n; i++) {
        unsigned char c = (unsigned char)h.p[i];
        if (c == ':')
            colon = true;
        else if (!ref_is_hex(c) && c != '.')
            return false;
    }
    return colon;
}

static bool ref_valid_reg_name(vd_str h)
{
    if (h.n == 0 || h.n > URL_HOST_MAX)
        return false;
    for (size_t i = 0; i < h.n; i++)
        if (!ref_is_host_char((unsigned char)h.p[i]))
            return false;
    return true;
}

static bool ref_valid_port(const char *p, size_t n)
{
    if (n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ref_is_digit((unsigned char)p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* authority = [userinfo@]host[:port]; fills out->host. */
static bool ref_parse_authority(const char *p, size_t n, vd_url *out)
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
        if (!ref_valid_ipv6_literal(vd_str_make(p, hn)))
            return false;
    } else {
        const char *colon = memchr(p, ':', n);
        hn = colon ? (size_t)(colon - p) : n;
        if (!ref_valid_reg_name(vd_str_make(p, hn)))
            return false;
    }
    if (hn < n) {
        if (p[hn] != ':' || !ref_valid_port(p + hn + 1, n - hn - 1))
            return false;
    }
    out->host = vd_str_make(p, hn);
    return true;
}

/* path?query (fragment already cut). */
static void ref_split_path_query(const char *p, size_t n, vd_url *out)
{
    const char *q = memchr(p, '?', n);
    size_t pn = q ? (size_t)(q - p) : n;
    out->path = pn ? vd_str_make(p, pn) : VD_STR_LIT("/");
    if (q)
        out->query = vd_str_make(q + 1, n - pn - 1);
}

static bool ref_url_parse(vd_str s, vd_url *out)
{
    memset(out, 0, sizeof *out);
    if (!s.p || s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    const char *hash = memchr(s.p, '#', s.n);
    size_t n = hash ? (size_t)(hash - s.p) : s.n;
    const char *p = s.p;
    if (n == 0)
        return false;

    if (p[0] == '/' && !(n >= 2 && p[1] == '/')) {      /* origin-form */
        ref_split_path_query(p, n, out);
        return true;
    }

    size_t i = 0;
    if (p[0] != '/') {                                   /* scheme "://" */
        if (!ref_is_alpha((unsigned char)p[0]))
            return false;
        while (i < n && (ref_is_alpha((unsigned char)p[i]) || ref_is_digit((unsigned char)p[i]) ||
                         p[i] == '+' || p[i] == '-' || p[i] == '.'))
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
    while (i < n && p[i] != '/' && p[i] != '?')
        i++;
    if (!ref_parse_authority(p + a, i - a, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    ref_split_path_query(p + i, n - i, out);
    return true;
}


static bool same_slice(vd_str a, vd_str b)
{
    /* The same bytes of the input, or both the literal "/" (or both empty). */
    if (a.n != b.n)
        return false;
    if (a.p == b.p)
        return true;
    return a.n == 1 && a.p && b.p && a.p[0] == '/' && b.p[0] == '/';
}

static void assert_same_parse(const char *buf, size_t n)
{
    vd_url a, b;
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0x5a, sizeof b);
    bool ra = vd_url_parse(vd_str_make(buf, n), &a);
    bool rb = ref_url_parse(vd_str_make(buf, n), &b);
    if (ra != rb || !same_slice(a.scheme, b.scheme) || !same_slice(a.host, b.host) ||
        !same_slice(a.path, b.path) || !same_slice(a.query, b.query))
        fail_msg("vd_url_parse differs from the reference on \"%.*s\" (%zu bytes): %d vs %d",
                 (int)n, buf, n, ra, rb);
}

/* The fast paths (eight-byte control check, byte-class tables, plain-host
 * authority) answer exactly as the byte-by-byte parser: every byte value at
 * every position of URLs of each length, then random strings built from the
 * pieces that steer the parser. */
static void test_same_as_reference(void **state)
{
    (void)state;
    char buf[600];
    const char *base = "https://www.example.co.uk:8080/a/b?x=1&y=2#frag";
    size_t bn = strlen(base);
    for (size_t len = 1; len <= bn; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int c = 0; c < 256; c++) {
                memcpy(buf, base, len);
                buf[pos] = (char)c;
                assert_same_parse(buf, len);
            }
    static const char *const pieces[] = {
        "http", "https", "HTTP", "://", ":/", "//", "/", "?", "#", "@", ":", "[", "]", "::1",
        "a", "Z", "0", "9", "-", ".", "_", "+", "%", "%41", " ", "\x7f", "\x01", "\x80", "\xff",
        "&", "=", "8080", "99999", "65536", "www.example.com", "user:pw", "[2001:db8::1]",
        "shop.example", "q=a+b", "utm_source=x",
    };
    const size_t np = sizeof pieces / sizeof pieces[0];
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = 0;
        int k = 1 + (int)((r >> 60) & 15);
        for (int j = 0; j < k; j++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            const char *pc = pieces[r % np];
            size_t pn = strlen(pc);
            memcpy(buf + n, pc, pn);
            n += pn;
        }
        assert_same_parse(buf, n);
    }
    /* hosts around the 255-byte limit, with and without a path */
    for (size_t hn = 250; hn <= 260; hn++) {
        memcpy(buf, "http://", 7);
        memset(buf + 7, 'a', hn);
        assert_same_parse(buf, 7 + hn);
        memcpy(buf + 7 + hn, "/p?q", 4);
        assert_same_parse(buf, 7 + hn + 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absolute),
        cmocka_unit_test(test_schemeless_and_origin),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_big_input),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_query_get_long_encoded_key),
        cmocka_unit_test(test_query_next),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_same_as_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
