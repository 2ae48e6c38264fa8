/*
 * aggregate.h — the state behind a store's aggregates for one (window, key).
 *
 * A store's aggregate list is compiled once into a layout of slots shared where
 * possible: one record count, one counter per count_if, one sum/min/max/count per
 * numeric field, one quantile sketch per field with percentiles, one HyperLogLog
 * per field with distinct counts. Ratios and means are derived when read. States
 * update in place without allocation (sketches allocate only when they open
 * buckets beyond their arrays), merge exactly (partials of several tasks or
 * instances), serialize to a compact versioned byte string and render to JSON
 * with the declared names, saying which percentiles lost accuracy.
 *
 * A layout is immutable and shared by every thread; a state belongs to one thread.
 */
#ifndef EDDY_AGGREGATE_H
#define EDDY_AGGREGATE_H

#include "eddy.h"
#include "topology/topology_int.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eddy_agg_layout_s eddy_agg_layout_t;
typedef struct eddy_agg_s eddy_agg_t;

/** Compiles the aggregates of `store` (borrowed; must outlive the layout). */
eddy_agg_layout_t *eddy_agg_layout_new(const eddy_store_def_t *store, char *errstr,
                                       size_t errstr_size);
void eddy_agg_layout_destroy(eddy_agg_layout_t *layout);

/** A fresh, empty state. NULL if out of memory. */
eddy_agg_t *eddy_agg_new(const eddy_agg_layout_t *layout);
void eddy_agg_destroy(eddy_agg_t *agg);

/** Folds one event (its extracted field values, indexed by the topology's field
 *  table) into the state. Returns how many of its sketches lost accuracy with
 *  this event (collapsed for the first time: eddy_sketch_collapsed()). */
int eddy_agg_update(const eddy_agg_layout_t *layout, eddy_agg_t *agg, const eddy_value_t *values);

/** dst += src, exactly (counts, sums, sketches and HLLs all merge). */
eddy_err_t eddy_agg_merge(const eddy_agg_layout_t *layout, eddy_agg_t *dst, const eddy_agg_t *src);

/** Bytes eddy_agg_serialize needs for this state. */
size_t eddy_agg_serialized_size(const eddy_agg_layout_t *layout, const eddy_agg_t *agg);

/** Writes the state into buf (cap bytes); returns the length, 0 if cap is too small. */
size_t eddy_agg_serialize(const eddy_agg_layout_t *layout, const eddy_agg_t *agg, uint8_t *buf,
                          size_t cap);

/** Replaces agg's content with a serialized state; rejects malformed input. */
eddy_err_t eddy_agg_deserialize(const eddy_agg_layout_t *layout, eddy_agg_t *agg,
                                const uint8_t *buf, size_t len);

/** Records counted in this state (the store's base count). */
int64_t eddy_agg_count(const eddy_agg_t *agg);

/** The member of eddy_agg_to_json's output that lists degraded percentiles; no
 *  aggregate may have this name. */
#define EDDY_AGG_DEGRADED "degraded"

/** Sets one member per declared aggregate on `obj`, named as declared:
 *  integers for counts, reals for the rest, null where undefined (a mean or a
 *  percentile of no values, a ratio over zero, a sum beyond the double range).
 *  When some percentile does not keep its sketch's 1% bound (its rank fell among
 *  values the sketch folded together: eddy_sketch_quantile_degraded()), also
 *  sets EDDY_AGG_DEGRADED to the array of their names, in declaration order;
 *  the member is absent otherwise. */
void eddy_agg_to_json(const eddy_agg_layout_t *layout, const eddy_agg_t *agg, json_t *obj);

#endif /* EDDY_AGGREGATE_H */
