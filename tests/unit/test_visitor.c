/* test_visitor.c — the pure parts of profiles (contract v2): score decay
 * against values worked out by hand, sessionization edges, merge
 * arithmetic, consent gating, keyed id hashing (SipHash reference vectors),
 * score definitions compiled with the other definitions, and the visitor.*
 * attributes the rules see. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decision/decide.h"
#include "context/context.h"
#include "context/visitor.h"
#include "core/sha1.h"
#include "core/siphash.h"
#include "profile/store.h"
#include "rules/eval.h"
#include "rules/build.h"
#include "rules/ruleset.h"

#define DAY 86400
#define EPS(x) (fabs(x) * 1e-12 + 1e-12)
#define assert_near(a, b) do { double a_ = (a), b_ = (b); \
    if (fabs(a_ - b_) > EPS(b_)) fail_msg("%.17g != %.17g", a_, b_); } while (0)

static const int64_t T0 = 1767225600;   /* 2026-01-01T00:00:00Z */

static void test_decay_by_hand(void **state)
{
    (void)state;
    double H = 14.0 * DAY;
    vd_score_state s = { 0 };
    vd_score_add(&s, 10, T0, H);
    assert_near(vd_score_value_at(&s, T0, H), 10);
    assert_near(vd_score_value_at(&s, T0 + 14 * DAY, H), 5);     /* one half-life */
    assert_near(vd_score_value_at(&s, T0 + 28 * DAY, H), 2.5);   /* two */
    assert_near(vd_score_value_at(&s, T0 + 7 * DAY, H), 10 / sqrt(2.0));
    /* Before the state's time: the value at that time (no history kept). */
    assert_near(vd_score_value_at(&s, T0 - DAY, H), 10);
    /* A second event one half-life later: 5 + 10 = 15, the new peak. */
    vd_score_add(&s, 10, T0 + 14 * DAY, H);
    assert_near(s.value, 15);
    assert_near(s.peak, 15);
    assert_int_equal(s.peak_t, T0 + 14 * DAY);
    /* Two half-lives on: 3.75, decline 1 - 3.75/15 = 0.75. */
    double d;
    assert_true(vd_score_decline(&s, T0 + 42 * DAY, H, &d));
    assert_near(d, 0.75);
    assert_near(s.peak, 15);   /* reading never moves the peak */
    vd_score_state zero = { 0 };
    assert_false(vd_score_decline(&zero, T0, H, &d));   /* missing while the peak is 0 */
}

static void test_decay_out_of_order(void **state)
{
    (void)state;
    double H = 7.0 * DAY;
    /* A: 8 points at T0+7d, B: 4 points at T0. At T0+14d: 8/2 + 4/4 = 5. */
    vd_score_state ab = { 0 }, ba = { 0 };
    vd_score_add(&ab, 8, T0 + 7 * DAY, H);
    vd_score_add(&ab, 4, T0, H);              /* late: arrives after A */
    vd_score_add(&ba, 4, T0, H);
    vd_score_add(&ba, 8, T0 + 7 * DAY, H);
    assert_near(vd_score_value_at(&ab, T0 + 14 * DAY, H), 5);
    assert_near(vd_score_value_at(&ba, T0 + 14 * DAY, H), 5);
    assert_int_equal(ab.t, T0 + 7 * DAY);
    /* In order the peak is the value just after A: 2 + 8 = 10. Late, the
     * peak at A's time takes B's share (4/2): 8 + 2 = 10 too. */
    assert_near(ba.peak, 10);
    assert_near(ab.peak, 10);
}

static void test_decay_fractional_and_year(void **state)
{
    (void)state;
    /* Half a day: 36 hours are three half-lives, 12 -> 1.5. */
    double H = 0.5 * DAY;
    vd_score_state s = { 0 };
    vd_score_add(&s, 12, T0, H);
    assert_near(vd_score_value_at(&s, T0 + 36 * 3600, H), 1.5);
    /* 2.5 days: 5 days later a quarter. */
    H = 2.5 * DAY;
    s = (vd_score_state){ 0 };
    vd_score_add(&s, 3, T0, H);
    assert_near(vd_score_value_at(&s, T0 + 5 * DAY, H), 0.75);
    /* A year of decay at 30 days: 1000 x 2^(-365/30) = 0.2175045698584814. */
    H = 30.0 * DAY;
    s = (vd_score_state){ 0 };
    vd_score_add(&s, 1000, T0, H);
    assert_near(vd_score_value_at(&s, T0 + 365 * DAY, H), 0.21750456985848138);
    /* ... and at one day: 2^-365, tiny but not zero. */
    H = 1.0 * DAY;
    s = (vd_score_state){ 0 };
    vd_score_add(&s, 1, T0, H);
    assert_near(vd_score_value_at(&s, T0 + 365 * DAY, H), 1.3306124500025471e-110);
    double d;
    assert_true(vd_score_decline(&s, T0 + 365 * DAY, H, &d));
    assert_near(d, 1.0 - 1.3306124500025471e-110);
}

static void test_sessions(void **state)
{
    (void)state;
    const int64_t gap = 30 * 60;
    vd_visit_state v = { 0 };
    int64_t days;
    assert_true(vd_visit_touch(&v, T0, gap));
    assert_int_equal(v.visits, 1);
    assert_false(vd_visit_days_since_last(&v, &days));        /* first visit */
    assert_false(vd_visit_touch(&v, T0 + gap, gap));           /* exactly the gap: same visit */
    assert_int_equal(v.visits, 1);
    assert_int_equal(v.last_seen, T0 + gap);
    assert_true(vd_visit_touch(&v, T0 + 2 * gap + 1, gap));    /* gap + 1 s after the last */
    assert_int_equal(v.visits, 2);
    assert_int_equal(v.prev_end, T0 + gap);
    assert_int_equal(v.visit_start, T0 + 2 * gap + 1);
    assert_true(vd_visit_days_since_last(&v, &days));
    assert_int_equal(days, 0);
    /* Three days and a bit later: 3 whole days between end and start. */
    int64_t t3 = T0 + 2 * gap + 1 + 3 * DAY + 5;
    assert_true(vd_visit_touch(&v, t3, gap));
    assert_int_equal(v.visits, 3);
    assert_true(vd_visit_days_since_last(&v, &days));
    assert_int_equal(days, 3);
    /* An old event never starts a visit; it may move first_seen back. */
    assert_false(vd_visit_touch(&v, T0 - 10 * DAY, gap));
    assert_int_equal(v.visits, 3);
    assert_int_equal(v.first_seen, T0 - 10 * DAY);
    assert_int_equal(v.last_seen, t3);
}

static void test_merge(void **state)
{
    (void)state;
    vd_visit_state anon = { .visits = 2, .first_seen = T0, .last_seen = T0 + 5000,
                            .visit_start = T0 + 4000, .prev_end = T0 + 100 };
    vd_visit_state known = { .visits = 3, .first_seen = T0 + 1000, .last_seen = T0 + 9000,
                             .visit_start = T0 + 8000, .prev_end = T0 + 6000 };
    vd_visit_merge(&known, &anon);
    assert_int_equal(known.visits, 5);
    assert_int_equal(known.first_seen, T0);           /* earliest */
    assert_int_equal(known.last_seen, T0 + 9000);
    assert_int_equal(known.visit_start, T0 + 8000);   /* the later visit is current */
    vd_visit_state empty = { 0 };
    vd_visit_merge(&empty, &anon);
    assert_int_equal(empty.visits, 2);

    /* Scores brought to the later time and added: 4 at T0 and 8 at T0+H
     * make 2 + 8 = 10 at T0+H. */
    double H = 10.0 * DAY;
    vd_score_state a = { 0 }, b = { 0 };
    vd_score_add(&a, 4, T0, H);
    vd_score_add(&b, 8, T0 + 10 * DAY, H);
    vd_score_merge(&a, &b, H);
    assert_near(a.value, 10);
    assert_int_equal(a.t, T0 + 10 * DAY);
    assert_near(a.peak, 10);
    /* Merging into nothing copies; merging nothing changes nothing. */
    vd_score_state z = { 0 };
    vd_score_merge(&z, &b, H);
    assert_near(z.value, 8);
    vd_score_state before = a;
    vd_score_merge(&a, &(vd_score_state){ 0 }, H);
    assert_memory_equal(&a, &before, sizeof a);
}

static void test_consent(void **state)
{
    (void)state;
    vd_consent c = VD_CONSENT_PERSONALIZATION;
    assert_true(vd_consent_parse(VD_STR_LIT("none"), &c));
    assert_int_equal(c, VD_CONSENT_NONE);
    assert_true(vd_consent_parse(VD_STR_LIT("personalization"), &c));
    assert_int_equal(c, VD_CONSENT_PERSONALIZATION);
    assert_false(vd_consent_parse(VD_STR_LIT("yes"), &c));
    assert_false(vd_consent_parse(VD_STR_LIT("Personalization"), &c));
    assert_int_equal(vd_profile_gate(false, VD_CONSENT_PERSONALIZATION, true), VD_PROFILE_OFF);
    assert_int_equal(vd_profile_gate(true, VD_CONSENT_NONE, true), VD_PROFILE_NO_CONSENT);
    assert_int_equal(vd_profile_gate(true, VD_CONSENT_NONE, false), VD_PROFILE_NO_CONSENT);
    assert_int_equal(vd_profile_gate(true, VD_CONSENT_PERSONALIZATION, false), VD_PROFILE_NO_ID);
    assert_int_equal(vd_profile_gate(true, VD_CONSENT_PERSONALIZATION, true), VD_PROFILE_OK);
    assert_null(vd_profile_status_name(VD_PROFILE_OFF));
    assert_string_equal(vd_profile_status_name(VD_PROFILE_TIMEOUT), "timeout");
    assert_string_equal(vd_profile_status_name(VD_PROFILE_UNAVAILABLE), "unavailable");
}

static void test_siphash_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    /* The reference implementation's vectors.h. */
    assert_true(vd_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(vd_siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    uint8_t out[16];
    static const uint8_t want0[16] = { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                       0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 };
    vd_siphash24_128(key, msg, 0, out);
    assert_memory_equal(out, want0, 16);
}

static void test_sha1(void **state)
{
    (void)state;
    char hex[41];
    vd_sha1_hex("abc", 3, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    vd_sha1_hex("", 0, hex);
    assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";   /* 56 bytes: two blocks */
    vd_sha1_hex(m, strlen(m), hex);
    assert_string_equal(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void test_id_hash(void **state)
{
    (void)state;
    uint8_t k1[16], k2[16];
    assert_true(vd_secret_parse("000102030405060708090a0b0c0d0e0f", k1));
    assert_true(vd_secret_parse("000102030405060708090A0B0C0D0E10", k2));
    assert_false(vd_secret_parse("0001", k2));
    assert_false(vd_secret_parse("zz0102030405060708090a0b0c0d0e0f", k2));
    assert_false(vd_secret_parse(NULL, k2));
    char a[VD_ID_HASH_HEX], b[VD_ID_HASH_HEX], c[VD_ID_HASH_HEX], d[VD_ID_HASH_HEX];
    vd_id_hash(k1, false, VD_STR_LIT("visitor-123"), a);
    vd_id_hash(k1, false, VD_STR_LIT("visitor-123"), b);
    assert_string_equal(a, b);                 /* stable: every daemon hashes alike */
    assert_int_equal(strlen(a), 32);
    assert_null(strstr(a, "visitor"));         /* never the raw id */
    vd_id_hash(k1, true, VD_STR_LIT("visitor-123"), c);
    assert_string_not_equal(a, c);             /* uid and vid spaces apart */
    vd_id_hash(k2, false, VD_STR_LIT("visitor-123"), d);
    assert_string_not_equal(a, d);             /* another secret, another key */
    /* The documented construction: SipHash-2-4-128 of "v:" + id. */
    uint8_t h[16];
    vd_siphash24_128(k1, "v:visitor-123", 13, h);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    assert_string_equal(a, hex);
}

/* ---- scores and visitor.* in the compiler -------------------------------- */

static vd_errors err;

static vd_ruleset *compile3(const char *scores, const char *segs, const char *cmap)
{
    vd_docset ds;
    vd_docset_init(&ds);
    if (scores)
        assert_int_equal(vd_docset_add(&ds, VD_DOC_SCORES, "scores/t.json", scores, strlen(scores)), 0);
    if (segs)
        assert_int_equal(vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs, strlen(segs)), 0);
    if (cmap)
        assert_int_equal(vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", cmap, strlen(cmap)), 0);
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v-test", &err);
    vd_docset_free(&ds);
    return rs;
}

static bool has_error(const char *a, const char *b, const char *c)
{
    for (size_t i = 0; i < err.n; i++)
        if (strstr(err.msg[i], a) && strstr(err.msg[i], b) && strstr(err.msg[i], c))
            return true;
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "  err: %s\n", err.msg[i]);
    return false;
}

#define SCORES "[{\"id\":\"sneakers\",\"half_life_days\":14,\"events\":{\"product_view\":1,\"add_to_cart\":5}," \
               "\"categories\":[\"sneakers\",\"running\"]},"                                                  \
               "{\"id\":\"engagement\",\"half_life_days\":7.5,\"events\":{\"page_view\":1}}]"

static void test_scores_compile(void **state)
{
    (void)state;
    vd_ruleset *rs = compile3(SCORES, NULL, NULL);
    assert_non_null(rs);
    assert_int_equal(vd_ruleset_nscores(rs), 2);
    assert_true(vd_str_eq(vd_ruleset_score_at(rs, 0)->id, VD_STR_LIT("engagement")));   /* sorted */
    const vd_score_def *d = vd_ruleset_find_score(rs, VD_STR_LIT("sneakers"));
    assert_non_null(d);
    assert_near(d->half_life_s, 14.0 * DAY);
    double p;
    assert_true(vd_score_counts(d, VD_STR_LIT("add_to_cart"), VD_STR_LIT("Running"), &p));
    assert_near(p, 5);
    assert_false(vd_score_counts(d, VD_STR_LIT("add_to_cart"), VD_STR_LIT("hats"), &p));
    assert_false(vd_score_counts(d, VD_STR_LIT("purchase"), VD_STR_LIT("sneakers"), &p));
    const vd_score_def *e = vd_ruleset_find_score(rs, VD_STR_LIT("engagement"));
    assert_true(vd_score_counts(e, VD_STR_LIT("page_view"), VD_STR_NULL, &p));   /* no categories */
    assert_null(vd_ruleset_find_score(rs, VD_STR_LIT("nope")));
    vd_ruleset_release(rs);
}

static void test_scores_errors(void **state)
{
    (void)state;
    assert_null(compile3("{\"id\":\"s\",\"half_life_days\":0,\"events\":{\"a\":1}}", NULL, NULL));
    assert_true(has_error("scores/t.json: ", "score \"s\"", "$.half_life_days: "));
    assert_null(compile3("[{\"id\":\"ok\",\"half_life_days\":1,\"events\":{\"a\":1}},"
                         "{\"id\":\"s\",\"half_life_days\":1,\"events\":{\"a\":-1}}]", NULL, NULL));
    assert_true(has_error("scores/t.json: ", "score \"s\"", "$[1].events.a: points must be"));
    assert_null(compile3("{\"id\":\"s\",\"half_life_days\":1,\"events\":{}}", NULL, NULL));
    assert_true(has_error("score \"s\"", "$.events: ", "at least one"));
    assert_null(compile3("{\"id\":\"s\",\"half_life_days\":1,\"events\":{\"a\":1},\"categories\":\"x\"}", NULL, NULL));
    assert_true(has_error("score \"s\"", "$.categories: ", "array"));
    assert_null(compile3("{\"id\":\"s\",\"half_life_days\":1,\"events\":{\"a\":1},\"decay\":2}", NULL, NULL));
    assert_true(has_error("score \"s\"", "unknown key \"decay\"", ""));
    assert_null(compile3("{\"half_life_days\":1,\"events\":{\"a\":1}}", NULL, NULL));
    assert_true(has_error("scores/t.json: ", "$.id: ", "missing"));
    assert_null(compile3("[{\"id\":\"s\",\"half_life_days\":1,\"events\":{\"a\":1}},"
                         "{\"id\":\"s\",\"half_life_days\":2,\"events\":{\"b\":1}}]", NULL, NULL));
    assert_true(has_error("scores/t.json: ", "score \"s\"", "$[1].id: duplicate score id"));
    /* Points are bounded: no sum of events may overflow to infinity. */
    assert_null(compile3("{\"id\":\"s\",\"half_life_days\":1,\"events\":{\"a\":1e308}}", NULL, NULL));
    assert_true(has_error("score \"s\"", "$.events.a: ", "at most 1e+09"));
    /* A predicate on a score that does not exist. */
    assert_null(compile3(SCORES, "{\"id\":\"p\",\"match\":{\"attr\":\"visitor.score.hats\",\"op\":\"gt\",\"value\":1}}",
                         NULL));
    assert_true(has_error("segments/t.json: ", "segment \"p\"", "unknown score \"hats\""));
}

/* Every visitor.* name of the contract table compiles, with its ops. */
static void test_visitor_attrs_compile(void **state)
{
    (void)state;
    static const char *preds[] = {
        "{\"attr\":\"visitor.known\",\"op\":\"eq\",\"value\":true}",
        "{\"attr\":\"visitor.visits\",\"op\":\"gte\",\"value\":2}",
        "{\"attr\":\"visitor.new\",\"op\":\"eq\",\"value\":false}",
        "{\"attr\":\"visitor.days_since_last_visit\",\"op\":\"gte\",\"value\":30}",
        "{\"attr\":\"visitor.first_seen\",\"op\":\"lt\",\"value\":\"2026-01-01T00:00:00Z\"}",
        "{\"attr\":\"visitor.score.sneakers\",\"op\":\"gte\",\"value\":10}",
        "{\"attr\":\"visitor.peak.engagement\",\"op\":\"gte\",\"value\":50}",
        "{\"attr\":\"visitor.decline.engagement\",\"op\":\"between\",\"value\":[0.7,1]}",
        "{\"attr\":\"visitor.events.purchase\",\"op\":\"gt\",\"value\":0}",
        "{\"attr\":\"visitor.flag.critical_ticket\",\"op\":\"exists\"}",
    };
    for (size_t i = 0; i < sizeof preds / sizeof preds[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "{\"id\":\"p\",\"match\":%s}", preds[i]);
        vd_ruleset *rs = compile3(SCORES, buf, NULL);
        if (!rs) {
            has_error("", "", "");
            fail_msg("should compile: %s", preds[i]);
        }
        vd_ruleset_release(rs);
    }
    assert_null(compile3(SCORES, "{\"id\":\"p\",\"match\":{\"attr\":\"visitor.nope\",\"op\":\"exists\"}}", NULL));
    assert_true(has_error("segment \"p\"", "$.match.attr: ", "unknown attribute"));
}

/* A slot fetches the profile only when its rules can reach visitor.*,
 * through segment references too. */
static void test_slot_reachability(void **state)
{
    (void)state;
    const char *segs = "["
        "{\"id\":\"returning\",\"match\":{\"attr\":\"visitor.visits\",\"op\":\"gte\",\"value\":2}},"
        "{\"id\":\"via-ref\",\"match\":{\"all\":[{\"segment\":\"returning\"}]}},"
        "{\"id\":\"de\",\"match\":{\"attr\":\"geo.country\",\"op\":\"eq\",\"value\":\"DE\"}}]";
    const char *cmap = "["
        "{\"slot\":\"a\",\"rules\":[{\"segment\":\"de\",\"variant\":\"x\"}],\"default\":\"x\",\"variants\":{\"x\":{}}},"
        "{\"slot\":\"b\",\"rules\":[{\"segment\":\"de\",\"variant\":\"x\"},{\"segment\":\"via-ref\",\"variant\":\"x\"}],"
        "\"default\":\"x\",\"variants\":{\"x\":{}}},"
        "{\"slot\":\"c\",\"rules\":[{\"segment\":\"returning\",\"variant\":\"x\"}],\"default\":\"x\",\"variants\":{\"x\":{}}}]";
    vd_ruleset *rs = compile3(SCORES, segs, cmap);
    assert_non_null(rs);
    assert_false(vd_ruleset_find_slot(rs, VD_STR_LIT("a"))->uses_profile);
    assert_true(vd_ruleset_find_slot(rs, VD_STR_LIT("b"))->uses_profile);
    assert_true(vd_ruleset_find_slot(rs, VD_STR_LIT("c"))->uses_profile);
    vd_ruleset_release(rs);
}

static void get(vd_context *ctx, const char *name, vd_value *out)
{
    vd_attr_ref ref;
    assert_true(vd_attr_resolve(vd_str_cstr(name), &ref));
    vd_context_get(ctx, &ref, out);
}

/* The attributes from a decoded profile, at the request's ts. */
static void test_visitor_values(void **state)
{
    (void)state;
    static vd_visitor v;
    memset(&v, 0, sizeof v);
    v.known = true;
    v.visit = (vd_visit_state){ .visits = 3, .first_seen = T0, .last_seen = T0 + 40 * DAY,
                                .visit_start = T0 + 40 * DAY, .prev_end = T0 + 10 * DAY };
    v.nscores = 1;
    v.scores[0].id = VD_STR_LIT("engagement");
    v.scores[0].half_life_s = 7.0 * DAY;
    vd_score_add(&v.scores[0].st, 80, T0, v.scores[0].half_life_s);
    v.nevents = 1;
    v.events[0] = (vd_visitor_count){ VD_STR_LIT("purchase"), 2 };
    v.nflags = 2;
    v.flags[0] = (vd_visitor_flag){ VD_STR_LIT("critical_ticket"), 0 };
    v.flags[1] = (vd_visitor_flag){ VD_STR_LIT("expired"), T0 + DAY };
    vd_request req;
    memset(&req, 0, sizeof req);
    req.has_ts = true;
    req.ts = T0 + 14 * DAY;
    vd_context ctx;
    vd_context_init(&ctx, &req, NULL, NULL, 0);
    vd_value val;
    get(&ctx, "visitor.known", &val);
    assert_int_equal(val.kind, VD_VAL_MISSING);          /* no profile handed over */
    vd_context_set_visitor(&ctx, &v);
    get(&ctx, "visitor.known", &val);
    assert_int_equal(val.kind, VD_VAL_BOOL);
    assert_true(val.u.b);
    get(&ctx, "visitor.visits", &val);
    assert_near(val.u.num, 3);
    get(&ctx, "visitor.new", &val);
    assert_false(val.u.b);
    get(&ctx, "visitor.days_since_last_visit", &val);
    assert_near(val.u.num, 30);
    get(&ctx, "visitor.first_seen", &val);
    assert_near(val.u.num, (double)T0);
    get(&ctx, "visitor.score.engagement", &val);
    assert_near(val.u.num, 20);                          /* 80 after two half-lives */
    get(&ctx, "visitor.peak.engagement", &val);
    assert_near(val.u.num, 80);
    get(&ctx, "visitor.decline.engagement", &val);
    assert_near(val.u.num, 0.75);
    get(&ctx, "visitor.events.purchase", &val);
    assert_near(val.u.num, 2);
    get(&ctx, "visitor.events.refund", &val);
    assert_int_equal(val.kind, VD_VAL_NUM);
    assert_near(val.u.num, 0);
    get(&ctx, "visitor.flag.critical_ticket", &val);
    assert_int_equal(val.kind, VD_VAL_BOOL);
    get(&ctx, "visitor.flag.expired", &val);
    assert_int_equal(val.kind, VD_VAL_MISSING);          /* expired: missing */
    get(&ctx, "visitor.flag.other", &val);
    assert_int_equal(val.kind, VD_VAL_MISSING);
    /* The first visit: new, no days_since_last_visit. */
    v.visit = (vd_visit_state){ .visits = 1, .first_seen = T0, .last_seen = T0, .visit_start = T0 };
    get(&ctx, "visitor.new", &val);
    assert_true(val.u.b);
    get(&ctx, "visitor.days_since_last_visit", &val);
    assert_int_equal(val.kind, VD_VAL_MISSING);
}

/* A profile hash as Redis returns it (layout 1), decoded for the rules:
 * every score of the ruleset listed, unknown fields ignored. */
static void test_profile_decode(void **state)
{
    (void)state;
    vd_ruleset *rs = compile3(SCORES, NULL, NULL);
    assert_non_null(rs);
    static const char *const kv[][2] = {
        { "v", "3" }, { "fs", "1767225600" }, { "ls", "1769817600" }, { "vs", "1769817600" },
        { "pe", "1768435200" }, { "k", "1" }, { "s:sneakers", "10 1767225600 12.5 1767000000" },
        { "s:gone", "7 1 7 1" }, { "e:add_to_cart", "2" }, { "f:critical_ticket", "0" },
        { "f:vip", "1800000000" }, { "zz", "ignored" },
    };
    size_t n = sizeof kv / sizeof kv[0];
    vd_str f[16], v[16];
    for (size_t i = 0; i < n; i++) {
        f[i] = vd_str_cstr(kv[i][0]);
        v[i] = vd_str_cstr(kv[i][1]);
    }
    static vd_visitor vis;
    vd_profile_decode(rs, f, v, n, &vis);
    assert_true(vis.known);
    assert_int_equal(vis.visit.visits, 3);
    assert_int_equal(vis.visit.first_seen, 1767225600);
    assert_int_equal(vis.visit.prev_end, 1768435200);
    int64_t days;
    assert_true(vd_visit_days_since_last(&vis.visit, &days));
    assert_int_equal(days, 16);
    assert_int_equal(vis.nscores, 2);                  /* engagement (never scored) + sneakers */
    const vd_visitor_score *sn = vis.scores[0].id.n == 8 ? &vis.scores[0] : &vis.scores[1];
    assert_true(vd_str_eq(sn->id, VD_STR_LIT("sneakers")));
    assert_near(sn->st.value, 10);
    assert_near(sn->st.peak, 12.5);
    assert_int_equal(sn->st.t, 1767225600);
    assert_near(sn->half_life_s, 14.0 * DAY);
    assert_int_equal(vis.nevents, 1);
    assert_near(vis.events[0].n, 2);
    assert_int_equal(vis.nflags, 2);
    assert_int_equal(vis.flags[0].expires, 0);
    assert_int_equal(vis.flags[1].expires, 1800000000);
    /* Numbers that are not plain decimal integers still decode (strtod). */
    vd_str f2[3] = { VD_STR_LIT("v"), VD_STR_LIT("fs"), VD_STR_LIT("e:x") };
    vd_str v2[3] = { VD_STR_LIT("1e1"), VD_STR_LIT("-5"), VD_STR_LIT("2.5") };
    vd_profile_decode(rs, f2, v2, 3, &vis);
    assert_int_equal(vis.visit.visits, 10);
    assert_int_equal(vis.visit.first_seen, -5);
    assert_int_equal(vis.nevents, 1);
    assert_near(vis.events[0].n, 2.5);
    vd_ruleset_release(rs);
}

/* A score in encoding 2 (docs/PROFILES.md): the byte 2, then value, t, peak,
 * peak_t as little-endian IEEE-754 doubles, written here byte by byte. */
static size_t enc2(char *out, const double d[4])
{
    out[0] = 2;
    for (int i = 0; i < 4; i++) {
        uint64_t u;
        memcpy(&u, &d[i], sizeof u);
        for (int b = 0; b < 8; b++)
            out[1 + 8 * i + b] = (char)(u >> (8 * b) & 0xff);
    }
    return 33;
}

static void test_profile_decode_binary_scores(void **state)
{
    (void)state;
    vd_ruleset *rs = compile3(SCORES, NULL, NULL);
    assert_non_null(rs);
    static vd_visitor vis;
    char b[33], bad[33], text33[34];
    const double d[4] = { 0.1 + 0.2, 1767225600, 12.345678901234567, 1767000000 };
    vd_str f[1] = { VD_STR_LIT("s:sneakers") }, v[1] = { vd_str_make(b, enc2(b, d)) };
    vd_profile_decode(rs, f, v, 1, &vis);
    const vd_visitor_score *sn = vis.scores[0].id.n == 8 ? &vis.scores[0] : &vis.scores[1];
    assert_true(sn->st.value == 0.1 + 0.2);         /* bit for bit */
    assert_true(sn->st.peak == 12.345678901234567);
    assert_int_equal(sn->st.t, 1767225600);
    assert_int_equal(sn->st.peak_t, 1767000000);
    /* A time that is no number leaves the score at 0 (no trap in the cast). */
    const double nan_t[4] = { 1, NAN, 1, 1 };
    v[0] = vd_str_make(bad, enc2(bad, nan_t));
    vd_profile_decode(rs, f, v, 1, &vis);
    sn = vis.scores[0].id.n == 8 ? &vis.scores[0] : &vis.scores[1];
    assert_true(sn->st.value == 0 && sn->st.t == 0);
    /* 33 bytes of text are still text (encoding 1). */
    snprintf(text33, sizeof text33, "%s", "10.25 1767225600 12.50 1767000000");
    assert_int_equal(strlen(text33), 33);
    v[0] = vd_str_make(text33, 33);
    vd_profile_decode(rs, f, v, 1, &vis);
    sn = vis.scores[0].id.n == 8 ? &vis.scores[0] : &vis.scores[1];
    assert_near(sn->st.value, 10.25);
    assert_near(sn->st.peak, 12.5);
    vd_ruleset_release(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_by_hand),
        cmocka_unit_test(test_decay_out_of_order),
        cmocka_unit_test(test_decay_fractional_and_year),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_consent),
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_id_hash),
        cmocka_unit_test(test_scores_compile),
        cmocka_unit_test(test_scores_errors),
        cmocka_unit_test(test_visitor_attrs_compile),
        cmocka_unit_test(test_slot_reachability),
        cmocka_unit_test(test_visitor_values),
        cmocka_unit_test(test_profile_decode),
        cmocka_unit_test(test_profile_decode_binary_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
