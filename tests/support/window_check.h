/*
 * window_check.h — compares the windows a running `eddy run` serves over HTTP
 * (GET /api/stores/<store>/windows) with the reference (reference.h) recomputed
 * from the input records. Shared by the integration tests, which fail on any
 * mismatch, and the crash drill, which counts and reports them.
 *
 * What "equal" means: the same set of (start, key) windows; counts and error
 * counts exact; error rates and means to rounding (1e-12 absolute, 1e-9 relative);
 * percentiles within the sketch's 1% of the exact value's bounds; distinct counts
 * within the HyperLogLog's error. Nothing here calls cmocka: the caller decides
 * what a mismatch means. Call from one thread (eddy_test_check_monitoring runs
 * its four reference computations on threads of its own); mismatches are
 * printed on stderr.
 */
#ifndef EDDY_TEST_WINDOW_CHECK_H
#define EDDY_TEST_WINDOW_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "reference.h"
#include "topic_reader.h"

/** Which aggregates a store carries besides its count. */
typedef enum eddy_test_check_kind_e {
    EDDY_TEST_CHECK_MONITORING, /* errors, error_rate, mean, percentiles (monitoring.json) */
    EDDY_TEST_CHECK_ACTIVITY,   /* distinct users (activity.json) */
} eddy_test_check_kind_t;

/** Counters of one or more comparisons; zero it, set max_print, pass it to every
 *  call and read it afterwards. */
typedef struct eddy_test_check_s {
    int max_print;       /* print at most this many mismatches (in total) on stderr */
    int printed;         /* mismatches printed so far */
    size_t windows;      /* windows compared: served ones plus reference ones not served */
    size_t mismatches;   /* windows that differ, are not in the reference or are missing */
    size_t fetch_errors; /* stores that could not be fetched or were not valid answers */
    int64_t late;        /* (record, window) pairs the reference dropped as late, summed */
    int64_t undecodable; /* records the reference could not decode (the last store's) */
} eddy_test_check_t;

/** Compares every window of `store` served at 127.0.0.1:port with the reference
 *  of `spec` over `input`, adding to *chk. Returns 0 when the store was fetched
 *  and compared (mismatches or not), -1 when it could not be fetched. */
int eddy_test_check_store(int port, const char *store, const ref_spec_t *spec,
                          const eddy_test_topic_t *input, eddy_test_check_kind_t kind,
                          eddy_test_check_t *chk);

/** The reference of a 1-minute store of topology/examples/monitoring.json grouped
 *  by `group_field` (NULL: one group): its time field, grace, latency values and
 *  the field declarations that make an event valid. */
ref_spec_t eddy_test_monitoring_spec(const char *group_field);

/** Compares the four stores of topology/examples/monitoring.json
 *  (requests_per_endpoint, endpoint_stats, region_stats, status_codes) over the
 *  log-events records `input`. Returns 0 when all four were fetched, else -1. */
int eddy_test_check_monitoring(int port, const eddy_test_topic_t *input, eddy_test_check_t *chk);

#endif /* EDDY_TEST_WINDOW_CHECK_H */
