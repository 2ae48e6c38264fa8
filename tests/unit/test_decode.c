/*
 * test_decode.c — the record decoder: event time from epoch ms and ISO-8601
 * (fractions, offsets, leap days), every kind of bad input refused with a reason
 * (not JSON, not an object, missing or mistyped fields, absurd timestamps), and
 * only the topology's fields extracted. Then the JSON rules the scanner shares
 * with jansson 2.14 (json_loadb, flags 0), and differential tests against the
 * jansson-based reference decoder (tests/support/decode_reference.c): tricky
 * inputs, inputs the fuzzer found, and thousands of mutated generated events.
 */
#include "test_support.h"

#include "decode_reference.h"
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
 * timestamps), and the examples, one with epoch-ms and one with ISO-8601 times. */
#define N_TOPOS 3
static eddy_topology_t *topos[N_TOPOS];
static eddy_decoder_t *decoders[N_TOPOS];
static eddy_topology_t *topo;   /* topos[0] */
static eddy_decoder_t *decoder; /* decoders[0] */

static int setup(void **state)
{
    char errstr[256];
    topos[0] = eddy_topology_load_string(monitoring, "test", errstr, sizeof(errstr));
    topos[1] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/monitoring.json", errstr,
                                       sizeof(errstr));
    topos[2] = eddy_topology_load_file(EDDY_SOURCE_DIR "/topology/examples/activity.json", errstr,
                                       sizeof(errstr));
    for (int i = 0; i < N_TOPOS; i++) {
        if (!topos[i])
            return -1;
        decoders[i] = eddy_decoder_new(topos[i]);
        if (!decoders[i])
            return -1;
    }
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

static void test_bad_events(void **state)
{
    static const struct {
        const char *json;
        const char *reason_part;
    } cases[] = {
        {"not json", "JSON"},
        {"[1,2]", "object"},
        {"{\"endpoint\":\"/a\",\"latency_ms\":1}", "missing"},
        {"{\"ts\":1700000000000,\"latency_ms\":1}", "missing"},
        {"{\"ts\":1700000000000,\"endpoint\":null,\"latency_ms\":1}", "null"},
        {"{\"ts\":1700000000000,\"endpoint\":\"/a\"}", "numeric"},
        {"{\"ts\":1700000000000,\"endpoint\":\"/a\",\"latency_ms\":\"slow\"}", "numeric"},
        {"{\"ts\":-1,\"endpoint\":\"/a\",\"latency_ms\":1}", "timestamp"},
        {"{\"ts\":1e300,\"endpoint\":\"/a\",\"latency_ms\":1}", "timestamp"},
        {"{\"ts\":1.5,\"endpoint\":\"/a\",\"latency_ms\":1}", "timestamp"},
        {"{\"ts\":\"soon\",\"endpoint\":\"/a\",\"latency_ms\":1}", "timestamp"},
        {"{\"ts\":true,\"endpoint\":\"/a\",\"latency_ms\":1}", "timestamp"},
    };
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ts;
        const char *reason = NULL;
        if (decode(cases[i].json, values, &ts, &reason) != EDDY_ERR_INVALID)
            fail_msg("accepted: %s", cases[i].json);
        assert_non_null(reason);
        if (!strstr(reason, cases[i].reason_part))
            fail_msg("%s: reason '%s' does not mention '%s'", cases[i].json, reason,
                     cases[i].reason_part);
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
          "a field is null, an object or an array"),
        C("{\"ts\":1700000000123,\"endpoint\":null,\"latency_ms\":1,\"endpoint\":\"/b\"}", NULL),
        C("{\"ts\":1700000000123,\"endpoint\":\"/a\",\"latency_ms\":1,\"latency_ms\":[]}",
          "a numeric field is missing"),
        /* keys with escapes match after unescaping */
        C("{\"\\u0074s\":1700000000123,\"end\\u0070oint\":\"/a\",\"latency\\u005fms\":1}", NULL),
        C("{\"ts\":1700000000123,\"endpoint\\u0000\":\"/a\",\"latency_ms\":1}", BAD),
        C("{\"ts\":1700000000123,\"endpoint \":\"/a\",\"latency_ms\":1}", "a field is missing"),
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
                                  "\"latency_ms\":12.5,\"latency_ms\":1e-2,\"status\":true}";
    assert_int_equal(eddy_decode_json(decoder, escaped, strlen(escaped), values, &dec, &reason),
                     EDDY_OK);
    assert_int_equal(values[e].len, 9);
    assert_memory_equal(values[e].str, "/a\xc3\xa9\xf0\x9f\x98\x80\n", 9);
    assert_true(values[l].num == 0.01);
    assert_true(values[s].type == EDDY_VALUE_BOOL && values[s].num == 1);
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
    int64_t ts = 1705314600123LL;
    for (int i = 0; i < 6000; i++) {
        size_t key_off, key_len;
        size_t len = eddy_gen_model_next(&models[i & 1], ts + i * 37, buf, EDDY_GEN_EVENT_MAX,
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
        cmocka_unit_test(test_json_rules),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_differential_tricky),
        cmocka_unit_test(test_differential_mutated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
