/* test_lang.c — vd_lang_primary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "context/lang.h"

static const char *primary(const char *al)
{
    static char out[9];
    memset(out, 'Z', sizeof out);
    if (!vd_lang_primary(vd_str_cstr(al), out))
        return NULL;
    return out;
}

#define ASSERT_LANG(al, want) assert_string_equal(primary(al), (want))
#define ASSERT_NONE(al) assert_null(primary(al))

static void test_basic(void **state)
{
    (void)state;
    ASSERT_LANG("de-CH,de;q=0.9,en;q=0.8,*;q=0.5", "de");
    ASSERT_LANG("en", "en");
    ASSERT_LANG("FR-ca", "fr");
    ASSERT_LANG("en_US", "en");
    ASSERT_LANG("  es-419 , en ; q=0.5", "es");
}

static void test_q_order(void **state)
{
    (void)state;
    ASSERT_LANG("en;q=0.5,fr;q=0.9,de;q=0.7", "fr");
    ASSERT_LANG("en;q=0.8,fr;q=0.8", "en");                /* tie keeps order */
    ASSERT_LANG("en;q=0.800,fr;q=0.801", "fr");             /* thousandths count */
    ASSERT_LANG("en;q=0,fr;q=0.1", "fr");                   /* q=0 is "not this" */
    ASSERT_LANG("*,it;q=0.2", "it");                        /* '*' ignored */
    ASSERT_LANG("en; q = 0.3 ,nl;Q=0.4", "nl");             /* spaces, upper-case Q */
    ASSERT_LANG("en;level=1;q=0.2,pt;q=0.3", "pt");         /* other params skipped */
    ASSERT_LANG("en;q=1.0,de", "en");
    ASSERT_LANG("en;q=0.5,de;q=1", "de");
}

static void test_malformed(void **state)
{
    (void)state;
    /* malformed q = 0.001: used only if nothing well-formed is left */
    ASSERT_LANG("en;q=abc,fr;q=0.1", "fr");
    ASSERT_LANG("en;q=2", "en");
    ASSERT_LANG("en;q=,de;q=0.001", "en");                  /* tie with 0.001 keeps order */
    ASSERT_LANG("en;q=1.5,fr;q=0.002", "fr");
    ASSERT_LANG("en;q=-1", "en");
    /* primary subtag rules: 2-8 letters */
    ASSERT_NONE("i-klingon");
    ASSERT_NONE("x-private");
    ASSERT_NONE("e");
    ASSERT_NONE("abcdefghi");
    ASSERT_LANG("abcdefgh", "abcdefgh");
    ASSERT_NONE("12-34");
    ASSERT_NONE("en1");
    ASSERT_LANG("x-foo,12,\xc3\xa9n,ja", "ja");
    ASSERT_NONE("");
    ASSERT_NONE("*");
    ASSERT_NONE("en;q=0,*;q=1");
    ASSERT_NONE(",,,;;;");
    ASSERT_NONE(";q=1");
    assert_false(vd_lang_primary(VD_STR_NULL, (char[9]){ 0 }));
}

static void test_not_terminated(void **state)
{
    (void)state;
    char out[9];
    assert_true(vd_lang_primary(vd_str_make("frxx", 2), out));
    assert_string_equal(out, "fr");
    assert_false(vd_lang_primary(vd_str_make("fr", 1), out));
}

static void test_huge(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *s = malloc(n);
    assert_non_null(s);
    /* "aa;q=0.1,aa;q=0.1,..." then a winner at the very end */
    size_t i = 0;
    while (i + 20 < n) {
        memcpy(s + i, "aa;q=0.1,", 9);
        i += 9;
    }
    memcpy(s + i, "zz;q=0.2", 8);
    i += 8;
    char out[9];
    assert_true(vd_lang_primary(vd_str_make(s, i), out));
    assert_string_equal(out, "zz");
    memset(s, 'x', n);                                    /* one 100 KB "tag" */
    assert_false(vd_lang_primary(vd_str_make(s, n), out));
    memset(s, ',', n);
    assert_false(vd_lang_primary(vd_str_make(s, n), out));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_q_order),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
