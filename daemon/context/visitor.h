/* visitor.h — the visitor's profile as the rules see it, and the pure
 * arithmetic behind it (contract v2, docs/PROFILES.md).
 *
 * Nothing here does I/O: the profile store (daemon/profile/) reads and writes
 * profiles in Redis with Lua scripts that apply the very same arithmetic, and
 * hands a decoded vd_visitor to the context; the context answers the
 * visitor.* attributes from it at the request's ts.
 *
 * Scores. A score is kept as (value, t): its exact value at instant t. An
 * event of p points at t_i is added as
 *   t_i >= t: value = value * 2^(-(t_i - t)/H) + p,  t = t_i
 *   t_i <  t: value = value + p * 2^(-(t - t_i)/H)   (t unchanged)
 * so value at any instant >= t is Σ p_i 2^(-(t - t_i)/H) whatever order the
 * events came in (H = half_life_days × 86400). Read at an instant before t
 * (a request with an older ts), the value at t is returned: the profile does
 * not keep the history needed to take events back out.
 *
 * The peak is the highest value seen just after an event was applied, kept
 * as (peak, peak_t). In order, that is max(peak, value). An event older than
 * peak_t also raises the peak by its share at peak_t (the value the score had
 * at that moment, the late event included), then is compared with the new
 * value: exact for in-order streams, a close lower bound otherwise. */
#ifndef VD_CONTEXT_VISITOR_H
#define VD_CONTEXT_VISITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "variantd/limits.h"

/* ---- scores --------------------------------------------------------------- */

typedef struct vd_score_state {
    double value;             /* exact value at t */
    int64_t t;                /* unix seconds; 0 with value 0: never scored */
    double peak;
    int64_t peak_t;
} vd_score_state;

/* v × 2^(−dt / half_life_s); dt <= 0 returns v. */
double vd_decay(double v, double dt_s, double half_life_s);
void vd_score_add(vd_score_state *s, double points, int64_t t, double half_life_s);
/* The value at instant t (clamped to s->t when earlier, see above). */
double vd_score_value_at(const vd_score_state *s, int64_t t, double half_life_s);
/* 1 − value/peak in 0..1; false (missing) while the peak is 0. */
bool vd_score_decline(const vd_score_state *s, int64_t t, double half_life_s, double *out);
/* dst += src: both brought to the later of their times and added; the peak
 * is the larger of the two peaks and the merged value. */
void vd_score_merge(vd_score_state *dst, const vd_score_state *src, double half_life_s);

/* ---- visits --------------------------------------------------------------- */

typedef struct vd_visit_state {
    uint32_t visits;          /* 0: no visit yet */
    int64_t first_seen;       /* first activity */
    int64_t last_seen;        /* latest activity */
    int64_t visit_start;      /* start of the current (latest) visit */
    int64_t prev_end;         /* end of the visit before it; 0 during the first */
} vd_visit_state;

/* One decide or track at ts. A visit starts when ts is more than gap_s after
 * last_seen (or with the first activity). Activity older than last_seen never
 * starts a visit; it may move first_seen back. Returns true if a visit began. */
bool vd_visit_touch(vd_visit_state *v, int64_t ts, int64_t gap_s);
/* Whole days between the end of the previous visit and the start of this
 * one; false during the first visit. */
bool vd_visit_days_since_last(const vd_visit_state *v, int64_t *days);
/* The one-time merge of an anonymous profile into a known one: visits
 * added, earliest first_seen, latest last_seen; the current visit is the
 * later of the two (its start and previous end come with it). */
void vd_visit_merge(vd_visit_state *dst, const vd_visit_state *src);

/* ---- consent and identity -------------------------------------------------- */

typedef enum vd_consent {
    VD_CONSENT_NONE = 0,
    VD_CONSENT_PERSONALIZATION,
} vd_consent;

/* "none" / "personalization" (exact, lower case); false if neither. */
bool vd_consent_parse(vd_str s, vd_consent *out);
const char *vd_consent_name(vd_consent c);

/* The decide result's `profile` field. VD_PROFILE_OFF: profiles are not
 * configured (the field is absent). */
typedef enum vd_profile_status {
    VD_PROFILE_OFF = 0,
    VD_PROFILE_OK,
    VD_PROFILE_NO_CONSENT,
    VD_PROFILE_NO_ID,
    VD_PROFILE_TIMEOUT,
    VD_PROFILE_UNAVAILABLE,
} vd_profile_status;

const char *vd_profile_status_name(vd_profile_status s);   /* NULL for OFF */

/* Whether a request may touch its visitor's profile: OK (go ahead),
 * NO_CONSENT, NO_ID or OFF. Consent is checked first: without it nothing is
 * said about ids either. */
vd_profile_status vd_profile_gate(bool profiles_on, vd_consent consent, bool has_id);

/* The profile's key id: SipHash-2-4-128 keyed by the 128-bit secret over
 * "v:" + vid or "u:" + uid, as 32 lower-case hex digits (+ NUL). */
#define VD_ID_HASH_HEX 33
void vd_id_hash(const uint8_t key[16], bool known, vd_str id, char out[VD_ID_HASH_HEX]);
/* The secret as written in settings: exactly 32 hex digits. */
bool vd_secret_parse(const char *hex, uint8_t key[16]);

/* ---- the decoded profile ---------------------------------------------------- */

typedef struct vd_visitor_score {
    vd_str id;
    double half_life_s;
    vd_score_state st;
} vd_visitor_score;

typedef struct vd_visitor_count {
    vd_str name;
    double n;
} vd_visitor_count;

typedef struct vd_visitor_flag {
    vd_str name;
    int64_t expires;          /* unix seconds; 0 = until cleared */
} vd_visitor_flag;

/* Strings point into the buffer the store decoded from; scores listed are
 * every score of the ruleset (zero state where the profile has none). */
typedef struct vd_visitor {
    bool known;
    vd_visit_state visit;
    uint32_t nscores, nevents, nflags;
    vd_visitor_score scores[VD_MAX_SCORES];
    vd_visitor_count events[VD_MAX_PROFILE_EVENTS];
    vd_visitor_flag flags[VD_MAX_PROFILE_FLAGS];
} vd_visitor;

#endif
