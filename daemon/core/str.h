/* str.h — byte slices. Request fields point into the frame they came in;
 * nothing on the decision path copies or NUL-terminates them. */
#ifndef VD_CORE_STR_H
#define VD_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vd_str {
    const char *p;
    size_t n;
} vd_str;

#define VD_STR_LIT(lit) ((vd_str){ (lit), sizeof(lit) - 1 })
#define VD_STR_NULL ((vd_str){ NULL, 0 })

static inline vd_str vd_str_make(const char *p, size_t n) { return (vd_str){ p, n }; }
vd_str vd_str_cstr(const char *s);              /* NULL -> empty */
static inline bool vd_str_empty(vd_str s) { return s.n == 0; }
/* 0..15 for a hex digit (either case), -1 for anything else. */
static inline int vd_hex_value(char c)
{
    unsigned char u = (unsigned char)c;
    if (u >= '0' && u <= '9')
        return u - '0';
    u |= 32;
    return u >= 'a' && u <= 'f' ? u - 'a' + 10 : -1;
}

/* ASCII case-insensitive comparisons: the contract says string ops ignore case. */
bool vd_str_eq(vd_str a, vd_str b);             /* exact bytes */
bool vd_str_eq_ci(vd_str a, vd_str b);
int  vd_str_cmp(vd_str a, vd_str b);            /* bytes, shorter first on a tie: <0, 0, >0 */
int  vd_str_cmp_ci(vd_str a, vd_str b);         /* <0, 0, >0 */
bool vd_str_prefix_ci(vd_str s, vd_str prefix);
bool vd_str_suffix_ci(vd_str s, vd_str suffix);
bool vd_str_contains_ci(vd_str s, vd_str needle);
vd_str vd_str_trim(vd_str s);                   /* ASCII whitespace both ends */

/* Copies at most cap-1 bytes and NUL-terminates; returns the bytes copied. */
size_t vd_str_copy(char *dst, size_t cap, vd_str s);
/* Same, folding ASCII upper case to lower case. */
size_t vd_str_copy_lower(char *dst, size_t cap, vd_str s);

/* 64-bit FNV-1a, case-folded variant for interning ASCII-insensitive keys. */
unsigned long long vd_hash64(const void *p, size_t n);
/* A faster hash of bytes, eight at a time, for in-memory cache keys only
 * (its values are never stored or compared across versions, unlike
 * vd_hash64's: release versions, snapshot checksums). */
unsigned long long vd_hash_mem(const void *p, size_t n);
unsigned long long vd_hash64_ci(const void *p, size_t n);

/* The MurmurHash3 finalizer: spreads every input bit over the 64 (keys
 * combined from several hashes, bucket choices). */
static inline uint64_t vd_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* UTF-8, the one definition every port uses for the strings it emits.
 * vd_utf8_seq_len: length of the valid sequence at p (n bytes left), 0 if
 * the byte at p does not start one (overlong forms, surrogates and values
 * past U+10FFFF are invalid). vd_utf8_fixed_len: the length of s once each
 * invalid byte is replaced by U+FFFD (EF BF BD); equal to n iff s is valid.
 * vd_utf8_fix writes that replacement into dst (vd_utf8_fixed_len bytes). */
#define VD_UTF8_REPLACEMENT "\xEF\xBF\xBD"
size_t vd_utf8_seq_len(const unsigned char *p, size_t n);
size_t vd_utf8_fixed_len(const char *s, size_t n);
void vd_utf8_fix(char *dst, const char *s, size_t n);

#endif
