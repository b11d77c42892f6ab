/* json.h — a one-pass JSON reader for the definition documents.
 *
 * Strict RFC 8259: one object or array at the top (like jansson without
 * JSON_DECODE_ANY), no comments, no trailing commas, no leading zeros, only
 * the four JSON whitespace bytes; UTF-8 validated (no overlong forms, no
 * surrogates, nothing above U+10FFFF), escapes decoded (a \u surrogate pair
 * makes one code point, a lone surrogate or \u0000 is an error), duplicate
 * keys in one object rejected. Integers are 64-bit (out of range is an
 * error, as in jansson), numbers with a fraction or an exponent are doubles
 * (an overflow to infinity is an error). A value inside VD_JSON_MAX_DEPTH
 * arrays/objects (jansson's limit, counted as jansson does) and documents
 * over VD_JSON_MAX_BYTES are refused. What it accepts and rejects is jansson's (json_loadb with
 * JSON_REJECT_DUPLICATES), which tests/fuzz/fuzz_json.c checks, but for a
 * NUL byte right after a number or literal: jansson 2.14 skips it, this
 * reader rejects it.
 *
 * The tree lives in a few large blocks owned by the document (freed at
 * once); every string is NUL-terminated (it cannot hold a NUL), object
 * members keep their order. Values are read-only. Errors give the line, the
 * column (in characters, from 1) and a message naming the token near which
 * it went wrong. */
#ifndef VD_CORE_JSON_H
#define VD_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VD_JSON_MAX_DEPTH 2048
#define VD_JSON_MAX_BYTES (1024u * 1024 * 1024)

typedef enum vd_json_type {
    VD_JSON_NULL = 0,
    VD_JSON_FALSE,
    VD_JSON_TRUE,
    VD_JSON_INTEGER,
    VD_JSON_REAL,
    VD_JSON_STRING,
    VD_JSON_ARRAY,
    VD_JSON_OBJECT,
} vd_json_type;

typedef struct vd_json vd_json;
typedef struct vd_json_member vd_json_member;

struct vd_json {
    uint32_t type;            /* vd_json_type */
    uint32_t n;               /* string: bytes; array: items; object: members */
    union {
        const char *s;
        long long i;
        double d;
        const vd_json *items;
        const vd_json_member *members;
    } u;
};

struct vd_json_member {
    const char *key;          /* NUL-terminated */
    uint32_t klen;
    vd_json val;
};

typedef struct vd_json_block vd_json_block;

typedef struct vd_json_doc {
    vd_json root;
    vd_json_block *blocks;
} vd_json_doc;

typedef struct vd_json_error {
    int line, column;         /* from 1 */
    size_t offset;            /* byte offset just past the offending byte */
    char text[160];           /* "'}' expected near ']'" */
} vd_json_error;

/* 0 on success (*doc holds the tree; free it with vd_json_doc_free), -1 on
 * a syntax error or a limit (*err says where; *doc is empty), -2 out of
 * memory. text need not be NUL-terminated. */
int vd_json_parse(const char *text, size_t len, vd_json_doc *doc, vd_json_error *err);
void vd_json_doc_free(vd_json_doc *doc);

/* The same document read item by item: each item of a top-level array is
 * handed to each() as soon as it is read (index from 0), and its memory is
 * reused for the next one once each() returns, so a 10,000-segment
 * document needs the memory of its largest item, not of all of them (and
 * they are compiled while still in cache). A top-level object is handed
 * over whole (index SIZE_MAX) once the document is read. each() returns 0
 * to go on; anything else stops the reading and vd_json_parse_each returns
 * 1. Otherwise as vd_json_parse: 0 when the whole document was read and
 * valid, -1 on a syntax error or a limit (items before it were handed
 * over already), -2 out of memory. Nothing of the tree outlives each(). */
typedef int (*vd_json_each_fn)(void *ctx, const vd_json *item, size_t index);
int vd_json_parse_each(const char *text, size_t len, vd_json_each_fn each, void *ctx, vd_json_error *err);

/* Compact JSON of v, as jansson's json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) writes it: members in order, "," and ":" without spaces,
 * `"` `\` and control bytes escaped (\b \f \n \r \t, else \u00XX), other
 * bytes as they are, doubles with 17 significant digits and a ".0" when
 * they would read as an integer. vd_json_dump_len is the exact length;
 * vd_json_dump writes that many bytes (no NUL) and returns out + length. */
size_t vd_json_dump_len(const vd_json *v);
char *vd_json_dump(const vd_json *v, char *out);

/* ---- accessors: NULL-safe, like jansson's ---- */

static inline bool vd_json_is_object(const vd_json *v) { return v && v->type == VD_JSON_OBJECT; }
static inline bool vd_json_is_array(const vd_json *v) { return v && v->type == VD_JSON_ARRAY; }
static inline bool vd_json_is_string(const vd_json *v) { return v && v->type == VD_JSON_STRING; }
static inline bool vd_json_is_integer(const vd_json *v) { return v && v->type == VD_JSON_INTEGER; }
static inline bool vd_json_is_real(const vd_json *v) { return v && v->type == VD_JSON_REAL; }
static inline bool vd_json_is_number(const vd_json *v)
{
    return v && (v->type == VD_JSON_INTEGER || v->type == VD_JSON_REAL);
}
static inline bool vd_json_is_boolean(const vd_json *v)
{
    return v && (v->type == VD_JSON_TRUE || v->type == VD_JSON_FALSE);
}
static inline bool vd_json_is_true(const vd_json *v) { return v && v->type == VD_JSON_TRUE; }
static inline bool vd_json_is_null(const vd_json *v) { return v && v->type == VD_JSON_NULL; }

/* String bytes (NUL-terminated) and length; NULL / 0 if not a string. */
static inline const char *vd_json_str(const vd_json *v) { return vd_json_is_string(v) ? v->u.s : NULL; }
static inline size_t vd_json_strlen(const vd_json *v) { return vd_json_is_string(v) ? v->n : 0; }
static inline long long vd_json_int(const vd_json *v) { return vd_json_is_integer(v) ? v->u.i : 0; }
static inline double vd_json_real(const vd_json *v) { return vd_json_is_real(v) ? v->u.d : 0.0; }
/* An integer or a real as a double; 0 otherwise. */
static inline double vd_json_number(const vd_json *v)
{
    return vd_json_is_integer(v) ? (double)v->u.i : vd_json_is_real(v) ? v->u.d : 0.0;
}

/* Items of an array, members of an object; 0 for anything else. */
static inline size_t vd_json_size(const vd_json *v)
{
    return v && (v->type == VD_JSON_ARRAY || v->type == VD_JSON_OBJECT) ? v->n : 0;
}
/* Item i of an array; NULL if v is not an array or i is out of range. */
static inline const vd_json *vd_json_at(const vd_json *v, size_t i)
{
    return vd_json_is_array(v) && i < v->n ? &v->u.items[i] : NULL;
}
/* Member i of an object; NULL if out of range. */
static inline const vd_json_member *vd_json_member_at(const vd_json *v, size_t i)
{
    return vd_json_is_object(v) && i < v->n ? &v->u.members[i] : NULL;
}
/* The value of key in object v; NULL if v is not an object or has no such
 * key. A linear scan: definition objects have a handful of members. */
static inline const vd_json *vd_json_get(const vd_json *v, const char *key)
{
    if (!vd_json_is_object(v))
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < v->n; i++) {
        const vd_json_member *m = &v->u.members[i];
        if (m->klen == n && memcmp(m->key, key, n) == 0)
            return &m->val;
    }
    return NULL;
}

/* for (each member m of object v): vd_json_foreach(v, m) { m->key, &m->val } */
#define vd_json_foreach(v, m)                                                              \
    for (const vd_json_member *m = vd_json_is_object(v) ? (v)->u.members : NULL,            \
                              *m##_end = m ? m + (v)->n : NULL;                              \
         m && m < m##_end; m++)

#endif
