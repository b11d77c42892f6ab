/* fuzz_context.c — libFuzzer target for the request-field parsers: client IP,
 * URL and query string, traffic source, Accept-Language, User-Agent.
 *
 * Not part of `make all`/`make test`. Build and run from the repository root:
 *
 *   make fuzz FUZZ_SECONDS=300          # every target, or this one by hand:
 *   make build/fuzz/fuzz_context
 *   mkdir -p /tmp/variantd-fuzz/context
 *   build/fuzz/fuzz_context -max_total_time=300 -max_len=4096 \
 *       /tmp/variantd-fuzz/context tests/fuzz/corpus/context
 *
 * The input is up to six fields separated by NUL bytes:
 *   ip \0 url \0 referer \0 accept-language \0 user-agent \0 query-param-name
 * Request fields are vd_str slices, never NUL-terminated, so each field is
 * passed as an exact-size heap copy: ASan reports any read past its end.
 * Beyond "no crash", it checks that:
 *   - vd_ip_parse accepts exactly what inet_pton accepts for plain literals
 *     (no brackets, no zone);
 *   - a parsed IP has family 4 or 6, and vd_ip_format of it re-parses to the
 *     same address (and is a prefix of itself at /32 or /128);
 *   - vd_url_parse's scheme/host/path/query slices lie inside the input
 *     (path may be the literal "/"), and a failed parse zeroes the result;
 *   - vd_url_query_next yields key/value slices inside the query with a
 *     strictly advancing position and ends; vd_url_query_get's value lies in
 *     the caller's buffer and is NUL-terminated there, for a small and a
 *     normal buffer, and it agrees with a reference that decodes every key
 *     in full; vd_url_decode stays within cap;
 *   - vd_source_classify gives medium < VD_MEDIUM__COUNT, a name, and every
 *     text field NUL-terminated within its array; direct means no host;
 *   - vd_lang_primary gives 2-8 lower-case letters when true, "" when false;
 *   - vd_device_classify gives type < VD_DEVICE__COUNT with names, and the
 *     per-worker cache answers the same as the classifier; a UA longer than
 *     VD_UA_MAX is classified as its first VD_UA_MAX bytes;
 *   - with Client Hints taken from the other fields (model = url, platform =
 *     accept-language, sec-ch-ua = referer, mobile = query-param-name), the
 *     same holds for vd_device_classify_hints and the cache keyed by hints. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "context/device.h"
#include "context/ip.h"
#include "context/lang.h"
#include "context/source.h"
#include "context/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define NFIELDS 6

static vd_device_cache *cache;

static bool inside(vd_str s, vd_str in)
{
    if (s.n == 0)
        return true;
    return s.p >= in.p && s.n <= in.n && s.p + s.n <= in.p + in.n;
}

static bool terminated(const char *a, size_t cap)
{
    return memchr(a, 0, cap) != NULL;
}

static void check_ip(vd_str s)
{
    vd_ipaddr ip, ip2;
    memset(&ip, 0xa5, sizeof ip);
    bool ok = vd_ip_parse(s, &ip);
    /* Differential: without brackets or a zone, exactly what inet_pton takes
     * (glibc's AF_INET form also refuses leading zeros). */
    if (s.n > 0 && s.n <= 64 && !memchr(s.p, 0, s.n) && !memchr(s.p, '[', s.n) &&
        !memchr(s.p, '%', s.n)) {
        char z[65];
        uint8_t a[16];
        memcpy(z, s.p, s.n);
        z[s.n] = '\0';
        bool ref = inet_pton(AF_INET, z, a) == 1 || inet_pton(AF_INET6, z, a) == 1;
        CHECK(ok == ref);
    }
    if (!ok)
        return;
    CHECK(ip.family == 4 || ip.family == 6);
    char buf[64];
    vd_ip_format(&ip, buf, sizeof buf);
    CHECK(buf[0] != '\0');
    size_t n = strlen(buf);
    char *copy = malloc(n);
    CHECK(copy);
    memcpy(copy, buf, n);
    CHECK(vd_ip_parse(vd_str_make(copy, n), &ip2));
    free(copy);
    CHECK(ip2.family == ip.family);
    CHECK(memcmp(ip2.addr, ip.addr, ip.family == 4 ? 4 : 16) == 0);
    /* The address is its own full-length network. */
    vd_ipnet self;
    CHECK(vd_ipnet_parse(vd_str_cstr(buf), false, &self));
    CHECK(vd_ipnet_contains(&self, &ip));
    /* A tiny buffer is cut, still terminated. */
    char small[5];
    vd_ip_format(&ip, small, sizeof small);
    CHECK(terminated(small, sizeof small));
}

/* Reference for vd_url_query_get: the first parameter whose fully decoded
 * key equals name (ASCII case-insensitively). */
static bool ref_query_get(vd_str q, vd_str name, char *buf, size_t cap)
{
    size_t pos = 0;
    vd_str k, v;
    static char kb[8192];
    while (vd_url_query_next(q, &pos, &k, &v)) {
        size_t kn = vd_url_decode(k, kb, sizeof kb);
        if (!vd_str_eq_ci(vd_str_make(kb, kn), name))
            continue;
        vd_url_decode(v, buf, cap);
        return true;
    }
    return false;
}

static void check_query(vd_str q, vd_str name)
{
    size_t pos = 0, prev = 0;
    vd_str k, v;
    unsigned guard = 0;
    while (vd_url_query_next(q, &pos, &k, &v)) {
        CHECK(pos > prev);
        CHECK(pos <= q.n);
        CHECK(inside(k, q) && inside(v, q));
        prev = pos;
        CHECK(++guard <= q.n + 1);
    }
    char buf[1024], small[4];
    vd_str out;
    char rbuf[sizeof buf];
    bool found = vd_url_query_get(q, name, buf, sizeof buf, &out);
    CHECK(found == ref_query_get(q, name, rbuf, sizeof rbuf));
    if (found) {
        CHECK(out.p == buf && out.n < sizeof buf && buf[out.n] == '\0');
        CHECK(strcmp(buf, rbuf) == 0);
    } else {
        CHECK(out.n == 0);
    }
    if (vd_url_query_get(q, name, small, sizeof small, &out))
        CHECK(out.p == small && out.n < sizeof small && small[out.n] == '\0');
    size_t dn = vd_url_decode(q, small, sizeof small);
    CHECK(dn < sizeof small && small[dn] == '\0');
}

static void check_url(vd_str s, vd_str name)
{
    vd_url u;
    if (!vd_url_parse(s, &u)) {
        CHECK(u.scheme.n == 0 && u.host.n == 0 && u.path.n == 0 && u.query.n == 0);
        check_query(s, name);     /* the raw field as a query string, too */
        return;
    }
    CHECK(inside(u.scheme, s) && inside(u.host, s) && inside(u.query, s));
    CHECK(u.path.n > 0);
    CHECK(inside(u.path, s) || (u.path.n == 1 && u.path.p[0] == '/'));
    check_query(u.query, name);
}

static void check_source(vd_str ref, vd_str url)
{
    vd_source src;
    vd_source_classify(ref, url, &src);
    CHECK(src.medium < VD_MEDIUM__COUNT);
    CHECK(vd_medium_name(src.medium) != NULL);
    CHECK(terminated(src.name, sizeof src.name));
    CHECK(terminated(src.host, sizeof src.host));
    CHECK(terminated(src.campaign, sizeof src.campaign));
    CHECK(terminated(src.term, sizeof src.term));
    CHECK(terminated(src.content, sizeof src.content));
    if (src.medium == VD_MEDIUM_DIRECT)
        CHECK(src.host[0] == '\0');
}

static void check_lang(vd_str al)
{
    char out[9];
    memset(out, 'X', sizeof out);
    bool ok = vd_lang_primary(al, out);
    CHECK(terminated(out, sizeof out));
    size_t n = strlen(out);
    if (!ok) {
        CHECK(n == 0);
        return;
    }
    CHECK(n >= 2 && n <= 8);
    for (size_t i = 0; i < n; i++)
        CHECK(out[i] >= 'a' && out[i] <= 'z');
}

/* Client Hints from the other fields: any bytes in any hint. */
static void check_hints(vd_str ua, const vd_ua_hints *h)
{
    vd_device d, d2;
    vd_device_classify_hints(ua, h, &d);
    CHECK(d.type < VD_DEVICE__COUNT);
    CHECK(!d.os || strlen(d.os) > 0);
    CHECK(!d.browser || strlen(d.browser) > 0);
    for (int i = 0; i < 2; i++) {            /* the cache keys by UA and hints */
        vd_device_lookup(cache, ua, h, &d2);
        CHECK(d2.type == d.type && d2.os == d.os && d2.browser == d.browser);
    }
}

static void check_device(vd_str ua)
{
    vd_device d, d2;
    vd_device_classify(ua, &d);
    CHECK(d.type < VD_DEVICE__COUNT);
    CHECK(vd_device_type_name(d.type) != NULL);
    CHECK(!d.os || strlen(d.os) > 0);
    CHECK(!d.browser || strlen(d.browser) > 0);
    if (ua.n > VD_UA_MAX) {                  /* classified on its first VD_UA_MAX bytes */
        vd_device_classify(vd_str_make(ua.p, VD_UA_MAX), &d2);
        CHECK(d2.type == d.type && d2.os == d.os && d2.browser == d.browser);
    }
    if (!cache)
        cache = vd_device_cache_new(64);
    for (int i = 0; i < 2; i++) {            /* a miss, then a hit */
        vd_device_lookup(cache, ua, NULL, &d2);
        CHECK(d2.type == d.type && d2.os == d.os && d2.browser == d.browser);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *field[NFIELDS];
    vd_str f[NFIELDS];
    size_t off = 0;
    for (int i = 0; i < NFIELDS; i++) {
        const uint8_t *nul = off < size ? memchr(data + off, 0, size - off) : NULL;
        size_t n = i == NFIELDS - 1 || !nul ? size - off : (size_t)(nul - (data + off));
        if (off >= size)
            n = 0;
        /* Exact size (malloc(0) may return NULL or a unique pointer: both
         * must be fine for an empty slice). */
        field[i] = malloc(n ? n : 1);
        CHECK(field[i]);
        if (n)
            memcpy(field[i], data + off, n);
        f[i] = vd_str_make(field[i], n);
        off += n + (off + n < size ? 1 : 0);
    }
    check_ip(f[0]);
    check_url(f[1], f[5]);
    check_url(f[2], f[5]);
    check_source(f[2], f[1]);
    check_lang(f[3]);
    check_device(f[4]);
    vd_ua_hints h = { .ua = f[2], .mobile = f[5], .platform = f[3], .model = f[1] };
    check_hints(f[4], &h);
    /* Fields as the wrong kind of input, too. */
    check_ip(f[1]);
    check_lang(f[4]);
    check_device(f[2]);
    for (int i = 0; i < NFIELDS; i++)
        free(field[i]);
    return 0;
}
