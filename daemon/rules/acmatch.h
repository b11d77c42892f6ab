/* acmatch.h — Aho–Corasick multi-pattern matcher for `contains` sets.
 *
 * `contains` with N terms tested one by one costs O(N × |value|): 1,000
 * terms against a 60 KB URL path was 30–80 ms of one worker, and every
 * other client of that worker waited. The matcher is compiled once per
 * predicate at ruleset load and answers "does any term occur in the value"
 * in one pass over the value, whatever N.
 *
 * Comparison is ASCII case-insensitive, like every string comparison of the
 * contract (vd_str_contains_ci is the reference; tests/unit/test_acmatch.c
 * checks the two agree on random inputs). Bytes that occur in no term map
 * to one class that always leads back to the start state.
 *
 * The tables live in the ruleset's arena (freed with it, never written
 * after the build, so any number of workers may match concurrently). When
 * states × classes fits dense_budget the automaton is a full DFA (one table
 * lookup per byte); otherwise it keeps sparse edges plus failure links
 * (amortised two lookups per byte), so memory stays linear in the total
 * length of the terms. */
#ifndef VD_RULES_ACMATCH_H
#define VD_RULES_ACMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "rules/arena.h"

typedef struct vd_acm vd_acm;

/* The default budget of the dense table, in entries (4 bytes each). */
#define VD_ACM_DENSE_BUDGET ((size_t)1 << 20)

/* NULL on out of memory. Terms in any case; an empty term matches every value. */
const vd_acm *vd_acm_build(vd_arena *a, const vd_str *terms, size_t n, size_t dense_budget);

/* Does any term occur in text (ASCII case-insensitive)? */
bool vd_acm_any(const vd_acm *m, vd_str text);

/* Which terms occur: built with vd_acm_build_ids (distinct, non-empty
 * terms; term i has id i), fn is called with the id of every occurrence of
 * a term in text (a term found twice is reported twice), or with at_end
 * only of those that end the text (a suffix test). The candidate index
 * files segments under their `contains` / `suffix` terms this way: one
 * pass over the request value finds every bucket it reaches. */
const vd_acm *vd_acm_build_ids(vd_arena *a, const vd_str *terms, size_t n, size_t dense_budget);
void vd_acm_each(const vd_acm *m, vd_str text, bool at_end, void (*fn)(void *arg, uint32_t id), void *arg);

/* True if the automaton was built as a full DFA (for tests and stats). */
bool vd_acm_dense(const vd_acm *m);

#endif
