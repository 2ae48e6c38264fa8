/*
 * topology_json.h — renders a finished topology (or one store of it) as JSON:
 * sources, timestamp, stores with group_by, window (ms), aggregates and sinks,
 * and the field table. Returns a new reference; any thread.
 */
#ifndef EDDY_TOPOLOGY_JSON_H
#define EDDY_TOPOLOGY_JSON_H

#include "topology/topology_int.h"

#include <jansson.h>

json_t *eddy_topology_to_json(const eddy_topology_t *topo);
json_t *eddy_store_def_to_json(const eddy_store_def_t *store);

#endif /* EDDY_TOPOLOGY_JSON_H */
