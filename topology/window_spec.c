/*
 * window_spec.c — the arithmetic of epoch-aligned windows (which windows hold an
 * event time) and durations as topology files write them ("1m", "1h30m").
 *
 * Pure functions, any thread. Window starts use floor division, so an event at
 * -1 ms lies in the window starting at -size, not at 0.
 */
#include "topology/topology_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* a / b rounded towards minus infinity (b > 0). */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return a % b != 0 && a < 0 ? q - 1 : q;
}

size_t eddy_window_starts(const eddy_window_spec_t *w, int64_t ts, int64_t *starts, size_t cap)
{
    assert(w->size_ms > 0 && w->advance_ms > 0 && w->advance_ms <= w->size_ms);
    assert(w->size_ms <= EDDY_DURATION_MAX_MS);
    assert(ts >= -EDDY_EVENT_TIME_ABS_MAX && ts <= EDDY_EVENT_TIME_ABS_MAX);
    /* Windows holding ts start in (ts - size, ts]: from the first multiple of
     * advance after ts - size up to the last one at or before ts. */
    int64_t last = floor_div(ts, w->advance_ms) * w->advance_ms;
    int64_t first = (floor_div(ts - w->size_ms, w->advance_ms) + 1) * w->advance_ms;
    size_t n = (size_t)((last - first) / w->advance_ms + 1);
    for (size_t i = 0; i < n && i < cap; i++)
        starts[i] = first + (int64_t)i * w->advance_ms;
    return n;
}

size_t eddy_window_max_per_event(const eddy_window_spec_t *w)
{
    return (size_t)((w->size_ms + w->advance_ms - 1) / w->advance_ms);
}

static const struct {
    const char *unit; /* as written */
    int64_t ms;       /* its length */
} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
#define N_UNITS (sizeof(units) / sizeof(units[0]))

bool eddy_duration_parse(const char *s, int64_t *ms)
{
    int64_t total = 0;
    size_t next_unit = 0; /* units must come largest first, each at most once */
    if (!*s)
        return false;
    while (*s) {
        int64_t v = 0;
        const char *digits = s;
        while (*s >= '0' && *s <= '9') {
            if (v > EDDY_DURATION_MAX_MS)
                return false;
            v = v * 10 + (*s++ - '0');
        }
        if (s == digits)
            return false;
        /* "m" and "ms" share a prefix: try the longer unit first. */
        size_t u = N_UNITS;
        for (size_t i = N_UNITS; i-- > 0;) {
            size_t len = strlen(units[i].unit);
            if (!strncmp(s, units[i].unit, len) && (u == N_UNITS || len > strlen(units[u].unit)))
                u = i;
        }
        if (u == N_UNITS || u < next_unit)
            return false;
        if (v > EDDY_DURATION_MAX_MS / units[u].ms)
            return false;
        total += v * units[u].ms;
        if (total > EDDY_DURATION_MAX_MS)
            return false;
        s += strlen(units[u].unit);
        next_unit = u + 1;
    }
    *ms = total;
    return true;
}

size_t eddy_duration_format(int64_t ms, char *buf, size_t cap)
{
    assert(ms >= 0);
    if (ms == 0)
        return (size_t)snprintf(buf, cap, "0s");
    size_t len = 0;
    for (size_t i = 0; i < N_UNITS; i++) {
        int64_t v = ms / units[i].ms;
        if (v == 0)
            continue;
        ms -= v * units[i].ms;
        int w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%lld%s",
                         (long long)v, units[i].unit);
        len += (size_t)w;
    }
    return len;
}
