/* defs.h — definition documents, the compiler's input. The file store and the
 * Redis store both produce a docset; the compiler never touches I/O. */
#ifndef VD_RULES_DEFS_H
#define VD_RULES_DEFS_H

#include <stddef.h>
#include <stdint.h>

typedef enum vd_doc_kind {
    VD_DOC_SEGMENTS = 0,      /* one segment object or an array of them */
    VD_DOC_CONTENT_MAP,       /* one slot object or an array of them */
    VD_DOC_SCORES,            /* one score object or an array of them (contract v2) */
} vd_doc_kind;

typedef struct vd_doc {
    int kind;                 /* vd_doc_kind */
    char *name;               /* where it came from, for errors: "segments/geo.json" */
    char *text;               /* JSON, NUL-terminated copy */
    size_t len;
} vd_doc;

typedef struct vd_docset {
    vd_doc *docs;
    size_t n, cap;
} vd_docset;

void vd_docset_init(vd_docset *ds);
/* Copies name and text. -1 on out of memory. */
int vd_docset_add(vd_docset *ds, int kind, const char *name, const char *text, size_t len);
/* Copies name and takes text (vd_malloc'd, NUL at text[len]): the docset
 * frees it; on failure (-1) it is freed at once. */
int vd_docset_add_owned(vd_docset *ds, int kind, const char *name, char *text, size_t len);
void vd_docset_free(vd_docset *ds);
/* Content hash over kinds, names and texts in order: a stable version id for
 * file mode ("f-" + 12 hex digits). */
void vd_docset_version(const vd_docset *ds, char *buf, size_t cap);

#endif
