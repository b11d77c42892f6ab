/* test_alloc.c — the allocator seam: counting, failure injection, and a
 * whole compile of the example definitions with every Nth allocation
 * failing (N swept): each attempt either builds the ruleset or fails with
 * an error, never crashes or leaks (the ASan run checks the leaks). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "core/errors.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "store/files.h"

static void test_counts_every_allocation(void **state)
{
    (void)state;
    unsigned long c0 = vd_alloc_count();
    void *a = vd_malloc(16), *b = vd_calloc(2, 8);
    char *s = vd_strdup("hello");
    a = vd_realloc(a, 64);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(s, "hello");
    assert_int_equal(vd_alloc_count() - c0, 4);
    vd_free(a);
    vd_free(b);
    vd_free(s);
    char *t = vd_strndup("abcdef", 3);
    assert_string_equal(t, "abc");
    vd_free(t);
}

static void test_every_nth_fails(void **state)
{
    (void)state;
    unsigned long inj0 = vd_alloc_injected();
    vd_alloc_fail_every(3);
    unsigned failed = 0;
    for (int i = 0; i < 30; i++) {
        void *p = vd_malloc(8);
        if (!p)
            failed++;
        vd_free(p);
    }
    vd_alloc_fail_every(0);
    assert_int_equal(failed, 10);
    assert_int_equal(vd_alloc_injected() - inj0, 10);
    void *p = vd_malloc(8);
    assert_non_null(p);
    vd_free(p);
}

static void test_compile_survives_failing_allocations(void **state)
{
    (void)state;
    static vd_errors err;
    vd_errors_init(&err);
    unsigned long c0 = vd_alloc_count();
    vd_ruleset *rs = vd_files_compile("segments", "content-map", &err);
    unsigned long per_compile = vd_alloc_count() - c0;
    assert_non_null(rs);
    uint32_t nseg = vd_ruleset_nsegments(rs);
    vd_ruleset_release(rs);
    assert_true(per_compile > 10);
    unsigned ok = 0, refused = 0;
    /* Every N from 1 to the number a compile makes, then a few spread out. */
    for (unsigned long n = 1; n <= per_compile + 1; n += (n < 64 ? 1 : n / 8)) {
        vd_errors_init(&err);
        vd_alloc_fail_every(n);
        rs = vd_files_compile("segments", "content-map", &err);
        vd_alloc_fail_every(0);
        if (rs) {
            /* A ruleset that was built is complete. */
            assert_int_equal(vd_ruleset_nsegments(rs), nseg);
            vd_ruleset_release(rs);
            ok++;
        } else {
            assert_true(err.n > 0 || err.dropped > 0);
            refused++;
        }
    }
    /* One allocation more than a compile makes: nothing fails. */
    vd_errors_init(&err);
    vd_alloc_fail_every(per_compile + 1);
    rs = vd_files_compile("segments", "content-map", &err);
    vd_alloc_fail_every(0);
    assert_non_null(rs);
    vd_ruleset_release(rs);
    ok++;
    assert_true(refused > 0);
    print_message("compile under injected failures: %u refused cleanly, %u built\n", refused, ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_every_allocation),
        cmocka_unit_test(test_every_nth_fails),
        cmocka_unit_test(test_compile_survives_failing_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
