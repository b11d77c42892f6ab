/* test_eval.c — segment evaluation: every op on every attribute type, the
 * missing-attribute rules, time windows, references/memo and `until`. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "context/context.h"
#include "rules/eval.h"
#include "rules/build.h"
#include "rules/ruleset.h"

static vd_request req;
static vd_context ctx;
static vd_eval *ev;
static vd_ruleset *rs;
static const char dummy_zone;   /* stands in for a vd_tz: never dereferenced */

static vd_ruleset *build(const char *segs)
{
    vd_docset ds;
    vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/t.json", segs, strlen(segs));
    vd_errors_init(&err);
    vd_ruleset *r = vd_ruleset_compile(&ds, "v", &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "  err: %s\n", err.msg[i]);
    assert_non_null(r);
    return r;
}

/* A fresh request at UTC instant now, local time = now + offset, with the
 * next offset change at next_tr; geo preset (country DE, Berlin). */
static void fresh(int64_t now, int32_t offset, int64_t next_tr)
{
    memset(&req, 0, sizeof req);
    req.ts = now;
    req.has_ts = true;
    vd_context_init(&ctx, &req, NULL, NULL, 0);
    ctx.done |= VD_FAM_TIME | VD_FAM_GEO | VD_FAM_IP;
    ctx.tz = (const vd_tz *)(const void *)&dummy_zone;
    int64_t l = now + offset;
    int64_t days = l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
    int64_t sod = l - days * 86400;
    memset(&ctx.local, 0, sizeof ctx.local);
    vd_civil_from_days(days, &ctx.local.year, &ctx.local.month, &ctx.local.day);
    ctx.local.hour = (int)(sod / 3600);
    ctx.local.minute = (int)(sod / 60 % 60);
    ctx.local.second = (int)(sod % 60);
    ctx.local.weekday = (int)(((days % 7) + 7 + 3) % 7);
    ctx.local.days = days;
    ctx.local.utc_offset = offset;
    ctx.local.next_transition = next_tr;
    memset(&ctx.geo, 0, sizeof ctx.geo);
    strcpy(ctx.geo.country, "DE");
    strcpy(ctx.geo.city, "Berlin");
    strcpy(ctx.geo.region, "BE");
    ctx.geo.eu = 1;
    ctx.geo.has_location = true;
    ctx.geo.lat = 52.52;
    ctx.geo.lon = 13.405;
    ctx.ip.family = 0;
}

/* Unix seconds of a UTC civil time. */
static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
    return vd_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static int64_t last_until;

static int match(const char *id)
{
    assert_int_equal(vd_eval_begin(ev, rs, &ctx), 0);
    int32_t seg = vd_ruleset_find_segment(rs, vd_str_cstr(id));
    if (seg < 0)
        fail_msg("no segment %s", id);
    return vd_eval_segment(ev, (uint32_t)seg, &last_until);
}

/* One-predicate segment "p" over the current context. */
static int pred(const char *attr, const char *op, const char *value)
{
    char buf[1024];
    if (value)
        snprintf(buf, sizeof buf, "{\"id\":\"p\",\"match\":{\"attr\":\"%s\",\"op\":\"%s\",\"value\":%s}}", attr, op, value);
    else
        snprintf(buf, sizeof buf, "{\"id\":\"p\",\"match\":{\"attr\":\"%s\",\"op\":\"%s\"}}", attr, op);
    vd_ruleset *old = rs;
    rs = build(buf);
    int r = match("p");
    vd_ruleset_release(rs);
    rs = old;
    return r;
}

static void add_attr_str(const char *k, const char *v)
{
    vd_kv *kv = &req.attrs[req.nattrs++];
    kv->key = vd_str_cstr(k);
    kv->val.kind = VD_VAL_STR;
    kv->val.u.s = vd_str_cstr(v);
}

static void add_attr_num(const char *k, double v)
{
    vd_kv *kv = &req.attrs[req.nattrs++];
    kv->key = vd_str_cstr(k);
    kv->val.kind = VD_VAL_NUM;
    kv->val.u.num = v;
}

static void add_attr_bool(const char *k, bool v)
{
    vd_kv *kv = &req.attrs[req.nattrs++];
    kv->key = vd_str_cstr(k);
    kv->val.kind = VD_VAL_BOOL;
    kv->val.u.b = v;
}

static int setup(void **state)
{
    (void)state;
    ev = vd_eval_new();
    rs = NULL;
    return ev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    vd_eval_free(ev);
    if (rs)
        vd_ruleset_release(rs);
    rs = NULL;
    return 0;
}

static void test_string_ops(void **state)
{
    (void)state;
    fresh(at(2026, 11, 23, 12, 0, 0), 0, INT64_MAX);
    assert_true(pred("geo.city", "eq", "\"berlin\""));
    assert_true(pred("geo.city", "eq", "\"BERLIN\""));
    assert_false(pred("geo.city", "eq", "\"Berli\""));
    assert_false(pred("geo.city", "ne", "\"Berlin\""));
    assert_true(pred("geo.city", "ne", "\"Hamburg\""));
    assert_true(pred("geo.city", "in", "[\"Hamburg\",\"bErLiN\"]"));
    assert_false(pred("geo.city", "in", "[\"Hamburg\",\"Munich\"]"));
    assert_true(pred("geo.city", "not_in", "[\"Hamburg\",\"Munich\"]"));
    assert_false(pred("geo.city", "not_in", "[\"Hamburg\",\"berlin\"]"));
    /* > 8 values: sorted + bsearch, hit and miss on both sides */
    const char *many = "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"zz\",\"BERLIN\"]";
    assert_true(pred("geo.city", "in", many));
    strcpy(ctx.geo.city, "Aachen");
    assert_false(pred("geo.city", "in", many));
    strcpy(ctx.geo.city, "zzz");
    assert_false(pred("geo.city", "in", many));
    strcpy(ctx.geo.city, "ZZ");
    assert_true(pred("geo.city", "in", many));
    strcpy(ctx.geo.city, "Berlin");
    assert_true(pred("geo.city", "prefix", "\"BER\""));
    assert_false(pred("geo.city", "prefix", "\"erl\""));
    assert_true(pred("geo.city", "prefix", "[\"x\",\"be\"]"));
    assert_true(pred("geo.city", "suffix", "\"LIN\""));
    assert_false(pred("geo.city", "suffix", "\"ber\""));
    assert_true(pred("geo.city", "contains", "\"rli\""));
    assert_false(pred("geo.city", "contains", "\"rlx\""));
    assert_true(pred("geo.city", "exists", NULL));
    assert_true(pred("geo.city", "exists", "true"));
    assert_false(pred("geo.city", "exists", "false"));
    assert_int_equal(last_until, INT64_MAX);   /* not a time attribute */
}

static void test_missing_semantics(void **state)
{
    (void)state;
    fresh(at(2026, 11, 23, 12, 0, 0), 0, INT64_MAX);
    ctx.geo.postal[0] = '\0';     /* missing */
    assert_false(pred("geo.postal", "eq", "\"10115\""));
    assert_true(pred("geo.postal", "ne", "\"10115\""));
    assert_false(pred("geo.postal", "in", "[\"10115\"]"));
    assert_true(pred("geo.postal", "not_in", "[\"10115\"]"));
    assert_false(pred("geo.postal", "prefix", "\"1\""));
    assert_false(pred("geo.postal", "suffix", "\"1\""));
    assert_false(pred("geo.postal", "contains", "\"1\""));
    assert_false(pred("geo.postal", "exists", NULL));
    assert_true(pred("geo.postal", "exists", "false"));
    assert_false(pred("attr.size", "lt", "10"));
    assert_false(pred("attr.size", "gte", "10"));
    assert_false(pred("attr.size", "between", "[0,10]"));
    assert_false(pred("ip", "cidr", "[\"0.0.0.0/0\"]"));
    assert_true(pred("ip", "ne", "\"10.0.0.1\""));
    ctx.geo.has_location = false;
    assert_false(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":20000}"));
    ctx.geo.eu = -1;
    assert_false(pred("geo.eu", "eq", "true"));
    assert_false(pred("geo.eu", "eq", "false"));
    assert_true(pred("geo.eu", "ne", "true"));
}

static void test_any_and_bool(void **state)
{
    (void)state;
    fresh(at(2026, 11, 23, 12, 0, 0), 0, INT64_MAX);
    add_attr_str("role", "Admin");
    add_attr_num("size", 250);
    add_attr_bool("beta", true);
    add_attr_str("num_as_str", "5");
    assert_true(pred("attr.role", "eq", "\"admin\""));
    assert_false(pred("attr.role", "eq", "\"user\""));
    assert_true(pred("attr.role", "in", "[1,true,\"ADMIN\"]"));
    assert_true(pred("attr.role", "not_in", "[1,true,\"user\"]"));
    assert_true(pred("attr.role", "prefix", "\"ad\""));
    assert_false(pred("attr.role", "lt", "5"));             /* string vs number: no */
    assert_false(pred("attr.num_as_str", "eq", "5"));       /* type-aware */
    assert_true(pred("attr.num_as_str", "eq", "\"5\""));
    assert_true(pred("attr.size", "eq", "250"));
    assert_true(pred("attr.size", "eq", "250.0"));
    assert_false(pred("attr.size", "eq", "\"250\""));
    assert_true(pred("attr.size", "ne", "251"));
    assert_true(pred("attr.size", "in", "[\"x\",100,250]"));
    assert_false(pred("attr.size", "not_in", "[250]"));
    assert_false(pred("attr.size", "prefix", "\"2\""));      /* number vs string op: no */
    assert_true(pred("attr.size", "lt", "251"));
    assert_false(pred("attr.size", "lt", "250"));
    assert_true(pred("attr.size", "lte", "250"));
    assert_false(pred("attr.size", "lte", "249.5"));
    assert_true(pred("attr.size", "gt", "249"));
    assert_false(pred("attr.size", "gt", "250"));
    assert_true(pred("attr.size", "gte", "250"));
    assert_false(pred("attr.size", "gte", "250.01"));
    assert_true(pred("attr.size", "between", "[250,300]"));
    assert_true(pred("attr.size", "between", "[100,250]"));
    assert_false(pred("attr.size", "between", "[251,300]"));
    assert_true(pred("attr.beta", "eq", "true"));
    assert_false(pred("attr.beta", "eq", "false"));
    assert_true(pred("attr.beta", "in", "[false,true]"));
    assert_false(pred("attr.beta", "eq", "\"true\""));
    assert_true(pred("attr.beta", "exists", NULL));
    assert_true(pred("attr.nope", "exists", "false"));
    /* geo.eu is BOOL */
    assert_true(pred("geo.eu", "eq", "true"));
    assert_false(pred("geo.eu", "eq", "false"));
    assert_true(pred("geo.eu", "ne", "false"));
    ctx.geo.eu = 0;
    assert_true(pred("geo.eu", "eq", "false"));
    assert_true(pred("geo.eu", "exists", NULL));
}

static void set_ip(const char *s)
{
    ctx.ip.family = strchr(s, ':') ? 6 : 4;
    memset(ctx.ip.addr, 0, 16);
    assert_int_equal(inet_pton(ctx.ip.family == 4 ? AF_INET : AF_INET6, s, ctx.ip.addr), 1);
}

static void test_ip(void **state)
{
    (void)state;
    fresh(at(2026, 11, 23, 12, 0, 0), 0, INT64_MAX);
    set_ip("10.1.2.3");
    assert_true(pred("ip", "eq", "\"10.1.2.3\""));
    assert_false(pred("ip", "eq", "\"10.1.2.4\""));
    assert_true(pred("ip", "ne", "\"10.1.2.4\""));
    assert_true(pred("ip", "in", "[\"::1\",\"10.1.2.3\"]"));
    assert_true(pred("ip", "not_in", "[\"::1\",\"10.1.2.4\"]"));
    assert_true(pred("ip", "cidr", "[\"10.0.0.0/8\"]"));
    assert_true(pred("ip", "cidr", "\"10.1.2.0/23\""));
    assert_false(pred("ip", "cidr", "[\"10.1.4.0/23\",\"192.168.0.0/16\"]"));
    assert_true(pred("ip", "cidr", "[\"10.1.2.255/24\"]"));   /* host bits masked */
    assert_true(pred("ip", "cidr", "[\"10.1.2.2/31\"]"));
    assert_false(pred("ip", "cidr", "[\"10.1.2.4/31\"]"));
    assert_true(pred("ip", "cidr", "[\"0.0.0.0/0\"]"));
    assert_false(pred("ip", "cidr", "[\"::/0\"]"));           /* families do not mix */
    assert_true(pred("ip", "cidr", "[\"::ffff:10.1.0.0/112\"]"));   /* v4-mapped = v4 */
    set_ip("2001:db8:1234::42");
    assert_true(pred("ip", "cidr", "[\"10.0.0.0/8\",\"2001:db8::/32\"]"));
    assert_false(pred("ip", "cidr", "[\"2001:db9::/32\"]"));
    assert_true(pred("ip", "cidr", "[\"2001:db8:1234::/49\"]"));
    assert_false(pred("ip", "cidr", "[\"2001:db8:1234:8000::/49\"]"));
    assert_true(pred("ip", "eq", "\"2001:DB8:1234:0::42\""));
    assert_false(pred("ip", "cidr", "[\"0.0.0.0/0\"]"));
}

static void test_within(void **state)
{
    (void)state;
    fresh(at(2026, 11, 23, 12, 0, 0), 0, INT64_MAX);
    /* visitor in Potsdam; centre Berlin: ~27 km */
    ctx.geo.lat = 52.3906;
    ctx.geo.lon = 13.0645;
    assert_true(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":30}"));
    assert_false(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":25}"));
    /* visitor in Hamburg: ~255 km */
    ctx.geo.lat = 53.5511;
    ctx.geo.lon = 9.9937;
    assert_false(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":30}"));
    assert_true(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":260}"));
    assert_false(pred("geo.location", "within", "{\"lat\":52.52,\"lon\":13.405,\"km\":250}"));
    assert_true(pred("geo.location", "exists", NULL));
}

static void test_hour_and_minute(void **state)
{
    (void)state;
    int64_t t = at(2026, 11, 23, 19, 20, 10);
    fresh(t, 0, INT64_MAX);
    assert_true(pred("time.hour", "eq", "19"));
    assert_int_equal(last_until, at(2026, 11, 23, 20, 0, 0));
    assert_false(pred("time.hour", "eq", "18"));
    assert_int_equal(last_until, at(2026, 11, 24, 18, 0, 0));
    assert_true(pred("time.hour", "ne", "18"));
    assert_true(pred("time.hour", "in", "[7,19]"));
    assert_false(pred("time.hour", "not_in", "[7,19]"));
    assert_true(pred("time.hour", "lt", "20"));
    assert_false(pred("time.hour", "lt", "19"));
    assert_true(pred("time.hour", "lte", "19"));
    assert_true(pred("time.hour", "gt", "18"));
    assert_false(pred("time.hour", "gt", "19"));
    assert_true(pred("time.hour", "gte", "19"));
    assert_true(pred("time.hour", "between", "[18,23]"));
    /* 19:20:10 -> local midnight */
    assert_int_equal(last_until, t + (24 * 60 - (19 * 60 + 20)) * 60 - 10);
    assert_false(pred("time.hour", "between", "[20,23]"));
    assert_int_equal(last_until, at(2026, 11, 23, 20, 0, 0));
    /* wrap [22,5] */
    assert_false(pred("time.hour", "between", "[22,5]"));
    assert_int_equal(last_until, at(2026, 11, 23, 22, 0, 0));
    fresh(at(2026, 11, 23, 23, 30, 0), 0, INT64_MAX);
    assert_true(pred("time.hour", "between", "[22,5]"));
    assert_int_equal(last_until, at(2026, 11, 24, 6, 0, 0));
    fresh(at(2026, 11, 24, 3, 0, 0), 0, INT64_MAX);
    assert_true(pred("time.hour", "between", "[22,5]"));
    assert_int_equal(last_until, at(2026, 11, 24, 6, 0, 0));
    fresh(at(2026, 11, 24, 5, 59, 59), 0, INT64_MAX);
    assert_true(pred("time.hour", "between", "[22,5]"));
    assert_int_equal(last_until, at(2026, 11, 24, 6, 0, 0));
    fresh(at(2026, 11, 24, 12, 0, 0), 0, INT64_MAX);
    assert_false(pred("time.hour", "between", "[22,5]"));
    /* always-true hour predicate never expires */
    assert_true(pred("time.hour", "gte", "0"));
    assert_int_equal(last_until, INT64_MAX);
    assert_false(pred("time.hour", "lt", "0"));
    assert_int_equal(last_until, INT64_MAX);

    /* 17:59:59 before [18,23] -> +1 s */
    t = at(2026, 11, 23, 17, 59, 59);
    fresh(t, 0, INT64_MAX);
    assert_false(pred("time.hour", "between", "[18,23]"));
    assert_int_equal(last_until, t + 1);
    /* with a +01:00 offset: 17:59:59 local is 16:59:59 UTC */
    fresh(t - 3600, 3600, INT64_MAX);
    assert_int_equal(ctx.local.hour, 17);
    assert_false(pred("time.hour", "between", "[18,23]"));
    assert_int_equal(last_until, t - 3600 + 1);
    /* a DST change before the flip caps it */
    fresh(at(2026, 3, 29, 0, 30, 0), 3600, at(2026, 3, 29, 1, 0, 0));
    assert_false(pred("time.hour", "between", "[18,23]"));
    assert_int_equal(last_until, at(2026, 3, 29, 1, 0, 0));

    /* minutes: 1380..120 wraps (23:00-02:00) */
    t = at(2026, 11, 23, 23, 10, 30);
    fresh(t, 0, INT64_MAX);
    assert_true(pred("time.minute", "between", "[1380,120]"));
    assert_int_equal(last_until, at(2026, 11, 24, 2, 1, 0));
    assert_true(pred("time.minute", "eq", "1390"));
    assert_int_equal(last_until, at(2026, 11, 23, 23, 11, 0));
    assert_false(pred("time.minute", "lt", "1390"));
    assert_int_equal(last_until, at(2026, 11, 24, 0, 0, 0));
    assert_true(pred("time.minute", "gte", "1390"));
    assert_true(pred("time.minute", "in", "[1,1390]"));
    assert_false(pred("time.minute", "not_in", "[1390]"));
    fresh(at(2026, 11, 23, 8, 0, 0), 0, INT64_MAX);
    assert_false(pred("time.minute", "between", "[1380,120]"));
    assert_int_equal(last_until, at(2026, 11, 23, 23, 0, 0));
    assert_true(pred("time.minute", "between", "[480,480]"));
    assert_int_equal(last_until, at(2026, 11, 23, 8, 1, 0));
}

static void test_weekday_and_date(void **state)
{
    (void)state;
    /* 2026-11-27 is a Friday */
    int64_t t = at(2026, 11, 27, 15, 0, 0);
    fresh(t, 0, INT64_MAX);
    assert_int_equal(ctx.local.weekday, 4);
    assert_true(pred("time.weekday", "eq", "\"FRI\""));
    assert_int_equal(last_until, at(2026, 11, 28, 0, 0, 0));
    assert_false(pred("time.weekday", "in", "[\"sat\",\"sun\"]"));
    assert_int_equal(last_until, at(2026, 11, 28, 0, 0, 0));
    assert_true(pred("time.weekday", "not_in", "[\"sat\",\"sun\"]"));
    assert_false(pred("time.weekday", "ne", "\"fri\""));
    assert_true(pred("time.weekday", "in", "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]"));
    assert_int_equal(last_until, at(2026, 11, 28, 0, 0, 0));
    fresh(at(2026, 11, 28, 10, 0, 0), 0, INT64_MAX);   /* Saturday */
    assert_true(pred("time.weekday", "in", "[\"sat\",\"sun\"]"));
    assert_int_equal(last_until, at(2026, 11, 30, 0, 0, 0));   /* Monday 00:00 */
    assert_true(pred("time.weekday", "in", "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"]"));
    assert_int_equal(last_until, INT64_MAX);

    /* dates: an Advent window */
    fresh(at(2026, 11, 30, 22, 0, 0), 0, INT64_MAX);
    assert_false(pred("time.date", "between", "[\"2026-12-01\",\"2026-12-24\"]"));
    assert_int_equal(last_until, at(2026, 12, 1, 0, 0, 0));
    assert_true(pred("time.date", "eq", "\"2026-11-30\""));
    assert_int_equal(last_until, at(2026, 12, 1, 0, 0, 0));
    assert_true(pred("time.date", "ne", "\"2026-12-01\""));
    assert_true(pred("time.date", "lt", "\"2026-12-01\""));
    assert_false(pred("time.date", "lt", "\"2026-11-30\""));
    assert_int_equal(last_until, INT64_MAX);     /* never true again */
    assert_true(pred("time.date", "lte", "\"2026-11-30\""));
    assert_true(pred("time.date", "gt", "\"2026-11-29\""));
    assert_false(pred("time.date", "gte", "\"2026-12-01\""));
    fresh(at(2026, 12, 10, 9, 0, 0), 0, INT64_MAX);
    assert_true(pred("time.date", "between", "[\"2026-12-01\",\"2026-12-24\"]"));
    assert_int_equal(last_until, at(2026, 12, 25, 0, 0, 0));
    /* local date differs from the UTC date: 23:30 UTC is 00:30 next day at +1 */
    fresh(at(2026, 12, 24, 23, 30, 0), 3600, INT64_MAX);
    assert_false(pred("time.date", "between", "[\"2026-12-01\",\"2026-12-24\"]"));
    assert_int_equal(last_until, INT64_MAX);
    fresh(at(2026, 11, 30, 23, 30, 0), 3600, INT64_MAX);
    assert_true(pred("time.date", "between", "[\"2026-12-01\",\"2026-12-24\"]"));
    assert_int_equal(last_until, at(2026, 12, 24, 23, 0, 0));   /* local midnight at +1 */
}

static void test_utc(void **state)
{
    (void)state;
    int64_t bf = at(2026, 11, 27, 0, 0, 0);
    fresh(bf - 10, 3600, bf - 5);   /* next_transition must not cap utc */
    assert_false(pred("time.utc", "gte", "\"2026-11-27T00:00:00Z\""));
    assert_int_equal(last_until, bf);
    assert_false(pred("time.utc", "gte", "\"2026-11-27T01:00:00+01:00\""));
    assert_int_equal(last_until, bf);
    assert_true(pred("time.utc", "lt", "\"2026-11-27T00:00:00Z\""));
    assert_int_equal(last_until, bf);
    assert_false(pred("time.utc", "gt", "1795737600"));
    assert_true(pred("time.utc", "between", "[\"2026-11-26T23:59:00Z\",\"2026-11-30T23:59:59Z\"]"));
    assert_int_equal(last_until, at(2026, 12, 1, 0, 0, 0));
    fresh(at(2026, 12, 2, 0, 0, 0), 0, INT64_MAX);
    assert_false(pred("time.utc", "between", "[\"2026-11-26T23:59:00Z\",\"2026-11-30T23:59:59Z\"]"));
    assert_int_equal(last_until, INT64_MAX);
    assert_true(pred("time.utc", "lte", "\"2026-12-02T00:00:00.750Z\""));
    assert_int_equal(last_until, at(2026, 12, 2, 0, 0, 1));
    assert_true(pred("time.utc", "exists", NULL));
}

static void test_tree_and_refs(void **state)
{
    (void)state;
    rs = build("["
        "{\"id\":\"admin\",\"match\":{\"attr\":\"attr.role\",\"op\":\"eq\",\"value\":\"admin\"}},"
        "{\"id\":\"evening\",\"match\":{\"attr\":\"time.hour\",\"op\":\"between\",\"value\":[18,23]}},"
        "{\"id\":\"admin-evening\",\"match\":{\"all\":[{\"segment\":\"admin\"},{\"segment\":\"evening\"}]}},"
        "{\"id\":\"not-admin\",\"match\":{\"not\":{\"segment\":\"admin\"}}},"
        "{\"id\":\"short\",\"match\":{\"all\":[{\"attr\":\"geo.city\",\"op\":\"eq\",\"value\":\"Paris\"},{\"segment\":\"evening\"}]}},"
        "{\"id\":\"either\",\"match\":{\"any\":[{\"segment\":\"evening\"},{\"segment\":\"admin\"}]}},"
        "{\"id\":\"everyone\",\"match\":{\"all\":[]}},"
        "{\"id\":\"nobody\",\"match\":{\"any\":[]}}"
        "]");
    int64_t t = at(2026, 11, 23, 19, 0, 0);
    fresh(t, 0, INT64_MAX);
    add_attr_str("role", "admin");
    assert_true(match("admin-evening"));
    assert_int_equal(last_until, at(2026, 11, 24, 0, 0, 0));   /* propagated from the reference */
    assert_int_equal(vd_eval_verdict(ev, (uint32_t)vd_ruleset_find_segment(rs, VD_STR_LIT("admin"))), 1);
    assert_int_equal(vd_eval_verdict(ev, (uint32_t)vd_ruleset_find_segment(rs, VD_STR_LIT("nobody"))), -1);

    /* memo: within one request a referenced segment is evaluated once.
     * Change the input behind its back: the memoized verdict stays. */
    assert_int_equal(vd_eval_begin(ev, rs, &ctx), 0);
    int32_t admin = vd_ruleset_find_segment(rs, VD_STR_LIT("admin"));
    assert_int_equal(vd_eval_segment(ev, (uint32_t)admin, NULL), 1);
    req.attrs[0].val.u.s = VD_STR_LIT("user");
    int32_t na = vd_ruleset_find_segment(rs, VD_STR_LIT("not-admin"));
    assert_int_equal(vd_eval_segment(ev, (uint32_t)na, NULL), 0);
    /* a new request (new generation) sees the new value */
    assert_false(match("admin"));
    assert_true(match("not-admin"));

    /* short-circuit: evening never evaluated, so no time bound */
    assert_false(match("short"));
    assert_int_equal(last_until, INT64_MAX);
    assert_int_equal(vd_eval_verdict(ev, (uint32_t)vd_ruleset_find_segment(rs, VD_STR_LIT("evening"))), -1);
    assert_true(match("either"));
    assert_int_equal(last_until, at(2026, 11, 24, 0, 0, 0));
    assert_true(match("everyone"));
    assert_false(match("nobody"));
    /* not keeps the child's until */
    vd_ruleset *r2 = build("{\"id\":\"n\",\"match\":{\"not\":{\"attr\":\"time.hour\",\"op\":\"lt\",\"value\":20}}}");
    vd_ruleset *saved = rs;
    rs = r2;
    assert_false(match("n"));
    assert_int_equal(last_until, at(2026, 11, 23, 20, 0, 0));
    rs = saved;
    vd_ruleset_release(r2);
    /* back on the bigger ruleset after a smaller one; out-of-range index is false */
    assert_false(match("admin-evening"));   /* role is "user" now */
    assert_int_equal(vd_eval_segment(ev, 9999, &last_until), 0);
    assert_int_equal(last_until, INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_string_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_and_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_within, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hour_and_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weekday_and_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_and_refs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
