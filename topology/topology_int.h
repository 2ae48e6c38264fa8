/*
 * topology_int.h — a topology as the engine reads it: the structs behind the
 * opaque eddy_topology_t and eddy_store_def_t of eddy.h, event values, group keys
 * and window starts.
 *
 * eddy_topology_finish() resolves every name once. Each event field the topology
 * reads gets one slot in the FIELD TABLE (the timestamp field is always slot 0);
 * group keys, aggregates and predicates refer to fields by slot, and each slot
 * has a rule (eddy_field_rule_t: type, required, range, coercion) derived from its
 * uses and the topology's field declarations. The engine's decoder extracts only
 * those fields of an event, into an eddy_value_t array indexed by slot, and
 * checks each against its rule. A finished topology never changes and may be read by any thread
 * without locks; the engine only reads finished topologies.
 */
#ifndef EDDY_TOPOLOGY_INT_H
#define EDDY_TOPOLOGY_INT_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, checked with an error by the builder. */
#define EDDY_TOPOLOGY_MAX_SOURCES 16  /* source topics */
#define EDDY_TOPOLOGY_MAX_STORES  64  /* stores */
#define EDDY_TOPOLOGY_MAX_FIELDS  64  /* distinct event fields read (a decoder's array) */
#define EDDY_MAX_GROUP_FIELDS     8   /* group_by fields of one store */
#define EDDY_MAX_AGGREGATES       32  /* aggregates of one store */
#define EDDY_PREDICATE_MAX_TERMS  32  /* comparisons in one count_if predicate */
#define EDDY_NAME_MAX             64  /* bytes in a topology, store or aggregate name */
#define EDDY_FIELD_NAME_MAX       255 /* bytes in an event field name */
#define EDDY_TOPIC_NAME_MAX       249 /* bytes in a Kafka topic name (Kafka's limit) */

/* The latest event time ever accepted, 9999-12-31T23:59:59.999Z (the last an
 * ISO-8601 time can write), whatever the wall clock says. */
#define EDDY_EVENT_TIME_MAX_MS 253402300799999LL
/* How far ahead of the wall clock an event time may be, by default
 * (event.time.max.future.ms; a topology's source.timestamp.max_future). */
#define EDDY_MAX_FUTURE_DEFAULT_MS (24LL * 3600 * 1000)
/* Durations (size, advance, grace, retention) are at most 100 years. */
#define EDDY_DURATION_MAX_MS (100LL * 365 * 24 * 3600 * 1000)
/* Retention when none is declared (size + grace instead, if that is longer). */
#define EDDY_RETENTION_DEFAULT_MS (24LL * 3600 * 1000)
/* One event falls in at most this many windows (hopping: size / advance, rounded up). */
#define EDDY_WINDOWS_PER_EVENT_MAX 64
/* eddy_window_starts() takes event times with |ts| <= 2^53 ms (about 285,000
 * years); the decoder treats anything beyond as bad input. */
#define EDDY_EVENT_TIME_ABS_MAX (1LL << 53)

/* --- event values ------------------------------------------------------------ */

typedef enum eddy_value_type_e {
    EDDY_VALUE_MISSING = 0, /* absent (a zeroed value is missing) */
    EDDY_VALUE_NULL = 1,    /* JSON null */
    EDDY_VALUE_NUMBER = 2,  /* num holds it (integers beyond 2^53 are rounded) */
    EDDY_VALUE_STRING = 3,  /* str/len hold it */
    EDDY_VALUE_BOOL = 4,    /* num is 1 (true) or 0 (false) */
    EDDY_VALUE_OBJECT = 5,  /* a JSON object: there, but nothing a topology can use */
    EDDY_VALUE_ARRAY = 6,   /* a JSON array: likewise */
} eddy_value_type_t;
#define EDDY_VALUE_TYPE_COUNT 7 /* how many eddy_value_type_t values there are */

/** One extracted field of one event. A string is borrowed from the decoded record
 *  (unescaped UTF-8, not NUL-terminated in general) and lives as long as it. */
typedef struct eddy_value_s {
    eddy_value_type_t type; /* which members mean something */
    double num;             /* NUMBER, BOOL */
    const char *str;        /* STRING: the bytes */
    size_t len;             /* STRING: how many */
} eddy_value_t;

/* --- the field table ------------------------------------------------------------ */

/** What a field must hold for an event to be usable by every part of the topology
 *  that reads it: derived by eddy_topology_finish() from the field's uses and its
 *  declaration (docs/topology.md, "What eddy reads from an event"). The decoder
 *  checks it; an event that does not meet it is bad input. */
typedef struct eddy_field_rule_s {
    eddy_field_type_t type; /* what a present value must be (EDDY_FIELD_ANY: a scalar);
                               for the timestamp: NUMBER (epoch_ms), STRING (iso8601) or
                               ANY (auto: a number or a string) */
    bool required;          /* absent or null is bad input; else both mean "no value"
                               (only fields read by predicates alone are optional) */
    bool coerce;            /* NUMBER, INTEGER: a string holding a JSON number is read as
                               that number */
    double min, max;        /* NUMBER, INTEGER: the valid range, inclusive; -inf and inf
                               when none is declared */
} eddy_field_rule_t;

/** A field declaration of the topology (eddy_topology_declare_field). */
typedef struct eddy_field_decl_s {
    char *name;             /* the event field (owned) */
    eddy_field_type_t type; /* NUMBER, INTEGER, STRING or BOOL */
    bool coerce;            /* as in eddy_field_spec_t */
    bool has_min, has_max;  /* a bound was declared */
    double min, max;        /* the bounds */
} eddy_field_decl_t;

/* Which parts of the topology read a field (bits of eddy_topology_t.field_uses). */
enum {
    EDDY_FIELD_USE_TIMESTAMP = 1 << 0, /* the event time */
    EDDY_FIELD_USE_GROUP_BY = 1 << 1,  /* part of some store's group key */
    EDDY_FIELD_USE_NUMERIC = 1 << 2,   /* sum, min, max, mean or percentile */
    EDDY_FIELD_USE_DISTINCT = 1 << 3,  /* distinct */
    EDDY_FIELD_USE_PREDICATE = 1 << 4, /* a count_if predicate */
};
#define EDDY_FIELD_USE_COUNT 5 /* how many EDDY_FIELD_USE_* bits there are */

/* --- predicates (predicate.h builds them) ----------------------------------------- */

typedef struct eddy_predicate_s eddy_predicate_t;

/** True if the event's values (indexed by field-table slot) satisfy the predicate.
 *  A comparison with a missing field or a value of another type than the literal is
 *  false, except `!=`, which is always the negation of `==`. Never allocates. */
bool eddy_predicate_eval(const eddy_predicate_t *pred, const eddy_value_t *values);

/* --- stores ---------------------------------------------------------------------- */

typedef enum eddy_window_type_e {
    EDDY_WINDOW_TUMBLING = 0, /* [k*size, (k+1)*size) */
    EDDY_WINDOW_HOPPING = 1,  /* [k*advance, k*advance + size) */
} eddy_window_type_t;

/** Windows are aligned to the epoch (docs/topology.md, "Windows"). Window [start, start +
 *  size_ms) closes when stream time passes start + size_ms + grace_ms and is
 *  deleted when stream time passes start + retention_ms. */
typedef struct eddy_window_spec_s {
    eddy_window_type_t type; /* tumbling or hopping */
    int64_t size_ms;         /* window length, > 0 */
    int64_t advance_ms;      /* in (0, size_ms]; = size_ms for tumbling windows */
    int64_t grace_ms;        /* lateness accepted after the end, >= 0 (default 0) */
    int64_t retention_ms;    /* >= size_ms + grace_ms (default max(24h, size + grace)) */
} eddy_window_spec_t;

typedef enum eddy_agg_op_e {
    EDDY_AGG_COUNT = 0,      /* events */
    EDDY_AGG_COUNT_IF = 1,   /* events for which the predicate holds */
    EDDY_AGG_SUM = 2,        /* sum of a numeric field */
    EDDY_AGG_MIN = 3,        /* minimum of a numeric field */
    EDDY_AGG_MAX = 4,        /* maximum of a numeric field */
    EDDY_AGG_MEAN = 5,       /* mean of a numeric field */
    EDDY_AGG_PERCENTILE = 6, /* q-quantile of a numeric field (sketch.h) */
    EDDY_AGG_DISTINCT = 7,   /* approximate distinct values of a field (hll.h) */
    EDDY_AGG_RATIO = 8,      /* numerator / denominator, two aggregates of the store */
} eddy_agg_op_t;
#define EDDY_AGG_OP_COUNT 9 /* how many eddy_agg_op_t values there are */

/** One aggregate of a store. Strings and the predicate belong to the store. */
typedef struct eddy_agg_def_s {
    char *name;                  /* unique in the store; the result's field name */
    eddy_agg_op_t op;            /* what it computes */
    char *field_name;            /* SUM .. DISTINCT: the field read; else NULL */
    int field;                   /* its field-table slot; -1 if none */
    double q;                    /* PERCENTILE: the quantile in (0, 1]; else 0 */
    eddy_predicate_t *predicate; /* COUNT_IF: bound to the field table; else NULL */
    char *num_name;              /* RATIO: the numerator's name as declared */
    char *den_name;              /* RATIO: the denominator's name as declared */
    int numerator;               /* RATIO: index of a COUNT, COUNT_IF or SUM in aggregates */
    int denominator;             /* RATIO: likewise; -1 for other ops */
} eddy_agg_def_t;

struct eddy_store_def_s {
    eddy_topology_t *topo;                          /* the topology owning the store */
    size_t index;                                   /* position in topo->stores */
    char *name;                                     /* [A-Za-z0-9_-]{1,64}, unique */
    char *description;                              /* free text, or NULL */
    int group_fields[EDDY_MAX_GROUP_FIELDS];        /* field-table slots, in key order */
    char *group_names[EDDY_MAX_GROUP_FIELDS];       /* the same fields by name */
    size_t n_group;                                 /* 0: one global group, key "" */
    eddy_window_spec_t window;                      /* complete once finished */
    bool has_window;                                /* a window was declared */
    bool has_retention;                             /* retention was declared */
    eddy_agg_def_t aggregates[EDDY_MAX_AGGREGATES]; /* in declaration order */
    size_t n_aggregates;                            /* >= 1 once finished */
    char *sink_topic;                               /* where windows are produced, or NULL */
    eddy_emit_t sink_emit;                          /* when they are */
};

/** Formats the group key of an event (values indexed by field-table slot) into
 *  key: one field gives its value as text — a string as it is, a number in the
 *  shortest form that reads back exactly, without ".0" (status 500 gives "500",
 *  131.4 gives "131.4"), a bool "true" or "false"; several fields are joined by '|'
 *  with '|' and '\' in each escaped by '\'; no field gives "". Returns true with the
 *  key NUL-terminated and its length in *key_len. Returns false with *key_len = 0
 *  if a group_by field is missing, null or not a scalar, and false with *key_len =
 *  the length the key needs if that does not fit in cap - 1 bytes. */
bool eddy_store_group_key(const eddy_store_def_t *store, const eddy_value_t *values, char *key,
                          size_t cap, size_t *key_len);

/** The index of the aggregate named `name` in store->aggregates, or -1. */
int eddy_store_def_aggregate_index(const eddy_store_def_t *store, const char *name);

/** Checks what can be checked of one store alone: a window and an aggregate,
 *  retention >= size + grace, ratio references (resolved here), a sink topic that
 *  is no source topic. eddy_topology_finish() runs it on every store; the loader
 *  after each, so errors come in file order. */
eddy_err_t eddy_store_def_check(eddy_store_def_t *store, char *errstr, size_t errstr_size);

/* --- views (view.c) ---------------------------------------------------------------- */

#define EDDY_TOPOLOGY_MAX_VIEWS 64   /* views of one topology */
#define EDDY_VIEW_MAX_WINDOWS   4096 /* windows one view answer may span */

/** A view (eddy.h, docs/topology.md "Views"): a named query over one store served
 *  at its own route. Strings and the predicate belong to the view; `store` and the
 *  indices are resolved by eddy_view_def_check() when the topology is finished. */
typedef struct eddy_view_def_s {
    char *name;                             /* unique among views */
    char *description;                      /* free text, or NULL */
    char *route;                            /* "/api/..." with at most one {param} */
    char *param;                            /* the route's parameter name, or NULL */
    char *store_name;                       /* as declared */
    const eddy_store_def_t *store;          /* resolved by the check */
    char *key;                              /* a literal group key, or NULL */
    bool key_from_param;                    /* the group key is the route's parameter */
    int64_t windows;                        /* windows answered, or 0 when last_ms is set */
    int64_t last_ms;                        /* event time covered, or 0 when windows is set */
    eddy_view_time_t at;                    /* stream time or the wall clock */
    eddy_view_combine_t combine;            /* series or merge */
    char *agg_names[EDDY_MAX_AGGREGATES];   /* as declared; none: all of the store's */
    size_t n_agg_names;                     /* how many were declared */
    bool agg_selected[EDDY_MAX_AGGREGATES]; /* per store aggregate: answered (resolved) */
    eddy_predicate_t *having;               /* over key and aggregate names, or NULL */
    char *share_name;                       /* the share aggregate, or NULL */
    int share;                              /* its index in store->aggregates, or -1 */
} eddy_view_def_t;

/** Checks what needs the whole topology: the store exists, the aggregates,
 *  `having` fields and `share` are the store's, the window count fits in the
 *  retention, merged windows of a hopping store do not overlap, no two views share
 *  a route shape. Called by eddy_topology_finish() after the stores; sets the
 *  error path. */
eddy_err_t eddy_view_def_check(eddy_topology_t *topo, size_t i, char *errstr, size_t errstr_size);

/** The number of windows a view answers by default (windows, or ceil(last_ms /
 *  advance)); needs a checked view. */
int64_t eddy_view_def_window_count(const eddy_view_def_t *view);

void eddy_view_def_destroy(eddy_view_def_t *view);

size_t eddy_topology_view_count(const eddy_topology_t *topo);
const eddy_view_def_t *eddy_topology_view(const eddy_topology_t *topo, size_t i);

/* --- the topology ------------------------------------------------------------------ */

struct eddy_topology_s {
    char *name;                               /* [A-Za-z0-9._-]{1,64} */
    char *description;                        /* free text, or NULL */
    char *sources[EDDY_TOPOLOGY_MAX_SOURCES]; /* source topics, distinct */
    size_t n_sources;                         /* >= 1 once finished */
    char *ts_field_name;                      /* the event-time field */
    int ts_field;                             /* its slot: 0 once finished */
    eddy_ts_format_t ts_format;               /* how it is written */
    int64_t ts_max_future_ms; /* how far ahead of the wall clock; -1: eddy run's setting */
    eddy_field_decl_t decls[EDDY_TOPOLOGY_MAX_FIELDS];       /* declared fields */
    size_t n_decls;                                          /* how many */
    eddy_store_def_t *stores[EDDY_TOPOLOGY_MAX_STORES];      /* in declaration order (owned) */
    size_t n_stores;                                         /* >= 1 once finished */
    char *fields[EDDY_TOPOLOGY_MAX_FIELDS];                  /* field table: names by slot */
    eddy_field_rule_t field_rules[EDDY_TOPOLOGY_MAX_FIELDS]; /* what each must hold */
    unsigned field_uses[EDDY_TOPOLOGY_MAX_FIELDS];           /* EDDY_FIELD_USE_* bits */
    size_t n_fields;                                         /* slots used */
    eddy_view_def_t *views[EDDY_TOPOLOGY_MAX_VIEWS];         /* in declaration order (owned) */
    size_t n_views;                                          /* may be 0 */
    bool finished;                                           /* frozen: read-only from now on */
    char err_path[160]; /* where the last failed call points, see error_path */
};

/** After a builder call, eddy_store_def_check() or eddy_topology_finish() failed:
 *  where the problem is, as a JSON path into the file format of docs/topology.md
 *  without the leading "$." (e.g. "stores[1].window.retention"); "" if nowhere in
 *  particular. The loader puts it in its messages. */
const char *eddy_topology_error_path(const eddy_topology_t *topo);

size_t eddy_topology_field_count(const eddy_topology_t *topo);
const char *eddy_topology_field_name(const eddy_topology_t *topo, size_t i);
/** The slot of the field named `name`, or -1. */
int eddy_topology_field_index(const eddy_topology_t *topo, const char *name);
int eddy_topology_timestamp_field(const eddy_topology_t *topo);
eddy_ts_format_t eddy_topology_timestamp_format(const eddy_topology_t *topo);
/** What the field in slot i must hold (finished topologies). */
const eddy_field_rule_t *eddy_topology_field_rule(const eddy_topology_t *topo, size_t i);
/** The topology's max_future in ms, or -1 if it declares none (eddy run's
 *  event.time.max.future.ms applies then). */
int64_t eddy_topology_max_future(const eddy_topology_t *topo);

/* --- windows and durations (window_spec.c) ------------------------------------------ */

/** The starts of the windows of `w` that hold event time ts (|ts| <=
 *  EDDY_EVENT_TIME_ABS_MAX), ascending: tumbling, the one start floor(ts / size) *
 *  size (floor also for negative ts); hopping, every multiple of advance with start
 *  <= ts < start + size. Writes at most cap starts and returns how many windows
 *  hold ts (more than cap means some were not written, as with snprintf). */
size_t eddy_window_starts(const eddy_window_spec_t *w, int64_t ts, int64_t *starts, size_t cap);

/** The most windows one event can fall in: size / advance rounded up (1 for
 *  tumbling windows). */
size_t eddy_window_max_per_event(const eddy_window_spec_t *w);

/** Parses a duration: one or more <digits><unit>, units d, h, m, s, ms, each at
 *  most once and largest first ("250ms", "10s", "1m", "2h", "1d", "1h30m", "0s").
 *  False for anything else or more than EDDY_DURATION_MAX_MS. */
bool eddy_duration_parse(const char *s, int64_t *ms);

/** Writes ms (>= 0) as eddy_duration_parse reads it, largest units first
 *  ("1h30m", "250ms", "0s"); snprintf semantics, returns the full length. */
size_t eddy_duration_format(int64_t ms, char *buf, size_t cap);

/* --- names ------------------------------------------------------------------------ */

/* File-format names of enum values ("epoch_ms", "on_close", "count_if", "tumbling",
 * "number"); NULL if out of range. */
const char *eddy_ts_format_name(eddy_ts_format_t format);
const char *eddy_emit_name(eddy_emit_t emit);
const char *eddy_agg_op_name(eddy_agg_op_t op);
const char *eddy_window_type_name(eddy_window_type_t type);
/* "scalar", "number", "integer", "string", "boolean" (EDDY_FIELD_ANY is "scalar"). */
const char *eddy_field_type_name(eddy_field_type_t type);

/** Levenshtein distance of two strings, for "did you mean" hints; strings longer
 *  than 32 bytes are never close (returns a large number). */
size_t eddy_topology_edit_distance(const char *a, const char *b);

/** How near `typed` is to `known`, for "did you mean": their edit distance if it
 *  is at most 2 and smaller than both lengths, else SIZE_MAX (too far to hint). */
size_t eddy_topology_hint_distance(const char *typed, const char *known);

#endif /* EDDY_TOPOLOGY_INT_H */
