/* index.c — the candidate index (see ruleset_internal.h). Built once after
 * a successful compile; read-only afterwards. */
#include <stdlib.h>
#include <string.h>

#include "rules/compile.h"

typedef struct triple {
    uint8_t attr;
    vd_str key;
    uint32_t seg;
} triple;

static bool guard_ok(const vd_pred *p)
{
    /* Positive string equality on a catalogue attribute without a NAME:
     * false whenever the value is missing or not in the set. */
    return p->test == VD_T_SET && !p->negate && !p->if_missing && p->type == VD_AT_STRING &&
           p->attr.sub.n == 0 && p->nstrs > 0;
}

/* The guard predicate of a segment, or NULL. */
static const vd_pred *find_guard(const vd_ruleset *rs, const vd_segment *seg)
{
    const vd_node *root = &rs->nodes[seg->root];
    if (root->kind == VD_N_PRED)
        return guard_ok(&rs->preds[root->a]) ? &rs->preds[root->a] : NULL;
    if (root->kind != VD_N_ALL)
        return NULL;
    const vd_pred *best = NULL;
    for (uint32_t i = 0; i < root->n; i++) {
        const vd_node *ch = &rs->nodes[root->a + i];
        if (ch->kind != VD_N_PRED)
            continue;
        const vd_pred *p = &rs->preds[ch->a];
        if (guard_ok(p) && (!best || p->nstrs < best->nstrs))
            best = p;
    }
    return best;
}

static int triple_cmp(const void *a, const void *b)
{
    const triple *x = a, *y = b;
    if (x->attr != y->attr)
        return x->attr < y->attr ? -1 : 1;
    size_t n = x->key.n < y->key.n ? x->key.n : y->key.n;
    int d = n ? memcmp(x->key.p, y->key.p, n) : 0;
    if (d)
        return d;
    if (x->key.n != y->key.n)
        return x->key.n < y->key.n ? -1 : 1;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

void vd_index_free(vd_ruleset *rs)
{
    for (uint32_t i = 0; i < rs->nindex; i++)
        free(rs->index[i].tab);
    free(rs->index);
    free(rs->index_segs);
    free(rs->unguarded);
    rs->index = NULL;
    rs->index_segs = NULL;
    rs->unguarded = NULL;
    rs->nindex = rs->nunguarded = 0;
}

int vd_index_build(vd_ruleset *rs)
{
    size_t nt = 0, cap = 0;
    triple *t = NULL;
    rs->unguarded = malloc((rs->nsegs + 1) * sizeof *rs->unguarded);
    if (!rs->unguarded)
        return -1;
    for (uint32_t s = 0; s < rs->nsegs; s++) {
        const vd_pred *g = find_guard(rs, &rs->segs[s]);
        if (!g) {
            rs->unguarded[rs->nunguarded++] = s;
            continue;
        }
        for (uint32_t k = 0; k < g->nstrs; k++) {
            if (nt == cap) {
                cap = cap ? cap * 2 : 1024;
                triple *nt2 = realloc(t, cap * sizeof *t);
                if (!nt2) {
                    free(t);
                    return -1;
                }
                t = nt2;
            }
            t[nt++] = (triple){ g->attr.id, g->strs[k], s };
        }
    }
    if (nt == 0) {
        free(t);
        return 0;
    }
    qsort(t, nt, sizeof *t, triple_cmp);
    rs->index_segs = malloc(nt * sizeof *rs->index_segs);
    rs->index = calloc(VD_ATTR__COUNT, sizeof *rs->index);
    if (!rs->index_segs || !rs->index) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < nt; i++)
        rs->index_segs[i] = t[i].seg;
    /* One open-addressing table per attribute over its distinct keys. */
    for (size_t i = 0; i < nt;) {
        size_t j = i, distinct = 0;
        while (j < nt && t[j].attr == t[i].attr) {
            if (j == i || triple_cmp(&(triple){ t[j].attr, t[j].key, 0 }, &(triple){ t[j - 1].attr, t[j - 1].key, 0 }))
                distinct++;
            j++;
        }
        uint32_t size = 16;
        while (size < distinct * 2)
            size *= 2;
        vd_index_attr *ia = &rs->index[rs->nindex++];
        ia->attr.id = t[i].attr;
        ia->mask = size - 1;
        ia->tab = calloc(size, sizeof *ia->tab);
        if (!ia->tab) {
            free(t);
            return -1;
        }
        for (size_t k = i; k < j;) {
            size_t e = k;
            while (e < j && t[e].key.n == t[k].key.n && memcmp(t[e].key.p, t[k].key.p, t[k].key.n) == 0)
                e++;
            uint64_t h = vd_hash64_ci(t[k].key.p, t[k].key.n);
            uint32_t slot = (uint32_t)h & ia->mask;
            while (ia->tab[slot].key.p)
                slot = (slot + 1) & ia->mask;
            ia->tab[slot] = (vd_index_entry){ t[k].key, h, (uint32_t)k, (uint32_t)(e - k) };
            k = e;
        }
        i = j;
    }
    free(t);
    return 0;
}
