/* redis_url.h — parses the `redis` setting, shared by the daemon and the CLI.
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *   rediss:// is refused (no TLS in hiredis 0.14)
 *   unix:/PATH[?db=N&user=U&password=P]    unix:///PATH?... is the same
 *   redis-sentinel://[[USER]:PASSWORD@]H1[:P1],H2[:P2],.../MASTER[/DB]
 *       up to VD_SENTINEL_MAX sentinels (port 26379 by default) asked for
 *       the address of MASTER (store/sentinel.h); the credentials and DB are
 *       for the master, sentinels are asked without AUTH. host/port stay
 *       empty until a sentinel has answered.
 *
 * HOST may be an IPv4 address, [IPv6] or a name (resolved by the caller,
 * see redis_sync.c). USER and PASSWORD are percent-decoded. A password
 * without a user is a legacy `AUTH password`; with a user it is the ACL form
 * `AUTH user password`. */
#ifndef VD_STORE_REDIS_URL_H
#define VD_STORE_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define VD_REDIS_DEFAULT_PORT 6379
#define VD_SENTINEL_DEFAULT_PORT 26379
#define VD_SENTINEL_MAX 8

typedef struct vd_redis_hostport {
    char host[256];
    int port;
} vd_redis_hostport;

typedef struct vd_redis_url {
    bool is_unix;
    char host[256];           /* TCP: host without brackets */
    int port;
    char path[1024];          /* unix: socket path */
    char user[256];           /* "" = none */
    char password[512];       /* "" = none */
    bool has_password;        /* an empty password is still sent when given */
    int db;                   /* SELECT db, 0 = default */
    bool is_sentinel;
    char master[128];         /* sentinel: the monitored master's name */
    unsigned nsentinels;
    vd_redis_hostport sentinels[VD_SENTINEL_MAX];
} vd_redis_url;

/* 0 on success; -1 with a message in err. Never reads past the NUL. */
int vd_redis_url_parse(const char *url, vd_redis_url *out, char *err, size_t cap);
/* The URL with the password masked, for logs: redis://user:***@host:port/db */
void vd_redis_url_describe(const vd_redis_url *u, char *buf, size_t cap);

#endif
