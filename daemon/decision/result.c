#include "decision/result.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "context/ip.h"
#include "profile/store.h"
#include "store/live.h"

#define EMIT_LIT(e, lit) ((e)->ascii ? (e)->ascii : (e)->str)((e)->arg, (lit), sizeof(lit) - 1)

/* An id of the ruleset (segment, slot, variant): validated ASCII. */
static void emit_id(const vd_emitter *e, vd_str s)
{
    (e->ascii ? e->ascii : e->str)(e->arg, s.p ? s.p : "", s.n);
}

static void emit_cstr(const vd_emitter *e, const char *s)
{
    e->str(e->arg, s, strlen(s));
}

static void emit_vstr(const vd_emitter *e, vd_str s)
{
    e->str(e->arg, s.p ? s.p : "", s.n);
}

static void emit_number(const vd_emitter *e, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        e->i64(e->arg, (int64_t)v);
    else
        e->f64(e->arg, v);
}

/* A value as the client should read it back: dates as YYYY-MM-DD, places as
 * {lat, lon}, IPs as text. */
static void emit_value(const vd_emitter *e, unsigned attr, const vd_value *v)
{
    switch (v->kind) {
    case VD_VAL_STR:
        emit_vstr(e, v->u.s);
        break;
    case VD_VAL_NUM:
        if (attr == VD_ATTR_TIME_DATE) {
            int y, m, d;
            char buf[16];
            vd_civil_from_days((int64_t)v->u.num, &y, &m, &d);
            int n = snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
            e->str(e->arg, buf, (size_t)n);
        } else {
            emit_number(e, v->u.num);
        }
        break;
    case VD_VAL_BOOL:
        e->boolean(e->arg, v->u.b);
        break;
    case VD_VAL_LOC:
        e->map(e->arg, 2);
        EMIT_LIT(e, "lat");
        e->f64(e->arg, v->u.loc.lat);
        EMIT_LIT(e, "lon");
        e->f64(e->arg, v->u.loc.lon);
        break;
    case VD_VAL_IP: {
        char buf[64];
        emit_cstr(e, vd_ip_format(&v->u.ip, buf, sizeof buf));
        break;
    }
    case VD_VAL_MISSING:
        e->nil(e->arg);
        break;
    }
}

/* The visitor.NAME.SUB entries of the profile: every score's value, peak
 * and decline, every event counter and every live flag, with the values the
 * rules see. Counts them with e NULL. */
static uint32_t emit_visitor(const vd_emitter *e, vd_context *ctx)
{
    const vd_visitor *v = ctx->visitor;
    if (!v)
        return 0;
    uint32_t n = 0;
    static const struct { uint8_t id; const char *prefix; } fams[] = {
        { VD_ATTR_VISITOR_SCORE, "visitor.score." },
        { VD_ATTR_VISITOR_PEAK, "visitor.peak." },
        { VD_ATTR_VISITOR_DECLINE, "visitor.decline." },
        { VD_ATTR_VISITOR_EVENTS, "visitor.events." },
        { VD_ATTR_VISITOR_FLAG, "visitor.flag." },
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        uint32_t count = fams[f].id == VD_ATTR_VISITOR_EVENTS ? v->nevents
                       : fams[f].id == VD_ATTR_VISITOR_FLAG ? v->nflags : v->nscores;
        for (uint32_t i = 0; i < count; i++) {
            vd_str sub = fams[f].id == VD_ATTR_VISITOR_EVENTS ? v->events[i].name
                       : fams[f].id == VD_ATTR_VISITOR_FLAG ? v->flags[i].name : v->scores[i].id;
            vd_attr_ref ref = { .id = fams[f].id, .sub = sub };
            vd_value val;
            vd_context_get(ctx, &ref, &val);
            if (val.kind == VD_VAL_MISSING)
                continue;
            n++;
            if (!e)
                continue;
            char key[192];
            int len = snprintf(key, sizeof key, "%s%.*s", fams[f].prefix, (int)sub.n, sub.p);
            e->str(e->arg, key, (size_t)(len < (int)sizeof key ? len : (int)sizeof key - 1));
            emit_value(e, fams[f].id, &val);
        }
    }
    return n;
}

/* Counts, then emits, so map headers (MessagePack needs them first) are right. */
void vd_result_emit_context(const vd_emitter *e, vd_context *ctx)
{
    const vd_request *req = ctx->req;
    vd_value vals[VD_ATTR__COUNT];
    uint32_t n = 0;
    for (unsigned id = 0; id < VD_ATTR__COUNT; id++) {
        vals[id].kind = VD_VAL_MISSING;
        const char *name = vd_attr_info_get(id)->name;
        if (name[strlen(name) - 1] == '.')   /* url.query., attr., visitor.score. ...: below */
            continue;
        vd_attr_ref ref = { .id = (uint8_t)id, .sub = VD_STR_NULL };
        vd_context_get(ctx, &ref, &vals[id]);
        /* Strings may live in the context's scratch: none of these do
         * (only url.query values use it), so keeping them is safe. */
        if (vals[id].kind != VD_VAL_MISSING)
            n++;
    }
    /* url.query.NAME for each parameter of the landing URL, attr.NAME for
     * each caller attr; a name given twice is listed once, with the value
     * rules see (the first). */
    vd_attr_ref qref = { .id = VD_ATTR_URL_QUERY };
    vd_value probe;
    vd_context_get(ctx, &(vd_attr_ref){ .id = VD_ATTR_URL_HOST }, &probe);
    enum { MAXQ = 64, QNAME = 128 };
    char qnames[MAXQ][QNAME];
    size_t qlen[MAXQ];
    vd_str qraw[MAXQ];
    uint32_t nq = 0;
    if (ctx->has_url) {
        size_t pos = 0;
        vd_str k, v;
        while (nq < MAXQ && vd_url_query_next(ctx->url.query, &pos, &k, &v)) {
            if (!k.n)
                continue;
            size_t kn = vd_url_decode(k, qnames[nq], QNAME);
            bool dup = false;
            for (uint32_t j = 0; j < nq && !dup; j++)
                dup = qlen[j] == kn && memcmp(qnames[j], qnames[nq], kn) == 0;
            if (dup)
                continue;
            qlen[nq] = kn;
            qraw[nq] = v;
            nq++;
        }
    }
    uint32_t na = 0;
    for (unsigned i = 0; i < req->nattrs; i++) {
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = vd_str_eq(req->attrs[j].key, req->attrs[i].key);
        na += !dup;
    }
    uint32_t nv = emit_visitor(NULL, ctx);
    e->map(e->arg, n + nq + na + nv);
    for (unsigned id = 0; id < VD_ATTR__COUNT; id++) {
        if (vals[id].kind == VD_VAL_MISSING)
            continue;
        emit_cstr(e, vd_attr_info_get(id)->name);
        emit_value(e, id, &vals[id]);
    }
    for (uint32_t q = 0; q < nq; q++) {
        char key[160];
        int len = snprintf(key, sizeof key, "url.query.%.*s", (int)qlen[q], qnames[q]);
        e->str(e->arg, key, (size_t)(len < (int)sizeof key ? len : (int)sizeof key - 1));
        /* Look the value up by the decoded name, as a rule on
         * url.query.NAME does: the raw "utm%5Fsource" matches no key and
         * showed nil. A name cut by the buffer would match nothing, so a
         * key that long shows its own value. */
        vd_value qv;
        if (qlen[q] + 1 < QNAME) {
            qref.sub = vd_str_make(qnames[q], qlen[q]);
            vd_context_get(ctx, &qref, &qv);
        } else {
            qv.kind = VD_VAL_STR;
            qv.u.s = vd_str_make(ctx->qbuf, vd_url_decode(qraw[q], ctx->qbuf, sizeof ctx->qbuf));
        }
        emit_value(e, VD_ATTR_URL_QUERY, &qv);
    }
    for (unsigned i = 0; i < req->nattrs; i++) {
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = vd_str_eq(req->attrs[j].key, req->attrs[i].key);
        if (dup)
            continue;
        char key[160];
        int len = snprintf(key, sizeof key, "attr.%.*s", (int)req->attrs[i].key.n,
                           req->attrs[i].key.p);
        e->str(e->arg, key, (size_t)(len < (int)sizeof key ? len : (int)sizeof key - 1));
        emit_value(e, VD_ATTR_ATTR, &req->attrs[i].val);
    }
    emit_visitor(e, ctx);
}

static void emit_trace(const vd_emitter *e, const vd_ruleset *rs, const vd_decision *d,
                       const vd_eval *ev)
{
    uint32_t known = 0;
    for (unsigned i = 0; i < d->nslots; i++)
        if (d->slots[i].slot)
            known++;
    e->map(e->arg, known);
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (!c->slot)
            continue;
        emit_vstr(e, c->name);
        e->array(e->arg, c->slot->nrules);
        for (uint32_t r = 0; r < c->slot->nrules; r++) {
            const vd_rule *rule = &c->slot->rules[r];
            const vd_alloc_rule *ar = rule->bandit ? vd_alloc_find(d->alloc, rs, c->slot, r) : NULL;
            e->map(e->arg, rule->bandit ? 7 : 4);
            if (rule->bandit) {
                /* The weights this request's split used: learnt, or as written
                 * (exploring, or no computation for this ruleset yet). */
                EMIT_LIT(e, "allocate");
                EMIT_LIT(e, "bandit");
                EMIT_LIT(e, "learnt");
                e->boolean(e->arg, ar && ar->learnt);
                EMIT_LIT(e, "weights");
                e->array(e->arg, rule->nsplit);
                uint32_t prev = 0;
                for (uint32_t s = 0; s < rule->nsplit; s++) {
                    uint32_t up = ar && s < ar->narms ? ar->upto[s] : rule->split[s].upto;
                    e->f64(e->arg, ar && s < ar->narms ? ar->w[s] : (double)(up - prev) / 10000.0);
                    prev = up;
                }
            }
            EMIT_LIT(e, "segment");
            emit_id(e, vd_ruleset_segment_id(rs, rule->segment));
            EMIT_LIT(e, "variant");
            if (rule->nsplit) {
                e->array(e->arg, rule->nsplit);
                for (uint32_t s = 0; s < rule->nsplit; s++)
                    emit_id(e, c->slot->variants[rule->split[s].variant].id);
            } else {
                emit_id(e, c->slot->variants[rule->variant].id);
            }
            EMIT_LIT(e, "matched");
            int v = vd_eval_verdict(ev, rule->segment);
            if (v < 0)
                e->nil(e->arg);
            else
                e->boolean(e->arg, v == 1);
            EMIT_LIT(e, "chosen");
            e->boolean(e->arg, c->rule == (int32_t)r);
        }
    }
}

/* explain only: where the answering ruleset came from and how fresh it is
 * (one lock on the live info, not on the decide path). */
static void emit_ruleset_state(const vd_emitter *e, const vd_ruleset *rs)
{
    vd_live_info info;
    vd_live_get_info(&info);
    /* The info describes the newest ruleset; this request may still hold the
     * previous one for an instant after a swap. */
    bool same = strcmp(info.version, vd_ruleset_version(rs)) == 0;
    e->map(e->arg, 4);
    EMIT_LIT(e, "version");
    emit_cstr(e, vd_ruleset_version(rs));
    EMIT_LIT(e, "source");
    emit_cstr(e, same ? vd_source_name(info.source) : "previous");
    EMIT_LIT(e, "age");
    if (same)
        e->i64(e->arg, (int64_t)time(NULL) - info.loaded_at);
    else
        e->nil(e->arg);
    EMIT_LIT(e, "stale");
    e->boolean(e->arg, info.stale);
}

void vd_result_emit(const vd_emitter *e, const vd_ruleset *rs, const vd_decision *d,
                    vd_context *ctx, const vd_eval *ev, bool explain)
{
    /* `segments` only when the decision listed every match (the request
     * asked for it, or explain); `profile` only with a profile store. */
    const char *pst = vd_profile_status_name((vd_profile_status)d->profile);
    e->map(e->arg, (explain ? 6 : 3) + (d->complete ? 1 : 0) + (pst ? 1 : 0));
    if (pst) {
        EMIT_LIT(e, "profile");
        emit_cstr(e, pst);
    }
    EMIT_LIT(e, "version");
    emit_cstr(e, vd_ruleset_version(rs));

    /* A slot asked for twice is answered once (the decision marks the
     * repeats: a known slot by its slot, an unknown one by name). */
    EMIT_LIT(e, "slots");
    e->map(e->arg, d->nunique);
    /* Whole pre-encoded entries gathered and copied together: one call
     * and one reservation for a page's run of them. */
    vd_piece pieces[VD_MAX_SLOTS_PER_REQUEST];
    unsigned np = 0;
    bool whole = e->entries != NULL;
    for (unsigned i = 0; i < d->nslots; i++) {
        const vd_slot_choice *c = &d->slots[i];
        if (c->repeat)
            continue;
        if (whole && c->slot && !c->holdout) {
            const vd_piece pc = c->rule >= 0
                ? (vd_piece){ c->slot->rules[c->rule].entry_mp, c->slot->rules[c->rule].entry_mp_len }
                : (vd_piece){ c->variant->entry_mp, c->variant->entry_mp_len ? c->variant->entry_mp_len + 1 : 0 };
            if (pc.n) {
                pieces[np++] = pc;
                continue;
            }
        }
        if (np) {
            e->entries(e->arg, pieces, np);
            np = 0;
        }
        if (c->slot && !c->holdout && e->slot_entry) {
            /* Name, variant and payload copied in one piece (~400
             * instructions a slot written item by item). */
            vd_str seg = c->segment >= 0 ? vd_ruleset_segment_id(rs, (uint32_t)c->segment) : VD_STR_NULL;
            if (e->slot_entry(e->arg, c->variant, c->segment >= 0 ? &seg : NULL))
                continue;
        }
        if (c->slot)
            emit_id(e, c->slot->name);   /* the same bytes as asked */
        else
            emit_vstr(e, c->name);
        if (!c->slot) {
            e->map(e->arg, 1);
            EMIT_LIT(e, "error");
            EMIT_LIT(e, "unknown slot");
            continue;
        }
        e->map(e->arg, c->holdout ? 4 : 3);
        EMIT_LIT(e, "variant");
        emit_id(e, c->variant->id);
        if (c->holdout) {
            EMIT_LIT(e, "holdout");
            e->boolean(e->arg, true);
        }
        EMIT_LIT(e, "payload");
        e->payload(e->arg, c->variant);
        EMIT_LIT(e, "segment");
        if (c->segment >= 0)
            emit_id(e, vd_ruleset_segment_id(rs, (uint32_t)c->segment));
        else
            e->nil(e->arg);
    }
    if (np)
        e->entries(e->arg, pieces, np);

    if (d->complete) {
        EMIT_LIT(e, "segments");
        e->array(e->arg, d->nmatched);
        for (uint32_t i = 0; i < d->nmatched; i++)
            emit_id(e, vd_ruleset_segment_id(rs, d->matched[i]));
    }

    EMIT_LIT(e, "valid_until");
    if (d->valid_until == INT64_MAX)
        e->nil(e->arg);
    else
        e->i64(e->arg, d->valid_until);

    if (explain) {
        EMIT_LIT(e, "context");
        vd_result_emit_context(e, ctx);
        EMIT_LIT(e, "trace");
        emit_trace(e, rs, d, ev);
        EMIT_LIT(e, "ruleset");
        emit_ruleset_state(e, rs);
    }
}

void vd_result_emit_profile(const vd_emitter *e, const vd_profile_result *res, int64_t now)
{
    const vd_visitor *v = res->visitor;
    e->map(e->arg, 9);
    EMIT_LIT(e, "found");
    e->boolean(e->arg, res->found);
    EMIT_LIT(e, "known");
    e->boolean(e->arg, v && v->known);
    EMIT_LIT(e, "visits");
    e->i64(e->arg, v ? (int64_t)v->visit.visits : 0);
    EMIT_LIT(e, "first_seen");
    if (v && v->visit.visits)
        e->i64(e->arg, v->visit.first_seen);
    else
        e->nil(e->arg);
    EMIT_LIT(e, "last_seen");
    if (v && v->visit.visits)
        e->i64(e->arg, v->visit.last_seen);
    else
        e->nil(e->arg);
    uint32_t ns = 0;
    for (uint32_t i = 0; v && i < v->nscores; i++)
        ns += v->scores[i].st.t != 0 || v->scores[i].st.peak != 0;
    EMIT_LIT(e, "scores");
    e->map(e->arg, ns);
    for (uint32_t i = 0; v && i < v->nscores; i++) {
        const vd_visitor_score *sc = &v->scores[i];
        if (sc->st.t == 0 && sc->st.peak == 0)
            continue;
        emit_id(e, sc->id);
        e->map(e->arg, 2);
        EMIT_LIT(e, "value");
        e->f64(e->arg, vd_score_value_at(&sc->st, now, sc->half_life_s));
        EMIT_LIT(e, "peak");
        e->f64(e->arg, sc->st.peak);
    }
    EMIT_LIT(e, "events");
    e->map(e->arg, v ? v->nevents : 0);
    for (uint32_t i = 0; v && i < v->nevents; i++) {
        emit_vstr(e, v->events[i].name);
        e->i64(e->arg, (int64_t)v->events[i].n);
    }
    uint32_t nf = 0;
    for (uint32_t i = 0; v && i < v->nflags; i++)
        nf += v->flags[i].expires == 0 || v->flags[i].expires > now;
    EMIT_LIT(e, "flags");
    e->map(e->arg, nf);
    for (uint32_t i = 0; v && i < v->nflags; i++) {
        if (!(v->flags[i].expires == 0 || v->flags[i].expires > now))
            continue;
        emit_vstr(e, v->flags[i].name);
        if (v->flags[i].expires)
            e->i64(e->arg, v->flags[i].expires);
        else
            e->nil(e->arg);
    }
    EMIT_LIT(e, "exposures");
    e->map(e->arg, v ? v->nexposures : 0);
    for (uint32_t i = 0; v && i < v->nexposures; i++) {
        const vd_visitor_exposure *x = &v->exposures[i];
        emit_vstr(e, x->slot);
        e->map(e->arg, 4);
        EMIT_LIT(e, "variant");
        emit_vstr(e, x->variant);
        EMIT_LIT(e, "rule");
        emit_vstr(e, x->rule);
        EMIT_LIT(e, "ts");
        e->i64(e->arg, x->ts);
        EMIT_LIT(e, "converted");
        e->boolean(e->arg, x->converted);
    }
}
