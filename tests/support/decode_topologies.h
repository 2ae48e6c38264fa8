/*
 * decode_topologies.h — the topologies the decoder's differential tests
 * (tests/unit/test_decode.c) and its fuzz target (tests/fuzz/fuzz_decode.c) run
 * both decoders with, besides topology/examples/monitoring.json (epoch-ms times,
 * declared strings, an integer status and ranges) and activity.json (ISO-8601):
 * "auto" timestamps with undeclared fields; then declarations of every kind —
 * coerced integers and numbers, ranges, booleans, predicate-only fields — with
 * the event time bounded by max_ts.
 */
#ifndef EDDY_TEST_DECODE_TOPOLOGIES_H
#define EDDY_TEST_DECODE_TOPOLOGIES_H

/* "auto" timestamps; endpoint and b are group keys (any scalar), status and a
 * only compared (optional), latency_ms averaged (a number). */
static const char eddy_test_topology_auto[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\",\"format\":"
    "\"auto\"}},\"stores\":[{\"name\":\"s\",\"group_by\":[\"endpoint\",\"b\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500 and a == \\\"x\\\"\"},"
    "{\"name\":\"m\",\"op\":\"mean\",\"field\":\"latency_ms\"}]}]}";

/* Epoch-ms times, at most 1h ahead; status a coerced whole number in 100..599 and
 * a group key; latency_ms in 0..1e7; region and ok compared only (optional);
 * user_id distinct. */
static const char eddy_test_topology_typed[] =
    "{\"name\":\"typed\",\"source\":{\"topic\":\"t\",\"timestamp\":{\"field\":\"ts\","
    "\"format\":\"epoch_ms\",\"max_future\":\"1h\"}},"
    "\"fields\":{\"status\":{\"type\":\"integer\",\"coerce\":true,\"min\":100,\"max\":599},"
    "\"latency_ms\":{\"type\":\"number\",\"min\":0,\"max\":1e7},"
    "\"endpoint\":{\"type\":\"string\"},\"ok\":{\"type\":\"boolean\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"endpoint\",\"status\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"n\",\"op\":\"count\"},"
    "{\"name\":\"e\",\"op\":\"count_if\",\"where\":\"status >= 500 and region == 'eu' or ok == "
    "true\"},"
    "{\"name\":\"m\",\"op\":\"max\",\"field\":\"latency_ms\"},"
    "{\"name\":\"d\",\"op\":\"distinct\",\"field\":\"user_id\"}]}]}";

/* "auto" times; latency_ms a coerced number with a lower bound only; method a
 * declared string group key; flag a boolean group key; user_id a declared number
 * that is only compared (optional). */
static const char eddy_test_topology_coerced[] =
    "{\"name\":\"coerced\",\"source\":{\"topic\":\"t\",\"timestamp\":\"ts\"},"
    "\"fields\":{\"latency_ms\":{\"type\":\"number\",\"coerce\":true,\"min\":-1.5},"
    "\"method\":{\"type\":\"string\"},\"flag\":{\"type\":\"boolean\"},"
    "\"user_id\":{\"type\":\"number\"}},"
    "\"stores\":[{\"name\":\"s\",\"group_by\":[\"method\",\"flag\"],"
    "\"window\":{\"type\":\"tumbling\",\"size\":\"1m\"},\"aggregates\":["
    "{\"name\":\"p\",\"op\":\"percentile\",\"field\":\"latency_ms\",\"q\":0.5},"
    "{\"name\":\"u\",\"op\":\"count_if\",\"where\":\"user_id > 3\"}]}]}";

#endif /* EDDY_TEST_DECODE_TOPOLOGIES_H */
