/*
 * test_http_abuse.c — a slowloris against a real `eddy run` on the embedded broker.
 *
 * Slow clients connect from eight loopback addresses (127.0.0.1..127.0.0.8, the
 * client sockets bound to each) and send a request line, then one header byte a
 * second, never finishing. What must hold (docs/http.md, "Slow clients"):
 *  - every slow connection is closed by its header deadline
 *    (http.request.header.timeout.ms, 3 s here), counted from its accept, although
 *    it keeps sending bytes; the closes show in /metrics;
 *  - with several hundred of them (more than http.connections.max, 256, the
 *    closed ones reconnecting every second), a fresh GET /api/health from any of
 *    those addresses is answered 200 in < 100 ms: the newcomer evicts the oldest
 *    slow connection instead of being refused;
 *  - the RSS of eddy run stays bounded meanwhile.
 *
 * The latency bound: every probe must answer 200 within PROBE_MAX_MS (1 s: before
 * the fix probes waited 10 s for nothing, or were reset at once), and at least 90%
 * of them within 100 ms. The 10% allowance (and not all of them) is for this
 * machine's load: two cores shared with parallel builds, tests and sanitizers,
 * where one probe can lose its core for a scheduling quantum or a sanitizer's
 * stall without any fault of the server; the median is printed.
 */
#define _GNU_SOURCE
#include "eddy_proc.h"
#include "http_client.h"
#include "test_support.h"

#include "engine/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define APP           "abuse"
#define HEADER_MS     3000 /* http.request.header.timeout.ms given to eddy run */
#define N_ADDRS       8    /* 127.0.0.1 .. 127.0.0.8 */
#define N_DEADLINE    200  /* phase 1: under every limit, left to their deadline */
#define N_FLOOD       400  /* phase 2: past http.connections.max (256) */
#define FLOOD_MS      8000 /* how long phase 2 lasts */
#define CLOSE_SLACK   2500 /* ms past the deadline a close may take on a loaded machine */
#define PROBE_MAX_MS  1000
#define PROBE_GOOD_MS 100
#define RSS_BOUND_KB  (64 * 1024) /* growth of eddy run's RSS during the attack */

typedef struct fixture_s {
    eddy_broker_t *broker;
    char state_dir[256];
    int port;
    pid_t pid;
} fixture_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static int setup(void **state)
{
    char errstr[256];
    /* 400 slow sockets and the probes here, as many accepted ones in eddy run. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(1, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", 4, errstr, sizeof(errstr)) ||
        eddy_test_create_changelogs(fx->broker, "monitoring.json", APP, 4))
        return -1;
    eddy_test_mkdtemp(APP, fx->state_dir, sizeof(fx->state_dir));
    fx->port = eddy_test_free_port();
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(fx->broker),
                           .topology = "monitoring.json",
                           .app = APP,
                           .state_dir = fx->state_dir,
                           .port = fx->port,
                           .extra = {"-X", "http.request.header.timeout.ms=3000"}};
    fx->pid = eddy_test_run_start(&run);
    json_decref(eddy_test_wait_caught_up(fx->port, 4, 0, 60));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_test_run_stop(fx->pid, SIGTERM);
    eddy_broker_destroy(fx->broker);
    eddy_test_rmtree(fx->state_dir);
    free(fx);
    return 0;
}

/* --- the slow clients ----------------------------------------------------------------- */

typedef struct slow_s {
    int fd;            /* -1 when closed */
    int addr;          /* source address index */
    int64_t opened_ms; /* connect() */
    int64_t closed_ms; /* when the server's close was seen; 0 while open */
} slow_t;

typedef struct attack_s {
    int port;
    slow_t *conns;
    int n;
    bool reconnect;            /* open a new one for each closed one, every second */
    atomic_bool stop;          /* ends the attack thread */
    atomic_int open_now;       /* connections open */
    atomic_int closed;         /* closes seen */
    atomic_int failed_connect; /* connect() that failed */
    int64_t longest_life_ms;   /* longest life of a closed connection (attack thread) */
} attack_t;

static const char slow_start[] = "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ";

static int slow_open(attack_t *at, slow_t *s)
{
    char src[32];
    snprintf(src, sizeof(src), "127.0.0.%d", 1 + s->addr);
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons((uint16_t)at->port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) ||
        send(fd, slow_start, sizeof(slow_start) - 1, MSG_NOSIGNAL) < 0) {
        if (fd >= 0)
            close(fd);
        atomic_fetch_add(&at->failed_connect, 1);
        s->fd = -1;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->fd = fd;
    s->opened_ms = now_ms();
    s->closed_ms = 0;
    atomic_fetch_add(&at->open_now, 1);
    return 0;
}

static void slow_closed(attack_t *at, slow_t *s)
{
    s->closed_ms = now_ms();
    if (s->closed_ms - s->opened_ms > at->longest_life_ms)
        at->longest_life_ms = s->closed_ms - s->opened_ms;
    close(s->fd);
    s->fd = -1;
    atomic_fetch_sub(&at->open_now, 1);
    atomic_fetch_add(&at->closed, 1);
}

/* One thread keeps every slow connection dripping a byte a second and notices
 * the server's closes (an answer, EOF, a reset). */
static void *attack_main(void *arg)
{
    attack_t *at = arg;
    struct pollfd *pfd = calloc((size_t)at->n, sizeof(*pfd));
    int64_t next_drip = now_ms() + 1000;
    while (!atomic_load(&at->stop)) {
        for (int i = 0; i < at->n; i++)
            pfd[i] = (struct pollfd){.fd = at->conns[i].fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)at->n, 20) > 0)
            for (int i = 0; i < at->n; i++) {
                slow_t *s = &at->conns[i];
                if (s->fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buf[1024];
                ssize_t got;
                while ((got = recv(s->fd, buf, sizeof(buf), 0)) > 0) {
                    /* an answer (408 or 503): the close follows */
                }
                if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                    slow_closed(at, s);
            }
        if (now_ms() >= next_drip) {
            next_drip += 1000;
            for (int i = 0; i < at->n; i++) {
                slow_t *s = &at->conns[i];
                if (s->fd >= 0 && send(s->fd, "a", 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                    slow_closed(at, s);
                else if (s->fd < 0 && at->reconnect)
                    slow_open(at, s);
            }
        }
    }
    free(pfd);
    return NULL;
}

static void attack_start(attack_t *at, pthread_t *thread, int port, int n, int naddrs,
                         bool reconnect)
{
    memset(at, 0, sizeof(*at));
    at->port = port;
    at->n = n;
    at->reconnect = reconnect;
    at->conns = calloc((size_t)n, sizeof(slow_t));
    for (int i = 0; i < n; i++) {
        at->conns[i].addr = i % naddrs;
        slow_open(at, &at->conns[i]);
    }
    assert_int_equal(pthread_create(thread, NULL, attack_main, at), 0);
}

static void attack_stop(attack_t *at, pthread_t thread)
{
    atomic_store(&at->stop, true);
    pthread_join(thread, NULL);
}

static void attack_free(attack_t *at)
{
    for (int i = 0; i < at->n; i++)
        if (at->conns[i].fd >= 0)
            close(at->conns[i].fd);
    free(at->conns);
}

/* --- probes ----------------------------------------------------------------------------- */

/* A fresh GET /api/health from 127.0.0.(1 + addr): its status (0: no answer) and
 * its latency in ms. */
static int probe(int port, int addr, int64_t *ms)
{
    char src[32];
    snprintf(src, sizeof(src), "127.0.0.%d", 1 + addr);
    int64_t t0 = now_ms();
    eddy_test_http_conn_t *conn = eddy_test_http_connect_from("127.0.0.1", port, src);
    eddy_test_http_resp_t r = {0};
    int status = 0;
    if (conn) {
        eddy_test_http_set_timeout(conn, 10000);
        if (!eddy_test_http_request(conn, "GET", "/api/health", "Connection: close\r\n", NULL, 0,
                                    &r))
            status = r.status;
    }
    *ms = now_ms() - t0;
    eddy_test_http_close(conn);
    eddy_test_http_resp_free(&r);
    return status;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The value of an unlabelled counter in /metrics; -1 if absent. */
static double metric(int port, const char *name)
{
    eddy_test_http_resp_t r = {0};
    double v = -1;
    if (!eddy_test_http("127.0.0.1", port, "GET", "/metrics", NULL, NULL, 0, &r) &&
        r.status == 200) {
        size_t n = strlen(name);
        for (const char *p = r.body; (p = strstr(p, name)); p += n)
            if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    }
    eddy_test_http_resp_free(&r);
    return v;
}

/* --- the tests -------------------------------------------------------------------------- */

/* Under every limit, slow connections are not evicted: each is closed by its header
 * deadline, counted from its accept, though it sends a byte every second. */
static void test_slow_headers_closed_by_deadline(void **state)
{
    fixture_t *fx = *state;
    double before = metric(fx->port, "eddy_http_connections_timed_out_total");
    assert_true(before >= 0);
    attack_t at;
    pthread_t thread;
    attack_start(&at, &thread, fx->port, N_DEADLINE, N_ADDRS, false);
    assert_int_equal(atomic_load(&at.failed_connect), 0);
    int64_t t0 = now_ms();
    while (atomic_load(&at.closed) < N_DEADLINE && now_ms() - t0 < HEADER_MS + 3 * CLOSE_SLACK)
        sleep_ms(50);
    attack_stop(&at, thread);
    int closed = atomic_load(&at.closed);
    int64_t shortest = INT64_MAX;
    for (int i = 0; i < N_DEADLINE; i++)
        if (at.conns[i].closed_ms && at.conns[i].closed_ms - at.conns[i].opened_ms < shortest)
            shortest = at.conns[i].closed_ms - at.conns[i].opened_ms;
    printf("phase 1: %d of %d slow connections closed, lives %lld..%lld ms (deadline %d ms)\n",
           closed, N_DEADLINE, (long long)shortest, (long long)at.longest_life_ms, HEADER_MS);
    attack_free(&at);
    if (closed < N_DEADLINE)
        fail_msg("%d of %d slow connections were still open %d ms after the %d ms deadline",
                 N_DEADLINE - closed, N_DEADLINE, 3 * CLOSE_SLACK, HEADER_MS);
    /* Not before the deadline (nothing forced an eviction), and not long after. */
    assert_true(shortest >= HEADER_MS - 150);
    assert_true(at.longest_life_ms <= HEADER_MS + CLOSE_SLACK);
    double after = metric(fx->port, "eddy_http_connections_timed_out_total");
    assert_true(after - before >= N_DEADLINE);
}

/* Several hundred slow connections, past the connection limit, the closed ones
 * reconnecting every second: fresh requests are still answered at once, and the
 * RSS stays bounded. */
static void test_slowloris_keeps_room(void **state)
{
    fixture_t *fx = *state;
    long rss0 = rss_kb(fx->pid), rss_max = rss0;
    assert_true(rss0 > 0);
    attack_t at;
    pthread_t thread;
    attack_start(&at, &thread, fx->port, N_FLOOD, N_ADDRS, true);
    int64_t lat[512];
    int nprobes = 0, bad = 0;
    int64_t t0 = now_ms();
    while (now_ms() - t0 < FLOOD_MS && nprobes < (int)(sizeof(lat) / sizeof(lat[0]))) {
        int64_t ms;
        int status = probe(fx->port, nprobes % N_ADDRS, &ms);
        if (status != 200 || ms > PROBE_MAX_MS) {
            fprintf(stderr, "probe %d from 127.0.0.%d: status %d after %lld ms\n", nprobes,
                    1 + nprobes % N_ADDRS, status, (long long)ms);
            bad++;
        }
        lat[nprobes++] = status == 200 ? ms : INT64_MAX;
        long rss = rss_kb(fx->pid);
        if (rss > rss_max)
            rss_max = rss;
        sleep_ms(100);
    }
    int open_at_end = atomic_load(&at.open_now), closes = atomic_load(&at.closed);
    attack_stop(&at, thread);
    attack_free(&at);
    qsort(lat, (size_t)nprobes, sizeof(lat[0]), cmp_i64);
    int good = 0;
    for (int i = 0; i < nprobes; i++)
        good += lat[i] < PROBE_GOOD_MS;
    printf("phase 2: %d slow connections (%d open at the end, %d closes by the server); "
           "%d probes: median %lld ms, p90 %lld ms, max %lld ms, %d under %d ms; "
           "RSS %ld kB before, %ld kB at most\n",
           N_FLOOD, open_at_end, closes, nprobes, (long long)lat[nprobes / 2],
           (long long)lat[nprobes * 9 / 10], (long long)lat[nprobes - 1], good, PROBE_GOOD_MS, rss0,
           rss_max);
    assert_true(nprobes >= 20);
    assert_int_equal(bad, 0);
    assert_true(good * 10 >= nprobes * 9);
    assert_true(closes > 0);
    assert_true(rss_max - rss0 < RSS_BOUND_KB);
    assert_true(metric(fx->port, "eddy_http_connections_evicted_total") > 0);

    /* Afterwards the server is as before. */
    int64_t ms;
    assert_int_equal(probe(fx->port, 0, &ms), 200);
}

/* Behind a proxy every client has one address: 100 slow connections from it (past
 * http.connections.max.per.ip, 64) used to make every further connection from it
 * reset at once. Now a newcomer from that address evicts its oldest slow one. */
static void test_one_address_keeps_room(void **state)
{
    fixture_t *fx = *state;
    attack_t at;
    pthread_t thread;
    attack_start(&at, &thread, fx->port, 100, 1, true);
    int bad = 0, good = 0, nprobes = 0;
    for (int64_t t0 = now_ms(); now_ms() - t0 < 3000; nprobes++) {
        int64_t ms;
        int status = probe(fx->port, 0, &ms);
        if (status != 200 || ms > PROBE_MAX_MS) {
            fprintf(stderr, "probe %d: status %d after %lld ms\n", nprobes, status, (long long)ms);
            bad++;
        }
        good += status == 200 && ms < PROBE_GOOD_MS;
        sleep_ms(100);
    }
    attack_stop(&at, thread);
    printf("one address: 100 slow connections from 127.0.0.1, %d closes by the server; %d "
           "probes from it, %d under %d ms\n",
           atomic_load(&at.closed), nprobes, good, PROBE_GOOD_MS);
    attack_free(&at);
    assert_int_equal(bad, 0);
    assert_true(good * 10 >= nprobes * 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_headers_closed_by_deadline),
        cmocka_unit_test(test_slowloris_keeps_room),
        cmocka_unit_test(test_one_address_keeps_room),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
