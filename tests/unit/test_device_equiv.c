/* test_device_equiv.c — the User-Agent classifier gives the same verdicts
 * as the classifier it replaced.
 *
 * tests/unit/ref/device_main.inc is context/device.c as it was before the
 * one-pass token index (main at 9ba30ae: tables searched token by token),
 * compiled here under other names (ref_device_*). Every UA of every corpus
 * in ../shared/data/ua/, plus prefixes, suffixes and splices of them (so
 * tokens sit at the very start and end of a UA and across the
 * VD_UA_MAX cut), is classified by both, with and without the Client
 * Hints of the hints corpus; any difference in type, OS or browser fails.
 * The expected verdicts are computed at test time rather than committed:
 * the corpora are third-party (LGPL/Apache) data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/bots.h"
#include "context/device.h"
#include "testutil.h"

/* The reference, renamed. */
#define vd_device_classify ref_device_classify
#define vd_device_classify_hints ref_device_classify_hints
#define vd_device_type_name ref_device_type_name
#define vd_device_cache_new ref_device_cache_new
#define vd_device_cache_free ref_device_cache_free
#define vd_device_lookup ref_device_lookup
#define vd_device_cache_stats ref_device_cache_stats
void ref_device_classify(vd_str ua, vd_device *out);
void ref_device_classify_hints(vd_str ua, const vd_ua_hints *h, vd_device *out);
const char *ref_device_type_name(unsigned type);
struct vd_device_cache *ref_device_cache_new(size_t entries);
void ref_device_cache_free(struct vd_device_cache *c);
void ref_device_lookup(struct vd_device_cache *c, vd_str ua, const vd_ua_hints *h, vd_device *out);
void ref_device_cache_stats(const struct vd_device_cache *c, uint64_t *hits, uint64_t *misses);
#include "ref/device_main.inc"
#undef vd_device_classify
#undef vd_device_classify_hints
#undef vd_device_type_name
#undef vd_device_cache_new
#undef vd_device_cache_free
#undef vd_device_lookup
#undef vd_device_cache_stats

static const char *nz(const char *s) { return s ? s : "(null)"; }

static size_t eq_checked, eq_diffs;

/* Both classifiers on one UA (and hints, may be NULL); prints a difference. */
static void compare(const char *ua, size_t n, const vd_ua_hints *h)
{
    vd_device a, b;
    ref_device_classify_hints(vd_str_make(ua, n), h, &a);
    vd_device_classify_hints(vd_str_make(ua, n), h, &b);
    if (!h) {
        vd_device c;
        vd_device_classify(vd_str_make(ua, n), &c);
        if (c.type != b.type || c.os != b.os || c.browser != b.browser)
            b = c;     /* report the plain entry point's verdict if it differs */
    }
    eq_checked++;
    /* Families are static strings of each copy: compare their text. */
    bool same = a.type == b.type && (a.os == NULL) == (b.os == NULL) &&
                (!a.os || strcmp(a.os, b.os) == 0) && (a.browser == NULL) == (b.browser == NULL) &&
                (!a.browser || strcmp(a.browser, b.browser) == 0);
    if (!same && eq_diffs++ < 20)
        printf("DIFF %.*s%s\n  reference %s/%s/%s, now %s/%s/%s\n", (int)(n < 300 ? n : 300), ua,
               n < 300 ? "" : "...", vd_device_type_name(a.type), nz(a.os), nz(a.browser),
               vd_device_type_name(b.type), nz(b.os), nz(b.browser));
}

/* Every variant of one UA: whole, prefixes and suffixes at a few cuts, and
 * spliced with the previous UA (end of one, start of the other). */
static void compare_variants(const char *ua, size_t n, const char *prev, size_t pn, uint64_t *rng)
{
    compare(ua, n, NULL);
    for (int k = 0; k < 3 && n > 1; k++) {
        *rng = *rng * 6364136223846793005u + 1442695040888963407u;
        size_t cut = (size_t)(*rng >> 33) % n;
        compare(ua, cut, NULL);               /* a prefix */
        compare(ua + cut, n - cut, NULL);     /* a suffix */
    }
    if (prev && pn) {
        char buf[4096];
        size_t a = pn / 2, b = n / 2;
        if (a + (n - b) < sizeof buf) {
            memcpy(buf, prev + a, pn - a);
            memcpy(buf + (pn - a), ua, b);
            compare(buf, (pn - a) + b, NULL);
        }
    }
}

typedef struct corpus_cols {
    int ua, mobile, platform, model, chua;
} corpus_cols;

static char *field(char **f, int nf, int i)
{
    return i >= 0 && i < nf ? f[i] : NULL;
}

static void compare_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *line = NULL, *prev = NULL;
    size_t cap = 0, pn = 0;
    ssize_t len;
    corpus_cols c = { 0, -1, -1, -1, -1 };
    bool header = true;
    uint64_t rng = 42;
    size_t rows = 0, before = eq_checked;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        char *f[32];
        int nf = 0;
        for (char *p = line; nf < 32;) {
            f[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = '\0';
            p = t + 1;
        }
        if (header) {
            header = false;
            for (int i = 0; i < nf; i++) {
                if (!strcmp(f[i], "user_agent")) c.ua = i;
                else if (!strcmp(f[i], "sec_ch_ua_mobile")) c.mobile = i;
                else if (!strcmp(f[i], "sec_ch_ua_platform")) c.platform = i;
                else if (!strcmp(f[i], "sec_ch_ua_model")) c.model = i;
                else if (!strcmp(f[i], "sec_ch_ua")) c.chua = i;
            }
            continue;
        }
        const char *ua = field(f, nf, c.ua);
        if (!ua)
            continue;
        size_t n = strlen(ua);
        rows++;
        compare_variants(ua, n, prev, pn, &rng);
        if (c.mobile >= 0) {
            const char *m = field(f, nf, c.mobile), *pl = field(f, nf, c.platform),
                       *mo = field(f, nf, c.model), *ch = field(f, nf, c.chua);
            vd_ua_hints h = { vd_str_cstr(ch ? ch : ""), vd_str_cstr(m ? m : ""),
                              vd_str_cstr(pl ? pl : ""), vd_str_cstr(mo ? mo : "") };
            compare(ua, n, &h);
            vd_ua_hints only_mobile = { VD_STR_NULL, vd_str_cstr(m ? m : ""), VD_STR_NULL,
                                        VD_STR_NULL };
            compare(ua, n, &only_mobile);
        }
        free(prev);
        prev = strdup(ua);
        pn = prev ? n : 0;
    }
    free(prev);
    free(line);
    fclose(fp);
    printf("%s: %zu rows, %zu classifications compared\n", path, rows, eq_checked - before);
    assert_true(rows > 0);
}

static void test_corpora_same_verdicts(void **state)
{
    (void)state;
    static const char *const files[] = {
        "data/ua/device_detector_ua.tsv", "data/ua/device_detector_clienthints.tsv",
        "data/ua/uap_core_browser.tsv",  "data/ua/uap_core_device.tsv",
        "data/ua/uap_core_os.tsv",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        VD_NEED_SHARED(path, files[i]);
        compare_file(path);
    }
    printf("device equivalence: %zu classifications, %zu differences\n", eq_checked, eq_diffs);
    assert_int_equal(eq_diffs, 0);
}

/* Edges the corpora may miss: empty and tiny UAs, tokens flush with either
 * end, upper case and bytes >= 0x80 next to tokens, the VD_UA_MAX cut
 * through a token, a token made of the last bytes only. */
static void test_edges_same_verdicts(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "", "a", "ab", "bot", "BOT", "@", "x@", "@x", "ipad", "IPAD", "iPad",
        "Mozilla/5.0 (Linux; Android 10; SM-T500)", "android", "Android; 43LF7130S",
        "\xc3\xa9ipad\xc3\xa9", "\x80\x81\x82", "Mozilla/5.0 (X11; Linux x86_64)",
        "curl", "xcurl/7", "MOBILE", "Mobile Safari", "windows nt; touch;",
        "Mozilla/5.0 (Linux; Android 12; Wi-Fi Tab Kids) Safari",
        "Mozilla/5.0 (Linux; Android 9; X96 Max) AppleWebKit Safari",
        "Dalvik/2.1.0 (Linux; U; Android 11; 10LA1 Build/RP1A)",
        "Mozilla/5.0 (Linux; Android 7.1.2; MT0739D Build/N2G47H)",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i]);
        compare(cases[i], n, NULL);
        for (size_t k = 0; k <= n; k++) {
            compare(cases[i], k, NULL);
            compare(cases[i] + k, n - k, NULL);
        }
    }
    /* A long UA whose tokens straddle the VD_UA_MAX cut. */
    static char big[VD_UA_MAX + 64];
    static const char *const toks[] = { "iphone", "mobile", "windows nt", "crawl", "@", "ipad" };
    for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++)
        for (size_t back = 0; back <= strlen(toks[t]); back++) {
            memset(big, 'z', sizeof big);
            memcpy(big + VD_UA_MAX - back, toks[t], strlen(toks[t]));
            compare(big, sizeof big, NULL);
            compare(big, VD_UA_MAX, NULL);
        }
    assert_int_equal(eq_diffs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_same_verdicts),
        cmocka_unit_test(test_corpora_same_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
