/*
 * metrics.c — the engine's counters (see runtime.h): plain atomics with relaxed
 * ordering, since each value is a monotonic count read for display only.
 */
#include "engine/runtime.h"

const double eddy_commit_bucket_bounds[EDDY_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 1e308,
};

void eddy_metrics_commit(eddy_metrics_t *m, int64_t ns, size_t dirty)
{
    atomic_fetch_add_explicit(&m->commits, 1, memory_order_relaxed);
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
