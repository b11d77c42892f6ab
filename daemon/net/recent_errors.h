/* recent_errors.h — the last VD_RECENT_ERRORS errors answered on any port
 * (time, interface, port, code, message), for the dashboard's "recent
 * errors" panel. Messages are the ones sent to the client, which name
 * fields and limits, never a visitor's values (no address, User-Agent, URL).
 *
 * One ring for the process behind a mutex taken only when an error is
 * answered (never by a successful request) and by a stats reader copying
 * it: off the hot path. */
#ifndef VD_NET_RECENT_ERRORS_H
#define VD_NET_RECENT_ERRORS_H

#include <stdint.h>

#define VD_RECENT_ERRORS 50

typedef struct vd_recent_error {
    int64_t time_ms;              /* unix milliseconds */
    char iface[8];                /* rpc, edge, stats */
    int port;
    char code[32];
    char message[160];            /* truncated */
} vd_recent_error;

void vd_recent_error_add(const char *iface, int port, const char *code, const char *message);
/* Copies the errors, newest first, into out[VD_RECENT_ERRORS]; returns how
 * many; *total is the count since start (older ones dropped). */
unsigned vd_recent_errors_get(vd_recent_error *out, uint64_t *total);

#endif
