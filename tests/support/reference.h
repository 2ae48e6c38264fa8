/*
 * reference.h — the independent reference implementation eddy's windows are
 * checked against: simple, slow, obviously-right code that recomputes windowed
 * aggregates from records read back from the input topic (topic_reader.h).
 *
 * It follows docs/running.md ("What it does") literally: windows aligned to the epoch, per
 * partition stream time = the largest event time seen so far (in offset order),
 * a record counts in a window only if window end + grace > stream time. Values are
 * kept whole (every latency is stored) so percentiles are exact.
 */
#ifndef EDDY_TEST_REFERENCE_H
#define EDDY_TEST_REFERENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topic_reader.h"

/** Bytes of a group key, with its NUL: eddy's limit (a longer key is bad input). */
#define REF_KEY_MAX 1024

/** One reference window: (start, key) with everything needed to derive any
 *  aggregate exactly. */
typedef struct ref_window_s {
    int64_t start;         /* window start, ms */
    char key[REF_KEY_MAX]; /* group key as eddy formats it */
    int64_t count;         /* records */
    int64_t errors;        /* records with status >= 500 */
    double sum;            /* sum of the numeric field */
    double *values;        /* every value of the numeric field, sorted after finish */
    size_t n_values;       /* entries used in values */
    size_t cap_values;     /* allocated entries */
    char **distinct;       /* distinct strings of the distinct field (unsorted set) */
    size_t n_distinct;     /* entries used in distinct */
    size_t cap_distinct;   /* allocated entries */
} ref_window_t;

/** A field every valid event has, with the type (and range) its topology
 *  declares for it. */
typedef struct ref_check_s {
    const char *field; /* NULL ends the list */
    bool number;       /* a JSON number; else a JSON string */
    bool whole;        /* a number without a fraction */
    double min, max;   /* a number within [min, max]; both 0: any */
} ref_check_t;

/** What to compute: group by one field, a window, optionally a numeric field
 *  (latency) and a distinct field; `errors` counts status >= 500 when the event
 *  has a numeric status field. A valid event is a JSON object whose time field
 *  is an event time from 1970 to the wall clock plus max_future, with every
 *  field of the spec present as stated; the others are undecodable. */
typedef struct ref_spec_s {
    const char *group_field;    /* NULL: one global key "" */
    const char *time_field;     /* event time field */
    bool time_iso;              /* time field is an ISO-8601 string, else epoch ms */
    int64_t size_ms;            /* window size */
    int64_t advance_ms;         /* = size for tumbling */
    int64_t grace_ms;           /* grace period */
    const char *value_field;    /* numeric field for sum/mean/percentiles, or NULL */
    const char *distinct_field; /* field for distinct counts, or NULL */
    const char *required[8];    /* more fields that must be a string or a number (the
                                   topology's other group keys), NULL-terminated */
    ref_check_t checks[8];      /* fields of a declared type; ends at a NULL field */
    int64_t max_future_ms;      /* how far ahead of the wall clock; 0: 1 day */
} ref_spec_t;

typedef struct ref_result_s {
    ref_window_t *windows; /* sorted by (start, key) after ref_compute */
    size_t n;              /* windows */
    size_t cap;            /* allocated */
    int64_t late;          /* (record, window) pairs dropped as late */
    int64_t undecodable;   /* records that were not valid events */
} ref_result_t;

/** Computes the windows of `spec` over every record of `topic`. */
void ref_compute(const ref_spec_t *spec, const eddy_test_topic_t *topic, ref_result_t *out);

void ref_result_free(ref_result_t *res);

/** Finds a window by (start, key); NULL if absent. */
const ref_window_t *ref_find(const ref_result_t *res, int64_t start, const char *key);

/** Exact quantile bounds of the sorted values: the values at ranks
 *  floor(q*(n-1)) and ceil(q*(n-1)). */
void ref_quantile_bounds(const ref_window_t *w, double q, double *lo, double *hi);

/** Parses "2024-01-15T10:30:00.123Z" (also without fraction); -1 on error. */
int64_t ref_parse_iso8601(const char *s);

#endif /* EDDY_TEST_REFERENCE_H */
