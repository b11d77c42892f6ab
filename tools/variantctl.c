/* variantctl — the operator's CLI: validate definitions with the daemon's
 * own compiler, ask a running daemon for decisions.
 *
 *   variantctl validate SEGMENTS_DIR CONTENT_MAP_DIR
 *   variantctl decide  [--connect HOST:PORT] --slot S [--slot S ...] [context flags] [--json]
 *   variantctl explain ... (same flags; adds the context and each rule's verdict)
 *   variantctl ping    [--connect HOST:PORT] [--json]
 *   variantctl publish SEGMENTS_DIR CONTENT_MAP_DIR [redis options] [--message M] [--keep N]
 *   variantctl rollback [--to VERSION] | list | diff A B | status   [redis options]
 *   variantctl report [SLOT] [--json] [--reset SLOT]   [redis options]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/errors.h"
#include "learn/counters.h"
#include "net/listener.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "store/files.h"
#include "store/redis_url.h"
#include "store/release.h"
#include "variantd/limits.h"

#define MAX_ATTRS VD_MAX_ATTRS_PER_REQUEST
#define TIMEOUT_MS 5000

static void usage(FILE *out)
{
    fprintf(out,
            "usage:\n"
            "  variantctl validate SEGMENTS_DIR CONTENT_MAP_DIR [SCORES_DIR]\n"
            "  variantctl decide  [options] --slot SLOT [--slot SLOT ...]\n"
            "  variantctl explain [options] --slot SLOT [--slot SLOT ...]\n"
            "  variantctl ping    [--connect HOST:PORT] [--json]\n"
            "  variantctl track EVENT (--vid ID | --uid ID) [--category C] [--value N] [--ts T]\n"
            "                  [--consent personalization|none] [--connect HOST:PORT]\n"
            "  variantctl profile show|forget (--vid ID | --uid ID) [--connect HOST:PORT]\n"
            "  variantctl profile flag NAME (--vid ID | --uid ID) [--ttl SECONDS] [--clear]\n"
            "  variantctl secret  (prints a new 32-hex-digit profile-key-secret)\n"
            "  variantctl publish SEGMENTS_DIR CONTENT_MAP_DIR [--message M] [--keep N] [redis]\n"
            "  variantctl rollback [--to VERSION] [redis]   (default: the release before current)\n"
            "  variantctl list [redis] | status [redis] | diff A B [redis]   (A, B: version,\n"
            "                  current or previous)\n"
            "  variantctl report [SLOT] [--json] [redis]   experiments: exposures, conversions,\n"
            "                  rate, 95%% interval, P(best), uplift over the holdout (docs/LEARNING.md)\n"
            "  variantctl report --reset SLOT [redis]   archive the slot's counters, start anew\n"
            "\n"
            "redis options (Redis mode, see docs/OPERATIONS.md):\n"
            "  --redis URL           redis://[user:pass@]host:port/db, unix:/path or\n"
            "                        redis-sentinel://h1:26379,h2:26379/master[/db]\n"
            "                        (default $VARIANTD_REDIS or redis://127.0.0.1:6379/0)\n"
            "  --namespace NS        key prefix (default variantd)\n"
            "  --author NAME         recorded with a publish (default $USER)\n"
            "\n"
            "options for decide/explain:\n"
            "  --connect HOST:PORT   daemon decision port (default 127.0.0.1:7700)\n"
            "  --ip IP               client IP (geo.*, ip)\n"
            "  --ua STRING           User-Agent (device.*)\n"
            "  --referer URL         Referer (source.*)\n"
            "  --url URL             landing page URL (url.*, utm_*)\n"
            "  --lang VALUE          Accept-Language value (lang)\n"
            "  --ts UNIX|ISO8601     request time (default now)\n"
            "  --tz ZONE             visitor time zone override (IANA)\n"
            "  --vid ID              visitor id (sticky splits; the anonymous profile)\n"
            "  --uid ID              known customer id (profiles)\n"
            "  --consent C           personalization or none (profiles; default: consent-default)\n"
            "  --attr KEY=VALUE      caller attribute attr.KEY (numbers and true/false are typed)\n"
            "  --hint NAME=VALUE     a Client Hint as received, e.g. sec-ch-ua-model='\"SM-T870\"'\n"
            "  --json                print the daemon's answer as JSON\n");
}

/* ---- validate ---- */

static int cmd_validate(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        usage(stderr);
        return 2;
    }
    vd_errors *err = malloc(sizeof *err);
    if (!err)
        return 1;
    vd_errors_init(err);
    /* Scores: the third folder, else the scores folder beside the segments. */
    vd_ruleset *rs = vd_files_compile_all(argv[0], argv[1], argc == 3 ? argv[2] : NULL, err);
    if (!rs) {
        for (size_t i = 0; i < err->n; i++)
            fprintf(stderr, "error: %s\n", err->msg[i]);
        if (err->dropped)
            fprintf(stderr, "error: ... and %zu more\n", err->dropped);
        fprintf(stderr, "invalid: %zu error%s\n", vd_errors_count(err),
                vd_errors_count(err) == 1 ? "" : "s");
        free(err);
        return 1;
    }
    printf("valid: %u segments, %u slots, version %s\n", vd_ruleset_nsegments(rs),
           vd_ruleset_nslots(rs), vd_ruleset_version(rs));
    vd_ruleset_release(rs);
    free(err);
    return 0;
}

/* ---- talking to the daemon ---- */

static int dial(const char *addr)
{
    struct sockaddr_storage ss;
    int sslen;
    char err[256];
    if (vd_parse_listen(addr, &ss, &sslen, err, sizeof err) != 0) {
        fprintf(stderr, "variantctl: %s\n", err);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0) {
        fprintf(stderr, "variantctl: cannot connect to %s: %s (is variantd running?)\n", addr,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request, reads one reply into *reply (owned by up). */
static int roundtrip(const char *addr, const msgpack_sbuffer *req, msgpack_unpacker *up,
                     msgpack_unpacked *reply)
{
    int fd = dial(addr);
    if (fd < 0)
        return -1;
    size_t sent = 0;
    while (sent < req->size) {
        ssize_t w = write(fd, req->data + sent, req->size - sent);
        if (w <= 0) {
            fprintf(stderr, "variantctl: write: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
        sent += (size_t)w;
    }
    for (;;) {
        if (msgpack_unpacker_next(up, reply) == MSGPACK_UNPACK_SUCCESS)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, TIMEOUT_MS) <= 0) {
            fprintf(stderr, "variantctl: no answer from %s within %d ms\n", addr, TIMEOUT_MS);
            close(fd);
            return -1;
        }
        if (!msgpack_unpacker_reserve_buffer(up, 65536)) {
            close(fd);
            return -1;
        }
        ssize_t r = read(fd, msgpack_unpacker_buffer(up), msgpack_unpacker_buffer_capacity(up));
        if (r <= 0) {
            fprintf(stderr, "variantctl: connection closed by %s\n", addr);
            close(fd);
            return -1;
        }
        msgpack_unpacker_buffer_consumed(up, (size_t)r);
    }
    close(fd);
    return 0;
}

static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return json_stringn(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, to_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char key[256];
            if (k->type == MSGPACK_OBJECT_STR)
                snprintf(key, sizeof key, "%.*s", (int)k->via.str.size, k->via.str.ptr);
            else
                snprintf(key, sizeof key, "?");
            json_object_set_new(m, key, to_json(&o->via.map.ptr[i].val));
        }
        return m;
    }
    default: return json_null();
    }
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static void print_scalar(const msgpack_object *o)
{
    json_t *j = to_json(o);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    /* Strings read better unquoted in the table. */
    if (json_is_string(j))
        printf("%s", json_string_value(j));
    else
        printf("%s", s ? s : "?");
    free(s);
    json_decref(j);
}

static void print_decision(const msgpack_object *res, int explain)
{
    const msgpack_object *version = map_get(res, "version");
    const msgpack_object *until = map_get(res, "valid_until");
    printf("version      ");
    if (version)
        print_scalar(version);
    printf("\nvalid until  ");
    if (until && until->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        time_t t = (time_t)until->via.u64;
        struct tm tm;
        char buf[64];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        long in = (long)(t - time(NULL));
        printf("%s (%lld, in %ldh%02ldm)\n", buf, (long long)t, in / 3600, (in % 3600) / 60);
    } else {
        printf("never (time alone does not change this answer)\n");
    }
    const msgpack_object *profile = map_get(res, "profile");
    if (profile) {
        printf("profile      ");
        print_scalar(profile);
        printf("\n");
    }
    const msgpack_object *slots = map_get(res, "slots");
    printf("\n%-28s %-28s %s\n", "SLOT", "VARIANT", "CHOSEN BY");
    for (uint32_t i = 0; slots && slots->type == MSGPACK_OBJECT_MAP && i < slots->via.map.size; i++) {
        const msgpack_object *k = &slots->via.map.ptr[i].key, *v = &slots->via.map.ptr[i].val;
        printf("%-28.*s ", (int)k->via.str.size, k->via.str.ptr);
        const msgpack_object *e = map_get(v, "error");
        if (e) {
            printf("error: ");
            print_scalar(e);
            printf("\n");
            continue;
        }
        const msgpack_object *var = map_get(v, "variant"), *seg = map_get(v, "segment");
        char vbuf[256] = "?";
        if (var && var->type == MSGPACK_OBJECT_STR)
            snprintf(vbuf, sizeof vbuf, "%.*s", (int)var->via.str.size, var->via.str.ptr);
        printf("%-28s ", vbuf);
        if (seg && seg->type == MSGPACK_OBJECT_STR)
            printf("segment %.*s\n", (int)seg->via.str.size, seg->via.str.ptr);
        else
            printf("default\n");
    }
    const msgpack_object *segs = map_get(res, "segments");
    printf("\nmatching segments (%u):", segs && segs->type == MSGPACK_OBJECT_ARRAY ? segs->via.array.size : 0);
    for (uint32_t i = 0; segs && segs->type == MSGPACK_OBJECT_ARRAY && i < segs->via.array.size; i++) {
        printf(" ");
        print_scalar(&segs->via.array.ptr[i]);
    }
    printf("\n");
    if (!explain)
        return;
    const msgpack_object *ctx = map_get(res, "context");
    printf("\ncontext:\n");
    for (uint32_t i = 0; ctx && ctx->type == MSGPACK_OBJECT_MAP && i < ctx->via.map.size; i++) {
        const msgpack_object *k = &ctx->via.map.ptr[i].key;
        printf("  %-22.*s ", (int)k->via.str.size, k->via.str.ptr);
        print_scalar(&ctx->via.map.ptr[i].val);
        printf("\n");
    }
    const msgpack_object *trace = map_get(res, "trace");
    printf("\ntrace (rules in order; * = chosen):\n");
    for (uint32_t i = 0; trace && trace->type == MSGPACK_OBJECT_MAP && i < trace->via.map.size; i++) {
        const msgpack_object *k = &trace->via.map.ptr[i].key, *rules = &trace->via.map.ptr[i].val;
        printf("  %.*s\n", (int)k->via.str.size, k->via.str.ptr);
        for (uint32_t r = 0; rules->type == MSGPACK_OBJECT_ARRAY && r < rules->via.array.size; r++) {
            const msgpack_object *rule = &rules->via.array.ptr[r];
            const msgpack_object *m = map_get(rule, "matched"), *ch = map_get(rule, "chosen");
            int chosen = ch && ch->type == MSGPACK_OBJECT_BOOLEAN && ch->via.boolean;
            const char *verdict = !m || m->type != MSGPACK_OBJECT_BOOLEAN ? "not evaluated"
                                  : m->via.boolean ? "matches" : "no match";
            printf("   %s ", chosen ? "*" : " ");
            print_scalar(map_get(rule, "segment"));
            printf(" -> ");
            print_scalar(map_get(rule, "variant"));
            printf("  (%s)\n", verdict);
        }
    }
}

static int parse_ts(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && *end == '\0') {
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && strcmp(end, "Z") != 0))
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* [0, 1, method, params] up to the params array of nparams items. */
static void pack_request(msgpack_packer *pk, const char *method, uint32_t nparams)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 0);
    msgpack_pack_uint32(pk, 1);
    pack_cstr(pk, method);
    msgpack_pack_array(pk, nparams);
}

static void pack_attr_value(msgpack_packer *pk, const char *v)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (strcmp(v, "true") == 0)
        msgpack_pack_true(pk);
    else if (strcmp(v, "false") == 0)
        msgpack_pack_false(pk);
    else if (*v && !errno && *end == '\0') {
        long long i = strtoll(v, &end, 10);
        if (*end == '\0')
            msgpack_pack_int64(pk, i);
        else
            msgpack_pack_double(pk, d);
    } else
        pack_cstr(pk, v);
}

static int cmd_request(const char *method, int argc, char **argv)
{
    const char *connect_to = "127.0.0.1:7700";
    enum { NF = 9 };
    const char *fields[NF] = { 0 };   /* ip ua referer url lang tz vid uid consent */
    static const char *const names[NF] = { "ip", "ua", "referer", "url", "lang", "tz", "vid", "uid",
                                           "consent" };
    const char *slots[VD_MAX_SLOTS_PER_REQUEST];
    const char *attrs[MAX_ATTRS], *hints[8];
    unsigned nslots = 0, nattrs = 0, nhints = 0;
    int json = 0, have_ts = 0;
    int64_t ts = 0;
    int is_ping = strcmp(method, "ping") == 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "variantctl: %s needs a value\n", a);
            return 2;
        }
        i++;
        int known = 0;
        for (int f = 0; f < NF; f++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, names[f]) == 0) {
                fields[f] = v;
                known = 1;
            }
        if (known)
            continue;
        if (strcmp(a, "--connect") == 0)
            connect_to = v;
        else if (strcmp(a, "--slot") == 0) {
            if (nslots == VD_MAX_SLOTS_PER_REQUEST) {
                fprintf(stderr, "variantctl: at most %d slots\n", VD_MAX_SLOTS_PER_REQUEST);
                return 2;
            }
            slots[nslots++] = v;
        } else if (strcmp(a, "--attr") == 0) {
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "variantctl: --attr wants KEY=VALUE, got '%s'\n", v);
                return 2;
            }
            if (nattrs == MAX_ATTRS) {
                fprintf(stderr, "variantctl: at most %d attrs\n", MAX_ATTRS);
                return 2;
            }
            attrs[nattrs++] = v;
        } else if (strcmp(a, "--hint") == 0) {
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "variantctl: --hint wants NAME=VALUE, got '%s'\n", v);
                return 2;
            }
            if (nhints == sizeof hints / sizeof hints[0]) {
                fprintf(stderr, "variantctl: at most %zu hints\n", sizeof hints / sizeof hints[0]);
                return 2;
            }
            hints[nhints++] = v;
        } else if (strcmp(a, "--ts") == 0) {
            if (parse_ts(v, &ts) != 0) {
                fprintf(stderr, "variantctl: --ts wants unix seconds or YYYY-MM-DDTHH:MM:SSZ\n");
                return 2;
            }
            have_ts = 1;
        } else {
            fprintf(stderr, "variantctl: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!is_ping && nslots == 0) {
        fprintf(stderr, "variantctl: %s needs at least one --slot\n", method);
        return 2;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_request(&pk, method, is_ping ? 0 : 1);
    if (!is_ping) {
        uint32_t n = 1 + (nattrs > 0) + (nhints > 0) + have_ts;
        for (int f = 0; f < NF; f++)
            n += fields[f] != NULL;
        msgpack_pack_map(&pk, n);
        pack_cstr(&pk, "slots");
        msgpack_pack_array(&pk, nslots);
        for (unsigned i = 0; i < nslots; i++)
            pack_cstr(&pk, slots[i]);
        for (int f = 0; f < NF; f++)
            if (fields[f]) {
                pack_cstr(&pk, names[f]);
                pack_cstr(&pk, fields[f]);
            }
        if (have_ts) {
            pack_cstr(&pk, "ts");
            msgpack_pack_int64(&pk, ts);
        }
        if (nattrs) {
            pack_cstr(&pk, "attrs");
            msgpack_pack_map(&pk, nattrs);
            for (unsigned i = 0; i < nattrs; i++) {
                const char *eq = strchr(attrs[i], '=');
                msgpack_pack_str(&pk, (size_t)(eq - attrs[i]));
                msgpack_pack_str_body(&pk, attrs[i], (size_t)(eq - attrs[i]));
                pack_attr_value(&pk, eq + 1);
            }
        }
        if (nhints) {
            pack_cstr(&pk, "hints");
            msgpack_pack_map(&pk, nhints);
            for (unsigned i = 0; i < nhints; i++) {
                const char *eq = strchr(hints[i], '=');
                msgpack_pack_str(&pk, (size_t)(eq - hints[i]));
                msgpack_pack_str_body(&pk, hints[i], (size_t)(eq - hints[i]));
                pack_cstr(&pk, eq + 1);
            }
        }
    }
    msgpack_unpacker up;
    msgpack_unpacked reply;
    msgpack_unpacker_init(&up, 65536);
    msgpack_unpacked_init(&reply);
    int rc = 1;
    if (roundtrip(connect_to, &sb, &up, &reply) == 0) {
        const msgpack_object *o = &reply.data;
        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4) {
            fprintf(stderr, "variantctl: unexpected reply\n");
        } else if (o->via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
            json_t *j = to_json(&o->via.array.ptr[2]);
            char *s = json_dumps(j, JSON_COMPACT);
            fprintf(stderr, "variantctl: daemon answered error %s\n", s ? s : "?");
            free(s);
            json_decref(j);
        } else if (json || is_ping) {
            json_t *j = to_json(&o->via.array.ptr[3]);
            char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n", s ? s : "null");
            free(s);
            json_decref(j);
            rc = 0;
        } else {
            print_decision(&o->via.array.ptr[3], strcmp(method, "explain") == 0);
            rc = 0;
        }
    }
    msgpack_unpacked_destroy(&reply);
    msgpack_unpacker_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- profiles: track, profile show|forget|flag, secret ---- */

/* variantctl track EVENT (--vid ID | --uid ID) [--category C] [--value N] [--ts T] [--consent C]
 * variantctl profile show|forget (--vid ID | --uid ID)
 * variantctl profile flag NAME (--vid ID | --uid ID) [--ttl SECONDS] [--clear]
 * Prints the daemon's answer as JSON. */
static int cmd_profile(const char *method, const char *name, int argc, char **argv)
{
    const char *connect_to = "127.0.0.1:7700";
    const char *vid = NULL, *uid = NULL, *category = NULL, *consent = NULL;
    double value = 0, ttl = 0;
    int have_value = 0, have_ttl = 0, clear = 0, have_ts = 0;
    int64_t ts = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--clear") == 0) {
            clear = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "variantctl: %s needs a value\n", a);
            return 2;
        }
        i++;
        char *end = NULL;
        if (strcmp(a, "--connect") == 0) connect_to = v;
        else if (strcmp(a, "--vid") == 0) vid = v;
        else if (strcmp(a, "--uid") == 0) uid = v;
        else if (strcmp(a, "--category") == 0) category = v;
        else if (strcmp(a, "--consent") == 0) consent = v;
        else if (strcmp(a, "--value") == 0) {
            value = strtod(v, &end);
            have_value = 1;
        } else if (strcmp(a, "--ttl") == 0) {
            ttl = strtod(v, &end);
            have_ttl = 1;
        } else if (strcmp(a, "--ts") == 0) {
            if (parse_ts(v, &ts) != 0) {
                fprintf(stderr, "variantctl: --ts wants unix seconds or YYYY-MM-DDTHH:MM:SSZ\n");
                return 2;
            }
            have_ts = 1;
        } else {
            fprintf(stderr, "variantctl: unknown option %s\n", a);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "variantctl: %s wants a number, got '%s'\n", a, v);
            return 2;
        }
    }
    if (!vid && !uid) {
        fprintf(stderr, "variantctl: %s needs --vid or --uid\n", method);
        return 2;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_request(&pk, method, 1);
    int track = strcmp(method, "track") == 0, flag = strcmp(method, "flag") == 0;
    uint32_t n = (vid != NULL) + (uid != NULL) + (name != NULL);
    if (track)
        n += (category != NULL) + (consent != NULL) + have_value + have_ts;
    if (flag)
        n += have_ttl + clear;
    msgpack_pack_map(&pk, n);
    if (vid) { pack_cstr(&pk, "vid"); pack_cstr(&pk, vid); }
    if (uid) { pack_cstr(&pk, "uid"); pack_cstr(&pk, uid); }
    if (name) { pack_cstr(&pk, track ? "event" : "flag"); pack_cstr(&pk, name); }
    if (track) {
        if (category) { pack_cstr(&pk, "category"); pack_cstr(&pk, category); }
        if (consent) { pack_cstr(&pk, "consent"); pack_cstr(&pk, consent); }
        if (have_value) { pack_cstr(&pk, "value"); msgpack_pack_double(&pk, value); }
        if (have_ts) { pack_cstr(&pk, "ts"); msgpack_pack_int64(&pk, ts); }
    }
    if (flag) {
        if (have_ttl) { pack_cstr(&pk, "ttl"); msgpack_pack_double(&pk, ttl); }
        if (clear) { pack_cstr(&pk, "clear"); msgpack_pack_true(&pk); }
    }
    msgpack_unpacker up;
    msgpack_unpacked reply;
    msgpack_unpacker_init(&up, 65536);
    msgpack_unpacked_init(&reply);
    int rc = 1;
    if (roundtrip(connect_to, &sb, &up, &reply) == 0) {
        const msgpack_object *o = &reply.data;
        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4) {
            fprintf(stderr, "variantctl: unexpected reply\n");
        } else {
            int err = o->via.array.ptr[2].type != MSGPACK_OBJECT_NIL;
            json_t *j = to_json(&o->via.array.ptr[err ? 2 : 3]);
            char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (err)
                fprintf(stderr, "variantctl: daemon answered error %s\n", s ? s : "?");
            else
                printf("%s\n", s ? s : "null");
            free(s);
            json_decref(j);
            rc = err;
        }
    }
    msgpack_unpacked_destroy(&reply);
    msgpack_unpacker_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* A new profile-key-secret: 128 bits from the kernel's CSPRNG, as hex. */
static int cmd_secret(void)
{
    unsigned char k[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(k, 1, sizeof k, f) != sizeof k) {
        fprintf(stderr, "variantctl: cannot read /dev/urandom\n");
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    for (int i = 0; i < 16; i++)
        printf("%02x", k[i]);
    printf("\n");
    return 0;
}

/* ---- Redis releases ---- */

/* ---- report: the experiment counters (learn/counters.c) ---- */

static int report(struct redisContext *c, const char *ns, const char *slot, const char *reset, bool json,
                  char *err, size_t cap)
{
    if (reset) {
        long long e = vd_report_reset(c, ns, reset, err, cap);
        if (e < 0)
            return 1;
        printf("slot %s: counters archived as experiment %lld; now counting experiment %lld\n", reset, e - 1, e);
        return 0;
    }
    char **names = NULL;
    size_t n = 0;
    if (slot) {
        names = vd_malloc(sizeof *names);
        if (!names || !(names[0] = vd_strdup(slot))) {
            vd_free(names);
            snprintf(err, cap, "out of memory");
            return 1;
        }
        n = 1;
    } else if (vd_report_slots(c, ns, &names, &n, err, cap) < 0) {
        return 1;
    }
    json_t *root = json_object(), *slots = json_object();
    json_object_set_new(root, "slots", slots);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        vd_report_slot s;
        if (vd_report_read(c, ns, names[i], &s, err, cap) < 0) {
            rc = 1;
        } else if (json) {
            json_object_set_new(slots, names[i], vd_report_slot_json(&s));
        } else {
            vd_report_print(&s, stdout);
        }
        vd_report_slot_free(&s);
    }
    if (json && rc == 0) {
        char *out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (out)
            puts(out);
        free(out);
    } else if (!json && n == 0) {
        printf("no experiments yet (no slot with a goal has had an exposure)\n");
    }
    json_decref(root);
    vd_report_names_free(names, n);
    return rc;
}

static int cmd_redis(const char *cmd, int argc, char **argv)
{
    const char *url = getenv("VARIANTD_REDIS");
    const char *ns = VD_RELEASE_DEFAULT_NS, *message = "", *to = NULL;
    const char *author = getenv("USER");
    long keep = VD_RELEASE_DEFAULT_KEEP;
    const char *pos[2] = { NULL, NULL };
    const char *reset = NULL;
    bool json = false;
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] == '-' && a[1] == '-' && !v && strcmp(a, "--json")) {
            fprintf(stderr, "variantctl: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--redis") == 0)
            url = v, i++;
        else if (strcmp(a, "--namespace") == 0)
            ns = v, i++;
        else if (strcmp(a, "--message") == 0 || strcmp(a, "-m") == 0)
            message = v, i++;
        else if (strcmp(a, "--author") == 0)
            author = v, i++;
        else if (strcmp(a, "--to") == 0)
            to = v, i++;
        else if (strcmp(a, "--reset") == 0 && strcmp(cmd, "report") == 0)
            reset = v, i++;
        else if (strcmp(a, "--json") == 0 && strcmp(cmd, "report") == 0)
            json = true;
        else if (strcmp(a, "--keep") == 0) {
            char *end;
            keep = strtol(v, &end, 10);
            i++;
            if (*end || keep < 1 || keep > 100000) {
                fprintf(stderr, "variantctl: --keep needs 1..100000\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "variantctl: unknown option %s\n", a);
            return 2;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "variantctl: too many arguments\n");
            return 2;
        }
    }
    int want = strcmp(cmd, "publish") == 0 || strcmp(cmd, "diff") == 0 ? 2 : 0;
    if (strcmp(cmd, "report") == 0 && npos == 1 && !reset)
        want = 1;
    if (npos != want) {
        usage(stderr);
        return 2;
    }
    if (!url || !*url)
        url = "redis://127.0.0.1:6379/0";
    if (!vd_release_namespace_ok(ns)) {
        fprintf(stderr, "variantctl: bad --namespace\n");
        return 2;
    }
    vd_redis_url u;
    char err[1024];
    if (vd_redis_url_parse(url, &u, err, sizeof err) != 0) {
        fprintf(stderr, "variantctl: %s\n", err);
        return 2;
    }
    struct redisContext *c = vd_release_connect(&u, TIMEOUT_MS, err, sizeof err);
    if (!c) {
        fprintf(stderr, "variantctl: %s\n", err);
        return 1;
    }
    int rc = 0;
    err[0] = '\0';
    if (strcmp(cmd, "publish") == 0) {
        vd_errors *e = malloc(sizeof *e);
        if (!e) {
            vd_release_close(c);
            return 1;
        }
        vd_errors_init(e);
        vd_publish_opts o = { .ns = ns, .author = author, .message = message, .keep = keep };
        char version[128];
        if (vd_release_publish(c, pos[0], pos[1], &o, version, sizeof version, e) != 0) {
            for (size_t i = 0; i < e->n; i++)
                fprintf(stderr, "%s\n", e->msg[i]);
            if (e->dropped)
                fprintf(stderr, "... and %zu more errors\n", e->dropped);
            fprintf(stderr, "variantctl: not published\n");
            rc = 1;
        } else {
            printf("published %s\n", version);
        }
        free(e);
    } else if (strcmp(cmd, "rollback") == 0) {
        char from[256], now[256];
        if (vd_release_rollback(c, ns, to, from, sizeof from, now, sizeof now, err, sizeof err) != 0)
            rc = 1;
        else
            printf("current: %s -> %s\n", from[0] ? from : "(none)", now);
    } else if (strcmp(cmd, "list") == 0) {
        rc = vd_release_list(c, ns, stdout, err, sizeof err) != 0;
    } else if (strcmp(cmd, "status") == 0) {
        rc = vd_release_status(c, ns, stdout, err, sizeof err) != 0;
    } else if (strcmp(cmd, "report") == 0) {
        rc = report(c, ns, pos[0], reset, json, err, sizeof err);
    } else {
        int d = vd_release_diff(c, ns, pos[0], pos[1], stdout, err, sizeof err);
        rc = d < 0 ? 2 : d;   /* like diff(1): 0 same, 1 different, 2 trouble */
    }
    if (err[0])
        fprintf(stderr, "variantctl: %s\n", err);
    vd_release_close(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "track") == 0) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "variantctl: track EVENT (--vid ID | --uid ID) [...]\n");
            return 2;
        }
        return cmd_profile("track", argv[2], argc - 3, argv + 3);
    }
    if (strcmp(cmd, "profile") == 0) {
        const char *sub = argc > 2 ? argv[2] : "";
        if (strcmp(sub, "show") == 0 || strcmp(sub, "forget") == 0)
            return cmd_profile(strcmp(sub, "show") == 0 ? "profile" : "forget", NULL, argc - 3, argv + 3);
        if (strcmp(sub, "flag") == 0 && argc > 3 && argv[3][0] != '-')
            return cmd_profile("flag", argv[3], argc - 4, argv + 4);
        fprintf(stderr, "variantctl: profile show|forget (--vid ID | --uid ID), or profile flag NAME "
                        "(--vid ID | --uid ID) [--ttl S] [--clear]\n");
        return 2;
    }
    if (strcmp(cmd, "secret") == 0)
        return cmd_secret();
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 2, argv + 2);
    if (strcmp(cmd, "decide") == 0 || strcmp(cmd, "explain") == 0 || strcmp(cmd, "ping") == 0)
        return cmd_request(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "publish") == 0 || strcmp(cmd, "rollback") == 0 || strcmp(cmd, "list") == 0 ||
        strcmp(cmd, "diff") == 0 || strcmp(cmd, "status") == 0 || strcmp(cmd, "report") == 0)
        return cmd_redis(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "variantctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
