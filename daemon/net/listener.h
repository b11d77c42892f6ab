/* listener.h — a TCP listening socket on an event base, shared by every port.
 *
 * Numeric addresses only (a DNS lookup at start-up could block for seconds),
 * SO_REUSEPORT so each worker can own a listener on the same port, and when
 * accept fails (EMFILE, ENFILE) a 100 ms pause instead of spinning on a
 * listener that stays readable. */
#ifndef VD_NET_LISTENER_H
#define VD_NET_LISTENER_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sockaddr;
struct sockaddr_storage;

typedef struct vd_listener vd_listener;
typedef void (*vd_accept_fn)(evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg);

/* Parses "HOST:PORT" / "[v6]:PORT" ("localhost" = 127.0.0.1, empty host =
 * any) into a sockaddr; 0 or -1 with a message. */
int vd_parse_listen(const char *addr, struct sockaddr_storage *ss, int *sslen, char *err,
                    size_t cap);

/* Checks, before any worker binds, that nothing else listens on ADDR: a
 * throwaway bind without SO_REUSEPORT fails with EADDRINUSE where a plain
 * SO_REUSEPORT bind would silently join another process's group (a second
 * variantd on the same port would take half the connections). Port 0 is
 * resolved here, so every worker binds the same ephemeral port. *resolved is
 * a malloc'd "HOST:PORT" ("[v6]:PORT") with the concrete port. */
int vd_listen_claim(const char *addr, const char *what, char **resolved, int *held, char *err,
                    size_t cap);
/* The claiming socket stays bound and *held is its fd, to close just before
 * the workers bind: while it is bound (without SO_REUSEPORT) nothing else
 * can take the port, and a second port 0 cannot be given the same port. */

/* 1 if two listen addresses would take the same connections (same port, and
 * the same address, or a wildcard covering the other: 0.0.0.0 covers IPv4,
 * [::] both families; ::ffff:a.b.c.d counts as a.b.c.d), else 0. */
int vd_listen_overlap(const char *a, const char *b);

/* what names the port in messages ("decision port", "edge port"). */
vd_listener *vd_listener_start(struct event_base *base, const char *addr, const char *what,
                               vd_accept_fn fn, void *arg, char *err, size_t cap);
/* The port actually bound (useful with port 0). */
uint16_t vd_listener_port(const vd_listener *l);
/* At shutdown, before vd_listener_free: accepts (up to max) connections the
 * kernel completed but we had not accepted yet, handing them to the accept
 * function, so their requests are answered: closing a listener resets the
 * connections still in its queue. Returns how many. */
size_t vd_listener_accept_queued(vd_listener *l, size_t max);
void vd_listener_free(vd_listener *l);

#endif
