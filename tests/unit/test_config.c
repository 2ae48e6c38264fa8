/*
 * test_config.c — the settings of `eddy run` (engine/config.h): properties text
 * and -X flags, what their errors name, and the settings exactly-once rests on,
 * which no flag or file can change.
 */
#include "test_support.h"

#include "engine/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prop(const eddy_kv_t *props, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(props[i].key, key))
            return props[i].value;
    return NULL;
}

static void test_properties_text(void **state)
{
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    char errstr[512];
    const char *text = "# a comment\n"
                       "! another\n"
                       "\n"
                       "  bootstrap.servers = k1:9092,k2:9092  \r\n"
                       "num.stream.threads: 3\n"
                       "consumer.session.timeout.ms=6000\n"
                       "linger.ms=7"; /* no newline at the end */
    assert_int_equal(
        eddy_config_load_string(&cfg, text, strlen(text), "a.properties", errstr, sizeof(errstr)),
        EDDY_OK);
    assert_string_equal(cfg.bootstrap_servers, "k1:9092,k2:9092");
    assert_int_equal(cfg.num_stream_threads, 3);
    assert_string_equal(prop(cfg.consumer_props, cfg.n_consumer_props, "session.timeout.ms"),
                        "6000");
    /* A bare librdkafka property goes to both clients. */
    assert_string_equal(prop(cfg.consumer_props, cfg.n_consumer_props, "linger.ms"), "7");
    assert_string_equal(prop(cfg.producer_props, cfg.n_producer_props, "linger.ms"), "7");
    eddy_config_free(&cfg);
}

/* A value longer than 4 KiB is one value (fgets with a 4 KiB buffer used to cut
 * it into a second, garbage line); a line over the limit and a NUL byte are
 * errors that name the line. */
static void test_long_lines_and_nul(void **state)
{
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    char errstr[512];
    size_t n = 10000;
    char *text = malloc(n + 64);
    int len = snprintf(text, n + 64, "http.ws.allowed.origins=");
    for (size_t i = 0; i < n - 30; i++)
        text[len++] = 'a';
    text[len++] = '\n';
    assert_int_equal(
        eddy_config_load_string(&cfg, text, (size_t)len, "long.properties", errstr, sizeof(errstr)),
        EDDY_OK);
    assert_int_equal(strlen(cfg.ws_allowed_origins), n - 30);
    free(text);

    size_t big = EDDY_CONFIG_LINE_MAX + 10;
    text = malloc(big + 32);
    memcpy(text, "poll.ms=5\n", 10);
    memset(text + 10, 'b', big);
    assert_int_equal(
        eddy_config_load_string(&cfg, text, big + 10, "big.properties", errstr, sizeof(errstr)),
        EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "big.properties:2: the line is longer than"));
    free(text);

    const char nul[] = "poll.ms=5\npoll.ms=6\0\n";
    assert_int_equal(eddy_config_load_string(&cfg, nul, sizeof(nul) - 1, "nul.properties", errstr,
                                             sizeof(errstr)),
                     EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "nul.properties:2: a NUL byte"));
    eddy_config_free(&cfg);
}

/* What exactly-once rests on: refused with the setting and the reason, from a
 * flag, a file and as a bare property; eddy's own value is fine. */
static void test_guarded_settings(void **state)
{
    static const char *const refused[][2] = {
        {"consumer.enable.auto.commit", "true"},
        {"consumer.enable.auto.offset.store", "true"},
        {"consumer.isolation.level", "read_uncommitted"},
        {"consumer.group.id", "g"},
        {"consumer.auto.offset.reset", "latest"},
        {"producer.enable.idempotence", "false"},
        {"producer.acks", "1"},
        {"producer.request.required.acks", "0"},
        {"producer.transactional.id", "t"},
        {"producer.bootstrap.servers", "b:1"},
        {"enable.idempotence", "false"},
        {"enable.auto.commit", "true"},
        {"isolation.level", "read_uncommitted"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        eddy_config_t cfg;
        eddy_config_init(&cfg);
        char errstr[512] = "";
        assert_int_equal(
            eddy_config_set(&cfg, refused[i][0], refused[i][1], "-X", errstr, sizeof(errstr)),
            EDDY_ERR_INVALID);
        char want[256];
        snprintf(want, sizeof(want), "-X: %s=%s: ", refused[i][0], refused[i][1]);
        if (strncmp(errstr, want, strlen(want)) ||
            !(strstr(errstr, "eddy needs") || strstr(errstr, "cannot be set")))
            fail_msg("%s=%s: %s", refused[i][0], refused[i][1], errstr);
        assert_int_equal(cfg.n_consumer_props + cfg.n_producer_props, 0);
        eddy_config_free(&cfg);
    }
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    char errstr[512] = "";
    assert_int_equal(
        eddy_config_set(&cfg, "consumer.isolation.level", "read_committed", "-X", errstr, 512),
        EDDY_OK);
    assert_int_equal(eddy_config_set(&cfg, "producer.acks", "all", "-X", errstr, 512), EDDY_OK);
    assert_int_equal(eddy_config_set(&cfg, "producer.acks", "-1", "-X", errstr, 512), EDDY_OK);
    assert_int_equal(eddy_config_set(&cfg, "enable.idempotence", "true", "-X", errstr, 512),
                     EDDY_OK);
    /* Tuning stays free. */
    assert_int_equal(
        eddy_config_set(&cfg, "producer.transaction.timeout.ms", "90000", "-X", errstr, 512),
        EDDY_OK);
    const char text[] = "bootstrap.servers=x:1\nconsumer.enable.auto.commit=true\n";
    assert_int_equal(eddy_config_load_string(&cfg, text, sizeof(text) - 1, "g.properties", errstr,
                                             sizeof(errstr)),
                     EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "g.properties:2: consumer.enable.auto.commit=true: eddy needs"));
    eddy_config_free(&cfg);
}

/* A bad value names where it came from (the flag, not the value) and what fits. */
static void test_errors_name_the_origin(void **state)
{
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    char errstr[512] = "";
    assert_int_equal(
        eddy_config_set(&cfg, "num.stream.threads", "0", "--threads", errstr, sizeof(errstr)),
        EDDY_ERR_INVALID);
    assert_string_equal(errstr, "--threads: num.stream.threads=0: expected stream threads (1..64)");
    assert_int_equal(eddy_config_set(&cfg, "num.stream.thread", "2", "-X", errstr, sizeof(errstr)),
                     EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "did you mean 'num.stream.threads'"));
    eddy_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties_text),
        cmocka_unit_test(test_long_lines_and_nul),
        cmocka_unit_test(test_guarded_settings),
        cmocka_unit_test(test_errors_name_the_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
