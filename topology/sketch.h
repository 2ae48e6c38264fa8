/*
 * sketch.h — the quantile sketch behind `percentile` aggregates: a DDSketch
 * (Masson, Rim, Lee, VLDB 2019) with relative accuracy 1%.
 *
 * Guarantee: for n values and a quantile q, let x be the value of rank
 * floor(q*(n-1)) (0-based) in sorted order; eddy_sketch_quantile returns x' with
 * |x' - x| <= 0.01*|x|. Values are bucketed by ceil(log_gamma |x|), gamma =
 * 1.01/0.99; positives and negatives have their own buckets, |x| < 1e-9 counts
 * as zero. Each side keeps at most 2048 buckets (a range of 10^17 at this
 * accuracy); past that the lowest buckets are folded together and the guarantee
 * holds for the upper quantiles only. Merging is exact: a sketch of the union
 * equals the merge of the parts' sketches. count, sum, min and max are exact.
 *
 * One sketch belongs to one thread at a time. Adding allocates only when the
 * bucket range grows.
 */
#ifndef EDDY_SKETCH_H
#define EDDY_SKETCH_H

#include "eddy.h"

#include <stddef.h>
#include <stdint.h>

#define EDDY_SKETCH_ALPHA 0.01

typedef struct eddy_sketch_s eddy_sketch_t;

eddy_sketch_t *eddy_sketch_new(void);
void eddy_sketch_destroy(eddy_sketch_t *sketch);
void eddy_sketch_reset(eddy_sketch_t *sketch);

void eddy_sketch_add(eddy_sketch_t *sketch, double value);

/** dst += src. EDDY_ERR_NOMEM if dst could not grow (dst unchanged then). */
eddy_err_t eddy_sketch_merge(eddy_sketch_t *dst, const eddy_sketch_t *src);

/** The q-quantile (q in [0, 1]) within the stated error; NAN if empty. */
double eddy_sketch_quantile(const eddy_sketch_t *sketch, double q);

uint64_t eddy_sketch_count(const eddy_sketch_t *sketch);
double eddy_sketch_sum(const eddy_sketch_t *sketch);
double eddy_sketch_min(const eddy_sketch_t *sketch); /**< NAN if empty */
double eddy_sketch_max(const eddy_sketch_t *sketch); /**< NAN if empty */

size_t eddy_sketch_serialized_size(const eddy_sketch_t *sketch);
/** Writes at most cap bytes; returns the length or 0 if cap is too small. */
size_t eddy_sketch_serialize(const eddy_sketch_t *sketch, uint8_t *buf, size_t cap);
/** Replaces the sketch's content; EDDY_ERR_INVALID on malformed input (sketch unchanged). */
eddy_err_t eddy_sketch_deserialize(eddy_sketch_t *sketch, const uint8_t *buf, size_t len);

#endif /* EDDY_SKETCH_H */
