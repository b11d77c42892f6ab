/* decide.h — the content map step: per requested slot, the first rule whose
 * segment matches wins (a split picks an arm by a sticky hash of vid and
 * salt); otherwise the slot's default. */
#ifndef VD_DECISION_DECIDE_H
#define VD_DECISION_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "context/context.h"
#include "learn/alloc.h"
#include "rules/answers.h"
#include "rules/eval.h"
#include "rules/ruleset.h"

typedef struct vd_slot_choice {
    vd_str name;                  /* as requested */
    const vd_slot *slot;          /* NULL: unknown slot (error for this slot only) */
    const vd_variant *variant;
    const vd_alloc_rule *bandit;  /* the learnt weights the split used; NULL = as written */
    uint32_t index;               /* slot's position in the ruleset (UINT32_MAX: unknown) */
    int32_t segment;              /* matching segment index; -1 = default used */
    int32_t rule;                 /* rule index; -1 = default used */
    bool holdout;                 /* in the slot's holdout: the default, whatever the rules say */
    bool repeat;                  /* asked earlier in the request (a known slot: the same
                                   * slot; an unknown one: the same name): answered once */
} vd_slot_choice;

typedef struct vd_decision {
    unsigned nslots;
    unsigned nunique;             /* slots not repeated (the entries of the reply's slots map) */
    vd_slot_choice slots[VD_MAX_SLOTS_PER_REQUEST];
    int64_t valid_until;          /* INT64_MAX: time alone never changes it */
    /* complete (the request asked for `segments`, or explain): every
     * matching segment of the ruleset, ascending. Otherwise only the
     * matching segments the requested slots' rules reached, in evaluation
     * order (they feed the per-segment counters). Owned by the vd_eval. */
    bool complete;
    uint32_t nmatched;
    const uint32_t *matched;
    const vd_alloc *alloc;        /* the bandit weights this decision used (may be NULL) */
    uint8_t profile;              /* vd_profile_status for the result's `profile` (0: off, absent) */
} vd_decision;

/* -1 only on vd_eval_begin failure (out of memory on a new ruleset). */
int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out);
/* The same, with the bandit's published weights (NULL, or made for another
 * ruleset: the splits' written weights). */
int vd_decide_alloc(const vd_ruleset *rs, const vd_alloc *alloc, vd_eval *ev, vd_context *ctx, vd_decision *out);
/* The same, the rule walk's outcome taken from (and stored in) the
 * worker's whole-answer cache (rules/answers.h; NULL: none). Replies are
 * byte-identical with and without it; the matched segments of a hit are
 * owned by the cache. */
int vd_decide_cached(const vd_ruleset *rs, const vd_alloc *alloc, vd_eval *ev, vd_answers *ans, vd_context *ctx,
                     vd_decision *out);

/* Sticky bucket 0..9999 for a split (exposed for tests and docs). */
uint32_t vd_split_bucket(vd_str vid, vd_str salt);

/* True when a visitor belongs to a slot's holdout: a non-empty vid whose
 * split bucket under salt "holdout:<slot>" is below `holdout` (the slot's
 * holdout percent x 100). Without a vid nobody is held out. */
bool vd_holdout_member(vd_str vid, vd_str slot, uint32_t holdout);

/* True when request slot i names a known slot already asked for earlier in
 * the same request: such a slot is answered, counted and exposed once. */
static inline bool vd_decision_repeats_slot(const vd_decision *d, unsigned i)
{
    return d->slots[i].slot && d->slots[i].repeat;
}

#endif
