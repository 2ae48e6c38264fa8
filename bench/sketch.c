/*
 * bench/sketch.c — the cost of eddy_sketch_add (topology/sketch.c), the per-event
 * work of every percentile aggregate. N values generated up front, added to a
 * sketch warmed on the same values (its buckets allocated), REPS passes; the best
 * pass counts. Prints one JSON object: ns per add for each workload.
 *
 *   bench_sketch [--values N] [--reps R] [--only latency|outlier|spread|none]
 *
 * Workloads: latency (normal, mean 80 ms, sd 20: what the demo sends), outlier
 * (the same and one 1e308 added first, the value that used to fold every other
 * bucket), spread (every value in another bucket, over the whole double range of
 * both signs: the worst an attacker can send). --only runs one workload once
 * (for valgrind --tool=callgrind or perf stat; "none" only generates the values,
 * the baseline to subtract).
 */
#include "topology/sketch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t rng = 88172645463325252ULL;

static double unit(void) /* [0, 1), xorshift64 */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static double gen_latency(void)
{
    double v;
    do
        v = 80.0 + 20.0 * sqrt(-2.0 * log(1.0 - unit())) * cos(2.0 * M_PI * unit());
    while (v <= 0);
    return v;
}

static double gen_spread(void) /* log-uniform over [1e-9, 1e308], either sign */
{
    double v = exp(log(1e-9) + (log(1e308) - log(1e-9)) * unit());
    return unit() < 0.5 ? -v : v;
}

/* Adds every value once; returns ns per add. */
static double pass(eddy_sketch_t *sketch, const double *v, size_t n)
{
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        eddy_sketch_add(sketch, v[i]);
    return (double)(now_ns() - t0) / (double)n;
}

static double run(const char *name, size_t n, int reps, bool once)
{
    double *v = malloc(n * sizeof(double));
    if (!v)
        exit(1);
    for (size_t i = 0; i < n; i++)
        v[i] = !strcmp(name, "spread") ? gen_spread() : gen_latency();
    if (!strcmp(name, "none")) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += v[i];
        free(v);
        return s; /* keeps the generation from being optimised away */
    }
    eddy_sketch_t *sketch = eddy_sketch_new();
    if (!strcmp(name, "outlier"))
        eddy_sketch_add(sketch, 1e308);
    double best = INFINITY;
    if (!once)
        pass(sketch, v, n); /* warm-up: allocates the buckets */
    for (int r = 0; r < (once ? 1 : reps); r++) {
        double ns = pass(sketch, v, n);
        best = ns < best ? ns : best;
    }
    /* Read the sketch so the adds cannot be optimised away. */
    if (!(eddy_sketch_quantile(sketch, 0.5) == eddy_sketch_quantile(sketch, 0.5)))
        fprintf(stderr, "bench_sketch: p50 is NaN\n");
    eddy_sketch_destroy(sketch);
    free(v);
    return best;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int reps = 10;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--values") && i + 1 < argc)
            n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_sketch [--values N] [--reps R] "
                            "[--only latency|outlier|spread|none]\n");
            return 2;
        }
    }
    if (n == 0 || reps < 1)
        return 2;
    if (only) {
        double r = run(only, n, 1, true);
        printf("{\"workload\":\"%s\",\"values\":%zu,\"ns_per_add\":%.2f}\n", only, n, r);
        return 0;
    }
    printf("{\"values\":%zu,\"reps\":%d", n, reps);
    static const char *const names[] = {"latency", "outlier", "spread"};
    for (int i = 0; i < 3; i++)
        printf(",\"%s_ns_per_add\":%.2f", names[i], run(names[i], n, reps, false));
    printf("}\n");
    return 0;
}
