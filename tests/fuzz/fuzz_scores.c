/* fuzz_scores.c — libFuzzer target for the scores definitions (contract v2)
 * and the decay arithmetic they drive.
 *
 * Not part of `make all`; `make unit` replays tests/fuzz/corpus/scores with
 * a plain main, and `make fuzz FUZZ_SECONDS=N` runs it with libFuzzer.
 *
 * The input is a scores document (JSON), optionally followed by a NUL byte
 * and event bytes. It is compiled with a fixed segments and content-map
 * document, as a release would be. Beyond "no crash, no leak, no UB":
 *   - the compile returns a ruleset, or NULL with at least one error, each
 *     non-empty, naming a document and free of control bytes;
 *   - every compiled score has an id find_score finds, a finite half-life
 *     > 0, events with finite points > 0 that vd_score_counts confirms (a
 *     category the score names counts, where it names any);
 *   - the event bytes, read as (score, event, time step) triples, applied to
 *     a score state in order and in reverse order give the same value at a
 *     later instant (the contract: exact whatever order events arrive in),
 *     never negative, never above the peak, and a decline within 0..1. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "context/visitor.h"
#include "core/errors.h"
#include "rules/build.h"
#include "rules/defs.h"
#include "rules/ruleset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const char SEGMENTS[] =
    "[{\"id\": \"everyone\", \"match\": {\"all\": []}}]";
static const char CONTENT_MAP[] =
    "[{\"slot\": \"home.hero\", \"default\": \"a\", \"variants\": {\"a\": {}}}]";

#define MAX_EVENTS 64

static bool near(double a, double b)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= 1e-9 * (scale > 1 ? scale : 1);
}

static void check_messages(const vd_errors *err)
{
    CHECK(vd_errors_count(err) > 0);
    for (size_t i = 0; i < err->n; i++) {
        size_t n = strnlen(err->msg[i], sizeof err->msg[i]);
        CHECK(n > 0 && n < sizeof err->msg[i]);
        CHECK(strstr(err->msg[i], ".json") != NULL);
        for (size_t k = 0; k < n; k++)
            CHECK((unsigned char)err->msg[i][k] >= 0x20);
    }
}

static void check_decay(const vd_ruleset *rs, const uint8_t *ev, size_t n)
{
    uint32_t nscores = vd_ruleset_nscores(rs);
    if (nscores == 0 || n < 3)
        return;
    struct { const vd_score_def *d; double points; int64_t t; } e[MAX_EVENTS];
    size_t ne = 0;
    int64_t t = 1795000000;
    for (size_t i = 0; i + 2 < n && ne < MAX_EVENTS; i += 3) {
        const vd_score_def *d = vd_ruleset_score_at(rs, ev[i] % nscores);
        if (d->nevents == 0)
            continue;
        /* Steps up to ~3 days, some zero, some backwards: out of order. */
        t += ((int64_t)ev[i + 2] - 96) * 2027;
        e[ne].d = d;
        e[ne].points = d->events[ev[i + 1] % d->nevents].points;
        e[ne].t = t;
        ne++;
    }
    const vd_score_def *d0 = vd_ruleset_score_at(rs, 0);
    vd_score_state fwd, rev;
    memset(&fwd, 0, sizeof fwd);
    memset(&rev, 0, sizeof rev);
    int64_t last = 1795000000;
    for (size_t i = 0; i < ne; i++) {
        if (e[i].d != d0)
            continue;
        vd_score_add(&fwd, e[i].points, e[i].t, d0->half_life_s);
        if (e[i].t > last)
            last = e[i].t;
    }
    for (size_t i = ne; i-- > 0;)
        if (e[i].d == d0)
            vd_score_add(&rev, e[i].points, e[i].t, d0->half_life_s);
    int64_t later = last + 86400;
    double a = vd_score_value_at(&fwd, later, d0->half_life_s);
    double b = vd_score_value_at(&rev, later, d0->half_life_s);
    CHECK(isfinite(a) && a >= 0);
    CHECK(near(a, b));
    CHECK(a <= fwd.peak * (1 + 1e-9) + 1e-12);
    double decline;
    if (vd_score_decline(&fwd, later, d0->half_life_s, &decline))
        CHECK(decline >= -1e-12 && decline <= 1 + 1e-12);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t doclen = nul ? (size_t)(nul - data) : size;
    vd_docset ds;
    vd_docset_init(&ds);
    if (vd_docset_add(&ds, VD_DOC_SEGMENTS, "segments/fuzz.json", SEGMENTS, sizeof SEGMENTS - 1) != 0 ||
        vd_docset_add(&ds, VD_DOC_CONTENT_MAP, "content-map/fuzz.json", CONTENT_MAP,
                      sizeof CONTENT_MAP - 1) != 0 ||
        vd_docset_add(&ds, VD_DOC_SCORES, "scores/fuzz.json", (const char *)data, doclen) != 0) {
        vd_docset_free(&ds);
        return 0;
    }
    static vd_errors err;
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "fuzz", &err);
    vd_docset_free(&ds);
    if (!rs) {
        check_messages(&err);
        return 0;
    }
    CHECK(vd_errors_count(&err) == 0);
    for (uint32_t i = 0; i < vd_ruleset_nscores(rs); i++) {
        const vd_score_def *d = vd_ruleset_score_at(rs, i);
        CHECK(d->id.n > 0);
        CHECK(vd_ruleset_find_score(rs, d->id) == d);
        CHECK(isfinite(d->half_life_s) && d->half_life_s > 0);
        vd_str cat = d->ncategories ? d->categories[0] : VD_STR_NULL;
        for (uint32_t k = 0; k < d->nevents; k++) {
            double pts = 0;
            CHECK(isfinite(d->events[k].points) && d->events[k].points > 0);
            CHECK(vd_score_counts(d, d->events[k].type, cat, &pts));
            CHECK(pts == d->events[k].points);
        }
    }
    if (nul)
        check_decay(rs, nul + 1, size - doclen - 1);
    vd_ruleset_release(rs);
    return 0;
}
