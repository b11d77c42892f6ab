/* limits.h — hard limits shared by the daemon, the CLI and the tests.
 * Every one is documented in docs/PROTOCOL.md; the configurable ones have a
 * config key and a flag, and these are their defaults and ceilings. */
#ifndef VARIANTD_LIMITS_H
#define VARIANTD_LIMITS_H

#define VD_VERSION "0.1.0"

#define VD_MAX_SLOTS_PER_REQUEST   64      /* ceiling of max-slots */
#define VD_DEFAULT_SLOTS_PER_REQUEST 32
#define VD_MAX_ATTRS_PER_REQUEST   32      /* caller attrs kept; more -> error */
#define VD_DEFAULT_MAX_FRAME       (64 * 1024)
#define VD_MAX_FRAME_CEILING       (16 * 1024 * 1024)
#define VD_DEFAULT_MAX_DEPTH       16
#define VD_DEFAULT_MAX_CONNS       10000
#define VD_DEFAULT_IDLE_TIMEOUT_S  300
#define VD_DEFAULT_MAX_OUTPUT      (4 * 1024 * 1024)  /* unsent reply bytes before we stop reading */
/* Request fields longer than these are treated as not given (the attributes
 * they feed are missing; the request is still answered), so no string
 * operator ever scans more than this much of one value. */
#define VD_MAX_URL_BYTES           (16 * 1024)        /* url and referer */
#define VD_MAX_ATTR_STR_BYTES      (16 * 1024)        /* a string in attrs */

#define VD_MAX_DEF_FILE_BYTES      (16 * 1024 * 1024)
#define VD_MAX_SEGMENTS            100000
#define VD_MAX_RULE_DEPTH          32      /* nesting of all/any/not within one segment */
#define VD_MAX_REF_DEPTH           64      /* chain of segment references */
#define VD_MAX_ID_LEN              128
#define VD_MAX_GOALS               16      /* event types in one slot's "goal" */
#define VD_MAX_WORKERS             256     /* ceiling of workers */

/* Profiles (docs/PROFILES.md). A decoded profile keeps at most this many
 * scores, event counters and flags; the store never writes more (the Lua
 * scripts refuse a new name past the cap, counted as a store error). */
#define VD_MAX_SCORES              256     /* score definitions in a ruleset */
#define VD_MAX_SCORE_POINTS        1e9     /* points of one event type */
#define VD_MAX_PROFILE_SCORES      64
#define VD_MAX_PROFILE_EVENTS      64
#define VD_MAX_PROFILE_FLAGS       32
#define VD_MAX_VISITOR_ID_LEN      256     /* bytes of a vid or uid */
#define VD_MAX_EVENT_FUTURE_S      300     /* a tracked ts further ahead is an error */
#define VD_DEFAULT_PROFILE_TIMEOUT_MS 2
#define VD_DEFAULT_PROFILE_TTL_DAYS   390
#define VD_DEFAULT_SESSION_GAP_MIN    30

#endif
