/* testrules.h — compiling generated definitions in the unit tests
 * (header-only; include after testutil.h). */
#ifndef VD_TESTRULES_H
#define VD_TESTRULES_H

#include <stdio.h>

#include "core/errors.h"
#include "rules/build.h"
#include "rules/defs.h"

/* Compiles one segments document and, when cm is not NULL, one content map
 * (named segments/VERSION.json and content-map/VERSION.json), printing the
 * compiler's errors to stderr; NULL when it refuses them. */
static inline vd_ruleset *vd_test_compile(const char *version, const char *segs, size_t ns, const char *cm,
                                          size_t ncm)
{
    char sname[64], cname[64];
    snprintf(sname, sizeof sname, "segments/%s.json", version);
    snprintf(cname, sizeof cname, "content-map/%s.json", version);
    vd_docset ds;
    static vd_errors err;
    vd_docset_init(&ds);
    vd_docset_add(&ds, VD_DOC_SEGMENTS, sname, segs, ns);
    if (cm)
        vd_docset_add(&ds, VD_DOC_CONTENT_MAP, cname, cm, ncm);
    vd_errors_init(&err);
    vd_ruleset *rs = vd_ruleset_compile(&ds, version, &err);
    vd_docset_free(&ds);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "err: %s\n", err.msg[i]);
    return rs;
}

#endif
