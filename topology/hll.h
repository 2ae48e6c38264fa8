/*
 * hll.h — HyperLogLog distinct counting for `distinct` aggregates. Precision 14:
 * 16,384 registers, standard error 1.04/sqrt(16384) = 0.81% (Ertl's improved
 * estimator, no bias tables). Small sets stay sparse — sorted (25-bit index,
 * rank) pairs, near exact and ~4 bytes per value serialized — up to
 * EDDY_HLL_SPARSE_MAX, then turn dense. Merging is exact (register-wise max) for
 * any mix of forms; the state depends only on the set of hashes added. One HLL
 * belongs to one thread at a time; const calls may run concurrently.
 */
#ifndef EDDY_HLL_H
#define EDDY_HLL_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDDY_HLL_P 14                 /* index bits of the dense form */
#define EDDY_HLL_M (1u << EDDY_HLL_P) /* dense registers */

/** Index bits of the sparse form: its estimate is linear counting over 2^25
 *  virtual registers, exact but for a ~n/2^26 relative error from collisions. */
#define EDDY_HLL_SPARSE_P 25

/** Sparse entries kept before turning dense (8 KiB of memory, ~6 KiB
 *  serialized, against 16 KiB and 12 KiB dense). */
#define EDDY_HLL_SPARSE_MAX 2048

/** Seed of eddy_hll_add()'s hash; fixed forever, as serialized HLLs merge. */
#define EDDY_HLL_SEED 0

typedef struct eddy_hll_s eddy_hll_t;

/** A new, empty (sparse) HLL; NULL if out of memory. */
eddy_hll_t *eddy_hll_new(void);

/** Frees the HLL. NULL is a no-op. */
void eddy_hll_destroy(eddy_hll_t *hll);

/** Empties the HLL back to the sparse form (frees the dense registers). */
void eddy_hll_reset(eddy_hll_t *hll);

/** Adds a value: its bytes, hashed with eddy_hash64(data, len, EDDY_HLL_SEED). */
eddy_err_t eddy_hll_add(eddy_hll_t *hll, const void *data, size_t len);

/** Adds a value by its 64-bit hash (which must be well mixed). Allocates only
 *  when the sparse list grows or turns dense; EDDY_ERR_NOMEM then leaves the HLL
 *  unchanged. */
eddy_err_t eddy_hll_add_hash(eddy_hll_t *hll, uint64_t hash);

/** dst = union of dst and src (src only read). EDDY_ERR_NOMEM leaves dst unchanged. */
eddy_err_t eddy_hll_merge(eddy_hll_t *dst, const eddy_hll_t *src);

/** Estimated number of distinct values added, rounded to an integer. */
uint64_t eddy_hll_estimate(const eddy_hll_t *hll);

/** True while the HLL is in the sparse form. */
bool eddy_hll_is_sparse(const eddy_hll_t *hll);

/**
 * Serialized form, version 1: u8 version, u8 form. Sparse (form 0): varint n,
 * then n varints, the first entry and the differences between consecutive
 * entries, an entry being index << 6 | rank (index 25 bits ascending, rank 1-40).
 * Dense (form 1): 16,384 6-bit registers packed four to three bytes,
 * little-endian. Equal HLLs give equal bytes. Empty: 3 bytes, 100 values ~400
 * bytes, dense 12,290 bytes.
 */
size_t eddy_hll_serialized_size(const eddy_hll_t *hll);

/** Writes the serialized form into buf. Returns its length, or 0 (buf contents
 *  then unspecified) if it needs more than cap bytes. */
size_t eddy_hll_serialize(const eddy_hll_t *hll, uint8_t *buf, size_t cap);

/** Replaces the HLL's contents with the one serialized in buf[0..len). Malformed,
 *  truncated or over-long input gives EDDY_ERR_INVALID (EDDY_ERR_NOMEM if out of
 *  memory) and leaves the HLL unchanged. */
eddy_err_t eddy_hll_deserialize(eddy_hll_t *hll, const uint8_t *buf, size_t len);

/** dst = union of dst and the HLL serialized in buf; errors as deserialize, dst
 *  unchanged on error. */
eddy_err_t eddy_hll_merge_serialized(eddy_hll_t *dst, const uint8_t *buf, size_t len);

#endif /* EDDY_HLL_H */
