#include "context/context.h"

#include <stdio.h>
#include <string.h>

#include "context/ip.h"
#include "context/lang.h"

void vd_context_init(vd_context *ctx, const vd_request *req, const vd_env *env,
                     const vd_context_caches *caches, int64_t now)
{
    /* Only the header is reset: each family's fields are written before the
     * bit that marks them computed, so stale bytes are never read. */
    ctx->req = req;
    ctx->env = env;
    ctx->ua_cache = caches ? caches->ua : NULL;
    ctx->geo_cache = caches ? caches->geo : NULL;
    ctx->src_cache = caches ? caches->src : NULL;
    ctx->now = req->has_ts ? req->ts : now;
    ctx->done = 0;
    ctx->visitor = NULL;
    ctx->tz = NULL;
    ctx->has_device = false;
    ctx->has_url = false;
}

int vd_request_check_ids(const vd_request *req, char *err, size_t cap)
{
    vd_consent c;
    if (req->consent.n && !vd_consent_parse(req->consent, &c)) {
        snprintf(err, cap, "consent must be \"none\" or \"personalization\"");
        return -1;
    }
    /* A vid or uid too long to key a profile is not an error here (hostile
     * values still get an answer; splits take any vid): the profile step
     * treats it as no id. */
    return 0;
}

static void need_ip(vd_context *ctx)
{
    if (ctx->done & VD_FAM_IP)
        return;
    if (ctx->req->ip_addr.family)
        ctx->ip = ctx->req->ip_addr;          /* parsed once, at the front end */
    else if (!vd_ip_parse(ctx->req->ip, &ctx->ip))
        ctx->ip.family = 0;
    ctx->done |= VD_FAM_IP;
}

static void need_geo(vd_context *ctx)
{
    if (ctx->done & VD_FAM_GEO)
        return;
    need_ip(ctx);
    memset(&ctx->geo, 0, sizeof ctx->geo);
    ctx->geo.eu = -1;
    if (ctx->ip.family && ctx->env && ctx->env->geo)
        vd_geo_lookup_cached(ctx->env->geo, ctx->geo_cache, &ctx->ip, &ctx->geo);
    ctx->done |= VD_FAM_GEO;
}

const vd_tz *vd_context_tz(vd_context *ctx)
{
    if (ctx->done & VD_FAM_TIME)
        return ctx->tz;
    const vd_tzdb *db = ctx->env ? ctx->env->tzdb : NULL;
    const vd_tz *tz = NULL;
    if (db) {
        /* Request override, then the DB's zone, then the country's first
         * zone from tzdata, then UTC so time.* is always answerable. */
        if (ctx->req->tz.n)
            tz = vd_tzdb_zone(db, ctx->req->tz);
        if (!tz) {
            need_geo(ctx);
            if (ctx->geo.timezone[0])
                tz = vd_tzdb_zone(db, vd_str_cstr(ctx->geo.timezone));
            if (!tz && ctx->geo.country[0])
                tz = vd_tzdb_country_zone(db, vd_str_cstr(ctx->geo.country));
        }
        if (!tz)
            tz = vd_tzdb_utc(db);
        vd_tz_localtime(tz, ctx->now, &ctx->local);
    }
    ctx->tz = tz;
    ctx->done |= VD_FAM_TIME;
    return tz;
}

static void need_device(vd_context *ctx)
{
    if (ctx->done & VD_FAM_DEVICE)
        return;
    ctx->has_device = ctx->req->ua.n > 0 || vd_ua_hints_any(&ctx->req->hints);
    if (ctx->has_device)
        vd_device_lookup(ctx->ua_cache, ctx->req->ua, &ctx->req->hints, &ctx->device);
    ctx->done |= VD_FAM_DEVICE;
}

static void need_url(vd_context *ctx)
{
    if (ctx->done & VD_FAM_URL)
        return;
    ctx->has_url = ctx->req->url.n > 0 && ctx->req->url.n <= VD_MAX_URL_BYTES &&
                   vd_url_parse(ctx->req->url, &ctx->url);
    ctx->done |= VD_FAM_URL;
}

static void need_source(vd_context *ctx)
{
    if (ctx->done & VD_FAM_SOURCE)
        return;
    need_url(ctx);
    vd_str ref = ctx->req->referer.n <= VD_MAX_URL_BYTES ? ctx->req->referer : VD_STR_NULL;
    vd_source_classify_cached(ctx->src_cache, ref, ctx->has_url ? &ctx->url : NULL, &ctx->source);
    ctx->done |= VD_FAM_SOURCE;
}

static void need_net(vd_context *ctx)
{
    if (ctx->done & VD_FAM_NET)
        return;
    need_ip(ctx);
    vd_net_lookup(ctx->env ? ctx->env->asn : NULL, ctx->env ? ctx->env->anon : NULL,
                  ctx->ip.family ? &ctx->ip : NULL, &ctx->net);
    ctx->done |= VD_FAM_NET;
}

static void set_bool(vd_value *out, bool v)
{
    out->kind = VD_VAL_BOOL;
    out->u.b = v;
}

static void need_lang(vd_context *ctx)
{
    if (ctx->done & VD_FAM_LANG)
        return;
    if (!vd_lang_primary(ctx->req->lang, ctx->lang))
        ctx->lang[0] = '\0';
    ctx->done |= VD_FAM_LANG;
}

static void set_str(vd_value *out, const char *s)
{
    if (s && s[0]) {
        out->kind = VD_VAL_STR;
        out->u.s = vd_str_cstr(s);
    }
}

static void set_slice(vd_value *out, vd_str s)
{
    if (s.n) {
        out->kind = VD_VAL_STR;
        out->u.s = s;
    }
}

static void set_num(vd_value *out, double v)
{
    out->kind = VD_VAL_NUM;
    out->u.num = v;
}

static const vd_visitor_score *find_score(const vd_visitor *v, vd_str id)
{
    for (uint32_t i = 0; i < v->nscores; i++)
        if (vd_str_eq(v->scores[i].id, id))
            return &v->scores[i];
    return NULL;
}

static void get_visitor(const vd_context *ctx, const vd_attr_ref *attr, vd_value *out)
{
    const vd_visitor *v = ctx->visitor;
    if (!v)
        return;
    const vd_visitor_score *sc;
    int64_t days;
    double d;
    switch ((vd_attr_id)attr->id) {
    case VD_ATTR_VISITOR_KNOWN:
        out->kind = VD_VAL_BOOL;
        out->u.b = v->known;
        break;
    case VD_ATTR_VISITOR_VISITS: set_num(out, v->visit.visits); break;
    case VD_ATTR_VISITOR_NEW:
        out->kind = VD_VAL_BOOL;
        out->u.b = v->visit.visits <= 1;
        break;
    case VD_ATTR_VISITOR_DAYS_SINCE_LAST:
        if (vd_visit_days_since_last(&v->visit, &days))
            set_num(out, (double)days);
        break;
    case VD_ATTR_VISITOR_FIRST_SEEN:
        if (v->visit.visits)
            set_num(out, (double)v->visit.first_seen);
        break;
    case VD_ATTR_VISITOR_SCORE:
        if ((sc = find_score(v, attr->sub)))
            set_num(out, vd_score_value_at(&sc->st, ctx->now, sc->half_life_s));
        break;
    case VD_ATTR_VISITOR_PEAK:
        if ((sc = find_score(v, attr->sub)))
            set_num(out, sc->st.peak);
        break;
    case VD_ATTR_VISITOR_DECLINE:
        if ((sc = find_score(v, attr->sub)) && vd_score_decline(&sc->st, ctx->now, sc->half_life_s, &d))
            set_num(out, d);
        break;
    case VD_ATTR_VISITOR_EVENTS:
        set_num(out, 0);   /* a type never tracked was tracked 0 times */
        for (uint32_t i = 0; i < v->nevents; i++)
            if (vd_str_eq(v->events[i].name, attr->sub)) {
                set_num(out, v->events[i].n);
                break;
            }
        break;
    case VD_ATTR_VISITOR_FLAG:
        for (uint32_t i = 0; i < v->nflags; i++)
            if (vd_str_eq(v->flags[i].name, attr->sub)) {
                if (v->flags[i].expires == 0 || v->flags[i].expires > ctx->now) {
                    out->kind = VD_VAL_BOOL;
                    out->u.b = true;
                }
                break;
            }
        break;
    default:
        break;
    }
}

void vd_context_get(vd_context *ctx, const vd_attr_ref *attr, vd_value *out)
{
    static const char *const weekdays[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    out->kind = VD_VAL_MISSING;
    switch ((vd_attr_id)attr->id) {
    case VD_ATTR_IP:
        need_ip(ctx);
        if (ctx->ip.family) {
            out->kind = VD_VAL_IP;
            out->u.ip = ctx->ip;
        }
        break;
    case VD_ATTR_GEO_COUNTRY:   need_geo(ctx); set_str(out, ctx->geo.country); break;
    case VD_ATTR_GEO_CONTINENT: need_geo(ctx); set_str(out, ctx->geo.continent); break;
    case VD_ATTR_GEO_REGION:    need_geo(ctx); set_str(out, ctx->geo.region); break;
    case VD_ATTR_GEO_CITY:      need_geo(ctx); set_str(out, ctx->geo.city); break;
    case VD_ATTR_GEO_POSTAL:    need_geo(ctx); set_str(out, ctx->geo.postal); break;
    case VD_ATTR_GEO_TIMEZONE: {
        /* The zone actually used for local time, so rules and time agree. */
        const vd_tz *tz = vd_context_tz(ctx);
        need_geo(ctx);
        if (tz && (ctx->req->tz.n || ctx->geo.timezone[0] || ctx->geo.country[0]))
            set_str(out, vd_tz_name(tz));
        else
            set_str(out, ctx->geo.timezone);
        break;
    }
    case VD_ATTR_GEO_LOCATION:
        need_geo(ctx);
        if (ctx->geo.has_location) {
            out->kind = VD_VAL_LOC;
            out->u.loc.lat = ctx->geo.lat;
            out->u.loc.lon = ctx->geo.lon;
        }
        break;
    case VD_ATTR_GEO_EU:
        need_geo(ctx);
        if (ctx->geo.eu >= 0) {
            out->kind = VD_VAL_BOOL;
            out->u.b = ctx->geo.eu == 1;
        }
        break;
    case VD_ATTR_TIME_HOUR:
        if (vd_context_tz(ctx))
            set_num(out, ctx->local.hour);
        break;
    case VD_ATTR_TIME_MINUTE:
        if (vd_context_tz(ctx))
            set_num(out, ctx->local.hour * 60 + ctx->local.minute);
        break;
    case VD_ATTR_TIME_WEEKDAY:
        if (vd_context_tz(ctx) && ctx->local.weekday >= 0 && ctx->local.weekday < 7)
            set_str(out, weekdays[ctx->local.weekday]);
        break;
    case VD_ATTR_TIME_DATE:
        if (vd_context_tz(ctx))
            set_num(out, (double)ctx->local.days);
        break;
    case VD_ATTR_TIME_UTC:
        set_num(out, (double)ctx->now);
        break;
    case VD_ATTR_DEVICE_TYPE:
        need_device(ctx);
        if (ctx->has_device)
            set_str(out, vd_device_type_name(ctx->device.type));
        break;
    case VD_ATTR_DEVICE_OS:
        need_device(ctx);
        if (ctx->has_device)
            set_str(out, ctx->device.os);
        break;
    case VD_ATTR_DEVICE_BROWSER:
        need_device(ctx);
        if (ctx->has_device)
            set_str(out, ctx->device.browser);
        break;
    case VD_ATTR_SOURCE_MEDIUM:
        need_source(ctx);
        set_str(out, vd_medium_name(ctx->source.medium));
        break;
    case VD_ATTR_SOURCE_NAME:     need_source(ctx); set_str(out, ctx->source.name); break;
    case VD_ATTR_SOURCE_HOST:     need_source(ctx); set_str(out, ctx->source.host); break;
    case VD_ATTR_SOURCE_CAMPAIGN: need_source(ctx); set_str(out, ctx->source.campaign); break;
    case VD_ATTR_SOURCE_TERM:     need_source(ctx); set_str(out, ctx->source.term); break;
    case VD_ATTR_SOURCE_CONTENT:  need_source(ctx); set_str(out, ctx->source.content); break;
    case VD_ATTR_URL_HOST:
        need_url(ctx);
        if (ctx->has_url)
            set_slice(out, ctx->url.host);
        break;
    case VD_ATTR_URL_PATH:
        need_url(ctx);
        if (ctx->has_url)
            set_slice(out, ctx->url.path);
        break;
    case VD_ATTR_URL_QUERY: {
        need_url(ctx);
        vd_str v;
        if (ctx->has_url &&
            vd_url_query_get(ctx->url.query, attr->sub, ctx->qbuf, sizeof ctx->qbuf, &v)) {
            out->kind = VD_VAL_STR;   /* present but empty is still present */
            out->u.s = v;
        }
        break;
    }
    case VD_ATTR_LANG:
        need_lang(ctx);
        set_str(out, ctx->lang);
        break;
    case VD_ATTR_NET_ASN:
        need_net(ctx);
        if (ctx->net.has_asn)
            set_num(out, ctx->net.asn);
        break;
    case VD_ATTR_NET_ORG:
        need_net(ctx);
        if (ctx->net.has_asn)
            set_str(out, ctx->net.org);
        break;
    case VD_ATTR_NET_ANONYMOUS: need_net(ctx); if (ctx->net.has_anon) set_bool(out, ctx->net.anonymous); break;
    case VD_ATTR_NET_VPN:       need_net(ctx); if (ctx->net.has_anon) set_bool(out, ctx->net.vpn); break;
    case VD_ATTR_NET_HOSTING:   need_net(ctx); if (ctx->net.has_anon) set_bool(out, ctx->net.hosting); break;
    case VD_ATTR_NET_TOR:       need_net(ctx); if (ctx->net.has_anon) set_bool(out, ctx->net.tor); break;
    case VD_ATTR_ATTR:
        for (unsigned i = 0; i < ctx->req->nattrs; i++)
            if (vd_str_eq(ctx->req->attrs[i].key, attr->sub)) {
                const vd_value *v = &ctx->req->attrs[i].val;
                if (v->kind != VD_VAL_STR || v->u.s.n <= VD_MAX_ATTR_STR_BYTES)
                    *out = *v;
                break;
            }
        break;
    case VD_ATTR_VISITOR_KNOWN:
    case VD_ATTR_VISITOR_VISITS:
    case VD_ATTR_VISITOR_NEW:
    case VD_ATTR_VISITOR_DAYS_SINCE_LAST:
    case VD_ATTR_VISITOR_FIRST_SEEN:
    case VD_ATTR_VISITOR_SCORE:
    case VD_ATTR_VISITOR_PEAK:
    case VD_ATTR_VISITOR_DECLINE:
    case VD_ATTR_VISITOR_EVENTS:
    case VD_ATTR_VISITOR_FLAG:
        get_visitor(ctx, attr, out);
        break;
    case VD_ATTR__COUNT:
        break;
    }
}
