/* vd-accuracy-source — accuracy of vd_source_classify on the referer corpora.
 *
 *   build/vd-accuracy-source [--min X] [DIR]      (DIR default ../shared/data/referer)
 *
 * Files (see ../shared/data/README.md):
 *   snowplow_referer_tests.tsv        label `channel` (organic_search -> organic)
 *   snowplow_referers_yml_domains.tsv label `channel` (coverage of a host list)
 *   ga4_channel_rule_cases.tsv        label `ga4_channel`, mapped onto our mediums;
 *                                     GA4 channels we have no medium for are listed
 *                                     apart, with what we answered.
 * Prints accuracy per file and per label, the first 20 misses of each file, and a
 * last line: source_accuracy_snowplow=… source_accuracy_domains=… source_accuracy_ga4=…
 * --min X (fraction, or percent if > 1) exits 1 if the snowplow or domains accuracy
 * is below X. A missing folder is skipped (exit 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/source.h"

#define MAX_COLS 16
#define LINE_MAX_LEN 65536

typedef struct stats {
    unsigned total, ok;
    unsigned per_total[VD_MEDIUM__COUNT], per_ok[VD_MEDIUM__COUNT];
    unsigned misses;
    unsigned outside;                  /* labels outside our vocabulary */
} stats;

static int split(char *line, char **cols)
{
    int n = 0;
    char *p = line;
    cols[n++] = p;
    while ((p = strchr(p, '\t')) && n < MAX_COLS) {
        *p++ = '\0';
        cols[n++] = p;
    }
    return n;
}

static int col_index(char **hdr, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(hdr[i], name) == 0)
            return i;
    return -1;
}

static int medium_from_channel(const char *c)
{
    static const struct { const char *ch; int m; } map[] = {
        { "organic_search", VD_MEDIUM_ORGANIC }, { "social", VD_MEDIUM_SOCIAL },
        { "email", VD_MEDIUM_EMAIL }, { "paid", VD_MEDIUM_PAID },
        { "referral", VD_MEDIUM_REFERRAL }, { "internal", VD_MEDIUM_INTERNAL },
        { "direct", VD_MEDIUM_DIRECT },
        /* GA4 channel names */
        { "Paid Search", VD_MEDIUM_PAID }, { "Paid Social", VD_MEDIUM_PAID },
        { "Paid Shopping", VD_MEDIUM_PAID }, { "Paid Other", VD_MEDIUM_PAID },
        { "Paid Video", VD_MEDIUM_PAID }, { "Display", VD_MEDIUM_PAID },
        { "Cross-network", VD_MEDIUM_PAID }, { "Organic Search", VD_MEDIUM_ORGANIC },
        { "Organic Social", VD_MEDIUM_SOCIAL }, { "Email", VD_MEDIUM_EMAIL },
        { "Referral", VD_MEDIUM_REFERRAL }, { "Direct", VD_MEDIUM_DIRECT },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(c, map[i].ch) == 0)
            return map[i].m;
    return -1;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Runs one file; returns accuracy in [0,1], or -1 if the file is absent. */
static double run_file(const char *dir, const char *file, const char *label_col, bool terms)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("== %s: skipped (not present)\n", file);
        return -1;
    }
    static char line[LINE_MAX_LEN], hdrline[LINE_MAX_LEN];
    char *hdr[MAX_COLS], *cols[MAX_COLS];
    if (!fgets(hdrline, sizeof hdrline, f)) {
        fclose(f);
        return -1;
    }
    chomp(hdrline);
    int nh = split(hdrline, hdr);
    int c_ref = col_index(hdr, nh, "referer_url"), c_page = col_index(hdr, nh, "page_url");
    int c_lab = col_index(hdr, nh, label_col), c_term = col_index(hdr, nh, "term");
    if (c_ref < 0 || c_page < 0 || c_lab < 0) {
        printf("== %s: unexpected header\n", file);
        fclose(f);
        return -1;
    }
    stats st;
    memset(&st, 0, sizeof st);
    unsigned term_total = 0, term_ok = 0;
    printf("== %s\n", file);
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        int n = split(line, cols);
        if (n <= c_lab || n <= c_ref || n <= c_page)
            continue;
        const char *ref = cols[c_ref], *page = cols[c_page], *lab = cols[c_lab];
        vd_source s;
        vd_source_classify(vd_str_cstr(ref), vd_str_cstr(page), &s);
        int want = medium_from_channel(lab);
        if (want < 0) {
            st.outside++;
            printf("  not in our vocabulary: %-26s we say %-8s name=%s  (%s | %s)\n", lab,
                   vd_medium_name(s.medium), s.name, ref, page);
            continue;
        }
        st.total++;
        st.per_total[want]++;
        bool ok = s.medium == want;
        if (ok) {
            st.ok++;
            st.per_ok[want]++;
        } else if (st.misses++ < 20) {
            printf("  miss: want %-8s got %-8s name=%-14s %s%s%s\n", vd_medium_name((unsigned)want),
                   vd_medium_name(s.medium), s.name, ref, *page ? "  page=" : "", page);
        }
        if (strstr(ref, "subdomain1.") || strstr(ref, "subdomain2."))
            printf("  extra-internal-domain case (%s): got %s\n", ref, vd_medium_name(s.medium));
        if (terms && c_term >= 0 && n > c_term && cols[c_term][0]) {
            term_total++;
            if (strcmp(cols[c_term], s.term) == 0)
                term_ok++;
            else
                printf("  term miss: want '%s' got '%s' (%s)\n", cols[c_term], s.term, ref);
        }
    }
    fclose(f);
    double acc = st.total ? (double)st.ok / st.total : 1.0;
    printf("  accuracy %u/%u = %.2f%%", st.ok, st.total, 100.0 * acc);
    if (st.misses > 20)
        printf(" (%u misses, first 20 listed)", st.misses);
    if (st.outside)
        printf("; %u rows outside our vocabulary", st.outside);
    printf("\n");
    for (unsigned m = 0; m < VD_MEDIUM__COUNT; m++)
        if (st.per_total[m])
            printf("    %-9s %4u/%-4u = %6.2f%%\n", vd_medium_name(m), st.per_ok[m], st.per_total[m],
                   100.0 * st.per_ok[m] / st.per_total[m]);
    if (term_total)
        printf("    search term %u/%u\n", term_ok, term_total);
    return acc;
}

int main(int argc, char **argv)
{
    const char *dir = "../shared/data/referer";
    double min = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--min") == 0 && i + 1 < argc) {
            min = atof(argv[++i]);
            if (min > 1)
                min /= 100.0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--min X] [DIR]\n", argv[0]);
            return 0;
        } else {
            dir = argv[i];
        }
    }
    FILE *probe;
    char path[4096];
    snprintf(path, sizeof path, "%s/snowplow_referer_tests.tsv", dir);
    probe = fopen(path, "r");
    if (!probe) {
        printf("skipped: corpus not present (%s)\n", dir);
        return 0;
    }
    fclose(probe);

    double a = run_file(dir, "snowplow_referer_tests.tsv", "channel", true);
    double b = run_file(dir, "snowplow_referers_yml_domains.tsv", "channel", false);
    double c = run_file(dir, "ga4_channel_rule_cases.tsv", "ga4_channel", false);
    printf("source_accuracy_snowplow=%.4f source_accuracy_domains=%.4f source_accuracy_ga4=%.4f\n",
           a, b, c);
    /* Issue 14's goal, on the observed (not synthetic) referers. */
    printf("goal: medium accuracy >= 99%% on observed referers: %s\n",
           a >= 0.99 ? "met" : "NOT met");
    if (min >= 0 && ((a >= 0 && a < min) || (b >= 0 && b < min))) {
        fprintf(stderr, "accuracy below %.4f\n", min);
        return 1;
    }
    return 0;
}
