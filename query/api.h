/*
 * api.h — the HTTP API of a running instance: REST over the state stores and the
 * instance's health (query/api.c lists the routes). Started by `eddy run` after
 * the state database is open; handlers run on the HTTP server's threads.
 */
#ifndef EDDY_API_H
#define EDDY_API_H

#include "engine/runtime.h"

typedef struct eddy_api_s eddy_api_t;

/** Listens on `listen` (HOST:PORT) and serves the runtime (borrowed; it must
 *  outlive the API). NULL with a message if it cannot listen. */
eddy_api_t *eddy_api_start(eddy_runtime_t *rt, const char *listen, char *errstr,
                           size_t errstr_size);

/** Stops serving (waits for running handlers). NULL is a no-op. */
void eddy_api_stop(eddy_api_t *api);

#endif /* EDDY_API_H */
