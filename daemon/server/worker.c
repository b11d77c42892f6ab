#include "server/worker.h"

#include <string.h>
#include <time.h>

#include "content/decide.h"

uint64_t vd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int vd_worker_init(vd_worker *w, unsigned id, struct event_base *base, const vd_config *cfg,
                   const vd_env *env)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->base = base;
    w->cfg = cfg;
    w->env = env;
    w->eval = vd_eval_new();
    if (cfg->ua_cache > 0)
        w->ua_cache = vd_device_cache_new((size_t)cfg->ua_cache);
    if (!w->eval || (cfg->ua_cache > 0 && !w->ua_cache)) {
        vd_worker_destroy(w);
        return -1;
    }
    return 0;
}

void vd_worker_destroy(vd_worker *w)
{
    if (w->rs)
        vd_ruleset_release(w->rs);
    w->rs = NULL;
    vd_eval_free(w->eval);
    w->eval = NULL;
    vd_device_cache_free(w->ua_cache);
    w->ua_cache = NULL;
}

const vd_ruleset *vd_worker_ruleset(vd_worker *w)
{
    uint64_t gen = vd_live_generation();
    if (gen != w->rs_gen) {
        /* Between requests: the old reference goes, the new one is held
         * until the next publication. */
        vd_ruleset *rs = vd_live_acquire();
        if (w->rs)
            vd_ruleset_release(w->rs);
        w->rs = rs;
        w->rs_gen = gen;
    }
    return w->rs;
}

vd_decide_status vd_worker_decide(vd_worker *w, const vd_request *req, const vd_emitter *e)
{
    const vd_ruleset *rs = vd_worker_ruleset(w);
    if (!rs)
        return VD_DECIDE_NOT_READY;
    uint64_t t0 = vd_now_ns();
    vd_context ctx;
    vd_context_init(&ctx, req, w->env, w->ua_cache, (int64_t)time(NULL));
    vd_decision d;
    if (vd_decide(rs, w->eval, &ctx, &d) != 0)
        return VD_DECIDE_INTERNAL;
    VD_STAT_ADD(&w->stats, decide_ns_total, vd_now_ns() - t0);
    for (unsigned i = 0; i < d.nslots; i++) {
        if (d.slots[i].slot)
            VD_STAT_INC(&w->stats, slots_decided);
        else
            VD_STAT_INC(&w->stats, slots_unknown);
    }
    vd_result_emit(e, rs, &d, &ctx, w->eval, req->explain);
    return VD_DECIDE_OK;
}
