/* test_rules.c — the segment/content-map compiler: every validation error
 * names document, id and JSON path; valid sets compile; scale. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decision/decide.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "rules/model.h"
#include "variantd/limits.h"

static vd_errors err;

/* Compiles one segment doc (may be NULL) and one content-map doc (may be NULL). */
static vd_ruleset *compile2(const char *segs, const char *cmap)
{
    vd_docset ds;
    vd_docset_init(&ds);
    if (segs)
        assert_int_equal(vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs, strlen(segs)), 0);
    if (cmap)
        assert_int_equal(vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/t.json", cmap, strlen(cmap)), 0);
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v-test", &err);
    vd_docset_free(&ds);
    return rs;
}

static void dump_errors(void)
{
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "  err: %s\n", err.msg[i]);
}

/* Some kept message contains every one of the NULL-terminated substrings. */
static bool has_error(const char *first, ...)
{
    for (size_t i = 0; i < err.n; i++) {
        va_list ap;
        va_start(ap, first);
        bool all = true;
        for (const char *s = first; s; s = va_arg(ap, const char *))
            if (!strstr(err.msg[i], s))
                all = false;
        va_end(ap);
        if (all)
            return true;
    }
    dump_errors();
    return false;
}

#define SEG(id, match) "{\"id\":\"" id "\",\"match\":" match "}"
#define PRED(attr, op, value) "{\"attr\":\"" attr "\",\"op\":\"" op "\",\"value\":" value "}"

/* Expects a one-segment doc with predicate P to fail with message parts. */
static void expect_pred_error(const char *attr, const char *op, const char *value, const char *path, const char *what)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "[{\"id\":\"ok\",\"match\":{\"all\":[]}},{\"id\":\"p\",\"match\":{\"all\":[{\"attr\":\"geo.country\",\"op\":\"eq\",\"value\":\"DE\"},{\"attr\":\"%s\",\"op\":\"%s\",\"value\":%s}]}}]",
             attr, op, value);
    vd_ruleset *rs = compile2(buf, NULL);
    if (rs)
        fprintf(stderr, "unexpectedly valid: %s %s %s\n", attr, op, value);
    assert_null(rs);
    if (!has_error("segments/t.json: ", "segment \"p\"", path, what, NULL))
        fail_msg("no error with %s / %s for %s %s %s", path, what, attr, op, value);
}

static void expect_pred_ok(const char *attr, const char *op, const char *value)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"id\":\"p\",\"match\":{\"attr\":\"%s\",\"op\":\"%s\",\"value\":%s}}", attr, op, value);
    vd_ruleset *rs = compile2(buf, NULL);
    if (!rs) {
        dump_errors();
        fail_msg("should compile: %s %s %s", attr, op, value);
    }
    vd_ruleset_release(rs);
}

static void test_valid_set(void **state)
{
    (void)state;
    const char *segs =
        "[" SEG("berlin-evening-mobile", "{\"all\":[" PRED("geo.city", "eq", "\"Berlin\"") ","
            PRED("time.hour", "between", "[18,23]") "," PRED("device.type", "in", "[\"mobile\",\"tablet\"]") ","
            "{\"not\":{\"segment\":\"bots\"}}]}") ","
        SEG("bots", PRED("device.type", "eq", "\"bot\"")) ","
        SEG("paid-search", "{\"any\":[" PRED("source.medium", "eq", "\"paid\"") "," PRED("url.query.gclid", "exists", "true") "]}")
        "]";
    const char *cmap =
        "{\"slot\":\"home.hero\",\"rules\":["
        "{\"segment\":\"berlin-evening-mobile\",\"variant\":\"hero-berlin-night\"},"
        "{\"segment\":\"paid-search\",\"variant\":\"hero-offer\"}],"
        "\"default\":\"hero-generic\",\"variants\":{"
        "\"hero-berlin-night\":{\"template\":\"hero/berlin-night.html\"},"
        "\"hero-offer\":{\"template\":\"hero/offer.html\",\"discount\":10},"
        "\"hero-generic\":{\"template\":\"hero/generic.html\"}}}";
    vd_ruleset *rs = compile2(segs, cmap);
    if (!rs)
        dump_errors();
    assert_non_null(rs);
    assert_string_equal(vd_ruleset_version(rs), "v-test");
    assert_int_equal(vd_ruleset_nsegments(rs), 3);
    int32_t b = vd_ruleset_find_segment(rs, VD_STR_LIT("bots"));
    assert_true(b >= 0);
    assert_true(vd_str_eq(vd_ruleset_segment_id(rs, (uint32_t)b), VD_STR_LIT("bots")));
    assert_int_equal(vd_ruleset_find_segment(rs, VD_STR_LIT("BOTS")), -1);   /* ids are exact */
    assert_int_equal(vd_ruleset_find_segment(rs, VD_STR_LIT("nope")), -1);
    assert_int_equal(vd_ruleset_nslots(rs), 1);
    const vd_slot *s = vd_ruleset_find_slot(rs, VD_STR_LIT("home.hero"));
    assert_non_null(s);
    assert_null(vd_ruleset_find_slot(rs, VD_STR_LIT("home.other")));
    assert_int_equal(s->nrules, 2);
    assert_int_equal(s->nvariants, 3);
    assert_true(vd_str_eq(s->variants[s->default_variant].id, VD_STR_LIT("hero-generic")));
    assert_true(vd_str_eq(s->variants[s->rules[1].variant].id, VD_STR_LIT("hero-offer")));
    assert_int_equal(s->rules[0].segment, (uint32_t)vd_ruleset_find_segment(rs, VD_STR_LIT("berlin-evening-mobile")));
    /* payloads, both encodings */
    const vd_variant *off = &s->variants[s->rules[1].variant];
    assert_int_equal(off->payload_json_len, strlen("{\"template\":\"hero/offer.html\",\"discount\":10}"));
    assert_memory_equal(off->payload_json, "{\"template\":\"hero/offer.html\",\"discount\":10}", off->payload_json_len);
    static const uint8_t mp[] = { 0x82, 0xa8, 't', 'e', 'm', 'p', 'l', 'a', 't', 'e', 0xaf, 'h', 'e', 'r', 'o', '/', 'o',
                                  'f', 'f', 'e', 'r', '.', 'h', 't', 'm', 'l', 0xa8, 'd', 'i', 's', 'c', 'o', 'u', 'n', 't', 0x0a };
    assert_int_equal(off->payload_mp_len, sizeof mp);
    assert_memory_equal(off->payload_mp, mp, sizeof mp);
    /* retain/release: one extra reference, two releases free it (ASan checks) */
    vd_ruleset_retain(rs);
    vd_ruleset_release(rs);
    assert_int_equal(vd_ruleset_nsegments(rs), 3);
    vd_ruleset_release(rs);
}

static void test_payload_kinds(void **state)
{
    (void)state;
    vd_ruleset *rs = compile2(SEG("a", "{\"all\":[]}"),
        "[{\"slot\":\"s\",\"default\":\"x\",\"variants\":{\"x\":null,\"y\":[1,-2,1.5,true,false,\"\"]}}]");
    assert_non_null(rs);
    const vd_slot *s = vd_ruleset_find_slot(rs, VD_STR_LIT("s"));
    assert_non_null(s);
    assert_int_equal(s->nrules, 0);
    assert_int_equal(s->variants[0].payload_mp_len, 1);
    assert_int_equal(s->variants[0].payload_mp[0], 0xc0);
    assert_string_equal(s->variants[0].payload_json, "null");
    static const uint8_t mp[] = { 0x96, 0x01, 0xfe, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc3, 0xc2, 0xa0 };
    assert_int_equal(s->variants[1].payload_mp_len, sizeof mp);
    assert_memory_equal(s->variants[1].payload_mp, mp, sizeof mp);
    assert_string_equal(s->variants[1].payload_json, "[1,-2,1.5,true,false,\"\"]");
    vd_ruleset_release(rs);
}

static void test_interning_and_case(void **state)
{
    (void)state;
    vd_ruleset *rs = compile2("[" SEG("a", PRED("geo.city", "eq", "\"BERLIN\"")) ","
                              SEG("b", PRED("geo.city", "in", "[\"Berlin\",\"Hamburg\"]")) ","
                              SEG("c", PRED("geo.city", "in", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"Zz\",\"Berlin\"]")) "]",
                              NULL);
    assert_non_null(rs);
    assert_int_equal(rs->npreds, 3);
    const vd_pred *a = &rs->preds[rs->nodes[rs->segs[0].root].a];
    const vd_pred *b = &rs->preds[rs->nodes[rs->segs[1].root].a];
    const vd_pred *c = &rs->preds[rs->nodes[rs->segs[2].root].a];
    assert_string_equal(a->strs[0].p, "berlin");          /* pre-lowered */
    assert_ptr_equal(a->strs[0].p, b->strs[0].p);         /* one copy */
    assert_true(c->sorted);                               /* > 8 values: bsearch */
    for (uint32_t i = 1; i < c->nstrs; i++)
        assert_true(vd_str_cmp_ci(c->strs[i - 1], c->strs[i]) < 0);
    assert_false(b->sorted);
    vd_ruleset_release(rs);
}

static void test_pred_errors(void **state)
{
    (void)state;
    expect_pred_error("geo.citty", "eq", "\"x\"", "$.match.all[1].attr", "unknown attribute \"geo.citty\"");
    expect_pred_error("attr.", "eq", "\"x\"", "$.match.all[1].attr", "unknown attribute");
    expect_pred_error("geo.city", "equals", "\"x\"", "$.match.all[1].op", "unknown op \"equals\"");
    expect_pred_error("geo.city", "lt", "\"x\"", "$.match.all[1].op", "not valid for geo.city");
    expect_pred_error("time.hour", "prefix", "\"1\"", "$.match.all[1].op", "not valid for time.hour");
    expect_pred_error("geo.eu", "in", "[true]", "$.match.all[1].op", "not valid");
    expect_pred_error("geo.location", "eq", "1", "$.match.all[1].op", "not valid");
    expect_pred_error("time.utc", "eq", "1", "$.match.all[1].op", "not valid");
    expect_pred_error("time.weekday", "lt", "\"mon\"", "$.match.all[1].op", "not valid");
    expect_pred_error("ip", "prefix", "\"10.\"", "$.match.all[1].op", "not valid");
    expect_pred_error("geo.city", "eq", "5", "$.match.all[1].value", "needs a string");
    expect_pred_error("geo.city", "in", "\"Berlin\"", "$.match.all[1].value", "needs an array");
    expect_pred_error("geo.city", "in", "[\"a\",3]", "$.match.all[1].value[1]", "needs a string");
    expect_pred_error("geo.city", "in", "[]", "$.match.all[1].value", "non-empty");
    expect_pred_error("geo.eu", "eq", "\"yes\"", "$.match.all[1].value", "true or false");
    expect_pred_error("time.hour", "between", "[18,24]", "$.match.all[1].value", "between needs [from, to] with 0 <= hour <= 23");
    expect_pred_error("time.hour", "between", "[18]", "$.match.all[1].value", "between needs [from, to]");
    expect_pred_error("time.hour", "eq", "7.5", "$.match.all[1].value", "whole hour");
    expect_pred_error("time.minute", "gte", "1440", "$.match.all[1].value", "minute of the day");
    expect_pred_error("time.hour", "in", "[1,25]", "$.match.all[1].value[1]", "hour");
    expect_pred_error("time.weekday", "in", "[\"mon\",\"funday\"]", "$.match.all[1].value[1]", "needs a weekday");
    expect_pred_error("time.weekday", "eq", "\"monday\"", "$.match.all[1].value", "needs a weekday");
    expect_pred_error("time.date", "gte", "\"2026-02-30\"", "$.match.all[1].value", "YYYY-MM-DD");
    expect_pred_error("time.date", "gte", "\"2026-1-05\"", "$.match.all[1].value", "YYYY-MM-DD");
    expect_pred_error("time.date", "between", "[\"2026-12-24\",\"2026-12-01\"]", "$.match.all[1].value", "from <= to");
    expect_pred_error("time.date", "between", "[\"2026-12-01\",\"x\"]", "$.match.all[1].value[1]", "YYYY-MM-DD");
    expect_pred_error("time.utc", "gte", "\"2026-11-27T00:00:00\"", "$.match.all[1].value", "ISO-8601");
    expect_pred_error("time.utc", "gte", "\"2026-11-27T25:00:00Z\"", "$.match.all[1].value", "ISO-8601");
    expect_pred_error("time.utc", "lt", "1.5", "$.match.all[1].value", "unix seconds");
    expect_pred_error("ip", "cidr", "[\"10.0.0.0/33\"]", "$.match.all[1].value[0]", "network");
    expect_pred_error("ip", "cidr", "[\"10.0.0.0/8\",\"2001:db8::/129\"]", "$.match.all[1].value[1]", "network");
    expect_pred_error("ip", "cidr", "[\"banana/8\"]", "$.match.all[1].value[0]", "network");
    expect_pred_error("ip", "eq", "\"10.0.0.0/8\"", "$.match.all[1].value", "address");
    expect_pred_error("geo.location", "within", "{\"lat\":91,\"lon\":0,\"km\":5}", "$.match.all[1].value", "lat");
    expect_pred_error("geo.location", "within", "{\"lat\":52,\"lon\":13}", "$.match.all[1].value", "km");
    expect_pred_error("geo.location", "within", "{\"lat\":52,\"lon\":13,\"km\":5,\"radius\":1}", "$.match.all[1].value", "unknown key \"radius\"");
    expect_pred_error("geo.location", "within", "[52,13,5]", "$.match.all[1].value", "within needs");
    expect_pred_error("attr.size", "between", "[10,\"x\"]", "$.match.all[1].value", "between needs");
    expect_pred_error("attr.size", "between", "[10,1]", "$.match.all[1].value", "from <= to");
    expect_pred_error("attr.role", "eq", "{\"a\":1}", "$.match.all[1].value", "string, number or bool");
    expect_pred_error("attr.role", "prefix", "7", "$.match.all[1].value", "needs a string");
    expect_pred_error("geo.city", "exists", "\"yes\"", "$.match.all[1].value", "exists takes");
    expect_pred_error("time.weekday", "eq", "[\"mon\",\"tue\"]", "$.match.all[1].value", "use in for a list");
    expect_pred_error("time.hour", "ne", "[1,2]", "$.match.all[1].value", "use not_in for a list");
    expect_pred_error("geo.city", "eq", "[\"Berlin\"]", "$.match.all[1].value", "needs a single value");
}

static void test_node_errors(void **state)
{
    (void)state;
    assert_null(compile2(SEG("s", "{\"all\":[{\"attr\":\"geo.city\",\"op\":\"eq\",\"vaule\":\"x\"}]}"), NULL));
    assert_true(has_error("segments/t.json: segment \"s\": $.match.all[0]: unknown key \"vaule\"", NULL));
    assert_null(compile2(SEG("s", "{\"all\":[{\"any\":[],\"extra\":1}]}"), NULL));
    assert_true(has_error("segment \"s\"", "$.match.all[0]", "unknown key \"extra\"", NULL));
    assert_null(compile2(SEG("s", "{\"all\":[{\"al\":[]}]}"), NULL));
    assert_true(has_error("segment \"s\"", "$.match.all[0]", "unknown key \"al\"", NULL));
    assert_null(compile2(SEG("s", "{\"all\":{}}"), NULL));
    assert_true(has_error("segment \"s\"", "$.match.all", "array", NULL));
    assert_null(compile2(SEG("s", "{\"not\":[1]}"), NULL));
    assert_true(has_error("segment \"s\"", "$.match.not", "must be an object", NULL));
    assert_null(compile2(SEG("s", "{\"attr\":\"geo.city\",\"op\":\"eq\"}"), NULL));
    assert_true(has_error("segment \"s\": $.match.value: missing", NULL));
    assert_null(compile2("{\"id\":\"s\"}", NULL));
    assert_true(has_error("segment \"s\": $.match: missing", NULL));
    assert_null(compile2("{\"id\":\"s\",\"match\":{\"all\":[]},\"desc\":\"x\"}", NULL));
    assert_true(has_error("segment \"s\"", "unknown key \"desc\"", NULL));
    assert_null(compile2("[{\"id\":\"ok\",\"match\":{\"all\":[]}},{\"match\":{\"all\":[]}}]", NULL));
    assert_true(has_error("segments/t.json: $[1].id: missing", NULL));
    assert_null(compile2("[\"x\"]", NULL));
    assert_true(has_error("segments/t.json: $[0]", "must be an object", NULL));
}

static void test_id_errors(void **state)
{
    (void)state;
    assert_null(compile2(SEG("bad id", "{\"all\":[]}"), NULL));
    assert_true(has_error("segments/t.json: $.id: segment id \"bad id\"", "[A-Za-z0-9._:-]", NULL));
    char buf[600], id[VD_MAX_ID_LEN + 2];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"match\":{\"all\":[]}}", id);
    assert_null(compile2(buf, NULL));
    assert_true(has_error("$.id", "1 to 128 characters", NULL));
    id[VD_MAX_ID_LEN] = '\0';   /* exactly the limit is fine */
    snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"match\":{\"all\":[]}}", id);
    vd_ruleset *rs = compile2(buf, NULL);
    assert_non_null(rs);
    vd_ruleset_release(rs);

    vd_docset ds;
    vd_docset_init(&ds);
    const char *a = SEG("dup", "{\"all\":[]}"), *b = "[" SEG("x", "{\"all\":[]}") "," SEG("dup", "{\"any\":[]}") "]";
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/a.json", a, strlen(a));
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/b.json", b, strlen(b));
    vd_errors_init(&err);
    assert_null(vd_ruleset_compile(&ds, "v", &err));
    vd_docset_free(&ds);
    assert_true(has_error("segments/b.json: segment \"dup\": $[1].id: duplicate segment id (first defined in segments/a.json)", NULL));
}

static void test_refs_and_cycles(void **state)
{
    (void)state;
    assert_null(compile2(SEG("a", "{\"all\":[{\"segment\":\"ghost\"}]}"), NULL));
    assert_true(has_error("segment \"a\": $.match.all[0].segment: unknown segment \"ghost\"", NULL));

    assert_null(compile2("[" SEG("a", "{\"all\":[{\"segment\":\"b\"}]}") "," SEG("b", "{\"not\":{\"segment\":\"a\"}}") "]", NULL));
    assert_true(has_error("reference cycle: a -> b -> a", NULL));
    assert_null(compile2(SEG("self", "{\"segment\":\"self\"}"), NULL));
    assert_true(has_error("segment \"self\"", "reference cycle: self -> self", NULL));
    assert_null(compile2("[" SEG("x", "{\"segment\":\"a\"}") "," SEG("a", "{\"segment\":\"b\"}") ","
                         SEG("b", "{\"segment\":\"c\"}") "," SEG("c", "{\"segment\":\"a\"}") "]", NULL));
    assert_true(has_error("reference cycle: a -> b -> c -> a", NULL));

    /* a forward reference across documents is fine */
    vd_docset ds;
    vd_docset_init(&ds);
    const char *a = SEG("a", "{\"segment\":\"b\"}"), *b = SEG("b", "{\"all\":[]}");
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/a.json", a, strlen(a));
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/b.json", b, strlen(b));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v", &err);
    vd_docset_free(&ds);
    assert_non_null(rs);
    vd_ruleset_release(rs);

    /* a reference chain longer than VD_MAX_REF_DEPTH */
    size_t cap = 100000, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big + len, cap - len, "[");
    for (int i = 0; i < VD_MAX_REF_DEPTH + 5; i++)
        len += (size_t)snprintf(big + len, cap - len, "%s{\"id\":\"c%d\",\"match\":{\"segment\":\"c%d\"}}", i ? "," : "", i, i + 1);
    len += (size_t)snprintf(big + len, cap - len, ",{\"id\":\"c%d\",\"match\":{\"all\":[]}}]", VD_MAX_REF_DEPTH + 5);
    assert_null(compile2(big, NULL));
    assert_true(has_error("nest deeper than 64", NULL));
    free(big);
}

static void test_depth_and_json(void **state)
{
    (void)state;
    char buf[4096];
    size_t len = (size_t)snprintf(buf, sizeof buf, "{\"id\":\"deep\",\"match\":");
    for (int i = 0; i < VD_MAX_RULE_DEPTH + 2; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"not\":");
    len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"all\":[]}");
    for (int i = 0; i < VD_MAX_RULE_DEPTH + 2; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "}");
    snprintf(buf + len, sizeof buf - len, "}");
    assert_null(compile2(buf, NULL));
    assert_true(has_error("segment \"deep\"", "$.match.not.not", "nested deeper than 32", NULL));

    assert_null(compile2("[{\"id\":\"a\",\n \"match\": {\"all\": [}]", NULL));
    assert_true(has_error("segments/t.json: invalid JSON at line 2 column", NULL));
    assert_null(compile2("{\"id\":\"a\",\"id\":\"b\",\"match\":{\"all\":[]}}", NULL));
    assert_true(has_error("segments/t.json: invalid JSON", "duplicate", NULL));
    assert_null(compile2("42", NULL));
    assert_true(has_error("segments/t.json: invalid JSON at line 1", NULL));
}

/* Documents are compiled item by item as they are read: a document whose
 * JSON breaks after some items must still count as nothing but its JSON
 * error (its first segments and their errors taken back), and segments of
 * other documents referring to its segments are told they are unknown. */
static void test_invalid_document_leaves_nothing(void **state)
{
    (void)state;
    vd_docset ds;
    vd_docset_init(&ds);
    const char *a = "[" SEG("a", "{\"segment\":\"b\"}") "]";
    const char *b = "[" SEG("b", "{\"all\":[]}") "," SEG("x", "{\"bogus\":1}") "," SEG("a", "{\"all\":[]}") ",";
    const char *c = "[" SEG("c", "{\"segment\":\"a\"}") "]";
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/a.json", a, strlen(a));
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/b.json", b, strlen(b));
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/c.json", c, strlen(c));
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "v", &err);
    assert_null(rs);
    assert_true(has_error("segments/b.json: invalid JSON at line 1", NULL));
    assert_true(has_error("segments/a.json: segment \"a\": $.match.segment: unknown segment \"b\"", NULL));
    /* b.json's x and its duplicate "a" went with b.json */
    assert_int_equal(err.n, 2);

    /* the same without the break: every error is there */
    vd_docset_free(&ds);
    vd_docset_init(&ds);
    const char *b2 = "[" SEG("b", "{\"all\":[]}") "," SEG("x", "{\"bogus\":1}") "]";
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/a.json", a, strlen(a));
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/b.json", b2, strlen(b2));
    vd_errors_init(&err);
    assert_null(vd_ruleset_compile(&ds, "v", &err));
    assert_true(has_error("segments/b.json: segment \"x\": $.match: unknown key \"bogus\"", NULL));
    assert_int_equal(err.n, 1);
    vd_docset_free(&ds);
}

/* A reference to a segment read later is resolved at the end, and an
 * unknown one is reported at its own document, segment and path. */
static void test_forward_reference_paths(void **state)
{
    (void)state;
    assert_null(compile2("[" SEG("p", "{\"any\":[{\"all\":[]},{\"not\":{\"segment\":\"nope\"}}]}") ","
                         SEG("q", "{\"segment\":\"r\"}") "," SEG("r", "{\"segment\":\"p\"}") "]",
                         NULL));
    assert_true(has_error("segments/t.json: segment \"p\": $.match.any[1].not.segment: unknown segment \"nope\"",
                          NULL));
    assert_int_equal(err.n, 1);
    vd_ruleset *rs = compile2("[" SEG("q", "{\"segment\":\"r\"}") "," SEG("r", "{\"all\":[]}") "]", NULL);
    assert_non_null(rs);
    assert_int_equal(vd_ruleset_find_segment(rs, vd_str_make("r", 1)), 1);
    vd_ruleset_release(rs);
}

/* Caught by fuzz_rules_compile: a content-map doc starting with a control
 * byte gave "invalid JSON ... near '\x01'" with the raw byte in it, and an
 * attribute name "a\nb" a message spanning two log lines. */
static void no_control_bytes(void)
{
    assert_true(err.n > 0);
    for (size_t i = 0; i < err.n; i++)
        for (const char *p = err.msg[i]; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void test_messages_one_line(void **state)
{
    (void)state;
    assert_null(compile2(NULL, "\x01\x1b[2J"));
    no_control_bytes();
    assert_true(has_error("content-map/t.json: invalid JSON at line 1 column 1", "near '?", NULL));
    assert_null(compile2("[" SEG("s", PRED("geo.city\\nforged: ok", "eq", "\"x\"")) "]", NULL));
    no_control_bytes();
    assert_true(has_error("unknown attribute \"geo.city?forged: ok\"", NULL));
    assert_null(compile2("[" SEG("s\\u007f", "{\"all\":[]}") "]", NULL));
    no_control_bytes();
}

#define CM_SEGS "[" SEG("s1", "{\"all\":[]}") "," SEG("s2", "{\"any\":[]}") "]"

static void test_content_map_errors(void **state)
{
    (void)state;
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[],\"variants\":{\"a\":{}}}"));
    assert_true(has_error("content-map/t.json: slot \"hero\": $.default: missing", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"default\":\"zz\",\"variants\":{\"a\":{}}}"));
    assert_true(has_error("slot \"hero\": $.default: variant \"zz\" is not in variants", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"variant\":\"a\"},{\"segment\":\"nope\",\"variant\":\"a\"}],\"default\":\"a\",\"variants\":{\"a\":{}}}"));
    assert_true(has_error("content-map/t.json: slot \"hero\": $.rules[1].segment: unknown segment \"nope\"", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"variant\":\"b\"}],\"default\":\"a\",\"variants\":{\"a\":{}}}"));
    assert_true(has_error("slot \"hero\": $.rules[0].variant: variant \"b\" is not in variants", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"varient\":\"a\"}],\"default\":\"a\",\"variants\":{\"a\":{}}}"));
    assert_true(has_error("slot \"hero\": $.rules[0]: unknown key \"varient\"", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"default\":\"a\",\"variants\":{}}"));
    assert_true(has_error("slot \"hero\": $.variants: needs a non-empty object", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"default\":\"a\",\"variants\":{\"a\":1},\"rule\":[]}"));
    assert_true(has_error("slot \"hero\"", "unknown key \"rule\"", NULL));
    assert_null(compile2(CM_SEGS, "[{\"slot\":\"ok\",\"default\":\"a\",\"variants\":{\"a\":1}},{\"default\":\"a\",\"variants\":{\"a\":1}}]"));
    assert_true(has_error("content-map/t.json: $[1].slot: missing", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"he ro\",\"default\":\"a\",\"variants\":{\"a\":1}}"));
    assert_true(has_error("content-map/t.json: $.slot: slot name \"he ro\"", NULL));
    /* splits */
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"split\":[{\"variant\":\"a\",\"weight\":0}]}],\"default\":\"a\",\"variants\":{\"a\":1}}"));
    assert_true(has_error("slot \"hero\": $.rules[0].split[0].weight: needs a whole number", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"split\":[{\"variant\":\"a\",\"weight\":1},{\"variant\":\"q\",\"weight\":1}]}],\"default\":\"a\",\"variants\":{\"a\":1}}"));
    assert_true(has_error("slot \"hero\": $.rules[0].split[1].variant: variant \"q\" is not in variants", NULL));
    assert_null(compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s1\",\"variant\":\"a\",\"split\":[]}],\"default\":\"a\",\"variants\":{\"a\":1}}"));
    assert_true(has_error("slot \"hero\": $.rules[0]: a rule has either", NULL));
    /* duplicate slot across documents */
    vd_docset ds;
    vd_docset_init(&ds);
    const char *m1 = "{\"slot\":\"hero\",\"default\":\"a\",\"variants\":{\"a\":1}}";
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", CM_SEGS, strlen(CM_SEGS));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/a.json", m1, strlen(m1));
    vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/b.json", m1, strlen(m1));
    vd_errors_init(&err);
    assert_null(vd_ruleset_compile(&ds, "v", &err));
    vd_docset_free(&ds);
    assert_true(has_error("content-map/b.json: slot \"hero\": $.slot: duplicate slot (first defined in content-map/a.json)", NULL));
}

static void test_split_compiled(void **state)
{
    (void)state;
    vd_ruleset *rs = compile2(CM_SEGS, "{\"slot\":\"hero\",\"rules\":[{\"segment\":\"s2\",\"variant\":\"a\"},{\"segment\":\"s1\",\"split\":["
                                       "{\"variant\":\"a\",\"weight\":1},{\"variant\":\"b\",\"weight\":2}]},"
                                       "{\"segment\":\"s1\",\"split\":[{\"variant\":\"b\",\"weight\":50}],\"salt\":\"exp-7\"}],"
                                       "\"default\":\"a\",\"variants\":{\"a\":1,\"b\":2}}");
    assert_non_null(rs);
    const vd_slot *s = vd_ruleset_find_slot(rs, VD_STR_LIT("hero"));
    assert_int_equal(s->rules[1].nsplit, 2);
    assert_int_equal(s->rules[1].split[0].upto, 3333);
    assert_int_equal(s->rules[1].split[1].upto, 10000);
    assert_int_equal(s->rules[1].split[1].variant, 1);
    assert_true(vd_str_eq(s->rules[1].salt, VD_STR_LIT("hero#1")));
    assert_true(vd_str_eq(s->rules[2].salt, VD_STR_LIT("exp-7")));
    vd_ruleset_release(rs);
}

/* Slot lookup by name key (first and last 8 bytes, length; the middle of
 * longer names compared too): every name of 1 to 40 bytes is found as
 * itself, and every name one byte away, one shorter or one longer that is
 * not a slot is not found; names equal in their first and last 8 bytes
 * differ by their middle. */
static void test_slot_names_by_key(void **state)
{
    (void)state;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
    enum { NL = 40, NM = 4 };
    char names[NL + NM][64];
    size_t n = 0;
    for (size_t len = 1; len <= NL; len++, n++)
        snprintf(names[n], sizeof names[n], "%.*s", (int)len, alpha);
    for (int m = 0; m < NM; m++, n++)   /* 25 bytes: only the middle differs */
        snprintf(names[n], sizeof names[n], "prefix01-mid%c%c-suffix.01", 'a' + m, 'z' - m);
    char cm[8192];
    size_t o = (size_t)snprintf(cm, sizeof cm, "[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(cm + o, sizeof cm - o, "%s{\"slot\":\"%s\",\"rules\":[],\"default\":\"d\","
                              "\"variants\":{\"d\":1}}", i ? "," : "", names[i]);
    snprintf(cm + o, sizeof cm - o, "]");
    vd_ruleset *rs = compile2(NULL, cm);
    if (!rs)
        dump_errors();
    assert_non_null(rs);
    unsigned misses = 0;
    for (size_t i = 0; i < n; i++) {
        vd_str name = vd_str_cstr(names[i]);
        const vd_slot *s = vd_ruleset_find_slot(rs, name);
        assert_non_null(s);
        assert_true(vd_str_eq(s->name, name));
        char near[72];
        size_t len = name.n;
        for (size_t k = 0; k <= len + 1; k++) {
            /* k < len: byte k changed; k == len: one longer; len + 1: one shorter. */
            memcpy(near, name.p, len);
            size_t nl = len;
            if (k < len)
                near[k] = near[k] == 'x' ? 'y' : 'x';
            else if (k == len)
                near[nl++] = 'x';
            else
                nl--;
            vd_str q = vd_str_make(near, nl);
            bool is_slot = false;
            for (size_t j = 0; j < n && !is_slot; j++)
                is_slot = vd_str_eq(q, vd_str_cstr(names[j]));
            const vd_slot *f = vd_ruleset_find_slot(rs, q);
            if (is_slot) {
                assert_non_null(f);
                assert_true(vd_str_eq(f->name, q));
            } else {
                assert_null(f);
                misses++;
            }
        }
    }
    assert_true(misses > 800);
    vd_ruleset_release(rs);
}

/* v2: goal, holdout and "allocate": "bandit" compile, and are validated. */
static void test_goals_holdout_bandit(void **state)
{
    (void)state;
    vd_ruleset *rs = compile2(CM_SEGS, "{\"slot\":\"hero\",\"goal\":[\"purchase\",\"signup\"],\"holdout\":2.5,"
                                       "\"rules\":[{\"segment\":\"s1\",\"allocate\":\"bandit\",\"salt\":\"h\",\"split\":["
                                       "{\"variant\":\"a\",\"weight\":1},{\"variant\":\"b\",\"weight\":1}]},"
                                       "{\"segment\":\"s2\",\"allocate\":\"fixed\",\"split\":[{\"variant\":\"a\",\"weight\":1}]}],"
                                       "\"default\":\"a\",\"variants\":{\"a\":1,\"b\":2}}");
    if (!rs)
        dump_errors();
    assert_non_null(rs);
    const vd_slot *s = vd_ruleset_find_slot(rs, VD_STR_LIT("hero"));
    assert_int_equal(s->ngoals, 2);
    assert_true(vd_str_eq(s->goals[0], VD_STR_LIT("purchase")));
    assert_true(vd_str_eq(s->goals[1], VD_STR_LIT("signup")));
    assert_int_equal(s->holdout, 250);
    assert_true(s->rules[0].bandit);
    assert_false(s->rules[1].bandit);
    vd_ruleset_release(rs);
    rs = compile2(CM_SEGS, "{\"slot\":\"plain\",\"default\":\"a\",\"variants\":{\"a\":1}}");
    s = vd_ruleset_find_slot(rs, VD_STR_LIT("plain"));
    assert_int_equal(s->ngoals, 0);
    assert_int_equal(s->holdout, 0);
    vd_ruleset_release(rs);

#define SLOT_WITH(extra, rule) "{\"slot\":\"hero\"," extra "\"rules\":[" rule "],\"default\":\"a\",\"variants\":{\"a\":1,\"b\":2}}"
#define SPLIT2 "\"split\":[{\"variant\":\"a\",\"weight\":1},{\"variant\":\"b\",\"weight\":1}]"
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":\"purchase\",", "")));
    assert_true(has_error("content-map/t.json: slot \"hero\": $.goal: needs an array of 1 to 16 event types", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[],", "")));
    assert_true(has_error("slot \"hero\": $.goal: needs an array", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[\"buy\",7],", "")));
    assert_true(has_error("slot \"hero\": $.goal[1]: needs an event type string", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[\"b uy\"],", "")));
    assert_true(has_error("slot \"hero\": $.goal[0]: event type \"b uy\"", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[\"buy\",\"buy\"],", "")));
    assert_true(has_error("slot \"hero\": $.goal[1]: duplicate event type \"buy\"", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"holdout\":101,", "")));
    assert_true(has_error("slot \"hero\": $.holdout: needs a percentage 0..100 with at most two decimals", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"holdout\":-1,", "")));
    assert_true(has_error("slot \"hero\": $.holdout: needs a percentage", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"holdout\":1.234,", "")));
    assert_true(has_error("slot \"hero\": $.holdout: needs a percentage", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"holdout\":\"5\",", "")));
    assert_true(has_error("slot \"hero\": $.holdout: needs a percentage", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[\"buy\"],", "{\"segment\":\"s1\",\"allocate\":\"greedy\"," SPLIT2 "}")));
    assert_true(has_error("slot \"hero\": $.rules[0].allocate: needs \"bandit\" or \"fixed\"", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("\"goal\":[\"buy\"],", "{\"segment\":\"s1\",\"allocate\":\"bandit\",\"variant\":\"a\"}")));
    assert_true(has_error("slot \"hero\": $.rules[0].allocate: allocate goes with split", NULL));
    assert_null(compile2(CM_SEGS, SLOT_WITH("", "{\"segment\":\"s1\",\"allocate\":\"bandit\"," SPLIT2 "}")));
    assert_true(has_error("slot \"hero\": $.rules[0].allocate: a bandit learns from conversions: the slot needs a \"goal\"", NULL));
#undef SLOT_WITH
#undef SPLIT2
}

/* Many errors in one set: all reported, not just the first. */
static void test_collects_all(void **state)
{
    (void)state;
    assert_null(compile2("[" SEG("a", PRED("geo.x", "eq", "1")) "," SEG("b", PRED("geo.city", "zz", "1")) ","
                         SEG("c", "{\"segment\":\"nope\"}") "]",
                         "{\"slot\":\"s\",\"default\":\"q\",\"variants\":{\"a\":1}}"));
    assert_true(has_error("segment \"a\"", "unknown attribute", NULL));
    assert_true(has_error("segment \"b\"", "unknown op", NULL));
    assert_true(has_error("segment \"c\"", "unknown segment", NULL));
    assert_true(has_error("slot \"s\"", "not in variants", NULL));
    assert_int_equal(vd_errors_count(&err), 4);
}

static void test_ops_valid(void **state)
{
    (void)state;
    expect_pred_ok("geo.country", "ne", "\"DE\"");
    expect_pred_ok("geo.city", "prefix", "[\"Ber\",\"Ham\"]");
    expect_pred_ok("url.path", "suffix", "\".html\"");
    expect_pred_ok("url.query.utm_id", "contains", "\"x\"");
    expect_pred_ok("ip", "cidr", "[\"10.0.0.0/8\",\"2001:db8::/32\",\"192.168.1.77/24\",\"::ffff:1.2.3.0/120\"]");
    expect_pred_ok("ip", "in", "[\"10.0.0.1\",\"::1\"]");
    expect_pred_ok("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":30}");
    expect_pred_ok("time.minute", "between", "[1380,120]");
    expect_pred_ok("time.weekday", "in", "[\"SAT\",\"sun\"]");
    expect_pred_ok("time.date", "between", "[\"2026-12-01\",\"2026-12-24\"]");
    expect_pred_ok("time.utc", "between", "[\"2026-11-27T00:00:00Z\",\"2026-11-30T23:59:59+01:00\"]");
    expect_pred_ok("time.utc", "gte", "1795000000");
    expect_pred_ok("attr.size", "between", "[10,500.5]");
    expect_pred_ok("attr.role", "in", "[\"admin\",3,true]");
    expect_pred_ok("geo.eu", "exists", "false");
}

static void test_scale_10k(void **state)
{
    (void)state;
    const uint32_t nseg = 10000, nslot = 20;
    size_t cap = 8u << 20, len = 0;
    char *segs = malloc(cap), *cm = malloc(1u << 20);
    assert_non_null(segs);
    assert_non_null(cm);
    static const char *const cities[] = { "Berlin", "Hamburg", "Munich", "Paris", "Lyon", "Rome" };
    len += (size_t)snprintf(segs + len, cap - len, "[");
    for (uint32_t i = 0; i < nseg; i++) {
        len += (size_t)snprintf(segs + len, cap - len,
            "%s{\"id\":\"seg-%u\",\"description\":\"generated\",\"match\":{\"all\":["
            "{\"attr\":\"geo.city\",\"op\":\"in\",\"value\":[\"%s\",\"%s\",\"x%u\"]},"
            "{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[%u,%u]},"
            "{\"any\":[{\"attr\":\"attr.tier\",\"op\":\"gte\",\"value\":%u},{\"attr\":\"url.path\",\"op\":\"prefix\",\"value\":\"/p%u\"}]}"
            "%s]}}",
            i ? "," : "", i, cities[i % 6], cities[(i + 1) % 6], i, i % 24, (i + 5) % 24, i % 10, i % 97,
            i > 0 ? ",{\"not\":{\"segment\":\"seg-0\"}}" : "");
    }
    len += (size_t)snprintf(segs + len, cap - len, "]");
    size_t cl = 0;
    cl += (size_t)snprintf(cm + cl, (1u << 20) - cl, "[");
    for (uint32_t s = 0; s < nslot; s++) {
        cl += (size_t)snprintf(cm + cl, (1u << 20) - cl, "%s{\"slot\":\"slot-%u\",\"rules\":[", s ? "," : "", s);
        for (uint32_t r = 0; r < 50; r++)
            cl += (size_t)snprintf(cm + cl, (1u << 20) - cl, "%s{\"segment\":\"seg-%u\",\"variant\":\"v%u\"}", r ? "," : "",
                                   (s * 500 + r * 7) % nseg, r % 3);
        cl += (size_t)snprintf(cm + cl, (1u << 20) - cl, "],\"default\":\"v0\",\"variants\":{\"v0\":{\"t\":\"a\"},\"v1\":{\"t\":\"b\"},\"v2\":[1,2]}}");
    }
    snprintf(cm + cl, (1u << 20) - cl, "]");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vd_ruleset *rs = compile2(segs, cm);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!rs)
        dump_errors();
    assert_non_null(rs);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("compile: %u segments x %u slots (%zu + %zu bytes JSON) in %.1f ms\n", nseg, nslot, len, cl, ms);
    assert_int_equal(vd_ruleset_nsegments(rs), nseg);
    assert_int_equal(vd_ruleset_nslots(rs), nslot);
    assert_int_equal(vd_ruleset_find_segment(rs, VD_STR_LIT("seg-9999")), 9999);
    assert_true(ms < 5000);   /* generous for sanitizer builds; the figure is printed */

    /* Decision cost on this set: 5 slots, half the requests from a city
     * that a third of the segments name, half from one that none name. */
    static const char dz = 0;
    vd_eval *ev = vd_eval_new();
    vd_request req;
    memset(&req, 0, sizeof req);
    req.has_ts = true;
    req.ts = 1795737600;
    static const char *const names[5] = { "slot-0", "slot-3", "slot-7", "slot-11", "slot-19" };
    for (unsigned k = 0; k < 5; k++)
        req.slots[req.nslots++] = vd_str_cstr(names[k]);
    req.attrs[0] = (vd_kv){ VD_STR_LIT("tier"), { .kind = VD_VAL_NUM, .u.num = 5 } };
    req.nattrs = 1;
    const int N = 1000;
    unsigned long nm = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        vd_context ctx;
        vd_context_init(&ctx, &req, NULL, NULL, 0);
        ctx.done |= VD_FAM_GEO | VD_FAM_IP | VD_FAM_TIME;
        ctx.tz = (const vd_tz *)(const void *)&dz;
        memset(&ctx.geo, 0, sizeof ctx.geo);
        strcpy(ctx.geo.city, (i & 1) ? "Berlin" : "Nowhere");
        memset(&ctx.local, 0, sizeof ctx.local);
        ctx.local.hour = 19;
        ctx.local.next_transition = INT64_MAX;
        vd_decision d;
        assert_int_equal(vd_decide(rs, ev, &ctx, &d), 0);
        assert_int_equal(d.nslots, 5);
        nm += d.nmatched;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
    printf("decide: %u segments, 5 slots: %.1f us/request (avg %lu matched)\n", nseg, us, nm / (unsigned long)N);
    assert_true(nm > 0);
    vd_eval_free(ev);
    vd_ruleset_release(rs);
    free(segs);
    free(cm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_set),
        cmocka_unit_test(test_payload_kinds),
        cmocka_unit_test(test_interning_and_case),
        cmocka_unit_test(test_pred_errors),
        cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_id_errors),
        cmocka_unit_test(test_refs_and_cycles),
        cmocka_unit_test(test_depth_and_json),
        cmocka_unit_test(test_invalid_document_leaves_nothing),
        cmocka_unit_test(test_forward_reference_paths),
        cmocka_unit_test(test_messages_one_line),
        cmocka_unit_test(test_content_map_errors),
        cmocka_unit_test(test_split_compiled),
        cmocka_unit_test(test_slot_names_by_key),
        cmocka_unit_test(test_goals_holdout_bandit),
        cmocka_unit_test(test_collects_all),
        cmocka_unit_test(test_ops_valid),
        cmocka_unit_test(test_scale_10k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
