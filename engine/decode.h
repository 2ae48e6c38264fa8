/*
 * decode.h — turns one input record into the event fields the topology uses
 * (its field table) and the event time. JSON via jansson for now; only the
 * fields in the table are looked at. Stateless: safe on any thread.
 */
#ifndef EDDY_DECODE_H
#define EDDY_DECODE_H

#include "eddy.h"
#include "topology/topology_int.h"

#include <jansson.h>

/** What a decoded event holds on to: string values point into it. */
typedef struct eddy_decoded_s {
    json_t *root;  /* the parsed event (owned) */
    int64_t ts;    /* event time, epoch ms */
    int bad_field; /* on failure: the field-table slot at fault, or -1 */
} eddy_decoded_t;

/** Parses `len` bytes of JSON and fills values[] (indexed like the topology's field
 *  table; absent fields are EDDY_VALUE_MISSING) and dec->ts. On failure returns
 *  EDDY_ERR_INVALID with a static reason ("not a JSON object", ...) and owns
 *  nothing. On success release with eddy_decoded_release() once the values are no
 *  longer used. */
eddy_err_t eddy_decode_json(const eddy_topology_t *topo, const void *buf, size_t len,
                            eddy_value_t *values, eddy_decoded_t *dec, const char **reason);

void eddy_decoded_release(eddy_decoded_t *dec);

/** Parses an ISO-8601 UTC timestamp such as "2024-01-15T10:30:00.123Z" (fraction
 *  optional, up to 9 digits; 'Z' or a ±HH:MM offset) into epoch ms. */
bool eddy_parse_iso8601(const char *s, size_t len, int64_t *ms);

#endif /* EDDY_DECODE_H */
