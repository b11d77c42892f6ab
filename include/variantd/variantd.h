/* variantd.h — the decision library: variantd's engine inside another
 * program, without the daemon (a CLI, a test, an embedding server).
 *
 *   variantd_options o = { .segments_dir = "segments", .content_map_dir = "content-map" };
 *   char err[512];
 *   variantd *v = variantd_open(&o, err, sizeof err);
 *   ...
 *   char *out; size_t n;
 *   if (variantd_decide(v, req, req_len, &out, &n, err, sizeof err) == 0) {
 *       ... out holds the result map, MessagePack ...
 *       variantd_free(out);
 *   }
 *   variantd_close(v);
 *
 * The request is the decision port's request map (docs/PROTOCOL.md
 * `decide`), MessagePack-encoded; it is checked as the daemon checks a
 * frame (size, depth, fields) before anything reads it. The result is the
 * decide result map. One handle per process: the engine publishes its
 * ruleset as the daemon's workers see theirs. Not thread-safe: one thread
 * per handle. Errors follow the daemon's convention: -1 or NULL, with the
 * reason in the caller's buffer. */
#ifndef VARIANTD_VARIANTD_H
#define VARIANTD_VARIANTD_H

#include <stddef.h>

typedef struct variantd variantd;

typedef struct variantd_options {
    const char *segments_dir;       /* required */
    const char *content_map_dir;    /* required */
    const char *geoip_db;           /* a City/Country .mmdb; NULL: no geo.* attributes */
    const char *zoneinfo_dir;       /* NULL: the system's (/usr/share/zoneinfo) */
    size_t ua_cache;                /* User-Agent verdicts kept; 0: the daemon's default */
    size_t geo_cache;               /* GeoIP records kept; 0: the daemon's default */
} variantd_options;

/* Compiles the definitions and opens the databases. NULL with every
 * definition error (or the first other error) in err. */
variantd *variantd_open(const variantd_options *opt, char *err, size_t cap);

/* Decides one request. 0 with the result map (MessagePack) in a new buffer
 * *out of *outlen bytes (free it with variantd_free); -1 with a message
 * naming what is wrong with the request. */
int variantd_decide(variantd *v, const void *req, size_t len, char **out, size_t *outlen,
                    char *err, size_t cap);

/* The served ruleset's version ("f-" + a content hash for folders). */
const char *variantd_ruleset_version(const variantd *v);

void variantd_free(void *p);
void variantd_close(variantd *v);

#endif
