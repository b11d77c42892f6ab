/* A release hash read from Redis becomes the compiler's input: documents in
 * a stable order, meta skipped, anything unexpected rejects the whole set. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "rules/build.h"
#include "store/release.h"

#define F(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static void test_sorted_meta_skipped(void **st)
{
    (void)st;
    vd_release_field f[] = {
        F("content-map/b.json", "[2]"), F("meta", "{\"author\":\"x\"}"),
        F("segments/z.json", "[3]"),    F("content-map/a.json", "[1]"),
        F("segments/a.json", "[4]"),
    };
    vd_docset ds;
    vd_docset_init(&ds);
    vd_errors err;
    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(f, 5, &ds, &err), 0);
    assert_int_equal(ds.n, 4);
    /* segments first, then content maps, each by name: the same release
     * always compiles (and hashes) the same, whatever order HGETALL used */
    assert_string_equal(ds.docs[0].name, "segments/a.json");
    assert_int_equal(ds.docs[0].kind, VD_DOC_SEGMENTS);
    assert_string_equal(ds.docs[1].name, "segments/z.json");
    assert_string_equal(ds.docs[2].name, "content-map/a.json");
    assert_int_equal(ds.docs[2].kind, VD_DOC_CONTENT_MAP);
    assert_string_equal(ds.docs[3].name, "content-map/b.json");
    assert_string_equal(ds.docs[3].text, "[2]");
    vd_docset_free(&ds);
}

static void test_rejected_whole(void **st)
{
    (void)st;
    vd_release_field bad[] = { F("segments/a.json", "[1]"), F("notes", "hello") };
    vd_docset ds;
    vd_docset_init(&ds);
    vd_errors err;
    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(bad, 2, &ds, &err), -1);
    assert_int_equal(ds.n, 0);
    assert_non_null(strstr(err.msg[0], "notes"));

    vd_release_field only_meta[] = { F("meta", "{}") };
    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(only_meta, 1, &ds, &err), -1);
    assert_non_null(strstr(err.msg[0], "no documents"));

    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(NULL, 0, &ds, &err), -1);

    /* "segments/" alone names no document */
    vd_release_field noname[] = { F("segments/", "[1]") };
    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(noname, 1, &ds, &err), -1);

    /* a NUL inside a field name (Redis allows any bytes) */
    vd_release_field nul[] = { { "segments/a\0b", 12, "[1]", 3 } };
    vd_errors_init(&err);
    assert_int_equal(vd_release_to_docset(nul, 1, &ds, &err), -1);
    assert_int_equal(ds.n, 0);
}

static void test_version_and_keys(void **st)
{
    (void)st;
    assert_true(vd_release_version_ok("r12-abcdef01", 12));
    assert_true(vd_release_version_ok("v1.2:x_y", 8));
    assert_false(vd_release_version_ok("", 0));
    assert_false(vd_release_version_ok("a b", 3));
    assert_false(vd_release_version_ok("a\nb", 3));
    assert_false(vd_release_version_ok("a\0b", 3));
    assert_false(vd_release_version_ok("../x", 4));
    char big[200];
    memset(big, 'a', sizeof big);
    assert_true(vd_release_version_ok(big, VD_RELEASE_MAX_VERSION));
    assert_false(vd_release_version_ok(big, VD_RELEASE_MAX_VERSION + 1));

    char k[32];
    assert_int_equal(vd_release_key(k, sizeof k, "variantd", "current"), 0);
    assert_string_equal(k, "variantd:current");
    assert_int_equal(vd_release_key(k, 10, "variantd", "current"), -1);
    assert_true(vd_release_namespace_ok("{vd}"));
    assert_false(vd_release_namespace_ok(""));
    assert_false(vd_release_namespace_ok("a b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_meta_skipped),
        cmocka_unit_test(test_rejected_whole),
        cmocka_unit_test(test_version_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
