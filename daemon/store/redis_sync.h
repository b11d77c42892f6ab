/* redis_sync.h — the daemon side of Redis mode.
 *
 * On the main event base: a command connection (GET current, HGETALL the
 * release, the daemon's own status key) and a subscriber connection on
 * NS:events. A notification or a poll every redis-poll-interval fetches the
 * current release when its version differs from the one served; a compile
 * thread turns it into a ruleset, swaps it in with vd_live_set and writes the
 * snapshot. The request path never waits for any of this.
 *
 * hiredis 0.14 has no async timeouts: every connect and command runs under a
 * libevent deadline (redis-timeout); on expiry, error or disconnect both
 * connections are torn down from a deferred event (never inside a hiredis
 * callback) and rebuilt after a capped, jittered exponential backoff. */
#ifndef VD_STORE_REDIS_SYNC_H
#define VD_STORE_REDIS_SYNC_H

#include <stddef.h>

struct event_base;

/* What Redis mode needs of the settings (main fills it from the config). */
typedef struct vd_redis_sync_options {
    const char *url;              /* redis-... URL (--redis) */
    const char *namespace_;       /* key prefix (redis-namespace) */
    const char *listen;           /* decision port, advertised in the daemon's status key */
    const char *snapshot;         /* last-known-good file; NULL or "" = none */
    long poll_ms;                 /* redis-poll-interval */
    long timeout_ms;              /* redis-timeout: connect and command deadline */
    long stale_after_s;           /* stale-after */
    long compile_nice;            /* compile-nice: the compile thread's nice value */
} vd_redis_sync_options;
typedef struct vd_redis_sync vd_redis_sync;

/* Parses the URL, resolves a host name once (blocking, start-up only) and
 * loads the snapshot if there is one (compiled and served with source
 * "snapshot"). NULL with a message on a configuration error. */
vd_redis_sync *vd_redis_sync_new(const vd_redis_sync_options *opt, char *err, size_t cap);
/* Starts connecting (never blocks). -1 on out of memory. */
int vd_redis_sync_start(vd_redis_sync *s, struct event_base *base);
/* fn runs on the event loop after every accepted or rejected release
 * (main uses it for the systemd status line). */
void vd_redis_sync_on_change(vd_redis_sync *s, void (*fn)(void));
/* SIGHUP: forget rejected versions and check the current one now. */
void vd_redis_sync_check_now(vd_redis_sync *s);
/* After the event loop has stopped. */
void vd_redis_sync_free(vd_redis_sync *s);

#endif
