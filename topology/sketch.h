/*
 * sketch.h — a mergeable quantile sketch with 1% relative error (DDSketch) for
 * `percentile` aggregates. Bucket i holds magnitudes in (gamma^(i-1), gamma^i],
 * gamma = (1 + a) / (1 - a), a = EDDY_SKETCH_ALPHA; negative values have buckets
 * of their own, values with |v| < EDDY_SKETCH_MIN_VALUE one zero bucket. The
 * counts per bucket are exact for up to EDDY_SKETCH_MAX_BUCKETS distinct
 * non-empty buckets, whatever values they hold, so one value (or a few) far from
 * the others costs one bucket each and degrades nobody's accuracy. Beyond that
 * bound the lowest buckets are folded together and the sketch says so.
 *
 * The state is a function of the multiset of values added, never of their order,
 * so merging the sketches of any split of the data gives bit-for-bit the sketch
 * of all of it (count, min, max, every bucket, the collapse; the floating-point
 * sum up to rounding). One sketch belongs to one thread at a time; const calls
 * on an unchanging sketch may run concurrently.
 */
#ifndef EDDY_SKETCH_H
#define EDDY_SKETCH_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Relative accuracy: see eddy_sketch_quantile() for what it guarantees. */
#define EDDY_SKETCH_ALPHA 0.01

/** Values with |v| below this (-0.0 included) count as exactly 0: absolute
 *  error < 1e-9 for them. */
#define EDDY_SKETCH_MIN_VALUE 1e-9

/** Distinct non-empty buckets a sketch keeps exactly, the zero bucket and both
 *  signs together. 2048 contiguous buckets span a factor of gamma^2048 ~ 6e17;
 *  any finite double falls in one of ~73,000 possible buckets. */
#define EDDY_SKETCH_MAX_BUCKETS 2048

/** The most memory one sketch holds (its struct and arrays), whatever it was
 *  fed: 2 x 1024 dense slots of 8 bytes plus 2049 sparse entries of 12. */
#define EDDY_SKETCH_MAX_MEMORY 41200

typedef struct eddy_sketch_s eddy_sketch_t;

/** A new, empty sketch; NULL if out of memory. Bucket arrays are allocated by
 *  the first add and grow with the buckets in use. */
eddy_sketch_t *eddy_sketch_new(void);

/** Frees the sketch. NULL is a no-op. */
void eddy_sketch_destroy(eddy_sketch_t *sketch);

/** Empties the sketch but keeps its bucket arrays, so refilling it over a
 *  similar range does not allocate. */
void eddy_sketch_reset(eddy_sketch_t *sketch);

/** Adds one value. Allocates only when v opens a bucket outside the arrays held
 *  so far. EDDY_ERR_INVALID for NaN and infinities, EDDY_ERR_NOMEM if an array
 *  could not grow; the sketch is unchanged in both cases. */
eddy_err_t eddy_sketch_add(eddy_sketch_t *sketch, double v);

/** dst = dst merged with src (src is only read; dst == src doubles every count).
 *  EDDY_ERR_NOMEM leaves dst unchanged. */
eddy_err_t eddy_sketch_merge(eddy_sketch_t *dst, const eddy_sketch_t *src);

/**
 * The q-quantile, q in [0, 1]; NaN if the sketch is empty or q is not in [0, 1].
 *
 * Rank definition: with the n values in ascending order x[0] <= ... <= x[n-1],
 * the q-quantile is x[floor(q * (n - 1))]. The estimate e satisfies
 * |e - x| <= EDDY_SKETCH_ALPHA * |x| for that x, up to double rounding (when
 * |x| < EDDY_SKETCH_MIN_VALUE: |e| < EDDY_SKETCH_MIN_VALUE), unless
 * eddy_sketch_quantile_degraded() says otherwise. q = 0 and q = 1 give the exact
 * min and max. Every estimate lies in [min, max].
 *
 * That holds whenever the values fall in at most EDDY_SKETCH_MAX_BUCKETS distinct
 * buckets. Beyond, the sketch keeps the highest EDDY_SKETCH_MAX_BUCKETS - 1
 * buckets exact and folds every lower value into the lowest bucket it keeps
 * (eddy_sketch_collapsed()): the quantiles whose rank falls among the folded
 * values are reported as that bucket (overestimated), all others keep the bound.
 */
double eddy_sketch_quantile(const eddy_sketch_t *sketch, double q);

/** True if eddy_sketch_quantile(sketch, q) does not keep the 1% bound: the
 *  sketch collapsed and the rank of q (neither the min nor the max) falls in the
 *  bucket holding the folded values. False for an empty sketch or a bad q. */
bool eddy_sketch_quantile_degraded(const eddy_sketch_t *sketch, double q);

/** Exact number of values added (merged ones included). */
uint64_t eddy_sketch_count(const eddy_sketch_t *sketch);
/** Sum of the values (0 when empty; may overflow to an infinity). */
double eddy_sketch_sum(const eddy_sketch_t *sketch);
/** Exact smallest value; NaN when empty. */
double eddy_sketch_min(const eddy_sketch_t *sketch);
/** Exact largest value; NaN when empty. */
double eddy_sketch_max(const eddy_sketch_t *sketch);

/** True if the values ever fell in more than EDDY_SKETCH_MAX_BUCKETS distinct
 *  buckets, so that the lowest ones were folded together (see quantile); a
 *  sketch merged with a collapsed one is collapsed too. */
bool eddy_sketch_collapsed(const eddy_sketch_t *sketch);

/** Bytes the sketch holds (its struct and arrays), at most
 *  EDDY_SKETCH_MAX_MEMORY. */
size_t eddy_sketch_memory(const eddy_sketch_t *sketch);

/**
 * Serialized form, version 2 (integers are LEB128 varints, doubles IEEE-754
 * little-endian): u8 version, u8 flags (bit 0: collapsed), count; when count > 0:
 * f64 sum, f64 min, f64 max, the number of non-empty buckets, the key of the
 * lowest one as a zigzag varint, then items up to the last non-empty bucket: a
 * count c > 0 is the next key's count, c = 0 followed by k says the next k + 1
 * keys are empty. Keys order the buckets by value: negative buckets -36525..-1,
 * the zero bucket 0, positive buckets 1..36525 (bucket index + 1037). Equal
 * sketches give equal bytes. Empty: 3 bytes; 100k latencies (mean 80 ms, sd 20):
 * ~280 bytes (one outlier more: +5); 100k values spread over six decades:
 * ~1.4 KB; 2048 contiguous buckets: ~4 KB; at most ~29 KB (2048 scattered
 * buckets, counts above 2^63).
 *
 * Version 1 (written before) is still read: the same header, then the zero
 * count and one store per sign (span, zigzag first index, span counts; negative
 * indices mirrored), flags bit 0 / bit 1 for a collapsed negative / positive
 * store. It is read into the buckets above; a collapsed store folds everything
 * below its lowest bucket into it, so the quantiles it lost are reported as such.
 */
size_t eddy_sketch_serialized_size(const eddy_sketch_t *sketch);

/** Writes the serialized form into buf. Returns its length, or 0 (buf contents
 *  then unspecified) if it needs more than cap bytes. */
size_t eddy_sketch_serialize(const eddy_sketch_t *sketch, uint8_t *buf, size_t cap);

/** Replaces the sketch's contents with the sketch serialized in buf[0..len)
 *  (version 2 or 1). Any malformed, truncated or over-long input gives
 *  EDDY_ERR_INVALID (EDDY_ERR_NOMEM if out of memory) and leaves the sketch
 *  unchanged. */
eddy_err_t eddy_sketch_deserialize(eddy_sketch_t *sketch, const uint8_t *buf, size_t len);

/** dst = dst merged with the serialized sketch in buf; errors as deserialize, dst
 *  unchanged on error. */
eddy_err_t eddy_sketch_merge_serialized(eddy_sketch_t *dst, const uint8_t *buf, size_t len);

#endif /* EDDY_SKETCH_H */
