/*
 * decode_reference.c — the jansson-based reference decoder (decode_reference.h):
 * parse the whole record into a json_t tree, then look up each field of the
 * field table. The checks after extraction are engine/decode.c's own.
 */
#include "decode_reference.h"

#include <string.h>

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

eddy_err_t eddy_decode_json_reference(const eddy_topology_t *topo, const void *buf, size_t len,
                                      eddy_value_t *values, eddy_decoded_t *dec, json_t **root,
                                      const char **reason)
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
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(j, eddy_topology_field_name(topo, i));
        values[i].type = EDDY_VALUE_MISSING;
        if (v)
            set_value(&values[i], v);
    }
    eddy_err_t err = eddy_decode_check_fields(topo, values, dec, reason);
    if (err) {
        json_decref(j);
        return err;
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
    eddy_err_t ref_err =
        eddy_decode_json_reference(topo, buf, len, ref, &ref_dec, &root, &ref_reason);
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
