/* build.c — drives the compilers over a docset: definitions in, ruleset out.
 *
 * Pass 1 collects every segment id (so references may point forward and
 * across documents), pass 2 compiles each segment's match tree, then a DFS
 * over references rejects cycles and over-long chains, and the content-map
 * documents are compiled against the finished segment index. */
#include "rules/build.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rules/compile.h"
#include "rules/compile_slot.h"
#include "rules/index.h"
#include "rules/model.h"
#include "variantd/limits.h"

static atomic_bool compile_cancelled;

void vd_ruleset_cancel_compiles(void)
{
    atomic_store(&compile_cancelled, true);
}

bool vd_ruleset_compiles_cancelled(void)
{
    return atomic_load(&compile_cancelled);
}

/* Checked between segments and documents: true once the compile must stop
 * (cancelled at shutdown, out of memory, or a whole-set limit exceeded). */
static bool stop_now(vd_compiler *c)
{
    if (!c->halt && atomic_load_explicit(&compile_cancelled, memory_order_relaxed))
        c->halt = true;
    return c->halt || c->oom;
}

typedef struct seg_src {
    const vd_json *obj;              /* the segment object (borrowed from its doc's root) */
    uint32_t doc;
    uint32_t pos;             /* index in the doc's array, or UINT32_MAX for a single object */
} seg_src;

static void set_what(vd_compiler *c, const char *kind, vd_str id)
{
    if (id.n)
        snprintf(c->what, sizeof c->what, "%s \"%.*s\"", kind, (int)id.n, id.p);
    else
        c->what[0] = '\0';
}

static void path_for_item(vd_compiler *c, uint32_t pos)
{
    vd_cpath_reset(c);
    if (pos != UINT32_MAX)
        vd_cpath_push(c, "[%u]", pos);
}

/* Parses document d into *out; the root, or NULL after reporting why. */
static const vd_json *parse_doc(vd_compiler *c, const vd_doc *d, vd_json_doc *out)
{
    c->doc = d->name;
    c->what[0] = '\0';
    c->plen = 0;
    if (d->len > VD_MAX_DEF_FILE_BYTES) {
        vd_cerr(c, "document is %zu bytes, more than the limit of %d", d->len, VD_MAX_DEF_FILE_BYTES);
        return NULL;
    }
    vd_json_error je;
    int rc = vd_json_parse(d->text, d->len, out, &je);
    if (rc == -2) {
        c->oom = true;
        return NULL;
    }
    if (rc != 0) {
        vd_cerr(c, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    return &out->root;
}

typedef struct id_entry {
    vd_str id;
    uint32_t seg;
} id_entry;

static int id_entry_cmp(const void *a, const void *b)
{
    const id_entry *x = a, *y = b;
    size_t n = x->id.n < y->id.n ? x->id.n : y->id.n;
    int d = memcmp(x->id.p, y->id.p, n);
    if (d)
        return d;
    if (x->id.n != y->id.n)
        return x->id.n < y->id.n ? -1 : 1;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

/* Pass 1 for one segment object: id and description. */
static bool add_segment(vd_compiler *c, const vd_json *obj, uint32_t doc, uint32_t pos, seg_src **srcs)
{
    vd_ruleset *rs = c->rs;
    path_for_item(c, pos);
    c->what[0] = '\0';
    if (!vd_json_is_object(obj)) {
        vd_cerr(c, "a segment must be an object {\"id\", \"match\"}");
        return false;
    }
    const vd_json *jid = vd_json_get(obj, "id");
    size_t saved = vd_cpath_push(c, ".id");
    if (!vd_json_is_string(jid)) {
        vd_cerr(c, "missing or not a string");
        vd_cpath_pop(c, saved);
        return false;
    }
    bool ok = vd_check_id(c, vd_json_str(jid), vd_json_strlen(jid), "segment id");
    vd_cpath_pop(c, saved);
    if (!ok)
        return false;
    if (rs->nsegs >= VD_MAX_SEGMENTS) {
        /* Reported once; the set is rejected, so nothing more is compiled
         * (no 100,000 match trees built only to be thrown away). */
        if (!c->too_many)
            vd_cerr(c, "more than %d segments: the set is rejected", VD_MAX_SEGMENTS);
        c->too_many = true;
        c->halt = true;
        return false;
    }
    if (rs->nsegs == rs->cap_segs) {
        uint32_t cap = rs->cap_segs ? rs->cap_segs * 2 : 64;
        vd_segment *s = vd_realloc(rs->segs, cap * sizeof *s);
        seg_src *ss = vd_realloc(*srcs, cap * sizeof *ss);
        if (s)
            rs->segs = s;
        if (ss)
            *srcs = ss;
        if (!s || !ss) {
            c->oom = true;
            return false;
        }
        rs->cap_segs = cap;
    }
    vd_segment *seg = &rs->segs[rs->nsegs];
    memset(seg, 0, sizeof *seg);
    seg->id = vd_intern_str(&c->in, vd_json_str(jid), vd_json_strlen(jid), 0);
    const vd_json *jd = vd_json_get(obj, "description");
    if (vd_json_is_string(jd))
        seg->description = vd_arena_strdup(&rs->arena, vd_json_str(jd), vd_json_strlen(jd), 0);
    if (!seg->id.p)
        c->oom = true;
    (*srcs)[rs->nsegs] = (seg_src){ obj, doc, pos };
    rs->nsegs++;
    return true;
}

/* Pass 2 for one segment: keys and the match tree. */
static void compile_segment(vd_compiler *c, uint32_t s, const seg_src *src)
{
    vd_segment *seg = &c->rs->segs[s];
    set_what(c, "segment", seg->id);
    /* Inside a segment the path is relative to the segment object. */
    vd_cpath_reset(c);
    vd_json_foreach(src->obj, m) {
        const char *key = m->key;
        const vd_json *v = &m->val;
        if (strcmp(key, "id") && strcmp(key, "description") && strcmp(key, "match"))
            vd_cerr(c, "unknown key \"%s\" (expected id, description, match)", key);
        else if (!strcmp(key, "description") && !vd_json_is_string(v)) {
            size_t saved = vd_cpath_push(c, ".description");
            vd_cerr(c, "needs a string");
            vd_cpath_pop(c, saved);
        }
    }
    seg->node_first = c->rs->nnodes;
    uint32_t root = vd_node_alloc(c, 1);
    if (root == VD_NODE_NONE)
        return;
    seg->root = root;
    const vd_json *m = vd_json_get(src->obj, "match");
    size_t saved = vd_cpath_push(c, ".match");
    if (!m)
        vd_cerr(c, "missing (every segment needs a match node)");
    else
        vd_compile_node(c, m, root, 1);
    vd_cpath_pop(c, saved);
    seg->node_end = c->rs->nnodes;
}

/* ---- reference cycles ----------------------------------------------------- */

typedef struct dfs {
    vd_compiler *c;
    uint8_t *color;           /* 0 white, 1 grey (on the stack), 2 black */
    uint32_t *height;         /* longest reference chain below a black segment */
    uint32_t *stack;
    uint32_t depth;
    const seg_src *srcs;
    const vd_docset *docs;
} dfs;

static void report_cycle(dfs *d, uint32_t target)
{
    vd_compiler *c = d->c;
    vd_ruleset *rs = c->rs;
    char buf[VD_ERROR_LEN - 64];
    size_t len = 0;
    uint32_t i = 0;
    while (i < d->depth && d->stack[i] != target)
        i++;
    /* stack[i] -> ... -> stack[depth-1] -> target */
    for (uint32_t k = i; k <= d->depth; k++) {
        vd_str id = k < d->depth ? rs->segs[d->stack[k]].id : rs->segs[target].id;
        int n = snprintf(buf + len, sizeof buf - len, "%s%.*s", k > i ? " -> " : "", (int)id.n, id.p);
        if (n < 0 || (size_t)n >= sizeof buf - len)
            break;
        len += (size_t)n;
    }
    uint32_t top = d->stack[d->depth - 1];
    c->doc = d->docs->docs[d->srcs[top].doc].name;
    set_what(c, "segment", rs->segs[top].id);
    vd_cpath_reset(c);
    vd_cpath_push(c, ".match");
    vd_cerr(c, "reference cycle: %s", buf);
}

static uint32_t dfs_visit(dfs *d, uint32_t s)
{
    vd_ruleset *rs = d->c->rs;
    d->color[s] = 1;
    d->stack[d->depth++] = s;
    uint32_t h = 0;
    const vd_segment *seg = &rs->segs[s];
    for (uint32_t i = seg->node_first; i < seg->node_end; i++) {
        if (rs->nodes[i].kind != VD_N_REF)
            continue;
        uint32_t r = rs->nodes[i].a, hr = 0;
        if (d->color[r] == 1) {
            report_cycle(d, r);
            continue;
        }
        if (d->color[r] == 0) {
            if (d->depth >= VD_MAX_REF_DEPTH) {
                vd_compiler *c = d->c;
                c->doc = d->docs->docs[d->srcs[s].doc].name;
                set_what(c, "segment", seg->id);
                vd_cpath_reset(c);
                vd_cpath_push(c, ".match");
                vd_cerr(c, "segment references nest deeper than %d", VD_MAX_REF_DEPTH);
                continue;
            }
            hr = dfs_visit(d, r);
        } else {
            hr = d->height[r];
        }
        if (hr + 1 > h)
            h = hr + 1;
    }
    d->depth--;
    d->color[s] = 2;
    d->height[s] = h;
    if (h > VD_MAX_REF_DEPTH && d->depth == 0) {
        vd_compiler *c = d->c;
        c->doc = d->docs->docs[d->srcs[s].doc].name;
        set_what(c, "segment", seg->id);
        vd_cpath_reset(c);
        vd_cpath_push(c, ".match");
        vd_cerr(c, "segment references nest deeper than %d", VD_MAX_REF_DEPTH);
    }
    return h;
}

static void check_cycles(vd_compiler *c, const seg_src *srcs, const vd_docset *docs)
{
    vd_ruleset *rs = c->rs;
    dfs d = { .c = c, .srcs = srcs, .docs = docs };
    d.color = vd_calloc(rs->nsegs + 1, 1);
    d.height = vd_calloc(rs->nsegs + 1, sizeof *d.height);
    d.stack = vd_calloc(VD_MAX_REF_DEPTH + 2, sizeof *d.stack);
    if (!d.color || !d.height || !d.stack) {
        c->oom = true;
    } else {
        for (uint32_t s = 0; s < rs->nsegs; s++)
            if (d.color[s] == 0)
                dfs_visit(&d, s);
    }
    vd_free(d.color);
    vd_free(d.height);
    vd_free(d.stack);
}

/* ---- slots ---------------------------------------------------------------- */

static void compile_slots(vd_compiler *c, const vd_json *root, uint32_t doc, const vd_docset *docs,
                          uint32_t **slot_docs)
{
    vd_ruleset *rs = c->rs;
    size_t n = vd_json_is_array(root) ? vd_json_size(root) : 1;
    for (size_t i = 0; i < n; i++) {
        const vd_json *obj = vd_json_is_array(root) ? vd_json_at(root, i) : root;
        c->doc = docs->docs[doc].name;
        c->what[0] = '\0';
        path_for_item(c, vd_json_is_array(root) ? (uint32_t)i : UINT32_MAX);
        if (rs->nslots == rs->cap_slots) {
            uint32_t cap = rs->cap_slots ? rs->cap_slots * 2 : 16;
            vd_slot *s = vd_realloc(rs->slots, cap * sizeof *s);
            uint32_t *sd = vd_realloc(*slot_docs, cap * sizeof *sd);
            if (s)
                rs->slots = s;
            if (sd)
                *slot_docs = sd;
            if (!s || !sd) {
                c->oom = true;
                return;
            }
            rs->cap_slots = cap;
        }
        vd_slot *slot = &rs->slots[rs->nslots];
        memset(slot, 0, sizeof *slot);
        if (vd_compile_slot(c, obj, slot))
            (*slot_docs)[rs->nslots++] = doc;
        if (c->oom)
            return;
    }
}

/* Sorts the slots by name for bsearch and reports duplicates, naming both
 * documents (the slot order inside the array does not matter). */
static void sort_slots(vd_compiler *c, const uint32_t *slot_docs, const vd_docset *docs)
{
    vd_ruleset *rs = c->rs;
    id_entry *tmp = vd_malloc(rs->nslots * sizeof *tmp);
    vd_slot *sorted = vd_malloc(rs->nslots * sizeof *sorted);
    if (!tmp || !sorted) {
        vd_free(tmp);
        vd_free(sorted);
        c->oom = true;
        return;
    }
    for (uint32_t i = 0; i < rs->nslots; i++)
        tmp[i] = (id_entry){ rs->slots[i].name, i };
    qsort(tmp, rs->nslots, sizeof *tmp, id_entry_cmp);
    for (uint32_t i = 0; i < rs->nslots; i++) {
        sorted[i] = rs->slots[tmp[i].seg];
        if (i > 0 && vd_str_cmp(tmp[i].id, tmp[i - 1].id) == 0) {
            c->doc = docs->docs[slot_docs[tmp[i].seg]].name;
            set_what(c, "slot", tmp[i].id);
            vd_cpath_reset(c);
            vd_cpath_push(c, ".slot");
            vd_cerr(c, "duplicate slot (first defined in %s)", docs->docs[slot_docs[tmp[i - 1].seg]].name);
        }
    }
    memcpy(rs->slots, sorted, rs->nslots * sizeof *sorted);
    vd_free(tmp);
    vd_free(sorted);
}

/* ---- the driver ----------------------------------------------------------- */

/* The id -> segment hash table; a second segment with an id already in
 * it is reported (naming where the first one is) and left out. */
static bool build_id_index(vd_compiler *c, const seg_src *srcs, const vd_docset *docs)
{
    vd_ruleset *rs = c->rs;
    uint32_t cap = 16;
    while (cap < 2 * rs->nsegs + 2)
        cap *= 2;
    rs->seg_by_id = vd_malloc((size_t)cap * sizeof *rs->seg_by_id);
    if (!rs->seg_by_id) {
        c->oom = true;
        return false;
    }
    memset(rs->seg_by_id, 0xff, (size_t)cap * sizeof *rs->seg_by_id);
    rs->seg_by_id_mask = cap - 1;
    bool ok = true;
    for (uint32_t s = 0; s < rs->nsegs; s++) {
        vd_str id = rs->segs[s].id;
        uint32_t h = (uint32_t)vd_hash_mem(id.p, id.n) & rs->seg_by_id_mask;
        while (rs->seg_by_id[h] != UINT32_MAX && !vd_str_eq(rs->segs[rs->seg_by_id[h]].id, id))
            h = (h + 1) & rs->seg_by_id_mask;
        if (rs->seg_by_id[h] == UINT32_MAX) {
            rs->seg_by_id[h] = s;
            continue;
        }
        uint32_t first = rs->seg_by_id[h];
        c->doc = docs->docs[srcs[s].doc].name;
        set_what(c, "segment", id);
        path_for_item(c, srcs[s].pos);
        vd_cpath_push(c, ".id");
        vd_cerr(c, "duplicate segment id (first defined in %s)", docs->docs[srcs[first].doc].name);
        ok = false;
    }
    return ok;
}

struct vd_parsed {
    vd_json_doc *docs;
    size_t n;
};

void vd_parsed_free(vd_parsed *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        vd_json_doc_free(&p->docs[i]);
    vd_free(p->docs);
    vd_free(p);
}

vd_ruleset *vd_ruleset_compile(const vd_docset *docs, const char *version, vd_errors *err)
{
    return vd_ruleset_compile_keep(docs, version, err, NULL);
}

vd_ruleset *vd_ruleset_compile_keep(const vd_docset *docs, const char *version, vd_errors *err,
                                    vd_parsed **parsed)
{
    if (parsed)
        *parsed = NULL;
    vd_ruleset *rs = vd_calloc(1, sizeof *rs);
    if (!rs) {
        vd_errors_addf(err, "out of memory compiling the ruleset");
        return NULL;
    }
    atomic_init(&rs->refs, 1);
    vd_arena_init(&rs->arena);
    rs->version = vd_strdup(version ? version : "");
    vd_compiler c = { .rs = rs, .err = err };
    vd_intern_init(&c.in, &rs->arena);
    const vd_json **roots = vd_calloc(docs->n + 1, sizeof *roots);
    vd_json_doc *jdocs = vd_calloc(docs->n + 1, sizeof *jdocs);
    seg_src *srcs = NULL;
    uint32_t *slot_docs = NULL;
    if (!rs->version || !roots || !jdocs)
        c.oom = true;

    /* Pass 1: parse every document, collect segment ids. */
    for (size_t i = 0; i < docs->n && !stop_now(&c); i++) {
        roots[i] = parse_doc(&c, &docs->docs[i], &jdocs[i]);
        if (!roots[i] || docs->docs[i].kind != VD_DOC_SEGMENTS)
            continue;
        const vd_json *r = roots[i];
        if (vd_json_is_array(r)) {
            for (size_t k = 0; k < vd_json_size(r) && !stop_now(&c); k++)
                add_segment(&c, vd_json_at(r, k), (uint32_t)i, (uint32_t)k, &srcs);
        } else {
            add_segment(&c, r, (uint32_t)i, UINT32_MAX, &srcs);
        }
    }
    /* Scores, so predicates on visitor.score.ID can name only real ones. */
    for (size_t i = 0; i < docs->n && !c.oom; i++)
        if (roots[i] && docs->docs[i].kind == VD_DOC_SCORES) {
            c.doc = docs->docs[i].name;
            vd_compile_scores(&c, roots[i]);
        }
    if (!c.oom)
        vd_scores_finish(&c);
    if (!stop_now(&c))
        build_id_index(&c, srcs, docs);
    /* Pass 2: match trees. */
    for (uint32_t s = 0; s < rs->nsegs && !stop_now(&c); s++) {
        c.doc = docs->docs[srcs[s].doc].name;
        compile_segment(&c, s, &srcs[s]);
    }
    if (!stop_now(&c))
        check_cycles(&c, srcs, docs);
    /* Content maps, against the segment index. */
    for (size_t i = 0; i < docs->n && !stop_now(&c); i++)
        if (roots[i] && docs->docs[i].kind == VD_DOC_CONTENT_MAP)
            compile_slots(&c, roots[i], (uint32_t)i, docs, &slot_docs);
    if (!stop_now(&c) && rs->nslots > 1)
        sort_slots(&c, slot_docs, docs);
    if (!stop_now(&c) && c.nerr == 0 && vd_index_build(rs) < 0)
        c.oom = true;
    if (!c.oom && c.nerr == 0 && vd_slots_mark_profile(rs) < 0)
        c.oom = true;
    if (c.oom)
        vd_errors_addf(err, "out of memory compiling the ruleset");
    else if (c.halt && !c.too_many) {
        vd_errors_addf(err, "compile cancelled: shutting down");
        c.nerr++;
    }

    bool ok = !c.oom && !c.halt && !c.nerr;
    vd_parsed *keep = ok && parsed && jdocs ? vd_malloc(sizeof *keep) : NULL;
    if (keep) {
        keep->docs = jdocs;
        keep->n = docs->n;
        *parsed = keep;
    } else {
        for (size_t i = 0; jdocs && i < docs->n; i++)
            vd_json_doc_free(&jdocs[i]);
        vd_free(jdocs);
    }
    vd_free(roots);
    vd_free(srcs);
    vd_free(slot_docs);
    vd_intern_free(&c.in);
    if (!ok) {
        vd_ruleset_destroy(rs);
        return NULL;
    }
    return rs;
}

