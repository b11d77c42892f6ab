/* counters.h — exposures, conversions and value in Redis (docs/LEARNING.md).
 *
 * Two Lua scripts do every write (learn/expose.lua, learn/convert.lua,
 * embedded in the binary): an exposure is recorded in the visitor's profile
 * hash and counted in the same script, once per visitor and (slot, rule key,
 * variant) per attribution window; a goal event converts the live exposure
 * once. Both are atomic in Redis, so any number of daemons count exactly.
 * This module builds their commands (for the caller to pipeline on whatever
 * connection it writes the profile with) and reads the counters back into a
 * report (rates, Wilson intervals, P(best), uplift over the holdout). */
#ifndef VD_LEARN_COUNTERS_H
#define VD_LEARN_COUNTERS_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/str.h"
#include "learn/stats.h"

/* The script texts (NUL-terminated). */
vd_str vd_learn_expose_script(void);
vd_str vd_learn_convert_script(void);

/* UTC day of a unix time as YYYYMMDD. */
void vd_learn_day(int64_t ts, char out[9]);

typedef struct vd_learn_opts {
    const char *ns;              /* key prefix (redis-namespace) */
    int64_t window_s;            /* attribution-window, in seconds */
    int64_t ttl_s;               /* profile TTL the expose script sets; 0 = leave it */
    const char *stream;          /* event-stream key, NULL or "" = off */
    long stream_maxlen;
    const char *sha_expose;      /* SCRIPT LOAD digests: EVALSHA when set, else EVAL */
    const char *sha_convert;
} vd_learn_opts;

#define VD_LEARN_MAX_GOAL_SLOTS 64   /* slots one convert command covers */
#define VD_LEARN_MAX_ARGS (13 + VD_LEARN_MAX_GOAL_SLOTS)

/* One EVAL/EVALSHA command as argv (pointers into the inputs and into the
 * struct itself: keep the inputs alive until it is sent). */
typedef struct vd_learn_cmd {
    int argc;
    const char *argv[VD_LEARN_MAX_ARGS];
    size_t len[VD_LEARN_MAX_ARGS];
    char num[7][32];
} vd_learn_cmd;

/* order_us: the decision's wall-clock time in microseconds (see expose.lua). */
void vd_learn_expose_cmd(vd_learn_cmd *c, const vd_learn_opts *o, vd_str visitor_key, vd_str slot,
                         vd_str rule, vd_str variant, int64_t ts, bool bandit, int64_t order_us);
/* -1 when nslots is 0 or above VD_LEARN_MAX_GOAL_SLOTS. */
int vd_learn_convert_cmd(vd_learn_cmd *c, const vd_learn_opts *o, vd_str visitor_key, int64_t ts,
                         double value, vd_str event, const vd_str *slots, unsigned nslots);

/* Loads both scripts; fills the 41-byte hex digests. -1 with err on failure. */
int vd_learn_load_scripts(redisContext *rc, char sha_expose[41], char sha_convert[41], char *err, size_t cap);

/* ---- the report ----------------------------------------------------------- */
typedef struct vd_report_variant {
    char *id;
    uint64_t exposures, conversions;
    double value, rate, p_best;
    vd_interval ci95;
} vd_report_variant;

typedef struct vd_report_rule {
    char *key;                   /* segment id, "default" or "holdout" */
    bool bandit;
    unsigned nvariants;
    vd_report_variant *variants;
} vd_report_rule;

typedef struct vd_report_slot {
    char *slot;
    long long epoch;             /* experiment number: --reset starts the next */
    unsigned nrules;
    vd_report_rule *rules;
    uint64_t unattributed[4];    /* conversions not counted: none, outside, converted, reset */
    bool has_holdout;            /* a "holdout" rule key with exposures */
    vd_arm_counts treated, control;
    vd_uplift uplift;
} vd_report_slot;

/* Adds one counter field ("e|RULE|VARIANT", "c|…", "v|…", "u|REASON") of
 * value `val` to s; unknown fields are ignored. -1 on out of memory. */
int vd_report_add_field(vd_report_slot *s, const char *field, const char *val);
void vd_report_mark_bandit(vd_report_slot *s, const char *rule);
/* Sorts rules and variants by name and fills rate, ci95, p_best, uplift. */
void vd_report_compute(vd_report_slot *s);
void vd_report_slot_free(vd_report_slot *s);

/* Reads one slot's current counters. 0, or -1 with err. */
int vd_report_read(redisContext *rc, const char *ns, const char *slot, vd_report_slot *out, char *err, size_t cap);
/* The slots that ever had an exposure (NS:x:slots), sorted; free with vd_report_names_free. */
int vd_report_slots(redisContext *rc, const char *ns, char ***names, size_t *n, char *err, size_t cap);
void vd_report_names_free(char **names, size_t n);
/* Starts a new experiment for the slot: the epoch goes up by one; the old
 * counters stay under the old epoch (archived); exposures from before no
 * longer convert. Returns the new epoch, -1 with err. */
long long vd_report_reset(redisContext *rc, const char *ns, const char *slot, char *err, size_t cap);

/* {"rules": {KEY: {"variants": {ID: {...}}, "allocate"?, "note"?}}, "epoch",
 * "unattributed", "uplift"?} — one slot of the `report` result. */
json_t *vd_report_slot_json(const vd_report_slot *s);
/* A text table (variantctl report). */
void vd_report_print(const vd_report_slot *s, FILE *out);

#endif
