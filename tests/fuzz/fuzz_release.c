/* fuzz_release.c — libFuzzer target for the release reader
 * (store/release.c: vd_release_to_docset), which turns the fields of the
 * release hash a daemon fetched from Redis (HGETALL) into compiler input.
 *
 *   make build/fuzz/fuzz_release
 *   build/fuzz/fuzz_release -max_total_time=60 /tmp/variantd-fuzz/release \
 *       tests/fuzz/corpus/release
 *
 * The input is the hash as name \0 value \0 name \0 value ... (a last name
 * without a value gets an empty one); every name and value is an exact-size
 * heap copy, not NUL-terminated, as hiredis hands them over. Checks:
 *   - a refused hash leaves the docset empty and reports an error;
 *   - an accepted one has 1.. documents, each of a known kind, sorted by
 *     kind then name, named "segments/..." or "content-map/..." after a
 *     field of the input, with the field's exact bytes as its text;
 *   - "meta" is never a document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "rules/defs.h"
#include "store/release.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MAXF 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_release_field f[MAXF];
    char *owned[2 * MAXF];
    size_t nf = 0, no = 0, at = 0;
    while (at < size && nf < MAXF) {
        const char *part[2];
        size_t len[2];
        for (int k = 0; k < 2; k++) {
            const uint8_t *z = at <= size ? memchr(data + at, 0, size - at) : NULL;
            size_t n = at >= size ? 0 : z ? (size_t)(z - (data + at)) : size - at;
            char *c = malloc(n ? n : 1);
            CHECK(c);
            if (n)
                memcpy(c, data + at, n);
            owned[no++] = c;
            part[k] = c;
            len[k] = n;
            at += n + 1;
        }
        f[nf++] = (vd_release_field){ part[0], len[0], part[1], len[1] };
    }
    vd_docset ds;
    vd_docset_init(&ds);
    vd_errors *err = malloc(sizeof *err);
    CHECK(err);
    vd_errors_init(err);
    int rc = vd_release_to_docset(f, nf, &ds, err);
    if (rc != 0) {
        CHECK(ds.n == 0);
        CHECK(err->n > 0);
    } else {
        CHECK(ds.n > 0);
        for (size_t i = 0; i < ds.n; i++) {
            const vd_doc *d = &ds.docs[i];
            CHECK(d->kind == VD_DOC_SEGMENTS || d->kind == VD_DOC_CONTENT_MAP);
            CHECK(strcmp(d->name, "meta") != 0);
            if (i > 0) {
                const vd_doc *p = &ds.docs[i - 1];
                CHECK(p->kind < d->kind || (p->kind == d->kind && strcmp(p->name, d->name) <= 0));
            }
            CHECK(d->text[d->len] == '\0');
            bool found = false;
            for (size_t j = 0; j < nf && !found; j++)
                found = f[j].name_len == strlen(d->name) && memcmp(f[j].name, d->name, f[j].name_len) == 0 &&
                        f[j].value_len == d->len && memcmp(f[j].value, d->text, d->len) == 0;
            CHECK(found);
        }
    }
    vd_docset_free(&ds);
    free(err);
    for (size_t i = 0; i < no; i++)
        free(owned[i]);
    return 0;
}
