/*
 * decode_reference.c — the jansson-based reference decoder (decode_reference.h):
 * parse the whole record into a json_t tree, look up each field of the field
 * table, then check each against its rule (topology_int.h, eddy_field_rule_t)
 * with jansson's own types and this file's own code, written from the rules in
 * docs/topology.md and not from engine/decode.c: json_is_number for numbers,
 * jansson parsing a coerced string, floor() for whole numbers. Only the ISO-8601
 * parser is eddy's (tests/unit/test_decode.c checks it on its own).
 */
#include "decode_reference.h"

#include <math.h>
#include <string.h>

/* What the field was, as the reasons say it. */
static const char *found_text(json_t *j)
{
    if (!j)
        return "the field is missing";
    switch (json_typeof(j)) {
    case JSON_NULL:
        return "the field is null";
    case JSON_INTEGER:
    case JSON_REAL:
        return "the field holds a number";
    case JSON_STRING:
        return "the field holds a string";
    case JSON_TRUE:
    case JSON_FALSE:
        return "the field holds a boolean";
    case JSON_OBJECT:
        return "the field holds an object";
    default:
        return "the field holds an array";
    }
}

/* "<found>; expected <what>" for every found text and what a rule expects: the
 * reasons are static strings, so they are all listed. */
#define FOUND_EXPECT(found, what)                                                                  \
    {                                                                                              \
        found, what, found "; " what                                                               \
    }
static const struct {
    const char *found, *expected, *reason;
} reasons[] = {
#define ALL_EXPECTED(found)                                                                        \
    FOUND_EXPECT(found, "expected a string, number or boolean"),                                   \
        FOUND_EXPECT(found, "expected a number"), FOUND_EXPECT(found, "expected a whole number"),  \
        FOUND_EXPECT(found, "expected a string"), FOUND_EXPECT(found, "expected true or false"),   \
        FOUND_EXPECT(found, "expected epoch milliseconds (a number)"),                             \
        FOUND_EXPECT(found, "expected an ISO-8601 time (a string)"),                               \
        FOUND_EXPECT(found, "expected epoch milliseconds or an ISO-8601 time")
    ALL_EXPECTED("the field is missing"),      ALL_EXPECTED("the field is null"),
    ALL_EXPECTED("the field holds a number"),  ALL_EXPECTED("the field holds a string"),
    ALL_EXPECTED("the field holds a boolean"), ALL_EXPECTED("the field holds an object"),
    ALL_EXPECTED("the field holds an array"),
#undef ALL_EXPECTED
};

static const char *wrong(json_t *j, const char *expected)
{
    const char *found = found_text(j);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (!strcmp(reasons[i].found, found) && !strcmp(reasons[i].expected, expected))
            return reasons[i].reason;
    return "no such reason"; /* cannot happen: the table lists every pair */
}

static const char *expected_text(eddy_field_type_t type)
{
    switch (type) {
    case EDDY_FIELD_NUMBER:
        return "expected a number";
    case EDDY_FIELD_INTEGER:
        return "expected a whole number";
    case EDDY_FIELD_STRING:
        return "expected a string";
    case EDDY_FIELD_BOOL:
        return "expected true or false";
    default:
        return "expected a string, number or boolean";
    }
}

static void set_value(eddy_value_t *v, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        v->type = EDDY_VALUE_STRING;
        v->str = json_string_value(j);
        v->len = json_string_length(j);
        break;
    case JSON_INTEGER:
        v->type = EDDY_VALUE_NUMBER;
        v->num = (double)json_integer_value(j);
        break;
    case JSON_REAL:
        v->type = EDDY_VALUE_NUMBER;
        v->num = json_real_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = EDDY_VALUE_BOOL;
        v->num = json_is_true(j);
        break;
    case JSON_NULL:
        v->type = EDDY_VALUE_NULL;
        break;
    case JSON_OBJECT:
        v->type = EDDY_VALUE_OBJECT;
        break;
    case JSON_ARRAY:
        v->type = EDDY_VALUE_ARRAY;
        break;
    }
}

/* The event time of the record, or the reason it has none. */
static const char *check_time(const eddy_topology_t *topo, json_t *j, int64_t max_ts, int64_t *ts)
{
    eddy_ts_format_t fmt = eddy_topology_timestamp_format(topo);
    static const char before[] = "the timestamp is before the epoch, 1970-01-01T00:00:00Z";
    static const char future[] =
        "the timestamp is too far in the future: beyond the wall clock plus max_future";
    if (json_is_number(j) && fmt != EDDY_TS_ISO8601) {
        double v = json_number_value(j);
        if (v < 0)
            return before;
        if (v > (double)max_ts)
            return future;
        if (floor(v) != v)
            return "the timestamp is not a whole number of milliseconds";
        *ts = (int64_t)v;
        return NULL;
    }
    if (json_is_string(j) && fmt != EDDY_TS_EPOCH_MS) {
        if (!eddy_parse_iso8601(json_string_value(j), json_string_length(j), ts))
            return "the timestamp is not an ISO-8601 UTC time such as 2024-01-15T10:30:00.123Z";
        if (*ts < 0)
            return before;
        if (*ts > max_ts)
            return future;
        return NULL;
    }
    return wrong(j, fmt == EDDY_TS_EPOCH_MS  ? "expected epoch milliseconds (a number)"
                    : fmt == EDDY_TS_ISO8601 ? "expected an ISO-8601 time (a string)"
                                             : "expected epoch milliseconds or an ISO-8601 time");
}

/* A string that is a JSON number and nothing else, as jansson reads it; NULL if it
 * is not one (jansson would skip white space around it, a number never has it). */
static json_t *coerced(json_t *j)
{
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    if (len == 0 || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) ||
        !(s[len - 1] >= '0' && s[len - 1] <= '9'))
        return NULL;
    json_t *n = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    if (n && !json_is_number(n)) {
        json_decref(n);
        n = NULL;
    }
    return n;
}

/* Checks the field in slot i against its rule; NULL if it passes. A coerced
 * value replaces the string in *v. */
static const char *check_field(const eddy_field_rule_t *r, json_t *j, eddy_value_t *v)
{
    if (!j || json_is_null(j))
        return r->required ? wrong(j, expected_text(r->type)) : NULL;
    bool number = r->type == EDDY_FIELD_NUMBER || r->type == EDDY_FIELD_INTEGER;
    double x;
    if (number && json_is_string(j) && r->coerce) {
        json_t *n = coerced(j);
        if (!n)
            return r->type == EDDY_FIELD_INTEGER
                       ? "the field holds a string that is not a JSON number; expected a whole "
                         "number"
                       : "the field holds a string that is not a JSON number; expected a number";
        set_value(v, n);
        json_decref(n);
    } else if (number && !json_is_number(j)) {
        return wrong(j, expected_text(r->type));
    } else if ((r->type == EDDY_FIELD_STRING && !json_is_string(j)) ||
               (r->type == EDDY_FIELD_BOOL && !json_is_boolean(j)) ||
               (r->type == EDDY_FIELD_ANY && !json_is_string(j) && !json_is_number(j) &&
                !json_is_boolean(j))) {
        return wrong(j, expected_text(r->type));
    }
    if (v->type != EDDY_VALUE_NUMBER)
        return NULL;
    x = v->num;
    if (r->type == EDDY_FIELD_INTEGER && floor(x) != x)
        return "the field holds a fractional number; expected a whole number";
    if (x < r->min || x > r->max)
        return "the field holds a number outside its declared range";
    return NULL;
}

eddy_err_t eddy_decode_json_reference(const eddy_topology_t *topo, int64_t max_ts, const void *buf,
                                      size_t len, eddy_value_t *values, eddy_decoded_t *dec,
                                      json_t **root, const char **reason)
{
    *root = NULL;
    dec->bad_field = -1;
    json_t *j = json_loadb(buf, len, 0, NULL);
    if (!j) {
        *reason = "not valid JSON";
        return EDDY_ERR_INVALID;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *reason = "not a JSON object";
        return EDDY_ERR_INVALID;
    }
    size_t n = eddy_topology_field_count(topo);
    json_t *fields[EDDY_TOPOLOGY_MAX_FIELDS];
    for (size_t i = 0; i < n; i++) {
        fields[i] = json_object_get(j, eddy_topology_field_name(topo, i));
        values[i].type = EDDY_VALUE_MISSING;
        if (fields[i])
            set_value(&values[i], fields[i]);
    }
    const int ts_slot = eddy_topology_timestamp_field(topo);
    *reason = check_time(topo, fields[ts_slot], max_ts, &dec->ts);
    if (*reason)
        dec->bad_field = ts_slot;
    for (size_t i = 0; i < n && !*reason; i++) {
        if ((int)i == ts_slot)
            continue;
        *reason = check_field(eddy_topology_field_rule(topo, i), fields[i], &values[i]);
        if (*reason)
            dec->bad_field = (int)i;
    }
    if (*reason) {
        json_decref(j);
        return EDDY_ERR_INVALID;
    }
    *root = j;
    return EDDY_OK;
}

const char *eddy_decode_compare(eddy_decoder_t *decoder, const eddy_topology_t *topo,
                                const void *buf, size_t len)
{
    eddy_value_t fast[EDDY_TOPOLOGY_MAX_FIELDS], ref[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t fast_dec, ref_dec;
    const char *fast_reason = NULL, *ref_reason = NULL, *diff = NULL;
    json_t *root;
    memset(fast, 0, sizeof(fast));
    memset(ref, 0, sizeof(ref));
    eddy_err_t fast_err = eddy_decode_json(decoder, buf, len, fast, &fast_dec, &fast_reason);
    eddy_err_t ref_err = eddy_decode_json_reference(topo, eddy_decoder_max_ts(decoder), buf, len,
                                                    ref, &ref_dec, &root, &ref_reason);
    if (fast_err != ref_err) {
        diff = fast_err ? "rejected by the decoder, accepted by jansson"
                        : "accepted by the decoder, rejected by jansson";
        goto out;
    }
    if (fast_err) {
        if (strcmp(fast_reason, ref_reason) != 0)
            diff = "different reasons";
        else if (fast_dec.bad_field != ref_dec.bad_field)
            diff = "different bad_field";
        goto out;
    }
    if (fast_dec.ts != ref_dec.ts) {
        diff = "different ts";
        goto out;
    }
    for (size_t i = 0; i < eddy_topology_field_count(topo); i++) {
        const eddy_value_t *a = &fast[i], *b = &ref[i];
        if (a->type != b->type) {
            diff = "a value of another type";
        } else if ((a->type == EDDY_VALUE_NUMBER || a->type == EDDY_VALUE_BOOL) &&
                   memcmp(&a->num, &b->num, sizeof(a->num)) != 0) {
            diff = "a number with other bits";
        } else if (a->type == EDDY_VALUE_STRING &&
                   (a->len != b->len || memcmp(a->str, b->str, a->len) != 0)) {
            diff = "a string with other bytes";
        }
        if (diff)
            break;
    }
out:
    json_decref(root);
    return diff;
}
