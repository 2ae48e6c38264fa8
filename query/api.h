/*
 * api.h — the HTTP API of a running instance: REST over the state stores and the
 * instance's health (query/api.c lists the routes). `eddy run` binds its address
 * first (eddy_api_new) and serves once the state database is open
 * (eddy_api_start); handlers run on the HTTP server's threads.
 */
#ifndef EDDY_API_H
#define EDDY_API_H

#include "engine/runtime.h"

typedef struct eddy_api_s eddy_api_t;

/** Binds `listen` (HOST:PORT) at once, so that an address in use is reported
 *  before the instance joins its group or publishes itself; serves nothing yet.
 *  The runtime is borrowed and must outlive the API. NULL with a message (e.g.
 *  "cannot listen on 127.0.0.1:8083: Address already in use") if it cannot. */
eddy_api_t *eddy_api_new(eddy_runtime_t *rt, const char *listen, char *errstr, size_t errstr_size);

/** Registers the routes and starts serving the runtime, whose topics are checked
 *  by then. On failure (errstr filled) the API serves nothing; stop it anyway. */
eddy_err_t eddy_api_start(eddy_api_t *api, char *errstr, size_t errstr_size);

/** Stops serving (waits for running handlers). NULL is a no-op. */
void eddy_api_stop(eddy_api_t *api);

#endif /* EDDY_API_H */
