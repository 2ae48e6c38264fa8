/*
 * topology.c — the topology builder (eddy.h), its validation, the field table
 * and group keys (topology_int.h).
 *
 * Each builder call checks its own arguments and changes nothing when it fails;
 * what depends on several calls (retention >= size + grace, ratio references, a
 * sink that is no source) is checked per store by eddy_store_def_check() and for
 * the whole by eddy_topology_finish(), which then builds the field table, binds
 * every field reference to its slot and derives each field's rule (what an event
 * must hold there) from its uses and its declaration, refusing uses that disagree. Every failure
 * also records a JSON path into the file format (topo->err_path), so the loader can say where the
 * problem is. Built on one thread; read-only, by any thread, once finished.
 */
#include "topology/topology_int.h"
#include "engine/util.h"
#include "topology/predicate.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records where the next error is, printf-style, relative to "$.". */
static void blame(eddy_topology_t *topo, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void blame(eddy_topology_t *topo, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(topo->err_path, sizeof(topo->err_path), fmt, ap);
    va_end(ap);
}

/* Builder calls on a finished topology fail: the engine may be reading it. */
static eddy_err_t check_open(eddy_topology_t *topo, char *errstr, size_t errstr_size)
{
    if (!topo->finished)
        return EDDY_OK;
    blame(topo, "%s", "");
    return eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                     "topology \"%s\" is finished and can no longer change", topo->name);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* 1..max bytes of letters, digits and the characters in `extra`. */
static bool valid_name(const char *s, const char *extra, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

/* Kafka's rule for topic names. */
static eddy_err_t check_topic(const char *topic, char *errstr, size_t errstr_size)
{
    if (!valid_name(topic, "._-", EDDY_TOPIC_NAME_MAX) || !strcmp(topic, ".") ||
        !strcmp(topic, ".."))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected a Kafka topic name (1 to %d letters, digits, '.', '_' or "
                         "'-'), got \"%.100s\"",
                         EDDY_TOPIC_NAME_MAX, topic);
    return EDDY_OK;
}

static eddy_err_t check_field(const char *field, const char *what, char *errstr, size_t errstr_size)
{
    size_t n = strlen(field);
    bool ok = n > 0 && n <= EDDY_FIELD_NAME_MAX;
    for (const char *p = field; ok && *p; p++)
        ok = !iscntrl((unsigned char)*p);
    if (!ok)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected %s: an event field name of 1 to %d bytes without control "
                         "characters, got \"%.100s\"",
                         what, EDDY_FIELD_NAME_MAX, field);
    return EDDY_OK;
}

/* --- the topology ----------------------------------------------------------------- */

eddy_topology_t *eddy_topology_new(const char *name, char *errstr, size_t errstr_size)
{
    if (!valid_name(name, "._-", EDDY_NAME_MAX)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "expected a topology name of 1 to %d letters, digits, '.', '_' or '-', got "
                  "\"%.100s\"",
                  EDDY_NAME_MAX, name);
        return NULL;
    }
    eddy_topology_t *topo = calloc(1, sizeof(*topo));
    if (!topo || !(topo->name = strdup(name))) {
        free(topo);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    topo->ts_field = -1;
    topo->ts_format = EDDY_TS_AUTO;
    topo->ts_max_future_ms = -1;
    return topo;
}

static void free_store(eddy_store_def_t *store)
{
    free(store->name);
    free(store->description);
    for (size_t i = 0; i < store->n_group; i++)
        free(store->group_names[i]);
    for (size_t i = 0; i < store->n_aggregates; i++) {
        eddy_agg_def_t *agg = &store->aggregates[i];
        free(agg->name);
        free(agg->field_name);
        free(agg->num_name);
        free(agg->den_name);
        eddy_predicate_destroy(agg->predicate);
    }
    free(store->sink_topic);
    free(store);
}

static void clear_fields(eddy_topology_t *topo)
{
    for (size_t i = 0; i < topo->n_fields; i++)
        free(topo->fields[i]);
    topo->n_fields = 0;
}

void eddy_topology_destroy(eddy_topology_t *topo)
{
    if (!topo)
        return;
    free(topo->name);
    free(topo->description);
    for (size_t i = 0; i < topo->n_sources; i++)
        free(topo->sources[i]);
    free(topo->ts_field_name);
    for (size_t i = 0; i < topo->n_stores; i++)
        free_store(topo->stores[i]);
    for (size_t i = 0; i < topo->n_views; i++)
        eddy_view_def_destroy(topo->views[i]);
    for (size_t i = 0; i < topo->n_decls; i++)
        free(topo->decls[i].name);
    clear_fields(topo);
    free(topo);
}

eddy_err_t eddy_topology_set_description(eddy_topology_t *topo, const char *text, char *errstr,
                                         size_t errstr_size)
{
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    char *copy = strdup(text);
    if (!copy)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    free(topo->description);
    topo->description = copy;
    return EDDY_OK;
}

eddy_err_t eddy_topology_add_source_topic(eddy_topology_t *topo, const char *topic, char *errstr,
                                          size_t errstr_size)
{
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "source.topic");
    if ((err = check_topic(topic, errstr, errstr_size)))
        return err;
    for (size_t i = 0; i < topo->n_sources; i++)
        if (!strcmp(topo->sources[i], topic))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "source topic \"%s\" is listed twice", topic);
    if (topo->n_sources == EDDY_TOPOLOGY_MAX_SOURCES)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d source topics",
                         EDDY_TOPOLOGY_MAX_SOURCES);
    if (!(topo->sources[topo->n_sources] = strdup(topic)))
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    topo->n_sources++;
    return EDDY_OK;
}

eddy_err_t eddy_topology_set_timestamp(eddy_topology_t *topo, const char *field,
                                       eddy_ts_format_t format, char *errstr, size_t errstr_size)
{
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "source.timestamp.field");
    if ((err = check_field(field, "the event-time field", errstr, errstr_size)))
        return err;
    if (!eddy_ts_format_name(format)) {
        blame(topo, "source.timestamp.format");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected a timestamp format (epoch_ms, iso8601 or auto), got %d",
                         (int)format);
    }
    char *copy = strdup(field);
    if (!copy)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    free(topo->ts_field_name);
    topo->ts_field_name = copy;
    topo->ts_format = format;
    return EDDY_OK;
}

eddy_err_t eddy_topology_set_max_future(eddy_topology_t *topo, int64_t max_future_ms, char *errstr,
                                        size_t errstr_size)
{
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "source.timestamp.max_future");
    if (max_future_ms < 0 || max_future_ms > EDDY_DURATION_MAX_MS) {
        char got[48] = "";
        if (max_future_ms >= 0)
            eddy_duration_format(max_future_ms, got, sizeof(got));
        else
            snprintf(got, sizeof(got), "%lld ms", (long long)max_future_ms);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected how far an event time may be ahead of the wall clock, a "
                         "non-negative duration of at most 100 years, got %s",
                         got);
    }
    topo->ts_max_future_ms = max_future_ms;
    return EDDY_OK;
}

/* --- field declarations -------------------------------------------------------------- */

/* Blames fields.NAME[.key], written as the loader writes JSON paths: NAME plain
 * when it is an identifier, else ["NAME"] (quotes and backslashes escaped). */
static void blame_decl(eddy_topology_t *topo, const char *name, const char *key)
{
    char path[sizeof(topo->err_path)];
    bool plain = isalpha((unsigned char)*name) || *name == '_';
    for (const char *p = name; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    size_t n = 0;
    if (plain) {
        n = (size_t)snprintf(path, sizeof(path), "fields.%.100s", name);
    } else {
        n = (size_t)snprintf(path, sizeof(path), "fields[\"");
        for (const char *p = name; *p && n + 4 < sizeof(path) && p - name < 100; p++) {
            if (*p == '"' || *p == '\\')
                path[n++] = '\\';
            path[n++] = *p;
        }
        n += (size_t)snprintf(path + n, sizeof(path) - n, "\"]");
    }
    if (key && n < sizeof(path))
        snprintf(path + n, sizeof(path) - n, ".%s", key);
    blame(topo, "%s", path);
}

eddy_err_t eddy_topology_declare_field(eddy_topology_t *topo, const eddy_field_spec_t *spec,
                                       char *errstr, size_t errstr_size)
{
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "fields");
    if ((err = check_field(spec->name, "a declared field", errstr, errstr_size)))
        return err;
    blame_decl(topo, spec->name, NULL);
    for (size_t i = 0; i < topo->n_decls; i++)
        if (!strcmp(topo->decls[i].name, spec->name))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "field \"%.100s\" is declared twice", spec->name);
    if (topo->n_decls == EDDY_TOPOLOGY_MAX_FIELDS)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d declared fields",
                         EDDY_TOPOLOGY_MAX_FIELDS);
    if (spec->type < EDDY_FIELD_NUMBER || spec->type > EDDY_FIELD_BOOL) {
        blame_decl(topo, spec->name, "type");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected a type: number, integer, string or boolean, got %d",
                         (int)spec->type);
    }
    bool number = spec->type == EDDY_FIELD_NUMBER || spec->type == EDDY_FIELD_INTEGER;
    const char *type = eddy_field_type_name(spec->type);
    if (spec->coerce && !number) {
        blame_decl(topo, spec->name, "coerce");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "coerce reads a string such as \"503\" as a number: it is for fields "
                         "of type number or integer, not %s",
                         type);
    }
    static const char *const bound_key[2] = {"min", "max"};
    const bool has[2] = {spec->has_min, spec->has_max};
    const double bound[2] = {spec->min, spec->max};
    for (int b = 0; b < 2; b++) {
        if (!has[b])
            continue;
        blame_decl(topo, spec->name, bound_key[b]);
        if (!number)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "a range (%s) is for fields of type number or integer, not %s",
                             bound_key[b], type);
        if (!isfinite(bound[b]))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "expected a finite number, got %g", bound[b]);
    }
    if (spec->has_min && spec->has_max && spec->min > spec->max)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected max >= min (%.17g), got %.17g", spec->min, spec->max);
    eddy_field_decl_t *d = &topo->decls[topo->n_decls];
    if (!(d->name = strdup(spec->name)))
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    d->type = spec->type;
    d->coerce = spec->coerce;
    d->has_min = spec->has_min;
    d->has_max = spec->has_max;
    d->min = spec->has_min ? spec->min : -INFINITY;
    d->max = spec->has_max ? spec->max : INFINITY;
    topo->n_decls++;
    blame(topo, "%s", "");
    return EDDY_OK;
}

/* --- stores ------------------------------------------------------------------------- */

eddy_store_def_t *eddy_topology_add_store(eddy_topology_t *topo, const char *name, char *errstr,
                                          size_t errstr_size)
{
    if (check_open(topo, errstr, errstr_size))
        return NULL;
    blame(topo, "stores[%zu].name", topo->n_stores);
    if (!valid_name(name, "_-", EDDY_NAME_MAX)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "expected a store name of 1 to %d letters, digits, '_' or '-' (it names a "
                  "state store, a changelog topic and a URL), got \"%.100s\"",
                  EDDY_NAME_MAX, name);
        return NULL;
    }
    for (size_t i = 0; i < topo->n_stores; i++)
        if (!strcmp(topo->stores[i]->name, name)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "duplicate store name \"%s\" (already used by stores[%zu])", name, i);
            return NULL;
        }
    if (topo->n_stores == EDDY_TOPOLOGY_MAX_STORES) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d stores",
                  EDDY_TOPOLOGY_MAX_STORES);
        return NULL;
    }
    eddy_store_def_t *store = calloc(1, sizeof(*store));
    if (!store || !(store->name = strdup(name))) {
        free(store);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    store->topo = topo;
    store->index = topo->n_stores;
    store->sink_emit = EDDY_EMIT_ON_CLOSE;
    topo->stores[topo->n_stores++] = store;
    return store;
}

eddy_err_t eddy_store_def_set_description(eddy_store_def_t *store, const char *text, char *errstr,
                                          size_t errstr_size)
{
    eddy_err_t err = check_open(store->topo, errstr, errstr_size);
    if (err)
        return err;
    char *copy = strdup(text);
    if (!copy)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    free(store->description);
    store->description = copy;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_group_by(eddy_store_def_t *store, const char *field, char *errstr,
                                   size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].group_by[%zu]", store->index, store->n_group);
    if ((err = check_field(field, "a group_by field", errstr, errstr_size)))
        return err;
    for (size_t i = 0; i < store->n_group; i++)
        if (!strcmp(store->group_names[i], field))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "group_by field \"%s\" is listed twice", field);
    if (store->n_group == EDDY_MAX_GROUP_FIELDS)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d group_by fields",
                         EDDY_MAX_GROUP_FIELDS);
    if (!(store->group_names[store->n_group] = strdup(field)))
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    store->group_fields[store->n_group++] = -1;
    return EDDY_OK;
}

/* A window duration in (min, EDDY_DURATION_MAX_MS]; `what` names it. */
static eddy_err_t check_duration(int64_t ms, int64_t min, const char *what, char *errstr,
                                 size_t errstr_size)
{
    if (ms >= min && ms <= EDDY_DURATION_MAX_MS)
        return EDDY_OK;
    char got[48] = "";
    if (ms >= 0)
        eddy_duration_format(ms, got, sizeof(got));
    else
        snprintf(got, sizeof(got), "%lld ms", (long long)ms);
    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                     "expected %s %s of at most 100 years, "
                     "got %s",
                     min > 0 ? "a positive" : "a non-negative", what, got);
}

eddy_err_t eddy_store_def_tumbling(eddy_store_def_t *store, int64_t size_ms, char *errstr,
                                   size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].window.size", store->index);
    if ((err = check_duration(size_ms, 1, "window size", errstr, errstr_size)))
        return err;
    store->window.type = EDDY_WINDOW_TUMBLING;
    store->window.size_ms = size_ms;
    store->window.advance_ms = size_ms;
    store->has_window = true;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_hopping(eddy_store_def_t *store, int64_t size_ms, int64_t advance_ms,
                                  char *errstr, size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].window.size", store->index);
    if ((err = check_duration(size_ms, 1, "window size", errstr, errstr_size)))
        return err;
    blame(topo, "stores[%zu].window.advance", store->index);
    if ((err = check_duration(advance_ms, 1, "advance", errstr, errstr_size)))
        return err;
    char size[48], advance[48];
    eddy_duration_format(size_ms, size, sizeof(size));
    eddy_duration_format(advance_ms, advance, sizeof(advance));
    if (advance_ms > size_ms)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "the advance (%s) must not exceed the window size (%s)", advance, size);
    eddy_window_spec_t w = {
        .type = EDDY_WINDOW_HOPPING, .size_ms = size_ms, .advance_ms = advance_ms};
    if (eddy_window_max_per_event(&w) > EDDY_WINDOWS_PER_EVENT_MAX)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "a %s window advancing by %s puts each event in %zu windows; at most "
                         "%d are allowed (use a larger advance)",
                         size, advance, eddy_window_max_per_event(&w), EDDY_WINDOWS_PER_EVENT_MAX);
    store->window.type = EDDY_WINDOW_HOPPING;
    store->window.size_ms = size_ms;
    store->window.advance_ms = advance_ms;
    store->has_window = true;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_grace(eddy_store_def_t *store, int64_t grace_ms, char *errstr,
                                size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].window.grace", store->index);
    if ((err = check_duration(grace_ms, 0, "grace period", errstr, errstr_size)))
        return err;
    store->window.grace_ms = grace_ms;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_retention(eddy_store_def_t *store, int64_t retention_ms, char *errstr,
                                    size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].window.retention", store->index);
    if ((err = check_duration(retention_ms, 1, "retention", errstr, errstr_size)))
        return err;
    store->window.retention_ms = retention_ms;
    store->has_retention = true;
    return EDDY_OK;
}

/* --- aggregates ------------------------------------------------------------------------ */

/* Checks the name and the field of a new aggregate; blames the store's next
 * aggregate. Returns the slot to fill (not yet counted) or NULL. */
static eddy_agg_def_t *check_agg(eddy_store_def_t *store, const char *name, const char *field,
                                 char *errstr, size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    if (check_open(topo, errstr, errstr_size))
        return NULL;
    size_t i = store->n_aggregates;
    blame(topo, "stores[%zu].aggregates[%zu].name", store->index, i);
    if (!valid_name(name, "_-", EDDY_NAME_MAX)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "expected an aggregate name of 1 to %d letters, digits, '_' or '-', got "
                  "\"%.100s\"",
                  EDDY_NAME_MAX, name);
        return NULL;
    }
    if (!strcmp(name, "key") || !strcmp(name, "start") || !strcmp(name, "end")) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "\"%s\" is reserved: every window result already has key, start and end", name);
        return NULL;
    }
    if (!strcmp(name, "degraded")) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "\"degraded\" is reserved: a window result lists there the percentiles that "
                  "lost accuracy");
        return NULL;
    }
    int dup = eddy_store_def_aggregate_index(store, name);
    if (dup >= 0) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "duplicate aggregate name \"%s\" in store \"%s\" (already used by "
                  "aggregates[%d])",
                  name, store->name, dup);
        return NULL;
    }
    if (i == EDDY_MAX_AGGREGATES) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d aggregates per store",
                  EDDY_MAX_AGGREGATES);
        return NULL;
    }
    if (field) {
        blame(topo, "stores[%zu].aggregates[%zu].field", store->index, i);
        if (check_field(field, "a field", errstr, errstr_size))
            return NULL;
    }
    eddy_agg_def_t *agg = &store->aggregates[i];
    memset(agg, 0, sizeof(*agg));
    agg->field = agg->numerator = agg->denominator = -1;
    return agg;
}

/* Fills and counts the aggregate check_agg returned; takes ownership of pred. */
static eddy_err_t commit_agg(eddy_store_def_t *store, eddy_agg_def_t *agg, eddy_agg_op_t op,
                             const char *name, const char *field, const char *num, const char *den,
                             eddy_predicate_t *pred, char *errstr, size_t errstr_size)
{
    agg->op = op;
    agg->name = strdup(name);
    agg->field_name = dup_or_null(field);
    agg->num_name = dup_or_null(num);
    agg->den_name = dup_or_null(den);
    agg->predicate = pred;
    if (!agg->name || (field && !agg->field_name) || (num && !agg->num_name) ||
        (den && !agg->den_name)) {
        free(agg->name);
        free(agg->field_name);
        free(agg->num_name);
        free(agg->den_name);
        eddy_predicate_destroy(pred);
        memset(agg, 0, sizeof(*agg));
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    store->n_aggregates++;
    return EDDY_OK;
}

static eddy_err_t add_field_agg(eddy_store_def_t *store, eddy_agg_op_t op, const char *name,
                                const char *field, char *errstr, size_t errstr_size)
{
    eddy_agg_def_t *agg = check_agg(store, name, field, errstr, errstr_size);
    if (!agg)
        return store->topo->finished ? EDDY_ERR_STATE : EDDY_ERR_INVALID;
    return commit_agg(store, agg, op, name, field, NULL, NULL, NULL, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_count(eddy_store_def_t *store, const char *name, char *errstr,
                                    size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_COUNT, name, NULL, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_count_if(eddy_store_def_t *store, const char *name, const char *where,
                                       char *errstr, size_t errstr_size)
{
    eddy_agg_def_t *agg = check_agg(store, name, NULL, errstr, errstr_size);
    if (!agg)
        return store->topo->finished ? EDDY_ERR_STATE : EDDY_ERR_INVALID;
    blame(store->topo, "stores[%zu].aggregates[%zu].where", store->index, store->n_aggregates);
    eddy_predicate_t *pred = eddy_predicate_parse(where, errstr, errstr_size);
    if (!pred)
        return EDDY_ERR_INVALID;
    for (size_t i = 0; i < eddy_predicate_field_count(pred); i++)
        if (check_field(eddy_predicate_field_name(pred, i), "a field", errstr, errstr_size)) {
            eddy_predicate_destroy(pred);
            return EDDY_ERR_INVALID;
        }
    return commit_agg(store, agg, EDDY_AGG_COUNT_IF, name, NULL, NULL, NULL, pred, errstr,
                      errstr_size);
}

eddy_err_t eddy_store_def_add_sum(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_SUM, name, field, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_min(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_MIN, name, field, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_max(eddy_store_def_t *store, const char *name, const char *field,
                                  char *errstr, size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_MAX, name, field, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_mean(eddy_store_def_t *store, const char *name, const char *field,
                                   char *errstr, size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_MEAN, name, field, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_distinct(eddy_store_def_t *store, const char *name, const char *field,
                                       char *errstr, size_t errstr_size)
{
    return add_field_agg(store, EDDY_AGG_DISTINCT, name, field, errstr, errstr_size);
}

eddy_err_t eddy_store_def_add_percentile(eddy_store_def_t *store, const char *name,
                                         const char *field, double q, char *errstr,
                                         size_t errstr_size)
{
    eddy_agg_def_t *agg = check_agg(store, name, field, errstr, errstr_size);
    if (!agg)
        return store->topo->finished ? EDDY_ERR_STATE : EDDY_ERR_INVALID;
    if (!(q > 0 && q <= 1)) {
        blame(store->topo, "stores[%zu].aggregates[%zu].q", store->index, store->n_aggregates);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected a quantile q in (0, 1] such as 0.99 for P99, got %g", q);
    }
    eddy_err_t err = commit_agg(store, agg, EDDY_AGG_PERCENTILE, name, field, NULL, NULL, NULL,
                                errstr, errstr_size);
    if (!err)
        agg->q = q;
    return err;
}

eddy_err_t eddy_store_def_add_ratio(eddy_store_def_t *store, const char *name,
                                    const char *numerator, const char *denominator, char *errstr,
                                    size_t errstr_size)
{
    eddy_agg_def_t *agg = check_agg(store, name, NULL, errstr, errstr_size);
    if (!agg)
        return store->topo->finished ? EDDY_ERR_STATE : EDDY_ERR_INVALID;
    const char *const refs[2] = {numerator, denominator};
    static const char *const keys[2] = {"numerator", "denominator"};
    for (int r = 0; r < 2; r++)
        if (!*refs[r]) {
            blame(store->topo, "stores[%zu].aggregates[%zu].%s", store->index, store->n_aggregates,
                  keys[r]);
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "expected the name of a count, count_if or sum aggregate of store "
                             "\"%s\", got \"\"",
                             store->name);
        }
    return commit_agg(store, agg, EDDY_AGG_RATIO, name, NULL, numerator, denominator, NULL, errstr,
                      errstr_size);
}

eddy_err_t eddy_store_def_sink(eddy_store_def_t *store, const char *topic, eddy_emit_t emit,
                               char *errstr, size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_err_t err = check_open(topo, errstr, errstr_size);
    if (err)
        return err;
    blame(topo, "stores[%zu].sink.topic", store->index);
    if ((err = check_topic(topic, errstr, errstr_size)))
        return err;
    if (!eddy_emit_name(emit)) {
        blame(topo, "stores[%zu].sink.emit", store->index);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected an emit mode (on_close or updates), got %d", (int)emit);
    }
    char *copy = strdup(topic);
    if (!copy)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    free(store->sink_topic);
    store->sink_topic = copy;
    store->sink_emit = emit;
    return EDDY_OK;
}

/* --- checks and the field table ---------------------------------------------------------- */

int eddy_store_def_aggregate_index(const eddy_store_def_t *store, const char *name)
{
    for (size_t i = 0; i < store->n_aggregates; i++)
        if (!strcmp(store->aggregates[i].name, name))
            return (int)i;
    return -1;
}

/* Resolves one side of a ratio; blames it on failure. */
static eddy_err_t resolve_ratio_ref(eddy_store_def_t *store, size_t a, const char *key,
                                    const char *ref, int *out, char *errstr, size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    blame(topo, "stores[%zu].aggregates[%zu].%s", store->index, a, key);
    int i = eddy_store_def_aggregate_index(store, ref);
    if (i < 0) {
        const char *near = NULL;
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < store->n_aggregates; k++) {
            size_t d = eddy_topology_hint_distance(ref, store->aggregates[k].name);
            if (d < best) {
                best = d;
                near = store->aggregates[k].name;
            }
        }
        char hint[EDDY_NAME_MAX + 32] = "";
        if (near)
            snprintf(hint, sizeof(hint), "; did you mean \"%s\"?", near);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no aggregate named \"%.100s\" in store \"%s\"%s", ref, store->name, hint);
    }
    eddy_agg_op_t op = store->aggregates[i].op;
    if (op != EDDY_AGG_COUNT && op != EDDY_AGG_COUNT_IF && op != EDDY_AGG_SUM)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "a ratio divides count, count_if or sum aggregates, but \"%s\" is a %s",
                         ref, eddy_agg_op_name(op));
    *out = i;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_check(eddy_store_def_t *store, char *errstr, size_t errstr_size)
{
    eddy_topology_t *topo = store->topo;
    eddy_window_spec_t *w = &store->window;
    if (!store->has_window) {
        blame(topo, "stores[%zu].window", store->index);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store \"%s\" has no window",
                         store->name);
    }
    if (store->n_aggregates == 0) {
        blame(topo, "stores[%zu].aggregates", store->index);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store \"%s\" has no aggregate",
                         store->name);
    }
    if (store->has_retention && w->retention_ms < w->size_ms + w->grace_ms) {
        char retention[48], size[48], grace[48], sum[48];
        eddy_duration_format(w->retention_ms, retention, sizeof(retention));
        eddy_duration_format(w->size_ms, size, sizeof(size));
        eddy_duration_format(w->grace_ms, grace, sizeof(grace));
        eddy_duration_format(w->size_ms + w->grace_ms, sum, sizeof(sum));
        blame(topo, "stores[%zu].window.retention", store->index);
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "expected a retention of at least size + grace = %s + %s = %s (or "
                         "windows are deleted before they close), got %s",
                         size, grace, sum, retention);
    }
    if (!store->has_retention)
        w->retention_ms = EDDY_RETENTION_DEFAULT_MS > w->size_ms + w->grace_ms
                              ? EDDY_RETENTION_DEFAULT_MS
                              : w->size_ms + w->grace_ms;
    for (size_t a = 0; a < store->n_aggregates; a++) {
        eddy_agg_def_t *agg = &store->aggregates[a];
        if (agg->op != EDDY_AGG_RATIO)
            continue;
        eddy_err_t err;
        if ((err = resolve_ratio_ref(store, a, "numerator", agg->num_name, &agg->numerator, errstr,
                                     errstr_size)) ||
            (err = resolve_ratio_ref(store, a, "denominator", agg->den_name, &agg->denominator,
                                     errstr, errstr_size)))
            return err;
    }
    if (store->sink_topic)
        for (size_t i = 0; i < topo->n_sources; i++)
            if (!strcmp(topo->sources[i], store->sink_topic)) {
                blame(topo, "stores[%zu].sink.topic", store->index);
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                 "the sink topic \"%s\" is also a source topic; the store "
                                 "would read its own output",
                                 store->sink_topic);
            }
    blame(topo, "%s", "");
    return EDDY_OK;
}

/* What a use says a field's value is: nothing, or one of these. A field is only
 * ever one of them; two different ones on one field are an error. */
typedef enum use_kind_e {
    KIND_NONE = 0, /* any scalar (a group key, distinct) */
    KIND_NUMBER,   /* read as a number, compared with one, an epoch_ms timestamp */
    KIND_STRING,   /* compared with a string, an iso8601 timestamp */
    KIND_BOOL,     /* compared with true or false */
    KIND_TIME,     /* an "auto" timestamp: a number or a string, decided per event */
} use_kind_t;

/* The first use of each slot that gave it a kind, for messages. */
typedef struct field_kind_s {
    use_kind_t kind; /* KIND_NONE until a use gives one */
    char what[64];   /* that use, as a message says it ("compared with a number") */
    char path[sizeof(((eddy_topology_t *)0)->err_path)]; /* where, as blamed */
} field_kind_t;

/* The slot of `name`, added if new; `use` accumulates. -1 if the table is full. */
static int field_slot(eddy_topology_t *topo, const char *name, unsigned use)
{
    int i = eddy_topology_field_index(topo, name);
    if (i < 0) {
        if (topo->n_fields == EDDY_TOPOLOGY_MAX_FIELDS ||
            !(topo->fields[topo->n_fields] = strdup(name)))
            return -1;
        i = (int)topo->n_fields++;
        topo->field_uses[i] = 0;
    }
    topo->field_uses[i] |= use;
    return i;
}

/* Records that the use being blamed makes slot i a `kind` ("what" says how); fails
 * if an earlier use made it another. */
static eddy_err_t note_kind(eddy_topology_t *topo, field_kind_t *kinds, int i, use_kind_t kind,
                            const char *what, char *errstr, size_t errstr_size)
{
    field_kind_t *k = &kinds[i];
    if (kind == KIND_NONE || k->kind == kind)
        return EDDY_OK;
    if (k->kind == KIND_NONE) {
        k->kind = kind;
        snprintf(k->what, sizeof(k->what), "%s", what);
        snprintf(k->path, sizeof(k->path), "%s", topo->err_path);
        return EDDY_OK;
    }
    const char *hint = k->kind == KIND_TIME || kind == KIND_TIME
                           ? "give the timestamp the format it has, epoch_ms or iso8601"
                           : "no value is both, so one of them could never hold";
    if (!strcmp(k->path, topo->err_path)) /* one predicate compares it with both */
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "field \"%.100s\" is %s and %s; %s",
                         topo->fields[i], k->what, what, hint);
    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                     "field \"%.100s\" is %s here but %s at $.%s; %s", topo->fields[i], what,
                     k->what, k->path, hint);
}

/* Builds the field table and binds every reference; fails if it overflows or two
 * uses of a field disagree on its type (the path of the reference at fault is
 * blamed). Fills kinds[slot]. */
static eddy_err_t build_field_table(eddy_topology_t *topo, field_kind_t *kinds, char *errstr,
                                    size_t errstr_size)
{
    static const char full[] = "the topology reads more than %d distinct event fields";
    clear_fields(topo);
    memset(kinds, 0, EDDY_TOPOLOGY_MAX_FIELDS * sizeof(*kinds));
    eddy_err_t err;
    blame(topo, "source.timestamp.field");
    if ((topo->ts_field = field_slot(topo, topo->ts_field_name, EDDY_FIELD_USE_TIMESTAMP)) < 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, full, EDDY_TOPOLOGY_MAX_FIELDS);
    static const use_kind_t ts_kind[] = {[EDDY_TS_EPOCH_MS] = KIND_NUMBER,
                                         [EDDY_TS_ISO8601] = KIND_STRING,
                                         [EDDY_TS_AUTO] = KIND_TIME};
    static const char *const ts_what[] = {
        [EDDY_TS_EPOCH_MS] = "the timestamp, a number (format epoch_ms)",
        [EDDY_TS_ISO8601] = "the timestamp, a string (format iso8601)",
        [EDDY_TS_AUTO] = "the timestamp, a number or a string (format auto)"};
    blame(topo, "source.timestamp");
    note_kind(topo, kinds, topo->ts_field, ts_kind[topo->ts_format], ts_what[topo->ts_format],
              errstr, errstr_size); /* the first kind of its slot: cannot fail */
    for (size_t s = 0; s < topo->n_stores; s++) {
        eddy_store_def_t *store = topo->stores[s];
        for (size_t g = 0; g < store->n_group; g++) {
            blame(topo, "stores[%zu].group_by[%zu]", s, g);
            if ((store->group_fields[g] =
                     field_slot(topo, store->group_names[g], EDDY_FIELD_USE_GROUP_BY)) < 0)
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, full,
                                 EDDY_TOPOLOGY_MAX_FIELDS);
        }
        for (size_t a = 0; a < store->n_aggregates; a++) {
            eddy_agg_def_t *agg = &store->aggregates[a];
            if (agg->field_name) {
                bool distinct = agg->op == EDDY_AGG_DISTINCT;
                blame(topo, "stores[%zu].aggregates[%zu].field", s, a);
                agg->field =
                    field_slot(topo, agg->field_name,
                               distinct ? EDDY_FIELD_USE_DISTINCT : EDDY_FIELD_USE_NUMERIC);
                if (agg->field < 0)
                    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, full,
                                     EDDY_TOPOLOGY_MAX_FIELDS);
                char what[64];
                snprintf(what, sizeof(what), "read as a number (by a %s)",
                         eddy_agg_op_name(agg->op));
                if (!distinct && (err = note_kind(topo, kinds, agg->field, KIND_NUMBER, what,
                                                  errstr, errstr_size)))
                    return err;
            }
            for (size_t f = 0; agg->predicate && f < eddy_predicate_field_count(agg->predicate);
                 f++) {
                blame(topo, "stores[%zu].aggregates[%zu].where", s, a);
                int slot = field_slot(topo, eddy_predicate_field_name(agg->predicate, f),
                                      EDDY_FIELD_USE_PREDICATE);
                if (slot < 0)
                    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, full,
                                     EDDY_TOPOLOGY_MAX_FIELDS);
                eddy_predicate_bind(agg->predicate, f, slot);
                unsigned lits = eddy_predicate_field_literals(agg->predicate, f);
                if ((lits & EDDY_PREDICATE_LIT_NUMBER) &&
                    (err = note_kind(topo, kinds, slot, KIND_NUMBER, "compared with a number",
                                     errstr, errstr_size)))
                    return err;
                if ((lits & EDDY_PREDICATE_LIT_STRING) &&
                    (err = note_kind(topo, kinds, slot, KIND_STRING, "compared with a string",
                                     errstr, errstr_size)))
                    return err;
                if ((lits & EDDY_PREDICATE_LIT_BOOL) &&
                    (err = note_kind(topo, kinds, slot, KIND_BOOL, "compared with true or false",
                                     errstr, errstr_size)))
                    return err;
            }
        }
    }
    return EDDY_OK;
}

/* The nearest name in the field table to `name`, for "did you mean"; NULL if none
 * is close. */
static const char *nearest_field(const eddy_topology_t *topo, const char *name)
{
    const char *near = NULL;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < topo->n_fields; i++) {
        size_t d = eddy_topology_hint_distance(name, topo->fields[i]);
        if (d < best) {
            best = d;
            near = topo->fields[i];
        }
    }
    return near;
}

/* Checks the declarations against the field table and the uses, then sets every
 * slot's rule: its type from its kind or its declaration, required unless only
 * predicates read it, the declared coercion and range. */
static eddy_err_t build_field_rules(eddy_topology_t *topo, const field_kind_t *kinds, char *errstr,
                                    size_t errstr_size)
{
    static const eddy_field_type_t kind_type[] = {[KIND_NONE] = EDDY_FIELD_ANY,
                                                  [KIND_NUMBER] = EDDY_FIELD_NUMBER,
                                                  [KIND_STRING] = EDDY_FIELD_STRING,
                                                  [KIND_BOOL] = EDDY_FIELD_BOOL,
                                                  [KIND_TIME] = EDDY_FIELD_ANY};
    for (size_t i = 0; i < topo->n_fields; i++) {
        eddy_field_rule_t *r = &topo->field_rules[i];
        r->type = kind_type[kinds[i].kind];
        r->required =
            (topo->field_uses[i] & (EDDY_FIELD_USE_TIMESTAMP | EDDY_FIELD_USE_GROUP_BY |
                                    EDDY_FIELD_USE_NUMERIC | EDDY_FIELD_USE_DISTINCT)) != 0;
        r->coerce = false;
        r->min = -INFINITY;
        r->max = INFINITY;
    }
    for (size_t d = 0; d < topo->n_decls; d++) {
        const eddy_field_decl_t *decl = &topo->decls[d];
        int i = eddy_topology_field_index(topo, decl->name);
        blame_decl(topo, decl->name, NULL);
        if (i < 0) {
            const char *near = nearest_field(topo, decl->name);
            char hint[EDDY_FIELD_NAME_MAX + 32] = "";
            if (near)
                snprintf(hint, sizeof(hint), "; did you mean \"%.100s\"?", near);
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "field \"%.100s\" is declared but the topology does not read it "
                             "(a declaration of a field no store reads would check nothing)%s",
                             decl->name, hint);
        }
        if (i == topo->ts_field)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "\"%.100s\" is the timestamp field: its format and max_future are "
                             "declared at source.timestamp",
                             decl->name);
        use_kind_t kind = kinds[i].kind;
        bool number = decl->type == EDDY_FIELD_NUMBER || decl->type == EDDY_FIELD_INTEGER;
        bool agrees = kind == KIND_NONE || (kind == KIND_NUMBER && number) ||
                      (kind == KIND_STRING && decl->type == EDDY_FIELD_STRING) ||
                      (kind == KIND_BOOL && decl->type == EDDY_FIELD_BOOL);
        if (!agrees) {
            blame_decl(topo, decl->name, "type");
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "declared %s, but the field is %s at $.%s",
                             eddy_field_type_name(decl->type), kinds[i].what, kinds[i].path);
        }
        eddy_field_rule_t *r = &topo->field_rules[i];
        r->type = decl->type;
        r->coerce = decl->coerce;
        r->min = decl->min;
        r->max = decl->max;
    }
    return EDDY_OK;
}

eddy_err_t eddy_topology_finish(eddy_topology_t *topo, char *errstr, size_t errstr_size)
{
    if (topo->finished)
        return EDDY_OK;
    if (topo->n_sources == 0) {
        blame(topo, "source");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no source topic: a topology reads at least one topic");
    }
    if (!topo->ts_field_name) {
        blame(topo, "source.timestamp");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no timestamp field: every event needs an event time");
    }
    if (topo->n_stores == 0) {
        blame(topo, "stores");
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no store: a topology computes at least one");
    }
    for (size_t s = 0; s < topo->n_stores; s++) {
        eddy_err_t err = eddy_store_def_check(topo->stores[s], errstr, errstr_size);
        if (err)
            return err;
    }
    field_kind_t kinds[EDDY_TOPOLOGY_MAX_FIELDS];
    eddy_err_t err = build_field_table(topo, kinds, errstr, errstr_size);
    if (!err)
        err = build_field_rules(topo, kinds, errstr, errstr_size);
    if (err) {
        clear_fields(topo);
        return err;
    }
    for (size_t v = 0; v < topo->n_views; v++) {
        err = eddy_view_def_check(topo, v, errstr, errstr_size);
        if (err) {
            clear_fields(topo);
            return err;
        }
    }
    blame(topo, "%s", "");
    topo->finished = true;
    return EDDY_OK;
}

/* --- reading ------------------------------------------------------------------------------ */

const char *eddy_topology_error_path(const eddy_topology_t *topo)
{
    return topo->err_path;
}

const char *eddy_topology_name(const eddy_topology_t *topo)
{
    return topo->name;
}

size_t eddy_topology_source_count(const eddy_topology_t *topo)
{
    return topo->n_sources;
}

const char *eddy_topology_source_topic(const eddy_topology_t *topo, size_t i)
{
    return topo->sources[i];
}

size_t eddy_topology_store_count(const eddy_topology_t *topo)
{
    return topo->n_stores;
}

const eddy_store_def_t *eddy_topology_store(const eddy_topology_t *topo, size_t i)
{
    return topo->stores[i];
}

const eddy_store_def_t *eddy_topology_store_by_name(const eddy_topology_t *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_stores; i++)
        if (!strcmp(topo->stores[i]->name, name))
            return topo->stores[i];
    return NULL;
}

const char *eddy_store_def_name(const eddy_store_def_t *store)
{
    return store->name;
}

size_t eddy_topology_field_count(const eddy_topology_t *topo)
{
    return topo->n_fields;
}

const char *eddy_topology_field_name(const eddy_topology_t *topo, size_t i)
{
    return topo->fields[i];
}

int eddy_topology_field_index(const eddy_topology_t *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_fields; i++)
        if (!strcmp(topo->fields[i], name))
            return (int)i;
    return -1;
}

int eddy_topology_timestamp_field(const eddy_topology_t *topo)
{
    return topo->ts_field;
}

eddy_ts_format_t eddy_topology_timestamp_format(const eddy_topology_t *topo)
{
    return topo->ts_format;
}

const eddy_field_rule_t *eddy_topology_field_rule(const eddy_topology_t *topo, size_t i)
{
    assert(topo->finished && i < topo->n_fields);
    return &topo->field_rules[i];
}

int64_t eddy_topology_max_future(const eddy_topology_t *topo)
{
    return topo->ts_max_future_ms;
}

/* --- group keys ----------------------------------------------------------------------------- */

/* A number in the shortest text that reads back as the same double; integers
 * without a fraction or exponent while they are exact (|v| < 2^53). */
static size_t format_number(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        /* Integers (HTTP statuses, ids) are the common group key: by hand, as
         * snprintf would ("%lld"), without its cost on every event. */
        long long i = (long long)v;
        unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
        char tmp[24];
        size_t n = 0;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (i < 0)
            tmp[n++] = '-';
        if (n + 1 > cap)
            return (size_t)snprintf(buf, cap, "%lld", i);
        for (size_t k = 0; k < n; k++)
            buf[k] = tmp[n - 1 - k];
        buf[n] = '\0';
        return n;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return strlen(buf);
}

bool eddy_store_group_key(const eddy_store_def_t *store, const eddy_value_t *values, char *key,
                          size_t cap, size_t *key_len)
{
    size_t n = 0;
    bool escape = store->n_group > 1;
    for (size_t g = 0; g < store->n_group; g++) {
        const eddy_value_t *v = &values[store->group_fields[g]];
        char num[32];
        const char *text;
        size_t len;
        switch (v->type) {
        case EDDY_VALUE_STRING:
            text = v->str;
            len = v->len;
            break;
        case EDDY_VALUE_NUMBER:
            len = format_number(v->num, num, sizeof(num));
            text = num;
            break;
        case EDDY_VALUE_BOOL:
            text = v->num != 0 ? "true" : "false";
            len = strlen(text);
            break;
        default:
            *key_len = 0;
            return false;
        }
        if (g > 0) {
            if (n + 1 < cap)
                key[n] = '|';
            n++;
        }
        for (size_t i = 0; i < len; i++) {
            if (escape && (text[i] == '|' || text[i] == '\\')) {
                if (n + 1 < cap)
                    key[n] = '\\';
                n++;
            }
            if (n + 1 < cap)
                key[n] = text[i];
            n++;
        }
    }
    *key_len = n;
    if (n + 1 > cap)
        return false;
    key[n] = '\0';
    return true;
}

/* --- names ------------------------------------------------------------------------------------ */

const char *eddy_ts_format_name(eddy_ts_format_t format)
{
    static const char *const names[] = {"epoch_ms", "iso8601", "auto"};
    return (unsigned)format < 3 ? names[format] : NULL;
}

const char *eddy_emit_name(eddy_emit_t emit)
{
    static const char *const names[] = {"on_close", "updates"};
    return (unsigned)emit < 2 ? names[emit] : NULL;
}

const char *eddy_agg_op_name(eddy_agg_op_t op)
{
    static const char *const names[EDDY_AGG_OP_COUNT] = {
        "count", "count_if", "sum", "min", "max", "mean", "percentile", "distinct", "ratio"};
    return (unsigned)op < EDDY_AGG_OP_COUNT ? names[op] : NULL;
}

const char *eddy_window_type_name(eddy_window_type_t type)
{
    static const char *const names[] = {"tumbling", "hopping"};
    return (unsigned)type < 2 ? names[type] : NULL;
}

const char *eddy_field_type_name(eddy_field_type_t type)
{
    static const char *const names[] = {"scalar", "number", "integer", "string", "boolean"};
    return (unsigned)type < 5 ? names[type] : NULL;
}

size_t eddy_topology_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX / 2;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

size_t eddy_topology_hint_distance(const char *typed, const char *known)
{
    size_t d = eddy_topology_edit_distance(typed, known);
    return d <= 2 && d < strlen(typed) && d < strlen(known) ? d : SIZE_MAX;
}
