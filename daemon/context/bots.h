/* bots.h — the field's maintained robot pattern list (isbot), as a matcher.
 *
 * The list is isbot's src/patterns.json (npm package isbot, pinned in
 * scripts/fetch-isbot.sh, public domain), kept as data/bots/isbot-patterns.txt
 * and embedded in the binary. It is compiled once per process with PCRE2
 * (JIT where the CPU has it). Each pattern that needs a literal word ("crawl",
 * "^python") runs only when that word is in the User-Agent, so a browser UA
 * costs a few literal tests and the handful of patterns without such a word.
 * Thread-safe after vd_bots_init; matching allocates nothing after a
 * thread's first match. */
#ifndef VD_CONTEXT_BOTS_H
#define VD_CONTEXT_BOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Compiles the embedded list (once; later calls return the first result).
 * 0 on success; -1 with a message in err. vd_device_classify calls it
 * itself, so tools and tests need not. */
int vd_bots_init(char *err, size_t cap);
/* "isbot 5.2.4: 206 patterns (PCRE2 10.42, JIT)" — for the start-up log. */
const char *vd_bots_describe(void);

/* The caller's summary of a lower-cased UA: a 4096-bit set of the hashes of
 * its 3-byte windows (vd_tri_hash). A pattern whose required literal has a
 * first or last window outside the set cannot match and is skipped with two
 * bit tests. */
#define VD_TRI_BITS 4096u

/* The hash of the 3 bytes at p[i] (12 bits). A macro as well, so tables of
 * string literals get their hashes at compile time. */
#define VD_TRI_HASH(p, i)                                                          \
    ((unsigned)((((uint32_t)(unsigned char)(p)[i] |                                \
                  (uint32_t)(unsigned char)(p)[(i) + 1] << 8 |                      \
                  (uint32_t)(unsigned char)(p)[(i) + 2] << 16) * 2654435761u) >> 20))

static inline unsigned vd_tri_hash(const char *p)
{
    return VD_TRI_HASH(p, 0);
}

/* Tests a lower-cased UA (with its window set tri, VD_TRI_BITS bits)
 * against the list. Returns the index of the first matching pattern, or -1
 * (also when the list could not be compiled). */
int vd_bots_match(const char *lower, size_t n, const uint64_t *tri);
/* The same without the guards: every pattern tried in order (slow; for
 * tests, which check that both give the same answer). */
int vd_bots_match_all(const char *lower, size_t n);
/* The pattern text of index i (as in the list), or NULL. */
const char *vd_bots_pattern(int i);
unsigned vd_bots_count(void);

#endif
