/* test_rpc_codec.c — the MessagePack emitter writes exactly what msgpack-c's
 * packer writes, at every size boundary of every type it emits; the request
 * reader takes bin that is UTF-8 as a string (and refuses bin that is not),
 * PHP's empty array as an empty map and a PHP list with gaps as slots. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/rpc_codec.h"

static void same_bytes(const msgpack_sbuffer *want, const msgpack_sbuffer *got, const char *what)
{
    if (want->size != got->size || memcmp(want->data, got->data, want->size) != 0)
        fail_msg("%s: emitter wrote %zu bytes, msgpack-c %zu, or different ones", what, got->size,
                 want->size);
}

static void test_ints_match_msgpack_c(void **state)
{
    (void)state;
    static const int64_t edges[] = {
        0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
        INT64_MAX, -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
        -2147483647LL, -2147483648LL, -2147483649LL, INT64_MIN, 1795000000, -1795000000,
    };
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        msgpack_sbuffer want, got;
        msgpack_sbuffer_init(&want);
        msgpack_sbuffer_init(&got);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
        msgpack_pack_int64(&pk, edges[i]);
        vd_emitter e;
        vd_msgpack_out mo = { .sb = &got };
        vd_msgpack_emitter(&mo, &e);
        e.i64(e.arg, edges[i]);
        assert_false(mo.failed);
        char what[64];
        snprintf(what, sizeof what, "int %lld", (long long)edges[i]);
        same_bytes(&want, &got, what);
        msgpack_sbuffer_destroy(&want);
        msgpack_sbuffer_destroy(&got);
    }
}

static void test_containers_strings_and_scalars_match_msgpack_c(void **state)
{
    (void)state;
    static const uint32_t lens[] = { 0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000 };
    char *text = malloc(70000);
    assert_non_null(text);
    for (size_t i = 0; i < 70000; i++)
        text[i] = (char)('a' + i % 26);
    msgpack_sbuffer want, got;
    msgpack_sbuffer_init(&want);
    msgpack_sbuffer_init(&got);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    vd_emitter e;
    vd_msgpack_out mo = { .sb = &got };
    vd_msgpack_emitter(&mo, &e);
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        msgpack_pack_map(&pk, lens[i]);
        e.map(e.arg, lens[i]);
        msgpack_pack_array(&pk, lens[i]);
        e.array(e.arg, lens[i]);
        msgpack_pack_str(&pk, lens[i]);
        msgpack_pack_str_body(&pk, text, lens[i]);
        e.str(e.arg, text, lens[i]);
    }
    static const double doubles[] = { 0.0, -0.0, 52.52, -13.4, 1e300, 0.1 };
    for (size_t i = 0; i < sizeof doubles / sizeof *doubles; i++) {
        msgpack_pack_double(&pk, doubles[i]);
        e.f64(e.arg, doubles[i]);
    }
    msgpack_pack_true(&pk);
    e.boolean(e.arg, true);
    msgpack_pack_false(&pk);
    e.boolean(e.arg, false);
    msgpack_pack_nil(&pk);
    e.nil(e.arg);
    assert_false(mo.failed);
    same_bytes(&want, &got, "maps, arrays, strings, doubles, bools, nil");
    /* A packer on the same buffer in between (the RPC envelope) interleaves. */
    msgpack_sbuffer_clear(&got);
    msgpack_packer pk2;
    msgpack_packer_init(&pk2, &got, msgpack_sbuffer_write);
    msgpack_pack_array(&pk2, 2);
    e.str(e.arg, "ab", 2);
    msgpack_pack_int(&pk2, 7);
    assert_int_equal(got.size, 1 + 3 + 1);
    assert_memory_equal(got.data, "\x92\xa2" "ab\x07", 5);
    msgpack_sbuffer_destroy(&want);
    msgpack_sbuffer_destroy(&got);
    free(text);
}


/* ---- request reading ---- */

typedef struct packed {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
} packed;

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_bin(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, s, n);
}

static void begin(packed *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static int finish(packed *p, vd_request *req, char *err, size_t cap)
{
    msgpack_zone_init(&p->zone, 1024);
    size_t off = 0;
    assert_int_equal(msgpack_unpack(p->sb.data, p->sb.size, &off, &p->zone, &p->obj),
                     MSGPACK_UNPACK_SUCCESS);
    err[0] = '\0';
    return vd_rpc_read_params(&p->obj, 32, req, err, cap);
}

static void done(packed *p)
{
    msgpack_zone_destroy(&p->zone);
    msgpack_sbuffer_destroy(&p->sb);
}

/* {"slots": ["s"], "ua": <bin bytes>} */
static int ua_as_bin(const char *bytes, size_t n, vd_request *req, char *err, size_t cap, packed *p)
{
    begin(p);
    msgpack_pack_map(&p->pk, 2);
    pk_str(&p->pk, "slots");
    msgpack_pack_array(&p->pk, 1);
    pk_str(&p->pk, "s");
    pk_bin(&p->pk, "ua", 2);
    pk_bin(&p->pk, bytes, n);
    return finish(p, req, err, cap);
}

static void test_bin_is_a_string_when_utf8(void **state)
{
    (void)state;
    static const struct { const char *bytes; size_t n; int ok; } cases[] = {
        { "Mozilla/5.0", 11, 1 },
        { "", 0, 1 },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 1 },   /* 2, 3 and 4 bytes */
        { "\xc0\xaf", 2, 0 },                       /* overlong '/' */
        { "\xe0\x80\xaf", 3, 0 },                   /* overlong, 3 bytes */
        { "\xed\xa0\x80", 3, 0 },                   /* a surrogate */
        { "\xf4\x90\x80\x80", 4, 0 },               /* above U+10FFFF */
        { "ab\xe2\x82", 4, 0 },                     /* cut short */
        { "\x80", 1, 0 },                           /* a lone continuation byte */
        { "\xff", 1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        packed p;
        vd_request req;
        char err[256];
        int rc = ua_as_bin(cases[i].bytes, cases[i].n, &req, err, sizeof err, &p);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(req.ua.n, cases[i].n);
            assert_memory_equal(req.ua.p, cases[i].bytes, cases[i].n);
            assert_int_equal(req.nslots, 1);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, "ua is binary that is not UTF-8");
        }
        done(&p);
    }
}

static void test_php_empty_arrays_and_gappy_lists(void **state)
{
    (void)state;
    packed p;
    vd_request req;
    char err[256];
    /* [{"slots": {0: "a", 2: "b"}, "attrs": []}] */
    begin(&p);
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_map(&p.pk, 2);
    pk_str(&p.pk, "slots");
    msgpack_pack_map(&p.pk, 2);
    msgpack_pack_uint32(&p.pk, 0);
    pk_str(&p.pk, "a");
    msgpack_pack_uint32(&p.pk, 2);
    pk_str(&p.pk, "b");
    pk_str(&p.pk, "attrs");
    msgpack_pack_array(&p.pk, 0);
    assert_int_equal(finish(&p, &req, err, sizeof err), 0);
    assert_int_equal(req.nslots, 2);
    assert_memory_equal(req.slots[0].p, "a", 1);
    assert_memory_equal(req.slots[1].p, "b", 1);
    assert_int_equal(req.nattrs, 0);
    done(&p);
    /* [[]] and []: an empty request map, refused for its missing slots. */
    for (int nested = 0; nested < 2; nested++) {
        begin(&p);
        msgpack_pack_array(&p.pk, nested ? 1 : 0);
        if (nested)
            msgpack_pack_array(&p.pk, 0);
        assert_int_equal(finish(&p, &req, err, sizeof err), -1);
        assert_string_equal(err, "slots is required (an array of slot names)");
        done(&p);
    }
    /* A slots map with a string key is no list. */
    begin(&p);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p.pk, "slots");
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p.pk, "x");
    pk_str(&p.pk, "a");
    assert_int_equal(finish(&p, &req, err, sizeof err), -1);
    assert_non_null(strstr(err, "integer keys"));
    done(&p);
    /* A negative key is not a list index either. */
    begin(&p);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p.pk, "slots");
    msgpack_pack_map(&p.pk, 1);
    msgpack_pack_int(&p.pk, -1);
    pk_str(&p.pk, "a");
    assert_int_equal(finish(&p, &req, err, sizeof err), -1);
    done(&p);
}

/* vd_rpc_peek_decide on every envelope form: msgid in each integer
 * encoding, the method as fixstr, str 8 and bin 8, with and without params;
 * the byte-pattern fast path and the general reader must give one verdict. */
static void test_peek_decide_every_envelope(void **state)
{
    (void)state;
    static const uint64_t ids[] = { 0, 5, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                                    (uint64_t)UINT32_MAX + 1 };
    const char *methods[] = { "decide", "explain", "decidf", "explai", "ping" };
    for (size_t ii = 0; ii < sizeof ids / sizeof ids[0]; ii++)
        for (int enc = 0; enc < 6; enc++)          /* fixint/cc..cf picked by size, d0..d3, cf */
            for (size_t mi = 0; mi < 5; mi++)
                for (int menc = 0; menc < 3; menc++)  /* fixstr, str 8, bin 8 */
                    for (int with_params = 0; with_params < 2; with_params++) {
                        uint8_t f[64];
                        size_t n = 0;
                        uint64_t id = ids[ii];
                        f[n++] = 0x94;
                        f[n++] = 0x00;
                        bool id_ok = id <= UINT32_MAX;
                        if (enc == 0) {               /* smallest unsigned form */
                            if (id < 128) f[n++] = (uint8_t)id;
                            else if (id < 256) { f[n++] = 0xcc; f[n++] = (uint8_t)id; }
                            else if (id < 65536) { f[n++] = 0xcd; f[n++] = (uint8_t)(id >> 8); f[n++] = (uint8_t)id; }
                            else if (id <= UINT32_MAX) {
                                f[n++] = 0xce;
                                for (int k = 3; k >= 0; k--) f[n++] = (uint8_t)(id >> (8 * k));
                            } else {
                                f[n++] = 0xcf;
                                for (int k = 7; k >= 0; k--) f[n++] = (uint8_t)(id >> (8 * k));
                            }
                        } else if (enc == 5) {        /* uint 64 */
                            f[n++] = 0xcf;
                            for (int k = 7; k >= 0; k--) f[n++] = (uint8_t)(id >> (8 * k));
                        } else {                      /* int 8/16/32/64 (d0..d3) */
                            unsigned bytes = 1u << (enc - 1);
                            if (bytes < 8 && id >= (1ull << (8 * bytes - 1)))
                                continue;             /* not representable as non-negative */
                            f[n++] = (uint8_t)(0xd0 + enc - 1);
                            for (int k = (int)bytes - 1; k >= 0; k--) f[n++] = (uint8_t)(id >> (8 * k));
                        }
                        size_t ml = strlen(methods[mi]);
                        if (menc == 0) f[n++] = (uint8_t)(0xa0 | ml);
                        else { f[n++] = menc == 1 ? 0xd9 : 0xc4; f[n++] = (uint8_t)ml; }
                        memcpy(f + n, methods[mi], ml);
                        n += ml;
                        size_t params_at = n;
                        if (with_params) {
                            f[n++] = 0x91;            /* [ {"slots": ["a"]} ] */
                            f[n++] = 0x81;
                            f[n++] = 0xa5;
                            memcpy(f + n, "slots", 5);
                            n += 5;
                            f[n++] = 0x91;
                            f[n++] = 0xa1;
                            f[n++] = 'a';
                        }
                        bool want = id_ok && mi < 2 && with_params;
                        uint32_t got_id = 0;
                        bool explain = false;
                        const uint8_t *params = NULL;
                        bool got = vd_rpc_peek_decide(f, n, &got_id, &explain, &params);
                        assert_int_equal(got, want);
                        if (want) {
                            assert_int_equal(got_id, (uint32_t)id);
                            assert_int_equal(explain, mi == 1);
                            assert_ptr_equal(params, f + params_at);
                        }
                    }
}

static void test_reply_head_matches_msgpack_c(void **state)
{
    (void)state;
    static const uint32_t ids[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, 16777216, UINT32_MAX };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_int(&pk, 1);
        msgpack_pack_uint32(&pk, ids[i]);
        msgpack_pack_nil(&pk);
        unsigned char b[VD_RPC_REPLY_HEAD_MAX];
        size_t n = vd_rpc_reply_head(b, ids[i]);
        assert_int_equal(n, sb.size);
        assert_memory_equal(b, sb.data, n);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Both readers of a request (msgpack-c's objects, and the frame's bytes in
 * place) fill the same request or give the same error. */
static void same_request(const packed *p, unsigned max_slots, const char *what)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(p->sb.data, p->sb.size, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS);
    vd_request a, b;
    char ea[256] = "", eb[256] = "";
    int ra = vd_rpc_read_params(&obj, max_slots, &a, ea, sizeof ea);
    const uint8_t *raw = (const uint8_t *)p->sb.data;
    int rb = vd_rpc_read_params_raw(raw, raw + p->sb.size, max_slots, &b, eb, sizeof eb);
    if (ra != rb || strcmp(ea, eb) != 0)
        fail_msg("%s: msgpack-c %d \"%s\", in place %d \"%s\"", what, ra, ea, rb, eb);
    if (ra == 0) {
        assert_int_equal(a.nslots, b.nslots);
        for (unsigned i = 0; i < a.nslots; i++) {
            assert_int_equal(a.slots[i].n, b.slots[i].n);
            assert_memory_equal(a.slots[i].p, b.slots[i].p, a.slots[i].n);
        }
        assert_int_equal(a.nattrs, b.nattrs);
        for (unsigned i = 0; i < a.nattrs; i++) {
            assert_int_equal(a.attrs[i].key.n, b.attrs[i].key.n);
            assert_memory_equal(a.attrs[i].key.p, b.attrs[i].key.p, a.attrs[i].key.n);
            assert_int_equal(a.attrs[i].val.kind, b.attrs[i].val.kind);
        }
        assert_int_equal(a.ua.n, b.ua.n);
        assert_int_equal(a.ip.n, b.ip.n);
        assert_int_equal(a.hints.model.n, b.hints.model.n);
        assert_int_equal(a.segments, b.segments);
    }
    msgpack_zone_destroy(&zone);
}

/* Every container size around the fixmap/fixarray boundary (0..17, the
 * 16-bit headers from 16 on) in every place a request has one: the params
 * array, the request map, slots (array, and map as a PHP list), attrs and
 * hints; both readers agree, under limits below and above the counts. */
static void test_in_place_reader_on_every_container_size(void **state)
{
    (void)state;
    char name[32];
    for (unsigned k = 0; k <= 17; k++) {
        for (int place = 0; place < 6; place++) {
            packed p;
            begin(&p);
            if (place == 0) {                       /* params array of k maps */
                msgpack_pack_array(&p.pk, k);
                for (unsigned i = 0; i < k; i++) {
                    msgpack_pack_map(&p.pk, 1);
                    pk_str(&p.pk, "slots");
                    msgpack_pack_array(&p.pk, 1);
                    pk_str(&p.pk, "s");
                }
            } else {
                msgpack_pack_array(&p.pk, 1);
                unsigned extra = place == 1 ? k : 0;  /* unknown keys: the map's size */
                msgpack_pack_map(&p.pk, 4 + extra);
                for (unsigned i = 0; i < extra; i++) {
                    snprintf(name, sizeof name, "x%u", i);
                    pk_str(&p.pk, name);
                    msgpack_pack_array(&p.pk, i % 3);
                    for (unsigned j = 0; j < i % 3; j++)
                        msgpack_pack_uint32(&p.pk, j);
                }
                pk_str(&p.pk, "slots");
                unsigned ns = place == 2 || place == 3 ? k : 1;
                if (place == 3) {                   /* a PHP list with gaps */
                    msgpack_pack_map(&p.pk, ns);
                    for (unsigned i = 0; i < ns; i++) {
                        msgpack_pack_uint32(&p.pk, 2 * i);
                        snprintf(name, sizeof name, "slot%u", i);
                        pk_str(&p.pk, name);
                    }
                } else {
                    msgpack_pack_array(&p.pk, ns);
                    for (unsigned i = 0; i < ns; i++) {
                        snprintf(name, sizeof name, "slot%u", i);
                        pk_str(&p.pk, name);
                    }
                }
                pk_str(&p.pk, "attrs");
                unsigned na = place == 4 ? k : 1;
                msgpack_pack_map(&p.pk, na);
                for (unsigned i = 0; i < na; i++) {
                    snprintf(name, sizeof name, "a%u", i);
                    pk_str(&p.pk, name);
                    msgpack_pack_uint32(&p.pk, i);
                }
                pk_str(&p.pk, "hints");
                unsigned nh = place == 5 ? k : 1;
                msgpack_pack_map(&p.pk, nh);
                for (unsigned i = 0; i < nh; i++) {
                    if (i + 1 == nh) {
                        pk_str(&p.pk, "sec-ch-ua-model");
                    } else {
                        snprintf(name, sizeof name, "sec-ch-other-%u", i);
                        pk_str(&p.pk, name);
                    }
                    pk_str(&p.pk, "Pixel 8");
                }
                pk_str(&p.pk, "ua");
                pk_str(&p.pk, "Mozilla/5.0");
            }
            for (unsigned max_slots = 1; max_slots <= 20; max_slots += 7) {
                char what[64];
                snprintf(what, sizeof what, "size %u, place %d, max-slots %u", k, place, max_slots);
                same_request(&p, max_slots, what);
            }
            msgpack_sbuffer_destroy(&p.sb);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ints_match_msgpack_c),
        cmocka_unit_test(test_containers_strings_and_scalars_match_msgpack_c),
        cmocka_unit_test(test_bin_is_a_string_when_utf8),
        cmocka_unit_test(test_php_empty_arrays_and_gappy_lists),
        cmocka_unit_test(test_reply_head_matches_msgpack_c),
        cmocka_unit_test(test_peek_decide_every_envelope),
        cmocka_unit_test(test_in_place_reader_on_every_container_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
