/*
 * util.c — clocks, strict number parsing and error formatting (see util.h).
 */
#include "engine/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

const char *eddy_err_str(eddy_err_t err)
{
    switch (err) {
    case EDDY_OK:
        return "ok";
    case EDDY_ERR_INVALID:
        return "invalid argument";
    case EDDY_ERR_IO:
        return "I/O error";
    case EDDY_ERR_KAFKA:
        return "Kafka error";
    case EDDY_ERR_STORE:
        return "state store error";
    case EDDY_ERR_NOMEM:
        return "out of memory";
    case EDDY_ERR_TIMEOUT:
        return "timed out";
    case EDDY_ERR_NOTFOUND:
        return "not found";
    case EDDY_ERR_STATE:
        return "invalid state";
    case EDDY_ERR_CORRUPT:
        return "damaged data";
    }
    return "unknown error";
}

const char *eddy_version(void)
{
    return EDDY_VERSION;
}

int64_t eddy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t eddy_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool eddy_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool eddy_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

eddy_err_t eddy_errf(eddy_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

void eddy_sleep_ns(int64_t ns, volatile const int *stop)
{
    const int64_t slice = 10 * 1000000;
    while (ns > 0 && !(stop && *stop)) {
        int64_t step = stop && ns > slice ? slice : ns;
        struct timespec ts = {.tv_sec = step / 1000000000, .tv_nsec = step % 1000000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !(stop && *stop))
            ;
        ns -= step;
    }
}
