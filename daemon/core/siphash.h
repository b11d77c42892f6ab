/* siphash.h — SipHash-2-4 (Aumasson & Bernstein), 64- and 128-bit outputs.
 *
 * A keyed hash: without the 128-bit key nobody can compute, invert or
 * enumerate the values. The profile store names its keys with it so Redis
 * never holds a raw visitor or customer id (docs/PROFILES.md). */
#ifndef VD_CORE_SIPHASH_H
#define VD_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t vd_siphash24(const uint8_t key[16], const void *data, size_t len);
/* The 128-bit output variant; out[16] little-endian as in the reference. */
void vd_siphash24_128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16]);

#endif
