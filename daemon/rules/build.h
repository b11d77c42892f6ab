/* build.h — definitions in, ruleset out.
 *
 * vd_ruleset_compile reads every document with the JSON reader of
 * core/json.h, validates the whole set (unknown attribute or op, wrong value type, missing or duplicate ids,
 * reference cycles, rules naming missing segments or variants) and either
 * returns a complete ruleset or NULL with every error it found, each naming
 * the document, the segment id or slot, and the JSON path inside it:
 *   segments/geo.json: segment "berlin-evening": $.match.all[1].value: ...
 *
 * Score documents come first (read whole). Segment documents are compiled
 * item by item as the reader hands each segment over (its match tree by
 * rules/compile_segment.c, while its JSON is in cache; no document's whole
 * tree is ever built), references to segments not read yet are resolved
 * once all are, a DFS rejects reference cycles, the content-map slots are
 * compiled the same way against the finished segment table
 * (rules/compile_slot.c), and the candidate index is built (rules/index.c). */
#ifndef VD_RULES_BUILD_H
#define VD_RULES_BUILD_H

#include "core/errors.h"
#include "rules/defs.h"
#include "rules/ruleset.h"

/* NULL on any error (all of them in err). version is copied. */
vd_ruleset *vd_ruleset_compile(const vd_docset *docs, const char *version, vd_errors *err);

/* At shutdown: every compile in progress (any thread) stops at its next
 * segment and fails with "cancelled", and later ones fail at once, so
 * SIGTERM never waits for a 100,000-segment compile. One-way. */
void vd_ruleset_cancel_compiles(void);
bool vd_ruleset_compiles_cancelled(void);
#endif
