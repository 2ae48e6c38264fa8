/*
 * metrics.c — the engine's counters (see runtime.h): plain atomics with relaxed
 * ordering, since each value is a monotonic count read for display only.
 */
#include "engine/runtime.h"
#include "engine/util.h"
#include "topology/sketch.h"

const double eddy_commit_bucket_bounds[EDDY_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 1e308,
};

eddy_err_t eddy_metrics_init(eddy_metrics_t *m)
{
    pthread_mutex_init(&m->commit_lock, NULL);
    atomic_init(&m->dlq_max_bytes, 1000000); /* librdkafka's message.max.bytes, until a
                                                producer says otherwise */
    m->commit_ms = eddy_sketch_new();
    return m->commit_ms ? EDDY_OK : EDDY_ERR_NOMEM;
}

void eddy_metrics_free(eddy_metrics_t *m)
{
    eddy_sketch_destroy(m->commit_ms);
    m->commit_ms = NULL;
    pthread_mutex_destroy(&m->commit_lock);
}

double eddy_metrics_commit_ms(eddy_metrics_t *m, double q)
{
    pthread_mutex_lock(&m->commit_lock);
    double v = eddy_sketch_count(m->commit_ms) ? eddy_sketch_quantile(m->commit_ms, q) : 0;
    pthread_mutex_unlock(&m->commit_lock);
    return v;
}

void eddy_metrics_commit(eddy_metrics_t *m, int64_t ns, size_t dirty)
{
    pthread_mutex_lock(&m->commit_lock);
    eddy_sketch_add(m->commit_ms, (double)ns / 1e6);
    pthread_mutex_unlock(&m->commit_lock);
    atomic_fetch_add_explicit(&m->commits, 1, memory_order_relaxed);
    atomic_store_explicit(&m->last_commit_ms, eddy_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&m->brokers_down, 0, memory_order_relaxed); /* it reached them */
    atomic_fetch_add_explicit(&m->commit_ns_total, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->dirty_written, (long long)dirty, memory_order_relaxed);
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < EDDY_COMMIT_BUCKETS - 1 && s > eddy_commit_bucket_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->commit_buckets[b], 1, memory_order_relaxed);
}

void eddy_metrics_rebalance(eddy_metrics_t *m)
{
    atomic_fetch_add_explicit(&m->rebalances, 1, memory_order_relaxed);
}
