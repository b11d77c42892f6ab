/* counters.c — the commands that count exposures and conversions, and the
 * report read back from the counters. See counters.h and docs/LEARNING.md. */
#include "learn/counters.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* The scripts are embedded as written (the Makefile makes this object depend
 * on them), each followed by a NUL. */
__asm__(".section .rodata\n"
        ".global vd_learn_expose_lua\n"
        "vd_learn_expose_lua:\n"
        ".incbin \"daemon/learn/expose.lua\"\n"
        ".global vd_learn_expose_lua_end\n"
        "vd_learn_expose_lua_end:\n"
        ".byte 0\n"
        ".global vd_learn_convert_lua\n"
        "vd_learn_convert_lua:\n"
        ".incbin \"daemon/learn/convert.lua\"\n"
        ".global vd_learn_convert_lua_end\n"
        "vd_learn_convert_lua_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char vd_learn_expose_lua[], vd_learn_expose_lua_end[];
extern const char vd_learn_convert_lua[], vd_learn_convert_lua_end[];

vd_str vd_learn_expose_script(void)
{
    return vd_str_make(vd_learn_expose_lua, (size_t)(vd_learn_expose_lua_end - vd_learn_expose_lua));
}

vd_str vd_learn_convert_script(void)
{
    return vd_str_make(vd_learn_convert_lua, (size_t)(vd_learn_convert_lua_end - vd_learn_convert_lua));
}

void vd_learn_day(int64_t ts, char out[9])
{
    /* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
    int64_t z = (ts >= 0 ? ts : ts - 86399) / 86400 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    snprintf(out, 9, "%04d%02d%02d", (int)y, (int)m, (int)d);
}

static void arg(vd_learn_cmd *c, const char *p, size_t n)
{
    c->argv[c->argc] = p;
    c->len[c->argc] = n;
    c->argc++;
}

static void arg_s(vd_learn_cmd *c, vd_str s)
{
    arg(c, s.p ? s.p : "", s.n);
}

static void arg_c(vd_learn_cmd *c, const char *s)
{
    arg(c, s ? s : "", s ? strlen(s) : 0);
}

static void arg_num(vd_learn_cmd *c, int slot, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void arg_num(vd_learn_cmd *c, int slot, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->num[slot], sizeof c->num[slot], fmt, ap);
    va_end(ap);
    arg(c, c->num[slot], n > 0 ? (size_t)n : 0);
}

static void head(vd_learn_cmd *c, const char *sha, vd_str script, vd_str key)
{
    c->argc = 0;
    if (sha && *sha) {
        arg_c(c, "EVALSHA");
        arg_c(c, sha);
    } else {
        arg_c(c, "EVAL");
        arg_s(c, script);
    }
    arg_c(c, "1");
    arg_s(c, key);
}

void vd_learn_expose_cmd(vd_learn_cmd *c, const vd_learn_opts *o, vd_str visitor_key, vd_str slot,
                         vd_str rule, vd_str variant, int64_t ts, bool bandit, int64_t order_us)
{
    head(c, o->sha_expose, vd_learn_expose_script(), visitor_key);
    arg_c(c, o->ns);
    arg_s(c, slot);
    arg_s(c, rule);
    arg_s(c, variant);
    arg_num(c, 0, "%" PRId64, ts);
    arg_num(c, 1, "%" PRId64, o->window_s);
    vd_learn_day(ts, c->num[2]);
    arg(c, c->num[2], 8);
    arg_num(c, 3, "%" PRId64, o->ttl_s);
    arg_c(c, o->stream);
    arg_num(c, 4, "%ld", o->stream_maxlen);
    arg_c(c, bandit ? "bandit" : "");
    arg_num(c, 5, "%" PRId64, order_us);
}

int vd_learn_convert_cmd(vd_learn_cmd *c, const vd_learn_opts *o, vd_str visitor_key, int64_t ts,
                         double value, vd_str event, const vd_str *slots, unsigned nslots)
{
    if (nslots == 0 || nslots > VD_LEARN_MAX_GOAL_SLOTS)
        return -1;
    head(c, o->sha_convert, vd_learn_convert_script(), visitor_key);
    arg_c(c, o->ns);
    arg_num(c, 0, "%" PRId64, ts);
    arg_num(c, 1, "%" PRId64, o->window_s);
    arg_num(c, 2, "%.17g", value);
    vd_learn_day(ts, c->num[3]);
    arg(c, c->num[3], 8);
    arg_c(c, o->stream);
    arg_num(c, 4, "%ld", o->stream_maxlen);
    arg_s(c, event);
    for (unsigned i = 0; i < nslots; i++)
        arg_s(c, slots[i]);
    return 0;
}

static int load_one(redisContext *rc, vd_str script, char sha[41], char *err, size_t cap)
{
    redisReply *r = redisCommand(rc, "SCRIPT LOAD %b", script.p, script.n);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, cap, "SCRIPT LOAD: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = 0;
    freeReplyObject(r);
    return 0;
}

int vd_learn_load_scripts(redisContext *rc, char sha_expose[41], char sha_convert[41], char *err, size_t cap)
{
    if (load_one(rc, vd_learn_expose_script(), sha_expose, err, cap) < 0)
        return -1;
    return load_one(rc, vd_learn_convert_script(), sha_convert, err, cap);
}

/* ---- the report ------------------------------------------------------------- */

static vd_report_rule *find_rule(vd_report_slot *s, const char *key, size_t n, bool create)
{
    for (unsigned i = 0; i < s->nrules; i++)
        if (strlen(s->rules[i].key) == n && !memcmp(s->rules[i].key, key, n))
            return &s->rules[i];
    if (!create)
        return NULL;
    vd_report_rule *r = vd_realloc(s->rules, (s->nrules + 1) * sizeof *r);
    if (!r)
        return NULL;
    s->rules = r;
    r = &s->rules[s->nrules];
    memset(r, 0, sizeof *r);
    r->key = vd_strndup(key, n);
    if (!r->key)
        return NULL;
    s->nrules++;
    return r;
}

static vd_report_variant *find_variant(vd_report_rule *r, const char *id)
{
    for (unsigned i = 0; i < r->nvariants; i++)
        if (!strcmp(r->variants[i].id, id))
            return &r->variants[i];
    vd_report_variant *v = vd_realloc(r->variants, (r->nvariants + 1) * sizeof *v);
    if (!v)
        return NULL;
    r->variants = v;
    v = &r->variants[r->nvariants];
    memset(v, 0, sizeof *v);
    v->id = vd_strdup(id);
    if (!v->id)
        return NULL;
    r->nvariants++;
    return v;
}

void vd_report_mark_bandit(vd_report_slot *s, const char *rule)
{
    vd_report_rule *r = find_rule(s, rule, strlen(rule), false);
    if (r)
        r->bandit = true;
}

int vd_report_add_field(vd_report_slot *s, const char *field, const char *val)
{
    if (!strncmp(field, "u|", 2)) {
        static const char *const reasons[4] = { "none", "outside", "converted", "reset" };
        for (int i = 0; i < 4; i++)
            if (!strcmp(field + 2, reasons[i]))
                s->unattributed[i] += strtoull(val, NULL, 10);
        return 0;
    }
    char kind = field[0];
    if ((kind != 'e' && kind != 'c' && kind != 'v') || field[1] != '|')
        return 0;
    const char *rule = field + 2, *bar = strchr(rule, '|');
    if (!bar || !bar[1])
        return 0;
    vd_report_rule *r = find_rule(s, rule, (size_t)(bar - rule), true);
    vd_report_variant *v = r ? find_variant(r, bar + 1) : NULL;
    if (!v)
        return -1;
    if (kind == 'e')
        v->exposures += strtoull(val, NULL, 10);
    else if (kind == 'c')
        v->conversions += strtoull(val, NULL, 10);
    else
        v->value += strtod(val, NULL);
    return 0;
}

static int cmp_variant(const void *a, const void *b)
{
    return strcmp(((const vd_report_variant *)a)->id, ((const vd_report_variant *)b)->id);
}

static int cmp_rule(const void *a, const void *b)
{
    return strcmp(((const vd_report_rule *)a)->key, ((const vd_report_rule *)b)->key);
}

void vd_report_compute(vd_report_slot *s)
{
    if (s->nrules > 1)
        qsort(s->rules, s->nrules, sizeof *s->rules, cmp_rule);
    s->treated = (vd_arm_counts){ 0, 0 };
    s->control = (vd_arm_counts){ 0, 0 };
    s->has_holdout = false;
    for (unsigned i = 0; i < s->nrules; i++) {
        vd_report_rule *r = &s->rules[i];
        if (r->nvariants > 1)
            qsort(r->variants, r->nvariants, sizeof *r->variants, cmp_variant);
        vd_arm_counts arms[VD_LEARN_MAX_ARMS];
        double p[VD_LEARN_MAX_ARMS];
        unsigned n = r->nvariants < VD_LEARN_MAX_ARMS ? r->nvariants : VD_LEARN_MAX_ARMS;
        bool holdout = !strcmp(r->key, "holdout");
        for (unsigned k = 0; k < r->nvariants; k++) {
            vd_report_variant *v = &r->variants[k];
            v->rate = vd_rate(v->conversions, v->exposures);
            v->ci95 = vd_wilson95(v->conversions, v->exposures);
            if (k < n)
                arms[k] = (vd_arm_counts){ v->exposures, v->conversions };
            vd_arm_counts *g = holdout ? &s->control : &s->treated;
            g->exposures += v->exposures;
            g->conversions += v->conversions < v->exposures ? v->conversions : v->exposures;
        }
        if (holdout)
            s->has_holdout = s->control.exposures > 0;
        if (n > 0 && vd_p_best(arms, n, VD_LEARN_SEED, VD_LEARN_DRAWS, p) == 0)
            for (unsigned k = 0; k < n; k++)
                r->variants[k].p_best = p[k];
    }
    if (s->has_holdout)
        s->uplift = vd_uplift95(s->treated, s->control);
}

void vd_report_slot_free(vd_report_slot *s)
{
    for (unsigned i = 0; i < s->nrules; i++) {
        for (unsigned k = 0; k < s->rules[i].nvariants; k++)
            vd_free(s->rules[i].variants[k].id);
        vd_free(s->rules[i].variants);
        vd_free(s->rules[i].key);
    }
    vd_free(s->rules);
    vd_free(s->slot);
    memset(s, 0, sizeof *s);
}

static redisReply *cmd_err(redisContext *rc, redisReply *r, char *err, size_t cap, const char *what)
{
    if (r && r->type != REDIS_REPLY_ERROR)
        return r;
    snprintf(err, cap, "%s: %s", what, r ? r->str : rc->errstr[0] ? rc->errstr : "no reply");
    if (r)
        freeReplyObject(r);
    return NULL;
}

int vd_report_read(redisContext *rc, const char *ns, const char *slot, vd_report_slot *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->slot = vd_strdup(slot);
    if (!out->slot) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    redisReply *r = cmd_err(rc, redisCommand(rc, "GET %s:x:{%s}:epoch", ns, slot), err, cap, "GET epoch");
    if (!r)
        return -1;
    out->epoch = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    r = cmd_err(rc, redisCommand(rc, "HGETALL %s:x:{%s}:%lld:n", ns, slot, out->epoch), err, cap, "HGETALL");
    if (!r)
        return -1;
    int rc2 = 0;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < r->elements && rc2 == 0; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
                rc2 = vd_report_add_field(out, r->element[i]->str, r->element[i + 1]->str);
    freeReplyObject(r);
    if (rc2 < 0) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    r = cmd_err(rc, redisCommand(rc, "SMEMBERS %s:x:{%s}:bandit", ns, slot), err, cap, "SMEMBERS");
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                vd_report_mark_bandit(out, r->element[i]->str);
    freeReplyObject(r);
    vd_report_compute(out);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vd_report_slots(redisContext *rc, const char *ns, char ***names, size_t *n, char *err, size_t cap)
{
    *names = NULL;
    *n = 0;
    redisReply *r = cmd_err(rc, redisCommand(rc, "SMEMBERS %s:x:slots", ns), err, cap, "SMEMBERS");
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        *names = vd_calloc(r->elements, sizeof **names);
        for (size_t i = 0; *names && i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING && ((*names)[*n] = vd_strdup(r->element[i]->str)))
                (*n)++;
        if (*names && *n > 1)
            qsort(*names, *n, sizeof **names, cmp_name);
    }
    freeReplyObject(r);
    return 0;
}

void vd_report_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vd_free(names[i]);
    vd_free(names);
}

long long vd_report_reset(redisContext *rc, const char *ns, const char *slot, char *err, size_t cap)
{
    redisReply *r = cmd_err(rc, redisCommand(rc, "INCR %s:x:{%s}:epoch", ns, slot), err, cap, "INCR epoch");
    if (!r)
        return -1;
    long long e = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (e < 0)
        snprintf(err, cap, "INCR epoch: unexpected reply");
    /* The bandit set describes the current experiment's rules. */
    r = redisCommand(rc, "DEL %s:x:{%s}:bandit", ns, slot);
    if (r)
        freeReplyObject(r);
    return e;
}

static const char *const SIMPSON_NOTE =
    "bandit allocation: weights changed over time, so pooled rates can mislead when the base rate drifts "
    "(Simpson's paradox); compare against the holdout or a fixed split";

json_t *vd_report_slot_json(const vd_report_slot *s)
{
    json_t *slot = json_object(), *rules = json_object();
    json_object_set_new(slot, "rules", rules);
    for (unsigned i = 0; i < s->nrules; i++) {
        const vd_report_rule *r = &s->rules[i];
        json_t *jr = json_object(), *vs = json_object();
        json_object_set_new(jr, "variants", vs);
        for (unsigned k = 0; k < r->nvariants; k++) {
            const vd_report_variant *v = &r->variants[k];
            json_t *jv = json_pack("{s:I,s:I,s:f,s:f,s:[f,f],s:f}", "exposures", (json_int_t)v->exposures,
                                   "conversions", (json_int_t)v->conversions, "value", v->value, "rate", v->rate,
                                   "ci95", v->ci95.low, v->ci95.high, "p_best", v->p_best);
            json_object_set_new(vs, v->id, jv);
        }
        if (r->bandit) {
            json_object_set_new(jr, "allocate", json_string("bandit"));
            json_object_set_new(jr, "note", json_string(SIMPSON_NOTE));
        }
        json_object_set_new(rules, r->key, jr);
    }
    json_object_set_new(slot, "epoch", json_integer(s->epoch));
    json_object_set_new(slot, "unattributed",
                        json_pack("{s:I,s:I,s:I,s:I}", "no_exposure", (json_int_t)s->unattributed[0], "outside_window",
                                  (json_int_t)s->unattributed[1], "already_converted", (json_int_t)s->unattributed[2],
                                  "before_reset", (json_int_t)s->unattributed[3]));
    if (s->has_holdout) {
        json_object_set_new(
            slot, "uplift",
            json_pack("{s:f,s:[f,f],s:f,s:{s:I,s:I},s:{s:I,s:I}}", "diff", s->uplift.diff, "ci95", s->uplift.ci95.low,
                      s->uplift.ci95.high, "relative", s->uplift.relative, "personalized", "exposures",
                      (json_int_t)s->treated.exposures, "conversions", (json_int_t)s->treated.conversions, "holdout",
                      "exposures", (json_int_t)s->control.exposures, "conversions",
                      (json_int_t)s->control.conversions));
    }
    return slot;
}

void vd_report_print(const vd_report_slot *s, FILE *out)
{
    fprintf(out, "slot %s (experiment %lld)\n", s->slot ? s->slot : "?", s->epoch);
    fprintf(out, "  %-24s %-24s %10s %10s %12s %8s %19s %7s\n", "rule", "variant", "exposures", "conversions",
            "value", "rate", "95% interval", "P(best)");
    for (unsigned i = 0; i < s->nrules; i++) {
        const vd_report_rule *r = &s->rules[i];
        for (unsigned k = 0; k < r->nvariants; k++) {
            const vd_report_variant *v = &r->variants[k];
            fprintf(out, "  %-24s %-24s %10" PRIu64 " %10" PRIu64 " %12.2f %7.2f%% [%6.2f%%, %6.2f%%] %7.3f\n",
                    k == 0 ? r->key : "", v->id, v->exposures, v->conversions, v->value, 100 * v->rate,
                    100 * v->ci95.low, 100 * v->ci95.high, v->p_best);
        }
        if (r->bandit)
            fprintf(out, "  note: %s\n", SIMPSON_NOTE);
    }
    if (s->has_holdout)
        fprintf(out, "  uplift over holdout: %+.2f points [%+.2f, %+.2f] (%+.1f%%)\n", 100 * s->uplift.diff,
                100 * s->uplift.ci95.low, 100 * s->uplift.ci95.high, 100 * s->uplift.relative);
    uint64_t u = s->unattributed[0] + s->unattributed[1] + s->unattributed[2] + s->unattributed[3];
    if (u)
        fprintf(out,
                "  goal events not attributed: %" PRIu64 " (no exposure %" PRIu64 ", outside the window %" PRIu64
                ", already converted %" PRIu64 ", before a reset %" PRIu64 ")\n",
                u, s->unattributed[0], s->unattributed[1], s->unattributed[2], s->unattributed[3]);
}
