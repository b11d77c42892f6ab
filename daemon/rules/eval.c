/* eval.c — evaluates compiled segments over a lazy context.
 *
 * Per worker memo, reset per request by bumping a generation counter; no
 * allocation, lock or syscall after the memo has been sized for a ruleset.
 * Alongside each verdict it tracks `until`, the next UTC instant at which a
 * time predicate it depended on could flip (docs/RULES.md, valid_until). */
#include "rules/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rules/index.h"
#include "rules/model.h"
#include "rules/terms.h"

typedef struct vmemo {
    uint32_t gen;
    bool hashed;              /* h is vd_hash64_ci of v (a string) */
    uint8_t resolved;         /* bit vd_term_mode: this value's terms of that mode are stamped */
    int8_t wday;              /* weekday_of(v) + 1, 0: not computed yet */
    uint64_t h;
    vd_value v;
} vmemo;

/* Verdict stamps: gen << 1 | verdict, valid when the stamp's generation is
 * the request's (gen stays below 2^31; generation 0 never marks one). */
typedef struct smemo {
    uint32_t w;               /* stamp | verdict once evaluated in this request */
    int64_t u;                /* its until */
} smemo;

#define STAMP_OK(w, stamp) (((w) | 1u) == ((stamp) | 1u))

struct vd_eval {
    const vd_ruleset *rs;
    vd_context *ctx;
    uint32_t gen;             /* 1 .. VD_EVAL_GEN_MAX */
    uint32_t stamp;           /* gen << 1 */
    uint32_t cap;             /* segments the arrays below hold */
    smemo *sm;                /* per segment */
    uint32_t pcap;            /* predicate groups */
    uint32_t *pv;             /* per predicate group: stamp | verdict */
    int64_t *pu;              /* its until (time predicates) */
    /* Predicate -> its group of identical predicates (rs->pred_group), or
     * to itself when sharing is off (rs->pred_share NULL: the tests'
     * brute force). */
    const uint32_t *canon;
    const uint32_t *gpred;    /* group -> the predicate tested for it */
    bool terms;               /* string tests by term stamps (off with sharing) */
    uint32_t *tstamp;         /* per term: gen when the request value meets it */
    uint32_t tcap;
    uint32_t *matched;        /* every matching segment evaluated in this request */
    uint32_t nmatched;
    uint32_t *evald;          /* every segment evaluated in this request, in order */
    uint32_t nevald;
    bool scanned;             /* vd_eval_matching ran: unevaluated = not a candidate */
    bool no_defer;            /* vd_eval_costly defers nothing (vd_eval_set_defer) */
    const vd_index_entry **hits;  /* index entries the request's values reach */
    uint32_t hitcap;
    uint32_t *slotgen, *slotpos;  /* requested position of a slot, valid when slotgen == gen */
    uint32_t slotcap;
    uint64_t *rule_bits;      /* the decision's rule bitmaps (rs->slot_word) */
    uint32_t rule_bits_cap;
    vmemo *vmemo;             /* request values by rs->pred_aslot */
    uint32_t vcap;
    size_t vused;             /* url.query values copied out of the context's scratch */
    char vbuf[2048];
};

#define VD_EVAL_GEN_MAX 0x7fffffffu

/* ---- term tables (model.h) ---------------------------------------------- */

typedef struct tkey {
    uint32_t aslot;
    uint32_t mode;
    vd_str s;
    uint64_t hash;            /* vd_hash64_ci(s) */
} tkey;

static uint8_t term_mode(const vd_ruleset *rs, uint32_t p)
{
    const vd_pred *pr = &rs->preds[p];
    if (!rs->pred_aslot || pr->nstrs == 0 || pr->nstrs > UINT16_MAX)
        return VD_TM_NONE;
    for (uint32_t i = 0; i < pr->nstrs; i++)
        if (pr->strs[i].n == 0)
            return VD_TM_NONE;    /* met by every value: test_value knows */
    switch (pr->test) {
    case VD_T_SET:      return VD_TM_EXACT;
    case VD_T_PREFIX:   return VD_TM_PREFIX;
    case VD_T_CONTAINS: return VD_TM_CONTAINS;
    case VD_T_SUFFIX:   return VD_TM_SUFFIX;
    default:            return VD_TM_NONE;
    }
}

/* Open addressing over the distinct keys k[0 .. n). */
static vd_term_slot *term_table(vd_arena *a, const tkey *k, size_t n, uint32_t base, uint32_t *mask)
{
    uint32_t size = 8;
    while (size < 2 * n)
        size *= 2;
    vd_term_slot *t = vd_arena_alloc(a, size * sizeof *t);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)k[i].hash & (size - 1);
        while (t[slot].key.p)
            slot = (slot + 1) & (size - 1);
        t[slot] = (vd_term_slot){ k[i].s, k[i].hash, base + (uint32_t)i };
    }
    *mask = size - 1;
    return t;
}

static int build_terms(vd_ruleset *rs)
{
    uint32_t np = rs->npreds;
    vd_term_pred *tp = vd_arena_alloc(&rs->arena, (np + 1) * sizeof *tp);
    vd_term_tab *tt = vd_arena_alloc(&rs->arena, (rs->naslots + 1) * sizeof *tt);
    if (!tp || !tt)
        return -1;
    size_t nk = 0;
    for (uint32_t p = 0; p < np; p++) {
        tp[p].mode = rs->group_pred[rs->pred_group[p]] == p ? term_mode(rs, p) : VD_TM_NONE;
        if (tp[p].mode) {
            tp[p].first = (uint32_t)nk;
            tp[p].n = (uint16_t)rs->preds[p].nstrs;
            nk += rs->preds[p].nstrs;
        }
    }
    rs->term_pred = tp;
    rs->term_tab = tt;
    if (nk == 0 || nk >= UINT32_MAX)
        return nk == 0 ? 0 : -1;
    uint32_t *terms = vd_arena_alloc(&rs->arena, nk * sizeof *terms);
    /* Distinct (slot, mode, string) by hashing, then ordered by (slot,
     * mode) with a counting sort, so each (slot, mode) gets consecutive
     * term ids (linear: a sort of every string cost ~10 % of a compile). */
    uint32_t cap = 16;
    while (cap < 2 * nk)
        cap *= 2;
    size_t ngroups = (size_t)rs->naslots * 5;
    tkey *dk = vd_malloc(nk * sizeof *dk), *k = vd_malloc(nk * sizeof *k);
    uint32_t *tab = vd_malloc(cap * sizeof *tab), *id = vd_malloc(nk * sizeof *id);
    uint32_t *gfirst = vd_calloc(ngroups + 1, sizeof *gfirst);
    vd_str *strs = vd_malloc(nk * sizeof *strs);
    int rc = -1;
    uint32_t nd = 0;
    if (!terms || !dk || !k || !tab || !id || !gfirst || !strs)
        goto out;
    memset(tab, 0xff, cap * sizeof *tab);
    for (uint32_t p = 0; p < np; p++)
        for (uint32_t i = 0; tp[p].mode && i < tp[p].n; i++) {
            vd_str str = rs->preds[p].strs[i];
            tkey key = { rs->pred_aslot[p], tp[p].mode, str, vd_hash64_ci(str.p, str.n) };
            uint32_t slot = (uint32_t)((key.hash ^ (key.aslot * 0x9e3779b97f4a7c15ULL + key.mode)) * 0xff51afd7ed558ccdULL >> 32) & (cap - 1);
            for (; tab[slot] != UINT32_MAX; slot = (slot + 1) & (cap - 1)) {
                const tkey *o = &dk[tab[slot]];
                if (o->hash == key.hash && o->aslot == key.aslot && o->mode == key.mode && vd_str_eq(o->s, str))
                    break;
            }
            if (tab[slot] == UINT32_MAX) {
                tab[slot] = nd;
                dk[nd++] = key;
            }
            terms[tp[p].first + i] = tab[slot];   /* distinct index for now */
        }
    for (uint32_t d = 0; d < nd; d++)
        gfirst[dk[d].aslot * 5 + dk[d].mode + 1]++;
    for (size_t g = 0; g < ngroups; g++)
        gfirst[g + 1] += gfirst[g];
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t t = gfirst[dk[d].aslot * 5 + dk[d].mode]++;
        id[d] = t;
        k[t] = dk[d];
    }
    for (size_t i = 0; i < nk; i++)
        terms[i] = id[terms[i]];
    for (uint32_t i = 0; i < nd;) {
        uint32_t j = i;
        while (j < nd && k[j].aslot == k[i].aslot && k[j].mode == k[i].mode) {
            strs[j - i] = k[j].s;
            j++;
        }
        size_t n = j - i;
        vd_term_tab *t = &tt[k[i].aslot];
        switch (k[i].mode) {
        case VD_TM_EXACT:
            if (!(t->exact = term_table(&rs->arena, k + i, n, i, &t->exact_mask)))
                goto out;
            break;
        case VD_TM_PREFIX:
            if (!(t->prefix = term_table(&rs->arena, k + i, n, i, &t->prefix_mask)))
                goto out;
            for (size_t d = 0; d < n; d++)
                if (strs[d].n > t->prefix_maxlen)
                    t->prefix_maxlen = (uint32_t)strs[d].n;
            break;
        default: {
            const vd_acm *m = vd_acm_build_ids(&rs->arena, strs, n, VD_ACM_DENSE_BUDGET);
            if (!m)
                goto out;
            if (k[i].mode == VD_TM_CONTAINS) {
                t->contains = m;
                t->contains_base = i;
            } else {
                t->suffix = m;
                t->suffix_base = i;
            }
            break;
        }
        }
        i = j;
    }
    uint32_t nt = nd;
    rs->pred_terms = terms;
    rs->nterms = nt;
    rc = 0;
out:
    vd_free(dk);
    vd_free(k);
    vd_free(tab);
    vd_free(id);
    vd_free(gfirst);
    vd_free(strs);
    return rc;
}

int vd_eval_prepare(vd_ruleset *rs)
{
    uint32_t n = rs->npreds;
    uint32_t *group = vd_arena_alloc(&rs->arena, (n + 1) * sizeof *group);
    uint32_t *gpred = vd_arena_alloc(&rs->arena, (n + 1) * sizeof *gpred);
    uint32_t *ident = vd_arena_alloc(&rs->arena, (n + 1) * sizeof *ident);
    uint32_t *first = vd_malloc((rs->nshared + 1) * sizeof *first);
    if (!group || !gpred || !ident || !first) {
        vd_free(first);
        return -1;
    }
    for (uint32_t i = 0; i < rs->nshared; i++)
        first[i] = UINT32_MAX;
    uint32_t ng = 0;
    for (uint32_t p = 0; p < n; p++) {
        uint32_t sh = rs->pred_share ? rs->pred_share[p] : UINT32_MAX;
        ident[p] = p;
        if (sh != UINT32_MAX && first[sh] != UINT32_MAX) {
            group[p] = first[sh];
            continue;
        }
        if (sh != UINT32_MAX)
            first[sh] = ng;
        gpred[ng] = p;
        group[p] = ng++;
    }
    vd_free(first);
    rs->pred_group = group;
    rs->group_pred = gpred;
    rs->pred_ident = ident;
    rs->ngroups = ng;
    return build_terms(rs);
}

vd_eval *vd_eval_new(void)
{
    return vd_calloc(1, sizeof(vd_eval));
}

void vd_eval_free(vd_eval *ev)
{
    if (!ev)
        return;
    vd_free(ev->sm);
    vd_free(ev->matched);
    vd_free(ev->evald);
    vd_free(ev->hits);
    vd_free(ev->pv);
    vd_free(ev->pu);
    vd_free(ev->tstamp);
    vd_free(ev->slotgen);
    vd_free(ev->slotpos);
    vd_free(ev->rule_bits);
    vd_free(ev->vmemo);
    vd_free(ev);
}

/* Every memo back to generation 0 (marks nothing): after a memo is
 * replaced the generation restarts, and no other memo may keep a mark of
 * an earlier request under a generation about to be reused. */
static void clear_memos(vd_eval *ev)
{
    if (ev->sm)
        memset(ev->sm, 0, ev->cap * sizeof *ev->sm);
    if (ev->slotgen)
        memset(ev->slotgen, 0, ev->slotcap * sizeof *ev->slotgen);
    if (ev->pv)
        memset(ev->pv, 0, ev->pcap * sizeof *ev->pv);
    if (ev->vmemo)
        memset(ev->vmemo, 0, ev->vcap * sizeof *ev->vmemo);
    if (ev->tstamp)
        memset(ev->tstamp, 0, ev->tcap * sizeof *ev->tstamp);
    ev->gen = 0;
}

int vd_eval_begin(vd_eval *ev, const vd_ruleset *rs, vd_context *ctx)
{
    if (rs->nsegs > ev->cap) {
        uint32_t cap = rs->nsegs;
        smemo *sm = vd_calloc(cap, sizeof *sm);
        uint32_t *mt = vd_malloc(cap * sizeof *mt);
        uint32_t *ed = vd_malloc(cap * sizeof *ed);
        if (!sm || !mt || !ed) {
            vd_free(sm);
            vd_free(mt);
            vd_free(ed);
            return -1;
        }
        vd_free(ev->sm);
        vd_free(ev->matched);
        vd_free(ev->evald);
        ev->sm = sm;
        ev->matched = mt;
        ev->evald = ed;
        ev->cap = cap;
        clear_memos(ev);
    }
    /* Every entry one request can reach (index.c counts them). */
    uint32_t hitcap = rs->max_hits + 1;
    if (hitcap > ev->hitcap) {
        const vd_index_entry **h = vd_malloc(hitcap * sizeof *h);
        if (!h)
            return -1;
        vd_free(ev->hits);
        ev->hits = h;
        ev->hitcap = hitcap;
    }
    /* One verdict per group of identical predicates; per predicate when
     * sharing is off (the tests' brute force). */
    uint32_t ngroups = rs->pred_share ? rs->ngroups : rs->npreds;
    if (ngroups > ev->pcap) {
        uint32_t *pv = vd_calloc(ngroups, sizeof *pv);
        int64_t *pu = vd_malloc(ngroups * sizeof *pu);
        if (!pv || !pu) {
            vd_free(pv);
            vd_free(pu);
            return -1;
        }
        vd_free(ev->pv);
        vd_free(ev->pu);
        ev->pv = pv;
        ev->pu = pu;
        ev->pcap = ngroups;
        clear_memos(ev);
    }
    if (rs->nterms > ev->tcap) {
        uint32_t *ts = vd_calloc(rs->nterms, sizeof *ts);
        if (!ts)
            return -1;
        vd_free(ev->tstamp);
        ev->tstamp = ts;
        ev->tcap = rs->nterms;
        /* Fresh stamps hold generation 0, which never marks a term. */
    }
    if (rs->nslots > ev->slotcap) {
        uint32_t *g = vd_calloc(rs->nslots, sizeof *g), *p = vd_malloc(rs->nslots * sizeof *p);
        if (!g || !p) {
            vd_free(g);
            vd_free(p);
            return -1;
        }
        vd_free(ev->slotgen);
        vd_free(ev->slotpos);
        ev->slotgen = g;
        ev->slotpos = p;
        ev->slotcap = rs->nslots;
        clear_memos(ev);
    }
    uint32_t words = (rs->slot_word ? rs->slot_word[rs->nslots] : 0) + 1;   /* never NULL */
    if (words > ev->rule_bits_cap) {
        uint64_t *b = vd_calloc(words, sizeof *b);   /* all zero: vd_eval_rule_bits */
        if (!b)
            return -1;
        vd_free(ev->rule_bits);
        ev->rule_bits = b;
        ev->rule_bits_cap = words;
    }
    if (rs->naslots > ev->vcap) {
        vmemo *vm = vd_calloc(rs->naslots, sizeof *vm);
        if (!vm)
            return -1;
        vd_free(ev->vmemo);
        ev->vmemo = vm;
        ev->vcap = rs->naslots;
        /* A fresh memo holds generation 0, which never marks an entry. */
    }
    ev->rs = rs;
    ev->ctx = ctx;
    ev->canon = rs->pred_share ? rs->pred_group : rs->pred_ident;
    ev->gpred = rs->pred_share ? rs->group_pred : rs->pred_ident;
    ev->terms = rs->pred_share && rs->term_pred;
    ev->vused = 0;
    ev->nmatched = 0;
    ev->nevald = 0;
    ev->scanned = false;
    /* Generation 0 never marks an entry; on wrap clear the memos once. */
    if (++ev->gen > VD_EVAL_GEN_MAX) {
        clear_memos(ev);
        ev->gen = 1;
    }
    ev->stamp = ev->gen << 1;
    return 0;
}

/* ---- predicate tests ------------------------------------------------------ */

static bool str_in(const vd_pred *p, vd_str s)
{
    if (p->sorted) {
        uint32_t lo = 0, hi = p->nstrs;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            int d = vd_str_cmp_ci(s, p->strs[mid]);
            if (d == 0)
                return true;
            if (d < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        return false;
    }
    for (uint32_t i = 0; i < p->nstrs; i++)
        if (vd_str_eq_ci(s, p->strs[i]))
            return true;
    return false;
}

static bool ip_in(const vd_pred *p, const vd_ipaddr *ip)
{
    for (uint32_t i = 0; i < p->nnets; i++) {
        if (vd_ipnet_contains(&p->nets[i], ip))
            return true;
    }
    return false;
}

static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371.0088, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1)
        a = 1;
    return 2 * r * asin(sqrt(a));
}

static int weekday_of(vd_str s)
{
    static const char names[] = "montuewedthufrisatsun";
    if (s.n != 3)
        return -1;
    for (int i = 0; i < 7; i++)
        if (vd_str_eq_ci(s, vd_str_make(names + 3 * i, 3)))
            return i;
    return -1;
}

static bool bit_get(const uint64_t *w, uint32_t i)
{
    return (w[i >> 6] >> (i & 63)) & 1;
}

/* Distance (1..nbits-1) to the next position on the cycle whose bit
 * differs from bit cur; 0 if every bit is the same. */
static uint32_t next_flip(const uint64_t *w, uint32_t nbits, uint32_t cur)
{
    uint64_t inv = bit_get(w, cur) ? ~0ULL : 0;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t i = pass ? 0 : cur + 1, end = pass ? cur : nbits;
        while (i < end) {
            uint64_t x = (w[i >> 6] ^ inv) >> (i & 63);
            if (x) {
                uint32_t pos = i + (uint32_t)__builtin_ctzll(x);
                if (pos < end)
                    return pos > cur ? pos - cur : pos + nbits - cur;
                break;
            }
            i = (i | 63) + 1;
        }
    }
    return 0;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Local time flips are capped by the next UTC offset change: after it the
 * local clock jumps and the arithmetic above no longer holds. */
static int64_t local_cap(const vd_context *ctx, int64_t t)
{
    return min64(t, ctx->local.next_transition);
}

/* A small string set against a value whose hash is memoized in vm. */
static bool str_in_hashed(const vd_pred *p, vd_str s, vmemo *vm)
{
    if (!vm->hashed) {
        vm->h = vd_hash64_ci(s.p, s.n);
        vm->hashed = true;
    }
    for (uint32_t i = 0; i < p->nstrs; i++)
        if (p->hashes[i] == vm->h && vd_str_eq_ci(s, p->strs[i]))
            return true;
    return false;
}

/* The test on a present value, and its `until` for time attributes. vm:
 * the value's memo entry, or NULL. */
static bool test_value(const vd_pred *p, const vd_context *ctx, const vd_value *v, vmemo *vm, int64_t *until)
{
    switch (p->test) {
    case VD_T_EXISTS:
        return true;
    case VD_T_SET:
        if (v->kind == VD_VAL_STR)
            return p->hashes && vm ? str_in_hashed(p, v->u.s, vm) : str_in(p, v->u.s);
        if (v->kind == VD_VAL_NUM) {
            for (uint32_t i = 0; i < p->nnums; i++)
                if (p->nums[i] == v->u.num)
                    return true;
            return false;
        }
        if (v->kind == VD_VAL_BOOL)
            return (p->bools >> (v->u.b ? 1 : 0)) & 1;
        return false;
    case VD_T_PREFIX:
    case VD_T_SUFFIX:
    case VD_T_CONTAINS:
        if (v->kind != VD_VAL_STR)
            return false;
        if (p->acm)
            return vd_acm_any(p->acm, v->u.s);
        for (uint32_t i = 0; i < p->nstrs; i++) {
            bool m = p->test == VD_T_PREFIX   ? vd_str_prefix_ci(v->u.s, p->strs[i])
                     : p->test == VD_T_SUFFIX ? vd_str_suffix_ci(v->u.s, p->strs[i])
                                              : vd_str_contains_ci(v->u.s, p->strs[i]);
            if (m)
                return true;
        }
        return false;
    case VD_T_RANGE: {
        if (v->kind != VD_VAL_NUM)
            return false;
        double x = v->u.num;
        bool in = (p->lo_incl ? x >= p->lo : x > p->lo) && (p->hi_incl ? x <= p->hi : x < p->hi);
        if (p->type == VD_AT_INSTANT || p->type == VD_AT_DATE) {
            /* Whole seconds / days with inclusive bounds: the next flip is
             * the lower bound ahead, or the day/second after the upper. */
            double next = x < p->lo ? p->lo : (x <= p->hi && isfinite(p->hi)) ? p->hi + 1 : INFINITY;
            if (isfinite(next)) {
                if (p->type == VD_AT_INSTANT) {
                    *until = min64(*until, (int64_t)next);
                } else {
                    int64_t sod = ctx->local.hour * 3600 + ctx->local.minute * 60 + ctx->local.second;
                    int64_t t = ctx->now - sod + ((int64_t)next - ctx->local.days) * 86400;
                    *until = min64(*until, local_cap(ctx, t));
                }
            }
        }
        return in;
    }
    case VD_T_IPNET:
        return v->kind == VD_VAL_IP && ip_in(p, &v->u.ip);
    case VD_T_WITHIN:
        return v->kind == VD_VAL_LOC && haversine_km(p->lat, p->lon, v->u.loc.lat, v->u.loc.lon) <= p->km;
    case VD_T_BITS: {
        int64_t sod = ctx->local.hour * 3600 + ctx->local.minute * 60 + ctx->local.second;
        uint32_t cur, step;
        int64_t start;        /* UTC start of the current hour / minute / day */
        if (p->type == VD_AT_WEEKDAY) {
            int d;
            if (vm) {
                if (!vm->wday)
                    vm->wday = (int8_t)((v->kind == VD_VAL_STR ? weekday_of(v->u.s) : -1) + 1);
                d = vm->wday - 1;
            } else {
                d = v->kind == VD_VAL_STR ? weekday_of(v->u.s) : -1;
            }
            if (d < 0)
                return false;
            cur = (uint32_t)d;
            step = 86400;
            start = ctx->now - sod;
        } else {
            if (v->kind != VD_VAL_NUM || !(v->u.num >= 0) || v->u.num >= p->nbits)
                return false;
            cur = (uint32_t)v->u.num;
            if (p->type == VD_AT_HOUR) {
                step = 3600;
                start = ctx->now - (sod % 3600);
            } else {
                step = 60;
                start = ctx->now - ctx->local.second;
            }
        }
        uint32_t k = next_flip(p->bits, p->nbits, cur);
        if (k)
            *until = min64(*until, local_cap(ctx, start + (int64_t)k * step));
        return bit_get(p->bits, cur);
    }
    default:
        return false;
    }
}

/* The request value predicate pi reads, fetched from the context once per
 * request and attribute. url.query values live in the context's scratch
 * (the next query lookup overwrites it): they are copied while vbuf has
 * room, else fetched each time. */
static const vd_value *pred_value(vd_eval *ev, uint32_t pi, const vd_pred *p, vd_value *tmp, vmemo **vm)
{
    uint32_t a = ev->rs->pred_aslot ? ev->rs->pred_aslot[pi] : UINT32_MAX;
    *vm = NULL;
    if (a == UINT32_MAX) {
        vd_context_get(ev->ctx, &p->attr, tmp);
        return tmp;
    }
    vmemo *m = &ev->vmemo[a];
    if (m->gen != ev->gen) {
        vd_context_get(ev->ctx, &p->attr, &m->v);
        m->hashed = false;
        m->resolved = 0;
        m->wday = 0;
        if (p->attr.id == VD_ATTR_URL_QUERY && m->v.kind == VD_VAL_STR && m->v.u.s.n) {
            if (m->v.u.s.n > sizeof ev->vbuf - ev->vused)
                return &m->v;     /* not kept: fetched again next time */
            memcpy(ev->vbuf + ev->vused, m->v.u.s.p, m->v.u.s.n);
            m->v.u.s.p = ev->vbuf + ev->vused;
            ev->vused += m->v.u.s.n;
        }
        m->gen = ev->gen;
    }
    *vm = m;
    return &m->v;
}

typedef struct term_hits {
    uint32_t *tstamp;
    uint32_t gen;
} term_hits;

static void term_hit(void *arg, uint32_t term)
{
    term_hits *th = arg;
    th->tstamp[term] = th->gen;
}

/* Stamps every term of value slot a and this mode that the string value
 * in vm meets. */
static void resolve_terms(vd_eval *ev, uint32_t a, vmemo *vm, unsigned mode)
{
    if (mode == VD_TM_EXACT && !vm->hashed) {
        vm->h = vd_hash64_ci(vm->v.u.s.p, vm->v.u.s.n);
        vm->hashed = true;
    }
    term_hits th = { ev->tstamp, ev->gen };
    vd_terms_each(&ev->rs->term_tab[a], vm->v.u.s, mode, mode == VD_TM_EXACT ? vm->h : 0, term_hit, &th);
    vm->resolved |= (uint8_t)(1u << mode);
}

static bool eval_pred_now(vd_eval *ev, uint32_t pi, int64_t *until)
{
    const vd_pred *p = &ev->rs->preds[pi];
    vd_value tmp;
    vmemo *vm;
    const vd_value *v = pred_value(ev, pi, p, &tmp, &vm);
    if (v->kind == VD_VAL_MISSING)
        return p->if_missing;
    if (ev->terms && vm && v->kind == VD_VAL_STR) {
        const vd_term_pred *tp = &ev->rs->term_pred[pi];
        if (tp->mode) {
            if (!(vm->resolved >> tp->mode & 1))
                resolve_terms(ev, ev->rs->pred_aslot[pi], vm, tp->mode);
            const uint32_t *terms = ev->rs->pred_terms + tp->first;
            bool r = false;
            for (uint32_t i = 0; i < tp->n && !r; i++)
                r = ev->tstamp[terms[i]] == ev->gen;
            return r != p->negate;
        }
    }
    int64_t u = INT64_MAX;
    bool r = test_value(p, ev->ctx, v, vm, &u);
    if (u < *until)
        *until = u;
    return r != p->negate;
}

/* A predicate's verdict, computed once per request for all the predicates
 * identical to it (ev->canon maps each to its group g, ev->gpred[g] is the
 * one tested). */
static uint32_t pred_slow(vd_eval *ev, uint32_t g)
{
    int64_t u = INT64_MAX;
    uint32_t w = ev->stamp | (uint32_t)eval_pred_now(ev, ev->gpred[g], &u);
    ev->pv[g] = w;
    ev->pu[g] = u;
    return w;
}

static bool eval_pred(vd_eval *ev, uint32_t pi, int64_t *until)
{
    uint32_t g = ev->canon[pi], w = ev->pv[g];
    if (!STAMP_OK(w, ev->stamp))
        w = pred_slow(ev, g);
    if (ev->pu[g] < *until)
        *until = ev->pu[g];
    return w & 1;
}

static uint32_t seg_slow(vd_eval *ev, uint32_t seg, bool guard_holds);

static bool eval_ref(vd_eval *ev, uint32_t seg, int64_t *until)
{
    uint32_t w = ev->sm[seg].w;
    if (!STAMP_OK(w, ev->stamp))
        w = seg_slow(ev, seg, false);
    if (ev->sm[seg].u < *until)
        *until = ev->sm[seg].u;
    return w & 1;
}

/* A timeless subtree: plain booleans, no time bounds to carry. */
static bool eval_bool(vd_eval *ev, uint32_t idx)
{
    const vd_node *n = &ev->rs->nodes[idx];
    int64_t none = INT64_MAX;
    switch (n->kind) {
    case VD_N_ALL:
        for (uint32_t i = 0; i < n->n; i++)
            if (!eval_bool(ev, n->a + i))
                return false;
        return true;
    case VD_N_ANY:
        for (uint32_t i = 0; i < n->n; i++)
            if (eval_bool(ev, n->a + i))
                return true;
        return false;
    case VD_N_NOT:
        return !eval_bool(ev, n->a);
    case VD_N_REF:
        return eval_ref(ev, n->a, &none);
    case VD_N_PRED:
        return eval_pred(ev, n->a, &none);
    default:
        return false;
    }
}

static bool eval_node(vd_eval *ev, uint32_t idx, int64_t *until);

/* A child of an all/any: leaves directly (a timeless leaf's until is
 * INT64_MAX either way), subtrees through eval_node. */
static inline bool eval_child(vd_eval *ev, uint32_t idx, int64_t *until)
{
    const vd_node *n = &ev->rs->nodes[idx];
    if (n->kind == VD_N_PRED)
        return eval_pred(ev, n->a, until);
    if (n->kind == VD_N_REF)
        return eval_ref(ev, n->a, until);
    return eval_node(ev, idx, until);
}

static bool eval_node(vd_eval *ev, uint32_t idx, int64_t *until)
{
    if (ev->rs->timeless && ev->rs->timeless[idx])
        return eval_bool(ev, idx);
    const vd_node *n = &ev->rs->nodes[idx];
    switch (n->kind) {
    case VD_N_ALL:
    case VD_N_ANY: {
        /* A child that settles the node (false under all, true under any)
         * and does not depend on time settles it for good: the bounds of
         * the children before it no longer matter. So a segment whose
         * string condition fails has no time bound, however it was reached
         * (through the index or a reference), and valid_until does not
         * depend on the order of the children. */
        bool settle = n->kind == VD_N_ANY;
        int64_t u = INT64_MAX;
        for (uint32_t i = 0; i < n->n; i++) {
            int64_t cu = INT64_MAX;
            if (eval_child(ev, n->a + i, &cu) == settle) {
                if (cu != INT64_MAX && u < cu)
                    cu = u;
                if (cu < *until)
                    *until = cu;
                return settle;
            }
            if (cu < u)
                u = cu;
        }
        if (u < *until)
            *until = u;
        return !settle;
    }
    case VD_N_NOT:
        return !eval_node(ev, n->a, until);
    case VD_N_REF:
        return eval_ref(ev, n->a, until);
    case VD_N_PRED:
        return eval_pred(ev, n->a, until);
    default:
        return false;
    }
}

/* A segment reached through its string guard's index bucket: the guard
 * holds (the bucket key equals, or is a prefix of, the request value, as
 * the predicate compares), and a string predicate carries no time bound, so
 * only the other conditions are tested. */
static bool eval_past_guard(vd_eval *ev, const vd_segment *s, int64_t *until)
{
    if (s->guard_node == s->root)
        return true;
    const vd_node *n = &ev->rs->nodes[s->root];
    int64_t u = INT64_MAX;
    for (uint32_t i = 0; i < n->n; i++) {
        if (n->a + i == s->guard_node)
            continue;
        int64_t cu = INT64_MAX;
        if (!eval_child(ev, n->a + i, &cu)) {
            if (cu != INT64_MAX && u < cu)
                cu = u;
            if (cu < *until)
                *until = cu;
            return false;
        }
        if (cu < u)
            u = cu;
    }
    if (u < *until)
        *until = u;
    return true;
}

/* A predicate's verdict by its terms when this request's value of its slot
 * is a string already resolved for its mode; -1 otherwise (pred_slow). */
static inline int term_verdict(const vd_eval *ev, uint32_t grp)
{
    const vd_ruleset *rs = ev->rs;
    uint32_t g = ev->gpred[grp];
    const vd_term_pred *tp = &rs->term_pred[g];
    if (!tp->mode)
        return -1;
    const vmemo *vm = &ev->vmemo[rs->pred_aslot[g]];
    if (vm->gen != ev->gen || !(vm->resolved >> tp->mode & 1) || vm->v.kind != VD_VAL_STR)
        return -1;
    const uint32_t *terms = rs->pred_terms + tp->first;
    for (uint32_t i = 0; i < tp->n; i++)
        if (ev->tstamp[terms[i]] == ev->gen)
            return !rs->preds[g].negate;
    return rs->preds[g].negate;
}

/* A timeless segment's branching program from pc (index.c): every step
 * reads a memoized verdict stamp, computing it only the first time in the
 * request (a string test whose value's terms are stamped already, inline). */
static bool run_prog(vd_eval *ev, uint32_t pc)
{
    const vd_ins *prog = ev->rs->prog;
    const uint32_t *canon = ev->canon;
    while (pc < VD_PC_FALSE) {
        const vd_ins *in = &prog[pc];
        uint32_t op = in->op, w;
        if (op & VD_INS_REF) {
            op &= ~VD_INS_REF;
            w = ev->sm[op].w;
            if (!STAMP_OK(w, ev->stamp))
                w = seg_slow(ev, op, false);
        } else {
            op = canon[op];
            w = ev->pv[op];
            if (!STAMP_OK(w, ev->stamp)) {
                int tv = ev->terms ? term_verdict(ev, op) : -1;
                if (tv >= 0) {
                    w = ev->stamp | (uint32_t)tv;
                    ev->pv[op] = w;
                    ev->pu[op] = INT64_MAX;
                } else {
                    w = pred_slow(ev, op);
                }
            }
        }
        pc = w & 1 ? in->t : in->f;
    }
    return pc == VD_PC_TRUE;
}

/* Evaluates a segment not yet evaluated in this request and memoizes it. */
static uint32_t seg_slow(vd_eval *ev, uint32_t seg, bool guard_holds)
{
    int64_t u = INT64_MAX;
    const vd_ruleset *rs = ev->rs;
    const vd_segment *s = &rs->segs[seg];
    bool past = guard_holds && s->guard_node != VD_NO_NODE, v;
    uint32_t pc = !rs->prog_entry ? VD_PC_NONE : past ? rs->prog_past[seg] : rs->prog_entry[seg];
    if (pc != VD_PC_NONE)
        v = run_prog(ev, pc);
    else
        v = past ? eval_past_guard(ev, s, &u) : eval_node(ev, s->root, &u);
    uint32_t w = ev->stamp | (uint32_t)v;
    ev->sm[seg].w = w;
    ev->sm[seg].u = u;
    /* Each segment is evaluated once per request, so no duplicates. */
    ev->evald[ev->nevald++] = seg;
    if (v)
        ev->matched[ev->nmatched++] = seg;
    return w;
}

static bool eval_seg(vd_eval *ev, uint32_t seg, int64_t *until, bool guard_holds)
{
    uint32_t w = ev->sm[seg].w;
    if (!STAMP_OK(w, ev->stamp))
        w = seg_slow(ev, seg, guard_holds);
    if (ev->sm[seg].u < *until)
        *until = ev->sm[seg].u;
    return w & 1;
}

int vd_eval_segment(vd_eval *ev, uint32_t seg, int64_t *until)
{
    int64_t u = INT64_MAX;
    if (!ev->rs || seg >= ev->rs->nsegs) {
        if (until)
            *until = u;
        return 0;
    }
    bool r = eval_ref(ev, seg, &u);
    if (until)
        *until = u;
    return r;
}

int vd_eval_verdict(const vd_eval *ev, uint32_t seg)
{
    if (!ev->rs || seg >= ev->rs->nsegs || !STAMP_OK(ev->sm[seg].w, ev->stamp))
        return -1;
    return (int)(ev->sm[seg].w & 1);
}

static void eval_list(vd_eval *ev, const uint32_t *segs, uint32_t n, bool guard_holds)
{
    int64_t u = INT64_MAX;
    for (uint32_t i = 0; i < n; i++)
        eval_seg(ev, segs[i], &u, guard_holds);
}

static const vd_index_entry *index_find(const vd_index_attr *ia, const char *p, size_t n, uint64_t h)
{
    for (uint32_t slot = (uint32_t)h & ia->mask; ia->tab[slot].key.p; slot = (slot + 1) & ia->mask) {
        const vd_index_entry *e = &ia->tab[slot];
        if (e->hash == h && vd_str_eq_ci(e->key, vd_str_make(p, n)))
            return e;
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct acm_hits {
    const vd_index_entry **hits;
    uint32_t first, n;        /* this table's hits: hits[first .. n) */
    const vd_index_attr *ia;
} acm_hits;

static void acm_hit(void *arg, uint32_t id)
{
    acm_hits *ah = arg;
    const vd_index_entry *e = &ah->ia->tab[ah->ia->term_slot[id]];
    for (uint32_t i = ah->first; i < ah->n; i++)
        if (ah->hits[i] == e)
            return;           /* found twice in the value */
    ah->hits[ah->n++] = e;
}

static inline __attribute__((always_inline)) uint32_t probe_attr(vd_eval *ev, uint32_t a, uint32_t nh)
{
    const vd_index_attr *ia = &ev->rs->index[a];
    vd_value v;
    vd_context_get(ev->ctx, &ia->attr, &v);
    if (v.kind != VD_VAL_STR)
        return nh;        /* missing: no guarded segment can match */
    if (ia->mode == VD_IX_EXACT) {
        const vd_index_entry *e = index_find(ia, v.u.s.p, v.u.s.n, vd_hash64_ci(v.u.s.p, v.u.s.n));
        if (e)
            ev->hits[nh++] = e;
        return nh;
    }
    if (ia->mode != VD_IX_PREFIX) {
        /* Every key found in (contains) or ending (suffix) the value, in
         * one pass of the table's automaton; each entry once. */
        acm_hits ah = { ev->hits, nh, nh, ia };
        vd_acm_each(ia->acm, v.u.s, ia->mode == VD_IX_SUFFIX, acm_hit, &ah);
        return ah.n;
    }
    /* Every prefix of the value that is a key: FNV-1a is incremental, so
     * each prefix length costs one step and one probe. */
    uint64_t h = 1469598103934665603ULL;
    size_t lim = v.u.s.n < ia->maxlen ? v.u.s.n : ia->maxlen;
    for (size_t l = 0; l < lim; l++) {
        unsigned char c = (unsigned char)v.u.s.p[l];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h = (h ^ c) * 1099511628211ULL;
        const vd_index_entry *e = index_find(ia, v.u.s.p, l + 1, h);
        if (e)
            ev->hits[nh++] = e;
    }
    return nh;
}

/* Every index entry (string key) the request's values reach, without
 * evaluating anything: the attributes of want (bits < 64), and with high
 * every attribute from 64 on. Collected before evaluating because
 * evaluating may reuse the context's scratch that a value points into. */
static uint32_t index_probe(vd_eval *ev, uint64_t want, bool high, uint32_t nh)
{
    const vd_ruleset *rs = ev->rs;
    for (uint32_t a = 0; a < rs->nindex; a++)
        if (a < 64 ? want >> a & 1 : high)
            nh = probe_attr(ev, a, nh);
    return nh;
}

uint32_t vd_eval_candidates(vd_eval *ev, uint64_t want, const vd_index_entry *const **out)
{
    *out = ev->hits;
    if (!ev->rs)
        return 0;
    return index_probe(ev, want, true, 0);
}

uint64_t vd_eval_costly(const vd_eval *ev, uint64_t want)
{
    if (!ev->rs || ev->no_defer)
        return 0;
    return vd_index_costly(ev->rs, ev->ctx->done, want);
}

uint32_t vd_eval_candidates_more(vd_eval *ev, uint32_t a, uint32_t nh)
{
    if (!ev->rs || a >= ev->rs->nindex)
        return nh;
    return probe_attr(ev, a, nh);
}

void vd_eval_set_defer(vd_eval *ev, bool defer)
{
    ev->no_defer = !defer;
}

bool vd_eval_guard_failed(vd_eval *ev, uint32_t seg)
{
    /* The guard predicate itself (memoized like any other): the index
     * files a segment under exactly the values that pass it, and marking
     * every segment of every bucket reached cost more than this test of
     * the few segments asked about. */
    if (!vd_string_guarded(ev->rs, seg))
        return false;
    int64_t none = INT64_MAX;
    return !eval_pred(ev, ev->rs->nodes[ev->rs->segs[seg].guard_node].a, &none);
}

int vd_eval_candidate(vd_eval *ev, uint32_t seg, int64_t *until)
{
    uint32_t w = ev->sm[seg].w;
    if (!STAMP_OK(w, ev->stamp))
        w = seg_slow(ev, seg, true);
    *until = ev->sm[seg].u;
    return (int)(w & 1);
}

uint32_t vd_eval_matched_so_far(const vd_eval *ev, const uint32_t **out)
{
    *out = ev->matched;
    return ev->nmatched;
}

uint32_t *vd_eval_slot_map(vd_eval *ev, uint32_t **pos, uint32_t *gen)
{
    *pos = ev->slotpos;
    *gen = ev->gen;
    return ev->slotgen;
}

uint64_t *vd_eval_rule_bits(vd_eval *ev)
{
    return ev->rule_bits;
}

uint32_t vd_eval_matching(vd_eval *ev, const uint32_t **out)
{
    const vd_ruleset *rs = ev->rs;
    *out = ev->matched;
    if (!rs)
        return 0;
    eval_list(ev, rs->unguarded, rs->nunguarded, false);
    uint32_t nh = index_probe(ev, ~0ULL, true, 0);
    for (uint32_t i = 0; i < nh; i++)
        eval_list(ev, rs->index_segs + ev->hits[i]->first, ev->hits[i]->n, true);
    if (rs->hour_first[24] || rs->wday_first[7]) {
        vd_context *ctx = ev->ctx;
        if (vd_context_tz(ctx)) {
            unsigned h = (unsigned)ctx->local.hour, d = (unsigned)ctx->local.weekday;
            if (h < 24)
                eval_list(ev, rs->hour_segs + rs->hour_first[h], rs->hour_first[h + 1] - rs->hour_first[h], false);
            if (d < 7)
                eval_list(ev, rs->wday_segs + rs->wday_first[d], rs->wday_first[d + 1] - rs->wday_first[d], false);
        }
    }
    ev->scanned = true;
    /* Few matches per request: sorting them beats scanning the memo, and an
     * insertion sort beats qsort's calls through a comparator at this size. */
    uint32_t *m = ev->matched;
    if (ev->nmatched > 32) {
        qsort(m, ev->nmatched, sizeof *m, cmp_u32);
    } else {
        for (uint32_t i = 1; i < ev->nmatched; i++) {
            uint32_t v = m[i], j = i;
            for (; j > 0 && m[j - 1] > v; j--)
                m[j] = m[j - 1];
            m[j] = v;
        }
    }
    return ev->nmatched;
}

int vd_eval_rule(vd_eval *ev, uint32_t seg, int64_t *until)
{
    const vd_ruleset *rs = ev->rs;
    if (ev->scanned && seg < rs->nsegs && !STAMP_OK(ev->sm[seg].w, ev->stamp) &&
        vd_string_guarded(rs, seg)) {
        /* Not a candidate: its string guard fails, and no string attribute
         * changes with time, so it stays false. Time-guarded ones are
         * evaluated: they are false too, but their until is needed. */
        *until = INT64_MAX;
        return 0;
    }
    if (seg >= rs->nsegs) {
        *until = INT64_MAX;
        return 0;
    }
    uint32_t w = ev->sm[seg].w;
    if (!STAMP_OK(w, ev->stamp))
        w = seg_slow(ev, seg, false);
    *until = ev->sm[seg].u;
    return (int)(w & 1);
}

uint32_t vd_eval_evaluated(const vd_eval *ev, const uint32_t **out)
{
    *out = ev->evald;
    return ev->nevald;
}

int vd_eval_memo(const vd_eval *ev, uint32_t seg, int64_t *until)
{
    uint32_t w = ev->sm[seg].w;
    if (!STAMP_OK(w, ev->stamp))
        return -1;
    *until = ev->sm[seg].u;
    return (int)(w & 1);
}
