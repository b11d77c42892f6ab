/* test_splice.c — an all inside an all (an any inside an any) is spliced
 * into its parent at compile time (rules/compile_segment.c). That must not
 * change a verdict or a time bound: random trees with hour, weekday and
 * string leaves, compiled as written (spliced) and with every inner
 * all/any wrapped in not(not(...)) (never spliced; `not` passes the bound
 * through), must agree on the verdict and `until` of every segment at
 * many instants. Errors inside a spliced node keep their JSON path. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"
#include "testrules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"
#include "context/tz.h"
#include "rules/build.h"
#include "rules/eval.h"
#include "rules/model.h"

static uint64_t rng = 0x6a09e667f3bcc909ULL;
static unsigned rnd(unsigned n)
{
    return vd_test_rnd(&rng, n);
}

static void leaf(sbuf *b)
{
    static const char *const words[] = { "sale", "bikes", "kids" };
    switch (rnd(5)) {
    case 0:
        put(b, "{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(24), rnd(24));
        break;
    case 1:
        put(b, "{\"attr\":\"time.weekday\",\"op\":\"in\",\"value\":[\"sat\",\"%s\"]}", rnd(2) ? "sun" : "mon");
        break;
    case 2:
        put(b, "{\"attr\":\"time.minute\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(1440), rnd(1440));
        break;
    case 3:
        put(b, "{\"attr\":\"url.path\",\"op\":\"contains\",\"value\":\"%s\"}", words[rnd(3)]);
        break;
    default:
        put(b, "{\"attr\":\"lang\",\"op\":\"eq\",\"value\":\"%s\"}", rnd(2) ? "de" : "en");
        break;
    }
}

/* The same random tree into a (as written) and r (inner all/any behind
 * not(not(...))). parent: 0 all, 1 any, -1 none: children of the same
 * kind as their parent are the ones the compiler splices. */
static void tree(sbuf *a, sbuf *r, int depth, int parent)
{
    if (depth == 0 || rnd(4) == 0) {
        size_t at = a->n;
        leaf(a);
        put(r, "%.*s", (int)(a->n - at), a->p + at);
        return;
    }
    unsigned k = rnd(5);
    if (k == 4) {
        put(a, "{\"not\":");
        put(r, "{\"not\":");
        tree(a, r, depth - 1, -1);
        put(a, "}");
        put(r, "}");
        return;
    }
    int kind = parent >= 0 && rnd(3) ? parent : (int)(k & 1);   /* often the parent's kind */
    const char *name = kind ? "any" : "all";
    put(a, "{\"%s\":[", name);
    put(r, "%s{\"%s\":[", parent >= 0 ? "{\"not\":{\"not\":" : "", name);
    unsigned n = rnd(4);   /* empty ones too */
    for (unsigned i = 0; i < n; i++) {
        if (i) {
            put(a, ",");
            put(r, ",");
        }
        tree(a, r, depth - 1, kind);
    }
    put(a, "]}");
    put(r, "]}%s", parent >= 0 ? "}}" : "");
}

static void test_spliced_trees_equal_nested(void **state)
{
    (void)state;
    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    vd_eval *ev = vd_eval_new();
    unsigned checked = 0, trues = 0, bounded = 0, spliced = 0;
    for (unsigned set = 0; set < 10; set++) {
        sbuf sg = { 0 };
        unsigned nseg = 40;
        put(&sg, "[");
        for (unsigned i = 0; i < nseg; i++) {
            sbuf a = { 0 }, r = { 0 };
            tree(&a, &r, 5, -1);
            put(&sg, "%s{\"id\":\"a%u\",\"match\":%.*s},{\"id\":\"r%u\",\"match\":%.*s}", i ? "," : "", i,
                (int)a.n, a.p, i, (int)r.n, r.p);
            free(a.p);
            free(r.p);
        }
        put(&sg, "]");
        vd_ruleset *rs = vd_test_compile("s", sg.p, sg.n, NULL, 0);
        assert_non_null(rs);
        for (unsigned i = 0; i < nseg; i++) {
            char id[16];
            snprintf(id, sizeof id, "a%u", i);
            const vd_segment *sa = &rs->segs[vd_ruleset_find_segment(rs, vd_str_cstr(id))];
            snprintf(id, sizeof id, "r%u", i);
            const vd_segment *sr = &rs->segs[vd_ruleset_find_segment(rs, vd_str_cstr(id))];
            spliced += sa->node_end - sa->node_first < sr->node_end - sr->node_first;
        }
        for (unsigned q = 0; q < 200; q++) {
            static const char *const urls[] = { "https://x.example/sale/kids", "https://x.example/bikes",
                                                "https://x.example/" };
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = 1795392000 + (int64_t)rnd(14 * 86400);
            req.has_ts = true;
            req.url = vd_str_cstr(urls[rnd(3)]);
            req.lang = vd_str_cstr(rnd(2) ? "de" : "en");
            req.tz = VD_STR_LIT("Europe/Berlin");
            vd_context ctx;
            vd_context_init(&ctx, &req, &env, NULL, req.ts);
            assert_int_equal(vd_eval_begin(ev, rs, &ctx), 0);
            for (unsigned i = 0; i < nseg; i++) {
                char id[16];
                int64_t ua, ur;
                snprintf(id, sizeof id, "a%u", i);
                int got = vd_eval_segment(ev, (uint32_t)vd_ruleset_find_segment(rs, vd_str_cstr(id)), &ua);
                snprintf(id, sizeof id, "r%u", i);
                int want = vd_eval_segment(ev, (uint32_t)vd_ruleset_find_segment(rs, vd_str_cstr(id)), &ur);
                assert_int_equal(got, want);
                assert_true(ua == ur);
                trues += got == 1;
                bounded += ua != INT64_MAX;
                checked++;
            }
        }
        vd_ruleset_release(rs);
        free(sg.p);
    }
    printf("spliced vs nested trees: %u verdicts, %u true, %u with a time bound, %u segments spliced\n", checked,
           trues, bounded, spliced);
    assert_true(spliced > 100);
    assert_true(trues > checked / 10 && trues < checked - checked / 10);
    assert_true(bounded > checked / 4);
    vd_eval_free(ev);
    vd_tzdb_close(tzdb);
}

static void test_spliced_errors_keep_paths(void **state)
{
    (void)state;
    static const char segs[] =
        "[{\"id\":\"x\",\"match\":{\"all\":[{\"attr\":\"lang\",\"op\":\"eq\",\"value\":\"de\"},"
        "{\"all\":[{\"attr\":\"lang\",\"op\":\"eq\",\"value\":\"en\"},{\"attr\":\"nope\",\"op\":\"eq\",\"value\":1}]}]}},"
        "{\"id\":\"y\",\"match\":{\"any\":[{\"any\":[{\"any\":[{\"segment\":\"missing\"}]}]}]}}]";
    vd_docset ds;
    static vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/e.json", segs, strlen(segs));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "e", &err);
    vd_docset_free(&ds);
    assert_null(rs);
    bool attr = false, ref = false;
    for (size_t i = 0; i < err.n; i++) {
        fprintf(stderr, "  %s\n", err.msg[i]);
        attr |= strstr(err.msg[i], "segment \"x\": $.match.all[1].all[1].attr:") != NULL;
        ref |= strstr(err.msg[i], "segment \"y\": $.match.any[0].any[0].any[0].segment:") != NULL;
    }
    assert_true(attr);
    assert_true(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spliced_trees_equal_nested),
        cmocka_unit_test(test_spliced_errors_keep_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
