/*
 * decode_reference.h — the jansson-based record decoder eddy used before
 * engine/decode.c scanned records itself, kept as the reference the unit tests,
 * the fuzzer (tests/fuzz/fuzz_decode.c) and bench/decode.c compare it with.
 * Not linked into eddy. Stateless: safe on any thread.
 */
#ifndef EDDY_DECODE_REFERENCE_H
#define EDDY_DECODE_REFERENCE_H

#include "engine/decode.h"

#include <jansson.h>

/** Like eddy_decode_json() with a decoder whose max_ts is `max_ts`, with
 *  json_loadb(buf, len, 0, NULL), json_object_get() per field and checks of its
 *  own. On success *root holds the parsed record that string values point into
 *  (free it with json_decref() when done); on failure *root is NULL. */
eddy_err_t eddy_decode_json_reference(const eddy_topology_t *topo, int64_t max_ts, const void *buf,
                                      size_t len, eddy_value_t *values, eddy_decoded_t *dec,
                                      json_t **root, const char **reason);

/** Decodes `len` bytes with both decoders (decoder bound to topo; the reference
 *  gets the decoder's max_ts) and compares them: the accept/reject decision, reason and bad_field
 * on rejection, ts and every value (type, the bits of numbers, the bytes of strings) on acceptance.
 *  Returns NULL if they agree, else a static text naming the first difference. */
const char *eddy_decode_compare(eddy_decoder_t *decoder, const eddy_topology_t *topo,
                                const void *buf, size_t len);

#endif /* EDDY_DECODE_REFERENCE_H */
