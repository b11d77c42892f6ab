/* visitor.c — score decay, visits, merge, consent and id hashing (visitor.h). */
#include "context/visitor.h"

#include <math.h>
#include <string.h>

#include "core/siphash.h"

double vd_decay(double v, double dt_s, double half_life_s)
{
    if (dt_s <= 0 || v == 0)
        return v;
    return v * exp2(-dt_s / half_life_s);
}

void vd_score_add(vd_score_state *s, double points, int64_t t, double half_life_s)
{
    if (s->value == 0 && s->t == 0) {
        s->value = points;
        s->t = t;
    } else if (t >= s->t) {
        s->value = vd_decay(s->value, (double)(t - s->t), half_life_s) + points;
        s->t = t;
    } else {
        s->value += vd_decay(points, (double)(s->t - t), half_life_s);
    }
    if (s->peak > 0 && t <= s->peak_t)
        s->peak += vd_decay(points, (double)(s->peak_t - t), half_life_s);
    if (s->value >= s->peak) {
        s->peak = s->value;
        s->peak_t = s->t;
    }
}

double vd_score_value_at(const vd_score_state *s, int64_t t, double half_life_s)
{
    return vd_decay(s->value, (double)(t - s->t), half_life_s);
}

bool vd_score_decline(const vd_score_state *s, int64_t t, double half_life_s, double *out)
{
    if (!(s->peak > 0))
        return false;
    double d = 1.0 - vd_score_value_at(s, t, half_life_s) / s->peak;
    *out = d < 0 ? 0 : d > 1 ? 1 : d;
    return true;
}

void vd_score_merge(vd_score_state *dst, const vd_score_state *src, double half_life_s)
{
    if (src->t == 0 && src->value == 0 && src->peak == 0)
        return;
    if (dst->t == 0 && dst->value == 0 && dst->peak == 0) {
        *dst = *src;
        return;
    }
    int64_t t = dst->t > src->t ? dst->t : src->t;
    double v = vd_decay(dst->value, (double)(t - dst->t), half_life_s) +
               vd_decay(src->value, (double)(t - src->t), half_life_s);
    if (src->peak > dst->peak) {
        dst->peak = src->peak;
        dst->peak_t = src->peak_t;
    }
    dst->value = v;
    dst->t = t;
    if (v >= dst->peak) {
        dst->peak = v;
        dst->peak_t = t;
    }
}

bool vd_visit_touch(vd_visit_state *v, int64_t ts, int64_t gap_s)
{
    if (v->visits == 0) {
        v->visits = 1;
        v->first_seen = v->last_seen = v->visit_start = ts;
        v->prev_end = 0;
        return true;
    }
    if (ts < v->first_seen)
        v->first_seen = ts;
    if (ts - v->last_seen > gap_s) {
        v->visits++;
        v->prev_end = v->last_seen;
        v->visit_start = ts;
        v->last_seen = ts;
        return true;
    }
    if (ts > v->last_seen)
        v->last_seen = ts;
    return false;
}

bool vd_visit_days_since_last(const vd_visit_state *v, int64_t *days)
{
    if (v->visits < 2)
        return false;
    int64_t d = v->visit_start - v->prev_end;
    *days = d > 0 ? d / 86400 : 0;
    return true;
}

void vd_visit_merge(vd_visit_state *dst, const vd_visit_state *src)
{
    if (src->visits == 0)
        return;
    if (dst->visits == 0) {
        *dst = *src;
        return;
    }
    uint32_t visits = dst->visits + src->visits;
    int64_t first = dst->first_seen < src->first_seen ? dst->first_seen : src->first_seen;
    if (src->last_seen > dst->last_seen) {
        dst->last_seen = src->last_seen;
        dst->visit_start = src->visit_start;
        dst->prev_end = src->prev_end;
    }
    dst->visits = visits;
    dst->first_seen = first;
}

bool vd_consent_parse(vd_str s, vd_consent *out)
{
    if (vd_str_eq(s, VD_STR_LIT("none"))) {
        *out = VD_CONSENT_NONE;
        return true;
    }
    if (vd_str_eq(s, VD_STR_LIT("personalization"))) {
        *out = VD_CONSENT_PERSONALIZATION;
        return true;
    }
    return false;
}

const char *vd_consent_name(vd_consent c)
{
    return c == VD_CONSENT_PERSONALIZATION ? "personalization" : "none";
}

const char *vd_profile_status_name(vd_profile_status s)
{
    switch (s) {
    case VD_PROFILE_OK:          return "ok";
    case VD_PROFILE_NO_CONSENT:  return "no_consent";
    case VD_PROFILE_NO_ID:       return "no_id";
    case VD_PROFILE_TIMEOUT:     return "timeout";
    case VD_PROFILE_UNAVAILABLE: return "unavailable";
    case VD_PROFILE_OFF:         break;
    }
    return NULL;
}

vd_profile_status vd_profile_gate(bool profiles_on, vd_consent consent, bool has_id)
{
    if (!profiles_on)
        return VD_PROFILE_OFF;
    if (consent != VD_CONSENT_PERSONALIZATION)
        return VD_PROFILE_NO_CONSENT;
    if (!has_id)
        return VD_PROFILE_NO_ID;
    return VD_PROFILE_OK;
}

void vd_id_hash(const uint8_t key[16], bool known, vd_str id, char out[VD_ID_HASH_HEX])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t buf[2 + VD_MAX_VISITOR_ID_LEN];
    /* The codecs reject longer ids; the cap only guards the buffer. */
    size_t n = id.n < VD_MAX_VISITOR_ID_LEN ? id.n : VD_MAX_VISITOR_ID_LEN;
    buf[0] = known ? 'u' : 'v';
    buf[1] = ':';
    if (n)
        memcpy(buf + 2, id.p, n);
    uint8_t h[16];
    vd_siphash24_128(key, buf, n + 2, h);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[32] = '\0';
}

bool vd_secret_parse(const char *s, uint8_t key[16])
{
    if (!s || strlen(s) != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        int hi = vd_hex_value(s[2 * i]), lo = vd_hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool vd_visitor_exposure_parse(vd_str slot, vd_str value, vd_visitor_exposure *out)
{
    vd_str part[6];
    unsigned n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= value.n && n < 6; i++)
        if (i == value.n || value.p[i] == '|') {
            part[n++] = vd_str_make(value.p + start, i - start);
            start = i + 1;
        }
    if (n < 5 || part[1].n == 0 || part[2].n == 0 || part[4].n != 1)
        return false;
    int64_t ts = 0;
    bool neg = part[3].n && part[3].p[0] == '-';
    for (size_t i = neg; i < part[3].n; i++) {
        if (part[3].p[i] < '0' || part[3].p[i] > '9' || ts > (INT64_MAX - 9) / 10)
            return false;
        ts = ts * 10 + (part[3].p[i] - '0');
    }
    *out = (vd_visitor_exposure){ slot, part[1], part[2], neg ? -ts : ts, part[4].p[0] == '1' };
    return true;
}

const vd_visitor_exposure *vd_visitor_exposure_of(const vd_visitor *v, vd_str slot)
{
    for (uint32_t i = 0; v && i < v->nexposures; i++)
        if (vd_str_eq(v->exposures[i].slot, slot))
            return &v->exposures[i];
    return NULL;
}
