/*
 * fuzz_decode.c — libFuzzer target: engine/decode.c's scanner and checks and the
 * jansson reference decoder with checks of its own
 * (tests/support/decode_reference.c) must agree on every input, for five
 * topologies (tests/support/decode_topologies.h and the two examples): "auto",
 * epoch-ms and ISO-8601 timestamps, declared types, coercions and ranges, the
 * event time bounded by a max_ts inside and outside the times the corpus holds.
 * They must agree on accepting, the reason and field of a rejection, the event
 * time and every value. Any difference aborts with what differed.
 *
 * Built when the compiler is clang (target fuzz_decode, ctest label `fuzz`);
 * docs/development.md says how to run it for longer.
 */
#include "decode_reference.h"
#include "decode_topologies.h"

#include <stdio.h>
#include <stdlib.h>

#define N_TOPOS 5

static eddy_topology_t *topos[N_TOPOS];
static eddy_decoder_t *decoders[N_TOPOS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char errstr[256];
    topos[0] = eddy_topology_load_string(eddy_test_topology_auto, "fuzz", errstr, sizeof(errstr));
    topos[1] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/monitoring.json", errstr,
                                       sizeof(errstr));
    topos[2] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/activity.json", errstr,
                                       sizeof(errstr));
    topos[3] = eddy_topology_load_string(eddy_test_topology_typed, "typed", errstr, sizeof(errstr));
    topos[4] =
        eddy_topology_load_string(eddy_test_topology_coerced, "coerced", errstr, sizeof(errstr));
    for (int i = 0; i < N_TOPOS; i++) {
        if (!topos[i] || !(decoders[i] = eddy_decoder_new(topos[i]))) {
            fprintf(stderr, "fuzz_decode: topology %d: %s\n", i, errstr);
            abort();
        }
    }
    /* Fixed bounds, so that a run is reproducible: the example's is the time of
     * most of the corpus (one ms more is in the future), the typed one's 2027. */
    eddy_decoder_set_max_ts(decoders[1], 1705314600123LL);
    eddy_decoder_set_max_ts(decoders[3], 1800000000000LL);
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
