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

size_t vd_utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t vd_utf8_fixed_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            out++;
            continue;
        }
        size_t len = vd_utf8_seq_len(p + i, n - i);
        if (len == 0) {
            i++;
            out += 3;
        } else {
            i += len;
            out += len;
        }
    }
    return out;
}

void vd_utf8_fix(char *dst, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = p[i] < 0x80 ? 1 : vd_utf8_seq_len(p + i, n - i);
        if (len == 0) {
            memcpy(dst, VD_UTF8_REPLACEMENT, 3);
            dst += 3;
            i++;
        } else {
            memcpy(dst, p + i, len);
            dst += len;
            i += len;
        }
    }
}
