/* decide.c — the content-map step. For each requested slot the rules are
 * tried in order (first match wins, a split picks its arm by a sticky
 * bucket), else the default. valid_until is the min over the requested
 * slots of the `until` of every rule segment evaluated up to the winner:
 * an earlier rule that did not match may start matching; later rules
 * cannot change the answer. */
#include "decision/decide.h"

#include <string.h>

#include "rules/index.h"

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

bool vd_holdout_member(vd_str vid, vd_str slot, uint32_t holdout)
{
    if (holdout == 0 || vid.n == 0)
        return false;
    char salt[sizeof "holdout:" + VD_MAX_ID_LEN];
    size_t n = slot.n < VD_MAX_ID_LEN ? slot.n : VD_MAX_ID_LEN;
    memcpy(salt, "holdout:", 8);
    memcpy(salt + 8, slot.p, n);
    return vd_split_bucket(vid, vd_str_make(salt, 8 + n)) < holdout;
}

static uint32_t pick_arm(const vd_rule *r, const vd_alloc_rule *learnt, vd_str vid)
{
    uint32_t b = vd_split_bucket(vid, r->salt);
    if (learnt) {
        /* The same bucket, under the bandit's current bounds. */
        for (uint32_t i = 0; i < learnt->narms; i++)
            if (b < learnt->upto[i])
                return r->split[i].variant;
        return r->split[learnt->narms - 1].variant;
    }
    for (uint32_t i = 0; i < r->nsplit; i++)
        if (b < r->split[i].upto)
            return r->split[i].variant;
    return r->split[r->nsplit - 1].variant;
}

/* A bandit's stickiness: a visitor whose profile holds an exposure of this
 * slot under this rule keeps that variant while the weights move (and
 * while the variant is still one of the arms). UINT32_MAX: none. */
static uint32_t sticky_arm(const vd_ruleset *rs, const vd_rule *r, const vd_slot *s, const vd_visitor *v)
{
    if (!r->bandit || !v)
        return UINT32_MAX;
    const vd_visitor_exposure *x = vd_visitor_exposure_of(v, s->name);
    if (!x || !vd_str_eq(x->rule, vd_ruleset_segment_id(rs, r->segment)))
        return UINT32_MAX;
    for (uint32_t k = 0; k < r->nsplit; k++)
        if (vd_str_eq(s->variants[r->split[k].variant].id, x->variant))
            return r->split[k].variant;
    return UINT32_MAX;
}

/* Rules whose segment has a string guard were settled by the index: the
 * ones evaluated are exactly the candidates, reached through each
 * segment's use list in one pass over the evaluated segments; the rest are
 * false whatever the time. Only the rules without a string guard are walked
 * in order.
 *
 * Unless the request asks for every matching segment (`segments`, or
 * explain), nothing else is evaluated: a candidate segment only when one
 * of its rules in a requested slot comes before that slot's best so far,
 * and the unguarded rules in order up to the winner (first match first).
 * Every candidate rule before the final winner was evaluated (the best
 * only moves down), so valid_until is the same as on the full path. */
static void lazy_candidates(const vd_ruleset *rs, vd_eval *ev, unsigned n, const uint32_t *si,
                            const uint32_t *sgen, const uint32_t *pos, uint32_t gen, uint32_t *best)
{
    /* Only the index attributes the requested slots' segments are filed
     * under: a 1-slot request keyed on the country does not compute the
     * traffic source for the other slots' campaign segments. */
    uint64_t want = rs->slot_want ? 0 : ~0ULL;
    for (unsigned i = 0; i < n && rs->slot_want; i++)
        if (si[i] != UINT32_MAX)
            want |= rs->slot_want[si[i]];
    const vd_index_entry *const *hits;
    uint32_t nh = vd_eval_candidates(ev, want, &hits);
    /* Per entry, one run of rules per slot using its segments, in rule
     * order: each requested slot walks its own run and stops at the first
     * match or at its best so far. */
    for (uint32_t h = 0; h < nh; h++) {
        const vd_slot_run *runs = rs->entry_runs + hits[h]->rfirst;
        uint32_t nr = hits[h]->rn;
        for (uint32_t r = 0; r < nr; r++) {
            uint32_t s = runs[r].slot;
            if (sgen[s] != gen)
                continue;
            uint32_t *b = &best[pos[s]];
            const vd_seg_use *uses = rs->entry_uses + runs[r].first;
            const vd_rule *rules = rs->slots[s].rules;
            for (uint32_t k = 0; k < runs[r].n && uses[k].rule < *b; k++) {
                int64_t u;
                if (vd_eval_candidate(ev, rules[uses[k].rule].segment, &u)) {
                    *b = uses[k].rule;
                    break;
                }
            }
        }
    }
}

int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    return vd_decide_alloc(rs, NULL, ev, ctx, out);
}

int vd_decide_alloc(const vd_ruleset *rs, const vd_alloc *alloc, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    const vd_request *req = ctx->req;
    if (vd_eval_begin(ev, rs, ctx) < 0)
        return -1;
    /* Full path: the index evaluates exactly the segments that can match
     * this request, all of them. */
    bool full = req->segments || req->explain;
    out->complete = full;
    out->nmatched = full ? vd_eval_matching(ev, &out->matched) : 0;
    out->alloc = alloc;
    out->profile = 0;
    unsigned n = req->nslots < VD_MAX_SLOTS_PER_REQUEST ? req->nslots : VD_MAX_SLOTS_PER_REQUEST;
    out->nslots = n;
    out->valid_until = INT64_MAX;
    uint32_t si[VD_MAX_SLOTS_PER_REQUEST];     /* slot index per requested slot */
    uint32_t best[VD_MAX_SLOTS_PER_REQUEST];   /* winning rule so far */
    int64_t until[VD_MAX_SLOTS_PER_REQUEST];
    for (unsigned i = 0; i < n; i++) {
        vd_slot_choice *c = &out->slots[i];
        c->name = req->slots[i];
        c->slot = vd_ruleset_find_slot(rs, c->name);
        c->variant = NULL;
        c->segment = -1;
        c->rule = -1;
        c->holdout = false;
        c->bandit = NULL;
        si[i] = c->slot ? vd_index_slot_pos(rs, c->slot) : UINT32_MAX;
        best[i] = UINT32_MAX;
        until[i] = INT64_MAX;
    }
    /* Requested position of each slot index (a slot asked twice: its
     * first position; the repeats copy its answer below). */
    uint32_t *pos, gen;
    uint32_t *sgen = vd_eval_slot_map(ev, &pos, &gen);
    for (unsigned i = 0; i < n; i++)
        if (si[i] != UINT32_MAX && sgen[si[i]] != gen) {
            sgen[si[i]] = gen;
            pos[si[i]] = i;
        }
    const uint32_t *evd;
    uint32_t nev = full ? vd_eval_evaluated(ev, &evd) : 0;
    if (!full)
        lazy_candidates(rs, ev, n, si, sgen, pos, gen, best);
    for (uint32_t e = 0; e < nev; e++) {
        int64_t u;
        if (!vd_string_guarded(rs, evd[e]) || vd_eval_memo(ev, evd[e], &u) != 1)
            continue;
        uint32_t nu;
        const vd_seg_use *uses = vd_index_uses(rs, evd[e], &nu);
        for (uint32_t k = 0; k < nu; k++)
            if (sgen[uses[k].slot] == gen && uses[k].rule < best[pos[uses[k].slot]])
                best[pos[uses[k].slot]] = uses[k].rule;
    }
    for (unsigned i = 0; i < n; i++) {
        if (si[i] == UINT32_MAX || pos[si[i]] != i)
            continue;
        const vd_slot *s = out->slots[i].slot;
        uint32_t nc;
        const uint32_t *checks = vd_index_checks(rs, si[i], &nc);
        for (uint32_t k = 0; k < nc; k++) {
            uint32_t r = checks[k];
            if (r > best[i])
                break;
            int64_t u;
            int m = vd_eval_rule(ev, s->rules[r].segment, &u);
            if (u < until[i])
                until[i] = u;
            if (m) {
                best[i] = r;
                break;
            }
        }
    }
    /* Evaluated string-guarded rules up to the winner may flip with time
     * (a campaign segment with an hour window, say) — unless the string
     * guard fails: one evaluated through a reference may have stopped at a
     * time condition before reaching its guard, but it is false for good. */
    nev = vd_eval_evaluated(ev, &evd);
    for (uint32_t e = 0; e < nev; e++) {
        int64_t u;
        if (!vd_string_guarded(rs, evd[e]) || vd_eval_memo(ev, evd[e], &u) < 0 || u == INT64_MAX ||
            vd_eval_guard_failed(ev, evd[e]))
            continue;
        uint32_t nu;
        const vd_seg_use *uses = vd_index_uses(rs, evd[e], &nu);
        for (uint32_t k = 0; k < nu; k++) {
            if (sgen[uses[k].slot] != gen)
                continue;
            uint32_t i = pos[uses[k].slot];
            if (uses[k].rule <= best[i] && u < until[i])
                until[i] = u;
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (si[i] != UINT32_MAX && pos[si[i]] != i) {
            best[i] = best[pos[si[i]]];
            until[i] = until[pos[si[i]]];
        }
    for (unsigned i = 0; i < n; i++) {
        vd_slot_choice *c = &out->slots[i];
        if (!c->slot)
            continue;
        const vd_slot *s = c->slot;
        if (s->holdout && vd_holdout_member(req->vid, s->name, s->holdout)) {
            /* Held out: the default, which time alone never changes. */
            c->holdout = true;
            c->variant = &s->variants[s->default_variant];
            continue;
        }
        if (best[i] != UINT32_MAX) {
            const vd_rule *r = &s->rules[best[i]];
            c->segment = (int32_t)r->segment;
            c->rule = (int32_t)best[i];
            if (r->bandit)
                c->bandit = vd_alloc_find(alloc, rs, s, best[i]);
            uint32_t arm = r->nsplit ? sticky_arm(rs, r, s, ctx->visitor) : UINT32_MAX;
            if (arm == UINT32_MAX)
                arm = r->nsplit ? pick_arm(r, c->bandit, req->vid) : r->variant;
            c->variant = &s->variants[arm];
        } else {
            c->variant = &s->variants[s->default_variant];
        }
        if (until[i] < out->valid_until)
            out->valid_until = until[i];
    }
    /* A rule walk may have evaluated a time-guarded segment the buckets
     * skipped (to learn its until); it is false, so `matched` is complete. */
    if (!full)
        out->nmatched = vd_eval_matched_so_far(ev, &out->matched);
    return 0;
}
