/* master.h — where the profile store's master is, for a redis-sentinel://
 * --profiles URL (docs/PROFILES.md, "Sentinel").
 *
 * One holder per process (there is one --profiles URL). main.c resolves the
 * master at start-up and runs one vd_sentinel watcher (store/sentinel.h) on
 * the control thread; its callback publishes each address here. Every
 * worker's store (store.c) reads the address when it (re)connects and
 * compares the generation with the one its link was made to: a newer one
 * means a failover, and the worker reconnects to the new master. The
 * workers never call into the watcher, which lives on another thread.
 *
 * Thread-safe: the address under a mutex, the generation an atomic (one
 * relaxed load for the check). */
#ifndef VD_PROFILE_MASTER_H
#define VD_PROFILE_MASTER_H

#include <stddef.h>
#include <stdint.h>

/* Publishes the master's address; the generation grows when it changed. */
void vd_profile_master_set(const char *host, int port);
/* Copies the current address; returns its generation (0: none known yet,
 * host and port untouched). */
uint64_t vd_profile_master_get(char *host, size_t cap, int *port);
/* The current generation (relaxed: a cheap check for a change). */
uint64_t vd_profile_master_gen(void);

#endif
