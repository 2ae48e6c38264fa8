/*
 * loader.c — topology files (JSON, docs/topology.md) turned into builder calls.
 *
 * The loader checks the shape of the file (types, known keys, required keys) and
 * leaves every rule about values to the builder, so a file and a C program are
 * held to the same rules. Every message names the file, the JSON path of the
 * offending value and what was expected:
 *   monitoring.json: $.stores[1].window.size: expected a duration such as "1m"
 *   or 60000, got "abc"
 * Builder errors are placed by eddy_topology_error_path(). Unknown keys are
 * errors, with the nearest known key suggested. Stops at the first error.
 */
#include "engine/util.h"
#include "topology/topology_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_LEN 192 /* a JSON path in a message */
#define MSG_MAX      512 /* a builder's message */

static const char duration_expected[] = "a duration such as \"1m\" or 60000";

typedef struct loader_s {
    const char *origin;    /* file name (or the string's origin) for messages */
    eddy_topology_t *topo; /* being built; NULL until $.name is read */
    char *errstr;          /* caller's buffer */
    size_t errstr_size;    /* its size */
} loader_t;

static eddy_err_t fail(loader_t *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static eddy_err_t fail(loader_t *ld, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return eddy_errf(EDDY_ERR_INVALID, ld->errstr, ld->errstr_size, "%s: %s: %s", ld->origin, path,
                     msg);
}

/* A builder call failed with `msg`: place it at `path`, or where the builder
 * says when path is NULL. */
static eddy_err_t fail_builder(loader_t *ld, eddy_err_t err, const char *path, const char *msg)
{
    char where[PATH_MAX_LEN];
    if (!path) {
        const char *rel = eddy_topology_error_path(ld->topo);
        snprintf(where, sizeof(where), "$%s%s", *rel ? "." : "", rel);
        path = where;
    }
    fail(ld, path, "%s", msg);
    return err;
}

/* path.key, or path["key"] when key is not a plain identifier. */
static const char *join(char *buf, size_t cap, const char *path, const char *key)
{
    bool plain = isalpha((unsigned char)*key) || *key == '_';
    for (const char *p = key; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    if (plain) {
        snprintf(buf, cap, "%s.%s", path, key);
    } else {
        json_t *quoted = json_string(key);
        char *text = quoted ? json_dumps(quoted, JSON_ENCODE_ANY) : NULL;
        snprintf(buf, cap, "%s[%s]", path, text ? text : "?");
        free(text);
        json_decref(quoted);
    }
    return buf;
}

static const char *join_index(char *buf, size_t cap, const char *path, size_t i)
{
    /* Leave room for the index: a path too long for a message is cut in front of it. */
    snprintf(buf, cap, "%.*s[%zu]", (int)(cap > 24 ? cap - 24 : 0), path, i);
    return buf;
}

/* A JSON value as a message shows it: "text" (shortened), 12, true, an object. */
static const char *show(json_t *v, char *buf, size_t cap)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(buf, cap, "an object");
        break;
    case JSON_ARRAY:
        snprintf(buf, cap, json_array_size(v) ? "an array" : "an empty array");
        break;
    default: {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        size_t len = text ? strlen(text) : 0;
        if (len > 60)
            snprintf(buf, cap, "%.56s...\"", text);
        else
            snprintf(buf, cap, "%s", text ? text : "?");
        free(text);
    }
    }
    return buf;
}

/* Fails on the first key of obj (in file order) that is not in `allowed`,
 * suggesting the nearest allowed key; `what` names the object ("a window"). */
static eddy_err_t check_keys(loader_t *ld, json_t *obj, const char *path, const char *what,
                             const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *near = NULL;
        size_t best = SIZE_MAX;
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++) {
            known = !strcmp(key, *a);
            size_t d = eddy_topology_hint_distance(key, *a);
            if (d < best) {
                best = d;
                near = *a;
            }
        }
        if (known)
            continue;
        char kp[PATH_MAX_LEN], list[256] = "";
        for (const char *const *a = allowed; *a; a++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                     a == allowed ? "" : ", ", *a);
        join(kp, sizeof(kp), path, key);
        if (near)
            return fail(ld, kp, "unknown key in %s; did you mean \"%s\"?", what, near);
        return fail(ld, kp, "unknown key in %s (it takes %s)", what, list);
    }
    return EDDY_OK;
}

/* obj[key], or a failure naming it when it is missing and required. */
static eddy_err_t get(loader_t *ld, json_t *obj, const char *path, const char *key,
                      const char *expected, json_t **out)
{
    *out = json_object_get(obj, key);
    if (!*out && expected)
        return fail(ld, path, "missing \"%s\" (expected %s)", key, expected);
    return EDDY_OK;
}

/* A non-empty string at path. */
static eddy_err_t as_string(loader_t *ld, json_t *v, const char *path, const char *expected,
                            const char **out)
{
    char got[80];
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(ld, path, "expected %s, got %s", expected, show(v, got, sizeof(got)));
    *out = json_string_value(v);
    return EDDY_OK;
}

/* A JSON object at path; `example` shows what one looks like. */
static eddy_err_t as_object(loader_t *ld, json_t *v, const char *path, const char *example)
{
    char got[80];
    if (!json_is_object(v))
        return fail(ld, path, "expected an object such as %s, got %s", example,
                    show(v, got, sizeof(got)));
    return EDDY_OK;
}

/* Optional obj[key] as a non-empty string; *out stays NULL when absent. */
static eddy_err_t get_string(loader_t *ld, json_t *obj, const char *path, const char *key,
                             bool required, const char *expected, const char **out)
{
    json_t *v;
    char kp[PATH_MAX_LEN];
    *out = NULL;
    eddy_err_t err = get(ld, obj, path, key, required ? expected : NULL, &v);
    if (err || !v)
        return err;
    return as_string(ld, v, join(kp, sizeof(kp), path, key), expected, out);
}

/* A duration: a non-negative integer of milliseconds or text such as "1m". */
static eddy_err_t as_duration(loader_t *ld, json_t *v, const char *path, int64_t *ms)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= EDDY_DURATION_MAX_MS) {
        *ms = json_integer_value(v);
        return EDDY_OK;
    }
    if (json_is_string(v) && eddy_duration_parse(json_string_value(v), ms))
        return EDDY_OK;
    char got[80];
    if (json_is_integer(v) && json_integer_value(v) > EDDY_DURATION_MAX_MS)
        return fail(ld, path, "expected %s of at most 100 years, got %s", duration_expected,
                    show(v, got, sizeof(got)));
    return fail(ld, path, "expected %s, got %s", duration_expected, show(v, got, sizeof(got)));
}

/* One of `names` (count n); suggests the nearest on a near miss. */
static eddy_err_t as_enum(loader_t *ld, json_t *v, const char *path, const char *const *names,
                          size_t n, int *out)
{
    char list[256] = "", got[80], hint[96] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                 i == 0       ? ""
                 : i + 1 == n ? " or "
                              : ", ",
                 names[i]);
    if (json_is_string(v)) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(json_string_value(v), names[i])) {
                *out = (int)i;
                return EDDY_OK;
            }
            size_t d = eddy_topology_hint_distance(json_string_value(v), names[i]);
            if (d < best) {
                best = d;
                snprintf(hint, sizeof(hint), "; did you mean \"%s\"?", names[i]);
            }
        }
    }
    return fail(ld, path, "expected %s, got %s%s", list, show(v, got, sizeof(got)), hint);
}

/* --- source --------------------------------------------------------------------------- */

static eddy_err_t load_timestamp(loader_t *ld, json_t *ts, const char *path)
{
    static const char *const keys[] = {"field", "format", "max_future", NULL};
    static const char *const formats[] = {"epoch_ms", "iso8601", "auto"};
    char msg[MSG_MAX], kp[PATH_MAX_LEN];
    const char *field;
    int format = EDDY_TS_AUTO;
    eddy_err_t err;
    if (json_is_string(ts)) { /* "timestamp": "ts" is {"field": "ts", "format": "auto"} */
        if ((err = as_string(ld, ts, path, "an event field name", &field)))
            return err;
        if ((err = eddy_topology_set_timestamp(ld->topo, field, EDDY_TS_AUTO, msg, sizeof(msg))))
            return fail_builder(ld, err, path, msg);
        return EDDY_OK;
    }
    if ((err = as_object(ld, ts, path, "{\"field\": \"ts\", \"format\": \"epoch_ms\"}")) ||
        (err = check_keys(ld, ts, path, "a timestamp", keys)) ||
        (err = get_string(ld, ts, path, "field", true, "the name of the event-time field", &field)))
        return err;
    json_t *v = json_object_get(ts, "format");
    if (v && (err = as_enum(ld, v, join(kp, sizeof(kp), path, "format"), formats, 3, &format)))
        return err;
    if ((err = eddy_topology_set_timestamp(ld->topo, field, (eddy_ts_format_t)format, msg,
                                           sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    if ((v = json_object_get(ts, "max_future"))) {
        int64_t ms;
        join(kp, sizeof(kp), path, "max_future");
        if ((err = as_duration(ld, v, kp, &ms)))
            return err;
        if ((err = eddy_topology_set_max_future(ld->topo, ms, msg, sizeof(msg))))
            return fail_builder(ld, err, kp, msg);
    }
    return EDDY_OK;
}

static eddy_err_t load_source(loader_t *ld, json_t *src)
{
    static const char *const keys[] = {"topic", "topics", "format", "timestamp", NULL};
    static const char *const formats[] = {"json"};
    const char *path = "$.source";
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    if ((err = as_object(ld, src, path,
                         "{\"topic\": \"log-events\", \"timestamp\": {\"field\": \"ts\"}}")) ||
        (err = check_keys(ld, src, path, "the source", keys)))
        return err;
    json_t *topic = json_object_get(src, "topic"), *topics = json_object_get(src, "topics");
    if (topic && topics)
        return fail(ld, join(kp, sizeof(kp), path, "topics"),
                    "give either \"topic\" or \"topics\", not both");
    if (!topic && !topics)
        return fail(ld, path,
                    "missing \"topic\" (expected a topic name, or \"topics\": a list of them)");
    if (topic) {
        const char *name;
        join(kp, sizeof(kp), path, "topic");
        if ((err = as_string(ld, topic, kp, "a topic name", &name)))
            return err;
        if ((err = eddy_topology_add_source_topic(ld->topo, name, msg, sizeof(msg))))
            return fail_builder(ld, err, kp, msg);
    } else {
        join(kp, sizeof(kp), path, "topics");
        if (!json_is_array(topics) || json_array_size(topics) == 0)
            return fail(ld, kp, "expected a non-empty list of topic names, got %s",
                        show(topics, got, sizeof(got)));
        size_t i;
        json_t *t;
        json_array_foreach(topics, i, t)
        {
            char tp[PATH_MAX_LEN];
            const char *name;
            join_index(tp, sizeof(tp), kp, i);
            if ((err = as_string(ld, t, tp, "a topic name", &name)))
                return err;
            if ((err = eddy_topology_add_source_topic(ld->topo, name, msg, sizeof(msg))))
                return fail_builder(ld, err, tp, msg);
        }
    }
    json_t *v = json_object_get(src, "format");
    int format;
    if (v && (err = as_enum(ld, v, join(kp, sizeof(kp), path, "format"), formats, 1, &format)))
        return err;
    if ((err =
             get(ld, src, path, "timestamp", "{\"field\": \"ts\", \"format\": \"epoch_ms\"}", &v)))
        return err;
    return load_timestamp(ld, v, join(kp, sizeof(kp), path, "timestamp"));
}

/* --- stores ----------------------------------------------------------------------------- */

static eddy_err_t load_group_by(loader_t *ld, eddy_store_def_t *store, json_t *g, const char *path)
{
    char msg[MSG_MAX], got[80];
    const char *field;
    eddy_err_t err;
    if (json_is_string(g)) { /* one field */
        if ((err = as_string(ld, g, path, "an event field name", &field)))
            return err;
        if ((err = eddy_store_def_group_by(store, field, msg, sizeof(msg))))
            return fail_builder(ld, err, path, msg);
        return EDDY_OK;
    }
    if (!json_is_array(g))
        return fail(ld, path,
                    "expected a field name or a list of them ([] for one group of all "
                    "events), got %s",
                    show(g, got, sizeof(got)));
    size_t i;
    json_t *f;
    json_array_foreach(g, i, f)
    {
        char fp[PATH_MAX_LEN];
        join_index(fp, sizeof(fp), path, i);
        if ((err = as_string(ld, f, fp, "an event field name", &field)))
            return err;
        if ((err = eddy_store_def_group_by(store, field, msg, sizeof(msg))))
            return fail_builder(ld, err, fp, msg);
    }
    return EDDY_OK;
}

static eddy_err_t load_window(loader_t *ld, eddy_store_def_t *store, json_t *w, const char *path)
{
    static const char *const keys[] = {"type", "size", "advance", "grace", "retention", NULL};
    static const char *const types[] = {"tumbling", "hopping"};
    char msg[MSG_MAX], kp[PATH_MAX_LEN];
    eddy_err_t err;
    json_t *v;
    int type;
    if ((err = as_object(ld, w, path, "{\"type\": \"tumbling\", \"size\": \"1m\"}")) ||
        (err = check_keys(ld, w, path, "a window", keys)) ||
        (err = get(ld, w, path, "type", "\"tumbling\" or \"hopping\"", &v)) ||
        (err = as_enum(ld, v, join(kp, sizeof(kp), path, "type"), types, 2, &type)))
        return err;
    int64_t size, advance = 0, ms;
    if ((err = get(ld, w, path, "size", duration_expected, &v)) ||
        (err = as_duration(ld, v, join(kp, sizeof(kp), path, "size"), &size)))
        return err;
    v = json_object_get(w, "advance");
    if (type == EDDY_WINDOW_TUMBLING && v)
        return fail(ld, join(kp, sizeof(kp), path, "advance"),
                    "a tumbling window has no advance (its advance is its size); use \"type\": "
                    "\"hopping\" for overlapping windows");
    if (type == EDDY_WINDOW_HOPPING) {
        if ((err = get(ld, w, path, "advance",
                       "a duration such as \"1m\": how far each "
                       "hopping window starts after the previous one",
                       &v)) ||
            (err = as_duration(ld, v, join(kp, sizeof(kp), path, "advance"), &advance)))
            return err;
        err = eddy_store_def_hopping(store, size, advance, msg, sizeof(msg));
    } else {
        err = eddy_store_def_tumbling(store, size, msg, sizeof(msg));
    }
    if (err)
        return fail_builder(ld, err, NULL, msg);
    if ((v = json_object_get(w, "grace"))) {
        if ((err = as_duration(ld, v, join(kp, sizeof(kp), path, "grace"), &ms)))
            return err;
        if ((err = eddy_store_def_grace(store, ms, msg, sizeof(msg))))
            return fail_builder(ld, err, NULL, msg);
    }
    if ((v = json_object_get(w, "retention"))) {
        if ((err = as_duration(ld, v, join(kp, sizeof(kp), path, "retention"), &ms)))
            return err;
        if ((err = eddy_store_def_retention(store, ms, msg, sizeof(msg))))
            return fail_builder(ld, err, NULL, msg);
    }
    return EDDY_OK;
}

/* The keys each op takes besides name and op (NULL-terminated). */
static const char *const *op_keys(eddy_agg_op_t op)
{
    static const char *const none[] = {NULL};
    static const char *const where[] = {"where", NULL};
    static const char *const field[] = {"field", NULL};
    static const char *const percentile[] = {"field", "q", NULL};
    static const char *const ratio[] = {"numerator", "denominator", NULL};
    switch (op) {
    case EDDY_AGG_COUNT:
        return none;
    case EDDY_AGG_COUNT_IF:
        return where;
    case EDDY_AGG_PERCENTILE:
        return percentile;
    case EDDY_AGG_RATIO:
        return ratio;
    default:
        return field;
    }
}

static const char *key_expected(const char *key)
{
    if (!strcmp(key, "where"))
        return "a predicate such as \"status >= 500\"";
    if (!strcmp(key, "field"))
        return "an event field name";
    if (!strcmp(key, "q"))
        return "the quantile in (0, 1], such as 0.99 for P99";
    return "the name of a count, count_if or sum aggregate of this store";
}

static eddy_err_t load_aggregate(loader_t *ld, eddy_store_def_t *store, json_t *a, const char *path)
{
    static const char *const keys[] = {"name",  "op",        "field",       "q",
                                       "where", "numerator", "denominator", NULL};
    const char *ops[EDDY_AGG_OP_COUNT];
    for (int i = 0; i < EDDY_AGG_OP_COUNT; i++)
        ops[i] = eddy_agg_op_name((eddy_agg_op_t)i);
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    const char *name;
    json_t *v;
    int op;
    if ((err = as_object(ld, a, path, "{\"name\": \"count\", \"op\": \"count\"}")) ||
        (err = check_keys(ld, a, path, "an aggregate", keys)) ||
        (err = get_string(ld, a, path, "name", true, "the aggregate's name", &name)) ||
        (err = get(ld, a, path, "op",
                   "one of count, count_if, sum, min, max, mean, "
                   "percentile, distinct, ratio",
                   &v)) ||
        (err = as_enum(ld, v, join(kp, sizeof(kp), path, "op"), ops, EDDY_AGG_OP_COUNT, &op)))
        return err;

    /* Keys that belong to other ops are errors: they would be silently ignored. */
    const char *const *takes = op_keys((eddy_agg_op_t)op);
    const char *key;
    json_object_foreach(a, key, v)
    {
        bool ok = !strcmp(key, "name") || !strcmp(key, "op");
        for (const char *const *t = takes; *t && !ok; t++)
            ok = !strcmp(key, *t);
        if (ok)
            continue;
        char list[96] = "name, op";
        for (const char *const *t = takes; *t; t++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), ", %s", *t);
        return fail(ld, join(kp, sizeof(kp), path, key),
                    "a %s aggregate has no \"%s\" (it takes %s)", ops[op], key, list);
    }
    const char *arg[2] = {NULL, NULL};
    double q = 0;
    for (int i = 0; takes[i]; i++) {
        if ((err = get(ld, a, path, takes[i], key_expected(takes[i]), &v)))
            return err;
        join(kp, sizeof(kp), path, takes[i]);
        if (!strcmp(takes[i], "q")) {
            if (!json_is_number(v))
                return fail(ld, kp, "expected %s, got %s", key_expected("q"),
                            show(v, got, sizeof(got)));
            q = json_number_value(v);
        } else if ((err = as_string(ld, v, kp, key_expected(takes[i]), &arg[i]))) {
            return err;
        }
    }
    switch ((eddy_agg_op_t)op) {
    case EDDY_AGG_COUNT:
        err = eddy_store_def_add_count(store, name, msg, sizeof(msg));
        break;
    case EDDY_AGG_COUNT_IF:
        err = eddy_store_def_add_count_if(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_SUM:
        err = eddy_store_def_add_sum(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_MIN:
        err = eddy_store_def_add_min(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_MAX:
        err = eddy_store_def_add_max(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_MEAN:
        err = eddy_store_def_add_mean(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_PERCENTILE:
        err = eddy_store_def_add_percentile(store, name, arg[0], q, msg, sizeof(msg));
        break;
    case EDDY_AGG_DISTINCT:
        err = eddy_store_def_add_distinct(store, name, arg[0], msg, sizeof(msg));
        break;
    case EDDY_AGG_RATIO:
        err = eddy_store_def_add_ratio(store, name, arg[0], arg[1], msg, sizeof(msg));
        break;
    }
    return err ? fail_builder(ld, err, NULL, msg) : EDDY_OK;
}

static eddy_err_t load_sink(loader_t *ld, eddy_store_def_t *store, json_t *sink, const char *path)
{
    static const char *const keys[] = {"topic", "emit", NULL};
    static const char *const emits[] = {"on_close", "updates"};
    char msg[MSG_MAX], kp[PATH_MAX_LEN];
    const char *topic;
    int emit = EDDY_EMIT_ON_CLOSE;
    eddy_err_t err;
    if ((err =
             as_object(ld, sink, path, "{\"topic\": \"event-metrics\", \"emit\": \"on_close\"}")) ||
        (err = check_keys(ld, sink, path, "a sink", keys)) ||
        (err = get_string(ld, sink, path, "topic", true, "a topic name", &topic)))
        return err;
    json_t *v = json_object_get(sink, "emit");
    if (v && (err = as_enum(ld, v, join(kp, sizeof(kp), path, "emit"), emits, 2, &emit)))
        return err;
    if ((err = eddy_store_def_sink(store, topic, (eddy_emit_t)emit, msg, sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    return EDDY_OK;
}

static eddy_err_t load_store(loader_t *ld, json_t *st, const char *path)
{
    static const char *const keys[] = {"name",       "description", "group_by", "window",
                                       "aggregates", "sink",        NULL};
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    const char *name, *description;
    json_t *v;
    if ((err = as_object(ld, st, path,
                         "{\"name\": \"per_endpoint\", \"group_by\": [\"endpoint\"], ...}")) ||
        (err = check_keys(ld, st, path, "a store", keys)) ||
        (err = get_string(ld, st, path, "name", true, "the store's name", &name)))
        return err;
    eddy_store_def_t *store = eddy_topology_add_store(ld->topo, name, msg, sizeof(msg));
    if (!store)
        return fail_builder(ld, EDDY_ERR_INVALID, join(kp, sizeof(kp), path, "name"), msg);
    if ((err = get_string(ld, st, path, "description", false, "free text", &description)))
        return err;
    if (description && (err = eddy_store_def_set_description(store, description, msg, sizeof(msg))))
        return fail_builder(ld, err, join(kp, sizeof(kp), path, "description"), msg);
    if ((err = get(ld, st, path, "group_by",
                   "a field name, a list of them, or [] for one group of all events", &v)) ||
        (err = load_group_by(ld, store, v, join(kp, sizeof(kp), path, "group_by"))) ||
        (err = get(ld, st, path, "window",
                   "an object such as {\"type\": \"tumbling\", "
                   "\"size\": \"1m\"}",
                   &v)) ||
        (err = load_window(ld, store, v, join(kp, sizeof(kp), path, "window"))) ||
        (err = get(ld, st, path, "aggregates", "a list of aggregates", &v)))
        return err;
    join(kp, sizeof(kp), path, "aggregates");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(ld, kp,
                    "expected a non-empty list of aggregates such as [{\"name\": \"count\", "
                    "\"op\": \"count\"}], got %s",
                    show(v, got, sizeof(got)));
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        char ap[PATH_MAX_LEN];
        if ((err = load_aggregate(ld, store, a, join_index(ap, sizeof(ap), kp, i))))
            return err;
    }
    if ((v = json_object_get(st, "sink")) &&
        (err = load_sink(ld, store, v, join(kp, sizeof(kp), path, "sink"))))
        return err;
    if ((err = eddy_store_def_check(store, msg, sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    return EDDY_OK;
}

/* --- fields ----------------------------------------------------------------------------- */

/* A number at path (a bound of a range). */
static eddy_err_t as_number(loader_t *ld, json_t *v, const char *path, double *out)
{
    char got[80];
    if (!json_is_number(v))
        return fail(ld, path, "expected a number, got %s", show(v, got, sizeof(got)));
    *out = json_number_value(v);
    return EDDY_OK;
}

static eddy_err_t load_field(loader_t *ld, const char *name, json_t *f, const char *path)
{
    static const char *const keys[] = {"type", "coerce", "min", "max", NULL};
    static const char *const types[] = {"number", "integer", "string", "boolean"};
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    eddy_field_spec_t spec = {.name = name};
    eddy_err_t err;
    json_t *v;
    int type;
    if ((err = as_object(ld, f, path, "{\"type\": \"number\", \"min\": 0}")) ||
        (err = check_keys(ld, f, path, "a field declaration", keys)) ||
        (err =
             get(ld, f, path, "type", "\"number\", \"integer\", \"string\" or \"boolean\"", &v)) ||
        (err = as_enum(ld, v, join(kp, sizeof(kp), path, "type"), types, 4, &type)))
        return err;
    spec.type = (eddy_field_type_t)(EDDY_FIELD_NUMBER + type);
    if ((v = json_object_get(f, "coerce"))) {
        if (!json_is_boolean(v))
            return fail(ld, join(kp, sizeof(kp), path, "coerce"),
                        "expected true (read a string such as \"503\" as the number 503) or "
                        "false, got %s",
                        show(v, got, sizeof(got)));
        spec.coerce = json_is_true(v);
    }
    if ((v = json_object_get(f, "min"))) {
        if ((err = as_number(ld, v, join(kp, sizeof(kp), path, "min"), &spec.min)))
            return err;
        spec.has_min = true;
    }
    if ((v = json_object_get(f, "max"))) {
        if ((err = as_number(ld, v, join(kp, sizeof(kp), path, "max"), &spec.max)))
            return err;
        spec.has_max = true;
    }
    if ((err = eddy_topology_declare_field(ld->topo, &spec, msg, sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    return EDDY_OK;
}

static eddy_err_t load_fields(loader_t *ld, json_t *fields)
{
    char kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    if (!json_is_object(fields))
        return fail(ld, "$.fields",
                    "expected an object of field declarations by name, such as {\"latency_ms\": "
                    "{\"type\": \"number\", \"min\": 0}}, got %s",
                    show(fields, got, sizeof(got)));
    const char *name;
    json_t *f;
    json_object_foreach(fields, name, f)
    {
        if ((err = load_field(ld, name, f, join(kp, sizeof(kp), "$.fields", name))))
            return err;
    }
    return EDDY_OK;
}

/* --- views ------------------------------------------------------------------------------ */

static eddy_err_t load_view(loader_t *ld, const char *name, json_t *v, const char *path)
{
    static const char *const keys[] = {"description", "route",  "store", "key",
                                       "windows",     "last",   "at",    "combine",
                                       "aggregates",  "having", "share", NULL};
    static const char *const ats[] = {"stream_time", "now"};
    static const char *const combines[] = {"series", "merge"};
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    const char *aggs[EDDY_MAX_AGGREGATES + 1] = {NULL};
    eddy_view_spec_t spec = {.name = name};
    eddy_err_t err;
    json_t *x;
    int e;
    if ((err = as_object(ld, v, path,
                         "{\"route\": \"/api/metrics/x\", \"store\": \"endpoint_stats\", "
                         "\"windows\": 1}")) ||
        (err = check_keys(ld, v, path, "a view", keys)) ||
        (err = get_string(ld, v, path, "description", false, "free text", &spec.description)) ||
        (err = get_string(ld, v, path, "route", true,
                          "the HTTP route, such as \"/api/metrics/endpoint/{endpoint}\"",
                          &spec.route)) ||
        (err = get_string(ld, v, path, "store", true, "the name of the store queried",
                          &spec.store)) ||
        (err = get_string(ld, v, path, "key", false,
                          "\"{param}\" (the route's parameter) or a group key", &spec.key)) ||
        (err = get_string(ld, v, path, "having", false, "a predicate such as \"errors > 0\"",
                          &spec.having)) ||
        (err = get_string(ld, v, path, "share", false,
                          "the name of a count, count_if or sum aggregate", &spec.share)))
        return err;
    if ((x = json_object_get(v, "windows"))) {
        join(kp, sizeof(kp), path, "windows");
        if (!json_is_integer(x) || json_integer_value(x) < 1 ||
            json_integer_value(x) > EDDY_VIEW_MAX_WINDOWS)
            return fail(ld, kp,
                        "expected how many windows, the current one included (1 to %d), got %s",
                        EDDY_VIEW_MAX_WINDOWS, show(x, got, sizeof(got)));
        spec.windows = json_integer_value(x);
    }
    if ((x = json_object_get(v, "last"))) {
        join(kp, sizeof(kp), path, "last");
        if ((err = as_duration(ld, x, kp, &spec.last_ms)))
            return err;
        if (spec.last_ms == 0)
            return fail(ld, kp, "expected a duration above 0, got %s", show(x, got, sizeof(got)));
    }
    if (!spec.windows && !spec.last_ms)
        return fail(ld, path,
                    "missing \"windows\" (how many windows, the current one included) or "
                    "\"last\" (a duration of event time, such as \"5m\")");
    if (spec.windows && spec.last_ms)
        return fail(ld, join(kp, sizeof(kp), path, "last"),
                    "give either \"windows\" or \"last\", not both");
    if ((x = json_object_get(v, "at"))) {
        if ((err = as_enum(ld, x, join(kp, sizeof(kp), path, "at"), ats, 2, &e)))
            return err;
        spec.at = (eddy_view_time_t)e;
    }
    if ((x = json_object_get(v, "combine"))) {
        if ((err = as_enum(ld, x, join(kp, sizeof(kp), path, "combine"), combines, 2, &e)))
            return err;
        spec.combine = (eddy_view_combine_t)e;
    }
    if ((x = json_object_get(v, "aggregates"))) {
        join(kp, sizeof(kp), path, "aggregates");
        if (!json_is_array(x) || json_array_size(x) == 0 ||
            json_array_size(x) > EDDY_MAX_AGGREGATES)
            return fail(ld, kp,
                        "expected a non-empty list of aggregate names such as [\"count\"] "
                        "(leave it out to answer all), got %s",
                        show(x, got, sizeof(got)));
        size_t i;
        json_t *a;
        json_array_foreach(x, i, a)
        {
            char ap[PATH_MAX_LEN];
            if ((err = as_string(ld, a, join_index(ap, sizeof(ap), kp, i), "an aggregate name",
                                 &aggs[i])))
                return err;
        }
        spec.aggregates = aggs;
    }
    if ((err = eddy_topology_add_view(ld->topo, &spec, msg, sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    return EDDY_OK;
}

static eddy_err_t load_views(loader_t *ld, json_t *views)
{
    char kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    if (!json_is_object(views))
        return fail(ld, "$.views",
                    "expected an object of views by name, such as {\"errors\": {\"route\": "
                    "\"/api/metrics/errors\", ...}}, got %s",
                    show(views, got, sizeof(got)));
    const char *name;
    json_t *v;
    json_object_foreach(views, name, v)
    {
        if ((err = load_view(ld, name, v, join(kp, sizeof(kp), "$.views", name))))
            return err;
    }
    return EDDY_OK;
}

/* --- the file ------------------------------------------------------------------------- */

static eddy_err_t load_root(loader_t *ld, json_t *root)
{
    static const char *const keys[] = {"name",   "description", "source", "fields",
                                       "stores", "views",       NULL};
    char msg[MSG_MAX], kp[PATH_MAX_LEN], got[80];
    eddy_err_t err;
    const char *name, *description;
    json_t *v;
    if ((err = as_object(ld, root, "$", "{\"name\": ..., \"source\": {...}, \"stores\": [...]}")) ||
        (err = check_keys(ld, root, "$", "a topology", keys)) ||
        (err = get_string(ld, root, "$", "name", true,
                          "the topology's name, such as \"monitoring\"", &name)))
        return err;
    if (!(ld->topo = eddy_topology_new(name, msg, sizeof(msg))))
        return fail(ld, "$.name", "%s", msg);
    if ((err = get_string(ld, root, "$", "description", false, "free text", &description)))
        return err;
    if (description &&
        (err = eddy_topology_set_description(ld->topo, description, msg, sizeof(msg))))
        return fail_builder(ld, err, "$.description", msg);
    if ((err = get(ld, root, "$", "source",
                   "an object such as {\"topic\": \"log-events\", \"timestamp\": {...}}", &v)) ||
        (err = load_source(ld, v)))
        return err;
    if ((v = json_object_get(root, "fields")) && (err = load_fields(ld, v)))
        return err;
    if ((err = get(ld, root, "$", "stores", "a list of stores", &v)))
        return err;
    join(kp, sizeof(kp), "$", "stores");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(ld, kp, "expected a non-empty list of stores, got %s",
                    show(v, got, sizeof(got)));
    size_t i;
    json_t *st;
    json_array_foreach(v, i, st)
    {
        char sp[PATH_MAX_LEN];
        if ((err = load_store(ld, st, join_index(sp, sizeof(sp), kp, i))))
            return err;
    }
    if ((v = json_object_get(root, "views")) && (err = load_views(ld, v)))
        return err;
    if ((err = eddy_topology_finish(ld->topo, msg, sizeof(msg))))
        return fail_builder(ld, err, NULL, msg);
    return EDDY_OK;
}

/* Loads a parsed document; takes the reference to root. */
static eddy_topology_t *load(const char *origin, json_t *root, char *errstr, size_t errstr_size)
{
    loader_t ld = {.origin = origin, .errstr = errstr, .errstr_size = errstr_size};
    eddy_err_t err = load_root(&ld, root);
    json_decref(root);
    if (err) {
        eddy_topology_destroy(ld.topo);
        return NULL;
    }
    return ld.topo;
}

static void json_syntax_error(const char *origin, const json_error_t *jerr, char *errstr,
                              size_t errstr_size)
{
    eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: line %d, column %d: invalid JSON: %s",
              origin, jerr->line, jerr->column, jerr->text);
}

eddy_topology_t *eddy_topology_load_string(const char *json, const char *origin, char *errstr,
                                           size_t errstr_size)
{
    json_error_t jerr;
    if (!origin)
        origin = "<string>";
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        json_syntax_error(origin, &jerr, errstr, errstr_size);
        return NULL;
    }
    return load(origin, root, errstr, errstr_size);
}

eddy_topology_t *eddy_topology_load_file(const char *path, char *errstr, size_t errstr_size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: cannot read: it is a directory", path);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_cannot_open_file) {
            const char *why = strrchr(jerr.text, ':');
            eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: cannot read: %s", path,
                      why ? why + 2 : jerr.text);
        } else {
            json_syntax_error(path, &jerr, errstr, errstr_size);
        }
        return NULL;
    }
    return load(path, root, errstr, errstr_size);
}
