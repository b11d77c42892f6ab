/* http_edge.c — the edge port's handler (see the header). */
#include "net/http_edge.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context/ip.h"
#include "context/url.h"
#include "core/alloc.h"
#include "core/log.h"
#include "decision/request.h"
#include "learn/snapshot.h"
#include "net/json_out.h"

#define MAX_PROXIES 64

/* http-max-connections counts the edge port's connections on every worker. */
static _Atomic long edge_conns;
#define SCRATCH 16384             /* decoded query values and the composed URL */

struct vd_http_edge {
    const vd_frontend *fe;
    vd_http_server *srv;
    unsigned nproxies;
    vd_ipnet proxies[MAX_PROXIES];
    char scratch[SCRATCH + 1];    /* + 1: vd_url_decode ends what it writes with a NUL */
    size_t used;
    vd_request req;
    vd_decision d;
};

/* ---- addresses (parsed by context/ip.c, the one IP parser) ---- */

static bool trusted(const vd_http_edge *e, const vd_ipaddr *ip)
{
    for (unsigned i = 0; i < e->nproxies; i++)
        if (vd_ipnet_contains(&e->proxies[i], ip))
            return true;
    return false;
}

static int parse_proxies(vd_http_edge *e, const char *list, char *err, size_t cap)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if (e->nproxies == MAX_PROXIES) {
            snprintf(err, cap, "trusted-proxies: more than %d networks", MAX_PROXIES);
            return -1;
        }
        /* "[::1]" and "[::1]/128" as well as "::1/128": brackets are how
         * many configurations write IPv6. */
        char net[96];
        size_t nl = 0;
        for (const char *q = p; q < end && nl < sizeof net - 1; q++)
            if (*q != '[' && *q != ']')
                net[nl++] = *q;
        if (!vd_ipnet_parse(vd_str_make(net, nl), true, &e->proxies[e->nproxies])) {
            const char *slash = memchr(net, '/', nl);
            vd_ipnet addr_only;
            if (slash && vd_ipnet_parse(vd_str_make(net, (size_t)(slash - net)), false, &addr_only))
                snprintf(err, cap, "trusted-proxies: bad prefix length in '%.*s'", (int)(end - p), p);
            else
                snprintf(err, cap, "trusted-proxies: '%.*s' is not an IP address or CIDR network",
                         (int)(end - p), p);
            return -1;
        }
        e->nproxies++;
        p = end;
    }
    return 0;
}

/* The visitor's address: the peer, unless the peer is a trusted proxy; then
 * the right-most X-Forwarded-For entry that is not a trusted proxy, else
 * X-Real-IP. A proxy's own address is never the visitor's. The address
 * travels parsed (req->ip_addr): the context does not parse it again. */
static void client_ip(vd_http_edge *e, const vd_http_req *req, vd_ipaddr *out)
{
    vd_ipaddr a;
    memset(out, 0, sizeof *out);
    if (!vd_ip_from_sockaddr((const struct sockaddr *)&req->peer, &a))
        return;
    if (!trusted(e, &a)) {
        *out = a;
        return;
    }
    /* Every X-Forwarded-For line, right to left: the last line holds the
     * hops nearest to us. */
    for (unsigned h = req->nheaders; h-- > 0;) {
        if (!vd_str_eq_ci(req->headers[h].name, VD_STR_LIT("X-Forwarded-For")))
            continue;
        vd_str v = req->headers[h].value;
        size_t end = v.n;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v.p[start - 1] != ',')
                start--;
            vd_str item = vd_str_trim(vd_str_make(v.p + start, end - start));
            end = start > 0 ? start - 1 : 0;
            if (item.n == 0)
                continue;
            if (!vd_ip_parse_hostport(item, &a))
                return;           /* garbage in the chain: believe nothing beyond it */
            if (!trusted(e, &a)) {
                *out = a;
                return;
            }
        }
    }
    vd_str real = vd_str_trim(vd_http_header_get(req, "X-Real-IP"));
    if (real.n && vd_ip_parse_hostport(real, &a) && !trusted(e, &a))
        *out = a;
}

/* ---- query strings ---- */

/* Percent- and '+'-decodes s into the scratch area; false when full. */
static bool decode(vd_http_edge *e, vd_str s, vd_str *out)
{
    if (e->used + s.n > SCRATCH)
        return false;
    char *dst = e->scratch + e->used;
    size_t n = vd_url_decode(s, dst, SCRATCH + 1 - e->used);
    e->used += n;
    *out = vd_str_make(dst, n);
    return true;
}

vd_str vd_edge_cookie_get(vd_str hdr, const char *name)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < hdr.n) {
        while (i < hdr.n && (hdr.p[i] == ' ' || hdr.p[i] == ';'))
            i++;
        size_t start = i;
        while (i < hdr.n && hdr.p[i] != ';')
            i++;
        vd_str item = vd_str_make(hdr.p + start, i - start);
        const char *eq = memchr(item.p, '=', item.n);
        if (!eq)
            continue;
        vd_str k = vd_str_trim(vd_str_make(item.p, (size_t)(eq - item.p)));
        if (k.n == nlen && memcmp(k.p, name, nlen) == 0) {
            vd_str v = vd_str_trim(vd_str_make(eq + 1, (size_t)(item.p + item.n - eq - 1)));
            if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"')
                v = vd_str_make(v.p + 1, v.n - 2);
            return v;
        }
    }
    return VD_STR_NULL;
}

static bool truthy(vd_str v)
{
    return v.n == 0 || vd_str_eq_ci(v, VD_STR_LIT("1")) || vd_str_eq_ci(v, VD_STR_LIT("true")) ||
           vd_str_eq_ci(v, VD_STR_LIT("yes"));
}

/* GET: slots and options from the query, the visitor from the headers.
 * Returns 0 or -1 with a message. */
static int request_from_get(vd_http_edge *e, const vd_http_req *hr, vd_request *req, char *err,
                            size_t cap)
{
    unsigned max_slots = (unsigned)e->fe->cfg->max_slots;
    size_t pos = 0;
    vd_str k, v, url = VD_STR_NULL;
    bool have_url = false;
    while (vd_url_query_next(hr->query, &pos, &k, &v)) {
        vd_str dv;
        if (vd_str_eq(k, VD_STR_LIT("slot"))) {
            if (req->nslots == max_slots) {
                snprintf(err, cap, "more than %u slots requested, the limit is %u", max_slots,
                         max_slots);
                return -1;
            }
            if (!decode(e, v, &dv) || dv.n == 0) {
                snprintf(err, cap, "slot %u must be a non-empty name", req->nslots);
                return -1;
            }
            req->slots[req->nslots++] = dv;
        } else if (vd_str_eq(k, VD_STR_LIT("url"))) {
            if (!decode(e, v, &url)) {
                snprintf(err, cap, "url is too long");
                return -1;
            }
            have_url = true;
        } else if (vd_str_eq(k, VD_STR_LIT("consent"))) {
            /* The visitor's consent, as the proxy read it from the site's
             * consent cookie (docs/PROFILES.md, "The edge port"). */
            if (!decode(e, v, &req->consent)) {
                snprintf(err, cap, "query too long");
                return -1;
            }
        } else if (vd_str_eq(k, VD_STR_LIT("explain"))) {
            req->explain = truthy(v);
        } else if (vd_str_eq(k, VD_STR_LIT("segments"))) {
            req->segments = truthy(v);
        } else if (k.n > 5 && memcmp(k.p, "attr.", 5) == 0) {
            vd_str dk;
            if (req->nattrs == VD_MAX_ATTRS_PER_REQUEST) {
                snprintf(err, cap, "more than %d attr.NAME parameters", VD_MAX_ATTRS_PER_REQUEST);
                return -1;
            }
            if (!decode(e, vd_str_make(k.p + 5, k.n - 5), &dk) || !decode(e, v, &dv)) {
                snprintf(err, cap, "query too long");
                return -1;
            }
            vd_kv *kv = &req->attrs[req->nattrs++];
            kv->key = dk;
            kv->val.kind = VD_VAL_STR;
            kv->val.u.s = dv;
        }
        /* Other parameters are the page's own business: ignored. */
    }
    if (req->nslots == 0) {
        snprintf(err, cap, "slot is required: /v1/decide?slot=NAME[&slot=NAME...]");
        return -1;
    }
    if (!have_url) {
        vd_str orig = vd_http_header_get(hr, "X-Original-URI");
        if (orig.n && orig.p[0] == '/') {
            /* A path: complete it with the scheme and host the proxy saw. */
            vd_str host = vd_http_header_get(hr, "X-Forwarded-Host");
            if (!host.n)
                host = vd_http_header_get(hr, "Host");
            vd_str proto = vd_http_header_get(hr, "X-Forwarded-Proto");
            const char *scheme = vd_str_eq_ci(proto, VD_STR_LIT("https")) ? "https" : "http";
            int n = snprintf(e->scratch + e->used, SCRATCH - e->used, "%s://%.*s%.*s", scheme,
                             (int)(host.n > 255 ? 255 : host.n), host.p ? host.p : "",
                             (int)orig.n, orig.p);
            if (n > 0 && (size_t)n < SCRATCH - e->used) {
                url = vd_str_make(e->scratch + e->used, (size_t)n);
                e->used += (size_t)n;
            }
        } else {
            url = orig;
        }
    }
    req->url = url;
    client_ip(e, hr, &req->ip_addr);
    req->ua = vd_http_header_get(hr, "User-Agent");
    req->referer = vd_http_header_get(hr, "Referer");
    req->lang = vd_http_header_get(hr, "Accept-Language");
    req->hints.ua = vd_http_header_get(hr, "Sec-CH-UA");
    req->hints.mobile = vd_http_header_get(hr, "Sec-CH-UA-Mobile");
    req->hints.platform = vd_http_header_get(hr, "Sec-CH-UA-Platform");
    req->hints.model = vd_http_header_get(hr, "Sec-CH-UA-Model");
    for (unsigned i = 0; i < hr->nheaders && !req->vid.n; i++)
        if (vd_str_eq_ci(hr->headers[i].name, VD_STR_LIT("Cookie")))
            req->vid = vd_edge_cookie_get(hr->headers[i].value, e->fe->cfg->vid_cookie);
    return vd_request_check_ids(req, err, cap);
}

/* ---- POST: the contract's request map as JSON, validated by the same
 * validator as the MessagePack codec (decision/request.c). ---- */

static void js_val(const json_t *j, vd_reqval *out)
{
    memset(out, 0, sizeof *out);
    out->node = j;
    switch (json_typeof(j)) {
    case JSON_NULL: out->kind = VD_RV_NIL; break;
    case JSON_TRUE: out->kind = VD_RV_BOOL; out->b = true; break;
    case JSON_FALSE: out->kind = VD_RV_BOOL; out->b = false; break;
    case JSON_INTEGER:
    case JSON_REAL: out->kind = VD_RV_NUM; out->num = json_number_value(j); break;
    case JSON_STRING:
        out->kind = VD_RV_STR;
        out->s = vd_str_make(json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: out->kind = VD_RV_ARRAY; out->n = (uint32_t)json_array_size(j); break;
    case JSON_OBJECT: out->kind = VD_RV_MAP; out->n = (uint32_t)json_object_size(j); break;
    default: out->kind = VD_RV_OTHER; break;
    }
}

static void js_at(const void *node, uint32_t i, vd_reqval *out)
{
    js_val(json_array_get((const json_t *)node, i), out);
}

/* *it holds jansson's iterator, biased by one so 0 means "not started". */
static bool js_next(const void *node, uintptr_t *it, vd_reqval *k, vd_reqval *v)
{
    json_t *m = (json_t *)node;
    void *i = *it ? json_object_iter_next(m, (void *)(*it - 1)) : json_object_iter(m);
    if (!i)
        return false;
    *it = (uintptr_t)i + 1;
    const char *key = json_object_iter_key(i);
    memset(k, 0, sizeof *k);
    k->kind = VD_RV_STR;
    k->s = vd_str_make(key, json_object_iter_key_len(i));
    js_val(json_object_iter_value(i), v);
    return true;
}

static const vd_reqcodec js_codec = { js_at, js_next };

static int request_from_json(vd_http_edge *e, const json_t *root, vd_request *req, char *err,
                             size_t cap)
{
    vd_reqval v;
    js_val(root, &v);
    return vd_request_read(&js_codec, &v, (unsigned)e->fe->cfg->max_slots, req, err, cap);
}

/* ---- the answer ---- */

/* X-Variant-<slot>: only [A-Za-z0-9-] in a header name; anything else is
 * '-', the form nginx maps to $upstream_http_x_variant_<slot with _>. */
static void variant_headers(vd_http_resp *r, const vd_decision *d)
{
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (!c->slot)
            continue;
        if (vd_decision_repeats_slot(d, i))
            continue;
        char name[96] = "X-Variant-";
        size_t n = 10;
        for (size_t k = 0; k < c->name.n && n < sizeof name - 1; k++) {
            char ch = c->name.p[k];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
            name[n++] = ok ? ch : '-';
        }
        vd_http_resp_header(r, vd_str_make(name, n), c->variant->id);
    }
}

/* GET /v1/report[?slot=S] or POST /v1/report {slot?}: the `report` method
 * as JSON, from the learner's latest reading (learn/snapshot.h). */
static void handle_report(const vd_http_req *hr, vd_http_resp *r, vd_http_stats *st)
{
    char slot[VD_MAX_ID_LEN + 1] = "";
    if (hr->method == VD_HTTP_POST) {
        json_error_t jerr;
        json_t *root = json_loadb(hr->body.p ? hr->body.p : "", hr->body.n, 0, &jerr);
        json_t *js = root ? json_object_get(root, "slot") : NULL;
        if (!json_is_object(root) || (js && (!json_is_string(js) || json_string_length(js) == 0 ||
                                             json_string_length(js) > VD_MAX_ID_LEN))) {
            json_decref(root);
            VD_STAT_INC(st, err_invalid_request);
            vd_http_resp_error(r, 400, "invalid_params", "report takes a JSON object {slot?}");
            return;
        }
        if (js)
            snprintf(slot, sizeof slot, "%s", json_string_value(js));
        json_decref(root);
    } else if (hr->method == VD_HTTP_GET || hr->method == VD_HTTP_HEAD) {
        vd_str q = hr->query;
        if (q.n > 5 && !memcmp(q.p, "slot=", 5) && q.n - 5 <= VD_MAX_ID_LEN && !memchr(q.p, '&', q.n))
            vd_str_copy(slot, sizeof slot, vd_str_make(q.p + 5, q.n - 5));
    } else {
        VD_STAT_INC(st, err_method);
        vd_http_resp_header(r, VD_STR_LIT("Allow"), VD_STR_LIT("GET, HEAD, POST"));
        vd_http_resp_error(r, 405, "method_not_allowed", "report: GET, HEAD or POST");
        return;
    }
    vd_learn_snapshot *snap = vd_learn_snapshot_acquire();
    json_t *all = snap && snap->report ? json_object_get(snap->report, "slots") : NULL;
    json_t *slots = json_object();
    if (all && slot[0]) {
        json_t *one = json_object_get(all, slot);
        if (one)
            json_object_set_new(slots, slot, json_deep_copy(one));
    } else if (all) {
        json_t *copy = json_deep_copy(all);
        json_object_update(slots, copy);
        json_decref(copy);
    }
    json_t *out = json_pack("{s:o,s:o,s:b}", "slots", slots, "as_of",
                            snap && snap->as_of ? json_integer(snap->as_of) : json_null(), "available",
                            snap && snap->available);
    vd_learn_snapshot_release(snap);
    char *txt = vd_learn_json_text(out);
    json_decref(out);
    if (!txt) {
        vd_http_resp_error(r, 500, "internal", "out of memory");
        return;
    }
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("no-store"));
    vd_http_resp_body(r, 200, "application/json", txt, strlen(txt));
    vd_free(txt);
}

/* ---- decide ---- */

/* The decide request of hr into e->req (POST: *root is the JSON tree its
 * strings point into; the caller frees it). 0, or -1 with the error
 * answered. */
static int read_decide(vd_http_edge *e, const vd_http_req *hr, vd_http_resp *r, json_t **root)
{
    vd_http_stats *st = &e->fe->stats->edge;
    vd_request *req = &e->req;
    memset(req, 0, offsetof(vd_request, slots));
    req->nslots = 0;
    req->nattrs = 0;
    e->used = 0;
    *root = NULL;
    char err[256];
    int rc;
    if (hr->method == VD_HTTP_GET || hr->method == VD_HTTP_HEAD) {
        rc = request_from_get(e, hr, req, err, sizeof err);
    } else if (hr->method == VD_HTTP_POST) {
        json_error_t jerr;
        *root = json_loadb(hr->body.p ? hr->body.p : "", hr->body.n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
        if (!*root) {
            VD_STAT_INC(st, err_invalid_request);
            snprintf(err, sizeof err, "invalid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
            vd_http_resp_error(r, 400, "bad_json", err);
            return -1;
        }
        rc = request_from_json(e, *root, req, err, sizeof err);
    } else {
        VD_STAT_INC(st, err_method);
        vd_http_resp_header(r, VD_STR_LIT("Allow"), VD_STR_LIT("GET, HEAD, POST"));
        char msg[96];
        snprintf(msg, sizeof msg, "method %.16s not allowed: GET, HEAD or POST", hr->method_name.p);
        vd_http_resp_error(r, 405, "method_not_allowed", msg);
        return -1;
    }
    if (rc != 0) {
        VD_STAT_INC(st, err_invalid_request);
        vd_http_resp_error(r, 400, "invalid_params", err);
        json_decref(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

/* Decides e->req with what the profile step gave and writes the answer. */
static void write_decision(vd_http_edge *e, vd_http_resp *r, vd_profile_status pst,
                           const vd_visitor *visitor)
{
    const vd_frontend *fe = e->fe;
    vd_http_stats *st = &fe->stats->edge;
    vd_json j;
    vd_json_init(&j, r->body);
    vd_emitter em;
    vd_json_emitter(&j, &em);
    vd_decide_status ds = vd_decider_run_with(fe->decider, &e->req, &em, &e->d, pst, visitor);
    if (ds != VD_DECIDE_OK) {
        if (ds == VD_DECIDE_NOT_READY) {
            VD_STAT_INC(st, err_not_ready);
            vd_http_resp_header(r, VD_STR_LIT("Retry-After"), VD_STR_LIT("1"));
            vd_http_resp_error(r, 503, "not_ready", "no ruleset loaded yet");
        } else {
            VD_STAT_INC(st, err_internal);
            vd_http_resp_error(r, 500, "internal", "out of memory");
        }
        return;
    }
    evbuffer_add(r->body, "\n", 1);
    r->status = 200;
    r->content_type = "application/json";
    variant_headers(r, &e->d);
    int64_t max_age = fe->cfg->http_max_age;
    if (e->d.valid_until != INT64_MAX) {
        int64_t left = e->d.valid_until - (int64_t)time(NULL);
        if (left < max_age)
            max_age = left < 0 ? 0 : left;
    }
    /* The decision is this visitor's: no shared cache may keep it (a
     * Varnish or CDN that did served one visitor's variant to the next).
     * What a sidecar may cache is the page per variant, for this long. */
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("private, no-store"));
    char ttl[24];
    int n = snprintf(ttl, sizeof ttl, "%lld", (long long)max_age);
    vd_http_resp_header(r, VD_STR_LIT("X-Variant-Max-Age"), vd_str_make(ttl, (size_t)n));
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    if (rs)
        vd_http_resp_header(r, VD_STR_LIT("X-Ruleset-Version"), vd_str_cstr(vd_ruleset_version(rs)));
}

/* ---- waiting for the profile store ----
 *
 * A request that needs the store (a decide whose slots reach visitor.*, and
 * the profile methods) is parked on its connection (vd_http_park: later
 * pipelined requests wait behind it) and answered when the store's callback
 * runs: the reply, our profile-timeout deadline, or the store's loss. The
 * request is read again from the connection's buffers then (like the
 * decision port re-reads its frame): nothing of it is copied meanwhile. */
enum { EW_DECIDE = -1 };      /* else a vd_profile_method */

typedef struct edge_wait {
    vd_http_edge *e;
    int method;                   /* EW_DECIDE or a vd_profile_method */
    vd_profile_op *op;
    vd_http_parked *park;
    const vd_profile_result *res; /* while resuming */
} edge_wait;

static void on_store_reply(void *arg, const vd_profile_result *res);

static edge_wait *wait_new(vd_http_edge *e, int method)
{
    edge_wait *w = vd_calloc(1, sizeof *w);
    if (w) {
        w->e = e;
        w->method = method;
    }
    return w;
}

/* The connection closed first: the answer is not wanted any more. */
static void wait_cancel(void *arg)
{
    edge_wait *w = arg;
    vd_profile_cancel(w->op);
    vd_free(w);
}

/* Parks the request until op answers; false (w freed) if op was refused. */
static bool wait_park(edge_wait *w, vd_profile_op *op, vd_http_resp *r)
{
    if (!op) {
        vd_free(w);
        return false;
    }
    w->op = op;
    w->park = vd_http_park(r, wait_cancel, w);
    if (!w->park) {
        vd_profile_cancel(op);
        vd_free(w);
        return false;
    }
    return true;
}

static void handle_decide(vd_http_edge *e, const vd_http_req *hr, vd_http_resp *r)
{
    const vd_frontend *fe = e->fe;
    json_t *root;
    if (read_decide(e, hr, r, &root) != 0)
        return;
    vd_profile_status pst = VD_PROFILE_OFF;
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    if (rs && fe->decider->profiles) {
        vd_profile_plan plan;
        vd_decider_profile_plan(fe->decider, rs, &e->req, &plan);
        pst = plan.status;
        if (plan.read) {
            /* One EVALSHA counts the visit and reads the profile. */
            edge_wait *w = wait_new(e, EW_DECIDE);
            if (w && wait_park(w, vd_profile_visit(fe->decider->profiles, rs, &plan.ids, plan.ts,
                                                   true, on_store_reply, w), r)) {
                json_decref(root);
                return;
            }
            VD_STAT_INC(fe->decider->pstats, profile_unavailable);
            pst = VD_PROFILE_UNAVAILABLE;
        }
    }
    write_decision(e, r, pst, NULL);
    json_decref(root);
}

/* ---- track, profile, flag, forget (setting profile-edge) ---- */

static const char *const method_names[] = { "track", "profile", "flag", "forget" };

static void json_answer(vd_http_resp *r, const char *text)
{
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("no-store"));
    vd_http_resp_body(r, 200, "application/json", text, strlen(text));
}

static void store_error(vd_http_resp *r, const char *msg)
{
    vd_http_resp_header(r, VD_STR_LIT("Retry-After"), VD_STR_LIT("1"));
    vd_http_resp_error(r, 503, "unavailable", msg);
}

/* GET /v1/profile?vid=V&uid=U: the query as the map {vid, uid} (other
 * parameters ignored, a repeated one replaces), for the one validator. */
static json_t *query_map(vd_http_edge *e, vd_str query, char *err, size_t cap)
{
    json_t *m = json_object();
    size_t pos = 0;
    vd_str k, v, dv;
    e->used = 0;
    while (m && vd_url_query_next(query, &pos, &k, &v)) {
        if (!vd_str_eq(k, VD_STR_LIT("vid")) && !vd_str_eq(k, VD_STR_LIT("uid")))
            continue;
        if (!decode(e, v, &dv)) {
            snprintf(err, cap, "query too long");
            json_decref(m);
            return NULL;
        }
        char key[4];
        vd_str_copy(key, sizeof key, k);
        json_object_set_new(m, key, json_stringn_nocheck(dv.p ? dv.p : "", dv.n));
    }
    if (!m)
        snprintf(err, cap, "out of memory");
    return m;
}

static void handle_method(vd_http_edge *e, const vd_http_req *hr, vd_http_resp *r, vd_profile_method m)
{
    const vd_frontend *fe = e->fe;
    vd_http_stats *st = &fe->stats->edge;
    bool get = hr->method == VD_HTTP_GET || hr->method == VD_HTTP_HEAD;
    char err[256];
    if (hr->method != VD_HTTP_POST && !(m == VD_PM_PROFILE && get)) {
        /* Only reading a profile may be a GET: the others change it. */
        VD_STAT_INC(st, err_method);
        bool show = m == VD_PM_PROFILE;
        vd_http_resp_header(r, VD_STR_LIT("Allow"), show ? VD_STR_LIT("GET, HEAD, POST") : VD_STR_LIT("POST"));
        snprintf(err, sizeof err, "method %.16s not allowed: %s", hr->method_name.p,
                 show ? "GET, HEAD or POST" : "POST");
        vd_http_resp_error(r, 405, "method_not_allowed", err);
        return;
    }
    if (!fe->decider->profiles) {
        VD_STAT_INC(st, err_not_found);
        vd_http_resp_error(r, 404, "profiles_off", "profiles are not configured (--profiles)");
        return;
    }
    json_t *root;
    if (get) {
        root = query_map(e, hr->query, err, sizeof err);
        if (!root) {
            VD_STAT_INC(st, err_invalid_request);
            vd_http_resp_error(r, 400, "invalid_params", err);
            return;
        }
    } else {
        json_error_t jerr;
        root = json_loadb(hr->body.p ? hr->body.p : "", hr->body.n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
        if (!root) {
            VD_STAT_INC(st, err_invalid_request);
            snprintf(err, sizeof err, "invalid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
            vd_http_resp_error(r, 400, "bad_json", err);
            return;
        }
    }
    /* The one validator of these maps (decision/request.c), as on the
     * decision port. */
    vd_profile_params pp;
    vd_reqval v;
    js_val(root, &v);
    int64_t now = (int64_t)time(NULL);
    if (vd_profile_params_read(&js_codec, &v, &pp, err, sizeof err) != 0 ||
        vd_profile_params_check(m, &pp, now, err, sizeof err) != 0) {
        VD_STAT_INC(st, err_invalid_request);
        vd_http_resp_error(r, 400, "invalid_params", err);
        json_decref(root);
        return;
    }
    vd_profile_store *ps = fe->decider->profiles;
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    if (m == VD_PM_TRACK) {
        vd_consent consent = fe->decider->consent_default;
        if (pp.consent.n)
            vd_consent_parse(pp.consent, &consent);
        if (consent != VD_CONSENT_PERSONALIZATION) {
            /* Nothing about the visitor is kept. */
            json_answer(r, "{\"ok\":true,\"profile\":\"no_consent\"}\n");
            json_decref(root);
            return;
        }
    }
    edge_wait *w = wait_new(e, (int)m);
    if (!w) {
        VD_STAT_INC(st, err_internal);
        vd_http_resp_error(r, 500, "internal", "out of memory");
        json_decref(root);
        return;
    }
    vd_profile_op *op = NULL;
    switch (m) {
    case VD_PM_TRACK: {
        vd_profile_event ev = { .type = pp.event, .category = pp.category, .value = pp.value,
                                .has_value = pp.has_value };
        op = vd_profile_track(ps, rs, &pp.ids, pp.has_ts ? pp.ts : now, &ev,
                              vd_ruleset_is_goal(rs, pp.event), on_store_reply, w);
        break;
    }
    case VD_PM_PROFILE:
        op = vd_profile_show(ps, rs, &pp.ids, on_store_reply, w);
        break;
    case VD_PM_FLAG:
        op = vd_profile_flag(ps, &pp.ids, pp.flag, pp.has_ttl ? now + pp.ttl : 0, pp.clear,
                             on_store_reply, w);
        break;
    case VD_PM_FORGET:
        op = vd_profile_forget(ps, &pp.ids, on_store_reply, w);
        break;
    }
    /* The store copied what it sends: the JSON tree can go. */
    json_decref(root);
    if (!wait_park(w, op, r))
        store_error(r, "profile store unavailable");
}

/* The store answered a parked request (runs inside vd_http_resume). */
static void resume_cb(void *arg, const vd_http_req *hr, vd_http_resp *r)
{
    edge_wait *w = arg;
    vd_http_edge *e = w->e;
    const vd_profile_result *res = w->res;
    if (w->method == EW_DECIDE) {
        json_t *root;
        if (read_decide(e, hr, r, &root) == 0) {
            if (res->status == VD_PROFILE_UNAVAILABLE)
                VD_STAT_INC(e->fe->decider->pstats, profile_unavailable);
            write_decision(e, r, res->status, res->visitor);
        }
        json_decref(root);
        return;
    }
    if (res->status != VD_PROFILE_OK) {
        store_error(r, res->status == VD_PROFILE_TIMEOUT ? "profile store did not answer in time"
                                                         : "profile store unavailable");
        return;
    }
    switch ((vd_profile_method)w->method) {
    case VD_PM_TRACK:
    case VD_PM_FLAG:
        json_answer(r, "{\"ok\":true}\n");
        break;
    case VD_PM_FORGET:
        json_answer(r, res->deleted ? "{\"deleted\":true}\n" : "{\"deleted\":false}\n");
        break;
    case VD_PM_PROFILE: {
        vd_json j;
        vd_json_init(&j, r->body);
        vd_emitter em;
        vd_json_emitter(&j, &em);
        vd_result_emit_profile(&em, res, (int64_t)time(NULL));
        evbuffer_add(r->body, "\n", 1);
        r->status = 200;
        r->content_type = "application/json";
        vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("no-store"));
        break;
    }
    }
}

static void on_store_reply(void *arg, const vd_profile_result *res)
{
    edge_wait *w = arg;
    w->res = res;
    vd_http_resume(w->park, resume_cb, w);
    vd_free(w);
}

static void handle(void *arg, const vd_http_req *hr, vd_http_resp *r)
{
    vd_http_edge *e = arg;
    const vd_frontend *fe = e->fe;
    vd_http_stats *st = &fe->stats->edge;
    if (vd_str_eq(hr->path, VD_STR_LIT("/v1/decide"))) {
        handle_decide(e, hr, r);
        return;
    }
    if (vd_str_eq(hr->path, VD_STR_LIT("/v1/report"))) {
        handle_report(hr, r, st);
        return;
    }
    /* The profile methods only when profile-edge is set: anyone who can
     * reach them can read, flag or erase any visitor's profile by id. Off,
     * they are unknown paths like any other (404): a scan learns nothing. */
    if (fe->cfg->profile_edge && hr->path.n > 4 && memcmp(hr->path.p, "/v1/", 4) == 0) {
        vd_str name = vd_str_make(hr->path.p + 4, hr->path.n - 4);
        for (unsigned m = 0; m < sizeof method_names / sizeof method_names[0]; m++)
            if (vd_str_eq(name, vd_str_cstr(method_names[m]))) {
                handle_method(e, hr, r, (vd_profile_method)m);
                return;
            }
    }
    VD_STAT_INC(st, err_not_found);
    vd_http_resp_error(r, 404, "not_found",
                       fe->cfg->profile_edge
                           ? "no such path; the edge port serves /v1/decide, /v1/report, /v1/track, "
                             "/v1/profile, /v1/flag and /v1/forget"
                           : "no such path; the edge port serves /v1/decide and /v1/report");
}

void vd_http_limits_from_config(const vd_config *cfg, vd_http_limits *out)
{
    out->max_header = (size_t)cfg->http_max_header;
    out->max_body = (size_t)cfg->http_max_body;
    out->max_output = (size_t)cfg->max_output;
    out->max_conns = (size_t)cfg->http_max_connections;
    out->header_timeout = cfg->http_header_timeout;
    out->keepalive_timeout = cfg->http_idle_timeout;
    out->write_timeout = cfg->idle_timeout;
    out->shared_conns = NULL;
    out->name = "edge";
}

vd_http_edge *vd_http_edge_start(const vd_frontend *fe, const char *addr, char *err, size_t cap)
{
    vd_http_edge *e = vd_calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    e->fe = fe;
    if (parse_proxies(e, fe->cfg->trusted_proxies, err, cap) != 0) {
        vd_free(e);
        return NULL;
    }
    vd_http_limits lim;
    vd_http_limits_from_config(fe->cfg, &lim);
    lim.shared_conns = &edge_conns;
    e->srv = vd_http_server_start(fe->base, addr, &lim, &fe->stats->edge, handle, e, err, cap);
    if (!e->srv) {
        vd_free(e);
        return NULL;
    }
    return e;
}

vd_http_server *vd_http_edge_server(vd_http_edge *e)
{
    return e->srv;
}

void vd_http_edge_free(vd_http_edge *e)
{
    if (!e)
        return;
    vd_http_server_free(e->srv);
    vd_free(e);
}
