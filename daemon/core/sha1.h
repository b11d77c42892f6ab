/* sha1.h — SHA-1 (FIPS 180-1), only to name Lua scripts for Redis EVALSHA
 * (Redis identifies a cached script by the SHA-1 of its body). Not for
 * anything that needs collision resistance. */
#ifndef VD_CORE_SHA1_H
#define VD_CORE_SHA1_H

#include <stddef.h>
#include <stdint.h>

void vd_sha1(const void *data, size_t len, uint8_t out[20]);
/* 40 lower-case hex digits + NUL. */
void vd_sha1_hex(const void *data, size_t len, char out[41]);

#endif
