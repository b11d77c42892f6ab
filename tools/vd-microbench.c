/* vd-microbench — the decision path in-process, without the network: for
 * instruction counts under `valgrind --tool=callgrind` (stable on a noisy
 * machine) and for the allocation check.
 *
 *   vd-microbench SEGMENTS_DIR CONTENT_MAP_DIR [--contexts FILE] [--geoip-db FILE]
 *                 [--slots a,b,c | --slot-count K] [-n DECISIONS] [--warm N]
 *                 [--ua-cache N] [--geo-cache N] [--ua-file TSV] [--answer-cache N]
 *                 [--answer-min-slots K] [--answer-check 1] [--clock-rate R]
 *
 * FILE is a TSV of ip, ua, referer, url, lang (tests/bench/contexts.tsv, or
 * the traffic model of tests/bench/gen_traffic.py: any number of rows). The
 * requests are sent in file order, wrapping around; the cache hit rates
 * printed are those of the measured decisions only.
 *
 * Under `valgrind --tool=callgrind --instr-atstart=no` only the measured
 * loop is instrumented (client requests, when the valgrind headers exist at
 * build time), so the "Collected" instruction count divided by -n is the
 * cost of one decision, warm-up and start-up excluded.
 *
 * It calls the decision function the workers call (vd_decider_run: context,
 * decision, counts, result encoding into a reused buffer) over the
 * contexts, and counts the daemon's allocations during the measured loop
 * through the allocator seam (core/alloc.h; under ASan too): the figure
 * printed is per decision.
 *   MICRO_RESULT decisions=… ns_per_decision=… allocs_per_decision=… segments=… slots=…
 * Then it times the device classification alone, call by call, over the
 * contexts' User-Agents (or every UA of --ua-file, a corpus whose first
 * column is the UA), through the per-worker cache (--ua-cache 0: none):
 *   MICRO_UA ua_cache=off classify_ns_median=… classify_ns_p90=… calls=…
 * With --ua-file and -n 0 (no decisions) the corpus is first classified
 * once untimed, the only code callgrind --instr-atstart=no counts then
 * ("Collected" / calls: instructions per classification):
 *   MICRO_UA_CORPUS calls=… verdict_checksum=…
 *
 * With --compile N it instead compiles the two folders N more times, as a
 * reload does (files read, parsed, compiled, indexed), and prints the wall
 * time of each compile's median, minimum and maximum:
 *   MICRO_COMPILE compiles=… ms_median=… ms_min=… ms_max=… destroy_ms_median=…
 *                 segments=… slots=…
 * (destroy: freeing the ruleset, as the last worker to let go of it does)
 * Under callgrind --instr-atstart=no only those compiles are counted
 * ("Collected" / N: instructions per compile).
 *
 * With --answer-key-study RATE it simulates caches of whole answers
 * instead (issue 13; docs/PERFORMANCE.md, "A cache of whole answers"): for
 * the page of --slots, each request's key (a) "raw" and (b) "verdicts"
 * (see answer_key below) against LRUs of 1k, 4k, 16k, 64k entries, with
 * the rows' own timestamps and with a live clock of RATE decisions/s;
 * every decision is made and compared with what a hit would answer:
 *   ANSWER_KEY clock=… key=… slots=… hit_1k=… … wrong_hits=0 …
 * With --answer-key-cost none|raw|verdicts the measured loop computes that
 * key before each decision (vd_decide_alloc and the reply, on the key's
 * context): under callgrind, the key's cost and the decision's share after
 * it (what a hit could skip). tests/bench/answer_key_study.sh runs both.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context/bots.h"
#include "context/geo.h"
#include "context/tz.h"
#include "core/alloc.h"
#include "core/errors.h"
#include "decision/decide.h"
#include "decision/decider.h"
#include "decision/result.h"
#include "rules/acmatch.h"
#include "rules/model.h"
#include "rules/terms.h"
#include "net/rpc_codec.h"
#include "store/files.h"
#include "store/live.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

typedef struct row {
    char *f[5];   /* ip ua referer url lang */
    char *own;    /* the line they point into (NULL if strdup failed) */
} row;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t load_rows(const char *path, row **rowsp)
{
    row *rows = NULL;
    size_t rcap = 0;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        perror(path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (!len || line[0] == '#')
            continue;
        if (n == rcap) {
            rcap = rcap ? rcap * 2 : 1024;
            rows = realloc(rows, rcap * sizeof *rows);
            if (!rows) {
                perror("realloc");
                exit(2);
            }
        }
        char *p = strdup(line);
        rows[n].own = p;
        for (int i = 0; i < 5; i++) {
            rows[n].f[i] = p ? p : (char *)"";
            char *tab = p ? strchr(p, '\t') : NULL;
            if (tab) {
                *tab = '\0';
                p = tab + 1;
            } else {
                p = NULL;
            }
        }
        n++;
    }
    free(line);
    fclose(fp);
    if (!n) {
        fprintf(stderr, "%s: no contexts\n", path);
        exit(2);
    }
    *rowsp = rows;
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* --compile N: N reloads' worth of compiles of the same folders. */
static int compile_loop(const char *segdir, const char *mapdir, vd_ruleset *first, long n)
{
    uint64_t *ms = calloc((size_t)n, sizeof *ms), *ds = calloc((size_t)n, sizeof *ds);
    if (!ms || !ds)
        return 1;
    printf("MICRO_COMPILE_FIRST segments=%u slots=%u\n", vd_ruleset_nsegments(first), vd_ruleset_nslots(first));
    for (long i = 0; i < n; i++) {
        static vd_errors err;
        vd_errors_init(&err);
        CALLGRIND_START_INSTRUMENTATION;
        uint64_t t0 = now_ns();
        vd_ruleset *rs = vd_files_compile(segdir, mapdir, &err);
        uint64_t t1 = now_ns();
        CALLGRIND_STOP_INSTRUMENTATION;
        if (!rs) {
            fprintf(stderr, "vd-microbench: compile %ld failed\n", i);
            return 1;
        }
        uint64_t t3 = now_ns();
        vd_ruleset_release(rs);
        ms[i] = t1 - t0;
        ds[i] = now_ns() - t3;
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp_u64);
    qsort(ds, (size_t)n, sizeof *ds, cmp_u64);
    printf("MICRO_COMPILE compiles=%ld ms_median=%.1f ms_min=%.1f ms_max=%.1f "
           "destroy_ms_median=%.2f segments=%u slots=%u\n", n, (double)ms[n / 2] / 1e6, (double)ms[0] / 1e6,
           (double)ms[n - 1] / 1e6, (double)ds[n / 2] / 1e6,
           vd_ruleset_nsegments(first), vd_ruleset_nslots(first));
    vd_ruleset_release(first);
    free(ms);
    free(ds);
    return 0;
}

/* ---- --answer-key-study / --answer-key-cost ------------------------------
 * Would a cache of whole answers pay (issue 13)? The key is computed from
 * the context before deciding; a hit would give each requested slot's
 * chosen rule (not its variant: splits and holdouts bucket by vid) and
 * the valid_until, skipping the segment evaluation and the rule walk.
 *
 * Key (a), "raw": the value of every attribute the page's rules can read
 * (every predicate of every rule's segment, references followed), the
 * zone when a local time attribute is read, the ruleset's version.
 * Key (b), "verdicts": per attribute, the terms of the ruleset's term
 * tables its value meets (exact, prefixes, contains, suffixes: what the
 * evaluator stamps), so two paths meeting the same prefixes are one key;
 * attributes some predicate tests otherwise (hour and weekday bitmaps,
 * ranges, exists, IP nets) by their value, as in (a).
 *
 * An entry answers a request when its key is equal and the request's
 * time is within [the time it was stored, its valid_until). Every
 * decision is made anyway and compared with what a hit would have
 * answered (rules, valid_until, matched segments): a wrong hit is a key
 * that is not a projection of what the decision reads. */
typedef struct study_attr {
    vd_attr_ref attr;
    bool raw;             /* a predicate not answered by term stamps reads it */
    uint8_t modes;        /* 1 << vd_term_mode of its term predicates */
    uint32_t aslot;
} study_attr;

typedef struct study_page {
    study_attr *attrs;
    uint32_t nattrs;
    bool local_time;      /* a time.* (local) attribute is read */
    bool visitor;         /* a visitor.* attribute is read: the profile is an input too */
    uint32_t npreds, ngroups, nsegs;
    uint64_t version;
    uint32_t *tstamp;     /* key (b): terms met, by generation */
    uint32_t tgen;
} study_page;

static int study_page_init(study_page *pg, const vd_ruleset *rs, const vd_str *names, unsigned nnames)
{
    memset(pg, 0, sizeof *pg);
    if (!rs->pred_aslot || !rs->term_tab || !rs->term_pred) {
        fprintf(stderr, "vd-microbench: the ruleset has no term tables\n");
        return -1;
    }
    uint8_t *seen = calloc(rs->nsegs + 1, 1), *pseen = calloc(rs->npreds + 1, 1), *gseen = calloc(rs->ngroups + 1, 1);
    uint32_t *stack = malloc((rs->nsegs + 1) * sizeof *stack);
    pg->attrs = calloc(rs->naslots + 1, sizeof *pg->attrs);
    int32_t *where = malloc((rs->naslots + 1) * sizeof *where);
    pg->tstamp = calloc(rs->nterms + 1, sizeof *pg->tstamp);
    if (!seen || !pseen || !gseen || !stack || !pg->attrs || !where || !pg->tstamp)
        return -1;
    for (uint32_t a = 0; a < rs->naslots; a++)
        where[a] = -1;
    uint32_t sp = 0;
    for (uint32_t s = 0; s < rs->nslots; s++) {
        bool asked = false;
        for (unsigned i = 0; i < nnames && !asked; i++)
            asked = vd_str_eq(rs->slots[s].name, names[i]);
        for (uint32_t r = 0; asked && r < rs->slots[s].nrules; r++) {
            uint32_t seg = rs->slots[s].rules[r].segment;
            if (!seen[seg]) {
                seen[seg] = 1;
                stack[sp++] = seg;
            }
        }
    }
    while (sp) {
        const vd_segment *sg = &rs->segs[stack[--sp]];
        pg->nsegs++;
        for (uint32_t k = sg->node_first; k < sg->node_end; k++) {
            const vd_node *nd = &rs->nodes[k];
            if (nd->kind == VD_N_REF && !seen[nd->a]) {
                seen[nd->a] = 1;
                stack[sp++] = nd->a;
            }
            if (nd->kind != VD_N_PRED || pseen[nd->a])
                continue;
            uint32_t p = nd->a, g = rs->pred_group[p], gp = rs->group_pred[g];
            pseen[p] = 1;
            pg->npreds++;
            if (!gseen[g]) {
                gseen[g] = 1;
                pg->ngroups++;
            }
            const vd_pred *pr = &rs->preds[p];
            const vd_attr_info *ai = vd_attr_info_get(pr->attr.id);
            if (ai->family & VD_FAM_VISITOR)
                pg->visitor = true;
            if ((ai->family & VD_FAM_TIME) && pr->attr.id != VD_ATTR_TIME_UTC)
                pg->local_time = true;
            uint32_t a = rs->pred_aslot[p];
            if (where[a] < 0) {
                where[a] = (int32_t)pg->nattrs;
                pg->attrs[pg->nattrs++] = (study_attr){ pr->attr, false, 0, a };
            }
            study_attr *sa = &pg->attrs[where[a]];
            uint8_t mode = rs->term_pred[gp].mode;
            if (mode == VD_TM_NONE)
                sa->raw = true;
            else
                sa->modes |= (uint8_t)(1u << mode);
        }
    }
    pg->version = vd_hash64(rs->version, strlen(rs->version));
    free(seen);
    free(pseen);
    free(gseen);
    free(stack);
    free(where);
    return 0;
}

typedef struct term_acc {
    study_page *pg;
    uint64_t sum;
} term_acc;

static void study_term(void *arg, uint32_t id)
{
    term_acc *t = arg;
    if (t->pg->tstamp[id] == t->pg->tgen)
        return;
    t->pg->tstamp[id] = t->pg->tgen;
    t->sum += vd_mix64((uint64_t)id + 0x9E3779B97F4A7C15ULL);   /* order-free: a set of terms */
}

/* The terms of value slot a that s meets, in the modes given. */
static uint64_t terms_of(study_page *pg, const vd_term_tab *t, vd_str s, uint8_t modes)
{
    term_acc acc = { pg, 0 };
    if (++pg->tgen == 0)
        pg->tgen = 1;
    uint64_t h = modes >> VD_TM_EXACT & 1 ? vd_hash64_ci(s.p, s.n) : 0;
    for (unsigned mode = VD_TM_EXACT; mode <= VD_TM_SUFFIX; mode++)
        if (modes >> mode & 1)
            vd_terms_each(t, s, mode, h, study_term, &acc);
    return vd_mix64(acc.sum ^ 0x7465726d73ULL);
}

static unsigned study_raw_count(const study_page *pg)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < pg->nattrs; i++)
        n += pg->attrs[i].raw;
    return n;
}

/* The key of a request's page: (a) verdicts false, (b) true. */
__attribute__((noinline)) static uint64_t answer_key(study_page *pg, const vd_ruleset *rs, vd_context *ctx,
                                                     bool verdicts)
{
    uint64_t h = pg->version;
    for (uint32_t i = 0; i < pg->nattrs; i++) {
        const study_attr *sa = &pg->attrs[i];
        vd_value v;
        vd_context_get(ctx, &sa->attr, &v);
        uint64_t x = verdicts && !sa->raw && v.kind == VD_VAL_STR
                         ? terms_of(pg, &rs->term_tab[sa->aslot], v.u.s, sa->modes)
                         : vd_value_digest(&v);
        h = vd_mix64(h ^ x) + i;
    }
    if (pg->local_time) {
        const vd_tz *tz = vd_context_tz(ctx);
        h = vd_mix64(h ^ (uint64_t)(uintptr_t)tz);
    }
    return h;
}

/* An LRU of cap entries: key -> what a hit answers. */
typedef struct lru {
    uint32_t cap, n, mask, head, tail;   /* head: most recent; UINT32_MAX: none */
    uint64_t *key;
    uint32_t *prev, *next, *chain, *bucket;
    int64_t *ts, *until;
    uint64_t *answer;     /* hash of the rules per slot and the matched segments */
    uint64_t hits, misses, expired, wrong;
} lru;

static int lru_init(lru *c, uint32_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->mask = 1;
    while (c->mask < cap)
        c->mask <<= 1;
    c->mask--;
    c->head = c->tail = UINT32_MAX;
    c->key = calloc(cap, sizeof *c->key);
    c->prev = calloc(cap, sizeof *c->prev);
    c->next = calloc(cap, sizeof *c->next);
    c->chain = calloc(cap, sizeof *c->chain);
    c->bucket = malloc((c->mask + 1) * sizeof *c->bucket);
    c->ts = calloc(cap, sizeof *c->ts);
    c->until = calloc(cap, sizeof *c->until);
    c->answer = calloc(cap, sizeof *c->answer);
    if (!c->key || !c->prev || !c->next || !c->chain || !c->bucket || !c->ts || !c->until || !c->answer)
        return -1;
    memset(c->bucket, 0xff, (c->mask + 1) * sizeof *c->bucket);
    return 0;
}

static void lru_free(lru *c)
{
    free(c->key);
    free(c->prev);
    free(c->next);
    free(c->chain);
    free(c->bucket);
    free(c->ts);
    free(c->until);
    free(c->answer);
}

static void lru_unlink(lru *c, uint32_t e)
{
    if (c->prev[e] != UINT32_MAX) c->next[c->prev[e]] = c->next[e]; else c->head = c->next[e];
    if (c->next[e] != UINT32_MAX) c->prev[c->next[e]] = c->prev[e]; else c->tail = c->prev[e];
}

static void lru_front(lru *c, uint32_t e)
{
    c->prev[e] = UINT32_MAX;
    c->next[e] = c->head;
    if (c->head != UINT32_MAX)
        c->prev[c->head] = e;
    c->head = e;
    if (c->tail == UINT32_MAX)
        c->tail = e;
}

/* One request: counts a hit (and whether it would have been wrong) or
 * a miss, and stores the fresh answer on a miss. count: a measured one. */
static void lru_access(lru *c, uint64_t key, int64_t ts, int64_t until, uint64_t answer, bool count)
{
    uint32_t b = (uint32_t)key & c->mask, e = c->bucket[b];
    while (e != UINT32_MAX && c->key[e] != key)
        e = c->chain[e];
    if (e != UINT32_MAX) {
        lru_unlink(c, e);
        lru_front(c, e);
        if (ts >= c->ts[e] && ts < c->until[e]) {
            if (count) {
                c->hits++;
                c->wrong += c->answer[e] != answer || c->until[e] != until;
            }
            return;
        }
        if (count) {
            c->misses++;
            c->expired++;
        }
        c->ts[e] = ts;
        c->until[e] = until;
        c->answer[e] = answer;
        return;
    }
    if (count)
        c->misses++;
    if (c->n < c->cap) {
        e = c->n++;
    } else {
        e = c->tail;      /* evict the least recent */
        lru_unlink(c, e);
        uint32_t *pp = &c->bucket[(uint32_t)c->key[e] & c->mask];
        while (*pp != e)
            pp = &c->chain[*pp];
        *pp = c->chain[e];
    }
    c->key[e] = key;
    c->chain[e] = c->bucket[b];
    c->bucket[b] = e;
    c->ts[e] = ts;
    c->until[e] = until;
    c->answer[e] = answer;
    lru_front(c, e);
}

static uint64_t answer_of(const vd_decision *d)
{
    uint64_t h = 0x616e73776572ULL;
    for (unsigned i = 0; i < d->nslots; i++)
        h = vd_mix64(h ^ (uint64_t)(uint32_t)d->slots[i].rule) + i;
    for (uint32_t k = 0; k < d->nmatched; k++)
        h = vd_mix64(h ^ d->matched[k]) + 0x100 + k;
    return h;
}

enum { STUDY_SIZES = 5 };
static const uint32_t study_sizes[STUDY_SIZES] = { 1024, 4096, 16384, 65536, 0 };   /* 0: unbounded */

/* Hit rates of LRU answer caches over the run, for both keys, with the
 * requests' own timestamps (clock 0: each row an hour after the last,
 * as the instruction counts run) or a live clock of rate decisions/s. */
static int answer_key_study(vd_decider *dec, const vd_ruleset *rs, const vd_request *reqs, size_t nrows,
                            long warm, long n, const vd_str *slots, unsigned nslots, double rate,
                            const vd_emitter *em, msgpack_sbuffer *sb)
{
    study_page pg;
    if (study_page_init(&pg, rs, slots, nslots) != 0)
        return 1;
    printf("ANSWER_KEY_PAGE slots=%u segments_reachable=%u predicates=%u predicate_groups=%u attributes=%u "
           "raw_attributes=%u local_time=%d visitor=%d\n", nslots, pg.nsegs, pg.npreds, pg.ngroups, pg.nattrs,
           study_raw_count(&pg), pg.local_time, pg.visitor);
    for (uint32_t i = 0; i < pg.nattrs; i++) {
        const vd_attr_info *ai = vd_attr_info_get(pg.attrs[i].attr.id);
        printf("ANSWER_KEY_ATTR %s%.*s %s modes=%u\n", ai->name, (int)pg.attrs[i].attr.sub.n,
               pg.attrs[i].attr.sub.p ? pg.attrs[i].attr.sub.p : "", pg.attrs[i].raw ? "raw" : "terms",
               pg.attrs[i].modes);
    }
    for (int clock = 0; clock < 2; clock++) {
        lru c[2][STUDY_SIZES];
        for (int k = 0; k < 2; k++)
            for (int z = 0; z < STUDY_SIZES; z++)
                if (lru_init(&c[k][z], study_sizes[z] ? study_sizes[z] : (uint32_t)n) != 0)
                    return 1;
        uint64_t timed = 0;
        for (long i = 0; i < warm + n; i++) {
            vd_request q = reqs[(size_t)i % nrows];
            if (clock)
                q.ts = 1795000000 + (int64_t)((double)i / rate);
            vd_context ctx;
            vd_context_init(&ctx, &q, &dec->env_now, &dec->caches, q.ts);
            uint64_t key[2] = { answer_key(&pg, rs, &ctx, false), answer_key(&pg, rs, &ctx, true) };
            vd_decision d;
            msgpack_sbuffer_clear(sb);
            if (vd_decider_run(dec, &q, em, &d) != VD_DECIDE_OK)
                return 1;
            uint64_t ans = answer_of(&d);
            bool count = i >= warm;
            timed += count && d.valid_until != INT64_MAX;
            for (int k = 0; k < 2; k++)
                for (int z = 0; z < STUDY_SIZES; z++)
                    if (study_sizes[z] || count)   /* unbounded: the measured requests only */
                        lru_access(&c[k][z], key[k], q.ts, d.valid_until, ans, count);
        }
        for (int k = 0; k < 2; k++) {
            if (clock)
                printf("ANSWER_KEY clock=live:%.0f/s", rate);
            else
                printf("ANSWER_KEY clock=rows");
            printf(" key=%s slots=%u", k ? "verdicts" : "raw", nslots);
            for (int z = 0; z < STUDY_SIZES; z++) {
                const lru *l = &c[k][z];
                double h = l->hits + l->misses ? (double)l->hits / (double)(l->hits + l->misses) : 0;
                if (study_sizes[z])
                    printf(" hit_%uk=%.4f", study_sizes[z] / 1024, h);
                else
                    printf(" hit_unbounded_measured_only=%.4f distinct_measured=%u", h, l->n);
            }
            uint64_t wrong = 0, expired = 0;
            for (int z = 0; z < STUDY_SIZES; z++) {
                wrong += c[k][z].wrong;
                expired += c[k][z].expired;
            }
            printf(" expired_all_sizes=%llu wrong_hits=%llu time_bound_answers=%.4f\n", (unsigned long long)expired,
                   (unsigned long long)wrong, (double)timed / (double)n);
            for (int z = 0; z < STUDY_SIZES; z++)
                lru_free(&c[k][z]);
        }
    }
    free(pg.attrs);
    free(pg.tstamp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vd-microbench SEGMENTS_DIR CONTENT_MAP_DIR [--contexts FILE] "
                        "[--geoip-db FILE] [--slots a,b | --slot-count K] [-n N] [--warm N] "
                        "[--ua-cache N] [--geo-cache N] [--ua-file TSV] [--compile N] "
                        "[--answer-key-study RATE] [--answer-key-cost none|raw|verdicts]\n");
        return 2;
    }
    const char *ctx_path = "tests/bench/contexts.tsv", *geo_path = NULL, *ua_file = NULL;
    char *slot_list = NULL;
    long n = 200000, warm = 20000, slot_count = 4;
    long ua_entries = 16384, geo_entries = 4096;   /* the daemon's defaults; 0 = off */
    long compiles = 0;
    double study_rate = 0;    /* --answer-key-study RATE: hit rates, live clock of RATE decisions/s */
    int cost_key = -1;        /* --answer-key-cost: 0 none, 1 raw, 2 verdicts */
    long answer_entries = 0;  /* --answer-cache N: the daemon's answer-cache option (0 = off) */
    long answer_min_slots = 1;   /* --answer-min-slots K (the daemon's default is 5) */
    int answer_check = 0;     /* --answer-check 1: every reply also decided without the cache, compared */
    double clock_rate = 0;    /* --clock-rate R: request i at T0 + i / R (else each row's own time) */
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--contexts")) ctx_path = argv[i + 1];
        else if (!strcmp(argv[i], "--geoip-db")) geo_path = argv[i + 1];
        else if (!strcmp(argv[i], "--slots")) slot_list = argv[i + 1];
        else if (!strcmp(argv[i], "--slot-count")) slot_count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--warm")) warm = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--ua-cache")) ua_entries = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--geo-cache")) geo_entries = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--ua-file")) ua_file = argv[i + 1];
        else if (!strcmp(argv[i], "--compile")) compiles = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--answer-key-study")) study_rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--answer-cache")) answer_entries = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--answer-check")) answer_check = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--answer-min-slots")) answer_min_slots = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--clock-rate")) clock_rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--answer-key-cost")) {
            cost_key = !strcmp(argv[i + 1], "none") ? 0 : !strcmp(argv[i + 1], "raw") ? 1
                     : !strcmp(argv[i + 1], "verdicts") ? 2 : -1;
            if (cost_key < 0) {
                fprintf(stderr, "vd-microbench: --answer-key-cost none|raw|verdicts\n");
                return 2;
            }
        }
        else {
            fprintf(stderr, "vd-microbench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    static vd_errors err;
    vd_errors_init(&err);
    uint64_t t0 = now_ns();
    vd_ruleset *rs = vd_files_compile(argv[1], argv[2], &err);
    uint64_t t_compile = now_ns() - t0;
    if (!rs) {
        for (size_t i = 0; i < err.n; i++)
            fprintf(stderr, "error: %s\n", err.msg[i]);
        return 1;
    }
    if (compiles > 0)
        return compile_loop(argv[1], argv[2], rs, compiles);
    char emsg[256];
    vd_env env = { 0 };
    vd_tzdb *tzdb = vd_tzdb_open(NULL, emsg, sizeof emsg);
    vd_geo_db *geo = geo_path ? vd_geo_open(geo_path, emsg, sizeof emsg) : NULL;
    if (geo_path && !geo) {
        fprintf(stderr, "geoip: %s\n", emsg);
        return 1;
    }
    env.tzdb = tzdb;
    env.geo = geo;

    row *rows = NULL;
    size_t nrows = load_rows(ctx_path, &rows);
    vd_request *reqs = calloc(nrows, sizeof *reqs);
    if (!reqs) {
        perror("calloc");
        return 2;
    }
    vd_str slots[VD_MAX_SLOTS_PER_REQUEST];
    unsigned nslots = 0;
    if (slot_list) {
        for (char *tok = strtok(slot_list, ","); tok && nslots < VD_MAX_SLOTS_PER_REQUEST; tok = strtok(NULL, ","))
            slots[nslots++] = vd_str_cstr(tok);
    } else {
        for (uint32_t i = 0; i < vd_ruleset_nslots(rs) && nslots < (unsigned)slot_count; i++)
            slots[nslots++] = vd_ruleset_slot_at(rs, i)->name;
    }
    for (size_t i = 0; i < nrows; i++) {
        vd_request *r = &reqs[i];
        memset(r, 0, sizeof *r);
        r->ip = vd_str_cstr(rows[i].f[0]);
        r->ua = vd_str_cstr(rows[i].f[1]);
        r->referer = vd_str_cstr(rows[i].f[2]);
        r->url = vd_str_cstr(rows[i].f[3]);
        r->lang = vd_str_cstr(rows[i].f[4]);
        r->ts = 1795000000 + (int64_t)i * 3607;   /* spread over days and hours */
        r->has_ts = true;
        r->nslots = nslots;
        memcpy(r->slots, slots, nslots * sizeof slots[0]);
    }
    /* The ruleset is published as the daemon publishes it; the decider
     * picks it up as a worker does. */
    vd_ruleset_retain(rs);
    vd_live_set(rs, VD_SOURCE_FILES);
    /* The robot patterns are compiled at start-up, as the daemon does
     * (main.c): else their one-time compile (~9 million instructions) lands
     * in whichever decision first classifies a User-Agent, which may be a
     * measured one. */
    if (vd_bots_init(emsg, sizeof emsg) != 0) {
        fprintf(stderr, "bots: %s\n", emsg);
        return 1;
    }
    static vd_stats stats;
    vd_decider dec;
    if (vd_decider_init(&dec, &env, ua_entries > 0 ? (size_t)ua_entries : 0,
                        geo_entries > 0 ? (size_t)geo_entries : 0, &stats) != 0) {
        fprintf(stderr, "vd-microbench: out of memory\n");
        return 1;
    }
    if (answer_entries > 0 && !(dec.answers = vd_answers_new((size_t)answer_entries, (unsigned)answer_min_slots))) {
        fprintf(stderr, "vd-microbench: out of memory\n");
        return 1;
    }
    static vd_decider dec2;   /* --answer-check: the same decisions without the cache */
    msgpack_sbuffer sb2;
    msgpack_sbuffer_init(&sb2);
    vd_emitter em2;
    vd_msgpack_out mo2 = { .sb = &sb2 };
    vd_msgpack_emitter(&mo2, &em2);
    uint64_t checked = 0, differ = 0;
    if (answer_check && vd_decider_init(&dec2, &env, ua_entries > 0 ? (size_t)ua_entries : 0,
                                        geo_entries > 0 ? (size_t)geo_entries : 0, &stats) != 0) {
        fprintf(stderr, "vd-microbench: out of memory\n");
        return 1;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    vd_emitter em;
    vd_msgpack_out mo = { .sb = &sb };
    vd_msgpack_emitter(&mo, &em);
    if (study_rate > 0)
        return answer_key_study(&dec, rs, reqs, nrows, warm, n, slots, nslots, study_rate, &em, &sb);
    study_page cost_pg;
    if (cost_key >= 0 && study_page_init(&cost_pg, rs, slots, nslots) != 0)
        return 1;
    uint64_t key_sink = 0;
    unsigned long matched = 0, allocs0 = 0;
    uint64_t ua_hits0 = 0, ua_misses0 = 0, geo_hits0 = 0, geo_misses0 = 0, src_hits0 = 0, src_misses0 = 0;
    uint64_t net_hits0 = 0, net_misses0 = 0, ans_hits0 = 0, ans_misses0 = 0;
    for (long i = 0; i < warm + n; i++) {
        if (i == warm) {
            vd_device_cache_stats(dec.caches.ua, &ua_hits0, &ua_misses0);
            vd_geo_cache_stats(dec.caches.geo, &geo_hits0, &geo_misses0);
            vd_geo_cache_net_stats(dec.caches.geo, &net_hits0, &net_misses0);
            vd_source_cache_answer_stats(dec.caches.src, &ans_hits0, &ans_misses0);
            vd_source_cache_stats(dec.caches.src, &src_hits0, &src_misses0);
            allocs0 = vd_alloc_count();
            CALLGRIND_START_INSTRUMENTATION;
            t0 = now_ns();
        }
        vd_request *r = &reqs[(size_t)i % nrows];
        if (clock_rate > 0)       /* 30 s before an hour boundary, then RATE decisions a second */
            r->ts = 1795003170 + (int64_t)((double)i / clock_rate);
        vd_decision d;
        msgpack_sbuffer_clear(&sb);
        if (cost_key >= 0) {
            /* The decision as vd_decider_run makes it (without its
             * counters), after the answer key when one is asked for: the
             * key's context reads are the decision's. */
            vd_context ctx;
            vd_context_init(&ctx, r, &dec.env_now, &dec.caches, r->ts);
            if (cost_key)
                key_sink += answer_key(&cost_pg, rs, &ctx, cost_key == 2);
            if (vd_decide_alloc(rs, NULL, dec.eval, &ctx, &d) != 0)
                return 1;
            vd_result_emit(&em, rs, &d, &ctx, dec.eval, false);
        } else if (vd_decider_run(&dec, r, &em, &d) != VD_DECIDE_OK) {
            return 1;
        }
        matched += d.nmatched;
        if (answer_check) {
            vd_decision d2;
            msgpack_sbuffer_clear(&sb2);
            if (vd_decider_run(&dec2, r, &em2, &d2) != VD_DECIDE_OK)
                return 1;
            checked++;
            if (sb.size != sb2.size || memcmp(sb.data, sb2.data, sb.size) != 0 || d.valid_until != d2.valid_until ||
                d.nmatched != d2.nmatched ||
                (d.nmatched && memcmp(d.matched, d2.matched, d.nmatched * sizeof *d.matched) != 0))
                differ++;
        }
    }
    uint64_t dt = now_ns() - t0;
    CALLGRIND_STOP_INSTRUMENTATION;
    unsigned long allocs = vd_alloc_count() - allocs0;
    uint64_t ua_hits, ua_misses, geo_hits, geo_misses, src_hits, src_misses;   /* of the measured decisions */
    vd_device_cache_stats(dec.caches.ua, &ua_hits, &ua_misses);
    vd_geo_cache_stats(dec.caches.geo, &geo_hits, &geo_misses);
    uint64_t net_hits, net_misses;
    vd_geo_cache_net_stats(dec.caches.geo, &net_hits, &net_misses);
    net_hits -= net_hits0;
    net_misses -= net_misses0;
    vd_source_cache_stats(dec.caches.src, &src_hits, &src_misses);
    uint64_t ans_hits, ans_misses;
    vd_source_cache_answer_stats(dec.caches.src, &ans_hits, &ans_misses);
    ans_hits -= ans_hits0;
    ans_misses -= ans_misses0;
    /* The device classification alone, each call timed: the median is what
     * one request's User-Agent costs (uncached with --ua-cache 0). */
    enum { MAX_CLS = 1 << 15 };
    static uint64_t cls_ns[MAX_CLS];
    size_t ncls = 0;
    if (ua_file) {            /* first column of a UA corpus (header skipped) */
        FILE *uf = fopen(ua_file, "r");
        if (!uf) {
            perror(ua_file);
            return 2;
        }
        char *line = NULL;
        size_t lcap = 0, nua = 0;
        ssize_t len;
        bool first = true;
        static char *uas[MAX_CLS];
        static size_t ua_len[MAX_CLS];
        while (nua < MAX_CLS && (len = getline(&line, &lcap, uf)) > 0) {
            if (first) {
                first = false;
                continue;
            }
            ua_len[nua] = strcspn(line, "\t\n");
            uas[nua] = malloc(ua_len[nua] + 1);
            if (!uas[nua])
                return 1;
            memcpy(uas[nua], line, ua_len[nua]);
            uas[nua][ua_len[nua]] = '\0';
            nua++;
        }
        free(line);
        fclose(uf);
        /* With -n 0 the corpus is classified once more, untimed, and that
         * pass is all callgrind --instr-atstart=no counts: "Collected" /
         * calls is the instructions of one classification (no file reading,
         * no clock). The verdict checksum tells two builds apart. */
        if (n == 0) {
            uint64_t sum = 0;
            CALLGRIND_START_INSTRUMENTATION;
            for (size_t i = 0; i < nua; i++) {
                vd_device dv;
                vd_device_lookup(dec.caches.ua, vd_str_make(uas[i], ua_len[i]), NULL, &dv);
                sum = sum * 31 + dv.type * 7 + (dv.os ? (unsigned char)dv.os[0] : 0) +
                      (dv.browser ? (unsigned char)dv.browser[1] : 0);
            }
            CALLGRIND_STOP_INSTRUMENTATION;
            printf("MICRO_UA_CORPUS calls=%zu verdict_checksum=%016llx\n", nua, (unsigned long long)sum);
        }
        for (size_t i = 0; i < nua; i++) {
            vd_device dv;
            uint64_t c0 = now_ns();
            vd_device_lookup(dec.caches.ua, vd_str_make(uas[i], ua_len[i]), NULL, &dv);
            cls_ns[ncls++] = now_ns() - c0;
            free(uas[i]);
        }
    } else {
        for (int pass = 0; pass < 4; pass++)
            for (size_t i = 0; i < nrows && ncls < MAX_CLS; i++) {
                vd_device dv;
                uint64_t c0 = now_ns();
                vd_device_lookup(dec.caches.ua, reqs[i].ua, &reqs[i].hints, &dv);
                cls_ns[ncls++] = now_ns() - c0;
            }
    }
    qsort(cls_ns, ncls, sizeof cls_ns[0], cmp_u64);
    printf("vd-microbench: %u segments, %u slots (%u per request), %zu contexts, compile %.1f ms\n",
           vd_ruleset_nsegments(rs), vd_ruleset_nslots(rs), nslots, nrows, (double)t_compile / 1e6);
    ua_hits -= ua_hits0;
    ua_misses -= ua_misses0;
    geo_hits -= geo_hits0;
    geo_misses -= geo_misses0;
    double ua_rate = ua_hits + ua_misses ? (double)ua_hits / (double)(ua_hits + ua_misses) : 0;
    double geo_rate = geo_hits + geo_misses ? (double)geo_hits / (double)(geo_hits + geo_misses) : 0;
    src_hits -= src_hits0;
    src_misses -= src_misses0;
    double src_rate = src_hits + src_misses ? (double)src_hits / (double)(src_hits + src_misses) : 0;
    printf("vd-microbench: caches over the measured decisions: user-agent %s (%llu hits, %llu misses, %.1f %%), "
           "geo %s (%llu hits, %llu misses, %.1f %%; tree walks by network %llu hits, %llu misses), "
           "referrer %llu hits, %llu misses, %.1f %% (whole answers %llu hits, %llu misses)\n",
           dec.caches.ua ? "on" : "off", (unsigned long long)ua_hits, (unsigned long long)ua_misses, 100 * ua_rate,
           dec.caches.geo ? "on" : "off", (unsigned long long)geo_hits, (unsigned long long)geo_misses, 100 * geo_rate,
           (unsigned long long)net_hits, (unsigned long long)net_misses,
           (unsigned long long)src_hits, (unsigned long long)src_misses, 100 * src_rate,
           (unsigned long long)ans_hits, (unsigned long long)ans_misses);
    fflush(stderr);
    printf("MICRO_RESULT decisions=%ld ns_per_decision=%.0f allocs_per_decision=%.4f "
           "matched_per_decision=%.2f segments=%u slots=%u contexts=%zu ua_hit_rate=%.4f geo_hit_rate=%.4f "
           "src_hit_rate=%.4f\n",
           n, (double)dt / (double)n, (double)allocs / (double)n, (double)matched / (double)(warm + n),
           vd_ruleset_nsegments(rs), nslots, nrows, ua_rate, geo_rate, src_rate);
    if (answer_check) {
        printf("MICRO_ANSWER_CHECK decisions=%llu differ=%llu\n", (unsigned long long)checked,
               (unsigned long long)differ);
        vd_decider_destroy(&dec2);
    }
    msgpack_sbuffer_destroy(&sb2);
    if (dec.answers) {
        uint64_t ah, am;
        vd_answers_stats(dec.answers, &ah, &am);
        printf("MICRO_ANSWERS entries=%ld hits=%llu misses=%llu (warm-up included) hit_rate=%.4f\n", answer_entries,
               (unsigned long long)ah, (unsigned long long)am, ah + am ? (double)ah / (double)(ah + am) : 0.0);
    }
    printf("MICRO_UA ua_cache=%s classify_ns_median=%llu classify_ns_p90=%llu calls=%zu "
           "(goal: median <= 2000 ns uncached: %s)\n", dec.caches.ua ? "on" : "off",
           (unsigned long long)(ncls ? cls_ns[ncls / 2] : 0),
           (unsigned long long)(ncls ? cls_ns[ncls * 9 / 10] : 0), ncls,
           dec.caches.ua ? "n/a" : ncls && cls_ns[ncls / 2] <= 2000 ? "met" : "NOT met");
    if (cost_key >= 0) {
        printf("ANSWER_KEY_COST key=%s sink=%llx\n", cost_key == 2 ? "verdicts" : cost_key ? "raw" : "none",
               (unsigned long long)key_sink);
        free(cost_pg.attrs);
        free(cost_pg.tstamp);
    }
    msgpack_sbuffer_destroy(&sb);
    vd_decider_destroy(&dec);
    vd_ruleset_release(rs);
    vd_geo_close(geo);
    vd_tzdb_close(tzdb);
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].own);
    free(rows);
    free(reqs);
    return 0;
}
