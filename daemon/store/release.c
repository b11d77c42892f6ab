#include "store/release.h"
#include "store/sentinel.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "rules/build.h"
#include "rules/ruleset.h"
#include "store/files.h"
#include "store/snapshot.h"

/* Switches current only to a release that exists, and notifies, in one step. */
static const char SWITCH_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[1])\n"
    "return 1\n";

bool vd_release_version_ok(const char *v, size_t n)
{
    if (n == 0 || n > VD_RELEASE_MAX_VERSION)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':'))
            return false;
    }
    return true;
}

bool vd_release_namespace_ok(const char *ns)
{
    size_t n = strlen(ns);
    if (n == 0 || n > VD_RELEASE_MAX_NS)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ns[i] <= ' ' || ns[i] == 0x7f)
            return false;
    return true;
}

int vd_release_key(char *buf, size_t cap, const char *ns, const char *what)
{
    int n = snprintf(buf, cap, "%s:%s", ns, what);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- release hash -> docset ---- */

typedef struct field_ref {
    int kind;
    const vd_release_field *f;
} field_ref;

static int field_cmp(const void *a, const void *b)
{
    const field_ref *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    size_t n = x->f->name_len < y->f->name_len ? x->f->name_len : y->f->name_len;
    int c = memcmp(x->f->name, y->f->name, n);
    if (c)
        return c;
    return x->f->name_len < y->f->name_len ? -1 : x->f->name_len > y->f->name_len;
}

static bool has_prefix(const vd_release_field *f, const char *p)
{
    size_t n = strlen(p);
    return f->name_len > n && memcmp(f->name, p, n) == 0;
}

int vd_release_to_docset(const vd_release_field *f, size_t n, vd_docset *out, vd_errors *err)
{
    if (n > VD_RELEASE_MAX_DOCS + 1) {
        vd_errors_addf(err, "release has %zu fields, over the limit of %d documents", n,
                       VD_RELEASE_MAX_DOCS);
        return -1;
    }
    field_ref *refs = vd_calloc(n ? n : 1, sizeof *refs);
    if (!refs) {
        vd_errors_addf(err, "out of memory");
        return -1;
    }
    size_t nd = 0, total = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const vd_release_field *x = &f[i];
        if (x->name_len == 4 && memcmp(x->name, "meta", 4) == 0)
            continue;
        int kind;
        if (has_prefix(x, "segments/"))
            kind = VD_DOC_SEGMENTS;
        else if (has_prefix(x, "content-map/"))
            kind = VD_DOC_CONTENT_MAP;
        else if (has_prefix(x, "scores/"))
            kind = VD_DOC_SCORES;     /* since profiles; older releases have none */
        else {
            vd_errors_addf(err, "release field '%.*s' is neither meta, segments/NAME, content-map/NAME nor scores/NAME",
                           (int)(x->name_len > 100 ? 100 : x->name_len), x->name);
            rc = -1;
            continue;
        }
        if (memchr(x->name, '\0', x->name_len) || x->name_len > 1024) {
            vd_errors_addf(err, "release field name with a NUL byte or over 1024 bytes");
            rc = -1;
            continue;
        }
        total += x->value_len;
        refs[nd].kind = kind;
        refs[nd].f = x;
        nd++;
    }
    if (rc == 0 && nd == 0) {
        vd_errors_addf(err, "release has no documents");
        rc = -1;
    }
    if (rc == 0 && total > (size_t)VD_RELEASE_MAX_BYTES) {
        vd_errors_addf(err, "release holds %zu bytes, over the limit of %ld", total,
                       VD_RELEASE_MAX_BYTES);
        rc = -1;
    }
    if (rc == 0) {
        qsort(refs, nd, sizeof *refs, field_cmp);
        for (size_t i = 0; i < nd && rc == 0; i++) {
            char name[1100];
            snprintf(name, sizeof name, "%.*s", (int)refs[i].f->name_len, refs[i].f->name);
            if (vd_docset_add(out, refs[i].kind, name, refs[i].f->value, refs[i].f->value_len) != 0) {
                vd_errors_addf(err, "out of memory");
                rc = -1;
            }
        }
    }
    vd_free(refs);
    if (rc != 0)
        vd_docset_free(out);
    return rc;
}

/* ---- synchronous client (variantctl) ---- */

static int reply_fail(redisContext *c, redisReply *r, const char *what, char *err, size_t cap)
{
    if (!r)
        snprintf(err, cap, "%s: %s", what, c->errstr[0] ? c->errstr : "no reply");
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, cap, "%s: %s", what, r->str);
    else
        snprintf(err, cap, "%s: unexpected reply type %d", what, r->type);
    if (r)
        freeReplyObject(r);
    return -1;
}

struct redisContext *vd_release_connect(const vd_redis_url *u_in, int timeout_ms, char *err, size_t cap)
{
    vd_redis_url resolved;
    const vd_redis_url *u = u_in;
    if (u_in->is_sentinel) {
        /* Ask the sentinels where the master is, then talk to it. */
        resolved = *u_in;
        if (vd_sentinel_resolve(&resolved, timeout_ms, err, cap) != 0)
            return NULL;
        resolved.is_sentinel = false;
        u = &resolved;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    redisContext *c = u->is_unix ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    char desc[1400];
    vd_redis_url_describe(u, desc, sizeof desc);
    if (!c || c->err) {
        snprintf(err, cap, "%s: %s", desc, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r;
    if (u->has_password) {
        r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                       : redisCommand(c, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            reply_fail(c, r, "AUTH", err, cap);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            reply_fail(c, r, "SELECT", err, cap);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

void vd_release_close(struct redisContext *c)
{
    if (c)
        redisFree(c);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int get_string(redisContext *c, const char *key, char *out, size_t cap, char *err,
                      size_t ecap)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r && r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        out[0] = '\0';
        return 0;
    }
    if (!r || r->type != REDIS_REPLY_STRING)
        return reply_fail(c, r, "GET", err, ecap);
    snprintf(out, cap, "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    return 0;
}

static int switch_current(redisContext *c, const char *ns, const char *version, char *err,
                          size_t cap)
{
    char rkey[256], ckey[128], chan[128], what[160];
    snprintf(what, sizeof what, "release:%s", version);
    if (vd_release_key(rkey, sizeof rkey, ns, what) || vd_release_key(ckey, sizeof ckey, ns, "current") ||
        vd_release_key(chan, sizeof chan, ns, "events")) {
        snprintf(err, cap, "namespace too long");
        return -1;
    }
    redisReply *r = redisCommand(c, "EVAL %s 2 %s %s %s %s", SWITCH_LUA, rkey, ckey, version, chan);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return reply_fail(c, r, "switching current", err, cap);
    long long ok = r->integer;
    freeReplyObject(r);
    if (!ok) {
        snprintf(err, cap, "release %s does not exist", version);
        return -1;
    }
    return 0;
}

/* Deletes the oldest releases beyond keep; never current. */
static void prune(redisContext *c, const char *ns, long keep, const char *current)
{
    char zkey[128];
    vd_release_key(zkey, sizeof zkey, ns, "releases");
    redisReply *r = redisCommand(c, "ZRANGE %s 0 -1", zkey);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return;
    }
    long excess = (long)r->elements - keep;
    for (size_t i = 0; i < r->elements && excess > 0; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || strcmp(e->str, current) == 0)
            continue;
        char what[160], rkey[256];
        snprintf(what, sizeof what, "release:%s", e->str);
        if (vd_release_key(rkey, sizeof rkey, ns, what) == 0) {
            redisReply *d = redisCommand(c, "DEL %s", rkey);
            if (d)
                freeReplyObject(d);
            d = redisCommand(c, "ZREM %s %s", zkey, e->str);
            if (d)
                freeReplyObject(d);
        }
        excess--;
    }
    freeReplyObject(r);
}

int vd_release_publish(struct redisContext *c, const char *segdir, const char *mapdir,
                       const vd_publish_opts *o, char *version, size_t vcap, vd_errors *err)
{
    vd_docset ds;
    vd_docset_init(&ds);
    /* The scores folder beside the segments folder, when there is one. */
    char beside[4096];
    int sc = vd_files_load_scores(vd_files_scores_beside(segdir, beside, sizeof beside), &ds, err);
    if (vd_files_load(segdir, mapdir, &ds, err) != 0 || sc != 0) {
        vd_docset_free(&ds);
        return -1;
    }
    char sum[17];
    vd_snapshot_checksum(&ds, sum);
    vd_ruleset *rs = vd_ruleset_compile(&ds, "validate", err);
    if (!rs) {
        vd_docset_free(&ds);
        return -1;
    }
    unsigned nseg = vd_ruleset_nsegments(rs), nslot = vd_ruleset_nslots(rs);
    vd_ruleset_release(rs);

    int rc = -1;
    char **argv = NULL;
    size_t *lens = NULL;
    char *meta = NULL;
    char seqkey[128], zkey[128], rkey[256], what[160];
    vd_release_key(seqkey, sizeof seqkey, o->ns, "seq");
    vd_release_key(zkey, sizeof zkey, o->ns, "releases");
    redisReply *r = redisCommand(c, "INCR %s", seqkey);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        char m[512];
        reply_fail(c, r, "INCR", m, sizeof m);
        vd_errors_addf(err, "%s", m);
        goto out;
    }
    snprintf(version, vcap, "r%lld-%.8s", r->integer, sum);
    freeReplyObject(r);
    snprintf(what, sizeof what, "release:%s", version);
    vd_release_key(rkey, sizeof rkey, o->ns, what);

    struct timeval now;
    gettimeofday(&now, NULL);
    long long created_ms = (long long)now.tv_sec * 1000 + now.tv_usec / 1000;
    json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:s}", "version", version, "created",
                          (json_int_t)now.tv_sec, "author", o->author ? o->author : "",
                          "message", o->message ? o->message : "", "segments", (json_int_t)nseg,
                          "slots", (json_int_t)nslot, "documents", (json_int_t)ds.n, "checksum", sum);
    meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!meta) {
        vd_errors_addf(err, "cannot encode meta (author and message must be UTF-8)");
        goto out;
    }

    /* HSET key meta M name1 text1 ... in one command, inside MULTI with the
     * index update: the release appears whole or not at all. */
    size_t argc = 4 + 2 * ds.n;
    argv = vd_calloc(argc, sizeof *argv);
    lens = vd_calloc(argc, sizeof *lens);
    if (!argv || !lens) {
        vd_errors_addf(err, "out of memory");
        goto out;
    }
    argv[0] = (char *)"HSET";
    argv[1] = rkey;
    argv[2] = (char *)"meta";
    argv[3] = meta;
    for (size_t i = 0; i < ds.n; i++) {
        const char *prefix = ds.docs[i].kind == VD_DOC_CONTENT_MAP ? "content-map/"
                             : ds.docs[i].kind == VD_DOC_SCORES    ? "scores/"
                                                                   : "segments/";
        const char *bn = base_name(ds.docs[i].name);
        size_t need = strlen(prefix) + strlen(bn) + 1;
        argv[4 + 2 * i] = vd_malloc(need);
        if (!argv[4 + 2 * i]) {
            vd_errors_addf(err, "out of memory");
            goto out;
        }
        snprintf(argv[4 + 2 * i], need, "%s%s", prefix, bn);
        argv[5 + 2 * i] = ds.docs[i].text;
        lens[5 + 2 * i] = ds.docs[i].len;
    }
    for (size_t i = 0; i < argc; i++)
        if (i < 4 || (i % 2) == 0)
            lens[i] = strlen(argv[i]);
    char score[32];
    snprintf(score, sizeof score, "%lld", created_ms);
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "DEL %s", rkey);
    redisAppendCommandArgv(c, (int)argc, (const char **)argv, lens);
    redisAppendCommand(c, "ZADD %s %s %s", zkey, score, version);
    redisAppendCommand(c, "EXEC");
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK) {
            vd_errors_addf(err, "writing the release: %s", c->errstr);
            ok = 0;
            break;
        }
        redisReply *x = rep;
        if (i == 4 && (x->type != REDIS_REPLY_ARRAY || x->elements != 3))
            ok = 0;
        for (size_t k = 0; i == 4 && ok && k < x->elements; k++)
            if (x->element[k]->type == REDIS_REPLY_ERROR) {
                vd_errors_addf(err, "writing the release: %s", x->element[k]->str);
                ok = 0;
            }
        if (x->type == REDIS_REPLY_ERROR) {
            vd_errors_addf(err, "writing the release: %s", x->str);
            ok = 0;
        }
        freeReplyObject(x);
    }
    if (!ok) {
        if (vd_errors_count(err) == 0)
            vd_errors_addf(err, "writing the release: transaction failed");
        /* MULTI does not roll back: drop what got written (never current). */
        redisReply *d = redisCommand(c, "DEL %s", rkey);
        if (d)
            freeReplyObject(d);
        goto out;
    }
    char m2[512];
    if (switch_current(c, o->ns, version, m2, sizeof m2) != 0) {
        vd_errors_addf(err, "%s", m2);
        goto out;
    }
    prune(c, o->ns, o->keep < 1 ? 1 : o->keep, version);
    rc = 0;
out:
    if (argv)
        for (size_t i = 0; i < ds.n; i++)
            vd_free(argv[4 + 2 * i]);
    vd_free(argv);
    vd_free(lens);
    vd_free(meta);
    vd_docset_free(&ds);
    return rc;
}

/* Versions in creation order (oldest first); caller frees with freeReplyObject. */
static redisReply *all_versions(redisContext *c, const char *ns, bool reverse, char *err, size_t cap)
{
    char zkey[128];
    vd_release_key(zkey, sizeof zkey, ns, "releases");
    redisReply *r = redisCommand(c, reverse ? "ZREVRANGE %s 0 -1 WITHSCORES" : "ZRANGE %s 0 -1", zkey);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        reply_fail(c, r, "ZRANGE", err, cap);
        return NULL;
    }
    return r;
}

static int previous_of(redisContext *c, const char *ns, const char *cur, char *out, size_t cap,
                       char *err, size_t ecap)
{
    redisReply *r = all_versions(c, ns, false, err, ecap);
    if (!r)
        return -1;
    int rc = -1;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, cur) == 0) {
            if (i == 0)
                snprintf(err, ecap, "%s is the oldest release kept: nothing to roll back to", cur);
            else {
                snprintf(out, cap, "%s", r->element[i - 1]->str);
                rc = 0;
            }
            break;
        }
    }
    if (rc != 0 && !err[0])
        snprintf(err, ecap, "current release %s is not in the release index", cur[0] ? cur : "(none)");
    freeReplyObject(r);
    return rc;
}

int vd_release_rollback(struct redisContext *c, const char *ns, const char *to, char *from,
                        size_t fcap, char *now, size_t ncap, char *err, size_t cap)
{
    char ckey[128];
    err[0] = '\0';
    vd_release_key(ckey, sizeof ckey, ns, "current");
    if (get_string(c, ckey, from, fcap, err, cap) != 0)
        return -1;
    if (to) {
        if (!vd_release_version_ok(to, strlen(to))) {
            snprintf(err, cap, "'%s' is not a release version", to);
            return -1;
        }
        snprintf(now, ncap, "%s", to);
    } else if (previous_of(c, ns, from, now, ncap, err, cap) != 0) {
        return -1;
    }
    return switch_current(c, ns, now, err, cap);
}

static json_t *get_meta(redisContext *c, const char *ns, const char *version)
{
    char what[160], rkey[256];
    snprintf(what, sizeof what, "release:%s", version);
    if (vd_release_key(rkey, sizeof rkey, ns, what) != 0)
        return NULL;
    redisReply *r = redisCommand(c, "HGET %s meta", rkey);
    json_t *j = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        j = json_loadb(r->str, r->len, 0, NULL);
    if (r)
        freeReplyObject(r);
    return j;
}

static void fmt_time(long long t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int vd_release_list(struct redisContext *c, const char *ns, FILE *out, char *err, size_t cap)
{
    char ckey[128], cur[256];
    vd_release_key(ckey, sizeof ckey, ns, "current");
    if (get_string(c, ckey, cur, sizeof cur, err, cap) != 0)
        return -1;
    redisReply *r = all_versions(c, ns, true, err, cap);
    if (!r)
        return -1;
    fprintf(out, "  %-22s %-20s %-12s %8s %6s  %s\n", "VERSION", "CREATED", "AUTHOR", "SEGMENTS",
            "SLOTS", "MESSAGE");
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *v = r->element[i]->str;
        json_t *m = get_meta(c, ns, v);
        char when[32] = "?";
        long long created = (long long)json_integer_value(json_object_get(m, "created"));
        if (!created && r->element[i + 1]->str)
            created = atoll(r->element[i + 1]->str) / 1000;
        fmt_time(created, when, sizeof when);
        const char *author = json_string_value(json_object_get(m, "author"));
        const char *msg = json_string_value(json_object_get(m, "message"));
        fprintf(out, "%c %-22s %-20s %-12s %8lld %6lld  %s\n", strcmp(v, cur) == 0 ? '*' : ' ', v,
                when, author && *author ? author : "-",
                (long long)json_integer_value(json_object_get(m, "segments")),
                (long long)json_integer_value(json_object_get(m, "slots")), msg ? msg : "");
        json_decref(m);
    }
    if (cur[0] == '\0')
        fprintf(out, "(no current release)\n");
    freeReplyObject(r);
    return 0;
}

/* ---- diff ---- */

static int resolve_name(redisContext *c, const char *ns, const char *name, char *out, size_t cap,
                        char *err, size_t ecap)
{
    char ckey[128], cur[256];
    vd_release_key(ckey, sizeof ckey, ns, "current");
    if (strcmp(name, "current") != 0 && strcmp(name, "previous") != 0) {
        snprintf(out, cap, "%s", name);
        return 0;
    }
    if (get_string(c, ckey, cur, sizeof cur, err, ecap) != 0)
        return -1;
    if (!cur[0]) {
        snprintf(err, ecap, "no current release");
        return -1;
    }
    if (strcmp(name, "current") == 0) {
        snprintf(out, cap, "%s", cur);
        return 0;
    }
    return previous_of(c, ns, cur, out, cap, err, ecap);
}

/* {"segment:<id>" | "slot:<name>" -> definition} of one release. */
static json_t *release_items(redisContext *c, const char *ns, const char *version, char *err,
                             size_t cap)
{
    char what[160], rkey[256];
    snprintf(what, sizeof what, "release:%s", version);
    if (!vd_release_version_ok(version, strlen(version)) ||
        vd_release_key(rkey, sizeof rkey, ns, what) != 0) {
        snprintf(err, cap, "'%s' is not a release version", version);
        return NULL;
    }
    redisReply *r = redisCommand(c, "HGETALL %s", rkey);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        reply_fail(c, r, "HGETALL", err, cap);
        return NULL;
    }
    if (r->elements == 0) {
        snprintf(err, cap, "release %s does not exist", version);
        freeReplyObject(r);
        return NULL;
    }
    json_t *items = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str;
        int seg = strncmp(f, "segments/", 9) == 0;
        if (!seg && strncmp(f, "content-map/", 12) != 0)
            continue;
        json_t *doc = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        if (!doc) {
            json_object_set_new(items, f, json_string("(invalid JSON)"));
            continue;
        }
        json_t *arr = json_is_array(doc) ? json_incref(doc) : json_pack("[O]", doc);
        size_t k;
        json_t *it;
        json_array_foreach(arr, k, it)
        {
            const char *id = json_string_value(json_object_get(it, seg ? "id" : "slot"));
            char key[600];
            snprintf(key, sizeof key, "%s %s", seg ? "segment" : "slot", id ? id : "(no id)");
            json_object_set(items, key, it);
        }
        json_decref(arr);
        json_decref(doc);
    }
    freeReplyObject(r);
    return items;
}

int vd_release_diff(struct redisContext *c, const char *ns, const char *a, const char *b, FILE *out,
                    char *err, size_t cap)
{
    char va[256], vb[256];
    if (resolve_name(c, ns, a, va, sizeof va, err, cap) != 0 ||
        resolve_name(c, ns, b, vb, sizeof vb, err, cap) != 0)
        return -1;
    json_t *ia = release_items(c, ns, va, err, cap);
    if (!ia)
        return -1;
    json_t *ib = release_items(c, ns, vb, err, cap);
    if (!ib) {
        json_decref(ia);
        return -1;
    }
    fprintf(out, "--- %s\n+++ %s\n", va, vb);
    int added = 0, removed = 0, changed = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ia, k, v)
    {
        json_t *w = json_object_get(ib, k);
        if (!w) {
            fprintf(out, "- %s\n", k);
            removed++;
        } else if (!json_equal(v, w)) {
            fprintf(out, "~ %s\n", k);
            changed++;
        }
    }
    json_object_foreach(ib, k, v)
    {
        if (!json_object_get(ia, k)) {
            fprintf(out, "+ %s\n", k);
            added++;
        }
    }
    fprintf(out, "%d added, %d removed, %d changed\n", added, removed, changed);
    json_decref(ia);
    json_decref(ib);
    return added + removed + changed ? 1 : 0;
}

/* ---- status ---- */

int vd_release_status(struct redisContext *c, const char *ns, FILE *out, char *err, size_t cap)
{
    char ckey[128], cur[256];
    vd_release_key(ckey, sizeof ckey, ns, "current");
    if (get_string(c, ckey, cur, sizeof cur, err, cap) != 0)
        return -1;
    if (!cur[0]) {
        fprintf(out, "current: (none)\n");
    } else {
        json_t *m = get_meta(c, ns, cur);
        char when[32] = "?";
        fmt_time((long long)json_integer_value(json_object_get(m, "created")), when, sizeof when);
        const char *author = json_string_value(json_object_get(m, "author"));
        const char *msg = json_string_value(json_object_get(m, "message"));
        fprintf(out, "current: %s  created %s by %s  %s\n", cur, when, author && *author ? author : "-",
                msg ? msg : "");
        json_decref(m);
    }
    char pattern[160];
    vd_release_key(pattern, sizeof pattern, ns, "daemons:*");
    size_t prefix = strlen(pattern) - 1;
    int total = 0, on_current = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            return reply_fail(c, r, "SCAN", err, cap);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *g = redisCommand(c, "GET %s", keys->element[i]->str);
            if (g && g->type == REDIS_REPLY_STRING) {
                json_t *j = json_loadb(g->str, g->len, 0, NULL);
                const char *ver = json_string_value(json_object_get(j, "version"));
                const char *src = json_string_value(json_object_get(j, "source"));
                int stale = json_is_true(json_object_get(j, "stale"));
                total++;
                int same = ver && strcmp(ver, cur) == 0;
                on_current += same;
                fprintf(out, "  %c %-32s %-22s %-9s%s\n", same ? '=' : '!', keys->element[i]->str + prefix,
                        ver ? ver : "(not ready)", src ? src : "?", stale ? " stale" : "");
                json_decref(j);
            }
            if (g)
                freeReplyObject(g);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    fprintf(out, "%d of %d reporting daemons serve the current release\n", on_current, total);
    return 0;
}
