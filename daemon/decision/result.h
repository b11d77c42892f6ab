/* result.h — the response of `decide`/`explain`, built once for every wire
 * format. The front end supplies an emitter (MessagePack for the decision
 * port, JSON for the edge port); this module decides what the answer holds:
 *   {version, slots: {name: {variant, payload, segment} | {error}},
 *    segments: [...], valid_until, [context: {...}, trace: {...}]} */
#ifndef VD_DECISION_RESULT_H
#define VD_DECISION_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision/decide.h"

/* Bytes to copy into a reply as they are. */
typedef struct vd_piece {
    const void *p;
    size_t n;
} vd_piece;

typedef struct vd_emitter {
    void (*map)(void *arg, uint32_t n);
    void (*array)(void *arg, uint32_t n);
    void (*str)(void *arg, const char *p, size_t n);
    void (*i64)(void *arg, int64_t v);
    void (*f64)(void *arg, double v);
    void (*boolean)(void *arg, bool v);
    void (*nil)(void *arg);
    void (*payload)(void *arg, const vd_variant *v);   /* the pre-encoded payload */
    void *arg;
    /* Optional: a string known to be valid UTF-8 that needs no escaping (the
     * result's own keys; segment, slot and variant ids, which are ASCII
     * [A-Za-z0-9._:-]); NULL: str. Skips the UTF-8 check that client bytes
     * need (~45 instructions a string, ~6,500 for a 20-slot page). */
    void (*ascii)(void *arg, const char *p, size_t n);
    /* Optional: one whole entry of the slots map, NAME: {variant, payload,
     * segment}, from the variant's pre-encoded bytes (rules/ruleset.h:
     * entry_mp, entry_json) and the segment id (NULL: nil). Returns false
     * if it wrote nothing (no pre-encoded bytes for this format): the entry
     * is then emitted item by item. Either way the bytes are the same. */
    bool (*slot_entry)(void *arg, const vd_variant *v, const vd_str *segment);
    /* Optional (MessagePack only): whole entries of the slots map,
     * pre-encoded once per ruleset, copied as they are in one reservation:
     * the winning rule's (rules/ruleset.h: vd_rule.entry_mp) or, for a
     * slot answered by its default, the default variant's entry and the
     * nil after it (vd_variant.entry_mp, entry_mp_len + 1 bytes). A slot
     * without such bytes (a split, a holdout, an entry too long to keep,
     * an unknown slot): slot_entry, then item by item. The same bytes
     * every way. */
    void (*entries)(void *arg, const vd_piece *pieces, unsigned n);
} vd_emitter;

void vd_result_emit(const vd_emitter *e, const vd_ruleset *rs, const vd_decision *d,
                    vd_context *ctx, const vd_eval *ev, bool explain);

/* The explain `context` map alone: every attribute this request can give. */
void vd_result_emit_context(const vd_emitter *e, vd_context *ctx);

/* The result of the `profile` method (decision port and edge port alike):
 *   {found, known, visits, first_seen, last_seen, scores: {ID: {value, peak}},
 *    events: {TYPE: n}, flags: {NAME: expires_at | nil},
 *    exposures: {SLOT: {variant, rule, ts, converted}}}
 * scores valued at now; expired flags and never-scored scores left out. */
struct vd_profile_result;
void vd_result_emit_profile(const vd_emitter *e, const struct vd_profile_result *res, int64_t now);

#endif
