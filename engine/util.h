/*
 * util.h — small helpers every module uses: clocks, strict number parsing for
 * command lines and config files, and error-string formatting. No state, all
 * functions are safe to call from any thread.
 */
#ifndef EDDY_UTIL_H
#define EDDY_UTIL_H

#include "eddy.h"

#include <stdbool.h>
#include <stdint.h>

/** Wall-clock time in milliseconds since the epoch (event time, logs). */
int64_t eddy_now_ms(void);

/** Monotonic time in nanoseconds (durations, pacing); never goes backwards. */
int64_t eddy_mono_ns(void);

/** Parses all of `s` as a base-10 integer in [min, max]. Returns false (and leaves
 *  *out untouched) on empty input, trailing characters or a value out of range. */
bool eddy_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/** Parses all of `s` as a finite double in [min, max]; false otherwise. */
bool eddy_parse_double(const char *s, double min, double max, double *out);

/** Writes printf-style text into errstr (if non-NULL and errstr_size > 0) and
 *  returns err, so that error paths read `return eddy_errf(EDDY_ERR_..., ...)`. */
eddy_err_t eddy_errf(eddy_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Sleeps for `ns` nanoseconds, resuming after signals, unless *stop becomes true
 *  (checked about every 10 ms when stop is non-NULL). */
void eddy_sleep_ns(int64_t ns, volatile const int *stop);

#endif /* EDDY_UTIL_H */
