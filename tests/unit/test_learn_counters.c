/* learn/counters: the script commands' argv, the UTC day, the report built
 * from counter fields (rates, intervals, P(best), uplift), and bandit
 * weights computed against a ruleset (learn/alloc). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "learn/alloc.h"
#include "learn/counters.h"
#include "rules/build.h"
#include "rules/ruleset.h"

static bool arg_is(const vd_learn_cmd *c, int i, const char *want)
{
    return c->len[i] == strlen(want) && !memcmp(c->argv[i], want, c->len[i]);
}

static void test_day(void **st)
{
    (void)st;
    char d[9];
    vd_learn_day(0, d);
    assert_string_equal(d, "19700101");
    vd_learn_day(1790000000, d);            /* 2026-09-21 14:13:20 UTC */
    assert_string_equal(d, "20260921");
    vd_learn_day(951782400, d);             /* 2000-02-29 */
    assert_string_equal(d, "20000229");
    vd_learn_day(-1, d);
    assert_string_equal(d, "19691231");
}

static void test_commands(void **st)
{
    (void)st;
    vd_learn_opts o = { .ns = "variantd", .window_s = 604800, .ttl_s = 0, .stream = "s", .stream_maxlen = 1000 };
    vd_learn_cmd c;
    vd_learn_expose_cmd(&c, &o, VD_STR_LIT("p:key"), VD_STR_LIT("home.hero"), VD_STR_LIT("everyone"),
                        VD_STR_LIT("hero-a"), 1790000000, true, 123);
    assert_int_equal(c.argc, 16);
    assert_true(arg_is(&c, 0, "EVAL"));
    assert_int_equal(c.len[1], vd_learn_expose_script().n);
    assert_true(arg_is(&c, 2, "1") && arg_is(&c, 3, "p:key") && arg_is(&c, 4, "variantd"));
    assert_true(arg_is(&c, 5, "home.hero") && arg_is(&c, 6, "everyone") && arg_is(&c, 7, "hero-a"));
    assert_true(arg_is(&c, 8, "1790000000") && arg_is(&c, 9, "604800") && arg_is(&c, 10, "20260921"));
    assert_true(arg_is(&c, 11, "0") && arg_is(&c, 12, "s") && arg_is(&c, 13, "1000") && arg_is(&c, 14, "bandit") && arg_is(&c, 15, "123"));
    o.sha_expose = "0123456789012345678901234567890123456789";
    vd_learn_expose_cmd(&c, &o, VD_STR_LIT("k"), VD_STR_LIT("s"), VD_STR_LIT("r"), VD_STR_LIT("v"), 5, false, 0);
    assert_true(arg_is(&c, 0, "EVALSHA") && arg_is(&c, 1, o.sha_expose) && arg_is(&c, 14, ""));

    vd_str slots[2] = { VD_STR_LIT("a"), VD_STR_LIT("b") };
    assert_int_equal(vd_learn_convert_cmd(&c, &o, VD_STR_LIT("k"), 100, 19.5, VD_STR_LIT("purchase"), slots, 2), 0);
    assert_int_equal(c.argc, 4 + 8 + 2);
    assert_true(arg_is(&c, 5, "100") && arg_is(&c, 6, "604800") && arg_is(&c, 7, "19.5"));
    assert_true(arg_is(&c, 8, "19700101") && arg_is(&c, 11, "purchase") && arg_is(&c, 12, "a") && arg_is(&c, 13, "b"));
    assert_int_equal(vd_learn_convert_cmd(&c, &o, VD_STR_LIT("k"), 100, 0, VD_STR_LIT("x"), slots, 0), -1);
    assert_int_equal(vd_learn_convert_cmd(&c, &o, VD_STR_LIT("k"), 100, 0, VD_STR_LIT("x"), slots,
                                          VD_LEARN_MAX_GOAL_SLOTS + 1), -1);
    /* the scripts are embedded whole */
    assert_non_null(strstr(vd_learn_expose_script().p, "return {status, variant}"));
    assert_non_null(strstr(vd_learn_expose_script().p, "\n-- standalone\n"));
    assert_non_null(strstr(vd_learn_convert_script().p, "return out"));
}

static void test_report_from_fields(void **st)
{
    (void)st;
    vd_report_slot s;
    memset(&s, 0, sizeof s);
    const char *f[][2] = {
        { "e|everyone|b", "100" }, { "c|everyone|b", "20" }, { "v|everyone|b", "250.5" },
        { "e|everyone|a", "100" }, { "c|everyone|a", "20" },
        { "e|holdout|g", "100" }, { "c|holdout|g", "10" },
        { "u|none", "3" }, { "u|outside", "2" }, { "u|bogus", "9" }, { "x|junk", "1" }, { "e|nobar", "1" },
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        assert_int_equal(vd_report_add_field(&s, f[i][0], f[i][1]), 0);
    vd_report_mark_bandit(&s, "everyone");
    vd_report_mark_bandit(&s, "unknown");
    vd_report_compute(&s);
    assert_int_equal(s.nrules, 2);
    assert_string_equal(s.rules[0].key, "everyone");          /* sorted */
    assert_true(s.rules[0].bandit && !s.rules[1].bandit);
    assert_string_equal(s.rules[0].variants[0].id, "a");
    const vd_report_variant *b = &s.rules[0].variants[1];
    assert_true(b->exposures == 100 && b->conversions == 20 && b->value == 250.5 && b->rate == 0.2);
    assert_true(fabs(b->ci95.low - 0.13329) < 1e-4);
    assert_true(s.rules[0].variants[0].p_best == b->p_best);   /* tie */
    assert_true(s.rules[1].variants[0].p_best == 1.0);
    assert_true(s.unattributed[0] == 3 && s.unattributed[1] == 2);
    assert_true(s.has_holdout && s.treated.exposures == 200 && s.control.conversions == 10);
    assert_true(fabs(s.uplift.diff - 0.1) < 1e-12);
    json_t *j = vd_report_slot_json(&s);
    char *txt = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(txt, "\"allocate\":\"bandit\""));
    assert_non_null(strstr(txt, "\"exposures\":100"));
    free(txt);
    json_decref(j);
    vd_report_slot_free(&s);
}

static int fake_counts(void *arg, vd_str slot, vd_str rule, vd_str variant, vd_arm_counts *out)
{
    (void)arg;
    (void)slot;
    (void)rule;
    *out = (vd_arm_counts){ 1000, vd_str_eq(variant, VD_STR_LIT("c")) ? 200 : 10 };
    return 0;
}

static void test_alloc(void **st)
{
    (void)st;
    const char *segs = "[{\"id\":\"everyone\",\"match\":{\"all\":[]}}]";
    const char *cmap = "{\"slot\":\"h\",\"goal\":[\"buy\"],\"rules\":[{\"segment\":\"everyone\",\"allocate\":\"bandit\","
                       "\"split\":[{\"variant\":\"a\",\"weight\":1},{\"variant\":\"b\",\"weight\":1},"
                       "{\"variant\":\"c\",\"weight\":1}]}],\"default\":\"a\",\"variants\":{\"a\":1,\"b\":2,\"c\":3}}";
    vd_docset ds;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs, strlen(segs));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", cmap, strlen(cmap));
    vd_errors err;
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v", &err);
    vd_docset_free(&ds);
    assert_non_null(rs);
    vd_bandit_params bp = { .floor = 0.05, .min_exposures = 100, .seed = VD_LEARN_SEED, .draws = 20000 };
    vd_alloc *a = vd_alloc_compute(rs, fake_counts, NULL, &bp, 42);
    assert_non_null(a);
    assert_int_equal(a->n, 1);
    const vd_slot *s = vd_ruleset_find_slot(rs, VD_STR_LIT("h"));
    const vd_alloc_rule *e = vd_alloc_find(a, rs, s, 0);
    assert_non_null(e);
    assert_true(e->learnt && e->narms == 3);
    assert_true(e->w[0] == 0.05 && e->w[1] == 0.05 && fabs(e->w[2] - 0.9) < 1e-12);
    assert_int_equal(e->upto[0], 500);
    assert_int_equal(e->upto[1], 1000);
    assert_int_equal(e->upto[2], 10000);
    assert_null(vd_alloc_find(a, NULL, s, 0));            /* another ruleset: not used */
    assert_null(vd_alloc_find(a, rs, s, 1));
    /* publication */
    uint64_t g = vd_alloc_generation();
    vd_alloc_publish(a);
    assert_true(vd_alloc_generation() == g + 1);
    vd_alloc *b = vd_alloc_acquire();
    assert_ptr_equal(a, b);
    vd_alloc_release(b);
    vd_alloc_clear();
    assert_null(vd_alloc_acquire());
    vd_ruleset_release(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_report_from_fields),
        cmocka_unit_test(test_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
