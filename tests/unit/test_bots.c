/* test_bots.c — isbot's pattern list as compiled by context/bots.c: the
 * embedded list loads whole, named patterns from it match (also where only
 * the list knows the robot), browsers do not, and JavaScript-only syntax
 * ("[\w\d-.]", "$") reads as isbot means it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "context/bots.h"
#include "context/device.h"
#include "testutil.h"

/* Lower-cases into buf and runs the matcher; the pattern text or NULL. */
static const char *match(const char *ua, char *buf, size_t cap)
{
    size_t n = strlen(ua);
    assert_true(n < cap);
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)(ua[i] >= 'A' && ua[i] <= 'Z' ? ua[i] + 32 : ua[i]);
    uint64_t tri[VD_TRI_BITS / 64] = { 0 };
    for (size_t i = 0; i + 3 <= n; i++) {
        unsigned h = vd_tri_hash(buf + i);
        tri[h / 64] |= (uint64_t)1 << (h % 64);
    }
    return vd_bots_pattern(vd_bots_match(buf, n, tri));
}

static void test_list_loads(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(vd_bots_init(err, sizeof err), 0);
    assert_true(vd_bots_count() >= 150);      /* isbot 5.2.4 has 206 */
    assert_non_null(strstr(vd_bots_describe(), "isbot 5.2.4"));
    /* The list's own lines, in order, comments left out. */
    assert_string_equal(vd_bots_pattern(0), " daum[ /]");
    assert_null(vd_bots_pattern(-1));
    assert_null(vd_bots_pattern((int)vd_bots_count()));
}

static void test_patterns_match(void **state)
{
    (void)state;
    char buf[512];
    static const struct { const char *ua, *pattern; } cases[] = {
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) HubSpot Marketing Grader", "hubspot marketing grader" },
        { "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", NULL },
        { "Ad Muncher v4.93 @home", "^ad muncher" },
        { "python-requests/2.31.0", NULL },
        { "Mozilla/5.0 (X11; Linux x86_64) Chrome-Lighthouse", NULL },
        /* "[\w\d-.]" in JavaScript is \w, \d, '-' and '.' */
        { "Mozilla/5.0 (compatible; my-fetch.v2/1.0)",
          "^mozilla/\\d\\.\\d\\s\\((?:compatible;)?(?:\\s?[\\w\\d-.]+[\\s/]\\d+\\.\\d+)?\\)$" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = match(cases[i].ua, buf, sizeof buf);
        if (!p)
            fail_msg("no pattern of the list matches \"%s\"", cases[i].ua);
        if (cases[i].pattern && strcmp(p, cases[i].pattern) != 0)
            fail_msg("\"%s\" matched \"%s\", expected \"%s\"", cases[i].ua, p, cases[i].pattern);
    }
}

static void test_browsers_do_not_match(void **state)
{
    (void)state;
    char buf[512];
    static const char *const uas[] = {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    };
    for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
        const char *p = match(uas[i], buf, sizeof buf);
        if (p)
            fail_msg("browser \"%s\" matched bot pattern \"%s\"", uas[i], p);
    }
}

/* A robot only the list knows: a desktop UA our own rules would take for a PC. */
static void test_device_uses_list(void **state)
{
    (void)state;
    vd_device d;
    vd_device_classify(vd_str_cstr("Mozilla/5.0 (Windows NT 10.0; Win64; x64) HubSpot Marketing Grader"), &d);
    assert_int_equal(d.type, VD_DEVICE_BOT);
    vd_device_classify(vd_str_cstr("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"), &d);
    assert_int_equal(d.type, VD_DEVICE_DESKTOP);
}

/* The guards never lose a match: on every User-Agent of the labelled
 * corpora, the guarded matcher names the same first pattern as running all
 * 206 patterns one by one. */
static void test_guards_agree_with_every_pattern(void **state)
{
    (void)state;
    static const char *const files[] = { "data/ua/device_detector_ua.tsv",
                                         "data/ua/device_detector_clienthints.tsv",
                                         "data/ua/uap_core_browser.tsv", "data/ua/uap_core_device.tsv",
                                         "data/ua/uap_core_os.tsv" };
    unsigned rows = 0, bots = 0, files_seen = 0;
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char pbuf[4096];
        const char *path = vd_test_shared(files[k], pbuf, sizeof pbuf);
        if (!path)
            continue;
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        files_seen++;
        char line[8192], low[8192];
        assert_non_null(fgets(line, sizeof line, f));      /* header */
        while (fgets(line, sizeof line, f)) {
            size_t n = strcspn(line, "\t\n");
            for (size_t i = 0; i < n; i++)
                low[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
            low[n] = '\0';
            uint64_t tri[VD_TRI_BITS / 64] = { 0 };
            for (size_t i = 0; i + 3 <= n; i++) {
                unsigned h = vd_tri_hash(low + i);
                tri[h / 64] |= (uint64_t)1 << (h % 64);
            }
            int a = vd_bots_match(low, n, tri), b = vd_bots_match_all(low, n);
            if (a != b)
                fail_msg("guarded %d (%s), all patterns %d (%s): %s", a,
                         a >= 0 ? vd_bots_pattern(a) : "-", b, b >= 0 ? vd_bots_pattern(b) : "-", low);
            bots += a >= 0;
            rows++;
        }
        fclose(f);
    }
    if (!files_seen) {
        printf("skipped: corpus not present\n");
        skip();
    }
    assert_true(rows > 1000 && bots > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_loads),
        cmocka_unit_test(test_patterns_match),
        cmocka_unit_test(test_browsers_do_not_match),
        cmocka_unit_test(test_device_uses_list),
        cmocka_unit_test(test_guards_agree_with_every_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
