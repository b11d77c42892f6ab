/* alloc.c — counting and failure injection around libc's allocator. The
 * counters are relaxed atomics: the request path allocates nothing, so
 * their cost is paid at start-up and on reloads only. */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic unsigned long count;
static _Atomic unsigned long injected;
static _Atomic unsigned long fail_every;
static _Atomic unsigned long fail_base;   /* count when fail_every was set */

/* True when this allocation is to fail. */
static int tick(void)
{
    unsigned long n = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1;
    /* every is published after base (release/acquire): a thread that sees
     * the new every sees its base; counts taken before the call are skipped. */
    unsigned long every = atomic_load_explicit(&fail_every, memory_order_acquire);
    unsigned long base = atomic_load_explicit(&fail_base, memory_order_relaxed);
    if (every && n > base && (n - base) % every == 0) {
        atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
        return 1;
    }
    return 0;
}

void *vd_malloc(size_t n)
{
    return tick() ? NULL : malloc(n);
}

void *vd_calloc(size_t c, size_t size)
{
    return tick() ? NULL : calloc(c, size);
}

void *vd_realloc(void *p, size_t n)
{
    return tick() ? NULL : realloc(p, n);
}

void vd_free(void *p)
{
    free(p);
}

char *vd_strdup(const char *s)
{
    return vd_strndup(s, strlen(s));
}

char *vd_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = vd_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

unsigned long vd_alloc_count(void)
{
    return atomic_load_explicit(&count, memory_order_relaxed);
}

unsigned long vd_alloc_injected(void)
{
    return atomic_load_explicit(&injected, memory_order_relaxed);
}

void vd_alloc_fail_every(unsigned long n)
{
    atomic_store_explicit(&fail_every, 0, memory_order_release);
    atomic_store_explicit(&fail_base, vd_alloc_count(), memory_order_relaxed);
    atomic_store_explicit(&fail_every, n, memory_order_release);
}

void vd_alloc_init_from_env(void)
{
    const char *v = getenv("VD_ALLOC_FAIL_EVERY");
    if (v && *v)
        vd_alloc_fail_every(strtoul(v, NULL, 10));
}

void vd_alloc_init_serving_from_env(void)
{
    const char *v = getenv("VD_ALLOC_FAIL_EVERY_SERVING");
    if (v && *v)
        vd_alloc_fail_every(strtoul(v, NULL, 10));
}
