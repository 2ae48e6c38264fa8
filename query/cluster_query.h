/*
 * cluster_query.h — store windows answered for the whole application, from any
 * instance: the partial aggregates of this instance's tasks merged with those of
 * the peers (engine/instances.h) that own the other partitions, which they serve
 * on GET /api/internal/stores/{store}/partials. Peers are asked in parallel, each
 * once, with query.peer.timeout.ms; they are asked only for local partials, so a
 * query never recurses. Every answer says which partitions it covers; a partition
 * no instance answered for is "unreachable", never silently missing.
 *
 * Any thread (the HTTP server's, the WebSocket thread); only reads the runtime.
 */
#ifndef EDDY_CLUSTER_QUERY_H
#define EDDY_CLUSTER_QUERY_H

#include "engine/runtime.h"
#include "query/http.h"
#include "query/window_query.h"

#include <jansson.h>
#include <stdbool.h>

/** What one answer covers. Filled by eddy_windows_cluster(); free with
 *  eddy_coverage_free(). */
typedef struct eddy_coverage_s {
    int source_partitions;                 /* partitions of the source topic */
    bool local_only;                       /* peers were not asked */
    bool covered[EDDY_MAX_PARTITIONS];     /* read from a task, here or at a peer */
    bool restoring[EDDY_MAX_PARTITIONS];   /* of those, still restoring: partial */
    bool failed[EDDY_MAX_PARTITIONS];      /* of those, stopped in the error state: as of
                                              its last commit */
    bool unreachable[EDDY_MAX_PARTITIONS]; /* no instance answered for it */
    json_t *peers;                         /* [{id, server, partitions, error?}] (owned) */
} eddy_coverage_t;

/** Visits the windows of `store` starting in [from, to) (only group key `key`
 *  if not NULL), merged over every partition this instance or, unless
 *  local_only, a live peer could read, in (start, key) order. *cov says which.
 *  *corrupt is set if some entry (local or a peer's) could not be read. Fails
 *  with EDDY_ERR_STATE while the local state is damaged or being reset
 *  (engine/local_state.h), EDDY_ERR_CORRUPT when this read found it damaged. */
eddy_err_t eddy_windows_cluster(eddy_runtime_t *rt, int store, int64_t from, int64_t to,
                                const char *key, bool local_only, eddy_window_fn *fn, void *opaque,
                                eddy_coverage_t *cov, bool *corrupt, char *errstr,
                                size_t errstr_size);

/** Answers a failed window read: 503 "local state is being restored" when this
 *  instance's state is damaged or being reset (EDDY_ERR_CORRUPT, EDDY_ERR_STATE:
 *  retry shortly), 500 otherwise. Returns what eddy_http_error returns. */
int eddy_windows_error(eddy_http_resp_t *resp, eddy_err_t err, const char *errstr);

/** Sets "partitions", "restoring", "failed", "unreachable", "complete" (every
 *  source partition covered, none restoring or failed), "local" and "peers" on
 *  body. */
void eddy_coverage_json(const eddy_coverage_t *cov, json_t *body);

/** Frees what *cov holds. */
void eddy_coverage_free(eddy_coverage_t *cov);

/** GET /api/internal/stores/{store}/partials?from=&to=&key=&partitions=P,Q,...:
 *  this instance's partials, merged over its local tasks among `partitions`
 *  (all source partitions if absent), as
 *  {"store", "partitions":[covered], "restoring":[...], "failed":[...],
 *   "windows":[[start, key, hex(serialized aggregate)], ...]}.
 *  opaque is the eddy_runtime_t. */
int eddy_partials_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque);

/** Encodes the windows of *merged* partial aggregates as the "windows" array of a
 *  partials answer, and decodes one back into `into` (merging). Exposed for the
 *  unit tests: encode(one agg) then decode must give the same aggregate. */
json_t *eddy_partial_encode(const eddy_agg_layout_t *layout, int64_t start, const char *key,
                            size_t key_len, const eddy_agg_t *agg);
eddy_err_t eddy_partial_decode(const eddy_agg_layout_t *layout, json_t *entry, int64_t *start,
                               const char **key, size_t *key_len, eddy_agg_t *agg);

#endif /* EDDY_CLUSTER_QUERY_H */
