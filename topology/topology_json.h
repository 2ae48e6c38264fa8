/*
 * topology_json.h — a finished topology (or one of its stores) as JSON, the form
 * `eddy topology describe --json` prints and the HTTP API serves (documented in
 * docs/topology.md): durations in milliseconds, the field table with what reads
 * each field. Returns a new reference (json_decref it), NULL if out of memory;
 * any thread.
 */
#ifndef EDDY_TOPOLOGY_JSON_H
#define EDDY_TOPOLOGY_JSON_H

#include "topology/topology_int.h"

#include <jansson.h>

json_t *eddy_topology_to_json(const eddy_topology_t *topo);
json_t *eddy_store_def_to_json(const eddy_store_def_t *store);
/** A view: its declaration with defaults filled in and `aggregates` resolved. */
json_t *eddy_view_def_to_json(const eddy_view_def_t *view);
/** {"nodes": [{"id", "kind", "name"}], "edges": [{"from", "to"}]}: kinds source,
 *  store, sink, view; ids "KIND:NAME"; edges source -> store -> sink, store -> view. */
json_t *eddy_topology_graph_json(const eddy_topology_t *topo);

#endif /* EDDY_TOPOLOGY_JSON_H */
