/* ip.h — client IP parsing. Anything that is not a plain IPv4/IPv6 literal
 * (optionally [bracketed], optionally with a %zone) is "no IP": the geo and
 * ip attributes go missing, the request still gets an answer. */
#ifndef VD_CONTEXT_IP_H
#define VD_CONTEXT_IP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "core/value.h"

bool vd_ip_parse(vd_str s, vd_ipaddr *out);
/* Text form into buf (INET6_ADDRSTRLEN is enough); returns buf. */
const char *vd_ip_format(const vd_ipaddr *ip, char *buf, size_t cap);
/* True if ip lies in net/prefix (same family; prefix in bits). */
bool vd_ip_in_prefix(const vd_ipaddr *ip, const vd_ipaddr *net, unsigned prefix);

#endif
