/* testutil.h — shared helpers for the cmocka unit tests (header-only).
 * Tests run from the repository root (make does that). The third-party corpora
 * live in ../shared/data beside the checkout; VD_SHARED_DIR overrides. A test
 * that needs them and does not find them prints "skipped: corpus not present"
 * and calls cmocka's skip(). */
#ifndef VD_TESTUTIL_H
#define VD_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *vd_test_shared(const char *rel, char *buf, size_t cap)
{
    const char *base = getenv("VD_SHARED_DIR");
    snprintf(buf, cap, "%s/%s", base && *base ? base : "../shared", rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

#define VD_NEED_SHARED(var, rel)                                             \
    char var##_buf[4096];                                                    \
    const char *var = vd_test_shared((rel), var##_buf, sizeof var##_buf);    \
    do {                                                                     \
        if (!var) {                                                          \
            printf("skipped: corpus not present (%s)\n", (rel));             \
            skip();                                                          \
        }                                                                    \
    } while (0)

#endif
