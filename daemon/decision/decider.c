/* decider.c — the one decision function: enrich, decide, count, emit.
 * The decision port, the edge port and vd-microbench all call
 * vd_decider_run; nothing else repeats the sequence. */
#include "decision/decider.h"

#include "decision/exposure.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "decision/decide.h"
#include "rules/index.h"

int vd_decider_init(vd_decider *w, const vd_env *env, size_t ua_cache, size_t geo_cache,
                    vd_stats *stats)
{
    memset(w, 0, sizeof *w);
    w->env = env;
    if (env)
        w->env_now = *env;
    w->stats = stats;
    w->eval = vd_eval_new();
    if (pthread_mutex_init(&w->counts_lock, NULL) == 0)
        w->counts_lock_ready = 1;
    bool want_geo = geo_cache > 0 && env && env->geo;
    if (ua_cache > 0)
        w->caches.ua = vd_device_cache_new(ua_cache);
    if (want_geo)
        w->caches.geo = vd_geo_cache_new(geo_cache);
    w->caches.src = vd_source_cache_new(VD_SOURCE_CACHE_ENTRIES, stats ? &stats->src_cache_hits : NULL,
                                        stats ? &stats->src_cache_misses : NULL);
    if (!w->eval || !w->counts_lock_ready || (ua_cache > 0 && !w->caches.ua) ||
        (want_geo && !w->caches.geo) || !w->caches.src) {
        vd_decider_destroy(w);
        return -1;
    }
    return 0;
}

/* ---- per-ruleset counters ---- */

static void counts_free(vd_decider *w)
{
    vd_free(w->variant_counts);
    vd_free(w->segment_counts);
    vd_free(w->slot_base);
    w->variant_counts = w->segment_counts = NULL;
    w->slot_base = NULL;
}

static void counts_alloc(vd_decider *w, const vd_ruleset *rs)
{
    counts_free(w);
    if (!rs)
        return;
    uint32_t nslots = vd_ruleset_nslots(rs), nseg = vd_ruleset_nsegments(rs);
    size_t nvar = 0;
    w->slot_base = vd_calloc(nslots + 1, sizeof *w->slot_base);
    if (!w->slot_base)
        goto fail;
    for (uint32_t i = 0; i < nslots; i++) {
        const vd_slot *sl = vd_ruleset_slot_at(rs, i);
        w->slot_base[i] = (uint32_t)nvar;
        nvar += sl->nvariants;
    }
    w->variant_counts = vd_calloc(nvar + 1, sizeof *w->variant_counts);
    w->segment_counts = vd_calloc((size_t)nseg + 1, sizeof *w->segment_counts);
    if (!w->variant_counts || !w->segment_counts)
        goto fail;
    return;
fail:
    counts_free(w);
}

void vd_decider_add_counts(vd_decider *w, const vd_ruleset *rs, uint64_t *variant_counts,
                           size_t nvar, uint64_t *segment_counts)
{
    pthread_mutex_lock(&w->counts_lock);
    if (w->rs == rs && w->variant_counts) {
        for (size_t v = 0; v < nvar; v++)
            variant_counts[v] += atomic_load_explicit(&w->variant_counts[v], memory_order_relaxed);
        for (uint32_t g = 0; g < vd_ruleset_nsegments(rs); g++)
            segment_counts[g] += atomic_load_explicit(&w->segment_counts[g], memory_order_relaxed);
    }
    pthread_mutex_unlock(&w->counts_lock);
}

/* Once per decision: the latency bucket, each slot's variant (the
 * decision was made on w->rs, whose slots the counters follow) and the
 * slot totals summed here, then stored once. */
static void count_decision(vd_decider *w, const vd_request *req, const vd_decision *d, uint64_t ns)
{
    static const uint64_t bounds[VD_LATENCY_NBUCKETS] = VD_LATENCY_BOUNDS_NS;
    unsigned b = 0;
    while (b < VD_LATENCY_NBUCKETS && ns > bounds[b])
        b++;
    VD_STAT_INC(w->stats, decide_hist[b]);
    uint64_t decided = 0, no_vid = 0;
    bool vid = req->vid.n > 0;
    /* Held in locals: the counters' stores could alias w's fields. */
    _Atomic uint64_t *vc = w->variant_counts;
    const uint32_t *base = w->slot_base;
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (!c->slot)
            continue;
        decided++;
        /* Without vid every visitor hashes to one bucket: the split's
         * other arms are never shown (the dashboard warns). */
        if (!vid && c->rule >= 0 && c->slot->rules[c->rule].nsplit)
            no_vid++;
        if (vc) {
            _Atomic uint64_t *x = &vc[base[c->index] + (uint32_t)(c->variant - c->slot->variants)];
            atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1, memory_order_relaxed);
        }
    }
    VD_STAT_ADD(w->stats, slots_decided, decided);
    if (decided < d->nslots)
        VD_STAT_ADD(w->stats, slots_unknown, d->nslots - decided);
    if (no_vid)
        VD_STAT_ADD(w->stats, splits_no_vid, no_vid);
    if (!w->variant_counts)
        return;
    for (uint32_t i = 0; i < d->nmatched; i++)
        VD_STAT_INC(w, segment_counts[d->matched[i]]);
}

void vd_decider_destroy(vd_decider *w)
{
    counts_free(w);
    if (w->counts_lock_ready)
        pthread_mutex_destroy(&w->counts_lock);
    w->counts_lock_ready = 0;
    if (w->rs)
        vd_ruleset_release(w->rs);
    w->rs = NULL;
    vd_alloc_release(w->alloc);
    w->alloc = NULL;
    vd_geo_release(w->geo);
    w->geo = NULL;
    vd_netdb_release(w->asn);
    vd_netdb_release(w->anon);
    w->asn = w->anon = NULL;
    vd_eval_free(w->eval);
    w->eval = NULL;
    vd_answers_free(w->answers);
    w->answers = NULL;
    vd_device_cache_free(w->caches.ua);
    vd_geo_cache_free(w->caches.geo);
    vd_source_cache_free(w->caches.src);
    w->caches.ua = NULL;
    w->caches.geo = NULL;
    w->caches.src = NULL;
}

/* A reloaded GeoIP database: like the ruleset, picked up between requests
 * (one atomic load per request), the old reference dropped after. */
static void pick_up_geo(vd_decider *w)
{
    uint64_t gen = vd_live_geo_generation();
    if (gen == w->geo_gen)
        return;
    vd_geo_db *db = vd_live_geo_acquire();
    vd_geo_db *old = w->geo;
    w->geo = db;
    w->env_now.geo = db;
    w->geo_gen = gen;
    vd_geo_release(old);
}

/* Reloaded network databases, the same way. */
static void pick_up_net(vd_decider *w)
{
    uint64_t gen = vd_live_net_generation();
    if (gen == w->net_gen)
        return;
    vd_netdb *asn, *anon, *old_asn = w->asn, *old_anon = w->anon;
    vd_live_net_acquire(&asn, &anon);
    w->asn = asn;
    w->anon = anon;
    w->env_now.asn = asn;
    w->env_now.anon = anon;
    w->net_gen = gen;
    vd_netdb_release(old_asn);
    vd_netdb_release(old_anon);
}

const vd_ruleset *vd_decider_ruleset(vd_decider *w)
{
    pick_up_geo(w);
    pick_up_net(w);
    uint64_t gen = vd_live_generation();
    if (gen != w->rs_gen) {
        /* Between requests: the old reference goes, the new one is held
         * until the next publication. */
        vd_ruleset *rs = vd_live_acquire();
        pthread_mutex_lock(&w->counts_lock);
        vd_ruleset *old = w->rs;
        w->rs = rs;
        w->rs_gen = gen;
        counts_alloc(w, rs);
        pthread_mutex_unlock(&w->counts_lock);
        if (old)
            vd_ruleset_release(old);
    }
    return w->rs;
}

void vd_decider_profile_plan(vd_decider *w, const vd_ruleset *rs, const vd_request *req,
                             vd_profile_plan *p)
{
    p->read = false;
    p->ids.vid = req->vid;
    p->ids.uid = req->uid;
    p->ts = req->has_ts ? req->ts : (int64_t)time(NULL);
    if (!w->profiles) {
        p->status = VD_PROFILE_OFF;
        return;
    }
    vd_consent c = w->consent_default;
    if (req->consent.n)
        vd_consent_parse(req->consent, &c);   /* validated by the request reader */
    /* An id too long to key a profile counts as none. */
    if (p->ids.vid.n > VD_MAX_VISITOR_ID_LEN)
        p->ids.vid = VD_STR_NULL;
    if (p->ids.uid.n > VD_MAX_VISITOR_ID_LEN)
        p->ids.uid = VD_STR_NULL;
    p->status = vd_profile_gate(true, c, p->ids.vid.n || p->ids.uid.n);
    if (p->status == VD_PROFILE_NO_CONSENT) {
        VD_STAT_INC(w->pstats, consent_none);
        return;
    }
    VD_STAT_INC(w->pstats, consent_personalization);
    if (p->status == VD_PROFILE_NO_ID) {
        VD_STAT_INC(w->pstats, profile_no_id);
        return;
    }
    bool goals = false;
    for (unsigned i = 0; i < req->nslots && !p->read; i++) {
        const vd_slot *s = vd_ruleset_find_slot(rs, req->slots[i]);
        p->read = s && s->uses_profile;
        goals = goals || (s && s->ngoals);
    }
    if (p->read)
        return;               /* the caller reads it (and so counts the visit) */
    if (!vd_profile_store_up(w->profiles))
        p->status = VD_PROFILE_UNAVAILABLE;
    if (goals && p->status == VD_PROFILE_OK) {
        /* Counted with the exposures, after the decision: one command. */
        w->visit_deferred = true;
        return;
    }
    vd_profile_visit(w->profiles, rs, &p->ids, p->ts, false, NULL, NULL);
}

vd_decide_status vd_decider_run(vd_decider *w, const vd_request *req, const vd_emitter *e,
                                vd_decision *d)
{
    vd_profile_status st = VD_PROFILE_OFF;
    if (w->profiles) {
        const vd_ruleset *rs = vd_decider_ruleset(w);
        if (!rs)
            return VD_DECIDE_NOT_READY;
        vd_profile_plan plan;
        vd_decider_profile_plan(w, rs, req, &plan);
        st = plan.status;
        if (plan.read) {
            /* This caller cannot wait: count the visit, decide without it. */
            vd_profile_visit(w->profiles, rs, &plan.ids, plan.ts, false, NULL, NULL);
            VD_STAT_INC(w->pstats, profile_unavailable);
            st = VD_PROFILE_UNAVAILABLE;
        }
    }
    return vd_decider_run_with(w, req, e, d, st, NULL);
}

vd_decide_status vd_decider_run_with(vd_decider *w, const vd_request *req, const vd_emitter *e,
                                     vd_decision *d, vd_profile_status status,
                                     const vd_visitor *visitor)
{
    bool visit = w->visit_deferred;   /* set by vd_decider_profile_plan for this request */
    w->visit_deferred = false;
    const vd_ruleset *rs = vd_decider_ruleset(w);
    if (!rs)
        return VD_DECIDE_NOT_READY;
    uint64_t t0 = vd_now_ns();
    vd_context ctx;
    vd_context_init(&ctx, req, w->env ? &w->env_now : NULL, &w->caches, (int64_t)time(NULL));
    if (visitor && status == VD_PROFILE_OK)
        vd_context_set_visitor(&ctx, visitor);
    uint64_t agen = vd_alloc_generation();
    if (agen != w->alloc_gen) {
        /* New bandit weights: swapped between requests, like a ruleset. */
        vd_alloc *old = w->alloc;
        w->alloc = vd_alloc_acquire();
        w->alloc_gen = agen;
        vd_alloc_release(old);
    }
    if (vd_decide_cached(rs, w->alloc, w->eval, w->answers, &ctx, d) != 0)
        return VD_DECIDE_INTERNAL;
    d->profile = (uint8_t)status;
    /* Consent and an id: the goal slots' exposures (and the visit, when the
     * profile step deferred it), one command. */
    if (w->profiles && (status == VD_PROFILE_OK || status == VD_PROFILE_TIMEOUT || visit)) {
        vd_profile_ids ids = { req->vid, req->uid };
        if (ids.vid.n > VD_MAX_VISITOR_ID_LEN)
            ids.vid = VD_STR_NULL;
        if (ids.uid.n > VD_MAX_VISITOR_ID_LEN)
            ids.uid = VD_STR_NULL;
        int64_t ts = req->has_ts ? req->ts : (int64_t)time(NULL);
        if (status == VD_PROFILE_OK || status == VD_PROFILE_TIMEOUT)
            vd_exposure_record(w->profiles, &w->learn, rs, &ids, ts, d, visit);
        else
            vd_profile_visit(w->profiles, rs, &ids, ts, false, NULL, NULL);
    }
    uint64_t ns = vd_now_ns() - t0;
    VD_STAT_ADD(w->stats, decide_ns_total, ns);
    count_decision(w, req, d, ns);
    vd_result_emit(e, rs, d, &ctx, w->eval, req->explain);
    return VD_DECIDE_OK;
}
