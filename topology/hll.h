/*
 * hll.h — HyperLogLog distinct counting for `distinct` aggregates.
 *
 * Precision 14: 16,384 one-byte registers, standard error 1.04/sqrt(16384) =
 * 0.81% over the whole range (Ertl's improved estimator, no bias tables; small
 * cardinalities come out near exact). Merging is exact (register-wise max).
 * Serialized sparsely — only non-zero registers — while that is smaller, so a
 * window with a few hundred users costs about a kilobyte. One HLL belongs to one
 * thread at a time; adding never allocates.
 */
#ifndef EDDY_HLL_H
#define EDDY_HLL_H

#include "eddy.h"

#include <stddef.h>
#include <stdint.h>

#define EDDY_HLL_P 14
#define EDDY_HLL_M (1u << EDDY_HLL_P)

typedef struct eddy_hll_s eddy_hll_t;

eddy_hll_t *eddy_hll_new(void);
void eddy_hll_destroy(eddy_hll_t *hll);
void eddy_hll_reset(eddy_hll_t *hll);

/** Adds a value (its bytes are hashed with xxHash64). */
void eddy_hll_add(eddy_hll_t *hll, const void *data, size_t len);
/** Adds a value by its 64-bit hash. */
void eddy_hll_add_hash(eddy_hll_t *hll, uint64_t hash);

/** dst = union of dst and src. */
eddy_err_t eddy_hll_merge(eddy_hll_t *dst, const eddy_hll_t *src);

/** Estimated number of distinct values added. */
uint64_t eddy_hll_estimate(const eddy_hll_t *hll);

size_t eddy_hll_serialized_size(const eddy_hll_t *hll);
/** Writes at most cap bytes; returns the length or 0 if cap is too small. */
size_t eddy_hll_serialize(const eddy_hll_t *hll, uint8_t *buf, size_t cap);
/** Replaces hll's registers; EDDY_ERR_INVALID on malformed input (hll unchanged). */
eddy_err_t eddy_hll_deserialize(eddy_hll_t *hll, const uint8_t *buf, size_t len);

#endif /* EDDY_HLL_H */
