/*
 * test_decode.c — the record decoder: event time from epoch ms and ISO-8601
 * (fractions, offsets, leap days), bounded by the epoch and by max_ts (the wall
 * clock plus max_future); every kind of bad input refused with its exact reason
 * (not JSON, not an object, a field missing, null, an object or an array, of
 * another type than its uses and declaration need, a string that coercion cannot
 * read, a fraction where a whole number is declared, outside a declared range);
 * only the topology's fields extracted. Then the JSON rules the scanner shares
 * with jansson 2.14 (json_loadb, flags 0), and differential tests against the
 * jansson-based reference decoder (tests/support/decode_reference.c), which
 * checks the rules with code of its own: tricky inputs, inputs the fuzzer found,
 * and thousands of mutated generated events, over five topologies.
 */
#include "test_support.h"

#include "decode_reference.h"
#include "decode_topologies.h"
#include "engine/decode.h"
#include "producer/event_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char monitoring[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"auto\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"endpoint\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500\"},"
    "{\"name\":\"m\",\"op\":\"mean\",\"field\":\"latency_ms\"}]}]}";

/* The topologies the differential tests use: the inline one above ("auto"
 * timestamps), the examples, one with epoch-ms and one with ISO-8601 times, and
 * two with declarations of every kind (decode_topologies.h), whose decoders bound
 * event times where the mutated events' times run (ts_at(3000), ts_at(1500)). */
#define N_TOPOS 5
static eddy_topology_t *topos[N_TOPOS];
static eddy_decoder_t *decoders[N_TOPOS];
static eddy_topology_t *topo;      /* topos[0] */
static eddy_decoder_t *decoder;    /* decoders[0] */
#define MUTATED_T0 1705314600123LL /* event time of the first mutated event */
#define ts_at(i)   (MUTATED_T0 + (int64_t)(i)*37)

static int setup(void **state)
{
    char errstr[256];
    topos[0] = eddy_topology_load_string(monitoring, "test", errstr, sizeof(errstr));
    topos[1] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/monitoring.json", errstr,
                                       sizeof(errstr));
    topos[2] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/activity.json", errstr,
                                       sizeof(errstr));
    topos[3] = eddy_topology_load_string(eddy_test_topology_typed, "typed", errstr, sizeof(errstr));
    topos[4] =
        eddy_topology_load_string(eddy_test_topology_coerced, "coerced", errstr, sizeof(errstr));
    for (int i = 0; i < N_TOPOS; i++) {
        if (!topos[i]) {
            fprintf(stderr, "topology %d: %s\n", i, errstr);
            return -1;
        }
        decoders[i] = eddy_decoder_new(topos[i]);
        if (!decoders[i])
            return -1;
    }
    eddy_decoder_set_max_ts(decoders[3], ts_at(3000));
    eddy_decoder_set_max_ts(decoders[4], ts_at(1500));
    topo = topos[0];
    decoder = decoders[0];
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < N_TOPOS; i++) {
        eddy_decoder_destroy(decoders[i]);
        eddy_topology_destroy(topos[i]);
    }
    return 0;
}

/* Both decoders must agree on `len` bytes, for every topology. */
static void assert_agree(const char *buf, size_t len)
{
    for (int i = 0; i < N_TOPOS; i++) {
        const char *diff = eddy_decode_compare(decoders[i], topos[i], buf, len);
        if (diff) {
            char shown[512];
            size_t n = 0;
            for (size_t k = 0; k < len && n + 5 < sizeof(shown); k++) {
                unsigned char c = (unsigned char)buf[k];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                    shown[n++] = (char)c;
                else
                    n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", c);
            }
            shown[n] = '\0';
            fail_msg("topology %d: %s: \"%s\" (%zu bytes)", i, diff, shown, len);
        }
    }
}

static eddy_err_t decode(const char *json, eddy_value_t *values, int64_t *ts, const char **reason)
{
    eddy_decoded_t dec;
    assert_agree(json, strlen(json));
    eddy_err_t err = eddy_decode_json(decoder, json, strlen(json), values, &dec, reason);
    if (!err)
        *ts = dec.ts;
    return err;
}

static void test_iso8601(void **state)
{
    int64_t ms;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"2024-01-15T10:30:00.123Z", 1705314600123LL},
        {"2024-01-15T10:30:00Z", 1705314600000LL},
        {"2024-01-15T10:30:00.1Z", 1705314600100LL},
        {"2024-01-15T10:30:00.123456789Z", 1705314600123LL},
        {"2024-02-29T00:00:00.000Z", 1709164800000LL},
        {"2024-01-15T12:30:00.123+02:00", 1705314600123LL},
        {"2024-01-15T05:30:00.123-05:00", 1705314600123LL},
        {"1970-01-01T00:00:00.000Z", 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_true(eddy_parse_iso8601(ok[i].s, strlen(ok[i].s), &ms));
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"",
                                      "2024-01-15",
                                      "2024-01-15T10:30:00",
                                      "2024-13-01T00:00:00Z",
                                      "2024-01-15T25:00:00Z",
                                      "2024-01-15T10:30:00.Z",
                                      "2024-01-15T10:30:00Zjunk",
                                      "yesterday"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(eddy_parse_iso8601(bad[i], strlen(bad[i]), &ms));
}

static void test_good_events(void **state)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    int64_t ts;
    const char *reason = NULL;
    assert_int_equal(decode("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"status\":503,"
                            "\"latency_ms\":12.5,\"extra\":{\"x\":1}}",
                            values, &ts, &reason),
                     EDDY_OK);
    assert_int_equal(ts, 1700000000123LL);
    int e = eddy_topology_field_index(topo, "endpoint");
    int l = eddy_topology_field_index(topo, "latency_ms");
    int s = eddy_topology_field_index(topo, "status");
    assert_int_equal(values[e].type, EDDY_VALUE_STRING);
    assert_int_equal(values[e].len, 2);
    assert_true(values[l].num == 12.5);
    assert_true(values[s].num == 503);
    assert_int_equal(eddy_topology_field_index(topo, "extra"), -1);
    /* "auto": an ISO string works too; status may be absent (predicates only). */
    assert_int_equal(decode("{\"ts\":\"2024-01-15T10:30:00.123Z\",\"endpoint\":7,"
                            "\"latency_ms\":1}",
                            values, &ts, &reason),
                     EDDY_OK);
    assert_int_equal(ts, 1705314600123LL);
    assert_int_equal(values[s].type, EDDY_VALUE_MISSING);
}

/* Decodes json with decoders[t] and checks the exact reason and the field at
 * fault (NULL reason: accepted). */
static void expect_reason(int t, const char *json, const char *reason, const char *field)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t dec;
    const char *got = NULL;
    assert_agree(json, strlen(json));
    eddy_err_t err = eddy_decode_json(decoders[t], json, strlen(json), values, &dec, &got);
    if (!reason) {
        if (err)
            fail_msg("topology %d: %s: rejected: %s", t, json, got);
        return;
    }
    if (!err)
        fail_msg("topology %d: %s: accepted, expected '%s'", t, json, reason);
    if (strcmp(got, reason) != 0)
        fail_msg("topology %d: %s:\n  reason   '%s'\n  expected '%s'", t, json, got, reason);
    const char *bad =
        dec.bad_field >= 0 ? eddy_topology_field_name(topos[t], (size_t)dec.bad_field) : NULL;
    if (field ? !bad || strcmp(bad, field) != 0 : bad != NULL)
        fail_msg("topology %d: %s: field '%s', expected '%s'", t, json, bad ? bad : "(none)",
                 field ? field : "(none)");
}

#define TS            "\"ts\":1700000000000,"
#define AUTO_EXPECTED "; expected epoch milliseconds or an ISO-8601 time"
#define SCALAR        "; expected a string, number or boolean"

/* Each kind of bad input gets its own reason, naming what was found and what was
 * expected, and the field at fault. */
static void test_bad_events(void **state)
{
    static const struct {
        const char *json, *reason, *field;
    } cases[] = {
        {"not json", "not valid JSON", NULL},
        {"[1,2]", "not a JSON object", NULL},
        /* the timestamp ("auto" here) */
        {"{\"endpoint\":\"/a\",\"latency_ms\":1}", "the field is missing" AUTO_EXPECTED, "ts"},
        {"{\"ts\":null,\"endpoint\":\"/a\",\"latency_ms\":1}", "the field is null" AUTO_EXPECTED,
         "ts"},
        {"{\"ts\":true,\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the field holds a boolean" AUTO_EXPECTED, "ts"},
        {"{\"ts\":{},\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the field holds an object" AUTO_EXPECTED, "ts"},
        {"{\"ts\":[1],\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the field holds an array" AUTO_EXPECTED, "ts"},
        {"{\"ts\":-1,\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is before the epoch, 1970-01-01T00:00:00Z", "ts"},
        {"{\"ts\":-1.5,\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is before the epoch, 1970-01-01T00:00:00Z", "ts"},
        {"{\"ts\":\"1969-12-31T23:59:59.999Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is before the epoch, 1970-01-01T00:00:00Z", "ts"},
        {"{\"ts\":1e300,\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is too far in the future: beyond the wall clock plus max_future", "ts"},
        {"{\"ts\":1.5,\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is not a whole number of milliseconds", "ts"},
        {"{\"ts\":\"soon\",\"endpoint\":\"/a\",\"latency_ms\":1}",
         "the timestamp is not an ISO-8601 UTC time such as 2024-01-15T10:30:00.123Z", "ts"},
        /* a group key: any scalar, required */
        {"{" TS "\"latency_ms\":1}", "the field is missing" SCALAR, "endpoint"},
        {"{" TS "\"endpoint\":null,\"latency_ms\":1}", "the field is null" SCALAR, "endpoint"},
        {"{" TS "\"endpoint\":{\"path\":\"/a\"},\"latency_ms\":1}",
         "the field holds an object" SCALAR, "endpoint"},
        {"{" TS "\"endpoint\":[],\"latency_ms\":1}", "the field holds an array" SCALAR, "endpoint"},
        /* a field averaged: a number, required */
        {"{" TS "\"endpoint\":\"/a\"}", "the field is missing; expected a number", "latency_ms"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":\"slow\"}",
         "the field holds a string; expected a number", "latency_ms"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":\"12\"}",
         "the field holds a string; expected a number", "latency_ms"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":false}",
         "the field holds a boolean; expected a number", "latency_ms"},
        /* a field only compared with a number: optional, but a number when there */
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":1,\"status\":\"503\"}",
         "the field holds a string; expected a number", "status"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":1,\"status\":{}}",
         "the field holds an object; expected a number", "status"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":1,\"status\":true}",
         "the field holds a boolean; expected a number", "status"},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":1,\"status\":null}", NULL, NULL},
        {"{" TS "\"endpoint\":\"/a\",\"latency_ms\":1}", NULL, NULL},
        /* the first failure in slot order wins, the timestamp first */
        {"{\"ts\":-1,\"endpoint\":null,\"latency_ms\":\"x\"}",
         "the timestamp is before the epoch, 1970-01-01T00:00:00Z", "ts"},
        {"{" TS "\"endpoint\":null,\"latency_ms\":\"x\"}", "the field is null" SCALAR, "endpoint"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_reason(0, cases[i].json, cases[i].reason, cases[i].field);
}

/* Event times run from the epoch to max_ts, both included, in both formats; the
 * default bound is the year 9999, and no bound goes beyond it. */
static void test_time_bounds(void **state)
{
    static const char future[] =
        "the timestamp is too far in the future: beyond the wall clock plus max_future";
    assert_int_equal(eddy_decoder_max_ts(decoder), EDDY_EVENT_TIME_MAX_MS);
    expect_reason(0, "{\"ts\":0,\"endpoint\":\"/a\",\"latency_ms\":1}", NULL, NULL);
    expect_reason(0, "{\"ts\":-0.0,\"endpoint\":\"/a\",\"latency_ms\":1}", NULL, NULL);
    expect_reason(0, "{\"ts\":253402300799999,\"endpoint\":\"/a\",\"latency_ms\":1}", NULL, NULL);
    expect_reason(0, "{\"ts\":253402300800000,\"endpoint\":\"/a\",\"latency_ms\":1}", future, "ts");
    expect_reason(0, "{\"ts\":\"9999-12-31T23:59:59.999Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
                  NULL, NULL);
    eddy_decoder_set_max_ts(decoder, INT64_MAX);
    assert_int_equal(eddy_decoder_max_ts(decoder), EDDY_EVENT_TIME_MAX_MS);

    eddy_decoder_set_max_ts(decoder, 1700000000000LL);
    expect_reason(0, "{\"ts\":1700000000000,\"endpoint\":\"/a\",\"latency_ms\":1}", NULL, NULL);
    expect_reason(0, "{\"ts\":1700000000001,\"endpoint\":\"/a\",\"latency_ms\":1}", future, "ts");
    expect_reason(0, "{\"ts\":1700000000000.5,\"endpoint\":\"/a\",\"latency_ms\":1}", future, "ts");
    expect_reason(0, "{\"ts\":\"2023-11-14T22:13:20.000Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
                  NULL, NULL);
    expect_reason(0, "{\"ts\":\"2023-11-14T22:13:20.001Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
                  future, "ts");
    expect_reason(0,
                  "{\"ts\":\"2023-11-15T00:13:20.000+02:00\",\"endpoint\":\"/a\","
                  "\"latency_ms\":1}",
                  NULL, NULL);
    expect_reason(0, "{\"ts\":\"9999-12-31T23:59:59.999Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
                  future, "ts");
    eddy_decoder_set_max_ts(decoder, EDDY_EVENT_TIME_MAX_MS);
}

#define TYPED(status, rest)                                                                        \
    "{\"ts\":1705314600123,\"endpoint\":\"/a\",\"status\":" status                                 \
    ",\"latency_ms\":12.5,\"user_id\":\"u\"" rest "}"
#define NOT_A_NUMBER "the field holds a string that is not a JSON number"
#define RANGE        "the field holds a number outside its declared range"

/* Declarations (topology 3, decode_topologies.h): a coerced whole number in
 * 100..599, a range, a declared string, a declared boolean compared only
 * (optional), an undeclared field compared with a string (a string when there),
 * and the timestamp at most max_ts. */
static void test_declared_fields(void **state)
{
    static const struct {
        const char *json, *reason, *field;
    } cases[] = {
        {TYPED("503", ""), NULL, NULL},
        {TYPED("100", ""), NULL, NULL},
        {TYPED("599.0", ""), NULL, NULL},
        {TYPED("\"503\"", ""), NULL, NULL},
        {TYPED("\"5e2\"", ""), NULL, NULL},
        {TYPED("\"\\u0035\\u0030\\u0033\"", ""), NULL, NULL},
        {TYPED("99", ""), RANGE, "status"},
        {TYPED("600", ""), RANGE, "status"},
        {TYPED("\"-0\"", ""), RANGE, "status"},
        {TYPED("503.5", ""), "the field holds a fractional number; expected a whole number",
         "status"},
        {TYPED("\"503.5\"", ""), "the field holds a fractional number; expected a whole number",
         "status"},
        {TYPED("\"503 \"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\" 503\"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\"\"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\"0x1f\"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\"1e400\"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\"9223372036854775808\"", ""), NOT_A_NUMBER "; expected a whole number", "status"},
        {TYPED("\"503\\u0000\"", ""), "not valid JSON", NULL},
        {TYPED("true", ""), "the field holds a boolean; expected a whole number", "status"},
        {TYPED("null", ""), "the field is null; expected a whole number", "status"},
        {TYPED("[503]", ""), "the field holds an array; expected a whole number", "status"},
        {TYPED("503", ",\"latency_ms\":-0.001"), RANGE, "latency_ms"},
        {TYPED("503", ",\"latency_ms\":1e7"), NULL, NULL},
        {TYPED("503", ",\"latency_ms\":10000000.000001"), RANGE, "latency_ms"},
        {TYPED("503", ",\"latency_ms\":\"12\""), "the field holds a string; expected a number",
         "latency_ms"},
        {TYPED("503", ",\"endpoint\":7"), "the field holds a number; expected a string",
         "endpoint"},
        {TYPED("503", ",\"ok\":true"), NULL, NULL},
        {TYPED("503", ",\"ok\":null"), NULL, NULL},
        {TYPED("503", ",\"ok\":\"true\""), "the field holds a string; expected true or false",
         "ok"},
        {TYPED("503", ",\"ok\":1"), "the field holds a number; expected true or false", "ok"},
        {TYPED("503", ",\"region\":\"eu\""), NULL, NULL},
        {TYPED("503", ",\"region\":5"), "the field holds a number; expected a string", "region"},
        {TYPED("503", ",\"user_id\":{}"), "the field holds an object" SCALAR, "user_id"},
        {TYPED("503", ",\"ts\":\"2024-01-15T10:30:00.123Z\""),
         "the field holds a string; expected epoch milliseconds (a number)", "ts"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_reason(3, cases[i].json, cases[i].reason, cases[i].field);
    /* The bound, and a coerced "503" is the number 503, group key "503" as 503 is. */
    char max[128], over[128];
    snprintf(max, sizeof(max),
             "{\"ts\":%lld,\"endpoint\":\"/a\",\"status\":200,\"latency_ms\":1,"
             "\"user_id\":\"u\"}",
             (long long)ts_at(3000));
    snprintf(over, sizeof(over),
             "{\"ts\":%lld,\"endpoint\":\"/a\",\"status\":200,"
             "\"latency_ms\":1,\"user_id\":\"u\"}",
             (long long)ts_at(3000) + 1);
    expect_reason(3, max, NULL, NULL);
    expect_reason(3, over,
                  "the timestamp is too far in the future: beyond the wall clock plus "
                  "max_future",
                  "ts");
    const char *json[2] = {TYPED("\"503\"", ""), TYPED("503", "")};
    for (int k = 0; k < 2; k++) {
        eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
        eddy_decoded_t dec;
        const char *reason;
        assert_int_equal(
            eddy_decode_json(decoders[3], json[k], strlen(json[k]), values, &dec, &reason),
            EDDY_OK);
        int s = eddy_topology_field_index(topos[3], "status");
        assert_int_equal(values[s].type, EDDY_VALUE_NUMBER);
        assert_true(values[s].num == 503);
        char key[64];
        size_t len;
        assert_true(
            eddy_store_group_key(eddy_topology_store(topos[3], 0), values, key, sizeof(key), &len));
        assert_string_equal(key, "/a|503");
    }
}

/* Topology 4: a coerced number with a lower bound only, a string and a boolean
 * as group keys, a declared number only compared (optional, not coerced). */
static void test_coerced_fields(void **state)
{
#define C4(x) "{\"ts\":1705314600123,\"method\":\"GET\",\"flag\":true,\"latency_ms\":" x "}"
    static const struct {
        const char *json, *reason, *field;
    } cases[] = {
        {C4("12.5"), NULL, NULL},
        {C4("\"12.5\""), NULL, NULL},
        {C4("\"-1.5\""), NULL, NULL},
        {C4("\"1e300\""), NULL, NULL},
        {C4("\"-1.6\""), RANGE, "latency_ms"},
        {C4("\"abc\""), NOT_A_NUMBER "; expected a number", "latency_ms"},
        {C4("\"12.5\",\"user_id\":4"), NULL, NULL},
        {C4("\"12.5\",\"user_id\":\"4\""), "the field holds a string; expected a number",
         "user_id"},
        {C4("1,\"method\":5"), "the field holds a number; expected a string", "method"},
        {C4("1,\"flag\":\"true\""), "the field holds a string; expected true or false", "flag"},
        {"{\"ts\":1705314600123,\"method\":\"GET\",\"latency_ms\":1}",
         "the field is missing; expected true or false", "flag"},
        /* a coerced string longer than the scanner's small buffer, unescaped into the
         * decoder's scratch, and its number copied after it there */
        {C4("\"\\u0031"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            ".5\""),
         NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_reason(4, cases[i].json, cases[i].reason, cases[i].field);
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t dec;
    const char *reason, *json = C4("\"\\u0031\\u0032.5\"");
    assert_int_equal(eddy_decode_json(decoders[4], json, strlen(json), values, &dec, &reason),
                     EDDY_OK);
    int l = eddy_topology_field_index(topos[4], "latency_ms");
    assert_int_equal(values[l].type, EDDY_VALUE_NUMBER);
    assert_true(values[l].num == 12.5);
#undef C4
}

/* A coerced string is unescaped into the decoder's scratch, and a number token of
 * 64 bytes or more is copied after the values there for strtod: the scratch of a
 * fresh decoder must hold both for the first record it sees (ASan checks). */
static void test_scratch_for_coerced(void **state)
{
    char json[512], digits[200];
    memset(digits, '0', sizeof(digits) - 1);
    digits[sizeof(digits) - 1] = '\0';
    snprintf(
        json, sizeof(json),
        "{\"ts\":1705314600123,\"method\":\"GET\",\"flag\":true,\"latency_ms\":\"\\u0031%s.5\"}",
        digits);
    eddy_decoder_t *fresh = eddy_decoder_new(topos[4]);
    assert_non_null(fresh);
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t dec;
    const char *reason = NULL;
    assert_int_equal(eddy_decode_json(fresh, json, strlen(json), values, &dec, &reason), EDDY_OK);
    int l = eddy_topology_field_index(topos[4], "latency_ms");
    assert_int_equal(values[l].type, EDDY_VALUE_NUMBER);
    assert_true(values[l].num == 1e199 + 0.5 || values[l].num == 1e199);
    eddy_decoder_destroy(fresh);
}

/* What eddy gen makes passes the declarations of the examples it is made for
 * (docs/events.md): 20,000 events of each kind, the bound a day ahead of them. */
static void test_generated_events_are_valid(void **state)
{
    static const struct {
        eddy_gen_kind_t kind;
        int topo;
    } kinds[] = {{EDDY_GEN_HTTP, 1}, {EDDY_GEN_ACTIVITY, 2}};
    for (int k = 0; k < 2; k++) {
        eddy_gen_model_t model;
        eddy_gen_model_init(&model, kinds[k].kind, 1);
        eddy_decoder_t *d = decoders[kinds[k].topo];
        eddy_decoder_set_max_ts(d, MUTATED_T0 + 86400000);
        char buf[EDDY_GEN_EVENT_MAX];
        for (int i = 0; i < 20000; i++) {
            size_t key_off, key_len;
            size_t len =
                eddy_gen_model_next(&model, ts_at(i), buf, sizeof(buf), &key_off, &key_len);
            eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
            eddy_decoded_t dec;
            const char *reason = NULL;
            if (eddy_decode_json(d, buf, len, values, &dec, &reason))
                fail_msg("%.*s: %s", (int)len, buf, reason);
        }
        eddy_decoder_set_max_ts(d, EDDY_EVENT_TIME_MAX_MS);
    }
}

/* An event topology 0 accepts with `x` as the value of an unused member. */
#define WITH(x) "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":" x "}"
#define BAD     "not valid JSON"

/* jansson's rules, one by one: each input with the reason it must get (NULL:
 * accepted); both decoders must agree on each too. Lengths come from sizeof so
 * that inputs may hold NUL bytes. */
static void test_json_rules(void **state)
{
    static const struct {
        const char *json;
        size_t len;
        const char *reason;
    } cases[] = {
#define C(j, r) {j, sizeof(j) - 1, r}
        /* top level */
        C("", BAD),
        C("   ", BAD),
        C("1", BAD),
        C("\"s\"", BAD),
        C("null", BAD),
        C("[]", "not a JSON object"),
        C("[1,{\"a\":[]}]", "not a JSON object"),
        C("[1,]", BAD),
        C("[1", BAD),
        C(WITH("1") " \t\r\n", NULL),
        C(WITH("1") "x", BAD),
        C(WITH("1") "{}", BAD),
        C(WITH("1") "\0", BAD),
        C(" \n" WITH("1"), NULL),
        /* structure */
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,}", BAD),
        C("{\"ts\":1700000000123 \"endpoint\":\"/a\",\"latency_ms\":1}", BAD),
        C("{\"ts\" 1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1}", BAD),
        C("{ts:1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1}", BAD),
        C("{,}", BAD),
        C(WITH("{\"a\":1,}"), BAD),
        C(WITH("{\"a\"}"), BAD),
        C(WITH("[1 2]"), BAD),
        C(WITH("[1,,2]"), BAD),
        C(WITH("{\"a\":[1,{\"b\":null}],\"c\":{}}"), NULL),
        C(WITH("[ ]"), NULL),
        C(WITH("{ }"), NULL),
        /* numbers */
        C(WITH("-"), BAD),
        C(WITH("01"), BAD),
        C(WITH("-01"), BAD),
        C(WITH("00"), BAD),
        C(WITH("1."), BAD),
        C(WITH(".5"), BAD),
        C(WITH("1e"), BAD),
        C(WITH("1e+"), BAD),
        C(WITH("+1"), BAD),
        C(WITH("0x1"), BAD),
        C(WITH("1.5.3"), BAD),
        C(WITH("NaN"), BAD),
        C(WITH("Infinity"), BAD),
        C(WITH("-0"), NULL),
        C(WITH("-0.0e-0"), NULL),
        C(WITH("1.5E+3"), NULL),
        C(WITH("9223372036854775807"), NULL),
        C(WITH("-9223372036854775808"), NULL),
        C(WITH("9223372036854775808"), BAD),
        C(WITH("-9223372036854775809"), BAD),
        C(WITH("123456789012345678901234567890"), BAD),
        C(WITH("123456789012345678901234567890.0"), NULL),
        C(WITH("1e308"), NULL),
        C(WITH("1e309"), BAD),
        C(WITH("-1e400"), BAD),
        C(WITH("1e-400"), NULL),
        C(WITH("0e999999999999"), NULL),
        C(WITH("1.7976931348623157e308"), NULL),
        C(WITH("1.7976931348623159e308"), BAD),
        /* literals */
        C(WITH("true"), NULL),
        C(WITH("tru"), BAD),
        C(WITH("truee"), BAD),
        C(WITH("True"), BAD),
        C(WITH("nul"), BAD),
        C(WITH("true1"), BAD),
        /* jansson loses one NUL pushed back after a number or a literal */
        C(WITH("1\0"), NULL),
        C(WITH("1.5\0"), NULL),
        C(WITH("false\0"), NULL),
        C(WITH("1\0\0"), BAD),
        C(WITH("\"s\"\0"), BAD),
        C(WITH("[\0]"), BAD),
        /* strings */
        C(WITH("\"a\x01\""), BAD),
        C(WITH("\"a\n\""), BAD),
        C(WITH("\"a\x7f\""), NULL),
        C(WITH("\"a\0\""), BAD),
        C(WITH("\"abc"), BAD),
        C(WITH("\"\\x\""), BAD),
        C(WITH("\"\\u12\""), BAD),
        C(WITH("\"\\u12g4\""), BAD),
        C(WITH("\"\\u0000\""), BAD),
        C(WITH("\"\\u0001\""), NULL),
        C(WITH("\"\\ud800\""), BAD),
        C(WITH("\"\\udc00\""), BAD),
        C(WITH("\"\\ud800\\u0041\""), BAD),
        C(WITH("\"\\ud800\\n\""), BAD),
        C(WITH("\"\\ud83d\\ude00\""), NULL),
        C(WITH("\"\\uD83D\\uDE00\""), NULL),
        C(WITH("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), NULL),
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"\\u0000\":1}", BAD),
        /* UTF-8, in and out of strings */
        C(WITH("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""), NULL),
        C(WITH("\"\xc3\""), BAD),
        C(WITH("\"\xc0\x80\""), BAD),
        C(WITH("\"\xe0\x80\x80\""), BAD),
        C(WITH("\"\xed\xa0\x80\""), BAD),
        C(WITH("\"\xf4\x90\x80\x80\""), BAD),
        C(WITH("\"\xf5\x80\x80\x80\""), BAD),
        C(WITH("\"\x80\""), BAD),
        C(WITH("\"\xff\""), BAD),
        C(WITH("\xc3\xa9"), BAD),
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"\xc3\xa9\":1}", NULL),
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"\xc3\":1}", BAD),
        /* duplicate keys: the last value counts */
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"endpoint\":null}",
          "the field is null; expected a string, number or boolean"),
        C("{\"ts\":1700000000123,\"endpoint\":null,\"latency_ms\":1,\"endpoint\":\"/b\"}", NULL),
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"latency_ms\":[]}",
          "the field holds an array; expected a number"),
        /* keys with escapes match after unescaping */
        C("{\"\\u0074s\":1700000000123,\"end\\u0070oint\":\"/a\",\"latency\\u005fms\":1}", NULL),
        C("{\"ts\":1700000000123,\"endpoint\\u0000\":\"/a\",\"latency_ms\":1}", BAD),
        C("{\"ts\":1700000000123,\"endpoint \":\"/a\",\"latency_ms\":1}",
          "the field is missing; expected a string, number or boolean"),
#undef C
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_agree(cases[i].json, cases[i].len);
        eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
        eddy_decoded_t dec;
        const char *reason = NULL;
        eddy_err_t err =
            eddy_decode_json(decoder, cases[i].json, cases[i].len, values, &dec, &reason);
        if (!cases[i].reason && err)
            fail_msg("case %zu rejected (%s): %s", i, reason, cases[i].json);
        if (cases[i].reason && (!err || strcmp(reason, cases[i].reason) != 0))
            fail_msg("case %zu: %s, not '%s': %s", i, err ? reason : "accepted", cases[i].reason,
                     cases[i].json);
    }
}

/* The values themselves: escapes, number bits, the last of duplicate keys,
 * strings pointing into the record when they have no escapes. */
static void test_values(void **state)
{
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_decoded_t dec;
    const char *reason;
    int e = eddy_topology_field_index(topo, "endpoint");
    int l = eddy_topology_field_index(topo, "latency_ms");
    int s = eddy_topology_field_index(topo, "status");

    static const char plain[] = "{\"ts\":1700000000123,\"endpoint\":\"/api/users\","
                                "\"latency_ms\":-0,\"status\":-0.0}";
    assert_int_equal(eddy_decode_json(decoder, plain, strlen(plain), values, &dec, &reason),
                     EDDY_OK);
    assert_ptr_equal(values[e].str, strstr(plain, "/api/users"));
    assert_int_equal(values[e].len, 10);
    assert_false(signbit(values[l].num)); /* the integer -0 is 0 */
    assert_true(values[s].type == EDDY_VALUE_NUMBER && signbit(values[s].num));

    static const char escaped[] = "{\"ts\":1700000000123,\"end\\u0070oint\":\"/x\","
                                  "\"endpoint\":\"\\/a\\u00e9\\ud83d\\ude00\\n\","
                                  "\"latency_ms\":12.5,\"latency_ms\":1e-2,\"status\":5e2}";
    assert_int_equal(eddy_decode_json(decoder, escaped, strlen(escaped), values, &dec, &reason),
                     EDDY_OK);
    assert_int_equal(values[e].len, 9);
    assert_memory_equal(values[e].str, "/a\xc3\xa9\xf0\x9f\x98\x80\n", 9);
    assert_true(values[l].num == 0.01);
    assert_true(values[s].type == EDDY_VALUE_NUMBER && values[s].num == 500);
    /* A record without a value (a tombstone) has no payload at all. */
    assert_agree(NULL, 0);
    assert_int_equal(eddy_decode_json(decoder, NULL, 0, values, &dec, &reason), EDDY_ERR_INVALID);
    assert_string_equal(reason, "not valid JSON");
}

/* JSON_PARSER_MAX_DEPTH: the record is depth 1; a value deeper than 2048 is an
 * error, an empty container at 2048 is not. */
static void test_depth(void **state)
{
    static const struct {
        size_t arrays; /* nested arrays as the value of "x" (depth 2) */
        bool scalar;   /* with a 0 in the innermost */
        bool top;      /* the arrays are the record itself */
        const char *reason;
    } cases[] = {
        {2047, false, false, NULL},
        {2048, false, false, BAD},
        {2046, true, false, NULL},
        {2047, true, false, BAD},
        {2048, false, true, "not a JSON object"},
        {2049, false, true, BAD},
        {100000, false, false, BAD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].arrays, len = 0;
        char *buf = malloc(2 * n + 128);
        assert_non_null(buf);
        const char *head = cases[i].top ? ""
                                        : "{\"ts\":1700000000123,\"endpoint\":\"/a\","
                                          "\"latency_ms\":1,\"x\":";
        len += (size_t)sprintf(buf, "%s", head);
        memset(buf + len, '[', n);
        len += n;
        if (cases[i].scalar)
            buf[len++] = '0';
        memset(buf + len, ']', n);
        len += n;
        if (!cases[i].top)
            buf[len++] = '}';
        assert_agree(buf, len);
        eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
        eddy_decoded_t dec;
        const char *reason = NULL;
        eddy_err_t err = eddy_decode_json(decoder, buf, len, values, &dec, &reason);
        if (cases[i].reason)
            assert_string_equal(err ? reason : "accepted", cases[i].reason);
        else
            assert_int_equal(err, EDDY_OK);
        free(buf);
    }
}

/* Inputs that once made the two decoders disagree, or came close, and what the
 * fuzzer found (tests/fuzz/corpus/decode/ has them too). Every prefix of each is
 * tried as well. */
static const char *const tricky[] = {
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":12.5}",
    "{\"ts\":\"2024-01-15T10:30:00.123Z\",\"endpoint\":\"/a\",\"latency_ms\":0.1}",
    "{\"timestamp\":\"2024-01-15T10:30:00.123Z\",\"user_id\":\"u\\u00e9\","
    "\"event_type\":\"click\",\"element_id\":\"e\\\"1\"}",
    "{\"ts\":1700000000123,\"endpoint\":\"/"
    "a\",\"status\":5e2,\"latency_ms\":1.7976931348623157e308}",
    "{\"ts\":1700000000123.0,\"endpoint\":true,\"latency_ms\":4.9e-324}",
    "{\"ts\":1.700000000123e12,\"endpoint\":\"/a\",\"latency_ms\":2.2250738585072011e-308}",
    "{\"ts\":17000000001230e-1,\"endpoint\":\"/a\",\"latency_ms\":0.30000000000000004}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":9007199254740993}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":9007199254740993.0}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":123456789012345678901234567890e-10}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":0.000000000000000000000000001}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1e22,\"status\":1e23}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":-1e-22,\"status\":1e-23}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":1e308,\"y\":10e308}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":0.1e310}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":100000000000000000000e289}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":-99999999999999999999e289}",
    "{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"x\":0.00000e400}",
    "{\"ts\":\"9999-12-31T23:59:59.999Z\",\"endpoint\":\"\",\"latency_ms\":-0}",
    "{\"ts\":\"1969-12-31T23:59:59.999Z\",\"endpoint\":\"/a\",\"latency_ms\":1}",
    "{\"ts\":\"2024-01-15T10:30:00.123+\\u0030\\u0030:00\",\"endpoint\":\"/a\",\"latency_ms\":1}",
    "{\"ts\":253402300799999,\"endpoint\":\"/a\",\"latency_ms\":1}",
    "{\"ts\":253402300800000,\"endpoint\":\"/a\",\"latency_ms\":1}",
    "{\"endpoint\":\"/a\",\"latency_ms\":1,\"ts\":1700000000123,\"ts\":{}}",
    "{\"endpoint\":\"/a\",\"latency_ms\":1,\"ts\":[],\"ts\":1}",
    "{\"ts\":1,\"endpoint\":\"\\ud83d\\ude00\\u20ac\\u00e9x\",\"latency_ms\":1,"
    "\"endpoint\":\"\\t\\\\\"}",
    "{\"\":1,\"ts\":1,\"endpoint\":\"a\",\"latency_ms\":1}",
    "{\"ts\":1,\"endpoint\":\"a\",\"latency_ms\":1,\"a\":{\"b\":{\"c\":[1,2,{\"d\":\"\\u0041\"}]}}"
    "}",
    "[{\"ts\":1}]",
    "{\"user_id\":\"u\",\"event_type\":\"x\",\"element_id\":\"y\",\"timestamp\":1700000000123}",
};

static void test_differential_tricky(void **state)
{
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
        size_t len = strlen(tricky[i]);
        for (size_t k = 0; k <= len; k++)
            assert_agree(tricky[i], k);
    }
}

/* xorshift64*: the same mutations on every run. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ULL;
}

/* Pieces worth splicing into JSON: every rule of test_json_rules in small. */
static const char *const pieces[] = {
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "0",
    "-",
    ".",
    "e",
    "E+",
    " ",
    "\t",
    "\n",
    "\x01",
    "\x7f",
    "\xc3\xa9",
    "\xc3",
    "\xed\xa0\x80",
    "\xf0\x9f\x98\x80",
    "\xff",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\u00e9",
    "\\n",
    "\\x",
    "1e400",
    "-0",
    "01",
    "1.",
    ".5",
    "1e-400",
    "9223372036854775808",
    "-9223372036854775808",
    "null",
    "true",
    "false",
    "tru",
    "[[[[",
    "]]]]",
    "{\"a\":",
    "\"ts\":",
    "\"ts\":1700000000123,",
    "\"endpoint\":\"/x\",",
    "\"latency_ms\":[],",
    "\"timestamp\":\"2024-01-15T10:30:00Z\",",
    "\"end\\u0070oint\":7,",
    "\"flag\":true,",
    "\"status\":\"503\",",
    "\"latency_ms\":\"12.5\",",
    "\"ok\":false,",
    "\"region\":\"eu\",",
    "12.5",
    "0.30000000000000004",
    "123456789012345678901234",
};

static size_t mutate(char *buf, size_t len, size_t cap)
{
    int ops = 1 + (int)(rnd() % 3);
    for (int op = 0; op < ops; op++) {
        size_t at = len ? (size_t)(rnd() % (len + 1)) : 0;
        switch (rnd() % 6) {
        case 0: /* overwrite a byte */
            if (at < len)
                buf[at] = (char)(rnd() % 4 ? pieces[rnd() % 12][0] : (char)rnd());
            break;
        case 1:
        case 2: { /* insert a piece */
            const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t n = strlen(p);
            if (p[0] == '\0')
                n = 1;
            if (len + n > cap)
                break;
            memmove(buf + at + n, buf + at, len - at);
            memcpy(buf + at, p, n);
            len += n;
            break;
        }
        case 3: { /* delete a few bytes */
            size_t n = 1 + (size_t)(rnd() % 8);
            if (at + n > len)
                n = len - at;
            memmove(buf + at, buf + at + n, len - at - n);
            len -= n;
            break;
        }
        case 4: { /* repeat a range */
            size_t n = 1 + (size_t)(rnd() % 16);
            if (at + n > len || len + n > cap)
                break;
            memmove(buf + at + n, buf + at, len - at);
            len += n;
            break;
        }
        case 5: /* a NUL byte */
            if (at < len)
                buf[at] = '\0';
            break;
        }
    }
    return len;
}

static void test_differential_mutated(void **state)
{
    eddy_gen_model_t models[2];
    eddy_gen_model_init(&models[0], EDDY_GEN_HTTP, 1);
    eddy_gen_model_init(&models[1], EDDY_GEN_ACTIVITY, 4);
    char buf[4 * EDDY_GEN_EVENT_MAX];
    for (int i = 0; i < 6000; i++) {
        size_t key_off, key_len;
        size_t len = eddy_gen_model_next(&models[i & 1], ts_at(i), buf, EDDY_GEN_EVENT_MAX,
                                         &key_off, &key_len);
        assert_agree(buf, len); /* unmutated: accepted by the topology of its kind */
        len = mutate(buf, len, sizeof(buf));
        assert_agree(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_good_events),
        cmocka_unit_test(test_bad_events),
        cmocka_unit_test(test_time_bounds),
        cmocka_unit_test(test_declared_fields),
        cmocka_unit_test(test_coerced_fields),
        cmocka_unit_test(test_scratch_for_coerced),
        cmocka_unit_test(test_generated_events_are_valid),
        cmocka_unit_test(test_json_rules),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_differential_tricky),
        cmocka_unit_test(test_differential_mutated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
