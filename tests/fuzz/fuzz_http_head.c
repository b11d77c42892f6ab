/* fuzz_http_head.c — libFuzzer target for the HTTP/1.1 server of the edge
 * and stats ports (net/http_server.c on libhttp-parser): request line,
 * headers, bodies, pipelining and the limits, through the real connection
 * code.
 *
 *   make build/fuzz/fuzz_http_head
 *   build/fuzz/fuzz_http_head -max_total_time=60 -max_len=8192 \
 *       /tmp/variantd-fuzz/http_head tests/fuzz/corpus/http_head
 *
 * Each input is written to one end of a socketpair whose other end the
 * server adopts (small limits: 1 KiB head, 512 B body, so the 431/413 paths
 * run too); the write side is then shut and the event loop runs until the
 * server has closed the connection. Checks, for every request the handler
 * sees:
 *   - method, target, path, query, every header name and value and the body
 *     lie inside the connection's buffers (ASan) and are consistent: the
 *     path and query are slices of the target, the path starts with '/' or
 *     is the whole target, no header name is empty;
 *   - the number of headers is at most VD_HTTP_MAX_HEADERS, the head at most
 *     the limit and the body at most max_body;
 * and for the connection: every byte of output is a sequence of complete
 * HTTP/1.1 responses with a known status, and the server closes it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MAX_HEADER 1024
#define MAX_BODY 512

static unsigned requests;

static bool within(vd_str s, vd_str in)
{
    return s.n == 0 || (s.p >= in.p && s.p + s.n <= in.p + in.n);
}

static void handler(void *arg, const vd_http_req *req, vd_http_resp *resp)
{
    (void)arg;
    requests++;
    CHECK(req->method >= VD_HTTP_GET && req->method <= VD_HTTP_OTHER);
    CHECK(req->method_name.n > 0);
    CHECK(within(req->path, req->target) && within(req->query, req->target));
    CHECK(req->nheaders <= VD_HTTP_MAX_HEADERS);
    size_t head = req->target.n;
    for (unsigned i = 0; i < req->nheaders; i++) {
        CHECK(req->headers[i].name.n > 0);
        head += req->headers[i].name.n + req->headers[i].value.n;
        /* touch every byte: ASan checks they are ours */
        volatile char x = 0;
        for (size_t j = 0; j < req->headers[i].name.n; j++)
            x ^= req->headers[i].name.p[j];
        for (size_t j = 0; j < req->headers[i].value.n; j++)
            x ^= req->headers[i].value.p[j];
        (void)x;
    }
    CHECK(head <= MAX_HEADER);
    CHECK(req->body.n <= MAX_BODY);
    volatile char y = 0;
    for (size_t j = 0; j < req->body.n; j++)
        y ^= req->body.p[j];
    (void)y;
    vd_str h = vd_http_header_get(req, "host");
    CHECK(h.n == 0 || h.p != NULL);
    vd_http_resp_header(resp, VD_STR_LIT("X-Echo"), req->path);
    vd_http_resp_body(resp, 200, "text/plain", req->path.p ? req->path.p : "", req->path.n);
}

/* The output is whole responses: "HTTP/1.1 NNN ..." heads, each with a
 * Content-Length body (or none for HEAD). Only the status lines are
 * checked for shape, the rest for not running past the output. */
static void check_output(const char *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        CHECK(n - i >= 12 && memcmp(out + i, "HTTP/1.", 7) == 0);
        int status = atoi(out + i + 9);
        CHECK(status >= 100 && status <= 599);
        const char *end = memmem(out + i, n - i, "\r\n\r\n", 4);
        CHECK(end != NULL);
        const char *cl = memmem(out + i, (size_t)(end - (out + i)), "Content-Length: ", 16);
        size_t body = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
        size_t next = (size_t)(end + 4 - out) + body;
        if (next > n)         /* a HEAD answer carries the length, not the body */
            next = (size_t)(end + 4 - out);
        i = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct event_base *base;
    if (!base) {
        base = event_base_new();
        CHECK(base);
    }
    if (size > 8192)
        size = 8192;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    vd_http_limits lim = { .max_header = MAX_HEADER, .max_body = MAX_BODY, .max_output = 1 << 20,
                           .max_conns = 4, .header_timeout = 5, .keepalive_timeout = 5,
                           .write_timeout = 5 };
    vd_http_stats st;
    memset(&st, 0, sizeof st);
    char err[256];
    /* No port: a server on port 0 of loopback, only ever fed adopted sockets. */
    vd_http_server *s = vd_http_server_start(base, "127.0.0.1:0", &lim, &st, handler, NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "fuzz_http_head: %s\n", err);
        abort();
    }
    vd_http_server_adopt(s, sv[0]);
    size_t off = 0;
    static char out[1 << 17];
    size_t on = 0;
    bool shut = false;
    requests = 0;
    for (int round = 0; round < 10000; round++) {
        if (off < size) {
            ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = size;   /* the server closed: the rest is not read */
        }
        if (off >= size && !shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r;
        bool eof = false;
        while ((r = recv(sv[1], out + on, sizeof out - on, MSG_DONTWAIT)) > 0) {
            on += (size_t)r;
            if (on == sizeof out)
                on = 0;       /* enormous output: keep reading, stop checking */
        }
        if (r == 0)
            eof = true;
        if (eof && vd_http_server_connections(s) == 0)
            break;
    }
    CHECK(vd_http_server_connections(s) == 0);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%u requests, %zu bytes out\n", requests, on);
    if (on && on < sizeof out)
        check_output(out, on);
    vd_http_server_stop_accepting(s);
    vd_http_server_free(s);
    close(sv[1]);
    return 0;
}
