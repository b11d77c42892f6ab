/* http_server.c — HTTP/1.1 on plain libevent events with libhttp-parser (see the
 * header for the limits and their answers).
 *
 * Connection states: NEW (accepted, nothing read yet), HEAD/BODY (a request
 * is arriving: the request timer runs), IDLE (between keep-alive requests),
 * WAIT (a request parked by its handler: nothing more is parsed until it is
 * answered), CLOSING (last answer queued, waiting for it to flush), LINGER
 * (our side shut down, discarding what the client still sends until EOF or
 * a short timer). One timer per connection serves every state. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/json_out.h"
#include "net/listener.h"
#include "net/recent_errors.h"
#include "net/sockio.h"

#define LINGER_SECONDS 2
#define MAX_REJECTING 256         /* 503-then-close connections lingering at once */

enum { ST_NEW, ST_HEAD, ST_BODY, ST_IDLE, ST_WAIT, ST_CLOSING, ST_LINGER };
enum { LAST_NONE, LAST_FIELD, LAST_VALUE };

typedef struct hdr_off {
    uint32_t noff, nlen, voff, vlen;
} hdr_off;

typedef struct http_conn {
    vd_http_server *srv;
    evutil_socket_t fd;
    struct event *rev, *wev;      /* read (no timeout: c->timer rules) and write (write-timeout) */
    struct evbuffer *in, *out;
    bool reading;                 /* rev is armed */
    struct http_conn *prev, *next;
    struct event *timer;
    http_parser parser;
    int state;
    int last;                     /* LAST_*: which header part the parser gave last */
    int err_status;               /* a limit the callbacks hit (431, 413) */
    bool rejected;                /* over max-connections: answered 503 */
    bool read_paused;             /* output over max_output */
    bool expect_continue;
    char *head;                   /* request line target + header bytes, max_header */
    size_t hlen;
    uint32_t url_off, url_len;
    unsigned nh;
    hdr_off h[VD_HTTP_MAX_HEADERS];
    char *body;
    size_t blen, bcap;
    const char *chunk_end;        /* end of the bytes the parser is given now */
    const char *seen_end;         /* end of the last piece a callback saw */
    bool more_buffered;           /* input beyond that chunk */
    struct sockaddr_storage peer;
    /* A parked request (ST_WAIT): what its answer needs from the parser,
     * and who to tell if the connection goes first. */
    void (*park_cancel)(void *arg);
    void *park_arg;
    unsigned park_method;
    int park_minor;
    bool park_keep;
} http_conn;

struct vd_http_server {
    struct event_base *base;
    vd_http_limits lim;
    vd_http_stats *st;
    vd_http_handler handler;
    void *arg;
    vd_listener *listener;
    http_conn *conns;
    size_t nconns;                /* counted against max_conns */
    size_t nrejecting;
    int draining;
    int port;
    vd_http_resp resp;            /* reused for every answer */
    vd_http_req req;              /* reused for every request */
};

static const http_parser_settings settings;

/* max_conns holds for every server sharing lim.shared_conns. */
static bool conns_take(vd_http_server *s)
{
    if (s->lim.shared_conns) {
        if (atomic_fetch_add(s->lim.shared_conns, 1) >= (long)s->lim.max_conns) {
            atomic_fetch_sub(s->lim.shared_conns, 1);
            return false;
        }
        return true;
    }
    return s->nconns < s->lim.max_conns;
}

static void conns_give(vd_http_server *s)
{
    if (s->lim.shared_conns)
        atomic_fetch_sub(s->lim.shared_conns, 1);
}

/* ---- small helpers ---- */

const char *vd_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static void count_status(vd_http_stats *st, int status)
{
    VD_STAT_INC(st, requests);
    switch (status) {
    case 200: VD_STAT_INC(st, s200); break;
    case 400: VD_STAT_INC(st, s400); break;
    case 404: VD_STAT_INC(st, s404); break;
    case 405: VD_STAT_INC(st, s405); break;
    case 408: VD_STAT_INC(st, s408); break;
    case 413: VD_STAT_INC(st, s413); break;
    case 431: VD_STAT_INC(st, s431); break;
    case 500: VD_STAT_INC(st, s500); break;
    case 503: VD_STAT_INC(st, s503); break;
    default: VD_STAT_INC(st, sother); break;
    }
}

vd_str vd_http_header_get(const vd_http_req *req, const char *name)
{
    vd_str n = vd_str_cstr(name);
    for (unsigned i = 0; i < req->nheaders; i++)
        if (vd_str_eq_ci(req->headers[i].name, n))
            return req->headers[i].value;
    return VD_STR_NULL;
}

void vd_http_resp_header(vd_http_resp *r, vd_str name, vd_str value)
{
    if (r->hlen + name.n + value.n + 4 > sizeof r->headers)
        return;
    memcpy(r->headers + r->hlen, name.p, name.n);
    r->hlen += name.n;
    r->headers[r->hlen++] = ':';
    r->headers[r->hlen++] = ' ';
    for (size_t i = 0; i < value.n; i++) {
        unsigned char c = (unsigned char)value.p[i];
        /* No CR/LF or other controls: a header value cannot split a response. */
        r->headers[r->hlen++] = (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c;
    }
    r->headers[r->hlen++] = '\r';
    r->headers[r->hlen++] = '\n';
}

void vd_http_resp_body(vd_http_resp *r, int status, const char *type, const char *p, size_t len)
{
    r->status = status;
    r->content_type = type;
    evbuffer_drain(r->body, evbuffer_get_length(r->body));
    evbuffer_add(r->body, p, len);
}

void vd_http_resp_error(vd_http_resp *r, int status, const char *code, const char *msg)
{
    r->status = status;
    r->content_type = "application/json";
    /* A JSON parser's message quotes the body: not for the panel. */
    vd_recent_error_add(r->iface, r->port, code,
                        strcmp(code, "bad_json") == 0 ? "invalid JSON body" : msg);
    evbuffer_drain(r->body, evbuffer_get_length(r->body));
    evbuffer_add(r->body, "{\"error\":{\"code\":", 17);
    vd_json_quote(r->body, code, strlen(code));
    evbuffer_add(r->body, ",\"message\":", 11);
    vd_json_quote(r->body, msg, strlen(msg));
    evbuffer_add(r->body, "}}\n", 3);
    vd_http_resp_header(r, VD_STR_LIT("Cache-Control"), VD_STR_LIT("no-store"));
}

/* "Date:" value, formatted once a second (per worker thread). */
static const char *http_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* ---- connection lifetime ---- */

static void arm_timer(http_conn *c, long seconds)
{
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    event_add(c->timer, &tv);
}

static void conn_free(http_conn *c)
{
    vd_http_server *s = c->srv;
    if (c->park_cancel) {
        /* Closed while a request waits: its handler drops the wait (and so
         * never resumes a freed connection). */
        void (*cancel)(void *) = c->park_cancel;
        c->park_cancel = NULL;
        cancel(c->park_arg);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->rejected) {
        s->nrejecting--;
    } else {
        s->nconns--;
        conns_give(s);
        VD_STAT_ADD(s->st, connections, -1);
    }
    event_free(c->timer);
    event_free(c->rev);
    event_free(c->wev);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    evutil_closesocket(c->fd);
    vd_free(c->head);
    vd_free(c->body);
    vd_free(c);
}

/* Our answer is out: stop sending, keep reading (and dropping) until the
 * client closes or the linger timer fires, so it reads the answer rather
 * than a reset caused by bytes we never read. */
static void set_reading(http_conn *c, bool on)
{
    if (on && !c->reading)
        event_add(c->rev, NULL);
    else if (!on && c->reading)
        event_del(c->rev);
    c->reading = on;
}

static void start_linger(http_conn *c)
{
    c->state = ST_LINGER;
    shutdown(c->fd, SHUT_WR);
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    set_reading(c, true);
    arm_timer(c, LINGER_SECONDS);
}

static void close_after_flush(http_conn *c)
{
    c->state = ST_CLOSING;
    if (evbuffer_get_length(c->out) == 0)
        start_linger(c);
    else
        arm_timer(c, c->srv->lim.write_timeout);
}

static void process_input(http_conn *c);

/* Writes what the kernel takes now and arms the write event (with
 * write-timeout) only for the rest: a response costs one write and no
 * epoll_ctl. Then does what a drained output allows: linger after the last
 * answer, resume a paused reader.
 * Returns -1 if the connection was freed. */
static int flush(http_conn *c)
{
    if (vd_sock_write(c->out, c->fd) < 0) {
        conn_free(c);
        return -1;
    }
    size_t left = evbuffer_get_length(c->out);
    if (left > 0) {
        if (!event_pending(c->wev, EV_WRITE, NULL)) {
            struct timeval wt = { .tv_sec = c->srv->lim.write_timeout, .tv_usec = 0 };
            event_add(c->wev, &wt);
        }
    } else if (event_pending(c->wev, EV_WRITE, NULL)) {
        event_del(c->wev);
    }
    if (c->state == ST_CLOSING) {
        if (left == 0)
            start_linger(c);
        return 0;
    }
    if (c->read_paused && left <= c->srv->lim.max_output / 2) {
        c->read_paused = false;
        set_reading(c, true);
        process_input(c);
        return flush(c);
    }
    /* Draining, an idle connection is half-closed by the next drain tick. */
    return 0;
}

/* ---- answers ---- */

static void send_response(http_conn *c, vd_http_resp *r, bool keep_alive, int http_minor)
{
    vd_http_server *s = c->srv;
    struct evbuffer *out = c->out;
    size_t blen = evbuffer_get_length(r->body);
    char head[512];
    const char *conn_hdr = "";
    if (!keep_alive)
        conn_hdr = "Connection: close\r\n";
    else if (http_minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nServer: variantd\r\nDate: %s\r\n%s%s%sContent-Length: %zu\r\n%s",
                     r->status, vd_http_reason(r->status), http_date(),
                     r->content_type ? "Content-Type: " : "", r->content_type ? r->content_type : "",
                     r->content_type ? "\r\n" : "", blen, conn_hdr);
    evbuffer_add(out, head, (size_t)n);
    evbuffer_add(out, r->headers, r->hlen);
    evbuffer_add(out, "\r\n", 2);
    if (r->head_only)
        evbuffer_drain(r->body, blen);
    else
        evbuffer_add_buffer(out, r->body);
    count_status(s->st, r->status);
}

static void resp_reset(vd_http_resp *r)
{
    r->status = 200;
    r->content_type = NULL;
    r->hlen = 0;
    r->close = false;
    r->head_only = false;
    evbuffer_drain(r->body, evbuffer_get_length(r->body));
}

/* An error the server itself detects (bad HTTP, limits, timeout): answer
 * it and close. */
static void fail(http_conn *c, int status, const char *code, const char *msg)
{
    vd_http_server *s = c->srv;
    vd_http_resp *r = &s->resp;
    resp_reset(r);
    vd_http_resp_error(r, status, code, msg);
    send_response(c, r, false, 1);
    VD_STAT_INC(s->st, conn_closed_error);
    set_reading(c, false);
    close_after_flush(c);
}

/* ---- parser callbacks: copy the head into c->head, the body into c->body ---- */

static int append_head(http_conn *c, const char *at, size_t len)
{
    c->seen_end = at + len;
    if (c->hlen + len > c->srv->lim.max_header) {
        c->err_status = 431;
        return -1;
    }
    memcpy(c->head + c->hlen, at, len);
    c->hlen += len;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = p->data;
    c->hlen = 0;
    c->nh = 0;
    c->blen = 0;
    c->url_off = c->url_len = 0;
    c->last = LAST_NONE;
    c->expect_continue = false;
    if (c->state != ST_HEAD) {
        c->state = ST_HEAD;
        arm_timer(c, c->srv->lim.header_timeout);
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    if (c->url_len == 0)
        c->url_off = (uint32_t)c->hlen;
    c->url_len += (uint32_t)len;
    return append_head(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    if (c->last != LAST_FIELD) {
        if (c->nh == VD_HTTP_MAX_HEADERS) {
            c->err_status = 431;
            return -1;
        }
        c->h[c->nh].noff = (uint32_t)c->hlen;
        c->h[c->nh].nlen = 0;
        c->h[c->nh].voff = (uint32_t)c->hlen;
        c->h[c->nh].vlen = 0;
        c->nh++;
        c->last = LAST_FIELD;
    }
    c->h[c->nh - 1].nlen += (uint32_t)len;
    return append_head(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    if (c->nh == 0)
        return -1;
    if (c->last != LAST_VALUE) {
        c->h[c->nh - 1].voff = (uint32_t)c->hlen;
        c->last = LAST_VALUE;
    }
    c->h[c->nh - 1].vlen += (uint32_t)len;
    return append_head(c, at, len);
}

static bool head_eq_ci(const http_conn *c, uint32_t off, uint32_t len, const char *lit)
{
    return vd_str_eq_ci(vd_str_make(c->head + off, len), vd_str_cstr(lit));
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->lim.max_body) {
        c->err_status = 413;
        return -1;
    }
    c->state = ST_BODY;
    for (unsigned i = 0; i < c->nh; i++)
        if (head_eq_ci(c, c->h[i].noff, c->h[i].nlen, "expect") &&
            head_eq_ci(c, c->h[i].voff, c->h[i].vlen, "100-continue"))
            c->expect_continue = true;
    if (c->expect_continue && p->content_length > 0 && p->content_length != ULLONG_MAX) {
        /* curl and others wait a second for this before sending a body. */
        evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    size_t max = c->srv->lim.max_body;
    c->seen_end = at + len;
    if (c->blen + len > max) {
        c->err_status = 413;
        return -1;
    }
    if (c->blen + len > c->bcap) {
        size_t cap = c->bcap ? c->bcap * 2 : 1024;
        while (cap < c->blen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *nb = vd_realloc(c->body, cap);
        if (!nb) {
            c->err_status = 500;
            return -1;
        }
        c->body = nb;
        c->bcap = cap;
    }
    memcpy(c->body + c->blen, at, len);
    c->blen += len;
    return 0;
}

static int method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET: return VD_HTTP_GET;
    case HTTP_HEAD: return VD_HTTP_HEAD;
    case HTTP_POST: return VD_HTTP_POST;
    default: return VD_HTTP_OTHER;
    }
}

/* The request the connection's buffers hold, as the handler sees it. */
static void build_req(http_conn *c, vd_http_req *req, unsigned method, int http_minor)
{
    req->method = method_of(method);
    req->method_name = vd_str_cstr(http_method_str((enum http_method)method));
    req->target = vd_str_make(c->head + c->url_off, c->url_len);
    /* Origin-form "/path?query"; an absolute-form target keeps its path too. */
    vd_str t = req->target;
    size_t start = 0;
    if (t.n && t.p[0] != '/') {
        const char *sl = memchr(t.p, '/', t.n);
        if (sl && sl + 1 < t.p + t.n && sl[1] == '/') {
            const char *path = memchr(sl + 2, '/', t.n - (size_t)(sl + 2 - t.p));
            start = path ? (size_t)(path - t.p) : t.n;
        }
    }
    const char *q = memchr(t.p + start, '?', t.n - start);
    size_t pend = q ? (size_t)(q - t.p) : t.n;
    const char *hash = memchr(t.p + start, '#', t.n - start);
    req->path = vd_str_make(t.p + start, pend - start);
    if (q) {
        size_t qend = hash && hash > q ? (size_t)(hash - t.p) : t.n;
        req->query = vd_str_make(q + 1, qend - pend - 1);
    } else {
        req->query = VD_STR_NULL;
    }
    req->nheaders = c->nh;
    for (unsigned i = 0; i < c->nh; i++) {
        req->headers[i].name = vd_str_make(c->head + c->h[i].noff, c->h[i].nlen);
        req->headers[i].value = vd_str_trim(vd_str_make(c->head + c->h[i].voff, c->h[i].vlen));
    }
    req->body = vd_str_make(c->body, c->blen);
    req->peer = c->peer;
    req->http_minor = http_minor;
}

/* Sends the handler's answer and sets the connection up for what follows:
 * the next request, or closing. in_parser: called from the parser's
 * callback (which must then be paused to stop). */
static void answer(http_conn *c, vd_http_resp *r, bool keep_alive, int http_minor, bool follows,
                   bool in_parser)
{
    vd_http_server *s = c->srv;
    bool keep = !r->close && (!s->draining || follows) && keep_alive;
    send_response(c, r, keep, http_minor);

    if (!keep) {
        if (in_parser)
            http_parser_pause(&c->parser, 1);
        set_reading(c, false);
        close_after_flush(c);
        return;
    }
    c->state = ST_IDLE;
    arm_timer(c, s->lim.keepalive_timeout);
    /* Backpressure: a client that does not read its answers stops being
     * read (its pipelined requests wait in the input buffer). */
    if (evbuffer_get_length(c->out) > s->lim.max_output) {
        c->read_paused = true;
        set_reading(c, false);
        if (in_parser)
            http_parser_pause(&c->parser, 1);
    }
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    vd_http_server *s = c->srv;
    vd_http_req *req = &s->req;
    build_req(c, req, p->method, p->http_minor);

    vd_http_resp *r = &s->resp;
    resp_reset(r);
    r->head_only = req->method == VD_HTTP_HEAD;
    r->conn = c;
    s->handler(s->arg, req, r);
    r->conn = NULL;
    if (c->park_cancel) {
        /* Parked: answered by vd_http_resume. The parser stops here; what
         * follows stays in c->in. */
        c->park_method = p->method;
        c->park_minor = p->http_minor;
        c->park_keep = http_should_keep_alive(p);
        c->state = ST_WAIT;
        arm_timer(c, s->lim.write_timeout);       /* a safety net: the waiter has its own deadline */
        http_parser_pause(p, 1);
        return 0;
    }
    /* Draining: pipelined requests already here are all answered; the
     * last one buffered gets "Connection: close". More than a head's final
     * CRLFCRLF after what the parser saw last, or bytes in the kernel we
     * have not read, mean another request follows (a false "yes" costs
     * nothing: the drain half-closes the connection once it is idle). */
    bool follows = false;
    if (s->draining) {
        char b;
        follows = c->more_buffered ||
                  (c->seen_end && c->chunk_end && c->chunk_end - c->seen_end > 4) ||
                  recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;   /* not read yet */
    }
    answer(c, r, http_should_keep_alive(p), p->http_minor, follows, true);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- libevent callbacks ---- */

static void process_input(http_conn *c)
{
    struct evbuffer *in = c->in;
    while (c->state < ST_CLOSING && !c->read_paused && c->state != ST_WAIT) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        size_t n = evbuffer_get_contiguous_space(in);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
        if (c->state == ST_NEW || c->state == ST_IDLE) {
            /* First byte of a request: from now the head must arrive within
             * header-timeout, however slowly the bytes trickle in. */
            c->state = ST_HEAD;
            arm_timer(c, c->srv->lim.header_timeout);
        }
        c->chunk_end = p + n;
        c->seen_end = NULL;
        c->more_buffered = len > n;
        size_t done = http_parser_execute(&c->parser, &settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->state >= ST_CLOSING) {
            /* Closing after an answer: what follows is dropped. */
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        evbuffer_drain(in, done);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            continue;
        }
        if (e != HPE_OK || done != n) {
            vd_http_stats *st = c->srv->st;
            if (c->err_status == 431 || e == HPE_HEADER_OVERFLOW) {
                VD_STAT_INC(st, err_header_too_large);
                char msg[96];
                snprintf(msg, sizeof msg, "request head over %zu bytes or %d header lines",
                         c->srv->lim.max_header, VD_HTTP_MAX_HEADERS);
                fail(c, 431, "header_too_large", msg);
            } else if (c->err_status == 413) {
                VD_STAT_INC(st, err_body_too_large);
                char msg[96];
                snprintf(msg, sizeof msg, "request body over %zu bytes", c->srv->lim.max_body);
                fail(c, 413, "body_too_large", msg);
            } else if (c->err_status == 500) {
                VD_STAT_INC(st, err_internal);
                fail(c, 500, "internal", "out of memory");
            } else {
                VD_STAT_INC(st, err_parse);
                char msg[128];
                snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(e));
                fail(c, 400, "bad_request", msg);
            }
            return;
        }
    }
}

static void conn_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    http_conn *c = arg;
    ssize_t n = vd_sock_read(c->in, fd);
    if (n == VD_SOCK_AGAIN)
        return;
    if (c->state == ST_WAIT) {
        /* A request is parked: only watch. A reset frees the connection
         * (cancelling the wait); an EOF stops reading, the answer still goes
         * out and the EOF is seen again afterwards; pipelined input is kept,
         * up to a bound. */
        if (n < 0)
            conn_free(c);
        else if (n == 0 ||
                 evbuffer_get_length(c->in) > c->srv->lim.max_header + c->srv->lim.max_body)
            set_reading(c, false);
        return;
    }
    if (n <= 0) {
        /* A client that sent its request and then shut its side down still
         * gets the answer: flush, then close. */
        if (n == 0 && c->state < ST_CLOSING && evbuffer_get_length(c->out) > 0) {
            set_reading(c, false);
            close_after_flush(c);
            flush(c);
            return;
        }
        conn_free(c);
        return;
    }
    if (c->state >= ST_CLOSING) {
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        return;
    }
    process_input(c);
    flush(c);
}

static void conn_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    http_conn *c = arg;
    if (what & EV_TIMEOUT) {
        if (c->state != ST_LINGER)
            VD_STAT_INC(c->srv->st, conn_closed_idle);   /* not reading its answers */
        conn_free(c);
        return;
    }
    flush(c);
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_conn *c = arg;
    vd_http_stats *st = c->srv->st;
    switch (c->state) {
    case ST_HEAD:
    case ST_BODY: {
        VD_STAT_INC(st, err_timeout);
        char msg[96];
        snprintf(msg, sizeof msg, "request not received within %ld s", c->srv->lim.header_timeout);
        fail(c, 408, "timeout", msg);
        flush(c);
        break;
    }
    case ST_NEW:
    case ST_IDLE:
        VD_STAT_INC(st, conn_closed_idle);
        conn_free(c);
        break;
    default:
        conn_free(c);          /* linger over, or the last answer never drained */
        break;
    }
}

static http_conn *conn_new(vd_http_server *s, evutil_socket_t fd, bool rejected)
{
    http_conn *c = vd_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    c->rejected = rejected;
    if (!rejected && !(c->head = vd_malloc(s->lim.max_header))) {
        vd_free(c);
        return NULL;
    }
    c->fd = fd;
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_readable, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, conn_writable, c);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->timer = evtimer_new(s->base, conn_timer, c);
    if (!c->rev || !c->wev || !c->in || !c->out || !c->timer) {
        if (c->rev) event_free(c->rev);
        if (c->wev) event_free(c->wev);
        if (c->in) evbuffer_free(c->in);
        if (c->out) evbuffer_free(c->out);
        if (c->timer) event_free(c->timer);
        vd_free(c->head);
        vd_free(c);
        return NULL;
    }
    evutil_make_socket_nonblocking(fd);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = ST_NEW;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    return c;
}

static void accept_cb(evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    vd_http_server *s = arg;
    bool over = s->draining || !conns_take(s);
    if (over && s->nrejecting >= MAX_REJECTING) {
        /* Even the polite refusal has a bound. */
        VD_STAT_INC(s->st, conn_rejected);
        evutil_closesocket(fd);
        return;
    }
    http_conn *c = conn_new(s, fd, over);
    if (!c) {
        if (!over)
            conns_give(s);
        VD_STAT_INC(s->st, conn_rejected);
        evutil_closesocket(fd);
        return;
    }
    if ((size_t)salen <= sizeof c->peer)
        memcpy(&c->peer, sa, (size_t)salen);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (over) {
        s->nrejecting++;
        VD_STAT_INC(s->st, conn_rejected);
        vd_log(VD_LOG_DEBUG, "http-max-connections (%zu) reached: answering 503", s->lim.max_conns);
        vd_http_resp *r = &s->resp;
        resp_reset(r);
        vd_http_resp_error(r, 503, "too_many_connections",
                           "too many open connections, retry later");
        vd_http_resp_header(r, VD_STR_LIT("Retry-After"), VD_STR_LIT("1"));
        send_response(c, r, false, 1);
        set_reading(c, true);
        close_after_flush(c);
        flush(c);
        return;
    }
    s->nconns++;
    VD_STAT_INC(s->st, conn_accepted);
    VD_STAT_ADD(s->st, connections, 1);
    arm_timer(c, s->lim.header_timeout);
    set_reading(c, true);
}

void vd_http_server_adopt(vd_http_server *s, int fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNSPEC;
    accept_cb(fd, (struct sockaddr *)&ss, (int)sizeof ss, s);
}

vd_http_server *vd_http_server_start(struct event_base *base, const char *addr,
                                     const vd_http_limits *lim, vd_http_stats *st,
                                     vd_http_handler h, void *arg, char *err, size_t cap)
{
    vd_http_server *s = vd_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->base = base;
    s->lim = *lim;
    s->st = st;
    s->handler = h;
    s->arg = arg;
    s->resp.body = evbuffer_new();
    s->listener = s->resp.body ? vd_listener_start(base, addr, "http port", accept_cb, s, err, cap) : NULL;
    if (!s->listener) {
        if (!s->resp.body)
            snprintf(err, cap, "out of memory");
        vd_http_server_free(s);
        return NULL;
    }
    s->port = vd_listener_port(s->listener);
    s->resp.iface = lim->name ? lim->name : "http";
    s->resp.port = s->port;
    return s;
}

void vd_http_server_stop_accepting(vd_http_server *s)
{
    /* Connections already queued are taken (and drained), not reset. */
    vd_listener_accept_queued(s->listener, 4096);
    s->draining = 1;
    vd_listener_free(s->listener);
    s->listener = NULL;
}

/* One connection at shutdown: requests being received are still answered
 * (the last with "Connection: close"). One that waits for a next request
 * first reads what the kernel already holds (a request that arrived but
 * was not read yet is answered, not reset), and with nothing there is
 * half-closed and lingers (FIN, then input dropped until EOF), so closing
 * it never sends a reset. */
static void drain_one(http_conn *c)
{
    if ((c->state != ST_NEW && c->state != ST_IDLE) || c->read_paused ||
        evbuffer_get_length(c->out) > 0 || evbuffer_get_length(c->in) > 0)
        return;
    ssize_t n = vd_sock_read(c->in, c->fd);
    if (n == VD_SOCK_AGAIN) {
        set_reading(c, false);
        start_linger(c);
        return;
    }
    if (n <= 0) {
        conn_free(c);
        return;
    }
    process_input(c);
    flush(c);
}

size_t vd_http_server_drain(vd_http_server *s)
{
    s->draining = 1;
    http_conn *c = s->conns;
    while (c) {
        http_conn *next = c->next;
        drain_one(c);             /* may free c */
        c = next;
    }
    return s->nconns + s->nrejecting;
}

size_t vd_http_server_connections(const vd_http_server *s)
{
    return s->nconns;
}

int vd_http_server_port(const vd_http_server *s)
{
    return s->port;
}

void vd_http_server_free(vd_http_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    vd_listener_free(s->listener);
    if (s->resp.body)
        evbuffer_free(s->resp.body);
    vd_free(s);
}

/* ---- answering later ---- */

vd_http_parked *vd_http_park(vd_http_resp *resp, void (*cancel)(void *arg), void *arg)
{
    http_conn *c = resp->conn;
    if (!c || !cancel)
        return NULL;
    c->park_cancel = cancel;
    c->park_arg = arg;
    return (vd_http_parked *)c;
}

void vd_http_resume(vd_http_parked *p, vd_http_handler h, void *arg)
{
    http_conn *c = (http_conn *)p;
    vd_http_server *s = c->srv;
    c->park_cancel = NULL;
    c->park_arg = NULL;
    vd_http_req *req = &s->req;
    build_req(c, req, c->park_method, c->park_minor);
    vd_http_resp *r = &s->resp;
    resp_reset(r);
    r->head_only = req->method == VD_HTTP_HEAD;
    h(arg, req, r);
    char b;
    bool follows = s->draining && (evbuffer_get_length(c->in) > 0 ||
                                   recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0);
    answer(c, r, c->park_keep, c->park_minor, follows, false);
    if (c->state < ST_CLOSING && !c->read_paused) {
        /* What waited behind it: the buffered requests, then the socket. */
        set_reading(c, true);
        process_input(c);
    }
    flush(c);                 /* may free c */
}
