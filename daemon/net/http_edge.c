/* http_edge.c — the edge port's handler (see the header). */
#include "net/http_edge.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context/url.h"
#include "core/alloc.h"
#include "core/log.h"
#include "decision/request.h"
#include "net/json_out.h"

#define MAX_PROXIES 64

/* http-max-connections counts the edge port's connections on every worker. */
static _Atomic long edge_conns;
#define SCRATCH 16384             /* decoded query values and the composed URL */

typedef struct cidr {
    uint8_t family;               /* 4 or 6 */
    uint8_t addr[16];
    unsigned prefix;
} cidr;

struct vd_http_edge {
    const vd_frontend *fe;
    vd_http_server *srv;
    unsigned nproxies;
    cidr proxies[MAX_PROXIES];
    char scratch[SCRATCH + 1];    /* + 1: vd_url_decode ends what it writes with a NUL */
    size_t used;
    char ipbuf[64];
    vd_request req;
    vd_decision d;
};

/* ---- addresses ---- */

/* Parses an IPv4/IPv6 literal (optionally [bracketed], with :port on v4 or
 * after ']'); v4-mapped IPv6 becomes IPv4. */
static bool parse_ip(vd_str s, uint8_t *family, uint8_t addr[16])
{
    char buf[64];
    s = vd_str_trim(s);
    if (s.n == 0 || s.n >= sizeof buf)
        return false;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    char *p = buf;
    if (*p == '[') {
        char *close = strchr(p, ']');
        if (!close)
            return false;
        *close = '\0';
        p++;
    } else {
        char *colon = strchr(p, ':');
        if (colon && !strchr(colon + 1, ':'))
            *colon = '\0';            /* 1.2.3.4:5678 */
    }
    char *zone = strchr(p, '%');
    if (zone)
        *zone = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, p, addr) == 1) {
        *family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, p, addr) == 1) {
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(addr, mapped, 12) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = 4;
        } else {
            *family = 6;
        }
        return true;
    }
    return false;
}

static bool in_cidr(const cidr *c, uint8_t family, const uint8_t *addr)
{
    if (c->family != family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static bool trusted(const vd_http_edge *e, uint8_t family, const uint8_t *addr)
{
    for (unsigned i = 0; i < e->nproxies; i++)
        if (in_cidr(&e->proxies[i], family, addr))
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
        cidr *c = &e->proxies[e->nproxies];
        const char *slash = memchr(p, '/', (size_t)(end - p));
        vd_str ip = vd_str_make(p, (size_t)((slash ? slash : end) - p));
        if (!parse_ip(ip, &c->family, c->addr)) {
            snprintf(err, cap, "trusted-proxies: '%.*s' is not an IP address or CIDR network",
                     (int)(end - p), p);
            return -1;
        }
        unsigned max = c->family == 4 ? 32 : 128;
        c->prefix = max;
        if (slash) {
            char *e2;
            long n = strtol(slash + 1, &e2, 10);
            if (e2 != end || n < 0 || n > (long)max) {
                snprintf(err, cap, "trusted-proxies: bad prefix length in '%.*s'", (int)(end - p), p);
                return -1;
            }
            c->prefix = (unsigned)n;
        }
        e->nproxies++;
        p = end;
    }
    return 0;
}

static void format_ip(vd_http_edge *e, uint8_t family, const uint8_t *addr, vd_str *out)
{
    if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, e->ipbuf, sizeof e->ipbuf)) {
        *out = VD_STR_NULL;
        return;
    }
    *out = vd_str_cstr(e->ipbuf);
}

/* The visitor's address: the peer, unless the peer is a trusted proxy; then
 * the right-most X-Forwarded-For entry that is not a trusted proxy, else
 * X-Real-IP. A proxy's own address is never the visitor's. */
static void client_ip(vd_http_edge *e, const vd_http_req *req, vd_str *out)
{
    uint8_t fam, addr[16];
    *out = VD_STR_NULL;
    vd_str peer = VD_STR_NULL;
    char pbuf[INET6_ADDRSTRLEN];
    if (req->peer.ss_family == AF_INET &&
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&req->peer)->sin_addr, pbuf, sizeof pbuf))
        peer = vd_str_cstr(pbuf);
    else if (req->peer.ss_family == AF_INET6 &&
             inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&req->peer)->sin6_addr, pbuf,
                       sizeof pbuf))
        peer = vd_str_cstr(pbuf);
    if (!parse_ip(peer, &fam, addr))
        return;
    if (!trusted(e, fam, addr)) {
        format_ip(e, fam, addr, out);
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
            if (!parse_ip(item, &fam, addr))
                return;           /* garbage in the chain: believe nothing beyond it */
            if (!trusted(e, fam, addr)) {
                format_ip(e, fam, addr, out);
                return;
            }
        }
    }
    vd_str real = vd_http_header_get(req, "X-Real-IP");
    if (real.n && parse_ip(real, &fam, addr) && !trusted(e, fam, addr))
        format_ip(e, fam, addr, out);
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

static bool query_next(vd_str q, size_t *pos, vd_str *k, vd_str *v)
{
    while (*pos < q.n) {
        size_t start = *pos, end = start;
        while (end < q.n && q.p[end] != '&' && q.p[end] != ';')
            end++;
        *pos = end + 1;
        if (end == start)
            continue;
        const char *eq = memchr(q.p + start, '=', end - start);
        if (eq) {
            *k = vd_str_make(q.p + start, (size_t)(eq - q.p - start));
            *v = vd_str_make(eq + 1, (size_t)(q.p + end - eq - 1));
        } else {
            *k = vd_str_make(q.p + start, end - start);
            *v = VD_STR_NULL;
        }
        return true;
    }
    return false;
}

/* The value of cookie `name` in a Cookie header. */
static vd_str cookie_get(vd_str hdr, const char *name)
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
    while (query_next(hr->query, &pos, &k, &v)) {
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
    client_ip(e, hr, &req->ip);
    req->ua = vd_http_header_get(hr, "User-Agent");
    req->referer = vd_http_header_get(hr, "Referer");
    req->lang = vd_http_header_get(hr, "Accept-Language");
    for (unsigned i = 0; i < hr->nheaders && !req->vid.n; i++)
        if (vd_str_eq_ci(hr->headers[i].name, VD_STR_LIT("Cookie")))
            req->vid = cookie_get(hr->headers[i].value, e->fe->cfg->vid_cookie);
    return 0;
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
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = d->slots[j].slot == c->slot;
        if (dup)
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

static void handle(void *arg, const vd_http_req *hr, vd_http_resp *r)
{
    vd_http_edge *e = arg;
    const vd_frontend *fe = e->fe;
    vd_http_stats *st = &fe->stats->edge;
    if (!vd_str_eq(hr->path, VD_STR_LIT("/v1/decide"))) {
        VD_STAT_INC(st, err_not_found);
        vd_http_resp_error(r, 404, "not_found", "no such path; the edge port serves /v1/decide");
        return;
    }
    vd_request *req = &e->req;
    memset(req, 0, offsetof(vd_request, slots));
    req->nslots = 0;
    req->nattrs = 0;
    e->used = 0;
    char err[256];
    json_t *root = NULL;
    int rc;
    if (hr->method == VD_HTTP_GET || hr->method == VD_HTTP_HEAD) {
        rc = request_from_get(e, hr, req, err, sizeof err);
    } else if (hr->method == VD_HTTP_POST) {
        json_error_t jerr;
        root = json_loadb(hr->body.p ? hr->body.p : "", hr->body.n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
        if (!root) {
            VD_STAT_INC(st, err_invalid_request);
            snprintf(err, sizeof err, "invalid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
            vd_http_resp_error(r, 400, "bad_json", err);
            return;
        }
        rc = request_from_json(e, root, req, err, sizeof err);
    } else {
        VD_STAT_INC(st, err_method);
        vd_http_resp_header(r, VD_STR_LIT("Allow"), VD_STR_LIT("GET, HEAD, POST"));
        char msg[96];
        snprintf(msg, sizeof msg, "method %.16s not allowed: GET, HEAD or POST", hr->method_name.p);
        vd_http_resp_error(r, 405, "method_not_allowed", msg);
        return;
    }
    if (rc != 0) {
        VD_STAT_INC(st, err_invalid_request);
        vd_http_resp_error(r, 400, "invalid_params", err);
        json_decref(root);
        return;
    }
    vd_json j;
    vd_json_init(&j, r->body);
    vd_emitter em;
    vd_json_emitter(&j, &em);
    vd_decide_status ds = vd_decider_run(fe->decider, req, &em, &e->d);
    if (ds != VD_DECIDE_OK) {
        if (ds == VD_DECIDE_NOT_READY) {
            VD_STAT_INC(st, err_not_ready);
            vd_http_resp_header(r, VD_STR_LIT("Retry-After"), VD_STR_LIT("1"));
            vd_http_resp_error(r, 503, "not_ready", "no ruleset loaded yet");
        } else {
            VD_STAT_INC(st, err_internal);
            vd_http_resp_error(r, 500, "internal", "out of memory");
        }
        json_decref(root);
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
    char cc[40];
    int n = snprintf(cc, sizeof cc, "max-age=%lld", (long long)max_age);
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), vd_str_make(cc, (size_t)n));
    const vd_ruleset *rs = vd_decider_ruleset(fe->decider);
    if (rs)
        vd_http_resp_header(r, VD_STR_LIT("X-Ruleset-Version"), vd_str_cstr(vd_ruleset_version(rs)));
    json_decref(root);
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
