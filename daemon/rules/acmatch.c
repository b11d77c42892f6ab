#include "rules/acmatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define NONE UINT32_MAX
#define MATCH UINT32_MAX        /* dense: the transition reaches an accepting state */

struct vd_acm {
    uint8_t cls[256];           /* byte -> class; 0: in no term (back to the start) */
    uint32_t nclasses;          /* including class 0 */
    uint32_t nstates;
    bool always;                /* an empty term: every value matches */
    bool dense;
    bool ids;                   /* built by vd_acm_build_ids: no MATCH shortcut */
    /* dense: delta[s * nclasses + c], MATCH when the target accepts */
    const uint32_t *delta;
    /* sparse: edges of state s are ecls/eto[first[s] .. first[s+1]), by class */
    const uint32_t *first;
    const uint8_t *ecls;
    const uint32_t *eto;
    const uint32_t *fail;
    const uint8_t *acc;         /* accepting (a term ends here or on its fail chain) */
    const uint32_t *root;       /* root's target per class (0: stay) */
    /* ids: the term ending at s (NONE: none), and the nearest state on s's
     * fail chain where a term ends (0: none) */
    const uint32_t *term;
    const uint32_t *dict;
};

static inline uint8_t fold(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Build-time trie: first-child / next-sibling lists. */
typedef struct node {
    uint32_t child, sibling, fail, term;
    uint8_t cls;
    uint8_t acc;
} node;

static uint32_t child_of(const node *t, uint32_t s, uint8_t c)
{
    for (uint32_t k = t[s].child; k != NONE; k = t[k].sibling)
        if (t[k].cls == c)
            return k;
    return NONE;
}

static void *arena_array(vd_arena *a, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n)
        return NULL;
    return vd_arena_alloc(a, n * size);
}

static const vd_acm *build(vd_arena *a, const vd_str *terms, size_t n, size_t dense_budget, bool ids)
{
    vd_acm *m = vd_arena_alloc(a, sizeof *m);
    if (!m)
        return NULL;
    m->ids = ids;
    /* Classes: one per distinct folded byte of the terms; upper-case
     * letters share their lower-case class. */
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (terms[i].n == 0)
            m->always = true;
        if (terms[i].n > SIZE_MAX - total)
            return NULL;
        total += terms[i].n;
        for (size_t j = 0; j < terms[i].n; j++)
            m->cls[fold((uint8_t)terms[i].p[j])] = 1;
    }
    if (total >= UINT32_MAX)
        return NULL;
    uint32_t nc = 1;
    for (int b = 0; b < 256; b++)
        if (m->cls[b])
            m->cls[b] = (uint8_t)nc++;
    /* 'A'..'Z' never get a class of their own (they were folded), so
     * nc <= 256 - 26 + 1 and every class fits a byte. */
    for (int b = 'A'; b <= 'Z'; b++)
        m->cls[b] = m->cls[b + 32];
    m->nclasses = nc;
    if (m->always)
        return m;

    node *t = vd_malloc(total * sizeof *t);
    uint32_t *queue = vd_malloc(total * sizeof *queue);
    if (!t || !queue)
        goto oom;
    uint32_t ns = 1;
    t[0] = (node){ .child = NONE, .sibling = NONE, .fail = 0, .term = NONE };
    for (size_t i = 0; i < n; i++) {
        uint32_t s = 0;
        for (size_t j = 0; j < terms[i].n; j++) {
            uint8_t c = m->cls[(uint8_t)terms[i].p[j]];
            uint32_t k = child_of(t, s, c);
            if (k == NONE) {
                k = ns++;
                t[k] = (node){ .child = NONE, .sibling = t[s].child, .fail = 0, .term = NONE, .cls = c };
                t[s].child = k;
            }
            s = k;
        }
        t[s].acc = 1;
        if (t[s].term == NONE)
            t[s].term = (uint32_t)i;
    }
    m->nstates = ns;

    /* Failure links, breadth first (a state's fail is shallower). */
    uint32_t qh = 0, qt = 0;
    for (uint32_t k = t[0].child; k != NONE; k = t[k].sibling) {
        t[k].fail = 0;
        queue[qt++] = k;
    }
    while (qh < qt) {
        uint32_t u = queue[qh++];
        for (uint32_t v = t[u].child; v != NONE; v = t[v].sibling) {
            uint32_t f = t[u].fail, g;
            while ((g = child_of(t, f, t[v].cls)) == NONE && f != 0)
                f = t[f].fail;
            t[v].fail = g == NONE ? 0 : g;
            t[v].acc |= t[t[v].fail].acc;
            queue[qt++] = v;
        }
    }

    if (dense_budget && (size_t)ns <= dense_budget / nc) {
        uint32_t *delta = arena_array(a, (size_t)ns * nc, sizeof *delta);
        if (!delta)
            goto oom;
        /* Rows in BFS order: the root first, then each state copies the
         * row of its fail state for the classes it has no edge on. */
        for (uint32_t k = t[0].child; k != NONE; k = t[k].sibling)
            delta[t[k].cls] = t[k].acc && !ids ? MATCH : k;
        for (uint32_t q = 0; q < qt; q++) {
            uint32_t u = queue[q];
            uint32_t *row = delta + (size_t)u * nc;
            memcpy(row, delta + (size_t)t[u].fail * nc, nc * sizeof *row);
            for (uint32_t k = t[u].child; k != NONE; k = t[k].sibling)
                row[t[k].cls] = t[k].acc && !ids ? MATCH : k;
            row[0] = 0;
        }
        delta[0] = 0;
        m->delta = delta;
        m->dense = true;
    } else {
        uint32_t *first = arena_array(a, (size_t)ns + 1, sizeof *first);
        uint8_t *ecls = arena_array(a, ns, 1);
        uint32_t *eto = arena_array(a, ns, sizeof *eto);
        uint32_t *fail = arena_array(a, ns, sizeof *fail);
        uint8_t *acc = arena_array(a, ns, 1);
        uint32_t *root = arena_array(a, nc, sizeof *root);
        if (!first || !ecls || !eto || !fail || !acc || !root)
            goto oom;
        uint32_t e = 0;
        for (uint32_t s = 0; s < ns; s++) {
            first[s] = e;
            fail[s] = t[s].fail;
            acc[s] = t[s].acc;
            /* Children sorted by class: insertion into the edge slice. */
            for (uint32_t k = t[s].child; k != NONE; k = t[k].sibling) {
                uint32_t j = e++;
                while (j > first[s] && ecls[j - 1] > t[k].cls) {
                    ecls[j] = ecls[j - 1];
                    eto[j] = eto[j - 1];
                    j--;
                }
                ecls[j] = t[k].cls;
                eto[j] = k;
            }
        }
        first[ns] = e;
        for (uint32_t k = t[0].child; k != NONE; k = t[k].sibling)
            root[t[k].cls] = k;
        m->first = first;
        m->ecls = ecls;
        m->eto = eto;
        m->fail = fail;
        m->acc = acc;
        m->root = root;
    }
    if (ids) {
        uint32_t *term = arena_array(a, ns, sizeof *term), *dict = arena_array(a, ns, sizeof *dict);
        uint8_t *acc = arena_array(a, ns, 1);
        if (!term || !dict || !acc)
            goto oom;
        term[0] = t[0].term;
        dict[0] = 0;
        acc[0] = 0;
        /* BFS order: a state's fail state is done before it. */
        for (uint32_t q = 0; q < qt; q++) {
            uint32_t u = queue[q], f = t[u].fail;
            term[u] = t[u].term;
            dict[u] = f != 0 && t[f].term != NONE ? f : dict[f];
            acc[u] = term[u] != NONE || dict[u] != 0;
        }
        m->term = term;
        m->dict = dict;
        m->acc = acc;
    }
    vd_free(t);
    vd_free(queue);
    return m;
oom:
    vd_free(t);
    vd_free(queue);
    return NULL;
}

const vd_acm *vd_acm_build(vd_arena *a, const vd_str *terms, size_t n, size_t dense_budget)
{
    return build(a, terms, n, dense_budget, false);
}

const vd_acm *vd_acm_build_ids(vd_arena *a, const vd_str *terms, size_t n, size_t dense_budget)
{
    for (size_t i = 0; i < n; i++)
        if (terms[i].n == 0)
            return NULL;
    return build(a, terms, n, dense_budget, true);
}

static uint32_t sparse_step(const vd_acm *m, uint32_t s, uint8_t c)
{
    for (;;) {
        if (s == 0)
            return m->root[c];
        uint32_t lo = m->first[s], hi = m->first[s + 1];
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (m->ecls[mid] == c)
                return m->eto[mid];
            if (m->ecls[mid] < c)
                lo = mid + 1;
            else
                hi = mid;
        }
        s = m->fail[s];
    }
}

bool vd_acm_any(const vd_acm *m, vd_str text)
{
    if (m->always)
        return true;
    const uint8_t *p = (const uint8_t *)text.p, *end = p + text.n;
    if (m->dense) {
        const uint32_t *delta = m->delta;
        uint32_t nc = m->nclasses;
        size_t row = 0;
        for (; p < end; p++) {
            uint32_t s = delta[row + m->cls[*p]];
            if (s == MATCH)
                return true;
            row = (size_t)s * nc;
        }
        return false;
    }
    uint32_t s = 0;
    for (; p < end; p++) {
        uint8_t c = m->cls[*p];
        s = c ? sparse_step(m, s, c) : 0;
        if (m->acc[s])
            return true;
    }
    return false;
}

static void report(const vd_acm *m, uint32_t s, void (*fn)(void *, uint32_t), void *arg)
{
    for (; s != 0; s = m->dict[s])
        if (m->term[s] != NONE)
            fn(arg, m->term[s]);
}

void vd_acm_each(const vd_acm *m, vd_str text, bool at_end, void (*fn)(void *arg, uint32_t id), void *arg)
{
    const uint8_t *p = (const uint8_t *)text.p, *end = p + text.n;
    const uint8_t *acc = m->acc;
    uint32_t s = 0;
    if (m->dense) {
        const uint32_t *delta = m->delta;
        uint32_t nc = m->nclasses;
        for (; p < end; p++) {
            s = delta[(size_t)s * nc + m->cls[*p]];
            if (!at_end && acc[s])
                report(m, s, fn, arg);
        }
    } else {
        for (; p < end; p++) {
            uint8_t c = m->cls[*p];
            s = c ? sparse_step(m, s, c) : 0;
            if (!at_end && acc[s])
                report(m, s, fn, arg);
        }
    }
    if (at_end && acc[s])
        report(m, s, fn, arg);
}

bool vd_acm_dense(const vd_acm *m)
{
    return m->dense;
}
