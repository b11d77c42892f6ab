/* fuzz_snapshot.c — libFuzzer target for the last-known-good snapshot
 * reader (store/snapshot.c), the file a daemon trusts at start-up.
 *
 *   make build/fuzz/fuzz_snapshot
 *   build/fuzz/fuzz_snapshot -max_total_time=60 -dict=tests/fuzz/snapshot.dict \
 *       /tmp/variantd-fuzz/snapshot tests/fuzz/corpus/snapshot
 *
 * The input is the file's content, read through a memfd (/proc/self/fd/N,
 * no disk). Checks:
 *   - a refused file leaves the docset empty and gives a message;
 *   - an accepted one has a valid release version, at least one document,
 *     each of a known kind, NUL-terminated at its length, and the checksum
 *     of what was read matches a fresh vd_snapshot_checksum; writing it back
 *     (to a memfd-backed directory is not possible, so to a temp file) and
 *     reading it again gives the same version and documents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rules/defs.h"
#include "store/release.h"
#include "store/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static char dir[64];

static void same(const vd_docset *a, const vd_docset *b)
{
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        CHECK(a->docs[i].kind == b->docs[i].kind);
        CHECK(strcmp(a->docs[i].name, b->docs[i].name) == 0);
        CHECK(a->docs[i].len == b->docs[i].len && memcmp(a->docs[i].text, b->docs[i].text, a->docs[i].len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/vd-fuzz-snap-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    int fd = memfd_create("snapshot", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    vd_docset ds;
    vd_docset_init(&ds);
    char version[128], err[1024];
    err[0] = '\0';
    int rc = vd_snapshot_read(path, version, sizeof version, &ds, NULL, err, sizeof err);
    close(fd);
    if (rc != 0) {
        CHECK(ds.n == 0);
        CHECK(err[0] != '\0');
        vd_docset_free(&ds);
        return 0;
    }
    CHECK(ds.n > 0);
    CHECK(strlen(version) < sizeof version);
    for (size_t i = 0; i < ds.n; i++) {
        CHECK(ds.docs[i].kind == VD_DOC_SEGMENTS || ds.docs[i].kind == VD_DOC_CONTENT_MAP);
        CHECK(ds.docs[i].name && ds.docs[i].text && ds.docs[i].text[ds.docs[i].len] == '\0');
    }
    /* Round trip through the writer. */
    char again[128], file[128];
    snprintf(file, sizeof file, "%s/s.json", dir);
    if (vd_release_version_ok(version, strlen(version)) &&
        vd_snapshot_write(file, version, &ds, err, sizeof err) == 0) {
        vd_docset ds2;
        vd_docset_init(&ds2);
        CHECK(vd_snapshot_read(file, again, sizeof again, &ds2, NULL, err, sizeof err) == 0);
        CHECK(strcmp(again, version) == 0);
        same(&ds, &ds2);
        vd_docset_free(&ds2);
        unlink(file);
    }
    vd_docset_free(&ds);
    return 0;
}
