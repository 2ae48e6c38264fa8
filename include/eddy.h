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
    EDDY_ERR_CORRUPT = 9,  /**< stored data is damaged (a checksum or structure check failed) */
} eddy_err_t;

/** Short, static name of an error code ("invalid argument", ...). */
const char *eddy_err_str(eddy_err_t err);

/** The library version, "MAJOR.MINOR.PATCH". */
const char *eddy_version(void);

/* --- topologies -----------------------------------------------------------------
 * A topology declares what eddy computes: the source topic(s) and how to read an
 * event's time, and window stores, each grouping events by some fields and keeping
 * named aggregates per (window, group key). Build one with the calls below or load
 * a JSON file (docs/topology.md; the loader uses these same calls), then freeze it
 * with eddy_topology_finish(), which checks cross references. The engine only runs
 * finished topologies.
 *
 * While it is being built a topology belongs to one thread. A finished topology
 * never changes and may be read by any number of threads. Every string argument is
 * copied; store definitions belong to their topology. A failed call changes
 * nothing, so a builder may report the error and go on.
 */

typedef struct eddy_topology_s eddy_topology_t;
typedef struct eddy_store_def_s eddy_store_def_t;

/** How the event-time field is written. */
typedef enum eddy_ts_format_e {
    EDDY_TS_EPOCH_MS = 0, /**< a number: milliseconds since the epoch */
    EDDY_TS_ISO8601 = 1,  /**< a string: "2024-01-15T10:30:00.123Z" */
    EDDY_TS_AUTO = 2,     /**< either, decided per event by its JSON type */
} eddy_ts_format_t;

/** When a store writes its windows to its sink topic. */
typedef enum eddy_emit_e {
    EDDY_EMIT_ON_CLOSE = 0, /**< once per window, when it closes (end + grace passed) */
    EDDY_EMIT_UPDATES = 1,  /**< the windows that changed, at every commit */
} eddy_emit_t;

/** A new, empty topology named `name` (1 to 64 letters, digits, '.', '_' or '-').
 *  NULL with errstr filled if the name is invalid or memory runs out. */
eddy_topology_t *eddy_topology_new(const char *name, char *errstr, size_t errstr_size);

/** Frees the topology and its store definitions. NULL is a no-op. */
void eddy_topology_destroy(eddy_topology_t *topo);

/** Free text saying what the topology is for (shown by `eddy topology describe`). */
eddy_err_t eddy_topology_set_description(eddy_topology_t *topo, const char *text, char *errstr,
                                         size_t errstr_size);

/** Adds a source topic (a legal Kafka topic name, not listed yet). */
eddy_err_t eddy_topology_add_source_topic(eddy_topology_t *topo, const char *topic, char *errstr,
                                          size_t errstr_size);

/** Names the field holding each event's time; calling it again replaces it. */
eddy_err_t eddy_topology_set_timestamp(eddy_topology_t *topo, const char *field,
                                       eddy_ts_format_t format, char *errstr, size_t errstr_size);

/** How far (ms, 0 to 100 years) an event time may be ahead of the wall clock;
 *  events further ahead are bad input. Without this call eddy run's
 *  event.time.max.future.ms applies (default 1 day). */
eddy_err_t eddy_topology_set_max_future(eddy_topology_t *topo, int64_t max_future_ms, char *errstr,
                                        size_t errstr_size);

/** What a declared event field must hold (docs/topology.md, "Fields"). */
typedef enum eddy_field_type_e {
    EDDY_FIELD_ANY = 0,     /**< a string, number or boolean (what an undeclared group key takes) */
    EDDY_FIELD_NUMBER = 1,  /**< a JSON number */
    EDDY_FIELD_INTEGER = 2, /**< a JSON number without a fraction (500 or 500.0, not 500.5) */
    EDDY_FIELD_STRING = 3,  /**< a JSON string */
    EDDY_FIELD_BOOL = 4,    /**< true or false */
} eddy_field_type_t;

/** A field declaration as eddy_topology_declare_field() takes it. */
typedef struct eddy_field_spec_s {
    const char *name;       /**< a top-level key of the event that the topology reads */
    eddy_field_type_t type; /**< NUMBER, INTEGER, STRING or BOOL */
    bool coerce;            /**< NUMBER, INTEGER: a string that is a whole JSON number ("503")
                                 is read as that number */
    bool has_min, has_max;  /**< NUMBER, INTEGER: a bound is declared */
    double min, max;        /**< the valid range, inclusive, finite; min <= max */
} eddy_field_spec_t;

/** Declares what a field must hold, on top of what its uses need (a declared type
 *  must agree with them: a summed field is a number). Events that do not meet it
 *  are bad input. The field must be read by the topology (checked by finish); the
 *  timestamp field is declared by eddy_topology_set_timestamp() instead. */
eddy_err_t eddy_topology_declare_field(eddy_topology_t *topo, const eddy_field_spec_t *spec,
                                       char *errstr, size_t errstr_size);

/** Adds a store named `name` (1 to 64 letters, digits, '_' or '-'; unique), with
 *  no window and no aggregate yet. NULL with errstr filled on failure. */
eddy_store_def_t *eddy_topology_add_store(eddy_topology_t *topo, const char *name, char *errstr,
                                          size_t errstr_size);

eddy_err_t eddy_store_def_set_description(eddy_store_def_t *store, const char *text, char *errstr,
                                          size_t errstr_size);

/** Appends a field to the store's group key. A store without group_by fields keeps
 *  one group, the key "". */
eddy_err_t eddy_store_def_group_by(eddy_store_def_t *store, const char *field, char *errstr,
                                   size_t errstr_size);

/** Tumbling windows [k*size, (k+1)*size), aligned to the epoch. Sizes and times are
 *  in milliseconds, at most 100 years. */
eddy_err_t eddy_store_def_tumbling(eddy_store_def_t *store, int64_t size_ms, char *errstr,
                                   size_t errstr_size);

/** Hopping windows [k*advance, k*advance + size): 0 < advance <= size, and one
 *  event falls in at most 64 windows (size / advance rounded up). */
eddy_err_t eddy_store_def_hopping(eddy_store_def_t *store, int64_t size_ms, int64_t advance_ms,
                                  char *errstr, size_t errstr_size);

/** How long after its end a window still accepts events (default 0). */
eddy_err_t eddy_store_def_grace(eddy_store_def_t *store, int64_t grace_ms, char *errstr,
                                size_t errstr_size);

/** How long windows are kept, counted from their start; at least size + grace
 *  (checked by eddy_topology_finish). Default: 24 h, or size + grace if longer. */
eddy_err_t eddy_store_def_retention(eddy_store_def_t *store, int64_t retention_ms, char *errstr,
                                    size_t errstr_size);

/* Aggregates. `name` (1 to 64 letters, digits, '_' or '-'; not "key", "start" or
 * "end") is unique in the store and names the value in query results and sink
 * records. Fields are top-level keys of the event object. */

/** Counts events. */
eddy_err_t eddy_store_def_add_count(eddy_store_def_t *store, const char *name, char *errstr,
                                    size_t errstr_size);
/** Counts events for which `where` holds: comparisons FIELD OP LITERAL (== != < <= >
 *  >=; a number, a "string" or 'string', true or false) joined by `and` / `or`, with
 *  parentheses; e.g. "status >= 500" or "region == 'eu-west-1' and status >= 500". */
eddy_err_t eddy_store_def_add_count_if(eddy_store_def_t *store, const char *name, const char *where,
                                       char *errstr, size_t errstr_size);
/** Sum, minimum, maximum and mean of a numeric field. */
eddy_err_t eddy_store_def_add_sum(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_min(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_max(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size);
eddy_err_t eddy_store_def_add_mean(eddy_store_def_t *store, const char *name, const char *field,
                                   char *errstr, size_t errstr_size);
/** The q-quantile (0 < q <= 1; 0.99 for P99) of a numeric field, from a mergeable
 *  sketch with bounded relative error. */
eddy_err_t eddy_store_def_add_percentile(eddy_store_def_t *store, const char *name,
                                         const char *field, double q, char *errstr,
                                         size_t errstr_size);
/** Approximate number of distinct values of a field. */
eddy_err_t eddy_store_def_add_distinct(eddy_store_def_t *store, const char *name, const char *field,
                                       char *errstr, size_t errstr_size);
/** numerator / denominator: names of count, count_if or sum aggregates of the same
 *  store, declared before or after this one (resolved by eddy_topology_finish). */
eddy_err_t eddy_store_def_add_ratio(eddy_store_def_t *store, const char *name,
                                    const char *numerator, const char *denominator, char *errstr,
                                    size_t errstr_size);

/** Produces the store's windows to `topic` (not a source topic) as `emit` says.
 *  Stores without a sink are only queried. */
eddy_err_t eddy_store_def_sink(eddy_store_def_t *store, const char *topic, eddy_emit_t emit,
                               char *errstr, size_t errstr_size);

/* --- views -----------------------------------------------------------------------
 * A view names a query over one store and serves it at an HTTP route of its own
 * (docs/topology.md, "Views"): which windows (the current one and some before it,
 * relative to stream time or to the wall clock), which group key (all, a fixed one
 * or a path parameter of the route), which aggregates, and whether the windows are
 * answered one by one (a series) or merged per key. */

/** The time a view's windows are counted back from. */
typedef enum eddy_view_time_e {
    EDDY_VIEW_STREAM_TIME = 0, /**< the largest event time seen (deterministic replays) */
    EDDY_VIEW_NOW = 1,         /**< the wall clock */
} eddy_view_time_t;

/** How a view answers the windows it selects. */
typedef enum eddy_view_combine_e {
    EDDY_VIEW_SERIES = 0, /**< every window, oldest first, and the current one */
    EDDY_VIEW_MERGE = 1,  /**< per group key, the windows merged into one; and a total */
} eddy_view_combine_t;

/** A view as eddy_topology_add_view() takes it; every string is copied. */
typedef struct eddy_view_spec_s {
    const char *name;              /**< 1-64 letters, digits, '_', '-'; unique among views */
    const char *description;       /**< free text, or NULL */
    const char *route;             /**< "/api/..." segments, at most one "{param}" */
    const char *store;             /**< the store queried (resolved by finish) */
    const char *key;               /**< NULL: all keys; "{param}": the route's parameter;
                                        else one literal group key */
    int64_t windows;               /**< > 0: the current window and windows - 1 before it */
    int64_t last_ms;               /**< > 0 instead: ceil(last_ms / advance) windows */
    eddy_view_time_t at;           /**< what "current" is relative to */
    eddy_view_combine_t combine;   /**< series or merge */
    const char *const *aggregates; /**< NULL-terminated names to answer; NULL: all */
    const char *having;            /**< a predicate over `key` and aggregates, or NULL */
    const char *share;             /**< merge only: a count, count_if or sum aggregate whose
                                        share of the total each key gets; or NULL */
} eddy_view_spec_t;

/** Adds a view. Its store, aggregates, `having` fields and `share` are resolved
 *  and checked by eddy_topology_finish(), so stores may be declared after it. */
eddy_err_t eddy_topology_add_view(eddy_topology_t *topo, const eddy_view_spec_t *spec, char *errstr,
                                  size_t errstr_size);

/** Checks the whole topology (a source, a timestamp, every store with a window and
 *  aggregates, retention >= size + grace, ratio references, sinks, views, field
 *  declarations and uses that agree on each field's type) and builds its field table. On success
 * the topology is frozen: builder calls then fail with EDDY_ERR_STATE. Calling it again on a
 * finished topology returns EDDY_OK. */
eddy_err_t eddy_topology_finish(eddy_topology_t *topo, char *errstr, size_t errstr_size);

/** Loads and finishes a topology file (docs/topology.md). Errors name the file, the
 *  JSON path and what was expected, e.g. `x.json: $.stores[1].window.size: expected
 *  a duration such as "1m" or 60000, got "abc"`. NULL on failure. */
eddy_topology_t *eddy_topology_load_file(const char *path, char *errstr, size_t errstr_size);

/** The same from a NUL-terminated string; `origin` names it in errors (NULL:
 *  "<string>"). */
eddy_topology_t *eddy_topology_load_string(const char *json, const char *origin, char *errstr,
                                           size_t errstr_size);

/* Reading a topology. Indices run from 0 to count - 1; strings belong to the
 * topology. */
const char *eddy_topology_name(const eddy_topology_t *topo);
size_t eddy_topology_source_count(const eddy_topology_t *topo);
const char *eddy_topology_source_topic(const eddy_topology_t *topo, size_t i);
size_t eddy_topology_store_count(const eddy_topology_t *topo);
const eddy_store_def_t *eddy_topology_store(const eddy_topology_t *topo, size_t i);
/** The store named `name`, or NULL. */
const eddy_store_def_t *eddy_topology_store_by_name(const eddy_topology_t *topo, const char *name);
const char *eddy_store_def_name(const eddy_store_def_t *store);

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */
