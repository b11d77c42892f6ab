/* ip.c — the one parser of IP addresses and networks (see ip.h). What
 * follows is the rule for client IP literals (vd_ip_parse); the host:port
 * form of proxy headers, socket addresses and networks are read by the
 * functions further down with the same address parsers.
 *
 * Accepted: IPv4 dotted quad (four decimal parts 0-255, no leading zeros, so
 * "010.1.1.1" is not silently read as octal or decimal), any RFC 4291 IPv6
 * text form (incl. "::" and an embedded dotted quad), optionally in [brackets],
 * optionally with a %zone suffix (ignored). A v4-mapped address
 * (::ffff:a.b.c.d) is stored as IPv4 so geo and cidr rules see one form.
 * Everything else is "no IP": in particular "1.2.3.4:80" and "[::1]:80" are
 * rejected — a port means the caller passed the wrong header field, and
 * guessing would make cidr rules match on a mangled value. */
#include "context/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

/* Longest IPv6 text form is 45 bytes ("ffff:...:255.255.255.255"); a zone
 * name is at most IF_NAMESIZE. Anything longer cannot be a valid literal. */
#define IP_TEXT_MAX 64

static bool parse_v4(const char *p, size_t n, uint8_t out[4])
{
    const char *e = p + n;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (p == e || *p != '.')
                return false;
            p++;
        }
        /* one to three digits, no leading zero, at most 255 */
        unsigned d;
        if (p == e || (d = (unsigned)(unsigned char)*p - '0') > 9)
            return false;
        unsigned v = d;
        p++;
        if (p < e && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
            if (v == 0)
                return false;
            v = v * 10 + d;
            p++;
            if (p < e && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
                v = v * 10 + d;
                p++;
                if (v > 255)
                    return false;
            }
        }
        out[part] = (uint8_t)v;
    }
    return p == e;
}

static bool zone_ok(const char *p, size_t n)
{
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7f || c == '%' || c == '[' || c == ']')
            return false;
    }
    return true;
}

/* IPv6 text without brackets or zone into 16 bytes; inet_pton would stop
 * at a NUL, so anything outside the alphabet is refused first. */
static bool parse_v6(const char *p, size_t n, uint8_t out[16])
{
    char buf[IP_TEXT_MAX + 1];
    if (n > IP_TEXT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == ':' || c == '.'))
            return false;
        buf[i] = c;
    }
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, out) == 1;
}

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Stores 16 IPv6 bytes, a v4-mapped address as IPv4. */
static void set_v6(const uint8_t a[16], vd_ipaddr *out)
{
    if (memcmp(a, v4_mapped, sizeof v4_mapped) == 0) {
        memcpy(out->addr, a + 12, 4);
        out->family = 4;
    } else {
        memcpy(out->addr, a, 16);
        out->family = 6;
    }
}

bool vd_ip_parse(vd_str s, vd_ipaddr *out)
{
    memset(out, 0, sizeof *out);
    if (!s.p || s.n == 0 || s.n > IP_TEXT_MAX)
        return false;
    /* The usual case first: a plain dotted quad (digits and dots only, so
     * the general path below would read it the same way). */
    uint8_t v4[4];
    if (s.p[0] >= '0' && s.p[0] <= '9' && parse_v4(s.p, s.n, v4)) {
        memcpy(out->addr, v4, 4);
        out->family = 4;
        return true;
    }
    const char *p = s.p;
    size_t n = s.n;
    bool bracketed = false;
    if (p[0] == '[') {
        if (n < 3 || p[n - 1] != ']')
            return false;
        p++;
        n -= 2;
        bracketed = true;
    }
    const char *pct = memchr(p, '%', n);
    if (pct) {
        if (!zone_ok(pct + 1, n - (size_t)(pct + 1 - p)))
            return false;
        n = (size_t)(pct - p);
    }
    if (n == 0)
        return false;
    if (!memchr(p, ':', n)) {
        /* A zone or brackets only make sense on IPv6. */
        if (bracketed || pct)
            return false;
        if (!parse_v4(p, n, out->addr))
            return false;
        out->family = 4;
        return true;
    }
    uint8_t a[16];
    if (!parse_v6(p, n, a))
        return false;
    set_v6(a, out);
    return true;
}

const char *vd_ip_format(const vd_ipaddr *ip, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return buf;
    buf[0] = '\0';
    char tmp[INET6_ADDRSTRLEN];
    const char *r = NULL;
    if (ip && ip->family == 4)
        r = inet_ntop(AF_INET, ip->addr, tmp, sizeof tmp);
    else if (ip && ip->family == 6)
        r = inet_ntop(AF_INET6, ip->addr, tmp, sizeof tmp);
    snprintf(buf, cap, "%s", r ? r : "");
    return buf;
}

bool vd_ip_parse_hostport(vd_str s, vd_ipaddr *out)
{
    if (vd_ip_parse(s, out))
        return true;
    if (!s.p || s.n < 3 || s.n > IP_TEXT_MAX + 8)
        return false;
    /* What proxies write beside an address: a port (":8080", or ":" with
     * none), brackets around IPv4 as well as IPv6, a %zone after IPv4. */
    size_t n = s.n;
    size_t i = n;
    while (i > 0 && s.p[i - 1] >= '0' && s.p[i - 1] <= '9')
        i--;
    if (i > 0 && s.p[i - 1] == ':' && n - i <= 5 &&
        (s.p[0] == '[' ? s.p[i - 2] == ']' : !memchr(s.p, ':', i - 1)))
        n = i - 1;                                     /* drop ":port" */
    vd_str host = vd_str_make(s.p, n);
    if (host.n > 2 && host.p[0] == '[' && host.p[host.n - 1] == ']')
        host = vd_str_make(host.p + 1, host.n - 2);
    if (vd_ip_parse(host, out))
        return true;
    const char *pct = memchr(host.p, '%', host.n);
    if (pct && !memchr(host.p, ':', (size_t)(pct - host.p)))
        return vd_ip_parse(vd_str_make(host.p, (size_t)(pct - host.p)), out) && out->family == 4;
    return false;
}

bool vd_ip_from_sockaddr(const struct sockaddr *sa, vd_ipaddr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        memcpy(out->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        out->family = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        set_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, out);
        return true;
    }
    return false;
}

bool vd_ipnet_parse(vd_str s, bool allow_prefix, vd_ipnet *out)
{
    memset(out, 0, sizeof *out);
    if (!s.p || s.n == 0 || s.n > IP_TEXT_MAX + 4)
        return false;
    const char *slash = memchr(s.p, '/', s.n);
    size_t alen = slash ? (size_t)(slash - s.p) : s.n;
    if (alen == 0 || s.p[0] == '[' || memchr(s.p, '%', alen))
        return false;
    long plen = -1;
    if (slash) {
        size_t dn = s.n - alen - 1;
        if (!allow_prefix)
            return false;
        if (dn == 0 || dn > 3)
            return false;
        plen = 0;
        for (size_t i = 0; i < dn; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9')
                return false;
            plen = plen * 10 + (c - '0');
        }
    }
    /* Parse the address without folding v4-mapped (the prefix decides). */
    const char *p = s.p;
    if (!memchr(p, ':', alen)) {
        if (!parse_v4(p, alen, out->addr.addr) || plen > 32)
            return false;
        out->addr.family = 4;
        out->plen = (uint8_t)(plen < 0 ? 32 : plen);
    } else {
        if (!parse_v6(p, alen, out->addr.addr) || plen > 128)
            return false;
        out->addr.family = 6;
        out->plen = (uint8_t)(plen < 0 ? 128 : plen);
        if (memcmp(out->addr.addr, v4_mapped, 12) == 0 && out->plen >= 96) {
            memmove(out->addr.addr, out->addr.addr + 12, 4);
            memset(out->addr.addr + 4, 0, 12);
            out->addr.family = 4;
            out->plen = (uint8_t)(out->plen - 96);
        }
    }
    unsigned bytes = out->addr.family == 4 ? 4 : 16;
    for (unsigned b = 0; b < bytes; b++) {
        unsigned keep = out->plen > b * 8 ? out->plen - b * 8 : 0;
        if (keep < 8)
            out->addr.addr[b] &= (uint8_t)(0xff00u >> keep);
    }
    return true;
}
