/* test_tz.c — vd_tz_localtime against glibc's localtime_r (setenv("TZ") is
 * fine in a test), country zones, unknown names, hostile zoneinfo dirs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "context/tz.h"
#include "core/log.h"

#define ZONEINFO "/usr/share/zoneinfo"

static vd_tzdb *g_db;
static long g_checked, g_transitions;

static int setup(void **state)
{
    (void)state;
    char err[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_db = vd_tzdb_open(NULL, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!g_db) {
        fprintf(stderr, "tzdb open: %s\n", err);
        return -1;
    }
    printf("tz: %zu zones loaded in %.1f ms\n", vd_tzdb_count(g_db),
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vd_tzdb_close(g_db);
    return 0;
}

static void glibc_tm(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)t;
    assert_non_null(localtime_r(&tt, tm));
}

static void compare_at(const vd_tz *tz, const char *name, int64_t t, int64_t expect_next)
{
    struct tm tm;
    vd_localtime lt;
    glibc_tm(t, &tm);
    vd_tz_localtime(tz, t, &lt);
    if (lt.utc_offset != tm.tm_gmtoff || lt.year != tm.tm_year + 1900 ||
        lt.month != tm.tm_mon + 1 || lt.day != tm.tm_mday || lt.hour != tm.tm_hour ||
        lt.minute != tm.tm_min || lt.second != tm.tm_sec || lt.weekday != (tm.tm_wday + 6) % 7 ||
        lt.days != vd_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday))
        fail_msg("%s @%lld: ours %04d-%02d-%02d %02d:%02d:%02d wd%d off %d, glibc "
                 "%04d-%02d-%02d %02d:%02d:%02d wd%d off %ld",
                 name, (long long)t, lt.year, lt.month, lt.day, lt.hour, lt.minute, lt.second,
                 lt.weekday, lt.utc_offset, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (tm.tm_wday + 6) % 7, tm.tm_gmtoff);
    if (expect_next != 0 && lt.next_transition != expect_next)
        fail_msg("%s @%lld: next_transition %lld, expected %lld", name, (long long)t,
                 (long long)lt.next_transition, (long long)expect_next);
    g_checked++;
}

/* glibc's offset changes in [from, to): hourly scan, then bisection. */
static size_t glibc_transitions(int64_t from, int64_t to, int64_t *out, size_t cap)
{
    size_t n = 0;
    struct tm a, b;
    glibc_tm(from, &a);
    for (int64_t t = from; t < to; t += 3600) {
        glibc_tm(t + 3600, &b);
        if (b.tm_gmtoff != a.tm_gmtoff) {
            int64_t lo = t, hi = t + 3600; /* off(lo) = a, off(hi) != a */
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                struct tm m;
                glibc_tm(mid, &m);
                if (m.tm_gmtoff == a.tm_gmtoff)
                    lo = mid;
                else
                    hi = mid;
            }
            assert_true(n < cap);
            out[n++] = hi;
        }
        a = b;
    }
    return n;
}

static int64_t utc_of(int y, int m, int d)
{
    return vd_days_from_civil(y, m, d) * 86400;
}

static void check_range(const vd_tz *tz, const char *name, int64_t from, int64_t to)
{
    int64_t tr[64];
    size_t n = glibc_transitions(from, to, tr, 64);
    g_transitions += (long)n;
    for (size_t i = 0; i < n; i++) {
        int64_t after = i + 1 < n ? tr[i + 1] : 0;
        compare_at(tz, name, tr[i] - 1, tr[i]);
        compare_at(tz, name, tr[i], after);
        compare_at(tz, name, tr[i] + 1, after);
    }
    /* Samples every 5h07m: fields, and next_transition when it is known. */
    size_t k = 0;
    for (int64_t t = from; t < to; t += 5 * 3600 + 7 * 60) {
        while (k < n && tr[k] <= t)
            k++;
        compare_at(tz, name, t, k < n ? tr[k] : 0);
        if (k == n) {
            vd_localtime lt;
            vd_tz_localtime(tz, t, &lt);
            if (lt.next_transition < to)
                fail_msg("%s @%lld: next_transition %lld inside the range, glibc has none", name,
                         (long long)t, (long long)lt.next_transition);
        }
    }
}

static void test_against_glibc(void **state)
{
    (void)state;
    static const char *zones[] = {
        "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
        "America/St_Johns", "Pacific/Chatham", "Asia/Kathmandu", "Africa/Casablanca",
        "America/Sao_Paulo", "Europe/Dublin", "Pacific/Apia", "UTC", "America/Los_Angeles",
        "Australia/Sydney", "Pacific/Auckland", "America/Santiago", "Asia/Tehran",
        "Europe/London", "America/Havana", "Antarctica/Troll", "America/Nuuk",
        "Asia/Gaza", "Europe/Chisinau", "America/Asuncion", "Pacific/Kiritimati",
        "America/Scoresbysund", "Asia/Tokyo", "Europe/Moscow",
    };
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    size_t nz = 0;
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        const vd_tz *tz = vd_tzdb_zone(g_db, vd_str_make(zones[i], strlen(zones[i])));
        if (!tz)
            fail_msg("zone %s not loaded", zones[i]);
        assert_string_equal(vd_tz_name(tz), zones[i]);
        char env[128];
        snprintf(env, sizeof env, ":%s", zones[i]);
        setenv("TZ", env, 1);
        tzset();
        check_range(tz, zones[i], utc_of(2024, 1, 1), utc_of(2028, 1, 1));
        check_range(tz, zones[i], utc_of(2040, 1, 1), utc_of(2041, 1, 1));
        check_range(tz, zones[i], utc_of(2100, 1, 1), utc_of(2101, 1, 1));
        /* History: weekly samples back to 1900 (offsets from the table). */
        for (int64_t t = utc_of(1900, 1, 1) + 4321; t < utc_of(2024, 1, 1); t += 7 * 86400 + 3607)
            compare_at(tz, zones[i], t, 0);
        nz++;
    }
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    printf("tz: %zu zones, %ld instants compared with glibc, %ld transitions\n", nz, g_checked,
           g_transitions);
    assert_true(g_transitions > 150);
}

/* Every zone the system has, coarsely: 1970-2045 every ~5 days. */
static void test_all_zones_coarse(void **state)
{
    (void)state;
    FILE *p = popen("cd " ZONEINFO " && find . -path ./posix -prune -o -path ./right -prune -o "
                    "\\( -type f -o -type l \\) -print", "r");
    assert_non_null(p);
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    char line[512];
    size_t zones = 0, files = 0;
    long samples = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        const char *name = line + 2; /* "./" */
        files++;
        const vd_tz *tz = vd_tzdb_zone(g_db, vd_str_make(name, strlen(name)));
        if (!tz)
            continue;
        char env[600];
        snprintf(env, sizeof env, ":%s", name);
        setenv("TZ", env, 1);
        tzset();
        for (int64_t t = utc_of(1970, 1, 1) + 1; t < utc_of(2045, 1, 1); t += 5 * 86400 + 3607) {
            compare_at(tz, name, t, 0);
            samples++;
        }
        zones++;
    }
    pclose(p);
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    printf("tz: all %zu loadable zones (of %zu files) match glibc at %ld instants\n", zones, files,
           samples);
    assert_int_equal(zones, vd_tzdb_count(g_db));
}

static void test_known_values(void **state)
{
    (void)state;
    const vd_tz *ber = vd_tzdb_zone(g_db, VD_STR_LIT("Europe/Berlin"));
    assert_non_null(ber);
    vd_localtime lt;
    /* 2024-03-31 01:00:00 UTC: CET -> CEST. */
    int64_t t = utc_of(2024, 3, 31) + 3600;
    vd_tz_localtime(ber, t - 1, &lt);
    assert_int_equal(lt.hour, 1);
    assert_int_equal(lt.minute, 59);
    assert_int_equal(lt.utc_offset, 3600);
    assert_int_equal(lt.next_transition, t);
    assert_int_equal(lt.weekday, 6); /* Sunday */
    vd_tz_localtime(ber, t, &lt);
    assert_int_equal(lt.hour, 3);
    assert_int_equal(lt.utc_offset, 7200);
    assert_int_equal(lt.next_transition, utc_of(2024, 10, 27) + 3600);
    assert_int_equal(lt.days, vd_days_from_civil(2024, 3, 31));
    const vd_tz *kol = vd_tzdb_zone(g_db, VD_STR_LIT("Asia/Kolkata"));
    assert_non_null(kol);
    vd_tz_localtime(kol, utc_of(2030, 6, 1), &lt);
    assert_int_equal(lt.utc_offset, 19800);
    assert_int_equal(lt.next_transition, INT64_MAX);
    const vd_tz *utc = vd_tzdb_utc(g_db);
    assert_non_null(utc);
    vd_tz_localtime(utc, -1, &lt);
    assert_int_equal(lt.year, 1969);
    assert_int_equal(lt.hour, 23);
    assert_int_equal(lt.days, -1);
    assert_int_equal(lt.weekday, 2); /* Wednesday */
    /* Extreme instants are clamped, not overflowed. */
    vd_tz_localtime(ber, INT64_MAX, &lt);
    assert_true(lt.year > 1000000);
    vd_tz_localtime(ber, INT64_MIN, &lt);
    assert_true(lt.year < -1000000);
}

static void test_names_and_countries(void **state)
{
    (void)state;
    assert_true(vd_tzdb_count(g_db) > 300);
    static const char *pairs[][2] = {
        { "DE", "Europe/Berlin" }, { "US", "America/New_York" }, { "NZ", "Pacific/Auckland" },
        { "de", "Europe/Berlin" }, { "JP", "Asia/Tokyo" }, { "IN", "Asia/Kolkata" },
        { "GB", "Europe/London" }, { "CH", "Europe/Zurich" }, { "NO", "Europe/Oslo" }, { "AU", "Australia/Lord_Howe" }, { "BR", "America/Noronha" },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const vd_tz *tz = vd_tzdb_country_zone(g_db, vd_str_make(pairs[i][0], 2));
        if (!tz)
            fail_msg("no zone for %s", pairs[i][0]);
        assert_string_equal(vd_tz_name(tz), pairs[i][1]);
    }
    assert_null(vd_tzdb_country_zone(g_db, VD_STR_LIT("XX")));
    assert_null(vd_tzdb_country_zone(g_db, VD_STR_LIT("D")));
    assert_null(vd_tzdb_country_zone(g_db, VD_STR_LIT("DEU")));
    assert_null(vd_tzdb_country_zone(g_db, VD_STR_LIT("1E")));
    assert_null(vd_tzdb_country_zone(g_db, VD_STR_NULL));

    static const char *unknown[] = { "Europe/Nowhere", "europe/berlin", "Europe/Berlin ",
                                     "../etc/passwd", "zone.tab", "posix/Europe/Berlin",
                                     "right/UTC", "localtime", "Europe", "" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        if (vd_tzdb_zone(g_db, vd_str_make(unknown[i], strlen(unknown[i]))))
            fail_msg("'%s' resolved", unknown[i]);
    char big[5000];
    memset(big, 'A', sizeof big);
    assert_null(vd_tzdb_zone(g_db, vd_str_make(big, sizeof big)));
    /* Not NUL-terminated slice. */
    assert_non_null(vd_tzdb_zone(g_db, vd_str_make("Europe/Berlinxx", 13)));
    assert_non_null(vd_tzdb_zone(g_db, VD_STR_LIT("UTC")));
    assert_non_null(vd_tzdb_zone(g_db, VD_STR_LIT("Etc/GMT+5")));
    assert_string_equal(vd_tz_name(vd_tzdb_utc(g_db)), "UTC");
    char err[256];
    assert_null(vd_tzdb_open("/nonexistent-zoneinfo", err, sizeof err));
    assert_true(strlen(err) > 0);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A minimal v2 TZif file: one type (the standard offset), no transitions,
 * so the footer rule decides everything. */
static size_t make_tzif(unsigned char *buf, int32_t std_east, const char *footer)
{
    size_t n = 0;
    for (int block = 0; block < 2; block++) {
        memcpy(buf + n, "TZif2", 5);
        memset(buf + n + 5, 0, 15);
        n += 20;
        static const uint32_t counts[6] = { 0, 0, 0, 0, 1, 4 };
        for (int i = 0; i < 6; i++, n += 4) {
            buf[n] = (unsigned char)(counts[i] >> 24);
            buf[n + 1] = (unsigned char)(counts[i] >> 16);
            buf[n + 2] = (unsigned char)(counts[i] >> 8);
            buf[n + 3] = (unsigned char)counts[i];
        }
        uint32_t o = (uint32_t)std_east;
        buf[n++] = (unsigned char)(o >> 24);
        buf[n++] = (unsigned char)(o >> 16);
        buf[n++] = (unsigned char)(o >> 8);
        buf[n++] = (unsigned char)o;
        buf[n++] = 0;
        buf[n++] = 0;
        memcpy(buf + n, "XXX", 4);
        n += 4;
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", footer);
    return n;
}

/* Footer rules of every shape (Julian Jn and n, M forms, negative and >24h
 * times, permanent DST, negative DST, odd offsets) against glibc, which
 * takes the same string as TZ directly. */
static void test_posix_footers(void **state)
{
    (void)state;
    static const struct { const char *rule; int32_t std_east; } rules[] = {
        { "CET-1CEST,M3.5.0,M10.5.0/3", 3600 },
        { "EST5EDT,M3.2.0,M11.1.0", -5 * 3600 },
        { "<+0330>-3:30", 12600 },
        { "<+0545>-5:45", 20700 },
        { "NST3:30NDT,M3.2.0,M11.1.0", -12600 },
        { "AAA3BBB,J60/2,J300/-1", -3 * 3600 },
        { "AAA-2BBB-3,59/0,300/23:30", 7200 },
        { "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", -3 * 3600 },
        { "IST-1GMT0,M10.5.0,M3.5.0/1", 3600 },
        { "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 45900 },
        { "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 37800 },
        { "AEST-10AEDT,M10.1.0,M4.1.0/3", 36000 },
        { "XXX-5YYY,M1.2.0/100,M12.3.6/167", 5 * 3600 },
        { "<-01>1<+00>0,M3.5.0/0,M10.5.0/1", -3600 },
        { "ABC+4DEF,M4.5.6/-50,M9.1.1/50", -4 * 3600 },
    };
    char dir[] = "/tmp/vd-tz-rules-XXXXXX";
    assert_non_null(mkdtemp(dir));
    unsigned char buf[512];
    size_t nr = sizeof rules / sizeof rules[0];
    for (size_t i = 0; i < nr; i++) {
        char name[16];
        snprintf(name, sizeof name, "R%zu", i);
        put(dir, name, buf, make_tzif(buf, rules[i].std_east, rules[i].rule));
    }
    char err[256];
    vd_tzdb *db = vd_tzdb_open(dir, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    assert_int_equal(vd_tzdb_count(db), nr);
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    long before = g_transitions;
    for (size_t i = 0; i < nr; i++) {
        char name[16];
        snprintf(name, sizeof name, "R%zu", i);
        const vd_tz *tz = vd_tzdb_zone(db, vd_str_make(name, strlen(name)));
        if (!tz)
            fail_msg("rule %s not loaded", rules[i].rule);
        setenv("TZ", rules[i].rule, 1);
        tzset();
        check_range(tz, rules[i].rule, utc_of(2023, 6, 1), utc_of(2027, 1, 1));
        check_range(tz, rules[i].rule, utc_of(2099, 12, 1), utc_of(2101, 1, 1));
        /* Not before 1970: glibc computes every earlier year as 1970. */
        check_range(tz, rules[i].rule, utc_of(1971, 1, 1), utc_of(1972, 1, 1));
    }
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    vd_tzdb_close(db);
    /* Permanent DST as zic writes it: DST all year, no transitions (glibc
     * flips to standard time for a few hours each New Year, so it is not the
     * reference here). */
    put(dir, "Perm", buf, make_tzif(buf, -5 * 3600, "EST5EDT,0/0,J365/25"));
    db = vd_tzdb_open(dir, err, sizeof err);
    assert_non_null(db);
    const vd_tz *perm = vd_tzdb_zone(db, VD_STR_LIT("Perm"));
    assert_non_null(perm);
    for (int64_t t = utc_of(2023, 12, 31); t < utc_of(2026, 1, 2); t += 3600 + 13) {
        vd_localtime lt;
        vd_tz_localtime(perm, t, &lt);
        if (lt.utc_offset != -4 * 3600 || lt.next_transition != INT64_MAX)
            fail_msg("permanent DST @%lld: off %d next %lld", (long long)t, lt.utc_offset,
                     (long long)lt.next_transition);
    }
    printf("tz: %zu footer rules compared with glibc, %ld transitions\n", nr,
           g_transitions - before);
    vd_tzdb_close(db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_hostile_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/vd-tz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[600];
    snprintf(sub, sizeof sub, "%s/Bad", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof sub, "%s/Good", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    size_t len;
    unsigned char *ber = slurp(ZONEINFO "/Europe/Berlin", &len);
    assert_true(len > 200);
    put(sub, "Berlin", ber, len);
    /* A v1-only file: the first header + 32-bit block, version byte 0. */
    size_t v1 = 44 + rd32(ber + 32) * 5 + rd32(ber + 36) * 6 + rd32(ber + 40) + rd32(ber + 28) * 8 +
                rd32(ber + 24) + rd32(ber + 20);
    unsigned char copy[1 << 16];
    memcpy(copy, ber, len);
    copy[4] = 0;
    put(sub, "V1", copy, v1);
    snprintf(sub, sizeof sub, "%s/Bad", dir);
    /* Every truncation of the real file. */
    int bad = 0;
    for (size_t n = 0; n < len; n += (n < 100 ? 1 : 7)) {
        char name[32];
        snprintf(name, sizeof name, "Trunc%zu", n);
        put(sub, name, ber, n);
        bad++;
    }
    /* Huge counts. */
    memcpy(copy, ber, len);
    memset(copy + 32, 0xff, 12);
    put(sub, "HugeCounts", copy, len);
    /* Bad footer. */
    memcpy(copy, ber, len);
    assert_int_equal(copy[len - 1], '\n');
    memset(copy + len - 5, '!', 4);
    put(sub, "BadFooter", copy, len);
    /* Random byte flips. */
    uint32_t x = 42;
    for (int i = 0; i < 200; i++) {
        memcpy(copy, ber, len);
        for (int k = 0; k < 4; k++) {
            x = x * 1103515245u + 12345u;
            copy[(x >> 8) % len] ^= (unsigned char)(1u << ((x >> 4) % 8));
        }
        char name[32];
        snprintf(name, sizeof name, "Flip%d", i);
        put(sub, name, copy, len);
    }
    /* Garbage tables and a symlink loop. */
    static const char tab[] =
        "#x\nDE\t+1\tGood/Berlin\nXX,,,ZZ\tq\tGood/V1\n\t\t\n\n,\t\tNope\nNO\t\tBad/HugeCounts\nNO";
    put(dir, "zone1970.tab", tab, sizeof tab - 1);
    char link[600];
    snprintf(link, sizeof link, "%s/Loop", dir);
    assert_int_equal(symlink(".", link), 0);
    put(dir, "posixrules", ber, 10);

    char err[256];
    int level = vd_log_level;
    vd_log_level = VD_LOG_ERROR; /* hundreds of expected "skipped" warnings */
    vd_tzdb *db = vd_tzdb_open(dir, err, sizeof err);
    vd_log_level = level;
    if (!db)
        fail_msg("%s", err);
    const vd_tz *good = vd_tzdb_zone(db, VD_STR_LIT("Good/Berlin"));
    const vd_tz *v1z = vd_tzdb_zone(db, VD_STR_LIT("Good/V1"));
    assert_non_null(good);
    assert_non_null(v1z);
    assert_null(vd_tzdb_zone(db, VD_STR_LIT("Bad/HugeCounts")));
    assert_null(vd_tzdb_zone(db, VD_STR_LIT("Bad/BadFooter")));
    assert_null(vd_tzdb_zone(db, VD_STR_LIT("Bad/Trunc100")));
    assert_string_equal(vd_tz_name(vd_tzdb_country_zone(db, VD_STR_LIT("DE"))), "Good/Berlin");
    assert_string_equal(vd_tz_name(vd_tzdb_country_zone(db, VD_STR_LIT("ZZ"))), "Good/V1");
    assert_null(vd_tzdb_country_zone(db, VD_STR_LIT("NO")));
    /* UTC is always there. */
    assert_string_equal(vd_tz_name(vd_tzdb_utc(db)), "UTC");
    assert_non_null(vd_tzdb_zone(db, VD_STR_LIT("UTC")));
    /* The good zones answer like the system's. */
    const vd_tz *sys = vd_tzdb_zone(g_db, VD_STR_LIT("Europe/Berlin"));
    for (int64_t t = utc_of(1990, 1, 1); t < utc_of(2036, 1, 1); t += 86400 * 3 + 1) {
        vd_localtime a, b, c;
        vd_tz_localtime(sys, t, &a);
        vd_tz_localtime(good, t, &b);
        vd_tz_localtime(v1z, t, &c);
        assert_int_equal(a.utc_offset, b.utc_offset);
        assert_int_equal(a.next_transition, b.next_transition);
        assert_int_equal(a.utc_offset, c.utc_offset);
    }
    /* Whatever survived the flips must answer without crashing. */
    size_t flips = 0;
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "Bad/Flip%d", i);
        const vd_tz *z = vd_tzdb_zone(db, vd_str_make(name, strlen(name)));
        if (!z)
            continue;
        flips++;
        for (int64_t t = -INT64_C(5000000000); t < INT64_C(8000000000); t += 86400 * 97 + 13) {
            vd_localtime lt;
            vd_tz_localtime(z, t, &lt);
            assert_true(lt.next_transition > t);
            assert_true(lt.month >= 1 && lt.month <= 12 && lt.hour >= 0 && lt.hour < 24);
        }
    }
    printf("hostile dir: %zu zones loaded (%d truncations, 200 flipped files of which %zu parsed)\n",
           vd_tzdb_count(db), bad, flips);
    vd_tzdb_close(db);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);

    /* A directory with no zones at all is an error. */
    char empty[] = "/tmp/vd-tz-empty-XXXXXX";
    assert_non_null(mkdtemp(empty));
    assert_null(vd_tzdb_open(empty, err, sizeof err));
    assert_true(strlen(err) > 0);
    rmdir(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_names_and_countries),
        cmocka_unit_test(test_against_glibc),
        cmocka_unit_test(test_all_zones_coarse),
        cmocka_unit_test(test_posix_footers),
        cmocka_unit_test(test_hostile_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
