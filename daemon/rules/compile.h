/* compile.h — the compiler's working state (errors with their JSON path,
 * ids) and the segment compiler (compile_segment.c); the slot compiler has
 * compile_slot.h. build.c drives both over the documents. Private to
 * daemon/rules. */
#ifndef VD_RULES_COMPILE_H
#define VD_RULES_COMPILE_H

#include "core/json.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "rules/arena.h"
#include "rules/model.h"
#include "variantd/limits.h"

#define VD_NODE_NONE UINT32_MAX
#define VD_CPATH_PARTS 256
#define VD_ATTR_MEMO 256      /* a power of two */

typedef struct vd_compiler {
    vd_ruleset *rs;
    vd_intern in;
    vd_errors *err;
    const char *doc;          /* current document name */
    char what[VD_MAX_ID_LEN + 32];  /* `segment "x"` / `slot "y"` / "" */
    /* JSON path inside the current object ("$.match.all[1]"), kept as the
     * pushed parts and written out only for an error message: a compile
     * pushes and pops a part for every node and value. 0 parts: no path. */
    struct vd_cpath_part {
        const char *fmt;      /* "$", ".attr", ".%s", "[%u]", "[%zu]" */
        const char *s;        /* the %s argument */
        size_t u;             /* the %u / %zu argument */
    } parts[VD_CPATH_PARTS];
    size_t plen;              /* parts pushed (beyond VD_CPATH_PARTS: counted, not kept) */
    /* Attribute names already resolved (a set names a few dozen distinct
     * ones, in every predicate): name -> id and the offset of its NAME
     * part ("attr.NAME"), 0 if none. */
    struct vd_attr_memo {
        const char *p;        /* the name, interned */
        uint32_t n, sub_off;
        uint8_t id;
    } attr_memo[VD_ATTR_MEMO];
    size_t nerr;              /* errors reported (also beyond what err keeps) */
    bool oom;
    bool halt;                /* cancelled, or over a whole-set limit: stop early */
    bool too_many;            /* "more than VD_MAX_SEGMENTS" already reported */
    const struct vd_docset *docs;
    uint32_t cur_seg;         /* the segment being compiled */
    /* References to segments not read yet (documents are compiled as they
     * are read), with what their message needs if they stay unknown. */
    struct vd_pending_ref {
        uint32_t node, owner; /* the node to make a reference; its segment */
        vd_str id;            /* interned */
        const char *doc;
        uint32_t part_first, nparts;
        size_t plen;
    } *refs;
    size_t nrefs, cap_refs;
    struct vd_cpath_part *ref_parts;
    size_t nref_parts, cap_ref_parts;
} vd_compiler;

/* "doc: what: path: message" (parts left out when empty). */
void vd_cerr(vd_compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends to the path one of the forms ".name", "[0]", ".%s", "[%u]",
 * "[%zu]" (an argument only right after the first character; a %s string
 * must stay valid until popped); returns the length to restore with
 * vd_cpath_pop. */
size_t vd_cpath_push(vd_compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vd_cpath_pop(vd_compiler *c, size_t len);
/* vd_cpath_push(c, name) and vd_cpath_push(c, "[%zu]", i) inline, for the
 * parts pushed for every node and value. */
static inline size_t vd_cpath_name(vd_compiler *c, const char *literal)
{
    size_t old = c->plen;
    if (old < VD_CPATH_PARTS)
        c->parts[old].fmt = literal;
    c->plen = old + 1;
    return old;
}
static inline size_t vd_cpath_index(vd_compiler *c, size_t i)
{
    size_t old = c->plen;
    if (old < VD_CPATH_PARTS) {
        c->parts[old].fmt = "[%zu]";
        c->parts[old].u = i;
    }
    c->plen = old + 1;
    return old;
}
void vd_cpath_reset(vd_compiler *c);

/* Ids of segments, slots and variants: 1..VD_MAX_ID_LEN of [A-Za-z0-9._:-].
 * Reports at the current path and returns false if bad. `kind` names it. */
bool vd_check_id(vd_compiler *c, const char *s, size_t n, const char *kind);

/* Node idx becomes a reference to segment id: at once if that segment was
 * read already, else once all segments are (build.c reports it unknown
 * then, at the path it had here). */
void vd_compile_ref(vd_compiler *c, const char *id, size_t n, uint32_t idx);

/* Room for this many more nodes and predicates, taken at once (a guess
 * from a document's size; growing by doubling instead copied the
 * 15 MB predicate table of the nested 10,000-segment set several times).
 * Best effort: on out of memory the tables grow as they fill. */
void vd_compile_reserve(vd_compiler *c, size_t nodes, size_t preds);

/* Appends a node to rs->nodes; VD_NODE_NONE on out of memory. */
uint32_t vd_node_alloc(vd_compiler *c, uint32_t count);
/* Compiles j into node idx (already allocated). Errors are reported and
 * the node becomes an empty all; compilation goes on to find the rest. */
void vd_compile_node(vd_compiler *c, const vd_json *j, uint32_t idx, int depth);

/* Score definitions (scores.c): each document, then finish (sort, duplicate
 * ids), before the segments so visitor.score.ID can be checked. */
void vd_compile_scores(vd_compiler *c, const vd_json *root);
void vd_scores_finish(vd_compiler *c);
/* Sets vd_slot.uses_profile on every slot; -1 on out of memory. */
int vd_slots_mark_profile(vd_ruleset *rs);

#endif
