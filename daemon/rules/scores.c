/* scores.c — compiles score definitions (the scores/ folder, contract v2):
 *   {"id": "sneakers", "half_life_days": 14,
 *    "events": {"product_view": 1, "add_to_cart": 5},
 *    "categories": ["sneakers", "running"]}
 * into rs->scores, sorted by id. Errors name document, score id and path like
 * the segment compiler's. Scores compile before segments so that
 * visitor.score.ID, visitor.peak.ID and visitor.decline.ID can be checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/compile.h"
#include "core/alloc.h"
#include "rules/model.h"

static bool add_score(vd_compiler *c, const vd_json *obj)
{
    vd_ruleset *rs = c->rs;
    c->what[0] = '\0';
    if (!vd_json_is_object(obj)) {
        vd_cerr(c, "a score must be an object {\"id\", \"half_life_days\", \"events\"}");
        return false;
    }
    const vd_json *jid = vd_json_get(obj, "id");
    size_t saved = vd_cpath_push(c, ".id");
    if (!vd_json_is_string(jid) ||
        !vd_check_id(c, vd_json_str(jid), vd_json_strlen(jid), "score id")) {
        if (!vd_json_is_string(jid))
            vd_cerr(c, "missing or not a string");
        vd_cpath_pop(c, saved);
        return false;
    }
    vd_cpath_pop(c, saved);
    snprintf(c->what, sizeof c->what, "score \"%s\"", vd_json_str(jid));
    bool ok = true;
    vd_json_foreach(obj, m) {
        const char *key = m->key;
        if (strcmp(key, "id") && strcmp(key, "half_life_days") && strcmp(key, "events") &&
            strcmp(key, "categories") && strcmp(key, "description")) {
            vd_cerr(c, "unknown key \"%s\" (expected id, half_life_days, events, categories, description)",
                    key);
            ok = false;
        }
    }
    const vd_json *jh = vd_json_get(obj, "half_life_days");
    saved = vd_cpath_push(c, ".half_life_days");
    double hl = vd_json_is_number(jh) ? vd_json_number(jh) : -1;
    if (!vd_json_is_number(jh) || !(hl > 0) || !isfinite(hl) || hl > 36500) {
        vd_cerr(c, "needs a number of days > 0 (at most 36500)");
        ok = false;
    }
    vd_cpath_pop(c, saved);
    const vd_json *je = vd_json_get(obj, "events");
    saved = vd_cpath_push(c, ".events");
    if (!vd_json_is_object(je) || vd_json_size(je) == 0) {
        vd_cerr(c, "needs an object of event type -> points (> 0), at least one");
        ok = false;
    } else {
        vd_json_foreach(je, m) {
            const char *key = m->key;
            const vd_json *v = &m->val;
            size_t s2 = vd_cpath_push(c, ".%s", key);
            if (!vd_check_id(c, key, strlen(key), "event type"))
                ok = false;
            else if (!vd_json_is_number(v) || !(vd_json_number(v) > 0) ||
                     !(vd_json_number(v) <= VD_MAX_SCORE_POINTS)) {
                /* Bounded so no sum of events can overflow to infinity. */
                vd_cerr(c, "points must be a number > 0 and at most %g", VD_MAX_SCORE_POINTS);
                ok = false;
            }
            vd_cpath_pop(c, s2);
        }
    }
    vd_cpath_pop(c, saved);
    const vd_json *jc = vd_json_get(obj, "categories");
    saved = vd_cpath_push(c, ".categories");
    if (jc && !vd_json_is_array(jc)) {
        vd_cerr(c, "needs an array of category names");
        ok = false;
    } else if (jc) {
        for (size_t i = 0; i < vd_json_size(jc); i++) {
            const vd_json *e = vd_json_at(jc, i);
            size_t s2 = vd_cpath_push(c, "[%zu]", i);
            if (!vd_json_is_string(e) || vd_json_strlen(e) == 0 || vd_json_strlen(e) > VD_MAX_ID_LEN) {
                vd_cerr(c, "needs a category name string (1 to %d bytes)", VD_MAX_ID_LEN);
                ok = false;
            }
            vd_cpath_pop(c, s2);
        }
    }
    vd_cpath_pop(c, saved);
    const vd_json *jd = vd_json_get(obj, "description");
    if (jd && !vd_json_is_string(jd)) {
        saved = vd_cpath_push(c, ".description");
        vd_cerr(c, "needs a string");
        vd_cpath_pop(c, saved);
        ok = false;
    }
    if (!ok)
        return false;
    /* Duplicates are found here, while the document is known, so the error
     * names the file like every other one (at most VD_MAX_SCORES to scan). */
    for (uint32_t i = 0; i < rs->nscores; i++)
        if (rs->scores[i].id.n == vd_json_strlen(jid) &&
            memcmp(rs->scores[i].id.p, vd_json_str(jid), rs->scores[i].id.n) == 0) {
            size_t s3 = vd_cpath_push(c, ".id");
            vd_cerr(c, "duplicate score id");
            vd_cpath_pop(c, s3);
            return false;
        }
    if (rs->nscores >= VD_MAX_SCORES) {
        vd_cerr(c, "more than %d scores", VD_MAX_SCORES);
        return false;
    }
    if (rs->nscores == rs->cap_scores) {
        uint32_t cap = rs->cap_scores ? rs->cap_scores * 2 : 8;
        vd_score_def *s = vd_realloc(rs->scores, cap * sizeof *s);
        if (!s) {
            c->oom = true;
            return false;
        }
        rs->scores = s;
        rs->cap_scores = cap;
    }
    vd_score_def *d = &rs->scores[rs->nscores];
    memset(d, 0, sizeof *d);
    d->id = vd_intern_str(&c->in, vd_json_str(jid), vd_json_strlen(jid), 0);
    d->half_life_s = hl * 86400.0;
    d->nevents = (uint32_t)vd_json_size(je);
    vd_score_event *ev = vd_arena_alloc(&rs->arena, d->nevents * sizeof *ev);
    d->ncategories = jc ? (uint32_t)vd_json_size(jc) : 0;
    vd_str *cats = d->ncategories ? vd_arena_alloc(&rs->arena, d->ncategories * sizeof *cats) : NULL;
    if (!d->id.p || !ev || (d->ncategories && !cats)) {
        c->oom = true;
        return false;
    }
    uint32_t k = 0;
    vd_json_foreach(je, m) {
        ev[k].type = vd_intern_str(&c->in, m->key, m->klen, 0);
        ev[k].points = vd_json_number(&m->val);
        if (!ev[k].type.p)
            c->oom = true;
        k++;
    }
    for (uint32_t i = 0; i < d->ncategories; i++) {
        const vd_json *e = vd_json_at(jc, i);
        cats[i] = vd_intern_str(&c->in, vd_json_str(e), vd_json_strlen(e), 0);
        if (!cats[i].p)
            c->oom = true;
    }
    d->events = ev;
    d->categories = cats;
    rs->nscores++;
    return true;
}

void vd_compile_scores(vd_compiler *c, const vd_json *root)
{
    size_t n = vd_json_is_array(root) ? vd_json_size(root) : 1;
    for (size_t i = 0; i < n && !c->oom; i++) {
        vd_cpath_reset(c);
        if (vd_json_is_array(root))
            vd_cpath_push(c, "[%zu]", i);
        add_score(c, vd_json_is_array(root) ? vd_json_at(root, i) : root);
    }
}

static int score_cmp(const void *a, const void *b)
{
    const vd_score_def *x = a, *y = b;
    size_t n = x->id.n < y->id.n ? x->id.n : y->id.n;
    int d = memcmp(x->id.p, y->id.p, n);
    return d ? d : (x->id.n > y->id.n) - (x->id.n < y->id.n);
}

void vd_scores_finish(vd_compiler *c)
{
    vd_ruleset *rs = c->rs;
    if (rs->nscores > 1)
        qsort(rs->scores, rs->nscores, sizeof *rs->scores, score_cmp);
}

const vd_score_def *vd_ruleset_find_score(const vd_ruleset *rs, vd_str id)
{
    uint32_t lo = 0, hi = rs->nscores;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        vd_score_def key = { .id = id };
        int d = score_cmp(&rs->scores[mid], &key);
        if (d == 0)
            return &rs->scores[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint32_t vd_ruleset_nscores(const vd_ruleset *rs)
{
    return rs->nscores;
}

const vd_score_def *vd_ruleset_score_at(const vd_ruleset *rs, uint32_t i)
{
    return i < rs->nscores ? &rs->scores[i] : NULL;
}

bool vd_score_counts(const vd_score_def *d, vd_str type, vd_str category, double *points)
{
    for (uint32_t i = 0; i < d->nevents; i++) {
        if (!vd_str_eq(d->events[i].type, type))
            continue;
        if (d->ncategories) {
            bool in = false;
            for (uint32_t k = 0; k < d->ncategories && !in; k++)
                in = vd_str_eq_ci(d->categories[k], category);
            if (!in)
                return false;
        }
        *points = d->events[i].points;
        return true;
    }
    return false;
}

/* A slot reaches the profile when a rule's segment, or a segment it refers
 * to, has a visitor.* predicate. Computed once per ruleset. */
static bool seg_uses_visitor(const vd_ruleset *rs, uint32_t s, uint8_t *memo)
{
    if (memo[s])
        return memo[s] == 2;
    memo[s] = 1;   /* no cycles by now; 1 also stops a revisit */
    bool uses = false;
    const vd_segment *seg = &rs->segs[s];
    for (uint32_t i = seg->node_first; i < seg->node_end && !uses; i++) {
        const vd_node *nd = &rs->nodes[i];
        if (nd->kind == VD_N_PRED)
            uses = vd_attr_info_get(rs->preds[nd->a].attr.id)->family & VD_FAM_VISITOR;
        else if (nd->kind == VD_N_REF)
            uses = seg_uses_visitor(rs, nd->a, memo);
    }
    memo[s] = uses ? 2 : 3;
    return uses;
}

int vd_slots_mark_profile(vd_ruleset *rs)
{
    uint8_t *memo = vd_calloc(rs->nsegs + 1, 1);
    if (!memo)
        return -1;
    for (uint32_t i = 0; i < rs->nslots; i++) {
        vd_slot *s = &rs->slots[i];
        for (uint32_t r = 0; r < s->nrules && !s->uses_profile; r++)
            s->uses_profile = seg_uses_visitor(rs, s->rules[r].segment, memo) ||
                              /* a bandit keeps a visitor on the arm in its profile */
                              s->rules[r].bandit;
    }
    vd_free(memo);
    return 0;
}
