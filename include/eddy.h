/*
 * eddy.h — the public interface of libeddy.
 *
 * eddy is a stream-processing engine in the mould of Kafka Streams: it runs a
 * declared topology of windowed aggregations over Kafka topics, keeps the results
 * in RocksDB stores backed by changelog topics and serves them over HTTP. This
 * header is what an application embedding the library needs; everything else is
 * internal to its module folder.
 *
 * Conventions: functions that can fail return an eddy_err_t (EDDY_OK = 0) and
 * fill a caller-supplied `errstr` buffer with a message a user can act on.
 * Constructors return NULL on failure. `_destroy(NULL)` is always a no-op.
 */
#ifndef EDDY_H
#define EDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible call. 0 is success; the rest say what kind of failure. */
typedef enum eddy_err_e {
    EDDY_OK = 0,           /**< success */
    EDDY_ERR_INVALID = 1,  /**< bad argument, config or file content */
    EDDY_ERR_IO = 2,       /**< file system or network failure */
    EDDY_ERR_KAFKA = 3,    /**< librdkafka reported an error */
    EDDY_ERR_STORE = 4,    /**< RocksDB reported an error */
    EDDY_ERR_NOMEM = 5,    /**< allocation failed */
    EDDY_ERR_TIMEOUT = 6,  /**< an operation did not finish in time */
    EDDY_ERR_NOTFOUND = 7, /**< a named thing (topic, store, key) does not exist */
    EDDY_ERR_STATE = 8,    /**< call not valid in the object's current state */
} eddy_err_t;

/** Short, static name of an error code ("invalid argument", ...). */
const char *eddy_err_str(eddy_err_t err);

/** The library version, "MAJOR.MINOR.PATCH". */
const char *eddy_version(void);

/* --- topologies ----------------------------------------------------------------
 * A topology declares what eddy computes: source topic(s), the event time field,
 * and window stores with their aggregates. Build one with these calls or load a
 * JSON file (docs/topology.md); both end in eddy_topology_finish(), which checks
 * cross references. A finished topology is immutable and may be shared by threads.
 */

typedef struct eddy_topology_s eddy_topology_t;
typedef struct eddy_store_def_s eddy_store_def_t;

/** How the event time field is written. */
typedef enum eddy_ts_format_e {
    EDDY_TS_EPOCH_MS = 0, /**< integer milliseconds since the epoch */
    EDDY_TS_ISO8601 = 1,  /**< "2024-01-15T10:30:00.123Z" */
    EDDY_TS_AUTO = 2,     /**< either, decided per event by its JSON type */
} eddy_ts_format_t;

/** A new, empty topology; NULL if out of memory. */
eddy_topology_t *eddy_topology_new(const char *name);
void eddy_topology_destroy(eddy_topology_t *topo);

eddy_err_t eddy_topology_add_source_topic(eddy_topology_t *topo, const char *topic, char *errstr,
                                          size_t errstr_size);
eddy_err_t eddy_topology_set_timestamp(eddy_topology_t *topo, const char *field,
                                       eddy_ts_format_t format, char *errstr, size_t errstr_size);

/** Adds a store; the returned definition is owned by the topology. */
eddy_store_def_t *eddy_topology_add_store(eddy_topology_t *topo, const char *name, char *errstr,
                                          size_t errstr_size);
eddy_err_t eddy_store_def_group_by(eddy_store_def_t *store, const char *field, char *errstr,
                                   size_t errstr_size);
/** Window sizes and times in milliseconds; grace defaults to 0, retention to 24 h. */
eddy_err_t eddy_store_def_tumbling(eddy_store_def_t *store, int64_t size_ms, char *errstr,
                                   size_t errstr_size);
eddy_err_t eddy_store_def_hopping(eddy_store_def_t *store, int64_t size_ms, int64_t advance_ms,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_grace(eddy_store_def_t *store, int64_t grace_ms, char *errstr,
                                size_t errstr_size);
eddy_err_t eddy_store_def_retention(eddy_store_def_t *store, int64_t retention_ms, char *errstr,
                                    size_t errstr_size);
eddy_err_t eddy_store_def_add_count(eddy_store_def_t *store, const char *name, char *errstr,
                                    size_t errstr_size);
/** `where` is a predicate such as "status >= 500" or "region == \"eu-west-1\" and status >= 500".
 */
eddy_err_t eddy_store_def_add_count_if(eddy_store_def_t *store, const char *name, const char *where,
                                       char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_sum(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_min(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_max(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_mean(eddy_store_def_t *store, const char *name, const char *field,
                                   char *errstr, size_t errstr_size);
/** Quantile q in (0, 1] of a numeric field, from a sketch with 1% relative error. */
eddy_err_t eddy_store_def_add_percentile(eddy_store_def_t *store, const char *name,
                                         const char *field, double q, char *errstr,
                                         size_t errstr_size);
/** Approximate count of distinct values (HyperLogLog, standard error 0.81%). */
eddy_err_t eddy_store_def_add_distinct(eddy_store_def_t *store, const char *name, const char *field,
                                       char *errstr, size_t errstr_size);
/** numerator / denominator, both names of count, count_if or sum aggregates of this store. */
eddy_err_t eddy_store_def_add_ratio(eddy_store_def_t *store, const char *name,
                                    const char *numerator, const char *denominator, char *errstr,
                                    size_t errstr_size);
/** Sends the store's windows to `topic`: when they close ("on_close") or at every commit. */
eddy_err_t eddy_store_def_sink(eddy_store_def_t *store, const char *topic, bool on_close,
                               char *errstr, size_t errstr_size);

/** Validates the whole topology and builds its field table. */
eddy_err_t eddy_topology_finish(eddy_topology_t *topo, char *errstr, size_t errstr_size);

/** Loads and finishes a topology file. Errors name the file, the JSON path and
 *  what was expected. NULL on failure. */
eddy_topology_t *eddy_topology_load_file(const char *path, char *errstr, size_t errstr_size);
/** The same from a string; `origin` names it in errors. */
eddy_topology_t *eddy_topology_load_string(const char *json, const char *origin, char *errstr,
                                           size_t errstr_size);

size_t eddy_topology_source_count(const eddy_topology_t *topo);
const char *eddy_topology_source_topic(const eddy_topology_t *topo, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */
