/*
 * instances.h — the instances of one application find each other. Every `eddy
 * run` with an HTTP server publishes, on the one-partition topic
 * <application.id>-instances, a record keyed by its instance id: where its HTTP
 * API listens and which source partitions it owns (running or restoring), at
 * every assignment change and every instances.heartbeat.ms, and a tombstone on
 * a clean stop. Each instance also reads that topic (its own consumer, no group)
 * into a table of peers; a peer not heard from for 3 heartbeats is gone. The
 * query layer (query/cluster_query.c) asks the peers for what it does not own.
 *
 * One thread of its own does the producing and the reading; the table is read
 * by the HTTP threads under a mutex. Nothing here touches the stream threads.
 */
#ifndef EDDY_INSTANCES_H
#define EDDY_INSTANCES_H

#include "engine/runtime.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct eddy_instances_s eddy_instances_t;

/** A peer is gone after this many of its heartbeat intervals without a record. */
#define EDDY_INSTANCES_MISSED_BEATS 3

/** What one instance last said about itself. */
typedef struct eddy_peer_s {
    char id[160];                        /* instance id (the record key) */
    char server[256];                    /* its application.server, HOST:PORT */
    bool running[EDDY_MAX_PARTITIONS];   /* source partitions it processes */
    bool restoring[EDDY_MAX_PARTITIONS]; /* source partitions it is restoring */
    int64_t generation;                  /* its assignment changes so far */
    int64_t time_ms;                     /* wall clock of its last record */
    int64_t interval_ms;                 /* its heartbeat interval */
} eddy_peer_t;

/** The name of the instances topic of an application: <application.id>-instances. */
void eddy_instances_topic(const char *application_id, char *buf, size_t size);

/** Starts publishing this instance (rt->cfg->application_server must be set)
 *  and reading its peers. NULL with errstr filled on failure. Main thread. */
eddy_instances_t *eddy_instances_start(eddy_runtime_t *rt, char *errstr, size_t errstr_size);

/** Stops the thread, publishes the tombstone ("leaving") and frees. NULL is a
 *  no-op. Main thread, after the HTTP server stopped using it. */
void eddy_instances_stop(eddy_instances_t *inst);

/** This instance's id. */
const char *eddy_instances_id(const eddy_instances_t *inst);

/** Copies up to cap live peers (not this instance) into out; returns how many.
 *  Any thread. */
size_t eddy_instances_peers(eddy_instances_t *inst, eddy_peer_t *out, size_t cap);

/** [{id, server, self, partitions, restoring, generation, last_seen_ms, alive}]
 *  for this instance and every peer in the table, for /api/health. Any thread. */
json_t *eddy_instances_json(eddy_instances_t *inst);

/** Parses one record value of the instances topic into *peer (zeroed first).
 *  Returns false if it is not a valid instance record. Exposed for unit tests. */
bool eddy_instances_parse(const char *value, size_t len, eddy_peer_t *peer);

#endif /* EDDY_INSTANCES_H */
