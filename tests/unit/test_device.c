/* test_device.c — User-Agent classifier and its verdict cache. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/device.h"
#include "testutil.h"

typedef struct ua_case {
    const char *ua;
    vd_device_type type;
    const char *os;        /* NULL = must be NULL */
    const char *browser;   /* NULL = must be NULL */
} ua_case;

static const char *show(const char *s) { return s ? s : "(null)"; }

static void check_case(const ua_case *c)
{
    vd_device d;
    vd_device_classify(vd_str_cstr(c->ua), &d);
    if (d.type != c->type || (c->os == NULL) != (d.os == NULL) ||
        (c->os && strcmp(c->os, d.os) != 0) || (c->browser == NULL) != (d.browser == NULL) ||
        (c->browser && strcmp(c->browser, d.browser) != 0))
        fail_msg("%s\n  want %s/%s/%s, got %s/%s/%s", c->ua, vd_device_type_name(c->type),
                 show(c->os), show(c->browser), vd_device_type_name(d.type), show(d.os),
                 show(d.browser));
}

static void check_cases(const ua_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_case(&cases[i]);
}

#define CHECK_CASES(arr) check_cases((arr), sizeof(arr) / sizeof((arr)[0]))

static void test_phones(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        { "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
          VD_DEVICE_MOBILE, "iOS", "Safari" },
        { "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/116.0.0.0 Mobile Safari/537.36",
          VD_DEVICE_MOBILE, "Android", "Chrome" },
        { "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
          VD_DEVICE_MOBILE, "Android", "Internet Explorer" },   /* Edge: IE family */
        { "Mozilla/5.0 (Android 12; Mobile; rv:109.0) Gecko/113.0 Firefox/113.0",
          VD_DEVICE_MOBILE, "Android", "Firefox" },
        { "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; HTC Sensation Build/IML74K) "
          "AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
          VD_DEVICE_MOBILE, "Android", "Android Browser" },
        { "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; "
          "ARM; Touch; NOKIA; Lumia 920)",
          VD_DEVICE_MOBILE, "Windows Mobile", "Internet Explorer" },
        { "Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1",
          VD_DEVICE_MOBILE, "Real-time OS", NULL },
        { "Dalvik/2.1.0 (Linux; U; Android 10; RMX2086 Build/QKQ1.191021.002)",
          VD_DEVICE_MOBILE, "Android", "Android Browser" },      /* app UA: no "Mobile" */
    };
    CHECK_CASES(cases);
}

static void test_tablets(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        { "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
          VD_DEVICE_TABLET, "iOS", "Safari" },
        /* Same maker and browser as the phone above, without "Mobile". */
        { "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/116.0.0.0 Safari/537.36",
          VD_DEVICE_TABLET, "Android", "Chrome" },
        { "Mozilla/5.0 (Linux; Android 11; Lenovo YT-J706F) AppleWebKit/537.36 (KHTML, like "
          "Gecko) Chrome/110.0.0.0 Safari/537.36",
          VD_DEVICE_TABLET, "Android", "Chrome" },
        /* A tablet that says "Mobile" is known by its model code. */
        { "Mozilla/5.0 (Linux; Android 10; AGS3-W09) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/110.0.0.0 Mobile Safari/537.36",
          VD_DEVICE_TABLET, "Android", "Chrome" },
        /* Kindle Fire (device-detector counts it as a tablet). */
        { "Mozilla/5.0 (Linux; Android 9; KFMAWI) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
          VD_DEVICE_TABLET, "Android", "Chrome" },
    };
    CHECK_CASES(cases);
}

static void test_desktops(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36",
          VD_DEVICE_DESKTOP, "Windows", "Chrome" },
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
          VD_DEVICE_DESKTOP, "Windows", "Internet Explorer" },
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
          VD_DEVICE_DESKTOP, "Windows", "Firefox" },
        { "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
          VD_DEVICE_DESKTOP, "Windows", "Internet Explorer" },
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
          VD_DEVICE_DESKTOP, "Windows", "Opera" },
        { "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/17.1 Safari/605.1.15",
          VD_DEVICE_DESKTOP, "Mac", "Safari" },
        { "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
          VD_DEVICE_DESKTOP, "GNU/Linux", "Firefox" },
        { "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36",
          VD_DEVICE_DESKTOP, "Chrome OS", "Chrome" },
        /* Android on a laptop. */
        { "Mozilla/5.0 (Linux; Android 9; HP Chromebook 13 G1) AppleWebKit/537.36 (KHTML, like "
          "Gecko) Chrome/80.0.3987.162 Safari/537.36",
          VD_DEVICE_DESKTOP, "Chrome OS", "Chrome" },
    };
    CHECK_CASES(cases);
}

static void test_bots(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        { "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
          VD_DEVICE_BOT, NULL, NULL },
        /* Googlebot smartphone borrows a phone UA: the bot word wins. */
        { "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
          "like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
          "+http://www.google.com/bot.html)",
          VD_DEVICE_BOT, NULL, NULL },
        { "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
          VD_DEVICE_BOT, NULL, NULL },
        { "curl/8.4.0", VD_DEVICE_BOT, NULL, NULL },
        { "python-requests/2.31.0", VD_DEVICE_BOT, NULL, NULL },
        { "Go-http-client/1.1", VD_DEVICE_BOT, NULL, NULL },
        { "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "HeadlessChrome/120.0.6099.28 Safari/537.36",
          VD_DEVICE_BOT, NULL, NULL },
        { "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
          VD_DEVICE_BOT, NULL, NULL },
        /* A UA naming no platform at all is a tool. */
        { "nvdorz", VD_DEVICE_BOT, NULL, NULL },
    };
    CHECK_CASES(cases);
    /* Not bots although they contain "bot": Cubot is a phone brand. */
    static const ua_case not_bots[] = {
        { "Mozilla/5.0 (Linux; Android 8.1.0; CUBOT J3 PRO) AppleWebKit/537.36 (KHTML, like "
          "Gecko) Chrome/91.0.4472.120 Mobile Safari/537.36",
          VD_DEVICE_MOBILE, "Android", "Chrome" },
    };
    CHECK_CASES(not_bots);
}

static void test_other_devices(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        { "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
          "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
          VD_DEVICE_OTHER, "Other Mobile", "Chrome" },
        { "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/87.0.4280.88 Safari/537.36 WebAppManager",
          VD_DEVICE_OTHER, "Other Mobile", "Chrome" },
        { "Mozilla/5.0 (Linux; Android 11; 43LF7130S Build/RP1A.200720.011; wv) "
          "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0 Safari/537.36",
          VD_DEVICE_OTHER, "Android", "Chrome" },         /* TV known by its panel size */
        { "Mozilla/5.0 (Linux; Android 9; AFTKA) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Silk/98.4.2 like Chrome/98.0.4758.136 Safari/537.36",
          VD_DEVICE_OTHER, "Android", "Chrome" },         /* Fire TV, not a Kindle tablet */
        { "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/13.0 Safari/605.1.15",
          VD_DEVICE_OTHER, "Gaming Console", "Safari" },
        { "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, "
          "like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
          VD_DEVICE_OTHER, "Windows", "Internet Explorer" },
        { "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
          VD_DEVICE_OTHER, "iOS", "Safari" },
        { "Mozilla/5.0 (Linux; Android 11; SM-R870) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/112.0.0.0 Mobile Safari/537.36",
          VD_DEVICE_OTHER, "Android", "Chrome" },         /* Galaxy Watch */
        { "Amazon;Echo_Dot_with_clock;27d4dfe427b34d57995b463e5d63198d;;tpapi;3.199.422",
          VD_DEVICE_OTHER, NULL, NULL },
    };
    CHECK_CASES(cases);
}

/* Model-name evidence. Synthetic UAs (model codes made up along each rule),
 * each next to a near miss the rule must leave alone. */
typedef struct type_case {
    const char *ua;
    vd_device_type type;
} type_case;

static void check_types(const type_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vd_device d;
        vd_device_classify(vd_str_cstr(cases[i].ua), &d);
        if (d.type != cases[i].type)
            fail_msg("%s\n  want %s, got %s", cases[i].ua, vd_device_type_name(cases[i].type),
                     vd_device_type_name(d.type));
    }
}

#define CHROME_MOBILE(model) \
    "Mozilla/5.0 (Linux; Android 11; " model ") AppleWebKit/537.36 (KHTML, like Gecko) " \
    "Chrome/110.0.0.0 Mobile Safari/537.36"
#define CHROME_NOMOBILE(model) \
    "Mozilla/5.0 (Linux; Android 11; " model ") AppleWebKit/537.36 (KHTML, like Gecko) " \
    "Chrome/110.0.0.0 Safari/537.36"

static void test_model_evidence(void **state)
{
    (void)state;
    static const type_case cases[] = {
        /* Huawei/Honor Wi-Fi-only codes are tablets, -L/-AL codes phones. */
        { CHROME_MOBILE("QRS2-W19"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("QRS2-L29"), VD_DEVICE_MOBILE },
        /* ... also behind Huawei's "HarmonyOS;" field and a long locale. */
        { "Mozilla/5.0 (Linux; Android 10; HarmonyOS; QRS-W09; HMSCore 6.1.0.314) "
          "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.93 Mobile Safari/537.36",
          VD_DEVICE_TABLET },
        { "Mozilla/5.0 (Linux; U; Android 14; zh-Hans-CN; QRS-W09 Build/X) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 Mobile Safari/537.36",
          VD_DEVICE_TABLET },
        /* Inch-coded generic tablets; ZTE's 0xxx phone codes stay phones. */
        { CHROME_MOBILE("QX0745B"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("Brand_C080099"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("ZTE Blade V0733"), VD_DEVICE_MOBILE },
        { CHROME_MOBILE("QX-785G"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("QX-5515"), VD_DEVICE_MOBILE },
        { CHROME_MOBILE("Nokia T21"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("Nokia TA-1053"), VD_DEVICE_MOBILE },
        { CHROME_MOBILE("Plane 8888 QZ8123PG"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("Vox 4444 QZ4123PG"), VD_DEVICE_MOBILE },
        { CHROME_MOBILE("Zeta Wi-Fi 10"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("Zeta Kids 8"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("OPD9999"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("29999RP99G"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("2999999RG"), VD_DEVICE_MOBILE },
        /* 10.1" codes; 7"/8" after a separator; "STB" only as a word. */
        { CHROME_MOBILE("QX101HSTB"), VD_DEVICE_TABLET },
        { CHROME_NOMOBILE("Maker STB"), VD_DEVICE_OTHER },
        { CHROME_MOBILE("ZETA_7MRC"), VD_DEVICE_TABLET },
        { CHROME_MOBILE("ZETA_77"), VD_DEVICE_MOBILE },
        /* "box" inside a phone's name is no box ("TurboX_Ray"). */
        { CHROME_MOBILE("Quickbox_Ray"), VD_DEVICE_MOBILE },
        { CHROME_MOBILE("Quickbox6"), VD_DEVICE_MOBILE },
        /* A panel size, then "Smart": a TV. */
        { CHROME_NOMOBILE("QLED-43SMART"), VD_DEVICE_OTHER },
        /* Desktop programs that name a build target or say they are a
         * reader; an HTTP tool naming its build target stays a tool. */
        { "SomeEditor/29.1 (TTY; x86_64-pc-linux-gnu)", VD_DEVICE_DESKTOP },
        { "URL/SomeEditor SomeEditor/29.1 (OpenStep; aarch64-apple-darwin23.1.0)",
          VD_DEVICE_DESKTOP },
        { "curl/8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0", VD_DEVICE_BOT },
        { "FeedWire (macOS; RSS Reader; https://example.org/feedwire/)", VD_DEVICE_DESKTOP },
        { "FeedWire (https://example.org/feedwire/)", VD_DEVICE_BOT },
        /* TV panel sizes as any word of the name; pixel sizes of head units. */
        { CHROME_NOMOBILE("Maker 55QX1234S"), VD_DEVICE_OTHER },
        { CHROME_NOMOBILE("Maker_43QX701"), VD_DEVICE_OTHER },
        { CHROME_NOMOBILE("Maker 55 Pro"), VD_DEVICE_TABLET },
        { "Dalvik/2.1.0 (Linux; U; Android 10; car_hu1280x720 Build/X)", VD_DEVICE_OTHER },
        /* Embedded Linux on ARM without Android or X11: a TV or player. */
        { "Opera/9.80 (Linux armv6l; U; Maker.bd.2014; en) Presto/2.8.115 Version/11.10",
          VD_DEVICE_OTHER },
        { "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36",
          VD_DEVICE_DESKTOP },
        /* Windows touch tablets; e-readers. */
        { "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; Touch; rv:11.0) like Gecko",
          VD_DEVICE_TABLET },
        { "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko", VD_DEVICE_DESKTOP },
        { "Mozilla/5.0 (Linux like Android; en_US) AppleWebKit/534.34 PocketBook/740 "
          "(screen 1404x1872) Mobile",
          VD_DEVICE_TABLET },
        /* "bot" counts only as the end of a word; "Win" only as a word. */
        { "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; Banca Caboto s.p.a.; rv:11.0) "
          "like Gecko",
          VD_DEVICE_DESKTOP },
        { "Mozilla/5.0 (compatible; ExampleBot/1.0)", VD_DEVICE_BOT },
        { "examplebots-fetch 2.0", VD_DEVICE_BOT },
        { "SomeTool Win Upd 2.1;", VD_DEVICE_DESKTOP },
        { "SomeTool Darwin Upd 2.1;", VD_DEVICE_DESKTOP },
        { "SomeTool Upd 2.1;", VD_DEVICE_BOT },
        /* Bare words and a version are a tool in isbot's list, whatever
         * platform word they hold. */
        { "SomeTool Win Upd 2.1", VD_DEVICE_BOT },
    };
    check_types(cases, sizeof cases / sizeof cases[0]);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    vd_device d = { VD_DEVICE_BOT, "x", "y" };
    vd_device_classify(VD_STR_NULL, &d);
    assert_int_equal(d.type, VD_DEVICE_OTHER);
    assert_null(d.os);
    assert_null(d.browser);
    d = (vd_device){ VD_DEVICE_BOT, "x", "y" };
    vd_device_classify(vd_str_make("abc", 0), &d);
    assert_int_equal(d.type, VD_DEVICE_OTHER);
    assert_null(d.os);
}

/* The classifier must read only ua.n bytes: the slice is not NUL-terminated. */
static void test_slice_bounds(void **state)
{
    (void)state;
    static const char buf[] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                              "AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1Googlebot/2.1";
    size_t n = strlen(buf) - strlen("Googlebot/2.1");
    vd_device d;
    vd_device_classify(vd_str_make(buf, n), &d);
    assert_int_equal(d.type, VD_DEVICE_MOBILE);
    vd_device_classify(vd_str_make(buf, strlen(buf)), &d);
    assert_int_equal(d.type, VD_DEVICE_BOT);
}

static void test_spaces_do_not_matter(void **state)
{
    (void)state;
    const char *ua = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like "
                     "Gecko) Chrome/116.0.0.0 Safari/537.36";
    char padded[512];
    snprintf(padded, sizeof padded, "   %s  ", ua);
    vd_device a, b;
    vd_device_classify(vd_str_cstr(ua), &a);
    vd_device_classify(vd_str_cstr(padded), &b);
    assert_int_equal(a.type, VD_DEVICE_TABLET);
    assert_int_equal(b.type, a.type);
    assert_string_equal(b.os, a.os);
    assert_string_equal(b.browser, a.browser);
}

/* 100 KB of hostile bytes: NULs, 0xFF, every byte value. No crash, a valid
 * type, and only the first VD_UA_MAX bytes are looked at. */
static void test_garbage_and_long(void **state)
{
    (void)state;
    enum { BIG = 100 * 1024 };
    char *g = malloc(BIG);
    assert_non_null(g);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        g[i] = (char)(i % 7 == 0 ? 0 : i % 11 == 0 ? (char)0xFF : (char)(x >> 24));
    }
    vd_device d;
    vd_device_classify(vd_str_make(g, BIG), &d);
    assert_true(d.type < VD_DEVICE__COUNT);

    /* A desktop UA padded past VD_UA_MAX, with a bot word after the limit. */
    const char *head = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) ";
    size_t hn = strlen(head);
    memcpy(g, head, hn);
    memset(g + hn, 'a', VD_UA_MAX);
    memcpy(g + hn + VD_UA_MAX, "Googlebot", 9);
    vd_device_classify(vd_str_make(g, hn + VD_UA_MAX + 9), &d);
    assert_int_equal(d.type, VD_DEVICE_DESKTOP);
    /* ...and the same bot word inside the limit is seen (as a word: "bot"
     * must end it). */
    memcpy(g + hn + 10, "Googlebot/", 10);
    vd_device_classify(vd_str_make(g, hn + VD_UA_MAX + 9), &d);
    assert_int_equal(d.type, VD_DEVICE_BOT);
    free(g);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(vd_device_type_name(VD_DEVICE_MOBILE), "mobile");
    assert_string_equal(vd_device_type_name(VD_DEVICE_TABLET), "tablet");
    assert_string_equal(vd_device_type_name(VD_DEVICE_DESKTOP), "desktop");
    assert_string_equal(vd_device_type_name(VD_DEVICE_BOT), "bot");
    assert_string_equal(vd_device_type_name(VD_DEVICE_OTHER), "other");
    assert_string_equal(vd_device_type_name(99), "other");
}

/* ------------------------------------------------------------------ cache */

static const char *const cache_uas[] = {
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 Safari/605.1.15",
};
enum { NCACHE_UAS = sizeof cache_uas / sizeof cache_uas[0] };

static void assert_same(const vd_device *a, const vd_device *b)
{
    assert_int_equal(a->type, b->type);
    assert_ptr_equal(a->os, b->os);         /* static strings: same pointer */
    assert_ptr_equal(a->browser, b->browser);
}

static void test_cache_hit_miss(void **state)
{
    (void)state;
    vd_device_cache *c = vd_device_cache_new(64);
    assert_non_null(c);
    uint64_t hits, misses;
    vd_device want, got;
    vd_str ua = vd_str_cstr(cache_uas[0]);
    vd_device_classify(ua, &want);

    vd_device_lookup(c, ua, NULL, &got);
    assert_same(&got, &want);
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);

    /* Same bytes from another buffer: a hit. */
    char copy[256];
    strcpy(copy, cache_uas[0]);
    vd_device_lookup(c, vd_str_cstr(copy), NULL, &got);
    assert_same(&got, &want);
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);

    /* One byte different: a miss, and its own verdict. */
    copy[strlen(copy) - 1] = '2';
    vd_device_lookup(c, vd_str_cstr(copy), NULL, &got);
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 2);
    vd_device_cache_free(c);
}

/* A one-set cache (8 ways): every UA lands in the same set. Whatever is
 * cached, no UA may get another UA's verdict. */
static void test_cache_collisions(void **state)
{
    (void)state;
    vd_device_cache *c = vd_device_cache_new(1);   /* rounded up to one 8-way set */
    assert_non_null(c);
    vd_device want[NCACHE_UAS];
    for (unsigned i = 0; i < NCACHE_UAS; i++)
        vd_device_classify(vd_str_cstr(cache_uas[i]), &want[i]);
    /* The fixtures cover different verdicts, or this test would prove nothing. */
    assert_int_not_equal(want[0].type, want[1].type);
    assert_int_not_equal(want[2].type, want[3].type);

    for (unsigned round = 0; round < 4; round++)
        for (unsigned i = 0; i < NCACHE_UAS; i++) {
            unsigned k = (i * 3 + round) % NCACHE_UAS;
            vd_device got;
            vd_device_lookup(c, vd_str_cstr(cache_uas[k]), NULL, &got);
            assert_same(&got, &want[k]);
            vd_device_lookup(c, vd_str_cstr(cache_uas[k]), NULL, &got);   /* now a hit */
            assert_same(&got, &want[k]);
        }
    uint64_t hits, misses;
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits + misses, 4 * NCACHE_UAS * 2);
    assert_true(hits >= 4 * NCACHE_UAS);    /* every immediate repeat hits */

    /* Two ways: two UAs alternating both stay cached. */
    uint64_t h0 = hits;
    vd_device got;
    vd_device_lookup(c, vd_str_cstr(cache_uas[0]), NULL, &got);
    vd_device_lookup(c, vd_str_cstr(cache_uas[1]), NULL, &got);
    for (int i = 0; i < 10; i++) {
        vd_device_lookup(c, vd_str_cstr(cache_uas[0]), NULL, &got);
        assert_same(&got, &want[0]);
        vd_device_lookup(c, vd_str_cstr(cache_uas[1]), NULL, &got);
        assert_same(&got, &want[1]);
    }
    vd_device_cache_stats(c, &hits, &misses);
    assert_true(hits - h0 >= 20);
    vd_device_cache_free(c);
}

/* Least recently used replacement in one 8-way set, with UAs of different
 * verdicts (the fixtures, plus a suffix that keeps their class): eight UAs
 * in a loop all stay cached; nine in a loop evict each other every time
 * (the one needed next is always the oldest); a UA used between fills
 * survives them. Every answer is the classifier's. */
static void test_cache_lru(void **state)
{
    (void)state;
    enum { N = 12 };
    char uas[N][256];
    vd_device want[N];
    for (int i = 0; i < N; i++) {
        snprintf(uas[i], sizeof uas[i], "%s v%d", cache_uas[i % NCACHE_UAS], i);
        vd_device_classify(vd_str_cstr(uas[i]), &want[i]);
    }
    vd_device_cache *c = vd_device_cache_new(8);
    assert_non_null(c);
    uint64_t hits, misses;
    vd_device got;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 8; i++) {
            vd_device_lookup(c, vd_str_cstr(uas[i]), NULL, &got);
            assert_same(&got, &want[i]);
        }
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 8);
    assert_int_equal(hits, 16);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 9; i++) {
            vd_device_lookup(c, vd_str_cstr(uas[i]), NULL, &got);
            assert_same(&got, &want[i]);
        }
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 16 + 8);          /* the first 8 of the first loop, then none */
    assert_int_equal(misses, 8 + 1 + 18);
    /* uas[0] touched between each fill of four new UAs stays cached. */
    for (int i = 8; i < N; i++) {
        vd_device_lookup(c, vd_str_cstr(uas[0]), NULL, &got);
        assert_same(&got, &want[0]);
        vd_device_lookup(c, vd_str_cstr(uas[i]), NULL, &got);
        assert_same(&got, &want[i]);
    }
    uint64_t h1 = hits;
    vd_device_cache_stats(c, &hits, &misses);
    assert_true(hits - h1 >= 3);
    vd_device_lookup(c, vd_str_cstr(uas[0]), NULL, &got);
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits - h1, 4 + 1);
    vd_device_cache_free(c);
}

static void test_cache_bypass(void **state)
{
    (void)state;
    vd_device_cache *c = vd_device_cache_new(16);
    assert_non_null(c);
    /* Longer than the cached key limit: classified, never stored or counted. */
    char long_ua[1200];
    memset(long_ua, 'x', sizeof long_ua);
    memcpy(long_ua, "Mozilla/5.0 (iPhone; ", 21);
    vd_device got, want;
    vd_device_classify(vd_str_make(long_ua, sizeof long_ua), &want);
    vd_device_lookup(c, vd_str_make(long_ua, sizeof long_ua), NULL, &got);
    vd_device_lookup(c, vd_str_make(long_ua, sizeof long_ua), NULL, &got);
    assert_same(&got, &want);
    assert_int_equal(got.type, VD_DEVICE_MOBILE);
    /* Empty UA: not cached either. */
    vd_device_lookup(c, VD_STR_NULL, NULL, &got);
    assert_int_equal(got.type, VD_DEVICE_OTHER);
    uint64_t hits, misses;
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 0);
    vd_device_cache_free(c);

    /* No cache at all. */
    vd_device_lookup(NULL, vd_str_cstr(cache_uas[3]), NULL, &got);
    assert_int_equal(got.type, VD_DEVICE_BOT);
    vd_device_cache_stats(NULL, &hits, &misses);
    assert_int_equal(hits + misses, 0);
    vd_device_cache_free(NULL);
}

/* ----------------------------------------------------------------- corpus */

/* Measured with build/vd-accuracy-ua on the public split; the test allows
 * 0.5 points of slack so harmless rule edits do not break it. */
#define MACRO_REACHED 93.97
#define BOT_MIN 99.0

static void test_corpus_accuracy(void **state)
{
    (void)state;
    VD_NEED_SHARED(path, "data/ua/device_detector_ua.tsv");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t total[VD_DEVICE__COUNT] = { 0 }, correct[VD_DEVICE__COUNT] = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int header = 1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (header) {
            header = 0;
            assert_true(strncmp(line, "user_agent\tdevice_type\t", 23) == 0);
            continue;
        }
        char *tab1 = memchr(line, '\t', (size_t)len);
        if (!tab1)
            continue;
        char *label = tab1 + 1;
        char *tab2 = strchr(label, '\t');
        if (!tab2)
            continue;
        *tab2 = '\0';
        int t = -1;
        for (unsigned k = 0; k < VD_DEVICE__COUNT; k++)
            if (strcmp(label, vd_device_type_name(k)) == 0)
                t = (int)k;
        if (t < 0)
            continue;
        vd_device d;
        vd_device_classify(vd_str_make(line, (size_t)(tab1 - line)), &d);   /* untrimmed */
        total[t]++;
        correct[t] += d.type == (unsigned)t;
    }
    free(line);
    fclose(f);
    double macro = 0;
    for (unsigned k = 0; k < VD_DEVICE__COUNT; k++) {
        assert_true(total[k] > 0);
        macro += 100.0 * (double)correct[k] / (double)total[k];
    }
    macro /= VD_DEVICE__COUNT;
    double bot = 100.0 * (double)correct[VD_DEVICE_BOT] / (double)total[VD_DEVICE_BOT];
    printf("ua corpus: macro recall %.2f%%, bot recall %.2f%%\n", macro, bot);
    assert_true(macro >= MACRO_REACHED - 0.5);
    assert_true(bot >= BOT_MIN);
}

/* ---- Client Hints ---- */

#define REDUCED_MOBILE "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
#define REDUCED_TABLET "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
#define WINDOWS_CHROME "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

typedef struct hint_case {
    const char *ua, *ch_ua, *mobile, *platform, *model;
    unsigned type;
    const char *os;
} hint_case;

static void test_client_hints(void **state)
{
    (void)state;
    static const hint_case cases[] = {
        /* The reduced UA says phone; the model says tablet (Galaxy Tab S7). */
        { REDUCED_MOBILE, NULL, "?1", "\"Android\"", "\"SM-T870\"", VD_DEVICE_TABLET, "Android" },
        /* ?0 on Android without a telling model: Google's rule, a tablet. */
        { REDUCED_MOBILE, NULL, "?0", "\"Android\"", "\"ZKEMPLER PLUS\"", VD_DEVICE_TABLET, "Android" },
        /* A phone model with ?1 stays a phone; bare (unquoted) values too. */
        { REDUCED_TABLET, NULL, "?1", "Android", "Pixel 8", VD_DEVICE_MOBILE, "Android" },
        /* A tablet word in the model beats ?1. */
        { REDUCED_MOBILE, NULL, "?1", "\"Android\"", "\"LECT-TAB1011H\"", VD_DEVICE_TABLET, "Android" },
        /* A TV box model: other. */
        { REDUCED_TABLET, NULL, "?0", "\"Android\"", "\"MiBOX4\"", VD_DEVICE_OTHER, "Android" },
        /* Desktop platforms name the OS; ?1 on them means a phone. */
        { WINDOWS_CHROME, NULL, "?0", "\"macOS\"", NULL, VD_DEVICE_DESKTOP, "Mac" },
        { WINDOWS_CHROME, NULL, "?0", "\"Linux\"", "\"\"", VD_DEVICE_DESKTOP, "GNU/Linux" },
        { WINDOWS_CHROME, NULL, "?0", "\"Chrome OS\"", NULL, VD_DEVICE_DESKTOP, "Chrome OS" },
        /* Robots stay robots, whatever the hints; a headless brand is one. */
        { "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", NULL, "?1",
          "\"Android\"", "\"Pixel 8\"", VD_DEVICE_BOT, NULL },
        { WINDOWS_CHROME, "\"HeadlessChrome\";v=\"124\", \"Chromium\";v=\"124\"", "?0",
          "\"Windows\"", NULL, VD_DEVICE_BOT, NULL },
        /* A TV UA keeps its verdict. */
        { "Mozilla/5.0 (Linux; NetCast; U) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.128 Safari/537.36 SmartTV/10.0",
          NULL, "?0", "\"Linux\"", NULL, VD_DEVICE_OTHER, "GNU/Linux" },
        /* Only the mobile hint: a desktop UA that says ?1 is a phone. */
        { WINDOWS_CHROME, NULL, "?1", NULL, NULL, VD_DEVICE_MOBILE, "Windows" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hint_case *c = &cases[i];
        vd_ua_hints h = {
            .ua = c->ch_ua ? vd_str_cstr(c->ch_ua) : VD_STR_NULL,
            .mobile = c->mobile ? vd_str_cstr(c->mobile) : VD_STR_NULL,
            .platform = c->platform ? vd_str_cstr(c->platform) : VD_STR_NULL,
            .model = c->model ? vd_str_cstr(c->model) : VD_STR_NULL,
        };
        vd_device d;
        vd_device_classify_hints(vd_str_cstr(c->ua), &h, &d);
        if (d.type != c->type)
            fail_msg("case %zu (%s): type %s, expected %s", i, c->model ? c->model : "-",
                     vd_device_type_name(d.type), vd_device_type_name(c->type));
        if ((c->os == NULL) != (d.os == NULL) || (c->os && strcmp(c->os, d.os) != 0))
            fail_msg("case %zu: os %s, expected %s", i, d.os ? d.os : "-", c->os ? c->os : "-");
    }
    /* Without hints (or NULL), the same as vd_device_classify. */
    vd_device a, b;
    vd_ua_hints none = { 0 };
    vd_device_classify(vd_str_cstr(REDUCED_MOBILE), &a);
    vd_device_classify_hints(vd_str_cstr(REDUCED_MOBILE), &none, &b);
    assert_int_equal(a.type, b.type);
    vd_device_classify_hints(vd_str_cstr(REDUCED_MOBILE), NULL, &b);
    assert_int_equal(a.type, VD_DEVICE_MOBILE);
    assert_int_equal(b.type, VD_DEVICE_MOBILE);
}

/* The cache key holds the hints: one UA, hinted and not, two verdicts. */
static void test_cache_keys_hints(void **state)
{
    (void)state;
    vd_device_cache *c = vd_device_cache_new(64);
    assert_non_null(c);
    vd_ua_hints tab = { .mobile = VD_STR_LIT("?0"), .platform = VD_STR_LIT("\"Android\""),
                        .model = VD_STR_LIT("\"SM-T870\"") };
    vd_ua_hints phone = { .mobile = VD_STR_LIT("?1"), .platform = VD_STR_LIT("\"Android\""),
                          .model = VD_STR_LIT("\"Pixel 8\"") };
    vd_str ua = vd_str_cstr(REDUCED_MOBILE);
    vd_device d;
    for (int round = 0; round < 2; round++) {      /* the second round hits */
        vd_device_lookup(c, ua, NULL, &d);
        assert_int_equal(d.type, VD_DEVICE_MOBILE);
        vd_device_lookup(c, ua, &tab, &d);
        assert_int_equal(d.type, VD_DEVICE_TABLET);
        vd_device_lookup(c, ua, &phone, &d);
        assert_int_equal(d.type, VD_DEVICE_MOBILE);
    }
    uint64_t hits, misses;
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 3);
    assert_int_equal(hits, 3);
    /* Hints too long for a key: classified, not cached, still right. */
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    vd_ua_hints huge = tab;
    huge.ua = vd_str_cstr(big);
    vd_device_lookup(c, ua, &huge, &d);
    assert_int_equal(d.type, VD_DEVICE_TABLET);
    vd_device_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 3);
    vd_device_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phones),
        cmocka_unit_test(test_tablets),
        cmocka_unit_test(test_desktops),
        cmocka_unit_test(test_bots),
        cmocka_unit_test(test_other_devices),
        cmocka_unit_test(test_model_evidence),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_slice_bounds),
        cmocka_unit_test(test_spaces_do_not_matter),
        cmocka_unit_test(test_garbage_and_long),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_cache_hit_miss),
        cmocka_unit_test(test_cache_collisions),
        cmocka_unit_test(test_cache_lru),
        cmocka_unit_test(test_cache_bypass),
        cmocka_unit_test(test_corpus_accuracy),
        cmocka_unit_test(test_client_hints),
        cmocka_unit_test(test_cache_keys_hints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
