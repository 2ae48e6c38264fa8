/*
 * eddy_proc.c — `eddy run` child processes for tests (see eddy_proc.h).
 */
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int eddy_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

pid_t eddy_test_run_start(const eddy_test_run_t *run)
{
    const char *bin = eddy_test_bin();
    if (!bin)
        fail_msg("EDDY_BIN is not set (run through ctest)");
    char topo[512], listen[64], threads[16], guarantee[64];
    if (run->topology[0] == '/')
        snprintf(topo, sizeof(topo), "%s", run->topology);
    else
        snprintf(topo, sizeof(topo), "%s/topology/examples/%s", EDDY_SOURCE_DIR, run->topology);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", run->port);
    snprintf(threads, sizeof(threads), "%d", run->threads ? run->threads : 2);
    snprintf(guarantee, sizeof(guarantee), "%s", run->guarantee ? run->guarantee : "");
    const char *argv[40] = {bin,
                            "run",
                            "--bootstrap",
                            run->bootstrap,
                            "--topology",
                            topo,
                            "--state-dir",
                            run->state_dir,
                            "--http",
                            listen,
                            "--threads",
                            threads,
                            "--application-id",
                            run->app,
                            "-X",
                            "consumer.session.timeout.ms=6000"};
    int n = 16;
    if (run->guarantee) {
        argv[n++] = "--processing-guarantee";
        argv[n++] = guarantee;
    }
    for (int i = 0; i < 8 && run->extra[i]; i++)
        argv[n++] = run->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test */
        if (run->log_path) {
            int fd = open(run->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0)
                dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

void eddy_test_run_stop(pid_t pid, int sig)
{
    kill(pid, sig);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (sig == SIGTERM) {
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

json_t *eddy_test_get_json(int port, const char *path, int *status)
{
    return eddy_test_call_json(port, "GET", path, status);
}

json_t *eddy_test_call_json(int port, const char *method, const char *path, int *status)
{
    eddy_test_http_conn_t *conn = eddy_test_http_connect("127.0.0.1", port);
    if (!conn)
        return NULL;
    eddy_test_http_resp_t resp = {0};
    json_t *body = NULL;
    if (eddy_test_http_request(conn, method, path, NULL, NULL, 0, &resp) == 0) {
        *status = resp.status;
        body = json_loadb(resp.body, resp.body_len, 0, NULL);
    }
    eddy_test_http_resp_free(&resp);
    eddy_test_http_close(conn);
    return body;
}

int64_t eddy_test_health_total(json_t *health, const char *field)
{
    return json_integer_value(json_object_get(json_object_get(health, "totals"), field));
}

json_t *eddy_test_wait_caught_up(int port, int partitions, int64_t records, int timeout_s)
{
    int owned = 0, restoring = 0;
    int64_t committed = 0;
    for (int i = 0; i < timeout_s * 20; i++) {
        int status = 0;
        json_t *h = eddy_test_get_json(port, "/api/health", &status);
        if (h && status == 200) {
            json_t *parts = json_object_get(h, "partitions"), *p;
            size_t j;
            owned = (int)json_array_size(parts);
            restoring = 0;
            json_array_foreach(parts, j, p) restoring +=
                !strcmp(json_string_value(json_object_get(p, "state")), "restoring");
            committed = eddy_test_health_total(h, "committed_records");
            if (owned == partitions && restoring == 0 && committed >= records)
                return h;
        }
        json_decref(h);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("after %d s the instance owns %d of %d partitions (%d restoring) and committed %lld "
             "of %lld records",
             timeout_s, owned, partitions, restoring, (long long)committed, (long long)records);
    return NULL;
}
