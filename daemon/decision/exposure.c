/* exposure.c — see exposure.h. */
#include "decision/exposure.h"

#include <string.h>
#include <time.h>

#include <pthread.h>
#include <stdlib.h>
#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/sha1.h"
#include "variantd/limits.h"

/* The convert script goes out as EVALSHA (a few hundred bytes instead of the 2 KB
 * body); a Redis that does not know them yet (restarted, flushed) answers
 * NOSCRIPT and the command is sent once more as EVAL, which caches it. */
static char sha_convert[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    vd_str c = vd_learn_convert_script();
    vd_sha1_hex(c.p, c.n, sha_convert);
}

typedef struct retry_cmd {
    int argc;
    vd_str body;                  /* the script, for the EVAL retry */
    const char *argv[VD_LEARN_MAX_ARGS];
    size_t len[VD_LEARN_MAX_ARGS];
    vd_profile_store *s;
    char buf[];                   /* the arguments but the first two */
} retry_cmd;

static void on_script_reply(void *arg, void *reply)
{
    retry_cmd *rc = arg;
    const redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        rc->argv[0] = "EVAL";
        rc->len[0] = 4;
        rc->argv[1] = rc->body.p;
        rc->len[1] = rc->body.n;
        vd_profile_send(rc->s, rc->argc, rc->argv, rc->len, NULL, NULL);
    }
    vd_free(rc);
}

/* Sends cmd (built with the EVALSHA digest), keeping a copy for a retry. */
static int send_script(vd_profile_store *s, vd_learn_cmd *cmd, vd_str body)
{
    size_t total = 0;
    for (int i = 2; i < cmd->argc; i++)
        total += cmd->len[i];
    retry_cmd *rc = vd_malloc(sizeof *rc + total + 1);
    if (!rc)
        return vd_profile_send(s, cmd->argc, cmd->argv, cmd->len, NULL, NULL);
    rc->argc = cmd->argc;
    rc->body = body;
    rc->s = s;
    rc->argv[0] = cmd->argv[0];
    rc->len[0] = cmd->len[0];
    rc->argv[1] = cmd->argv[1];
    rc->len[1] = cmd->len[1];
    char *p = rc->buf;
    for (int i = 2; i < cmd->argc; i++) {
        memcpy(p, cmd->argv[i], cmd->len[i]);
        rc->argv[i] = p;
        rc->len[i] = cmd->len[i];
        p += cmd->len[i];
    }
    if (vd_profile_send(s, rc->argc, rc->argv, rc->len, on_script_reply, rc) != 0) {
        vd_free(rc);
        return -1;
    }
    return 0;
}

static vd_str rule_key(const vd_ruleset *rs, const vd_slot_choice *c)
{
    if (c->holdout)
        return VD_STR_LIT("holdout");
    if (c->segment >= 0)
        return vd_ruleset_segment_id(rs, (uint32_t)c->segment);
    return VD_STR_LIT("default");
}

unsigned vd_exposure_record(vd_profile_store *s, const vd_learn_opts *o, const vd_ruleset *rs,
                            const vd_profile_ids *ids, int64_t ts, const vd_decision *d, bool visit)
{
    vd_profile_exposure x[64];
    unsigned n = 0, sent = 0;
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (!c->slot || !c->slot->ngoals || !c->variant)
            continue;
        if (vd_decision_repeats_slot(d, i))
            continue;
        bool bandit = c->rule >= 0 && c->slot->rules[c->rule].bandit;
        x[n++] = (vd_profile_exposure){ c->slot->name, rule_key(rs, c), c->variant->id, bandit,
                                        !bandit && !c->slot->uses_profile };
        if (n == sizeof x / sizeof x[0]) {
            sent += vd_profile_expose(s, rs, ids, ts, visit, o, x, n);
            visit = false;
            n = 0;
        }
    }
    if (n || visit)
        sent += vd_profile_expose(s, rs, ids, ts, visit, o, x, n);
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
            vd_learn_opts so = *o;
            pthread_once(&sha_once, sha_init);
            so.sha_convert = sha_convert;
            if (vd_learn_convert_cmd(&cmd, &so, vd_str_cstr(key), ts, ev->has_value ? ev->value : 0.0, ev->type,
                                     slots, n) == 0)
                send_script(s, &cmd, vd_learn_convert_script());
            n = 0;
        }
    }
}
