/* recent_errors.c — a fixed ring of the last errors (see the header). */
#include "net/recent_errors.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vd_recent_error ring[VD_RECENT_ERRORS];
static uint64_t added;            /* ring[added % N] is the next slot */

void vd_recent_error_add(const char *iface, int port, const char *code, const char *message)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    vd_recent_error e;
    e.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(e.iface, sizeof e.iface, "%s", iface ? iface : "");
    e.port = port;
    snprintf(e.code, sizeof e.code, "%s", code ? code : "");
    snprintf(e.message, sizeof e.message, "%s", message ? message : "");
    pthread_mutex_lock(&lock);
    ring[added % VD_RECENT_ERRORS] = e;
    added++;
    pthread_mutex_unlock(&lock);
}

unsigned vd_recent_errors_get(vd_recent_error *out, uint64_t *total)
{
    pthread_mutex_lock(&lock);
    uint64_t n = added < VD_RECENT_ERRORS ? added : VD_RECENT_ERRORS;
    for (uint64_t i = 0; i < n; i++)
        out[i] = ring[(added - 1 - i) % VD_RECENT_ERRORS];
    if (total)
        *total = added;
    pthread_mutex_unlock(&lock);
    return (unsigned)n;
}
