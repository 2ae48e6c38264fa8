/*
 * eddy_proc.h — `eddy run` as a child process for integration tests: start it
 * with the usual test settings, stop or kill it, ask its HTTP API, wait until it
 * has caught up. Children die with the test process (PR_SET_PDEATHSIG).
 */
#ifndef EDDY_TEST_PROC_H
#define EDDY_TEST_PROC_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct eddy_test_run_s {
    const char *bootstrap; /* bootstrap.servers */
    const char *topology;  /* file name under topology/examples/, or an
                              absolute path */
    const char *app;       /* application.id */
    const char *state_dir; /* state.dir */
    int port;              /* HTTP port on 127.0.0.1 */
    int threads;           /* stream threads; 0: 2 */
    const char *guarantee; /* processing.guarantee; NULL: eddy's default */
    const char *log_path;  /* stderr goes here (appended); NULL: inherited */
    const char *extra[8];  /* more arguments (e.g. "-X", "k=v"), NULL-terminated */
} eddy_test_run_t;

/** A free TCP port on 127.0.0.1 (free when asked). */
int eddy_test_free_port(void);

/** Starts `eddy run` as described (session timeout 6 s so a killed member leaves
 *  the group quickly). Fails the test if it cannot fork. */
pid_t eddy_test_run_start(const eddy_test_run_t *run);

/** Sends `sig` and waits; SIGTERM must end in exit status 0. */
void eddy_test_run_stop(pid_t pid, int sig);

/** `method` http://127.0.0.1:port/path, the answer as JSON (NULL if the server
 *  is not up or the body is not JSON); *status gets the HTTP status. */
json_t *eddy_test_call_json(int port, const char *method, const char *path, int *status);

/** GET http://127.0.0.1:port/path as JSON (NULL if the server is not up or the
 *  body is not JSON); *status gets the HTTP status. */
json_t *eddy_test_get_json(int port, const char *path, int *status);

/** Waits (up to timeout_s) until the instance owns `partitions` partitions, none
 *  restoring, and has committed `records` records; returns its /api/health. */
json_t *eddy_test_wait_caught_up(int port, int partitions, int64_t records, int timeout_s);

/** totals.<field> of a /api/health answer. */
int64_t eddy_test_health_total(json_t *health, const char *field);

#endif /* EDDY_TEST_PROC_H */
