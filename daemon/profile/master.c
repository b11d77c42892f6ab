/* master.c — the profile store's current master (master.h). */
#include "profile/master.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char m_host[256];
static int m_port;
static _Atomic uint64_t m_gen;

void vd_profile_master_set(const char *host, int port)
{
    pthread_mutex_lock(&lock);
    if (atomic_load_explicit(&m_gen, memory_order_relaxed) == 0 || port != m_port ||
        strcmp(host, m_host) != 0) {
        snprintf(m_host, sizeof m_host, "%s", host);
        m_port = port;
        atomic_fetch_add_explicit(&m_gen, 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
}

uint64_t vd_profile_master_get(char *host, size_t cap, int *port)
{
    pthread_mutex_lock(&lock);
    uint64_t gen = atomic_load_explicit(&m_gen, memory_order_relaxed);
    if (gen) {
        snprintf(host, cap, "%s", m_host);
        *port = m_port;
    }
    pthread_mutex_unlock(&lock);
    return gen;
}

uint64_t vd_profile_master_gen(void)
{
    return atomic_load_explicit(&m_gen, memory_order_relaxed);
}
