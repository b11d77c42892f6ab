/* arena.h — the ruleset's bump allocator and the compile-time string
 * interner. Every string and value set of a ruleset lives in one arena and
 * is freed at once with it; pointers never move. */
#ifndef VD_RULES_ARENA_H
#define VD_RULES_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef struct vd_arena_block vd_arena_block;

typedef struct vd_arena {
    vd_arena_block *head;
    size_t used, cap;         /* of the head block */
    size_t total;             /* bytes requested, for stats */
} vd_arena;

void vd_arena_init(vd_arena *a);
void vd_arena_free(vd_arena *a);
/* Zeroed, aligned to 16 bytes; NULL on out of memory. */
void *vd_arena_alloc(vd_arena *a, size_t size);
/* NUL-terminated copy (lower-cased if lower). */
vd_str vd_arena_strdup(vd_arena *a, const char *p, size_t n, int lower);

/* Interner: one copy of each distinct string in the arena. Compile-time
 * only (the table is freed with vd_intern_free; the strings stay). */
typedef struct vd_intern {
    vd_arena *arena;
    vd_str *slots;
    size_t n, cap;
} vd_intern;

void vd_intern_init(vd_intern *in, vd_arena *a);
void vd_intern_free(vd_intern *in);
/* {NULL, 0} on out of memory; lower folds ASCII upper case first. */
vd_str vd_intern_str(vd_intern *in, const char *p, size_t n, int lower);

#endif
