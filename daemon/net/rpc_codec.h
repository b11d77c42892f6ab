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

/* [1, msgid, {code, message}, nil] */
void vd_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message);

#endif
