/* The `redis` setting: every accepted form, and hostile input refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "store/redis_url.h"

static vd_redis_url parse_ok(const char *s)
{
    vd_redis_url u;
    char err[256] = "";
    int rc = vd_redis_url_parse(s, &u, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", s, err);
    return u;
}

static void parse_bad(const char *s, const char *why)
{
    vd_redis_url u;
    char err[256] = "";
    if (vd_redis_url_parse(s, &u, err, sizeof err) == 0)
        fail_msg("'%s' accepted", s);
    assert_non_null(strstr(err, why));
}

static void test_tcp_forms(void **st)
{
    (void)st;
    vd_redis_url u = parse_ok("redis://127.0.0.1:6380/3");
    assert_false(u.is_unix);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_false(u.has_password);

    u = parse_ok("redis://redis.example");
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);

    u = parse_ok("redis://10.0.0.1/");
    assert_int_equal(u.db, 0);

    u = parse_ok("redis://[::1]:7000/15");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 15);
}

static void test_auth_forms(void **st)
{
    (void)st;
    /* ACL user + password, percent-decoded */
    vd_redis_url u = parse_ok("redis://app:p%40ss%3Aw@127.0.0.1:6379/2");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss:w");
    assert_true(u.has_password);
    assert_int_equal(u.db, 2);

    /* legacy: password only */
    u = parse_ok("redis://:secret@host");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");
    assert_true(u.has_password);
    u = parse_ok("redis://secret@host");
    assert_string_equal(u.password, "secret");
    assert_string_equal(u.user, "");

    /* the password never reaches a log line */
    char d[512];
    vd_redis_url_describe(&u, d, sizeof d);
    assert_null(strstr(d, "secret"));
    assert_non_null(strstr(d, "***"));
}

static void test_unix_forms(void **st)
{
    (void)st;
    vd_redis_url u = parse_ok("unix:/run/redis/redis.sock");
    assert_true(u.is_unix);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);

    u = parse_ok("unix:///tmp/r.sock?db=4&user=bob&password=x%26y");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 4);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "x&y");
    assert_true(u.has_password);
}

static void test_sentinel_forms(void **st)
{
    (void)st;
    vd_redis_url u = parse_ok("redis-sentinel://10.0.0.1:26380,[::1],h3/mymaster");
    assert_true(u.is_sentinel);
    assert_false(u.is_unix);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 26380);
    assert_string_equal(u.sentinels[1].host, "::1");
    assert_int_equal(u.sentinels[1].port, 26379);
    assert_string_equal(u.sentinels[2].host, "h3");
    assert_int_equal(u.sentinels[2].port, 26379);
    assert_string_equal(u.master, "mymaster");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);

    u = parse_ok("redis-sentinel://app:s%40cret@h1:1/cache-1/4");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.master, "cache-1");
    assert_int_equal(u.db, 4);
    char d[2000];
    vd_redis_url_describe(&u, d, sizeof d);
    assert_string_equal(d, "redis-sentinel://app:***@h1:1/cache-1/4");

    parse_bad("redis-sentinel://h1:26379", "master name");
    parse_bad("redis-sentinel://h1:26379/", "master name");
    parse_bad("redis-sentinel://h1,/m", "empty sentinel");
    parse_bad("redis-sentinel://h1,,h2/m", "no host");
    parse_bad("redis-sentinel:///m", "no host");
    parse_bad("redis-sentinel://h1:0/m", "port");
    parse_bad("redis-sentinel://a,b,c,d,e,f,g,h,i/m", "at most 8");
    parse_bad("redis-sentinel://h1/m%20x", "master name");
    parse_bad("redis-sentinel://h1/m/x", "database");
}

static void test_rejected(void **st)
{
    (void)st;
    parse_bad("", "empty");
    parse_bad("http://h:1", "redis://");
    parse_bad("rediss://h:1", "TLS");
    parse_bad("redis://", "no host");
    parse_bad("redis://:6379", "no host");
    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:65536", "port");
    parse_bad("redis://h:99999999999999999999", "port");
    parse_bad("redis://h:12x", "port");
    parse_bad("redis://h:", "port");
    parse_bad("redis://h/abc", "database");
    parse_bad("redis://h/999999999999", "database");
    parse_bad("redis://h/1?x=y", "unexpected");
    parse_bad("redis://[::1", "unclosed");
    parse_bad("redis://[::1]x", "junk");
    parse_bad("redis://u:p%4@h", "escape");
    parse_bad("redis://u:p%@h", "escape");
    parse_bad("redis://u:p%00@h", "%00");
    parse_bad("redis://h o", "bad character");
    parse_bad("unix:relative.sock", "absolute");
    parse_bad("unix:/s?db", "key=value");
    parse_bad("unix:/s?foo=1", "unknown query key");
    parse_bad("unix:/s?db=-1", "database");

    /* over-long pieces are refused, never truncated silently */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "redis://", 8);
    parse_bad(big, "too long");
    char host[600] = "redis://";
    memset(host + 8, 'h', 400);
    host[408] = '\0';
    parse_bad(host, "too long");
    char pw[800] = "redis://u:";
    memset(pw + 10, 'p', 600);
    strcpy(pw + 610, "@h");
    parse_bad(pw, "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_auth_forms),
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_sentinel_forms),
        cmocka_unit_test(test_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
