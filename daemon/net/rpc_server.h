/* rpc_server.h — the decision port: MessagePack-RPC over TCP.
 *
 * Frames are consecutive MessagePack objects. Each is scanned by
 * vd_msgpack_scan before msgpack-c sees it (max-frame, max-depth), then
 * answered in order, so pipelined requests get their replies in the order
 * sent. Per connection: a request that is valid MessagePack but not a valid
 * request gets an error reply and the connection stays; bytes that are not
 * MessagePack, too large or too deep get an error reply when a msgid can be
 * read, then the connection closes (the stream cannot be trusted past
 * them). Nothing one client sends affects another. */
#ifndef VD_NET_RPC_SERVER_H
#define VD_NET_RPC_SERVER_H

#include <stddef.h>

#include "net/frontend.h"

typedef struct vd_rpc_server vd_rpc_server;

/* Binds listen_addr ("HOST:PORT", "[v6]:PORT") on the worker's event base.
 * NULL on error with a message. */
vd_rpc_server *vd_rpc_server_start(const vd_frontend *fe, const char *listen_addr, char *err, size_t cap);
/* Stops accepting; open connections are finished by vd_rpc_server_drain. */
void vd_rpc_server_stop_accepting(vd_rpc_server *s);
/* Closes idle connections now and the others once their replies are out.
 * Returns the connections still open. */
size_t vd_rpc_server_drain(vd_rpc_server *s);
size_t vd_rpc_server_connections(const vd_rpc_server *s);
void vd_rpc_server_free(vd_rpc_server *s);

#endif
