/* test_ip.c — client IP literal parsing, formatting and prefix checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "context/ip.h"

static bool parse(const char *s, vd_ipaddr *ip)
{
    return vd_ip_parse(vd_str_make(s, strlen(s)), ip);
}

static void expect_text(const char *in, int family, const char *text)
{
    vd_ipaddr ip;
    char buf[64];
    if (!parse(in, &ip))
        fail_msg("rejected valid '%s'", in);
    assert_int_equal(ip.family, family);
    assert_string_equal(vd_ip_format(&ip, buf, sizeof buf), text);
}

static void test_valid(void **state)
{
    (void)state;
    expect_text("1.2.3.4", 4, "1.2.3.4");
    expect_text("0.0.0.0", 4, "0.0.0.0");
    expect_text("255.255.255.255", 4, "255.255.255.255");
    expect_text("::", 6, "::");
    expect_text("::1", 6, "::1");
    expect_text("2001:DB8::1", 6, "2001:db8::1");
    expect_text("2001:db8:0:0:0:0:0:1", 6, "2001:db8::1");
    expect_text("fe80::1%eth0", 6, "fe80::1");
    expect_text("[2001:db8::2]", 6, "2001:db8::2");
    expect_text("[fe80::1%25eth0]", 6, "fe80::1");
    expect_text("::ffff:1.2.3.4", 4, "1.2.3.4");
    expect_text("::FFFF:0102:0304", 4, "1.2.3.4");
    expect_text("[::ffff:10.0.0.1]", 4, "10.0.0.1");
    expect_text("64:ff9b::1.2.3.4", 6, "64:ff9b::102:304");
    vd_ipaddr ip;
    assert_true(parse("10.20.30.40", &ip));
    assert_memory_equal(ip.addr, ((uint8_t[]){ 10, 20, 30, 40 }), 4);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", " ", "1.2.3", "1.2.3.4.5", "999.1.1.1", "256.0.0.1", "01.2.3.4", "1.2.3.04",
        "1.2.3.4:80", "[::1]:80", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.", ".1.2.3",
        "a.b.c.d", "::g", "1:2:3:4:5:6:7:8:9", "1::2::3", "[1.2.3.4]", "1.2.3.4%eth0",
        "[::1", "::1]", "[]", "fe80::1%", "fe80::1% x", "-1.2.3.4", "1.2.3.+4", "0x1.2.3.4",
        "localhost", "unknown", "1.2.3.4,5.6.7.8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_ipaddr ip;
        memset(&ip, 0xaa, sizeof ip);
        if (parse(bad[i], &ip))
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ip.family, 0);
    }
    /* Not NUL-terminated: the parser must stop at n. */
    vd_ipaddr ip;
    assert_true(vd_ip_parse(vd_str_make("1.2.3.45", 7), &ip));
    char buf[64];
    assert_string_equal(vd_ip_format(&ip, buf, sizeof buf), "1.2.3.4");
    /* Embedded NUL. */
    assert_false(vd_ip_parse(vd_str_make("1.2.3.4\0", 8), &ip));
    assert_false(vd_ip_parse(vd_str_make("::1\0:", 5), &ip));
    assert_false(vd_ip_parse(VD_STR_NULL, &ip));
    /* 100 KB of garbage, and of valid-looking characters. */
    size_t n = 100 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7919 % 251);
    assert_false(vd_ip_parse(vd_str_make(big, n), &ip));
    memset(big, '1', n);
    assert_false(vd_ip_parse(vd_str_make(big, n), &ip));
    for (size_t i = 0; i < n; i++)
        big[i] = ":1"[i % 2];
    assert_false(vd_ip_parse(vd_str_make(big, n), &ip));
    free(big);
}

static void test_prefix(void **state)
{
    (void)state;
    vd_ipaddr ip, net, ip6, net6;
    assert_true(parse("192.168.1.77", &ip));
    assert_true(parse("192.168.0.0", &net));
    assert_true(vd_ip_in_prefix(&ip, &net, 16));
    assert_true(vd_ip_in_prefix(&ip, &net, 23));
    assert_false(vd_ip_in_prefix(&ip, &net, 24));
    assert_true(vd_ip_in_prefix(&ip, &net, 0));
    assert_false(vd_ip_in_prefix(&ip, &net, 33));
    assert_true(vd_ip_in_prefix(&ip, &ip, 32));
    assert_true(parse("2001:db8:abcd::1", &ip6));
    assert_true(parse("2001:db8::", &net6));
    assert_true(vd_ip_in_prefix(&ip6, &net6, 32));
    assert_false(vd_ip_in_prefix(&ip6, &net6, 33)); /* third group 0xabcd starts with a 1 bit */
    assert_true(parse("2001:db8:8000::", &net6));
    assert_true(vd_ip_in_prefix(&ip6, &net6, 34)); /* 0xab = 10 1..., 0x80 = 10 0... */
    assert_false(vd_ip_in_prefix(&ip6, &net6, 35));
    assert_false(vd_ip_in_prefix(&ip6, &net6, 129));
    /* Families never mix; a v4-mapped address is IPv4. */
    assert_false(vd_ip_in_prefix(&ip, &net6, 0));
    vd_ipaddr mapped;
    assert_true(parse("::ffff:192.168.1.1", &mapped));
    assert_true(vd_ip_in_prefix(&mapped, &net, 16));
    vd_ipaddr none = { 0 };
    assert_false(vd_ip_in_prefix(&none, &none, 0));
    char buf[8];
    assert_string_equal(vd_ip_format(&none, buf, sizeof buf), "");
    /* Truncating buffer stays NUL-terminated. */
    assert_int_equal(strlen(vd_ip_format(&ip6, buf, sizeof buf)), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
