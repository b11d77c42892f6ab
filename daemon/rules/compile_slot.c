/* compile_slot.c — compiles one content-map slot: its variants (payloads
 * pre-encoded once as compact JSON and as MessagePack, so answering costs a
 * memcpy), its default and its ordered rules, including weighted splits. */
#include "rules/compile_slot.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rules/compile.h"
#include "variantd/limits.h"

#define SPLIT_BUCKETS 10000u
#define SPLIT_MAX_WEIGHT 1000000

static int pack_json(msgpack_packer *pk, const vd_json *v)
{
    switch (v->type) {
    case VD_JSON_OBJECT: {
        if (msgpack_pack_map(pk, v->n))
            return -1;
        vd_json_foreach(v, m) {
            if (msgpack_pack_str(pk, m->klen) || msgpack_pack_str_body(pk, m->key, m->klen) ||
                pack_json(pk, &m->val))
                return -1;
        }
        return 0;
    }
    case VD_JSON_ARRAY: {
        if (msgpack_pack_array(pk, v->n))
            return -1;
        for (size_t i = 0; i < v->n; i++)
            if (pack_json(pk, vd_json_at(v, i)))
                return -1;
        return 0;
    }
    case VD_JSON_STRING:
        return msgpack_pack_str(pk, v->n) || msgpack_pack_str_body(pk, v->u.s, v->n) ? -1 : 0;
    case VD_JSON_INTEGER:
        return msgpack_pack_int64(pk, v->u.i);
    case VD_JSON_REAL:
        return msgpack_pack_double(pk, v->u.d);
    case VD_JSON_TRUE:
        return msgpack_pack_true(pk);
    case VD_JSON_FALSE:
        return msgpack_pack_false(pk);
    case VD_JSON_NULL:
    default:
        return msgpack_pack_nil(pk);
    }
}

static bool encode_payload(vd_compiler *c, const vd_json *v, vd_variant *out)
{
    /* Compact JSON, byte for byte what jansson's json_dumps wrote before. */
    size_t jlen = vd_json_dump_len(v);
    char *js = vd_arena_alloc(&c->rs->arena, jlen + 1);
    if (!js) {
        c->oom = true;
        return false;
    }
    vd_json_dump(v, js)[0] = '\0';
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = pack_json(&pk, v);
    uint8_t *mp = rc == 0 ? vd_arena_alloc(&c->rs->arena, sb.size ? sb.size : 1) : NULL;
    if (mp)
        memcpy(mp, sb.data, sb.size);
    out->payload_mp_len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    if (!mp) {
        c->oom = true;
        return false;
    }
    out->payload_json = js;
    out->payload_json_len = jlen;
    out->payload_mp = mp;
    return true;
}

/* A MessagePack str header as msgpack_pack_str writes it (the smallest form). */
static size_t mp_str_head(uint8_t *p, size_t n)
{
    if (n < 32) {
        p[0] = (uint8_t)(0xa0 | n);
        return 1;
    }
    if (n < 256) {
        p[0] = 0xd9;
        p[1] = (uint8_t)n;
        return 2;
    }
    if (n < 65536) {
        p[0] = 0xda;
        p[1] = (uint8_t)(n >> 8);
        p[2] = (uint8_t)n;
        return 3;
    }
    p[0] = 0xdb;
    for (int i = 0; i < 4; i++)
        p[1 + i] = (uint8_t)(n >> (24 - 8 * i));
    return 5;
}

static size_t mp_str(uint8_t *p, const char *s, size_t n)
{
    size_t h = mp_str_head(p, n);
    memcpy(p + h, s, n);
    return h + n;
}

/* JSON needs no escaping for these (ids are [A-Za-z0-9._:-]). */
static bool json_plain(vd_str s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

/* The variant's pre-encoded reply entry (ruleset.h: entry_mp, entry_json). */
static bool encode_entry(vd_compiler *c, vd_str slot, vd_variant *v)
{
    static const char kv[] = "variant", kp[] = "payload", ks[] = "segment";
    size_t cap = 3 * 5 + slot.n + v->id.n + 3 * 8 + 1 + v->payload_mp_len + 1;
    uint8_t *mp = vd_arena_alloc(&c->rs->arena, cap);
    if (!mp) {
        c->oom = true;
        return false;
    }
    size_t n = mp_str(mp, slot.p, slot.n);
    mp[n++] = 0x83;
    n += mp_str(mp + n, kv, sizeof kv - 1);
    n += mp_str(mp + n, v->id.p, v->id.n);
    n += mp_str(mp + n, kp, sizeof kp - 1);
    if (v->payload_mp_len) {
        memcpy(mp + n, v->payload_mp, v->payload_mp_len);
        n += v->payload_mp_len;
    } else {
        mp[n++] = 0xc0;
    }
    n += mp_str(mp + n, ks, sizeof ks - 1);
    mp[n] = 0xc0;                  /* not counted: the default's nil segment (ruleset.h) */
    v->entry_mp = mp;
    v->entry_mp_len = n;
    if (!json_plain(slot) || !json_plain(v->id) || !v->payload_json || !v->payload_json_len)
        return true;               /* written item by item */
    size_t jcap = slot.n + v->id.n + v->payload_json_len + 64;
    char *js = vd_arena_alloc(&c->rs->arena, jcap);
    if (!js) {
        c->oom = true;
        return false;
    }
    int jn = snprintf(js, jcap, "\"%.*s\":{\"variant\":\"%.*s\",\"payload\":%.*s,\"segment\":",
                      (int)slot.n, slot.p, (int)v->id.n, v->id.p, (int)v->payload_json_len,
                      v->payload_json);
    if (jn < 0 || (size_t)jn >= jcap)
        return true;
    v->entry_json = js;
    v->entry_json_len = (size_t)jn;
    return true;
}

/* A rule's whole pre-encoded reply entry (ruleset.h: vd_rule.entry_mp):
 * its variant's entry and its segment id, when short. */
static bool encode_rule_entry(vd_compiler *c, vd_rule *r, const vd_slot *slot)
{
    const vd_variant *v = &slot->variants[r->variant];
    vd_str seg = c->rs->segs[r->segment].id;
    size_t n = v->entry_mp_len + 5 + seg.n;
    if (v->entry_mp_len && n <= VD_RULE_ENTRY_MAX) {
        uint8_t *mp = vd_arena_alloc(&c->rs->arena, n);
        if (!mp) {
            c->oom = true;
            return false;
        }
        memcpy(mp, v->entry_mp, v->entry_mp_len);
        r->entry_mp = mp;
        r->entry_mp_len = v->entry_mp_len + mp_str(mp + v->entry_mp_len, seg.p, seg.n);
    }
    return true;
}

static int find_variant(const vd_variant *vs, uint32_t n, const char *id, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (vd_str_eq(vs[i].id, vd_str_make(id, len)))
            return (int)i;
    return -1;
}

/* A "variant" member naming one of the slot's variants; -1 if bad. */
static int variant_ref(vd_compiler *c, const vd_json *v, const vd_slot *slot, bool have_variants)
{
    if (!vd_json_is_string(v)) {
        vd_cerr(c, "needs a variant id string");
        return -1;
    }
    int k = find_variant(slot->variants, slot->nvariants, vd_json_str(v), vd_json_strlen(v));
    if (k < 0 && have_variants)
        vd_cerr(c, "variant \"%.*s\" is not in variants", (int)(vd_json_strlen(v) > 128 ? 128 : vd_json_strlen(v)),
                vd_json_str(v));
    return k;
}

static bool compile_split(vd_compiler *c, const vd_json *js, vd_rule *r, const vd_slot *slot, bool have_variants)
{
    if (!vd_json_is_array(js) || vd_json_size(js) == 0 || vd_json_size(js) > 100) {
        vd_cerr(c, "needs an array of 1 to 100 {\"variant\", \"weight\"}");
        return false;
    }
    size_t n = vd_json_size(js);
    vd_split_arm *arms = vd_arena_alloc(&c->rs->arena, n * sizeof *arms);
    long long *w = vd_calloc(n, sizeof *w);
    if (!arms || !w) {
        vd_free(w);
        c->oom = true;
        return false;
    }
    bool ok = true;
    long long total = 0;
    for (size_t i = 0; i < n; i++) {
        const vd_json *arm = vd_json_at(js, i);
        size_t saved = vd_cpath_push(c, "[%zu]", i);
        if (!vd_json_is_object(arm)) {
            vd_cerr(c, "needs {\"variant\", \"weight\"}");
            ok = false;
            vd_cpath_pop(c, saved);
            continue;
        }
        vd_json_foreach(arm, m) {
            const char *key = m->key;
            if (strcmp(key, "variant") && strcmp(key, "weight")) {
                vd_cerr(c, "unknown key \"%s\" (expected variant, weight)", key);
                ok = false;
            }
        }
        size_t s2 = vd_cpath_push(c, ".variant");
        int k = variant_ref(c, vd_json_get(arm, "variant"), slot, have_variants);
        vd_cpath_pop(c, s2);
        if (k < 0)
            ok = false;
        arms[i].variant = k < 0 ? 0 : (uint32_t)k;
        s2 = vd_cpath_push(c, ".weight");
        const vd_json *jw = vd_json_get(arm, "weight");
        if (!vd_json_is_integer(jw) || vd_json_int(jw) <= 0 || vd_json_int(jw) > SPLIT_MAX_WEIGHT) {
            vd_cerr(c, "needs a whole number 1..%d", SPLIT_MAX_WEIGHT);
            ok = false;
        } else {
            w[i] = vd_json_int(jw);
            total += w[i];
        }
        vd_cpath_pop(c, s2);
        vd_cpath_pop(c, saved);
    }
    if (ok) {
        /* Cumulative bounds over 10000 buckets; the last arm ends at 10000
         * exactly so rounding never leaves a bucket unassigned. */
        long long cum = 0;
        for (size_t i = 0; i < n; i++) {
            cum += w[i];
            arms[i].upto = i + 1 == n ? SPLIT_BUCKETS : (uint32_t)((cum * SPLIT_BUCKETS + total / 2) / total);
        }
        r->split = arms;
        r->nsplit = (uint32_t)n;
    }
    vd_free(w);
    return ok;
}

static bool compile_rule(vd_compiler *c, const vd_json *j, uint32_t index, vd_rule *r, const vd_slot *slot, bool have_variants)
{
    if (!vd_json_is_object(j)) {
        vd_cerr(c, "a rule must be {\"segment\", \"variant\"} or {\"segment\", \"split\", \"salt\"?}");
        return false;
    }
    bool ok = true;
    /* One pass over the members (a slot of the country set has ~150
     * rules, each looked up by name five times before). */
    const vd_json *js = NULL, *jv = NULL, *jsp = NULL, *jsalt = NULL, *jalloc = NULL;
    vd_json_foreach(j, m) {
        const char *key = m->key;
        const vd_json **slotp = m->klen == 7 && !memcmp(key, "segment", 7)    ? &js
                                : m->klen == 7 && !memcmp(key, "variant", 7)  ? &jv
                                : m->klen == 5 && !memcmp(key, "split", 5)    ? &jsp
                                : m->klen == 4 && !memcmp(key, "salt", 4)     ? &jsalt
                                : m->klen == 8 && !memcmp(key, "allocate", 8) ? &jalloc
                                                                              : NULL;
        if (slotp) {
            *slotp = &m->val;
        } else {
            vd_cerr(c, "unknown key \"%s\" (expected segment, variant, split, salt, allocate)", key);
            ok = false;
        }
    }
    size_t saved = vd_cpath_name(c, ".segment");
    int32_t seg = -1;
    if (!vd_json_is_string(js)) {
        vd_cerr(c, "needs a segment id string");
        ok = false;
    } else if ((seg = vd_ruleset_find_segment(c->rs, vd_str_make(vd_json_str(js), vd_json_strlen(js)))) < 0) {
        vd_cerr(c, "unknown segment \"%.*s\"", (int)(vd_json_strlen(js) > 128 ? 128 : vd_json_strlen(js)),
                vd_json_str(js));
        ok = false;
    }
    vd_cpath_pop(c, saved);
    r->segment = seg < 0 ? 0 : (uint32_t)seg;

    if (jalloc) {
        saved = vd_cpath_push(c, ".allocate");
        if (!vd_json_is_string(jalloc) ||
            (strcmp(vd_json_str(jalloc), "bandit") && strcmp(vd_json_str(jalloc), "fixed"))) {
            vd_cerr(c, "needs \"bandit\" or \"fixed\"");
            ok = false;
        } else if (!strcmp(vd_json_str(jalloc), "bandit")) {
            r->bandit = true;
            if (!jsp) {
                vd_cerr(c, "allocate goes with split");
                ok = false;
            } else if (slot->ngoals == 0) {
                vd_cerr(c, "a bandit learns from conversions: the slot needs a \"goal\"");
                ok = false;
            }
        }
        vd_cpath_pop(c, saved);
    }
    if (jv && jsp) {
        vd_cerr(c, "a rule has either \"variant\" or \"split\", not both");
        return false;
    }
    if (jv) {
        saved = vd_cpath_push(c, ".variant");
        int k = variant_ref(c, jv, slot, have_variants);
        vd_cpath_pop(c, saved);
        if (k < 0)
            return false;
        r->variant = (uint32_t)k;
        if (jsalt) {
            saved = vd_cpath_push(c, ".salt");
            vd_cerr(c, "salt only goes with split");
            vd_cpath_pop(c, saved);
            return false;
        }
        if (ok && seg >= 0 && !encode_rule_entry(c, r, slot))
            return false;
        return ok;
    }
    if (!jsp) {
        vd_cerr(c, "a rule needs \"variant\" or \"split\"");
        return false;
    }
    saved = vd_cpath_push(c, ".split");
    ok = compile_split(c, jsp, r, slot, have_variants) && ok;
    vd_cpath_pop(c, saved);
    saved = vd_cpath_push(c, ".salt");
    if (jsalt && (!vd_json_is_string(jsalt) || vd_json_strlen(jsalt) == 0 || vd_json_strlen(jsalt) > 256)) {
        vd_cerr(c, "needs a string of 1 to 256 bytes");
        ok = false;
    } else if (jsalt) {
        r->salt = vd_intern_str(&c->in, vd_json_str(jsalt), vd_json_strlen(jsalt), 0);
    } else {
        /* Default salt: "<slot>#<rule index>", stable as long as the rule
         * keeps its place. */
        char buf[VD_MAX_ID_LEN + 16];
        int n = snprintf(buf, sizeof buf, "%.*s#%u", (int)slot->name.n, slot->name.p, index);
        r->salt = vd_intern_str(&c->in, buf, n > 0 ? (size_t)n : 0, 0);
    }
    vd_cpath_pop(c, saved);
    if (!r->salt.p)
        c->oom = true;
    return ok;
}

/* "goal": 1..VD_MAX_GOALS distinct event types (id syntax). */
static bool compile_goal(vd_compiler *c, const vd_json *jg, vd_slot *out)
{
    if (!jg)
        return true;
    size_t saved = vd_cpath_push(c, ".goal");
    bool ok = true;
    size_t n = vd_json_is_array(jg) ? vd_json_size(jg) : 0;
    if (n == 0 || n > VD_MAX_GOALS) {
        vd_cerr(c, "needs an array of 1 to %d event types", VD_MAX_GOALS);
        vd_cpath_pop(c, saved);
        return false;
    }
    vd_str *goals = vd_arena_alloc(&c->rs->arena, n * sizeof *goals);
    if (!goals) {
        c->oom = true;
        vd_cpath_pop(c, saved);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const vd_json *e = vd_json_at(jg, i);
        size_t s2 = vd_cpath_push(c, "[%zu]", i);
        if (!vd_json_is_string(e)) {
            vd_cerr(c, "needs an event type string");
            ok = false;
        } else if (!vd_check_id(c, vd_json_str(e), vd_json_strlen(e), "event type")) {
            ok = false;
        } else {
            vd_str g = vd_intern_str(&c->in, vd_json_str(e), vd_json_strlen(e), 0);
            if (!g.p)
                c->oom = true;
            for (size_t k = 0; k < i && g.p; k++)
                if (vd_str_eq(goals[k], g)) {
                    vd_cerr(c, "duplicate event type \"%.*s\"", (int)g.n, g.p);
                    ok = false;
                }
            goals[i] = g;
        }
        vd_cpath_pop(c, s2);
    }
    vd_cpath_pop(c, saved);
    if (ok) {
        out->goals = goals;
        out->ngoals = (uint32_t)n;
    }
    return ok;
}

/* "holdout": a percentage 0..100 with at most two decimals (buckets of 10000). */
static bool compile_holdout(vd_compiler *c, const vd_json *jh, vd_slot *out)
{
    if (!jh)
        return true;
    size_t saved = vd_cpath_push(c, ".holdout");
    double h = vd_json_is_number(jh) ? vd_json_number(jh) : -1.0;
    double b = h * 100.0;
    bool ok = h >= 0.0 && h <= 100.0 && fabs(b - round(b)) < 1e-6;
    if (!ok)
        vd_cerr(c, "needs a percentage 0..100 with at most two decimals");
    else
        out->holdout = (uint32_t)(b + 0.5);
    vd_cpath_pop(c, saved);
    return ok;
}

bool vd_compile_slot(vd_compiler *c, const vd_json *j, vd_slot *out)
{
    if (!vd_json_is_object(j)) {
        vd_cerr(c, "a slot must be an object {\"slot\", \"rules\", \"default\", \"variants\"}");
        return false;
    }
    const vd_json *jn = vd_json_get(j, "slot");
    size_t saved = vd_cpath_push(c, ".slot");
    if (!vd_json_is_string(jn)) {
        vd_cerr(c, "missing or not a string");
        return false;
    }
    if (!vd_check_id(c, vd_json_str(jn), vd_json_strlen(jn), "slot name"))
        return false;
    vd_cpath_pop(c, saved);
    out->name = vd_intern_str(&c->in, vd_json_str(jn), vd_json_strlen(jn), 0);
    if (!out->name.p) {
        c->oom = true;
        return false;
    }
    /* From here the path is relative to the slot object, which the
     * message names. */
    snprintf(c->what, sizeof c->what, "slot \"%.*s\"", (int)out->name.n, out->name.p);
    vd_cpath_reset(c);

    bool ok = true;
    vd_json_foreach(j, m) {
        const char *key = m->key;
        if (strcmp(key, "slot") && strcmp(key, "rules") && strcmp(key, "default") && strcmp(key, "variants") &&
            strcmp(key, "description") && strcmp(key, "goal") && strcmp(key, "holdout")) {
            vd_cerr(c, "unknown key \"%s\" (expected slot, rules, default, variants, goal, holdout)", key);
            ok = false;
        }
    }

    const vd_json *jvars = vd_json_get(j, "variants");
    bool have_variants = vd_json_is_object(jvars) && vd_json_size(jvars) > 0;
    saved = vd_cpath_push(c, ".variants");
    if (!have_variants) {
        vd_cerr(c, jvars ? "needs a non-empty object {variant id: payload}" : "missing");
        ok = false;
    } else {
        size_t n = vd_json_size(jvars);
        vd_variant *vs = vd_arena_alloc(&c->rs->arena, n * sizeof *vs);
        if (!vs) {
            c->oom = true;
            return false;
        }
        vd_json_foreach(jvars, m) {
            const char *key = m->key;
            const vd_json *e = &m->val;
            size_t s2 = vd_cpath_push(c, ".%s", key);
            if (!vd_check_id(c, key, strlen(key), "variant id"))
                ok = false;
            vd_variant *v = &vs[out->nvariants++];
            v->id = vd_intern_str(&c->in, key, strlen(key), 0);
            if (!v->id.p)
                c->oom = true;
            if (!encode_payload(c, e, v) || (v->id.p && !encode_entry(c, out->name, v)))
                return false;
            vd_cpath_pop(c, s2);
        }
        out->variants = vs;
    }
    vd_cpath_pop(c, saved);

    saved = vd_cpath_push(c, ".default");
    const vd_json *jd = vd_json_get(j, "default");
    if (!jd) {
        vd_cerr(c, "missing (every slot needs a default variant)");
        ok = false;
    } else {
        int k = variant_ref(c, jd, out, have_variants);
        if (k < 0)
            ok = false;
        else
            out->default_variant = (uint32_t)k;
    }
    vd_cpath_pop(c, saved);

    ok = compile_goal(c, vd_json_get(j, "goal"), out) && ok;
    ok = compile_holdout(c, vd_json_get(j, "holdout"), out) && ok;

    const vd_json *jr = vd_json_get(j, "rules");
    saved = vd_cpath_push(c, ".rules");
    if (jr && !vd_json_is_array(jr)) {
        vd_cerr(c, "needs an array of rules");
        ok = false;
    } else if (jr && vd_json_size(jr) > 0) {
        size_t n = vd_json_size(jr);
        vd_rule *rules = vd_arena_alloc(&c->rs->arena, n * sizeof *rules);
        if (!rules) {
            c->oom = true;
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            size_t s2 = vd_cpath_push(c, "[%zu]", i);
            ok = compile_rule(c, vd_json_at(jr, i), (uint32_t)i, &rules[i], out, have_variants) && ok;
            vd_cpath_pop(c, s2);
        }
        out->rules = rules;
        out->nrules = (uint32_t)n;
    }
    vd_cpath_pop(c, saved);
    return ok;
}
