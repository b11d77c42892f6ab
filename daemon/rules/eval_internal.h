/* eval_internal.h — what decide.c needs from a vd_eval beyond eval.h. */
#ifndef VD_RULES_EVAL_INTERNAL_H
#define VD_RULES_EVAL_INTERNAL_H

#include <stdint.h>

#include "rules/eval.h"

/* Scratch of nsegments entries for the matched list (valid after begin). */
uint32_t *vd_eval_matched_buf(vd_eval *ev);

#endif
