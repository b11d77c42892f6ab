/* index.c — the candidate index (see model.h). Built once after
 * a successful compile; read-only afterwards. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rules/compile.h"
#include "rules/index.h"

typedef struct triple {
    uint8_t attr;
    uint8_t mode;             /* vd_index_mode */
    vd_str sub;               /* NAME of url.query.NAME / attr.NAME */
    vd_str key;
    uint32_t seg;
} triple;

/* Roughly how many requests carry one value of a string attribute, in units
 * of ~0.5 % of traffic (the scale of the hour and weekday costs below). A
 * key of a small vocabulary (device.type "mobile", source.medium "organic")
 * is met by a large share of visitors, so a segment pairing it with a
 * campaign or a city is filed under the rarer key: the index is only as good
 * as the share of requests that reach each bucket. */
static unsigned key_cost(const vd_pred *p)
{
    switch (p->attr.id) {
    case VD_ATTR_URL_HOST:       return 90;   /* often one site: every request */
    case VD_ATTR_DEVICE_TYPE:    return 60;
    case VD_ATTR_DEVICE_OS:
    case VD_ATTR_DEVICE_BROWSER:
    case VD_ATTR_GEO_CONTINENT:  return 36;
    case VD_ATTR_SOURCE_MEDIUM:  return 30;
    case VD_ATTR_SOURCE_NAME:    return 18;
    case VD_ATTR_LANG:           return 12;
    case VD_ATTR_GEO_COUNTRY:
    case VD_ATTR_GEO_TIMEZONE:   return 9;
    default:                     return 1;    /* cities, campaigns, paths, attrs */
    }
}

/* A prefix as short as "/" is met by nearly every value. */
static unsigned prefix_cost(const vd_pred *p)
{
    unsigned c = 0;
    for (uint32_t i = 0; i < p->nstrs; i++)
        c += p->strs[i].n <= 1 ? 180 : p->strs[i].n <= 3 ? 16 : 2;
    return c * key_cost(p);
}

/* A needle found anywhere in the value: short ones ("-", "sale") are met
 * by many paths, long ones by few. Suffixes are rarer than the same
 * needle anywhere. */
static unsigned contains_cost(const vd_pred *p, bool suffix)
{
    unsigned c = 0;
    for (uint32_t i = 0; i < p->nstrs; i++)
        c += p->strs[i].n <= 2 ? 180 : p->strs[i].n <= 4 ? (suffix ? 10 : 12) : p->strs[i].n <= 6 ? 6 : 3;
    return c * key_cost(p);
}

/* A predicate that is false whenever the request does not pass it, and the
 * cost of filing under it (lower = fewer requests reach the segment). */
static int guard_kind(const vd_pred *p, unsigned *cost)
{
    if (p->negate || p->if_missing)
        return VD_G_NONE;
    /* attr.NAME as the caller sends it: a set of strings only can never be
     * met by a number or a boolean. */
    bool strings_only = p->type == VD_AT_STRING ||
                        (p->type == VD_AT_ANY && p->nnums == 0 && p->bools == 0);
    if (strings_only && p->nstrs > 0) {
        if (p->test == VD_T_SET) {
            *cost = p->nstrs * key_cost(p);
            return VD_G_SET;
        }
        if (p->test == VD_T_PREFIX) {
            *cost = prefix_cost(p);   /* prefixes match more values than keys do */
            return VD_G_PREFIX;
        }
        if (p->test == VD_T_CONTAINS || p->test == VD_T_SUFFIX) {
            for (uint32_t i = 0; i < p->nstrs; i++)
                if (p->strs[i].n == 0)
                    return VD_G_NONE;     /* met by every value */
            *cost = contains_cost(p, p->test == VD_T_SUFFIX);
            return p->test == VD_T_SUFFIX ? VD_G_SUFFIX : VD_G_CONTAINS;
        }
    }
    if (p->test == VD_T_BITS && (p->attr.id == VD_ATTR_TIME_HOUR || p->attr.id == VD_ATTR_TIME_WEEKDAY)) {
        unsigned ones = 0;
        for (uint32_t w = 0; w < (p->nbits + 63) / 64; w++)
            ones += (unsigned)__builtin_popcountll(p->bits[w]);
        /* A weekday bucket holds a seventh of the week, an hour a 24th:
         * both far less selective than a string key. */
        *cost = p->attr.id == VD_ATTR_TIME_HOUR ? 8 * ones : 24 * ones;
        return p->attr.id == VD_ATTR_TIME_HOUR ? VD_G_HOUR : VD_G_WEEKDAY;
    }
    return VD_G_NONE;
}

/* The most selective guard of a segment, or NULL. */
static const vd_pred *find_guard(const vd_ruleset *rs, const vd_segment *seg, int *kind,
                                 uint32_t *node)
{
    const vd_node *root = &rs->nodes[seg->root];
    const vd_node *ch = root;
    uint32_t n = 1;
    if (root->kind == VD_N_ALL) {
        ch = &rs->nodes[root->a];
        n = root->n;
    } else if (root->kind != VD_N_PRED) {
        return NULL;
    }
    const vd_pred *best = NULL;
    unsigned best_cost = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ch[i].kind != VD_N_PRED)
            continue;
        const vd_pred *p = &rs->preds[ch[i].a];
        unsigned cost = 0;
        int k = guard_kind(p, &cost);
        if (k != VD_G_NONE && (!best || cost < best_cost)) {
            best = p;
            best_cost = cost;
            *kind = k;
            *node = root->kind == VD_N_ALL ? root->a + i : seg->root;
        }
    }
    return best;
}

static int str_cmp(vd_str a, vd_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int d = n ? memcmp(a.p, b.p, n) : 0;
    if (d)
        return d;
    return a.n < b.n ? -1 : a.n > b.n;
}

static int triple_cmp(const void *a, const void *b)
{
    const triple *x = a, *y = b;
    if (x->mode != y->mode)
        return x->mode < y->mode ? -1 : 1;
    if (x->attr != y->attr)
        return x->attr < y->attr ? -1 : 1;
    int ds = str_cmp(x->sub, y->sub);
    if (ds)
        return ds;
    size_t n = x->key.n < y->key.n ? x->key.n : y->key.n;
    int d = n ? memcmp(x->key.p, y->key.p, n) : 0;
    if (d)
        return d;
    if (x->key.n != y->key.n)
        return x->key.n < y->key.n ? -1 : 1;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

static bool same_table(const triple *a, const triple *b)
{
    return a->mode == b->mode && a->attr == b->attr && str_cmp(a->sub, b->sub) == 0;
}

static bool same_key(const triple *a, const triple *b)
{
    return same_table(a, b) && a->key.n == b->key.n && memcmp(a->key.p, b->key.p, a->key.n) == 0;
}

void vd_index_free(vd_ruleset *rs)
{
    for (uint32_t i = 0; i < rs->nindex; i++) {
        vd_free(rs->index[i].tab);
        vd_free(rs->index[i].term_slot);
    }
    rs->max_hits = 0;
    vd_free(rs->index);
    vd_free(rs->index_segs);
    vd_free(rs->unguarded);
    vd_free(rs->guard);
    vd_free(rs->hour_segs);
    vd_free(rs->wday_segs);
    vd_free(rs->use_first);
    vd_free(rs->uses);
    vd_free(rs->check_first);
    vd_free(rs->check);
    vd_free(rs->pred_share);
    vd_free(rs->slot_tab);
    vd_free(rs->lazy_first);
    vd_free(rs->slot_lazy_first);
    vd_free(rs->slot_eager);
    rs->slot_eager = NULL;
    memset(rs->index_family, 0, sizeof rs->index_family);
    vd_free(rs->slot_want);
    vd_free(rs->pred_aslot);
    rs->slot_want = NULL;
    rs->pred_aslot = NULL;
    rs->naslots = 0;
    vd_free(rs->entry_runs);
    vd_free(rs->run_bits);
    vd_free(rs->run_words);
    vd_free(rs->slot_word);
    vd_free(rs->check_bits);
    vd_free(rs->timeless);
    vd_free(rs->prog);
    vd_free(rs->prog_entry);
    vd_free(rs->prog_past);
    rs->prog = NULL;
    rs->prog_entry = rs->prog_past = NULL;
    rs->nprog = 0;
    rs->timeless = NULL;
    rs->entry_runs = NULL;
    rs->run_bits = NULL;
    rs->run_words = NULL;
    rs->slot_word = NULL;
    rs->check_bits = NULL;
    rs->slot_tab = NULL;
    rs->lazy_first = NULL;
    rs->slot_lazy_first = NULL;
    rs->pred_share = NULL;
    rs->nshared = 0;
    rs->use_first = rs->check_first = rs->check = NULL;
    rs->uses = NULL;
    rs->index = NULL;
    rs->index_segs = NULL;
    rs->unguarded = NULL;
    rs->guard = NULL;
    rs->hour_segs = rs->wday_segs = NULL;
    rs->nindex = rs->nunguarded = 0;
}

static int push(triple **t, size_t *n, size_t *cap, triple v)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        triple *nt = vd_realloc(*t, c * sizeof **t);
        if (!nt)
            return -1;
        *t = nt;
        *cap = c;
    }
    (*t)[(*n)++] = v;
    return 0;
}

/* Buckets for hour (24) or weekday (7) guards: counting pass, then fill. */
static int build_buckets(vd_ruleset *rs, const vd_pred **guards, int kind, unsigned nb,
                         uint32_t *first, uint32_t **out)
{
    memset(first, 0, (nb + 1) * sizeof *first);
    for (uint32_t s = 0; s < rs->nsegs; s++)
        if (rs->guard[s] == kind)
            for (unsigned b = 0; b < nb; b++)
                if (guards[s]->bits[b / 64] >> (b % 64) & 1)
                    first[b + 1]++;
    for (unsigned b = 0; b < nb; b++)
        first[b + 1] += first[b];
    *out = vd_malloc((first[nb] + 1) * sizeof **out);
    if (!*out)
        return -1;
    uint32_t fill[25];
    memcpy(fill, first, nb * sizeof *fill);
    for (uint32_t s = 0; s < rs->nsegs; s++)
        if (rs->guard[s] == kind)
            for (unsigned b = 0; b < nb; b++)
                if (guards[s]->bits[b / 64] >> (b % 64) & 1)
                    (*out)[fill[b]++] = s;
    return 0;
}

/* Per segment, the rules that use it; per slot, the rules a request must
 * walk (those without a string guard). A request then finds a slot's
 * string-guarded winner from the few segments it evaluated, not by walking
 * every rule. */
static int build_uses(vd_ruleset *rs)
{
    uint32_t total = 0, checks = 0;
    for (uint32_t i = 0; i < rs->nslots; i++)
        total += rs->slots[i].nrules;
    rs->use_first = vd_calloc(rs->nsegs + 1, sizeof *rs->use_first);
    rs->uses = vd_malloc((total + 1) * sizeof *rs->uses);
    rs->check_first = vd_calloc(rs->nslots + 1, sizeof *rs->check_first);
    rs->check = vd_malloc((total + 1) * sizeof *rs->check);
    if (!rs->use_first || !rs->uses || !rs->check_first || !rs->check)
        return -1;
    for (uint32_t i = 0; i < rs->nslots; i++)
        for (uint32_t k = 0; k < rs->slots[i].nrules; k++)
            rs->use_first[rs->slots[i].rules[k].segment + 1]++;
    for (uint32_t s = 0; s < rs->nsegs; s++)
        rs->use_first[s + 1] += rs->use_first[s];
    uint32_t *fill = vd_malloc((rs->nsegs + 1) * sizeof *fill);
    if (!fill)
        return -1;
    memcpy(fill, rs->use_first, (rs->nsegs + 1) * sizeof *fill);
    for (uint32_t i = 0; i < rs->nslots; i++) {
        rs->check_first[i] = checks;
        for (uint32_t k = 0; k < rs->slots[i].nrules; k++) {
            uint32_t seg = rs->slots[i].rules[k].segment;
            rs->uses[fill[seg]++] = (vd_seg_use){ i, k };
            if (!vd_string_guarded(rs, seg))
                rs->check[checks++] = k;
        }
    }
    rs->check_first[rs->nslots] = checks;
    vd_free(fill);
    return 0;
}

/* ---- identical predicates ------------------------------------------------
 * Sets of any shape repeat conditions ("device is mobile", "path contains
 * sale", "medium is paid or social") across many segments; each distinct
 * one is tested at most once per request. Two predicates are identical when
 * every field the test reads is equal (the op is only for explain). */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    return (h ^ vd_hash64(p, n)) * 0x100000001b3ULL;
}

static uint64_t pred_hash(const vd_pred *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    uint8_t head[8] = { p->attr.id, p->type, p->test, p->negate, p->if_missing, p->lo_incl, p->hi_incl, p->bools };
    h = mix(h, head, sizeof head);
    h = mix(h, p->attr.sub.p, p->attr.sub.n);
    for (uint32_t i = 0; i < p->nstrs; i++)
        h = mix(h, p->strs[i].p, p->strs[i].n);
    h = mix(h, p->nums, p->nnums * sizeof *p->nums);
    h = mix(h, &p->lo, sizeof p->lo);
    h = mix(h, &p->hi, sizeof p->hi);
    return h;
}

static bool pred_same(const vd_pred *a, const vd_pred *b)
{
    if (a->attr.id != b->attr.id || a->type != b->type || a->test != b->test || a->negate != b->negate ||
        a->if_missing != b->if_missing || a->lo_incl != b->lo_incl || a->hi_incl != b->hi_incl ||
        a->bools != b->bools || a->sorted != b->sorted || a->nstrs != b->nstrs || a->nnums != b->nnums ||
        a->nnets != b->nnets || a->nbits != b->nbits || !vd_str_eq(a->attr.sub, b->attr.sub) ||
        memcmp(&a->lo, &b->lo, sizeof a->lo) || memcmp(&a->hi, &b->hi, sizeof a->hi) ||
        memcmp(&a->lat, &b->lat, sizeof a->lat) || memcmp(&a->lon, &b->lon, sizeof a->lon) ||
        memcmp(&a->km, &b->km, sizeof a->km))
        return false;
    for (uint32_t i = 0; i < a->nstrs; i++)
        if (!vd_str_eq(a->strs[i], b->strs[i]))
            return false;
    if (a->nnums && memcmp(a->nums, b->nums, a->nnums * sizeof *a->nums))
        return false;
    if (a->nnets && memcmp(a->nets, b->nets, a->nnets * sizeof *a->nets))
        return false;
    if (a->nbits && memcmp(a->bits, b->bits, (a->nbits + 63) / 64 * sizeof *a->bits))
        return false;
    return true;
}

/* Small string sets: the hash of each member, so a test compares one hash
 * of the request value (memoized) with each before any bytes. */
static int build_set_hashes(vd_ruleset *rs)
{
    for (uint32_t p = 0; p < rs->npreds; p++) {
        vd_pred *pr = &rs->preds[p];
        if (pr->test != VD_T_SET || pr->nstrs == 0 || pr->nstrs > VD_SET_HASHED)
            continue;
        uint64_t *h = vd_arena_alloc(&rs->arena, pr->nstrs * sizeof *h);
        if (!h)
            return -1;
        for (uint32_t i = 0; i < pr->nstrs; i++)
            h[i] = vd_hash64_ci(pr->strs[i].p, pr->strs[i].n);
        pr->hashes = h;
    }
    return 0;
}

/* One id per distinct (attribute, NAME) the predicates read. */
static int build_aslots(vd_ruleset *rs)
{
    uint32_t n = rs->npreds, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *tab = vd_malloc(cap * sizeof *tab);
    rs->pred_aslot = vd_malloc((n + 1) * sizeof *rs->pred_aslot);
    if (!tab || !rs->pred_aslot) {
        vd_free(tab);
        return -1;
    }
    memset(tab, 0xff, cap * sizeof *tab);
    rs->naslots = 0;
    for (uint32_t p = 0; p < n; p++) {
        const vd_attr_ref *a = &rs->preds[p].attr;
        uint32_t slot = (uint32_t)mix(a->id, a->sub.p, a->sub.n) & (cap - 1);
        for (; tab[slot] != UINT32_MAX; slot = (slot + 1) & (cap - 1)) {
            const vd_attr_ref *b = &rs->preds[tab[slot]].attr;
            if (a->id == b->id && vd_str_eq(a->sub, b->sub))
                break;
        }
        if (tab[slot] == UINT32_MAX) {
            tab[slot] = p;
            rs->pred_aslot[p] = rs->naslots++;
        } else {
            rs->pred_aslot[p] = rs->pred_aslot[tab[slot]];
        }
    }
    vd_free(tab);
    return 0;
}

static int build_shared_preds(vd_ruleset *rs)
{
    uint32_t n = rs->npreds, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *tab = vd_malloc(cap * sizeof *tab), *first = vd_malloc((n + 1) * sizeof *first);
    rs->pred_share = vd_malloc((n + 1) * sizeof *rs->pred_share);
    if (!tab || !first || !rs->pred_share) {
        vd_free(tab);
        vd_free(first);
        return -1;
    }
    memset(tab, 0xff, cap * sizeof *tab);
    /* first[p]: the first predicate identical to p. */
    for (uint32_t p = 0; p < n; p++) {
        uint32_t slot = (uint32_t)pred_hash(&rs->preds[p]) & (cap - 1);
        first[p] = p;
        for (; tab[slot] != UINT32_MAX; slot = (slot + 1) & (cap - 1))
            if (pred_same(&rs->preds[tab[slot]], &rs->preds[p])) {
                first[p] = tab[slot];
                break;
            }
        if (first[p] == p)
            tab[slot] = p;
    }
    for (uint32_t p = 0; p < n; p++)
        rs->pred_share[p] = UINT32_MAX;
    rs->nshared = 0;
    for (uint32_t p = 0; p < n; p++) {
        uint32_t f = first[p];
        if (f == p)
            continue;
        if (rs->pred_share[f] == UINT32_MAX)
            rs->pred_share[f] = rs->nshared++;
        rs->pred_share[p] = rs->pred_share[f];
    }
    vd_free(tab);
    vd_free(first);
    return 0;
}

static int use_cmp(const void *a, const void *b)
{
    const vd_seg_use *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Each slot's words in a decision's rule bitmaps, and its rules without a
 * string guard as such a bitmap (every ruleset, keyed or not). */
static int build_slot_bits(vd_ruleset *rs)
{
    rs->slot_word = vd_malloc((rs->nslots + 1) * sizeof *rs->slot_word);
    if (!rs->slot_word)
        return -1;
    uint64_t words = 0;
    for (uint32_t i = 0; i < rs->nslots; i++) {
        rs->slot_word[i] = (uint32_t)words;
        words += (rs->slots[i].nrules + 63) / 64;
    }
    if (words >= UINT32_MAX)
        return -1;
    rs->slot_word[rs->nslots] = (uint32_t)words;
    rs->check_bits = vd_calloc(words + 1, sizeof *rs->check_bits);
    if (!rs->check_bits)
        return -1;
    for (uint32_t i = 0; i < rs->nslots; i++) {
        uint32_t nc;
        const uint32_t *c = vd_index_checks(rs, i, &nc);
        for (uint32_t k = 0; k < nc; k++)
            rs->check_bits[rs->slot_word[i] + c[k] / 64] |= 1ULL << (c[k] % 64);
    }
    return 0;
}

/* Per index entry, one run of bitmap pieces (or whole words) per slot
 * using its segments. */
static int build_entry_runs(vd_ruleset *rs)
{
    size_t total = 0;
    for (uint32_t a = 0; a < rs->nindex; a++)
        for (uint32_t e = 0; e <= rs->index[a].mask; e++)
            for (uint32_t k = 0; rs->index[a].tab[e].key.p && k < rs->index[a].tab[e].n; k++) {
                uint32_t seg = rs->index_segs[rs->index[a].tab[e].first + k];
                total += rs->use_first[seg + 1] - rs->use_first[seg];
            }
    if (total >= UINT32_MAX)
        return -1;
    /* One entry's uses sorted by (slot, rule), then cut into runs of
     * pieces; at most one run and one piece per use, and a dense run has
     * at most two words per piece it replaces. */
    vd_seg_use *uses = vd_malloc((total + 1) * sizeof *uses);
    rs->entry_runs = vd_malloc((total + 1) * sizeof *rs->entry_runs);
    rs->run_bits = vd_malloc((total + 1) * sizeof *rs->run_bits);
    rs->run_words = vd_calloc(2 * total + 1, sizeof *rs->run_words);
    if (!uses || !rs->entry_runs || !rs->run_bits || !rs->run_words) {
        vd_free(uses);
        return -1;
    }
    uint32_t nr = 0, nb = 0, nw = 0;
    for (uint32_t a = 0; a < rs->nindex; a++)
        for (uint32_t e = 0; e <= rs->index[a].mask; e++) {
            vd_index_entry *ent = &rs->index[a].tab[e];
            if (!ent->key.p)
                continue;
            uint32_t un = 0;
            for (uint32_t k = 0; k < ent->n; k++) {
                uint32_t nu, seg = rs->index_segs[ent->first + k];
                const vd_seg_use *u = vd_index_uses(rs, seg, &nu);
                memcpy(uses + un, u, nu * sizeof *u);
                un += nu;
            }
            qsort(uses, un, sizeof *uses, use_cmp);
            ent->rfirst = nr;
            for (uint32_t k = 0; k < un; k++) {
                uint32_t w = uses[k].rule / 64;
                uint64_t bit = 1ULL << (uses[k].rule % 64);
                if (nr == ent->rfirst || rs->entry_runs[nr - 1].slot != uses[k].slot)
                    rs->entry_runs[nr++] = (vd_slot_run){ uses[k].slot, nb, 0, 0 };
                vd_slot_run *run = &rs->entry_runs[nr - 1];
                if (run->n && rs->run_bits[nb - 1].word == w) {
                    rs->run_bits[nb - 1].bits |= bit;
                } else {
                    rs->run_bits[nb++] = (vd_rule_bits){ bit, w };
                    run->n++;
                }
                if (k + 1 < un && uses[k + 1].slot == run->slot)
                    continue;
                /* The run is complete: as many words as it has pieces
                 * over two, or more, and it is ORed as whole words. */
                uint32_t sw = rs->slot_word[run->slot + 1] - rs->slot_word[run->slot];
                if (sw >= 4 && 2 * run->n >= sw) {
                    for (uint32_t q = 0; q < run->n; q++)
                        rs->run_words[nw + rs->run_bits[run->first + q].word] = rs->run_bits[run->first + q].bits;
                    nb = run->first;
                    *run = (vd_slot_run){ run->slot, nw, sw, 1 };
                    nw += sw;
                }
            }
            ent->rn = nr - ent->rfirst;
        }
    vd_free(uses);
    /* Sized for the worst case above: keep what was used. */
    vd_slot_run *er = vd_realloc(rs->entry_runs, (nr + 1) * sizeof *er);
    vd_rule_bits *rb = vd_realloc(rs->run_bits, (nb + 1) * sizeof *rb);
    uint64_t *rw = vd_realloc(rs->run_words, (nw + 1) * sizeof *rw);
    rs->entry_runs = er ? er : rs->entry_runs;
    rs->run_bits = rb ? rb : rs->run_bits;
    rs->run_words = rw ? rw : rs->run_words;
    return 0;
}

/* A request names its slots: one hash and (almost always) one compare
 * each, instead of a bisection of string compares. */
static int build_slot_table(vd_ruleset *rs)
{
    static atomic_uint_fast64_t serials;
    rs->slot_serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
    uint32_t cap = 8;
    while (cap < 4 * rs->nslots)   /* a quarter full at most: a probe or two */
        cap *= 2;
    rs->slot_tab = vd_malloc(cap * sizeof *rs->slot_tab);
    if (!rs->slot_tab)
        return -1;
    for (uint32_t h = 0; h < cap; h++)
        rs->slot_tab[h] = (vd_slot_ent){ { 0, 0 }, 0, UINT32_MAX };
    rs->slot_mask = cap - 1;
    for (uint32_t i = 0; i < rs->nslots; i++) {
        vd_str name = rs->slots[i].name;
        vd_slot_key k = vd_slot_key_of(name.p, name.n);
        uint32_t h = vd_slot_hash(k, name.n) & rs->slot_mask;
        while (rs->slot_tab[h].slot != UINT32_MAX)
            h = (h + 1) & rs->slot_mask;
        rs->slot_tab[h] = (vd_slot_ent){ k, (uint32_t)name.n, i };
    }
    return 0;
}

/* ---- timeless subtrees ----------------------------------------------------
 * A subtree without time predicates (references followed) never bounds
 * valid_until: the evaluator tests it as plain booleans (or as a branching
 * program, below), and the children of its all/any nodes are reordered,
 * which cannot change its verdict: an `all` tests first the child most
 * likely to be false per unit of cost, an `any` the one most likely to be
 * true, so short-circuiting settles the node early (the classic order for
 * independent tests: ascending cost / P(settle)). Costs and probabilities
 * are rough a priori figures (key_cost's traffic shares), not traffic.
 * Each segment's nodes are contiguous with children after their parent,
 * so one backward pass per segment sees children first. */
typedef struct tl_state {
    vd_ruleset *rs;
    double *cost;             /* per node: expected evaluation cost */
    double *prob;             /* per node: rough P(true) */
    uint8_t *done;            /* per segment */
} tl_state;

typedef struct tl_child {
    vd_node node;
    double cost, prob, key;
    uint8_t timeless;
} tl_child;

/* Rough share of requests for which a predicate holds. */
static double pred_prob(const vd_pred *p)
{
    double q = 0.5;
    unsigned c = 0;
    switch (p->test) {
    case VD_T_SET:
        if (p->nstrs)
            c = p->nstrs * key_cost(p);
        break;
    case VD_T_PREFIX:
        c = prefix_cost(p);
        break;
    case VD_T_CONTAINS:
    case VD_T_SUFFIX:
        c = contains_cost(p, p->test == VD_T_SUFFIX);
        break;
    default:
        break;
    }
    if (c)
        q = c * 0.005 < 0.95 ? c * 0.005 : 0.95;
    return p->negate ? 1 - q : q;
}

static void tl_segment(tl_state *st, uint32_t s, int depth)
{
    vd_ruleset *rs = st->rs;
    if (st->done[s] || depth > VD_MAX_REF_DEPTH + 1)
        return;
    st->done[s] = 1;
    const vd_segment *seg = &rs->segs[s];
    for (uint32_t i = seg->node_end; i-- > seg->node_first;) {
        vd_node *n = &rs->nodes[i];
        uint8_t tl = 1;
        double cost = 1, prob = 0.5;
        switch (n->kind) {
        case VD_N_PRED:
            tl = !vd_pred_timed(rs->preds[n->a].test, rs->preds[n->a].type);
            prob = pred_prob(&rs->preds[n->a]);
            break;
        case VD_N_REF: {
            uint32_t root = rs->segs[n->a].root;
            tl_segment(st, n->a, depth + 1);
            tl = rs->timeless[root];
            prob = st->prob[root];
            cost = 2 + (st->cost[root] < 6 ? st->cost[root] : 6);   /* memoized after a first walk */
            break;
        }
        case VD_N_NOT:
            tl = rs->timeless[n->a];
            cost = st->cost[n->a];
            prob = 1 - st->prob[n->a];
            break;
        default: {        /* all / any */
            bool any = n->kind == VD_N_ANY;
            tl_child ch[16];
            bool sort = n->n > 1 && n->n <= 16;
            for (uint32_t k = 0; k < n->n; k++) {
                tl &= rs->timeless[n->a + k];
                if (sort) {
                    double c = st->cost[n->a + k], q = st->prob[n->a + k];
                    double settle = any ? q : 1 - q;
                    ch[k] = (tl_child){ rs->nodes[n->a + k], c, q, c / (settle > 1e-6 ? settle : 1e-6),
                                        rs->timeless[n->a + k] };
                }
            }
            if (tl && sort) {
                /* Insertion sort: stable, and n is small. */
                for (uint32_t k = 1; k < n->n; k++) {
                    tl_child v = ch[k];
                    uint32_t j = k;
                    for (; j > 0 && ch[j - 1].key > v.key; j--)
                        ch[j] = ch[j - 1];
                    ch[j] = v;
                }
                for (uint32_t k = 0; k < n->n; k++) {
                    rs->nodes[n->a + k] = ch[k].node;
                    st->cost[n->a + k] = ch[k].cost;
                    st->prob[n->a + k] = ch[k].prob;
                    rs->timeless[n->a + k] = ch[k].timeless;
                }
            }
            /* Expected cost in the (new) order; P(all) = product, P(any) =
             * 1 - product of the complements. */
            double reach = 1, all_p = 1, none_p = 1;
            cost = 0;
            for (uint32_t k = 0; k < n->n; k++) {
                double q = st->prob[n->a + k];
                cost += reach * st->cost[n->a + k];
                reach *= any ? 1 - q : q;
                all_p *= q;
                none_p *= 1 - q;
            }
            prob = any ? 1 - none_p : all_p;
            break;
        }
        }
        rs->timeless[i] = tl;
        st->cost[i] = cost;
        st->prob[i] = prob;
    }
}

static int build_timeless(vd_ruleset *rs)
{
    rs->timeless = vd_calloc(rs->nnodes + 1, 1);
    tl_state st = { rs, vd_calloc(rs->nnodes + 1, sizeof *st.cost), vd_calloc(rs->nnodes + 1, sizeof *st.prob),
                    vd_calloc(rs->nsegs + 1, 1) };
    int rc = 0;
    if (!rs->timeless || !st.cost || !st.prob || !st.done)
        rc = -1;
    for (uint32_t s = 0; rc == 0 && s < rs->nsegs; s++)
        tl_segment(&st, s, 0);
    vd_free(st.cost);
    vd_free(st.prob);
    vd_free(st.done);
    return rc;
}

/* ---- branching programs for timeless segments ---------------------------
 * Compiled backwards with the continuations known: a child of an `all`
 * goes on to its next sibling when true and to the node's false exit when
 * false, a child of an `any` the other way round, `not` swaps the exits.
 * Every leaf is emitted once, so the program is as long as the tree has
 * leaves; children keep the order build_timeless gave them. */
typedef struct prog_b {
    vd_ruleset *rs;
    vd_ins *ins;
    uint32_t n, cap;
    bool oom;
} prog_b;

static uint32_t prog_emit(prog_b *b, uint32_t op, uint32_t t, uint32_t f)
{
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 1024;
        vd_ins *ni = cap < b->cap ? NULL : vd_realloc(b->ins, (size_t)cap * sizeof *ni);
        if (!ni || b->n >= VD_PC_FALSE - 1) {
            b->oom = true;
            return VD_PC_FALSE;
        }
        b->ins = ni;
        b->cap = cap;
    }
    b->ins[b->n] = (vd_ins){ op, t, f };
    return b->n++;
}

/* Entry pc of node's program with exits t and f; skip: a child of the root
 * taken as true (the string guard), or VD_NO_NODE. */
static uint32_t prog_node(prog_b *b, uint32_t node, uint32_t skip, uint32_t t, uint32_t f)
{
    const vd_node *n = &b->rs->nodes[node];
    uint32_t e;
    switch (n->kind) {
    case VD_N_ALL:
        e = t;
        for (uint32_t i = n->n; i-- > 0;)
            if (n->a + i != skip)
                e = prog_node(b, n->a + i, VD_NO_NODE, e, f);
        return e;
    case VD_N_ANY:
        e = f;
        for (uint32_t i = n->n; i-- > 0;)
            e = prog_node(b, n->a + i, VD_NO_NODE, t, e);
        return e;
    case VD_N_NOT:
        return prog_node(b, n->a, VD_NO_NODE, f, t);
    case VD_N_REF:
        return prog_emit(b, VD_INS_REF | n->a, t, f);
    default:
        return prog_emit(b, n->a, t, f);
    }
}

static int build_programs(vd_ruleset *rs)
{
    prog_b b = { rs, NULL, 0, 0, false };
    rs->prog_entry = vd_malloc((rs->nsegs + 1) * sizeof *rs->prog_entry);
    rs->prog_past = vd_malloc((rs->nsegs + 1) * sizeof *rs->prog_past);
    if (!rs->prog_entry || !rs->prog_past)
        return -1;
    for (uint32_t s = 0; s < rs->nsegs; s++) {
        const vd_segment *seg = &rs->segs[s];
        rs->prog_entry[s] = rs->prog_past[s] = VD_PC_NONE;
        if (!rs->timeless[seg->root])
            continue;
        rs->prog_entry[s] = prog_node(&b, seg->root, VD_NO_NODE, VD_PC_TRUE, VD_PC_FALSE);
        if (seg->guard_node != VD_NO_NODE)
            rs->prog_past[s] = seg->guard_node == seg->root
                                   ? VD_PC_TRUE
                                   : prog_node(&b, seg->root, seg->guard_node, VD_PC_TRUE, VD_PC_FALSE);
    }
    rs->prog = b.ins;
    rs->nprog = b.n;
    return b.oom ? -1 : 0;
}

/* Lazy probing pays when a slot's walk often ends before the first rule
 * filed under a costly attribute: only rules without a string guard (in
 * check_bits: unguarded, hour or weekday) or filed under another attribute
 * can win before it, and keyed ones are candidates for few requests. So
 * attribute a is deferred for slot sl only when at least
 * VD_LAZY_MIN_CHECKS rules without a string guard come before its first
 * rule r; else the walk reaches r almost always and splitting it would
 * only cost (measured in docs/PERFORMANCE.md, "Lazy probing"). */
#define VD_LAZY_MIN_CHECKS 2

static bool lazy_worth(const vd_ruleset *rs, uint32_t sl, uint32_t a, uint32_t r)
{
    if (r == UINT32_MAX || !(rs->index[a].family & VD_COSTLY_FAMILIES))
        return false;
    const uint64_t *cb = rs->check_bits + rs->slot_word[sl];
    unsigned n = 0;
    for (uint32_t w = 0; w < r / 64 && n < VD_LAZY_MIN_CHECKS; w++)
        n += (unsigned)__builtin_popcountll(cb[w]);
    if (r % 64)
        n += (unsigned)__builtin_popcountll(cb[r / 64] & ((1ULL << (r % 64)) - 1));
    return n >= VD_LAZY_MIN_CHECKS;
}

int vd_index_build(vd_ruleset *rs)
{
    if (build_timeless(rs) < 0)
        return -1;

    size_t nt = 0, cap = 0;
    triple *t = NULL;
    const vd_pred **guards = vd_calloc(rs->nsegs + 1, sizeof *guards);
    rs->unguarded = vd_malloc((rs->nsegs + 1) * sizeof *rs->unguarded);
    rs->guard = vd_calloc(rs->nsegs + 1, 1);
    if (!guards || !rs->unguarded || !rs->guard)
        goto oom;
    for (uint32_t s = 0; s < rs->nsegs; s++) {
        int kind = VD_G_NONE;
        uint32_t node = VD_NO_NODE;
        const vd_pred *g = find_guard(rs, &rs->segs[s], &kind, &node);
        guards[s] = g;
        bool str_guard = kind == VD_G_SET || kind == VD_G_PREFIX || kind == VD_G_CONTAINS || kind == VD_G_SUFFIX;
        rs->segs[s].guard_node = g && str_guard ? node : VD_NO_NODE;
        rs->guard[s] = (uint8_t)(g ? kind : VD_G_NONE);
        if (!g) {
            rs->unguarded[rs->nunguarded++] = s;
            continue;
        }
        uint8_t mode = kind == VD_G_PREFIX ? VD_IX_PREFIX : kind == VD_G_CONTAINS ? VD_IX_CONTAINS
                     : kind == VD_G_SUFFIX ? VD_IX_SUFFIX : VD_IX_EXACT;
        if (str_guard)
            for (uint32_t k = 0; k < g->nstrs; k++)
                if (push(&t, &nt, &cap, (triple){ g->attr.id, mode, g->attr.sub, g->strs[k], s }) < 0)
                    goto oom;
    }
    if (build_buckets(rs, guards, VD_G_HOUR, 24, rs->hour_first, &rs->hour_segs) < 0 ||
        build_buckets(rs, guards, VD_G_WEEKDAY, 7, rs->wday_first, &rs->wday_segs) < 0)
        goto oom;
    vd_free(guards);
    guards = NULL;
    if (build_uses(rs) < 0 || build_slot_bits(rs) < 0 || build_shared_preds(rs) < 0 || build_aslots(rs) < 0 || build_slot_table(rs) < 0 ||
        build_programs(rs) < 0 || build_set_hashes(rs) < 0)
        goto oom;
    if (nt == 0) {
        vd_free(t);
        return 0;
    }
    qsort(t, nt, sizeof *t, triple_cmp);
    rs->index_segs = vd_malloc(nt * sizeof *rs->index_segs);
    /* At most one table per distinct (attribute, NAME, exact|prefix). */
    rs->index = vd_calloc(nt, sizeof *rs->index);
    if (!rs->index_segs || !rs->index)
        goto oom;
    for (size_t i = 0; i < nt; i++)
        rs->index_segs[i] = t[i].seg;
    /* One open-addressing table per (attribute, exact|prefix) over its keys. */
    for (size_t i = 0; i < nt;) {
        size_t j = i, distinct = 0;
        uint32_t maxlen = 0;
        while (j < nt && same_table(&t[j], &t[i])) {
            if (j == i || !same_key(&t[j], &t[j - 1]))
                distinct++;
            if (t[j].key.n > maxlen)
                maxlen = (uint32_t)t[j].key.n;
            j++;
        }
        uint32_t size = 16;
        while (size < distinct * 2)
            size *= 2;
        vd_index_attr *ia = &rs->index[rs->nindex++];
        ia->attr.id = t[i].attr;
        ia->attr.sub = t[i].sub;
        ia->mode = t[i].mode;
        ia->nkeys = (uint32_t)distinct;
        ia->maxlen = maxlen;
        ia->mask = size - 1;
        ia->tab = vd_calloc(size, sizeof *ia->tab);
        if (!ia->tab)
            goto oom;
        for (size_t k = i; k < j;) {
            size_t e = k;
            while (e < j && same_key(&t[e], &t[k]))
                e++;
            uint64_t h = vd_hash64_ci(t[k].key.p, t[k].key.n);
            uint32_t slot = (uint32_t)h & ia->mask;
            while (ia->tab[slot].key.p)
                slot = (slot + 1) & ia->mask;
            ia->tab[slot] = (vd_index_entry){ t[k].key, h, (uint32_t)k, (uint32_t)(e - k), 0, 0 };
            k = e;
        }
        if (ia->mode == VD_IX_CONTAINS || ia->mode == VD_IX_SUFFIX) {
            /* One automaton over the table's keys: term k is the key of
             * tab[term_slot[k]]. */
            ia->term_slot = vd_malloc((distinct + 1) * sizeof *ia->term_slot);
            vd_str *terms = vd_malloc((distinct + 1) * sizeof *terms);
            if (!ia->term_slot || !terms) {
                vd_free(terms);
                goto oom;
            }
            uint32_t nk = 0;
            for (uint32_t e = 0; e <= ia->mask; e++)
                if (ia->tab[e].key.p) {
                    ia->term_slot[nk] = e;
                    terms[nk++] = ia->tab[e].key;
                }
            ia->acm = vd_acm_build_ids(&rs->arena, terms, nk, VD_ACM_DENSE_BUDGET);
            vd_free(terms);
            if (!ia->acm)
                goto oom;
        }
        /* A request reaches one exact key, at most maxlen prefixes, at
         * most every key of a contains / suffix table. */
        rs->max_hits += ia->mode == VD_IX_EXACT ? 1
                      : ia->mode == VD_IX_PREFIX ? (ia->maxlen < distinct ? ia->maxlen : (uint32_t)distinct)
                                                 : (uint32_t)distinct;
        i = j;
    }
    vd_free(t);
    t = NULL;
    /* Per slot, the first rule filed under each index attribute it uses,
     * for the attributes a decision may defer (0..63, of a costly family),
     * by ascending rule. */
    uint32_t *first = vd_malloc(((size_t)rs->nindex * rs->nslots + 1) * sizeof *first);
    rs->slot_lazy_first = vd_calloc(rs->nslots + 1, sizeof *rs->slot_lazy_first);
    if (!first || !rs->slot_lazy_first || build_entry_runs(rs) < 0) {
        vd_free(first);
        goto oom;
    }
    memset(first, 0xff, ((size_t)rs->nindex * rs->nslots + 1) * sizeof *first);
    for (uint32_t a = 0; a < rs->nindex; a++) {
        vd_index_attr *ia = &rs->index[a];
        ia->family = vd_attr_info_get(ia->attr.id)->family;
        for (unsigned f = 0; a < 64 && f < VD_INDEX_FAMILIES; f++)
            if (ia->family >> f & 1)
                rs->index_family[f] |= 1ULL << a;
        for (uint32_t e = 0; e <= ia->mask; e++) {
            if (!ia->tab[e].key.p)
                continue;
            for (uint32_t k = 0; k < ia->tab[e].n; k++) {
                uint32_t nu, seg = rs->index_segs[ia->tab[e].first + k];
                const vd_seg_use *u = vd_index_uses(rs, seg, &nu);
                for (uint32_t x = 0; x < nu; x++) {
                    uint32_t *f = &first[(size_t)u[x].slot * rs->nindex + a];
                    if (u[x].rule < *f)
                        *f = u[x].rule;
                }
            }
        }
    }
    uint32_t nl = 0;
    for (uint32_t sl = 0; sl < rs->nslots; sl++)
        for (uint32_t a = 0; a < rs->nindex && a < 64; a++)
            nl += lazy_worth(rs, sl, a, first[(size_t)sl * rs->nindex + a]);
    rs->lazy_first = vd_malloc((nl + 1) * sizeof *rs->lazy_first);
    rs->slot_eager = vd_calloc(rs->nslots + 1, sizeof *rs->slot_eager);
    if (!rs->lazy_first || !rs->slot_eager) {
        vd_free(first);
        goto oom;
    }
    nl = 0;
    for (uint32_t sl = 0; sl < rs->nslots; sl++) {
        rs->slot_lazy_first[sl] = nl;
        for (uint32_t a = 0; a < rs->nindex && a < 64; a++) {
            uint32_t r = first[(size_t)sl * rs->nindex + a];
            if (!lazy_worth(rs, sl, a, r))
                continue;
            uint32_t j = nl++;    /* insertion by rule (few attributes a slot) */
            for (; j > rs->slot_lazy_first[sl] && rs->lazy_first[j - 1].rule > r; j--)
                rs->lazy_first[j] = rs->lazy_first[j - 1];
            rs->lazy_first[j] = (vd_lazy_first){ r, a };
            rs->slot_eager[sl] |= 1ULL << a;    /* deferrable, for now */
        }
    }
    rs->slot_lazy_first[rs->nslots] = nl;
    rs->slot_want = vd_calloc(rs->nslots + 1, sizeof *rs->slot_want);
    if (!rs->slot_want) {
        vd_free(first);
        goto oom;
    }
    for (uint32_t sl = 0; sl < rs->nslots; sl++)
        for (uint32_t a = 0; a < rs->nindex; a++)
            if (rs->nindex > 64 || first[(size_t)sl * rs->nindex + a] != UINT32_MAX)
                rs->slot_want[sl] |= rs->nindex > 64 ? ~0ULL : 1ULL << a;
    for (uint32_t sl = 0; sl < rs->nslots; sl++)
        rs->slot_eager[sl] = rs->slot_want[sl] & ~rs->slot_eager[sl];
    vd_free(first);
    return 0;
oom:
    vd_free(guards);
    vd_free(t);
    return -1;
}
