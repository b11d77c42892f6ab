/* stats.h — experiment statistics, pure functions (no I/O, no globals).
 *
 * What `report` and the bandit compute from counters (exposures,
 * conversions): a 95 % Wilson score interval of a rate, P(best) by Thompson
 * sampling, bandit weights (floored, normalized, with an exploration window)
 * and the uplift of one rate over another with its interval.
 *
 * Deterministic by construction, so that every daemon sharing the counters
 * computes bit-identical weights: the random numbers come from our own
 * xoshiro256** generator seeded with a fixed seed (never libc rand), the
 * only transcendental function used on the sampling path is our own
 * vd_det_log (IEEE +,-,*,/ and sqrt are exactly rounded everywhere;
 * libm's log is not guaranteed to be), and the build uses -std=c11, which
 * keeps GCC from contracting a*b+c into FMA. */
#ifndef VD_LEARN_STATS_H
#define VD_LEARN_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define VD_LEARN_MAX_ARMS 100          /* as many as a split may have */
#define VD_LEARN_SEED 0x76617269616e7464ULL   /* "variantd": the fixed seed */
#define VD_LEARN_DRAWS 20000u          /* Thompson draws per P(best) estimate */

typedef struct vd_interval {
    double low, high;
} vd_interval;

/* 95 % Wilson score interval of conversions/exposures (z = 1.959964).
 * exposures 0: [0, 1]. conversions above exposures are clamped. */
vd_interval vd_wilson95(uint64_t conversions, uint64_t exposures);

/* conversions/exposures, 0 when there are no exposures. */
double vd_rate(uint64_t conversions, uint64_t exposures);

/* ---- the deterministic random source ---------------------------------- */
typedef struct vd_rng {
    uint64_t s[4];
} vd_rng;

void vd_rng_seed(vd_rng *r, uint64_t seed);     /* splitmix64 expansion */
uint64_t vd_rng_next(vd_rng *r);                /* xoshiro256** */
double vd_rng_uniform(vd_rng *r);               /* in (0, 1), 53-bit */
double vd_rng_normal(vd_rng *r);                /* N(0,1), Marsaglia polar */
double vd_rng_gamma(vd_rng *r, double shape);   /* Gamma(shape, 1), shape >= 1: Marsaglia–Tsang */
double vd_rng_beta(vd_rng *r, double a, double b); /* Beta(a, b), a, b >= 1: X/(X+Y) */

/* Natural logarithm from IEEE arithmetic alone (identical on every
 * machine); x > 0, relative error below 1e-15. */
double vd_det_log(double x);

/* ---- P(best) and bandit weights ---------------------------------------- */
typedef struct vd_arm_counts {
    uint64_t exposures;
    uint64_t conversions;
} vd_arm_counts;

/* P(arm i has the highest rate) under Beta(1 + conversions, 1 + exposures -
 * conversions), by `draws` Thompson draws from a generator seeded with
 * `seed`. Arms with identical counts get identical probabilities (their
 * wins are pooled and shared), so a tie stays even. n in 1..VD_LEARN_MAX_ARMS;
 * the p sum to 1. Returns -1 if n is out of range. */
int vd_p_best(const vd_arm_counts *arms, unsigned n, uint64_t seed, unsigned draws, double *p);

typedef struct vd_bandit_params {
    double floor;                /* bandit-floor: minimum weight per arm (0..1/n) */
    uint64_t min_exposures;      /* bandit-min-exposures: exploration window */
    uint64_t seed;               /* VD_LEARN_SEED */
    unsigned draws;              /* VD_LEARN_DRAWS */
} vd_bandit_params;

/* The bandit's weights for one split: while any arm has fewer than
 * min_exposures exposures, the written weights (`written`, any positive
 * scale) normalized, and false is returned (exploring); otherwise P(best)
 * floored at `floor` and normalized (every weight >= floor, sum 1; if
 * n * floor >= 1 every arm gets 1/n), and true is returned. */
bool vd_bandit_weights(const vd_arm_counts *arms, const double *written, unsigned n,
                       const vd_bandit_params *bp, double *w);

/* Applies a floor to weights summing to 1 (in place): arms below it are
 * raised to it and the rest scaled down proportionally, repeatedly, until
 * every arm holds it. */
void vd_weights_floor(double *w, unsigned n, double floor);

/* Cumulative bucket bounds (of `buckets`, exclusive, the last = buckets)
 * from weights summing to 1, rounded so every arm with weight > 0 keeps at
 * least one bucket. */
void vd_weights_to_bounds(const double *w, unsigned n, uint32_t buckets, uint32_t *upto);

/* ---- uplift ------------------------------------------------------------- */
typedef struct vd_uplift {
    double diff;                 /* rate(treated) - rate(control) */
    vd_interval ci95;            /* Newcombe's hybrid score interval of diff */
    double relative;             /* diff / rate(control); 0 when control's rate is 0 */
} vd_uplift;

/* Uplift of a treated group (the personalized rules pooled) over a control
 * group (the holdout). Newcombe (1998) method 10: the difference of the
 * two Wilson intervals' distances. */
vd_uplift vd_uplift95(vd_arm_counts treated, vd_arm_counts control);

#endif
