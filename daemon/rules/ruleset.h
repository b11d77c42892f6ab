/* ruleset.h — the compiled, immutable ruleset: segments and content map,
 * as the decision step and the stores see it (rules/build.h makes one).
 *
 * A ruleset never changes after compile; workers share it and hold a
 * reference (retain/release are atomic; the last release frees it). */
#ifndef VD_RULES_RULESET_H
#define VD_RULES_RULESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "core/str.h"

typedef struct vd_ruleset vd_ruleset;

typedef struct vd_variant {
    vd_str id;
    const uint8_t *payload_mp;    /* the payload pre-encoded as MessagePack (nil if none) */
    size_t payload_mp_len;
    const char *payload_json;     /* and as compact JSON ("null" if none) */
    size_t payload_json_len;
    /* The slot's reply entry up to its segment id, pre-encoded once per
     * ruleset and copied into replies (decision/result.c writes
     * NAME: {variant: ID, payload: P, segment: SEG}): as MessagePack, the
     * key, a 3-entry map header, "variant", the id, "payload", the payload
     * and "segment"; as compact JSON, "NAME":{"variant":"ID","payload":P,"segment":
     * NULL (and 0) if it could not be built: the reply is then written
     * item by item, with the same bytes. The MessagePack entry is followed
     * by one more byte, not counted in entry_mp_len: 0xc0 (nil), so the
     * whole entry of a slot answered by this variant as its default
     * (segment nil) is the entry_mp_len + 1 bytes at entry_mp. */
    const uint8_t *entry_mp;
    size_t entry_mp_len;
    const char *entry_json;
    size_t entry_json_len;
} vd_variant;

typedef struct vd_split_arm {
    uint32_t variant;             /* index into the slot's variants */
    uint32_t upto;                /* cumulative weight bound, exclusive, of 10000 */
} vd_split_arm;

typedef struct vd_rule {
    uint32_t segment;             /* segment index */
    uint32_t variant;             /* chosen variant when nsplit == 0 */
    uint32_t nsplit;              /* > 0: weighted split, sticky on vid + salt */
    const vd_split_arm *split;
    vd_str salt;
    bool bandit;                  /* "allocate": "bandit": weights learnt from counters */
    /* A rule without split: its whole MessagePack reply entry, NAME:
     * {variant: ID, payload: P, segment: SEG}, pre-encoded once per
     * ruleset (the variant's entry and this rule's segment id); NULL (and
     * 0) when the variant has none or the entry is longer than
     * VD_RULE_ENTRY_MAX (a large payload is not copied per rule): the
     * variant's entry and the segment id are then copied. MessagePack
     * only: the decision port answers pages, and each entry costs memory
     * per rule (~80 bytes a rule of the bench sets: +2.4 MB for 30,000
     * rules); JSON replies copy the variant's entry. */
    const uint8_t *entry_mp;
    size_t entry_mp_len;
} vd_rule;

#define VD_RULE_ENTRY_MAX 256

typedef struct vd_slot {
    vd_str name;
    uint32_t nrules;
    const vd_rule *rules;
    uint32_t default_variant;     /* index into variants */
    uint32_t nvariants;
    const vd_variant *variants;
    uint32_t ngoals;              /* "goal": event types that convert this slot */
    const vd_str *goals;
    uint32_t holdout;             /* "holdout" percent x 100: buckets 0..9999 below it get the default */
    bool uses_profile;            /* a rule can reach a visitor.* attribute: fetch the profile */
} vd_slot;

/* A score definition (a scores/ document). */
typedef struct vd_score_event {
    vd_str type;
    double points;                /* > 0 */
} vd_score_event;

typedef struct vd_score_def {
    vd_str id;
    double half_life_s;           /* half_life_days x 86400 */
    uint32_t nevents;
    const vd_score_event *events;
    uint32_t ncategories;         /* 0: every category counts */
    const vd_str *categories;
} vd_score_def;

void vd_ruleset_retain(vd_ruleset *rs);
void vd_ruleset_release(vd_ruleset *rs);

const char *vd_ruleset_version(const vd_ruleset *rs);
uint32_t vd_ruleset_nsegments(const vd_ruleset *rs);
vd_str vd_ruleset_segment_id(const vd_ruleset *rs, uint32_t seg);
int32_t vd_ruleset_find_segment(const vd_ruleset *rs, vd_str id);     /* -1 if none */
uint32_t vd_ruleset_nslots(const vd_ruleset *rs);
const vd_slot *vd_ruleset_slot_at(const vd_ruleset *rs, uint32_t i);
const vd_slot *vd_ruleset_find_slot(const vd_ruleset *rs, vd_str name);  /* NULL if none */
/* True when some slot has the event type in its "goal". */
bool vd_ruleset_is_goal(const vd_ruleset *rs, vd_str type);
uint32_t vd_ruleset_nscores(const vd_ruleset *rs);
const vd_score_def *vd_ruleset_score_at(const vd_ruleset *rs, uint32_t i);   /* sorted by id */
const vd_score_def *vd_ruleset_find_score(const vd_ruleset *rs, vd_str id);  /* NULL if none */
/* Whether an event of this type (and category, compared ignoring ASCII case)
 * counts for the score, and for how many points. */
bool vd_score_counts(const vd_score_def *d, vd_str type, vd_str category, double *points);

#endif
