#include "net/sockio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <sys/socket.h>

/* Nothing to read or no room to write right now: try again later. */
static int retriable(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

ssize_t vd_sock_read(struct evbuffer *in, evutil_socket_t fd)
{
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(in, 16384, &vec, 1) != 1)
        return -1;
    ssize_t n = recv(fd, vec.iov_base, vec.iov_len, 0);
    vec.iov_len = n > 0 ? (size_t)n : 0;
    evbuffer_commit_space(in, &vec, 1);
    if (n < 0 && retriable(EVUTIL_SOCKET_ERROR()))
        return VD_SOCK_AGAIN;
    return n;
}

int vd_sock_write(struct evbuffer *out, evutil_socket_t fd)
{
    while (evbuffer_get_length(out) > 0) {
        int n = evbuffer_write(out, fd);
        if (n < 0)
            return retriable(EVUTIL_SOCKET_ERROR()) ? 0 : -1;
        if (n == 0)
            break;
    }
    return 0;
}
