/* ip.h — the one parser of IP addresses and networks, and the one CIDR
 * test: the context (client IP), the compiler (cidr rules) and the edge
 * port (peers, X-Forwarded-For, trusted-proxies) all use these.
 *
 * A client IP that is not a plain IPv4/IPv6 literal (optionally
 * [bracketed], optionally with a %zone) is "no IP": the geo and ip
 * attributes go missing, the request still gets an answer. */
#ifndef VD_CONTEXT_IP_H
#define VD_CONTEXT_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/str.h"
#include "core/value.h"

struct sockaddr;

bool vd_ip_parse(vd_str s, vd_ipaddr *out);
/* The same, also accepting a port after the address ("1.2.3.4:8080",
 * "[2001:db8::1]:443"), as some proxies write X-Forwarded-For entries. */
bool vd_ip_parse_hostport(vd_str s, vd_ipaddr *out);
/* An AF_INET / AF_INET6 socket address (v4-mapped folded to IPv4). */
bool vd_ip_from_sockaddr(const struct sockaddr *sa, vd_ipaddr *out);
/* Text form into buf (INET6_ADDRSTRLEN is enough); returns buf. */
const char *vd_ip_format(const vd_ipaddr *ip, char *buf, size_t cap);
/* A network: an address with its host bits masked off, and a prefix length. */
typedef struct vd_ipnet {
    vd_ipaddr addr;
    uint8_t plen;
} vd_ipnet;

/* "10.0.0.0/8", "2001:db8::/32" (only when allow_prefix), or an address
 * alone, which is the full-length prefix. No brackets, zones or ports. A
 * v4-mapped IPv6 network of prefix >= 96 becomes the IPv4 network, as client
 * IPs do. Host bits are masked off. */
bool vd_ipnet_parse(vd_str s, bool allow_prefix, vd_ipnet *out);

/* True if ip lies in net (same family). On the request path: inline. */
static inline bool vd_ipnet_contains(const vd_ipnet *net, const vd_ipaddr *ip)
{
    if (net->addr.family != ip->family)
        return false;
    unsigned full = net->plen / 8, rest = net->plen % 8;
    if (memcmp(net->addr.addr, ip->addr, full) != 0)
        return false;
    return rest == 0 || ((ip->addr[full] ^ net->addr.addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

#endif
