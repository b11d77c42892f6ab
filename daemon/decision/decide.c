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
 * explain), nothing else is evaluated: each requested slot walks, in rule
 * order, the merge of its candidate rules (from the index entries the
 * request reaches) and its rules without a string guard, and stops at the
 * first match (first match first). */

/* One requested slot in rule order: the set bits of its rules without a
 * string guard (check_bits) and of its candidate bitmap (the candidate
 * rules of the index entries the request reaches), lowest first; the
 * first that matches wins. Every rule up to the winner was evaluated here,
 * so their bounds are the slot's `until`: a candidate was reached through
 * its string guard's bucket (the guard holds), a rule without a string
 * guard may flip with time. The walk only reads the bitmap: the caller
 * zeroes the slot's words after it (clear_words). */
static void walk_slot(vd_eval *ev, const vd_rule *rules, const uint64_t *check, const uint64_t *bm,
                      uint32_t nw, uint32_t *best, int64_t *until)
{
    int64_t acc = INT64_MAX;
    for (uint32_t w = 0; w < nw; w++)
        for (uint64_t x = bm[w] | check[w]; x; x &= x - 1) {
            unsigned b = (unsigned)__builtin_ctzll(x);
            uint32_t r = w * 64 + b;
            int64_t u;
            int m = check[w] >> b & 1 ? vd_eval_rule(ev, rules[r].segment, &u)
                                      : vd_eval_candidate(ev, rules[r].segment, &u);
            if (u < acc)
                acc = u;
            if (m) {
                *best = r;
                *until = acc;
                return;
            }
        }
    *until = acc;
}

/* A walked slot's candidate words back to zero: the bitmap is all zero
 * between decisions, so a request ORs its runs into it without first
 * copying the unguarded words into or clearing each slot's words. A test
 * before each store (most words are zero already), which also keeps gcc
 * from making the loop a memset call. */
static inline void clear_words(uint64_t *bm, uint32_t nw)
{
    for (uint32_t w = 0; w < nw; w++)
        if (bm[w])
            bm[w] = 0;
}

/* Lazy probing (branch walk): rules from .. lim - 1 of slot s only (true:
 * a winner); *acc takes their bounds. Reads the bitmap as walk_slot does. */
static bool walk_range(const vd_ruleset *rs, vd_eval *ev, uint32_t s, const uint64_t *bm, uint32_t from,
                       uint32_t lim, uint32_t *best, int64_t *acc)
{
    const vd_rule *rules = rs->slots[s].rules;
    const uint64_t *check = rs->check_bits + rs->slot_word[s];
    uint32_t nw = rs->slot_word[s + 1] - rs->slot_word[s];
    if (lim / 64 < nw)
        nw = (lim + 63) / 64;
    for (uint32_t w = from / 64; w < nw; w++) {
        uint64_t x = bm[w] | check[w];
        if (w == from / 64)
            x &= ~0ULL << (from % 64);
        if (w == lim / 64)
            x &= (1ULL << (lim % 64)) - 1;
        for (; x; x &= x - 1) {
            unsigned b = (unsigned)__builtin_ctzll(x);
            uint32_t r = w * 64 + b;
            int64_t u;
            int m = check[w] >> b & 1 ? vd_eval_rule(ev, rules[r].segment, &u)
                                      : vd_eval_candidate(ev, rules[r].segment, &u);
            if (u < *acc)
                *acc = u;
            if (m) {
                *best = r;
                return true;
            }
        }
    }
    return false;
}

/* dst |= src, n words (a dense run: at least 4), four at a time. */
static void or_words(uint64_t *restrict dst, const uint64_t *restrict src, uint32_t n)
{
    const uint64_t *end = src + n;
    for (; end - src >= 4; src += 4, dst += 4) {
        dst[0] |= src[0];
        dst[1] |= src[1];
        dst[2] |= src[2];
        dst[3] |= src[3];
    }
    for (; src < end; src++, dst++)
        *dst |= *src;
}

/* The runs of index entries hits[from .. to) into the candidate bitmaps
 * of the requested slots (a rule filed under two reached keys is one bit),
 * all zero before the request; walk_slot reads them beside the slots'
 * unguarded rules, clear_words zeroes a slot's again after its walk. A
 * probe made during the walks (lazy probing) passes the position of the
 * slot being walked: the slots asked before it are decided and zeroed
 * already, their words are left alone. */
static void or_hits(const vd_ruleset *rs, uint64_t *bits, const vd_index_entry *const *hits, uint32_t from,
                    uint32_t to, const uint32_t *sgen, const uint32_t *pos, uint32_t gen, uint32_t at)
{
    for (uint32_t h = from; h < to; h++) {
        const vd_slot_run *er = rs->entry_runs + hits[h]->rfirst;
        for (uint32_t r = 0; r < hits[h]->rn; r++) {
            if (sgen[er[r].slot] != gen || (at && pos[er[r].slot] < at))
                continue;
            uint64_t *bm = bits + rs->slot_word[er[r].slot];
            if (er[r].dense) {
                or_words(bm, rs->run_words + er[r].first, er[r].n);
                continue;
            }
            const vd_rule_bits *p = rs->run_bits + er[r].first, *end = p + er[r].n;
            do                     /* a sparse run has at least one piece */
                bm[p->word] |= p->bits;
            while (++p < end);
        }
    }
}

/* Lazy probing (branch walk): the request's probe so far, and the costly
 * index attributes it deferred. */
typedef struct lazy_probe {
    const vd_index_entry *const *hits;
    uint32_t nh;
    uint64_t deferred;
    unsigned done;            /* ctx->done when last looked at */
} lazy_probe;

/* Requested slot s (first asked at position at) when some attribute it
 * uses is deferred: an attribute whose context family is costly and not
 * computed yet (vd_eval_costly: geo, the device, the traffic source, net)
 * is probed only when the slot's walk reaches the first of its rules
 * filed under it (vd_index_lazy_first); below that rule the slot's bitmap
 * is complete without it. A slot decided earlier never computes the
 * family. */
static void walk_deferred(const vd_ruleset *rs, vd_eval *ev, const vd_context *ctx, lazy_probe *lp,
                          uint64_t *bits, const uint32_t *sgen, const uint32_t *pos, uint32_t gen, uint32_t s,
                          unsigned at, uint32_t *best, int64_t *until)
{
    if (ctx->done != lp->done) {
        /* A family computed since (by an evaluation or a probe) is cheap
         * now: probe its attributes at once. */
        lp->done = ctx->done;
        uint64_t cheap = lp->deferred & ~vd_index_costly(rs, lp->done, lp->deferred);
        for (lp->deferred &= ~cheap; cheap; cheap &= cheap - 1) {
            uint32_t nh2 = vd_eval_candidates_more(ev, (uint32_t)__builtin_ctzll(cheap), lp->nh);
            or_hits(rs, bits, lp->hits, lp->nh, nh2, sgen, pos, gen, at);
            lp->nh = nh2;
        }
    }
    uint32_t w0 = rs->slot_word[s];
    uint32_t from = 0, nl, k = 0;
    int64_t acc = INT64_MAX;
    if (!(lp->deferred & rs->slot_want[s])) {
        /* The whole slot (walk_range: walk_slot keeps one call site, inlined). */
        walk_range(rs, ev, s, bits + w0, 0, UINT32_MAX, best, &acc);
        *until = acc;
        return;
    }
    const vd_lazy_first *lf = vd_index_lazy_first(rs, s, &nl);
    for (;;) {
        /* Below the first rule of the next deferred attribute the bitmap
         * is complete: walk it, then probe that attribute. */
        while (k < nl && !(lp->deferred >> lf[k].attr & 1))
            k++;
        uint32_t lim = k < nl ? lf[k].rule : UINT32_MAX;
        if (walk_range(rs, ev, s, bits + w0, from, lim, best, &acc) || k == nl)
            break;
        lp->deferred &= ~(1ULL << lf[k].attr);
        uint32_t nh2 = vd_eval_candidates_more(ev, lf[k].attr, lp->nh);
        or_hits(rs, bits, lp->hits, lp->nh, nh2, sgen, pos, gen, at);
        lp->nh = nh2;
        from = lim;
    }
    *until = acc;
}

/* The full path (every matching segment already evaluated by the index):
 * each slot's string-guarded winner from the matching segments' uses, then
 * its unguarded rules in order up to it, then the bounds of every
 * evaluated rule up to the winner. */
static void full_slots(const vd_ruleset *rs, vd_eval *ev, unsigned n, const uint32_t *si, const uint32_t *sgen,
                       const uint32_t *pos, uint32_t gen, uint32_t *best, int64_t *until)
{
    const uint32_t *evd;
    uint32_t nev = vd_eval_evaluated(ev, &evd);
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
        const vd_slot *s = &rs->slots[si[i]];
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
}

/* This thread's previous request's slot names by requested position, with
 * their slots in the ruleset of serial `serial` (rules/model.h): a page
 * asks the same names request after request, so a name is compared with
 * the one asked at its position last time (by its key, as the slot table
 * holds it) instead of hashed and probed. */
typedef struct name_memo {
    vd_slot_key k;
    size_t n;                          /* SIZE_MAX: nothing at this position */
    uint32_t x;                        /* the slot's position, UINT32_MAX: unknown */
} name_memo;

static _Thread_local struct {
    uint64_t serial;                   /* 0: none (a ruleset's is never 0) */
    name_memo at[VD_MAX_SLOTS_PER_REQUEST];
} last_names;

static inline uint32_t find_slot(const vd_ruleset *rs, unsigned i, vd_str name)
{
    vd_slot_key k = vd_slot_key_of(name.p, name.n);
    if (!rs->slot_serial)
        return vd_index_find_slot_key(rs, name, k);
    name_memo *m = &last_names.at[i];
    /* Names of up to 16 bytes are equal when their lengths and keys are;
     * a longer one compares its middle with the slot's name. */
    if (m->n == name.n && m->k.a == k.a && m->k.b == k.b &&
        (name.n <= 16 ||
         (m->x != UINT32_MAX && memcmp(rs->slots[m->x].name.p + 8, name.p + 8, name.n - 16) == 0)))
        return m->x;
    uint32_t x = vd_index_find_slot_key(rs, name, k);
    m->k = k;
    m->n = name.n;
    m->x = x;
    return x;
}

int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    return vd_decide_alloc(rs, NULL, ev, ctx, out);
}

int vd_decide_alloc(const vd_ruleset *rs, const vd_alloc *alloc, vd_eval *ev, vd_context *ctx, vd_decision *out)
{
    return vd_decide_cached(rs, alloc, ev, NULL, ctx, out);
}

int vd_decide_cached(const vd_ruleset *rs, const vd_alloc *alloc, vd_eval *ev, vd_answers *ans, vd_context *ctx,
                     vd_decision *out)
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
    /* One pass over the names: the slot, its requested position (a slot
     * asked twice: its first position, pos[x] != i at the repeats, which
     * copy its answer below) and the index attributes the requested slots'
     * segments are filed under (a 1-slot request keyed on the country does
     * not compute the traffic source for the other slots' campaign
     * segments). */
    uint32_t *pos, gen;
    uint32_t *sgen = vd_eval_slot_map(ev, &pos, &gen);
    const uint64_t *slot_want = rs->slot_want;
    uint64_t want = slot_want ? 0 : ~0ULL, eager = want;
    if (last_names.serial != rs->slot_serial) {
        last_names.serial = rs->slot_serial;
        for (unsigned i = 0; i < VD_MAX_SLOTS_PER_REQUEST; i++)
            last_names.at[i].n = SIZE_MAX;
    }
    for (unsigned i = 0; i < n; i++) {
        uint32_t x = find_slot(rs, i, req->slots[i]);
        si[i] = x;
        if (x != UINT32_MAX && sgen[x] != gen) {
            sgen[x] = gen;
            pos[x] = i;
            if (slot_want) {
                want |= slot_want[x];
                eager |= rs->slot_eager[x];
            }
        }
    }
    uint32_t best[VD_MAX_SLOTS_PER_REQUEST];   /* winners and bounds: the full path's, the answer cache's */
    int64_t until[VD_MAX_SLOTS_PER_REQUEST];
    uint64_t *bits = NULL;
    lazy_probe lp = { 0 };
    vd_answers_key akey = { { 0, 0 }, false };
    bool cached = false;
    if (full || ans)
        for (unsigned i = 0; i < n; i++) {
            best[i] = UINT32_MAX;
            until[i] = INT64_MAX;
        }
    if (full) {
        full_slots(rs, ev, n, si, sgen, pos, gen, best, until);
    } else if (!ans || !(cached = vd_answers_get(ans, rs, ctx, n, si, &akey, best, until, &out->matched,
                                                 &out->nmatched))) {
        /* Lazy probing: the attributes no requested slot needs up front
         * (rs->slot_eager) and whose family is costly and not computed yet
         * wait for a walk to reach their first rule (walk_deferred). */
        uint64_t lazy = want & ~eager;
        lp.nh = vd_eval_candidates(ev, want & ~lazy, &lp.hits);
        lp.deferred = lazy ? vd_eval_costly(ev, lazy) : 0;
        for (uint64_t c = lazy & ~lp.deferred; c; c &= c - 1)
            lp.nh = vd_eval_candidates_more(ev, (uint32_t)__builtin_ctzll(c), lp.nh);
        lp.done = ctx->done;
        bits = vd_eval_rule_bits(ev);
        or_hits(rs, bits, lp.hits, 0, lp.nh, sgen, pos, gen, 0);
    }
    /* One pass over the requested slots, in order: walk its rules (unless
     * the full path already did), choose, and write its answer once. */
    unsigned repeats = 0;
    for (unsigned i = 0; i < n; i++) {
        vd_slot_choice *c = &out->slots[i];
        vd_str name = req->slots[i];
        uint32_t x = si[i];
        if (x == UINT32_MAX) {
            /* Unknown; asked twice (rare): by name, pairwise. */
            bool repeat = false;
            for (unsigned j = 0; j < i && !repeat; j++)
                repeat = si[j] == UINT32_MAX && vd_str_eq(out->slots[j].name, name);
            repeats += repeat;
            *c = (vd_slot_choice){ .name = name, .index = UINT32_MAX, .segment = -1, .rule = -1,
                                   .repeat = repeat };
            continue;
        }
        if (pos[x] != i) {
            /* The answer of its first position (decided above). */
            *c = out->slots[pos[x]];
            c->name = name;
            c->repeat = true;
            repeats++;
            continue;
        }
        const vd_slot *s = &rs->slots[x];
        uint32_t b;
        int64_t u;
        if (bits) {
            b = UINT32_MAX;
            uint32_t w0 = rs->slot_word[x], nw = rs->slot_word[x + 1] - w0;
            if (lp.deferred && (lp.deferred & rs->slot_want[x])) {
                walk_deferred(rs, ev, ctx, &lp, bits, sgen, pos, gen, x, i, &b, &u);
                clear_words(bits + w0, nw);
            } else if (nw == 1 && !(bits[w0] | rs->check_bits[w0])) {
                u = INT64_MAX;     /* one word, no rule to try: the default, no call */
            } else {
                walk_slot(ev, s->rules, rs->check_bits + w0, bits + w0, nw, &b, &u);
                clear_words(bits + w0, nw);
            }
            if (ans) {             /* for the answer cache (vd_answers_put below) */
                best[i] = b;
                until[i] = u;
            }
        } else {
            b = best[i];
            u = until[i];
        }
        if (s->holdout && vd_holdout_member(req->vid, s->name, s->holdout)) {
            /* Held out: the default, which time alone never changes. */
            *c = (vd_slot_choice){ .name = name, .slot = s, .index = x,
                                   .variant = &s->variants[s->default_variant], .segment = -1, .rule = -1,
                                   .holdout = true };
            continue;
        }
        const vd_variant *v;
        const vd_alloc_rule *bandit = NULL;
        int32_t segment = -1;
        if (b != UINT32_MAX) {
            const vd_rule *r = &s->rules[b];
            segment = (int32_t)r->segment;
            if (r->nsplit) {
                if (r->bandit)
                    bandit = vd_alloc_find(alloc, rs, s, b);
                uint32_t arm = sticky_arm(rs, r, s, ctx->visitor);
                v = &s->variants[arm != UINT32_MAX ? arm : pick_arm(r, bandit, req->vid)];
            } else {
                v = &s->variants[r->variant];
            }
        } else {
            v = &s->variants[s->default_variant];
        }
        /* Field by field: a compound literal zero-fills the struct first. */
        c->name = name;
        c->slot = s;
        c->variant = v;
        c->bandit = bandit;
        c->index = x;
        c->segment = segment;
        c->rule = b == UINT32_MAX ? -1 : (int32_t)b;
        c->holdout = false;
        c->repeat = false;
        if (u < out->valid_until)
            out->valid_until = u;
    }
    out->nunique = n - repeats;
    /* A rule walk may have evaluated a time-guarded segment the buckets
     * skipped (to learn its until); it is false, so `matched` is complete. */
    if (!full && !cached) {
        out->nmatched = vd_eval_matched_so_far(ev, &out->matched);
        if (ans)
            vd_answers_put(ans, &akey, ctx->now, n, best, until, out->matched, out->nmatched);
    }
    return 0;
}
