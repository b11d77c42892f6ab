/* answers.h — a per-worker cache of the rule walk's outcome (issue 13's
 * "cache of whole answers"; config `answer-cache`, off by default; the
 * study that sized it is in docs/PERFORMANCE.md, "A cache of whole
 * answers").
 *
 * The key is the projection of the request onto what the requested slots'
 * rules can read: per attribute (every predicate of every rule's segment,
 * references followed), the set of the ruleset's terms its value meets
 * (the evaluator's term tables), or the value itself for an attribute some
 * predicate tests otherwise (hour and weekday bitmaps, ranges, exists, IP
 * nets); the zone when a local time attribute is read; the requested slots
 * in order. Two requests with the same key have the same verdict for every
 * predicate the page can reach, so the same winning rule per slot, the
 * same `until` of each slot and the same matched segments, as long as the
 * request time is within [the time the entry was stored, its earliest
 * until). A ruleset swap empties the cache.
 *
 * What an entry holds is the walk's outcome, not the answer: the variant
 * of a split, holdouts, bandit weights, the reply and the counters are
 * computed from it on a hit as on a miss. Pages whose rules can read a
 * visitor.* attribute are not cached (the profile is an input too), nor
 * the full path (`segments`, `explain`).
 *
 * Keys are two 64-bit hashes of the projection: a collision would give a
 * request the rules another context reaches, which its sender could have
 * asked for with that context. */
#ifndef VD_RULES_ANSWERS_H
#define VD_RULES_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context/context.h"
#include "rules/ruleset.h"

typedef struct vd_answers vd_answers;

/* Pages of more requested slots, or with more matched segments, are not
 * cached. */
#define VD_ANSWERS_MAX_SLOTS 32
#define VD_ANSWERS_MAX_MATCHED 32

/* A cache of about `entries` entries (8-way sets; 0: NULL, off), used for
 * pages of at least min_slots requested slots (a 1-slot request's key,
 * every attribute its rules can read, costs more than its walk: see the
 * study). NULL on out of memory too. */
vd_answers *vd_answers_new(size_t entries, unsigned min_slots);
void vd_answers_free(vd_answers *a);

/* A request's lookup state, between vd_answers_get and vd_answers_put. */
typedef struct vd_answers_key {
    uint64_t h[2];
    bool ok;                  /* cacheable */
} vd_answers_key;

/* The key of the page si[0 .. n) (slot indexes; UINT32_MAX: unknown name)
 * for this request; on a hit fills best[0 .. n), until[0 .. n) and the
 * matched segments (owned by the cache, valid until the next call) and
 * returns true. */
bool vd_answers_get(vd_answers *a, const vd_ruleset *rs, vd_context *ctx, unsigned n, const uint32_t *si,
                    vd_answers_key *key, uint32_t *best, int64_t *until, const uint32_t **matched,
                    uint32_t *nmatched);

/* After a miss: stores the walk's outcome under key (if cacheable). */
void vd_answers_put(vd_answers *a, const vd_answers_key *key, int64_t now, unsigned n, const uint32_t *best,
                    const int64_t *until, const uint32_t *matched, uint32_t nmatched);

/* Hits and misses (lookups of cacheable pages) since creation. */
void vd_answers_stats(const vd_answers *a, uint64_t *hits, uint64_t *misses);

#endif
