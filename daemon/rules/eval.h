/* eval.h — segment evaluation over a lazy context.
 *
 * A vd_eval is per worker: it memoizes each segment's verdict for the
 * current request (reset in O(1) by a generation counter) so every segment
 * is evaluated at most once, references included. It allocates only when a
 * larger ruleset is first seen, never per request.
 *
 * Each verdict carries `until`: the earliest UTC instant at which time alone
 * could change it (INT64_MAX if never), from the time predicates actually
 * evaluated on the way to it (short-circuited ones cannot change the verdict
 * before an evaluated one does). */
#ifndef VD_RULES_EVAL_H
#define VD_RULES_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "context/context.h"
#include "rules/model.h"
#include "rules/ruleset.h"

typedef struct vd_eval vd_eval;

/* After the index is built (rules/build.c): the evaluator's own tables of
 * rs, in its arena. -1 on out of memory. */
int vd_eval_prepare(vd_ruleset *rs);

vd_eval *vd_eval_new(void);
void vd_eval_free(vd_eval *ev);

/* Starts a request. -1 only if growing the memo for a new ruleset fails. */
int vd_eval_begin(vd_eval *ev, const vd_ruleset *rs, vd_context *ctx);
/* 1 if segment seg matches, 0 if not; *until as above (may be NULL). */
int vd_eval_segment(vd_eval *ev, uint32_t seg, int64_t *until);
/* -1 not evaluated in this request, else 0/1. */
int vd_eval_verdict(const vd_eval *ev, uint32_t seg);

/* Evaluates every segment that can match this request (the candidate
 * index skips those whose string guard fails) and lists the matching ones
 * in ascending order in *out (owned by ev, valid until the next begin). */
uint32_t vd_eval_matching(vd_eval *ev, const uint32_t **out);

/* vd_eval_segment for a rule's segment after vd_eval_matching: a segment
 * the index ruled out by a string guard is false at no cost. */
int vd_eval_rule(vd_eval *ev, uint32_t seg, int64_t *until);

/* The segments evaluated so far in this request, in evaluation order. */
uint32_t vd_eval_evaluated(const vd_eval *ev, const uint32_t **out);
/* Memoized verdict and until of seg; -1 if not evaluated in this request. */
int vd_eval_memo(const vd_eval *ev, uint32_t seg, int64_t *until);

/* ---- the lazy path: only what the requested slots' rules reach ----------
 * The index entries (string keys) this request's values reach, evaluating
 * nothing: the segments filed under them (rs->index_segs + first, n) are the
 * only string-guarded ones that can match. want: probe index
 * attribute a only where bit a is set (a >= 64: always; ~0: all, see
 * rs->slot_want). *out is owned by ev. */
uint32_t vd_eval_candidates(vd_eval *ev, uint64_t want, const vd_index_entry *const **out);
/* Lazy probing: the attributes of want (bits < 64) whose context family is
 * costly and not computed yet in this request (geo, device, source, net).
 * The decision probes the others first and each of these only when a
 * slot's walk in rule order reaches the first rule filed under it
 * (vd_index_lazy_first): a slot decided earlier never computes it. */
uint64_t vd_eval_costly(const vd_eval *ev, uint64_t want);
/* Probes index attribute a, appending its entries to the array of
 * vd_eval_candidates after its first nh; the new count. Each attribute at
 * most once per request (the array holds rs->max_hits). The probe reads
 * the value and is done with it before returning, so it may come after
 * evaluations that read other values. */
uint32_t vd_eval_candidates_more(vd_eval *ev, uint32_t a, uint32_t nh);
/* For tests: defer (the default) or probe every attribute at once
 * (vd_eval_costly then returns 0). Answers are the same either way. */
void vd_eval_set_defer(vd_eval *ev, bool defer);
/* Evaluates a segment reached through its string guard's entry (the guard
 * holds, so it is not tested again). Memoized like vd_eval_segment. */
int vd_eval_candidate(vd_eval *ev, uint32_t seg, int64_t *until);
/* After vd_eval_candidates or vd_eval_matching: seg has a string guard that
 * fails for this request, so it is false whatever the time. */
bool vd_eval_guard_failed(vd_eval *ev, uint32_t seg);
/* The matching segments evaluated so far, in evaluation order. */
uint32_t vd_eval_matched_so_far(const vd_eval *ev, const uint32_t **out);
/* Per-request scratch map slot position -> requested position: an entry
 * is valid when its generation equals *gen. Returns the generation array. */
uint32_t *vd_eval_slot_map(vd_eval *ev, uint32_t **pos, uint32_t *gen);
/* Per-request scratch for the decision's rule bitmaps: rs->slot_word[nslots]
 * words, all zero when allocated (a new ruleset may grow it); the decision
 * step (decision/decide.c) leaves them all zero after each request. */
uint64_t *vd_eval_rule_bits(vd_eval *ev);


#endif
