/*
 * fuzz_decode.c — libFuzzer target: engine/decode.c's scanner and the jansson
 * reference decoder (tests/support/decode_reference.c) must agree on every input,
 * for three topologies: "auto", epoch-ms and ISO-8601 timestamps, different
 * field tables. Any difference aborts with what differed.
 *
 * Built when the compiler is clang (target fuzz_decode, ctest label `fuzz`);
 * docs/development.md says how to run it for longer.
 */
#include "decode_reference.h"

#include <stdio.h>
#include <stdlib.h>

#define N_TOPOS 3

static eddy_topology_t *topos[N_TOPOS];
static eddy_decoder_t *decoders[N_TOPOS];

static const char auto_topology[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"auto\"}},\"stores\":[{\"name\":\"s\",\"group_by\":[\"endpoint\",\"b\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500 and a == \\\"x\\\"\"},"
    "{\"name\":\"m\",\"op\":\"mean\",\"field\":\"latency_ms\"}]}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char errstr[256];
    topos[0] = eddy_topology_load_string(auto_topology, "fuzz", errstr, sizeof(errstr));
    topos[1] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/monitoring.json", errstr,
                                       sizeof(errstr));
    topos[2] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/activity.json", errstr,
                                       sizeof(errstr));
    for (int i = 0; i < N_TOPOS; i++) {
        if (!topos[i] || !(decoders[i] = eddy_decoder_new(topos[i]))) {
            fprintf(stderr, "fuzz_decode: topology %d: %s\n", i, errstr);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int i = 0; i < N_TOPOS; i++) {
        const char *diff = eddy_decode_compare(decoders[i], topos[i], data, size);
        if (diff) {
            fprintf(stderr, "fuzz_decode: topology %d: the decoders disagree: %s\n", i, diff);
            abort();
        }
    }
    return 0;
}
