/* alloc.h — the daemon's allocator seam (as Redis' zmalloc and hiredis'
 * hiredisAllocFuncs). Daemon code allocates through these, never through
 * libc directly, so one place can:
 *   - count allocations (vd-microbench checks the request path makes none;
 *     the count works under ASan too, unlike interposing libc), and
 *   - make allocations fail on purpose (every Nth one, from the setting
 *     VD_ALLOC_FAIL_EVERY or VD_ALLOC_FAIL_EVERY_SERVING in the environment
 *     or vd_alloc_fail_every), so
 *     tests can show that running out of memory fails one request or one
 *     reload, never the process.
 * Memory from these is ordinary libc memory: vd_free and free are
 * interchangeable, and memory that libraries hand back (jansson, libc's
 * getline) is released with vd_free as well. */
#ifndef VD_CORE_ALLOC_H
#define VD_CORE_ALLOC_H

#include <stddef.h>

void *vd_malloc(size_t n);
void *vd_calloc(size_t count, size_t size);
void *vd_realloc(void *p, size_t n);
void vd_free(void *p);
char *vd_strdup(const char *s);
char *vd_strndup(const char *s, size_t n);

/* Allocations made through the seam since start (successful or injected
 * failures), summed over threads. */
unsigned long vd_alloc_count(void);
/* Allocations failed on purpose so far. */
unsigned long vd_alloc_injected(void);
/* From now on every nth allocation (counted from this call) fails; 0: none.
 * Thread-safe. */
void vd_alloc_fail_every(unsigned long n);
/* Reads VD_ALLOC_FAIL_EVERY from the environment (main calls it once). */
void vd_alloc_init_from_env(void);
/* Reads VD_ALLOC_FAIL_EVERY_SERVING: the same, counted from the moment the
 * daemon starts serving (main calls it then), so a sweep of small N reaches
 * the request path however many allocations start-up makes. */
void vd_alloc_init_serving_from_env(void);

#endif
