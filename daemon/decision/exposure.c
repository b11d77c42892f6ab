/* exposure.c — see exposure.h. */
#include "decision/exposure.h"

#include <string.h>
#include <time.h>

#include "variantd/limits.h"

static vd_str rule_key(const vd_ruleset *rs, const vd_slot_choice *c)
{
    if (c->holdout)
        return VD_STR_LIT("holdout");
    if (c->segment >= 0)
        return vd_ruleset_segment_id(rs, (uint32_t)c->segment);
    return VD_STR_LIT("default");
}

unsigned vd_exposure_record(vd_profile_store *s, const vd_learn_opts *o, const vd_ruleset *rs,
                            const vd_profile_ids *ids, int64_t ts, const vd_decision *d)
{
    char key[VD_PROFILE_KEY_LEN];
    bool have_key = false;
    unsigned sent = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (!c->slot || !c->slot->ngoals || !c->variant)
            continue;
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = d->slots[j].slot == c->slot;
        if (dup)
            continue;
        if (!have_key && !(have_key = vd_profile_key(s, ids, key)))
            return 0;
        bool bandit = c->rule >= 0 && c->slot->rules[c->rule].bandit;
        vd_learn_cmd cmd;
        vd_learn_expose_cmd(&cmd, o, vd_str_cstr(key), c->slot->name, rule_key(rs, c), c->variant->id, ts, bandit, us);
        if (vd_profile_send(s, cmd.argc, cmd.argv, cmd.len, NULL, NULL) == 0)
            sent++;
    }
    return sent;
}

void vd_exposure_on_track(void *hook_arg, vd_profile_store *s, const vd_ruleset *rs, const char *key,
                          const vd_profile_ids *ids, int64_t ts, const vd_profile_event *ev)
{
    (void)ids;
    const vd_learn_opts *o = hook_arg;
    if (!o || !rs || !ev || !key)
        return;
    vd_str slots[VD_LEARN_MAX_GOAL_SLOTS];
    unsigned n = 0;
    uint32_t ns = vd_ruleset_nslots(rs);
    for (uint32_t i = 0; i < ns; i++) {
        const vd_slot *sl = vd_ruleset_slot_at(rs, i);
        for (uint32_t g = 0; g < sl->ngoals; g++)
            if (vd_str_eq(sl->goals[g], ev->type)) {
                slots[n++] = sl->name;
                break;
            }
        if (n == VD_LEARN_MAX_GOAL_SLOTS || (i + 1 == ns && n > 0)) {
            vd_learn_cmd cmd;
            if (vd_learn_convert_cmd(&cmd, o, vd_str_cstr(key), ts, ev->has_value ? ev->value : 0.0, ev->type,
                                     slots, n) == 0)
                vd_profile_send(s, cmd.argc, cmd.argv, cmd.len, NULL, NULL);
            n = 0;
        }
    }
}
