#include "store/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/str.h"

#define FORMAT_NAME "variantd-snapshot"

static const char *kind_name(int kind)
{
    return kind == VD_DOC_CONTENT_MAP ? "content-map" : kind == VD_DOC_SCORES ? "scores" : "segments";
}

void vd_snapshot_checksum(const vd_docset *ds, char out[17])
{
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < ds->n; i++) {
        const vd_doc *d = &ds->docs[i];
        const char *k = kind_name(d->kind);
        h = (h ^ vd_hash64(k, strlen(k))) * 1099511628211ULL;
        h = (h ^ vd_hash64(d->name, strlen(d->name))) * 1099511628211ULL;
        h = (h ^ vd_hash64(d->text, d->len)) * 1099511628211ULL;
        h ^= (unsigned long long)(i + 1) * 0x9e3779b97f4a7c15ULL;
    }
    snprintf(out, 17, "%016llx", h);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vd_snapshot_write(const char *path, const char *version, const vd_docset *ds, char *err,
                      size_t cap)
{
    json_t *root = json_object();
    json_t *docs = json_array();
    if (!root || !docs) {
        json_decref(root);
        json_decref(docs);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    char sum[17];
    vd_snapshot_checksum(ds, sum);
    json_object_set_new(root, "format", json_string(FORMAT_NAME));
    json_object_set_new(root, "format_version", json_integer(1));
    json_object_set_new(root, "version", json_string(version));
    json_object_set_new(root, "saved_at", json_integer((json_int_t)time(NULL)));
    for (size_t i = 0; i < ds->n; i++) {
        const vd_doc *d = &ds->docs[i];
        json_t *o = json_pack("{s:s, s:s, s:s%}", "kind", kind_name(d->kind), "name", d->name,
                              "text", d->text, d->len);
        if (!o || json_array_append_new(docs, o) != 0) {
            json_decref(root);
            json_decref(docs);
            snprintf(err, cap, "cannot encode document %s (not UTF-8?)", d->name);
            return -1;
        }
    }
    json_object_set_new(root, "documents", docs);
    json_object_set_new(root, "checksum", json_string(sum));
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) {
        snprintf(err, cap, "out of memory encoding the snapshot");
        return -1;
    }

    /* Same directory as the target, so rename is atomic. */
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        vd_free(text);
        snprintf(err, cap, "snapshot path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        vd_free(text);
        return -1;
    }
    size_t len = strlen(text);
    int rc = write_all(fd, text, len);
    if (rc == 0)
        rc = write_all(fd, "\n", 1);
    vd_free(text);
    if (rc != 0 || fsync(fd) != 0) {
        snprintf(err, cap, "%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* The rename itself must reach the disk too. */
    char dirbuf[4200];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int fail(char *err, size_t cap, const char *path, const char *msg)
{
    snprintf(err, cap, "%s: %s", path, msg);
    return -1;
}

int vd_snapshot_read(const char *path, char *version, size_t vcap, vd_docset *out, int *errno_out,
                     char *err, size_t cap)
{
    if (errno_out)
        *errno_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno_out)
            *errno_out = errno;
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, cap, path, "not a regular file");
    }
    if (st.st_size > VD_SNAPSHOT_MAX_BYTES) {
        close(fd);
        return fail(err, cap, path, "over the snapshot size limit");
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return fail(err, cap, path, "cannot read");
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        snprintf(err, cap, "%s: not a valid snapshot (line %d: %s)", path, je.line, je.text);
        return -1;
    }
    int rc = -1;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    json_t *fv = json_object_get(root, "format_version");
    const char *ver = json_string_value(json_object_get(root, "version"));
    const char *sum = json_string_value(json_object_get(root, "checksum"));
    json_t *docs = json_object_get(root, "documents");
    if (!fmt || strcmp(fmt, FORMAT_NAME) != 0) {
        fail(err, cap, path, "not a variantd snapshot");
        goto out;
    }
    if (!json_is_integer(fv) || json_integer_value(fv) != 1) {
        fail(err, cap, path, "unsupported snapshot format_version");
        goto out;
    }
    if (!ver || !*ver || strlen(ver) >= vcap || !sum || !json_is_array(docs)) {
        fail(err, cap, path, "snapshot lacks version, checksum or documents");
        goto out;
    }
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *kind = json_string_value(json_object_get(d, "kind"));
        const char *name = json_string_value(json_object_get(d, "name"));
        json_t *text = json_object_get(d, "text");
        int k;
        if (kind && strcmp(kind, "segments") == 0)
            k = VD_DOC_SEGMENTS;
        else if (kind && strcmp(kind, "content-map") == 0)
            k = VD_DOC_CONTENT_MAP;
        else if (kind && strcmp(kind, "scores") == 0)
            k = VD_DOC_SCORES;
        else {
            fail(err, cap, path, "document with a bad kind");
            goto out;
        }
        if (!name || !json_is_string(text)) {
            fail(err, cap, path, "document without name or text");
            goto out;
        }
        if (vd_docset_add(out, k, name, json_string_value(text), json_string_length(text)) != 0) {
            fail(err, cap, path, "out of memory");
            goto out;
        }
    }
    char got[17];
    vd_snapshot_checksum(out, got);
    if (strcmp(got, sum) != 0) {
        fail(err, cap, path, "checksum mismatch (damaged or edited snapshot)");
        goto out;
    }
    snprintf(version, vcap, "%s", ver);
    rc = 0;
out:
    json_decref(root);
    if (rc != 0) {
        vd_docset_free(out);
    }
    return rc;
}
