/*
 * topology_int.h — the validated topology as the engine reads it.
 *
 * After eddy_topology_finish() a topology is immutable and shared by every
 * thread. It holds a field table — every event field the topology reads, each
 * once — so the decoder extracts only those fields into an array of eddy_value_t
 * indexed like the table; stores, aggregates and predicates refer to fields by
 * index.
 */
#ifndef EDDY_TOPOLOGY_INT_H
#define EDDY_TOPOLOGY_INT_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDDY_TOPOLOGY_MAX_STORES  32
#define EDDY_TOPOLOGY_MAX_FIELDS  64
#define EDDY_TOPOLOGY_MAX_SOURCES 8
#define EDDY_MAX_AGGREGATES       32
#define EDDY_MAX_GROUP_FIELDS     8
#define EDDY_PREDICATE_MAX_TERMS  16

/** One field of one event, as extracted by the decoder. */
typedef enum eddy_value_type_e {
    EDDY_VALUE_MISSING = 0, /**< absent (or an object/array) */
    EDDY_VALUE_NULL,        /**< JSON null */
    EDDY_VALUE_NUMBER,      /**< num holds it */
    EDDY_VALUE_STRING,      /**< str/len hold it (not NUL-terminated in general) */
    EDDY_VALUE_BOOL,        /**< num is 0 or 1 */
} eddy_value_type_t;

typedef struct eddy_value_s {
    eddy_value_type_t type; /* which member is meaningful */
    double num;             /* NUMBER, BOOL */
    const char *str;        /* STRING: borrowed from the decoded record */
    size_t len;             /* STRING: bytes */
} eddy_value_t;

/** What a field must hold for an event to be usable (strictest use wins). */
typedef enum eddy_field_need_e {
    EDDY_FIELD_ANY = 0, /**< present or not (predicates) */
    EDDY_FIELD_SCALAR,  /**< a string or a number (group keys, distinct) */
    EDDY_FIELD_NUMBER,  /**< a number (sum, min, max, mean, percentiles) */
} eddy_field_need_t;

/* --- predicates (count_if "where") ------------------------------------------- */

typedef enum eddy_cmp_e {
    EDDY_CMP_EQ,
    EDDY_CMP_NE,
    EDDY_CMP_LT,
    EDDY_CMP_LE,
    EDDY_CMP_GT,
    EDDY_CMP_GE
} eddy_cmp_t;

/** One comparison FIELD OP LITERAL. */
typedef struct eddy_pred_term_s {
    char *field_name; /* as written (owned) */
    int field;        /* field index, resolved by eddy_topology_finish */
    eddy_cmp_t op;    /* comparison */
    bool is_string;   /* literal is a string (else a number) */
    double num;       /* number literal */
    char *str;        /* string literal (owned) */
    size_t len;       /* its length */
} eddy_pred_term_t;

/** A predicate in disjunctive normal form: OR of groups, each an AND of terms.
 *  `and` binds tighter than `or`; parentheses are not supported. */
typedef struct eddy_predicate_s {
    eddy_pred_term_t terms[EDDY_PREDICATE_MAX_TERMS]; /* all terms, group by group */
    int group_end[EDDY_PREDICATE_MAX_TERMS];          /* end index (exclusive) of each group */
    int n_terms;                                      /* terms used */
    int n_groups;                                     /* groups used */
    char *text;                                       /* as written (owned) */
} eddy_predicate_t;

/** True if the event's values satisfy the predicate. No allocation. */
bool eddy_predicate_eval(const eddy_predicate_t *pred, const eddy_value_t *values);

/* --- stores ---------------------------------------------------------------- */

typedef enum eddy_window_type_e { EDDY_WINDOW_TUMBLING, EDDY_WINDOW_HOPPING } eddy_window_type_t;

typedef struct eddy_window_spec_s {
    eddy_window_type_t type; /* tumbling or hopping */
    int64_t size_ms;         /* window length */
    int64_t advance_ms;      /* = size for tumbling */
    int64_t grace_ms;        /* accepted lateness after the window's end */
    int64_t retention_ms;    /* how long windows stay queryable, >= size + grace */
} eddy_window_spec_t;

/** The starts of every window holding event time ts, ascending; at most cap are
 *  written. Returns how many windows hold ts (size / advance, rounded up). */
size_t eddy_window_starts(const eddy_window_spec_t *w, int64_t ts, int64_t *starts, size_t cap);

typedef enum eddy_agg_op_e {
    EDDY_AGG_COUNT,
    EDDY_AGG_COUNT_IF,
    EDDY_AGG_SUM,
    EDDY_AGG_MIN,
    EDDY_AGG_MAX,
    EDDY_AGG_MEAN,
    EDDY_AGG_PERCENTILE,
    EDDY_AGG_DISTINCT,
    EDDY_AGG_RATIO,
} eddy_agg_op_t;

typedef struct eddy_agg_def_s {
    char *name;                  /* output name (owned) */
    eddy_agg_op_t op;            /* what it computes */
    int field;                   /* field index; -1 for count, count_if, ratio */
    double q;                    /* percentile: quantile in (0, 1] */
    eddy_predicate_t *predicate; /* count_if (owned) */
    int numerator;               /* ratio: index of an aggregate of this store */
    int denominator;             /* ratio: index of an aggregate of this store */
    char *num_name, *den_name;   /* ratio: names as declared, resolved at finish (owned) */
    char *field_name;            /* field as declared (owned) */
} eddy_agg_def_t;

typedef enum eddy_emit_e { EDDY_EMIT_ON_CLOSE, EDDY_EMIT_UPDATES } eddy_emit_t;

struct eddy_store_def_s {
    char *name;                                     /* [A-Za-z0-9_-]+ (owned) */
    int group_fields[EDDY_MAX_GROUP_FIELDS];        /* field indices; none = one global key "" */
    char *group_names[EDDY_MAX_GROUP_FIELDS];       /* as declared (owned) */
    size_t n_group;                                 /* used */
    eddy_window_spec_t window;                      /* the window */
    bool has_window;                                /* a window was declared */
    eddy_agg_def_t aggregates[EDDY_MAX_AGGREGATES]; /* in declaration order */
    size_t n_aggregates;                            /* used */
    char *sink_topic;                               /* NULL: no sink (owned) */
    eddy_emit_t sink_emit;                          /* when the sink gets records */
};

/** Formats the group key of an event into key (cap bytes): one field's value as
 *  text (integral numbers without a fraction: 500 -> "500"); several joined by '|'
 *  with '|' and '\' escaped by '\'. False if a group field is missing or not a
 *  string or number, or the key does not fit. */
bool eddy_store_group_key(const eddy_store_def_t *store, const eddy_value_t *values, char *key,
                          size_t cap, size_t *key_len);

/* --- the topology -------------------------------------------------------------- */

struct eddy_topology_s {
    char *name;                                              /* as declared (owned) */
    char *sources[EDDY_TOPOLOGY_MAX_SOURCES];                /* source topics (owned) */
    size_t n_sources;                                        /* used */
    char *ts_field_name;                                     /* timestamp field (owned) */
    int ts_field;                                            /* its index */
    eddy_ts_format_t ts_format;                              /* how it is written */
    eddy_store_def_t *stores[EDDY_TOPOLOGY_MAX_STORES];      /* in declaration order (owned) */
    size_t n_stores;                                         /* used */
    char *fields[EDDY_TOPOLOGY_MAX_FIELDS];                  /* the field table (owned) */
    eddy_field_need_t field_needs[EDDY_TOPOLOGY_MAX_FIELDS]; /* what each must hold */
    size_t n_fields;                                         /* used */
    bool finished;                                           /* validated; immutable now */
};

size_t eddy_topology_store_count(const eddy_topology_t *topo);
const eddy_store_def_t *eddy_topology_store(const eddy_topology_t *topo, size_t i);
/** The store named `name`, or NULL. */
const eddy_store_def_t *eddy_topology_store_by_name(const eddy_topology_t *topo, const char *name);
size_t eddy_topology_field_count(const eddy_topology_t *topo);
const char *eddy_topology_field_name(const eddy_topology_t *topo, size_t i);
int eddy_topology_timestamp_field(const eddy_topology_t *topo);
eddy_ts_format_t eddy_topology_timestamp_format(const eddy_topology_t *topo);

/** Parses a duration: "250ms", "10s", "1m", "2h", "1d", or a JSON integer of ms as
 *  text ("60000"). False on anything else or a value <= 0 (== 0 allowed if zero_ok). */
bool eddy_duration_parse(const char *s, bool zero_ok, int64_t *ms);

/** Formats ms as the shortest exact unit ("1m", "30s", "250ms"). */
void eddy_duration_format(int64_t ms, char *buf, size_t cap);

#endif /* EDDY_TOPOLOGY_INT_H */
