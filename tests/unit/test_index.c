/* test_index.c — the candidate index (string sets, prefixes, hour and
 * weekday buckets) never changes an answer: decisions, valid_until and the
 * matched list equal a brute-force evaluation of every rule and segment,
 * over many requests at many instants. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rules/build.h"
#include "decision/decide.h"
#include "context/tz.h"
#include "rules/model.h"

static const char *const SEGS = "["
    "{\"id\":\"bikes\",\"match\":{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":\"/bikes\"}},"
    "{\"id\":\"sale\",\"match\":{\"all\":[{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":[\"/sale\",\"/s/\"]},"
    "  {\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[8,20]}]}},"
    "{\"id\":\"night\",\"match\":{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[22,5]}},"
    "{\"id\":\"weekend\",\"match\":{\"attr\":\"time.weekday\",\"op\":\"in\",\"value\":[\"sat\",\"sun\"]}},"
    "{\"id\":\"monday-morning\",\"match\":{\"all\":[{\"attr\":\"time.weekday\",\"op\":\"eq\",\"value\":\"mon\"},"
    "  {\"attr\":\"time.hour\",\"op\":\"lt\",\"value\":12}]}},"
    "{\"id\":\"camp\",\"match\":{\"all\":[{\"attr\":\"url.query.c\",\"op\":\"eq\",\"value\":\"x\"},"
    "  {\"attr\":\"url.host\",\"op\":\"suffix\",\"value\":\".de\"}]}},"
    "{\"id\":\"host\",\"match\":{\"attr\":\"url.host\",\"op\":\"in\",\"value\":[\"shop.example.de\",\"shop.example.fr\"]}},"
    "{\"id\":\"not-night\",\"match\":{\"not\":{\"segment\":\"night\"}}},"
    "{\"id\":\"bikes-at-night\",\"match\":{\"all\":[{\"segment\":\"bikes\"},{\"segment\":\"night\"}]}},"
    "{\"id\":\"noon\",\"match\":{\"attr\":\"time.minute\",\"op\":\"between\",\"value\":[720,780]}}"
    "]";

static const char *const CMAP = "["
    "{\"slot\":\"a\",\"rules\":[{\"segment\":\"bikes-at-night\",\"variant\":\"bn\"},{\"segment\":\"sale\",\"variant\":\"s\"},"
    "  {\"segment\":\"bikes\",\"variant\":\"b\"},{\"segment\":\"weekend\",\"variant\":\"w\"}],"
    " \"default\":\"d\",\"variants\":{\"bn\":1,\"s\":2,\"b\":3,\"w\":4,\"d\":5}},"
    "{\"slot\":\"b\",\"rules\":[{\"segment\":\"monday-morning\",\"variant\":\"mm\"},{\"segment\":\"host\",\"variant\":\"h\"},"
    "  {\"segment\":\"noon\",\"variant\":\"n\"},{\"segment\":\"not-night\",\"variant\":\"nn\"}],"
    " \"default\":\"d\",\"variants\":{\"mm\":1,\"h\":2,\"n\":3,\"nn\":4,\"d\":5}}"
    "]";

static void test_index_kinds_equal_brute_force(void **state)
{
    (void)state;
    vd_docset ds;
    static vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", SEGS, strlen(SEGS));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", CMAP, strlen(CMAP));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v", &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "err: %s\n", err.msg[i]);
    assert_non_null(rs);
    /* Guards: bikes/sale by prefix, night/weekend/monday-morning by time
     * buckets, camp/host by set; the rest always evaluated. */
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("bikes"))], VD_G_PREFIX);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("sale"))], VD_G_PREFIX);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("night"))], VD_G_HOUR);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("weekend"))], VD_G_WEEKDAY);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("host"))], VD_G_SET);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("not-night"))], VD_G_NONE);

    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    vd_eval *ev = vd_eval_new(), *brute = vd_eval_new();
    static const char *const urls[] = {
        "https://shop.example.de/bikes/gravel?c=x", "https://shop.example.fr/sale/winter",
        "https://shop.example.de/s/42", "https://shop.example.com/", "/BIKES", "/bike", "",
        "https://shop.example.de/?c=x", "https://shop.example.fr/sales",
    };
    static const char *const zones[] = { "Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC" };
    unsigned checked = 0, matched_any = 0, timed = 0;
    /* Every 37 minutes over 9 days (crossing a weekend), each URL and zone. */
    for (int64_t t = 1795392000; t < 1795392000 + 9 * 86400; t += 37 * 60) {
        for (unsigned u = 0; u < sizeof urls / sizeof *urls; u++) {
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = t;
            req.has_ts = true;
            req.url = vd_str_cstr(urls[u]);
            req.tz = vd_str_cstr(zones[(t / 2220 + u) % 4]);
            req.nslots = 2;
            req.slots[0] = VD_STR_LIT("a");
            req.slots[1] = VD_STR_LIT("b");
            vd_context ctx;
            vd_context_init(&ctx, &req, &env, NULL, t);
            vd_decision d;
            assert_int_equal(vd_decide(rs, ev, &ctx, &d), 0);

            /* Brute force on a fresh context: every rule in order, every segment. */
            vd_context bctx;
            vd_context_init(&bctx, &req, &env, NULL, t);
            assert_int_equal(vd_eval_begin(brute, rs, &bctx), 0);
            int64_t want_until = INT64_MAX;
            for (unsigned s = 0; s < 2; s++) {
                const vd_slot *slot = vd_ruleset_find_slot(rs, req.slots[s]);
                int32_t want_rule = -1;
                for (uint32_t k = 0; k < slot->nrules; k++) {
                    int64_t ru;
                    int m = vd_eval_segment(brute, slot->rules[k].segment, &ru);
                    if (ru < want_until)
                        want_until = ru;
                    if (m) {
                        want_rule = (int32_t)k;
                        break;
                    }
                }
                assert_int_equal(d.slots[s].rule, want_rule);
            }
            assert_true(d.valid_until == want_until);
            timed += want_until != INT64_MAX;
            uint32_t nwant = 0;
            for (uint32_t sg = 0; sg < vd_ruleset_nsegments(rs); sg++)
                if (vd_eval_segment(brute, sg, NULL)) {
                    assert_true(nwant < d.nmatched);
                    assert_int_equal(d.matched[nwant], sg);
                    nwant++;
                }
            assert_int_equal(nwant, d.nmatched);
            matched_any += d.nmatched > 0;
            checked++;
        }
    }
    printf("index vs brute force: %u requests, %u with matches, %u time-bounded\n", checked,
           matched_any, timed);
    assert_true(checked > 3000 && matched_any > 1000 && timed > 1000);
    vd_eval_free(ev);
    vd_eval_free(brute);
    vd_tzdb_close(tzdb);
    vd_ruleset_release(rs);
}

/* The attribute of the predicate a segment is filed under. */
static int guard_attr(const vd_ruleset *rs, const char *id)
{
    const vd_segment *s = &rs->segs[vd_ruleset_find_segment(rs, vd_str_cstr(id))];
    if (s->guard_node == VD_NO_NODE)
        return -1;
    return rs->preds[rs->nodes[s->guard_node].a].attr.id;
}

/* A key of a small vocabulary (device.type, source.medium, lang, country)
 * is met by a large share of requests: a segment pairing one with a rare
 * key (campaign, path, city) is filed under the rare one, or every mobile
 * visitor would evaluate it. */
static void test_guard_prefers_rare_keys(void **state)
{
    (void)state;
    static const char *const segs = "["
        "{\"id\":\"mobile-cat\",\"match\":{\"all\":[{\"attr\":\"device.type\",\"op\":\"eq\",\"value\":\"mobile\"},"
        "  {\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":\"/c/12/\"}]}},"
        "{\"id\":\"de-spring\",\"match\":{\"all\":[{\"attr\":\"geo.country\",\"op\":\"in\",\"value\":[\"DE\"]},"
        "  {\"attr\":\"source.campaign\",\"op\":\"eq\",\"value\":\"spring\"}]}},"
        "{\"id\":\"organic-berlin\",\"match\":{\"all\":[{\"attr\":\"source.medium\",\"op\":\"eq\",\"value\":\"organic\"},"
        "  {\"attr\":\"geo.city\",\"op\":\"in\",\"value\":[\"Berlin\",\"Hamburg\"]}]}},"
        "{\"id\":\"root-path-tablet\",\"match\":{\"all\":[{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":\"/\"},"
        "  {\"attr\":\"lang\",\"op\":\"eq\",\"value\":\"de\"}]}},"
        "{\"id\":\"countries\",\"match\":{\"attr\":\"geo.country\",\"op\":\"in\",\"value\":[\"DE\",\"AT\"]}}"
        "]";
    static const char *const cmap = "[{\"slot\":\"a\",\"rules\":[{\"segment\":\"countries\",\"variant\":\"x\"}],"
        " \"default\":\"x\",\"variants\":{\"x\":1}}]";
    vd_docset ds;
    static vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs, strlen(segs));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", cmap, strlen(cmap));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v", &err);
    vd_docset_free(&ds);
    assert_non_null(rs);
    assert_int_equal(guard_attr(rs, "mobile-cat"), VD_ATTR_URL_PATH);
    assert_int_equal(guard_attr(rs, "de-spring"), VD_ATTR_SOURCE_CAMPAIGN);
    assert_int_equal(guard_attr(rs, "organic-berlin"), VD_ATTR_GEO_CITY);
    assert_int_equal(guard_attr(rs, "root-path-tablet"), VD_ATTR_LANG);   /* "/" is met by every path */
    assert_int_equal(guard_attr(rs, "countries"), VD_ATTR_GEO_COUNTRY);  /* the only guard there is */
    vd_ruleset_release(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_kinds_equal_brute_force),
        cmocka_unit_test(test_guard_prefers_rare_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
