/* test_log.c — repeated log lines are rate-limited and counted; different
 * lines are not; the UTF-8 replacement used by both ports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void test_same_line_is_written_a_few_times_then_counted(void **state)
{
    (void)state;
    char path[] = "/tmp/vd-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    for (int i = 0; i < 1000; i++)
        vd_warn("decision port: accept failed: Too many open files; pausing accept for 100 ms");
    for (int i = 0; i < 20; i++)
        vd_warn("distinct line %d", i);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    /* Five written, the other 995 counted: the count is written when the
     * window ends, or when another line takes the table slot. */
    int written = count_lines(path, "accept failed");
    int counted = count_lines(path, "(repeated 995 more times)");
    assert_int_equal(written - counted, 5);
    assert_true(counted <= 1);
    assert_int_equal(count_lines(path, "distinct line"), 20);
    unlink(path);
}

static void test_utf8_fix_replaces_each_invalid_byte(void **state)
{
    (void)state;
    const char in[] = "a\xff" "b\xc3\xa9" "\xed\xa0\x80" "\xf0\x9f\x98\x80" "\xc0\xaf";
    size_t n = sizeof in - 1;
    size_t fixed = vd_utf8_fixed_len(in, n);
    char out[64];
    assert_true(fixed < sizeof out);
    vd_utf8_fix(out, in, n);
    out[fixed] = '\0';
    assert_string_equal(out, "a\xef\xbf\xbd" "b\xc3\xa9" "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "\xf0\x9f\x98\x80" "\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(vd_utf8_fixed_len("plain", 5), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_line_is_written_a_few_times_then_counted),
        cmocka_unit_test(test_utf8_fix_replaces_each_invalid_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
