/*
 * reference.c — the reference windowed aggregation (see reference.h). Linear
 * searches and full copies on purpose: it must be easy to believe, not fast.
 */
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ref_parse_iso8601(const char *s)
{
    int y, mo, d, h, mi, sec, ms = 0;
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    const char *rest = s + n;
    if (*rest == '.') {
        int digits = 0;
        rest++;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*rest - '0');
            digits++;
            rest++;
        }
        while (digits < 3) {
            ms *= 10;
            digits++;
        }
    }
    if (strcmp(rest, "Z") != 0)
        return -1;
    /* Days from civil (Howard Hinnant's algorithm), written out again here so
     * the reference shares no code with eddy. */
    int yy = mo <= 2 ? y - 1 : y;
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    return ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static ref_window_t *get_window(ref_result_t *res, int64_t start, const char *key)
{
    for (size_t i = 0; i < res->n; i++)
        if (res->windows[i].start == start && !strcmp(res->windows[i].key, key))
            return &res->windows[i];
    if (res->n == res->cap) {
        res->cap = res->cap ? res->cap * 2 : 64;
        res->windows = realloc(res->windows, res->cap * sizeof(*res->windows));
    }
    ref_window_t *w = &res->windows[res->n++];
    memset(w, 0, sizeof(*w));
    w->start = start;
    snprintf(w->key, sizeof(w->key), "%s", key);
    return w;
}

static void add_value(ref_window_t *w, double v)
{
    if (w->n_values == w->cap_values) {
        w->cap_values = w->cap_values ? w->cap_values * 2 : 256;
        w->values = realloc(w->values, w->cap_values * sizeof(*w->values));
    }
    w->values[w->n_values++] = v;
}

static void add_distinct(ref_window_t *w, const char *s)
{
    for (size_t i = 0; i < w->n_distinct; i++)
        if (!strcmp(w->distinct[i], s))
            return;
    if (w->n_distinct == w->cap_distinct) {
        w->cap_distinct = w->cap_distinct ? w->cap_distinct * 2 : 64;
        w->distinct = realloc(w->distinct, w->cap_distinct * sizeof(*w->distinct));
    }
    w->distinct[w->n_distinct++] = strdup(s);
}

/* The group key as eddy formats it: strings as they are, whole numbers without
 * a fraction; false for a value that is no key, or a key of REF_KEY_MAX bytes or
 * more (eddy sends those to the dead-letter topic). */
static bool key_text(json_t *v, char *out, size_t cap)
{
    int n;
    if (json_is_string(v))
        n = snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        n = snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
             fabs(json_real_value(v)) < 1e15)
        n = snprintf(out, cap, "%.0f", json_real_value(v));
    else
        return false;
    return n >= 0 && (size_t)n < cap;
}

/* The event's field meets the check. */
static bool check_ok(const ref_check_t *c, json_t *v)
{
    if (!c->number)
        return json_is_string(v);
    if (!json_is_number(v))
        return false;
    double x = json_number_value(v);
    if (c->whole && x != floor(x))
        return false;
    return (c->min == 0 && c->max == 0) || (x >= c->min && x <= c->max);
}

/* The wall clock, ms. */
static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_window(const void *a, const void *b)
{
    const ref_window_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(x->key, y->key);
}

void ref_compute(const ref_spec_t *spec, const eddy_test_topic_t *topic, ref_result_t *out)
{
    memset(out, 0, sizeof(*out));
    int32_t partition = -1;
    int64_t stream_time = INT64_MIN;
    /* Event times from the epoch to the wall clock plus max_future (tests keep
     * theirs far from that bound, so that when the clock is read does not matter). */
    const int64_t max_ts = wall_ms() + (spec->max_future_ms ? spec->max_future_ms : 86400000);
    for (size_t i = 0; i < topic->n; i++) {
        const eddy_test_record_t *r = &topic->recs[i];
        if (r->partition != partition) { /* records come ordered by partition, offset */
            partition = r->partition;
            stream_time = INT64_MIN;
        }
        json_t *ev = json_loadb(r->value, r->len, 0, NULL);
        json_t *tv = ev ? json_object_get(ev, spec->time_field) : NULL;
        int64_t ts = -1;
        if (tv && spec->time_iso && json_is_string(tv))
            ts = ref_parse_iso8601(json_string_value(tv));
        else if (tv && !spec->time_iso && json_is_number(tv) &&
                 json_number_value(tv) == floor(json_number_value(tv)) &&
                 json_number_value(tv) >= 0 && json_number_value(tv) <= (double)max_ts)
            ts = (int64_t)json_number_value(tv);
        char key[REF_KEY_MAX] = "";
        bool ok = ev && json_is_object(ev) && ts >= 0 && ts <= max_ts;
        if (ok && spec->group_field)
            ok = key_text(json_object_get(ev, spec->group_field), key, sizeof(key));
        json_t *value = ok && spec->value_field ? json_object_get(ev, spec->value_field) : NULL;
        if (ok && spec->value_field && !json_is_number(value))
            ok = false;
        json_t *dv = ok && spec->distinct_field ? json_object_get(ev, spec->distinct_field) : NULL;
        if (ok && spec->distinct_field && !json_is_string(dv))
            ok = false;
        for (int f = 0; ok && f < 8 && spec->required[f]; f++) {
            json_t *rv = json_object_get(ev, spec->required[f]);
            ok = json_is_string(rv) || json_is_number(rv);
        }
        for (int f = 0; ok && f < 8 && spec->checks[f].field; f++)
            ok = check_ok(&spec->checks[f], json_object_get(ev, spec->checks[f].field));
        if (!ok) {
            out->undecodable++;
            json_decref(ev);
            continue;
        }
        if (ts > stream_time)
            stream_time = ts;
        json_t *status = json_object_get(ev, "status");
        bool error = json_is_number(status) && json_number_value(status) >= 500;
        /* Every window [s, s+size) with s a multiple of advance that holds ts. */
        int64_t last = floor_div(ts, spec->advance_ms) * spec->advance_ms;
        for (int64_t s = last; s > ts - spec->size_ms; s -= spec->advance_ms) {
            if (s + spec->size_ms + spec->grace_ms <= stream_time) {
                out->late++;
                continue;
            }
            ref_window_t *w = get_window(out, s, key);
            w->count++;
            w->errors += error;
            if (value) {
                w->sum += json_number_value(value);
                add_value(w, json_number_value(value));
            }
            if (dv)
                add_distinct(w, json_string_value(dv));
        }
        json_decref(ev);
    }
    for (size_t i = 0; i < out->n; i++)
        if (out->windows[i].n_values > 0)
            qsort(out->windows[i].values, out->windows[i].n_values, sizeof(double), cmp_double);
    if (out->n > 0)
        qsort(out->windows, out->n, sizeof(*out->windows), cmp_window);
}

void ref_result_free(ref_result_t *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free(res->windows[i].values);
        for (size_t j = 0; j < res->windows[i].n_distinct; j++)
            free(res->windows[i].distinct[j]);
        free(res->windows[i].distinct);
    }
    free(res->windows);
    memset(res, 0, sizeof(*res));
}

const ref_window_t *ref_find(const ref_result_t *res, int64_t start, const char *key)
{
    for (size_t i = 0; i < res->n; i++)
        if (res->windows[i].start == start && !strcmp(res->windows[i].key, key))
            return &res->windows[i];
    return NULL;
}

void ref_quantile_bounds(const ref_window_t *w, double q, double *lo, double *hi)
{
    double rank = q * (double)(w->n_values - 1);
    *lo = w->values[(size_t)floor(rank)];
    *hi = w->values[(size_t)ceil(rank)];
}
