/* fuzz_json.c — libFuzzer target for the definitions' JSON reader
 * (daemon/core/json.c), differential against jansson.
 *
 *   make fuzz FUZZ_SECONDS=60           # every target, or by hand:
 *   make build/fuzz/fuzz_json
 *   build/fuzz/fuzz_json -max_total_time=60 -dict=tests/fuzz/json.dict \
 *       /tmp/variantd-fuzz/json tests/fuzz/corpus/json
 *
 * The input is one document. Beyond "no crash, no leak, no UB", it checks
 * that:
 *   - vd_json_parse accepts exactly what jansson's json_loadb accepts with
 *     JSON_REJECT_DUPLICATES (the reader replaced it for definitions, so a
 *     document valid or invalid before stays so), but for one jansson bug:
 *     it skips a NUL byte right after a number or a literal ("[1\0]"),
 *     which this reader rejects as RFC 8259 says;
 *   - an accepted document dumps (vd_json_dump, compact) to the very bytes
 *     jansson's json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes for its
 *     own tree: same values, same member order, same escapes and numbers;
 *     vd_json_dump_len is that length;
 *   - every string of the tree is NUL-terminated at its length, holds no
 *     NUL and is valid UTF-8; lookups find every member;
 *   - a rejected document has a message, a line >= 1 and an offset within
 *     the input, and its line is jansson's;
 *   - vd_json_parse_each accepts and rejects the same, with the same error,
 *     and hands over the items of a top-level array in order (or the
 *     top-level object), each dumping to what jansson writes for it; an
 *     each() that stops at item k stops the reading there.
 * Replayed over tests/fuzz/corpus/json by `make unit` (replay_json). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k > n)
            return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

static void walk(const vd_json *v)
{
    switch (v->type) {
    case VD_JSON_STRING:
        CHECK(v->u.s[v->n] == '\0' && strlen(v->u.s) == v->n);
        CHECK(utf8_ok((const unsigned char *)v->u.s, v->n));
        CHECK(vd_json_str(v) == v->u.s && vd_json_strlen(v) == v->n);
        break;
    case VD_JSON_ARRAY:
        CHECK(vd_json_size(v) == v->n && vd_json_at(v, v->n) == NULL);
        for (uint32_t i = 0; i < v->n; i++) {
            CHECK(vd_json_at(v, i) == &v->u.items[i]);
            walk(&v->u.items[i]);
        }
        break;
    case VD_JSON_OBJECT:
        CHECK(vd_json_size(v) == v->n);
        for (uint32_t i = 0; i < v->n; i++) {
            const vd_json_member *m = &v->u.members[i];
            CHECK(m->key[m->klen] == '\0' && strlen(m->key) == m->klen);
            CHECK(utf8_ok((const unsigned char *)m->key, m->klen));
            CHECK(vd_json_get(v, m->key) == &m->val);   /* keys are unique */
            walk(&m->val);
        }
        break;
    case VD_JSON_NULL:
    case VD_JSON_TRUE:
    case VD_JSON_FALSE:
    case VD_JSON_INTEGER:
    case VD_JSON_REAL:
        break;
    default:
        CHECK(0);
    }
}

static bool same_dump(const vd_json *v, const json_t *j)
{
    size_t n = vd_json_dump_len(v);
    char *mine = malloc(n + 1);
    CHECK(mine);
    CHECK(vd_json_dump(v, mine) == mine + n);
    mine[n] = '\0';
    char *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(theirs);
    bool same = strlen(theirs) == n && memcmp(mine, theirs, n) == 0;
    free(mine);
    free(theirs);
    return same;
}

/* Items of a document jansson rejects: only those before the error. */
static int reject_item(void *arg, const vd_json *item, size_t index)
{
    (void)arg;
    (void)index;
    walk(item);
    return 0;
}

typedef struct each_ctx {
    const json_t *root;       /* jansson's tree */
    size_t seen, stop_at;
} each_ctx;

static int each_item(void *arg, const vd_json *item, size_t index)
{
    each_ctx *e = arg;
    walk(item);
    if (index == SIZE_MAX) {
        CHECK(json_is_object(e->root) && e->seen == 0);
        CHECK(same_dump(item, e->root));
    } else {
        CHECK(index == e->seen);
        CHECK(json_is_array(e->root) && index < json_array_size(e->root));
        CHECK(same_dump(item, json_array_get(e->root, index)));
    }
    e->seen++;
    return e->seen == e->stop_at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_json_doc doc;
    vd_json_error err;
    int rc = vd_json_parse((const char *)data, size, &doc, &err);
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    CHECK(rc == 0 || rc == -1);
    if (rc != 0 && j) {
        /* jansson 2.14 loses a NUL byte right after a number or a literal
         * (its lexer "ungets" the NUL, which its stream buffer then takes
         * for empty) and so accepts "[1\0]"; RFC 8259 does not. That is the
         * one difference allowed: without its NUL bytes, the input must
         * read as jansson read it. */
        CHECK(memchr(data, 0, size) != NULL);
        uint8_t *stripped = malloc(size);
        CHECK(stripped);
        size_t n = 0;
        for (size_t i = 0; i < size; i++)
            if (data[i])
                stripped[n++] = data[i];
        vd_json_doc d2;
        vd_json_error e2;
        CHECK(vd_json_parse((const char *)stripped, n, &d2, &e2) == 0);
        CHECK(same_dump(&d2.root, j));
        vd_json_doc_free(&d2);
        free(stripped);
        json_decref(j);
        return 0;
    }
    CHECK((rc == 0) == (j != NULL));
    if (rc == 0) {
        CHECK(doc.root.type == VD_JSON_OBJECT || doc.root.type == VD_JSON_ARRAY);
        walk(&doc.root);
        size_t n = vd_json_dump_len(&doc.root);
        char *mine = malloc(n + 1);
        CHECK(mine);
        CHECK(vd_json_dump(&doc.root, mine) == mine + n);
        mine[n] = '\0';
        char *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK(theirs);
        CHECK(strlen(theirs) == n && memcmp(mine, theirs, n) == 0);
        free(mine);
        free(theirs);
        vd_json_doc_free(&doc);
        CHECK(doc.blocks == NULL);
    } else {
        CHECK(err.text[0] != '\0');
        CHECK(err.line >= 1 && err.offset <= size);
        /* (jansson may have skipped a NUL and failed further on) */
        CHECK(err.line == je.line || memchr(data, 0, size));
        CHECK(doc.blocks == NULL);
    }
    /* Item by item: the whole document, then stopped after the first item. */
    if (j) {
        each_ctx e = { .root = j, .stop_at = SIZE_MAX };
        vd_json_error err2;
        CHECK(vd_json_parse_each((const char *)data, size, each_item, &e, &err2) == 0);
        CHECK(e.seen == (json_is_array(j) ? json_array_size(j) : 1));
        if (json_is_array(j) && json_array_size(j) > 1) {
            each_ctx one = { .root = j, .stop_at = 1 };
            CHECK(vd_json_parse_each((const char *)data, size, each_item, &one, &err2) == 1 && one.seen == 1);
        }
        json_decref(j);
    } else {
        vd_json_error err2;
        CHECK(vd_json_parse_each((const char *)data, size, reject_item, NULL, &err2) == -1);
        CHECK(err2.line == err.line && err2.column == err.column && err2.offset == err.offset);
        CHECK(strcmp(err2.text, err.text) == 0);
    }
    return 0;
}
