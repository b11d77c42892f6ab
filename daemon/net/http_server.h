/* http_server.h — a small HTTP/1.1 server on plain libevent events with
 * direct socket reads and writes (net/sockio.c), shared by
 * the edge port and the stats port. Parsing is libhttp-parser's; this module
 * adds what evhttp lacks: hard limits and slow-client defences.
 *
 *   - request head (request line + headers) over max_header bytes: 431
 *   - body over max_body bytes (Content-Length or chunked): 413
 *   - more than max_conns open connections: 503 at accept, then close
 *   - a head (and body) not complete within header_timeout s: 408, close
 *     (a client sending one byte a second cannot hold a connection)
 *   - silent keep-alive connections closed after keepalive_timeout s
 *   - a client not reading its responses stops being read once max_output
 *     bytes are queued, and is closed after write_timeout s
 *
 * Keep-alive and pipelining: requests on one connection are answered in the
 * order received (the handler runs synchronously, or parks the request and
 * answers it later: see vd_http_park). Every connection owns a
 * head buffer of max_header bytes and a body buffer that grows up to
 * max_body once; nothing is allocated per request. Errors that leave the
 * stream untrustworthy answer, then close with a lingering close (the
 * client's unread bytes are drained first, so it sees the answer instead of
 * a reset). */
#ifndef VD_NET_HTTP_SERVER_H
#define VD_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"
#include "core/stats.h"

struct event_base;
struct evbuffer;

#define VD_HTTP_MAX_HEADERS 64            /* header lines per request; more: 431 */
#define VD_HTTP_MAX_RESP_HEADERS 16384    /* bytes of handler-added response headers */

enum { VD_HTTP_GET = 1, VD_HTTP_HEAD, VD_HTTP_POST, VD_HTTP_OTHER };

typedef struct vd_http_header {
    vd_str name, value;
} vd_http_header;

typedef struct vd_http_req {
    int method;                           /* VD_HTTP_* */
    vd_str method_name;
    vd_str target;                        /* request-target as sent */
    vd_str path, query;                   /* raw (not percent-decoded) */
    unsigned nheaders;
    vd_http_header headers[VD_HTTP_MAX_HEADERS];
    vd_str body;
    struct sockaddr_storage peer;
    int http_minor;
} vd_http_req;

typedef struct vd_http_resp {
    int status;
    const char *content_type;             /* NULL: no body type */
    char headers[VD_HTTP_MAX_RESP_HEADERS];
    size_t hlen;
    struct evbuffer *body;                /* reused; the handler appends to it */
    bool close;                           /* close the connection after this answer */
    bool head_only;                       /* HEAD: send the headers only */
    const char *iface;                    /* limits.name, for the recent-errors panel */
    int port;                             /* the bound port, likewise */
    void *conn;                           /* internal: the connection a handler answers */
} vd_http_resp;

typedef void (*vd_http_handler)(void *arg, const vd_http_req *req, vd_http_resp *resp);

typedef struct vd_http_limits {
    size_t max_header;                    /* bytes of request line + headers */
    size_t max_body;
    size_t max_output;                    /* unsent response bytes before reading pauses */
    size_t max_conns;
    long header_timeout;                  /* seconds */
    long keepalive_timeout;               /* seconds */
    long write_timeout;                   /* seconds */
    /* Open connections counted across every server sharing this counter
     * (one port served by several worker threads); NULL = this server alone. */
    _Atomic long *shared_conns;
    const char *name;                     /* interface name: "edge", "stats" */
} vd_http_limits;

typedef struct vd_http_server vd_http_server;

/* Binds addr ("HOST:PORT"); st receives this interface's counters. NULL on
 * error with a message. */
vd_http_server *vd_http_server_start(struct event_base *base, const char *addr,
                                     const vd_http_limits *lim, vd_http_stats *st,
                                     vd_http_handler h, void *arg, char *err, size_t cap);
/* Serves an already connected socket as if just accepted (the peer address
 * unknown); the server owns fd from then on. For the fuzz harness. */
void vd_http_server_adopt(vd_http_server *s, int fd);
/* Stops accepting; requests being received are still answered (with
 * Connection: close), idle connections close. */
void vd_http_server_stop_accepting(vd_http_server *s);
/* Closes what has nothing more to do; returns the connections still open. */
size_t vd_http_server_drain(vd_http_server *s);
size_t vd_http_server_connections(const vd_http_server *s);
/* The bound port (for logs). */
int vd_http_server_port(const vd_http_server *s);
void vd_http_server_free(vd_http_server *s);

/* Header lookup, ASCII case-insensitive; the first match or an empty slice. */
vd_str vd_http_header_get(const vd_http_req *req, const char *name);
/* Appends "name: value\r\n"; value bytes that cannot be in a header are
 * replaced by '?'. Silently drops headers that do not fit. */
void vd_http_resp_header(vd_http_resp *r, vd_str name, vd_str value);
/* A body of len bytes with a content type. */
void vd_http_resp_body(vd_http_resp *r, int status, const char *type, const char *p, size_t len);
/* {"error": {"code": code, "message": msg}} with the status; the error is
 * also kept among the recent errors (net/recent_errors.h). */
void vd_http_resp_error(vd_http_resp *r, int status, const char *code, const char *msg);
const char *vd_http_reason(int status);

/* Answering later. A handler that must wait for something (the edge port's
 * decide waiting for the visitor's profile) parks its request instead of
 * filling resp: nothing is sent for it now. The connection then parses
 * nothing further, so pipelined requests wait in its input buffer and the
 * answers stay in order; it keeps only watching the socket (a client that
 * shuts its sending side down still gets the answer; input beyond
 * max_header + max_body is not read until the answer is out). The
 * request's head and body stay in the connection's buffers, untouched, until
 * the request is resumed; at shutdown the server waits for it like for any
 * request being answered.
 *
 * cancel(arg) runs, exactly once and instead of any resume, when the
 * connection is closed first (a reset, a write error, a server being freed):
 * the handler then drops what it waits for. Never NULL for a handler's resp
 * (the handle is the connection); a resumed handler must not park again. */
typedef struct vd_http_parked vd_http_parked;
vd_http_parked *vd_http_park(vd_http_resp *resp, void (*cancel)(void *arg), void *arg);
/* Answers a parked request: h runs with the request as it was parked (read
 * again from the connection's buffers) and a fresh resp, exactly like a
 * handler, then the connection goes on with what waited behind it. p is
 * invalid afterwards (the connection may be closed by then). Not from
 * inside a handler of the same server. */
void vd_http_resume(vd_http_parked *p, vd_http_handler h, void *arg);

#endif
