/* worker.c — sets up and tears down one worker's state. */
#include "runtime/worker.h"

#include "decision/exposure.h"

#include <stdio.h>
#include <string.h>

#include "profile/scripts.h"
#include "store/redis_url.h"

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
    if (cfg->answer_cache > 0 && !(w->decider.answers = vd_answers_new((size_t)cfg->answer_cache,
                                                                      (unsigned)cfg->answer_cache_min_slots))) {
        vd_decider_destroy(&w->decider);
        return -1;
    }
    w->fe = (vd_frontend){ .base = base, .cfg = cfg, .stats = &w->stats, .decider = &w->decider };
    w->decider.pstats = &w->pstats;
    w->decider.track_types = &w->track_types;
    vd_consent_parse(vd_str_cstr(cfg->consent_default), &w->decider.consent_default);
    if (cfg->profiles && cfg->profiles[0]) {
        vd_profile_config pc;
        char err[256];
        if (vd_worker_profile_config(cfg, &pc, err, sizeof err) != 0 ||
            !(w->decider.profiles = vd_profile_store_new(base, &pc, &w->pstats, &w->track_types))) {
            vd_worker_destroy(w);
            return -1;
        }
        w->decider.learn = (vd_learn_opts){ .ns = cfg->redis_namespace,
                                            .window_s = cfg->attribution_window * 86400,
                                            .stream = cfg->event_stream,
                                            .stream_maxlen = cfg->event_stream_maxlen };
        vd_profile_set_hooks(w->decider.profiles, NULL, vd_exposure_on_track, &w->decider.learn);
    }
    return 0;
}

int vd_worker_profile_config(const vd_config *cfg, vd_profile_config *pc, char *err, size_t cap)
{
    vd_scripts_init();        /* main calls this first, before any worker thread */
    memset(pc, 0, sizeof *pc);
    vd_redis_url u;
    char e[256];
    if (vd_redis_url_parse(cfg->profiles, &u, e, sizeof e) != 0) {
        snprintf(err, cap, "profiles: %s", e);
        return -1;
    }
    if (u.is_sentinel) {
        /* The workers follow the master main.c's sentinel watcher
         * publishes (profile/master.h); the address here is a label. */
        pc->follow_master = true;
        snprintf(u.host, sizeof u.host, "sentinel master %s", u.master);
    }
    if (!cfg->profile_key_secret || !cfg->profile_key_secret[0]) {
        snprintf(err, cap, "profiles are on but profile-key-secret is not set: every daemon sharing "
                           "the store needs the same 32-hex-digit secret (make one with "
                           "`variantctl secret`)");
        return -1;
    }
    if (!vd_secret_parse(cfg->profile_key_secret, pc->key)) {
        snprintf(err, cap, "profile-key-secret must be exactly 32 hex digits (128 bits; make one "
                           "with `variantctl secret`)");
        return -1;
    }
    vd_consent c;
    if (!vd_consent_parse(vd_str_cstr(cfg->consent_default), &c)) {
        snprintf(err, cap, "consent-default must be none or personalization");
        return -1;
    }
    pc->is_unix = u.is_unix;
    snprintf(pc->host, sizeof pc->host, "%s", u.host);
    pc->port = u.port;
    snprintf(pc->path, sizeof pc->path, "%s", u.path);
    snprintf(pc->user, sizeof pc->user, "%s", u.user);
    snprintf(pc->password, sizeof pc->password, "%s", u.password);
    pc->has_password = u.has_password;
    pc->db = u.db;
    pc->timeout_ms = cfg->profile_timeout;
    pc->ttl_s = cfg->profile_ttl * 86400;
    pc->gap_s = cfg->session_gap * 60;
    pc->queue_max = cfg->profile_queue;
    pc->batch_keys = cfg->profile_batch_keys;
    return 0;
}

void vd_worker_destroy(vd_worker *w)
{
    vd_profile_store_free(w->decider.profiles);
    w->decider.profiles = NULL;
    vd_decider_destroy(&w->decider);
}
