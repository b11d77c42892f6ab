/* testutil.h — shared helpers for the cmocka unit tests (header-only).
 * Tests run from the repository root (make does that). The third-party corpora
 * live in ../shared/data beside the checkout; VD_SHARED_DIR overrides. A test
 * that needs them and does not find them prints "skipped: corpus not present"
 * and calls cmocka's skip(). */
#ifndef VD_TESTUTIL_H
#define VD_TESTUTIL_H

#include <stdarg.h>
#include <stdint.h>
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

/* xorshift64, the randomized tests' generator: each test keeps its own
 * state (its seed), so a failing run repeats. */
static inline unsigned vd_test_rnd(uint64_t *state, unsigned n)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (unsigned)(x % n);
}

/* A growing text buffer and printf into it (generated definitions).
 * Include after cmocka.h. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static inline void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

#endif
