/* vd-microbench — the decision path in-process, without the network: for
 * instruction counts under `valgrind --tool=callgrind` (stable on a noisy
 * machine) and for the allocation check.
 *
 *   vd-microbench SEGMENTS_DIR CONTENT_MAP_DIR [--contexts FILE] [--geoip-db FILE]
 *                 [--slots a,b,c | --slot-count K] [-n DECISIONS] [--warm N]
 *                 [--ua-cache N] [--geo-cache N] [--ua-file TSV]
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
#include "decision/decider.h"
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

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vd-microbench SEGMENTS_DIR CONTENT_MAP_DIR [--contexts FILE] "
                        "[--geoip-db FILE] [--slots a,b | --slot-count K] [-n N] [--warm N] "
                        "[--ua-cache N] [--geo-cache N] [--ua-file TSV] [--compile N]\n");
        return 2;
    }
    const char *ctx_path = "tests/bench/contexts.tsv", *geo_path = NULL, *ua_file = NULL;
    char *slot_list = NULL;
    long n = 200000, warm = 20000, slot_count = 4;
    long ua_entries = 16384, geo_entries = 4096;   /* the daemon's defaults; 0 = off */
    long compiles = 0;
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
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    vd_emitter em;
    vd_msgpack_out mo = { .sb = &sb };
    vd_msgpack_emitter(&mo, &em);
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
        const vd_request *r = &reqs[(size_t)i % nrows];
        vd_decision d;
        msgpack_sbuffer_clear(&sb);
        if (vd_decider_run(&dec, r, &em, &d) != VD_DECIDE_OK)
            return 1;
        matched += d.nmatched;
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
    printf("MICRO_UA ua_cache=%s classify_ns_median=%llu classify_ns_p90=%llu calls=%zu "
           "(goal: median <= 2000 ns uncached: %s)\n", dec.caches.ua ? "on" : "off",
           (unsigned long long)(ncls ? cls_ns[ncls / 2] : 0),
           (unsigned long long)(ncls ? cls_ns[ncls * 9 / 10] : 0), ncls,
           dec.caches.ua ? "n/a" : ncls && cls_ns[ncls / 2] <= 2000 ? "met" : "NOT met");
    msgpack_sbuffer_destroy(&sb);
    vd_decider_destroy(&dec);
    vd_ruleset_release(rs);
    vd_geo_close(geo);
    vd_tzdb_close(tzdb);
    free(rows);   /* the rows' strings live until exit */
    free(reqs);
    return 0;
}
