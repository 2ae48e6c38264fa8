/*
 * decode.h — turns one input record into the event fields the topology uses
 * (its field table) and the event time.
 *
 * The decoder scans the JSON record once, without allocating: it validates all
 * of it (exactly what jansson 2.14's json_loadb() with flags 0 accepts) and
 * extracts only the top-level members named in the field table. An eddy_decoder_t
 * belongs to one thread (a task); the values it hands out borrow from the record
 * and from the decoder's scratch buffer, so they live until the next decode with
 * the same decoder or until the record is freed, whichever comes first.
 */
#ifndef EDDY_DECODE_H
#define EDDY_DECODE_H

#include "eddy.h"
#include "topology/topology_int.h"

/** A reusable decoder bound to one finished topology: the field lookup table and
 *  a scratch buffer for unescaped strings (grown to the largest record seen). */
typedef struct eddy_decoder_s eddy_decoder_t;

/** What one decode tells besides the values. */
typedef struct eddy_decoded_s {
    int64_t ts;    /* event time, epoch ms */
    int bad_field; /* on failure: the field-table slot at fault, or -1 */
} eddy_decoded_t;

/** A decoder for `topo`, which must outlive it; NULL if out of memory. Its event
 *  times are bounded by the year 9999 until eddy_decoder_set_max_ts(). */
eddy_decoder_t *eddy_decoder_new(const eddy_topology_t *topo);

/** Frees the decoder; values it handed out are gone with it. NULL is a no-op. */
void eddy_decoder_destroy(eddy_decoder_t *decoder);

/** The latest event time the decoder accepts from now on (the wall clock plus
 *  max_future; the stream thread sets it once per batch), at most
 *  EDDY_EVENT_TIME_MAX_MS. Later ones are bad input. */
void eddy_decoder_set_max_ts(eddy_decoder_t *decoder, int64_t max_ts);

/** The bound eddy_decoder_set_max_ts() set (EDDY_EVENT_TIME_MAX_MS before). */
int64_t eddy_decoder_max_ts(const eddy_decoder_t *decoder);

/** Parses `len` bytes of JSON and fills values[] (indexed like the topology's field
 *  table; absent fields are EDDY_VALUE_MISSING, objects and arrays
 *  EDDY_VALUE_OBJECT and EDDY_VALUE_ARRAY; a key given twice counts with its last
 *  value) and dec->ts, then checks every field against its rule
 *  (eddy_field_rule_t): the timestamp first, then the other slots in order, the
 *  first failure wins. A string value is str/len, not NUL-terminated: it points
 *  into buf when it has no escapes, else into the decoder's scratch; it lives
 *  until the next call with this decoder and as long as buf. A string a rule
 *  coerces becomes the number it holds. On failure returns EDDY_ERR_INVALID with
 *  a static reason ("not valid JSON", "the field holds a string; expected a
 *  number", ...; docs/topology.md lists them) and dec->bad_field, or
 *  EDDY_ERR_NOMEM if the scratch buffer could not grow. Never allocates once the
 *  scratch is large enough for the records (twice the largest, plus 64 bytes). */
eddy_err_t eddy_decode_json(eddy_decoder_t *decoder, const void *buf, size_t len,
                            eddy_value_t *values, eddy_decoded_t *dec, const char **reason);

/** Parses an ISO-8601 UTC timestamp such as "2024-01-15T10:30:00.123Z" (fraction
 *  optional, up to 9 digits; 'Z' or a ±HH:MM offset) into epoch ms. */
bool eddy_parse_iso8601(const char *s, size_t len, int64_t *ms);

#endif /* EDDY_DECODE_H */
