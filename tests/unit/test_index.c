/* test_index.c — the candidate index (string sets, prefixes, hour and
 * weekday buckets) never changes an answer: decisions, valid_until and the
 * matched list equal a brute-force evaluation of every rule and segment,
 * over many requests at many instants. */
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
#include <unistd.h>

#include "rules/build.h"
#include "decision/decide.h"
#include "context/tz.h"
#include "context/geo.h"
#include "rules/index.h"
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
    "{\"id\":\"noon\",\"match\":{\"attr\":\"time.minute\",\"op\":\"between\",\"value\":[720,780]}},"
    "{\"id\":\"gravel\",\"match\":{\"all\":[{\"attr\":\"url.path\",\"op\":\"contains\",\"value\":[\"gravel\",\"winter\"]},"
    "  {\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[6,18]}]}},"
    "{\"id\":\"dot-fr\",\"match\":{\"attr\":\"url.host\",\"op\":\"suffix\",\"value\":\".example.fr\"}}"
    "]";

static const char *const CMAP = "["
    "{\"slot\":\"a\",\"rules\":[{\"segment\":\"bikes-at-night\",\"variant\":\"bn\"},{\"segment\":\"sale\",\"variant\":\"s\"},"
    "  {\"segment\":\"bikes\",\"variant\":\"b\"},{\"segment\":\"weekend\",\"variant\":\"w\"}],"
    " \"default\":\"d\",\"variants\":{\"bn\":1,\"s\":2,\"b\":3,\"w\":4,\"d\":5}},"
    "{\"slot\":\"b\",\"rules\":[{\"segment\":\"monday-morning\",\"variant\":\"mm\"},{\"segment\":\"host\",\"variant\":\"h\"},"
    "  {\"segment\":\"noon\",\"variant\":\"n\"},{\"segment\":\"gravel\",\"variant\":\"h\"},"
    "  {\"segment\":\"dot-fr\",\"variant\":\"h\"},{\"segment\":\"not-night\",\"variant\":\"nn\"}],"
    " \"default\":\"d\",\"variants\":{\"mm\":1,\"h\":2,\"n\":3,\"nn\":4,\"d\":5}}"
    "]";

static int64_t last_until;
/* Lazy probing seen by check_request: requests whose slots have rules
 * filed under a source or device attribute, with that family left
 * uncomputed by the lazy path (skipped) or computed (reached). */
static unsigned lazy_skipped, lazy_reached;

static void count_lazy(const vd_ruleset *rs, const vd_request *req, const vd_context *ctx)
{
    for (unsigned fam = VD_FAM_DEVICE; fam <= VD_FAM_SOURCE; fam <<= 1) {
        bool used = false;
        for (unsigned s = 0; s < req->nslots && !used; s++) {
            const vd_slot *slot = vd_ruleset_find_slot(rs, req->slots[s]);
            for (uint32_t a = 0; slot && a < rs->nindex && a < 64; a++)
                used |= (rs->index[a].family & fam) && (rs->slot_want[vd_index_slot_pos(rs, slot)] >> a & 1);
        }
        if (used && (ctx->done & fam))
            lazy_reached++;
        else if (used)
            lazy_skipped++;
    }
}

/* The segment's string guard (a top-level set or prefix predicate) fails
 * for this request, tested here without the index: then the segment is
 * false whatever the time, and its rule bounds valid_until by nothing even
 * if a time condition before the guard was evaluated. */
static bool guard_fails(const vd_ruleset *rs, uint32_t seg, vd_context *ctx)
{
    if (!vd_string_guarded(rs, seg))
        return false;
    const vd_pred *p = &rs->preds[rs->nodes[rs->segs[seg].guard_node].a];
    vd_value v;
    vd_context_get(ctx, &p->attr, &v);
    if (v.kind != VD_VAL_STR)
        return true;
    for (uint32_t i = 0; i < p->nstrs; i++)
        if (p->test == VD_T_PREFIX     ? vd_str_prefix_ci(v.u.s, p->strs[i])
            : p->test == VD_T_CONTAINS ? vd_str_contains_ci(v.u.s, p->strs[i])
            : p->test == VD_T_SUFFIX   ? vd_str_suffix_ci(v.u.s, p->strs[i])
                                       : vd_str_eq_ci(v.u.s, p->strs[i]))
            return false;
    return true;
}

/* One request through both paths of vd_decide (every matching segment
 * listed, and only what the slots' rules reach) against a brute-force
 * evaluation of every rule in order and every segment. Returns the number
 * of matching segments. */
static unsigned check_request(const vd_ruleset *rs, vd_request *req, const vd_env *env, vd_eval *ev,
                              vd_eval *brute, int64_t t)
{
    vd_context bctx;
    vd_context_init(&bctx, req, env, NULL, t);
    /* The brute force tests every predicate itself: no verdicts shared
     * between identical predicates of different segments. */
    vd_ruleset *mrs = (vd_ruleset *)(uintptr_t)rs;
    uint32_t *share = mrs->pred_share;
    mrs->pred_share = NULL;
    assert_int_equal(vd_eval_begin(brute, rs, &bctx), 0);
    int64_t want_until = INT64_MAX;
    int32_t want_rule[VD_MAX_SLOTS_PER_REQUEST];
    for (unsigned s = 0; s < req->nslots; s++) {
        const vd_slot *slot = vd_ruleset_find_slot(rs, req->slots[s]);
        want_rule[s] = -1;
        for (uint32_t k = 0; slot && k < slot->nrules; k++) {
            int64_t ru;
            int m = vd_eval_segment(brute, slot->rules[k].segment, &ru);
            if (ru < want_until && !guard_fails(rs, slot->rules[k].segment, &bctx))
                want_until = ru;
            if (m) {
                want_rule[s] = (int32_t)k;
                break;
            }
        }
    }
    uint32_t nbrute_match = 0;
    for (uint32_t sg = 0; sg < vd_ruleset_nsegments(rs); sg++)
        nbrute_match += vd_eval_segment(brute, sg, NULL) == 1;
    mrs->pred_share = share;
    last_until = want_until;
    unsigned nwant_total = 0;
    for (int full = 1; full >= 0; full--) {
        req->segments = full;
        vd_context ctx;
        vd_context_init(&ctx, req, env, NULL, t);
        vd_decision d;
        assert_int_equal(vd_decide(rs, ev, &ctx, &d), 0);
        assert_int_equal(d.complete, full);
        if (!full && rs->slot_want)
            count_lazy(rs, req, &ctx);
        for (unsigned s = 0; s < req->nslots; s++)
            assert_int_equal(d.slots[s].rule, want_rule[s]);
        if (d.valid_until != want_until) {
            fprintf(stderr, "full=%d until %lld want %lld slots", full, (long long)d.valid_until, (long long)want_until);
            for (unsigned s = 0; s < req->nslots; s++)
                fprintf(stderr, " %.*s:%d", (int)req->slots[s].n, req->slots[s].p, want_rule[s]);
            fprintf(stderr, " url=%.*s\n", (int)req->url.n, req->url.p);
        }
        assert_true(d.valid_until == want_until);
        if (full) {
            uint32_t nwant = 0;
            for (uint32_t sg = 0; sg < vd_ruleset_nsegments(rs); sg++)
                if (vd_eval_segment(brute, sg, NULL)) {
                    assert_true(nwant < d.nmatched);
                    assert_int_equal(d.matched[nwant], sg);
                    nwant++;
                }
            assert_int_equal(nwant, d.nmatched);
            nwant_total = nwant;
        } else {
            /* Only matching segments, each once. */
            for (uint32_t i = 0; i < d.nmatched; i++) {
                assert_int_equal(vd_eval_segment(brute, d.matched[i], NULL), 1);
                for (uint32_t j = 0; j < i; j++)
                    assert_true(d.matched[j] != d.matched[i]);
            }
        }
    }
    req->segments = false;
    return nwant_total;
}

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
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("gravel"))], VD_G_CONTAINS);
    assert_int_equal(rs->guard[vd_ruleset_find_segment(rs, VD_STR_LIT("dot-fr"))], VD_G_SUFFIX);

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
            /* Both slots, one of them, or one asked twice. */
            unsigned pick = (unsigned)(t / 2220 + u) % 3;
            req.nslots = pick == 0 ? 2 : pick == 1 ? 1 : 3;
            req.slots[0] = pick == 1 ? VD_STR_LIT("b") : VD_STR_LIT("a");
            req.slots[1] = VD_STR_LIT("b");
            req.slots[2] = VD_STR_LIT("a");
            unsigned nm = check_request(rs, &req, &env, ev, brute, t);
            matched_any += nm > 0;
            timed += last_until != INT64_MAX;
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

/* ---- randomized equivalence over the bench's set shapes -------------------
 * Sets in the shapes of tests/bench/gen_ruleset.py (country-keyed with long
 * rule lists, nested any/all/not with segment references, URL prefix /
 * contains / query dominated, anchors plus broad conditions), small enough
 * for a brute-force check of every request, with random requests: both
 * decision paths must equal the brute force. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n)
{
    return vd_test_rnd(&rng, n);
}

static const char *const CC[] = { "DE", "US", "FR", "GB", "JP" };
static const char *const WORDS[] = { "sale", "new", "bikes", "kids" };
static const char *const MEDIA[] = { "direct", "organic", "paid", "social", "referral" };
static const char *const LANGS[] = { "de", "en", "fr" };
static const char *const DEVICES[] = { "mobile", "desktop", "tablet" };
static const char *const UAS[] = {
    "",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
};

static void leaf(sbuf *b, unsigned shape, int i)
{
    unsigned k = rnd(8);
    switch (shape == 0 ? rnd(3) : shape == 2 ? 3 + rnd(4) : rnd(9)) {
    case 0:
        put(b, "{\"attr\":\"attr.country\",\"op\":\"in\",\"value\":[\"%s\",\"%s\"]}", CC[rnd(5)], CC[rnd(5)]);
        break;
    case 1:
        put(b, "{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(24), rnd(24));
        break;
    case 2:
        /* costly families: probed lazily when a slot has rules without a
         * string guard before them */
        if (rnd(3))
            put(b, "{\"attr\":\"source.medium\",\"op\":\"eq\",\"value\":\"%s\"}", MEDIA[rnd(5)]);
        else
            put(b, "{\"attr\":\"device.type\",\"op\":\"in\",\"value\":[\"%s\"]}", DEVICES[rnd(3)]);
        break;
    case 3:
        put(b, "{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":\"/c/%u/\"}", k);
        break;
    case 4:
        put(b, "{\"attr\":\"url.path\",\"op\":\"contains\",\"value\":\"%s\"}", WORDS[rnd(4)]);
        break;
    case 5:
        /* two query names read in turn: each value is memoized per
         * request while the context decodes the other into its scratch */
        if (rnd(2))
            put(b, "{\"attr\":\"url.query.ref\",\"op\":\"eq\",\"value\":\"p%u\"}", k);
        else
            put(b, "{\"attr\":\"url.query.q\",\"op\":\"in\",\"value\":[\"%s\",\"p%u\"]}", WORDS[rnd(4)], k);
        break;
    case 6:
        if (shape == 2 && rnd(2)) {
            /* contains / suffix on the path or a query value: the index
             * finds them with one automaton per attribute */
            static const char *const ops[] = { "contains", "suffix" };
            static const char *const attrs[] = { "url.path", "url.query.ref" };
            put(b, "{\"attr\":\"%s\",\"op\":\"%s\",\"value\":[\"%s\",\"%u\"]}", attrs[rnd(2)], ops[rnd(2)],
                WORDS[rnd(4)], k);
            break;
        }
        put(b, "{\"attr\":\"lang\",\"op\":\"in\",\"value\":[\"%s\"]}", LANGS[rnd(3)]);
        break;
    case 7:
        if (i > 0) {
            put(b, "{\"segment\":\"s%d\"}", (int)rnd((unsigned)i));
            break;
        }
        /* fall through */
    default:
        put(b, "{\"attr\":\"time.weekday\",\"op\":\"in\",\"value\":[\"sat\",\"sun\"]}");
        break;
    }
}

static void node(sbuf *b, unsigned shape, int i, int depth)
{
    if (depth == 0 || rnd(3) == 0) {
        leaf(b, shape, i);
        return;
    }
    unsigned kind = rnd(4);
    if (kind == 0) {
        put(b, "{\"not\":");
        node(b, shape, i, depth - 1);
        put(b, "}");
        return;
    }
    put(b, "{\"%s\":[", kind == 1 ? "any" : "all");
    unsigned n = 1 + rnd(3);
    for (unsigned c = 0; c < n; c++) {
        if (c)
            put(b, ",");
        node(b, shape, i, depth - 1);
    }
    put(b, "]}");
}

static void test_random_shapes_equal_brute_force(void **state)
{
    (void)state;
    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    vd_eval *ev = vd_eval_new(), *brute = vd_eval_new();
    unsigned checked = 0, matched = 0, nruns[2] = { 0, 0 };
    for (unsigned set = 0; set < 16; set++) {
        unsigned shape = set % 4;   /* 0 country, 1 nested, 2 url, 3 mixed anchors */
        int nseg = 40 + (int)rnd(80), nslot = 6;
        sbuf sg = { 0 }, cm = { 0 };
        put(&sg, "[");
        for (int i = 0; i < nseg; i++) {
            put(&sg, "%s{\"id\":\"s%d\",\"match\":", i ? "," : "", i);
            if (shape == 1) {
                node(&sg, shape, i, 4);
            } else {
                /* A top-level all: a string key first (the index files it),
                 * then zero to two more conditions. */
                put(&sg, "{\"all\":[");
                leaf(&sg, shape == 3 ? 2 : shape, 0);
                unsigned more = rnd(3);
                for (unsigned m = 0; m < more; m++) {
                    put(&sg, ",");
                    leaf(&sg, 1, i);
                }
                put(&sg, "]}");
            }
            put(&sg, "}");
        }
        /* Decoys: filed and reached like the others (the same keys),
         * never true. The long slots are mostly decoys, so their winner
         * is found anywhere in their bitmap, often past the first word. */
        for (int i = 0; i < 24; i++) {
            put(&sg, ",{\"id\":\"x%d\",\"match\":{\"all\":[", i);
            if (shape == 1)
                node(&sg, shape, nseg, 2);
            else
                leaf(&sg, shape == 3 ? 2 : shape, 0);
            put(&sg, ",{\"not\":{\"all\":[]}}]}}");
        }
        put(&sg, "]");
        put(&cm, "[");
        for (int s = 0; s < nslot; s++) {
            put(&cm, "%s{\"slot\":\"t%d\",\"rules\":[", s ? "," : "", s);
            /* Long lists, shared segments; the last two slots of 200-700
             * rules (rule bitmaps of 4-11 words: candidate runs stored as
             * whole words when dense). */
            unsigned nr = s < nslot - 2 ? 1 + rnd((unsigned)nseg) : 200 + rnd(500);
            for (unsigned r = 0; r < nr; r++) {
                if (s >= nslot - 2 && rnd(32))
                    put(&cm, "%s{\"segment\":\"x%u\",\"variant\":\"v%u\"}", r ? "," : "", rnd(24), r % 3);
                else
                    put(&cm, "%s{\"segment\":\"s%u\",\"variant\":\"v%u\"}", r ? "," : "", rnd((unsigned)nseg),
                        r % 3);
            }
            put(&cm, "],\"default\":\"d\",\"variants\":{\"v0\":0,\"v1\":1,\"v2\":2,\"d\":3}}");
        }
        put(&cm, "]");
        vd_ruleset *rs = vd_test_compile("r", sg.p, sg.n, cm.p, cm.n);
        assert_non_null(rs);
        for (uint32_t a = 0; a < rs->nindex; a++)
            for (uint32_t e = 0; e <= rs->index[a].mask; e++)
                for (uint32_t r = 0; rs->index[a].tab[e].key.p && r < rs->index[a].tab[e].rn; r++) {
                    const vd_slot_run *run = &rs->entry_runs[rs->index[a].tab[e].rfirst + r];
                    nruns[run->dense != 0]++;
                }
        for (unsigned q = 0; q < 400; q++) {
            char url[128], ctry[8];
            unsigned k = rnd(10);
            snprintf(url, sizeof url, "https://shop.example/%s%u/%s?ref=p%u&q=%s", rnd(2) ? "c/" : "p/", k,
                     WORDS[rnd(4)], rnd(10), WORDS[rnd(4)]);
            snprintf(ctry, sizeof ctry, "%s", CC[rnd(5)]);
            static const char *const refs[] = { "", "https://www.google.com/", "https://www.facebook.com/",
                                                "https://blog.example.org/x" };
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = 1795392000 + (int64_t)rnd(14 * 86400);
            req.has_ts = true;
            req.url = vd_str_cstr(url);
            req.referer = vd_str_cstr(refs[rnd(4)]);
            req.ua = vd_str_cstr(UAS[rnd(4)]);
            req.lang = vd_str_cstr(LANGS[rnd(3)]);
            req.tz = VD_STR_LIT("Europe/Berlin");
            req.nattrs = 1;
            req.attrs[0].key = VD_STR_LIT("country");
            req.attrs[0].val.kind = VD_VAL_STR;
            req.attrs[0].val.u.s = vd_str_cstr(ctry);
            static char names[VD_MAX_SLOTS_PER_REQUEST][8];
            req.nslots = 1 + rnd(7);
            for (unsigned s = 0; s < req.nslots; s++) {
                snprintf(names[s], sizeof names[s], "t%u", rnd((unsigned)nslot + 1));   /* t6: unknown */
                req.slots[s] = vd_str_cstr(names[s]);
            }
            matched += check_request(rs, &req, &env, ev, brute, req.ts) > 0;
            checked++;
        }
        vd_ruleset_release(rs);
        free(sg.p);
        free(cm.p);
    }
    printf("random shapes vs brute force: %u requests, %u with matches; candidate runs: %u as pieces, %u dense; "
           "source/device families left uncomputed %u times, computed %u\n",
           checked, matched, nruns[0], nruns[1], lazy_skipped, lazy_reached);
    assert_true(matched > checked / 4);
    /* The lazy path ran both ways: families skipped, and reached. */
    assert_true(lazy_skipped > 100 && lazy_reached > 100);
    assert_true(nruns[0] > 100 && nruns[1] > 100);
    vd_eval_free(ev);
    vd_eval_free(brute);
    vd_tzdb_close(tzdb);
}

/* ---- lazy probing -----------------------------------------------------------
 * A slot whose first rules have no string guard is often decided before
 * its rules keyed on the device or the traffic source: the decision then
 * computes neither family (the context's `done` flags), and computes each
 * as soon as the walk reaches a rule filed under it. Answers equal those
 * with every attribute probed up front. */
static void test_lazy_probe_families(void **state)
{
    (void)state;
    static const char segs[] = "["
        "{\"id\":\"not-a\",\"match\":{\"not\":{\"attr\":\"url.query.a\",\"op\":\"eq\",\"value\":\"1\"}}},"
        "{\"id\":\"not-b\",\"match\":{\"not\":{\"attr\":\"url.query.b\",\"op\":\"eq\",\"value\":\"1\"}}},"
        "{\"id\":\"mobile\",\"match\":{\"attr\":\"device.type\",\"op\":\"eq\",\"value\":\"mobile\"}},"
        "{\"id\":\"paid\",\"match\":{\"attr\":\"source.medium\",\"op\":\"eq\",\"value\":\"paid\"}}]";
    static const char cmap[] = "["
        "{\"slot\":\"s\",\"rules\":[{\"segment\":\"not-a\",\"variant\":\"a\"},{\"segment\":\"not-b\",\"variant\":\"b\"},"
        "  {\"segment\":\"mobile\",\"variant\":\"m\"},{\"segment\":\"paid\",\"variant\":\"p\"}],"
        " \"default\":\"d\",\"variants\":{\"a\":1,\"b\":2,\"m\":3,\"p\":4,\"d\":5}},"
        "{\"slot\":\"early\",\"rules\":[{\"segment\":\"mobile\",\"variant\":\"m\"},{\"segment\":\"not-a\",\"variant\":\"a\"}],"
        " \"default\":\"d\",\"variants\":{\"a\":1,\"m\":3,\"d\":5}}]";
    vd_docset ds;
    static vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/l.json", segs, strlen(segs));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/l.json", cmap, strlen(cmap));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "l", &err);
    vd_docset_free(&ds);
    assert_non_null(rs);
    vd_env env = { 0 };
    vd_eval *ev = vd_eval_new();
    static const struct {
        const char *url;
        unsigned ua;          /* UAS[ua]: 1 a phone, 2 a desktop */
        const char *slot;
        int rule;             /* the winner */
        unsigned done;        /* of device and source: computed by the lazy path */
    } cases[] = {
        { "https://shop.example/p", 1, "s", 0, 0 },
        { "https://shop.example/p?a=1", 1, "s", 1, 0 },
        { "https://shop.example/p?a=1&b=1", 1, "s", 2, VD_FAM_DEVICE },
        { "https://shop.example/p?a=1&b=1&gclid=x", 2, "s", 3, VD_FAM_DEVICE | VD_FAM_SOURCE },
        { "https://shop.example/p?a=1&b=1", 2, "s", -1, VD_FAM_DEVICE | VD_FAM_SOURCE },
        /* rule 0 is keyed on the device: no rule can win before it */
        { "https://shop.example/p", 2, "early", 1, VD_FAM_DEVICE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int defer = 1; defer >= 0; defer--) {
            vd_request req;
            memset(&req, 0, sizeof req);
            req.url = vd_str_cstr(cases[i].url);
            req.ua = vd_str_cstr(UAS[cases[i].ua]);
            req.nslots = 1;
            req.slots[0] = vd_str_cstr(cases[i].slot);
            vd_context ctx;
            vd_context_init(&ctx, &req, &env, NULL, 1795392000);
            vd_eval_set_defer(ev, defer);
            vd_decision d;
            assert_int_equal(vd_decide(rs, ev, &ctx, &d), 0);
            assert_int_equal(d.slots[0].rule, cases[i].rule);
            unsigned fams = ctx.done & (VD_FAM_DEVICE | VD_FAM_SOURCE);
            if (defer)
                assert_int_equal(fams, cases[i].done);
            else   /* probed up front: the slot's families, whatever the winner */
                assert_int_equal(fams, strcmp(cases[i].slot, "s") ? VD_FAM_DEVICE : VD_FAM_DEVICE | VD_FAM_SOURCE);
        }
    vd_eval_set_defer(ev, true);
    vd_eval_free(ev);
    vd_ruleset_release(rs);
}

/* ---- lazy probing with the GeoIP family ------------------------------------
 * Review of issue 13's lazy probing: geo (the demo .mmdb), device and source
 * keys behind rules without a string guard, so every slot defers them; time
 * rules that compute geo mid-walk when the request has no zone (a family
 * computed by an evaluation, then probed cheaply by a later slot); negated
 * and exists-false geo predicates (true when geo is missing); references to
 * costly-keyed segments; pages of 1-8 slots with repeats and unknown names.
 * Deferring and probing up front both equal the brute force (rules,
 * valid_until, the matched list). */
static const char *const GEO_IPS[] = { "1.0.0.7", "2.0.0.9", "3.0.0.1", "5.0.0.3", "13.0.0.1", "17.0.0.1",
                                       "10.0.0.1", "" };
static const char *const GEO_CC[] = { "DE", "US", "FR", "JP", "NZ" };
static const char *const GEO_CITY[] = { "Berlin", "Hamburg", "New York", "Paris", "Tokyo" };

static void lazy_geo_leaf(sbuf *b, int i)
{
    switch (rnd(8)) {
    case 0:
        put(b, "{\"attr\":\"geo.country\",\"op\":\"eq\",\"value\":\"%s\"}", GEO_CC[rnd(5)]);
        break;
    case 1:
        put(b, "{\"attr\":\"geo.city\",\"op\":\"in\",\"value\":[\"%s\",\"%s\"]}", GEO_CITY[rnd(5)], GEO_CITY[rnd(5)]);
        break;
    case 2:
        put(b, "{\"attr\":\"device.type\",\"op\":\"eq\",\"value\":\"%s\"}", DEVICES[rnd(3)]);
        break;
    case 3:
        put(b, "{\"attr\":\"source.medium\",\"op\":\"eq\",\"value\":\"%s\"}", MEDIA[rnd(5)]);
        break;
    case 4:   /* true when geo is missing (negate: if_missing) */
        put(b, "{\"not\":{\"attr\":\"geo.country\",\"op\":\"in\",\"value\":[\"%s\"]}}", GEO_CC[rnd(5)]);
        break;
    case 5:
        put(b, "{\"attr\":\"geo.city\",\"op\":\"exists\",\"value\":false}");
        break;
    case 6:
        if (i > 0) {
            put(b, "{\"segment\":\"g%d\"}", (int)rnd((unsigned)i));
            break;
        }
        /* fall through */
    default:
        put(b, "{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[%u,%u]}", rnd(24), rnd(24));
        break;
    }
}

static void test_lazy_probe_geo_equal_brute_force(void **state)
{
    (void)state;
    static const char *const dbs[] = { "build/demo-city.mmdb", "build-asan/demo-city.mmdb" };
    const char *dbpath = NULL;
    for (size_t i = 0; i < 2 && !dbpath; i++)
        if (access(dbs[i], R_OK) == 0)
            dbpath = dbs[i];
    assert_non_null(dbpath);   /* make unit builds it */
    char msg[256];
    vd_geo_db *geo = vd_geo_open(dbpath, msg, sizeof msg);
    assert_non_null(geo);
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = geo, .tzdb = tzdb };
    vd_eval *ev = vd_eval_new(), *brute = vd_eval_new();
    unsigned checked = 0, matched = 0, geo_skipped = 0, geo_reached = 0, deferring = 0;
    for (unsigned set = 0; set < 12; set++) {
        int nseg = 30 + (int)rnd(40), nslot = 8;
        sbuf sg = { 0 }, cm = { 0 };
        put(&sg, "[");
        /* u0..u3: no string guard, false for most requests (a=1, b=1) */
        put(&sg, "{\"id\":\"u0\",\"match\":{\"not\":{\"attr\":\"url.query.a\",\"op\":\"eq\",\"value\":\"1\"}}},"
                 "{\"id\":\"u1\",\"match\":{\"not\":{\"attr\":\"url.query.b\",\"op\":\"eq\",\"value\":\"1\"}}},"
                 "{\"id\":\"u2\",\"match\":{\"all\":[{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[3,4]},"
                 "  {\"not\":{\"attr\":\"url.query.a\",\"op\":\"eq\",\"value\":\"1\"}}]}},"
                 "{\"id\":\"u3\",\"match\":{\"all\":[{\"attr\":\"time.weekday\",\"op\":\"in\",\"value\":[\"sun\"]},"
                 "  {\"not\":{\"attr\":\"url.query.b\",\"op\":\"eq\",\"value\":\"1\"}}]}}");
        for (int i = 0; i < nseg; i++) {
            put(&sg, ",{\"id\":\"g%d\",\"match\":", i);
            unsigned kind = rnd(3);
            if (kind == 0) {
                lazy_geo_leaf(&sg, i);                /* a bare key (or not) */
            } else {
                put(&sg, "{\"%s\":[", kind == 1 ? "all" : "any");
                unsigned n = 1 + rnd(3);
                for (unsigned c = 0; c < n; c++) {
                    if (c)
                        put(&sg, ",");
                    lazy_geo_leaf(&sg, i);
                }
                put(&sg, "]}");
            }
            put(&sg, "}");
        }
        put(&sg, "]");
        put(&cm, "[");
        for (int s = 0; s < nslot; s++) {
            put(&cm, "%s{\"slot\":\"t%d\",\"rules\":[", s ? "," : "", s);
            /* two to four rules without a string guard first: the keyed
             * rules after them are deferred */
            unsigned nu = 2 + rnd(3), nr = nu + 1 + rnd(40);
            for (unsigned r = 0; r < nr; r++) {
                if (r < nu || rnd(6) == 0)
                    put(&cm, "%s{\"segment\":\"u%u\",\"variant\":\"v%u\"}", r ? "," : "", rnd(4), r % 3);
                else
                    put(&cm, "%s{\"segment\":\"g%u\",\"variant\":\"v%u\"}", r ? "," : "", rnd((unsigned)nseg), r % 3);
            }
            put(&cm, "],\"default\":\"d\",\"variants\":{\"v0\":0,\"v1\":1,\"v2\":2,\"d\":3}}");
        }
        put(&cm, "]");
        vd_ruleset *rs = vd_test_compile("g", sg.p, sg.n, cm.p, cm.n);
        assert_non_null(rs);
        for (uint32_t sl = 0; sl < rs->nslots; sl++)
            deferring += rs->slot_lazy_first[sl + 1] > rs->slot_lazy_first[sl];
        for (unsigned q = 0; q < 300; q++) {
            char url[128];
            static const char *const refs[] = { "", "https://www.google.com/", "https://www.facebook.com/",
                                                "https://blog.example.org/x" };
            snprintf(url, sizeof url, "https://shop.example/p?a=%u&b=%u%s", rnd(6) ? 1 : 2, rnd(6) ? 1 : 2,
                     rnd(4) ? "" : "&gclid=x");
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = 1795392000 + (int64_t)rnd(14 * 86400);
            req.has_ts = true;
            req.url = vd_str_cstr(url);
            req.ip = vd_str_cstr(GEO_IPS[rnd(8)]);
            req.referer = vd_str_cstr(refs[rnd(4)]);
            req.ua = vd_str_cstr(UAS[rnd(4)]);
            /* no zone: a time rule computes geo mid-walk */
            req.tz = rnd(2) ? VD_STR_LIT("Europe/Berlin") : VD_STR_NULL;
            static char names[VD_MAX_SLOTS_PER_REQUEST][8];
            req.nslots = 1 + rnd(8);
            for (unsigned s = 0; s < req.nslots; s++) {
                snprintf(names[s], sizeof names[s], "t%u", rnd((unsigned)nslot + 1));   /* t8: unknown */
                req.slots[s] = vd_str_cstr(names[s]);
            }
            for (int defer = 1; defer >= 0; defer--) {
                vd_eval_set_defer(ev, defer);
                matched += check_request(rs, &req, &env, ev, brute, req.ts) > 0;
                checked++;
            }
            /* How often the lazy path left geo uncomputed. */
            vd_eval_set_defer(ev, true);
            req.segments = false;
            vd_context ctx;
            vd_context_init(&ctx, &req, &env, NULL, req.ts);
            vd_decision d;
            assert_int_equal(vd_decide(rs, ev, &ctx, &d), 0);
            if (req.ip.n && req.tz.n)
                (ctx.done & VD_FAM_GEO) ? geo_reached++ : geo_skipped++;
        }
        vd_ruleset_release(rs);
        free(sg.p);
        free(cm.p);
    }
    printf("lazy probing with geo vs brute force: %u decisions, %u with matches, %u slots deferring; "
           "geo left uncomputed %u times, computed %u\n", checked, matched, deferring, geo_skipped, geo_reached);
    assert_true(matched > checked / 4);
    assert_true(deferring > 40);
    assert_true(geo_skipped > 50 && geo_reached > 50);
    vd_eval_set_defer(ev, true);
    vd_eval_free(ev);
    vd_eval_free(brute);
    vd_tzdb_close(tzdb);
    vd_geo_close(geo);
}

/* ---- reordered trees against a reference walk -----------------------------
 * The index build reorders the children of timeless all/any nodes and
 * compiles timeless segments to branching programs (the evaluator walks
 * timeless subtrees of the others as plain booleans); the brute force above shares
 * that evaluator, so here the trees are walked by the test itself: random
 * nested segments are kept as test-side trees whose leaves are also
 * compiled as one-predicate segments (nothing to reorder), and each
 * compiled segment must equal the walk of its tree. */
typedef struct rnode {
    int kind;                 /* 0 all, 1 any, 2 not, 3 ref, 4 leaf */
    int n, first;             /* children: rkids[first .. first + n) */
    int arg;                  /* ref: segment; leaf: leaf segment index */
} rnode;

enum { RMAX = 4096 };
static rnode rnodes[RMAX];
static int rkids[RMAX], nrnodes, nrkids, nleaves;
static int rroot[64];

static int rtree(sbuf *leaves, int seg, int depth)
{
    int me = nrnodes++;
    assert_true(me < RMAX);
    unsigned k = depth == 0 ? 4 : rnd(6);
    if (k == 3 && seg == 0)
        k = 4;
    if (k >= 4) {
        rnodes[me] = (rnode){ 4, 0, 0, nleaves };
        put(leaves, ",{\"id\":\"leaf%d\",\"match\":", nleaves++);
        leaf(leaves, 1, 0);   /* nested-shape leaves, time ones included; no refs */
        put(leaves, "}");
        return me;
    }
    if (k == 3) {
        rnodes[me] = (rnode){ 3, 0, 0, (int)rnd((unsigned)seg) };
        return me;
    }
    int n = k == 2 ? 1 : 2 + (int)rnd(3);
    int kids[8];
    for (int c = 0; c < n; c++)
        kids[c] = rtree(leaves, seg, depth - 1);
    rnodes[me] = (rnode){ (int)(k < 2 ? k : 2), n, nrkids, 0 };
    for (int c = 0; c < n; c++)
        rkids[nrkids++] = kids[c];
    return me;
}

static void rjson(sbuf *b, int i)
{
    const rnode *r = &rnodes[i];
    if (r->kind == 4) {
        put(b, "{\"segment\":\"leaf%d\"}", r->arg);
        return;
    }
    if (r->kind == 3) {
        put(b, "{\"segment\":\"n%d\"}", r->arg);
        return;
    }
    put(b, r->kind == 2 ? "{\"not\":" : r->kind == 0 ? "{\"all\":[" : "{\"any\":[");
    for (int c = 0; c < r->n; c++) {
        if (c)
            put(b, ",");
        rjson(b, rkids[r->first + c]);
    }
    put(b, r->kind == 2 ? "}" : "]}");
}

static bool rwalk(vd_eval *ev, const vd_ruleset *rs, int i)
{
    const rnode *r = &rnodes[i];
    char id[16];
    switch (r->kind) {
    case 0:
        for (int c = 0; c < r->n; c++)
            if (!rwalk(ev, rs, rkids[r->first + c]))
                return false;
        return true;
    case 1:
        for (int c = 0; c < r->n; c++)
            if (rwalk(ev, rs, rkids[r->first + c]))
                return true;
        return false;
    case 2:
        return !rwalk(ev, rs, rkids[r->first]);
    case 3:
        return rwalk(ev, rs, rroot[r->arg]);
    default:
        snprintf(id, sizeof id, "leaf%d", r->arg);
        return vd_eval_segment(ev, vd_ruleset_find_segment(rs, vd_str_cstr(id)), NULL) == 1;
    }
}

static void test_reordered_trees_equal_reference(void **state)
{
    (void)state;
    char msg[256];
    vd_tzdb *tzdb = vd_tzdb_open(NULL, msg, sizeof msg);
    assert_non_null(tzdb);
    vd_env env = { .geo = NULL, .tzdb = tzdb };
    vd_eval *ev = vd_eval_new();
    unsigned checked = 0, trues = 0;
    for (unsigned set = 0; set < 8; set++) {
        nrnodes = nrkids = nleaves = 0;
        sbuf sg = { 0 }, leaves = { 0 };
        int nseg = 20 + (int)rnd(30);
        for (int i = 0; i < nseg; i++)
            rroot[i] = rtree(&leaves, i, 4);
        put(&sg, "[");
        for (int i = 0; i < nseg; i++) {
            put(&sg, "%s{\"id\":\"n%d\",\"match\":", i ? "," : "", i);
            rjson(&sg, rroot[i]);
            put(&sg, "}");
        }
        put(&sg, "%.*s]", (int)leaves.n, leaves.p);
        static const char cmap[] = "[{\"slot\":\"a\",\"rules\":[{\"segment\":\"n0\",\"variant\":\"x\"}],"
                                   "\"default\":\"x\",\"variants\":{\"x\":1}}]";
        vd_ruleset *rs = vd_test_compile("n", sg.p, sg.n, cmap, strlen(cmap));
        assert_non_null(rs);
        for (unsigned q = 0; q < 200; q++) {
            char url[128];
            snprintf(url, sizeof url, "https://shop.example/c/%u/%s?ref=p%u", rnd(10), WORDS[rnd(4)], rnd(10));
            static const char *const refs[] = { "", "https://www.google.com/", "https://www.facebook.com/" };
            vd_request req;
            memset(&req, 0, sizeof req);
            req.ts = 1795392000 + (int64_t)rnd(14 * 86400);
            req.has_ts = true;
            req.url = vd_str_cstr(url);
            req.referer = vd_str_cstr(refs[rnd(3)]);
            req.lang = vd_str_cstr(LANGS[rnd(3)]);
            req.tz = VD_STR_LIT("Europe/Berlin");
            vd_context ctx;
            vd_context_init(&ctx, &req, &env, NULL, req.ts);
            assert_int_equal(vd_eval_begin(ev, rs, &ctx), 0);
            for (int i = 0; i < nseg; i++) {
                char id[16];
                snprintf(id, sizeof id, "n%d", i);
                int got = vd_eval_segment(ev, vd_ruleset_find_segment(rs, vd_str_cstr(id)), NULL);
                assert_int_equal(got, rwalk(ev, rs, rroot[i]));
                trues += got == 1;
                checked++;
            }
        }
        vd_ruleset_release(rs);
        free(sg.p);
        free(leaves.p);
    }
    printf("reordered trees vs reference walk: %u verdicts, %u true\n", checked, trues);
    assert_true(trues > checked / 10 && trues < checked - checked / 10);
    vd_eval_free(ev);
    vd_tzdb_close(tzdb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_kinds_equal_brute_force),
        cmocka_unit_test(test_guard_prefers_rare_keys),
        cmocka_unit_test(test_random_shapes_equal_brute_force),
        cmocka_unit_test(test_lazy_probe_families),
        cmocka_unit_test(test_lazy_probe_geo_equal_brute_force),
        cmocka_unit_test(test_reordered_trees_equal_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
