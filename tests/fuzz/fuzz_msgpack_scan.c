/* fuzz_msgpack_scan.c — libFuzzer target for the MessagePack frame pre-scanner.
 *
 * Not part of the default build (the Makefile only builds tests/unit/test_*.c).
 * Build and run from the repository root:
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *       -Idaemon -Iinclude tests/fuzz/fuzz_msgpack_scan.c daemon/net/msgpack_scan.c \
 *       -lmsgpackc -o /tmp/fuzz_msgpack_scan
 *   mkdir -p /tmp/fuzz-msgpack-corpus
 *   /tmp/fuzz_msgpack_scan -max_total_time=300 -max_len=4096 \
 *       /tmp/fuzz-msgpack-corpus tests/fuzz/corpus/msgpack_scan
 *
 * (apt-get install -y clang-14 libclang-rt-14-dev if clang-14 is missing.)
 * The first 3 input bytes choose the limits, the rest is the frame. Besides
 * "no crash, no read past len", it checks that OK frames rescan to the same
 * length, that their last proper prefix is NEED_MORE, that msgpack-c decodes
 * exactly frame_len bytes, that NEED_MORE/INVALID agree with msgpack-c, that
 * the resumable form agrees when fed in chunks, and that a peeked msgid is the
 * one msgpack-c decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <msgpack.h>

#include "net/msgpack_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    vd_scan_limits lim;
    lim.max_depth = data[0] % 70u;                        /* includes values above the clamp */
    lim.max_bytes = data[1] == 0xff ? SIZE_MAX : (size_t)data[1] * 64u + data[2];
    unsigned eff_depth = lim.max_depth < VD_SCAN_MAX_DEPTH ? lim.max_depth : VD_SCAN_MAX_DEPTH;
    unsigned chunk_seed = data[2];
    const uint8_t *buf = data + 3;
    size_t len = size - 3;

    size_t fl = 12345;
    vd_scan_result r = vd_msgpack_scan(buf, len, &lim, &fl);
    CHECK(r >= VD_SCAN_OK && r <= VD_SCAN_INVALID);
    CHECK(vd_scan_result_name(r)[0] != 'u');
    /* msgpack-c allocates per announced item; only let it see bounded frames. */
    bool decoder_safe = lim.max_bytes <= (1u << 20) && eff_depth <= 32;

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (r == VD_SCAN_OK) {
        CHECK(fl >= 1 && fl <= len && fl <= lim.max_bytes);
        size_t fl2 = 0;
        CHECK(vd_msgpack_scan(buf, fl, &lim, &fl2) == VD_SCAN_OK && fl2 == fl);
        CHECK(vd_msgpack_scan(buf, fl - 1, &lim, &fl2) == VD_SCAN_NEED_MORE && fl2 == 0);
        if (eff_depth <= 32) {
            CHECK(msgpack_unpack_next(&up, (const char *)buf, fl, &off) == MSGPACK_UNPACK_SUCCESS);
            CHECK(off == fl);
        }
    } else {
        CHECK(fl == 0);
        if (r == VD_SCAN_NEED_MORE && decoder_safe)
            CHECK(msgpack_unpack_next(&up, (const char *)buf, len, &off) == MSGPACK_UNPACK_CONTINUE);
        if (r == VD_SCAN_INVALID && decoder_safe)
            CHECK(msgpack_unpack_next(&up, (const char *)buf, len, &off) == MSGPACK_UNPACK_PARSE_ERROR);
    }

    /* The resumable form, fed in chunks, reaches the same verdict. */
    vd_scan_state st;
    vd_msgpack_scan_reset(&st);
    size_t have = 0, fl3 = 0;
    vd_scan_result r3;
    do {
        chunk_seed = chunk_seed * 1103515245u + 12345u;
        have += 1 + (chunk_seed >> 16) % 16;
        if (have > len) have = len;
        r3 = vd_msgpack_scan_resume(&st, buf, have, &lim, &fl3);
    } while (r3 == VD_SCAN_NEED_MORE && have < len);
    CHECK(r3 == r && fl3 == fl);

    /* A peeked msgid is what the decoder reads as element 1. */
    uint32_t id;
    if (vd_msgpack_peek_msgid(buf, len, &id) && r == VD_SCAN_OK && eff_depth <= 32) {
        msgpack_object o = up.data;
        CHECK(o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size >= 2);
        CHECK(o.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
              o.via.array.ptr[0].via.u64 == 0);
        CHECK(o.via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
              o.via.array.ptr[1].via.u64 == id);
    }
    msgpack_unpacked_destroy(&up);
    return 0;
}
