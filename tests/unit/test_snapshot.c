/* Last-known-good snapshot: round trip, atomic replacement, and every kind
 * of damaged file refused (never half-loaded). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/build.h"
#include "rules/defs.h"
#include "store/snapshot.h"

static char dir[256];
static char path[512];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/vd-snap-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/last-good.json", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[800];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    return 0;
}

static void sample(vd_docset *ds, const char *extra)
{
    vd_docset_init(ds);
    const char *seg = "[{\"id\":\"all\",\"match\":{\"all\":[]}}]";
    /* bytes JSON must escape: quotes, backslash, newline, non-ASCII */
    const char *cm = "{\"slot\":\"hero\",\"default\":\"a\",\"variants\":{\"a\":{\"t\":\"\\\"q\\\" \\\\ \xc3\xa9\"}}}\n";
    assert_int_equal(vd_docset_add(ds, VD_DOC_SEGMENTS, "segments/all.json", seg, strlen(seg)), 0);
    assert_int_equal(vd_docset_add(ds, VD_DOC_CONTENT_MAP, "content-map/hero.json", cm, strlen(cm)), 0);
    if (extra)
        assert_int_equal(vd_docset_add(ds, VD_DOC_SEGMENTS, "segments/x.json", extra, strlen(extra)), 0);
}

static void assert_same(const vd_docset *a, const vd_docset *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->docs[i].kind, b->docs[i].kind);
        assert_string_equal(a->docs[i].name, b->docs[i].name);
        assert_int_equal(a->docs[i].len, b->docs[i].len);
        assert_memory_equal(a->docs[i].text, b->docs[i].text, a->docs[i].len);
    }
}

static int count_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_round_trip_and_replace(void **st)
{
    (void)st;
    vd_docset a, b, got;
    sample(&a, NULL);
    sample(&b, "{\"id\":\"x\",\"match\":{\"all\":[]}}");
    char err[600], ver[128];
    assert_int_equal(vd_snapshot_write(path, "r1-aaaa", &a, err, sizeof err), 0);
    vd_docset_init(&got);
    assert_int_equal(vd_snapshot_read(path, ver, sizeof ver, &got, NULL, err, sizeof err), 0);
    assert_string_equal(ver, "r1-aaaa");
    assert_same(&a, &got);
    vd_docset_free(&got);

    /* Replacing it leaves exactly one file: no temporary behind. */
    assert_int_equal(vd_snapshot_write(path, "r2-bbbb", &b, err, sizeof err), 0);
    assert_int_equal(count_files(), 1);
    vd_docset_init(&got);
    assert_int_equal(vd_snapshot_read(path, ver, sizeof ver, &got, NULL, err, sizeof err), 0);
    assert_string_equal(ver, "r2-bbbb");
    assert_same(&b, &got);
    vd_docset_free(&got);
    vd_docset_free(&a);
    vd_docset_free(&b);
}

static void test_missing_file(void **st)
{
    (void)st;
    vd_docset got;
    vd_docset_init(&got);
    char err[600], ver[128];
    int eno = 0;
    assert_int_equal(vd_snapshot_read(path, ver, sizeof ver, &got, &eno, err, sizeof err), -1);
    assert_int_equal(eno, ENOENT);
    assert_int_equal(got.n, 0);
}

static char *slurp(size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void spit(const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void expect_rejected(const char *why)
{
    vd_docset got;
    vd_docset_init(&got);
    char err[600] = "", ver[128] = "unchanged";
    int eno = -1;
    assert_int_equal(vd_snapshot_read(path, ver, sizeof ver, &got, &eno, err, sizeof err), -1);
    assert_int_equal(got.n, 0);          /* nothing half-loaded */
    assert_string_equal(ver, "unchanged");
    assert_int_equal(eno, 0);
    if (!strstr(err, why))
        fail_msg("expected '%s' in '%s'", why, err);
}

static void test_damage_refused(void **st)
{
    (void)st;
    vd_docset a;
    sample(&a, NULL);
    char err[600];
    assert_int_equal(vd_snapshot_write(path, "r1-aaaa", &a, err, sizeof err), 0);
    vd_docset_free(&a);
    size_t len;
    char *orig = slurp(&len);

    /* every truncation is refused */
    for (size_t cut = 0; cut < len - 1; cut += 7) {
        spit(orig, cut);
        vd_docset got;
        vd_docset_init(&got);
        char ver[128];
        assert_int_equal(vd_snapshot_read(path, ver, sizeof ver, &got, NULL, err, sizeof err), -1);
        assert_int_equal(got.n, 0);
    }

    /* a document edited by hand: still valid JSON, checksum catches it */
    char *edit = malloc(len + 1);
    memcpy(edit, orig, len);
    edit[len] = '\0';
    char *p = strstr(edit, "\\\"all\\\"");
    assert_non_null(p);
    p[2] = 'b';
    spit(edit, len);
    expect_rejected("checksum");

    /* other JSON, wrong format tag, future format version */
    spit("{\"a\":1}", 7);
    expect_rejected("not a variantd snapshot");
    const char *fv = "{\"format\":\"variantd-snapshot\",\"format_version\":2}";
    spit(fv, strlen(fv));
    expect_rejected("format_version");
    const char *bk = "{\"format\":\"variantd-snapshot\",\"format_version\":1,\"version\":\"v\","
                     "\"checksum\":\"0\",\"documents\":[{\"kind\":\"other\",\"name\":\"n\",\"text\":\"t\"}]}";
    spit(bk, strlen(bk));
    expect_rejected("bad kind");
    spit("\x00\xff\xfe garbage", 11);
    expect_rejected("not a valid snapshot");
    free(edit);
    free(orig);
}

static void test_unwritable_dir(void **st)
{
    (void)st;
    vd_docset a;
    sample(&a, NULL);
    char err[600] = "";
    assert_int_equal(vd_snapshot_write("/nonexistent-dir/x/snap.json", "r1", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x/snap.json"));
    vd_docset_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_refused, setup, teardown),
        cmocka_unit_test(test_unwritable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
