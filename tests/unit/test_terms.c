/* test_terms.c — the evaluator's term tables (rules/eval.c) never change a
 * verdict: string tests (eq/in/ne/not_in, prefix, contains, suffix, on
 * url.path, a url.query value, lang and a caller attribute that may be a
 * string or a number) answered from the term stamps of the request value
 * must equal test_value's answer for every segment of random sets, over
 * random values of mixed case. The reference is the same evaluator with
 * sharing off (pred_share NULL, as test_index.c's brute force does), which
 * also turns the term tables off, so every predicate is tested alone. */
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
#include "rules/build.h"
#include "rules/eval.h"
#include "rules/model.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static unsigned rnd(unsigned n)
{
    return vd_test_rnd(&rng, n);
}

/* Few letters, so terms overlap, nest and repeat. */
static void word(char *out, unsigned minlen, unsigned maxlen, bool upper)
{
    static const char lo[] = "ab/-c", up[] = "AB/-C";
    unsigned n = minlen + rnd(maxlen - minlen + 1);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(5);
        out[i] = upper && rnd(2) ? up[k] : lo[k];
    }
    out[n] = '\0';
}

static const char *const ATTRS[] = { "url.path", "url.query.q", "lang", "attr.k" };
static const char *const OPS[] = { "eq", "ne", "in", "not_in", "prefix", "suffix", "contains" };

static void leaf(sbuf *b)
{
    const char *attr = ATTRS[rnd(4)], *op = OPS[rnd(7)];
    bool list = !strcmp(op, "in") || !strcmp(op, "not_in") || (op[0] != 'e' && op[0] != 'n' && rnd(2));
    if (!strcmp(attr, "lang") && !list && op[0] != 'e' && op[0] != 'n')
        list = true;
    put(b, "{\"attr\":\"%s\",\"op\":\"%s\",\"value\":", attr, op);
    /* up to 20 members: hashed small sets, sorted big ones, automata */
    unsigned n = list ? 1 + rnd(rnd(4) ? 4 : 20) : 1;
    if (list)
        put(b, "[");
    for (unsigned i = 0; i < n; i++) {
        char w[16];
        word(w, 1, 4, true);
        if (i)
            put(b, ",");
        if (!strcmp(attr, "attr.k") && op[0] != 'p' && op[0] != 's' && op[0] != 'c' && rnd(4) == 0)
            put(b, "%u", rnd(3));
        else
            put(b, "\"%s\"", w);
    }
    if (list)
        put(b, "]");
    put(b, "}");
}

static void tree(sbuf *b, int depth)
{
    if (depth == 0 || rnd(2)) {
        leaf(b);
        return;
    }
    unsigned k = rnd(3);
    if (k == 2) {
        put(b, "{\"not\":");
        tree(b, depth - 1);
        put(b, "}");
        return;
    }
    put(b, "{\"%s\":[", k ? "any" : "all");
    unsigned n = 1 + rnd(3);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            put(b, ",");
        tree(b, depth - 1);
    }
    put(b, "]}");
}

static void test_terms_equal_reference(void **state)
{
    (void)state;
    vd_eval *ev = vd_eval_new(), *ref = vd_eval_new();
    unsigned checked = 0, trues = 0, modes_seen = 0;
    for (unsigned set = 0; set < 12; set++) {
        sbuf sg = { 0 };
        unsigned nseg = 60 + rnd(60);
        put(&sg, "[");
        for (unsigned i = 0; i < nseg; i++) {
            put(&sg, "%s{\"id\":\"s%u\",\"match\":", i ? "," : "", i);
            tree(&sg, 2);
            put(&sg, "}");
        }
        put(&sg, "]");
        vd_ruleset *rs = vd_test_compile("t", sg.p, sg.n, NULL, 0);
        assert_non_null(rs);
        assert_true(rs->nterms > 0);
        for (uint32_t p = 0; p < rs->npreds; p++)
            modes_seen |= 1u << rs->term_pred[p].mode;
        for (unsigned q = 0; q < 300; q++) {
            char path[32], qv[16], lang[8], k[16], url[96];
            word(path, 0, 8, true);
            word(qv, 0, 5, true);
            word(lang, 1, 3, true);
            word(k, 1, 4, true);
            snprintf(url, sizeof url, "https://shop.example/%s%s%s", path, rnd(4) ? "?q=" : "?x=", qv);
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = 1795392000;
            req.has_ts = true;
            req.url = vd_str_cstr(url);
            req.lang = vd_str_cstr(rnd(8) ? lang : "");
            if (rnd(5)) {
                req.nattrs = 1;
                req.attrs[0].key = VD_STR_LIT("k");
                if (rnd(4)) {
                    req.attrs[0].val.kind = VD_VAL_STR;
                    req.attrs[0].val.u.s = vd_str_cstr(k);
                } else {
                    req.attrs[0].val.kind = VD_VAL_NUM;
                    req.attrs[0].val.u.num = rnd(3);
                }
            }
            vd_context ctx, rctx;
            vd_context_init(&ctx, &req, NULL, NULL, req.ts);
            vd_context_init(&rctx, &req, NULL, NULL, req.ts);
            assert_int_equal(vd_eval_begin(ev, rs, &ctx), 0);
            uint32_t *share = rs->pred_share;
            rs->pred_share = NULL;
            assert_int_equal(vd_eval_begin(ref, rs, &rctx), 0);
            rs->pred_share = share;
            /* Random order: a segment may be reached first or through a
             * reference-free tree after others resolved its values. */
            uint32_t start = rnd(nseg);
            for (uint32_t i = 0; i < nseg; i++) {
                uint32_t s = (start + i) % nseg;
                int want = vd_eval_segment(ref, s, NULL), got = vd_eval_segment(ev, s, NULL);
                if (got != want)
                    fprintf(stderr, "segment s%u: got %d want %d (path %s q %s lang %s k %s)\n", s, got, want,
                            path, qv, lang, k);
                assert_int_equal(got, want);
                trues += got == 1;
                checked++;
            }
        }
        vd_ruleset_release(rs);
        free(sg.p);
    }
    printf("term tables vs reference: %u verdicts, %u true\n", checked, trues);
    /* every mode was compiled to terms, and both verdicts are common */
    assert_int_equal(modes_seen & 0x1e, 0x1e);
    assert_true(trues > checked / 10 && trues < checked - checked / 10);
    vd_eval_free(ev);
    vd_eval_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_equal_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
