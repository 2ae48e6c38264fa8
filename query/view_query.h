/*
 * view_query.h — the answers of a topology's views (docs/topology.md "Views") and
 * of the per-key series of any store, both read through eddy_windows_cluster()
 * so they cover what the windows answer covers (every partition, from this
 * instance and its peers; ?local=true: this instance's) and say so ("complete",
 * "restoring", "unreachable"). Views are also WebSocket sources ("view:NAME"). Handlers run on the
 * HTTP server's threads and only read the runtime.
 */
#ifndef EDDY_VIEW_QUERY_H
#define EDDY_VIEW_QUERY_H

#include "engine/runtime.h"
#include "query/http.h"

typedef struct eddy_view_query_s eddy_view_query_t;

/** Registers GET <route> for every view of the runtime's topology and
 *  GET /api/stores/{store}/keys/{key} on `http`, before eddy_http_start(). The
 *  runtime is borrowed and must outlive the server; the result holds the routes'
 *  state and is destroyed after the server. NULL (errstr filled) if the router
 *  refuses a route or memory runs out. */
eddy_view_query_t *eddy_view_query_new(eddy_http_t *http, eddy_runtime_t *rt, char *errstr,
                                       size_t errstr_size);

struct eddy_ws_s;

/** Registers the views as the WebSocket source kind "view": a subscription
 *  {"subscribe":"view:NAME", "key":..., "windows":N, "at":MS, "local":bool} gets
 *  the answer of GET <route>. Before clients connect. NULL arguments: no-op. */
void eddy_view_query_ws(eddy_view_query_t *vq, struct eddy_ws_s *ws);

/** Frees the routes' state; the server must be destroyed first. NULL is a no-op. */
void eddy_view_query_destroy(eddy_view_query_t *vq);

#endif /* EDDY_VIEW_QUERY_H */
