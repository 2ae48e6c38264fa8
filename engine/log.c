/*
 * log.c — the diagnostic log behind log.h. Formats each line into a stack buffer
 * and writes it with a single write(2) so concurrent threads never interleave.
 */
#include "engine/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not yet read from the environment */
static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void eddy_log_set_level(eddy_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

void eddy_log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
}

static int current_level(void)
{
    int level = atomic_load(&log_level);
    if (level >= 0)
        return level;
    level = EDDY_LOG_INFO;
    const char *env = getenv("EDDY_LOG_LEVEL");
    for (int i = 0; env && i < 4; i++)
        if (strcasecmp(env, level_names[i]) == 0)
            level = i;
    atomic_store(&log_level, level);
    return level;
}

void eddy_log(eddy_log_level_t level, const char *fmt, ...)
{
    if ((int)level < current_level())
        return;

    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], thread_name);

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nowhere left to report a failed log write */
}
