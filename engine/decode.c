/*
 * decode.c — JSON events to field values (see decode.h).
 *
 * Absurd timestamps are rejected here, not in the windows: an event time before
 * 1970 or after 9999 is "bad input" (DESIGN.md §2), counted and skipped.
 */
#include "engine/decode.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#define MAX_TS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool eddy_parse_iso8601(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    int frac = 0, scale = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (scale < 3) {
                frac = frac * 10 + (s[i] - '0');
                scale++;
            }
            i++;
        }
        if (i == start || i - start > 9)
            return false;
        while (scale < 3) {
            frac *= 10;
            scale++;
        }
    }
    int offset_min = 0;
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000LL + sec * 1000LL + frac;
    return true;
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
    default: /* objects and arrays are not values a topology can use */
        v->type = EDDY_VALUE_MISSING;
    }
}

eddy_err_t eddy_decode_json(const eddy_topology_t *topo, const void *buf, size_t len,
                            eddy_value_t *values, eddy_decoded_t *dec, const char **reason)
{
    dec->root = NULL;
    dec->bad_field = -1;
    json_t *root = json_loadb(buf, len, 0, NULL);
    if (!root) {
        *reason = "not valid JSON";
        return EDDY_ERR_INVALID;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *reason = "not a JSON object";
        return EDDY_ERR_INVALID;
    }
    size_t n = eddy_topology_field_count(topo);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_object_get(root, eddy_topology_field_name(topo, i));
        values[i].type = EDDY_VALUE_MISSING;
        if (j)
            set_value(&values[i], j);
    }
    /* Every field the topology uses must hold what it is used for; otherwise the
     * whole event is unusable (counting it in some stores and not others would
     * make the stores disagree). */
    for (size_t i = 0; i < n; i++) {
        eddy_value_type_t t = values[i].type;
        switch (topo->field_needs[i]) {
        case EDDY_FIELD_NUMBER:
            if (t != EDDY_VALUE_NUMBER) {
                *reason = t == EDDY_VALUE_MISSING ? "a numeric field is missing"
                                                  : "a numeric field holds something else";
                dec->bad_field = (int)i;
                goto bad;
            }
            break;
        case EDDY_FIELD_SCALAR:
            if (t != EDDY_VALUE_NUMBER && t != EDDY_VALUE_STRING && t != EDDY_VALUE_BOOL) {
                *reason = t == EDDY_VALUE_MISSING ? "a field is missing"
                                                  : "a field is null, an object or an array";
                dec->bad_field = (int)i;
                goto bad;
            }
            break;
        case EDDY_FIELD_ANY:
            break;
        }
    }
    const eddy_value_t *tv = &values[eddy_topology_timestamp_field(topo)];
    dec->bad_field = eddy_topology_timestamp_field(topo);
    eddy_ts_format_t fmt = eddy_topology_timestamp_format(topo);
    int64_t ts;
    if (tv->type == EDDY_VALUE_NUMBER && fmt != EDDY_TS_ISO8601) {
        if (!(tv->num >= 0 && tv->num <= (double)MAX_TS) || tv->num != floor(tv->num)) {
            *reason = "timestamp is not epoch milliseconds between 1970 and 9999";
            goto bad;
        }
        ts = (int64_t)tv->num;
    } else if (tv->type == EDDY_VALUE_STRING && fmt != EDDY_TS_EPOCH_MS) {
        if (!eddy_parse_iso8601(tv->str, tv->len, &ts) || ts < 0 || ts > MAX_TS) {
            *reason = "timestamp is not an ISO-8601 UTC time between 1970 and 9999";
            goto bad;
        }
    } else {
        *reason = tv->type == EDDY_VALUE_MISSING ? "timestamp field is missing"
                                                 : "timestamp field has the wrong type";
        goto bad;
    }
    dec->root = root;
    dec->ts = ts;
    return EDDY_OK;
bad:
    json_decref(root);
    return EDDY_ERR_INVALID;
}

void eddy_decoded_release(eddy_decoded_t *dec)
{
    json_decref(dec->root);
    dec->root = NULL;
}
