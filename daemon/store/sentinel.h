/* sentinel.h — where the Redis master is, according to Redis Sentinel.
 *
 * For a `redis-sentinel://H1:26379,H2:26379/MASTER` URL (store/redis_url.h).
 * Reusable by every Redis client of the daemon (the release sync, the
 * profile store): the client connects its data links to the address this
 * gives and reconnects when it changes.
 *
 * Asynchronous watcher, on the caller's event base: connects to one
 * sentinel, asks `SENTINEL get-master-addr-by-name MASTER`, subscribes to
 * `+switch-master` on a second connection, and asks again every refresh_ms
 * (a missed message only delays a switch) and whenever the client calls
 * vd_sentinel_refresh (its data link failed, or the server it reached says
 * it is a replica). A sentinel that does not answer within timeout_ms,
 * drops the connection or does not know MASTER is left for the next one in
 * the list (round robin, with a capped backoff once all have failed). The
 * watcher never blocks; hiredis callbacks never free contexts themselves
 * (a deferred event does, as in redis_sync.c).
 *
 * vd_sentinel_resolve is the blocking one-shot form for the CLI and for
 * short-lived connections. */
#ifndef VD_STORE_SENTINEL_H
#define VD_STORE_SENTINEL_H

#include <stdbool.h>
#include <stddef.h>

#include "store/redis_url.h"

struct event_base;
typedef struct vd_sentinel vd_sentinel;

/* Called on the event loop when the master's address is first learned and
 * whenever it changes. */
typedef void (*vd_sentinel_fn)(void *arg, const char *host, int port);

/* Resolves sentinel host names once (blocking, start-up only). NULL with a
 * message in err if u is not a sentinel URL or a name does not resolve. */
vd_sentinel *vd_sentinel_new(const vd_redis_url *u, long timeout_ms, long refresh_ms, char *err,
                             size_t cap);
/* Starts watching (never blocks). -1 on out of memory. */
int vd_sentinel_start(vd_sentinel *s, struct event_base *base, vd_sentinel_fn fn, void *arg);
/* Ask for the master again now (no-op while reconnecting to a sentinel). */
void vd_sentinel_refresh(vd_sentinel *s);
/* The last known master; false if none yet. */
bool vd_sentinel_master(const vd_sentinel *s, char *host, size_t cap, int *port);
/* After the event loop has stopped (or before it ran). */
void vd_sentinel_free(vd_sentinel *s);

/* Blocking: asks each sentinel of u in turn (each under timeout_ms) and
 * writes the master's address into u->host / u->port. 0, or -1 with a
 * message naming every sentinel's failure. */
int vd_sentinel_resolve(vd_redis_url *u, int timeout_ms, char *err, size_t cap);

#endif
