#include "rules/defs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"

void vd_docset_init(vd_docset *ds)
{
    ds->docs = NULL;
    ds->n = ds->cap = 0;
}

int vd_docset_add(vd_docset *ds, int kind, const char *name, const char *text, size_t len)
{
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 16;
        vd_doc *d = vd_realloc(ds->docs, cap * sizeof *d);
        if (!d)
            return -1;
        ds->docs = d;
        ds->cap = cap;
    }
    char *n = vd_strdup(name);
    char *t = vd_malloc(len + 1);
    if (!n || !t) {
        vd_free(n);
        vd_free(t);
        return -1;
    }
    memcpy(t, text, len);
    t[len] = '\0';
    ds->docs[ds->n++] = (vd_doc){ .kind = kind, .name = n, .text = t, .len = len };
    return 0;
}

void vd_docset_free(vd_docset *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        vd_free(ds->docs[i].name);
        vd_free(ds->docs[i].text);
    }
    vd_free(ds->docs);
    vd_docset_init(ds);
}

void vd_docset_version(const vd_docset *ds, char *buf, size_t cap)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < ds->n; i++) {
        const vd_doc *d = &ds->docs[i];
        /* Separators keep ("ab","c") and ("a","bc") apart. */
        h ^= vd_hash64(&d->kind, sizeof d->kind) + 0x9e3779b97f4a7c15ULL * (i + 1);
        h = h * 1099511628211ULL ^ vd_hash64(d->name, strlen(d->name));
        h = h * 1099511628211ULL ^ vd_hash64(d->text, d->len);
    }
    snprintf(buf, cap, "f-%012llx", h & 0xffffffffffffULL);
}
