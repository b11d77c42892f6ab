/* test_api.c — the decision library (include/variantd/variantd.h) used as
 * a client program would: only the public header, the example definitions
 * and the demo GeoIP database, a request encoded with msgpack-c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "variantd/variantd.h"

static const char *demo_db(void)
{
    static const char *cands[] = { "build/demo-city.mmdb", "build-asan/demo-city.mmdb" };
    for (size_t i = 0; i < 2; i++)
        if (access(cands[i], R_OK) == 0)
            return cands[i];
    return NULL;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* {"slots": ["home.hero"], "ip": ip, "ua": iPhone, "ts": Monday 19:30 Berlin} */
static void berlin_request(msgpack_sbuffer *sb, const char *ip)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "slots");
    msgpack_pack_array(&pk, 1);
    pack_str(&pk, "home.hero");
    pack_str(&pk, "ip");
    pack_str(&pk, ip);
    pack_str(&pk, "ua");
    pack_str(&pk, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                  "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1");
    pack_str(&pk, "ts");
    msgpack_pack_int64(&pk, 1795458600);   /* 2026-11-23T19:30:00+01:00 */
}

/* The variant chosen for slot in a result map. */
static void hero_variant(const char *buf, size_t n, char *out, size_t cap)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, buf, n, NULL), MSGPACK_UNPACK_SUCCESS);
    out[0] = '\0';
    const msgpack_object *m = &u.data;
    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->via.str.size != 5 || memcmp(k->via.str.ptr, "slots", 5))
            continue;
        const msgpack_object *slot = &v->via.map.ptr[0].val;
        for (uint32_t j = 0; j < slot->via.map.size; j++) {
            const msgpack_object *sk = &slot->via.map.ptr[j].key, *sv = &slot->via.map.ptr[j].val;
            if (sk->via.str.size == 7 && !memcmp(sk->via.str.ptr, "variant", 7))
                snprintf(out, cap, "%.*s", (int)sv->via.str.size, sv->via.str.ptr);
        }
    }
    msgpack_unpacked_destroy(&u);
}

static void test_decides_like_the_daemon(void **state)
{
    (void)state;
    const char *db = demo_db();
    if (!db)
        skip();
    char err[512];
    variantd_options o = { .segments_dir = "segments", .content_map_dir = "content-map", .geoip_db = db };
    variantd *v = variantd_open(&o, err, sizeof err);
    assert_non_null(v);
    assert_memory_equal(variantd_ruleset_version(v), "f-", 2);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    berlin_request(&sb, "1.0.0.7");                     /* Berlin in the demo database */
    char *out;
    size_t n;
    assert_int_equal(variantd_decide(v, sb.data, sb.size, &out, &n, err, sizeof err), 0);
    char variant[64];
    hero_variant(out, n, variant, sizeof variant);
    assert_string_equal(variant, "hero-berlin-night");
    variantd_free(out);
    msgpack_sbuffer_clear(&sb);
    berlin_request(&sb, "2.0.0.7");                     /* New York: not the Berlin variant */
    assert_int_equal(variantd_decide(v, sb.data, sb.size, &out, &n, err, sizeof err), 0);
    hero_variant(out, n, variant, sizeof variant);
    assert_string_not_equal(variant, "hero-berlin-night");
    assert_true(variant[0] != '\0');
    variantd_free(out);
    /* Bad requests get the daemon's messages; the handle keeps working. */
    assert_int_equal(variantd_decide(v, sb.data, sb.size - 1, &out, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "need_more"));
    assert_null(out);
    static const char not_a_request[] = { (char)0x81, (char)0xa2, 'i', 'p', 0x01 };  /* {"ip": 1} */
    assert_int_equal(variantd_decide(v, not_a_request, sizeof not_a_request, &out, &n, err, sizeof err), -1);
    assert_string_equal(err, "ip must be a string");
    msgpack_sbuffer_destroy(&sb);
    variantd_close(v);
}

static void test_open_reports_definition_errors(void **state)
{
    (void)state;
    char err[512];
    variantd_options o = { .segments_dir = "no-such-dir", .content_map_dir = "content-map" };
    assert_null(variantd_open(&o, err, sizeof err));
    assert_non_null(strstr(err, "no-such-dir"));
    /* A time-zone folder that does not open is an error, not a handle
     * that silently has no local time. */
    variantd_options badtz = { .segments_dir = "segments", .content_map_dir = "content-map",
                               .zoneinfo_dir = "/nonexistent-zoneinfo" };
    assert_null(variantd_open(&badtz, err, sizeof err));
    assert_non_null(strstr(err, "nonexistent-zoneinfo"));
    variantd_options none = { 0 };
    assert_null(variantd_open(&none, err, sizeof err));
    assert_string_equal(err, "segments_dir and content_map_dir are required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decides_like_the_daemon),
        cmocka_unit_test(test_open_reports_definition_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
