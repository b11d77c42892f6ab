/* snapshot.h — the learner's latest reading, for the request threads.
 *
 * The learner (runtime/learner.c) reads the counters from Redis off the
 * request path and publishes an immutable snapshot: the `report` result and
 * the experiments section of /stats (report, bandit weights and their
 * history). The `report` method and the stats port answer from it, so they
 * never wait for Redis; `as_of` says how fresh it is. */
#ifndef VD_LEARN_SNAPSHOT_H
#define VD_LEARN_SNAPSHOT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct vd_learn_snapshot {
    _Atomic unsigned refs;
    json_t *report;               /* {"slots": {SLOT: {...}}}: read-only once published */
    char *stats_json;             /* the /stats "experiments" value, encoded */
    int64_t as_of;                /* unix seconds of the counters' reading, 0 = never */
    int available;                /* the counters store answered the last reading */
} vd_learn_snapshot;

/* Takes ownership of report and stats_json. */
/* Compact JSON text of j in a vd_malloc'd, NUL-terminated buffer (NULL on
 * failure): how the report and the stats are kept and served. */
char *vd_learn_json_text(const json_t *j);

void vd_learn_snapshot_publish(json_t *report, char *stats_json, int64_t as_of, int available);
vd_learn_snapshot *vd_learn_snapshot_acquire(void);    /* NULL before the first */
void vd_learn_snapshot_release(vd_learn_snapshot *s);
void vd_learn_snapshot_clear(void);

/* A digest of every goal slot's experiment number (epoch) as the learner
 * last read them: it changes when `variantctl report --reset` starts a new
 * experiment, so caches of "already exposed" (profile/store.c) drop what
 * they knew. 0 before the first reading. */
void vd_learn_epochs_publish(uint64_t digest);
uint64_t vd_learn_epochs(void);

#endif
