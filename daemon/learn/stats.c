/* stats.c — Wilson intervals, Thompson sampling, bandit weights, uplift.
 * See stats.h for why every number here is reproducible bit for bit. */
#include "learn/stats.h"

#include <math.h>
#include <string.h>

#define Z95 1.959963984540054

double vd_rate(uint64_t conversions, uint64_t exposures)
{
    if (exposures == 0)
        return 0.0;
    if (conversions > exposures)
        conversions = exposures;
    return (double)conversions / (double)exposures;
}

vd_interval vd_wilson95(uint64_t conversions, uint64_t exposures)
{
    if (exposures == 0)
        return (vd_interval){ 0.0, 1.0 };
    if (conversions > exposures)
        conversions = exposures;
    double n = (double)exposures, p = (double)conversions / n, z2 = Z95 * Z95;
    double denom = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = Z95 * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
    vd_interval ci = { centre - half, centre + half };
    /* At p = 0 or 1 the exact bound is 0 or 1; rounding must not say -1e-17. */
    if (ci.low < 0.0 || conversions == 0)
        ci.low = 0.0;
    if (ci.high > 1.0 || conversions == exposures)
        ci.high = 1.0;
    return ci;
}

/* ---- deterministic random numbers ---------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void vd_rng_seed(vd_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t vd_rng_next(vd_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double vd_rng_uniform(vd_rng *r)
{
    /* 53 random bits, shifted half a step off zero: never 0, never 1. */
    return ((double)(vd_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

double vd_det_log(double x)
{
    if (!(x > 0.0))
        return x == 0.0 ? -HUGE_VAL : NAN;
    if (isinf(x))
        return x;
    int e;
    double m = frexp(x, &e);            /* exact: x = m * 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    /* log m = 2 atanh(z), z = (m-1)/(m+1), |z| <= 0.1716: the odd series
     * converges to double precision in 13 terms. */
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int k = 0; k < 14; k++) {
        sum += term / (double)(2 * k + 1);
        term *= z2;
    }
    return 2.0 * sum + (double)e * 0.69314718055994530942;
}

double vd_rng_normal(vd_rng *r)
{
    for (;;) {
        double u = 2.0 * vd_rng_uniform(r) - 1.0, v = 2.0 * vd_rng_uniform(r) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0)
            continue;
        return u * sqrt(-2.0 * vd_det_log(s) / s);
    }
}

double vd_rng_gamma(vd_rng *r, double shape)
{
    /* Marsaglia & Tsang (2000), "A simple method for generating gamma
     * variables"; shape >= 1 (ours are 1 + count). */
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = vd_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = vd_rng_uniform(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return d * v;
        if (vd_det_log(u) < 0.5 * x2 + d * (1.0 - v + vd_det_log(v)))
            return d * v;
    }
}

double vd_rng_beta(vd_rng *r, double a, double b)
{
    double x = vd_rng_gamma(r, a), y = vd_rng_gamma(r, b);
    return x / (x + y);
}

/* ---- P(best), bandit weights ---------------------------------------------- */

int vd_p_best(const vd_arm_counts *arms, unsigned n, uint64_t seed, unsigned draws, double *p)
{
    if (n == 0 || n > VD_LEARN_MAX_ARMS)
        return -1;
    if (draws == 0)
        draws = VD_LEARN_DRAWS;
    if (n == 1) {
        p[0] = 1.0;
        return 0;
    }
    double a[VD_LEARN_MAX_ARMS], b[VD_LEARN_MAX_ARMS];
    uint64_t wins[VD_LEARN_MAX_ARMS];
    for (unsigned i = 0; i < n; i++) {
        uint64_t e = arms[i].exposures, c = arms[i].conversions > e ? e : arms[i].conversions;
        a[i] = 1.0 + (double)c;
        b[i] = 1.0 + (double)(e - c);
        wins[i] = 0;
    }
    vd_rng r;
    vd_rng_seed(&r, seed);
    for (unsigned d = 0; d < draws; d++) {
        unsigned best = 0;
        double bv = -1.0;
        for (unsigned i = 0; i < n; i++) {
            double x = vd_rng_beta(&r, a[i], b[i]);
            if (x > bv) {
                bv = x;
                best = i;
            }
        }
        wins[best]++;
    }
    /* Arms with the same counts have the same posterior: pool their wins
     * and share them, so sampling noise never separates a tie. */
    bool done[VD_LEARN_MAX_ARMS] = { false };
    for (unsigned i = 0; i < n; i++) {
        if (done[i])
            continue;
        uint64_t sum = 0;
        unsigned k = 0;
        for (unsigned j = i; j < n; j++)
            if (!done[j] && a[j] == a[i] && b[j] == b[i]) {
                sum += wins[j];
                k++;
            }
        double share = (double)sum / (double)draws / (double)k;
        for (unsigned j = i; j < n; j++)
            if (!done[j] && a[j] == a[i] && b[j] == b[i]) {
                p[j] = share;
                done[j] = true;
            }
    }
    return 0;
}

void vd_weights_floor(double *w, unsigned n, double floor)
{
    if (n == 0)
        return;
    if (floor <= 0.0)
        return;
    if (floor * (double)n >= 1.0) {
        for (unsigned i = 0; i < n; i++)
            w[i] = 1.0 / (double)n;
        return;
    }
    double p[VD_LEARN_MAX_ARMS];
    bool fixed[VD_LEARN_MAX_ARMS] = { false };
    unsigned nfixed = 0;
    memcpy(p, w, n * sizeof *p);
    for (;;) {
        double free_mass = 1.0 - (double)nfixed * floor, s = 0.0;
        for (unsigned i = 0; i < n; i++)
            if (!fixed[i])
                s += p[i];
        bool changed = false;
        for (unsigned i = 0; i < n; i++) {
            if (fixed[i])
                continue;
            w[i] = s > 0.0 ? p[i] * free_mass / s : free_mass / (double)(n - nfixed);
            if (w[i] < floor) {
                fixed[i] = true;
                nfixed++;
                changed = true;
            }
        }
        if (!changed)
            break;
    }
    for (unsigned i = 0; i < n; i++)
        if (fixed[i])
            w[i] = floor;
}

bool vd_bandit_weights(const vd_arm_counts *arms, const double *written, unsigned n,
                       const vd_bandit_params *bp, double *w)
{
    if (n == 0 || n > VD_LEARN_MAX_ARMS)
        return false;
    bool exploring = false;
    for (unsigned i = 0; i < n; i++)
        if (arms[i].exposures < bp->min_exposures)
            exploring = true;
    if (exploring) {
        double s = 0.0;
        for (unsigned i = 0; i < n; i++)
            s += written[i] > 0.0 ? written[i] : 0.0;
        for (unsigned i = 0; i < n; i++)
            w[i] = s > 0.0 ? (written[i] > 0.0 ? written[i] : 0.0) / s : 1.0 / (double)n;
        return false;
    }
    vd_p_best(arms, n, bp->seed, bp->draws, w);
    vd_weights_floor(w, n, bp->floor);
    return true;
}

void vd_weights_to_bounds(const double *w, unsigned n, uint32_t buckets, uint32_t *upto)
{
    unsigned positive_after[VD_LEARN_MAX_ARMS + 1];
    positive_after[n] = 0;
    for (unsigned i = n; i-- > 0;)
        positive_after[i] = positive_after[i + 1] + (w[i] > 0.0);
    double cum = 0.0;
    uint32_t prev = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += w[i] > 0.0 ? w[i] : 0.0;
        uint32_t u;
        if (i + 1 == n) {
            u = buckets;
        } else {
            double x = cum * (double)buckets + 0.5;
            u = x <= 0.0 ? 0 : x >= (double)buckets ? buckets : (uint32_t)x;
            if (w[i] > 0.0 && u <= prev)
                u = prev + 1;
            if (u > buckets - positive_after[i + 1])
                u = buckets - positive_after[i + 1];
            if (u < prev)
                u = prev;
        }
        upto[i] = u;
        prev = u;
    }
}

vd_uplift vd_uplift95(vd_arm_counts treated, vd_arm_counts control)
{
    double p1 = vd_rate(treated.conversions, treated.exposures);
    double p2 = vd_rate(control.conversions, control.exposures);
    vd_interval c1 = vd_wilson95(treated.conversions, treated.exposures);
    vd_interval c2 = vd_wilson95(control.conversions, control.exposures);
    vd_uplift u;
    u.diff = p1 - p2;
    u.ci95.low = u.diff - sqrt((p1 - c1.low) * (p1 - c1.low) + (c2.high - p2) * (c2.high - p2));
    u.ci95.high = u.diff + sqrt((c1.high - p1) * (c1.high - p1) + (p2 - c2.low) * (p2 - c2.low));
    u.relative = p2 > 0.0 ? u.diff / p2 : 0.0;
    return u;
}
