/* build.h — definitions in, ruleset out.
 *
 * vd_ruleset_compile parses every document with jansson, validates the whole
 * set (unknown attribute or op, wrong value type, missing or duplicate ids,
 * reference cycles, rules naming missing segments or variants) and either
 * returns a complete ruleset or NULL with every error it found, each naming
 * the document, the segment id or slot, and the JSON path inside it:
 *   segments/geo.json: segment "berlin-evening": $.match.all[1].value: ...
 *
 * Pass 1 collects every segment id, pass 2 compiles each segment's match
 * tree (rules/compile_segment.c), a DFS rejects reference cycles, the
 * content-map slots are compiled against the finished segment table
 * (rules/compile_slot.c), and the candidate index is built (rules/index.c). */
#ifndef VD_RULES_BUILD_H
#define VD_RULES_BUILD_H

#include "core/errors.h"
#include "rules/defs.h"
#include "rules/ruleset.h"

/* NULL on any error (all of them in err). version is copied. */
vd_ruleset *vd_ruleset_compile(const vd_docset *docs, const char *version, vd_errors *err);

/* The same, but on success the parsed documents are handed to *parsed
 * instead of being freed (on failure *parsed is NULL): freeing the JSON trees
 * of 10,000 segments is a tenth of a compile, so a reload publishes the
 * ruleset first and then calls vd_parsed_free (from any thread; nothing else
 * refers to them). */
typedef struct vd_parsed vd_parsed;
vd_ruleset *vd_ruleset_compile_keep(const vd_docset *docs, const char *version, vd_errors *err,
                                    vd_parsed **parsed);
void vd_parsed_free(vd_parsed *p);
/* At shutdown: every compile in progress (any thread) stops at its next
 * segment and fails with "cancelled", and later ones fail at once, so
 * SIGTERM never waits for a 100,000-segment compile. One-way. */
void vd_ruleset_cancel_compiles(void);
bool vd_ruleset_compiles_cancelled(void);
#endif
