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

static uint32_t pick_arm(const vd_rule *r, vd_str vid)
{
    uint32_t b = vd_split_bucket(vid, r->salt);
    for (uint32_t i = 0; i < r->nsplit; i++)
        if (b < r->split[i].upto)
            return r->split[i].variant;
    return r->split[r->nsplit - 1].variant;
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
static void lazy_candidates(const vd_ruleset *rs, vd_eval *ev, unsigned n, const uint32_t *si, uint32_t *best)
{
    uint32_t *pos, gen;
    uint32_t *sgen = vd_eval_slot_map(ev, &pos, &gen);
    for (unsigned i = 0; i < n; i++)
        if (si[i] != UINT32_MAX && sgen[si[i]] != gen) {
            sgen[si[i]] = gen;
            pos[si[i]] = i;      /* a slot asked twice: its first position */
        }
    /* Only the index attributes the requested slots' segments are filed
     * under: a 1-slot request keyed on the country does not compute the
     * traffic source for the other slots' campaign segments. */
    uint8_t want[64];
    const uint8_t *wantp = NULL;
    if (rs->index_slot && rs->nindex <= sizeof want) {
        memset(want, 0, rs->nindex);
        for (unsigned i = 0; i < n; i++)
            if (si[i] != UINT32_MAX && pos[si[i]] == i)
                for (uint32_t a = 0; a < rs->nindex; a++)
                    want[a] |= rs->index_slot[(size_t)a * rs->nslots + si[i]];
        wantp = want;
    }
    const vd_index_entry *const *hits;
    uint32_t nh = vd_eval_candidates(ev, wantp, &hits);
    /* Per entry, the rules using its segments sorted by (slot, rule): each
     * requested slot walks its own candidate rules in order and stops at
     * the first match or at its best so far. */
    for (uint32_t h = 0; h < nh; h++) {
        const vd_seg_use *uses = rs->entry_uses + hits[h]->ufirst;
        uint32_t nu = hits[h]->un;
        for (unsigned i = 0; i < n; i++) {
            uint32_t s = si[i];
            if (s == UINT32_MAX || pos[s] != i)
                continue;
            uint32_t lo = 0, hi = nu;   /* first use of slot s */
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (uses[mid].slot < s)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            const vd_slot *slot = &rs->slots[s];
            for (uint32_t k = lo; k < nu && uses[k].slot == s && uses[k].rule < best[i]; k++) {
                int64_t u;
                if (vd_eval_candidate(ev, slot->rules[uses[k].rule].segment, &u)) {
                    best[i] = uses[k].rule;
                    break;
                }
            }
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (si[i] != UINT32_MAX)
            best[i] = best[pos[si[i]]];
}

int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    const vd_request *req = ctx->req;
    if (vd_eval_begin(ev, rs, ctx) < 0)
        return -1;
    /* Full path: the index evaluates exactly the segments that can match
     * this request, all of them. */
    bool full = req->segments || req->explain;
    out->complete = full;
    out->nmatched = full ? vd_eval_matching(ev, &out->matched) : 0;
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
        si[i] = c->slot ? vd_index_slot_pos(rs, c->slot) : UINT32_MAX;
        best[i] = UINT32_MAX;
        until[i] = INT64_MAX;
    }
    const uint32_t *evd;
    uint32_t nev = full ? vd_eval_evaluated(ev, &evd) : 0;
    if (!full)
        lazy_candidates(rs, ev, n, si, best);
    for (uint32_t e = 0; e < nev; e++) {
        int64_t u;
        if (!vd_string_guarded(rs, evd[e]) || vd_eval_memo(ev, evd[e], &u) != 1)
            continue;
        uint32_t nu;
        const vd_seg_use *uses = vd_index_uses(rs, evd[e], &nu);
        for (uint32_t k = 0; k < nu; k++)
            for (unsigned i = 0; i < n; i++)
                if (uses[k].slot == si[i] && uses[k].rule < best[i])
                    best[i] = uses[k].rule;
    }
    for (unsigned i = 0; i < n; i++) {
        if (si[i] == UINT32_MAX)
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
        for (uint32_t k = 0; k < nu; k++)
            for (unsigned i = 0; i < n; i++)
                if (uses[k].slot == si[i] && uses[k].rule <= best[i] && u < until[i])
                    until[i] = u;
    }
    for (unsigned i = 0; i < n; i++) {
        vd_slot_choice *c = &out->slots[i];
        if (!c->slot)
            continue;
        const vd_slot *s = c->slot;
        if (best[i] != UINT32_MAX) {
            const vd_rule *r = &s->rules[best[i]];
            c->segment = (int32_t)r->segment;
            c->rule = (int32_t)best[i];
            c->variant = &s->variants[r->nsplit ? pick_arm(r, req->vid) : r->variant];
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
