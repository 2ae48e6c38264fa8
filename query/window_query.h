/*
 * window_query.h — reads a store's committed windows across every local task and
 * merges the partials of each (window start, group key) into one aggregate. Only
 * partitions this instance owns now count (the state of a partition that moved
 * away is stale). The
 * REST API and the sink emitter both read windows through here. Any thread; the
 * scan sees one consistent snapshot of the state database.
 */
#ifndef EDDY_WINDOW_QUERY_H
#define EDDY_WINDOW_QUERY_H

#include "engine/runtime.h"

#include <jansson.h>

/** Called once per merged window, in (start, key) order. The aggregate is
 *  borrowed for the call. */
typedef void(eddy_window_fn)(int64_t start, const char *key, size_t key_len, const eddy_agg_t *agg,
                             void *opaque);

/** Visits the merged windows of store `store` starting in [from, to), only those
 *  of group key `key` if it is not NULL. *corrupt is set if some stored entry
 *  could not be read (it is skipped). EDDY_ERR_STATE while the local state is
 *  damaged or being reset (engine/local_state.h). */
eddy_err_t eddy_windows_merged(eddy_runtime_t *rt, int store, int64_t from, int64_t to,
                               const char *key, eddy_window_fn *fn, void *opaque, bool *corrupt,
                               char *errstr, size_t errstr_size);

/** Sets on `body` what an answer of eddy_windows_merged() covers: "partitions"
 *  (those read), "restoring" (of those, still being rebuilt: their windows are
 *  partial) and "complete" (every source partition read, none restoring). */
void eddy_windows_coverage_json(eddy_runtime_t *rt, json_t *body);

/** The stream time of the state eddy_windows_merged() reads: the largest
 *  committed stream time of the partitions it reads; INT64_MIN while none has
 *  one. */
int64_t eddy_windows_stream_time(eddy_runtime_t *rt);

/** {"key":...,"start":...,"end":..., <aggregates by declared name>} */
json_t *eddy_window_to_json(const eddy_runtime_t *rt, int store, int64_t start, const char *key,
                            size_t key_len, const eddy_agg_t *agg);

#endif /* EDDY_WINDOW_QUERY_H */
