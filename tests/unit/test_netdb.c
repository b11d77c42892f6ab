/* test_netdb.c — net.asn / net.org and the anonymizer flags against
 * MaxMind's ASN and Anonymous-IP test databases and their expected answers;
 * databases of the wrong type and broken ones; net.* through the context. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"
#include "context/ip.h"
#include "context/netdb.h"
#include "testutil.h"

#define MAX_COLS 16

static int split_tabs(char *line, char **cols, int max)
{
    int n = 0;
    for (char *p = line;;) {
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

static int col(char **hdr, int nh, const char *name)
{
    for (int i = 0; i < nh; i++)
        if (strcmp(hdr[i], name) == 0)
            return i;
    return -1;
}

static vd_netdb *open_shared(const char *rel, vd_netdb_kind kind)
{
    char buf[4096], err[256];
    const char *path = vd_test_shared(rel, buf, sizeof buf);
    if (!path)
        return NULL;
    vd_netdb *db = vd_netdb_open(path, kind, err, sizeof err);
    if (!db)
        fail_msg("%s: %s", rel, err);
    return db;
}

/* Every row of the expected file: ip -> asn and org. */
static void test_asn_expected(void **state)
{
    (void)state;
    VD_NEED_SHARED(tsv, "data/geo/maxmind_geolite2_asn_test_expected.tsv");
    vd_netdb *db = open_shared("data/mmdb/GeoLite2-ASN-Test.mmdb", VD_NETDB_ASN);
    assert_non_null(db);
    FILE *f = fopen(tsv, "r");
    assert_non_null(f);
    char line[4096], *hdr[MAX_COLS], hline[4096];
    assert_non_null(fgets(hline, sizeof hline, f));
    hline[strcspn(hline, "\n")] = '\0';
    int nh = split_tabs(hline, hdr, MAX_COLS);
    int c_ip = col(hdr, nh, "ip"), c_asn = col(hdr, nh, "autonomous_system_number"),
        c_org = col(hdr, nh, "autonomous_system_organization");
    assert_true(c_ip >= 0 && c_asn >= 0 && c_org >= 0);
    unsigned rows = 0, with_org = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c[MAX_COLS];
        int n = split_tabs(line, c, MAX_COLS);
        assert_true(n > c_org);
        vd_ipaddr ip;
        assert_true(vd_ip_parse(vd_str_cstr(c[c_ip]), &ip));
        vd_net net;
        vd_net_lookup(db, NULL, &ip, &net);
        if (!net.has_asn)
            fail_msg("%s: no ASN, expected %s", c[c_ip], c[c_asn]);
        assert_int_equal(net.asn, strtoul(c[c_asn], NULL, 10));
        if (strcmp(net.org, c[c_org]) != 0)
            fail_msg("%s: org \"%s\", expected \"%s\"", c[c_ip], net.org, c[c_org]);
        assert_false(net.has_anon);
        with_org += c[c_org][0] != '\0';
        rows++;
    }
    fclose(f);
    assert_true(rows > 20);
    assert_true(with_org > 0);
    /* An address outside every network: no ASN. */
    vd_ipaddr ip;
    assert_true(vd_ip_parse(VD_STR_LIT("10.0.0.1"), &ip));
    vd_net net;
    vd_net_lookup(db, NULL, &ip, &net);
    assert_false(net.has_asn);
    vd_netdb_close(db);
}

static bool flag(const char *s)
{
    return strcmp(s, "true") == 0;
}

static void test_anonymous_expected(void **state)
{
    (void)state;
    VD_NEED_SHARED(tsv, "data/geo/maxmind_geoip2_anonymous_ip_test_expected.tsv");
    vd_netdb *db = open_shared("data/mmdb/GeoIP2-Anonymous-IP-Test.mmdb", VD_NETDB_ANONYMOUS);
    assert_non_null(db);
    FILE *f = fopen(tsv, "r");
    assert_non_null(f);
    char line[4096], *hdr[MAX_COLS], hline[4096];
    assert_non_null(fgets(hline, sizeof hline, f));
    hline[strcspn(hline, "\n")] = '\0';
    int nh = split_tabs(hline, hdr, MAX_COLS);
    int c_ip = col(hdr, nh, "ip"), c_an = col(hdr, nh, "is_anonymous"),
        c_vpn = col(hdr, nh, "is_anonymous_vpn"), c_host = col(hdr, nh, "is_hosting_provider"),
        c_tor = col(hdr, nh, "is_tor_exit_node"), c_pp = col(hdr, nh, "is_public_proxy"),
        c_rp = col(hdr, nh, "is_residential_proxy");
    assert_true(c_ip >= 0 && c_an >= 0 && c_vpn >= 0 && c_host >= 0 && c_tor >= 0 && c_pp >= 0 &&
                c_rp >= 0);
    unsigned rows = 0, vpn = 0, hosting = 0, tor = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c[MAX_COLS];
        int n = split_tabs(line, c, MAX_COLS);
        assert_true(n > c_rp && n > c_tor);
        vd_ipaddr ip;
        assert_true(vd_ip_parse(vd_str_cstr(c[c_ip]), &ip));
        vd_net net;
        vd_net_lookup(NULL, db, &ip, &net);
        assert_true(net.has_anon);
        assert_false(net.has_asn);
        if (net.anonymous != flag(c[c_an]) || net.vpn != flag(c[c_vpn]) ||
            net.hosting != flag(c[c_host]) || net.tor != flag(c[c_tor]) ||
            net.public_proxy != flag(c[c_pp]) || net.residential_proxy != flag(c[c_rp]))
            fail_msg("%s: flags differ from the expected row", c[c_ip]);
        vpn += net.vpn;
        hosting += net.hosting;
        tor += net.tor;
        rows++;
    }
    fclose(f);
    assert_true(rows > 5 && vpn > 0 && hosting > 0 && tor > 0);
    /* Not in the database: every flag false, and still present. */
    vd_ipaddr ip;
    assert_true(vd_ip_parse(VD_STR_LIT("192.0.2.1"), &ip));
    vd_net net;
    vd_net_lookup(NULL, db, &ip, &net);
    assert_true(net.has_anon);
    assert_false(net.anonymous || net.vpn || net.hosting || net.tor);
    vd_netdb_close(db);
}

/* A database of another type is refused, naming what was expected. */
static void test_wrong_type(void **state)
{
    (void)state;
    VD_NEED_SHARED(dir, "data/mmdb");
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/GeoIP2-Anonymous-IP-Test.mmdb", dir);
    assert_null(vd_netdb_open(path, VD_NETDB_ASN, err, sizeof err));
    assert_non_null(strstr(err, "GeoIP2-Anonymous-IP"));
    assert_non_null(strstr(err, "not an ASN database"));
    snprintf(path, sizeof path, "%s/GeoLite2-ASN-Test.mmdb", dir);
    assert_null(vd_netdb_open(path, VD_NETDB_ANONYMOUS, err, sizeof err));
    assert_non_null(strstr(err, "not an Anonymous-IP database"));
    snprintf(path, sizeof path, "%s/GeoIP2-City-Test.mmdb", dir);
    assert_null(vd_netdb_open(path, VD_NETDB_ASN, err, sizeof err));
    assert_null(vd_netdb_open("/nonexistent.mmdb", VD_NETDB_ASN, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent.mmdb"));
}

/* Broken files: refused at open (none of them is an ASN database), never a crash. */
static void test_broken(void **state)
{
    (void)state;
    VD_NEED_SHARED(dir, "data/mmdb/broken");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    unsigned n = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".mmdb"))
            continue;
        char path[4400], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        for (int k = 0; k < 2; k++) {
            vd_netdb *db = vd_netdb_open(path, k ? VD_NETDB_ANONYMOUS : VD_NETDB_ASN, err, sizeof err);
            if (db) {                    /* if one opens, lookups stay safe */
                vd_ipaddr ip;
                assert_true(vd_ip_parse(VD_STR_LIT("1.1.1.1"), &ip));
                vd_net net;
                vd_net_lookup(db, db, &ip, &net);
                vd_netdb_close(db);
            }
        }
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

/* Through the context: present with the databases, missing without. */
static void test_context(void **state)
{
    (void)state;
    vd_netdb *asn = open_shared("data/mmdb/GeoLite2-ASN-Test.mmdb", VD_NETDB_ASN);
    vd_netdb *anon = open_shared("data/mmdb/GeoIP2-Anonymous-IP-Test.mmdb", VD_NETDB_ANONYMOUS);
    if (!asn || !anon) {
        vd_netdb_close(asn);
        vd_netdb_close(anon);
        printf("skipped: corpus not present\n");
        skip();
    }
    vd_request req;
    memset(&req, 0, sizeof req);
    req.ip = VD_STR_LIT("81.2.69.1");      /* anonymous, VPN, hosting, Tor in the test DB */
    vd_env env = { .asn = asn, .anon = anon };
    vd_context ctx;
    vd_attr_ref ref;
    vd_value v;
    vd_context_init(&ctx, &req, &env, NULL, 0);
    assert_true(vd_attr_resolve(VD_STR_LIT("net.vpn"), &ref));
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_BOOL);
    assert_true(v.u.b);
    assert_true(vd_attr_resolve(VD_STR_LIT("net.tor"), &ref));
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_BOOL);
    assert_true(v.u.b);
    /* 81.2.69.1 has no ASN in the ASN test DB: missing, not 0. */
    assert_true(vd_attr_resolve(VD_STR_LIT("net.asn"), &ref));
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_MISSING);

    req.ip = VD_STR_LIT("1.128.0.1");      /* AS1221 Telstra */
    vd_context_init(&ctx, &req, &env, NULL, 0);
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_NUM);
    assert_int_equal((long)v.u.num, 1221);
    assert_true(vd_attr_resolve(VD_STR_LIT("net.org"), &ref));
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_STR);
    assert_true(vd_str_eq(v.u.s, VD_STR_LIT("Telstra Pty Ltd")));
    assert_true(vd_attr_resolve(VD_STR_LIT("net.hosting"), &ref));
    vd_context_get(&ctx, &ref, &v);
    assert_int_equal(v.kind, VD_VAL_BOOL);
    assert_false(v.u.b);

    /* No databases configured: every net.* attribute is missing. */
    vd_env none = { 0 };
    vd_context_init(&ctx, &req, &none, NULL, 0);
    static const char *const names[] = { "net.asn", "net.org", "net.anonymous", "net.vpn",
                                         "net.hosting", "net.tor" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_true(vd_attr_resolve(vd_str_cstr(names[i]), &ref));
        vd_context_get(&ctx, &ref, &v);
        assert_int_equal(v.kind, VD_VAL_MISSING);
    }
    vd_netdb_close(asn);
    vd_netdb_close(anon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asn_expected),
        cmocka_unit_test(test_anonymous_expected),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
