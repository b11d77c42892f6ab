/* ip.c — client IP literal parsing.
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
#include <stdio.h>
#include <string.h>

/* Longest IPv6 text form is 45 bytes ("ffff:...:255.255.255.255"); a zone
 * name is at most IF_NAMESIZE. Anything longer cannot be a valid literal. */
#define IP_TEXT_MAX 64

static bool parse_v4(const char *p, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || p[i] != '.')
                return false;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && i - start < 3) {
            v = v * 10 + (unsigned)(p[i] - '0');
            i++;
        }
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && p[start] == '0'))
            return false;
        out[part] = (uint8_t)v;
    }
    return i == n;
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

bool vd_ip_parse(vd_str s, vd_ipaddr *out)
{
    memset(out, 0, sizeof *out);
    if (!s.p || s.n == 0 || s.n > IP_TEXT_MAX)
        return false;
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
    char buf[IP_TEXT_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        /* inet_pton would stop at a NUL; reject anything outside the alphabet. */
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == ':' || c == '.'))
            return false;
        buf[i] = c;
    }
    buf[n] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET6, buf, a) != 1)
        return false;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a, mapped, sizeof mapped) == 0) {
        memcpy(out->addr, a + 12, 4);
        out->family = 4;
    } else {
        memcpy(out->addr, a, 16);
        out->family = 6;
    }
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

bool vd_ip_in_prefix(const vd_ipaddr *ip, const vd_ipaddr *net, unsigned prefix)
{
    if (!ip || !net || ip->family == 0 || ip->family != net->family)
        return false;
    unsigned bits = ip->family == 4 ? 32 : 128;
    if (prefix > bits)
        return false;
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(ip->addr, net->addr, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip->addr[whole] & mask) == (net->addr[whole] & mask);
}
