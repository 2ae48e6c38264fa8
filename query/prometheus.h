/*
 * prometheus.h — GET /metrics: Prometheus' text exposition format (version 0.0.4)
 * and the handler that writes eddy's metrics in it (docs/metrics.md lists them).
 *
 * The writer builds one exposition in memory: a family (its # HELP and # TYPE
 * lines) and then its samples; label values and help texts are escaped here, so
 * callers pass raw strings. It belongs to one thread (the handler makes one per
 * request). The handler reads the engine's, the HTTP server's and the WebSocket
 * endpoint's counters, which are relaxed atomics: it takes no lock the stream
 * threads take, and asks no broker anything.
 */
#ifndef EDDY_PROMETHEUS_H
#define EDDY_PROMETHEUS_H

#include "engine/runtime.h"
#include "query/http.h"

#include <stddef.h>
#include <stdint.h>

/** The Content-Type of the text format. */
#define EDDY_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum eddy_prom_type_e {
    EDDY_PROM_COUNTER = 0,   /**< only goes up (resets when the process or task restarts) */
    EDDY_PROM_GAUGE = 1,     /**< goes up and down */
    EDDY_PROM_HISTOGRAM = 2, /**< cumulative buckets, _sum and _count */
} eddy_prom_type_t;

typedef struct eddy_prom_s eddy_prom_t;

/** A new, empty exposition; NULL if out of memory. */
eddy_prom_t *eddy_prom_new(void);

/** Frees it. NULL is a no-op. */
void eddy_prom_destroy(eddy_prom_t *prom);

/** Starts the family `name` (a valid metric name; counters end in `_total`) with
 *  its # HELP and # TYPE lines. Each name once per exposition (asserted). */
void eddy_prom_family(eddy_prom_t *prom, const char *name, eddy_prom_type_t type, const char *help);

/** One sample of the current counter or gauge family. `labels` is NULL or a
 *  NULL-terminated list of name, value, name, value, ... (values raw, escaped
 *  here). Non-finite values are written as +Inf, -Inf, NaN. */
void eddy_prom_sample(eddy_prom_t *prom, const char *const *labels, double value);

/** One series of the current histogram family: `n` ascending finite bounds,
 *  le[i] the observations <= bounds[i] (cumulative, so non-decreasing), `count`
 *  all of them (the +Inf bucket, >= le[n-1]), `sum` their total. Writes
 *  NAME_bucket{...,le="B"} for each bound and +Inf, then NAME_sum and NAME_count. */
void eddy_prom_histogram(eddy_prom_t *prom, const char *const *labels, const double *bounds,
                         const uint64_t *le, size_t n, uint64_t count, double sum);

/** A family with one unlabelled sample: family() then sample(). */
void eddy_prom_metric(eddy_prom_t *prom, const char *name, eddy_prom_type_t type, const char *help,
                      double value);

/** The text written so far (NUL-terminated) and its length through *len, or NULL
 *  if memory ran out on the way. Owned by prom. */
const char *eddy_prom_text(const eddy_prom_t *prom, size_t *len);

/** What the /metrics handler reads; all borrowed, and they must outlive the HTTP
 *  server. ws may be NULL (no WebSocket endpoint: its metrics are left out). */
typedef struct eddy_prom_sources_s {
    eddy_runtime_t *rt;         /* engine counters, stores */
    const eddy_http_t *http;    /* the server's request counters */
    const struct eddy_ws_s *ws; /* WebSocket counters, or NULL */
} eddy_prom_sources_t;

/** Writes every metric of an eddy instance (docs/metrics.md) into prom. Any
 *  thread; reads only atomics and RocksDB's cheap properties. */
void eddy_prom_write_instance(eddy_prom_t *prom, const eddy_prom_sources_t *src);

/** The handler of GET /metrics; opaque is an eddy_prom_sources_t. */
int eddy_prom_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque);

#endif /* EDDY_PROMETHEUS_H */
