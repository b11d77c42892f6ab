/* msgpack_scan.h — structural pre-scan of MessagePack-RPC frames.
 *
 * msgpack-c trusts container headers (`dd ff ff ff ff` makes it reserve ~96 GB)
 * and the TCP decision port has no length prefix: frames are consecutive
 * msgpack objects. So every frame is scanned here first: the scanner finds
 * where the frame ends, bounds every count and length by the frame limit and
 * the nesting by a depth limit, and only then are exactly frame_len bytes
 * handed to msgpack-c.
 *
 * Iterative, constant memory (a fixed stack of remaining-item counts), O(frame)
 * time, never reads past len. Every format of the MessagePack spec is known;
 * the never-used byte 0xc1 is invalid.
 *
 * Depth counts every array/map header, empty ones included: a bare scalar is
 * depth 0, `[1]` depth 1, `[[]]` depth 2. Note msgpack-c's C unpacker itself
 * refuses more than 32 nested non-empty containers, so limits above 32 only
 * move the rejection from here to the decoder. */
#ifndef VD_NET_MSGPACK_SCAN_H
#define VD_NET_MSGPACK_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VD_SCAN_MAX_DEPTH 64   /* ceiling of vd_scan_limits.max_depth (larger is clamped) */

typedef struct vd_scan_limits {
    size_t max_bytes;      /* a frame larger than this is rejected */
    unsigned max_depth;    /* nesting of arrays/maps, e.g. 16; clamped to VD_SCAN_MAX_DEPTH */
} vd_scan_limits;

typedef enum vd_scan_result {
    VD_SCAN_OK = 0,        /* a complete frame of *frame_len bytes starts at buf */
    VD_SCAN_NEED_MORE,     /* valid so far, incomplete, and can still fit max_bytes */
    VD_SCAN_TOO_LARGE,     /* cannot complete within max_bytes: a header announces
                              more items or bytes than can fit (reported at once,
                              without waiting for the bytes) */
    VD_SCAN_TOO_DEEP,      /* an array/map header beyond max_depth */
    VD_SCAN_INVALID,       /* the never-used byte 0xc1 */
} vd_scan_result;

/* Scans the object starting at buf[0]. On VD_SCAN_OK sets *frame_len (<= len,
 * <= max_bytes); on any other result sets *frame_len to 0. Bytes after the
 * frame (the next pipelined frame) are not looked at. */
vd_scan_result vd_msgpack_scan(const uint8_t *buf, size_t len, const vd_scan_limits *lim,
                               size_t *frame_len);

/* Resumable form, so a frame arriving a few bytes per read costs O(frame) in
 * total instead of a rescan from byte 0 on every read. Zero the state (or call
 * vd_msgpack_scan_reset) before a frame; call again with the same buf start,
 * a larger len and the same limits after each NEED_MORE; reset after any other
 * result. Results equal those of vd_msgpack_scan on the same bytes. */
typedef struct vd_scan_state {
    size_t pos;                               /* bytes fully consumed so far */
    uint64_t pending;                         /* sum of stack[]: items still owed */
    unsigned sp;                              /* used entries of stack[] */
    uint64_t stack[VD_SCAN_MAX_DEPTH + 1];    /* [0] is the frame itself */
} vd_scan_state;

void vd_msgpack_scan_reset(vd_scan_state *st);
vd_scan_result vd_msgpack_scan_resume(vd_scan_state *st, const uint8_t *buf, size_t len,
                                      const vd_scan_limits *lim, size_t *frame_len);

/* "ok", "need_more", "too_large", "too_deep", "invalid"; "unknown" otherwise. */
const char *vd_scan_result_name(vd_scan_result r);

/* Reads [type, msgid, ...] from a frame that failed to scan or decode far
 * enough to answer: true if the bytes start with a fixarray/array16/array32 of
 * at least 2 items whose first element is the integer 0 (any integer encoding)
 * and second a non-negative integer that fits in uint32; sets *msgid. Used to
 * send an error reply with the right msgid before closing. Reads at most the
 * first 5 + 9 + 9 bytes, never past len. */
bool vd_msgpack_peek_msgid(const uint8_t *buf, size_t len, uint32_t *msgid);

#endif
