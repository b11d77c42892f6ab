/* eval_internal.h — what decide.c needs from a vd_eval beyond eval.h. */
#ifndef VD_RULES_EVAL_INTERNAL_H
#define VD_RULES_EVAL_INTERNAL_H

#include <stdint.h>

#include "rules/eval.h"

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

#endif
