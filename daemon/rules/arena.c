#include "rules/arena.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct vd_arena_block {
    vd_arena_block *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

void vd_arena_init(vd_arena *a)
{
    memset(a, 0, sizeof *a);
}

void vd_arena_free(vd_arena *a)
{
    vd_arena_block *b = a->head;
    while (b) {
        vd_arena_block *next = b->next;
        vd_free(b);
        b = next;
    }
    vd_arena_init(a);
}

void *vd_arena_alloc(vd_arena *a, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size)
        return NULL;
    if (!a->head || a->cap - a->used < need) {
        /* Big requests get their own block behind the head so the head's
         * free space is not wasted. */
        size_t cap = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
        vd_arena_block *b = vd_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        if (cap != ARENA_BLOCK && a->head) {
            b->next = a->head->next;
            a->head->next = b;
            memset(b->data, 0, need);
            a->total += size;
            return b->data;
        }
        b->next = a->head;
        a->head = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += need;
    a->total += size;
    memset(p, 0, need);
    return p;
}

vd_str vd_arena_strdup(vd_arena *a, const char *p, size_t n, int lower)
{
    char *d = vd_arena_alloc(a, n + 1);
    if (!d)
        return VD_STR_NULL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        d[i] = (lower && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    d[n] = '\0';
    return vd_str_make(d, n);
}

void vd_intern_init(vd_intern *in, vd_arena *a)
{
    in->arena = a;
    in->slots = NULL;
    in->n = in->cap = 0;
}

void vd_intern_free(vd_intern *in)
{
    vd_free(in->slots);
    in->slots = NULL;
    in->n = in->cap = 0;
}

static int grow(vd_intern *in)
{
    size_t cap = in->cap ? in->cap * 2 : 1024;
    vd_str *s = vd_calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < in->cap; i++) {
        if (!in->slots[i].p)
            continue;
        size_t h = (size_t)vd_hash_mem(in->slots[i].p, in->slots[i].n) & (cap - 1);
        while (s[h].p)
            h = (h + 1) & (cap - 1);
        s[h] = in->slots[i];
    }
    vd_free(in->slots);
    in->slots = s;
    in->cap = cap;
    return 0;
}

vd_str vd_intern_str(vd_intern *in, const char *p, size_t n, int lower)
{
    char small[256];
    const char *key = p;
    if (lower) {
        /* Hash the folded form so "Berlin" and "berlin" share one copy. */
        if (n < sizeof small) {
            for (size_t i = 0; i < n; i++)
                small[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
            key = small;
        } else {
            vd_str s = vd_arena_strdup(in->arena, p, n, 1);
            return s;   /* long strings are rare: not worth a temporary */
        }
    }
    if ((in->n + 1) * 2 > in->cap && grow(in) < 0)
        return VD_STR_NULL;
    size_t h = (size_t)vd_hash_mem(key, n) & (in->cap - 1);
    while (in->slots[h].p) {
        if (in->slots[h].n == n && memcmp(in->slots[h].p, key, n) == 0)
            return in->slots[h];
        h = (h + 1) & (in->cap - 1);
    }
    vd_str s = vd_arena_strdup(in->arena, key, n, 0);
    if (!s.p)
        return s;
    in->slots[h] = s;
    in->n++;
    return s;
}
