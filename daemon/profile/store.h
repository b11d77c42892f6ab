/* store.h — the profile store client of one decision worker (contract v2,
 * docs/PROFILES.md).
 *
 * One asynchronous hiredis connection on the worker's own libevent base.
 * Every operation is one EVALSHA of a Lua script on the profile's key
 * (scripts.h): pipelined on the connection, at most one round trip for a
 * decision. A read has our own deadline (profile-timeout) on a libevent
 * timer; when it passes, the waiter is answered with VD_PROFILE_TIMEOUT and
 * the late reply is dropped when it comes. Writes nobody waits for are sent
 * and forgotten. Commands in flight are bounded (profile-queue): past it an
 * operation is refused at once and counted. A lost connection answers every
 * waiter with VD_PROFILE_UNAVAILABLE and reconnects with backoff.
 *
 * Nothing here ever frees a hiredis context inside one of its callbacks.
 *
 * For other modules (daemon/learn/): vd_profile_key names a profile's key,
 * vd_profile_send pipelines any command on the same connection (counted in
 * the same bound), and the hooks let a module append its own work to every
 * decision's visit and every tracked event. */
#ifndef VD_PROFILE_STORE_H
#define VD_PROFILE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "context/visitor.h"
#include "core/str.h"
#include "learn/counters.h"
#include "rules/ruleset.h"

struct event_base;

/* X(field, help): counters of one worker's store (relaxed atomics). */
#define VD_PROFILE_COUNTERS(X)                                                           \
    X(profile_reads,       "profile reads sent (decisions whose slots use visitor.*)")   \
    X(profile_hits,        "profile reads that found a returning visitor's profile")     \
    X(profile_new,         "profiles created by a first visit")                          \
    X(profile_timeouts,    "decisions answered without their profile: profile-timeout") \
    X(profile_unavailable, "decisions answered without their profile: store down or queue full") \
    X(profile_errors,      "profile store errors: error replies and lost connections")   \
    X(profile_overflow,    "profile operations refused: profile-queue full or store down") \
    X(profile_visits,      "visits counted without waiting (slots without visitor.*)")   \
    X(profile_visits_coalesced, "visit writes skipped: the same visitor was written within session-gap/30") \
    X(profile_exposures_coalesced, "exposures not sent: this worker recorded the same one within session-gap/30") \
    X(profile_merges,      "anonymous profiles merged into a known one")                 \
    X(profile_forgets,     "profiles erased by forget")                                  \
    X(profile_flags,       "flags set or cleared")                                       \
    X(profile_shows,       "profiles read by the profile method")                        \
    X(track_events,        "tracked events the store acknowledged")                      \
    X(track_lost,          "track notifications lost: store down, queue full or error")  \
    X(consent_none,        "decisions without consent (nothing read or stored)")         \
    X(consent_personalization, "decisions with consent to personalization")             \
    X(profile_no_id,       "decisions with consent but without vid or uid")

typedef struct vd_profile_stats {
#define VD_PROFILE_FIELD(name, help) _Atomic uint64_t name;
    VD_PROFILE_COUNTERS(VD_PROFILE_FIELD)
#undef VD_PROFILE_FIELD
    _Atomic int64_t inflight;      /* commands sent and not yet answered (gauge) */
    _Atomic int64_t connected;     /* 1 while the connection is up (gauge) */
} vd_profile_stats;

/* Tracked events by type: the first VD_TRACK_TYPES types seen by a worker
 * get their own counter, the rest count under "other". */
#define VD_TRACK_TYPES 32
typedef struct vd_track_types {
    char name[VD_TRACK_TYPES][48];
    _Atomic uint32_t n;                       /* names in use (written by the worker only) */
    _Atomic uint64_t count[VD_TRACK_TYPES + 1];   /* [VD_TRACK_TYPES]: other */
} vd_track_types;

typedef struct vd_profile_config {
    bool is_unix;
    char host[256];
    int port;
    char path[1024];
    char user[256], password[512];
    bool has_password;
    int db;
    bool follow_master;            /* redis-sentinel://: host/port come from profile/master.h */
    uint8_t key[16];               /* profile-key-secret */
    long timeout_ms;               /* profile-timeout */
    long ttl_s;                    /* profile-ttl in seconds */
    long gap_s;                    /* session-gap in seconds */
    long queue_max;                /* profile-queue */
    long batch_keys;               /* profile-batch-keys: profiles per track batch command */
} vd_profile_config;

typedef struct vd_profile_store vd_profile_store;

/* Starts connecting (never blocks on the network beyond name resolution).
 * NULL only on out of memory. */
vd_profile_store *vd_profile_store_new(struct event_base *base, const vd_profile_config *cfg,
                                       vd_profile_stats *stats, vd_track_types *types);
void vd_profile_store_free(vd_profile_store *s);
bool vd_profile_store_up(const vd_profile_store *s);
/* Three quarters of profile-queue in flight: a front end stops reading the
 * connection that fills it (TCP backpressure) instead of losing its work. */
bool vd_profile_store_busy(const vd_profile_store *s);

/* Who a request is about: the profile is the uid's when given, else the vid's. */
typedef struct vd_profile_ids {
    vd_str vid, uid;
} vd_profile_ids;

/* What an operation's callback gets. visitor (decoded with the ruleset the
 * operation was started with) and its strings live until the callback
 * returns. */
typedef struct vd_profile_result {
    vd_profile_status status;      /* OK, TIMEOUT or UNAVAILABLE */
    const vd_visitor *visitor;     /* reads: NULL if none (status not OK) */
    bool found;                    /* reads: a profile existed before this operation */
    bool deleted;                  /* forget */
    const char *error;             /* an error reply's text, else NULL */
} vd_profile_result;

typedef void (*vd_profile_cb)(void *arg, const vd_profile_result *res);
typedef struct vd_profile_op vd_profile_op;

/* Each starter returns the operation (its callback will run exactly once,
 * from the event loop, unless cancelled) or NULL when it was refused at
 * once (store down or queue full: counted; the callback never runs). With
 * cb NULL the operation is fire-and-forget and NULL is returned too. */

/* decide: counts the visit, merges the vid into the uid once when both are
 * given (off the reply path), and reads the profile when `read`. */
vd_profile_op *vd_profile_visit(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                                int64_t ts, bool read, vd_profile_cb cb, void *arg);
/* track: the visit, the event counter (when a score counts the type, or
 * count_type) and every score the event counts for. */
typedef struct vd_profile_event {
    vd_str type;                   /* required */
    vd_str category;               /* may be empty */
    double value;                  /* the event's value (conversions); 0 if not given */
    bool has_value;
} vd_profile_event;
vd_profile_op *vd_profile_track(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                                int64_t ts, const vd_profile_event *ev, bool count_type,
                                vd_profile_cb cb, void *arg);
vd_profile_op *vd_profile_show(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids,
                               vd_profile_cb cb, void *arg);
vd_profile_op *vd_profile_flag(vd_profile_store *s, const vd_profile_ids *ids, vd_str flag,
                               int64_t expires_at, bool clear, vd_profile_cb cb, void *arg);
vd_profile_op *vd_profile_forget(vd_profile_store *s, const vd_profile_ids *ids, vd_profile_cb cb,
                                 void *arg);
/* decide, after the decision: the exposures of its slots with a goal
 * (learn/expose.lua's arithmetic) and, when `visit` (a decision that did
 * not read its profile defers its visit to here), the visit, in one
 * command nobody waits for. An exposure this worker recorded for the same
 * visitor and (slot, rule key, variant) less than session-gap/30 before,
 * still within the attribution window for the profile and with no
 * experiment reset seen since (vd_learn_epochs), is not sent again: the
 * script would find it and count nothing. Without exposures left this is
 * vd_profile_visit (when `visit`). Returns the exposures sent. */
typedef struct vd_profile_exposure {
    vd_str slot, rule, variant;
    bool bandit;
    bool stable;       /* the variant does not depend on the profile (no visitor.*, no
                        * bandit): only such exposures are skipped as above */
} vd_profile_exposure;
unsigned vd_profile_expose(vd_profile_store *s, const vd_ruleset *rs, const vd_profile_ids *ids, int64_t ts,
                           bool visit, const vd_learn_opts *o, const vd_profile_exposure *x, unsigned n);

/* The waiter is gone (its connection closed): the callback will not run. */
void vd_profile_cancel(vd_profile_op *op);

/* ---- for other modules ---------------------------------------------------- */

/* "vdp1:{HASH}" of the profile the ids lead to (uid first); false if no id. */
#define VD_PROFILE_KEY_LEN 48
bool vd_profile_key(const vd_profile_store *s, const vd_profile_ids *ids, char out[VD_PROFILE_KEY_LEN]);
/* Pipelines one command (e.g. an EVALSHA of the module's own script) on the
 * worker's profile connection; raw_cb (may be NULL) gets the raw
 * redisReply (NULL if the connection was lost). -1 when refused (store down
 * or queue full; counted as overflow). */
typedef void (*vd_profile_raw_cb)(void *arg, void *redis_reply);
int vd_profile_send(vd_profile_store *s, int argc, const char **argv, const size_t *argvlen,
                    vd_profile_raw_cb raw_cb, void *arg);
/* Called after a decision's visit (and after a track's event) was queued,
 * with the profile key, so a module pipelines its own work behind it. */
typedef void (*vd_profile_hook)(void *hook_arg, vd_profile_store *s, const vd_ruleset *rs,
                                const char *key, const vd_profile_ids *ids, int64_t ts,
                                const vd_profile_event *ev /* NULL for a decision's visit */);
void vd_profile_set_hooks(vd_profile_store *s, vd_profile_hook on_visit, vd_profile_hook on_track,
                          void *hook_arg);

/* Decodes a profile hash (HGETALL reply elements as field/value pairs) into v,
 * listing every score of rs. Strings point into the pairs. Exposed for tests. */
void vd_profile_decode(const vd_ruleset *rs, const vd_str *fields, const vd_str *values, size_t n,
                       vd_visitor *v);

#endif
