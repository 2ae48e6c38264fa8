/*
 * topology.c — the topology builder, its validation, and the small pieces of
 * topology semantics every other module uses: window starts, group keys,
 * durations. The JSON loader (loader.c) is a client of the builder calls here.
 *
 * Built and finished on one thread; read-only afterwards.
 */
#include "eddy.h"
#include "engine/util.h"
#include "topology/predicate.h"
#include "topology/topology_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETENTION_MS (24LL * 3600 * 1000)

eddy_topology_t *eddy_topology_new(const char *name)
{
    eddy_topology_t *topo = calloc(1, sizeof(*topo));
    if (!topo)
        return NULL;
    topo->name = strdup(name ? name : "topology");
    topo->ts_field = -1;
    topo->ts_format = EDDY_TS_AUTO;
    return topo;
}

static void free_store(eddy_store_def_t *s)
{
    free(s->name);
    for (size_t i = 0; i < s->n_group; i++)
        free(s->group_names[i]);
    for (size_t i = 0; i < s->n_aggregates; i++) {
        eddy_agg_def_t *a = &s->aggregates[i];
        free(a->name);
        free(a->num_name);
        free(a->den_name);
        free(a->field_name);
        eddy_predicate_destroy(a->predicate);
    }
    free(s->sink_topic);
    free(s);
}

void eddy_topology_destroy(eddy_topology_t *topo)
{
    if (!topo)
        return;
    free(topo->name);
    for (size_t i = 0; i < topo->n_sources; i++)
        free(topo->sources[i]);
    free(topo->ts_field_name);
    for (size_t i = 0; i < topo->n_stores; i++)
        free_store(topo->stores[i]);
    for (size_t i = 0; i < topo->n_fields; i++)
        free(topo->fields[i]);
    free(topo);
}

/* --- builder ----------------------------------------------------------------- */

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

eddy_err_t eddy_topology_add_source_topic(eddy_topology_t *topo, const char *topic, char *errstr,
                                          size_t errstr_size)
{
    if (!*topic || strlen(topic) > 249)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "a topic name must have 1 to 249 characters");
    for (const char *p = topic; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "topic '%s' has '%c'; Kafka allows letters, digits, '.', '_', '-'",
                             topic, *p);
    for (size_t i = 0; i < topo->n_sources; i++)
        if (!strcmp(topo->sources[i], topic))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "topic '%s' is listed twice",
                             topic);
    if (topo->n_sources == EDDY_TOPOLOGY_MAX_SOURCES)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d source topics",
                         EDDY_TOPOLOGY_MAX_SOURCES);
    topo->sources[topo->n_sources++] = strdup(topic);
    return EDDY_OK;
}

eddy_err_t eddy_topology_set_timestamp(eddy_topology_t *topo, const char *field,
                                       eddy_ts_format_t format, char *errstr, size_t errstr_size)
{
    if (!*field)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "the timestamp field name is empty");
    free(topo->ts_field_name);
    topo->ts_field_name = strdup(field);
    topo->ts_format = format;
    return EDDY_OK;
}

eddy_store_def_t *eddy_topology_add_store(eddy_topology_t *topo, const char *name, char *errstr,
                                          size_t errstr_size)
{
    if (!valid_name(name)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "store name '%s' must be letters, digits, '_' or '-' (it names a column "
                  "family and a changelog topic)",
                  name);
        return NULL;
    }
    for (size_t i = 0; i < topo->n_stores; i++)
        if (!strcmp(topo->stores[i]->name, name)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store '%s' is declared twice", name);
            return NULL;
        }
    if (topo->n_stores == EDDY_TOPOLOGY_MAX_STORES) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d stores",
                  EDDY_TOPOLOGY_MAX_STORES);
        return NULL;
    }
    eddy_store_def_t *s = calloc(1, sizeof(*s));
    s->name = strdup(name);
    s->window.retention_ms = -1; /* default resolved at finish */
    topo->stores[topo->n_stores++] = s;
    return s;
}

eddy_err_t eddy_store_def_group_by(eddy_store_def_t *store, const char *field, char *errstr,
                                   size_t errstr_size)
{
    if (!*field)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "a group_by field name is empty");
    if (store->n_group == EDDY_MAX_GROUP_FIELDS)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d group_by fields",
                         EDDY_MAX_GROUP_FIELDS);
    for (size_t i = 0; i < store->n_group; i++)
        if (!strcmp(store->group_names[i], field))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "group_by field '%s' is listed twice", field);
    store->group_names[store->n_group++] = strdup(field);
    return EDDY_OK;
}

eddy_err_t eddy_store_def_tumbling(eddy_store_def_t *store, int64_t size_ms, char *errstr,
                                   size_t errstr_size)
{
    if (size_ms <= 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "window size must be positive, got %lld ms", (long long)size_ms);
    store->window.type = EDDY_WINDOW_TUMBLING;
    store->window.size_ms = size_ms;
    store->window.advance_ms = size_ms;
    store->has_window = true;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_hopping(eddy_store_def_t *store, int64_t size_ms, int64_t advance_ms,
                                  char *errstr, size_t errstr_size)
{
    if (size_ms <= 0 || advance_ms <= 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "window size and advance must be positive");
    if (advance_ms > size_ms)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "advance (%lld ms) must not exceed the window size (%lld ms)",
                         (long long)advance_ms, (long long)size_ms);
    if (size_ms / advance_ms > 64)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "size / advance must be at most 64 (each event updates that many "
                         "windows)");
    store->window.type = EDDY_WINDOW_HOPPING;
    store->window.size_ms = size_ms;
    store->window.advance_ms = advance_ms;
    store->has_window = true;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_grace(eddy_store_def_t *store, int64_t grace_ms, char *errstr,
                                size_t errstr_size)
{
    if (grace_ms < 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "grace must not be negative");
    store->window.grace_ms = grace_ms;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_retention(eddy_store_def_t *store, int64_t retention_ms, char *errstr,
                                    size_t errstr_size)
{
    if (retention_ms <= 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "retention must be positive");
    store->window.retention_ms = retention_ms;
    return EDDY_OK;
}

static eddy_agg_def_t *add_agg(eddy_store_def_t *store, const char *name, eddy_agg_op_t op,
                               const char *field, char *errstr, size_t errstr_size)
{
    if (!valid_name(name)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "aggregate name '%s' must be letters, digits, '_' or '-'", name);
        return NULL;
    }
    if (!strcmp(name, "key") || !strcmp(name, "start") || !strcmp(name, "end")) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "aggregate name '%s' is reserved (windows already have key, start, end)", name);
        return NULL;
    }
    for (size_t i = 0; i < store->n_aggregates; i++)
        if (!strcmp(store->aggregates[i].name, name)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "aggregate '%s' is declared twice in store '%s'", name, store->name);
            return NULL;
        }
    if (store->n_aggregates == EDDY_MAX_AGGREGATES) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "at most %d aggregates per store",
                  EDDY_MAX_AGGREGATES);
        return NULL;
    }
    if (field && !*field) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "aggregate '%s': empty field name", name);
        return NULL;
    }
    eddy_agg_def_t *a = &store->aggregates[store->n_aggregates++];
    memset(a, 0, sizeof(*a));
    a->name = strdup(name);
    a->op = op;
    a->field = -1;
    a->numerator = a->denominator = -1;
    a->field_name = field ? strdup(field) : NULL;
    return a;
}

eddy_err_t eddy_store_def_add_count(eddy_store_def_t *store, const char *name, char *errstr,
                                    size_t errstr_size)
{
    return add_agg(store, name, EDDY_AGG_COUNT, NULL, errstr, errstr_size) ? EDDY_OK
                                                                           : EDDY_ERR_INVALID;
}

eddy_err_t eddy_store_def_add_count_if(eddy_store_def_t *store, const char *name, const char *where,
                                       char *errstr, size_t errstr_size)
{
    eddy_predicate_t *pred = eddy_predicate_parse(where, errstr, errstr_size);
    if (!pred)
        return EDDY_ERR_INVALID;
    eddy_agg_def_t *a = add_agg(store, name, EDDY_AGG_COUNT_IF, NULL, errstr, errstr_size);
    if (!a) {
        eddy_predicate_destroy(pred);
        return EDDY_ERR_INVALID;
    }
    a->predicate = pred;
    return EDDY_OK;
}

#define FIELD_AGG(fn, op)                                                                          \
    eddy_err_t fn(eddy_store_def_t *store, const char *name, const char *field, char *errstr,      \
                  size_t errstr_size)                                                              \
    {                                                                                              \
        return add_agg(store, name, op, field, errstr, errstr_size) ? EDDY_OK : EDDY_ERR_INVALID;  \
    }
FIELD_AGG(eddy_store_def_add_sum, EDDY_AGG_SUM)
FIELD_AGG(eddy_store_def_add_min, EDDY_AGG_MIN)
FIELD_AGG(eddy_store_def_add_max, EDDY_AGG_MAX)
FIELD_AGG(eddy_store_def_add_mean, EDDY_AGG_MEAN)
FIELD_AGG(eddy_store_def_add_distinct, EDDY_AGG_DISTINCT)

eddy_err_t eddy_store_def_add_percentile(eddy_store_def_t *store, const char *name,
                                         const char *field, double q, char *errstr,
                                         size_t errstr_size)
{
    if (!(q > 0 && q <= 1))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "percentile '%s': q must be in (0, 1], e.g. 0.99, got %g", name, q);
    eddy_agg_def_t *a = add_agg(store, name, EDDY_AGG_PERCENTILE, field, errstr, errstr_size);
    if (!a)
        return EDDY_ERR_INVALID;
    a->q = q;
    return EDDY_OK;
}

eddy_err_t eddy_store_def_add_ratio(eddy_store_def_t *store, const char *name,
                                    const char *numerator, const char *denominator, char *errstr,
                                    size_t errstr_size)
{
    eddy_agg_def_t *a = add_agg(store, name, EDDY_AGG_RATIO, NULL, errstr, errstr_size);
    if (!a)
        return EDDY_ERR_INVALID;
    a->num_name = strdup(numerator);
    a->den_name = strdup(denominator);
    return EDDY_OK;
}

eddy_err_t eddy_store_def_sink(eddy_store_def_t *store, const char *topic, bool on_close,
                               char *errstr, size_t errstr_size)
{
    eddy_topology_t probe = {0};
    eddy_err_t err = eddy_topology_add_source_topic(&probe, topic, errstr, errstr_size);
    if (err)
        return err;
    free(probe.sources[0]);
    free(store->sink_topic);
    store->sink_topic = strdup(topic);
    store->sink_emit = on_close ? EDDY_EMIT_ON_CLOSE : EDDY_EMIT_UPDATES;
    return EDDY_OK;
}

/* --- finish -------------------------------------------------------------------- */

static int field_index(eddy_topology_t *topo, const char *name, eddy_field_need_t need)
{
    for (size_t i = 0; i < topo->n_fields; i++)
        if (!strcmp(topo->fields[i], name)) {
            if (need > topo->field_needs[i])
                topo->field_needs[i] = need;
            return (int)i;
        }
    if (topo->n_fields == EDDY_TOPOLOGY_MAX_FIELDS)
        return -1;
    topo->fields[topo->n_fields] = strdup(name);
    topo->field_needs[topo->n_fields] = need;
    return (int)topo->n_fields++;
}

static int agg_index(const eddy_store_def_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_aggregates; i++)
        if (!strcmp(s->aggregates[i].name, name))
            return (int)i;
    return -1;
}

eddy_err_t eddy_topology_finish(eddy_topology_t *topo, char *errstr, size_t errstr_size)
{
    if (topo->finished)
        return EDDY_OK;
    if (topo->n_sources == 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "no source topic declared");
    if (!topo->ts_field_name)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "no timestamp field declared (the event time of each record)");
    if (topo->n_stores == 0)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "no stores declared");
    topo->ts_field = field_index(topo, topo->ts_field_name, EDDY_FIELD_ANY);
    for (size_t i = 0; i < topo->n_stores; i++) {
        eddy_store_def_t *s = topo->stores[i];
        if (!s->has_window)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store '%s' has no window",
                             s->name);
        if (s->n_aggregates == 0)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store '%s' has no aggregates",
                             s->name);
        eddy_window_spec_t *w = &s->window;
        if (w->retention_ms < 0)
            w->retention_ms = DEFAULT_RETENTION_MS > w->size_ms + w->grace_ms
                                  ? DEFAULT_RETENTION_MS
                                  : w->size_ms + w->grace_ms;
        if (w->retention_ms < w->size_ms + w->grace_ms)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "store '%s': retention (%lld ms) must be at least window size + "
                             "grace (%lld ms), or windows vanish before they close",
                             s->name, (long long)w->retention_ms,
                             (long long)(w->size_ms + w->grace_ms));
        for (size_t g = 0; g < s->n_group; g++)
            if ((s->group_fields[g] = field_index(topo, s->group_names[g], EDDY_FIELD_SCALAR)) < 0)
                goto too_many_fields;
        for (size_t a = 0; a < s->n_aggregates; a++) {
            eddy_agg_def_t *d = &s->aggregates[a];
            if (d->field_name) {
                eddy_field_need_t need =
                    d->op == EDDY_AGG_DISTINCT ? EDDY_FIELD_SCALAR : EDDY_FIELD_NUMBER;
                if ((d->field = field_index(topo, d->field_name, need)) < 0)
                    goto too_many_fields;
            }
            if (d->predicate) {
                for (int t = 0; t < d->predicate->n_terms; t++) {
                    eddy_pred_term_t *term = &d->predicate->terms[t];
                    if ((term->field = field_index(topo, eddy_predicate_field_name(d->predicate, t),
                                                   EDDY_FIELD_ANY)) < 0)
                        goto too_many_fields;
                }
            }
            if (d->op == EDDY_AGG_RATIO) {
                d->numerator = agg_index(s, d->num_name);
                d->denominator = agg_index(s, d->den_name);
                const char *bad = d->numerator < 0     ? d->num_name
                                  : d->denominator < 0 ? d->den_name
                                                       : NULL;
                if (bad)
                    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                     "store '%s': ratio '%s' refers to '%s', which is not an "
                                     "aggregate of this store",
                                     s->name, d->name, bad);
                int refs[2] = {d->numerator, d->denominator};
                for (int r = 0; r < 2; r++) {
                    eddy_agg_op_t op = s->aggregates[refs[r]].op;
                    if (op != EDDY_AGG_COUNT && op != EDDY_AGG_COUNT_IF && op != EDDY_AGG_SUM)
                        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                         "store '%s': ratio '%s' must divide count, count_if or "
                                         "sum aggregates; '%s' is none of them",
                                         s->name, d->name, s->aggregates[refs[r]].name);
                }
            }
        }
    }
    topo->finished = true;
    return EDDY_OK;
too_many_fields:
    return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                     "the topology reads more than %d distinct event fields",
                     EDDY_TOPOLOGY_MAX_FIELDS);
}

/* --- accessors ------------------------------------------------------------------ */

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

size_t eddy_topology_field_count(const eddy_topology_t *topo)
{
    return topo->n_fields;
}

const char *eddy_topology_field_name(const eddy_topology_t *topo, size_t i)
{
    return topo->fields[i];
}

int eddy_topology_timestamp_field(const eddy_topology_t *topo)
{
    return topo->ts_field;
}

eddy_ts_format_t eddy_topology_timestamp_format(const eddy_topology_t *topo)
{
    return topo->ts_format;
}

/* --- semantics -------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

size_t eddy_window_starts(const eddy_window_spec_t *w, int64_t ts, int64_t *starts, size_t cap)
{
    /* The latest window holding ts starts at the last multiple of advance <= ts;
     * earlier ones every advance back while they still reach past ts. */
    int64_t last = floor_div(ts, w->advance_ms) * w->advance_ms;
    size_t n = 0;
    for (int64_t s = last; s > ts - w->size_ms; s -= w->advance_ms)
        n++;
    size_t k = n < cap ? n : cap;
    int64_t first = last - (int64_t)(n - 1) * w->advance_ms;
    for (size_t i = 0; i < k; i++)
        starts[i] = first + (int64_t)i * w->advance_ms;
    return n;
}

bool eddy_store_group_key(const eddy_store_def_t *store, const eddy_value_t *values, char *key,
                          size_t cap, size_t *key_len)
{
    size_t n = 0;
    for (size_t g = 0; g < store->n_group; g++) {
        const eddy_value_t *v = &values[store->group_fields[g]];
        char num[40];
        const char *text;
        size_t len;
        if (v->type == EDDY_VALUE_STRING) {
            text = v->str;
            len = v->len;
        } else if (v->type == EDDY_VALUE_NUMBER) {
            if (v->num == floor(v->num) && fabs(v->num) < 9e15)
                len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)v->num);
            else
                len = (size_t)snprintf(num, sizeof(num), "%.17g", v->num);
            text = num;
        } else {
            return false;
        }
        if (g > 0) {
            if (n + 1 > cap)
                return false;
            key[n++] = '|';
        }
        for (size_t i = 0; i < len; i++) {
            bool esc = store->n_group > 1 && (text[i] == '|' || text[i] == '\\');
            if (n + 1 + esc > cap)
                return false;
            if (esc)
                key[n++] = '\\';
            key[n++] = text[i];
        }
    }
    *key_len = n;
    return true;
}

bool eddy_duration_parse(const char *s, bool zero_ok, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return false;
    double unit;
    if (!*end || !strcmp(end, "ms"))
        unit = 1;
    else if (!strcmp(end, "s"))
        unit = 1000;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        unit = 60000;
    else if (!strcmp(end, "h"))
        unit = 3600000;
    else if (!strcmp(end, "d"))
        unit = 86400000;
    else
        return false;
    double total = v * unit;
    if (total != floor(total) || total > 1e15 || (total == 0 && !zero_ok))
        return false;
    *ms = (int64_t)total;
    return true;
}

void eddy_duration_format(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < 4; i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    snprintf(buf, cap, "%lldms", (long long)ms);
}
