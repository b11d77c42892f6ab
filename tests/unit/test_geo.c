/* test_geo.c — geo lookups against MaxMind's test databases and their
 * expected answers, the broken databases, and the demo database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/geo.h"
#include "context/ip.h"
#include "testutil.h"

#define MAX_COLS 32

static int split_tabs(char *line, char **cols, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return n;
        cols[n++] = p;
        char *t = strchr(p, '\t');
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static int col_index(char **hdr, int nh, const char *name)
{
    for (int i = 0; i < nh; i++)
        if (strcmp(hdr[i], name) == 0)
            return i;
    return -1;
}

typedef struct db_cache {
    char name[128];
    vd_geo_db *db;
} db_cache;

static vd_geo_db *cached_open(db_cache *cache, size_t cap, const char *mmdb_dir, const char *name)
{
    for (size_t i = 0; i < cap; i++) {
        if (cache[i].db && strcmp(cache[i].name, name) == 0)
            return cache[i].db;
        if (!cache[i].db) {
            char path[4096], err[256];
            snprintf(path, sizeof path, "%.3000s/%.200s", mmdb_dir, name);
            cache[i].db = vd_geo_open(path, err, sizeof err);
            if (!cache[i].db)
                fail_msg("open %s: %s", path, err);
            snprintf(cache[i].name, sizeof cache[i].name, "%.120s", name);
            printf("  opened %s\n", vd_geo_describe(cache[i].db));
            return cache[i].db;
        }
    }
    fail_msg("too many databases");
    return NULL;
}

static void check_str(const char *file, int line, const char *ip, const char *what,
                      const char *got, char **cols, int idx)
{
    if (idx < 0)
        return;
    if (strcmp(got, cols[idx]) != 0)
        fail_msg("%s:%d %s: %s = '%s', expected '%s'", file, line, ip, what, got, cols[idx]);
}

static vd_geo_cache *tiny_cache;

static bool same_geo(const vd_geo *a, const vd_geo *b)
{
    return a->found == b->found && !strcmp(a->country, b->country) &&
           !strcmp(a->continent, b->continent) && !strcmp(a->region, b->region) &&
           !strcmp(a->city, b->city) && !strcmp(a->postal, b->postal) &&
           !strcmp(a->timezone, b->timezone) && a->has_location == b->has_location &&
           a->lat == b->lat && a->lon == b->lon && a->eu == b->eu;
}

static size_t check_file(const char *tsv, const char *mmdb_dir)
{
    FILE *f = fopen(tsv, "r");
    assert_non_null(f);
    char line[4096], hdrline[4096];
    char *hdr[MAX_COLS], *cols[MAX_COLS];
    assert_non_null(fgets(hdrline, sizeof hdrline, f));
    hdrline[strcspn(hdrline, "\r\n")] = '\0';
    int nh = split_tabs(hdrline, hdr, MAX_COLS);
    int c_ip = col_index(hdr, nh, "ip"), c_db = col_index(hdr, nh, "mmdb_file");
    int c_cont = col_index(hdr, nh, "continent_code"), c_cc = col_index(hdr, nh, "country_iso_code");
    int c_reg = col_index(hdr, nh, "subdivision_1_iso_code"), c_city = col_index(hdr, nh, "city_name_en");
    int c_post = col_index(hdr, nh, "postal_code"), c_tz = col_index(hdr, nh, "time_zone");
    int c_lat = col_index(hdr, nh, "latitude"), c_lon = col_index(hdr, nh, "longitude");
    assert_true(c_ip >= 0 && c_db >= 0 && c_cont >= 0 && c_cc >= 0);
    db_cache cache[8];
    memset(cache, 0, sizeof cache);
    size_t rows = 0;
    int lineno = 1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        int n = split_tabs(line, cols, MAX_COLS);
        assert_int_equal(n, nh);
        vd_geo_db *db = cached_open(cache, 8, mmdb_dir, cols[c_db]);
        vd_ipaddr ip;
        if (!vd_ip_parse(vd_str_make(cols[c_ip], strlen(cols[c_ip])), &ip))
            fail_msg("%s:%d: cannot parse ip %s", tsv, lineno, cols[c_ip]);
        vd_geo g;
        if (!vd_geo_lookup(db, &ip, &g))
            fail_msg("%s:%d: %s not found", tsv, lineno, cols[c_ip]);
        /* The record cache answers the same, twice (a miss, then usually a
         * hit), though its two entries are shared by every database here. */
        for (int k = 0; k < 2; k++) {
            vd_geo cg;
            assert_true(vd_geo_lookup_cached(db, tiny_cache, &ip, &cg));
            if (!same_geo(&g, &cg))
                fail_msg("%s:%d: %s: cached record differs", tsv, lineno, cols[c_ip]);
        }
        const char *ipt = cols[c_ip];
        check_str(tsv, lineno, ipt, "continent", g.continent, cols, c_cont);
        check_str(tsv, lineno, ipt, "country", g.country, cols, c_cc);
        check_str(tsv, lineno, ipt, "region", g.region, cols, c_reg);
        check_str(tsv, lineno, ipt, "city", g.city, cols, c_city);
        check_str(tsv, lineno, ipt, "postal", g.postal, cols, c_post);
        check_str(tsv, lineno, ipt, "timezone", g.timezone, cols, c_tz);
        if (c_lat >= 0 && c_lon >= 0) {
            if (cols[c_lat][0]) {
                if (!g.has_location)
                    fail_msg("%s:%d %s: no location", tsv, lineno, ipt);
                assert_true(fabs(g.lat - strtod(cols[c_lat], NULL)) < 1e-4);
                assert_true(fabs(g.lon - strtod(cols[c_lon], NULL)) < 1e-4);
            } else {
                assert_false(g.has_location);
            }
        }
        /* EU flag: consistent with the country (derived or from the DB). */
        if (strcmp(g.country, "DE") == 0 || strcmp(g.country, "SE") == 0)
            assert_int_equal(g.eu, 1);
        if (strcmp(g.country, "US") == 0 || strcmp(g.country, "GB") == 0)
            assert_int_equal(g.eu, 0);
        if (!g.country[0])
            assert_int_equal(g.eu, -1);
        rows++;
    }
    fclose(f);
    for (size_t i = 0; i < 8; i++)
        vd_geo_close(cache[i].db);
    printf("  %s: %zu rows checked\n", tsv, rows);
    assert_true(rows > 50);
    return rows;
}

static void test_maxmind_expected(void **state)
{
    (void)state;
    VD_NEED_SHARED(mmdb, "data/mmdb");
    static const char *files[] = {
        "data/geo/maxmind_geoip2_city_test_expected.tsv",
        "data/geo/maxmind_geolite2_city_test_expected.tsv",
        "data/geo/maxmind_geoip2_country_test_expected.tsv",
    };
    size_t total = 0;
    tiny_cache = vd_geo_cache_new(2);
    assert_non_null(tiny_cache);
    for (size_t i = 0; i < 3; i++) {
        VD_NEED_SHARED(tsv, files[i]);
        total += check_file(tsv, mmdb);
    }
    uint64_t hits, misses;
    vd_geo_cache_stats(tiny_cache, &hits, &misses);
    vd_geo_cache_free(tiny_cache);
    printf("geo: %zu expected rows checked; record cache %llu hits, %llu misses\n", total,
           (unsigned long long)hits, (unsigned long long)misses);
    assert_true(hits >= total / 2 && misses > 0);
}

static void test_other_good_dbs(void **state)
{
    (void)state;
    VD_NEED_SHARED(v4, "data/mmdb/MaxMind-DB-test-ipv4-24.mmdb");
    char err[256];
    vd_geo_db *db = vd_geo_open(v4, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    vd_ipaddr ip;
    vd_geo g;
    /* IPv6 address in an IPv4-only tree: not found, no error. */
    assert_true(vd_ip_parse(VD_STR_LIT("2001:db8::1"), &ip));
    assert_false(vd_geo_lookup(db, &ip, &g));
    assert_int_equal(g.eu, -1);
    /* 1.1.1.1 is in that DB (a record with only an "ip" key): found, no fields. */
    assert_true(vd_ip_parse(VD_STR_LIT("1.1.1.1"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "");
    vd_geo_close(db);

    /* Every good city or country test database opens (and the lookup-test
     * databases of type "Test"); an ASN or Anonymous-IP database has no
     * country or city data and is refused with a message saying so. */
    static const char *other_kind[] = { "GeoIP2-Anonymous-IP-Test.mmdb", "GeoLite2-ASN-Test.mmdb" };
    for (size_t i = 0; i < sizeof other_kind / sizeof other_kind[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "data/mmdb/%s", other_kind[i]);
        VD_NEED_SHARED(path, rel);
        assert_null(vd_geo_open(path, err, sizeof err));
        assert_non_null(strstr(err, "no country or city data"));
    }
    static const char *good[] = {
        "GeoIP2-City-Test.mmdb", "GeoIP2-Country-Test.mmdb",
        "GeoLite2-City-Test.mmdb", "GeoLite2-Country-Test.mmdb",
        "MaxMind-DB-no-ipv4-search-tree.mmdb", "MaxMind-DB-test-ipv4-24.mmdb",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "data/mmdb/%s", good[i]);
        VD_NEED_SHARED(path, rel);
        vd_geo_db *g2 = vd_geo_open(path, err, sizeof err);
        if (!g2)
            fail_msg("%s", err);
        printf("  good: %s\n", vd_geo_describe(g2));
        vd_geo_close(g2);
    }
    /* Errors come back as messages. */
    assert_null(vd_geo_open("/nonexistent/x.mmdb", err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_null(vd_geo_open("/etc/hostname", err, sizeof err));
    assert_true(strlen(err) > 0);
}

static void test_broken_dbs(void **state)
{
    (void)state;
    VD_NEED_SHARED(dir, "data/mmdb/broken");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0, rejected = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".mmdb"))
            continue;
        files++;
        char path[4096], err[256] = "";
        snprintf(path, sizeof path, "%.3000s/%.255s", dir, de->d_name);
        vd_geo_db *db = vd_geo_open(path, err, sizeof err);
        if (!db) {
            assert_true(strlen(err) > 0);
            printf("  rejected: %s\n", err);
            rejected++;
            continue;
        }
        printf("  opened (degrades): %s: %s\n", de->d_name, vd_geo_describe(db));
        uint32_t x = 12345;
        int found = 0;
        for (int i = 0; i < 1000; i++) {
            vd_ipaddr ip = { 0 };
            ip.family = (i & 1) ? 6 : 4;
            for (int k = 0; k < 16; k++) {
                x = x * 1103515245u + 12345u;
                ip.addr[k] = (uint8_t)(x >> 16);
            }
            if (i % 10 == 0 && ip.family == 4)
                ip.addr[0] = (uint8_t)(i / 10); /* low first octets where test data lives */
            vd_geo g;
            found += vd_geo_lookup(db, &ip, &g);
            assert_true(strlen(g.country) < sizeof g.country);
            assert_true(strlen(g.city) < sizeof g.city);
        }
        printf("    1000 lookups, %d found\n", found);
        vd_geo_close(db);
    }
    closedir(d);
    printf("broken DBs: %d files, %d rejected at open\n", files, rejected);
    assert_true(files >= 6);
    /* The sanity probe (full node scan + data walk) catches all of today's. */
    assert_int_equal(rejected, files);
}

/* The flat ip-location-db / DB-IP-lite layout, written on the fly with
 * Debian's libmaxmind-db-writer-perl (skipped if it is not installed). */
static const char k_flat_pl[] =
    "use strict; use MaxMind::DB::Writer::Tree;\n"
    "my %t = (country_code=>'utf8_string', state1=>'utf8_string', city=>'utf8_string',\n"
    "  postcode=>'utf8_string', region_code=>'utf8_string', latitude=>'float', longitude=>'double', timezone=>'utf8_string');\n"
    "my $tree = MaxMind::DB::Writer::Tree->new(ip_version=>6, record_size=>24,\n"
    "  database_type=>'ip-location-db-city', languages=>['en'], description=>{en=>'flat'},\n"
    "  alias_ipv6_to_ipv4=>1, remove_reserved_networks=>0,\n"
    "  map_key_type_callback=>sub { $t{$_[0]} or die \"type $_[0]\" });\n"
    "$tree->insert_network('1.0.0.0/24', {country_code=>'de', state1=>'Berlin', city=>'Berlin',\n"
    "  postcode=>'10115', latitude=>52.52, longitude=>13.405, timezone=>'Europe/Berlin'});\n"
    "$tree->insert_network('2.0.0.0/24', {country_code=>'US', city=>\"A very long city name that goes on and on, beyond the field si\\x{e9}ze\", "
    "timezone=>'Bad Zone'});\n"
    "$tree->insert_network('2001:db8::/32', {country_code=>'XK', region_code=>'07'});\n"
    "$tree->insert_network('3.0.0.0/24', {country_code=>'DEU', region_code=>'TOOLONGXX'});\n"
    "open my $fh, '>:raw', $ARGV[0] or die; $tree->write_tree($fh); close $fh or die;\n";

static void test_flat_layout(void **state)
{
    (void)state;
    char dir[] = "/tmp/vd-geo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pl[64], db_path[64], cmd[256];
    snprintf(pl, sizeof pl, "%s/flat.pl", dir);
    snprintf(db_path, sizeof db_path, "%s/flat.mmdb", dir);
    FILE *f = fopen(pl, "w");
    assert_non_null(f);
    fputs(k_flat_pl, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "perl %s %s 2>/dev/null", pl, db_path);
    if (system(cmd) != 0) {
        printf("skipped: MaxMind::DB::Writer not available\n");
        unlink(pl);
        rmdir(dir);
        skip();
    }
    char err[256];
    vd_geo_db *db = vd_geo_open(db_path, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    assert_non_null(strstr(vd_geo_describe(db), "flat"));
    vd_ipaddr ip;
    vd_geo g;
    assert_true(vd_ip_parse(VD_STR_LIT("1.0.0.1"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "DE");     /* upper-cased */
    assert_string_equal(g.continent, "EU");   /* derived */
    assert_int_equal(g.eu, 1);                /* derived */
    assert_string_equal(g.city, "Berlin");
    assert_string_equal(g.postal, "10115");
    assert_string_equal(g.timezone, "Europe/Berlin");
    assert_string_equal(g.region, "");        /* state1 is a name, not a code */
    assert_true(g.has_location);
    assert_true(fabs(g.lat - 52.52) < 1e-4 && fabs(g.lon - 13.405) < 1e-9);
    assert_true(vd_ip_parse(VD_STR_LIT("2.0.0.9"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.continent, "NA");
    assert_int_equal(g.eu, 0);
    assert_string_equal(g.timezone, "");      /* not an IANA name */
    assert_int_equal(strlen(g.city), 62);     /* cut before a split UTF-8 sequence */
    assert_string_equal(g.city, "A very long city name that goes on and on, beyond the field si");
    assert_false(g.has_location);
    assert_true(vd_ip_parse(VD_STR_LIT("2001:db8::7"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "XK");
    assert_string_equal(g.continent, "EU");
    assert_string_equal(g.region, "07");
    assert_int_equal(g.eu, 0);
    /* Codes that do not fit are dropped, not truncated ("DEU" is not "DE"). */
    assert_true(vd_ip_parse(VD_STR_LIT("3.0.0.1"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "");
    assert_string_equal(g.continent, "");
    assert_string_equal(g.region, "");
    assert_int_equal(g.eu, -1);
    vd_geo_close(db);
    unlink(pl);
    unlink(db_path);
    rmdir(dir);
}

static const char *demo_db(void)
{
    static const char *cands[] = { "build/demo-city.mmdb", "build-asan/demo-city.mmdb" };
    for (size_t i = 0; i < 2; i++)
        if (access(cands[i], R_OK) == 0)
            return cands[i];
    return NULL;
}

static void test_demo_db(void **state)
{
    (void)state;
    const char *path = demo_db();
    if (!path) {
        printf("skipped: build/demo-city.mmdb not built (make build/demo-city.mmdb)\n");
        skip();
    }
    char err[256];
    vd_geo_db *db = vd_geo_open(path, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    vd_ipaddr ip;
    vd_geo g;
    assert_true(vd_ip_parse(VD_STR_LIT("1.0.0.7"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "DE");
    assert_string_equal(g.continent, "EU");
    assert_string_equal(g.region, "BE");
    assert_string_equal(g.city, "Berlin");
    assert_string_equal(g.postal, "10115");
    assert_string_equal(g.timezone, "Europe/Berlin");
    assert_int_equal(g.eu, 1);
    assert_true(g.has_location);
    assert_true(fabs(g.lat - 52.52) < 1e-6 && fabs(g.lon - 13.405) < 1e-6);

    assert_true(vd_ip_parse(VD_STR_LIT("::ffff:1.0.0.200"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.city, "Berlin");

    assert_true(vd_ip_parse(VD_STR_LIT("17.0.0.1"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "NZ");
    assert_string_equal(g.continent, "OC");
    assert_string_equal(g.timezone, "");
    assert_string_equal(g.city, "");
    assert_false(g.has_location);
    assert_int_equal(g.eu, 0);

    assert_true(vd_ip_parse(VD_STR_LIT("2.0.0.1"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "US");
    assert_string_equal(g.timezone, "America/New_York");
    assert_true(g.lon < -74.0);
    assert_int_equal(g.eu, 0);

    assert_true(vd_ip_parse(VD_STR_LIT("2001:db8:1::5"), &ip));
    assert_true(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.city, "Munich");
    assert_string_equal(g.region, "BY");
    assert_int_equal(g.eu, 1);

    assert_true(vd_ip_parse(VD_STR_LIT("10.0.0.1"), &ip));
    assert_false(vd_geo_lookup(db, &ip, &g));
    assert_string_equal(g.country, "");
    assert_int_equal(g.eu, -1);
    assert_true(vd_ip_parse(VD_STR_LIT("2001:db8:3::1"), &ip));
    assert_false(vd_geo_lookup(db, &ip, &g));
    vd_ipaddr none = { 0 };
    assert_false(vd_geo_lookup(db, &none, &g));
    assert_non_null(strstr(vd_geo_describe(db), "GeoIP2-City"));
    vd_geo_close(db);
}

/* Every address of the networks below, through caches of 4,096 and of one
 * entry (each lookup evicts the last), upwards and downwards: the same
 * answer as the uncached lookup. The test databases split some /24s into
 * smaller networks of different cities (81.2.69.142/31, .144/28, .160/27,
 * .192/28 in GeoIP2-City-Test), which a network entry must not cover; it
 * covers the demo database's /24s and the /48s. */
static void check_net_cache(const char *path, size_t *distinct_in_24, uint64_t *net_hits)
{
    char err[256];
    vd_geo_db *db = vd_geo_open(path, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    static const uint8_t v4[][3] = {
        { 81, 2, 69 }, { 89, 160, 20 }, { 2, 125, 160 }, { 216, 160, 83 }, { 67, 43, 156 },
        { 175, 16, 199 }, { 1, 1, 1 }, { 1, 0, 0 }, { 13, 0, 0 }, { 17, 0, 0 }, { 10, 0, 0 },
        { 202, 196, 224 }, { 50, 114, 0 }, { 149, 101, 100 },
    };
    static const char *const v6[] = {
        "2001:218::", "2001:220::", "2001:230::", "2001:480::", "2a02:cf40::", "2a02:d280::",
        "2001:db8:1::", "2001:db8:2::", "::ffff:81.2.69.0", "2c0f:ff00::", "2001:252::",
    };
    size_t sizes[] = { 4096, 1 };
    for (size_t z = 0; z < 2; z++) {
        vd_geo_cache *c = vd_geo_cache_new(sizes[z]);
        assert_non_null(c);
        for (int dir = 0; dir < 2; dir++) {
            for (size_t n = 0; n < sizeof v4 / sizeof v4[0]; n++) {
                vd_geo first;
                bool differs = false;
                for (int k = 0; k < 256; k++) {
                    vd_ipaddr ip = { 0 };
                    ip.family = 4;
                    memcpy(ip.addr, v4[n], 3);
                    ip.addr[3] = (uint8_t)(dir ? 255 - k : k);
                    vd_geo want, got;
                    vd_geo_lookup(db, &ip, &want);
                    vd_geo_lookup_cached(db, c, &ip, &got);
                    if (!same_geo(&want, &got))
                        fail_msg("%s: %u.%u.%u.%u: cached answer differs (%s/%s vs %s/%s)", path,
                                 ip.addr[0], ip.addr[1], ip.addr[2], ip.addr[3], got.country,
                                 got.city, want.country, want.city);
                    if (k == 0)
                        first = want;
                    else if (!same_geo(&first, &want))
                        differs = true;
                }
                *distinct_in_24 += differs;
            }
            for (size_t n = 0; n < sizeof v6 / sizeof v6[0]; n++) {
                vd_ipaddr base;
                assert_true(vd_ip_parse(vd_str_cstr(v6[n]), &base));
                for (int k = 0; k < 512; k++) {
                    vd_ipaddr ip = base;
                    int kk = dir ? 511 - k : k;
                    /* bits inside the /48, and the last bytes of the /48 itself */
                    ip.addr[6 + (kk % 10)] ^= (uint8_t)(1u << (kk % 8));
                    ip.addr[15] ^= (uint8_t)kk;
                    if (kk >= 256)
                        ip.addr[5] ^= (uint8_t)(kk & 7);
                    vd_geo want, got;
                    vd_geo_lookup(db, &ip, &want);
                    vd_geo_lookup_cached(db, c, &ip, &got);
                    if (!same_geo(&want, &got))
                        fail_msg("%s: %s + %d: cached answer differs", path, v6[n], kk);
                }
            }
        }
        uint64_t h, m;
        vd_geo_cache_net_stats(c, &h, &m);
        *net_hits += h;
        vd_geo_cache_free(c);
    }
    vd_geo_close(db);
}

static void test_network_cache_exact(void **state)
{
    (void)state;
    size_t distinct = 0;
    uint64_t hits = 0;
    static const char *const dbs[] = {
        "data/mmdb/GeoIP2-City-Test.mmdb", "data/mmdb/GeoLite2-City-Test.mmdb",
        "data/mmdb/GeoIP2-Country-Test.mmdb", "data/mmdb/MaxMind-DB-no-ipv4-search-tree.mmdb",
        "data/mmdb/MaxMind-DB-test-ipv4-24.mmdb",
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        VD_NEED_SHARED(path, dbs[i]);
        check_net_cache(path, &distinct, &hits);
    }
    if (demo_db())
        check_net_cache(demo_db(), &distinct, &hits);
    printf("network cache: %llu hits; %zu /24s holding several answers\n",
           (unsigned long long)hits, distinct);
    assert_true(distinct >= 2);      /* the test reaches networks smaller than a /24 */
    assert_true(hits > 10000);       /* and the cache answers for the larger ones */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxmind_expected),
        cmocka_unit_test(test_other_good_dbs),
        cmocka_unit_test(test_broken_dbs),
        cmocka_unit_test(test_flat_layout),
        cmocka_unit_test(test_demo_db),
        cmocka_unit_test(test_network_cache_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
