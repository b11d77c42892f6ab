#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

struct vd_listener {
    struct evconnlistener *lev;
    struct event *resume;         /* re-enables accept after a failure */
    vd_accept_fn fn;
    void *arg;
    const char *what;
};

int vd_parse_listen(const char *addr, struct sockaddr_storage *ss, int *sslen, char *err,
                    size_t cap)
{
    char host[256];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            snprintf(err, cap, "bad address '%s' (want [v6]:PORT)", addr);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(close - addr - 1), addr + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon) {
            snprintf(err, cap, "bad address '%s' (want HOST:PORT)", addr);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end || p < 0 || p > 65535) {
        snprintf(err, cap, "bad port in '%s'", addr);
        return -1;
    }
    if (strcmp(host, "localhost") == 0 || host[0] == '\0')
        snprintf(host, sizeof host, "%s", host[0] ? "127.0.0.1" : "0.0.0.0");
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        *sslen = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        *sslen = sizeof *s6;
    } else {
        snprintf(err, cap, "'%s' is not a numeric IPv4/IPv6 address", host);
        return -1;
    }
    return 0;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

int vd_listen_claim(const char *addr, const char *what, char **resolved, int *held, char *err,
                    size_t cap)
{
    struct sockaddr_storage ss;
    int sslen;
    char perr[200];
    if (vd_parse_listen(addr, &ss, &sslen, perr, sizeof perr) != 0) {
        snprintf(err, cap, "%s: %s", what, perr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, cap, "%s %s: socket: %s", what, addr, strerror(errno));
        return -1;
    }
    /* SO_REUSEADDR only: sockets in TIME_WAIT from a previous run do not
     * count, a listening socket (ours or anyone's) does. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            snprintf(err, cap, "%s %s: address already in use (another variantd, or another "
                     "program, listens there)", what, addr);
        else
            snprintf(err, cap, "%s %s: cannot bind: %s", what, addr, strerror(e));
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        snprintf(err, cap, "%s %s: getsockname: %s", what, addr, strerror(errno));
        close(fd);
        return -1;
    }
    char host[INET6_ADDRSTRLEN];
    bool v6 = bound.ss_family == AF_INET6;
    inet_ntop(bound.ss_family,
              v6 ? (const void *)&((struct sockaddr_in6 *)&bound)->sin6_addr
                 : (const void *)&((struct sockaddr_in *)&bound)->sin_addr,
              host, sizeof host);
    char buf[INET6_ADDRSTRLEN + 16];
    snprintf(buf, sizeof buf, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)sockaddr_port(&bound));
    if (!(*resolved = vd_strdup(buf))) {
        snprintf(err, cap, "out of memory");
        close(fd);
        return -1;
    }
    *held = fd;
    return 0;
}

/* An address as (family, bytes, port), IPv4-mapped IPv6 folded to IPv4. */
typedef struct listen_key {
    int family;                   /* 4 or 6 */
    uint8_t addr[16];
    uint16_t port;
} listen_key;

static int listen_key_of(const char *s, listen_key *k)
{
    struct sockaddr_storage ss;
    int len;
    char err[128];
    if (vd_parse_listen(s, &ss, &len, err, sizeof err) != 0)
        return -1;
    memset(k, 0, sizeof *k);
    k->port = sockaddr_port(&ss);
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            k->family = 4;
            memcpy(k->addr, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            k->family = 6;
            memcpy(k->addr, s6->sin6_addr.s6_addr, 16);
        }
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        k->family = 4;
        memcpy(k->addr, &s4->sin_addr, 4);
    }
    return 0;
}

static int is_any(const listen_key *k)
{
    static const uint8_t zero[16];
    return memcmp(k->addr, zero, k->family == 4 ? 4 : 16) == 0;
}

int vd_listen_overlap(const char *a, const char *b)
{
    listen_key x, y;
    if (listen_key_of(a, &x) != 0 || listen_key_of(b, &y) != 0)
        return 0;
    if (x.port != y.port || x.port == 0)
        return 0;
    /* [::] is dual-stack (our sockets leave IPV6_V6ONLY off): it covers IPv4 too. */
    if ((x.family == 6 && is_any(&x)) || (y.family == 6 && is_any(&y)))
        return 1;
    if (x.family != y.family)
        return 0;
    return is_any(&x) || is_any(&y) || memcmp(x.addr, y.addr, sizeof x.addr) == 0;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lev;
    vd_listener *l = arg;
    l->fn(fd, sa, salen, l->arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vd_listener *l = arg;
    evconnlistener_enable(l->lev);
}

static void on_error(struct evconnlistener *lev, void *arg)
{
    vd_listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    vd_warn("%s: accept failed: %s; pausing accept for 100 ms", l->what,
            evutil_socket_error_to_string(e));
    evconnlistener_disable(lev);
    struct timeval tv = { 0, 100000 };
    event_add(l->resume, &tv);
}

vd_listener *vd_listener_start(struct event_base *base, const char *addr, const char *what,
                               vd_accept_fn fn, void *arg, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    int sslen;
    if (vd_parse_listen(addr, &ss, &sslen, err, cap) != 0)
        return NULL;
    vd_listener *l = vd_calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    l->fn = fn;
    l->arg = arg;
    l->what = what;
    l->resume = evtimer_new(base, on_resume, l);
    l->lev = evconnlistener_new_bind(base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                         LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                     1024, (struct sockaddr *)&ss, sslen);
    if (!l->lev || !l->resume) {
        snprintf(err, cap, "cannot listen on %s: %s", addr, strerror(errno));
        vd_listener_free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, on_error);
    return l;
}

uint16_t vd_listener_port(const vd_listener *l)
{
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&bound, &blen) != 0)
        return 0;
    return sockaddr_port(&bound);
}

size_t vd_listener_accept_queued(vd_listener *l, size_t max)
{
    if (!l || !l->lev)
        return 0;
    evutil_socket_t lfd = evconnlistener_get_fd(l->lev);
    size_t n = 0;
    while (n < max) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;                /* EAGAIN: the queue is empty (or out of fds) */
        }
        l->fn(fd, (struct sockaddr *)&ss, (int)len, l->arg);
        n++;
    }
    return n;
}

void vd_listener_free(vd_listener *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    if (l->resume)
        event_free(l->resume);
    vd_free(l);
}
