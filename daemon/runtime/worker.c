/* worker.c — sets up and tears down one worker's state. */
#include "runtime/worker.h"

#include <string.h>

int vd_worker_init(vd_worker *w, unsigned id, struct event_base *base, const vd_config *cfg,
                   const vd_env *env)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->base = base;
    w->cfg = cfg;
    if (vd_decider_init(&w->decider, env, cfg->ua_cache > 0 ? (size_t)cfg->ua_cache : 0,
                        cfg->geo_cache > 0 ? (size_t)cfg->geo_cache : 0, &w->stats) != 0)
        return -1;
    w->fe = (vd_frontend){ .base = base, .cfg = cfg, .stats = &w->stats, .decider = &w->decider };
    return 0;
}

void vd_worker_destroy(vd_worker *w)
{
    vd_decider_destroy(&w->decider);
}
