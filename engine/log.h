/*
 * log.h — eddy's diagnostic log: one line per message on stderr, with a UTC
 * timestamp, the level and the thread's name. Thread-safe (one write(2) per line,
 * so lines from several threads never interleave). stdout is left to the commands'
 * machine-readable output.
 */
#ifndef EDDY_LOG_H
#define EDDY_LOG_H

typedef enum eddy_log_level_e {
    EDDY_LOG_DEBUG = 0,
    EDDY_LOG_INFO = 1,
    EDDY_LOG_WARN = 2,
    EDDY_LOG_ERROR = 3,
} eddy_log_level_t;

/** Messages below `level` are dropped. Default EDDY_LOG_INFO; EDDY_LOG_LEVEL=debug|info|warn|error
 *  in the environment overrides it at the first log call. */
void eddy_log_set_level(eddy_log_level_t level);

/** Names the calling thread in its log lines (at most 15 characters are kept). */
void eddy_log_set_thread_name(const char *name);

void eddy_log(eddy_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define eddy_log_debug(...) eddy_log(EDDY_LOG_DEBUG, __VA_ARGS__)
#define eddy_log_info(...)  eddy_log(EDDY_LOG_INFO, __VA_ARGS__)
#define eddy_log_warn(...)  eddy_log(EDDY_LOG_WARN, __VA_ARGS__)
#define eddy_log_error(...) eddy_log(EDDY_LOG_ERROR, __VA_ARGS__)

#endif /* EDDY_LOG_H */
