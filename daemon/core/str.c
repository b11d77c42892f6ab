#include "core/str.h"

#include <string.h>

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

vd_str vd_str_cstr(const char *s)
{
    return s ? vd_str_make(s, strlen(s)) : VD_STR_NULL;
}

bool vd_str_eq(vd_str a, vd_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool vd_str_eq_ci(vd_str a, vd_str b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    return true;
}

int vd_str_cmp(vd_str a, vd_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int d = n ? memcmp(a.p, b.p, n) : 0;
    if (d)
        return d;
    return a.n < b.n ? -1 : a.n > b.n;
}

int vd_str_cmp_ci(vd_str a, vd_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    for (size_t i = 0; i < n; i++) {
        int d = (int)lower((unsigned char)a.p[i]) - (int)lower((unsigned char)b.p[i]);
        if (d)
            return d;
    }
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

bool vd_str_prefix_ci(vd_str s, vd_str prefix)
{
    return s.n >= prefix.n && vd_str_eq_ci(vd_str_make(s.p, prefix.n), prefix);
}

bool vd_str_suffix_ci(vd_str s, vd_str suffix)
{
    return s.n >= suffix.n && vd_str_eq_ci(vd_str_make(s.p + s.n - suffix.n, suffix.n), suffix);
}

bool vd_str_contains_ci(vd_str s, vd_str needle)
{
    if (needle.n == 0)
        return true;
    if (needle.n > s.n)
        return false;
    unsigned char first = lower((unsigned char)needle.p[0]);
    for (size_t i = 0; i + needle.n <= s.n; i++) {
        if (lower((unsigned char)s.p[i]) != first)
            continue;
        if (vd_str_eq_ci(vd_str_make(s.p + i, needle.n), needle))
            return true;
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

vd_str vd_str_trim(vd_str s)
{
    while (s.n && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

size_t vd_str_copy(char *dst, size_t cap, vd_str s)
{
    if (cap == 0)
        return 0;
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
    return n;
}

size_t vd_str_copy_lower(char *dst, size_t cap, vd_str s)
{
    size_t n = vd_str_copy(dst, cap, s);
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)lower((unsigned char)dst[i]);
    return n;
}

unsigned long long vd_hash64(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

unsigned long long vd_hash_mem(const void *p, size_t n)
{
    const unsigned char *b = p;
    const unsigned long long k = 0x9E3779B97F4A7C15ULL;
    unsigned long long h = 0x243F6A8885A308D3ULL ^ (n * k);
    while (n >= 8) {
        unsigned long long w;
        memcpy(&w, b, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
        b += 8;
        n -= 8;
    }
    unsigned long long w = 0;
    if (n)
        memcpy(&w, b, n);
    h = (h ^ w) * k;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    return h ^ (h >> 29);
}

unsigned long long vd_hash64_ci(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= lower(b[i]);
        h *= 1099511628211ULL;
    }
    return h;
}
