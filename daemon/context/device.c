/* device.c — device type, OS family and browser family from a User-Agent.
 *
 * The UA (at most VD_UA_MAX bytes of it) is folded to lower case into a stack
 * buffer, then walked through ordered token tables: first match wins. The
 * tables are ours, written from what the tokens mean (vendor conventions such
 * as "Mobile" in Android phone UAs, Samsung's SM-T tablet model prefix, ...);
 * no third-party rule set is embedded. Accuracy against the labelled corpus is
 * measured by tools/vd-accuracy-ua.c.
 *
 * Type decision (type_of), in this order:
 *   1. bots         — crawler words ("bot", "spider", "+http://..."), and a
 *                     browser-like "Mozilla/" UA that carries a URL;
 *   2. other        — TVs, set-top boxes, consoles, cars, watches, speakers,
 *                     embedded Linux on ARM, and Android model names
 *                     ("43LF7130S", "Maker 55U750", "XDH-..." displays);
 *   3. early words  — Windows phones that say "Windows NT", Android laptops;
 *   4. tablets      — iPad, "tablet", Windows "Touch", e-readers, tablet
 *                     model names and code schemes (Huawei "-W" Wi-Fi
 *                     variants, diagonal-coded generic models "MT0739D");
 *   5. mobiles      — iPhone, "Mobile", feature phones, phone model prefixes;
 *   6. Android      — Google's rule: phones say "Mobile", tablets do not;
 *   6b. programs    — desktop programs that name a GNU build target
 *                     ("x86_64-pc-linux-gnu") or say "RSS Reader", unless an
 *                     HTTP library names itself;
 *   7. tool words   — HTTP libraries, monitors, URLs, and isbot's maintained
 *                     pattern list (bots.c): bots unless a device platform
 *                     matched above;
 *   8. desktops     — Windows, Mac, X11, Chrome OS...;
 *   9. leftovers    — a UA naming no platform at all is a tool: bot.
 * OS and browser families come from two more ordered tables (family names in
 * device-detector's vocabulary, NULL when unknown; none for bots).
 * User-Agent Client Hints, where a request has them, decide type and OS
 * before the UA (vd_device_classify_hints).
 *
 * Cost: the tables are not searched token by token. One pass over the UA
 * (fill_buf) folds the case and, through an index from 3-byte window
 * hashes to the tokens containing that window (tok_index), sets one bit
 * per table token present; the ordered tests above then read bits. The
 * verdicts are those of the token-by-token search (tests/unit/
 * test_device_equiv.c keeps that classifier and compares on the corpora).
 *
 * The cache is an 8-way set-associative table of verdicts keyed by a 64-bit
 * hash and verified against the UA bytes stored inline in one slab allocated
 * at creation. It belongs to one worker thread (no locks). */
#include "context/device.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/bots.h"
#include "core/alloc.h"

/* ---------------------------------------------------------------- tokens */

/* A token with the window hashes of its first and last 3 bytes, computed
 * by the compiler (0 for tokens shorter than 3). */
typedef struct tok {
    const char *s;
    uint8_t n;
    uint16_t h_first, h_last;
} tok;

#define TRI_FIRST(lit) (sizeof(lit) > 3 ? VD_TRI_HASH(lit, 0) : 0u)
#define TRI_LAST(lit) (sizeof(lit) > 3 ? VD_TRI_HASH(lit, sizeof(lit) > 3 ? sizeof(lit) - 4 : 0) : 0u)
#define T(lit) { (lit), (uint8_t)(sizeof(lit) - 1), TRI_FIRST(lit), TRI_LAST(lit) }

/* The lower-cased UA and the set of table tokens found in it, one bit per
 * table entry (tables laid out one after another from a 64-bit word
 * boundary; see tok_index). */
#define TRI_BITS VD_TRI_BITS
#define PRESENT_WORDS 32

typedef struct ua_buf {
    char s[VD_UA_MAX + 8];    /* + 8: tokens are compared a word at a time */
    size_t n;
    uint64_t present[PRESENT_WORDS];
} ua_buf;

static unsigned tri_hash(const char *p)
{
    return vd_tri_hash(p);
}

/* memmem for the short needles and haystacks here: memchr finds the
 * candidates, memcmp confirms (glibc's memmem spends longer setting up its
 * search than this takes on a User-Agent). */
static const char *find(const char *h, size_t hn, const char *s, size_t n)
{
    if (n == 0)
        return h;
    if (n > hn)
        return NULL;
    for (const char *p = h, *last = h + hn - n; p <= last; p++) {
        p = memchr(p, s[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p + 1, s + 1, n - 1) == 0)
            return p;
    }
    return NULL;
}

/* HAS_ANY(u, table): one of the table's tokens is in the UA (fill_buf
 * found them all in one pass; see tok_index below). */
#define HAS_ANY(u, arr) has_any((u), TAB_##arr)
/* HAS(u, W_x): the one word of word_tokens[W_x] is in the UA. */
#define HAS(u, w) has_word((u), (w))

/* Single words the rules below test by themselves, found in the same pass
 * as the tables (their order is the enum's). */
enum word_id {
    W_SAFARI, W_VERSION, W_BOT, W_HTTP, W_HTTPS, W_DOTCOM, W_LINUX_ARM, W_ARMV6, W_ARMV7,
    W_ANDROID, W_X11, W_WAYLAND, W_UBUNTU, W_CROS, W_WINDOWS_NT, W_TOUCH_SEMI, W_TOUCH_PAREN,
    W_ADR, W__COUNT
};

static const tok word_tokens[] = {
    [W_SAFARI] = T("safari"), [W_VERSION] = T("version/"), [W_BOT] = T("bot"),
    [W_HTTP] = T("http://"), [W_HTTPS] = T("https://"), [W_DOTCOM] = T(".com/"),
    [W_LINUX_ARM] = T("linux arm"), [W_ARMV6] = T("armv6"), [W_ARMV7] = T("armv7"),
    [W_ANDROID] = T("android"), [W_X11] = T("x11"), [W_WAYLAND] = T("wayland"),
    [W_UBUNTU] = T("ubuntu"), [W_CROS] = T("cros "), [W_WINDOWS_NT] = T("windows nt"),
    [W_TOUCH_SEMI] = T("; touch;"), [W_TOUCH_PAREN] = T("; touch)"), [W_ADR] = T("adr "),
};
_Static_assert(sizeof word_tokens / sizeof word_tokens[0] == W__COUNT, "word_tokens");
_Static_assert(W__COUNT <= 64, "word_tokens: one word of present bits");

/* word_tokens is the index's first table: its bits are present[0]. */
static bool has_word(const ua_buf *u, enum word_id w)
{
    return (u->present[0] >> w) & 1u;
}

/* ------------------------------------------------------------ type rules */

/* Words robots put in their UA (and "bot" as a word, has_bot_word). These
 * win over any platform token: crawlers often impersonate a browser and then
 * append their name. */
static const tok bot_tokens[] = {
    T("crawl"), T("spider"), T("slurp"), T("scraper"), T("headless"),
    T("+http"),          /* "+http://example.com/bot.html": the crawler convention */
    T("${jndi"),         /* log4shell probes */
    T("zgrab"), T("masscan"), T("nmap"), T("nutch"), T("heritrix"), T("httrack"),
    T("phantomjs"), T("selenium"), T("puppeteer"), T("playwright"), T("webdriver"),
    T("facebookexternalhit"), T("externalagent"), T("mediapartners"),
    T("lighthouse"), T("pagespeed"), T("synthetics"), T("uptime"), T("audit"),
    T("google-"), T("-google"),   /* Google's fetchers: Google-Read-Aloud, DuplexWeb-Google */
    T("w3c"),                     /* W3C validators and checkers */
    T("x11; windows"),            /* an impossible platform: a forged UA */
    T("gecko; compatible"),       /* "(KHTML, like Gecko; compatible; Name)" */
    T("(via "),
};

/* Words of tools, libraries and services. They lose to a phone, tablet or
 * TV platform (apps embed HTTP libraries, search apps say "search") but win
 * over a desktop platform, which is what robots most often pretend to be. */
static const tok weak_bot_tokens[] = {
    T("curl"), T("wget"), T("python"), T("java/"), T("jakarta"), T("go-http"),
    T("httpclient"), T("http_client"), T("http-client"), T("libwww"), T("perl"),
    T("php/"), T("ruby"), T("node-fetch"), T("axios"), T("okhttp"),
    T("monitor"), T("checker"), T("healthcheck"), T("scanner"), T("scan/"),
    T("validator"), T("fetcher"), T("preview"), T("synthetic"), T("archiv"),
    T("indexer"), T("analyzer"), T("audit"), T("research"), T("measurement"),
    T("transcoder"), T("linkexpander"), T("linkcheck"), T("link check"),
    T("pingdom"), T("imageproxy"),
    T("thumbnail"), T("siteimprove"), T("seo"), T("search"), T("favicon"),
    T("diagnostic"), T("feedparser"), T("feed parser"), T("user agent"),
    T("useragent"), T("domain"), T("sitesucker"), T("verifier"), T("cms/"),
    T("prospect"),       /* lead-generation scrapers */
    T("(unknown;"),      /* a platform nobody admits to */
    T("http"), T("www."), T(".com"), T(".org"), T(".io"), T(".ai"),
    T("@"),              /* a contact address */
};

/* Desktop programs that name what they are: a GNU build target
 * ("x86_64-pc-linux-gnu", "x86_64-apple-darwin22.1.0") or a reader app
 * ("RSS Reader"). They win over the weak tool words below (a URL, the
 * maintained list) unless an HTTP library or tool names itself. */
static const tok desktop_app_tokens[] = {
    T("-pc-linux-gnu"), T("-apple-darwin"), T("-w64-mingw32"), T("-pc-windows"),
    T("rss reader"), T("feed reader"),
};

static const tok tool_tokens[] = {
    T("curl"), T("wget"), T("python"), T("java/"), T("go-http"), T("httpclient"),
    T("libwww"), T("perl"), T("php/"), T("ruby"), T("node-fetch"), T("axios"), T("okhttp"),
};

/* Phone models and apps whose names contain a bot word. */
static const tok bot_exceptions[] = {
    T("cubot"),         /* Cubot, a phone brand */
    T("bot tab"), T("idbot"), T("power bot"), T("vr bot"), T("xbot_"),
};

/* Not phones, tablets or PCs: TVs and their boxes, consoles, cars, watches,
 * cameras, media players, speakers and smart displays. */
static const tok other_tokens[] = {
    /* TV platforms, standards and TV browsers */
    T("smart-tv"), T("smarttv"), T("smart tv"), T("hbbtv"), T("netcast"),
    T("web0s"), T("webos.tv"), T("googletv"), T("google tv"), T("android tv"),
    T("androidtv"), T("crkey"), T("roku"), T("appletv"), T("apple tv"),
    T("tvos"), T("viera"), T("bravia"), T("philipstv"),
    T("nettv"), T("opera tv"), T(" omi/"), T("vidaa"), T("tivo/"), T(" tivo"),
    T("(tivo"), T("vizio"),                /* TiVo as a word: not "Positivo" phones */
    T("ce-html"), T("set-top"), T("settop"), T("tv safari"),
    T(") tv "), T("safari/537.36 tv"), T(" tv;"), T(" tv)"), T("(tv;"),
    T("tvbrowser"), T("_tv"), T("tv build"), T("tv box"), T("tvbox"),
    T("mibox"), T("fire tv"), T("firetv"), T("; aft"),  /* Amazon Fire TV models: AFTS, AFTMM... */
    T("; aeo"),                            /* Amazon Echo Show models */
    T("wv-atv"),                           /* the Android TV WebView */
    T("tizen/"),                           /* "Tizen/x.y": Samsung TVs; phones say "Tizen x.y" */
    T("lg browser"), T("inettvbrowser"), T("maple"), T("kreatv"), T("freebox"),
    T("livebox"), T("yndx-"),              /* Yandex TV modules and stations */
    T("brightsign"), T("qtembedded"), T("linux mips"), T("linux sh4"),
    T("(linux )"), T("(linux armv7l)"),   /* embedded Linux without X11: TVs, not PCs */
    T("(sky,"), T("; stv;"), T("amazon;"), T(" stb"),
    /* consoles */
    T("playstation"), T("xbox"), T("nintendo"), T("ouya"), T("shield build"),
    /* cars */
    T("qtcarbrowser"), T("carplay"), T("android automotive"), T("tesla/"),
    /* wearables */
    T("watch"), T("wear os"), T(" sm-r"),  /* SM-R: Galaxy Watch */
    T("vr safari"), T("like quest"), T("quest 2"), T("quest 3"), T("oculus"),   /* VR headsets */
    /* media players, speakers, smart displays, cameras */
    T("ipod"), T("zune"), T("sonos"), T("alexa"), T("; ek-gc"),
    T("libvlc"), T("vlc/"), T("projector"),
};

/* The Sonos controller app names the phone or Mac it runs on. */
static const tok other_exceptions[] = {
    T("(icru_"), T("(mdcr_"),
};

static const tok tablet_tokens[] = {
    T("ipad"), T("tablet"), T("kindle"), T("silk/"), T("; kf"), T("playbook"),
    T("xoom"), T("nexus 7"), T("nexus 9"), T("nexus 10"), T("mediapad"),
    T("matepad"), T("lenovo tb"), T("; tb-"), T("; tb"), T("mi pad"), T("touchpad"),
    T("; sm-t"), T("; sm-x"), T("; sm-p"), T("; gt-p"), T("; gt-n5"),
    T("; gt-n8"), T("galaxy tab"), T("nook"), T("bntv"),
    T("/apad"),              /* Yandex apps' tablet build */
    T("; mid"), T("surface duo"),
    /* e-readers count as tablets, and so do learning tablets (Readboy) */
    T("pocketbook"), T("e-reader"), T("ereader"), T("tolino"), T("kobo"), T("boox"),
    T("readboy"),
};

static const tok tablet_exceptions[] = {
    T("tablet pc"),          /* Windows desktops with pen support */
};

/* Phones: mobile OSes, feature-phone browsers, and phone model prefixes
 * whose tablet siblings were caught by tablet_tokens first. */
static const tok mobile_tokens[] = {
    T("iphone"), T("windows phone"), T("iemobile"), T("blackberry"),
    T("bb10"), T("symbian"), T("series60"), T("series40"), T("nokia"),
    T("j2me"), T("midp"), T("cldc"), T("opera mini"), T("kaios"),
    T("palm"), T("webos"), T("up.browser"), T("obigo"), T("netfront"),
    T("maui"), T("sonyericsson"), T("samsung-"), T("lg-"), T("mot-"),
    T("docomo"), T("wap"), T("phone"), T("bada"), T("brew"), T("mocor"),
    T("spreadtrum"), T("(mobile;"), T("; sm-"), T("; lm-"), T("redmi"),
    T("pixel"), T("oneplus"), T("vivo "), T("moto"), T("huawei"), T("honor"),
    T("; cph"), T("; rmx"), T("dv(iph"), T("fb4a"), T("ucweb"), T("juc ("),
    T("teleca"), T("screen-"),
};

/* "Mobile" alone: what Android phones say, and what cheap tablets copy
 * (a "3G" word in the model was tried as tablet evidence between the two
 * tables: it cost more phones than it won tablets). */
static const tok mobile_generic_tokens[] = {
    T("; mobile"), T("mobile safari"), T(" mobile/"), T(" mobile "), T(" mobile"),
};

/* Windows phones that say "Windows NT" or "desktop". */
static const tok mobile_first_tokens[] = {
    T("wpdesktop"), T("lumia"),
};

/* Desktop signs strong enough to win over mobile words: Facebook's Windows
 * app and Android running on laptops. */
static const tok desktop_first_tokens[] = {
    T("fbid/desktop"), T("osmeta"), T("chromebook"), T("crosarc"),
    T("waydroid"), T("(pc;"), T("(mdcr_"), T("inspiron"), T("travelmate"), T("aspire"),
    T("elitebook"), T("probook"), T("thinkpad"), T("ideapad"), T("latitude"),
    T("vivobook"), T("zenbook"), T("macbook"), T("compaq"), T(" pc)"),
    T("aio system"),
};

static const tok desktop_tokens[] = {
    T("windows nt"), T("macintosh"), T("mac os x"), T("mac_powerpc"),
    T("x11"), T("cros "), T("linux x86_64"), T("linux i686"), T("ubuntu"),
    T("freebsd"), T("openbsd"), T("netbsd"), T("sunos"), T("win64"),
    T("wow64"), T("windows 9"), T("win9"), T("win32"), T("windows"),
    T("darwin"), T("beos"), T("haiku"), T("amiga"), T("os/2"), T("openvms"),
    T("linux"), T("mac os"), T("macos"), T("desktop"), T("win10"), T("win11"),
    T("inferno"), T("ms-office"), T("msoffice"),
    T(" win "), T("(win "), T("(win;"), T(" win;"),    /* "Win" as a word: Windows apps */
};

static bool is_alpha(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The Android model name ("SM-G991B", "32LF7130S", "X96 Max") says what an
 * Android device is when the UA itself does not. Returns an empty slice when
 * there is none. */
static vd_str android_model(const ua_buf *u)
{
    if (!HAS(u, W_ANDROID))
        return VD_STR_NULL;
    const char *a = find(u->s, u->n, "android", 7);
    if (!a)
        return VD_STR_NULL;
    const char *end = u->s + u->n;
    const char *p = a;
    /* "Android 9; [xx-yy; ]MODEL Build/..." — skip at most three fields. */
    for (int field = 0; field < 4; field++) {
        while (p < end && *p != ';' && *p != ')')
            p++;
        if (p >= end || *p == ')')
            return VD_STR_NULL;
        p++;
        while (p < end && *p == ' ')
            p++;
        const char *q = p;
        while (q < end && *q != ';' && *q != ')' && (size_t)(q - p) < 64 &&
               !(q + 6 <= end && memcmp(q, " build", 6) == 0) && !(*q == '/'))
            q++;
        size_t n = (size_t)(q - p);
        /* Locales: "ru", "en-us", "pt_BR", "zh-Hans-CN" — letters only. */
        bool locale = n >= 2 && n <= 10 && is_alpha(p[0]) && is_alpha(p[1]) &&
                      (n == 2 || p[2] == '-' || p[2] == '_');
        for (size_t k = 0; locale && k < n; k++)
            locale = is_alpha(p[k]) || p[k] == '-' || p[k] == '_';
        /* Fields that are not the model: "U", "arm_64", "wv" (WebView),
         * Huawei's "HarmonyOS". */
        if (n == 0 || locale || (n == 1 && p[0] == 'u') || (n >= 3 && memcmp(p, "arm", 3) == 0) ||
            (n == 2 && memcmp(p, "wv", 2) == 0) || (n == 9 && memcmp(p, "harmonyos", 9) == 0))
            continue;
        return vd_str_make(p, n);
    }
    return VD_STR_NULL;
}

/* The model is short (< 64 bytes) and tested against dozens of words: a
 * plain scan beats memmem's per-call setup by far. */
static bool model_has(vd_str m, const char *tokn)
{
    char c0 = tokn[0];
    if (c0 == '\0')
        return true;
    for (size_t i = 0; i < m.n; i++) {
        if (m.p[i] != c0)
            continue;
        size_t k = 1;
        while (tokn[k] && i + k < m.n && m.p[i + k] == tokn[k])
            k++;
        if (tokn[k] == '\0')
            return true;
    }
    return false;
}

/* The model with the set of its byte pairs (256 bits, hashed): a word
 * whose first two bytes are not a pair of the model is not in it, which
 * rules out most of the few dozen words tested without a scan. */
typedef struct mdl {
    vd_str m;
    uint64_t pairs[4];
} mdl;

static unsigned pair_hash(unsigned char a, unsigned char b)
{
    return (a * 31u + b) & 255u;
}

static void mdl_make(mdl *mm, vd_str m)
{
    mm->m = m;
    memset(mm->pairs, 0, sizeof mm->pairs);
    for (size_t i = 0; i + 1 < m.n; i++) {
        unsigned h = pair_hash((unsigned char)m.p[i], (unsigned char)m.p[i + 1]);
        mm->pairs[h / 64] |= (uint64_t)1 << (h % 64);
    }
}

/* Whether w (2+ bytes) may be in the model: its first pair is. */
static bool mdl_maybe(const mdl *mm, const char *w)
{
    unsigned h = pair_hash((unsigned char)w[0], (unsigned char)w[1]);
    return (mm->pairs[h / 64] >> (h % 64)) & 1u;
}

/* model_has for words of 2+ bytes, with the pair test first. */
static bool mhas(const mdl *mm, const char *w)
{
    return mdl_maybe(mm, w) && model_has(mm->m, w);
}

/* The word w in the model standing on its own at least on one side
 * ("Rombica TV Air", "rk3128_box", "SberBox") rather than inside another
 * word ("HTV33", "RunboX5", "TURBOX_I4G"). */
static bool model_word(vd_str m, const char *w, bool digit_after)
{
    size_t n = strlen(w);
    for (const char *p = m.p, *end = m.p + m.n; p + n <= end; p++) {
        p = find(p, (size_t)(end - p), w, n);
        if (!p)
            return false;
        char before = p > m.p ? p[-1] : ' ', after = p + n < end ? p[n] : ' ';
        if (before == 'd' && w[0] == 't')
            continue;                  /* "DTV": a phone or tablet with a TV tuner */
        if (digit_after ? is_digit(after)
                        : (!is_alpha(before) || after == ' ' || after == '-' || p + n == end))
            return true;
    }
    return false;
}

/* "STB" (set-top box) not at the end of a longer word: "Ematic STB",
 * "stb_x", but not a tablet's "DG101HSTB". */
static bool model_stb(vd_str m)
{
    for (const char *p = m.p, *end = m.p + m.n; p + 3 <= end; p++) {
        p = find(p, (size_t)(end - p), "stb", 3);
        if (!p)
            return false;
        if (p == m.p || !is_alpha(p[-1]))
            return true;
    }
    return false;
}

/* A product family name at the start of a word and not followed by more
 * digits: "H96 Max", "XGODY_X96", "pendoo T95" but not "LG-H968". */
static bool model_family(vd_str m, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = m.p, *end = m.p + m.n; p + n <= end; p++) {
        p = find(p, (size_t)(end - p), w, n);
        if (!p)
            return false;
        bool start = p == m.p || p[-1] == ' ' || p[-1] == '_' || p[-1] == '-';
        if (start && (p + n == end || !is_digit(p[n])))
            return true;
    }
    return false;
}

/* "4K"/"8K" as a resolution ("AS4K-2X", "Transpeed_6K"), not inside a
 * number ("SO-04K", "704KC"). */
static bool model_resolution(vd_str m)
{
    for (size_t i = 1; i + 1 < m.n; i++)
        if ((m.p[i] == '4' || m.p[i] == '8') && m.p[i + 1] == 'k' && !is_digit(m.p[i - 1]))
            return true;
    return m.n >= 2 && (m.p[0] == '4' || m.p[0] == '8') && m.p[1] == 'k';
}

/* A screen size in pixels in the model name ("audi_ks1280x480"): car head
 * units and displays name their panel; phones and tablets do not. */
static bool model_pixels(vd_str m)
{
    for (size_t i = 3; i + 4 <= m.n; i++) {
        if (m.p[i] != 'x' || !is_digit(m.p[i - 1]) || !is_digit(m.p[i - 2]) ||
            !is_digit(m.p[i - 3]) || !is_digit(m.p[i + 1]) || !is_digit(m.p[i + 2]) ||
            !is_digit(m.p[i + 3]))
            continue;
        return true;
    }
    return false;
}

/* "K43DLJ10US", "LT-55NX8001S", "SABA_42SB6000F": a short maker prefix, a
 * common TV diagonal in inches, then more letters — how TV sets are named.
 * Phones put digits after their series letter ("SM-A325F") instead.
 * panel_at checks the size code itself, starting at m.p[i]. */
static bool panel_at(vd_str m, size_t i)
{
    static const char sizes[][3] = { "22", "24", "28", "32", "39", "40", "42", "43", "49",
                                     "50", "55", "58", "65", "75", "85" };
    if (i + 6 > m.n || !is_digit(m.p[i]) || !is_digit(m.p[i + 1]) || !is_alpha(m.p[i + 2]))
        return false;
    /* The rest is a product code with digits ("F8000C"), not a phone or
     * tablet suffix ("Pro_ROW", "S_EEA", "L_4G"). */
    vd_str tail = vd_str_make(m.p + i + 2, m.n - i - 2);
    bool digits = false;
    for (size_t k = 0; k < tail.n; k++)
        digits |= is_digit(tail.p[k]);
    if (!digits && tail.n >= 5 && memcmp(tail.p, "smart", 5) == 0)
        digits = true;             /* "ELED-32SMART": a size, then "Smart" (TV) */
    if (!digits || model_has(tail, "4g") || model_has(tail, "5g") || model_has(tail, "lte") ||
        model_has(tail, "tab") || model_has(tail, "pad"))
        return false;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (m.p[i] == sizes[k][0] && m.p[i + 1] == sizes[k][1])
            return true;
    return false;
}

static bool model_panel_size(vd_str m)
{
    size_t i = 0;
    while (i < m.n && i < 5 && is_alpha(m.p[i]))
        i++;
    if (i < m.n && (m.p[i] == '-' || m.p[i] == '_'))
        i++;
    if (panel_at(m, i))
        return true;
    /* ... or as a later word of a longer name: "HARPER 58U750TS",
     * "NEKO_W_LT_32NH7020S", "Onvo_50OV6000U". */
    for (size_t k = 1; k + 1 < m.n; k++)
        if ((m.p[k - 1] == ' ' || m.p[k - 1] == '_' || m.p[k - 1] == '-') && panel_at(m, k))
            return true;
    return false;
}

/* TV sets name their models after the screen size ("32LF7130S", "55OLED"),
 * set-top boxes call themselves boxes. */
static bool model_is_tv(const mdl *mm)
{
    vd_str m = mm->m;
    if (mhas(mm, "letv"))          /* LeTV, a phone brand */
        return false;
    if ((mdl_maybe(mm, "tv") && model_word(m, "tv", false)) ||
        (mdl_maybe(mm, "bo") && model_word(m, "box", false)) ||
        (mdl_maybe(mm, "st") && (model_stb(m) || model_word(m, "stb", true))) ||
        (mdl_maybe(mm, "le") && model_word(m, "led", true)))   /* "LED32": a panel size */
        return true;
    if (model_panel_size(m) || model_resolution(m) || model_pixels(m))
        return true;
    static const char *const families[] = { "x96", "h96", "a95x", "t95", "mxq" };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (mdl_maybe(mm, families[i]) && model_family(m, families[i]))
            return true;
    /* TV box makers, single-board computers, handheld consoles, media
     * players and cameras running Android; "atv"/"dvb"/"hdr"/"uhd" are what
     * set-top boxes put in their names. */
    static const char *const words[] = {
        "dongle", "shell", "atv",
        "dvb", "hdr", "uhd", "beelink", "zidoo", "ugoos", "vontar", "mecool", "formuler",
        "nexus player", "mygica", "vorke", "mk80", "rk3", "tinker board", "raspberry",
        "odroid", "retroid", "gamepad", "fiio", "coolpix", "evpad", "amlogic", "nexon",
        "selenga", "iconbit", "polarline", "polar_",
        /* Smart displays (Baidu Xiaodu "XDH-"), media players (Samsung Galaxy
         * Player "YP-G", Sony Walkman "NW-A"/"NW-ZX", Cowon, iriver, HiBy),
         * POS terminals, streaming sticks and Linux satellite receivers. */
        "xdh-", "xiaodu", "yp-g", "nw-a", "nw-zx", "cowon", "iriver", "hiby", "smartpos",
        "chromecast", "dreambox", "enigma2",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (mhas(mm, words[i]))
            return true;
    return false;
}

/* Tablet product codes of the larger Android makers: Huawei MediaPad/MatePad
 * ("AGS3-W09", "BAH2-L09"...), LG G Pad ("LG-V410", "LM-T600"), Lenovo Yoga
 * Tab ("YT3-X50F"), Prestigio MultiPad ("PMT3101_4G"), Alldocube iPlay,
 * PocketBook, Acer Iconia ("B1-733"), Digma ("CITI", "Optima", "Plane" +
 * "...PL/PG" codes) and Irbis ("TZ7xx"). Checked only on the model name. */
static const char *const tablet_model_prefixes[] = {
    "ags", "agrk", "bah", "bg2-", "bzt", "bzi", "kob", "sht-", "cmr-", "scm-", "mrx-",
    "dby", "hdl-", "vrd-", "got-", "cpn-", "mon-", "bgo-", "jdn", "lg-v", "lm-t",
    "yt3-", "yt-", "pmt", "iplay", "pocketbook", "b1-", "a1-", "citi ", "optima ",
    "plane ", "tz7", "pixel c", "nomi c", "rmd-", "tpc", "samsung-sm-t",
    "huawei m2-", "pmp", "bq-7", "bq-8", "bq-1", /* BQ phones are BQ-4xxx..6xxx */
    "opd", "rmp",              /* OPPO Pad, realme Pad (their phones: CPH, RMX) */
    /* Tablet-only lines and makers: Allview Viva, Ainol Novo, Irbis TZ, Acer
     * Iconia A3-A/B3-A, Verizon Ellipsis (QTA), RCA Voyager (RCT6), Sony
     * Xperia Tablet (SGP), Teclast, Chuwi. */
    "viva", "novo", "tz", "a3-a", "b3-a", "qta", "rct6", "sgp", "teclast", "chuwi",
    "nokia t1", "nokia t2",    /* Nokia T10/T20/T21 (phones: "Nokia TA-1053") */
};

#define NPREFIXES (sizeof tablet_model_prefixes / sizeof tablet_model_prefixes[0])

/* tablet_model_prefixes by first byte: pfx.idx[pfx.start[c] .. pfx.start[c + 1]]
 * (built with the token index, tok_index_build). */
static struct {
    uint8_t start[257];
    uint8_t idx[NPREFIXES];
} pfx;
_Static_assert(NPREFIXES < 256, "tablet_model_prefixes: 8-bit indexes");

/* Huawei and Honor product codes: 3-4 letters, an optional generation
 * digit, then the variant; "-W" variants ("BAH2-W09", "MRX-W29") are the
 * Wi-Fi-only ones, which only tablets are. Phones are "-L", "-AL", "-LX". */
static bool model_huawei_wifi(vd_str m)
{
    size_t i = 0;
    while (i < m.n && i < 4 && is_alpha(m.p[i]))
        i++;
    if (i < 3)
        return false;
    if (i < m.n && is_digit(m.p[i]))
        i++;
    return i + 4 <= m.n && m.p[i] == '-' && m.p[i + 1] == 'w' && is_digit(m.p[i + 2]) &&
           is_digit(m.p[i + 3]);
}

/* Generic Chinese tablets code the screen diagonal in inches right after a
 * short maker prefix: "MT0739D", "RC0719H", "HT0704K08" (7"), "LC0901D",
 * "IQ1019N" (10"). Phones with 4-digit codes start 1xxx/2xxx with no
 * leading zero ("XT1080", "TA-1032"), so 10/11 also need a letter after. */
static bool model_size_code(vd_str m, bool later)
{
    size_t letters = 0;
    while (letters < m.n && letters < 4 && is_alpha(m.p[letters]))
        letters++;
    if (letters == 0)
        return false;
    size_t i = letters;
    bool dash = i < m.n && m.p[i] == '-';
    if (i < m.n && (m.p[i] == '-' || m.p[i] == '_' || m.p[i] == ' '))
        i++;
    size_t digits = 0;
    while (i + digits < m.n && is_digit(m.p[i + digits]))
        digits++;
    if (digits < 3)
        return false;
    char a = m.p[i], b = m.p[i + 1];
    /* As a later word ZTE's phones look alike ("ZTE Blade V0720"): there
     * only the longer serials of tablet makers count ("Nomi_C080014"). */
    if (letters <= 3 && digits >= (later ? 5u : 4u) && a == '0' && b >= '7' && b <= '9')
        return true;
    if (letters >= 2 && letters <= 3 && i == letters && digits == 4 && a == '1' &&
        (b == '0' || b == '1') && i + 4 < m.n && is_alpha(m.p[i + 4]))
        return true;
    /* "DG101HSTB": 101 for a 10.1" screen, then series letters. */
    if (letters >= 2 && letters <= 3 && digits == 3 && a == '1' && b == '0' && m.p[i + 2] == '1' &&
        i + 3 < m.n && is_alpha(m.p[i + 3]))
        return true;
    /* "BQ-7008G", "TM-7026", "MID-783G", "AP-727G": maker, dash, then a
     * 7xx/8xx model number (7" and 8" screens). Phones of the same makers
     * start at 4-6 ("BQ-5515"), bigger brands put a series letter after the
     * dash ("LG-H815", "SM-A325F"). */
    return dash && letters >= 2 && (a == '7' || a == '8');
}

/* Digma-style product codes as a word of their own: two letters, the
 * diagonal (7-9 or 1x inches), two digits, two letters ("PS8145PG",
 * "TT1236PG"); the phones of the same makers use 4-6 ("LT4028PG"). */
static bool model_digma_code(vd_str m)
{
    for (size_t i = 0; i + 8 <= m.n; i++) {
        if (i > 0 && m.p[i - 1] != ' ' && m.p[i - 1] != '_' && m.p[i - 1] != '-')
            continue;
        const char *w = m.p + i;
        if (!is_alpha(w[0]) || !is_alpha(w[1]) || !is_digit(w[2]) || !is_digit(w[3]) ||
            !is_digit(w[4]) || !is_digit(w[5]) || !is_alpha(w[6]) || !is_alpha(w[7]))
            continue;
        if (i + 8 < m.n && m.p[i + 8] != ' ' && m.p[i + 8] != '_' && m.p[i + 8] != '-')
            continue;
        if (w[2] >= '7' || w[2] == '1')
            return true;
    }
    return false;
}

/* Vendor code schemes that set tablets apart: Xiaomi puts "RP" (Redmi /
 * Xiaomi Pad) after the date digits ("23073RPBFG"), Walmart's onn. tablets
 * are nine digits "1000xxxxx". (Asus's "K0xx"/"P0xx" was tried: it also
 * names the Fonepad phablets.) */
static bool model_vendor_code(vd_str m)
{
    if (m.n >= 7 && m.p[5] == 'r' && m.p[6] == 'p') {
        bool digits = true;
        for (size_t i = 0; i < 5; i++)
            digits &= is_digit(m.p[i]);
        if (digits)
            return true;
    }
    if (m.n == 9 && memcmp(m.p, "1000", 4) == 0) {
        bool digits = true;
        for (size_t i = 4; i < 9; i++)
            digits &= is_digit(m.p[i]);
        if (digits)
            return true;
    }
    return false;
}

/* "10LA1", "7DY": the whole name is the diagonal (7, 8 or 10 inches), one
 * or two series letters and at most one digit. */
static bool model_diagonal_first(vd_str m)
{
    size_t i = 0;
    if (m.n >= 2 && m.p[0] == '1' && m.p[1] == '0')
        i = 2;
    else if (m.n >= 1 && (m.p[0] == '7' || m.p[0] == '8'))
        i = 1;
    else
        return false;
    size_t letters = 0;
    while (i < m.n && is_alpha(m.p[i]) && letters < 3) {
        i++;
        letters++;
    }
    if (letters == 0 || letters > 2)
        return false;
    if (i < m.n && is_digit(m.p[i]))
        i++;
    return i == m.n;
}

/* "ALFA_7MRC", "Element_8V2": the diagonal (7 or 8 inches) right after a
 * separator and followed by series letters, as in model_diagonal_first but
 * as a later word. */
static bool model_diagonal_later(vd_str m)
{
    for (size_t i = 1; i + 1 < m.n; i++)
        if ((m.p[i - 1] == '_' || m.p[i - 1] == '-') && (m.p[i] == '7' || m.p[i] == '8') &&
            is_alpha(m.p[i + 1]))
            return true;
    return false;
}

static bool model_is_tablet(const mdl *mm)
{
    vd_str m = mm->m;
    if (mhas(mm, "coolpad") || mhas(mm, "padfone"))   /* phones */
        return false;
    static const char *const words[] = { "tab", "pad", "slide", "slate" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (mhas(mm, words[i]))
            return true;
    /* Only the prefixes starting with the model's first byte. */
    for (unsigned i = pfx.start[(unsigned char)m.p[0]], end = pfx.start[(unsigned char)m.p[0] + 1];
         i < end; i++) {
        const char *t = tablet_model_prefixes[pfx.idx[i]];
        size_t n = strlen(t);
        if (m.n >= n && memcmp(m.p, t, n) == 0)
            return true;
    }
    /* Alcatel names phones 4xxx-6xxx and tablets 9xxx ("9013X"). */
    if (m.n >= 4 && m.n <= 9 && m.p[0] == '9' && is_digit(m.p[1]) &&
        is_digit(m.p[2]) && is_digit(m.p[3]) && (m.n == 4 || !is_digit(m.p[4])))
        return true;
    /* Only tablets are sold without a cellular modem: "Wi-Fi" in the name. */
    if (mhas(mm, "wifi") || mhas(mm, "wi-fi") || mhas(mm, "_wi_"))
        return true;
    if (mhas(mm, "kids") || (mdl_maybe(mm, "ki") && model_word(m, "kid", false)))   /* children's tablets */
        return true;
    if (model_diagonal_first(m) || model_diagonal_later(m) || model_huawei_wifi(m) || model_digma_code(m) || model_vendor_code(m))
        return true;
    /* Size codes also as a later word: "Nomi_C080014", "Optima 1027N". */
    for (size_t k = 0; k < m.n; k++)
        if ((k == 0 || m.p[k - 1] == ' ' || m.p[k - 1] == '_') &&
            model_size_code(vd_str_make(m.p + k, m.n - k), k > 0))
            return true;
    return false;
}

/* -------------------------------------------------------------- families */

typedef struct fam_rule {
    const char *tok;
    uint8_t n;
    uint16_t h_first, h_last;
    const char *family;
} fam_rule;

#define F(lit, fam) { (lit), (uint8_t)(sizeof(lit) - 1), TRI_FIRST(lit), TRI_LAST(lit), (fam) }

/* OS families in device-detector's vocabulary. Order matters: Windows Phone
 * before Windows, Android before Linux, iOS ("like Mac OS X") before Mac. */
static const fam_rule os_rules[] = {
    F("windows phone", "Windows Mobile"), F("windows mobile", "Windows Mobile"),
    F("windows ce", "Windows Mobile"), F("iemobile", "Windows Mobile"),
    F("kaios", "Firefox OS"),
    F("openharmony", "OpenHarmony"),
    F("wpdesktop", "Windows Mobile"), F("wds ", "Windows Mobile"),
    F("chromebook", "Chrome OS"), F("crosarc", "Chrome OS"), F("cros ", "Chrome OS"),
    F("android", "Android"), F("harmonyos", "Android"), F("silk/", "Android"),
    F("adr ", "Android"),           /* UC Browser's abbreviation */
    F("dv(iph", "iOS"),             /* UC Browser's iPhone UA */
    F("mac os/", "Mac"), F("(x86_64)", "Mac"),   /* Mac apps: "CFNetwork/.. Darwin/.. (x86_64)" */
    F("iphone", "iOS"), F("ipad", "iOS"), F("ipod", "iOS"), F("like mac os x", "iOS"),
    F("watchos", "iOS"), F("tvos", "iOS"), F("appletv", "iOS"), F("cfnetwork", "iOS"),
    F("blackberry", "BlackBerry"), F("bb10", "BlackBerry"), F("rim tablet", "BlackBerry"),
    F("symbian", "Symbian"), F("series60", "Symbian"), F("s60;", "Symbian"),
    F("macintosh", "Mac"), F("mac os x", "Mac"), F("mac_powerpc", "Mac"),
    F("macos", "Mac"), F("darwin", "Mac"),
    F("windows", "Windows"), F("win32", "Windows"), F("win64", "Windows"),
    F("win9", "Windows"), F("wow64", "Windows"),
    F("web0s", "Other Mobile"), F("webos", "Other Mobile"), F("tizen", "Other Mobile"),
    F("bada", "Other Mobile"), F("palmos", "Other Mobile"), F("palmsource", "Other Mobile"),
    F("meego", "Other Mobile"), F("sailfish", "Other Mobile"),
    F("j2me", "Real-time OS"), F("midp", "Real-time OS"), F("mre/", "Real-time OS"),
    F("up.browser", "Real-time OS"), F("mmp/", "Real-time OS"),
    F("whale", "Other Smart TV"), F("maple", "Other Smart TV"), F("zeasn", "Other Smart TV"),
    F("freebsd", "Unix"), F("openbsd", "Unix"), F("netbsd", "Unix"),
    F("sunos", "Unix"), F("solaris", "Unix"),
    F("playstation portable", "Mobile Gaming Console"), F("psp", "Mobile Gaming Console"),
    F("nintendo 3ds", "Mobile Gaming Console"), F("nintendo ds", "Mobile Gaming Console"),
    F("playstation", "Gaming Console"), F("nintendo", "Gaming Console"),
    F("xbox", "Windows"),
    F("brew", "Brew"),
    F("beos", "BeOS"), F("haiku", "BeOS"),
    F("openvms", "OpenVMS"),
    F("linux", "GNU/Linux"), F("x11", "GNU/Linux"), F("ubuntu", "GNU/Linux"),
    F("vidaa", "GNU/Linux"), F("tivo", "GNU/Linux"), F("vizios", "GNU/Linux"),
    F("roku", "GNU/Linux"), F("fedora", "GNU/Linux"), F("debian", "GNU/Linux"),
};

/* Browser families in device-detector's vocabulary (Edge counts as Internet
 * Explorer there). Browsers device-detector has no family for map to NULL. */
static const char nofam[] = "";     /* an address constant, compared by address */
#define NOFAM nofam
static const fam_rule browser_rules[] = {
    F("edg/", "Internet Explorer"), F("edge/", "Internet Explorer"),
    F("edga/", "Internet Explorer"), F("edgios/", "Internet Explorer"),
    F("msie", "Internet Explorer"), F("trident/", "Internet Explorer"),
    F("iemobile", "Internet Explorer"),
    F("opr/", "Opera"), F("opt/", "Opera"), F("opios/", "Opera"), F("opera mini", "Opera"),
    F("opera mobi", "Opera"), F("opera tablet", "Opera"),
    F("yabrowser", NOFAM), F("yasearchbrowser", NOFAM), F("ucbrowser", NOFAM),
    F("ucweb", NOFAM), F("mqqbrowser", NOFAM), F("qqbrowser", NOFAM),
    F("baiduboxapp", NOFAM), F("fban", NOFAM), F("fbav", NOFAM),
    F("instagram", NOFAM), F("micromessenger", NOFAM), F("naver", NOFAM),
    F("gsa/", NOFAM), F("vivobrowser", NOFAM), F("lg browser", NOFAM),
    F("maxthon", NOFAM), F("whatsapp", NOFAM),
    F("bidubrowser", "Baidu"), F("baidubrowser", "Baidu"),
    F("samsungbrowser", "Chrome"), F("miuibrowser", "Chrome"),
    F("huaweibrowser", "Chrome"), F("silk/", "Chrome"), F("crios/", "Chrome"),
    F("chrome/", "Chrome"), F("chromium", "Chrome"), F("crmo/", "Chrome"),
    F("opera", "Opera"),            /* Presto Opera; after Chrome for Opera-branded Chromium TVs */
    F("dalvik", "Android Browser"), /* the Android runtime's own HTTP UA */
    F("fxios/", "Firefox"), F("firefox", "Firefox"), F("fennec", "Firefox"),
    F("iceweasel", "Firefox"),
    F("netfront", "NetFront"), F("nf-browser", "NetFront"),
    F("nokiabrowser", "Nokia Browser"), F("browserng", "Nokia Browser"),
    F("konqueror", "Konqueror"),
};

/* ------------------------------------------------------------ tok_index */

/* All the token tables above (type words, OS and browser families) are
 * searched in one pass over the UA instead of token by token: an index
 * from the hash of a token's first 3 bytes (the window hash fill_buf
 * computes at every offset anyway) to the table entries starting with
 * them. At each offset whose window starts a token, that token is
 * compared in place and its bit set in u->present. A table test is then a
 * look at its bits, and a family table's first match in table order is its
 * lowest bit. Tokens shorter than 3 bytes ("@") are searched with find().
 * The index is built once per process (pthread_once), from the tables. */
enum tab_id {
    TAB_word_tokens,          /* first: its bits are present[0] (has_word) */
    TAB_bot_tokens, TAB_weak_bot_tokens, TAB_desktop_app_tokens, TAB_tool_tokens,
    TAB_bot_exceptions, TAB_other_tokens, TAB_other_exceptions, TAB_tablet_tokens,
    TAB_tablet_exceptions, TAB_mobile_tokens, TAB_mobile_generic_tokens,
    TAB_mobile_first_tokens, TAB_desktop_first_tokens, TAB_desktop_tokens, TAB_os_rules,
    TAB_browser_rules, TAB__COUNT
};

typedef struct tab_reg {
    const char *base;         /* the table's first entry */
    size_t stride, count;
    size_t s_off, n_off;      /* where an entry keeps its string and its length */
    unsigned word0;           /* its first word in ua_buf.present */
} tab_reg;

#define REG_T(a) { (const char *)(a), sizeof(tok), sizeof(a) / sizeof((a)[0]), \
                   offsetof(tok, s), offsetof(tok, n), 0 }
#define REG_F(a) { (const char *)(a), sizeof(fam_rule), sizeof(a) / sizeof((a)[0]), \
                   offsetof(fam_rule, tok), offsetof(fam_rule, n), 0 }

static tab_reg tabs[TAB__COUNT] = {
    [TAB_bot_tokens] = REG_T(bot_tokens), [TAB_weak_bot_tokens] = REG_T(weak_bot_tokens),
    [TAB_desktop_app_tokens] = REG_T(desktop_app_tokens), [TAB_tool_tokens] = REG_T(tool_tokens),
    [TAB_bot_exceptions] = REG_T(bot_exceptions), [TAB_other_tokens] = REG_T(other_tokens),
    [TAB_other_exceptions] = REG_T(other_exceptions), [TAB_tablet_tokens] = REG_T(tablet_tokens),
    [TAB_tablet_exceptions] = REG_T(tablet_exceptions), [TAB_mobile_tokens] = REG_T(mobile_tokens),
    [TAB_mobile_generic_tokens] = REG_T(mobile_generic_tokens),
    [TAB_mobile_first_tokens] = REG_T(mobile_first_tokens),
    [TAB_desktop_first_tokens] = REG_T(desktop_first_tokens),
    [TAB_desktop_tokens] = REG_T(desktop_tokens), [TAB_os_rules] = REG_F(os_rules),
    [TAB_browser_rules] = REG_F(browser_rules), [TAB_word_tokens] = REG_T(word_tokens),
};

#define NTOKENS                                                                              \
    (sizeof bot_tokens / sizeof(tok) + sizeof weak_bot_tokens / sizeof(tok) +                \
     sizeof desktop_app_tokens / sizeof(tok) + sizeof tool_tokens / sizeof(tok) +            \
     sizeof bot_exceptions / sizeof(tok) + sizeof other_tokens / sizeof(tok) +               \
     sizeof other_exceptions / sizeof(tok) + sizeof tablet_tokens / sizeof(tok) +            \
     sizeof tablet_exceptions / sizeof(tok) + sizeof mobile_tokens / sizeof(tok) +           \
     sizeof mobile_generic_tokens / sizeof(tok) + sizeof mobile_first_tokens / sizeof(tok) + \
     sizeof desktop_first_tokens / sizeof(tok) + sizeof desktop_tokens / sizeof(tok) +       \
     sizeof os_rules / sizeof(fam_rule) + sizeof browser_rules / sizeof(fam_rule) +           \
     sizeof word_tokens / sizeof(tok))
/* Each table starts on a word: at most one partly used word per table. */
_Static_assert(NTOKENS / 64 + TAB__COUNT <= PRESENT_WORDS, "PRESENT_WORDS too small");

typedef struct tok_ent {
    uint64_t w8, mask8;       /* its first (up to) 8 bytes, little-endian, and their mask */
    uint16_t n;
    uint16_t bit;             /* in ua_buf.present */
    uint16_t off;             /* the offset of the window it is indexed by */
    const char *s;
} tok_ent;

static struct {
    pthread_once_t once;
    uint16_t start[TRI_BITS + 1];   /* entries whose first window hashes to h: [start[h], start[h+1]) */
    tok_ent ent[NTOKENS];           /* tokens of 3+ bytes, by first-window hash */
    tok_ent shorts[8];              /* tokens of 1-2 bytes */
    unsigned nshort;
} ti = { .once = PTHREAD_ONCE_INIT };

static void prefix_index_build(void)
{
    unsigned count[257] = { 0 }, at = 0;
    for (size_t i = 0; i < NPREFIXES; i++)
        count[(unsigned char)tablet_model_prefixes[i][0]]++;
    for (unsigned c = 0; c < 256; c++) {
        pfx.start[c] = (uint8_t)at;
        at += count[c];
        count[c] = pfx.start[c];
    }
    pfx.start[256] = (uint8_t)at;
    for (size_t i = 0; i < NPREFIXES; i++)
        pfx.idx[count[(unsigned char)tablet_model_prefixes[i][0]]++] = (uint8_t)i;
}

/* What most User-Agents are made of: the windows of these are the ones a
 * token is better not indexed by (it would be looked at on most UAs). */
static const char *const common_uas[] = {
    "mozilla/5.0 (linux; android 10; k) applewebkit/537.36 (khtml, like gecko) "
    "chrome/120.0.0.0 mobile safari/537.36",
    "mozilla/5.0 (iphone; cpu iphone os 17_1 like mac os x) applewebkit/605.1.15 (khtml, "
    "like gecko) version/17.1 mobile/15e148 safari/604.1",
    "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) "
    "chrome/120.0.0.0 safari/537.36 edg/120.0.0.0",
    "mozilla/5.0 (macintosh; intel mac os x 10_15_7) applewebkit/605.1.15 (khtml, like "
    "gecko) version/17.1 safari/605.1.15",
    "mozilla/5.0 (x11; linux x86_64; rv:121.0) gecko/20100101 firefox/121.0",
    "mozilla/5.0 (linux; u; android 4.4.2; en-us; sm-t230 build/kot49h) applewebkit/534.30 "
    "(khtml, like gecko) version/4.0 safari/534.30",
};

static void tok_index_build(void)
{
    static uint8_t common[TRI_BITS];
    for (size_t k = 0; k < sizeof common_uas / sizeof common_uas[0]; k++)
        for (const char *c = common_uas[k]; c[0] && c[1] && c[2]; c++)
            if (common[tri_hash(c)] < UINT8_MAX)
                common[tri_hash(c)]++;
    prefix_index_build();
    static uint16_t count[TRI_BITS];
    unsigned word = 0, nent = 0;
    for (unsigned pass = 0; pass < 2; pass++) {
        word = 0;
        for (unsigned t = 0; t < TAB__COUNT; t++) {
            tab_reg *r = &tabs[t];
            r->word0 = word;
            for (size_t i = 0; i < r->count; i++) {
                const char *e = r->base + i * r->stride;
                const char *str = *(const char *const *)(const void *)(e + r->s_off);
                uint8_t n = *(const uint8_t *)(e + r->n_off);
                tok_ent te = { 0, 0, n, (uint16_t)(word * 64 + i), 0, str };
                for (unsigned k = 0; k < n && k < 8; k++) {
                    te.w8 |= (uint64_t)(unsigned char)str[k] << (8 * k);
                    te.mask8 |= (uint64_t)0xff << (8 * k);
                }
                if (n < 3) {
                    if (pass == 1 && ti.nshort < sizeof ti.shorts / sizeof ti.shorts[0])
                        ti.shorts[ti.nshort++] = te;
                    continue;
                }
                /* Indexed by its window least common in browser UAs, so
                 * "android tv" is not looked at wherever "android" is. */
                for (unsigned k = 1; k + 3 <= n; k++)
                    if (common[tri_hash(str + k)] < common[tri_hash(str + te.off)])
                        te.off = (uint16_t)k;
                unsigned h = tri_hash(str + te.off);
                if (pass == 0)
                    count[h]++;
                else
                    ti.ent[ti.start[h] + --count[h]] = te;
            }
            word += (unsigned)((r->count + 63) / 64);
        }
        if (pass == 0) {
            for (unsigned h = 0; h < TRI_BITS; h++) {
                ti.start[h] = (uint16_t)nent;
                nent += count[h];
            }
            ti.start[TRI_BITS] = (uint16_t)nent;
        }
    }
}

static void tok_index_init(void)
{
    pthread_once(&ti.once, tok_index_build);
}

static bool has_any(const ua_buf *u, enum tab_id t)
{
    const tab_reg *r = &tabs[t];
    for (unsigned w = r->word0, end = w + (unsigned)((r->count + 63) / 64); w < end; w++)
        if (u->present[w])
            return true;
    return false;
}

/* The first entry of a family table (in table order) found in the UA. */
static const fam_rule *family(const ua_buf *u, const fam_rule *rules, enum tab_id t)
{
    const tab_reg *r = &tabs[t];
    for (unsigned w = r->word0, end = w + (unsigned)((r->count + 63) / 64); w < end; w++)
        if (u->present[w])
            return &rules[(w - r->word0) * 64 + (unsigned)__builtin_ctzll(u->present[w])];
    return NULL;
}

/* The browser table first; then WebKit browsers without a brand token, told
 * apart by the OS (the stock Android and BlackBerry browsers, Safari). */
static const char *browser_of(const ua_buf *u, const char *os)
{
    const fam_rule *r = family(u, browser_rules, TAB_browser_rules);
    if (r)
        return r->family == NOFAM ? NULL : r->family;
    if (!HAS(u, W_SAFARI) && !HAS(u, W_VERSION))
        return NULL;
    if (os && strcmp(os, "Android") == 0)
        return "Android Browser";   /* the stock AOSP browser: no Chrome token */
    if (os && strcmp(os, "BlackBerry") == 0)
        return "BlackBerry Browser";
    if (HAS(u, W_SAFARI))
        return "Safari";
    return NULL;
}

/* ------------------------------------------------------------- classify */

/* "bot" ending a word ("Googlebot/2.1", "AhrefsBot;", "bots"), not inside
 * one ("Banca Caboto", "Abbottabad"). */
static bool has_bot_word(const ua_buf *u)
{
    if (!HAS(u, W_BOT))
        return false;
    const char *end = u->s + u->n;
    for (const char *p = u->s; p + 3 <= end; p += 3) {
        p = find(p, (size_t)(end - p), "bot", 3);
        if (!p)
            return false;
        const char *q = p + 3;
        if (q < end && *q == 's')
            q++;
        if (q == end || !is_alpha(*q))
            return true;
    }
    return false;
}

/* isbot's list (bots.c), with the window set it guards its patterns by:
 * built here, as only the few UAs that get this far need it. */
static bool bots_match(const ua_buf *u)
{
    uint64_t tri[TRI_BITS / 64] = { 0 };
    const unsigned char *us = (const unsigned char *)u->s;
    uint32_t v = u->n ? us[0] : 0;
    if (u->n > 1)
        v |= (uint32_t)us[1] << 8;
    for (size_t i = 0; i + 3 <= u->n; i++) {
        v |= (uint32_t)us[i + 2] << 16;
        unsigned h = (unsigned)((v * 2654435761u) >> 20);   /* vd_tri_hash(us + i) */
        tri[h / 64] |= (uint64_t)1 << (h % 64);
        v >>= 8;
    }
    return vd_bots_match(u->s, u->n, tri) >= 0;
}

static uint8_t type_of(const ua_buf *u)
{
    if (u->n == 0)
        return VD_DEVICE_OTHER;
    if ((has_bot_word(u) || HAS_ANY(u, bot_tokens)) && !HAS_ANY(u, bot_exceptions))
        return VD_DEVICE_BOT;
    /* A browser UA carrying a URL: browsers never do, crawlers that borrow a
     * browser's UA add one to say who they are. */
    if (u->n > 8 && memcmp(u->s, "mozilla/", 8) == 0 &&
        (HAS(u, W_HTTP) || HAS(u, W_HTTPS) || HAS(u, W_DOTCOM)))
        return VD_DEVICE_BOT;
    if (HAS_ANY(u, other_tokens) && !HAS_ANY(u, other_exceptions))
        return VD_DEVICE_OTHER;
    /* Linux on ARM with neither Android nor a desktop (X11, Wayland): the
     * embedded browsers of TVs, Blu-ray players and boxes. */
    if ((HAS(u, W_LINUX_ARM) || HAS(u, W_ARMV6) || HAS(u, W_ARMV7)) && !HAS(u, W_ANDROID) &&
        !HAS(u, W_X11) && !HAS(u, W_WAYLAND) && !HAS(u, W_UBUNTU) && !HAS(u, W_CROS))
        return VD_DEVICE_OTHER;
    vd_str model = android_model(u);
    mdl mm;
    if (model.n)
        mdl_make(&mm, model);
    if (model.n && model_is_tv(&mm))
        return VD_DEVICE_OTHER;
    if (HAS_ANY(u, mobile_first_tokens))
        return VD_DEVICE_MOBILE;
    if (HAS_ANY(u, desktop_first_tokens))
        return VD_DEVICE_DESKTOP;
    /* IE and Edge on Windows 8+ say "Touch" only on touch-first devices:
     * Windows tablets and convertibles (Windows phones were caught above). */
    if (HAS(u, W_WINDOWS_NT) && (HAS(u, W_TOUCH_SEMI) || HAS(u, W_TOUCH_PAREN)))
        return VD_DEVICE_TABLET;
    if ((HAS_ANY(u, tablet_tokens) && !HAS_ANY(u, tablet_exceptions)) ||
        (model.n && model_is_tablet(&mm)))
        return VD_DEVICE_TABLET;
    if (HAS_ANY(u, mobile_tokens))
        return VD_DEVICE_MOBILE;
    if (HAS_ANY(u, mobile_generic_tokens))
        return VD_DEVICE_MOBILE;
    /* Android and no "Mobile": Google's convention for tablets, but only a
     * browser UA follows it; app and Dalvik UAs are phones far more often. */
    if (HAS(u, W_ANDROID) || HAS(u, W_ADR))
        return HAS(u, W_SAFARI) ? VD_DEVICE_TABLET : VD_DEVICE_MOBILE;
    if (HAS_ANY(u, desktop_app_tokens) && !HAS_ANY(u, tool_tokens))
        return VD_DEVICE_DESKTOP;
    if (HAS_ANY(u, weak_bot_tokens) || bots_match(u))
        return VD_DEVICE_BOT;
    if (HAS_ANY(u, desktop_tokens))
        return VD_DEVICE_DESKTOP;
    return VD_DEVICE_BOT;             /* names no platform: a tool */
}

static void fill_buf(ua_buf *u, const char *p, size_t n)
{
    tok_index_init();
    size_t len = u->n = p ? (n < VD_UA_MAX ? n : VD_UA_MAX) : 0;
    char *s = u->s;
    /* ASCII upper case folded eight bytes at a time: bit 7 of each byte of
     * (b & 0x7f) + 0x3f is b >= 'A', of (b & 0x7f) + 0x25 is b > 'Z'. */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x, hept;
        memcpy(&x, p + i, 8);
        hept = x & 0x7f7f7f7f7f7f7f7fu;
        uint64_t upper = ((hept + 0x3f3f3f3f3f3f3f3fu) ^ (hept + 0x2525252525252525u)) & ~x &
                         0x8080808080808080u;
        x |= upper >> 2;
        memcpy(s + i, &x, 8);
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        s[i] = (char)(c + ((unsigned)(c - 'A') < 26u ? 'a' - 'A' : 0));
    }
    memset(s + len, 0, 8);
    memset(u->present, 0, sizeof u->present);
    /* One pass: each table token found around a window (the one it is
     * indexed by, at its offset off) into the present set (its first bytes
     * compared as one word, the rest, if any, byte by byte). */
    if (len >= 3) {
        const unsigned char *us = (const unsigned char *)s;
        uint32_t v = (uint32_t)us[0] | (uint32_t)us[1] << 8;
        for (i = 0; i + 3 <= len; i++) {
            v |= (uint32_t)us[i + 2] << 16;
            unsigned h = (unsigned)((v * 2654435761u) >> 20);   /* VD_TRI_HASH */
            unsigned a = ti.start[h], b = ti.start[h + 1];
            for (; a < b; a++) {
                const tok_ent *e = &ti.ent[a];
                if (i < e->off || e->n > len - (i - e->off))
                    continue;
                const unsigned char *at = us + i - e->off;
                uint64_t x;
                memcpy(&x, at, 8);
                if ((x & e->mask8) != e->w8)
                    continue;
                unsigned k = 8;
                while (k < e->n && at[k] == (unsigned char)e->s[k])
                    k++;
                if (k >= e->n)
                    u->present[e->bit / 64] |= (uint64_t)1 << (e->bit % 64);
            }
            v >>= 8;
        }
    }
    for (unsigned k = 0; k < ti.nshort; k++) {
        const tok_ent *e = &ti.shorts[k];
        if (find(s, u->n, e->s, e->n))
            u->present[e->bit / 64] |= (uint64_t)1 << (e->bit % 64);
    }
}

static void classify_buf(const ua_buf *u, vd_device *out)
{
    out->type = type_of(u);
    if (out->type == VD_DEVICE_BOT || u->n == 0) {
        out->os = NULL;
        out->browser = NULL;
        return;
    }
    const fam_rule *os = family(u, os_rules, TAB_os_rules);
    out->os = os ? os->family : NULL;
    out->browser = browser_of(u, out->os);
}

void vd_device_classify(vd_str ua, vd_device *out)
{
    ua_buf u;
    fill_buf(&u, ua.p, ua.n);
    classify_buf(&u, out);
}

/* ---------------------------------------------------------- client hints */

/* A structured-header string ("\"Android\"") or a bare token, trimmed. */
static vd_str hint_value(vd_str s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    if (s.n >= 2 && s.p[0] == '"' && s.p[s.n - 1] == '"') {
        s.p++;
        s.n -= 2;
    }
    return s;
}

/* Sec-CH-UA-Platform values (the spec's list) in device-detector's OS
 * vocabulary; NULL for "Unknown" and anything else. */
static const char *platform_os(vd_str p)
{
    static const struct { const char *name, *os; } map[] = {
        { "Android", "Android" }, { "Windows", "Windows" }, { "macOS", "Mac" },
        { "iOS", "iOS" }, { "Chrome OS", "Chrome OS" }, { "ChromeOS", "Chrome OS" },
        { "Chromium OS", "Chrome OS" }, { "Linux", "GNU/Linux" }, { "Fuchsia", "Fuchsia" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (vd_str_eq_ci(p, vd_str_cstr(map[i].name)))
            return map[i].os;
    return NULL;
}

static bool ci_contains(vd_str hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay.n; i++)
        if (vd_str_eq_ci(vd_str_make(hay.p + i, n), vd_str_make(needle, n)))
            return true;
    return false;
}

/* Hints decide what a reduced UA no longer says. A UA that names a robot
 * (or the Sec-CH-UA brand list a headless browser) stays a bot, and one
 * that names a TV, console or car stays other: those UAs are not reduced.
 * On Android, the UA Chromium would have sent before the reduction is
 * rebuilt from the hints ("Android 10; MODEL", "Mobile" from
 * Sec-CH-UA-Mobile) and read by the same rules, so the model tables that
 * tell tablets and TVs from phones serve both. */
void vd_device_classify_hints(vd_str ua, const vd_ua_hints *h, vd_device *out)
{
    ua_buf u;
    fill_buf(&u, ua.p, ua.n);
    classify_buf(&u, out);
    if (!vd_ua_hints_any(h) || out->type == VD_DEVICE_BOT)
        return;
    if (h->ua.n && ci_contains(h->ua, "headless")) {
        out->type = VD_DEVICE_BOT;
        out->os = out->browser = NULL;
        return;
    }
    vd_str mob = hint_value(h->mobile), plat = hint_value(h->platform), model = hint_value(h->model);
    int mobile = vd_str_eq(mob, VD_STR_LIT("?1")) ? 1 : vd_str_eq(mob, VD_STR_LIT("?0")) ? 0 : -1;
    const char *os = platform_os(plat);
    if (os)
        out->os = os;
    if (out->type == VD_DEVICE_OTHER && u.n)
        return;
    bool android = os ? strcmp(os, "Android") == 0 : (model.n && out->os && strcmp(out->os, "Android") == 0);
    if (android) {
        /* No model hint: the UA's own model, unless it is the reduced "K". */
        vd_str m = model;
        char own[64];
        if (!m.n) {
            vd_str um = android_model(&u);
            if (um.n && !(um.n == 1 && um.p[0] == 'k') && um.n < sizeof own) {
                memcpy(own, um.p, um.n);
                m = vd_str_make(own, um.n);
            }
        }
        if (mobile < 0)
            mobile = out->type == VD_DEVICE_MOBILE;
        char buf[200];
        int n = snprintf(buf, sizeof buf,
                         "Mozilla/5.0 (Linux; Android 10; %.*s) AppleWebKit/537.36 (KHTML, like "
                         "Gecko) Chrome/120.0.0.0 %sSafari/537.36",
                         (int)(m.n < 64 ? m.n : 64), m.n ? m.p : "K", mobile ? "Mobile " : "");
        ua_buf r;
        fill_buf(&r, buf, n > 0 ? (size_t)n : 0);
        uint8_t t = type_of(&r);
        if (t != VD_DEVICE_BOT)          /* a model name is no evidence of a robot */
            out->type = t;
        out->os = "Android";
        return;
    }
    if (os && (strcmp(os, "Windows") == 0 || strcmp(os, "Mac") == 0 ||
               strcmp(os, "GNU/Linux") == 0 || strcmp(os, "Chrome OS") == 0)) {
        if (mobile == 1)
            out->type = VD_DEVICE_MOBILE;
        else if (out->type != VD_DEVICE_TABLET)
            out->type = VD_DEVICE_DESKTOP;
        return;
    }
    if (mobile == 1 && out->type == VD_DEVICE_DESKTOP)
        out->type = VD_DEVICE_MOBILE;
}

const char *vd_device_type_name(unsigned type)
{
    static const char *const names[VD_DEVICE__COUNT] = {
        [VD_DEVICE_OTHER] = "other",   [VD_DEVICE_MOBILE] = "mobile",
        [VD_DEVICE_TABLET] = "tablet", [VD_DEVICE_DESKTOP] = "desktop",
        [VD_DEVICE_BOT] = "bot",
    };
    return type < VD_DEVICE__COUNT ? names[type] : "other";
}

/* ---------------------------------------------------------------- cache */

/* UAs up to this length are cached; longer ones (rare, often hostile) are
 * classified every time rather than growing the slab. */
#define UA_CACHE_KEY_MAX 512

/* Eight-way set associative, least recently used way replaced: with two
 * ways, the traffic model's 11,439 User-Agents (Zipf-like) missed 5.8 % of
 * lookups in a 16,384-entry cache at steady state, as rare UAs sharing a
 * set with others evicted each other; with eight, 1.8 % (same memory). */
#define UA_WAYS 8
typedef struct slot {
    uint64_t hash;
    uint32_t used;         /* the cache's clock at the last hit or fill */
    uint16_t len;          /* 0 = empty (the empty UA is never cached) */
    vd_device verdict;
} slot;

struct vd_device_cache {
    size_t set_mask;       /* sets - 1 */
    slot *slots;           /* UA_WAYS per set */
    char *keys;            /* one UA_CACHE_KEY_MAX buffer per slot */
    uint32_t clock;
    uint64_t hits, misses;
};

vd_device_cache *vd_device_cache_new(size_t entries)
{
    size_t n = UA_WAYS;
    if (entries > ((size_t)1 << 24))
        entries = (size_t)1 << 24;       /* 8 GiB of keys is a config error */
    while (n < entries)
        n <<= 1;
    vd_device_cache *c = vd_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = vd_calloc(n, sizeof *c->slots);
    c->keys = vd_malloc(n * UA_CACHE_KEY_MAX);
    if (!c->slots || !c->keys) {
        vd_device_cache_free(c);
        return NULL;
    }
    c->set_mask = n / UA_WAYS - 1;
    return c;
}

void vd_device_cache_free(vd_device_cache *c)
{
    if (!c)
        return;
    vd_free(c->slots);
    vd_free(c->keys);
    vd_free(c);
}

/* The key: the UA, then each hint present after a NUL (which no header
 * value holds), so a hinted request never reuses an unhinted verdict. */
static size_t cache_key(vd_str ua, const vd_ua_hints *h, char *key)
{
    if (!vd_ua_hints_any(h))
        return 0;
    const vd_str parts[4] = { h->mobile, h->platform, h->model, h->ua };
    size_t n = ua.n;
    for (int i = 0; i < 4; i++)
        n += 1 + parts[i].n;
    if (n > UA_CACHE_KEY_MAX)
        return SIZE_MAX;
    memcpy(key, ua.p, ua.n);
    n = ua.n;
    for (int i = 0; i < 4; i++) {
        key[n++] = '\0';
        if (parts[i].n)
            memcpy(key + n, parts[i].p, parts[i].n);
        n += parts[i].n;
    }
    return n;
}

void vd_device_lookup(vd_device_cache *c, vd_str ua, const vd_ua_hints *hints, vd_device *out)
{
    if (!c || !ua.p || ua.n == 0 || ua.n > UA_CACHE_KEY_MAX) {
        vd_device_classify_hints(ua, hints, out);
        return;
    }
    char kbuf[UA_CACHE_KEY_MAX];
    size_t kn = cache_key(ua, hints, kbuf);
    if (kn == SIZE_MAX) {
        vd_device_classify_hints(ua, hints, out);
        return;
    }
    vd_str key = kn ? vd_str_make(kbuf, kn) : ua;
    uint64_t h = vd_hash_mem(key.p, key.n);
    size_t set = (size_t)(h ^ (h >> 32)) & c->set_mask;
    slot *ways = &c->slots[set * UA_WAYS];
    for (unsigned way = 0; way < UA_WAYS; way++) {
        slot *s = &ways[way];
        /* The hash only finds the candidate; the stored bytes decide. */
        if (s->len == key.n && s->hash == h &&
            memcmp(c->keys + (set * UA_WAYS + way) * UA_CACHE_KEY_MAX, key.p, key.n) == 0) {
            c->hits++;
            s->used = ++c->clock;
            *out = s->verdict;
            return;
        }
    }
    c->misses++;
    vd_device_classify_hints(ua, hints, out);
    /* An empty way, else the one unused longest. */
    unsigned victim = 0;
    for (unsigned way = 0; way < UA_WAYS; way++) {
        if (ways[way].len == 0) {
            victim = way;
            break;
        }
        if ((uint32_t)(c->clock - ways[way].used) > (uint32_t)(c->clock - ways[victim].used))
            victim = way;
    }
    slot *s = &ways[victim];
    s->hash = h;
    s->len = (uint16_t)key.n;
    s->used = ++c->clock;
    s->verdict = *out;
    memcpy(c->keys + (set * UA_WAYS + victim) * UA_CACHE_KEY_MAX, key.p, key.n);
}

void vd_device_cache_stats(const vd_device_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
