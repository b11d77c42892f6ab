/* decider.h — the one decision function and the per-thread state it needs:
 * evaluation scratch, the User-Agent and GeoIP caches, a reference to the
 * served ruleset and the per-ruleset decision counts. Each decision worker
 * owns one (so the request path takes no lock); vd-microbench and the tests
 * make their own. */
#ifndef VD_DECISION_DECIDER_H
#define VD_DECISION_DECIDER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "context/context.h"
#include "core/clock.h"
#include "core/stats.h"
#include "decision/result.h"
#include "learn/alloc.h"
#include "learn/counters.h"
#include "profile/store.h"
#include "rules/eval.h"
#include "store/live.h"

/* Entries of each worker's referring-host verdict cache (context/source.h):
 * 120 bytes each, so 480 KB a worker; the bench's traffic model has ~1,150
 * referring hosts. */
#define VD_SOURCE_CACHE_ENTRIES 4096

typedef struct vd_decider {
    const vd_env *env;            /* as given; env_now.geo follows GeoIP reloads */
    vd_env env_now;
    vd_geo_db *geo;               /* this decider's reference to env_now.geo, if live */
    uint64_t geo_gen;
    vd_netdb *asn, *anon;         /* its references to env_now.asn/.anon, if live */
    uint64_t net_gen;
    vd_eval *eval;
    vd_answers *answers;          /* whole-answer cache (config answer-cache); NULL = off */
    vd_context_caches caches;     /* User-Agent, GeoIP and referring-host caches (NULL = off) */
    vd_ruleset *rs;               /* this decider's reference; NULL = not ready */
    uint64_t rs_gen;
    vd_alloc *alloc;              /* the bandit's weights (learn/alloc.h); NULL = as written */
    uint64_t alloc_gen;
    vd_stats *stats;              /* where decisions are counted (the worker's) */
    /* Decisions by slot and variant and matches by segment, for the
     * ruleset in rs: sized when the worker picks a ruleset up (never per
     * request) and restarted from zero with each new ruleset. NULL if that
     * allocation failed (then these counts are not kept). */
    _Atomic uint64_t *variant_counts;     /* slot_base[slot] + variant index */
    _Atomic uint64_t *segment_counts;     /* by segment index */
    uint32_t *slot_base;                  /* by slot index (vd_ruleset_slot_at order) */
    /* Held by this worker only while it swaps rs and the arrays above (once
     * per release), and by a stats reader on another thread while it reads
     * them: never on the request path. */
    pthread_mutex_t counts_lock;
    int counts_lock_ready;
    /* Profiles (contract v2): set by the worker; profiles NULL = off. */
    vd_profile_store *profiles;
    vd_profile_stats *pstats;
    vd_track_types *track_types;
    vd_consent consent_default;
    bool visit_deferred;          /* the profile step left this request's visit to its exposures */
    /* Learning (docs/LEARNING.md): exposures go out on the profile connection. */
    vd_learn_opts learn;
} vd_decider;

/* Caches of ua_cache / geo_cache entries (0 = off). -1 on out of memory. */
int vd_decider_init(vd_decider *d, const vd_env *env, size_t ua_cache, size_t geo_cache,
                    vd_stats *stats);
void vd_decider_destroy(vd_decider *d);

/* The ruleset for the next request, picking up a newly published one. */
const vd_ruleset *vd_decider_ruleset(vd_decider *d);

typedef enum vd_decide_status {
    VD_DECIDE_OK = 0,
    VD_DECIDE_NOT_READY,          /* no ruleset loaded yet */
    VD_DECIDE_INTERNAL,           /* out of memory growing the scratch */
} vd_decide_status;

/* Enriches, decides, counts and emits the result of one request, handing
 * the decision back in *out (valid until the next request on this decider)
 * for front ends that need more than the emitted result (the edge port's
 * headers). On an error nothing has been emitted. */
vd_decide_status vd_decider_run(vd_decider *d, const vd_request *req, const vd_emitter *e,
                                vd_decision *out);

/* The profile step of a request: consent and ids checked (and counted),
 * and whether a requested slot's rules reach a visitor.* attribute. When
 * profiles are on, consent is given and there is an id but nothing needs
 * the profile, the visit is counted here, fire-and-forget, and the request
 * is decided at once; when `read` comes back true the caller reads the
 * profile (vd_profile_visit, which counts the visit) and decides with
 * vd_decider_run_with when it arrives. vd_decider_run (the synchronous
 * path) decides such a request without its profile ("unavailable"). */
typedef struct vd_profile_plan {
    vd_profile_status status;     /* OFF, NO_CONSENT, NO_ID, OK or UNAVAILABLE */
    bool read;                    /* status OK and the profile must be read first */
    vd_profile_ids ids;
    int64_t ts;
} vd_profile_plan;
void vd_decider_profile_plan(vd_decider *d, const vd_ruleset *rs, const vd_request *req,
                             vd_profile_plan *plan);
/* vd_decider_run with what the profile step gave (visitor NULL: none). */
vd_decide_status vd_decider_run_with(vd_decider *d, const vd_request *req, const vd_emitter *e,
                                     vd_decision *out, vd_profile_status status,
                                     const vd_visitor *visitor);

/* Adds this decider's per-ruleset counts to variant_counts (nvar entries,
 * slot by slot in vd_ruleset_slot_at order, variants in order) and
 * segment_counts (one per segment of rs), if it serves rs (a decider still
 * on another ruleset has none for it). Safe from another thread: the
 * decider's lock is taken here, never on its request path. */
void vd_decider_add_counts(vd_decider *d, const vd_ruleset *rs, uint64_t *variant_counts,
                           size_t nvar, uint64_t *segment_counts);

#endif
