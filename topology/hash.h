/*
 * hash.h — eddy's 64-bit non-cryptographic hash: xxHash64, written from its
 * public specification and checked against the reference implementation's
 * output in tests/unit/test_hll.c. Sketches that are serialized and merged across
 * processes depend on it, so its output must never change. Pure functions, safe
 * from any thread; the result does not depend on the host's byte order.
 */
#ifndef EDDY_HASH_H
#define EDDY_HASH_H

#include <stddef.h>
#include <stdint.h>

/** XXH64 of `len` bytes at `data` (may be NULL when len is 0) with `seed`. */
uint64_t eddy_hash64(const void *data, size_t len, uint64_t seed);

#endif /* EDDY_HASH_H */
