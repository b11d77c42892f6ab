/* PLACEHOLDER: replaced by the ip/geo/tz work. */
#include "context/ip.h"
#include <stdio.h>
#include <string.h>
bool vd_ip_parse(vd_str s, vd_ipaddr *out) { (void)s; memset(out, 0, sizeof *out); return false; }
const char *vd_ip_format(const vd_ipaddr *ip, char *buf, size_t cap) { (void)ip; snprintf(buf, cap, "?"); return buf; }
bool vd_ip_in_prefix(const vd_ipaddr *ip, const vd_ipaddr *net, unsigned prefix) { (void)ip; (void)net; (void)prefix; return false; }
