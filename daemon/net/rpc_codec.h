/* rpc_codec.h — MessagePack <-> request/result for the decision port.
 * Input objects come from msgpack-c after the frame passed vd_msgpack_scan;
 * strings in the vd_request point into the frame (no copies). */
#ifndef VD_NET_RPC_CODEC_H
#define VD_NET_RPC_CODEC_H

#include <msgpack.h>
#include <stdbool.h>

#include "decision/result.h"
#include "context/context.h"
#include "decision/request.h"

/* Fills req from `params` (an array holding one map, or a bare map).
 * Returns 0, or -1 with a message for the client in err. */
int vd_rpc_read_params(const msgpack_object *params, unsigned max_slots, vd_request *req,
                       char *err, size_t cap);

/* The same, read in place from a frame that passed vd_msgpack_scan (no
 * msgpack-c objects, no allocation): params is the address of the params
 * object inside the frame, frame_end the frame's end. Same rules, same
 * messages (decision/request.c is the one validator). */
int vd_rpc_read_params_raw(const uint8_t *params, const uint8_t *frame_end, unsigned max_slots,
                           vd_request *req, char *err, size_t cap);

/* True if a scanned frame is [0, msgid, "decide"|"explain", params] exactly
 * as the general path reads it (any integer encoding of 0 and of a msgid
 * that fits uint32; the method as str or bin): sets *msgid, *explain and
 * *params (the address of params in the frame). False for anything else,
 * which the general path answers. */
bool vd_rpc_peek_decide(const uint8_t *frame, size_t len, uint32_t *msgid, bool *explain,
                        const uint8_t **params);

/* The params of track, profile, flag and forget (decision/request.h). */
int vd_rpc_read_profile_params(const msgpack_object *params, vd_profile_params *p, char *err,
                               size_t cap);

/* An emitter that appends MessagePack to sb (payloads pre-encoded), byte for
 * byte what msgpack_pack_* would write. It writes into the buffer directly:
 * a reply is ~70 values, and msgpack-c's packer costs an indirect callback
 * per header and per body. A packer on the same sbuffer may be used in
 * between (the RPC envelope). */
typedef struct vd_msgpack_out {
    msgpack_sbuffer *sb;
    bool failed;              /* the buffer could not grow: the reply is incomplete */
} vd_msgpack_out;
void vd_msgpack_emitter(vd_msgpack_out *o, vd_emitter *out);

/* The head of a result reply, [1, msgid, nil, ...: the 4-element array,
 * the type, the msgid in msgpack_pack_uint32's form and the nil error, in
 * b (at least VD_RPC_REPLY_HEAD_MAX bytes). Returns its length. */
#define VD_RPC_REPLY_HEAD_MAX 8
size_t vd_rpc_reply_head(unsigned char *b, uint32_t msgid);

/* [1, msgid, {code, message}, nil] */
void vd_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message);

#endif
