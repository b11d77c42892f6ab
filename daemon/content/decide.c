/* PLACEHOLDER: replaced by the rules compiler work. */
#include "content/decide.h"
int vd_decide(const vd_ruleset *rs, vd_eval *ev, vd_context *ctx, vd_decision *out) { (void)ev; const vd_request *r = ctx->req; out->nslots = r->nslots; out->valid_until = INT64_MAX; out->nmatched = 0; out->matched = NULL; for (unsigned i = 0; i < r->nslots; i++) { vd_slot_choice *c = &out->slots[i]; c->name = r->slots[i]; c->slot = vd_ruleset_find_slot(rs, c->name); c->variant = c->slot ? &c->slot->variants[c->slot->default_variant] : NULL; c->segment = -1; c->rule = -1; } return 0; }
uint32_t vd_split_bucket(vd_str vid, vd_str salt) { return (uint32_t)((vd_hash64(vid.p, vid.n) ^ vd_hash64(salt.p, salt.n)) % 10000); }
