/* source_hosts.h — private to source.c: the referring-site table.
 *
 * A pattern is a host ("t.co"), a host with the public suffix replaced by "*"
 * ("google.*" matches google.com, google.co.uk, www.google.de, ...), optionally
 * followed by a path prefix ("bing.com/images/search"). A pattern also matches
 * every subdomain of its host unless a more specific pattern exists
 * ("mail.google.*" beats "google.*"). */
#ifndef VD_CONTEXT_SOURCE_HOSTS_H
#define VD_CONTEXT_SOURCE_HOSTS_H

#include <stddef.h>

typedef struct vd_src_host {
    const char *pat;
    char kind;                /* 'O' search, 'S' social, 'E' webmail, 'P' ads, 'R' referral */
    const char *name;         /* source.name, lower case */
    const char *params;       /* search term parameters, comma separated; NULL = default list */
} vd_src_host;

extern const vd_src_host vd_src_hosts[];
extern const size_t vd_src_hosts_n;

#endif
