/* test_rpc_codec.c — the MessagePack emitter writes exactly what msgpack-c's
 * packer writes, at every size boundary of every type it emits. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ints_match_msgpack_c),
        cmocka_unit_test(test_containers_strings_and_scalars_match_msgpack_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
