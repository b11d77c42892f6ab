/* test_ip.c — client IP literal parsing, formatting and prefix checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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

static bool net(const char *s, bool allow_prefix, vd_ipnet *out)
{
    return vd_ipnet_parse(vd_str_cstr(s), allow_prefix, out);
}

static void test_networks(void **state)
{
    (void)state;
    vd_ipnet n;
    vd_ipaddr ip, ip6;
    assert_true(parse("192.168.1.77", &ip));
    assert_true(net("192.168.0.0/16", true, &n));
    assert_true(vd_ipnet_contains(&n, &ip));
    assert_true(net("192.168.0.0/23", true, &n));
    assert_true(vd_ipnet_contains(&n, &ip));
    assert_true(net("192.168.0.0/24", true, &n));
    assert_false(vd_ipnet_contains(&n, &ip));
    assert_true(net("0.0.0.0/0", true, &n));
    assert_true(vd_ipnet_contains(&n, &ip));
    /* Host bits are masked off; a bare address is the full-length prefix. */
    assert_true(net("192.168.1.255/24", true, &n));
    assert_int_equal(n.addr.addr[3], 0);
    assert_true(vd_ipnet_contains(&n, &ip));
    assert_true(net("192.168.1.77", false, &n));
    assert_int_equal(n.plen, 32);
    assert_true(vd_ipnet_contains(&n, &ip));
    /* No prefix where none is allowed; bad prefixes, brackets, zones, ports. */
    assert_false(net("192.168.0.0/16", false, &n));
    assert_false(net("192.168.0.0/33", true, &n));
    assert_false(net("192.168.0.0/", true, &n));
    assert_false(net("192.168.0.0/1x", true, &n));
    assert_false(net("[2001:db8::]/32", true, &n));
    assert_false(net("fe80::1%eth0", true, &n));
    assert_false(net("1.2.3.4:80", true, &n));
    assert_false(net("010.0.0.0/8", true, &n));
    assert_true(parse("2001:db8:abcd::1", &ip6));
    assert_true(net("2001:db8::/32", true, &n));
    assert_true(vd_ipnet_contains(&n, &ip6));
    assert_true(net("2001:db8::/33", true, &n));
    assert_false(vd_ipnet_contains(&n, &ip6)); /* third group 0xabcd starts with a 1 bit */
    assert_true(net("2001:db8:8000::/34", true, &n));
    assert_true(vd_ipnet_contains(&n, &ip6)); /* 0xab = 10 1..., 0x80 = 10 0... */
    assert_true(net("2001:db8:8000::/35", true, &n));
    assert_false(vd_ipnet_contains(&n, &ip6));
    assert_false(net("2001:db8::/129", true, &n));
    /* Families never mix; v4-mapped networks and addresses are IPv4. */
    assert_true(net("::/0", true, &n));
    assert_false(vd_ipnet_contains(&n, &ip));
    assert_true(net("::ffff:192.168.0.0/112", true, &n));
    assert_int_equal(n.addr.family, 4);
    assert_int_equal(n.plen, 16);
    vd_ipaddr mapped;
    assert_true(parse("::ffff:192.168.1.1", &mapped));
    assert_true(vd_ipnet_contains(&n, &mapped));
    vd_ipaddr none = { 0 };
    assert_false(vd_ipnet_contains(&n, &none));
    char buf[8];
    assert_string_equal(vd_ip_format(&none, buf, sizeof buf), "");
    /* Truncating buffer stays NUL-terminated. */
    assert_int_equal(strlen(vd_ip_format(&ip6, buf, sizeof buf)), 7);
}

static void test_hostport_and_sockaddr(void **state)
{
    (void)state;
    vd_ipaddr a;
    assert_true(vd_ip_parse_hostport(vd_str_cstr("1.2.3.4:8080"), &a));
    assert_int_equal(a.family, 4);
    assert_int_equal(a.addr[3], 4);
    assert_true(vd_ip_parse_hostport(vd_str_cstr("[2001:db8::1]:443"), &a));
    assert_int_equal(a.family, 6);
    assert_true(vd_ip_parse_hostport(vd_str_cstr("2001:db8::1"), &a));   /* no port */
    assert_true(vd_ip_parse_hostport(vd_str_cstr("1.2.3.4"), &a));
    /* Forms proxies write that the edge port has always read. */
    assert_true(vd_ip_parse_hostport(vd_str_cstr("1.2.3.4:"), &a));
    assert_true(vd_ip_parse_hostport(vd_str_cstr("[203.0.113.9]"), &a));
    assert_int_equal(a.family, 4);
    assert_int_equal(a.addr[3], 9);
    assert_true(vd_ip_parse_hostport(vd_str_cstr("[203.0.113.9]:80"), &a));
    assert_true(vd_ip_parse_hostport(vd_str_cstr("203.0.113.9%eth0"), &a));
    assert_int_equal(a.family, 4);
    assert_true(vd_ip_parse_hostport(vd_str_cstr("[fe80::1%eth0]:443"), &a));
    assert_int_equal(a.family, 6);
    assert_false(vd_ip_parse_hostport(vd_str_cstr("1.2.3.4:123456"), &a));
    assert_false(vd_ip_parse_hostport(vd_str_cstr("2001:db8::1:80x"), &a));
    assert_false(vd_ip_parse_hostport(vd_str_cstr("example.com:80"), &a));
    assert_false(vd_ip_parse_hostport(vd_str_cstr("[]:80"), &a));
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
    assert_true(vd_ip_from_sockaddr((const struct sockaddr *)&s6, &a));
    assert_int_equal(a.family, 4);
    assert_int_equal(a.addr[0], 10);
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.9", &s4.sin_addr);
    assert_true(vd_ip_from_sockaddr((const struct sockaddr *)&s4, &a));
    assert_int_equal(a.addr[3], 9);
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_false(vd_ip_from_sockaddr(&un, &a));
}

/* Dotted quads the way inet_pton reads them (glibc: four decimal parts
 * 0-255, no leading zeros), exhaustively for short strings over digits,
 * dots and a few bytes that end the fast path (':', '%', '[', 'x'), and
 * for random longer ones; a rejected string leaves family 0. */
static void check_v4_like_inet_pton(const char *buf, size_t n)
{
    char z[32];
    memcpy(z, buf, n);
    z[n] = '\0';
    struct in_addr a;
    bool want = !memchr(buf, ':', n) && !memchr(buf, '%', n) && !memchr(buf, '[', n) &&
                inet_pton(AF_INET, z, &a) == 1;
    vd_ipaddr ip;
    memset(&ip, 0x5a, sizeof ip);
    bool got = vd_ip_parse(vd_str_make(buf, n), &ip);
    if (!memchr(buf, ':', n) && !memchr(buf, '%', n) && !memchr(buf, '[', n) && got != want)
        fail_msg("'%s': vd_ip_parse %d, inet_pton %d", z, got, want);
    if (want) {
        assert_int_equal(ip.family, 4);
        assert_memory_equal(ip.addr, &a, 4);
    } else if (!got) {
        assert_int_equal(ip.family, 0);
    }
}

static void test_v4_like_inet_pton(void **state)
{
    (void)state;
    static const char alpha[] = "0125.9:x%[";
    const size_t na = sizeof alpha - 1;
    char buf[24];
    /* every string of up to 6 bytes over the alphabet */
    for (size_t len = 1; len <= 6; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= na;
        for (size_t k = 0; k < total; k++) {
            size_t x = k;
            for (size_t i = 0; i < len; i++) {
                buf[i] = alpha[x % na];
                x /= na;
            }
            check_v4_like_inet_pton(buf, len);
        }
    }
    /* random dotted quads and near misses up to 20 bytes */
    uint64_t r = 0x2545F4914F6CDD1DULL;
    for (int it = 0; it < 300000; it++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        size_t len = 0;
        for (int part = 0; part < 4 + (int)(r >> 62) % 2 && len < 20; part++) {
            if (part)
                buf[len++] = '.';
            int digits = (int)((r >> (8 * part)) % 5);
            for (int d = 0; d < digits && len < 20; d++)
                buf[len++] = (char)('0' + (r >> (5 * d + part)) % 10);
        }
        if (len == 0)
            continue;
        check_v4_like_inet_pton(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_v4_like_inet_pton),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_hostport_and_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
