/*
 * fuzz_config.c — libFuzzer target: the settings parser of `eddy run`
 * (engine/config.c), which reads what users write: properties files
 * (eddy_config_load_string) and -X key=value flags (eddy_config_set).
 *
 * Input: the first byte picks the mode; the rest is a properties file, or a
 * list of NUL-separated key=value flags. Checked beyond ASan/UBSan (leaks
 * included): a failure leaves an error message that names its origin (FILE:LINE
 * or -X); whatever was accepted, the configuration's strings are all set, its
 * numbers in their ranges, and eddy_config_check either accepts it or says why;
 * what exactly-once rests on is never given away (a guarded librdkafka property
 * is only ever eddy's own value).
 */
#include "engine/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: %s\n", what);
        abort();
    }
}

/* The value a client property got, or NULL. */
static const char *prop(const eddy_kv_t *props, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(props[i].key, key))
            return props[i].value;
    return NULL;
}

static void check_config(const eddy_config_t *cfg)
{
    check(cfg->application_id && cfg->state_dir && cfg->application_server && cfg->dlq_topic &&
              cfg->ws_allowed_origins && cfg->http_static_dir,
          "a string setting is NULL");
    check(cfg->num_stream_threads >= 1 && cfg->num_stream_threads <= 64, "threads out of range");
    check(cfg->commit_interval_ms >= 1, "commit interval out of range");
    check(cfg->n_consumer_props <= EDDY_CONFIG_MAX_PROPS &&
              cfg->n_producer_props <= EDDY_CONFIG_MAX_PROPS,
          "too many client properties");
    const char *v = prop(cfg->consumer_props, cfg->n_consumer_props, "enable.auto.commit");
    check(!v || !strcmp(v, "false"), "auto commit given away");
    v = prop(cfg->consumer_props, cfg->n_consumer_props, "isolation.level");
    check(!v || !strcmp(v, "read_committed"), "read_committed given away");
    v = prop(cfg->producer_props, cfg->n_producer_props, "enable.idempotence");
    check(!v || !strcmp(v, "true"), "idempotence given away");
    check(!prop(cfg->producer_props, cfg->n_producer_props, "transactional.id"),
          "transactional.id set");
    check(!prop(cfg->consumer_props, cfg->n_consumer_props, "group.id"), "group.id set");
    char errstr[512] = "";
    if (eddy_config_check(cfg, errstr, sizeof(errstr)))
        check(errstr[0] != '\0', "a refused configuration without a reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    eddy_config_t cfg;
    eddy_config_init(&cfg);
    char errstr[512] = "";
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        if (eddy_config_load_string(&cfg, text, len, "fuzz.properties", errstr, sizeof(errstr)))
            check(!strncmp(errstr, "fuzz.properties:", 16), "a file error without FILE:LINE");
    } else {
        /* NUL-separated -X flags, as eddy run splits them: at the first '='. */
        char *copy = malloc(len + 1);
        memcpy(copy, text, len);
        copy[len] = '\0';
        for (char *flag = copy; flag < copy + len; flag += strlen(flag) + 1) {
            char *eq = strchr(flag, '=');
            if (!eq || eq == flag)
                continue;
            *eq = '\0';
            if (eddy_config_set(&cfg, flag, eq + 1, "-X", errstr, sizeof(errstr))) {
                check(!strncmp(errstr, "-X", 2), "a flag error without -X");
                break;
            }
        }
        free(copy);
    }
    check_config(&cfg);
    eddy_config_free(&cfg);
    return 0;
}
