/* snapshot.c — publication of the learner's reading (see snapshot.h). */
#include "learn/snapshot.h"

#include <pthread.h>

#include "core/alloc.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vd_learn_snapshot *current;

void vd_learn_snapshot_release(vd_learn_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(s->report);
        vd_free(s->stats_json);
        vd_free(s);
    }
}

void vd_learn_snapshot_publish(json_t *report, char *stats_json, int64_t as_of, int available)
{
    vd_learn_snapshot *s = vd_calloc(1, sizeof *s);
    if (!s) {
        json_decref(report);
        vd_free(stats_json);
        return;
    }
    atomic_init(&s->refs, 1);
    s->report = report;
    s->stats_json = stats_json;
    s->as_of = as_of;
    s->available = available;
    pthread_mutex_lock(&lock);
    vd_learn_snapshot *old = current;
    current = s;
    pthread_mutex_unlock(&lock);
    vd_learn_snapshot_release(old);
}

vd_learn_snapshot *vd_learn_snapshot_acquire(void)
{
    pthread_mutex_lock(&lock);
    vd_learn_snapshot *s = current;
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
    return s;
}

void vd_learn_snapshot_clear(void)
{
    pthread_mutex_lock(&lock);
    vd_learn_snapshot *old = current;
    current = NULL;
    pthread_mutex_unlock(&lock);
    vd_learn_snapshot_release(old);
}

char *vd_learn_json_text(const json_t *j)
{
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    char *b = n ? vd_malloc(n + 1) : NULL;
    if (b) {
        json_dumpb(j, b, n, JSON_COMPACT);
        b[n] = 0;
    }
    return b;
}

static _Atomic uint64_t epochs_digest;

void vd_learn_epochs_publish(uint64_t digest)
{
    atomic_store_explicit(&epochs_digest, digest, memory_order_release);
}

uint64_t vd_learn_epochs(void)
{
    return atomic_load_explicit(&epochs_digest, memory_order_acquire);
}
