/* answers.c — the whole-answer cache (answers.h). */
#include "rules/answers.h"

#include <string.h>

#include "core/alloc.h"
#include "rules/model.h"
#include "rules/terms.h"

#define WAYS 8

typedef struct entry {
    uint64_t h0, h1;
    int64_t ts;               /* request time it was stored at */
    int64_t expires;          /* earliest until of its slots */
    uint32_t use;             /* LRU stamp within its set; 0: empty */
    uint8_t n, nmatched;
    uint32_t best[VD_ANSWERS_MAX_SLOTS];
    uint32_t uoff[VD_ANSWERS_MAX_SLOTS];   /* until - ts; UINT32_MAX: never */
    uint32_t matched[VD_ANSWERS_MAX_MATCHED];
} entry;

typedef struct slot_attrs {
    uint32_t first, n;        /* into attr_list */
    bool ready, visitor, local_time;
} slot_attrs;

/* A page (requested slot indexes in order) and the attributes its slots'
 * rules can read, merged: most requests ask for a page seen before. */
#define PAGES 16
#define PAGE_ATTRS 64
typedef struct page_ent {
    uint64_t hash;
    uint32_t n, nattrs;       /* n == 0: empty; nattrs > PAGE_ATTRS: not kept, merged per request */
    bool visitor, local_time;
    uint32_t si[VD_ANSWERS_MAX_SLOTS];
    uint32_t attrs[PAGE_ATTRS];
} page_ent;

typedef struct aslot_info {
    vd_attr_ref attr;
    uint8_t modes;            /* 1 << vd_term_mode of its term predicates, whole ruleset */
    bool raw;                 /* a predicate tests it otherwise: keyed by its value */
    bool visitor, local_time;
} aslot_info;

struct vd_answers {
    entry *e;
    uint32_t set_mask;        /* sets - 1 */
    uint32_t clock;
    unsigned min_slots;
    uint64_t hits, misses;
    /* of the ruleset in rs (a reference held until the next one is seen) */
    vd_ruleset *rs;
    bool off;                 /* its tables could not be made: nothing cached for it */
    uint64_t tag;
    aslot_info *aslots;
    uint32_t naslots;
    slot_attrs *slots;
    uint32_t *attr_list;      /* aslot ids, per slot */
    uint32_t nlist, cap_list;
    uint32_t *astamp, agen;   /* per aslot: seen in this page */
    uint32_t *segstamp, sgen; /* per segment: reached from this slot */
    uint32_t *seg_stack;
    uint32_t *tstamp, tgen;   /* per term: met by this value */
    page_ent pages[PAGES];    /* by page hash */
};

vd_answers *vd_answers_new(size_t entries, unsigned min_slots)
{
    if (entries == 0)
        return NULL;
    vd_answers *a = vd_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    size_t sets = 1;
    while (sets * WAYS < entries)
        sets *= 2;
    a->e = vd_calloc(sets * WAYS, sizeof *a->e);
    if (!a->e) {
        vd_free(a);
        return NULL;
    }
    a->set_mask = (uint32_t)(sets - 1);
    a->min_slots = min_slots ? min_slots : 1;
    return a;
}

static void forget_ruleset(vd_answers *a)
{
    vd_free(a->aslots);
    vd_free(a->slots);
    vd_free(a->attr_list);
    vd_free(a->astamp);
    vd_free(a->segstamp);
    vd_free(a->seg_stack);
    vd_free(a->tstamp);
    a->aslots = NULL;
    a->slots = NULL;
    a->attr_list = a->astamp = a->segstamp = a->seg_stack = a->tstamp = NULL;
    a->nlist = a->cap_list = 0;
    memset(a->pages, 0, sizeof a->pages);
    if (a->rs)
        vd_ruleset_release(a->rs);
    a->rs = NULL;
    a->off = false;
}

void vd_answers_free(vd_answers *a)
{
    if (!a)
        return;
    forget_ruleset(a);
    vd_free(a->e);
    vd_free(a);
}

void vd_answers_stats(const vd_answers *a, uint64_t *hits, uint64_t *misses)
{
    *hits = a ? a->hits : 0;
    *misses = a ? a->misses : 0;
}

/* A new ruleset: every entry goes, the per-attribute modes are those of
 * its predicates, the per-slot lists are built on first use. -1 on out of
 * memory (then nothing is cached). */
static int take_ruleset(vd_answers *a, const vd_ruleset *rs)
{
    forget_ruleset(a);
    memset(a->e, 0, ((size_t)a->set_mask + 1) * WAYS * sizeof *a->e);
    a->clock = 0;
    if (!rs->pred_aslot || !rs->term_tab || !rs->term_pred || !rs->pred_group || !rs->group_pred)
        goto off;
    a->aslots = vd_calloc(rs->naslots + 1, sizeof *a->aslots);
    a->slots = vd_calloc(rs->nslots + 1, sizeof *a->slots);
    a->astamp = vd_calloc(rs->naslots + 1, sizeof *a->astamp);
    a->segstamp = vd_calloc(rs->nsegs + 1, sizeof *a->segstamp);
    a->seg_stack = vd_malloc((rs->nsegs + 1) * sizeof *a->seg_stack);
    a->tstamp = vd_calloc(rs->nterms + 1, sizeof *a->tstamp);
    if (!a->aslots || !a->slots || !a->astamp || !a->segstamp || !a->seg_stack || !a->tstamp)
        goto off;
    a->naslots = rs->naslots;
    a->agen = a->sgen = a->tgen = 0;
    for (uint32_t p = 0; p < rs->npreds; p++) {
        const vd_pred *pr = &rs->preds[p];
        uint32_t s = rs->pred_aslot[p];
        if (s >= rs->naslots)
            continue;
        aslot_info *ai = &a->aslots[s];
        const vd_attr_info *inf = vd_attr_info_get(pr->attr.id);
        ai->attr = pr->attr;
        if (inf->family & VD_FAM_VISITOR)
            ai->visitor = true;
        if ((inf->family & VD_FAM_TIME) && pr->attr.id != VD_ATTR_TIME_UTC)
            ai->local_time = true;
        uint8_t mode = rs->term_pred[rs->group_pred[rs->pred_group[p]]].mode;
        if (mode == VD_TM_NONE)
            ai->raw = true;
        else
            ai->modes |= (uint8_t)(1u << mode);
    }
    vd_ruleset_retain((vd_ruleset *)rs);
    a->rs = (vd_ruleset *)rs;
    a->tag = vd_mix64(vd_hash64(rs->version, strlen(rs->version)) ^ (uint64_t)(uintptr_t)rs);
    return 0;
off:
    /* Not tried again for this ruleset (each try would clear the cache). */
    forget_ruleset(a);
    vd_ruleset_retain((vd_ruleset *)rs);
    a->rs = (vd_ruleset *)rs;
    a->off = true;
    return -1;
}

static bool stamp_next(uint32_t *gen, uint32_t *stamps, size_t n)
{
    if (++*gen == 0) {
        memset(stamps, 0, n * sizeof *stamps);
        *gen = 1;
    }
    return true;
}

/* Slot s's attributes: every predicate of every rule's segment,
 * references followed (a segment's nodes are contiguous). */
static int build_slot(vd_answers *a, const vd_ruleset *rs, uint32_t s)
{
    slot_attrs *sl = &a->slots[s];
    stamp_next(&a->sgen, a->segstamp, rs->nsegs);
    stamp_next(&a->agen, a->astamp, rs->naslots);
    sl->first = a->nlist;
    uint32_t sp = 0;
    const vd_slot *slot = &rs->slots[s];
    for (uint32_t r = 0; r < slot->nrules; r++) {
        uint32_t seg = slot->rules[r].segment;
        if (a->segstamp[seg] != a->sgen) {
            a->segstamp[seg] = a->sgen;
            a->seg_stack[sp++] = seg;
        }
    }
    while (sp) {
        const vd_segment *sg = &rs->segs[a->seg_stack[--sp]];
        for (uint32_t k = sg->node_first; k < sg->node_end; k++) {
            const vd_node *nd = &rs->nodes[k];
            if (nd->kind == VD_N_REF) {
                if (a->segstamp[nd->a] != a->sgen) {
                    a->segstamp[nd->a] = a->sgen;
                    a->seg_stack[sp++] = nd->a;
                }
                continue;
            }
            if (nd->kind != VD_N_PRED)
                continue;
            uint32_t as = rs->pred_aslot[nd->a];
            if (as >= rs->naslots)
                return -1;
            if (a->astamp[as] == a->agen)
                continue;
            a->astamp[as] = a->agen;
            if (a->nlist == a->cap_list) {
                uint32_t cap = a->cap_list ? a->cap_list * 2 : 64;
                uint32_t *l = vd_realloc(a->attr_list, cap * sizeof *l);
                if (!l)
                    return -1;
                a->attr_list = l;
                a->cap_list = cap;
            }
            a->attr_list[a->nlist++] = as;
            sl->visitor |= a->aslots[as].visitor;
            sl->local_time |= a->aslots[as].local_time;
        }
    }
    sl->n = a->nlist - sl->first;
    sl->ready = true;
    return 0;
}

typedef struct term_acc {
    vd_answers *a;
    uint64_t sum;
} term_acc;

static void term_met(void *arg, uint32_t id)
{
    term_acc *t = arg;
    if (t->a->tstamp[id] == t->a->tgen)
        return;
    t->a->tstamp[id] = t->a->tgen;
    t->sum += vd_mix64((uint64_t)id + 0x9E3779B97F4A7C15ULL);   /* a set: order-free */
}

/* The terms of table t that s meets, in the modes given (rules/terms.h,
 * the walk rules/eval.c's resolve_terms stamps them with). */
static uint64_t terms_digest(vd_answers *a, const vd_term_tab *t, vd_str s, uint8_t modes)
{
    term_acc acc = { a, 0 };
    stamp_next(&a->tgen, a->tstamp, a->rs->nterms);
    uint64_t h = modes >> VD_TM_EXACT & 1 ? vd_hash64_ci(s.p, s.n) : 0;
    for (unsigned mode = VD_TM_EXACT; mode <= VD_TM_SUFFIX; mode++)
        if (modes >> mode & 1)
            vd_terms_each(t, s, mode, h, term_met, &acc);
    return vd_mix64(acc.sum ^ 0x7465726d73ULL);
}

/* The next LRU stamp; on wrap every stored entry restarts at 1. */
static uint32_t next_use(vd_answers *a)
{
    if (++a->clock == 0) {
        size_t n = ((size_t)a->set_mask + 1) * WAYS;
        for (size_t i = 0; i < n; i++)
            if (a->e[i].use)
                a->e[i].use = 1;
        a->clock = 2;
    }
    return a->clock;
}

/* Two independent running hashes of the key's parts (each part a
 * well-mixed 64-bit digest already), finished by vd_mix64. */
static inline void key_add(uint64_t *h, uint64_t x)
{
    h[0] = (h[0] ^ x) * 0x9E3779B97F4A7C15ULL;
    h[0] ^= h[0] >> 29;
    h[1] = (h[1] + x) * 0xC2B2AE3D27D4EB4FULL;
    h[1] ^= h[1] >> 31;
}

/* The page's merged attributes, from the page memo or merged from its
 * slots' lists into it. NULL: not cacheable (a visitor.* attribute, more
 * than PAGE_ATTRS attributes, out of memory). */
static const page_ent *page_of(vd_answers *a, const vd_ruleset *rs, unsigned n, const uint32_t *si, uint64_t hash)
{
    page_ent *pg = &a->pages[hash & (PAGES - 1)];
    if (!(pg->n == n && pg->hash == hash && memcmp(pg->si, si, n * sizeof *si) == 0)) {
        pg->hash = hash;
        pg->n = (uint32_t)n;
        pg->nattrs = 0;
        pg->visitor = pg->local_time = false;
        memcpy(pg->si, si, n * sizeof *si);
        for (unsigned i = 0; i < n; i++)   /* first: build_slot stamps too */
            if (si[i] != UINT32_MAX && !a->slots[si[i]].ready && build_slot(a, rs, si[i]) != 0) {
                pg->n = 0;
                return NULL;
            }
        stamp_next(&a->agen, a->astamp, rs->naslots);
        for (unsigned i = 0; i < n; i++) {
            if (si[i] == UINT32_MAX)
                continue;
            const slot_attrs *sl = &a->slots[si[i]];
            pg->visitor |= sl->visitor;
            pg->local_time |= sl->local_time;
            for (uint32_t k = 0; k < sl->n; k++) {
                uint32_t as = a->attr_list[sl->first + k];
                if (a->astamp[as] == a->agen)
                    continue;
                a->astamp[as] = a->agen;
                if (pg->nattrs < PAGE_ATTRS)
                    pg->attrs[pg->nattrs] = as;
                pg->nattrs++;
            }
        }
    }
    return pg->visitor || pg->nattrs > PAGE_ATTRS ? NULL : pg;
}

bool vd_answers_get(vd_answers *a, const vd_ruleset *rs, vd_context *ctx, unsigned n, const uint32_t *si,
                    vd_answers_key *key, uint32_t *best, int64_t *until, const uint32_t **matched,
                    uint32_t *nmatched)
{
    key->ok = false;
    if (!a || n < a->min_slots || n > VD_ANSWERS_MAX_SLOTS)
        return false;
    if (rs != a->rs && take_ruleset(a, rs) != 0)
        return false;
    if (a->off)
        return false;
    uint64_t ph = a->tag ^ n;
    for (unsigned i = 0; i < n; i++)
        ph = (ph ^ si[i]) * 0x100000001b3ULL;
    ph = vd_mix64(ph);
    const page_ent *pg = page_of(a, rs, n, si, ph);
    if (!pg)
        return false;
    uint64_t h[2] = { ph, ~ph };
    for (uint32_t k = 0; k < pg->nattrs; k++) {
        uint32_t as = pg->attrs[k];
        const aslot_info *ai = &a->aslots[as];
        vd_value v;
        vd_context_get(ctx, &ai->attr, &v);
        uint64_t x = !ai->raw && v.kind == VD_VAL_STR ? terms_digest(a, &rs->term_tab[as], v.u.s, ai->modes)
                                                      : vd_value_digest(&v);
        key_add(h, x);
    }
    if (pg->local_time)
        key_add(h, vd_mix64((uint64_t)(uintptr_t)vd_context_tz(ctx) ^ 0x747a));
    h[0] = vd_mix64(h[0]);
    h[1] = vd_mix64(h[1] ^ 0x5851F42D4C957F2DULL);
    key->h[0] = h[0];
    key->h[1] = h[1];
    key->ok = true;
    entry *set = &a->e[(size_t)(h[0] & a->set_mask) * WAYS];
    for (unsigned w = 0; w < WAYS; w++) {
        entry *e = &set[w];
        if (!e->use || e->h0 != h[0] || e->h1 != h[1] || e->n != n)
            continue;
        if (ctx->now < e->ts || ctx->now >= e->expires)
            break;            /* stale: the put after the decision replaces it */
        e->use = next_use(a);
        for (unsigned i = 0; i < n; i++) {
            best[i] = e->best[i];
            until[i] = e->uoff[i] == UINT32_MAX ? INT64_MAX : e->ts + e->uoff[i];
        }
        *matched = e->matched;
        *nmatched = e->nmatched;
        a->hits++;
        return true;
    }
    a->misses++;
    return false;
}

void vd_answers_put(vd_answers *a, const vd_answers_key *key, int64_t now, unsigned n, const uint32_t *best,
                    const int64_t *until, const uint32_t *matched, uint32_t nmatched)
{
    if (!a || !key->ok || n > VD_ANSWERS_MAX_SLOTS || nmatched > VD_ANSWERS_MAX_MATCHED)
        return;
    int64_t expires = INT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        if (until[i] == INT64_MAX)
            continue;
        if (until[i] <= now || until[i] - now >= (int64_t)UINT32_MAX)
            return;           /* already due, or too far to store as an offset */
        if (until[i] < expires)
            expires = until[i];
    }
    entry *set = &a->e[(size_t)(key->h[0] & a->set_mask) * WAYS];
    entry *e = &set[0];
    for (unsigned w = 0; w < WAYS; w++) {
        if (set[w].use && set[w].h0 == key->h[0] && set[w].h1 == key->h[1]) {
            e = &set[w];      /* the stale entry of this key */
            break;
        }
        if (set[w].use < e->use)
            e = &set[w];      /* else the least recently used (or an empty one) */
    }
    e->h0 = key->h[0];
    e->h1 = key->h[1];
    e->ts = now;
    e->expires = expires;
    e->n = (uint8_t)n;
    e->nmatched = (uint8_t)nmatched;
    for (unsigned i = 0; i < n; i++) {
        e->best[i] = best[i];
        e->uoff[i] = until[i] == INT64_MAX ? UINT32_MAX : (uint32_t)(until[i] - now);
    }
    if (nmatched)
        memcpy(e->matched, matched, nmatched * sizeof *matched);
    e->use = next_use(a);
}
