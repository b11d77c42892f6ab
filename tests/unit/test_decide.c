/* test_decide.c — the content-map step: first match wins, defaults,
 * unknown slots, weighted sticky splits, valid_until and matched. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rules/build.h"
#include "decision/decide.h"
#include "decision/result.h"
#include "net/json_out.h"
#include "net/rpc_codec.h"
#include <event2/buffer.h>
#include "rules/model.h"

static const char *const SEGS = "["
    "{\"id\":\"berlin\",\"match\":{\"attr\":\"geo.city\",\"op\":\"eq\",\"value\":\"Berlin\"}},"
    "{\"id\":\"evening\",\"match\":{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[18,23]}},"
    "{\"id\":\"paid\",\"match\":{\"attr\":\"attr.medium\",\"op\":\"eq\",\"value\":\"paid\"}},"
    "{\"id\":\"morning\",\"match\":{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[6,11]}},"
    "{\"id\":\"everyone\",\"match\":{\"all\":[]}},"
    "{\"id\":\"nobody\",\"match\":{\"any\":[]}},"
    "{\"id\":\"berlin-evening\",\"match\":{\"all\":[{\"segment\":\"berlin\"},{\"segment\":\"evening\"}]}},"
    "{\"id\":\"paid.with-an-id-longer-than-31-bytes\",\"match\":{\"attr\":\"attr.medium\",\"op\":\"eq\",\"value\":\"paid\"}}"
    "]";

/* A payload too long to be copied into every rule's entry (VD_RULE_ENTRY_MAX). */
#define BIG30 "0123456789abcdefghijklmnopqrst"
#define BIG300 BIG30 BIG30 BIG30 BIG30 BIG30 BIG30 BIG30 BIG30 BIG30 BIG30

static const char *const CMAP = "["
    "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"paid\",\"variant\":\"offer\"},{\"segment\":\"berlin\",\"variant\":\"berlin\"}],"
    " \"default\":\"generic\",\"variants\":{\"offer\":{\"d\":10},\"berlin\":{\"t\":\"b\"},\"generic\":null}},"
    "{\"slot\":\"banner\",\"rules\":[{\"segment\":\"evening\",\"variant\":\"night\"}],"
    " \"default\":\"day\",\"variants\":{\"night\":1,\"day\":2}},"
    "{\"slot\":\"promo\",\"rules\":[{\"segment\":\"morning\",\"variant\":\"m\"},{\"segment\":\"everyone\",\"variant\":\"e\"}],"
    " \"default\":\"e\",\"variants\":{\"m\":1,\"e\":2}},"
    "{\"slot\":\"promo2\",\"rules\":[{\"segment\":\"everyone\",\"variant\":\"e\"},{\"segment\":\"evening\",\"variant\":\"x\"}],"
    " \"default\":\"e\",\"variants\":{\"x\":1,\"e\":2}},"
    "{\"slot\":\"test\",\"rules\":[{\"segment\":\"nobody\",\"variant\":\"a\"},{\"segment\":\"everyone\",\"split\":["
    "   {\"variant\":\"a\",\"weight\":50},{\"variant\":\"b\",\"weight\":30},{\"variant\":\"c\",\"weight\":20}],\"salt\":\"t1\"}],"
    " \"default\":\"a\",\"variants\":{\"a\":1,\"b\":2,\"c\":3}},"
    "{\"slot\":\"held\",\"goal\":[\"purchase\"],\"holdout\":12.5,\"rules\":[{\"segment\":\"everyone\",\"variant\":\"p\"}],"
    " \"default\":\"d\",\"variants\":{\"p\":1,\"d\":2}},"
    "{\"slot\":\"test2\",\"rules\":[{\"segment\":\"everyone\",\"split\":[{\"variant\":\"a\",\"weight\":1},{\"variant\":\"b\",\"weight\":1}]}],"
    " \"default\":\"a\",\"variants\":{\"a\":1,\"b\":2}},"
    "{\"slot\":\"long\",\"rules\":[{\"segment\":\"paid.with-an-id-longer-than-31-bytes\",\"variant\":\"a\"},"
    "  {\"segment\":\"evening\",\"variant\":\"big\"}],"
    " \"default\":\"a\",\"variants\":{\"a\":1,\"big\":\"" BIG300 "\"}}"
    "]";

static vd_ruleset *rs;
static vd_eval *ev;
static vd_request req;
static vd_context ctx;
static vd_decision dec;
static const char dummy_zone;

static int setup(void **state)
{
    (void)state;
    vd_docset ds;
    vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", SEGS, strlen(SEGS));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", CMAP, strlen(CMAP));
    vd_errors_init(&err);
    rs = vd_ruleset_compile(&ds, "v1", &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "  err: %s\n", err.msg[i]);
    ev = vd_eval_new();
    return rs && ev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    vd_ruleset_release(rs);
    vd_eval_free(ev);
    return 0;
}

/* A request at UTC hh:mm:ss on 2026-11-23 (UTC zone), city given. */
static void fresh(int hh, int mm, int ss, const char *city)
{
    memset(&req, 0, sizeof req);
    req.ts = vd_days_from_civil(2026, 11, 23) * 86400 + hh * 3600 + mm * 60 + ss;
    req.has_ts = true;
    vd_context_init(&ctx, &req, NULL, NULL, 0);
    ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
    ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
    memset(&ctx.local, 0, sizeof ctx.local);
    ctx.local.year = 2026;
    ctx.local.month = 11;
    ctx.local.day = 23;
    ctx.local.hour = hh;
    ctx.local.minute = mm;
    ctx.local.second = ss;
    ctx.local.weekday = 0;
    ctx.local.days = vd_days_from_civil(2026, 11, 23);
    ctx.local.next_transition = INT64_MAX;
    memset(&ctx.geo, 0, sizeof ctx.geo);
    strcpy(ctx.geo.city, city);
}

static void ask(const char *slot)
{
    req.slots[req.nslots++] = vd_str_cstr(slot);
}

static void decide(void)
{
    vd_context_init(&ctx, &req, NULL, NULL, 0);   /* keep presets: re-mark them */
    ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
    ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
    assert_int_equal(vd_decide(rs, ev, &ctx, &dec), 0);
}

static const char *vid_of(const vd_slot_choice *c)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)c->variant->id.n, c->variant->id.p);
    return buf;
}

static int32_t seg(const char *id)
{
    return vd_ruleset_find_segment(rs, vd_str_cstr(id));
}

static void test_first_match_and_default(void **state)
{
    (void)state;
    fresh(12, 0, 0, "Berlin");
    req.attrs[0] = (vd_kv){ VD_STR_LIT("medium"), { .kind = VD_VAL_STR, .u.s = VD_STR_LIT("paid") } };
    req.nattrs = 1;
    ask("hero");
    decide();
    assert_int_equal(dec.nslots, 1);
    assert_non_null(dec.slots[0].slot);
    assert_string_equal(vid_of(&dec.slots[0]), "offer");   /* paid before berlin */
    assert_int_equal(dec.slots[0].rule, 0);
    assert_int_equal(dec.slots[0].segment, seg("paid"));
    assert_memory_equal(dec.slots[0].variant->payload_json, "{\"d\":10}", 8);

    req.nattrs = 0;
    decide();
    assert_string_equal(vid_of(&dec.slots[0]), "berlin");
    assert_int_equal(dec.slots[0].rule, 1);
    assert_int_equal(dec.slots[0].segment, seg("berlin"));

    strcpy(ctx.geo.city, "Paris");
    decide();
    assert_string_equal(vid_of(&dec.slots[0]), "generic");
    assert_int_equal(dec.slots[0].rule, -1);
    assert_int_equal(dec.slots[0].segment, -1);
    assert_string_equal(dec.slots[0].variant->payload_json, "null");
}

static void test_unknown_slot(void **state)
{
    (void)state;
    fresh(19, 0, 0, "Berlin");
    ask("hero");
    ask("no.such.slot");
    ask("banner");
    decide();
    assert_int_equal(dec.nslots, 3);
    assert_non_null(dec.slots[0].slot);
    assert_string_equal(vid_of(&dec.slots[0]), "berlin");
    assert_null(dec.slots[1].slot);
    assert_null(dec.slots[1].variant);
    assert_true(vd_str_eq(dec.slots[1].name, VD_STR_LIT("no.such.slot")));
    assert_non_null(dec.slots[2].slot);
    assert_string_equal(vid_of(&dec.slots[2]), "night");
}

/* A slot asked twice is answered once: the decision marks the repeats
 * (a known slot by its slot, an unknown one by its name), the reply's
 * slots map lists each once, in the order first asked. */
static void test_repeated_slots_answered_once(void **state)
{
    (void)state;
    fresh(19, 0, 0, "Berlin");
    static const char *const asked[] = { "hero", "nope", "banner", "hero", "nope", "nope2", "banner", "nope2", "hero" };
    static const bool repeat[] = { false, false, false, true, true, false, true, true, true };
    for (size_t k = 0; k < sizeof asked / sizeof asked[0]; k++)
        ask(asked[k]);
    decide();
    for (unsigned k = 0; k < dec.nslots; k++) {
        assert_int_equal(dec.slots[k].repeat, repeat[k]);
        assert_int_equal(vd_decision_repeats_slot(&dec, k), repeat[k] && dec.slots[k].slot != NULL);
    }
    assert_string_equal(vid_of(&dec.slots[3]), "berlin");
    assert_string_equal(vid_of(&dec.slots[6]), "night");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = &sb };
    vd_msgpack_emitter(&mo, &e);
    vd_result_emit(&e, rs, &dec, &ctx, ev, false);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    const msgpack_object *slots = NULL;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
        if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "slots", 5) == 0)
            slots = &kv->val;
    }
    assert_non_null(slots);
    assert_int_equal(slots->type, MSGPACK_OBJECT_MAP);
    static const char *const once[] = { "hero", "nope", "banner", "nope2" };
    assert_int_equal(slots->via.map.size, 4);
    for (uint32_t i = 0; i < 4; i++) {
        const msgpack_object *k = &slots->via.map.ptr[i].key;
        assert_int_equal(k->via.str.size, strlen(once[i]));
        assert_memory_equal(k->via.str.ptr, once[i], strlen(once[i]));
    }
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_valid_until(void **state)
{
    (void)state;
    int64_t day = vd_days_from_civil(2026, 11, 23) * 86400;
    fresh(19, 20, 10, "Berlin");
    ask("hero");                  /* no time predicates */
    decide();
    assert_int_equal(dec.valid_until, INT64_MAX);
    /* Only what hero's rules reach is evaluated ... */
    assert_false(dec.complete);
    assert_int_equal(vd_eval_verdict(ev, (uint32_t)seg("evening")), -1);
    /* ... unless every matching segment is asked for: evening is then
     * evaluated for `matched`, but it is not a rule of a chosen slot. */
    req.segments = true;
    decide();
    req.segments = false;
    assert_true(dec.complete);
    assert_int_equal(dec.valid_until, INT64_MAX);
    assert_int_equal(vd_eval_verdict(ev, (uint32_t)seg("evening")), 1);

    ask("banner");
    decide();
    assert_int_equal(dec.valid_until, day + 24 * 3600);   /* end of the evening */

    fresh(17, 59, 59, "Berlin");
    ask("banner");
    decide();
    assert_string_equal(vid_of(&dec.slots[0]), "day");
    assert_int_equal(dec.valid_until, req.ts + 1);

    /* a rule before the winner that did not match still bounds it */
    fresh(19, 20, 10, "Berlin");
    ask("promo");
    decide();
    assert_string_equal(vid_of(&dec.slots[0]), "e");
    assert_int_equal(dec.valid_until, day + 86400 + 6 * 3600);   /* morning starts */
    /* a rule after the winner does not */
    fresh(19, 20, 10, "Berlin");
    ask("promo2");
    decide();
    assert_int_equal(dec.valid_until, INT64_MAX);
    /* min over slots */
    ask("promo");
    ask("banner");
    decide();
    assert_int_equal(dec.valid_until, day + 24 * 3600);
}

static void test_matched(void **state)
{
    (void)state;
    fresh(19, 0, 0, "Berlin");
    ask("hero");
    req.segments = true;      /* the full list; without it only what hero's rules reach */
    decide();
    req.segments = false;
    const char *want[] = { "berlin", "evening", "everyone", "berlin-evening" };
    assert_int_equal(dec.nmatched, 4);
    for (uint32_t i = 0; i < dec.nmatched; i++) {
        if (i)
            assert_true(dec.matched[i - 1] < dec.matched[i]);
        bool found = false;
        for (size_t k = 0; k < 4; k++)
            found |= (int32_t)dec.matched[i] == seg(want[k]);
        assert_true(found);
    }
    fresh(12, 0, 0, "Paris");
    ask("hero");
    req.segments = true;
    decide();
    req.segments = false;
    assert_int_equal(dec.nmatched, 1);
    assert_int_equal(dec.matched[0], (uint32_t)seg("everyone"));
}

static void test_split(void **state)
{
    (void)state;
    unsigned count[3] = { 0 }, count2[2] = { 0 }, differ = 0;
    char vid[32];
    for (int i = 0; i < 10000; i++) {
        fresh(12, 0, 0, "Paris");
        snprintf(vid, sizeof vid, "visitor-%d", i);
        req.vid = vd_str_cstr(vid);
        ask("test");
        ask("test2");
        decide();
        const char *v = vid_of(&dec.slots[0]);
        assert_int_equal(dec.slots[0].rule, 1);
        assert_int_equal(dec.slots[0].segment, seg("everyone"));
        count[v[0] - 'a']++;
        char first = v[0];
        count2[vid_of(&dec.slots[1])[0] - 'a']++;
        /* sticky: the same vid again gets the same arm */
        decide();
        assert_int_equal(vid_of(&dec.slots[0])[0], first);
        /* independent salts: test2's arm is not a function of test's */
        if ((first == 'a') != (vid_of(&dec.slots[1])[0] == 'a'))
            differ++;
    }
    printf("split 50/30/20 over 10000 vids: %u / %u / %u; 50/50: %u / %u\n", count[0], count[1], count[2], count2[0],
           count2[1]);
    assert_in_range(count[0], 4800, 5200);
    assert_in_range(count[1], 2800, 3200);
    assert_in_range(count[2], 1800, 2200);
    assert_in_range(count2[0], 4800, 5200);
    assert_true(differ > 3000);
    /* the bucket function itself: deterministic, in range, salt matters */
    assert_int_equal(vd_split_bucket(VD_STR_LIT("abc"), VD_STR_LIT("s")), vd_split_bucket(VD_STR_LIT("abc"), VD_STR_LIT("s")));
    assert_true(vd_split_bucket(VD_STR_LIT("abc"), VD_STR_LIT("s")) < 10000);
    assert_true(vd_split_bucket(VD_STR_NULL, VD_STR_LIT("s")) < 10000);
    /* salt and vid are separated: ("ab","c") != ("a","bc") is not a collision by construction */
    unsigned same = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(vid, sizeof vid, "v%d", i);
        same += vd_split_bucket(vd_str_cstr(vid), VD_STR_LIT("x")) == vd_split_bucket(vd_str_cstr(vid), VD_STR_LIT("y"));
    }
    assert_true(same < 5);
    /* reference values, also in docs/RULES.md (computed there in Python) */
    assert_int_equal(vd_split_bucket(VD_STR_LIT("visitor-1"), VD_STR_LIT("hero-test-1")), 4737);
    assert_int_equal(vd_split_bucket(VD_STR_NULL, VD_STR_LIT("hero-test-1")), 4905);
}

/* Holdout membership is exactly the documented formula: bucket of vid under
 * salt "holdout:<slot>" below holdout x 100; members get the default. */
static uint32_t ref_bucket(const char *vid, const char *salt)
{
    /* docs/RULES.md's formula, written out again independently. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = salt; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h = h * 0x100000001b3ULL;
    for (const char *p = vid; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)(h % 10000);
}

static void test_holdout(void **state)
{
    (void)state;
    char vid[32];
    unsigned held = 0;
    for (int i = 0; i < 4000; i++) {
        fresh(12, 0, 0, "Paris");
        snprintf(vid, sizeof vid, "v-%d", i);
        req.vid = vd_str_cstr(vid);
        ask("held");
        ask("test");
        decide();
        bool member = ref_bucket(vid, "holdout:held") < 1250;
        assert_int_equal(vd_holdout_member(req.vid, VD_STR_LIT("held"), 1250), member);
        assert_int_equal(dec.slots[0].holdout, member);
        assert_string_equal(vid_of(&dec.slots[0]), member ? "d" : "p");
        assert_int_equal(dec.slots[0].rule, member ? -1 : 0);
        assert_false(dec.slots[1].holdout);      /* a slot without holdout */
        held += member;
    }
    printf("holdout 12.5 %% of 4000 vids: %u\n", held);
    assert_in_range(held, 400, 600);
    /* No vid: nobody is held out. */
    fresh(12, 0, 0, "Paris");
    ask("held");
    decide();
    assert_false(dec.slots[0].holdout);
    assert_string_equal(vid_of(&dec.slots[0]), "p");
    assert_false(vd_holdout_member(VD_STR_LIT("x"), VD_STR_LIT("held"), 0));
    assert_true(vd_holdout_member(VD_STR_LIT("x"), VD_STR_LIT("held"), 10000));
}

/* The candidate index must never change the answer: `matched` equals a
 * brute-force evaluation of every segment, over many contexts. */
static void test_index_equals_brute_force(void **state)
{
    (void)state;
    static const char *const segs2 = "["
        "{\"id\":\"g1\",\"match\":{\"attr\":\"geo.city\",\"op\":\"eq\",\"value\":\"Berlin\"}},"
        "{\"id\":\"g2\",\"match\":{\"all\":[{\"attr\":\"time.hour\",\"op\":\"gte\",\"value\":12},"
        "  {\"attr\":\"geo.country\",\"op\":\"in\",\"value\":[\"de\",\"AT\",\"ch\"]},{\"attr\":\"geo.city\",\"op\":\"in\",\"value\":[\"Wien\",\"Zürich\",\"Bern\",\"Graz\"]}]}},"
        "{\"id\":\"g3\",\"match\":{\"all\":[{\"attr\":\"geo.city\",\"op\":\"in\",\"value\":[\"BERLIN\",\"berlin\",\"Paris\"]},{\"not\":{\"segment\":\"g1\"}}]}},"
        "{\"id\":\"u1\",\"match\":{\"attr\":\"geo.city\",\"op\":\"ne\",\"value\":\"Berlin\"}},"
        "{\"id\":\"u2\",\"match\":{\"any\":[{\"attr\":\"geo.city\",\"op\":\"eq\",\"value\":\"Paris\"},{\"attr\":\"geo.country\",\"op\":\"eq\",\"value\":\"DE\"}]}},"
        "{\"id\":\"u3\",\"match\":{\"not\":{\"segment\":\"g2\"}}},"
        "{\"id\":\"u4\",\"match\":{\"attr\":\"geo.city\",\"op\":\"exists\",\"value\":false}},"
        "{\"id\":\"g4\",\"match\":{\"all\":[{\"segment\":\"u2\"},{\"attr\":\"geo.country\",\"op\":\"eq\",\"value\":\"fr\"}]}}"
        "]";
    vd_docset ds;
    vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs2, strlen(segs2));
    vd_errors_init(&err);
    vd_ruleset *r2 = vd_ruleset_compile(&ds, "v2", &err);
    vd_docset_free(&ds);
    assert_non_null(r2);
    assert_int_equal(r2->nunguarded, 4);          /* u1..u4; g1..g4 are indexed */
    assert_int_equal(r2->nindex, 2);              /* geo.city, geo.country */
    static const char *const cities[] = { "Berlin", "berlin", "Paris", "Wien", "Graz", "Bern", "", "Zürich", "Lyon" };
    static const char *const countries[] = { "DE", "AT", "FR", "", "CH", "ch" };
    unsigned seen_nonempty = 0;
    for (unsigned i = 0; i < 9 * 6 * 2; i++) {
        fresh(i % 2 ? 13 : 9, 0, 0, cities[i % 9]);
        strcpy(ctx.geo.country, countries[(i / 9) % 6]);
        vd_context_init(&ctx, &req, NULL, NULL, 0);
        ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
        ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
        req.segments = true;
        assert_int_equal(vd_decide(r2, ev, &ctx, &dec), 0);
        req.segments = false;
        uint32_t got[16], ngot = dec.nmatched;
        memcpy(got, dec.matched, ngot * sizeof *got);
        assert_int_equal(vd_eval_begin(ev, r2, &ctx), 0);
        uint32_t nwant = 0;
        for (uint32_t sgi = 0; sgi < vd_ruleset_nsegments(r2); sgi++)
            if (vd_eval_segment(ev, sgi, NULL)) {
                assert_true(nwant < ngot);
                assert_int_equal(got[nwant], sgi);
                nwant++;
            }
        assert_int_equal(nwant, ngot);
        seen_nonempty += ngot > 0;
    }
    assert_true(seen_nonempty > 50);
    vd_ruleset_release(r2);
}

/* The explain context's value of key (a str), or NULL; o is the context map. */
static const msgpack_object *ctx_val(const msgpack_object *o, const char *key)
{
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

static bool ctx_str_is(const msgpack_object *o, const char *key, const char *want)
{
    const msgpack_object *v = ctx_val(o, key);
    return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(want) &&
           memcmp(v->via.str.ptr, want, v->via.str.size) == 0;
}

/* Caught by fuzz_rpc_request's explain check: explain listed
 * "url.query.utm_source" for "?utm%5Fsource=x" but looked the value up by
 * the raw key, which matches no parameter, so it showed nil while a rule on
 * url.query.utm_source saw "x". */
static void test_explain_encoded_query_key(void **state)
{
    (void)state;
    char url[400];
    fresh(12, 0, 0, "Berlin");
    /* and a key too long for explain's name buffer shows its own value */
    int n = snprintf(url, sizeof url, "/p?utm%%5Fsource=x&a+b=2&utm_source=late&");
    for (int i = 0; i < 140; i++)
        url[n++] = 'k';
    memcpy(url + n, "%41=long", 9);
    req.url = vd_str_cstr(url);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = &sb };
    vd_msgpack_emitter(&mo, &e);
    vd_result_emit_context(&e, &ctx);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    assert_true(ctx_str_is(&up.data, "url.query.utm_source", "x"));
    assert_true(ctx_str_is(&up.data, "url.query.a b", "2"));
    char longkey[160];
    snprintf(longkey, sizeof longkey, "url.query.%.127s", url + n - 140);   /* cut at 127 */
    assert_true(ctx_str_is(&up.data, longkey, "long"));
    assert_true(ctx_str_is(&up.data, "url.path", "/p"));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

/* The reply's slot entries copied from bytes pre-encoded per rule
 * (vd_emitter.entries, MessagePack) or per variant (slot_entry) are
 * byte for byte what the item-by-item path writes, in MessagePack and in
 * JSON: segments
 * or nil, payloads or null, holdouts (never pre-encoded), rules whose
 * entry is too long to keep, unknown and repeated slots, explain. Path 0:
 * all three; 1: per variant and item by item; 2: item by item. */
static unsigned rule_entries, long_entries;

static void emit_three(bool explain)
{
    msgpack_sbuffer mp[3];
    struct evbuffer *js[3];
    for (int path = 0; path < 3; path++) {
        vd_emitter e;
        msgpack_sbuffer_init(&mp[path]);
        vd_msgpack_out mo = { .sb = &mp[path] };
        vd_msgpack_emitter(&mo, &e);
        assert_non_null(e.slot_entry);
        assert_non_null(e.entries);
        if (path >= 1)
            e.entries = NULL;
        if (path == 2)
            e.slot_entry = NULL;
        vd_result_emit(&e, rs, &dec, &ctx, ev, explain);
        js[path] = evbuffer_new();
        vd_json j;
        vd_json_init(&j, js[path]);
        vd_json_emitter(&j, &e);
        assert_non_null(e.slot_entry);
        assert_null(e.entries);        /* MessagePack only */
        if (path == 2)
            e.slot_entry = NULL;
        vd_result_emit(&e, rs, &dec, &ctx, ev, explain);
    }
    for (int path = 1; path < 3; path++) {
        assert_int_equal(mp[0].size, mp[path].size);
        assert_memory_equal(mp[0].data, mp[path].data, mp[0].size);
        size_t n = evbuffer_get_length(js[0]);
        assert_int_equal(n, evbuffer_get_length(js[path]));
        assert_memory_equal(evbuffer_pullup(js[0], -1), evbuffer_pullup(js[path], -1), n);
    }
    for (int path = 0; path < 3; path++) {
        msgpack_sbuffer_destroy(&mp[path]);
        evbuffer_free(js[path]);
    }
    for (unsigned k = 0; k < dec.nslots; k++) {
        const vd_slot_choice *c = &dec.slots[k];
        if (c->rule < 0 || c->holdout)
            continue;
        const vd_rule *r = &c->slot->rules[c->rule];
        rule_entries += r->entry_mp_len > 0;
        long_entries += !r->nsplit && !r->entry_mp_len;
    }
}

static void test_preencoded_entries_same_bytes(void **state)
{
    (void)state;
    static const char *const cities[] = { "Berlin", "Paris" };
    static const int hours[] = { 7, 12, 19 };
    char vid[32];
    unsigned held = 0;
    for (int i = 0; i < 60; i++) {
        fresh(hours[i % 3], 0, 0, cities[i % 2]);
        snprintf(vid, sizeof vid, "v-%d", i);
        if (i % 5)
            req.vid = vd_str_cstr(vid);
        if (i % 4 == 0) {
            req.attrs[0].key = VD_STR_LIT("medium");
            req.attrs[0].val.kind = VD_VAL_STR;
            req.attrs[0].val.u.s = VD_STR_LIT("paid");
            req.nattrs = 1;
        }
        static const char *const slots[] = { "hero", "banner", "nope", "promo", "promo2", "test",
                                             "held", "hero", "test2", "long" };
        for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++)
            ask(slots[(k + (size_t)i) % (sizeof slots / sizeof slots[0])]);
        req.segments = i % 3 == 0;
        decide();
        for (unsigned k = 0; k < dec.nslots; k++)
            held += dec.slots[k].holdout;
        emit_three(false);
        if (i % 10 == 0)
            emit_three(true);
    }
    assert_true(held > 0);
    assert_true(rule_entries > 60 && long_entries > 5);
}

/* Compiles a content map over SEGS (the test's segments). */
static vd_ruleset *compile_map(const char *cmap, const char *version)
{
    vd_docset ds;
    vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", SEGS, strlen(SEGS));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", cmap, strlen(cmap));
    vd_errors_init(&err);
    vd_ruleset *r = vd_ruleset_compile(&ds, version, &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "  err: %s\n", err.msg[i]);
    return r;
}

/* A slot of 130 rules (three bitmap words): the walk leaves every word of
 * the candidate bitmap zero, also the words past a winner in the first
 * word, so the next request on the same vd_eval sees only its own
 * candidates. Each request is decided twice, on the shared vd_eval and on
 * a fresh one: the same answer, bound and matched list. (A stale bit
 * would have a later request evaluate `berlin` at rule 100 as a candidate,
 * its city guard taken as holding, in Paris.) */
static void test_wide_slot_bits_left_zero(void **state)
{
    (void)state;
    char cmap[16384];
    size_t n = (size_t)snprintf(cmap, sizeof cmap,
                                "[{\"slot\":\"wide\",\"default\":\"d\",\"variants\":{\"m\":1,\"n\":2,\"b\":3,\"p\":4,\"d\":5},"
                                "\"rules\":[{\"segment\":\"morning\",\"variant\":\"m\"}");
    for (int r = 1; r < 130; r++)
        n += (size_t)snprintf(cmap + n, sizeof cmap - n, ",{\"segment\":\"%s\",\"variant\":\"%s\"}",
                              r == 100 ? "berlin" : r > 100 ? "paid" : "nobody",
                              r == 100 ? "b" : r > 100 ? "p" : "n");
    snprintf(cmap + n, sizeof cmap - n, "]}]");
    vd_ruleset *rw = compile_map(cmap, "wide");
    assert_non_null(rw);
    static const struct { int hour; const char *city; bool paid; const char *want; } reqs[] = {
        { 8, "Berlin", true, "m" }, { 20, "Paris", false, "d" }, { 8, "Berlin", false, "m" },
        { 20, "Paris", true, "p" }, { 20, "Berlin", true, "b" }, { 8, "Paris", true, "m" },
        { 20, "Lyon", false, "d" },
    };
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
            fresh(reqs[i].hour, 0, 0, reqs[i].city);
            if (reqs[i].paid) {
                req.attrs[0] = (vd_kv){ VD_STR_LIT("medium"), { .kind = VD_VAL_STR, .u.s = VD_STR_LIT("paid") } };
                req.nattrs = 1;
            }
            ask("wide");
            ask("wide");
            vd_decision d2;
            vd_eval *ev2 = vd_eval_new();
            assert_non_null(ev2);
            vd_context_init(&ctx, &req, NULL, NULL, 0);
            ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
            ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
            assert_int_equal(vd_decide(rw, ev, &ctx, &dec), 0);
            vd_context_init(&ctx, &req, NULL, NULL, 0);
            ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
            ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
            assert_int_equal(vd_decide(rw, ev2, &ctx, &d2), 0);
            assert_string_equal(vid_of(&dec.slots[0]), reqs[i].want);
            assert_string_equal(vid_of(&dec.slots[1]), reqs[i].want);
            assert_true(dec.slots[1].repeat);
            assert_int_equal(dec.slots[0].rule, d2.slots[0].rule);
            assert_true(dec.slots[0].variant == d2.slots[0].variant);
            assert_true(dec.valid_until == d2.valid_until);
            assert_int_equal(dec.nmatched, d2.nmatched);
            assert_memory_equal(dec.matched, d2.matched, dec.nmatched * sizeof *dec.matched);
            vd_eval_free(ev2);
        }
    vd_ruleset_release(rw);
}

/* The MessagePack reply of the current decision on r (the fast path:
 * whole pre-encoded entries), checked against the item-by-item path. */
static void reply_of(const vd_ruleset *r, msgpack_sbuffer *out)
{
    msgpack_sbuffer slow;
    msgpack_sbuffer_init(out);
    msgpack_sbuffer_init(&slow);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = out }, ms = { .sb = &slow };
    vd_msgpack_emitter(&mo, &e);
    assert_non_null(e.entries);
    vd_result_emit(&e, r, &dec, &ctx, ev, false);
    vd_msgpack_emitter(&ms, &e);
    e.entries = NULL;
    e.slot_entry = NULL;
    vd_result_emit(&e, r, &dec, &ctx, ev, false);
    assert_int_equal(out->size, slow.size);
    assert_memory_equal(out->data, slow.data, slow.size);
    msgpack_sbuffer_destroy(&slow);
}

/* slots.NAME.K of a reply, as a MessagePack object. */
static const msgpack_object *reply_get(const msgpack_object *o, const char *slot, const char *k)
{
    const msgpack_object *slots = ctx_val(o, "slots");
    assert_non_null(slots);
    const msgpack_object *m = ctx_val(slots, slot);
    assert_non_null(m);
    return ctx_val(m, k);
}

/* The whole entries copied into a page's reply belong to the ruleset that
 * decided it: the same slots swapped to other defaults, payloads and
 * segments answer with the new bytes on the same vd_eval, and back. */
static void test_page_entries_follow_the_ruleset(void **state)
{
    (void)state;
    static const char *const CMAP2 = "["
        "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"berlin\",\"variant\":\"b2\"}],"
        " \"default\":\"g2\",\"variants\":{\"b2\":\"B2\",\"g2\":{\"x\":[1,2]}}},"
        "{\"slot\":\"banner\",\"rules\":[{\"segment\":\"paid\",\"variant\":\"night\"}],"
        " \"default\":\"noon\",\"variants\":{\"night\":7,\"noon\":8}}"
        "]";
    vd_ruleset *rb = compile_map(CMAP2, "v2");
    assert_non_null(rb);
    for (int i = 0; i < 8; i++) {
        const vd_ruleset *r = i % 2 ? rb : rs;
        fresh(i % 4 < 2 ? 9 : 20, 0, 0, i % 3 ? "Berlin" : "Paris");
        ask("hero");
        ask("banner");
        ask("hero");
        vd_context_init(&ctx, &req, NULL, NULL, 0);
        ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
        ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
        assert_int_equal(vd_decide(r, ev, &ctx, &dec), 0);
        msgpack_sbuffer sb;
        reply_of(r, &sb);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, sb.size);
        bool berlin = i % 3 != 0;
        const msgpack_object *hv = reply_get(&up.data, "hero", "variant");
        const msgpack_object *hp = reply_get(&up.data, "hero", "payload");
        const msgpack_object *hs = reply_get(&up.data, "hero", "segment");
        const msgpack_object *bp = reply_get(&up.data, "banner", "payload");
        const msgpack_object *bs = reply_get(&up.data, "banner", "segment");
        assert_non_null(hv);
        assert_non_null(hp);
        assert_non_null(hs);
        assert_non_null(bp);
        assert_non_null(bs);
        if (r == rb) {
            assert_int_equal(hv->via.str.size, 2);
            assert_memory_equal(hv->via.str.ptr, berlin ? "b2" : "g2", 2);
            assert_int_equal(hp->type, berlin ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_MAP);
            assert_int_equal(hs->type, berlin ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_NIL);
            assert_int_equal(bp->via.u64, 8);              /* the default: not paid */
            assert_int_equal(bs->type, MSGPACK_OBJECT_NIL);
        } else {
            assert_int_equal(hv->via.str.size, berlin ? 6 : 7);
            assert_memory_equal(hv->via.str.ptr, berlin ? "berlin" : "generic", hv->via.str.size);
            assert_int_equal(hp->type, berlin ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_NIL);
            assert_int_equal(hs->type, berlin ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_NIL);
            bool evening = i % 4 >= 2;
            assert_int_equal(bp->via.u64, evening ? 1 : 2);
            assert_int_equal(bs->type, evening ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_NIL);
        }
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
    }
    vd_ruleset_release(rb);
}

/* The per-thread memo of the previous request's slot names
 * (decision/decide.c): a name at a position compared with the one asked
 * there last time. Names longer than 16 bytes that share their first and
 * last 8 bytes (the key) differ in the middle; another ruleset (another
 * serial, even at a freed one's address) has other positions; unknown
 * names stay unknown. */
static void test_slot_names_memo(void **state)
{
    (void)state;
    static const char *const MAPL = "["
        "{\"slot\":\"abcdefghAAAA12345678\",\"default\":\"a\",\"variants\":{\"a\":1}},"
        "{\"slot\":\"abcdefghBBBB12345678\",\"default\":\"b\",\"variants\":{\"b\":2}},"
        "{\"slot\":\"x\",\"default\":\"x\",\"variants\":{\"x\":3}}"
        "]";
    static const char *const MAPM = "["
        "{\"slot\":\"hero\",\"default\":\"h\",\"variants\":{\"h\":1}},"
        "{\"slot\":\"abcdefghBBBB12345678\",\"default\":\"b2\",\"variants\":{\"b2\":2}}"
        "]";
    static const struct { int rs; const char *slots[3]; const char *want[3]; } steps[] = {
        { 0, { "abcdefghAAAA12345678" }, { "a" } },
        { 0, { "abcdefghBBBB12345678" }, { "b" } },
        { 0, { "abcdefghCCCC12345678" }, { NULL } },
        { 0, { "abcdefghAAAA12345678", "abcdefghBBBB12345678" }, { "a", "b" } },
        { 0, { "abcdefghBBBB12345678", "abcdefghAAAA12345678", "x" }, { "b", "a", "x" } },
        { 1, { "abcdefghBBBB12345678", "hero", "abcdefghAAAA12345678" }, { "b2", "h", NULL } },
        { 0, { "abcdefghBBBB12345678", "x", "abcdefghAAAA12345678" }, { "b", "x", "a" } },
        { 2, { "hero", "banner", "abcdefghBBBB12345678" }, { "generic", "day", NULL } },
        { 0, { "hero", "abcdefghCCCC12345678", "abcdefghAAAA12345678" }, { NULL, NULL, "a" } },
        { 3, { "abcdefghBBBB12345678", "hero", "x" }, { "b2", "h", NULL } },
        { 3, { "abcdefghBBBB12345678", "hero", "x" }, { "b2", "h", NULL } },
    };
    vd_ruleset *rl = compile_map(MAPL, "l");
    vd_ruleset *rm = compile_map(MAPM, "m");
    assert_non_null(rl);
    assert_non_null(rm);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i].rs == 3 && rl) {
            /* a new ruleset, perhaps at the freed one's address */
            vd_ruleset_release(rl);
            rl = NULL;
            vd_ruleset_release(rm);
            rm = compile_map(MAPM, "m2");
            assert_non_null(rm);
        }
        const vd_ruleset *r = steps[i].rs == 0 ? rl : steps[i].rs == 2 ? rs : rm;
        fresh(12, 0, 0, "Paris");
        unsigned n = 0;
        while (n < 3 && steps[i].slots[n])
            ask(steps[i].slots[n++]);
        vd_context_init(&ctx, &req, NULL, NULL, 0);
        ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
        ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
        assert_int_equal(vd_decide(r, ev, &ctx, &dec), 0);
        for (unsigned k = 0; k < n; k++) {
            if (!steps[i].want[k]) {
                assert_null(dec.slots[k].slot);
                continue;
            }
            assert_non_null(dec.slots[k].slot);
            assert_true(vd_str_eq(dec.slots[k].slot->name, vd_str_cstr(steps[i].slots[k])));
            assert_string_equal(vid_of(&dec.slots[k]), steps[i].want[k]);
        }
    }
    vd_ruleset_release(rm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_and_default),
        cmocka_unit_test(test_unknown_slot),
        cmocka_unit_test(test_repeated_slots_answered_once),
        cmocka_unit_test(test_valid_until),
        cmocka_unit_test(test_matched),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_holdout),
        cmocka_unit_test(test_index_equals_brute_force),
        cmocka_unit_test(test_explain_encoded_query_key),
        cmocka_unit_test(test_preencoded_entries_same_bytes),
        cmocka_unit_test(test_wide_slot_bits_left_zero),
        cmocka_unit_test(test_page_entries_follow_the_ruleset),
        cmocka_unit_test(test_slot_names_memo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
