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
 *     document valid or invalid before stays so);
 *   - an accepted document dumps (vd_json_dump, compact) to the very bytes
 *     jansson's json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes for its
 *     own tree: same values, same member order, same escapes and numbers;
 *     vd_json_dump_len is that length;
 *   - every string of the tree is NUL-terminated at its length, holds no
 *     NUL and is valid UTF-8; lookups find every member;
 *   - a rejected document has a message, a line >= 1 and an offset within
 *     the input, and its line is jansson's.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_json_doc doc;
    vd_json_error err;
    int rc = vd_json_parse((const char *)data, size, &doc, &err);
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    CHECK(rc == 0 || rc == -1);
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
        CHECK(err.line == je.line);
        CHECK(doc.blocks == NULL);
    }
    if (j)
        json_decref(j);
    return 0;
}
