/* ruleset.c — the compiled ruleset as an object: reference counting and
 * the lookups the decision step and the stores use. rules/build.c makes
 * one; nothing changes it afterwards. */
#include "rules/ruleset.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rules/index.h"
#include "rules/model.h"

void vd_ruleset_destroy(vd_ruleset *rs)
{
    if (!rs)
        return;
    vd_free(rs->version);
    vd_arena_free(&rs->arena);
    vd_free(rs->nodes);
    vd_free(rs->preds);
    vd_free(rs->segs);
    vd_free(rs->seg_by_id);
    vd_index_free(rs);
    vd_free(rs->slots);
    vd_free(rs->scores);
    vd_free(rs);
}

void vd_ruleset_retain(vd_ruleset *rs)
{
    if (rs)
        atomic_fetch_add_explicit(&rs->refs, 1, memory_order_relaxed);
}

void vd_ruleset_release(vd_ruleset *rs)
{
    if (rs && atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel) == 1)
        vd_ruleset_destroy(rs);
}

const char *vd_ruleset_version(const vd_ruleset *rs)
{
    return rs->version;
}

uint32_t vd_ruleset_nsegments(const vd_ruleset *rs)
{
    return rs->nsegs;
}

vd_str vd_ruleset_segment_id(const vd_ruleset *rs, uint32_t seg)
{
    return seg < rs->nsegs ? rs->segs[seg].id : VD_STR_NULL;
}

int32_t vd_ruleset_find_segment(const vd_ruleset *rs, vd_str id)
{
    if (!rs->seg_by_id)
        return -1;
    /* Open addressing, linear probing: the compile looks up every
     * reference and rule this way (a bisection with string compares
     * was 7 % of a 10,000-segment compile). */
    for (uint32_t h = (uint32_t)vd_hash_mem(id.p, id.n) & rs->seg_by_id_mask;; h = (h + 1) & rs->seg_by_id_mask) {
        uint32_t s = rs->seg_by_id[h];
        if (s == UINT32_MAX)
            return -1;
        if (vd_str_eq(rs->segs[s].id, id))
            return (int32_t)s;
    }
}

uint32_t vd_ruleset_nslots(const vd_ruleset *rs)
{
    return rs->nslots;
}

const vd_slot *vd_ruleset_slot_at(const vd_ruleset *rs, uint32_t i)
{
    return i < rs->nslots ? &rs->slots[i] : NULL;
}

bool vd_ruleset_is_goal(const vd_ruleset *rs, vd_str type)
{
    for (uint32_t i = 0; rs && i < rs->nslots; i++)
        for (uint32_t g = 0; g < rs->slots[i].ngoals; g++)
            if (vd_str_eq(rs->slots[i].goals[g], type))
                return true;
    return false;
}

const vd_slot *vd_ruleset_find_slot(const vd_ruleset *rs, vd_str name)
{
    if (rs->slot_tab)
        return vd_index_find_slot(rs, name);
    uint32_t lo = 0, hi = rs->nslots;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int d = vd_str_cmp(rs->slots[mid].name, name);
        if (d == 0)
            return &rs->slots[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
