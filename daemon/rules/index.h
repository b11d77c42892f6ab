/* index.h — the candidate index of a ruleset (built by index.c after a
 * successful compile, read-only afterwards) and the questions the decision
 * step asks it. The layout stays in rules/model.h: callers outside
 * daemon/rules use these functions, so a change of layout stays here. */
#ifndef VD_RULES_INDEX_H
#define VD_RULES_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "rules/model.h"
#include "rules/ruleset.h"

/* -1 on out of memory. Frees with vd_index_free. */
int vd_index_build(vd_ruleset *rs);
void vd_index_free(vd_ruleset *rs);

/* The position in rs->slots of the slot named name, UINT32_MAX if none;
 * inline for the decision step (a page looks up every name it asks for):
 * the key table of rules/model.h, k = vd_slot_key_of(name). An empty
 * entry has length 0, key {0, 0} and slot UINT32_MAX, so the empty name
 * "matching" one is not found. */
static inline uint32_t vd_index_find_slot_key(const vd_ruleset *rs, vd_str name, vd_slot_key k)
{
    if (!rs->slot_tab) {
        const vd_slot *s = vd_ruleset_find_slot(rs, name);
        return s ? (uint32_t)(s - rs->slots) : UINT32_MAX;
    }
    for (uint32_t h = vd_slot_hash(k, name.n) & rs->slot_mask;; h = (h + 1) & rs->slot_mask) {
        const vd_slot_ent *e = &rs->slot_tab[h];
        if (e->n == name.n && e->key.a == k.a && e->key.b == k.b &&
            (name.n <= 16 || memcmp(rs->slots[e->slot].name.p + 8, name.p + 8, name.n - 16) == 0))
            return e->slot;
        if (e->slot == UINT32_MAX)
            return UINT32_MAX;
    }
}

static inline uint32_t vd_index_find_slot_pos(const vd_ruleset *rs, vd_str name)
{
    return vd_index_find_slot_key(rs, name, vd_slot_key_of(name.p, name.n));
}

/* vd_ruleset_find_slot, inline. */
static inline const vd_slot *vd_index_find_slot(const vd_ruleset *rs, vd_str name)
{
    uint32_t x = vd_index_find_slot_pos(rs, name);
    return x == UINT32_MAX ? NULL : &rs->slots[x];
}

/* Position of a slot of rs in its slot table (the key of the two lists
 * below). */
static inline uint32_t vd_index_slot_pos(const vd_ruleset *rs, const vd_slot *slot)
{
    return (uint32_t)(slot - rs->slots);
}

/* Where segment seg is used: (slot position, rule index) pairs. */
static inline const vd_seg_use *vd_index_uses(const vd_ruleset *rs, uint32_t seg, uint32_t *n)
{
    *n = rs->use_first[seg + 1] - rs->use_first[seg];
    return rs->uses + rs->use_first[seg];
}

/* The rules of slot position si whose segment has no string guard, in
 * ascending order: the only ones that can match without their segment
 * having been reached through the index. */
static inline const uint32_t *vd_index_checks(const vd_ruleset *rs, uint32_t si, uint32_t *n)
{
    *n = rs->check_first[si + 1] - rs->check_first[si];
    return rs->check + rs->check_first[si];
}

/* Lazy probing: the index attributes (0..63) slot position si has rules
 * filed under, each with the first such rule, by ascending rule. A walk
 * of the slot in rule order that stops before pairs[k].rule never needs
 * attribute pairs[k].attr probed. */
static inline const vd_lazy_first *vd_index_lazy_first(const vd_ruleset *rs, uint32_t si, uint32_t *n)
{
    if (!rs->slot_lazy_first) {
        *n = 0;
        return NULL;
    }
    *n = rs->slot_lazy_first[si + 1] - rs->slot_lazy_first[si];
    return rs->lazy_first + rs->slot_lazy_first[si];
}

/* The index attributes of want (bits < 64) whose context family is costly
 * (VD_COSTLY_FAMILIES) and not among done (vd_context.done): those a
 * decision probes only when a slot's walk reaches a rule filed under them. */
static inline uint64_t vd_index_costly(const vd_ruleset *rs, unsigned done, uint64_t want)
{
    uint64_t out = 0;
    for (unsigned p = VD_COSTLY_FAMILIES & ~done; p; p &= p - 1)
        out |= rs->index_family[__builtin_ctz(p)];
    return out & want;
}

/* Filed under a string key (set or prefix): a segment the index did not
 * reach is false for this request, whatever the time. */
static inline bool vd_string_guarded(const vd_ruleset *rs, uint32_t seg)
{
    uint8_t g = rs->guard[seg];
    return g == VD_G_SET || g == VD_G_PREFIX || g == VD_G_CONTAINS || g == VD_G_SUFFIX;
}

#endif
