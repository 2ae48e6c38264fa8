/*
 * test_decode.c — the record decoder: event time from epoch ms and ISO-8601
 * (fractions, offsets, leap days), every kind of bad input refused with a reason
 * (not JSON, not an object, missing or mistyped fields, absurd timestamps), and
 * only the topology's fields extracted.
 */
#include "test_support.h"

#include "engine/decode.h"

#include <string.h>

static const char monitoring[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"auto\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"endpoint\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500\"},"
    "{\"name\":\"m\",\"op\":\"mean\",\"field\":\"latency_ms\"}]}]}";

static eddy_topology_t *topo;

static int setup(void **state)
{
    char errstr[256];
    topo = eddy_topology_load_string(monitoring, "test", errstr, sizeof(errstr));
    return topo ? 0 : -1;
}

static int teardown(void **state)
{
    eddy_topology_destroy(topo);
    return 0;
}

static eddy_err_t decode(const char *json, eddy_value_t *values, int64_t *ts, const char **reason)
{
    eddy_decoded_t dec;
    eddy_err_t err = eddy_decode_json(topo, json, strlen(json), values, &dec, reason);
    if (!err) {
        *ts = dec.ts;
        eddy_decoded_release(&dec);
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_good_events),
        cmocka_unit_test(test_bad_events),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
