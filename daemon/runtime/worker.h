/* worker.h — one event loop thread and everything it owns: its event base,
 * its evaluation scratch, its User-Agent cache, its reference to the served
 * ruleset and its counters. Nothing here is shared between workers, so the
 * request path takes no lock. */
#ifndef VD_RUNTIME_WORKER_H
#define VD_RUNTIME_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "decision/result.h"
#include "context/context.h"
#include "rules/eval.h"
#include "core/config.h"
#include "core/stats.h"
#include "store/live.h"

struct event_base;

typedef struct vd_worker {
    unsigned id;
    struct event_base *base;
    const vd_config *cfg;
    const vd_env *env;
    vd_eval *eval;
    vd_context_caches caches;     /* User-Agent and GeoIP caches (NULL = off) */
    vd_ruleset *rs;               /* this worker's reference; NULL = not ready */
    uint64_t rs_gen;
    vd_stats stats;
    /* Decisions by slot and variant and matches by segment, for the
     * ruleset in rs: sized when the worker picks a ruleset up (never per
     * request) and restarted from zero with each new ruleset. NULL if that
     * allocation failed (then these counts are not kept). */
    _Atomic uint64_t *variant_counts;     /* slot_base[slot] + variant index */
    _Atomic uint64_t *segment_counts;     /* by segment index */
    uint32_t *slot_base;                  /* by slot index (vd_ruleset_slot_at order) */
    struct vd_slot_ref *slot_refs;        /* slot pointer -> index, sorted by pointer */
    uint32_t nslot_refs;
    /* Held by this worker only while it swaps rs and the arrays above (once
     * per release), and by a stats reader on another thread while it reads
     * them: never on the request path. */
    pthread_mutex_t counts_lock;
    int counts_lock_ready;
} vd_worker;

int vd_worker_init(vd_worker *w, unsigned id, struct event_base *base, const vd_config *cfg,
                   const vd_env *env);
void vd_worker_destroy(vd_worker *w);

/* The ruleset for the next request, picking up a newly published one. */
const vd_ruleset *vd_worker_ruleset(vd_worker *w);

typedef enum vd_decide_status {
    VD_DECIDE_OK = 0,
    VD_DECIDE_NOT_READY,          /* no ruleset loaded yet */
    VD_DECIDE_INTERNAL,           /* out of memory growing the scratch */
} vd_decide_status;

/* Enriches, decides and emits the result of one request. On an error
 * nothing has been emitted. */
vd_decide_status vd_worker_decide(vd_worker *w, const vd_request *req, const vd_emitter *e);
/* The same, also handing back the decision (valid until the next request
 * on this worker), for front ends that need more than the emitted result
 * (the edge port's headers). */
vd_decide_status vd_worker_decide_into(vd_worker *w, const vd_request *req, const vd_emitter *e,
                                       vd_decision *out);

/* Index (vd_ruleset_slot_at order) of a slot of the worker's ruleset, -1 if
 * not found; the key of variant_counts via slot_base. */
int vd_worker_slot_index(const vd_worker *w, const vd_slot *slot);

/* Monotonic nanoseconds (vDSO clock, no system call). */
uint64_t vd_now_ns(void);

#endif
