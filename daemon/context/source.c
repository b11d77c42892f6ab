/* source.c — traffic source from the Referer and the landing page URL.
 *
 * Rules, checked in this order; the first match wins. They follow GA4's default
 * channel group (support.google.com/analytics/answer/9756891), mapped onto our
 * seven mediums. All comparisons are ASCII case-insensitive.
 *
 *  0. utm_* fields: utm_source/medium/campaign/term/content are read from the
 *     landing URL; if it carries none of them, from the Referer's query. They
 *     fill campaign/term/content, and utm_source (lower-cased) becomes name.
 *     utm_source "(direct)" counts as no utm_source (GA's notation).
 *  1. paid — a non-empty click id on the landing URL: gclid, gbraid, wbraid,
 *     dclid (google), msclkid (bing), twclid (twitter), ttclid (tiktok),
 *     li_fat_id (linkedin), epik (pinterest), yclid (yandex), sccid
 *     (snapchat), rdt_cid (reddit). fbclid is NOT enough on its own: Facebook
 *     adds it to organic shares too; with a paid utm_medium rule 2 applies.
 *     Name: utm_source, else the click id's network.
 *  2. With utm_source or utm_medium present (GA4 rules 2-14, in GA4 order):
 *     a. paid: campaign contains "cross-network"; or medium matches GA4's paid
 *        regex ^(.*cp.*|ppc|retargeting|paid.*)$; or medium is display, banner,
 *        expandable, interstitial or cpm.
 *     b. social: utm_source is a known social site (host, brand or alias such as
 *        "fb", "ig") or medium is social, social-network, social-media, sm,
 *        "social network", "social media".
 *     c. organic: utm_source is a known search engine, or medium = organic.
 *     d. referral: medium is referral, app or link.
 *     e. email: source or medium is email, e-mail, e_mail, "e mail" (GA4's
 *        list) — plus "newsletter", our one deliberate extension, because it is
 *        the most common spelling GA4 leaves Unassigned; or utm_source is a
 *        known webmail host.
 *     f. anything else (GA4's shopping/video/affiliate/audio/sms/push/
 *        unassigned channels, which we have no medium for) -> referral.
 *  3. direct — no usable Referer (empty, unparsable, or without a host).
 *  4. internal — the Referer's registrable domain (Public Suffix List via
 *     libpsl) equals the landing page's: shop.example.co.uk -> www.example.co.uk.
 *     IP literals and single labels must match exactly.
 *  5. the referring host in our table (source_hosts.c), most specific pattern
 *     first: search engine -> organic (term from the engine's query parameter
 *     when utm_term is absent), social network -> social, webmail -> email,
 *     ad server -> paid, known non-search pages of search brands (maps,
 *     drive, support, chatbots...) -> referral.
 *  6. heuristics for hosts not in the table: a subdomain label containing
 *     "mail" (webmail., mail02., email., ...) or a "deref-" site -> email; a
 *     subdomain label starting with "search" or a local word for it (suche,
 *     recherche, busca, szukaj, ...) or a site name ending in "search" ->
 *     organic.
 *  7. referral — name = the referring host without a leading "www.".
 *
 * Hot path: no allocation, no locks. The table index is sorted once
 * (pthread_once); lookups are bsearch over it. */
#include "context/source.h"

#include <libpsl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "context/source_hosts.h"
#include "context/url.h"
#include "core/alloc.h"

#define HOST_MAX   256
#define KEY_MAX    512
#define PATH_MAX_SEGS 4
#define MAX_LEVELS 10

/* ---- table index ------------------------------------------------------- */

static const vd_src_host **by_pat;      /* open addressing by pattern hash */
static size_t pat_mask;                 /* table size - 1 */
static const vd_src_host **by_name;     /* O/S/E entries with a name, sorted by name */
static size_t n_by_name;
static const psl_ctx_t *psl;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;
/* The host parts ("google.*", "bing.com") of the patterns that have a path:
 * a lookup whose keys are none of these gives the same answer for every
 * path, which is what lets the verdict cache leave the path out of its key. */
#define PATH_HOSTS_MAX 64
static struct { const char *p; size_t n; } path_hosts[PATH_HOSTS_MAX];
static size_t n_path_hosts;
static bool path_hosts_overflow;         /* more than PATH_HOSTS_MAX: every path matters */
static size_t path_max;                  /* the longest path of a pattern */

#define Q_COUNT (5 + 12)                     /* utm_* and the click ids (below) */
#define QKEY_LEN_MAX 12                      /* "utm_campaign"; the shortest is "epik" */
static size_t qkey_len[Q_COUNT];
/* The keys of each length, in Q order, -1 after the last. */
static int8_t qkeys_by_len[QKEY_LEN_MAX + 1][Q_COUNT + 1];
static const char *qkey_name(int i);

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const vd_src_host *const *)a)->name, (*(const vd_src_host *const *)b)->name);
}

static void build_index(void)
{
    /* Start-up allocation only; if it fails, lookups simply find nothing. */
    size_t cap = 16;
    while (cap < 2 * vd_src_hosts_n)
        cap <<= 1;
    by_pat = vd_calloc(cap, sizeof *by_pat);
    by_name = vd_calloc(vd_src_hosts_n, sizeof *by_name);
    if (by_pat) {
        /* A hash probe per candidate key: a request tries several (each
         * parent domain, with and without path segments, brand forms). */
        pat_mask = cap - 1;
        for (size_t i = 0; i < vd_src_hosts_n; i++) {
            const char *p = vd_src_hosts[i].pat;
            size_t slot = (size_t)vd_hash_mem(p, strlen(p)) & pat_mask;
            while (by_pat[slot] && strcmp(by_pat[slot]->pat, p) != 0)
                slot = (slot + 1) & pat_mask;
            if (!by_pat[slot])
                by_pat[slot] = &vd_src_hosts[i];   /* patterns are unique (test_source) */
        }
    }
    if (by_name) {
        for (size_t i = 0; i < vd_src_hosts_n; i++) {
            const vd_src_host *e = &vd_src_hosts[i];
            if (e->name && (e->kind == 'O' || e->kind == 'S' || e->kind == 'E'))
                by_name[n_by_name++] = e;
        }
        qsort(by_name, n_by_name, sizeof *by_name, cmp_name);
    }
    for (size_t i = 0; i < vd_src_hosts_n; i++) {
        const char *p = vd_src_hosts[i].pat;
        const char *slash = strchr(p, '/');
        if (!slash)
            continue;
        size_t n = (size_t)(slash - p);
        if (strlen(slash) > path_max)
            path_max = strlen(slash);
        bool seen = false;
        for (size_t j = 0; j < n_path_hosts && !seen; j++)
            seen = path_hosts[j].n == n && memcmp(path_hosts[j].p, p, n) == 0;
        if (seen)
            continue;
        if (n_path_hosts == PATH_HOSTS_MAX) {
            path_hosts_overflow = true;
            break;
        }
        path_hosts[n_path_hosts].p = p;
        path_hosts[n_path_hosts++].n = n;
    }
    memset(qkeys_by_len, -1, sizeof qkeys_by_len);
    for (int i = 0; i < Q_COUNT; i++) {
        qkey_len[i] = strlen(qkey_name(i));
        int8_t *b = qkeys_by_len[qkey_len[i]];
        while (*b >= 0)
            b++;
        *b = (int8_t)i;
    }
    psl = psl_builtin();
}

static const vd_src_host *find_pat(const char *key)
{
    if (!by_pat)
        return NULL;
    for (size_t slot = (size_t)vd_hash_mem(key, strlen(key)) & pat_mask; by_pat[slot];
         slot = (slot + 1) & pat_mask)
        if (strcmp(by_pat[slot]->pat, key) == 0)
            return by_pat[slot];
    return NULL;
}

static const vd_src_host *find_name(const char *name)
{
    if (!by_name)
        return NULL;
    size_t lo = 0, hi = n_by_name;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, by_name[mid]->name);
        if (c == 0)
            return by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- small helpers ----------------------------------------------------- */

static bool is_ipv4(const char *h)
{
    for (; *h; h++)
        if (!((*h >= '0' && *h <= '9') || *h == '.'))
            return false;
    return true;
}

static bool is_ip(const char *h) { return h[0] == '[' || is_ipv4(h); }

/* psl_is_public_suffix2(host + off, ICANN) for a suffix of a host (off >
 * 0): the same parent domains ("com", "co.uk", "example.com") come back for
 * every new host, and each libpsl call costs ~3,000 instructions, so the
 * answers are kept per thread by the suffix's bytes (exact: a pure
 * function of the string). */
#define SFX_MEMO_SLOTS 1024
#define SFX_MEMO_KEY 48
typedef struct sfx_memo {
    uint64_t hash;
    uint8_t len;                  /* 0: empty */
    bool is_suffix;
    char key[SFX_MEMO_KEY];
} sfx_memo;
static _Thread_local sfx_memo sfx_memos[SFX_MEMO_SLOTS];

static bool icann_suffix(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SFX_MEMO_KEY)
        return psl_is_public_suffix2(psl, s, PSL_TYPE_ICANN);
    uint64_t h = vd_hash_mem(s, n);
    sfx_memo *m = &sfx_memos[h & (SFX_MEMO_SLOTS - 1)];
    if (m->len == n && m->hash == h && memcmp(m->key, s, n) == 0)
        return m->is_suffix;
    bool r = psl_is_public_suffix2(psl, s, PSL_TYPE_ICANN);
    m->hash = h;
    m->len = (uint8_t)n;
    memcpy(m->key, s, n);
    m->is_suffix = r;
    return r;
}

/* Offset of the ICANN public suffix in host (lower case, NUL-terminated), or
 * 0 when the host is itself a suffix or an IP. Only the last labels are
 * tried: no public suffix has more than a handful of labels. */
static size_t suffix_offset_uncached(const char *host, size_t n)
{
    if (is_ip(host))
        return 0;
    size_t starts[128];
    size_t ns = 0;
    starts[ns++] = 0;
    for (size_t i = 0; i < n && ns < 128; i++)
        if (host[i] == '.' && i + 1 < n)
            starts[ns++] = i + 1;
    size_t first = ns > 6 ? ns - 6 : 0;
    for (size_t k = first; k < ns; k++) {
        if (psl ? (starts[k] ? icann_suffix(host + starts[k])
                             : psl_is_public_suffix2(psl, host, PSL_TYPE_ICANN))
                : k == ns - 1)
            return starts[k];
    }
    return starts[ns - 1];
}

/* Registrable domain ("example.co.uk") of a lower-case host, or the host itself
 * for IPs, single labels and anything libpsl cannot place. */
static const char *site_of_uncached(const char *host)
{
    if (is_ip(host) || !psl)
        return host;
    const char *r = psl_registrable_domain(psl, host);
    return r ? r : host;
}

/* libpsl lookups cost microseconds and the same hosts (the site's own, the
 * referrers) come back on most requests: a direct-mapped cache per thread
 * keeps both answers, as offsets into the host, each computed the first
 * time it is asked for (a referring host found in the host table needs only
 * its suffix: whether it is the landing page's site is settled by its
 * ending, see host_verdict_compute). 2,048 entries (~150 KB a thread):
 * with 256, the bench's traffic model (~1,300 referrer hosts) missed on
 * about half its referrers, and the PSL walk was half of a 1-slot
 * decision. */
#define PSL_CACHE_SLOTS 2048
#define PSL_CACHE_HOST 64
typedef struct psl_entry {
    uint64_t hash;
    uint16_t len, suffix, site;
    bool has_suffix, has_site;
    char host[PSL_CACHE_HOST];
} psl_entry;
static _Thread_local psl_entry psl_cache[PSL_CACHE_SLOTS];

static psl_entry *psl_lookup(const char *host, size_t n)
{
    if (n == 0 || n >= PSL_CACHE_HOST)
        return NULL;
    uint64_t h = vd_hash_mem(host, n);
    psl_entry *e = &psl_cache[h & (PSL_CACHE_SLOTS - 1)];
    if (e->len == n && e->hash == h && memcmp(e->host, host, n) == 0)
        return e;
    e->hash = h;
    e->len = (uint16_t)n;
    memcpy(e->host, host, n);
    e->host[n] = '\0';
    e->has_suffix = e->has_site = false;
    return e;
}

static size_t suffix_offset(const char *host, size_t n)
{
    psl_entry *e = psl_lookup(host, n);
    if (!e)
        return suffix_offset_uncached(host, n);
    if (!e->has_suffix) {
        e->suffix = (uint16_t)suffix_offset_uncached(e->host, n);
        e->has_suffix = true;
    }
    return e->suffix;
}

static const char *site_of(const char *host)
{
    size_t n = strlen(host);
    psl_entry *e = psl_lookup(host, n);
    if (!e)
        return site_of_uncached(host);
    if (!e->has_site) {
        e->site = (uint16_t)(site_of_uncached(e->host) - e->host);
        e->has_site = true;
    }
    return host + e->site;
}

/* Whether site can be the registrable domain of host: host is site, or
 * ends with "." + site. site_of(host) is host itself or the part after one
 * of its dots, so when this is false the two sites differ. */
static bool may_be_site_of(const char *host, size_t hn, const char *site)
{
    size_t sn = strlen(site);
    return sn <= hn && memcmp(host + hn - sn, site, sn) == 0 && (sn == hn || host[hn - sn - 1] == '.');
}

static bool has_dot(const char *s) { return strchr(s, '.') != NULL; }

/* Copies a decoded value into a fixed field: drops control bytes and does not
 * leave half a UTF-8 sequence at the end. */
static void copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;
    size_t i = 0;
    for (; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f)
            continue;
        dst[o++] = (char)c;
    }
    /* A value cut here or upstream (decode buffers) may end inside a UTF-8
     * sequence: back off the partial sequence. */
    if (o > 0) {
        size_t j = o;
        while (j > 0 && ((unsigned char)dst[j - 1] & 0xC0) == 0x80)
            j--;
        if (j > 0 && ((unsigned char)dst[j - 1] & 0x80)) {
            unsigned char lead = (unsigned char)dst[j - 1];
            size_t need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3
                        : (lead & 0xF8) == 0xF0 ? 4 : 1;
            if (o - (j - 1) < need)
                o = j - 1;
        }
    }
    dst[o] = '\0';
}

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static void set_name(vd_source *out, const char *name)
{
    copy_field(out->name, sizeof out->name, name, strlen(name));
    lower_ascii(out->name);
}

static const char *strip_www(const char *h)
{
    return strncmp(h, "www.", 4) == 0 && h[4] ? h + 4 : h;
}

/* ---- host classification ---------------------------------------------- */

/* Whether the table has a pattern key + "/..." (so the path can change
 * what key answers). */
static bool key_has_paths(const char *key, size_t kn)
{
    if (path_hosts_overflow)
        return true;
    for (size_t j = 0; j < n_path_hosts; j++)
        if (path_hosts[j].n == kn && memcmp(path_hosts[j].p, key, kn) == 0)
            return true;
    return false;
}

/* Tries key = cand[+suffix "*"] + path prefixes (longest first), then key alone. */
static const vd_src_host *try_key(char *key, size_t kn, const char *path, size_t pn)
{
    size_t cuts[PATH_MAX_SEGS + 1];
    size_t nc = 0;
    /* Prefix ends: before each '/' after the first char, and the full path. */
    for (size_t i = 1; i < pn && nc < PATH_MAX_SEGS; i++)
        if (path[i] == '/')
            cuts[nc++] = i;
    if (pn > 1 && path[pn - 1] != '/' && nc < PATH_MAX_SEGS + 1 &&
        (nc == 0 || cuts[nc - 1] != pn))
        cuts[nc++] = pn;
    for (size_t k = nc; k > 0; k--) {
        size_t c = cuts[k - 1];
        if (kn + c + 1 > KEY_MAX)
            continue;
        for (size_t i = 0; i < c; i++) {
            char ch = path[i];
            key[kn + i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        key[kn + c] = '\0';
        const vd_src_host *e = find_pat(key);
        if (e)
            return e;
    }
    key[kn] = '\0';
    return find_pat(key);
}

/* Most specific table entry for host (lower case) + path, or NULL. With
 * path_dep, sets it to whether another path could give another answer:
 * whether any key tried has patterns with a path. */
static const vd_src_host *lookup_host_dep(const char *host, size_t hn, const char *path, size_t pn,
                                          bool *path_dep)
{
    char key[KEY_MAX];
    size_t sfx = suffix_offset(host, hn);
    size_t levels[MAX_LEVELS];
    size_t nl = 0;

    /* Candidate levels: the host and its parents down to (host part + suffix),
     * the last MAX_LEVELS of them. */
    size_t starts[128];
    size_t ns = 0;
    starts[ns++] = 0;
    for (size_t i = 0; i < hn && ns < 128; i++)
        if (host[i] == '.' && i + 1 < hn)
            starts[ns++] = i + 1;
    for (size_t k = 0; k < ns; k++)
        if (starts[k] < sfx || (sfx == 0 && k == 0))
            levels[nl++ % MAX_LEVELS] = starts[k];
    size_t first = nl > MAX_LEVELS ? nl - MAX_LEVELS : 0;

    for (size_t k = first; k < nl; k++) {
        size_t l = levels[k % MAX_LEVELS];
        size_t kn = hn - l;
        memcpy(key, host + l, kn);
        if (path_dep && key_has_paths(key, kn))
            *path_dep = true;
        const vd_src_host *e = try_key(key, kn, path, pn);
        if (e)
            return e;
        if (sfx > l) {                               /* brand form "google.*" */
            kn = sfx - l;
            memcpy(key, host + l, kn);
            key[kn++] = '*';
            if (path_dep && key_has_paths(key, kn))
                *path_dep = true;
            e = try_key(key, kn, path, pn);
            if (e)
                return e;
        }
    }
    return NULL;
}

static const vd_src_host *lookup_host(const char *host, size_t hn, const char *path, size_t pn)
{
    return lookup_host_dep(host, hn, path, pn, NULL);
}

static bool label_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(p, w, n) == 0;
}

static bool contains(const char *p, size_t n, const char *w)
{
    size_t wn = strlen(w);
    for (size_t i = 0; i + wn <= n; i++)
        if (memcmp(p + i, w, wn) == 0)
            return true;
    return false;
}

/* Rule 6: guesses for hosts not in the table. 'E', 'O' or 0. */
static char guess_host(const char *host, size_t hn)
{
    static const char *const search_words[] = {
        "suche", "recherche", "rechercher", "busca", "buscador", "buscar", "cerca",
        "ricerca", "szukaj", "poisk", "pesquisa", "haku", "sok", "zoek", "zoeken",
        "hledani", "otsing", "arama", "find",
    };
    static const char *const mail_words[] = {
        "messagerie", "poczta", "posta", "correo", "owa", "zimbra", "roundcube",
    };
    if (is_ip(host))
        return 0;
    const char *site = site_of(host);
    size_t site_off = (size_t)(site - host);
    if (site_off > hn)
        return 0;
    /* site label: "aolsearch" in "aolsearch.com", "deref-gmx" in "deref-gmx.net" */
    const char *dot = strchr(site, '.');
    size_t sl = dot ? (size_t)(dot - site) : strlen(site);
    if (sl >= 6 && memcmp(site, "deref-", 6) == 0)
        return 'E';
    char kind = 0;
    size_t i = 0;
    while (i < site_off) {                           /* subdomain labels */
        size_t j = i;
        while (j < site_off && host[j] != '.')
            j++;
        const char *lab = host + i;
        size_t ln = j - i;
        if (contains(lab, ln, "mail"))
            return 'E';
        for (size_t w = 0; w < sizeof mail_words / sizeof mail_words[0]; w++)
            if (label_is(lab, ln, mail_words[w]))
                return 'E';
        if (ln >= 6 && memcmp(lab, "search", 6) == 0)
            kind = 'O';
        for (size_t w = 0; w < sizeof search_words / sizeof search_words[0]; w++)
            if (label_is(lab, ln, search_words[w]))
                kind = 'O';
        i = j + 1;
    }
    if (sl > 6 && memcmp(site + sl - 6, "search", 6) == 0)
        kind = 'O';
    return kind;
}

/* ---- utm and click ids -------------------------------------------------- */

typedef struct utm {
    char source[128];
    char medium[64];
    char campaign[128];
    char term[128];
    char content[128];
    bool any;
} utm;

static bool get_param(vd_str q, const char *name, char *buf, size_t cap)
{
    vd_str v;
    if (!vd_url_query_get(q, vd_str_cstr(name), buf, cap, &v) || v.n == 0) {
        buf[0] = '\0';
        return false;
    }
    /* Drop control bytes / partial UTF-8 in place. */
    char tmp[256];
    copy_field(tmp, sizeof tmp < cap ? sizeof tmp : cap, buf, v.n);
    memcpy(buf, tmp, strlen(tmp) + 1);
    return buf[0] != '\0';
}

/* The parameters we look for on every request, found in ONE pass over the
 * query (a hostile 100 KB query is then read once, not once per name). */
enum {
    Q_SOURCE, Q_MEDIUM, Q_CAMPAIGN, Q_TERM, Q_CONTENT, Q_CLICK_FIRST,
};

static const struct { const char *param; const char *network; } click_ids[] = {
    { "gclid", "google" }, { "gbraid", "google" }, { "wbraid", "google" },
    { "dclid", "google" }, { "msclkid", "bing" }, { "twclid", "twitter" },
    { "ttclid", "tiktok" }, { "li_fat_id", "linkedin" }, { "epik", "pinterest" },
    { "yclid", "yandex" }, { "sccid", "snapchat" }, { "rdt_cid", "reddit" },
};

_Static_assert(Q_COUNT == Q_CLICK_FIRST + (int)(sizeof click_ids / sizeof click_ids[0]),
               "Q_COUNT: the utm fields and the click ids");

static const char *qkey_name(int i)
{
    static const char *const utm_keys[] = {
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    };
    return i < Q_CLICK_FIRST ? utm_keys[i] : click_ids[i - Q_CLICK_FIRST].param;
}


typedef struct qfields {
    vd_str v[Q_COUNT];            /* raw values; first occurrence wins */
    bool has[Q_COUNT];
    bool any_utm, any_click;      /* has[] of a utm field, of a click id */
} qfields;

static void scan_query(vd_str q, qfields *f)
{
    memset(f->has, 0, sizeof f->has);     /* v[i] is read only when has[i] */
    f->any_utm = f->any_click = false;
    size_t pos = 0;
    vd_str k, v;
    char kbuf[32];
    while (vd_url_query_next(q, &pos, &k, &v)) {
        if (k.n == 0 || k.n > 3 * (sizeof kbuf - 1))
            continue;
        if (memchr(k.p, '%', k.n) || memchr(k.p, '+', k.n))
            k = vd_str_make(kbuf, vd_url_decode(k, kbuf, sizeof kbuf));
        if (k.n < 4 || k.n > QKEY_LEN_MAX)
            continue;
        /* Every name starts with a lower-case letter: a first byte that is
         * not that letter in either case cannot match (vd_str_eq_ci folds
         * ASCII letters only). */
        unsigned char c0 = (unsigned char)(k.p[0] | 0x20);
        for (const int8_t *b = qkeys_by_len[k.n]; *b >= 0; b++) {
            int i = *b;
            if (!f->has[i] && c0 == (unsigned char)qkey_name(i)[0] &&
                vd_str_eq_ci(k, vd_str_make(qkey_name(i), qkey_len[i]))) {
                f->has[i] = true;
                f->v[i] = v;
                if (i < Q_CLICK_FIRST)
                    f->any_utm = true;
                else
                    f->any_click = true;
                break;
            }
        }
    }
}

/* Decodes a found value into buf; false if absent or empty after cleaning. */
static bool qvalue(const qfields *f, int i, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!f->has[i] || f->v[i].n == 0)
        return false;
    char tmp[256];
    size_t n = vd_url_decode(f->v[i], tmp, cap < sizeof tmp ? cap : sizeof tmp);
    copy_field(buf, cap, tmp, n);
    return buf[0] != '\0';
}

static void read_utm(vd_str q, utm *u, qfields *f)
{
    u->any = false;               /* each field is written by qvalue (at least its NUL) */
    scan_query(q, f);
    if (!f->any_utm) {            /* what the qvalue calls below would give */
        u->source[0] = u->medium[0] = u->campaign[0] = u->term[0] = u->content[0] = '\0';
        return;
    }
    u->any |= qvalue(f, Q_SOURCE, u->source, sizeof u->source);
    u->any |= qvalue(f, Q_MEDIUM, u->medium, sizeof u->medium);
    u->any |= qvalue(f, Q_CAMPAIGN, u->campaign, sizeof u->campaign);
    u->any |= qvalue(f, Q_TERM, u->term, sizeof u->term);
    u->any |= qvalue(f, Q_CONTENT, u->content, sizeof u->content);
    lower_ascii(u->source);
    lower_ascii(u->medium);
    if (strcmp(u->source, "(direct)") == 0)
        u->source[0] = '\0';
    if (strcmp(u->medium, "(none)") == 0 || strcmp(u->medium, "(not set)") == 0)
        u->medium[0] = '\0';
}

static const char *click_network(const qfields *f)
{
    char buf[8];
    if (!f->any_click)
        return NULL;
    for (int i = Q_CLICK_FIRST; i < Q_COUNT; i++)
        if (qvalue(f, i, buf, sizeof buf))
            return click_ids[i - Q_CLICK_FIRST].network;
    return NULL;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

#define IN_LIST(s, arr) in_list((s), (arr), sizeof(arr) / sizeof(arr)[0])

static bool paid_medium(const char *m)
{
    static const char *const display[] = { "display", "banner", "expandable", "interstitial", "cpm" };
    if (!*m)
        return false;
    return strstr(m, "cp") || strcmp(m, "ppc") == 0 || strcmp(m, "retargeting") == 0 ||
           strncmp(m, "paid", 4) == 0 || IN_LIST(m, display);
}

/* Kind of a utm_source value: a host ("m.facebook.com"), a brand ("facebook"),
 * or an alias GA4's source lists know ("fb", "ig"). */
static char source_kind(const char *src)
{
    static const struct { const char *alias; char kind; } aliases[] = {
        { "fb", 'S' }, { "ig", 'S' }, { "yt", 'S' }, { "tw", 'S' }, { "li", 'S' },
        { "x", 'S' }, { "msn", 'O' }, { "yahoo!", 'O' }, { "vk", 'S' }, { "wa", 'S' },
    };
    char host[HOST_MAX];
    size_t n = strlen(src);
    if (n == 0 || n >= sizeof host)
        return 0;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(src, aliases[i].alias) == 0)
            return aliases[i].kind;
    const vd_src_host *e = find_name(src);
    if (e)
        return e->kind;
    /* Host-like values only: letters, digits, '-', '.', '_'. */
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    memcpy(host, src, n + 1);
    if (!has_dot(host)) {                             /* "google" -> "google.*" */
        if (n + 3 > sizeof host)
            return 0;
        memcpy(host + n, ".*", 3);
        e = find_pat(host);
    } else {
        e = lookup_host(host, n, "/", 1);
    }
    return e && e->kind != 'P' && e->kind != 'R' ? e->kind : 0;
}

/* Rule 2 for utm-tagged visits. Returns the medium. */
static vd_medium classify_utm(const utm *u)
{
    static const char *const social_med[] = {
        "social", "social-network", "social-media", "sm", "social network", "social media",
    };
    static const char *const referral_med[] = { "referral", "app", "link" };
    static const char *const email_words[] = { "email", "e-mail", "e_mail", "e mail", "newsletter" };
    char camp[128];
    copy_field(camp, sizeof camp, u->campaign, strlen(u->campaign));
    lower_ascii(camp);
    if (strstr(camp, "cross-network") || paid_medium(u->medium))
        return VD_MEDIUM_PAID;
    char sk = source_kind(u->source);
    if (sk == 'S' || IN_LIST(u->medium, social_med))
        return VD_MEDIUM_SOCIAL;
    if (sk == 'O' || strcmp(u->medium, "organic") == 0)
        return VD_MEDIUM_ORGANIC;
    if (IN_LIST(u->medium, referral_med))
        return VD_MEDIUM_REFERRAL;
    if (IN_LIST(u->source, email_words) || IN_LIST(u->medium, email_words) || sk == 'E')
        return VD_MEDIUM_EMAIL;
    return VD_MEDIUM_REFERRAL;
}

/* The same, one query pass per name: for lists longer than TERM_NAMES_MAX
 * (none of the table's are). */
static void search_term_each(const char *list, vd_str q, vd_source *out)
{
    char pname[32];
    char val[256];
    while (*list) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        if (n < sizeof pname) {
            memcpy(pname, list, n);
            pname[n] = '\0';
            if (get_param(q, pname, val, sizeof val)) {
                copy_field(out->term, sizeof out->term, val, strlen(val));
                return;
            }
        }
        list += n;
        if (*list == ',')
            list++;
    }
}

#define TERM_NAMES_MAX 16

/* The search term: the value of the first parameter of the engine's list
 * (or the default list) that is present with a non-empty value, each name
 * taking its first occurrence in the query (as get_param does). One pass
 * over the query finds every name's first occurrence. */
static void search_term(const vd_src_host *e, vd_str q, vd_source *out)
{
    static const char default_params[] =
        "q,query,p,text,wd,searchfor,keyword,keywords,qs,kw,search,k,w";
    const char *all = e && e->params ? e->params : default_params;
    const char *list = all;
    vd_str names[TERM_NAMES_MAX];
    size_t nn = 0;
    while (*list) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        if (n < 32) {                 /* longer names were never looked up */
            if (nn == TERM_NAMES_MAX) {
                search_term_each(all, q, out);
                return;
            }
            names[nn++] = vd_str_make(list, n);
        }
        list += n;
        if (*list == ',')
            list++;
    }
    vd_str first[TERM_NAMES_MAX];
    bool seen[TERM_NAMES_MAX] = { false };
    size_t nseen = 0;
    size_t pos = 0;
    vd_str k, v;
    while (nseen < nn && vd_url_query_next(q, &pos, &k, &v)) {
        bool encoded = vd_url_key_encoded(k);
        for (size_t j = 0; j < nn; j++)
            if (!seen[j] && k.n >= names[j].n && vd_url_key_eq(k, encoded, names[j])) {
                seen[j] = true;
                first[j] = v;
                nseen++;
            }
    }
    for (size_t j = 0; j < nn; j++) {
        if (!seen[j])
            continue;
        char val[256];
        size_t n = vd_url_decode(first[j], val, sizeof val);
        if (n == 0)
            continue;
        char tmp[256];
        copy_field(tmp, sizeof tmp, val, n);
        if (tmp[0]) {
            copy_field(out->term, sizeof out->term, tmp, strlen(tmp));
            return;
        }
    }
}

/* ---- the referring host's verdict, cached per worker -------------------- */

/* What the referring host alone decides (rules 4-6): the same site as the
 * landing page, the table entry, or the heuristic guess. A function of the
 * lower-case referring host, the landing page's lower-case host (none: same
 * site is false) and, only for hosts whose keys have path patterns
 * (key_has_paths), the Referer's path. */
typedef struct host_verdict {
    const vd_src_host *e;
    char guess;
    bool same_site;
} host_verdict;

static void host_verdict_compute(const char *rhost, size_t rn, const char *phost, size_t pn,
                                 vd_str path, host_verdict *hv, bool *path_dep)
{
    hv->e = NULL;
    hv->guess = 0;
    hv->same_site = false;
    if (pn > 0) {
        const char *psite = site_of(phost);
        hv->same_site = may_be_site_of(rhost, rn, psite) && strcmp(site_of(rhost), psite) == 0;
    }
    *path_dep = false;
    if (!hv->same_site) {
        hv->e = lookup_host_dep(rhost, rn, path.p, path.n, path_dep);
        if (!hv->e)
            hv->guess = guess_host(rhost, rn);
    }
}

/* 4-way set-associative, fixed size, filled in place: no allocation after
 * vd_source_cache_new. An entry's key is the bytes the verdict depends on
 * (referring host, landing host, and the path when it matters), compared
 * in full with their lengths, so a hit is exact. A host whose answer
 * depends on the path has a marker entry under (host, landing host) that
 * sends the lookup to a second entry keyed with the path. A miss replaces
 * the least recently used entry of its set (direct-mapped, the bench's
 * traffic model missed 8 % at 8,192 entries: rare hosts evicted by others). */
#define SRC_KEY_MAX 88
#define SRC_WAYS 4
enum { SE_EMPTY = 0, SE_VERDICT, SE_PATH_MARKER };
typedef struct src_entry {
    uint64_t hash;
    const vd_src_host *e;
    uint32_t used;                /* the cache's clock at the last hit or fill */
    uint16_t rn, pn, pathn;       /* key = rhost | phost | path (pathn 0: no path part) */
    uint8_t kind;                 /* SE_* */
    bool with_path;               /* the key holds the path (a path-dependent verdict) */
    bool same_site;
    char guess;
    char key[SRC_KEY_MAX];
} src_entry;

/* Whole answers for a Referer on a landing page without utm_* or click-id
 * keys: the classification is then a function of the Referer's bytes and
 * the landing page's lower-case host alone (everything else it reads
 * comes from the Referer), so an entry keyed by both, compared in full,
 * holds the exact vd_source (its bytes, as classify_body wrote them). */
#define RES_KEY_MAX 192
typedef struct res_entry {
    uint64_t hash;
    uint32_t used;                /* the cache's clock at the last hit or fill */
    uint16_t rn;                  /* Referer bytes; 0: empty entry */
    uint8_t pn;                   /* landing host bytes */
    char key[RES_KEY_MAX];        /* Referer | landing host */
    vd_source val;
} res_entry;

struct vd_source_cache {
    size_t mask;                  /* sets - 1 */
    uint32_t clock;
    _Atomic uint64_t own_hits, own_misses;
    _Atomic uint64_t *hits, *misses;   /* own_* or the worker's stats */
    res_entry *res;               /* (mask + 1) * SRC_WAYS whole answers */
    uint64_t res_hits, res_misses;
    src_entry entries[];          /* set i: entries[i * SRC_WAYS ...] */
};

vd_source_cache *vd_source_cache_new(size_t entries, _Atomic uint64_t *hits,
                                     _Atomic uint64_t *misses)
{
    size_t sets = 1;
    while (sets * SRC_WAYS < entries && sets < ((size_t)1 << 20))
        sets <<= 1;
    vd_source_cache *c = vd_calloc(1, sizeof *c + sets * SRC_WAYS * sizeof(src_entry));
    if (!c)
        return NULL;
    c->res = vd_calloc(sets * SRC_WAYS, sizeof *c->res);
    if (!c->res) {
        vd_free(c);
        return NULL;
    }
    c->mask = sets - 1;
    c->hits = hits ? hits : &c->own_hits;
    c->misses = misses ? misses : &c->own_misses;
    return c;
}

void vd_source_cache_free(vd_source_cache *c)
{
    if (c)
        vd_free(c->res);
    vd_free(c);
}

void vd_source_cache_answer_stats(const vd_source_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->res_hits : 0;
    *misses = c ? c->res_misses : 0;
}

void vd_source_cache_stats(const vd_source_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? atomic_load_explicit(c->hits, memory_order_relaxed) : 0;
    *misses = c ? atomic_load_explicit(c->misses, memory_order_relaxed) : 0;
}

/* Single writer (the worker): a relaxed load and store, no locked add. */
static void count(_Atomic uint64_t *ctr)
{
    atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static uint64_t key_hash(const char *r, size_t rn, const char *p, size_t pn, vd_str path,
                         bool with_path)
{
    uint64_t h = vd_hash_mem(r, rn) ^ (vd_hash_mem(p, pn) * 0x9E3779B97F4A7C15ULL);
    h ^= (uint64_t)rn << 48 ^ (uint64_t)pn << 32;
    if (with_path)
        h ^= (vd_hash_mem(path.p, path.n) + 1) * 0xC2B2AE3D27D4EB4FULL;
    return h;
}

/* The entry of h's set holding this key, or NULL. */
static src_entry *cache_find(vd_source_cache *c, uint64_t h, const char *r, size_t rn,
                             const char *p, size_t pn, vd_str path, bool with_path)
{
    size_t pathn = with_path ? path.n : 0;
    src_entry *set = &c->entries[(h & c->mask) * SRC_WAYS];
    for (int w = 0; w < SRC_WAYS; w++) {
        src_entry *x = &set[w];
        if (x->kind != SE_EMPTY && x->hash == h && x->with_path == with_path && x->rn == rn &&
            x->pn == pn && x->pathn == pathn && memcmp(x->key, r, rn) == 0 &&
            memcmp(x->key + rn, p, pn) == 0 &&
            (!pathn || memcmp(x->key + rn + pn, path.p, pathn) == 0)) {
            x->used = ++c->clock;
            return x;
        }
    }
    return NULL;
}

static void cache_put(vd_source_cache *c, uint64_t h, const char *r, size_t rn, const char *p,
                      size_t pn, vd_str path, bool with_path, int kind, const host_verdict *hv)
{
    src_entry *set = &c->entries[(h & c->mask) * SRC_WAYS];
    src_entry *x = &set[0];
    for (int w = 0; w < SRC_WAYS && x->kind != SE_EMPTY; w++)
        if (set[w].kind == SE_EMPTY || (uint32_t)(c->clock - set[w].used) > (uint32_t)(c->clock - x->used))
            x = &set[w];
    size_t pathn = with_path ? path.n : 0;
    x->hash = h;
    x->used = ++c->clock;
    x->rn = (uint16_t)rn;
    x->pn = (uint16_t)pn;
    x->pathn = (uint16_t)pathn;
    x->with_path = with_path;
    x->kind = (uint8_t)kind;
    memcpy(x->key, r, rn);
    memcpy(x->key + rn, p, pn);
    if (pathn)
        memcpy(x->key + rn + pn, path.p, pathn);
    x->e = hv->e;
    x->guess = hv->guess;
    x->same_site = hv->same_site;
}

static void classify_host(vd_source_cache *c, const char *rhost, size_t rn, const char *phost,
                          size_t pn, vd_str path, host_verdict *hv)
{
    bool path_dep;
    if (!c || rn + pn > SRC_KEY_MAX) {
        if (c)
            count(c->misses);
        host_verdict_compute(rhost, rn, phost, pn, path, hv, &path_dep);
        return;
    }
    /* The path as the lookup sees it: lower case (try_key folds it), and
     * no longer than the longest pattern path + 1 byte (a cut further in
     * matches no pattern; the extra byte tells "ends here" from "goes on"). */
    char pbuf[SRC_KEY_MAX];
    vd_str kpath = path;
    if (path_max + 1 < sizeof pbuf) {
        size_t n = path.n < path_max + 1 ? path.n : path_max + 1;
        for (size_t i = 0; i < n; i++)
            pbuf[i] = (path.p[i] >= 'A' && path.p[i] <= 'Z') ? (char)(path.p[i] + 32) : path.p[i];
        kpath = vd_str_make(pbuf, n);
    }
    bool path_fits = rn + pn + kpath.n <= SRC_KEY_MAX;
    uint64_t h = key_hash(rhost, rn, phost, pn, kpath, false);
    const src_entry *x = cache_find(c, h, rhost, rn, phost, pn, kpath, false);
    if (x && x->kind == SE_PATH_MARKER)      /* the path is part of the key */
        x = path_fits ? cache_find(c, key_hash(rhost, rn, phost, pn, kpath, true), rhost, rn, phost,
                                   pn, kpath, true)
                      : NULL;
    if (x) {
        count(c->hits);
        hv->e = x->e;
        hv->guess = x->guess;
        hv->same_site = x->same_site;
        return;
    }
    count(c->misses);
    host_verdict_compute(rhost, rn, phost, pn, path, hv, &path_dep);
    if (!cache_find(c, h, rhost, rn, phost, pn, kpath, false))
        cache_put(c, h, rhost, rn, phost, pn, kpath, false, path_dep ? SE_PATH_MARKER : SE_VERDICT, hv);
    if (path_dep && path_fits)
        cache_put(c, key_hash(rhost, rn, phost, pn, kpath, true), rhost, rn, phost, pn, kpath, true,
                  SE_VERDICT, hv);
}

/* ---- entry point -------------------------------------------------------- */

static vd_medium medium_of_kind(char k)
{
    switch (k) {
    case 'O': return VD_MEDIUM_ORGANIC;
    case 'S': return VD_MEDIUM_SOCIAL;
    case 'E': return VD_MEDIUM_EMAIL;
    case 'P': return VD_MEDIUM_PAID;
    default:  return VD_MEDIUM_REFERRAL;
    }
}

void vd_source_classify(vd_str referer, vd_str page_url, vd_source *out)
{
    vd_url page;
    bool have_page = page_url.n > 0 && vd_url_parse(page_url, &page);
    vd_source_classify_parsed(referer, have_page ? &page : NULL, out);
}

void vd_source_classify_parsed(vd_str referer, const vd_url *page_in, vd_source *out)
{
    vd_source_classify_cached(NULL, referer, page_in, out);
}

/* The classification proper, given the landing page's utm fields and
 * query keys (read_utm on its query, done by the caller). */
static void classify_body(vd_source_cache *cache, vd_str referer, const vd_url *page_in, utm *up,
                          const qfields *page_qp, vd_source *out)
{
    memset(out, 0, sizeof *out);

    vd_url ref, page;
    bool have_ref = vd_url_parse(referer, &ref) && ref.host.n > 0 && ref.host.n < HOST_MAX;
    bool have_page = page_in != NULL;
    if (have_page)
        page = *page_in;

    char rhost[HOST_MAX] = "";
    size_t rn = 0;
    if (have_ref) {
        rn = vd_str_copy_lower(rhost, sizeof rhost, ref.host);
        while (rn > 0 && rhost[rn - 1] == '.')
            rhost[--rn] = '\0';
        have_ref = rn > 0;
    }
    if (have_ref)
        memcpy(out->host, rhost, rn + 1);

    /* 0. utm fields: landing URL first (read by the caller), else the
     * Referer's query. */
    utm *u = up;
    qfields ref_q;
    if (!u->any && have_ref)
        read_utm(ref.query, u, &ref_q);
    copy_field(out->campaign, sizeof out->campaign, u->campaign, strlen(u->campaign));
    copy_field(out->term, sizeof out->term, u->term, strlen(u->term));
    copy_field(out->content, sizeof out->content, u->content, strlen(u->content));

    host_verdict hv = { NULL, 0, false };
    if (have_ref) {
        char phost[HOST_MAX];
        size_t pn = 0;
        if (have_page && page.host.n > 0 && page.host.n < HOST_MAX) {
            pn = vd_str_copy_lower(phost, sizeof phost, page.host);
            while (pn > 0 && phost[pn - 1] == '.')
                phost[--pn] = '\0';
        }
        phost[pn] = '\0';
        classify_host(cache, rhost, rn, phost, pn, ref.path, &hv);
    }
    const vd_src_host *e = hv.e;
    char guess = hv.guess;
    bool same_site = hv.same_site;
    const char *ref_name = e && e->name ? e->name : have_ref ? strip_www(rhost) : "";

    /* 1. click ids */
    const char *net = click_network(page_qp);
    if (net) {
        out->medium = VD_MEDIUM_PAID;
        set_name(out, u->source[0] ? u->source : net);
        return;
    }

    /* 2. utm-tagged */
    if (u->source[0] || u->medium[0]) {
        out->medium = (uint8_t)classify_utm(u);
        set_name(out, u->source[0] ? u->source : ref_name);
        if (out->medium == VD_MEDIUM_ORGANIC && !out->term[0] && e && e->kind == 'O')
            search_term(e, ref.query, out);
        return;
    }

    /* 3. direct */
    if (!have_ref) {
        out->medium = VD_MEDIUM_DIRECT;
        return;
    }

    /* 4. internal */
    if (same_site) {
        out->medium = VD_MEDIUM_INTERNAL;
        set_name(out, strip_www(rhost));
        return;
    }

    /* 5./6./7. the referring host */
    if (e) {
        out->medium = (uint8_t)medium_of_kind(e->kind);
        set_name(out, e->kind == 'R' || !e->name ? strip_www(rhost) : e->name);
        if (e->kind == 'O' && !out->term[0])
            search_term(e, ref.query, out);
        return;
    }
    out->medium = (uint8_t)medium_of_kind(guess);
    set_name(out, strip_www(rhost));
    if (guess == 'O' && !out->term[0])
        search_term(NULL, ref.query, out);
}

static res_entry *res_find(vd_source_cache *c, uint64_t h, vd_str ref, const char *ph, size_t pn)
{
    res_entry *set = &c->res[(h & c->mask) * SRC_WAYS];
    for (int w = 0; w < SRC_WAYS; w++) {
        res_entry *x = &set[w];
        if (x->rn == ref.n && x->pn == pn && x->hash == h && memcmp(x->key, ref.p, ref.n) == 0 &&
            memcmp(x->key + ref.n, ph, pn) == 0)
            return x;
    }
    return NULL;
}

static void res_put(vd_source_cache *c, uint64_t h, vd_str ref, const char *ph, size_t pn,
                    const vd_source *val)
{
    res_entry *set = &c->res[(h & c->mask) * SRC_WAYS];
    res_entry *x = &set[0];
    for (int w = 0; w < SRC_WAYS; w++) {
        if (set[w].rn == 0) {
            x = &set[w];
            break;
        }
        if ((uint32_t)(c->clock - set[w].used) > (uint32_t)(c->clock - x->used))
            x = &set[w];
    }
    x->hash = h;
    x->used = ++c->clock;
    x->rn = (uint16_t)ref.n;
    x->pn = (uint8_t)pn;
    memcpy(x->key, ref.p, ref.n);
    memcpy(x->key + ref.n, ph, pn);
    x->val = *val;
}

void vd_source_classify_cached(vd_source_cache *cache, vd_str referer, const vd_url *page_in,
                               vd_source *out)
{
    pthread_once(&index_once, build_index);
    utm u;
    qfields page_q;
    read_utm(page_in ? page_in->query : VD_STR_NULL, &u, &page_q);
    /* The whole answer from the cache when the landing page has no utm or
     * click-id key: then only the Referer and the landing host (as
     * classify_body lower-cases and trims it) decide it. */
    if (!cache || page_q.any_utm || page_q.any_click || referer.n == 0 || !referer.p) {
        classify_body(cache, referer, page_in, &u, &page_q, out);
        return;
    }
    char phost[HOST_MAX];
    size_t pn = 0;
    if (page_in && page_in->host.n > 0 && page_in->host.n < HOST_MAX) {
        pn = vd_str_copy_lower(phost, sizeof phost, page_in->host);
        while (pn > 0 && phost[pn - 1] == '.')
            pn--;
    }
    if (referer.n + pn > RES_KEY_MAX) {
        classify_body(cache, referer, page_in, &u, &page_q, out);
        return;
    }
    uint64_t h = vd_hash_mem(referer.p, referer.n) ^ (vd_hash_mem(phost, pn) * 0x9E3779B97F4A7C15ULL);
    res_entry *x = res_find(cache, h, referer, phost, pn);
    if (x) {
        x->used = ++cache->clock;
        cache->res_hits++;
        *out = x->val;
        if (out->host[0])          /* a Referer with a host: answered by the cache */
            count(cache->hits);
        return;
    }
    cache->res_misses++;
    classify_body(cache, referer, page_in, &u, &page_q, out);
    res_put(cache, h, referer, phost, pn, out);
}

const char *vd_medium_name(unsigned m)
{
    static const char *const names[VD_MEDIUM__COUNT] = {
        "direct", "organic", "paid", "social", "email", "referral", "internal",
    };
    return m < VD_MEDIUM__COUNT ? names[m] : "direct";
}
