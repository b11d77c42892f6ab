/* test_answers.c — the whole-answer cache (rules/answers.h, config
 * answer-cache) never changes a reply: the same requests decided with and
 * without it give byte-identical MessagePack replies, the same valid_until
 * and the same matched segments, over random rule set shapes (nested
 * trees with references, prefixes, contains and suffixes, query values,
 * hour, minute and weekday windows, splits and holdouts by vid), across
 * ruleset swaps and across hour and day boundaries, with request times
 * that sometimes go back. The cache must answer a good share of them, or
 * this would test nothing. */
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

#include "context/tz.h"
#include "decision/decide.h"
#include "decision/result.h"
#include "net/rpc_codec.h"
#include "rules/answers.h"
#include "rules/build.h"

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static unsigned rnd(unsigned n)
{
    return vd_test_rnd(&rng, n);
}

static const char *const CC[] = { "DE", "US", "FR", "GB", "JP" };
static const char *const WORDS[] = { "sale", "new", "bikes", "kids" };
static const char *const MEDIA[] = { "direct", "organic", "paid", "social", "referral" };
static const char *const LANGS[] = { "de", "en", "fr" };

static void leaf(sbuf *b, int i)
{
    unsigned k = rnd(8);
    static const char *const ops[] = { "contains", "suffix" };
    switch (rnd(12)) {
    case 0:
        put(b, "{\"attr\":\"attr.country\",\"op\":\"in\",\"value\":[\"%s\",\"%s\"]}", CC[rnd(5)], CC[rnd(5)]);
        break;
    case 1:
        put(b, "{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(24), rnd(24));
        break;
    case 2:
        put(b, "{\"attr\":\"source.medium\",\"op\":\"eq\",\"value\":\"%s\"}", MEDIA[rnd(5)]);
        break;
    case 3:
        put(b, "{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":[\"/c/%u\",\"/p/\"]}", k);
        break;
    case 4:
        put(b, "{\"attr\":\"%s\",\"op\":\"%s\",\"value\":[\"%s\",\"%u\"]}", rnd(2) ? "url.path" : "url.query.ref",
            ops[rnd(2)], WORDS[rnd(4)], k);
        break;
    case 5:
        if (rnd(2))
            put(b, "{\"attr\":\"url.query.ref\",\"op\":\"eq\",\"value\":\"p%u\"}", k);
        else
            put(b, "{\"attr\":\"url.query.q\",\"op\":\"exists\",\"value\":%s}", rnd(2) ? "true" : "false");
        break;
    case 6:
        put(b, "{\"attr\":\"lang\",\"op\":\"in\",\"value\":[\"%s\"]}", LANGS[rnd(3)]);
        break;
    case 7:
        if (rnd(3) == 0) {    /* a key per minute: rarer */
            put(b, "{\"attr\":\"time.minute\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(1440), rnd(1440));
            break;
        }
        /* fall through */
    case 8:
        put(b, "{\"attr\":\"device.type\",\"op\":\"%s\",\"value\":[\"mobile\",\"desktop\"]}", rnd(2) ? "in" : "not_in");
        break;
    case 9:
        if (i > 0) {
            put(b, "{\"segment\":\"s%d\"}", (int)rnd((unsigned)i));
            break;
        }
        /* fall through */
    default:
        put(b, "{\"attr\":\"time.weekday\",\"op\":\"in\",\"value\":[\"%s\",\"sun\"]}", rnd(2) ? "sat" : "mon");
        break;
    }
}

static void node(sbuf *b, int i, int depth)
{
    if (depth == 0 || rnd(3) == 0) {
        leaf(b, i);
        return;
    }
    unsigned kind = rnd(4);
    if (kind == 0) {
        put(b, "{\"not\":");
        node(b, i, depth - 1);
        put(b, "}");
        return;
    }
    put(b, "{\"%s\":[", kind == 1 ? "any" : "all");
    unsigned n = 1 + rnd(3);
    for (unsigned c = 0; c < n; c++) {
        if (c)
            put(b, ",");
        node(b, i, depth - 1);
    }
    put(b, "]}");
}

/* A random set: nseg segments (nested, or an `all` led by a string key),
 * nslot slots, some with splits and holdouts. */
static vd_ruleset *random_set(const char *version, int *nslot_out)
{
    int nseg = 20 + (int)rnd(60), nslot = 4 + (int)rnd(4);
    bool nested = rnd(2);
    sbuf sg = { 0 }, cm = { 0 };
    put(&sg, "[");
    for (int i = 0; i < nseg; i++) {
        put(&sg, "%s{\"id\":\"s%d\",\"match\":", i ? "," : "", i);
        if (nested) {
            node(&sg, i, 4);
        } else {
            put(&sg, "{\"all\":[");
            leaf(&sg, 0);
            for (unsigned m = rnd(3); m > 0; m--) {
                put(&sg, ",");
                leaf(&sg, i);
            }
            put(&sg, "]}");
        }
        put(&sg, "}");
    }
    /* A slot whose only rule reads url.query.only through two references:
     * no other segment reads it. */
    put(&sg, ",{\"id\":\"inner\",\"match\":{\"attr\":\"url.query.only\",\"op\":\"eq\",\"value\":\"yes\"}},"
             "{\"id\":\"middle\",\"match\":{\"any\":[{\"segment\":\"inner\"}]}},"
             "{\"id\":\"outer\",\"match\":{\"not\":{\"segment\":\"middle\"}}}]");
    put(&cm, "[{\"slot\":\"tr\",\"rules\":[{\"segment\":\"outer\",\"variant\":\"v1\"}],"
             "\"default\":\"d\",\"variants\":{\"v1\":1,\"d\":3}},");
    for (int s = 0; s < nslot; s++) {
        put(&cm, "%s{\"slot\":\"t%d\",", s ? "," : "", s);
        if (rnd(3) == 0)
            put(&cm, "\"holdout\":%u,", 10 + rnd(40));
        put(&cm, "\"rules\":[");
        unsigned nr = 1 + rnd(12);
        for (unsigned r = 0; r < nr; r++) {
            if (rnd(5) == 0)
                put(&cm, "%s{\"segment\":\"s%u\",\"split\":[{\"variant\":\"v0\",\"weight\":1},"
                         "{\"variant\":\"v1\",\"weight\":2}],\"salt\":\"x%u\"}", r ? "," : "", rnd((unsigned)nseg), r);
            else
                put(&cm, "%s{\"segment\":\"s%u\",\"variant\":\"v%u\"}", r ? "," : "", rnd((unsigned)nseg), r % 3);
        }
        put(&cm, "],\"default\":\"d\",\"variants\":{\"v0\":0,\"v1\":{\"x\":1},\"v2\":\"two\",\"d\":3}}");
    }
    put(&cm, "]");
    vd_ruleset *rs = vd_test_compile(version, sg.p, sg.n, cm.p, cm.n);
    free(sg.p);
    free(cm.p);
    *nslot_out = nslot;
    return rs;
}

/* A pool of visitors (repeated, so the cache can hit) and pages. */
typedef struct visitor {
    unsigned cp, num, word, isnew, ref, q, only;
    char url[128], ctry[8], vid[16];
    const char *referer, *lang, *ua, *tz;
} visitor;

static const char *const REFS[] = { "", "https://www.google.com/", "https://www.facebook.com/",
                                    "https://blog.example.org/x" };
static const char *const UAS[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "",
};
/* Berlin and London, Kolkata and Karachi: the same local weekday (or
 * hour) at the same instant, flipping at different ones. */
static const char *const ZONES[] = { "Europe/Berlin", "Europe/London", "Asia/Kolkata", "Asia/Karachi",
                                     "America/New_York" };

/* The landing URL from its parts: a path of three parts, a query. */
static void make_url(visitor *v)
{
    snprintf(v->url, sizeof v->url, "https://shop.example/%s%u/%s%s?ref=p%u%s%s", v->cp ? "c/" : "p/", v->num,
             WORDS[v->word], v->isnew ? "/new" : "", v->ref, v->q ? "&q=kids" : "", v->only ? "&only=yes" : "");
}

static void make_visitor(visitor *v)
{
    v->cp = rnd(2);
    v->num = rnd(10);
    v->word = rnd(4);
    v->isnew = rnd(3) == 0;
    v->ref = rnd(10);
    v->q = rnd(2);
    v->only = rnd(2);
    make_url(v);
    snprintf(v->ctry, sizeof v->ctry, "%s", CC[rnd(5)]);
    snprintf(v->vid, sizeof v->vid, "v%u", rnd(1000));
    v->referer = REFS[rnd(4)];
    v->lang = LANGS[rnd(3)];
    v->ua = UAS[rnd(3)];
    v->tz = ZONES[rnd(5)];
}

/* A neighbour of v: one field changed (a key that missed an attribute,
 * or a term, would give one of them the other's answer). */
static void mutate(visitor *v)
{
    switch (rnd(9)) {
    case 0:               /* one part of the path */
        switch (rnd(4)) {
        case 0: v->cp ^= 1; break;
        case 1: v->num = rnd(10); break;
        case 2: v->word = rnd(4); break;
        default: v->isnew ^= 1; break;
        }
        make_url(v);
        break;
    case 7:               /* one query value */
        switch (rnd(3)) {
        case 0: v->ref = rnd(10); break;
        case 1: v->q ^= 1; break;
        default: v->only ^= 1; break;
        }
        make_url(v);
        break;
    case 8:
        v->cp ^= 1;
        make_url(v);
        break;
    case 1: snprintf(v->ctry, sizeof v->ctry, "%s", CC[rnd(5)]); break;
    case 2: snprintf(v->vid, sizeof v->vid, "v%u", rnd(1000)); break;
    case 3: v->referer = REFS[rnd(4)]; break;
    case 4: v->lang = LANGS[rnd(3)]; break;
    case 5: v->ua = UAS[rnd(3)]; break;
    default: v->tz = ZONES[rnd(5)]; break;
    }
}

static void to_request(const visitor *v, vd_request *req)
{
    memset(req, 0, sizeof *req);
    req->url = vd_str_cstr(v->url);
    req->referer = vd_str_cstr(v->referer);
    req->lang = vd_str_cstr(v->lang);
    req->ua = vd_str_cstr(v->ua);
    req->tz = vd_str_cstr(v->tz);
    req->vid = vd_str_cstr(v->vid);
    req->nattrs = 1;
    req->attrs[0].key = VD_STR_LIT("country");
    req->attrs[0].val.kind = VD_VAL_STR;
    req->attrs[0].val.u.s = vd_str_cstr(v->ctry);
}

/* One decision with or without the cache, its reply in sb. */
static void decide_one(const vd_ruleset *rs, vd_eval *ev, vd_answers *ans, const vd_request *req, const vd_env *env,
                       msgpack_sbuffer *sb, vd_decision *d)
{
    vd_context ctx;
    vd_context_init(&ctx, req, env, NULL, req->ts);
    assert_int_equal(vd_decide_cached(rs, NULL, ev, ans, &ctx, d), 0);
    msgpack_sbuffer_clear(sb);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = sb };
    vd_msgpack_emitter(&mo, &e);
    vd_result_emit(&e, rs, d, &ctx, ev, false);
}

static void test_cache_on_equals_off(void **state)
{
    (void)state;
    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    vd_eval *ev_off = vd_eval_new(), *ev_on = vd_eval_new();
    vd_answers *ans = vd_answers_new(256, 1);   /* small: evictions too */
    assert_non_null(ans);
    msgpack_sbuffer off, on;
    msgpack_sbuffer_init(&off);
    msgpack_sbuffer_init(&on);
    enum { NVIS = 16, NPAGES = 4 };
    static visitor vis[NVIS];
    static char names[NPAGES][8][16];
    unsigned npage[NPAGES];
    uint64_t compared = 0, timed = 0;
    int64_t ts = 1795392000 + 3600 - 90;          /* 90 s before an hour boundary */
    for (unsigned set = 0; set < 24; set++) {
        /* A swap every round: a new ruleset (a new version, or the same
         * version recompiled), the cache's entries of the last one gone. */
        char version[16];
        snprintf(version, sizeof version, "r%u", set % 3 == 2 ? set - 1 : set);
        int nslot;
        vd_ruleset *rs = random_set(version, &nslot);
        assert_non_null(rs);
        for (unsigned i = 0; i < NVIS; i++) {
            if (i < 3) {
                make_visitor(&vis[i]);
            } else {
                vis[i] = vis[rnd(3)];
                mutate(&vis[i]);
            }
        }
        for (unsigned p = 0; p < NPAGES; p++) {
            if (p >= NPAGES / 2) {
                /* the same slots as page p - NPAGES / 2, reversed: answers are by position */
                unsigned o = p - NPAGES / 2;
                npage[p] = npage[o];
                for (unsigned s = 0; s < npage[p]; s++)
                    memcpy(names[p][s], names[o][npage[o] - 1 - s], sizeof names[p][s]);
                continue;
            }
            npage[p] = 1 + rnd(8);
            for (unsigned s = 0; s < npage[p]; s++)
            {
                unsigned k = rnd((unsigned)nslot + 2);   /* nslot: unknown, nslot + 1: tr */
                if (k == (unsigned)nslot + 1)
                    snprintf(names[p][s], sizeof names[p][s], "tr");
                else
                    snprintf(names[p][s], sizeof names[p][s], "t%u", k);
            }
        }
        for (unsigned q = 0; q < 600; q++) {
            vd_request req;
            to_request(&vis[rnd(NVIS)], &req);
            unsigned p = rnd(NPAGES);
            req.nslots = npage[p];
            for (unsigned s = 0; s < npage[p]; s++)
                req.slots[s] = vd_str_cstr(names[p][s]);
            req.segments = rnd(16) == 0;   /* the full path: never cached */
            /* Time mostly forward, a second every few requests (minute
             * and, over the rounds, hour boundaries), sometimes a day
             * ahead or an hour and more, sometimes back. */
            unsigned jump = rnd(60);
            ts += jump == 0 ? 86400 + rnd(7200) : jump == 1 ? -(int64_t)rnd(4000) : jump == 2 ? 3000 + rnd(1200)
                : (int64_t)(rnd(4) == 0);
            req.ts = ts;
            req.has_ts = true;
            vd_decision d_off, d_on;
            decide_one(rs, ev_off, NULL, &req, &env, &off, &d_off);
            decide_one(rs, ev_on, ans, &req, &env, &on, &d_on);
            assert_int_equal(off.size, on.size);
            assert_memory_equal(off.data, on.data, off.size);
            assert_true(d_off.valid_until == d_on.valid_until);
            assert_int_equal(d_off.nmatched, d_on.nmatched);
            if (d_off.nmatched)
                assert_memory_equal(d_off.matched, d_on.matched, d_off.nmatched * sizeof *d_off.matched);
            for (unsigned s = 0; s < d_off.nslots; s++) {
                assert_int_equal(d_off.slots[s].rule, d_on.slots[s].rule);
                assert_int_equal(d_off.slots[s].holdout, d_on.slots[s].holdout);
            }
            compared++;
            timed += d_off.valid_until != INT64_MAX;
        }
        vd_ruleset_release(rs);   /* the cache holds its own reference until the next set */
    }
    uint64_t hits, misses;
    vd_answers_stats(ans, &hits, &misses);
    printf("answers: %llu requests compared (%llu bound in time), cache hits %llu, misses %llu\n",
           (unsigned long long)compared, (unsigned long long)timed, (unsigned long long)hits,
           (unsigned long long)misses);
    assert_true(hits > compared / 5);
    assert_true(timed > compared / 10);
    msgpack_sbuffer_destroy(&off);
    msgpack_sbuffer_destroy(&on);
    vd_answers_free(ans);
    vd_eval_free(ev_off);
    vd_eval_free(ev_on);
    vd_tzdb_close(tzdb);
}

/* Off by default and at 0 entries: no cache, the decision as without. */
static void test_zero_entries_is_off(void **state)
{
    (void)state;
    assert_null(vd_answers_new(0, 1));
    uint64_t h = 1, m = 1;
    vd_answers_stats(NULL, &h, &m);
    assert_true(h == 0 && m == 0);
}

/* Pages smaller than min_slots are not looked up; larger ones are, and a
 * repeat of the same request hits. */
static void test_min_slots(void **state)
{
    (void)state;
    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    int nslot;
    vd_ruleset *rs = random_set("m", &nslot);
    assert_non_null(rs);
    vd_eval *ev = vd_eval_new();
    vd_answers *ans = vd_answers_new(64, 3);
    assert_non_null(ans);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    visitor v;
    make_visitor(&v);
    uint64_t hits, misses;
    for (unsigned k = 1; k <= 3; k++) {
        vd_request req;
        to_request(&v, &req);
        req.ts = 1795392000;
        req.has_ts = true;
        req.nslots = k;
        for (unsigned s = 0; s < k; s++)
            req.slots[s] = VD_STR_LIT("t0");
        vd_decision d;
        decide_one(rs, ev, ans, &req, &env, &sb, &d);
        decide_one(rs, ev, ans, &req, &env, &sb, &d);
        vd_answers_stats(ans, &hits, &misses);
        assert_int_equal(hits, k < 3 ? 0 : 1);
        assert_int_equal(misses, k < 3 ? 0 : 1);
    }
    msgpack_sbuffer_destroy(&sb);
    vd_answers_free(ans);
    vd_ruleset_release(rs);
    vd_eval_free(ev);
    vd_tzdb_close(tzdb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_on_equals_off),
        cmocka_unit_test(test_zero_entries_is_off),
        cmocka_unit_test(test_min_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
