/* test_msgpack_scan.c — the frame pre-scanner: every format at its boundaries,
 * framing of split and pipelined input, the hostile-header limits, msgid peek,
 * and a cross-check against msgpack-c's own packer and unpacker. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "net/msgpack_scan.h"

static const vd_scan_limits big = { 1u << 20, 16 };

static vd_scan_result scan(const uint8_t *b, size_t n, const vd_scan_limits *lim, size_t *fl)
{
    return vd_msgpack_scan(b, n, lim, fl);
}

/* The object in b[0..n) is complete at exactly n bytes: OK there (also with
 * trailing garbage), NEED_MORE on every proper prefix, byte by byte resumable. */
static void expect_frame(const uint8_t *b, size_t n)
{
    size_t fl = 99;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(scan(b, k, &big, &fl), VD_SCAN_NEED_MORE);
        assert_int_equal(fl, 0);
    }
    assert_int_equal(scan(b, n, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, n);

    uint8_t *t = malloc(n + 3);
    assert_non_null(t);
    memcpy(t, b, n);
    memcpy(t + n, "\xc1\xdd\xff", 3);   /* whatever follows is the next frame's business */
    assert_int_equal(scan(t, n + 3, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, n);

    vd_scan_state st;
    vd_msgpack_scan_reset(&st);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(vd_msgpack_scan_resume(&st, t, k, &big, &fl), VD_SCAN_NEED_MORE);
    assert_int_equal(vd_msgpack_scan_resume(&st, t, n + 3, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, n);
    free(t);
}

/* Builds "header + payload of n bytes 'x'" into a fresh buffer. */
static uint8_t *with_payload(const uint8_t *hdr, size_t hn, size_t n, size_t *out_len)
{
    uint8_t *b = malloc(hn + n);
    assert_non_null(b);
    memcpy(b, hdr, hn);
    memset(b + hn, 'x', n);
    *out_len = hn + n;
    return b;
}

static void test_scalars(void **state)
{
    (void)state;
    static const struct { const char *b; size_t n; } c[] = {
        { "\xc0", 1 }, { "\xc2", 1 }, { "\xc3", 1 },                 /* nil false true */
        { "\x00", 1 }, { "\x7f", 1 }, { "\xe0", 1 }, { "\xff", 1 },   /* fixints */
        { "\xcc\xff", 2 }, { "\xcd\xff\xff", 3 }, { "\xce\x01\x02\x03\x04", 5 },
        { "\xcf\x01\x02\x03\x04\x05\x06\x07\x08", 9 },
        { "\xd0\x80", 2 }, { "\xd1\x80\x00", 3 }, { "\xd2\x80\x00\x00\x00", 5 },
        { "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9 },
        { "\xca\x3f\x80\x00\x00", 5 }, { "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9 },
        { "\xd4\x01\xaa", 3 }, { "\xd5\x01\xaa\xbb", 4 }, { "\xd6\xff\x00\x00\x00\x01", 6 },
        { "\xd7\xff\x00\x00\x00\x00\x00\x00\x00\x01", 10 },
        { "\xd8\x05" "0123456789abcdef", 18 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        expect_frame((const uint8_t *)c[i].b, c[i].n);
}

static void test_strings_bins_exts(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b;
    static const uint8_t fix31[] = { 0xbf }, fix0[] = { 0xa0 }, str8_32[] = { 0xd9, 32 },
        str8_0[] = { 0xd9, 0 }, str8_255[] = { 0xd9, 0xff }, str16_256[] = { 0xda, 1, 0 },
        str16_max[] = { 0xda, 0xff, 0xff }, str32[] = { 0xdb, 0, 1, 0, 0 },
        bin8[] = { 0xc4, 5 }, bin16[] = { 0xc5, 1, 0 }, bin32[] = { 0xc6, 0, 0, 0, 7 },
        bin8_0[] = { 0xc4, 0 }, ext8_0[] = { 0xc7, 0, 1 }, ext8[] = { 0xc7, 3, 0x80 },
        ext16[] = { 0xc8, 1, 0, 2 }, ext32[] = { 0xc9, 0, 0, 0, 17, 3 };
    static const struct { const uint8_t *h; size_t hn, n; } c[] = {
        { fix0, 1, 0 }, { fix31, 1, 31 }, { str8_32, 2, 32 }, { str8_0, 2, 0 },
        { str8_255, 2, 255 }, { str16_256, 3, 256 }, { str16_max, 3, 65535 },
        { str32, 5, 65536 }, { bin8_0, 2, 0 }, { bin8, 2, 5 }, { bin16, 3, 256 },
        { bin32, 5, 7 }, { ext8_0, 3, 0 }, { ext8, 3, 3 }, { ext16, 4, 256 },
        { ext32, 6, 17 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        b = with_payload(c[i].h, c[i].hn, c[i].n, &n);
        if (n < 400) {
            expect_frame(b, n);
        } else {   /* long ones: just the two ends, expect_frame is quadratic */
            size_t fl;
            assert_int_equal(scan(b, n - 1, &big, &fl), VD_SCAN_NEED_MORE);
            assert_int_equal(scan(b, c[i].hn, &big, &fl), VD_SCAN_NEED_MORE);
            assert_int_equal(scan(b, n, &big, &fl), VD_SCAN_OK);
            assert_int_equal(fl, n);
        }
        free(b);
    }
}

/* Appends n positive fixints after a header. */
static size_t container(uint8_t *out, const uint8_t *hdr, size_t hn, size_t items)
{
    memcpy(out, hdr, hn);
    for (size_t i = 0; i < items; i++)
        out[hn + i] = (uint8_t)(i & 0x7f);
    return hn + items;
}

static void test_containers(void **state)
{
    (void)state;
    uint8_t b[200];
    static const uint8_t fa0[] = { 0x90 }, fa15[] = { 0x9f }, a16_16[] = { 0xdc, 0, 16 },
        a16_0[] = { 0xdc, 0, 0 }, a32_0[] = { 0xdd, 0, 0, 0, 0 }, a32_3[] = { 0xdd, 0, 0, 0, 3 },
        fm0[] = { 0x80 }, fm15[] = { 0x8f }, m16_16[] = { 0xde, 0, 16 }, m16_0[] = { 0xde, 0, 0 },
        m32_0[] = { 0xdf, 0, 0, 0, 0 }, m32_2[] = { 0xdf, 0, 0, 0, 2 };
    static const struct { const uint8_t *h; size_t hn, items; } c[] = {
        { fa0, 1, 0 }, { fa15, 1, 15 }, { a16_16, 3, 16 }, { a16_0, 3, 0 }, { a32_0, 5, 0 },
        { a32_3, 5, 3 }, { fm0, 1, 0 }, { fm15, 1, 30 }, { m16_16, 3, 32 }, { m16_0, 3, 0 },
        { m32_0, 5, 0 }, { m32_2, 5, 4 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        expect_frame(b, container(b, c[i].h, c[i].hn, c[i].items));

    /* An array of 15 items is not complete at 14, a map of 15 pairs not at 29. */
    size_t fl;
    size_t n = container(b, fa15, 1, 14);
    assert_int_equal(scan(b, n, &big, &fl), VD_SCAN_NEED_MORE);
    n = container(b, fm15, 1, 29);
    assert_int_equal(scan(b, n, &big, &fl), VD_SCAN_NEED_MORE);

    /* Nested and mixed: {"a": [nil, {}, []], "b": [[1]]} */
    static const uint8_t nested[] = { 0x82, 0xa1, 'a', 0x93, 0xc0, 0x80, 0x90,
                                      0xa1, 'b', 0x91, 0x91, 0x01 };
    expect_frame(nested, sizeof nested);
}

static void pack_sample(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 42);
    msgpack_pack_str_with_body(&pk, "decide", 6);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 7);
    msgpack_pack_str_with_body(&pk, "slots", 5);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "home.hero", 9);
    msgpack_pack_str_with_body(&pk, "nav.promo", 9);
    msgpack_pack_str_with_body(&pk, "ip", 2);
    msgpack_pack_str_with_body(&pk, "1.0.0.7", 7);
    msgpack_pack_str_with_body(&pk, "ua", 2);
    static const char ua[] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                             "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    msgpack_pack_str_with_body(&pk, ua, sizeof ua - 1);
    msgpack_pack_str_with_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, 1795000000);
    msgpack_pack_str_with_body(&pk, "attrs", 5);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "loyalty_tier", 12);
    msgpack_pack_str_with_body(&pk, "gold", 4);
    msgpack_pack_str_with_body(&pk, "cart_value", 10);
    msgpack_pack_double(&pk, 129.5);
    msgpack_pack_str_with_body(&pk, "explain", 7);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_ext_with_body(&pk, "\x01\x02\x03\x04", 4, -1);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    pack_sample(&sb);
    assert_true(sb.size > 150);
    expect_frame((const uint8_t *)sb.data, sb.size);
    /* A zeroed state is a fresh one too. */
    vd_scan_state z;
    memset(&z, 0, sizeof z);
    size_t fl;
    assert_int_equal(vd_msgpack_scan_resume(&z, (const uint8_t *)sb.data, 40, &big, &fl),
                     VD_SCAN_NEED_MORE);
    assert_int_equal(vd_msgpack_scan_resume(&z, (const uint8_t *)sb.data, sb.size, &big, &fl),
                     VD_SCAN_OK);
    assert_int_equal(fl, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void test_pipelined(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    pack_sample(&sb);
    size_t first = sb.size;
    static const uint8_t ping[] = { 0x94, 0x00, 0x07, 0xa4, 'p', 'i', 'n', 'g', 0x90 };
    msgpack_sbuffer_write(&sb, (const char *)ping, sizeof ping);
    msgpack_sbuffer_write(&sb, (const char *)ping, 3);   /* a third frame, cut short */

    const uint8_t *b = (const uint8_t *)sb.data;
    size_t fl;
    assert_int_equal(scan(b, sb.size, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, first);
    assert_int_equal(scan(b + first, sb.size - first, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, sizeof ping);
    assert_int_equal(scan(b + first + sizeof ping, 3, &big, &fl), VD_SCAN_NEED_MORE);
    msgpack_sbuffer_destroy(&sb);
}

static void test_too_large(void **state)
{
    (void)state;
    const vd_scan_limits lim = { 65536, 16 };
    size_t fl = 7;

    /* The 5-byte bomb, and its siblings: rejected from the header alone. */
    assert_int_equal(scan((const uint8_t *)"\xdd\xff\xff\xff\xff", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(fl, 0);
    assert_int_equal(scan((const uint8_t *)"\xdf\x80\x00\x00\x00", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xdb\xff\xff\xff\xff", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xc6\x00\x01\x00\x00", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xc9\x00\x01\x00\x00", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    /* ... even with a huge limit, a map32 of 2^32-1 pairs needs 8 GB+ */
    const vd_scan_limits huge = { SIZE_MAX, 16 };
    assert_int_equal(scan((const uint8_t *)"\xdf\xff\xff\xff\xff", 5, &lim, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xdf\xff\xff\xff\xff", 5, &huge, &fl), VD_SCAN_NEED_MORE);
    /* A header still cut short is not judged yet. */
    assert_int_equal(scan((const uint8_t *)"\xdd\xff", 2, &lim, &fl), VD_SCAN_NEED_MORE);

    /* Exact boundaries: the frame may be max_bytes long, not one more. */
    const vd_scan_limits ten = { 10, 16 };
    uint8_t b[64];
    size_t n = container(b, (const uint8_t *)"\x99", 1, 9);              /* 10 bytes */
    assert_int_equal(scan(b, n, &ten, &fl), VD_SCAN_OK);
    assert_int_equal(fl, 10);
    assert_int_equal(scan(b, 1, &ten, &fl), VD_SCAN_NEED_MORE);
    b[0] = 0x9a;                                                           /* 11 needed */
    assert_int_equal(scan(b, 1, &ten, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\x85", 1, &ten, &fl), VD_SCAN_TOO_LARGE); /* 1+10 */
    assert_int_equal(scan((const uint8_t *)"\x84", 1, &ten, &fl), VD_SCAN_NEED_MORE); /* 1+8 */
    assert_int_equal(scan((const uint8_t *)"\xa9", 1, &ten, &fl), VD_SCAN_NEED_MORE); /* 1+9 */
    assert_int_equal(scan((const uint8_t *)"\xaa", 1, &ten, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xd9\x08", 2, &ten, &fl), VD_SCAN_NEED_MORE);
    assert_int_equal(scan((const uint8_t *)"\xd9\x09", 2, &ten, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xc7\x07", 2, &ten, &fl), VD_SCAN_NEED_MORE);
    assert_int_equal(scan((const uint8_t *)"\xc7\x08", 2, &ten, &fl), VD_SCAN_TOO_LARGE);
    /* Items still owed count: [str(7), 1] is 1+8+1 = 10, [str(8), 1] 11. */
    assert_int_equal(scan((const uint8_t *)"\x92\xa7", 2, &ten, &fl), VD_SCAN_NEED_MORE);
    assert_int_equal(scan((const uint8_t *)"\x92\xa8", 2, &ten, &fl), VD_SCAN_TOO_LARGE);
    /* A fixed-size scalar past the limit, and a frame longer than it. */
    const vd_scan_limits eight = { 8, 16 };
    assert_int_equal(scan((const uint8_t *)"\xcf", 1, &eight, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xcb", 1, &eight, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xd8", 1, &eight, &fl), VD_SCAN_TOO_LARGE);
    assert_int_equal(scan((const uint8_t *)"\xdb", 1, &(vd_scan_limits){ 4, 16 }, &fl),
                     VD_SCAN_TOO_LARGE);   /* header alone is 5 bytes */
    const vd_scan_limits zero = { 0, 16 };
    assert_int_equal(scan((const uint8_t *)"\xc0", 1, &zero, &fl), VD_SCAN_TOO_LARGE);
    const vd_scan_limits one = { 1, 16 };
    assert_int_equal(scan((const uint8_t *)"\xc0", 1, &one, &fl), VD_SCAN_OK);
    assert_int_equal(scan((const uint8_t *)"", 0, &one, &fl), VD_SCAN_NEED_MORE);
}

static size_t nest(uint8_t *b, unsigned depth, uint8_t inner)
{
    for (unsigned i = 0; i < depth; i++)
        b[i] = 0x91;
    b[depth] = inner;
    return depth + 1u;
}

static void test_depth(void **state)
{
    (void)state;
    uint8_t b[128];
    size_t fl;
    /* 16 arrays around a scalar: depth 16 */
    assert_int_equal(scan(b, nest(b, 16, 0x01), &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, 17);
    /* 16 arrays around an empty array: depth 17, even though it holds nothing */
    assert_int_equal(scan(b, nest(b, 16, 0x90), &big, &fl), VD_SCAN_TOO_DEEP);
    assert_int_equal(scan(b, nest(b, 17, 0x01), &big, &fl), VD_SCAN_TOO_DEEP);
    assert_int_equal(scan(b, nest(b, 16, 0x80), &big, &fl), VD_SCAN_TOO_DEEP);
    assert_int_equal(scan(b, nest(b, 16, 0xde), &big, &fl), VD_SCAN_TOO_DEEP);  /* from its first byte */
    /* Width does not count as depth: [[1],[1],...] 20 siblings at depth 2. */
    uint8_t w[64];
    w[0] = 0xdc; w[1] = 0; w[2] = 20;
    for (int i = 0; i < 20; i++) { w[3 + 2 * i] = 0x91; w[4 + 2 * i] = 0x01; }
    const vd_scan_limits two = { 1024, 2 };
    assert_int_equal(scan(w, 43, &two, &fl), VD_SCAN_OK);
    assert_int_equal(fl, 43);
    const vd_scan_limits d0 = { 1024, 0 };
    assert_int_equal(scan((const uint8_t *)"\x01", 1, &d0, &fl), VD_SCAN_OK);
    assert_int_equal(scan((const uint8_t *)"\x90", 1, &d0, &fl), VD_SCAN_TOO_DEEP);
    /* Limits above the ceiling are clamped to VD_SCAN_MAX_DEPTH. */
    const vd_scan_limits deep = { 1024, 1000 };
    assert_int_equal(scan(b, nest(b, VD_SCAN_MAX_DEPTH, 0x01), &deep, &fl), VD_SCAN_OK);
    assert_int_equal(scan(b, nest(b, VD_SCAN_MAX_DEPTH + 1, 0x01), &deep, &fl), VD_SCAN_TOO_DEEP);
}

static void test_invalid(void **state)
{
    (void)state;
    size_t fl = 3;
    assert_int_equal(scan((const uint8_t *)"\xc1", 1, &big, &fl), VD_SCAN_INVALID);
    assert_int_equal(fl, 0);
    assert_int_equal(scan((const uint8_t *)"\x93\x01\x02\xc1", 4, &big, &fl), VD_SCAN_INVALID);
    assert_int_equal(scan((const uint8_t *)"\x81\xc1\x01", 3, &big, &fl), VD_SCAN_INVALID);
    /* 0xc1 as payload bytes is just data. */
    assert_int_equal(scan((const uint8_t *)"\xa2\xc1\xc1", 3, &big, &fl), VD_SCAN_OK);
    assert_int_equal(scan((const uint8_t *)"\xcc\xc1", 2, &big, &fl), VD_SCAN_OK);
    /* After a complete frame, 0xc1 belongs to the next one. */
    assert_int_equal(scan((const uint8_t *)"\x01\xc1", 2, &big, &fl), VD_SCAN_OK);
    assert_int_equal(fl, 1);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(vd_scan_result_name(VD_SCAN_OK), "ok");
    assert_string_equal(vd_scan_result_name(VD_SCAN_NEED_MORE), "need_more");
    assert_string_equal(vd_scan_result_name(VD_SCAN_TOO_LARGE), "too_large");
    assert_string_equal(vd_scan_result_name(VD_SCAN_TOO_DEEP), "too_deep");
    assert_string_equal(vd_scan_result_name(VD_SCAN_INVALID), "invalid");
    assert_string_equal(vd_scan_result_name((vd_scan_result)42), "unknown");
}

static bool peek(const char *b, size_t n, uint32_t *id)
{
    *id = 0xdeadbeef;
    return vd_msgpack_peek_msgid((const uint8_t *)b, n, id);
}

static void test_peek_msgid(void **state)
{
    (void)state;
    uint32_t id;
    assert_true(peek("\x94\x00\x07\xa6" "decide", 10, &id));   assert_int_equal(id, 7);
    assert_true(peek("\x94\x00\x07", 3, &id));                  assert_int_equal(id, 7);
    assert_true(peek("\x94\x00\x07\xc1\xdd\xff", 6, &id));      assert_int_equal(id, 7);
    assert_true(peek("\x92\x00\x00", 3, &id));                  assert_int_equal(id, 0);
    assert_true(peek("\x94\x00\xcc\xff", 4, &id));              assert_int_equal(id, 255);
    assert_true(peek("\x94\x00\xcd\x12\x34", 5, &id));          assert_int_equal(id, 0x1234);
    assert_true(peek("\x94\x00\xce\xff\xff\xff\xff", 7, &id));  assert_int_equal(id, UINT32_MAX);
    assert_true(peek("\x94\x00\xcf\x00\x00\x00\x00\xff\xff\xff\xff", 11, &id));
    assert_int_equal(id, UINT32_MAX);
    assert_true(peek("\x94\x00\xd2\x00\x00\x00\x05", 7, &id));  assert_int_equal(id, 5);
    assert_true(peek("\x94\x00\xd0\x7f", 4, &id));              assert_int_equal(id, 127);
    assert_true(peek("\x94\xcc\x00\x09", 4, &id));              assert_int_equal(id, 9);  /* 0 as uint8 */
    assert_true(peek("\x94\xd3\x00\x00\x00\x00\x00\x00\x00\x00\x09", 11, &id));
    assert_int_equal(id, 9);
    assert_true(peek("\xdc\x00\x04\x00\x2a", 5, &id));          assert_int_equal(id, 42);
    assert_true(peek("\xdd\x00\x00\x00\x04\x00\x2a", 7, &id));  assert_int_equal(id, 42);
    assert_true(peek("\xdd\xff\xff\xff\xff\x00\x2a", 7, &id));  assert_int_equal(id, 42); /* the bomb still gets its answer */

    assert_false(peek("\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 11, &id)); /* 2^32 */
    assert_int_equal(id, 0xdeadbeef);
    assert_false(peek("\x94\x00\xd0\xff", 4, &id));             /* -1 */
    assert_false(peek("\x94\x00\xff", 3, &id));                 /* negative fixint */
    assert_false(peek("\x94\x00\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 11, &id));
    assert_false(peek("\x94\x01\x07", 3, &id));                 /* a response, not a request */
    assert_false(peek("\x93\x02\xa4" "ping", 7, &id));          /* notification */
    assert_false(peek("\x94\xd0\xff\x07", 4, &id));             /* type -1 */
    assert_false(peek("\x94\x00\xa1" "7", 4, &id));             /* msgid is a string */
    assert_false(peek("\x94\x00\xc3", 3, &id));                 /* msgid is a bool */
    assert_false(peek("\x94\x00\xca\x40\xe0\x00\x00", 7, &id)); /* msgid is a float */
    assert_false(peek("\x91\x00", 2, &id));                     /* one element only */
    assert_false(peek("\x91\x00\x07", 3, &id));                 /* the 7 is the next frame's */
    assert_false(peek("\xdc\x00\x01\x00\x07", 5, &id));
    assert_false(peek("\x90", 1, &id));
    assert_false(peek("\x94\x00", 2, &id));                     /* cut short */
    assert_false(peek("\x94\x00\xce\x00\x00\x00", 6, &id));
    assert_false(peek("\x94", 1, &id));
    assert_false(peek("\xdc\x00", 2, &id));
    assert_false(peek("\xdd\x00\x00\x00", 4, &id));
    assert_false(peek("", 0, &id));
    assert_false(peek("\x84\x00\x07", 3, &id));                 /* a map */
    assert_false(peek("\x00\x07", 2, &id));
    assert_int_equal(id, 0xdeadbeef);
}

/* ---- cross-check against msgpack-c ---------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;    /* xorshift64*: fixed seed, reproducible */
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

static size_t rnd_len(void)
{
    static const size_t edge[] = { 0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000 };
    if (rnd_below(8) == 0)
        return edge[rnd_below(sizeof edge / sizeof edge[0])];
    return rnd_below(40);
}

static void pack_random(msgpack_packer *pk, unsigned depth)
{
    static char blob[70000];   /* contents do not matter to the framing */
    unsigned pick = (unsigned)rnd_below(depth < 6 ? 16 : 13);
    switch (pick) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: if (rnd() & 1) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
    case 2: msgpack_pack_uint64(pk, rnd() >> rnd_below(64)); break;
    case 3: msgpack_pack_int64(pk, -(int64_t)(rnd() >> (1 + rnd_below(63)))); break;
    case 4: msgpack_pack_float(pk, (float)rnd_below(1000) / 7.0f); break;
    case 5: msgpack_pack_double(pk, (double)rnd() / 3.0); break;
    case 6: case 7: msgpack_pack_str_with_body(pk, blob, rnd_len()); break;
    case 8: msgpack_pack_bin_with_body(pk, blob, rnd_len()); break;
    case 9: {                                                  /* old raw headers */
        size_t n = rnd_len();
        msgpack_pack_v4raw(pk, n);
        msgpack_pack_v4raw_body(pk, blob, n);
        break;
    }
    case 10: {
        size_t n = rnd_len() % 300;
        if (n == 0) n = (size_t)1 << rnd_below(5);               /* fixext 1..16 */
        msgpack_pack_ext_with_body(pk, blob, n, (int8_t)rnd());
        break;
    }
    case 11: msgpack_pack_int8(pk, (int8_t)rnd()); break;
    case 12: msgpack_pack_uint16(pk, (uint16_t)rnd()); break;
    case 13: case 14: {
        size_t n = rnd_below(8) == 0 ? 14 + rnd_below(6) : rnd_below(5);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            pack_random(pk, depth + 1);
        break;
    }
    default: {
        size_t n = rnd_below(8) == 0 ? 14 + rnd_below(6) : rnd_below(4);
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < 2 * n; i++)
            pack_random(pk, depth + 1);
        break;
    }
    }
}

static void test_cross_check_packed(void **state)
{
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const vd_scan_limits lim = { 16u << 20, 16 };
    size_t maxsize = 0;
    for (int it = 0; it < 50000; it++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_random(&pk, 0);
        size_t n = sb.size;
        if (n > maxsize) maxsize = n;
        msgpack_pack_array(&pk, 3);   /* a pipelined follower must not change frame_len */

        size_t fl;
        assert_int_equal(vd_msgpack_scan((const uint8_t *)sb.data, sb.size, &lim, &fl), VD_SCAN_OK);
        assert_int_equal(fl, n);
        assert_int_equal(vd_msgpack_scan((const uint8_t *)sb.data, n - 1, &lim, &fl),
                         VD_SCAN_NEED_MORE);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&up, sb.data, n, &off), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, n);
    }
    assert_true(maxsize > 65536);   /* the generator did reach the 32-bit headers */
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_cross_check_random_bytes(void **state)
{
    (void)state;
    /* Byte pool biased towards headers and small values so frames often complete. */
    static const uint8_t pool[] = { 0x00, 0x05, 0x7f, 0x80, 0x81, 0x82, 0x8f, 0x90, 0x91,
        0x92, 0x9f, 0xa0, 0xa1, 0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5,
        0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff };
    rng_state = 0xD1B54A32D192ED03ULL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint8_t b[48];
    unsigned seen[5] = { 0 };
    for (int it = 0; it < 300000; it++) {
        size_t n = 1 + rnd_below(sizeof b);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            b[i] = (r & 3) ? (uint8_t)(r >> 8) % 4 : pool[(r >> 8) % sizeof pool];
            if ((r & 3) == 1) b[i] = (uint8_t)(r >> 16);
        }
        /* A limit near n: whatever the headers say, msgpack-c allocates little
         * (and some slack, or nothing incomplete could ever fit: NEED_MORE). */
        const vd_scan_limits lim = { n + rnd_below(24), 16 };
        size_t fl, off = 0;
        vd_scan_result r = vd_msgpack_scan(b, n, &lim, &fl);
        seen[r]++;
        /* Fed in random chunks, the resumable form must agree. */
        vd_scan_state st;
        vd_msgpack_scan_reset(&st);
        size_t have = 0, fl2;
        vd_scan_result r2;
        do {
            have += 1 + rnd_below(8);
            if (have > n) have = n;
            r2 = vd_msgpack_scan_resume(&st, b, have, &lim, &fl2);
        } while (r2 == VD_SCAN_NEED_MORE && have < n);
        assert_int_equal(r2, r);
        assert_int_equal(fl2, fl);
        if (r == VD_SCAN_OK) {
            assert_true(fl >= 1 && fl <= n);
            assert_int_equal(msgpack_unpack_next(&up, (const char *)b, fl, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(off, fl);
        } else if (r == VD_SCAN_NEED_MORE) {
            assert_int_equal(msgpack_unpack_next(&up, (const char *)b, n, &off),
                             MSGPACK_UNPACK_CONTINUE);
        } else if (r == VD_SCAN_INVALID) {
            assert_int_equal(msgpack_unpack_next(&up, (const char *)b, n, &off),
                             MSGPACK_UNPACK_PARSE_ERROR);
        }
    }
    printf("random bytes: ok %u need_more %u too_large %u too_deep %u invalid %u\n",
           seen[0], seen[1], seen[2], seen[3], seen[4]);
    for (int i = VD_SCAN_OK; i <= VD_SCAN_INVALID; i++)
        if (i != VD_SCAN_TOO_DEEP)
            assert_true(seen[i] > 1000);   /* every branch was really exercised */
    msgpack_unpacked_destroy(&up);
}

/* ---- differential check against the earlier scanner ----
 * The switch-based scanner the table-driven one replaced (commit a70c535),
 * verbatim but renamed: same results, frame lengths and resumable states on
 * every type byte and on random frames, limits and chunkings. */
enum item_kind { K_INVALID, K_SCALAR, K_BYTES, K_ARRAY, K_MAP };

typedef struct item_type {
    enum item_kind kind;
    unsigned lenk;       /* bytes of the big-endian length/count field after the type byte */
    unsigned extra;      /* bytes between that field and the payload (ext type byte) */
    uint32_t inline_n;   /* payload length / count when lenk == 0 */
} item_type;

static item_type ref_classify(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0) return (item_type){ K_SCALAR, 0, 0, 0 };   /* fixint */
    if (b <= 0x8f) return (item_type){ K_MAP, 0, 0, b & 0x0fu };
    if (b <= 0x9f) return (item_type){ K_ARRAY, 0, 0, b & 0x0fu };
    if (b <= 0xbf) return (item_type){ K_BYTES, 0, 0, b & 0x1fu };           /* fixstr */
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return (item_type){ K_SCALAR, 0, 0, 0 };
    case 0xc4: return (item_type){ K_BYTES, 1, 0, 0 };                      /* bin 8/16/32 */
    case 0xc5: return (item_type){ K_BYTES, 2, 0, 0 };
    case 0xc6: return (item_type){ K_BYTES, 4, 0, 0 };
    case 0xc7: return (item_type){ K_BYTES, 1, 1, 0 };                      /* ext 8/16/32 */
    case 0xc8: return (item_type){ K_BYTES, 2, 1, 0 };
    case 0xc9: return (item_type){ K_BYTES, 4, 1, 0 };
    case 0xca: return (item_type){ K_SCALAR, 0, 0, 4 };                     /* float 32/64 */
    case 0xcb: return (item_type){ K_SCALAR, 0, 0, 8 };
    case 0xcc: case 0xd0: return (item_type){ K_SCALAR, 0, 0, 1 };          /* (u)int 8..64 */
    case 0xcd: case 0xd1: return (item_type){ K_SCALAR, 0, 0, 2 };
    case 0xce: case 0xd2: return (item_type){ K_SCALAR, 0, 0, 4 };
    case 0xcf: case 0xd3: return (item_type){ K_SCALAR, 0, 0, 8 };
    case 0xd4: return (item_type){ K_SCALAR, 0, 1, 1 };                     /* fixext 1..16 */
    case 0xd5: return (item_type){ K_SCALAR, 0, 1, 2 };
    case 0xd6: return (item_type){ K_SCALAR, 0, 1, 4 };
    case 0xd7: return (item_type){ K_SCALAR, 0, 1, 8 };
    case 0xd8: return (item_type){ K_SCALAR, 0, 1, 16 };
    case 0xd9: return (item_type){ K_BYTES, 1, 0, 0 };                      /* str 8/16/32 */
    case 0xda: return (item_type){ K_BYTES, 2, 0, 0 };
    case 0xdb: return (item_type){ K_BYTES, 4, 0, 0 };
    case 0xdc: return (item_type){ K_ARRAY, 2, 0, 0 };
    case 0xdd: return (item_type){ K_ARRAY, 4, 0, 0 };
    case 0xde: return (item_type){ K_MAP, 2, 0, 0 };
    case 0xdf: return (item_type){ K_MAP, 4, 0, 0 };
    default:   return (item_type){ K_INVALID, 0, 0, 0 };                    /* 0xc1 */
    }
}

static uint64_t ref_read_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static vd_scan_result ref_scan_resume(vd_scan_state *st, const uint8_t *buf, size_t len,
                                      const vd_scan_limits *lim, size_t *frame_len)
{
    unsigned max_depth = lim->max_depth < VD_SCAN_MAX_DEPTH ? lim->max_depth : VD_SCAN_MAX_DEPTH;
    uint64_t max = lim->max_bytes;

    *frame_len = 0;
    if (st->sp == 0 || st->sp > VD_SCAN_MAX_DEPTH + 1)
        vd_msgpack_scan_reset(st);   /* a zeroed (or nonsense) state starts a frame */

    /* The state in locals: the frame's bytes are uint8_t, which may alias
     * anything, so through st every field would be reloaded after each
     * byte read (twice the instructions per item). Written back on return. */
    size_t pos = st->pos;
    uint64_t pending = st->pending;
    unsigned sp = st->sp;
    uint64_t *stack = st->stack;
    vd_scan_result r = VD_SCAN_OK;

    while (sp > 0) {
        /* Guards the invariant even if the caller changed the limits between calls. */
        if ((uint64_t)pos > max || pending > max - pos) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        uint64_t budget = max - pos - pending;
        if (pos >= len) {
            r = VD_SCAN_NEED_MORE;
            break;
        }

        const uint8_t *p = buf + pos;
        size_t avail = len - pos;
        item_type t = ref_classify(p[0]);
        if (t.kind == K_INVALID) {
            r = VD_SCAN_INVALID;
            break;
        }
        if ((t.kind == K_ARRAY || t.kind == K_MAP) && sp > max_depth) {
            r = VD_SCAN_TOO_DEEP;     /* the new container would be at depth sp */
            break;
        }

        uint64_t hdr = 1u + t.lenk + t.extra;
        if (hdr - 1 > budget) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        if (avail < 1u + t.lenk) {
            r = VD_SCAN_NEED_MORE;
            break;
        }
        uint64_t n = t.lenk ? ref_read_be(p + 1, t.lenk) : t.inline_n;

        uint64_t total, items = 0;       /* this item's bytes, and the items it opens */
        if (t.kind == K_ARRAY || t.kind == K_MAP) {
            total = hdr;
            items = t.kind == K_MAP ? 2 * n : n;
        } else {
            total = hdr + n;
        }
        if (total - 1 > budget || items > budget - (total - 1)) {
            r = VD_SCAN_TOO_LARGE;
            break;
        }
        if (avail < total) {
            r = VD_SCAN_NEED_MORE;
            break;
        }

        pos += (size_t)total;            /* total <= budget + 1 <= max, fits size_t */
        pending -= 1;
        stack[sp - 1] -= 1;
        if (items > 0) {
            stack[sp++] = items;          /* sp <= max_depth here, so sp+1 fits */
            pending += items;
        } else {
            while (sp > 0 && stack[sp - 1] == 0)
                sp--;
        }
    }
    st->pos = pos;
    st->pending = pending;
    st->sp = sp;
    if (r == VD_SCAN_OK)
        *frame_len = pos;
    return r;
}


static void expect_same(const uint8_t *b, size_t n, const vd_scan_limits *lim, size_t step)
{
    vd_scan_state s1, s2;
    vd_msgpack_scan_reset(&s1);
    vd_msgpack_scan_reset(&s2);
    size_t have = 0, f1 = 1, f2 = 2;
    vd_scan_result r1, r2;
    do {
        have += step ? step : 1 + rnd_below(9);
        if (have > n) have = n;
        r1 = ref_scan_resume(&s1, b, have, lim, &f1);
        r2 = vd_msgpack_scan_resume(&s2, b, have, lim, &f2);
        assert_int_equal(r2, r1);
        assert_int_equal(f2, f1);
        assert_int_equal(s2.pos, s1.pos);
        assert_int_equal(s2.pending, s1.pending);
        assert_int_equal(s2.sp, s1.sp);
        for (unsigned i = 0; i < s1.sp; i++)
            assert_int_equal(s2.stack[i], s1.stack[i]);
    } while (r1 == VD_SCAN_NEED_MORE && have < n);
}

static void test_same_as_switch_scanner(void **state)
{
    (void)state;
    static const size_t maxes[] = { 1, 2, 3, 5, 9, 17, 33, 64, 300, 70000, (size_t)1 << 33, SIZE_MAX };
    uint8_t b[80];
    rng_state = 0x9E3779B97F4A7C15ULL;
    /* Every type byte, followed by a few patterns, under every limit. */
    for (unsigned t = 0; t < 256; t++) {
        for (int pat = 0; pat < 6; pat++) {
            b[0] = (uint8_t)t;
            for (size_t i = 1; i < sizeof b; i++)
                b[i] = pat == 0 ? 0x00 : pat == 1 ? 0xff : pat == 2 ? 0x01 : pat == 3 ? 0x91
                     : (uint8_t)rnd();
            for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++)
                for (unsigned depth = 0; depth < 3; depth++) {
                    const vd_scan_limits lim = { maxes[m], depth };
                    for (size_t n = 1; n <= 20; n++)
                        expect_same(b, n, &lim, n);
                    expect_same(b, sizeof b, &lim, 0);
                }
        }
    }
    /* Random frames: headers, small lengths and counts, nested containers. */
    static const uint8_t pool[] = { 0x00, 0x7f, 0x80, 0x81, 0x82, 0x8f, 0x90, 0x91, 0x92,
        0x9f, 0xa0, 0xa2, 0xbf, 0xc0, 0xc1, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xcb, 0xcd, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xff };
    for (int it = 0; it < 200000; it++) {
        size_t n = 1 + rnd_below(sizeof b);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            b[i] = (r & 3) == 0 ? pool[(r >> 8) % sizeof pool] : (r & 3) == 1 ? (uint8_t)(r >> 16)
                 : (uint8_t)((r >> 8) % 3);
        }
        const vd_scan_limits lim = { rnd_below(4) == 0 ? maxes[rnd_below(12)] : n + rnd_below(40) - 8,
                                     (unsigned)rnd_below(70) };
        expect_same(b, n, &lim, 0);
        expect_same(b, n, &lim, n);
    }
}

/* Whole frames at once, as the decision port mostly sees them: the scan's
 * whole-frame pass (scan_whole) answers those, the full scan the rest. Packed
 * frames (nested, every header size up to 32-bit), a pipelined follower,
 * limits at, below and above the frame's own size and depth: results, frame
 * lengths and states as the earlier scanner's. */
static void test_whole_frame_path(void **state)
{
    (void)state;
    rng_state = 0x2545F4914F6CDD1DULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    unsigned ok = 0, other = 0;
    for (int it = 0; it < 4000; it++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_random(&pk, 0);
        size_t n = sb.size;
        msgpack_pack_array(&pk, 2);
        msgpack_pack_nil(&pk);
        const uint8_t *b = (const uint8_t *)sb.data;
        const size_t maxes[] = { n - 1, n, n + 1, sb.size, (size_t)1 << 33 };
        for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
            if (maxes[m] == 0)
                continue;
            for (unsigned depth = 0; depth <= 8; depth++) {
                const vd_scan_limits lim = { maxes[m], depth };
                size_t fl;
                vd_scan_result r = vd_msgpack_scan(b, sb.size, &lim, &fl);
                if (r == VD_SCAN_OK) {
                    assert_int_equal(fl, n);
                    ok++;
                } else {
                    other++;
                }
                expect_same(b, sb.size, &lim, sb.size);
                expect_same(b, n, &lim, n);
            }
        }
    }
    assert_true(ok > 1000 && other > 1000);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings_bins_exts),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_peek_msgid),
        cmocka_unit_test(test_cross_check_packed),
        cmocka_unit_test(test_cross_check_random_bytes),
        cmocka_unit_test(test_same_as_switch_scanner),
        cmocka_unit_test(test_whole_frame_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
