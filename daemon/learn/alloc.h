/* alloc.h — the bandit's current weights, published to the decision workers.
 *
 * A vd_alloc holds, for one ruleset, the split bounds of every rule with
 * "allocate": "bandit". The learner computes a new one every bandit-interval
 * and publishes it as a ruleset swap is published (store/live.c): workers
 * see a new generation with one atomic load and take a reference between
 * requests, so a request sees one allocation, and the last holder frees the
 * old one. An allocation made for another ruleset than the one a request
 * uses is ignored (the written weights serve until the next computation):
 * arms added or removed by a release never meet stale bounds. */
#ifndef VD_LEARN_ALLOC_H
#define VD_LEARN_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "learn/stats.h"
#include "rules/ruleset.h"

typedef struct vd_alloc_rule {
    const vd_slot *slot;          /* a slot of the allocation's ruleset */
    uint32_t rule;                /* its rule index */
    uint32_t narms;               /* = the rule's nsplit */
    bool learnt;                  /* false: exploring, the written weights */
    double *w;                    /* weight per arm, sum 1 */
    uint32_t *upto;               /* cumulative bounds of 10000, like vd_split_arm */
    vd_arm_counts *counts;        /* what the weights were computed from */
} vd_alloc_rule;

typedef struct vd_alloc {
    _Atomic unsigned refs;
    vd_ruleset *rs;               /* retained */
    int64_t computed_at;          /* unix seconds */
    unsigned n;
    vd_alloc_rule *rules;
} vd_alloc;

/* Counts of (slot, rule key, variant) as the learner read them. */
typedef int (*vd_alloc_counts_fn)(void *arg, vd_str slot, vd_str rule_key, vd_str variant, vd_arm_counts *out);

/* Computes the weights of every bandit rule of rs (retained by the result)
 * from the counts given by fn. NULL on out of memory. */
vd_alloc *vd_alloc_compute(vd_ruleset *rs, vd_alloc_counts_fn fn, void *arg, const vd_bandit_params *bp,
                           int64_t now);
void vd_alloc_retain(vd_alloc *a);
void vd_alloc_release(vd_alloc *a);

/* The entry for (slot, rule) when a was made for rs; NULL otherwise. */
const vd_alloc_rule *vd_alloc_find(const vd_alloc *a, const vd_ruleset *rs, const vd_slot *slot, uint32_t rule);

/* Publication (takes over the caller's reference). */
void vd_alloc_publish(vd_alloc *a);
vd_alloc *vd_alloc_acquire(void);     /* +1 reference, NULL if none */
uint64_t vd_alloc_generation(void);
void vd_alloc_clear(void);            /* at shutdown */

#endif
