/* The Aho–Corasick `contains` matcher answers exactly what testing every
 * term with vd_str_contains_ci answers: fixed cases, then random terms and
 * texts over small mixed-case alphabets (many overlaps and partial
 * matches) and over all 256 byte values, both as a full DFA and with
 * sparse edges and failure links. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "rules/acmatch.h"

static bool naive(const vd_str *terms, size_t n, vd_str text)
{
    for (size_t i = 0; i < n; i++)
        if (vd_str_contains_ci(text, terms[i]))
            return true;
    return false;
}

static vd_str S(const char *s)
{
    return vd_str_make(s, strlen(s));
}

static void check_both(vd_arena *a, const vd_str *terms, size_t n, vd_str text)
{
    const vd_acm *d = vd_acm_build(a, terms, n, VD_ACM_DENSE_BUDGET);
    const vd_acm *s = vd_acm_build(a, terms, n, 0);
    assert_non_null(d);
    assert_non_null(s);
    assert_false(vd_acm_dense(s));
    bool want = naive(terms, n, text);
    assert_int_equal(vd_acm_any(d, text), want);
    assert_int_equal(vd_acm_any(s, text), want);
}

static void test_fixed(void **st)
{
    (void)st;
    vd_arena a;
    vd_arena_init(&a);
    vd_str t1[] = { S("he"), S("she"), S("his"), S("hers") };
    check_both(&a, t1, 4, S("ushers"));
    check_both(&a, t1, 4, S("USHERS"));
    check_both(&a, t1, 4, S("xhix"));
    check_both(&a, t1, 4, S(""));
    check_both(&a, t1, 4, S("h"));
    /* A term that is a suffix of a longer partial match (needs the fail chain). */
    vd_str t2[] = { S("abcd"), S("bce"), S("zz"), S("qq") };
    check_both(&a, t2, 4, S("xxabcexx"));
    check_both(&a, t2, 4, S("xxabcdxx"));
    check_both(&a, t2, 4, S("xxabcfxx"));
    /* An empty term matches everything, even the empty value. */
    vd_str t3[] = { S("nope"), S(""), S("x"), S("y") };
    check_both(&a, t3, 4, S(""));
    check_both(&a, t3, 4, S("abc"));
    /* Bytes >= 0x80 and NUL are ordinary bytes, never folded. */
    vd_str t4[] = { vd_str_make("\xc3\x89t\xc3\xa9", 5), vd_str_make("a\0b", 3), S("Q"), S("@") };
    check_both(&a, t4, 4, vd_str_make("xx\xc3\x89T\xc3\xa9", 7));
    check_both(&a, t4, 4, vd_str_make("xx\xc3\xa9t\xc3\xa9", 7));
    check_both(&a, t4, 4, vd_str_make("xA\0Bx", 5));
    check_both(&a, t4, 4, S("[\\`"));       /* neighbours of '@', 'Q' folding mistakes */
    check_both(&a, t4, 4, S("q"));
    /* No terms at all: nothing matches. */
    check_both(&a, NULL, 0, S("abc"));
    vd_arena_free(&a);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void fill(char *buf, size_t n, const char *alpha, size_t na)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = alpha ? alpha[rnd((uint32_t)na)] : (char)rnd(256);
}

static void mark(void *arg, uint32_t id)
{
    *(uint64_t *)arg |= 1ULL << id;
}

/* vd_acm_each reports exactly the terms found in (or ending) the text. */
static void check_ids(const vd_acm *const m[2], const vd_str *terms, size_t n, vd_str text)
{
    for (int at_end = 0; at_end < 2; at_end++) {
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++)
            if (at_end ? vd_str_suffix_ci(text, terms[i]) : vd_str_contains_ci(text, terms[i]))
                want |= 1ULL << i;
        for (int k = 0; k < 2; k++) {
            uint64_t got = 0;
            vd_acm_each(m[k], text, at_end, mark, &got);
            assert_true(got == want);
        }
    }
}

static void random_round(const char *alpha, size_t na, size_t maxterm, size_t maxtext)
{
    vd_arena a;
    vd_arena_init(&a);
    size_t n = 1 + rnd(40);
    vd_str terms[40];
    char tbuf[40][16];
    for (size_t i = 0; i < n; i++) {
        size_t len = rnd((uint32_t)maxterm) + (rnd(50) ? 1 : 0);   /* rarely empty */
        fill(tbuf[i], len, alpha, na);
        terms[i] = vd_str_make(tbuf[i], len);
    }
    const vd_acm *d = vd_acm_build(&a, terms, n, VD_ACM_DENSE_BUDGET);
    const vd_acm *s = vd_acm_build(&a, terms, n, 0);
    assert_non_null(d);
    assert_non_null(s);
    /* The index's automaton: distinct (ignoring case), non-empty terms. */
    vd_str uniq[40];
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = terms[i].n == 0;
        for (size_t j = 0; j < nu && !dup; j++)
            dup = vd_str_eq_ci(uniq[j], terms[i]);
        if (!dup)
            uniq[nu++] = terms[i];
    }
    const vd_acm *ids[2] = { vd_acm_build_ids(&a, uniq, nu, VD_ACM_DENSE_BUDGET), vd_acm_build_ids(&a, uniq, nu, 0) };
    assert_non_null(ids[0]);
    assert_non_null(ids[1]);
    assert_false(vd_acm_dense(ids[1]));
    char text[512];
    for (int k = 0; k < 40; k++) {
        size_t len = rnd((uint32_t)maxtext + 1);
        fill(text, len, alpha, na);
        /* Sometimes plant a term, in swapped case, at a random place. */
        if (len && rnd(3) == 0) {
            vd_str t = terms[rnd((uint32_t)n)];
            if (t.n <= len) {
                size_t at = rnd((uint32_t)(len - t.n + 1));
                for (size_t j = 0; j < t.n; j++) {
                    char c = t.p[j];
                    text[at + j] = (c >= 'a' && c <= 'z') ? (char)(c - 32)
                                   : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
                }
            }
        }
        vd_str tx = vd_str_make(text, len);
        bool want = naive(terms, n, tx);
        assert_int_equal(vd_acm_any(d, tx), want);
        assert_int_equal(vd_acm_any(s, tx), want);
        check_ids(ids, uniq, nu, tx);
    }
    vd_arena_free(&a);
}

static void test_random_small_alphabet(void **st)
{
    (void)st;
    static const char ab[] = "abAB";
    static const char abc[] = "abcABC/-";
    for (int r = 0; r < 3000; r++) {
        random_round(ab, 4, 6, 40);
        random_round(abc, 8, 10, 200);
    }
}

static void test_random_bytes(void **st)
{
    (void)st;
    static const char mixed[] = "aZ\x80\xff\x00@[`{";
    for (int r = 0; r < 2000; r++) {
        random_round(NULL, 0, 4, 300);
        random_round(mixed, 9, 5, 100);
    }
}

/* Many terms, a long text: the shape of the reported slowdown. */
static void test_many_terms(void **st)
{
    (void)st;
    vd_arena a;
    vd_arena_init(&a);
    enum { N = 1000 };
    static char buf[N][24];
    static vd_str terms[N];
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf[i], sizeof buf[i], "Needle-%04d-x", i * 7);
        terms[i] = vd_str_make(buf[i], (size_t)n);
    }
    static char text[60000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "needle-0123456789x/"[i % 19];
    const vd_acm *d = vd_acm_build(&a, terms, N, VD_ACM_DENSE_BUDGET);
    const vd_acm *s = vd_acm_build(&a, terms, N, 0);
    assert_true(vd_acm_dense(d));
    vd_str tx = vd_str_make(text, sizeof text);
    assert_false(naive(terms, N, tx));
    assert_false(vd_acm_any(d, tx));
    assert_false(vd_acm_any(s, tx));
    memcpy(text + 59000, "NEEDLE-6993-X", 13);
    assert_true(naive(terms, N, tx));
    assert_true(vd_acm_any(d, tx));
    assert_true(vd_acm_any(s, tx));
    vd_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_random_small_alphabet),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_many_terms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
