/* fuzz_rpc_request.c — libFuzzer target for the decision port's request path,
 * without the network: frame scan, msgpack-c unpack into a reused zone,
 * vd_rpc_read_params, a full decision on the example ruleset, and the
 * MessagePack reply.
 *
 * Not part of `make all`/`make test`. Build and run from the repository root
 * (it loads segments/ and content-map/ and build/demo-city.mmdb from there):
 *
 *   make fuzz FUZZ_SECONDS=300          # every target, or this one by hand:
 *   make build/fuzz/fuzz_rpc_request build/demo-city.mmdb
 *   mkdir -p /tmp/variantd-fuzz/rpc_request
 *   build/fuzz/fuzz_rpc_request -max_total_time=300 -max_len=4096 \
 *       /tmp/variantd-fuzz/rpc_request tests/fuzz/corpus/rpc_request
 *
 * VD_FUZZ_SEGMENTS, VD_FUZZ_CONTENT_MAP and VD_FUZZ_GEOIP override the paths.
 * The input is one frame as a client sends it. A [0, msgid, method, params]
 * request uses params (method "explain" forces explain); any other object is
 * taken as params itself, so the codec sees every shape. Beyond "no crash,
 * no leak, no UB", it checks that:
 *   - vd_rpc_read_params either fails with a non-empty, terminated message,
 *     or fills at most max_slots non-empty slots and VD_MAX_ATTRS_PER_REQUEST
 *     attrs, and every string it set points inside the frame's zone objects
 *     (never at stale memory: the zone is cleared between inputs);
 *   - vd_decide succeeds and answers every requested slot (a variant for a
 *     known slot, none for an unknown one), valid_until is after the request
 *     time, and the same request at valid_until-1 gets the same answers;
 *   - vd_result_emit through the MessagePack emitter produces exactly one
 *     object that msgpack-c unpacks as a map holding "slots" (a map with one
 *     entry per distinct requested slot at most) and "version" — with
 *     explain off and on; in explain's context every url.query.NAME listed
 *     has a string value (the parameter is there, so never nil);
 *   - the in-place reader the decision port uses for decide/explain
 *     (vd_rpc_peek_decide + vd_rpc_read_params_raw, no msgpack-c objects)
 *     agrees with msgpack-c + vd_rpc_read_params on every input: the same
 *     envelope verdict, the same result code and message, the same request
 *     field by field (strings at the same addresses in the frame) — for the
 *     whole frame as params, and for element 3 of any 4-element array. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "decision/decide.h"
#include "decision/result.h"
#include "context/device.h"
#include "context/geo.h"
#include "context/tz.h"
#include "net/msgpack_scan.h"
#include "net/rpc_codec.h"
#include "rules/eval.h"
#include "store/files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define NOW 1795450000    /* 2026-11-23, for requests without ts */

static vd_ruleset *rs;
static vd_env env;
static vd_eval *ev;
static vd_device_cache *ua_cache;
static vd_context_caches caches;
static msgpack_zone zone;
static msgpack_sbuffer out;

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static vd_errors err;
    vd_errors_init(&err);
    rs = vd_files_compile(env_or("VD_FUZZ_SEGMENTS", "segments"),
                          env_or("VD_FUZZ_CONTENT_MAP", "content-map"), &err);
    if (!rs) {
        char buf[1024];
        fprintf(stderr, "fuzz_rpc_request: example ruleset: %s (run from the repo root)\n",
                vd_errors_summary(&err, buf, sizeof buf));
        exit(1);
    }
    char e[256];
    env.geo = vd_geo_open(env_or("VD_FUZZ_GEOIP", "build/demo-city.mmdb"), e, sizeof e);
    if (!env.geo)
        fprintf(stderr, "fuzz_rpc_request: no GeoIP DB (%s): geo attributes missing\n", e);
    env.tzdb = vd_tzdb_open(NULL, e, sizeof e);
    ev = vd_eval_new();
    ua_cache = vd_device_cache_new(256);
    caches.ua = ua_cache;
    caches.geo = vd_geo_cache_new(64);
    CHECK(ev && ua_cache && caches.geo);
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer_init(&out);
    return 0;
}

/* Object strings live in the frame (msgpack-c refers to it for str bodies)
 * or in the zone; anything else would be a dangling slice. */
static bool in_frame(vd_str s, const uint8_t *buf, size_t len)
{
    return s.n == 0 || ((const uint8_t *)s.p >= buf && s.n <= len &&
                        (const uint8_t *)s.p + s.n <= buf + len);
}

static void check_reply(const vd_request *req)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    CHECK(msgpack_unpack_next(&up, out.data, out.size, &off) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == out.size);
    const msgpack_object *o = &up.data;
    CHECK(o->type == MSGPACK_OBJECT_MAP);
    bool have_slots = false, have_version = false;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        CHECK(k->type == MSGPACK_OBJECT_STR);
        if (k->via.str.size == 5 && memcmp(k->via.str.ptr, "slots", 5) == 0) {
            CHECK(v->type == MSGPACK_OBJECT_MAP && v->via.map.size <= req->nslots);
            have_slots = true;
        } else if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "version", 7) == 0) {
            CHECK(v->type == MSGPACK_OBJECT_STR);
            have_version = true;
        } else if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "context", 7) == 0) {
            /* Every listed url.query.NAME is a parameter of the URL: present. */
            CHECK(v->type == MSGPACK_OBJECT_MAP);
            for (uint32_t j = 0; j < v->via.map.size; j++) {
                const msgpack_object *ck = &v->via.map.ptr[j].key;
                CHECK(ck->type == MSGPACK_OBJECT_STR);
                if (ck->via.str.size >= 10 && memcmp(ck->via.str.ptr, "url.query.", 10) == 0)
                    CHECK(v->via.map.ptr[j].val.type == MSGPACK_OBJECT_STR);
            }
        }
    }
    CHECK(have_slots && have_version);
    msgpack_unpacked_destroy(&up);
}

/* Time alone cannot change an answer before valid_until: the same request
 * one second before it decides the same. */
#define TS_MAX 253402300799LL

static void same_answer_until(const vd_request *req, int64_t now, const vd_decision *d)
{
    int64_t end = d->valid_until < TS_MAX ? d->valid_until : TS_MAX;
    if (end - 1 <= now)
        return;
    vd_request r2 = *req;
    r2.ts = end - 1;
    r2.has_ts = true;
    vd_context ctx;
    vd_context_init(&ctx, &r2, &env, &caches, r2.ts);
    vd_decision d2;
    CHECK(vd_decide(rs, ev, &ctx, &d2) == 0);
    for (unsigned i = 0; i < d->nslots; i++)
        CHECK(d2.slots[i].variant == d->slots[i].variant && d2.slots[i].rule == d->slots[i].rule);
}

static void decide(const vd_request *req, bool explain)
{
    vd_context ctx;
    vd_context_init(&ctx, req, &env, &caches, NOW);
    vd_decision d;
    CHECK(vd_decide(rs, ev, &ctx, &d) == 0);
    CHECK(d.nslots == req->nslots);
    for (unsigned i = 0; i < d.nslots; i++)
        CHECK(d.slots[i].slot ? d.slots[i].variant != NULL : d.slots[i].variant == NULL);
    CHECK(d.valid_until > ctx.now);
    msgpack_sbuffer_clear(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = &out };
    vd_msgpack_emitter(&mo, &e);
    vd_result_emit(&e, rs, &d, &ctx, ev, explain);
    check_reply(req);
    if (!explain)
        same_answer_until(req, ctx.now, &d);
}

/* The address of element i of the array frame buf (scanned), via the
 * scanner's lengths: independent of the reader under test. */
static const uint8_t *elem_addr(const uint8_t *buf, size_t len, uint32_t i)
{
    size_t pos = buf[0] >= 0x90 && buf[0] <= 0x9f ? 1 : buf[0] == 0xdc ? 3 : 5;
    vd_scan_limits lim = { VD_DEFAULT_MAX_FRAME, VD_SCAN_MAX_DEPTH };
    for (uint32_t k = 0; k < i; k++) {
        size_t n = 0;
        CHECK(pos < len && vd_msgpack_scan(buf + pos, len - pos, &lim, &n) == VD_SCAN_OK);
        pos += n;
    }
    CHECK(pos < len);
    return buf + pos;
}

static bool same_str(vd_str a, vd_str b)
{
    return a.n == b.n && (a.n == 0 || a.p == b.p);
}

/* msgpack-c + vd_rpc_read_params against the in-place reader. */
static void same_read(const msgpack_object *params, const uint8_t *raw, const uint8_t *end,
                      unsigned max_slots)
{
    static vd_request a, b;
    char ea[256], eb[256];
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0x5a, sizeof b);
    int ra = vd_rpc_read_params(params, max_slots, &a, ea, sizeof ea);
    int rb = vd_rpc_read_params_raw(raw, end, max_slots, &b, eb, sizeof eb);
    CHECK(ra == rb);
    if (ra != 0) {
        CHECK(strcmp(ea, eb) == 0);
        return;
    }
    const vd_str *fa[] = { &a.ip, &a.ua, &a.referer, &a.url, &a.lang, &a.vid, &a.uid, &a.consent,
                           &a.tz, &a.hints.ua, &a.hints.mobile, &a.hints.platform, &a.hints.model };
    const vd_str *fb[] = { &b.ip, &b.ua, &b.referer, &b.url, &b.lang, &b.vid, &b.uid, &b.consent,
                           &b.tz, &b.hints.ua, &b.hints.mobile, &b.hints.platform, &b.hints.model };
    for (size_t i = 0; i < sizeof fa / sizeof fa[0]; i++)
        CHECK(same_str(*fa[i], *fb[i]));
    CHECK(a.has_ts == b.has_ts && (!a.has_ts || a.ts == b.ts));
    CHECK(a.explain == b.explain && a.segments == b.segments);
    CHECK(a.nslots == b.nslots && a.nattrs == b.nattrs);
    for (unsigned i = 0; i < a.nslots; i++)
        CHECK(same_str(a.slots[i], b.slots[i]));
    for (unsigned i = 0; i < a.nattrs; i++) {
        const vd_kv *x = &a.attrs[i], *y = &b.attrs[i];
        CHECK(same_str(x->key, y->key) && x->val.kind == y->val.kind);
        if (x->val.kind == VD_VAL_STR)
            CHECK(same_str(x->val.u.s, y->val.u.s));
        else if (x->val.kind == VD_VAL_NUM)
            CHECK(memcmp(&x->val.u.num, &y->val.u.num, sizeof x->val.u.num) == 0);
        else if (x->val.kind == VD_VAL_BOOL)
            CHECK(x->val.u.b == y->val.u.b);
    }
}

static bool is_method(const msgpack_object *m, const char *name)
{
    size_t n = strlen(name);
    return (m->type == MSGPACK_OBJECT_STR || m->type == MSGPACK_OBJECT_BIN) && m->via.str.size == n &&
           memcmp(m->via.str.ptr, name, n) == 0;
}

/* The fast path's envelope verdict is the general path's. */
static void same_envelope(const msgpack_object *obj, const uint8_t *buf, size_t flen,
                          unsigned max_slots)
{
    uint32_t id = 0;
    bool explain = false;
    const uint8_t *params = NULL;
    bool fast = vd_rpc_peek_decide(buf, flen, &id, &explain, &params);
    const msgpack_object *a = obj->via.array.ptr;
    bool general = obj->type == MSGPACK_OBJECT_ARRAY && obj->via.array.size == 4 &&
                   a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[0].via.u64 == 0 &&
                   a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[1].via.u64 <= UINT32_MAX &&
                   (is_method(&a[2], "decide") || is_method(&a[2], "explain"));
    CHECK(fast == general);
    if (!fast)
        return;
    CHECK(id == a[1].via.u64 && explain == is_method(&a[2], "explain"));
    CHECK(params == elem_addr(buf, flen, 3));
    same_read(&a[3], params, buf + flen, max_slots);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan sees any read past the frame. */
    uint8_t *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    vd_scan_limits lim = { VD_DEFAULT_MAX_FRAME, VD_DEFAULT_MAX_DEPTH };
    size_t flen = 0;
    if (vd_msgpack_scan(buf, size, &lim, &flen) != VD_SCAN_OK) {
        free(buf);
        return 0;
    }
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack((const char *)buf, flen, &off, &zone, &obj);
    CHECK(ur == MSGPACK_UNPACK_SUCCESS || ur == MSGPACK_UNPACK_EXTRA_BYTES);
    CHECK(off == flen);

    const msgpack_object *params = &obj;
    bool explain = false;
    if (obj.type == MSGPACK_OBJECT_ARRAY && obj.via.array.size == 4 &&
        obj.via.array.ptr[2].type == MSGPACK_OBJECT_STR) {
        const msgpack_object *m = &obj.via.array.ptr[2];
        explain = m->via.str.size == 7 && memcmp(m->via.str.ptr, "explain", 7) == 0;
        params = &obj.via.array.ptr[3];
    }
    /* The daemon's ceiling, or a small configured limit, by the frame's size. */
    unsigned max_slots = flen % 2 ? VD_MAX_SLOTS_PER_REQUEST : VD_DEFAULT_SLOTS_PER_REQUEST;
    /* The in-place reader agrees with msgpack-c's objects. */
    same_read(&obj, buf, buf + flen, max_slots);
    same_envelope(&obj, buf, flen, max_slots);
    if (obj.type == MSGPACK_OBJECT_ARRAY && obj.via.array.size == 4)
        same_read(&obj.via.array.ptr[3], elem_addr(buf, flen, 3), buf + flen, max_slots);
    vd_request req;
    memset(&req, 0xa5, sizeof req);     /* read_params must set what it uses */
    char err[256];
    memset(err, 'X', sizeof err);
    if (vd_rpc_read_params(params, max_slots, &req, err, sizeof err) != 0) {
        CHECK(memchr(err, 0, sizeof err) && err[0] != '\0');
    } else {
        CHECK(req.nslots <= max_slots && req.nattrs <= VD_MAX_ATTRS_PER_REQUEST);
        for (unsigned i = 0; i < req.nslots; i++)
            CHECK(req.slots[i].n > 0 && in_frame(req.slots[i], buf, flen));
        for (unsigned i = 0; i < req.nattrs; i++) {
            CHECK(req.attrs[i].key.n > 0 && in_frame(req.attrs[i].key, buf, flen));
            CHECK(req.attrs[i].val.kind == VD_VAL_STR || req.attrs[i].val.kind == VD_VAL_NUM ||
                  req.attrs[i].val.kind == VD_VAL_BOOL);
            if (req.attrs[i].val.kind == VD_VAL_STR)
                CHECK(in_frame(req.attrs[i].val.u.s, buf, flen));
        }
        const vd_str *fs[] = { &req.ip, &req.ua, &req.referer, &req.url, &req.lang, &req.vid,
                               &req.tz };
        for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
            CHECK(in_frame(*fs[i], buf, flen));
        decide(&req, req.explain || explain);
        if (!(req.explain || explain))
            decide(&req, true);
    }
    msgpack_zone_clear(&zone);
    free(buf);
    return 0;
}
