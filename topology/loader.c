/*
 * loader.c — topology files (JSON, docs/topology.md) into builder calls.
 *
 * Every error names the file, the JSON path of the offending value and what was
 * expected, e.g.
 *   monitoring.json: $.stores[1].window.size: expected a duration such as "1m" or
 *   60000, got "abc"
 * Unknown keys are errors too, with the nearest known key suggested.
 */
#include "eddy.h"
#include "engine/util.h"
#include "topology/topology_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx_s {
    const char *origin; /* file name for messages */
    char *errstr;       /* caller's buffer */
    size_t errstr_size; /* its size */
} ctx_t;

static eddy_err_t fail(ctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static eddy_err_t fail(ctx_t *c, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return eddy_errf(EDDY_ERR_INVALID, c->errstr, c->errstr_size, "%s: %s: %s", c->origin, path,
                     msg);
}

/* Short rendering of a JSON value for messages. */
static void show(json_t *v, char *buf, size_t cap)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, cap, "%s", s ? s : "?");
    if (s && strlen(s) >= cap && cap > 4)
        strcpy(buf + cap - 4, "...");
    free(s);
}

static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return 99;
    size_t d[32][32];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* Fails on any key of obj not in `allowed` (NULL-terminated). */
static eddy_err_t check_keys(ctx_t *c, const char *path, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        const char *near = NULL;
        size_t best = 3;
        for (const char *const *a = allowed; *a; a++) {
            if (!strcmp(key, *a))
                ok = true;
            size_t d = distance(key, *a);
            if (d < best) {
                best = d;
                near = *a;
            }
        }
        if (ok)
            continue;
        char allowed_list[256] = "";
        for (const char *const *a = allowed; *a; a++)
            snprintf(allowed_list + strlen(allowed_list),
                     sizeof(allowed_list) - strlen(allowed_list), "%s%s", a == allowed ? "" : ", ",
                     *a);
        if (near)
            return fail(c, path, "unknown key \"%s\"; did you mean \"%s\"?", key, near);
        return fail(c, path, "unknown key \"%s\" (expected one of: %s)", key, allowed_list);
    }
    return EDDY_OK;
}

static eddy_err_t get_string(ctx_t *c, const char *path, json_t *obj, const char *key,
                             bool required, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return fail(c, path, "missing \"%s\"", key);
        return EDDY_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        char got[80];
        show(v, got, sizeof(got));
        return fail(c, path, "\"%s\" must be a non-empty string, got %s", key, got);
    }
    *out = json_string_value(v);
    return EDDY_OK;
}

static eddy_err_t get_duration(ctx_t *c, const char *path, json_t *obj, const char *key,
                               bool zero_ok, int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    if (!v)
        return EDDY_OK;
    char sub[300];
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    if (json_is_integer(v) && (json_integer_value(v) > 0 || (zero_ok && !json_integer_value(v)))) {
        *out = json_integer_value(v);
        return EDDY_OK;
    }
    if (json_is_string(v) && eddy_duration_parse(json_string_value(v), zero_ok, out))
        return EDDY_OK;
    char got[80];
    show(v, got, sizeof(got));
    return fail(c, sub,
                "expected a duration such as \"1m\", \"30s\", \"250ms\" or %s milliseconds as an "
                "integer, got %s",
                zero_ok ? "non-negative" : "positive", got);
}

static eddy_err_t load_source(ctx_t *c, eddy_topology_t *topo, json_t *src)
{
    static const char *const keys[] = {"topic", "topics", "format", "timestamp", NULL};
    if (!json_is_object(src))
        return fail(c, "$.source", "expected an object with \"topic\" and \"timestamp\"");
    eddy_err_t err = check_keys(c, "$.source", src, keys);
    if (err)
        return err;
    char msg[512];
    json_t *topics = json_object_get(src, "topics");
    const char *topic;
    if ((err = get_string(c, "$.source", src, "topic", !topics, &topic)))
        return err;
    if (topic && topics)
        return fail(c, "$.source", "give \"topic\" or \"topics\", not both");
    if (topic && eddy_topology_add_source_topic(topo, topic, msg, sizeof(msg)))
        return fail(c, "$.source.topic", "%s", msg);
    if (topics) {
        if (!json_is_array(topics) || json_array_size(topics) == 0)
            return fail(c, "$.source.topics", "expected a non-empty array of topic names");
        size_t i;
        json_t *t;
        json_array_foreach(topics, i, t)
        {
            char path[64];
            snprintf(path, sizeof(path), "$.source.topics[%zu]", i);
            if (!json_is_string(t))
                return fail(c, path, "expected a topic name (string)");
            if (eddy_topology_add_source_topic(topo, json_string_value(t), msg, sizeof(msg)))
                return fail(c, path, "%s", msg);
        }
    }
    const char *format;
    if ((err = get_string(c, "$.source", src, "format", false, &format)))
        return err;
    if (format && strcmp(format, "json"))
        return fail(c, "$.source.format", "only \"json\" is supported, got \"%s\"", format);
    json_t *ts = json_object_get(src, "timestamp");
    if (!ts)
        return fail(c, "$.source",
                    "missing \"timestamp\": {\"field\": \"ts\", \"format\": "
                    "\"epoch_ms\" | \"iso8601\" | \"auto\"}");
    if (!json_is_object(ts))
        return fail(c, "$.source.timestamp",
                    "expected an object {\"field\": ..., \"format\": ...}");
    static const char *const ts_keys[] = {"field", "format", NULL};
    if ((err = check_keys(c, "$.source.timestamp", ts, ts_keys)))
        return err;
    const char *field, *tsfmt;
    if ((err = get_string(c, "$.source.timestamp", ts, "field", true, &field)) ||
        (err = get_string(c, "$.source.timestamp", ts, "format", false, &tsfmt)))
        return err;
    eddy_ts_format_t f = EDDY_TS_AUTO;
    if (tsfmt && !strcmp(tsfmt, "epoch_ms"))
        f = EDDY_TS_EPOCH_MS;
    else if (tsfmt && !strcmp(tsfmt, "iso8601"))
        f = EDDY_TS_ISO8601;
    else if (tsfmt && strcmp(tsfmt, "auto"))
        return fail(c, "$.source.timestamp.format",
                    "expected \"epoch_ms\", \"iso8601\" or \"auto\", got \"%s\"", tsfmt);
    eddy_topology_set_timestamp(topo, field, f, msg, sizeof(msg));
    return EDDY_OK;
}

static eddy_err_t load_window(ctx_t *c, const char *path, eddy_store_def_t *s, json_t *w)
{
    char msg[512], sub[300];
    snprintf(sub, sizeof(sub), "%s.window", path);
    if (!w)
        return fail(c, path, "missing \"window\": {\"type\": \"tumbling\", \"size\": \"1m\"}");
    if (!json_is_object(w))
        return fail(c, sub,
                    "expected an object such as {\"type\": \"tumbling\", \"size\": "
                    "\"1m\"}");
    static const char *const keys[] = {"type", "size", "advance", "grace", "retention", NULL};
    eddy_err_t err = check_keys(c, sub, w, keys);
    if (err)
        return err;
    const char *type;
    if ((err = get_string(c, sub, w, "type", true, &type)))
        return err;
    int64_t size = 0, advance = 0, grace = 0, retention = 0;
    bool has_size, has_advance, has_grace, has_retention;
    if ((err = get_duration(c, sub, w, "size", false, &size, &has_size)) ||
        (err = get_duration(c, sub, w, "advance", false, &advance, &has_advance)) ||
        (err = get_duration(c, sub, w, "grace", true, &grace, &has_grace)) ||
        (err = get_duration(c, sub, w, "retention", false, &retention, &has_retention)))
        return err;
    if (!has_size)
        return fail(c, sub, "missing \"size\" (e.g. \"1m\")");
    char field[320];
    if (!strcmp(type, "tumbling")) {
        if (has_advance)
            return fail(c, sub,
                        "a tumbling window has no \"advance\" (use \"type\": "
                        "\"hopping\")");
        eddy_store_def_tumbling(s, size, msg, sizeof(msg));
    } else if (!strcmp(type, "hopping")) {
        if (!has_advance)
            return fail(c, sub, "a hopping window needs \"advance\" (e.g. \"1m\")");
        snprintf(field, sizeof(field), "%s.advance", sub);
        if (eddy_store_def_hopping(s, size, advance, msg, sizeof(msg)))
            return fail(c, field, "%s", msg);
    } else {
        snprintf(field, sizeof(field), "%s.type", sub);
        return fail(c, field, "expected \"tumbling\" or \"hopping\", got \"%s\"", type);
    }
    if (has_grace)
        eddy_store_def_grace(s, grace, msg, sizeof(msg));
    if (has_retention) {
        eddy_store_def_retention(s, retention, msg, sizeof(msg));
        if (retention < size + grace) {
            snprintf(field, sizeof(field), "%s.retention", sub);
            return fail(c, field,
                        "must be at least size + grace (%lld ms), or windows are deleted "
                        "before they close",
                        (long long)(size + grace));
        }
    }
    return EDDY_OK;
}

static eddy_err_t load_aggregate(ctx_t *c, const char *path, eddy_store_def_t *s, json_t *a)
{
    static const char *const keys[] = {"name", "op",        "field",       "where",
                                       "q",    "numerator", "denominator", NULL};
    if (!json_is_object(a))
        return fail(c, path,
                    "expected an object such as {\"name\": \"count\", \"op\": "
                    "\"count\"}");
    eddy_err_t err = check_keys(c, path, a, keys);
    if (err)
        return err;
    const char *name, *op;
    if ((err = get_string(c, path, a, "name", true, &name)) ||
        (err = get_string(c, path, a, "op", true, &op)))
        return err;
    char msg[512], sub[320];
    const char *field = NULL;
    static const char *const field_ops[] = {"sum",        "min",      "max", "mean",
                                            "percentile", "distinct", NULL};
    bool needs_field = false;
    for (const char *const *f = field_ops; *f; f++)
        needs_field = needs_field || !strcmp(op, *f);
    if ((err = get_string(c, path, a, "field", needs_field, &field)))
        return err;
    if (field && !needs_field)
        return fail(c, path, "op \"%s\" takes no \"field\"", op);
    if (json_object_get(a, "where") && strcmp(op, "count_if"))
        return fail(c, path, "only count_if takes \"where\"");
    if (json_object_get(a, "q") && strcmp(op, "percentile"))
        return fail(c, path, "only percentile takes \"q\"");
    if ((json_object_get(a, "numerator") || json_object_get(a, "denominator")) &&
        strcmp(op, "ratio"))
        return fail(c, path, "only ratio takes \"numerator\" and \"denominator\"");

    if (!strcmp(op, "count"))
        err = eddy_store_def_add_count(s, name, msg, sizeof(msg));
    else if (!strcmp(op, "count_if")) {
        const char *where;
        if ((err = get_string(c, path, a, "where", true, &where)))
            return err;
        err = eddy_store_def_add_count_if(s, name, where, msg, sizeof(msg));
        if (err) {
            snprintf(sub, sizeof(sub), "%s.where", path);
            return fail(c, sub, "%s", msg);
        }
    } else if (!strcmp(op, "sum"))
        err = eddy_store_def_add_sum(s, name, field, msg, sizeof(msg));
    else if (!strcmp(op, "min"))
        err = eddy_store_def_add_min(s, name, field, msg, sizeof(msg));
    else if (!strcmp(op, "max"))
        err = eddy_store_def_add_max(s, name, field, msg, sizeof(msg));
    else if (!strcmp(op, "mean"))
        err = eddy_store_def_add_mean(s, name, field, msg, sizeof(msg));
    else if (!strcmp(op, "distinct"))
        err = eddy_store_def_add_distinct(s, name, field, msg, sizeof(msg));
    else if (!strcmp(op, "percentile")) {
        json_t *q = json_object_get(a, "q");
        snprintf(sub, sizeof(sub), "%s.q", path);
        if (!q)
            return fail(c, path, "missing \"q\", the quantile in (0, 1] (0.99 for P99)");
        if (!json_is_number(q) || !(json_number_value(q) > 0 && json_number_value(q) <= 1)) {
            char got[80];
            show(q, got, sizeof(got));
            return fail(c, sub, "expected a quantile in (0, 1] such as 0.99, got %s", got);
        }
        err = eddy_store_def_add_percentile(s, name, field, json_number_value(q), msg, sizeof(msg));
    } else if (!strcmp(op, "ratio")) {
        const char *num, *den;
        if ((err = get_string(c, path, a, "numerator", true, &num)) ||
            (err = get_string(c, path, a, "denominator", true, &den)))
            return err;
        err = eddy_store_def_add_ratio(s, name, num, den, msg, sizeof(msg));
    } else {
        snprintf(sub, sizeof(sub), "%s.op", path);
        return fail(c, sub,
                    "unknown op \"%s\" (expected count, count_if, sum, min, max, mean, "
                    "percentile, distinct or ratio)",
                    op);
    }
    if (err) {
        snprintf(sub, sizeof(sub), "%s.name", path);
        return fail(c, sub, "%s", msg);
    }
    return EDDY_OK;
}

static eddy_err_t load_store(ctx_t *c, size_t index, eddy_topology_t *topo, json_t *st)
{
    char path[64], sub[128], msg[512];
    snprintf(path, sizeof(path), "$.stores[%zu]", index);
    static const char *const keys[] = {"name", "group_by", "window", "aggregates", "sink", NULL};
    if (!json_is_object(st))
        return fail(c, path, "expected a store object");
    eddy_err_t err = check_keys(c, path, st, keys);
    if (err)
        return err;
    const char *name;
    if ((err = get_string(c, path, st, "name", true, &name)))
        return err;
    eddy_store_def_t *s = eddy_topology_add_store(topo, name, msg, sizeof(msg));
    if (!s) {
        snprintf(sub, sizeof(sub), "%s.name", path);
        return fail(c, sub, "%s", msg);
    }
    json_t *g = json_object_get(st, "group_by");
    snprintf(sub, sizeof(sub), "%s.group_by", path);
    if (json_is_string(g)) {
        if (eddy_store_def_group_by(s, json_string_value(g), msg, sizeof(msg)))
            return fail(c, sub, "%s", msg);
    } else if (json_is_array(g)) {
        size_t i;
        json_t *f;
        json_array_foreach(g, i, f)
        {
            char fp[160];
            snprintf(fp, sizeof(fp), "%s[%zu]", sub, i);
            if (!json_is_string(f))
                return fail(c, fp, "expected a field name (string)");
            if (eddy_store_def_group_by(s, json_string_value(f), msg, sizeof(msg)))
                return fail(c, fp, "%s", msg);
        }
    } else if (g) {
        return fail(c, sub,
                    "expected a field name or an array of field names ([] for one "
                    "global group)");
    } else {
        return fail(c, path,
                    "missing \"group_by\" (a field, a list of fields, or [] for one "
                    "global group)");
    }
    if ((err = load_window(c, path, s, json_object_get(st, "window"))))
        return err;
    json_t *aggs = json_object_get(st, "aggregates");
    snprintf(sub, sizeof(sub), "%s.aggregates", path);
    if (!json_is_array(aggs) || json_array_size(aggs) == 0)
        return fail(c, aggs ? sub : path, "%s",
                    aggs ? "expected a non-empty array of aggregates"
                         : "missing \"aggregates\": [{\"name\": \"count\", \"op\": \"count\"}, "
                           "...]");
    size_t i;
    json_t *a;
    json_array_foreach(aggs, i, a)
    {
        char ap[160];
        snprintf(ap, sizeof(ap), "%s[%zu]", sub, i);
        if ((err = load_aggregate(c, ap, s, a)))
            return err;
    }
    json_t *sink = json_object_get(st, "sink");
    if (sink) {
        snprintf(sub, sizeof(sub), "%s.sink", path);
        static const char *const sink_keys[] = {"topic", "emit", NULL};
        if (!json_is_object(sink))
            return fail(c, sub, "expected {\"topic\": ..., \"emit\": \"on_close\" | \"updates\"}");
        if ((err = check_keys(c, sub, sink, sink_keys)))
            return err;
        const char *topic, *emit;
        if ((err = get_string(c, sub, sink, "topic", true, &topic)) ||
            (err = get_string(c, sub, sink, "emit", false, &emit)))
            return err;
        if (emit && strcmp(emit, "on_close") && strcmp(emit, "updates"))
            return fail(c, sub, "\"emit\" must be \"on_close\" or \"updates\", got \"%s\"", emit);
        if (eddy_store_def_sink(s, topic, !emit || !strcmp(emit, "on_close"), msg, sizeof(msg)))
            return fail(c, sub, "%s", msg);
    }
    return EDDY_OK;
}

static eddy_topology_t *load_json(ctx_t *c, json_t *root)
{
    static const char *const keys[] = {"name", "description", "source", "stores", NULL};
    if (!json_is_object(root)) {
        fail(c, "$", "expected a JSON object with \"source\" and \"stores\"");
        return NULL;
    }
    if (check_keys(c, "$", root, keys))
        return NULL;
    const char *name;
    if (get_string(c, "$", root, "name", false, &name))
        return NULL;
    eddy_topology_t *topo = eddy_topology_new(name ? name : c->origin);
    json_t *src = json_object_get(root, "source");
    json_t *stores = json_object_get(root, "stores");
    if (!src) {
        fail(c, "$", "missing \"source\": {\"topic\": ..., \"timestamp\": {...}}");
        goto bad;
    }
    if (load_source(c, topo, src))
        goto bad;
    if (!json_is_array(stores) || json_array_size(stores) == 0) {
        fail(c, stores ? "$.stores" : "$", "%s",
             stores ? "expected a non-empty array of stores" : "missing \"stores\": [...]");
        goto bad;
    }
    size_t i;
    json_t *st;
    json_array_foreach(stores, i, st)
    {
        if (load_store(c, i, topo, st))
            goto bad;
    }
    char msg[512];
    if (eddy_topology_finish(topo, msg, sizeof(msg))) {
        fail(c, "$", "%s", msg);
        goto bad;
    }
    return topo;
bad:
    eddy_topology_destroy(topo);
    return NULL;
}

eddy_topology_t *eddy_topology_load_string(const char *json, const char *origin, char *errstr,
                                           size_t errstr_size)
{
    ctx_t c = {origin, errstr, errstr_size};
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: line %d, column %d: %s", origin,
                  jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    eddy_topology_t *topo = load_json(&c, root);
    json_decref(root);
    return topo;
}

eddy_topology_t *eddy_topology_load_file(const char *path, char *errstr, size_t errstr_size)
{
    ctx_t c = {path, errstr, errstr_size};
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0)
            eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "%s: %s", path, jerr.text);
        else
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "%s: line %d, column %d: %s", path,
                      jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    eddy_topology_t *topo = load_json(&c, root);
    json_decref(root);
    return topo;
}
