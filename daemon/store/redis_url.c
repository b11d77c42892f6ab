#include "store/redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"

/* Percent-decodes [p, p+n) into out (cap bytes with the NUL). */
static int decode(const char *p, size_t n, char *out, size_t cap, const char *what, char *err,
                  size_t ecap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n || vd_hex_value(p[i + 1]) < 0 || vd_hex_value(p[i + 2]) < 0) {
                snprintf(err, ecap, "bad %%-escape in the %s", what);
                return -1;
            }
            c = (char)(vd_hex_value(p[i + 1]) * 16 + vd_hex_value(p[i + 2]));
            i += 2;
            if (c == '\0') {
                snprintf(err, ecap, "%%00 in the %s", what);
                return -1;
            }
        }
        if (o + 1 >= cap) {
            snprintf(err, ecap, "%s too long", what);
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_db(const char *p, size_t n, int *db, char *err, size_t cap)
{
    if (n == 0) {
        *db = 0;
        return 0;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > 100000) {
            snprintf(err, cap, "database must be a number 0..100000");
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    if (v > 100000) {
        snprintf(err, cap, "database must be a number 0..100000");
        return -1;
    }
    *db = (int)v;
    return 0;
}

/* unix:/path?db=N&user=U&password=P */
static int parse_unix(const char *s, vd_redis_url *u, char *err, size_t cap)
{
    /* unix:///path and unix:/path name the same socket. */
    if (strncmp(s, "//", 2) == 0)
        s += 2;
    if (s[0] != '/') {
        snprintf(err, cap, "unix: needs an absolute socket path (unix:/run/redis.sock)");
        return -1;
    }
    const char *q = strchr(s, '?');
    size_t plen = q ? (size_t)(q - s) : strlen(s);
    u->is_unix = true;
    if (decode(s, plen, u->path, sizeof u->path, "socket path", err, cap) != 0)
        return -1;
    if (!q)
        return 0;
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            snprintf(err, cap, "unix: query needs key=value pairs");
            return -1;
        }
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        const char *v = eq + 1;
        int rc;
        if (kn == 2 && memcmp(p, "db", 2) == 0) {
            rc = parse_db(v, vn, &u->db, err, cap);
        } else if (kn == 4 && memcmp(p, "user", 4) == 0) {
            rc = decode(v, vn, u->user, sizeof u->user, "user", err, cap);
        } else if (kn == 8 && memcmp(p, "password", 8) == 0) {
            rc = decode(v, vn, u->password, sizeof u->password, "password", err, cap);
            u->has_password = true;
        } else {
            snprintf(err, cap, "unix: unknown query key '%.*s' (db, user, password)",
                     (int)(kn > 32 ? 32 : kn), p);
            return -1;
        }
        if (rc != 0)
            return -1;
        p += n;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* HOST[:PORT] or [V6][:PORT] in [s, end). */
static int parse_hostport(const char *s, const char *end, char *host, size_t hcap, int *port_out,
                          char *err, size_t cap)
{
    const char *hend;
    const char *port = NULL;
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(end - s));
        if (!rb) {
            snprintf(err, cap, "unclosed [ in the Redis host");
            return -1;
        }
        if ((size_t)(rb - s - 1) >= hcap || rb == s + 1) {
            snprintf(err, cap, "bad IPv6 host");
            return -1;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        hend = rb + 1;
        if (hend < end) {
            if (*hend != ':') {
                snprintf(err, cap, "junk after ] in the Redis host");
                return -1;
            }
            port = hend + 1;
        }
    } else {
        const char *colon = memchr(s, ':', (size_t)(end - s));
        hend = colon ? colon : end;
        if ((size_t)(hend - s) >= hcap) {
            snprintf(err, cap, "Redis host too long");
            return -1;
        }
        memcpy(host, s, (size_t)(hend - s));
        host[hend - s] = '\0';
        if (colon)
            port = colon + 1;
    }
    if (!host[0]) {
        snprintf(err, cap, "Redis URL has no host");
        return -1;
    }
    for (const char *h = host; *h; h++)
        if ((unsigned char)*h <= ' ' || *h == '@' || *h == '%' || *h == ',') {
            snprintf(err, cap, "bad character in the Redis host");
            return -1;
        }
    if (port) {
        long p = 0;
        if (port == end) {
            snprintf(err, cap, "empty port in the Redis URL");
            return -1;
        }
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9' || p > 65535) {
                snprintf(err, cap, "bad port in the Redis URL");
                return -1;
            }
            p = p * 10 + (*c - '0');
        }
        if (p < 1 || p > 65535) {
            snprintf(err, cap, "port must be 1..65535");
            return -1;
        }
        *port_out = (int)p;
    }
    return 0;
}

int vd_redis_url_parse(const char *url, vd_redis_url *u, char *err, size_t cap)
{
    memset(u, 0, sizeof *u);
    u->port = VD_REDIS_DEFAULT_PORT;
    if (!url || !*url) {
        snprintf(err, cap, "empty Redis URL");
        return -1;
    }
    if (strlen(url) > 2048) {
        snprintf(err, cap, "Redis URL too long");
        return -1;
    }
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(url + 5, u, err, cap);
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, cap, "rediss:// (TLS) is not supported: use a local TLS proxy or unix:");
        return -1;
    }
    bool sentinel = strncmp(url, "redis-sentinel://", 17) == 0;
    if (!sentinel && strncmp(url, "redis://", 8) != 0) {
        snprintf(err, cap, "Redis URL must start with redis://, redis-sentinel:// or unix:");
        return -1;
    }
    const char *s = url + (sentinel ? 17 : 8);
    u->is_sentinel = sentinel;
    const char *end = s + strcspn(s, "/?#");
    /* Userinfo: the last '@' before the path, so a password may hold '@'
     * only percent-encoded but a stray one still parses predictably. */
    const char *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon) {
            if (decode(s, (size_t)(colon - s), u->user, sizeof u->user, "user", err, cap) != 0 ||
                decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password,
                       "password", err, cap) != 0)
                return -1;
            u->has_password = true;
        } else {
            /* redis://secret@host: the userinfo is the password (common usage). */
            if (decode(s, (size_t)(at - s), u->password, sizeof u->password, "password", err,
                       cap) != 0)
                return -1;
            u->has_password = true;
        }
        s = at + 1;
    }
    if (!sentinel) {
        if (parse_hostport(s, end, u->host, sizeof u->host, &u->port, err, cap) != 0)
            return -1;
    } else {
        /* h1[:p1],h2[:p2],.../MASTER[/DB] */
        while (s < end) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *e = comma ? comma : end;
            if (u->nsentinels == VD_SENTINEL_MAX) {
                snprintf(err, cap, "at most %d sentinels", VD_SENTINEL_MAX);
                return -1;
            }
            vd_redis_hostport *h = &u->sentinels[u->nsentinels++];
            h->port = VD_SENTINEL_DEFAULT_PORT;
            if (parse_hostport(s, e, h->host, sizeof h->host, &h->port, err, cap) != 0)
                return -1;
            s = comma ? comma + 1 : end;
            if (comma && s == end) {
                snprintf(err, cap, "empty sentinel address after ','");
                return -1;
            }
        }
        if (u->nsentinels == 0) {
            snprintf(err, cap, "Redis URL has no host");
            return -1;
        }
        if (*end != '/' || end[1] == '\0' || end[1] == '/' || end[1] == '?' || end[1] == '#') {
            snprintf(err, cap, "redis-sentinel:// needs the master name: redis-sentinel://HOST:26379/MASTER");
            return -1;
        }
        const char *m = end + 1;
        size_t mn = strcspn(m, "/?#");
        if (mn >= sizeof u->master) {
            snprintf(err, cap, "master name too long");
            return -1;
        }
        for (size_t i = 0; i < mn; i++)
            if ((unsigned char)m[i] <= ' ' || (unsigned char)m[i] >= 0x7f || m[i] == '%') {
                snprintf(err, cap, "bad character in the master name");
                return -1;
            }
        memcpy(u->master, m, mn);
        u->master[mn] = '\0';
        end = m + mn;
        /* The data connections go to whatever master Sentinel names. */
        u->host[0] = '\0';
    }
    if (*end == '/') {
        const char *db = end + 1;
        size_t n = strcspn(db, "?#");
        if (parse_db(db, n, &u->db, err, cap) != 0)
            return -1;
        end = db + n;
    }
    if (*end) {
        snprintf(err, cap, "unexpected '%c...' in the Redis URL (query strings are for unix: only)",
                 *end);
        return -1;
    }
    return 0;
}

void vd_redis_url_describe(const vd_redis_url *u, char *buf, size_t cap)
{
    const char *auth = u->has_password ? (u->user[0] ? ":***@" : "***@") : "";
    if (u->is_sentinel && !u->host[0]) {
        size_t o = (size_t)snprintf(buf, cap, "redis-sentinel://%s%s", u->user, auth);
        for (unsigned i = 0; i < u->nsentinels && o < cap; i++) {
            const vd_redis_hostport *h = &u->sentinels[i];
            bool v6 = strchr(h->host, ':') != NULL;
            o += (size_t)snprintf(buf + o, cap - o, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", h->host,
                                  v6 ? "]" : "", h->port);
        }
        if (o < cap)
            snprintf(buf + o, cap - o, "/%s/%d", u->master, u->db);
        return;
    }
    if (u->is_unix)
        snprintf(buf, cap, "unix:%s?db=%d%s", u->path, u->db, u->has_password ? "&password=***" : "");
    else if (strchr(u->host, ':'))
        snprintf(buf, cap, "redis://%s%s[%s]:%d/%d", u->user, auth, u->host, u->port, u->db);
    else
        snprintf(buf, cap, "redis://%s%s%s:%d/%d", u->user, auth, u->host, u->port, u->db);
}
