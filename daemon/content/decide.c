/* decide.c — the content-map step. For each requested slot the rules are
 * tried in order (first match wins, a split picks its arm by a sticky
 * bucket), else the default. valid_until is the min over the requested
 * slots of the `until` of every rule segment evaluated up to the winner:
 * an earlier rule that did not match may start matching; later rules
 * cannot change the answer. */
#include "content/decide.h"

#include "rules/eval_internal.h"

#define SPLIT_BUCKETS 10000u

uint32_t vd_split_bucket(vd_str vid, vd_str salt)
{
    /* FNV-1a 64 over salt, one 0x00 byte, vid; then the murmur3 fmix64
     * finalizer so the low digits are well mixed; mod 10000. Documented in
     * docs/RULES.md so other implementations can reproduce it. */
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint64_t prime = 0x100000001b3ULL;
    for (size_t i = 0; i < salt.n; i++)
        h = (h ^ (unsigned char)salt.p[i]) * prime;
    h = (h ^ 0) * prime;
    for (size_t i = 0; i < vid.n; i++)
        h = (h ^ (unsigned char)vid.p[i]) * prime;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)(h % SPLIT_BUCKETS);
}

static uint32_t pick_arm(const vd_rule *r, vd_str vid)
{
    uint32_t b = vd_split_bucket(vid, r->salt);
    for (uint32_t i = 0; i < r->nsplit; i++)
        if (b < r->split[i].upto)
            return r->split[i].variant;
    return r->split[r->nsplit - 1].variant;
}

int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    const vd_request *req = ctx->req;
    if (vd_eval_begin(ev, rs, ctx) < 0)
        return -1;
    /* Candidates first: the index evaluates exactly the segments that can
     * match this request, so the rule walks below only read verdicts. */
    out->nmatched = vd_eval_matching(ev, &out->matched);
    out->nslots = req->nslots < VD_MAX_SLOTS_PER_REQUEST ? req->nslots : VD_MAX_SLOTS_PER_REQUEST;
    out->valid_until = INT64_MAX;
    for (unsigned i = 0; i < out->nslots; i++) {
        vd_slot_choice *c = &out->slots[i];
        c->name = req->slots[i];
        c->slot = vd_ruleset_find_slot(rs, c->name);
        c->variant = NULL;
        c->segment = -1;
        c->rule = -1;
        if (!c->slot)
            continue;
        const vd_slot *s = c->slot;
        int64_t slot_until = INT64_MAX;
        for (uint32_t k = 0; k < s->nrules; k++) {
            const vd_rule *r = &s->rules[k];
            int64_t u;
            int m = vd_eval_rule(ev, r->segment, &u);
            if (u < slot_until)
                slot_until = u;
            if (m) {
                c->segment = (int32_t)r->segment;
                c->rule = (int32_t)k;
                c->variant = &s->variants[r->nsplit ? pick_arm(r, req->vid) : r->variant];
                break;
            }
        }
        if (!c->variant)
            c->variant = &s->variants[s->default_variant];
        if (slot_until < out->valid_until)
            out->valid_until = slot_until;
    }
    /* A rule walk may have evaluated a time-guarded segment the buckets
     * skipped (to learn its until); it is false, so `matched` is complete. */
    return 0;
}
