/* exposure.h — exposures and conversions on the worker's profile connection
 * (docs/LEARNING.md).
 *
 * After a decision with consent and an id, its answered slots with a goal
 * get one decide command (learn/expose.lua's expose() per slot, inside the
 * profile store's decide script) that also counts the visit when the
 * decision did not read its profile: one command per decision, no extra
 * round trip, nobody waits for it; exposures this worker recorded within
 * the last minute are not sent again (profile/store.h). A tracked event
 * whose type is some slots' goal gets one conversion command for those
 * slots (learn/convert.lua), behind the track's own write (a profile-store
 * hook). */
#ifndef VD_DECISION_EXPOSURE_H
#define VD_DECISION_EXPOSURE_H

#include "decision/decide.h"
#include "learn/counters.h"
#include "profile/store.h"

/* Records the exposures of d for the visitor of ids and, when `visit`
 * (the decision deferred its visit), the visit, in one command
 * (vd_profile_expose). Returns the exposures sent. */
unsigned vd_exposure_record(vd_profile_store *s, const vd_learn_opts *o, const vd_ruleset *rs,
                            const vd_profile_ids *ids, int64_t ts, const vd_decision *d, bool visit);

/* The profile store's on_track hook; hook_arg is the worker's vd_learn_opts. */
void vd_exposure_on_track(void *hook_arg, vd_profile_store *s, const vd_ruleset *rs, const char *key,
                          const vd_profile_ids *ids, int64_t ts, const vd_profile_event *ev);

#endif
