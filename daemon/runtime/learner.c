/* learner.c — reads the learning counters, publishes the report snapshot and
 * the bandit weights (see learner.h). One thread, one blocking Redis link. */
#include "runtime/learner.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"
#include "learn/alloc.h"
#include "learn/counters.h"
#include "learn/snapshot.h"
#include "store/live.h"
#include "store/redis_url.h"
#include "store/release.h"
#include "variantd/limits.h"

#define HISTORY_POINTS 240        /* per bandit rule: 4 hours at the default interval */

struct vd_learner {
    vd_learner_options o;
    char *url, *ns;
    vd_redis_url u;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    redisContext *rc;
    json_t *history;              /* {SLOT: {RULE: [{"t", "weights": {VARIANT: w}}]}} */
};

typedef struct tick_read {
    vd_report_slot *slots;
    unsigned n;
} tick_read;

static int counts_of(void *arg, vd_str slot, vd_str rule, vd_str variant, vd_arm_counts *out)
{
    const tick_read *t = arg;
    *out = (vd_arm_counts){ 0, 0 };
    for (unsigned i = 0; i < t->n; i++) {
        const vd_report_slot *s = &t->slots[i];
        if (!vd_str_eq(vd_str_cstr(s->slot), slot))
            continue;
        for (unsigned r = 0; r < s->nrules; r++) {
            if (!vd_str_eq(vd_str_cstr(s->rules[r].key), rule))
                continue;
            for (unsigned k = 0; k < s->rules[r].nvariants; k++)
                if (vd_str_eq(vd_str_cstr(s->rules[r].variants[k].id), variant)) {
                    out->exposures = s->rules[r].variants[k].exposures;
                    out->conversions = s->rules[r].variants[k].conversions;
                    return 0;
                }
        }
    }
    return 0;
}

static json_t *str_json(vd_str s)
{
    return json_stringn(s.p, s.n);
}

/* The weights in force for every bandit rule of rs (learnt, or as written). */
static json_t *bandit_json(const vd_ruleset *rs, const vd_alloc *a)
{
    json_t *arr = json_array();
    uint32_t ns = vd_ruleset_nslots(rs);
    for (uint32_t i = 0; i < ns; i++) {
        const vd_slot *s = vd_ruleset_slot_at(rs, i);
        for (uint32_t r = 0; r < s->nrules; r++) {
            const vd_rule *rule = &s->rules[r];
            if (!rule->bandit || !rule->nsplit)
                continue;
            const vd_alloc_rule *ar = vd_alloc_find(a, rs, s, r);
            json_t *arms = json_array();
            uint32_t prev = 0;
            for (uint32_t k = 0; k < rule->nsplit; k++) {
                double w = ar && k < ar->narms ? ar->w[k] : (double)(rule->split[k].upto - prev) / 10000.0;
                prev = rule->split[k].upto;
                json_t *arm = json_object();
                json_object_set_new(arm, "variant", str_json(s->variants[rule->split[k].variant].id));
                json_object_set_new(arm, "weight", json_real(w));
                if (ar && k < ar->narms) {
                    json_object_set_new(arm, "exposures", json_integer((json_int_t)ar->counts[k].exposures));
                    json_object_set_new(arm, "conversions", json_integer((json_int_t)ar->counts[k].conversions));
                }
                json_array_append_new(arms, arm);
            }
            json_t *e = json_object();
            json_object_set_new(e, "slot", str_json(s->name));
            json_object_set_new(e, "rule", str_json(vd_ruleset_segment_id(rs, rule->segment)));
            json_object_set_new(e, "learnt", json_boolean(ar && ar->learnt));
            json_object_set_new(e, "computed_at", ar ? json_integer(a->computed_at) : json_null());
            json_object_set_new(e, "arms", arms);
            json_array_append_new(arr, e);
        }
    }
    return arr;
}

static void record_history(vd_learner *l, json_t *bandit, int64_t now)
{
    size_t i;
    json_t *e;
    json_array_foreach(bandit, i, e) {
        const char *slot = json_string_value(json_object_get(e, "slot"));
        const char *rule = json_string_value(json_object_get(e, "rule"));
        json_t *bys = json_object_get(l->history, slot);
        if (!bys) {
            bys = json_object();
            json_object_set_new(l->history, slot, bys);
        }
        json_t *pts = json_object_get(bys, rule);
        if (!pts) {
            pts = json_array();
            json_object_set_new(bys, rule, pts);
        }
        json_t *w = json_object();
        size_t k;
        json_t *arm;
        json_array_foreach(json_object_get(e, "arms"), k, arm)
            json_object_set(w, json_string_value(json_object_get(arm, "variant")), json_object_get(arm, "weight"));
        json_array_append_new(pts, json_pack("{s:I,s:o,s:b}", "t", (json_int_t)now, "weights", w, "learnt",
                                             json_is_true(json_object_get(e, "learnt"))));
        while (json_array_size(pts) > HISTORY_POINTS)
            json_array_remove(pts, 0);
    }
}

static bool connect_store(vd_learner *l)
{
    if (l->rc)
        return true;
    char err[256];
    l->rc = vd_release_connect(&l->u, l->o.timeout_ms, err, sizeof err);
    if (!l->rc) {
        vd_debug("learner: %s", err);
        return false;
    }
    return true;
}

static void drop_store(vd_learner *l, const char *why)
{
    vd_warn("learner: counters store: %s (the last weights keep serving)", why);
    if (l->rc)
        vd_release_close(l->rc);
    l->rc = NULL;
}

/* One reading: returns true when the counters store answered. */
static bool tick(vd_learner *l, bool compute, const vd_bandit_params *bp, int64_t now)
{
    vd_ruleset *rs = vd_live_acquire();
    if (!rs)
        return true;
    tick_read t = { NULL, 0 };
    uint32_t nslots = vd_ruleset_nslots(rs);
    bool ok = connect_store(l);
    if (ok) {
        t.slots = vd_calloc(nslots ? nslots : 1, sizeof *t.slots);
        ok = t.slots != NULL;
    }
    char err[256] = "";
    for (uint32_t i = 0; ok && i < nslots; i++) {
        const vd_slot *s = vd_ruleset_slot_at(rs, i);
        if (!s->ngoals)
            continue;
        char name[VD_MAX_ID_LEN + 1];
        vd_str_copy(name, sizeof name, s->name);
        if (vd_report_read(l->rc, l->ns, name, &t.slots[t.n], err, sizeof err) < 0) {
            vd_report_slot_free(&t.slots[t.n]);
            ok = false;
            drop_store(l, err);
            break;
        }
        /* The served definitions know which rules allocate by bandit. */
        for (uint32_t r = 0; r < s->nrules; r++)
            if (s->rules[r].bandit) {
                char key[VD_MAX_ID_LEN + 1];
                vd_str_copy(key, sizeof key, vd_ruleset_segment_id(rs, s->rules[r].segment));
                vd_report_mark_bandit(&t.slots[t.n], key);
            }
        t.n++;
    }
    if (ok) {
        /* Experiment numbers: a reset drops the workers' "already exposed". */
        uint64_t d = 1;
        for (unsigned i = 0; i < t.n; i++)
            d = d * 1000003u ^ (vd_hash64(t.slots[i].slot, strlen(t.slots[i].slot)) + (uint64_t)t.slots[i].epoch);
        vd_learn_epochs_publish(d);
    }
    vd_alloc *cur = vd_alloc_acquire();
    if (ok && compute) {
        vd_alloc *a = vd_alloc_compute(rs, counts_of, &t, bp, now);
        if (a) {
            vd_alloc_retain(a);
            vd_alloc_publish(a);
            vd_alloc_release(cur);
            cur = a;
        }
    }
    json_t *bandit = bandit_json(rs, cur);
    if (ok && compute)
        record_history(l, bandit, now);
    vd_alloc_release(cur);
    vd_learn_snapshot *prev = vd_learn_snapshot_acquire();
    json_t *report;
    if (ok) {
        report = json_object();
        json_t *slots = json_object();
        json_object_set_new(report, "slots", slots);
        for (unsigned i = 0; i < t.n; i++)
            json_object_set_new(slots, t.slots[i].slot, vd_report_slot_json(&t.slots[i]));
    } else {
        /* Keep the last reading; say it is old. */
        report = prev && prev->report ? json_deep_copy(prev->report) : json_pack("{s:{}}", "slots");
    }
    int64_t as_of = ok ? now : prev ? prev->as_of : 0;
    vd_learn_snapshot_release(prev);
    json_t *stats = json_pack("{s:b,s:I,s:I,s:O,s:o,s:O}", "available", ok, "as_of", (json_int_t)as_of,
                              "interval", (json_int_t)l->o.interval_s, "report", report, "bandit", bandit,
                              "history", l->history);
    char *owned = vd_learn_json_text(stats);
    json_decref(stats);
    vd_learn_snapshot_publish(report, owned, as_of, ok);
    for (unsigned i = 0; i < t.n; i++)
        vd_report_slot_free(&t.slots[i]);
    vd_free(t.slots);
    vd_ruleset_release(rs);
    return ok;
}

static void *run(void *arg)
{
    vd_learner *l = arg;
    vd_bandit_params bp = { .floor = l->o.floor, .min_exposures = (uint64_t)l->o.min_exposures,
                            .seed = VD_LEARN_SEED, .draws = VD_LEARN_DRAWS };
    int64_t next = 0;
    uint64_t rs_gen = 0;
    bool was_ok = true;
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        pthread_mutex_unlock(&l->lock);
        int64_t now = (int64_t)time(NULL);
        uint64_t gen = vd_live_generation();
        bool compute = now >= next || gen != rs_gen;
        bool ok = tick(l, compute, &bp, now);
        if (ok && compute) {
            /* The next multiple of the interval on the wall clock: every
             * daemon computes at the same instants. */
            next = (now / l->o.interval_s + 1) * l->o.interval_s;
            rs_gen = gen;
        }
        if (ok && !was_ok)
            vd_info("learner: counters store answers again");
        was_ok = ok;
        pthread_mutex_lock(&l->lock);
        if (l->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        /* Wake at the next whole second (the report refresh); an interval
         * boundary is always a whole second. */
        ts.tv_sec += 1;
        ts.tv_nsec = 0;
        while (!l->stop && pthread_cond_timedwait(&l->cond, &l->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

vd_learner *vd_learner_start(const vd_learner_options *o, char *err, size_t cap)
{
    vd_learner *l = vd_calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    l->o = *o;
    l->url = vd_strdup(o->url);
    l->ns = vd_strdup(o->ns);
    l->history = json_object();
    if (!l->url || !l->ns || !l->history) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    l->o.url = l->url;
    l->o.ns = l->ns;
    if (l->o.interval_s < 1)
        l->o.interval_s = 1;
    char uerr[256];
    if (vd_redis_url_parse(l->url, &l->u, uerr, sizeof uerr) != 0) {
        snprintf(err, cap, "learning counters store: %s", uerr);
        goto fail;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        snprintf(err, cap, "cannot start the learner thread");
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->cond);
        goto fail;
    }
    pthread_setname_np(l->thread, "vd-learner");
    return l;
fail:
    json_decref(l->history);
    vd_free(l->url);
    vd_free(l->ns);
    vd_free(l);
    return NULL;
}

void vd_learner_stop(vd_learner *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    if (l->rc)
        vd_release_close(l->rc);
    json_decref(l->history);
    vd_free(l->url);
    vd_free(l->ns);
    vd_free(l);
    vd_alloc_clear();
    vd_learn_snapshot_clear();
}
