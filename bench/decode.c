/*
 * bench/decode.c — the record decoder (engine/decode.c) against the jansson
 * reference it replaced (tests/support/decode_reference.c), in one process on
 * the same events: N generated http events (producer/event_model.h, seed 1,
 * topology/examples/monitoring.json), decoded REPS times by each; the best pass
 * counts. Prints one JSON object: ns/event of each and their ratio.
 *
 *   bench_decode [--events N] [--reps R] [--only fast|reference|none]
 *
 * --only runs one decoder once over the events (for valgrind --tool=callgrind or
 * perf stat; "none" only generates them, the baseline to subtract); bench/decode
 * runs all of it and writes bench/results/decode.json.
 */
#include "decode_reference.h"
#include "producer/event_model.h"

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

typedef struct events_s {
    char *bytes; /* all events, back to back */
    size_t *off; /* where event i starts; off[n] is the end */
    size_t n;    /* how many */
} events_t;

/* Decodes every event once; returns how many were accepted (and folds the values
 * into *sink so the work cannot be optimised away). */
static size_t pass(const events_t *ev, const eddy_topology_t *topo, eddy_decoder_t *decoder,
                   bool reference, double *sink)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    size_t ok = 0;
    for (size_t i = 0; i < ev->n; i++) {
        const char *buf = ev->bytes + ev->off[i];
        size_t len = ev->off[i + 1] - ev->off[i];
        eddy_decoded_t dec;
        const char *reason;
        json_t *root = NULL;
        eddy_err_t err = reference
                             ? eddy_decode_json_reference(topo, eddy_decoder_max_ts(decoder), buf,
                                                          len, values, &dec, &root, &reason)
                             : eddy_decode_json(decoder, buf, len, values, &dec, &reason);
        if (!err) {
            ok++;
            *sink += (double)dec.ts + values[1].num + (double)values[2].len;
            if (reference)
                json_decref(root);
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    size_t n = 100000;
    int reps = 5;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_decode [--events N] [--reps R] [--only fast|reference|none]\n");
            return 2;
        }
    }
    char errstr[256];
    eddy_topology_t *topo = eddy_topology_load_file(
        EDDY_SOURCE_DIR "/topology/examples/monitoring.json", errstr, sizeof(errstr));
    eddy_decoder_t *decoder = topo ? eddy_decoder_new(topo) : NULL;
    events_t ev = {malloc(n * EDDY_GEN_EVENT_MAX), malloc((n + 1) * sizeof(size_t)), n};
    if (!topo || !decoder || !ev.bytes || !ev.off) {
        fprintf(stderr, "bench_decode: setup failed: %s\n", topo ? "out of memory" : errstr);
        return 1;
    }
    eddy_gen_model_t model;
    eddy_gen_model_init(&model, EDDY_GEN_HTTP, 1);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t key_off, key_len;
        ev.off[i] = used;
        used += eddy_gen_model_next(&model, 1705314600000LL + (int64_t)i * 7, ev.bytes + used,
                                    EDDY_GEN_EVENT_MAX, &key_off, &key_len);
    }
    ev.off[n] = used;

    double sink = 0;
    if (only && strcmp(only, "none") == 0)
        return 0;
    if (only) {
        size_t ok = pass(&ev, topo, decoder, strcmp(only, "reference") == 0, &sink);
        printf("{\"decoder\":\"%s\",\"events\":%zu,\"accepted\":%zu}\n", only, n, ok);
        return ok == n ? 0 : 1;
    }
    int64_t best[2] = {INT64_MAX, INT64_MAX};
    size_t ok[2] = {0, 0};
    for (int r = 0; r < reps + 1; r++) { /* the first pass of each warms up */
        for (int ref = 0; ref < 2; ref++) {
            int64_t t0 = now_ns();
            ok[ref] = pass(&ev, topo, decoder, ref, &sink);
            int64_t t = now_ns() - t0;
            if (r > 0 && t < best[ref])
                best[ref] = t;
        }
    }
    double fast_ns = (double)best[0] / (double)n, ref_ns = (double)best[1] / (double)n;
    printf("{\"events\":%zu,\"bytes_per_event\":%.1f,\"reps\":%d,"
           "\"fast_ns_per_event\":%.1f,\"reference_ns_per_event\":%.1f,\"speedup\":%.2f,"
           "\"accepted\":[%zu,%zu],\"sink\":%g}\n",
           n, (double)used / (double)n, reps, fast_ns, ref_ns, ref_ns / fast_ns, ok[0], ok[1],
           sink);
    eddy_decoder_destroy(decoder);
    eddy_topology_destroy(topo);
    free(ev.bytes);
    free(ev.off);
    return ok[0] == n && ok[1] == n ? 0 : 1;
}
