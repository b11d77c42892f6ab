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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
