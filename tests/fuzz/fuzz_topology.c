/*
 * fuzz_topology.c — libFuzzer target: the topology file loader
 * (eddy_topology_load_string, topology/loader.c, and the builder, predicates,
 * views and durations behind it) on arbitrary bytes. It must never crash, leak or
 * read out of bounds, and must keep its contract: a failure comes with a message
 * that names the origin; a success is a finished topology whose field table has
 * the timestamp in slot 0, a rule a decoder can apply to each field, and a JSON
 * rendering (describe --json, GET /api/topology); a decoder built from it
 * decodes an event without tripping an assertion.
 *
 * Built when the compiler is clang (target fuzz_topology, ctest label `fuzz`);
 * the corpus (tests/fuzz/corpus/topology) holds the examples and the loader
 * tests' bad files.
 */
#include "engine/decode.h"
#include "topology/topology_int.h"
#include "topology/topology_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *input)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_topology: %s\ninput: %s\n", what, input);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char errstr[1024] = "";
    eddy_topology_t *topo = eddy_topology_load_string(text, "fuzz.json", errstr, sizeof(errstr));
    if (!topo) {
        check(strncmp(errstr, "fuzz.json: ", 11) == 0 && strlen(errstr) > 11,
              "a failure without a message naming the origin", text);
        free(text);
        return 0;
    }
    check(topo->finished, "a loaded topology is not finished", text);
    check(eddy_topology_field_count(topo) >= 1 && eddy_topology_timestamp_field(topo) == 0,
          "the timestamp is not slot 0", text);
    for (size_t i = 0; i < eddy_topology_field_count(topo); i++) {
        const eddy_field_rule_t *r = eddy_topology_field_rule(topo, i);
        check(eddy_field_type_name(r->type) && !isnan(r->min) && !isnan(r->max) && r->min <= r->max,
              "a field rule a decoder cannot apply", text);
        check(!r->coerce || r->type == EDDY_FIELD_NUMBER || r->type == EDDY_FIELD_INTEGER,
              "coercion on a field that is no number", text);
    }
    json_t *j = eddy_topology_to_json(topo);
    check(j != NULL, "no JSON rendering", text);
    char *dump = json_dumps(j, 0);
    check(dump != NULL, "a JSON rendering that does not serialize", text);
    free(dump);
    json_decref(j);
    eddy_decoder_t *decoder = eddy_decoder_new(topo);
    check(decoder != NULL, "no decoder", text);
    static const char event[] = "{\"ts\":1705314600123,\"endpoint\":\"/a\",\"status\":\"503\","
                                "\"latency_ms\":12.5,\"region\":\"eu\",\"a\":{\"b\":[1]}}";
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t dec;
    const char *reason = NULL;
    eddy_err_t err = eddy_decode_json(decoder, event, sizeof(event) - 1, values, &dec, &reason);
    check(err == EDDY_OK || (reason && dec.bad_field < (int)eddy_topology_field_count(topo)),
          "a rejection without a reason", text);
    eddy_decoder_destroy(decoder);
    eddy_topology_destroy(topo);
    free(text);
    return 0;
}
