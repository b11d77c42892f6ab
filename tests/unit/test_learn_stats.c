/* learn/stats: Wilson intervals against hand-computed values, the
 * deterministic samplers, P(best), bandit weights (floor, exploration
 * window, tie) and the uplift interval (Newcombe 1998, example (a)). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "learn/stats.h"

#define NEAR(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static void test_wilson(void **st)
{
    (void)st;
    vd_interval ci = vd_wilson95(50, 100);
    NEAR(ci.low, 0.4038315303659956, 1e-12);
    NEAR(ci.high, 0.5961684696340044, 1e-12);
    ci = vd_wilson95(5, 100);
    NEAR(ci.low, 0.02154367915436796, 1e-12);
    NEAR(ci.high, 0.11175046923191913, 1e-12);
    ci = vd_wilson95(0, 10);
    assert_true(ci.low == 0.0);
    NEAR(ci.high, 0.2775327998628892, 1e-12);
    ci = vd_wilson95(10, 10);
    NEAR(ci.low, 0.7224672001371107, 1e-12);
    assert_true(ci.high == 1.0);
    ci = vd_wilson95(0, 0);
    assert_true(ci.low == 0.0 && ci.high == 1.0);
    ci = vd_wilson95(7, 3);                 /* clamped, never above 1 */
    assert_true(ci.high == 1.0);
    assert_true(vd_rate(0, 0) == 0.0);
    NEAR(vd_rate(1, 4), 0.25, 0);
}

static void test_det_log(void **st)
{
    (void)st;
    double xs[] = { 1e-300, 1e-9, 0.001, 0.5, 0.70710678, 0.9999999, 1.0, 1.0000001, 2.0, 3.14159, 1e6, 1e300 };
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        double a = vd_det_log(xs[i]), b = log(xs[i]);
        assert_true(fabs(a - b) <= 1e-15 * (fabs(b) > 1 ? fabs(b) : 1));
    }
    assert_true(vd_det_log(1.0) == 0.0);
}

static void test_rng_reproducible(void **st)
{
    (void)st;
    vd_rng a, b;
    vd_rng_seed(&a, 42);
    vd_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_true(vd_rng_next(&a) == vd_rng_next(&b));
    /* Pinned: xoshiro256** seeded by splitmix64(42). A change here means
     * daemons of two builds would disagree on the bandit's weights. */
    vd_rng_seed(&a, VD_LEARN_SEED);
    assert_true(vd_rng_next(&a) == 0x781a2ee30d6498bdULL);
    for (int i = 0; i < 100000; i++) {
        double u = vd_rng_uniform(&a);
        assert_true(u > 0.0 && u < 1.0);
    }
}

static void test_gamma_beta_moments(void **st)
{
    (void)st;
    vd_rng r;
    vd_rng_seed(&r, 7);
    double shapes[] = { 1.0, 2.5, 30.0, 1000.0 };
    for (size_t k = 0; k < 4; k++) {
        double s = 0, s2 = 0;
        const int n = 100000;
        for (int i = 0; i < n; i++) {
            double x = vd_rng_gamma(&r, shapes[k]);
            assert_true(x > 0.0);
            s += x;
            s2 += x * x;
        }
        double mean = s / n, var = s2 / n - mean * mean;
        NEAR(mean / shapes[k], 1.0, 0.02);
        NEAR(var / shapes[k], 1.0, 0.05);
    }
    double s = 0;
    for (int i = 0; i < 100000; i++)
        s += vd_rng_beta(&r, 3.0, 7.0);
    NEAR(s / 100000, 0.3, 0.005);
}

static void test_p_best(void **st)
{
    (void)st;
    vd_arm_counts arms[3] = { { 1000, 50 }, { 1000, 60 }, { 1000, 10 } };
    double p[4], q[4];
    assert_int_equal(vd_p_best(arms, 3, VD_LEARN_SEED, 20000, p), 0);
    assert_int_equal(vd_p_best(arms, 3, VD_LEARN_SEED, 20000, q), 0);
    assert_memory_equal(p, q, 3 * sizeof *p);   /* same counts -> same bits */
    NEAR(p[0] + p[1] + p[2], 1.0, 1e-12);
    NEAR(p[1], 0.835, 0.02);               /* normal approximation of P(B1 > B0) */
    /* Pinned bits: every daemon, every build, every machine computes these. */
    assert_true(p[0] == 0x1.50cb295e9e1b1p-3);
    assert_true(p[1] == 0x1.abcd35a858794p-1);
    assert_true(p[2] == 0.0);
    assert_true(p[2] < 0.001);

    vd_arm_counts two[2] = { { 1000, 100 }, { 1000, 10 } };
    vd_p_best(two, 2, VD_LEARN_SEED, 0, p);
    assert_true(p[0] > 0.999);

    /* A tie stays even, exactly, even beside a third arm. */
    vd_arm_counts tie[3] = { { 500, 40 }, { 500, 40 }, { 500, 41 } };
    vd_p_best(tie, 3, VD_LEARN_SEED, 5000, p);
    assert_true(p[0] == p[1]);
    vd_arm_counts none[4] = { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 } };
    vd_p_best(none, 4, VD_LEARN_SEED, 1000, p);
    for (int i = 0; i < 4; i++)
        assert_true(p[i] == 0.25);
    vd_arm_counts one = { 10, 1 };
    vd_p_best(&one, 1, VD_LEARN_SEED, 0, p);
    assert_true(p[0] == 1.0);
    assert_int_equal(vd_p_best(arms, 0, VD_LEARN_SEED, 10, p), -1);
    assert_int_equal(vd_p_best(arms, VD_LEARN_MAX_ARMS + 1, VD_LEARN_SEED, 10, p), -1);
}

static void test_floor(void **st)
{
    (void)st;
    double w[3] = { 0.98, 0.01, 0.01 };
    vd_weights_floor(w, 3, 0.05);
    NEAR(w[0], 0.9, 1e-12);
    NEAR(w[1], 0.05, 1e-12);
    NEAR(w[2], 0.05, 1e-12);
    /* Raising one arm may push another below the floor: it holds for all. */
    double v[4] = { 0.70, 0.24, 0.04, 0.02 };
    vd_weights_floor(v, 4, 0.2);
    double s = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(v[i] >= 0.2 - 1e-12);
        s += v[i];
    }
    NEAR(s, 1.0, 1e-12);
    NEAR(v[0], 0.4, 1e-12);          /* 0.24 falls below once the others are raised */
    /* n * floor >= 1: even. */
    double e[3] = { 1, 0, 0 };
    vd_weights_floor(e, 3, 0.5);
    for (int i = 0; i < 3; i++)
        NEAR(e[i], 1.0 / 3, 1e-15);
}

static void test_bandit_weights(void **st)
{
    (void)st;
    vd_bandit_params bp = { .floor = 0.05, .min_exposures = 100, .seed = VD_LEARN_SEED, .draws = 20000 };
    double written[3] = { 1, 1, 2 }, w[3];
    /* Exploration window: one arm below min_exposures -> the weights as written. */
    vd_arm_counts early[3] = { { 5000, 100 }, { 5000, 1000 }, { 99, 1 } };
    assert_false(vd_bandit_weights(early, written, 3, &bp, w));
    NEAR(w[0], 0.25, 1e-15);
    NEAR(w[2], 0.5, 1e-15);
    /* After it: P(best) floored. */
    vd_arm_counts late[3] = { { 5000, 100 }, { 5000, 1000 }, { 100, 1 } };
    assert_true(vd_bandit_weights(late, written, 3, &bp, w));
    NEAR(w[0], 0.05, 1e-12);
    NEAR(w[2], 0.05, 1e-12);
    NEAR(w[1], 0.90, 1e-12);
    double again[3];
    vd_bandit_weights(late, written, 3, &bp, again);
    assert_memory_equal(w, again, sizeof w);
    /* A tie stays even. */
    vd_arm_counts tie[3] = { { 300, 30 }, { 300, 30 }, { 300, 30 } };
    vd_bandit_weights(tie, written, 3, &bp, w);
    assert_true(w[0] == w[1] && w[1] == w[2]);
}

static void test_bounds(void **st)
{
    (void)st;
    double w[3] = { 0.25, 0.25, 0.5 };
    uint32_t u[3];
    vd_weights_to_bounds(w, 3, 10000, u);
    assert_int_equal(u[0], 2500);
    assert_int_equal(u[1], 5000);
    assert_int_equal(u[2], 10000);
    /* A tiny but positive weight keeps a bucket; the last ends at 10000. */
    double t[3] = { 0.99999, 0.000005, 0.000005 };
    vd_weights_to_bounds(t, 3, 10000, u);
    assert_true(u[0] < u[1] && u[1] < u[2]);
    assert_int_equal(u[2], 10000);
}

static void test_uplift(void **st)
{
    (void)st;
    /* Newcombe (1998), Statistics in Medicine 17:873, example (a):
     * 56/70 - 48/80 = 0.2, method 10: 0.0524 to 0.3339. */
    vd_uplift u = vd_uplift95((vd_arm_counts){ 70, 56 }, (vd_arm_counts){ 80, 48 });
    NEAR(u.diff, 0.2, 1e-12);
    NEAR(u.ci95.low, 0.0524, 1e-4);
    NEAR(u.ci95.high, 0.3339, 1e-4);
    NEAR(u.relative, 0.2 / 0.6, 1e-12);
    u = vd_uplift95((vd_arm_counts){ 10, 1 }, (vd_arm_counts){ 0, 0 });
    assert_true(u.relative == 0.0);
    assert_true(u.ci95.low <= u.diff && u.diff <= u.ci95.high);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_det_log),
        cmocka_unit_test(test_rng_reproducible),
        cmocka_unit_test(test_gamma_beta_moments),
        cmocka_unit_test(test_p_best),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_bandit_weights),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_uplift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
