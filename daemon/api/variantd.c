/* variantd.c — the decision library of include/variantd/variantd.h: the
 * same steps as a worker of the daemon (frame check, request validation,
 * the decider, the MessagePack emitter), without sockets or threads. */
#include "variantd/variantd.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "context/geo.h"
#include "context/tz.h"
#include "core/alloc.h"
#include "core/errors.h"
#include "decision/decider.h"
#include "net/msgpack_scan.h"
#include "net/rpc_codec.h"
#include "store/files.h"
#include "store/live.h"
#include "variantd/limits.h"

#define DEFAULT_UA_CACHE 16384
#define DEFAULT_GEO_CACHE 4096

struct variantd {
    vd_tzdb *tzdb;
    vd_geo_db *geo;
    vd_env env;
    vd_stats stats;
    vd_decider decider;
    int decider_ready;
    msgpack_zone zone;
    msgpack_sbuffer out;
    vd_request req;
    char version[128];
    int published;            /* this handle's ruleset is the live one */
};

variantd *variantd_open(const variantd_options *opt, char *err, size_t cap)
{
    if (!opt || !opt->segments_dir || !opt->content_map_dir) {
        snprintf(err, cap, "segments_dir and content_map_dir are required");
        return NULL;
    }
    variantd *v = vd_calloc(1, sizeof *v);
    if (!v || !msgpack_zone_init(&v->zone, 4096)) {
        vd_free(v);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&v->out);
    vd_errors *errs = vd_malloc(sizeof *errs);     /* 32 KB: not on the caller's stack */
    if (!errs) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    vd_errors_init(errs);
    vd_ruleset *rs = vd_files_compile(opt->segments_dir, opt->content_map_dir, errs);
    if (!rs)
        vd_errors_summary(errs, err, cap);
    vd_free(errs);
    if (!rs)
        goto fail;
    snprintf(v->version, sizeof v->version, "%s", vd_ruleset_version(rs));
    if (!(v->tzdb = vd_tzdb_open(opt->zoneinfo_dir, err, cap))) {
        vd_ruleset_release(rs);
        goto fail;
    }
    if (opt->geoip_db && !(v->geo = vd_geo_open(opt->geoip_db, err, cap))) {
        vd_ruleset_release(rs);
        goto fail;
    }
    v->env = (vd_env){ .geo = v->geo, .tzdb = v->tzdb };
    vd_live_set(rs, VD_SOURCE_FILES);          /* takes our reference */
    v->published = 1;
    if (vd_decider_init(&v->decider, &v->env, opt->ua_cache ? opt->ua_cache : DEFAULT_UA_CACHE,
                        opt->geo_cache ? opt->geo_cache : DEFAULT_GEO_CACHE, &v->stats) != 0) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    v->decider_ready = 1;
    return v;
fail:
    variantd_close(v);
    return NULL;
}

int variantd_decide(variantd *v, const void *req, size_t len, char **out, size_t *outlen,
                    char *err, size_t cap)
{
    *out = NULL;
    *outlen = 0;
    size_t flen = 0;
    vd_scan_limits lim = { .max_bytes = VD_DEFAULT_MAX_FRAME, .max_depth = VD_DEFAULT_MAX_DEPTH };
    vd_scan_result sr = vd_msgpack_scan(req, len, &lim, &flen);
    if (sr != VD_SCAN_OK || flen != len) {
        snprintf(err, cap, "the request is not one complete MessagePack map within the limits (%s)",
                 sr == VD_SCAN_OK ? "trailing bytes" : vd_scan_result_name(sr));
        return -1;
    }
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(req, len, &off, &v->zone, &obj);
    int rc = -1;
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, cap, "not valid MessagePack");
        goto done;
    }
    vd_request *r = &v->req;
    if (vd_rpc_read_params(&obj, VD_DEFAULT_SLOTS_PER_REQUEST, r, err, cap) != 0)
        goto done;
    msgpack_sbuffer_clear(&v->out);
    vd_msgpack_out mo = { .sb = &v->out };
    vd_emitter e;
    vd_msgpack_emitter(&mo, &e);
    vd_decision d;
    vd_decide_status st = vd_decider_run(&v->decider, r, &e, &d);
    if (st != VD_DECIDE_OK || mo.failed) {
        snprintf(err, cap, st == VD_DECIDE_NOT_READY ? "no ruleset loaded" : "out of memory");
        goto done;
    }
    *out = vd_malloc(v->out.size ? v->out.size : 1);
    if (!*out) {
        snprintf(err, cap, "out of memory");
        goto done;
    }
    memcpy(*out, v->out.data, v->out.size);
    *outlen = v->out.size;
    rc = 0;
done:
    msgpack_zone_clear(&v->zone);
    return rc;
}

const char *variantd_ruleset_version(const variantd *v)
{
    return v->version;
}

void variantd_free(void *p)
{
    vd_free(p);
}

void variantd_close(variantd *v)
{
    if (!v)
        return;
    if (v->decider_ready)
        vd_decider_destroy(&v->decider);
    if (v->published)
        vd_live_clear();      /* the ruleset goes with the handle */
    vd_geo_close(v->geo);
    vd_tzdb_close(v->tzdb);
    msgpack_sbuffer_destroy(&v->out);
    msgpack_zone_destroy(&v->zone);
    vd_free(v);
}
