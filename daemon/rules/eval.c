/* PLACEHOLDER: replaced by the rules compiler work. */
#include "rules/eval.h"
#include <stdlib.h>
struct vd_eval { int unused; };
vd_eval *vd_eval_new(void) { return calloc(1, sizeof(vd_eval)); }
void vd_eval_free(vd_eval *ev) { free(ev); }
int vd_eval_begin(vd_eval *ev, const vd_ruleset *rs, vd_context *ctx) { (void)ev; (void)rs; (void)ctx; return 0; }
int vd_eval_segment(vd_eval *ev, uint32_t seg, int64_t *until) { (void)ev; (void)seg; if (until) *until = INT64_MAX; return 0; }
int vd_eval_verdict(const vd_eval *ev, uint32_t seg) { (void)ev; (void)seg; return -1; }
