/* alloc.c — bandit weights per ruleset, and their publication. */
#include "learn/alloc.h"

#include <pthread.h>
#include <string.h>

#include "core/alloc.h"

#define SPLIT_BUCKETS 10000u

static void free_alloc(vd_alloc *a)
{
    for (unsigned i = 0; i < a->n; i++) {
        vd_free(a->rules[i].w);
        vd_free(a->rules[i].upto);
        vd_free(a->rules[i].counts);
    }
    vd_free(a->rules);
    if (a->rs)
        vd_ruleset_release(a->rs);
    vd_free(a);
}

vd_alloc *vd_alloc_compute(vd_ruleset *rs, vd_alloc_counts_fn fn, void *arg, const vd_bandit_params *bp,
                           int64_t now)
{
    vd_alloc *a = vd_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    atomic_init(&a->refs, 1);
    vd_ruleset_retain(rs);
    a->rs = rs;
    a->computed_at = now;
    unsigned total = 0;
    uint32_t ns = vd_ruleset_nslots(rs);
    for (uint32_t i = 0; i < ns; i++) {
        const vd_slot *s = vd_ruleset_slot_at(rs, i);
        for (uint32_t r = 0; r < s->nrules; r++)
            total += s->rules[r].bandit && s->rules[r].nsplit > 0;
    }
    if (total && !(a->rules = vd_calloc(total, sizeof *a->rules))) {
        free_alloc(a);
        return NULL;
    }
    for (uint32_t i = 0; i < ns; i++) {
        const vd_slot *s = vd_ruleset_slot_at(rs, i);
        for (uint32_t r = 0; r < s->nrules; r++) {
            const vd_rule *rule = &s->rules[r];
            if (!rule->bandit || rule->nsplit == 0)
                continue;
            vd_alloc_rule *e = &a->rules[a->n++];
            unsigned n = rule->nsplit < VD_LEARN_MAX_ARMS ? rule->nsplit : VD_LEARN_MAX_ARMS;
            e->slot = s;
            e->rule = r;
            e->narms = n;
            e->w = vd_calloc(n, sizeof *e->w);
            e->upto = vd_calloc(n, sizeof *e->upto);
            e->counts = vd_calloc(n, sizeof *e->counts);
            if (!e->w || !e->upto || !e->counts) {
                free_alloc(a);
                return NULL;
            }
            double written[VD_LEARN_MAX_ARMS];
            uint32_t prev = 0;
            vd_str key = vd_ruleset_segment_id(rs, rule->segment);
            for (unsigned k = 0; k < n; k++) {
                written[k] = (double)(rule->split[k].upto - prev);
                prev = rule->split[k].upto;
                if (fn(arg, s->name, key, s->variants[rule->split[k].variant].id, &e->counts[k]) < 0)
                    e->counts[k] = (vd_arm_counts){ 0, 0 };
            }
            e->learnt = vd_bandit_weights(e->counts, written, n, bp, e->w);
            vd_weights_to_bounds(e->w, n, SPLIT_BUCKETS, e->upto);
        }
    }
    return a;
}

void vd_alloc_retain(vd_alloc *a)
{
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void vd_alloc_release(vd_alloc *a)
{
    if (a && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
        free_alloc(a);
}

const vd_alloc_rule *vd_alloc_find(const vd_alloc *a, const vd_ruleset *rs, const vd_slot *slot, uint32_t rule)
{
    if (!a || a->rs != rs)
        return NULL;
    for (unsigned i = 0; i < a->n; i++)
        if (a->rules[i].slot == slot && a->rules[i].rule == rule)
            return &a->rules[i];
    return NULL;
}

/* Publication: as store/live.c, a mutex taken once per publication by each
 * worker (when the generation moved), never per request. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vd_alloc *current;
static _Atomic uint64_t generation;

void vd_alloc_publish(vd_alloc *a)
{
    pthread_mutex_lock(&lock);
    vd_alloc *old = current;
    current = a;
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_mutex_unlock(&lock);
    vd_alloc_release(old);
}

vd_alloc *vd_alloc_acquire(void)
{
    pthread_mutex_lock(&lock);
    vd_alloc *a = current;
    if (a)
        vd_alloc_retain(a);
    pthread_mutex_unlock(&lock);
    return a;
}

uint64_t vd_alloc_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}

void vd_alloc_clear(void)
{
    vd_alloc_publish(NULL);
}
