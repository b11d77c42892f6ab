/* variantd-sim — a synthetic audience played against running daemons.
 *
 *   variantd-sim --connect HOST:PORT [--connect HOST:PORT ...] --redis URL --slot SLOT
 *                --rate [SEG/]VARIANT=P ... [--visitors N] [--views K] [--pace V/s]
 *                [--delay S] [--threads T] [--window DAYS] [--namespace NS] [--seed N]
 *
 * Each visitor belongs to a segment (the caller attribute attr.seg, uniform
 * over the segments named in --rate) and has a true conversion probability
 * per (segment, variant). A visitor makes K page views (decide requests,
 * spread over the daemons round-robin), is exposed to the variant it is
 * shown, and converts with its probability `--delay` seconds later (a
 * `purchase`). Whether a visitor would convert on a variant is fixed by a
 * hash of (seed, visitor, variant) — common random numbers — so the same
 * audience can be replayed under another allocation.
 *
 * Every decide carries the visitor id and consent, so the daemons record
 * the exposures themselves (on their profile connections); conversions are
 * `track` requests to a daemon (not always the one that decided). T threads,
 * each with its own connections.
 * At the end it prints what Redis counted against what the audience did
 * (they must be equal) and the conversions of the allocation the daemons
 * made against an even split of the same visitors (regret). Exit status 1
 * if any count differs. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/str.h"
#include "learn/counters.h"
#include "store/redis_url.h"
#include "store/release.h"

#define MAX_DAEMONS 8
#define MAX_ARMS 16
#define MAX_SEGS 8

typedef struct arm_rate {
    char seg[64];
    char variant[64];
    double p;
} arm_rate;

static struct {
    const char *connect[MAX_DAEMONS];
    int ndaemons;
    const char *redis, *ns, *slot;
    arm_rate rates[MAX_ARMS * MAX_SEGS];
    int nrates;
    char segs[MAX_SEGS][64];
    int nsegs;
    char variants[MAX_ARMS][64];
    int nvariants;
    long visitors, views, threads;
    double pace, delay;
    long window_days;
    uint64_t seed;
} opt = { .ns = "variantd", .visitors = 3000, .views = 2, .threads = 4, .pace = 1000, .delay = 0.2,
          .window_days = 7, .seed = 1 };

/* What the audience did, per (rule key, variant): the truth. */
typedef struct truth_row {
    char rule[64], variant[64];
    _Atomic uint64_t exposures, conversions;
} truth_row;
static truth_row truth[64];
static _Atomic int ntruth;
static pthread_mutex_t truth_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic long next_visitor;
static _Atomic uint64_t conv_bandit, conv_even, errors;
static _Atomic uint64_t best_late, all_late;   /* visitors after the first 3000: shown the best arm? */
static int64_t run_tag;                        /* makes visitor ids unique per run */
static double t_start;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return mix(h);
}

static double rate_of(const char *seg, const char *variant)
{
    for (int i = 0; i < opt.nrates; i++)
        if (!strcmp(opt.rates[i].seg, seg) && !strcmp(opt.rates[i].variant, variant))
            return opt.rates[i].p;
    return 0.0;
}

/* Common random numbers: would visitor v convert if shown variant? */
static bool would_convert(long v, const char *seg, const char *variant)
{
    uint64_t h = mix(opt.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)v);
    h = hash_str(h, variant);
    return (double)(h >> 11) * 0x1.0p-53 < rate_of(seg, variant);
}

static truth_row *truth_at(const char *rule, const char *variant)
{
    int n = atomic_load(&ntruth);
    for (int i = 0; i < n; i++)
        if (!strcmp(truth[i].rule, rule) && !strcmp(truth[i].variant, variant))
            return &truth[i];
    pthread_mutex_lock(&truth_lock);
    n = atomic_load(&ntruth);
    for (int i = 0; i < n; i++)
        if (!strcmp(truth[i].rule, rule) && !strcmp(truth[i].variant, variant)) {
            pthread_mutex_unlock(&truth_lock);
            return &truth[i];
        }
    truth_row *t = n < 64 ? &truth[n] : NULL;
    if (t) {
        snprintf(t->rule, sizeof t->rule, "%s", rule);
        snprintf(t->variant, sizeof t->variant, "%s", variant);
        atomic_store(&ntruth, n + 1);
    }
    pthread_mutex_unlock(&truth_lock);
    return t;
}

/* ---- a minimal MessagePack-RPC client ---------------------------------- */

static int dial(const char *hostport)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            !memcmp(k->via.str.ptr, key, k->via.str.size))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static void copy_str(char *dst, size_t cap, const msgpack_object *o)
{
    dst[0] = 0;
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
        memcpy(dst, o->via.str.ptr, n);
        dst[n] = 0;
    }
}

/* Sends the request in sb (and frees it), reads one reply into res: 0 when
 * it is [1, msgid, nil, result], -1 on an error reply or a broken link. */
static int call(int fd, msgpack_unpacker *up, msgpack_sbuffer *sb, msgpack_unpacked *res)
{
    ssize_t w = write(fd, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
    if (w < 0)
        return -1;
    for (;;) {
        msgpack_unpack_return ur = msgpack_unpacker_next(up, res);
        if (ur == MSGPACK_UNPACK_SUCCESS)
            break;
        if (ur != MSGPACK_UNPACK_CONTINUE)
            return -1;
        msgpack_unpacker_reserve_buffer(up, 65536);
        ssize_t n = read(fd, msgpack_unpacker_buffer(up), msgpack_unpacker_buffer_capacity(up));
        if (n <= 0)
            return -1;
        msgpack_unpacker_buffer_consumed(up, (size_t)n);
    }
    const msgpack_object *o = &res->data;
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4 &&
                   o->via.array.ptr[2].type == MSGPACK_OBJECT_NIL
               ? 0
               : -1;
}

/* A MessagePack-RPC request [0, msgid, method, [params]] up to its params
 * map, which the caller packs. */
static void begin_request(msgpack_sbuffer *sb, msgpack_packer *pk, int msgid, const char *method)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 0);
    msgpack_pack_int(pk, msgid);
    pk_str(pk, method);
    msgpack_pack_array(pk, 1);
}

/* decide → variant and rule key ("default", "holdout" or the segment). */
static int decide(int fd, msgpack_unpacker *up, const char *vid, const char *seg, char *variant, char *rule)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin_request(&sb, &pk, 1, "decide");
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "consent");
    pk_str(&pk, "personalization");
    pk_str(&pk, "slots");
    msgpack_pack_array(&pk, 1);
    pk_str(&pk, opt.slot);
    pk_str(&pk, "vid");
    pk_str(&pk, vid);
    pk_str(&pk, "attrs");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "seg");
    pk_str(&pk, seg);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int rc = -1;
    if (call(fd, up, &sb, &res) != 0)
        goto out;
    const msgpack_object *o = &res.data;
    const msgpack_object *sl = get(get(&o->via.array.ptr[3], "slots"), opt.slot);
    copy_str(variant, 64, get(sl, "variant"));
    const msgpack_object *segment = get(sl, "segment"), *held = get(sl, "holdout");
    if (held && held->type == MSGPACK_OBJECT_BOOLEAN && held->via.boolean)
        strcpy(rule, "holdout");
    else if (segment && segment->type == MSGPACK_OBJECT_STR)
        copy_str(rule, 64, segment);
    else
        strcpy(rule, "default");
    rc = variant[0] ? 0 : -1;
out:
    msgpack_unpacked_destroy(&res);
    return rc;
}

/* track {event: purchase, vid, consent, value: 1}: 0 once the daemon's
 * profile store has it. */
static int track(int fd, msgpack_unpacker *up, const char *vid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin_request(&sb, &pk, 2, "track");
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "event");
    pk_str(&pk, "purchase");
    pk_str(&pk, "vid");
    pk_str(&pk, vid);
    pk_str(&pk, "consent");
    pk_str(&pk, "personalization");
    pk_str(&pk, "value");
    msgpack_pack_double(&pk, 1.0);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int rc = call(fd, up, &sb, &res);
    msgpack_unpacked_destroy(&res);
    return rc;
}

/* ---- the audience ---------------------------------------------------------- */

typedef struct pending {
    double due;
    char vid[64];
    long v;
} pending;

static redisContext *store_connect(void)
{
    vd_redis_url u;
    char err[256];
    if (vd_redis_url_parse(opt.redis, &u, err, sizeof err) != 0) {
        fprintf(stderr, "variantd-sim: %s\n", err);
        return NULL;
    }
    redisContext *rc = vd_release_connect(&u, 5000, err, sizeof err);
    if (!rc)
        fprintf(stderr, "variantd-sim: %s\n", err);
    return rc;
}

static void flush_due(int *fds, msgpack_unpacker *ups, pending *q, int *nq, double t)
{
    int keep = 0;
    for (int i = 0; i < *nq; i++) {
        if (q[i].due > t) {
            q[keep++] = q[i];
            continue;
        }
        int d = (int)((q[i].v + 1) % opt.ndaemons);    /* often not the daemon that decided */
        if (track(fds[d], &ups[d], q[i].vid) != 0)
            atomic_fetch_add(&errors, 1);
    }
    *nq = keep;
}

static void *audience(void *arg)
{
    long tid = (long)arg;
    int fds[MAX_DAEMONS];
    msgpack_unpacker ups[MAX_DAEMONS];
    for (int d = 0; d < opt.ndaemons; d++) {
        fds[d] = dial(opt.connect[d]);
        msgpack_unpacker_init(&ups[d], 65536);
        if (fds[d] < 0) {
            fprintf(stderr, "variantd-sim: cannot connect to %s\n", opt.connect[d]);
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
    }
    int cap = 4096, nq = 0;
    pending *q = calloc((size_t)cap, sizeof *q);
    long v;
    while ((v = atomic_fetch_add(&next_visitor, 1)) < opt.visitors) {
        /* Pace: visitor v arrives at v / pace seconds. */
        double due = t_start + (double)v / opt.pace, t = now_s();
        if (due > t)
            usleep((useconds_t)((due - t) * 1e6));
        flush_due(fds, ups, q, &nq, now_s());
        const char *seg = opt.segs[v % opt.nsegs];
        char vid[64], variant[64] = "", rule[64] = "";
        snprintf(vid, sizeof vid, "sim-%" PRId64 "-%ld", run_tag, v);
        bool exposed = false;
        for (long k = 0; k < opt.views; k++) {
            int d = (int)((v + k + tid) % opt.ndaemons);
            char var2[64], rule2[64];
            if (decide(fds[d], &ups[d], vid, seg, var2, rule2) != 0) {
                atomic_fetch_add(&errors, 1);
                continue;
            }
            /* The daemon counts an exposure when the pair differs from the
             * one in the profile (within the window); the profile keeps the
             * latest, which is what a conversion converts. (Without profile
             * stickiness a later view may show another arm once the
             * weights moved.) */
            if (strcmp(variant, var2) || strcmp(rule, rule2)) {
                truth_row *tr = truth_at(rule2, var2);
                if (tr)
                    atomic_fetch_add(&tr->exposures, 1);
            }
            strcpy(variant, var2);
            strcpy(rule, rule2);
            exposed = true;
        }
        if (!exposed || !variant[0])
            continue;
        /* The best arm for this visitor's segment, and the even split. */
        const char *best = NULL;
        double bp = -1;
        for (int i = 0; i < opt.nvariants; i++)
            if (rate_of(seg, opt.variants[i]) > bp) {
                bp = rate_of(seg, opt.variants[i]);
                best = opt.variants[i];
            }
        if (v >= 3000) {
            atomic_fetch_add(&all_late, 1);
            if (best && !strcmp(best, variant))
                atomic_fetch_add(&best_late, 1);
        }
        const char *even = opt.variants[mix((uint64_t)v * 7919 + opt.seed) % (uint64_t)opt.nvariants];
        if (would_convert(v, seg, even))
            atomic_fetch_add(&conv_even, 1);
        if (would_convert(v, seg, variant)) {
            atomic_fetch_add(&conv_bandit, 1);
            truth_row *tr = truth_at(rule, variant);
            if (tr)
                atomic_fetch_add(&tr->conversions, 1);
            if (nq == cap) {
                pending *nqb = realloc(q, (size_t)cap * 2 * sizeof *q);
                if (!nqb)
                    continue;
                q = nqb;
                cap *= 2;
            }
            q[nq].due = now_s() + opt.delay;
            snprintf(q[nq].vid, sizeof q[nq].vid, "%s", vid);
            q[nq].v = v;
            nq++;
        }
    }
    while (nq) {
        usleep(20000);
        flush_due(fds, ups, q, &nq, now_s());
    }
    free(q);
    for (int d = 0; d < opt.ndaemons; d++) {
        close(fds[d]);
        msgpack_unpacker_destroy(&ups[d]);
    }
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: variantd-sim --connect HOST:PORT [...] --redis URL --slot SLOT --rate [SEG/]VARIANT=P "
                    "[...]\n       [--visitors N] [--views K] [--pace VISITORS_PER_S] [--delay S] [--threads T]\n"
                    "       [--window DAYS] [--namespace NS] [--seed N]\n");
    return 2;
}

static int add_rate(const char *s)
{
    arm_rate *r = &opt.rates[opt.nrates];
    const char *eq = strchr(s, '='), *slash = strchr(s, '/');
    if (!eq || opt.nrates >= MAX_ARMS * MAX_SEGS)
        return -1;
    if (slash && slash < eq) {
        snprintf(r->seg, sizeof r->seg, "%.*s", (int)(slash - s), s);
        s = slash + 1;
    } else {
        strcpy(r->seg, "all");
    }
    snprintf(r->variant, sizeof r->variant, "%.*s", (int)(eq - s), s);
    r->p = strtod(eq + 1, NULL);
    opt.nrates++;
    int i;
    for (i = 0; i < opt.nsegs && strcmp(opt.segs[i], r->seg); i++)
        ;
    if (i == opt.nsegs && opt.nsegs < MAX_SEGS)
        strcpy(opt.segs[opt.nsegs++], r->seg);
    for (i = 0; i < opt.nvariants && strcmp(opt.variants[i], r->variant); i++)
        ;
    if (i == opt.nvariants && opt.nvariants < MAX_ARMS)
        strcpy(opt.variants[opt.nvariants++], r->variant);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--connect") && opt.ndaemons < MAX_DAEMONS)
            opt.connect[opt.ndaemons++] = v;
        else if (!strcmp(a, "--redis"))
            opt.redis = v;
        else if (!strcmp(a, "--namespace"))
            opt.ns = v;
        else if (!strcmp(a, "--slot"))
            opt.slot = v;
        else if (!strcmp(a, "--rate")) {
            if (add_rate(v) < 0)
                return usage();
        } else if (!strcmp(a, "--visitors"))
            opt.visitors = atol(v);
        else if (!strcmp(a, "--views"))
            opt.views = atol(v);
        else if (!strcmp(a, "--threads"))
            opt.threads = atol(v);
        else if (!strcmp(a, "--pace"))
            opt.pace = atof(v);
        else if (!strcmp(a, "--delay"))
            opt.delay = atof(v);
        else if (!strcmp(a, "--window"))
            opt.window_days = atol(v);
        else if (!strcmp(a, "--seed"))
            opt.seed = strtoull(v, NULL, 10);
        else
            return usage();
    }
    if (!opt.ndaemons || !opt.redis || !opt.slot || !opt.nrates || opt.visitors < 1 || opt.views < 1 ||
        opt.threads < 1 || opt.threads > 64 || opt.pace <= 0)
        return usage();
    run_tag = (int64_t)time(NULL) * 1000 + getpid() % 1000;
    t_start = now_s();
    pthread_t th[64];
    for (long t = 0; t < opt.threads; t++)
        pthread_create(&th[t], NULL, audience, (void *)t);
    for (long t = 0; t < opt.threads; t++)
        pthread_join(th[t], NULL);
    double secs = now_s() - t_start;
    /* Exposures are written behind the decisions, nobody waits for them:
     * give the last ones a moment to land. */
    usleep(500000);

    /* What Redis counted against the truth. */
    redisContext *rc = store_connect();
    if (!rc)
        return 1;
    vd_report_slot s;
    char err[256];
    if (vd_report_read(rc, opt.ns, opt.slot, &s, err, sizeof err) != 0) {
        fprintf(stderr, "variantd-sim: %s\n", err);
        return 1;
    }
    printf("variantd-sim: %ld visitors x %ld views over %d daemon(s), %ld threads, %.1f s\n", opt.visitors,
           opt.views, opt.ndaemons, opt.threads, secs);
    printf("  %-16s %-16s %12s %12s %12s %12s\n", "rule", "variant", "exposures", "(truth)", "conversions",
           "(truth)");
    uint64_t lost = 0, doubled = 0;
    for (int i = 0; i < atomic_load(&ntruth); i++) {
        uint64_t e = 0, c = 0;
        for (unsigned r = 0; r < s.nrules; r++)
            if (!strcmp(s.rules[r].key, truth[i].rule))
                for (unsigned k = 0; k < s.rules[r].nvariants; k++)
                    if (!strcmp(s.rules[r].variants[k].id, truth[i].variant)) {
                        e = s.rules[r].variants[k].exposures;
                        c = s.rules[r].variants[k].conversions;
                    }
        uint64_t te = atomic_load(&truth[i].exposures), tc = atomic_load(&truth[i].conversions);
        printf("  %-16s %-16s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", truth[i].rule,
               truth[i].variant, e, te, c, tc);
        lost += (te > e ? te - e : 0) + (tc > c ? tc - c : 0);
        doubled += (e > te ? e - te : 0) + (c > tc ? c - tc : 0);
    }
    printf("  counted vs truth: %" PRIu64 " lost, %" PRIu64 " double-counted, %" PRIu64 " errors\n", lost, doubled,
           atomic_load(&errors));
    uint64_t cb = atomic_load(&conv_bandit), ce = atomic_load(&conv_even);
    printf("  conversions: daemons' allocation %" PRIu64 ", even split of the same visitors %" PRIu64
           " (x%.2f; regret of the even split %" PRId64 ")\n",
           cb, ce, ce ? (double)cb / (double)ce : 0.0, (int64_t)cb - (int64_t)ce);
    if (atomic_load(&all_late))
        printf("  visitors after the first 3000 shown their segment's best arm: %.1f %%\n",
               100.0 * (double)atomic_load(&best_late) / (double)atomic_load(&all_late));
    vd_report_slot_free(&s);
    redisFree(rc);
    return lost || doubled || atomic_load(&errors) ? 1 : 0;
}
