/* fuzz_rules_compile.c — libFuzzer target for the definition compiler.
 *
 * Not part of `make all`/`make test`. Build and run from the repository root:
 *
 *   make fuzz FUZZ_SECONDS=300          # builds and runs every target, or by hand:
 *   make build/fuzz/fuzz_rules_compile
 *   mkdir -p /tmp/variantd-fuzz/rules_compile
 *   build/fuzz/fuzz_rules_compile -max_total_time=300 -max_len=16384 \
 *       /tmp/variantd-fuzz/rules_compile tests/fuzz/corpus/rules_compile
 *
 * (clang-14 and libclang-rt-14-dev from apt; the daemon sources are compiled
 * with clang into build/fuzz/, not the gcc-built libvariantd.a.)
 *
 * The input is a segments document, a NUL byte, and a content-map document
 * (no NUL: the whole input is the segments document, with an empty content
 * map), optionally followed by a NUL and 8 bytes of request time. Beyond "no crash, no leak, no UB", it checks that:
 *   - vd_ruleset_compile returns a ruleset with no error, or NULL with at
 *     least one error message, each NUL-terminated, non-empty, naming its
 *     document, and free of control bytes (messages go to one-line logs);
 *   - a ruleset's tables are consistent (slot defaults and rule variants
 *     index the slot's variants, rule segments index the segments, split
 *     bounds ascend to 10000, find_slot/find_segment find what slot_at and
 *     segment_id list);
 *   - it can be evaluated: two fixed requests (every slot of the ruleset, a
 *     ts, attrs, real UA/referer/url/lang, an IP that the demo GeoIP DB
 *     knows, with the system tzdb) go through vd_decide, and every choice
 *     names a variant of its slot, matched segments ascend, valid_until is
 *     after ts, and re-deciding at ts+1, valid_until-1 and half way between
 *     gives the same answers (time alone changes nothing before valid_until);
 *   - vd_ruleset_release frees everything (LeakSanitizer).
 * The demo DB is build/demo-city.mmdb (VD_FUZZ_GEOIP overrides); without it
 * geo attributes are simply missing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decision/decide.h"
#include "context/geo.h"
#include "context/tz.h"
#include "rules/defs.h"
#include "rules/eval.h"
#include "rules/build.h"
#include "rules/ruleset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static vd_env env;
static vd_eval *ev;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    const char *geo = getenv("VD_FUZZ_GEOIP");
    env.geo = vd_geo_open(geo ? geo : "build/demo-city.mmdb", err, sizeof err);
    env.tzdb = vd_tzdb_open(NULL, err, sizeof err);
    ev = vd_eval_new();
    CHECK(ev);
    return 0;
}

static void check_tables(const vd_ruleset *rs)
{
    uint32_t nseg = vd_ruleset_nsegments(rs);
    for (uint32_t s = 0; s < nseg; s++) {
        vd_str id = vd_ruleset_segment_id(rs, s);
        CHECK(id.n > 0);
        CHECK(vd_ruleset_find_segment(rs, id) == (int32_t)s);
    }
    for (uint32_t i = 0; i < vd_ruleset_nslots(rs); i++) {
        const vd_slot *sl = vd_ruleset_slot_at(rs, i);
        CHECK(sl && sl->name.n > 0);
        CHECK(vd_ruleset_find_slot(rs, sl->name) == sl);
        CHECK(sl->nvariants > 0 && sl->default_variant < sl->nvariants);
        for (uint32_t v = 0; v < sl->nvariants; v++) {
            const vd_variant *va = &sl->variants[v];
            CHECK(va->payload_mp && va->payload_mp_len > 0);
            CHECK(va->payload_json && va->payload_json_len > 0);
        }
        for (uint32_t r = 0; r < sl->nrules; r++) {
            const vd_rule *ru = &sl->rules[r];
            CHECK(ru->segment < nseg);
            if (ru->nsplit == 0) {
                CHECK(ru->variant < sl->nvariants);
                continue;
            }
            uint32_t prev = 0;
            for (uint32_t k = 0; k < ru->nsplit; k++) {
                CHECK(ru->split[k].variant < sl->nvariants);
                CHECK(ru->split[k].upto >= prev);
                prev = ru->split[k].upto;
            }
            CHECK(prev == 10000);
        }
    }
}

/* Time alone cannot change an answer before valid_until: re-decide the same
 * request at later instants inside [ts, valid_until) and compare. */
#define TS_MAX 253402300799LL     /* 9999-12-31T23:59:59Z, the RPC's ceiling */

static void same_answer_until(const vd_ruleset *rs, const vd_request *req, const vd_decision *d)
{
    int64_t end = d->valid_until < TS_MAX ? d->valid_until : TS_MAX;
    if (end - 1 <= req->ts)
        return;
    int64_t when[3] = { req->ts + 1, req->ts + (end - 1 - req->ts) / 2, end - 1 };
    for (int w = 0; w < 3; w++) {
        vd_request r2 = *req;
        r2.ts = when[w];
        vd_context ctx;
        vd_context_init(&ctx, &r2, &env, NULL, r2.ts);
        vd_decision d2;
        CHECK(vd_decide(rs, ev, &ctx, &d2) == 0);
        for (unsigned i = 0; i < d->nslots; i++) {
            CHECK(d2.slots[i].variant == d->slots[i].variant);
            CHECK(d2.slots[i].rule == d->slots[i].rule);
        }
    }
}

static void decide_once(const vd_ruleset *rs, vd_request *req)
{
    unsigned n = vd_ruleset_nslots(rs);
    if (n > VD_MAX_SLOTS_PER_REQUEST)
        n = VD_MAX_SLOTS_PER_REQUEST;
    req->nslots = n;
    for (unsigned i = 0; i < n; i++)
        req->slots[i] = vd_ruleset_slot_at(rs, i)->name;
    vd_context ctx;
    vd_context_init(&ctx, req, &env, NULL, req->ts);
    vd_decision d;
    CHECK(vd_decide(rs, ev, &ctx, &d) == 0);
    CHECK(d.nslots == n);
    for (unsigned i = 0; i < n; i++) {
        const vd_slot_choice *c = &d.slots[i];
        CHECK(c->slot == vd_ruleset_slot_at(rs, i));
        CHECK(c->variant >= c->slot->variants &&
              c->variant < c->slot->variants + c->slot->nvariants);
        CHECK(c->rule < (int32_t)c->slot->nrules);
        CHECK(c->segment < (int32_t)vd_ruleset_nsegments(rs));
        CHECK((c->rule < 0) == (c->segment < 0));
    }
    for (uint32_t i = 0; i < d.nmatched; i++) {
        CHECK(d.matched[i] < vd_ruleset_nsegments(rs));
        CHECK(i == 0 || d.matched[i] > d.matched[i - 1]);
    }
    CHECK(d.valid_until > req->ts);
    same_answer_until(rs, req, &d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, 0, size);
    size_t seglen = nul ? (size_t)(nul - p) : size;
    const char *cm = nul ? nul + 1 : "";
    size_t cmlen = nul ? size - seglen - 1 : 0;
    /* An optional third part, after a second NUL: the request time, 8 bytes
     * little-endian, folded into years 1970..9999. */
    int64_t ts = 1795450000;    /* 2026-11-23 */
    const char *nul2 = memchr(cm, 0, cmlen);
    if (nul2) {
        size_t tn = cmlen - (size_t)(nul2 + 1 - cm);
        uint64_t raw = 0;
        memcpy(&raw, nul2 + 1, tn < 8 ? tn : 8);
        ts = (int64_t)(raw % (uint64_t)TS_MAX);
        cmlen = (size_t)(nul2 - cm);
    }

    vd_docset ds;
    vd_docset_init(&ds);
    CHECK(vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/fuzz.json", p, seglen) == 0);
    CHECK(vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/fuzz.json", cm, cmlen) == 0);
    static vd_errors err;   /* 32 KiB: keep it off the stack */
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "fuzz", &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++) {
        size_t l = strnlen(err.msg[i], VD_ERROR_LEN);
        CHECK(l > 0 && l < VD_ERROR_LEN);
        /* Each names its document, and quotes no control bytes (they end
         * up in one-line logs: a "\n" in an id must not forge a line). */
        CHECK(strncmp(err.msg[i], "segments/fuzz.json: ", 20) == 0 ||
              strncmp(err.msg[i], "content-map/fuzz.json: ", 23) == 0 ||
              strncmp(err.msg[i], "(definitions): ", 15) == 0);
        for (size_t j = 0; j < l; j++)
            CHECK((unsigned char)err.msg[i][j] >= 0x20 && err.msg[i][j] != 0x7f);
    }
    if (!rs) {
        CHECK(vd_errors_count(&err) >= 1);
        return 0;
    }
    CHECK(vd_errors_count(&err) == 0);
    CHECK(strcmp(vd_ruleset_version(rs), "fuzz") == 0);
    check_tables(rs);

    vd_request req;
    memset(&req, 0, sizeof req);
    req.ip = VD_STR_LIT("1.0.0.7");
    req.ua = VD_STR_LIT("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1");
    req.referer = VD_STR_LIT("https://www.google.com/search?q=tents+sale");
    req.url = VD_STR_LIT("https://shop.example/sale/tents?utm_source=news&utm_medium=email&x=%41");
    req.lang = VD_STR_LIT("de-DE,de;q=0.9,en;q=0.8");
    req.vid = VD_STR_LIT("visitor-42");
    req.ts = ts;
    req.has_ts = true;
    req.attrs[0] = (vd_kv){ VD_STR_LIT("role"), { .kind = VD_VAL_STR, .u.s = VD_STR_LIT("vip") } };
    req.attrs[1] = (vd_kv){ VD_STR_LIT("cart"), { .kind = VD_VAL_NUM, .u.num = 120.5 } };
    req.attrs[2] = (vd_kv){ VD_STR_LIT("member"), { .kind = VD_VAL_BOOL, .u.b = true } };
    req.nattrs = 3;
    decide_once(rs, &req);

    /* A second visitor: desktop, IPv6, no referrer, an explicit zone, summer. */
    memset(&req, 0, sizeof req);
    req.ip = VD_STR_LIT("2001:db8::1");
    req.ua = VD_STR_LIT("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                        "(KHTML, like Gecko) Chrome/124.0 Safari/537.36");
    req.url = VD_STR_LIT("/checkout?step=2");
    req.tz = VD_STR_LIT("America/New_York");
    req.ts = ts > TS_MAX - 15000000 ? ts - 15000000 : ts + 15000000;   /* ~6 months off */
    req.has_ts = true;
    decide_once(rs, &req);

    vd_ruleset_release(rs);
    return 0;
}
