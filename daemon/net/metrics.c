/* metrics.c — Prometheus text and JSON from the one table in stats.h. */
#include "net/metrics.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "net/json_out.h"

#define LD(p) atomic_load_explicit(&(p), memory_order_relaxed)

static const uint64_t bounds_ns[VD_LATENCY_NBUCKETS] = VD_LATENCY_BOUNDS_NS;

/* Adds each worker's per-ruleset counts for rs (workers still on an older
 * ruleset have none for this one). */
static void sum_ruleset_counts(const vd_stats_source *workers, unsigned n, vd_stats_snap *s)
{
    const vd_ruleset *rs = s->rs;
    size_t nvar = 0;
    for (uint32_t i = 0; i < vd_ruleset_nslots(rs); i++)
        nvar += vd_ruleset_slot_at(rs, i)->nvariants;
    s->variant_counts = vd_calloc(nvar + 1, sizeof *s->variant_counts);
    s->segment_counts = vd_calloc((size_t)vd_ruleset_nsegments(rs) + 1, sizeof *s->segment_counts);
    if (!s->variant_counts || !s->segment_counts) {
        vd_free(s->variant_counts);
        vd_free(s->segment_counts);
        s->variant_counts = s->segment_counts = NULL;
        return;
    }
    for (unsigned w = 0; w < n; w++)
        vd_decider_add_counts(workers[w].decider, rs, s->variant_counts, nvar, s->segment_counts);
}

/* Profile counters and tracked event types (by name across workers; the
 * types past VD_TRACK_TYPES distinct names fold into "other"). */
static void sum_profiles(const vd_stats_source *workers, unsigned n, vd_stats_snap *s)
{
    uint64_t other = 0;
    for (unsigned i = 0; i < n; i++) {
        const vd_decider *d = workers[i].decider;
        if (!d || !d->profiles || !d->pstats)
            continue;
        s->profiles_on = true;
        const vd_profile_stats *p = d->pstats;
#define PADD(name, help) s->prof.name += LD(p->name);
        VD_PROFILE_COUNTERS(PADD)
#undef PADD
        s->prof.inflight += LD(p->inflight);
        s->prof.connected += LD(p->connected);
        const vd_track_types *t = d->track_types;
        if (!t)
            continue;
        uint32_t nt = LD(t->n);
        other += LD(t->count[VD_TRACK_TYPES]);
        for (uint32_t k = 0; k < nt && k < VD_TRACK_TYPES; k++) {
            uint64_t c = LD(t->count[k]);
            uint32_t j = 0;
            while (j < s->ntypes && strcmp(s->type_name[j], t->name[k]) != 0)
                j++;
            if (j == s->ntypes) {
                if (s->ntypes == VD_TRACK_TYPES) {
                    other += c;
                    continue;
                }
                snprintf(s->type_name[j], sizeof s->type_name[j], "%s", t->name[k]);
                s->ntypes++;
            }
            s->type_count[j] += c;
        }
    }
    if (other) {
        snprintf(s->type_name[s->ntypes], sizeof s->type_name[0], "other");
        s->type_count[s->ntypes++] = other;
    }
}

void vd_stats_snapshot(const vd_stats_source *workers, unsigned n, const vd_http_stats *stp,
                       int64_t started_at, vd_stats_snap *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned i = 0; i < n; i++) {
        const vd_stats *st = workers[i].stats;
#define ADD(name) s->name += LD(st->name);
#define ADD_EDGE(name) s->edge.name += LD(st->edge.name);
        VD_COUNTERS(ADD)
        VD_HTTP_COUNTERS(ADD_EDGE)
#undef ADD
#undef ADD_EDGE
        s->connections += LD(st->connections);
        s->edge.connections += LD(st->edge.connections);
        for (unsigned b = 0; b <= VD_LATENCY_NBUCKETS; b++)
            s->hist[b] += LD(st->decide_hist[b]);
    }
    if (stp) {
#define ADD_STP(name) s->stp.name = LD(stp->name);
        VD_HTTP_COUNTERS(ADD_STP)
#undef ADD_STP
        s->stp.connections = LD(stp->connections);
    }
    for (unsigned b = 0; b <= VD_LATENCY_NBUCKETS; b++)
        s->decisions += s->hist[b];
    vd_live_get_info(&s->live);
    s->rs = vd_live_acquire();
    int64_t now = (int64_t)time(NULL);
    s->ready = s->rs != NULL;
    s->loaded_at = s->rs ? s->live.loaded_at : 0;
    s->ruleset_age = s->rs ? now - s->live.loaded_at : 0;
    s->reloads = s->live.reloads;
    s->failures = s->live.failures;
    s->nsegments = s->rs ? vd_ruleset_nsegments(s->rs) : 0;
    s->nslots = s->rs ? vd_ruleset_nslots(s->rs) : 0;
    s->started_at = started_at;
    s->uptime = now - started_at;
    s->redis_connected = s->live.store_connected;   /* always false in file mode */
    if (s->rs)
        sum_ruleset_counts(workers, n, s);
    sum_profiles(workers, n, s);
}

void vd_stats_snapshot_done(vd_stats_snap *s)
{
    vd_free(s->variant_counts);
    vd_free(s->segment_counts);
    s->variant_counts = s->segment_counts = NULL;
    if (s->rs)
        vd_ruleset_release(s->rs);
    s->rs = NULL;
}

/* Label values: backslash, double quote and newline escaped. Values come
 * from the ruleset (slot, variant, segment ids, version), never a visitor. */
static void label_value(struct evbuffer *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' || c == '"')
            evbuffer_add_printf(out, "\\%c", c);
        else if (c == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, &c, 1);
    }
}

static void family_head(struct evbuffer *out, const char *family, const char *type,
                        const char *help)
{
    evbuffer_add_printf(out, "# HELP variantd_%s %s\n# TYPE variantd_%s %s\n", family, help,
                        family, type);
}

static const char *dyn_help(const char *family)
{
#define DYN(fam, type, labels, help) if (strcmp(family, fam) == 0) return help;
    VD_METRICS_DYNAMIC(DYN)
#undef DYN
    return "";
}

void vd_metrics_prometheus(struct evbuffer *out, const vd_stats_snap *s)
{
    const char *last = "";
#define PROM(key, type, family, labels, help, value)                                       \
    if (strcmp(last, family) != 0) {                                                       \
        family_head(out, family, #type, help);                                             \
        last = family;                                                                     \
    }                                                                                      \
    evbuffer_add_printf(out, "variantd_%s%s%s%s %.17g\n", family, labels[0] ? "{" : "", labels, \
                        labels[0] ? "}" : "", (double)(value));
    VD_METRICS(PROM)
#undef PROM

    /* The served ruleset, info-style. */
    family_head(out, "ruleset_info", "gauge", dyn_help("ruleset_info"));
    if (s->ready) {
        evbuffer_add(out, "variantd_ruleset_info{version=\"", 31);
        label_value(out, s->live.version, strlen(s->live.version));
        evbuffer_add_printf(out, "\",source=\"%s\"} 1\n", vd_source_name(s->live.source));
    }

    /* Cumulative histogram in seconds; +Inf equals _count. */
    family_head(out, "decision_duration_seconds", "histogram", dyn_help("decision_duration_seconds"));
    uint64_t cum = 0;
    for (unsigned b = 0; b < VD_LATENCY_NBUCKETS; b++) {
        cum += s->hist[b];
        evbuffer_add_printf(out, "variantd_decision_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                            (double)bounds_ns[b] / 1e9, cum);
    }
    cum += s->hist[VD_LATENCY_NBUCKETS];
    evbuffer_add_printf(out, "variantd_decision_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    evbuffer_add_printf(out, "variantd_decision_duration_seconds_sum %.9f\n",
                        (double)s->decide_ns_total / 1e9);
    evbuffer_add_printf(out, "variantd_decision_duration_seconds_count %" PRIu64 "\n", cum);

    const vd_ruleset *rs = s->variant_counts ? s->rs : NULL;
    size_t idx = 0;
    family_head(out, "slot_decisions_total", "counter", dyn_help("slot_decisions_total"));
    if (rs) {
        for (uint32_t i = 0; i < vd_ruleset_nslots(rs); i++) {
            const vd_slot *sl = vd_ruleset_slot_at(rs, i);
            for (uint32_t v = 0; v < sl->nvariants; v++) {
                evbuffer_add(out, "variantd_slot_decisions_total{slot=\"", 36);
                label_value(out, sl->name.p, sl->name.n);
                evbuffer_add(out, "\",variant=\"", 11);
                label_value(out, sl->variants[v].id.p, sl->variants[v].id.n);
                evbuffer_add_printf(out, "\"} %" PRIu64 "\n", s->variant_counts[idx++]);
            }
        }
    }
    if (s->profiles_on) {
#define PPROM(name, help)                                                                  \
        family_head(out, #name "_total", "counter", help);                                \
        evbuffer_add_printf(out, "variantd_" #name "_total %" PRIu64 "\n", s->prof.name);
        VD_PROFILE_COUNTERS(PPROM)
#undef PPROM
        family_head(out, "profile_queue_depth", "gauge",
                    "Profile store commands sent and not yet answered (all workers)");
        evbuffer_add_printf(out, "variantd_profile_queue_depth %" PRId64 "\n", s->prof.inflight);
        family_head(out, "profile_store_connected", "gauge",
                    "Workers whose profile store connection is up");
        evbuffer_add_printf(out, "variantd_profile_store_connected %" PRId64 "\n", s->prof.connected);
        family_head(out, "tracked_events_total", "counter",
                    "Tracked events received, by type (the first 32 types; then other)");
        for (uint32_t i = 0; i < s->ntypes; i++) {
            evbuffer_add(out, "variantd_tracked_events_total{type=\"", 36);
            label_value(out, s->type_name[i], strlen(s->type_name[i]));
            evbuffer_add_printf(out, "\"} %" PRIu64 "\n", s->type_count[i]);
        }
    }
    family_head(out, "segment_matches_total", "counter", dyn_help("segment_matches_total"));
    if (rs) {
        for (uint32_t i = 0; i < vd_ruleset_nsegments(rs); i++) {
            vd_str id = vd_ruleset_segment_id(rs, i);
            evbuffer_add(out, "variantd_segment_matches_total{segment=\"", 40);
            label_value(out, id.p, id.n);
            evbuffer_add_printf(out, "\"} %" PRIu64 "\n", s->segment_counts[i]);
        }
    }
}

/* Each row's family help: rows after a family's first carry "" in the
 * table and share the first one's. */
typedef struct metric_row {
    const char *key, *family, *help;
} metric_row;

static const metric_row metric_rows[] = {
#define ROW(key, type, family, labels, help, value) { key, family, help },
    VD_METRICS(ROW)
#undef ROW
};

void vd_metrics_json(vd_json *j, const vd_stats_snap *s)
{
    /* "help": {key: what it counts}, from the same rows as the numbers, so
     * the dashboard explains each figure with the words /metrics uses. */
    vd_json_key(j, "help");
    vd_json_obj(j);
    for (size_t i = 0; i < sizeof metric_rows / sizeof metric_rows[0]; i++) {
        const char *help = metric_rows[i].help;
        for (size_t k = i; !help[0] && k-- > 0;)
            if (!strcmp(metric_rows[k].family, metric_rows[i].family) && metric_rows[k].help[0])
                help = metric_rows[k].help;
        vd_json_key(j, metric_rows[i].key);
        vd_json_cstr(j, help);
    }
    vd_json_end(j);

    vd_json_key(j, "metrics");
    vd_json_obj(j);
#define JS(key, type, family, labels, help, value) \
    vd_json_key(j, key);                            \
    vd_json_f64(j, (double)(value));
    VD_METRICS(JS)
#undef JS
    vd_json_end(j);

    vd_json_key(j, "latency");
    vd_json_obj(j);
    vd_json_key(j, "count");
    vd_json_u64(j, s->decisions);
    vd_json_key(j, "sum_seconds");
    vd_json_f64(j, (double)s->decide_ns_total / 1e9);
    vd_json_key(j, "buckets");
    vd_json_arr(j);
    uint64_t cum = 0;
    for (unsigned b = 0; b <= VD_LATENCY_NBUCKETS; b++) {
        cum += s->hist[b];
        vd_json_obj(j);
        vd_json_key(j, "le");
        if (b < VD_LATENCY_NBUCKETS)
            vd_json_f64(j, (double)bounds_ns[b] / 1e9);
        else
            vd_json_cstr(j, "+Inf");
        vd_json_key(j, "count");
        vd_json_u64(j, cum);
        vd_json_end(j);
    }
    vd_json_end(j);
    vd_json_end(j);

    const vd_ruleset *rs = s->variant_counts ? s->rs : NULL;
    size_t idx = 0;
    vd_json_key(j, "decisions");
    vd_json_obj(j);
    if (rs) {
        for (uint32_t i = 0; i < vd_ruleset_nslots(rs); i++) {
            const vd_slot *sl = vd_ruleset_slot_at(rs, i);
            vd_json_strn(j, sl->name.p, sl->name.n);
            vd_json_obj(j);
            for (uint32_t v = 0; v < sl->nvariants; v++) {
                vd_json_strn(j, sl->variants[v].id.p, sl->variants[v].id.n);
                vd_json_u64(j, s->variant_counts[idx++]);
            }
            vd_json_end(j);
        }
    }
    vd_json_end(j);
    vd_json_key(j, "profiles");
    if (s->profiles_on) {
        vd_json_obj(j);
#define PJS(name, help)            \
        vd_json_key(j, #name);     \
        vd_json_u64(j, s->prof.name);
        VD_PROFILE_COUNTERS(PJS)
#undef PJS
        vd_json_key(j, "queue_depth");
        vd_json_f64(j, (double)s->prof.inflight);
        vd_json_key(j, "connected");
        vd_json_f64(j, (double)s->prof.connected);
        vd_json_key(j, "events");
        vd_json_obj(j);
        for (uint32_t i = 0; i < s->ntypes; i++) {
            vd_json_key(j, s->type_name[i]);
            vd_json_u64(j, s->type_count[i]);
        }
        vd_json_end(j);
        vd_json_end(j);
    } else {
        vd_json_null(j);
    }
    vd_json_key(j, "segments");
    vd_json_obj(j);
    if (rs) {
        for (uint32_t i = 0; i < vd_ruleset_nsegments(rs); i++) {
            vd_str id = vd_ruleset_segment_id(rs, i);
            vd_json_strn(j, id.p, id.n);
            vd_json_u64(j, s->segment_counts[i]);
        }
    }
    vd_json_end(j);
}
