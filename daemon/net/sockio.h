/* sockio.h — reading and writing a client socket of the HTTP ports: read
 * into reserved buffer space (evbuffer_read would first ask the kernel how
 * much is readable, an ioctl per request) and write directly, leaving the
 * write event to the caller only for what the kernel refused. The decision
 * port does the same on flat buffers of its own (net/rpc_server.c). */
#ifndef VD_NET_SOCKIO_H
#define VD_NET_SOCKIO_H

#include <event2/util.h>
#include <sys/types.h>

struct evbuffer;

#define VD_SOCK_AGAIN (-2)        /* nothing to read right now */

/* Up to 16 KiB into in: bytes read, 0 at end of stream, -1 on an error,
 * VD_SOCK_AGAIN when the socket has nothing now. */
ssize_t vd_sock_read(struct evbuffer *in, evutil_socket_t fd);
/* Writes as much of out as the kernel takes now: 0, or -1 on an error
 * (the connection is lost). */
int vd_sock_write(struct evbuffer *out, evutil_socket_t fd);

#endif
