#include "store/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "variantd/limits.h"

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_file(const char *path, char **text, size_t *len, vd_errors *err)
{
    /* O_NONBLOCK: opening a FIFO (or a device) named *.json must not wait
     * for a writer and hang the control thread; it is refused just below.
     * On a regular file the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        vd_errors_addf(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vd_errors_addf(err, "%s: not a regular file (a FIFO, device or socket is never read)",
                       path);
        close(fd);
        return -1;
    }
    if (st.st_size > VD_MAX_DEF_FILE_BYTES) {
        vd_errors_addf(err, "%s: %lld bytes is over the limit of %d bytes per definition file",
                       path, (long long)st.st_size, VD_MAX_DEF_FILE_BYTES);
        close(fd);
        return -1;
    }
    char *buf = vd_malloc((size_t)st.st_size + 1);
    if (!buf) {
        vd_errors_addf(err, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            vd_errors_addf(err, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank");
            vd_free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

static int load_dir(const char *dir, int kind, vd_docset *out, vd_errors *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        vd_errors_addf(err, "%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = vd_realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = vd_strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != 0)
        vd_errors_addf(err, "%s: out of memory listing files", dir);
    else
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text;
        size_t len;
        if (read_file(path, &text, &len, err) != 0) {
            rc = -1;
            continue;
        }
        /* The docset takes the buffer as it is: no second copy of 10 MB. */
        if (vd_docset_add_owned(out, kind, path, text, len) != 0) {
            vd_errors_addf(err, "%s: out of memory", path);
            rc = -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        vd_free(names[i]);
    vd_free(names);
    return rc;
}

int vd_files_load(const char *segments_dir, const char *content_map_dir, vd_docset *out,
                  vd_errors *err)
{
    int a = load_dir(segments_dir, VD_DOC_SEGMENTS, out, err);
    int b = load_dir(content_map_dir, VD_DOC_CONTENT_MAP, out, err);
    return a == 0 && b == 0 ? 0 : -1;
}

const char *vd_files_scores_beside(const char *segments_dir, char *buf, size_t cap)
{
    size_t n = strlen(segments_dir);
    while (n > 1 && segments_dir[n - 1] == '/')
        n--;
    size_t slash = n;
    while (slash > 0 && segments_dir[slash - 1] != '/')
        slash--;
    int len = snprintf(buf, cap, "%.*sscores", (int)slash, segments_dir);
    struct stat st;
    if (len < 0 || (size_t)len >= cap || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return buf;
}

int vd_files_load_scores(const char *scores_dir, vd_docset *out, vd_errors *err)
{
    return scores_dir && scores_dir[0] ? load_dir(scores_dir, VD_DOC_SCORES, out, err) : 0;
}

vd_ruleset *vd_files_compile_all(const char *segments_dir, const char *content_map_dir,
                                 const char *scores_dir, vd_errors *err)
{
    vd_docset ds;
    vd_docset_init(&ds);
    vd_ruleset *rs = NULL;
    char beside[4096];
    if (!scores_dir || !scores_dir[0])
        scores_dir = vd_files_scores_beside(segments_dir, beside, sizeof beside);
    int sc = vd_files_load_scores(scores_dir, &ds, err);
    if (vd_files_load(segments_dir, content_map_dir, &ds, err) == 0 && sc == 0) {
        char version[32];
        vd_docset_version(&ds, version, sizeof version);
        rs = vd_ruleset_compile(&ds, version, err);
    }
    vd_docset_free(&ds);
    return rs;
}

vd_ruleset *vd_files_compile(const char *segments_dir, const char *content_map_dir, vd_errors *err)
{
    return vd_files_compile_all(segments_dir, content_map_dir, NULL, err);
}
