/* json_out.c — streaming JSON writer (see the header). */
#include "net/json_out.h"

#include "core/str.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void vd_json_init(vd_json *j, struct evbuffer *out)
{
    j->out = out;
    j->depth = 0;
    j->skipped = 0;
}

void vd_json_quote(struct evbuffer *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    char buf[512];
    size_t b = 0;
    buf[b++] = '"';
    for (size_t i = 0; i < n;) {
        if (b > sizeof buf - 16) {
            evbuffer_add(out, buf, b);
            b = 0;
        }
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            buf[b++] = (char)c;
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            buf[b++] = '\\';
            buf[b++] = (char)c;
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            const char *esc = NULL;
            switch (c) {
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default: break;
            }
            if (esc) {
                memcpy(buf + b, esc, 2);
                b += 2;
            } else {
                b += (size_t)snprintf(buf + b, 8, "\\u%04x", c);
            }
            i++;
            continue;
        }
        size_t len = vd_utf8_seq_len(p + i, n - i);
        if (len == 0) {
            memcpy(buf + b, "\\ufffd", 6);
            b += 6;
            i++;
        } else {
            memcpy(buf + b, p + i, len);
            b += len;
            i += len;
        }
    }
    buf[b++] = '"';
    evbuffer_add(out, buf, b);
}

/* Comma or colon before the next item of the innermost container. */
static void before_item(vd_json *j)
{
    if (j->depth == 0)
        return;
    vd_json_frame *f = &j->st[j->depth - 1];
    if (f->index > 0) {
        if (!f->is_map || (f->index & 1) == 0)
            evbuffer_add(j->out, ",", 1);
        else
            evbuffer_add(j->out, ":", 1);
    }
}

static void close_frame(vd_json *j);

/* One item finished: counted containers close themselves when full. */
static void after_item(vd_json *j)
{
    if (j->depth == 0)
        return;
    vd_json_frame *f = &j->st[j->depth - 1];
    f->index++;
    if (f->counted && --f->remaining == 0)
        close_frame(j);
}

static void close_frame(vd_json *j)
{
    vd_json_frame *f = &j->st[j->depth - 1];
    evbuffer_add(j->out, f->is_map ? "}" : "]", 1);
    j->depth--;
    after_item(j);
}

static void open_frame(vd_json *j, bool is_map, bool counted, uint32_t n)
{
    before_item(j);
    if (j->depth == VD_JSON_MAX_DEPTH) {
        /* Programming error, not input: the result and stats are shallow. */
        evbuffer_add(j->out, "null", 4);
        after_item(j);
        return;
    }
    evbuffer_add(j->out, is_map ? "{" : "[", 1);
    vd_json_frame *f = &j->st[j->depth++];
    f->is_map = is_map;
    f->counted = counted;
    f->index = 0;
    f->remaining = is_map ? n * 2 : n;
    if (counted && f->remaining == 0)
        close_frame(j);
}

void vd_json_obj(vd_json *j) { open_frame(j, true, false, 0); }
void vd_json_arr(vd_json *j) { open_frame(j, false, false, 0); }

void vd_json_end(vd_json *j)
{
    if (j->depth > 0)
        close_frame(j);
}

static void scalar(vd_json *j, const char *p, size_t n)
{
    before_item(j);
    evbuffer_add(j->out, p, n);
    after_item(j);
}

void vd_json_strn(vd_json *j, const char *p, size_t n)
{
    before_item(j);
    vd_json_quote(j->out, p ? p : "", p ? n : 0);
    after_item(j);
}

void vd_json_cstr(vd_json *j, const char *s) { vd_json_strn(j, s, s ? strlen(s) : 0); }
void vd_json_key(vd_json *j, const char *key) { vd_json_cstr(j, key); }

void vd_json_i64(vd_json *j, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    scalar(j, buf, (size_t)n);
}

void vd_json_u64(vd_json *j, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
    scalar(j, buf, (size_t)n);
}

void vd_json_f64(vd_json *j, double v)
{
    if (!isfinite(v)) {
        scalar(j, "null", 4);
        return;
    }
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    /* Shortest of %.15g/%.17g that reads back the same: 0.1, not 0.10000000000000001. */
    char shorter[40];
    int m = snprintf(shorter, sizeof shorter, "%.15g", v);
    if (strtod(shorter, NULL) == v)
        scalar(j, shorter, (size_t)m);
    else
        scalar(j, buf, (size_t)n);
}

void vd_json_bool(vd_json *j, bool v) { scalar(j, v ? "true" : "false", v ? 4 : 5); }
void vd_json_null(vd_json *j) { scalar(j, "null", 4); }
void vd_json_raw(vd_json *j, const char *p, size_t n) { scalar(j, p, n); }

/* ---- the emitter ---- */

static void e_map(void *a, uint32_t n) { open_frame(a, true, true, n); }
static void e_array(void *a, uint32_t n) { open_frame(a, false, true, n); }
static void e_str(void *a, const char *p, size_t n) { vd_json_strn(a, p, n); }
static void e_i64(void *a, int64_t v) { vd_json_i64(a, v); }
static void e_f64(void *a, double v) { vd_json_f64(a, v); }
static void e_bool(void *a, bool v) { vd_json_bool(a, v); }
static void e_nil(void *a) { vd_json_null(a); }
static void e_payload(void *a, const vd_variant *v)
{
    if (v->payload_json && v->payload_json_len)
        vd_json_raw(a, v->payload_json, v->payload_json_len);
    else
        vd_json_null(a);
}

/* A whole "NAME":{...} entry of a map: counts as its key and its value. */
static bool e_slot_entry(void *a, const vd_variant *v, const vd_str *segment)
{
    vd_json *j = a;
    if (!v->entry_json_len || j->depth == 0 || j->depth >= VD_JSON_MAX_DEPTH ||
        !j->st[j->depth - 1].is_map || (j->st[j->depth - 1].index & 1))
        return false;
    before_item(j);
    char buf[512];
    size_t sn = segment ? segment->n : 0;
    if (v->entry_json_len + sn + 8 <= sizeof buf) {
        /* One evbuffer_add: the entry, the segment id and the closing brace. */
        memcpy(buf, v->entry_json, v->entry_json_len);
        size_t n = v->entry_json_len;
        if (segment) {
            buf[n++] = '"';
            memcpy(buf + n, segment->p, sn);
            n += sn;
            buf[n++] = '"';
        } else {
            memcpy(buf + n, "null", 4);
            n += 4;
        }
        buf[n++] = '}';
        evbuffer_add(j->out, buf, n);
    } else {
        evbuffer_add(j->out, v->entry_json, v->entry_json_len);
        if (segment)
            vd_json_quote(j->out, segment->p ? segment->p : "", sn);
        else
            evbuffer_add(j->out, "null", 4);
        evbuffer_add(j->out, "}", 1);
    }
    vd_json_frame *f = &j->st[j->depth - 1];
    f->index++;                    /* the key */
    if (f->counted)
        f->remaining--;
    after_item(j);                 /* the value: may close the map */
    return true;
}

void vd_json_emitter(vd_json *j, vd_emitter *out)
{
    *out = (vd_emitter){ e_map, e_array, e_str, e_i64, e_f64, e_bool, e_nil, e_payload, j, NULL,
                         e_slot_entry, NULL };   /* no per-rule JSON entries (memory) */
}
