/* release.h — the Redis release model, shared by the daemon (reading) and
 * variantctl (publishing). Key layout, for namespace NS (default "variantd"):
 *
 *   NS:seq                  INCR counter, gives each release its number
 *   NS:release:<version>    hash, written once and never changed:
 *                             "segments/<file>"     -> JSON document
 *                             "content-map/<file>"  -> JSON document
 *                             "meta"                -> JSON {version, created, author,
 *                                                      message, segments, slots, documents,
 *                                                      checksum}
 *   NS:releases             sorted set: version scored by creation time (ms)
 *   NS:current              string: the version every daemon must serve
 *   NS:events               pub/sub channel: the new current version
 *   NS:daemons:<host>:<pid> string with a TTL: what that daemon serves
 *
 * Versions look like "r42-1a2b3c4d" (counter + content checksum). A daemon
 * only ever reads the release `current` points to, and `current` moves only
 * after the release hash is complete (MULTI/EXEC, then a Lua script that
 * checks the release exists before switching): nothing it reads is half
 * written. With Redis Cluster, put the namespace in braces ("{variantd}") so
 * every key hashes to one slot. */
#ifndef VD_STORE_RELEASE_H
#define VD_STORE_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/errors.h"
#include "rules/defs.h"
#include "store/redis_url.h"

#define VD_RELEASE_DEFAULT_NS "variantd"
#define VD_RELEASE_MAX_NS 64
#define VD_RELEASE_MAX_VERSION 100
#define VD_RELEASE_MAX_DOCS 100000
#define VD_RELEASE_MAX_BYTES (256L * 1024 * 1024)
#define VD_RELEASE_DEFAULT_KEEP 20

/* Letters, digits and . _ - : only, 1..VD_RELEASE_MAX_VERSION bytes. */
bool vd_release_version_ok(const char *v, size_t n);
bool vd_release_namespace_ok(const char *ns);
/* "NS:<what>" into buf; -1 if it does not fit. */
int vd_release_key(char *buf, size_t cap, const char *ns, const char *what);

/* One field of a release hash, as read from Redis (not NUL-terminated). */
typedef struct vd_release_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} vd_release_field;

/* Builds the compiler's input from a release hash: document fields sorted
 * by kind then name, "meta" skipped. An unknown field, a hash with no
 * document, or more than the limits above is an error (the whole release is
 * rejected). out must be initialised; it is emptied on error. */
int vd_release_to_docset(const vd_release_field *f, size_t n, vd_docset *out, vd_errors *err);

/* ---- variantctl side (hiredis synchronous API, blocking) ---- */

struct redisContext;
struct redisContext *vd_release_connect(const vd_redis_url *u, int timeout_ms, char *err,
                                        size_t cap);
void vd_release_close(struct redisContext *c);

typedef struct vd_publish_opts {
    const char *ns;
    const char *author;
    const char *message;
    long keep;                /* releases kept, >= 1; current is never deleted */
} vd_publish_opts;

/* Validates SEGDIR + MAPDIR with the daemon's compiler, writes a new release,
 * switches current, notifies. Errors (all compile errors) go to err. */
int vd_release_publish(struct redisContext *c, const char *segdir, const char *mapdir,
                       const vd_publish_opts *o, char *version, size_t vcap, vd_errors *err);
/* to == NULL: the release before current (by creation time). */
int vd_release_rollback(struct redisContext *c, const char *ns, const char *to, char *from,
                        size_t fcap, char *now, size_t ncap, char *err, size_t cap);
int vd_release_list(struct redisContext *c, const char *ns, FILE *out, char *err, size_t cap);
/* a/b: versions, or "current" / "previous". Returns 0 if equal, 1 if they
 * differ, -1 on error. */
int vd_release_diff(struct redisContext *c, const char *ns, const char *a, const char *b, FILE *out,
                    char *err, size_t cap);
int vd_release_status(struct redisContext *c, const char *ns, FILE *out, char *err, size_t cap);

#endif
