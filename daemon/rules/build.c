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
#include "rules/eval.h"
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

#define ID_NEW UINT32_MAX
#define ID_OOM (UINT32_MAX - 1)
static uint32_t seg_by_id_insert(vd_compiler *c, uint32_t s);

/* Where each segment came from, for messages after its JSON is gone. */
typedef struct seg_src {
    uint32_t doc;
    uint32_t pos;             /* index in the doc's array, or UINT32_MAX for a single object */
} seg_src;

/* `segment "ID"` into c->what (ids fit: at most VD_MAX_ID_LEN bytes). Once
 * per segment: no snprintf. */
static void set_what(vd_compiler *c, const char *kind, vd_str id)
{
    size_t k = strlen(kind), n = id.n;
    if (!n || k + n + 4 > sizeof c->what) {
        c->what[0] = '\0';
        if (n)
            snprintf(c->what, sizeof c->what, "%s \"%.*s\"", kind, (int)id.n, id.p);
        return;
    }
    memcpy(c->what, kind, k);
    c->what[k] = ' ';
    c->what[k + 1] = '"';
    memcpy(c->what + k + 2, id.p, n);
    c->what[k + 2 + n] = '"';
    c->what[k + 3 + n] = '\0';
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
    if (!seg->id.p) {
        c->oom = true;
        return false;
    }
    (*srcs)[rs->nsegs] = (seg_src){ doc, pos };
    rs->nsegs++;
    /* Into the id table at once, so references to segments read before
     * resolve as they are compiled (the others wait for the end). */
    uint32_t first = seg_by_id_insert(c, rs->nsegs - 1);
    if (first != ID_NEW && first != ID_OOM) {
        set_what(c, "segment", seg->id);
        size_t at = vd_cpath_push(c, ".id");
        vd_cerr(c, "duplicate segment id (first defined in %s)", c->docs->docs[(*srcs)[first].doc].name);
        vd_cpath_pop(c, at);
    }
    return true;
}

/* The match tree of segment s, read from obj. */
static void compile_segment(vd_compiler *c, uint32_t s, const vd_json *obj)
{
    vd_segment *seg = &c->rs->segs[s];
    c->cur_seg = s;
    set_what(c, "segment", seg->id);
    /* Inside a segment the path is relative to the segment object. */
    vd_cpath_reset(c);
    vd_json_foreach(obj, m) {
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
    const vd_json *m = vd_json_get(obj, "match");
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

/* One slot object of a content-map document. */
static void compile_slot_item(vd_compiler *c, const vd_json *obj, uint32_t doc, uint32_t pos,
                              uint32_t **slot_docs)
{
    vd_ruleset *rs = c->rs;
    c->what[0] = '\0';
    path_for_item(c, pos);
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

/* Segment s into the id -> segment hash table (grown as needed): ID_NEW
 * if its id is new, else the segment that has it already (s stays out);
 * ID_OOM when out of memory. */
static uint32_t seg_by_id_insert(vd_compiler *c, uint32_t s)
{
    vd_ruleset *rs = c->rs;
    uint32_t cap = rs->seg_by_id ? rs->seg_by_id_mask + 1 : 0;
    if (2 * (size_t)rs->nsegs + 2 > cap) {
        uint32_t ncap = cap ? cap * 2 : 1024;
        while (2 * (size_t)rs->nsegs + 2 > ncap)
            ncap *= 2;
        uint32_t *t = vd_malloc((size_t)ncap * sizeof *t);
        if (!t) {
            c->oom = true;
            return ID_OOM;
        }
        memset(t, 0xff, (size_t)ncap * sizeof *t);
        for (uint32_t i = 0; i < cap; i++) {
            uint32_t x = rs->seg_by_id[i];
            if (x == UINT32_MAX)
                continue;
            vd_str id = rs->segs[x].id;
            uint32_t h = (uint32_t)vd_hash_mem(id.p, id.n) & (ncap - 1);
            while (t[h] != UINT32_MAX)
                h = (h + 1) & (ncap - 1);
            t[h] = x;
        }
        vd_free(rs->seg_by_id);
        rs->seg_by_id = t;
        rs->seg_by_id_mask = ncap - 1;
    }
    vd_str id = rs->segs[s].id;
    uint32_t h = (uint32_t)vd_hash_mem(id.p, id.n) & rs->seg_by_id_mask;
    while (rs->seg_by_id[h] != UINT32_MAX) {
        if (vd_str_eq(rs->segs[rs->seg_by_id[h]].id, id))
            return rs->seg_by_id[h];
        h = (h + 1) & rs->seg_by_id_mask;
    }
    rs->seg_by_id[h] = s;
    return ID_NEW;
}

/* The table again from the segments there are (after an invalid document's
 * segments were taken back). */
static void seg_by_id_rebuild(vd_compiler *c)
{
    vd_ruleset *rs = c->rs;
    if (rs->seg_by_id)
        memset(rs->seg_by_id, 0xff, ((size_t)rs->seg_by_id_mask + 1) * sizeof *rs->seg_by_id);
    for (uint32_t s = 0; s < rs->nsegs && !c->oom; s++)
        seg_by_id_insert(c, s);
}

/* References to segments not read yet when their node was compiled. */
static void resolve_refs(vd_compiler *c)
{
    vd_ruleset *rs = c->rs;
    for (size_t i = 0; i < c->nrefs; i++) {
        const struct vd_pending_ref *r = &c->refs[i];
        int32_t seg = vd_ruleset_find_segment(rs, r->id);
        if (seg >= 0) {
            rs->nodes[r->node] = (vd_node){ VD_N_REF, (uint32_t)seg, 0 };
            continue;
        }
        c->doc = r->doc;
        set_what(c, "segment", rs->segs[r->owner].id);
        memcpy(c->parts, c->ref_parts + r->part_first, r->nparts * sizeof *c->parts);
        c->plen = r->plen;
        vd_cerr(c, "unknown segment \"%.*s\"", (int)(r->id.n > 128 ? 128 : r->id.n), r->id.p);
    }
}

/* ---- documents, item by item --------------------------------------------- */

typedef struct doc_run {
    vd_compiler *c;
    uint32_t doc;
    seg_src **srcs;
    uint32_t **slot_docs;
} doc_run;

static int segment_item(void *arg, const vd_json *obj, size_t index)
{
    doc_run *r = arg;
    vd_compiler *c = r->c;
    if (stop_now(c))
        return 1;
    c->doc = c->docs->docs[r->doc].name;
    if (add_segment(c, obj, r->doc, index == SIZE_MAX ? UINT32_MAX : (uint32_t)index, r->srcs))
        compile_segment(c, c->rs->nsegs - 1, obj);
    return stop_now(c);
}

static int slot_item(void *arg, const vd_json *obj, size_t index)
{
    doc_run *r = arg;
    vd_compiler *c = r->c;
    if (stop_now(c))
        return 1;
    c->doc = c->docs->docs[r->doc].name;
    compile_slot_item(c, obj, r->doc, index == SIZE_MAX ? UINT32_MAX : (uint32_t)index, r->slot_docs);
    return stop_now(c);
}

/* Compiles document `doc` item by item as the JSON reader hands them over
 * (each segment or slot while its JSON is in cache; the whole tree of a
 * 10,000-segment document never exists). A document found invalid after
 * some items leaves nothing behind: its segments, nodes, references, slots
 * and messages are taken back, and the one message is the JSON error, as
 * when it was parsed whole first. */
static void compile_doc(vd_compiler *c, doc_run *r, vd_json_each_fn each)
{
    const vd_doc *d = &c->docs->docs[r->doc];
    vd_ruleset *rs = c->rs;
    c->doc = d->name;
    c->what[0] = '\0';
    c->plen = 0;
    if (d->len > VD_MAX_DEF_FILE_BYTES) {
        vd_cerr(c, "document is %zu bytes, more than the limit of %d", d->len, VD_MAX_DEF_FILE_BYTES);
        return;
    }
    uint32_t nsegs = rs->nsegs, nnodes = rs->nnodes, npreds = rs->npreds, nslots = rs->nslots;
    size_t nrefs = c->nrefs, nref_parts = c->nref_parts, nerr = c->nerr;
    size_t en = c->err ? c->err->n : 0, edropped = c->err ? c->err->dropped : 0;
    vd_json_error je;
    int rc = vd_json_parse_each(d->text, d->len, each, r, &je);
    if (rc == -2)
        c->oom = true;
    if (rc != -1)
        return;
    rs->nnodes = nnodes;
    rs->npreds = npreds;
    rs->nslots = nslots;
    c->nrefs = nrefs;
    c->nref_parts = nref_parts;
    c->nerr = nerr;
    if (c->err) {
        c->err->n = en;
        c->err->dropped = edropped;
    }
    if (rs->nsegs != nsegs) {
        rs->nsegs = nsegs;
        seg_by_id_rebuild(c);
    }
    c->doc = d->name;
    c->what[0] = '\0';
    c->plen = 0;
    vd_cerr(c, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
}

vd_ruleset *vd_ruleset_compile(const vd_docset *docs, const char *version, vd_errors *err)
{
    vd_ruleset *rs = vd_calloc(1, sizeof *rs);
    if (!rs) {
        vd_errors_addf(err, "out of memory compiling the ruleset");
        return NULL;
    }
    atomic_init(&rs->refs, 1);
    vd_arena_init(&rs->arena);
    rs->version = vd_strdup(version ? version : "");
    vd_compiler *cp = vd_calloc(1, sizeof *cp);
    if (!rs->version || !cp) {
        vd_free(cp);
        vd_ruleset_destroy(rs);
        vd_errors_addf(err, "out of memory compiling the ruleset");
        return NULL;
    }
    vd_compiler *c = cp;
    c->rs = rs;
    c->err = err;
    c->docs = docs;
    vd_intern_init(&c->in, &rs->arena);
    seg_src *srcs = NULL;
    uint32_t *slot_docs = NULL;

    /* Scores first, so predicates on visitor.score.ID can name only real
     * ones (a few small documents: read whole). */
    for (size_t i = 0; i < docs->n && !c->oom; i++) {
        if (docs->docs[i].kind != VD_DOC_SCORES)
            continue;
        vd_json_doc jd;
        const vd_json *root = parse_doc(c, &docs->docs[i], &jd);
        if (root) {
            vd_compile_scores(c, root);
            vd_json_doc_free(&jd);
        }
    }
    if (!c->oom)
        vd_scores_finish(c);
    /* Segments, each compiled as it is read; references to segments not
     * read yet are resolved once all are. */
    for (size_t i = 0; i < docs->n && !stop_now(c); i++)
        if (docs->docs[i].kind == VD_DOC_SEGMENTS) {
            doc_run r = { .c = c, .doc = (uint32_t)i, .srcs = &srcs };
            /* The bench's sets hold a node per 38-63 bytes and a predicate
             * per 78-115. */
            vd_compile_reserve(c, docs->docs[i].len / 32, docs->docs[i].len / 64);
            compile_doc(c, &r, segment_item);
        }
    if (!stop_now(c))
        resolve_refs(c);
    if (!stop_now(c))
        check_cycles(c, srcs, docs);
    /* Content maps, against the finished segment table. */
    for (size_t i = 0; i < docs->n && !stop_now(c); i++)
        if (docs->docs[i].kind == VD_DOC_CONTENT_MAP) {
            doc_run r = { .c = c, .doc = (uint32_t)i, .slot_docs = &slot_docs };
            compile_doc(c, &r, slot_item);
        }
    if (!stop_now(c) && rs->nslots > 1)
        sort_slots(c, slot_docs, docs);
    if (!stop_now(c) && c->nerr == 0 && (vd_index_build(rs) < 0 || vd_eval_prepare(rs) < 0))
        c->oom = true;
    if (!c->oom && c->nerr == 0 && vd_slots_mark_profile(rs) < 0)
        c->oom = true;
    if (c->oom)
        vd_errors_addf(err, "out of memory compiling the ruleset");
    else if (c->halt && !c->too_many) {
        vd_errors_addf(err, "compile cancelled: shutting down");
        c->nerr++;
    }

    bool ok = !c->oom && !c->halt && !c->nerr;
    vd_free(srcs);
    vd_free(slot_docs);
    vd_free(c->refs);
    vd_free(c->ref_parts);
    vd_intern_free(&c->in);
    vd_free(c);
    if (!ok) {
        vd_ruleset_destroy(rs);
        return NULL;
    }
    return rs;
}
