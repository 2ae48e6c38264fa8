/*
 * drill.c — `eddy-drill`, the crash drill: exactly-once checked from the outside.
 *
 * It runs the real binaries as child processes — `eddy broker --control`, `eddy
 * gen`, one or two `eddy run` — and, on a schedule drawn from --seed, SIGKILLs the
 * processor and restarts it (sometimes with its state dir wiped), runs a second
 * instance for a while and SIGKILLs it so the survivor takes over, and injects
 * broker faults through the control channel. Meanwhile a tail consumer keeps every
 * input record in memory (the embedded broker keeps only 5 MiB per partition), and
 * once a second the drill asks every instance what it owns and has committed: kills
 * wait until the processor is back at work, and input that retention deletes before
 * it was committed is reported. At the end every window served over HTTP is
 * compared with the reference (tests/support/window_check.h) recomputed from those
 * records; differences are traced to an input offset range where possible.
 *
 * It depends on eddy only through its command line and HTTP API. One thread runs
 * the schedule and owns the children; the tail consumer runs on its own thread.
 * See docs/drills.md.
 */
#define _GNU_SOURCE
#include "http_client.h"
#include "topic_reader.h"
#include "window_check.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define PARTITIONS  12
#define TOPIC       "log-events"
#define APP_ID      "drill"
#define MAX_ACTIONS 4096
#define MAX_X       32

static const char drill_help[] =
    "usage: eddy-drill [options]\n"
    "\n"
    "The crash drill: runs an embedded broker (eddy broker --control), the generator\n"
    "and eddy run processors as child processes, kills and restarts processors with\n"
    "SIGKILL at moments drawn from --seed (some with their state wiped), fails over\n"
    "to a second instance and back, injects broker faults, and at the end compares\n"
    "every window of topology/examples/monitoring.json served over HTTP with an\n"
    "independent reference computed from the input topic. Exit 0 only if every\n"
    "window matches and every planned step happened (1: failed, the reasons on the\n"
    "last line; 2: usage error). See docs/drills.md.\n"
    "\n"
    "options:\n"
    "  --eddy PATH          the eddy binary (default $EDDY_BIN, else ./build/eddy);\n"
    "                       copied into the work dir, so rebuilding is safe\n"
    "  --topology FILE      monitoring.json (default: the source tree's)\n"
    "  --duration SECONDS   how long the generator runs (default 120)\n"
    "  --rate N             events per second (default 40000)\n"
    "  --seed N             seed of the schedule and of the events (default 1)\n"
    "  --kills N            SIGKILL and restart the processor N times (default 10);\n"
    "                       a kill waits until the processor is back at work after\n"
    "                       the previous one (at most 60 s)\n"
    "  --no-wait            kill at the planned times even if the processor is not\n"
    "                       back at work (at high rates the input's retention then\n"
    "                       overtakes the processors)\n"
    "  --wipes N            of those restarts, N start with a wiped state dir\n"
    "                       (default 2)\n"
    "  --failovers N        N times, run a second instance for a while, then\n"
    "                       SIGKILL it so the first takes over (default 1)\n"
    "  --faults N           N request-error injections, cycling through Produce,\n"
    "                       EndTxn, AddPartitionsToTxn and TxnOffsetCommit, a few\n"
    "                       retriable errors each (default 4)\n"
    "  --outages N          N times, take one broker down for 3 s (default 1)\n"
    "  -X key=value         passed to every eddy run as -X key=value (repeatable)\n"
    "  --catchup-timeout S  how long the processors may take to catch up at the end\n"
    "                       (default 300)\n"
    "  --workdir DIR        logs and state dirs (default: a new /tmp/eddy-drill-XXXXXX,\n"
    "                       removed when the drill passes)\n"
    "  --keep               keep the work dir even when the drill passes\n"
    "  --forget N           self-check: leave the last N records of partition 0 out\n"
    "                       of the reference, so the comparison must fail\n"
    "  -h, --help           this help\n";

/* --- options ------------------------------------------------------------------ */

typedef struct opts_s {
    const char *eddy;          /* the eddy binary */
    char topology[PATH_MAX];   /* monitoring.json */
    double duration;           /* generator run time, s */
    long rate;                 /* events per second */
    long seed;                 /* schedule and event seed */
    int kills;                 /* processor kills (each restarted) */
    int wipes;                 /* restarts with a wiped state dir */
    int failovers;             /* second-instance runs */
    int faults;                /* request-error injections */
    int outages;               /* broker down/up */
    double catchup_timeout;    /* s */
    char workdir[3072];        /* logs, state dirs (short: paths go under it) */
    bool own_workdir;          /* made by us: removed on success */
    bool keep;                 /* keep it anyway */
    long forget;               /* records of partition 0 left out of the reference */
    bool no_wait;              /* kills at their planned times, at work or not */
    const char *xprops[MAX_X]; /* -X for eddy run */
    int n_xprops;              /* entries used */
} opts_t;

static opts_t opt;
static volatile sig_atomic_t stop_requested;
static int64_t t0_ns; /* start of the run (the generator's start) */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double elapsed(void)
{
    return t0_ns ? (double)(mono_ns() - t0_ns) / 1e9 : 0.0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested)
        ;
}

/* A progress line: "[  12.3s] what". */
static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%7.1fs] ", elapsed());
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

/* Why the drill fails so far ("" while it passes). */
static char reasons[4096];

static void fail_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_step(const char *fmt, ...)
{
    size_t len = strlen(reasons);
    if (len && len < sizeof(reasons))
        len += (size_t)snprintf(reasons + len, sizeof(reasons) - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (len < sizeof(reasons))
        vsnprintf(reasons + len, sizeof(reasons) - len, fmt, ap);
    va_end(ap);
}

/* The first SIGINT/SIGTERM stops the drill at its next step; a second one ends it
 * at once (the children die with it: PR_SET_PDEATHSIG). */
static void on_signal(int sig)
{
    if (stop_requested)
        _exit(128 + sig);
    stop_requested = 1;
}

/* --- seeded randomness (splitmix64): the same seed, the same schedule ---------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_range(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_next() >> 11) / 9007199254740992.0);
}

/* --- child processes ------------------------------------------------------------ */

typedef struct proc_s {
    const char *name;   /* "broker", "gen", "a", "b" */
    pid_t pid;          /* 0 when not running */
    int starts;         /* incarnations so far */
    int status;         /* wait status of the last exit */
    char log[PATH_MAX]; /* stderr of the current (or last) incarnation */
} proc_t;

static proc_t broker_proc = {.name = "broker"};
static proc_t gen_proc = {.name = "gen"};
static proc_t inst[2] = {{.name = "a"}, {.name = "b"}};

/* Starts argv as `p`: stdin from in_fd (-1: /dev/null), stdout to out_fd (-1: the
 * log), stderr to WORKDIR/<name>.<n>.log. The child dies with the drill. */
static int spawn(proc_t *p, char *const argv[], int in_fd, int out_fd)
{
    assert(p->pid == 0);
    p->starts++;
    snprintf(p->log, sizeof(p->log), "%s/%s.%d.log", opt.workdir, p->name, p->starts);
    int log_fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
        fprintf(stderr, "eddy-drill: cannot open %s: %s\n", p->log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "eddy-drill: fork: %s\n", strerror(errno));
        close(log_fd);
        close(null_fd);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the drill has threads. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(in_fd >= 0 ? in_fd : null_fd, STDIN_FILENO);
        dup2(out_fd >= 0 ? out_fd : log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        char msg[64] = "eddy-drill: exec failed, errno ";
        size_t len = strlen(msg);
        for (int e = errno, div = 1000; div > 0; div /= 10)
            if (e >= div || div == 1)
                msg[len++] = (char)('0' + (e / div) % 10);
        msg[len++] = '\n';
        ssize_t w = write(STDERR_FILENO, msg, len);
        (void)w;
        _exit(127);
    }
    close(log_fd);
    close(null_fd);
    p->pid = pid;
    return 0;
}

/* True (and p->status set, p->pid cleared) if p has exited. */
static bool reaped(proc_t *p)
{
    if (p->pid == 0)
        return true;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->status = status;
        p->pid = 0;
        return true;
    }
    return false;
}

/* Sends sig and waits up to timeout_ms for the exit; SIGKILL after that. Returns
 * true if it exited within the time. */
static bool stop_proc(proc_t *p, int sig, int timeout_ms)
{
    if (p->pid == 0)
        return true;
    kill(p->pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (reaped(p))
            return true;
        sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
    p->pid = 0;
    return false;
}

static void describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "status %#x", status);
}

/* Every child is SIGKILLed on any exit of the drill. */
static void kill_children(void)
{
    proc_t *all[] = {&inst[0], &inst[1], &gen_proc, &broker_proc};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->pid > 0) {
            kill(all[i]->pid, SIGKILL);
            waitpid(all[i]->pid, NULL, 0);
            all[i]->pid = 0;
        }
}

/* --- the broker and its control channel ----------------------------------------- */

static int broker_in = -1;  /* we write commands here */
static int broker_out = -1; /* and read answers here */
static char broker_buf[8192];
static size_t broker_len;
static char bootstrap[4096];

/* Reads one line from the broker's stdout within timeout_ms; -1 on timeout/EOF. */
static int broker_read_line(char *line, size_t cap, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        char *nl = memchr(broker_buf, '\n', broker_len);
        if (nl) {
            size_t n = (size_t)(nl - broker_buf);
            snprintf(line, cap, "%.*s", (int)n, broker_buf);
            memmove(broker_buf, nl + 1, broker_len - n - 1);
            broker_len -= n + 1;
            return 0;
        }
        int left = (int)((deadline - mono_ns()) / 1000000);
        if (left <= 0 || broker_len == sizeof(broker_buf))
            return -1;
        struct pollfd pfd = {.fd = broker_out, .events = POLLIN};
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t n = read(broker_out, broker_buf + broker_len, sizeof(broker_buf) - broker_len);
        if (n <= 0)
            return -1;
        broker_len += (size_t)n;
    }
}

static int start_broker(void)
{
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) || pipe2(from_child, O_CLOEXEC)) {
        fprintf(stderr, "eddy-drill: pipe: %s\n", strerror(errno));
        return -1;
    }
    char *const argv[] = {
        (char *)opt.eddy, "broker",           "--control", "--brokers",    "3",  "--topology",
        opt.topology,     "--application-id", APP_ID,      "--partitions", "12", NULL};
    int rc = spawn(&broker_proc, argv, to_child[0], from_child[1]);
    close(to_child[0]);
    close(from_child[1]);
    broker_in = to_child[1];
    broker_out = from_child[0];
    if (rc)
        return -1;
    char line[4096];
    if (broker_read_line(line, sizeof(line), 30000) ||
        strncmp(line, "bootstrap.servers=", 18) != 0) {
        fprintf(stderr, "eddy-drill: the broker printed no bootstrap line (see %s)\n",
                broker_proc.log);
        return -1;
    }
    snprintf(bootstrap, sizeof(bootstrap), "%s", line + 18);
    return 0;
}

/* Sends one control command; true when the broker answered "ok". */
static bool broker_command(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool broker_command(const char *fmt, ...)
{
    char cmd[512], answer[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    size_t len = strlen(cmd);
    cmd[len++] = '\n';
    bool ok = write(broker_in, cmd, len) == (ssize_t)len &&
              broker_read_line(answer, sizeof(answer), 10000) == 0 && !strcmp(answer, "ok");
    cmd[len - 1] = '\0';
    progress("broker: %s -> %s", cmd, answer[0] ? answer : "(no answer)");
    return ok;
}

/* --- the tail consumer: every input record, read while it is produced ------------ */

typedef struct tail_part_s {
    eddy_test_record_t *recs; /* in offset order */
    size_t n;                 /* records */
    size_t cap;               /* allocated */
    int64_t next;             /* the next offset expected */
} tail_part_t;

typedef struct tail_s {
    rd_kafka_t *rk;                /* assign()-only consumer, no group */
    rd_kafka_t *meta_rk;           /* a producer that only asks for watermarks */
    pthread_t thread;              /* runs tail_main */
    atomic_bool stop;              /* set by the main thread */
    bool running;                  /* the thread was started */
    pthread_mutex_t lock;          /* guards parts[].next, gaps, errors */
    tail_part_t parts[PARTITIONS]; /* per partition */
    int64_t gaps;                  /* records skipped (deleted before we read them) */
    int64_t errors;                /* consumer errors seen (transient ones included) */
    char first_gap[256];           /* the first gap, for the report */
} tail_t;

static tail_t tail = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *tail_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&tail.stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(tail.rk, 100);
        if (!msg)
            continue;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                pthread_mutex_lock(&tail.lock);
                tail.errors++;
                pthread_mutex_unlock(&tail.lock);
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        tail_part_t *tp = &tail.parts[msg->partition];
        if (msg->offset < tp->next) { /* a re-delivery after a fetch error */
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (tp->n == tp->cap) {
            tp->cap = tp->cap ? tp->cap * 2 : 65536;
            tp->recs = realloc(tp->recs, tp->cap * sizeof(*tp->recs));
            if (!tp->recs)
                abort();
        }
        eddy_test_record_set(&tp->recs[tp->n++], msg);
        pthread_mutex_lock(&tail.lock);
        if (msg->offset > tp->next) {
            if (!tail.gaps)
                snprintf(tail.first_gap, sizeof(tail.first_gap),
                         "partition %d: offsets %lld..%lld were gone before the tail read them",
                         (int)msg->partition, (long long)tp->next, (long long)msg->offset - 1);
            tail.gaps += msg->offset - tp->next;
        }
        tp->next = msg->offset + 1;
        pthread_mutex_unlock(&tail.lock);
        rd_kafka_message_destroy(msg);
    }
    return NULL;
}

static FILE *tail_log; /* the tail consumer's librdkafka log */

static void tail_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (tail_log)
        fprintf(tail_log, "%d %s %s\n", level, fac, buf);
}

static int tail_start(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* assign() only: the group.id is required but never joined. */
    static const char *const props[][2] = {
        {"group.id", "eddy-drill-tail"},   {"enable.auto.commit", "false"},
        {"auto.offset.reset", "earliest"}, {"log_level", "3"},
        {"client.id", "eddy-drill-tail"},
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr))) {
        fprintf(stderr, "eddy-drill: tail: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        rd_kafka_conf_set(conf, props[i][0], props[i][1], NULL, 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/tail.log", opt.workdir);
    tail_log = fopen(path, "w");
    if (tail_log)
        setvbuf(tail_log, NULL, _IOLBF, 0);
    rd_kafka_conf_set_log_cb(conf, tail_log_cb);
    tail.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!tail.rk) {
        fprintf(stderr, "eddy-drill: tail: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    /* Watermark queries go through a handle of their own: on the consumer's
     * connections they would queue behind fetches that wait for new data. */
    rd_kafka_conf_t *meta_conf = rd_kafka_conf_new();
    rd_kafka_conf_set(meta_conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(meta_conf, "client.id", "eddy-drill-watermarks", NULL, 0);
    rd_kafka_conf_set_log_cb(meta_conf, tail_log_cb);
    tail.meta_rk = rd_kafka_new(RD_KAFKA_PRODUCER, meta_conf, errstr, sizeof(errstr));
    if (!tail.meta_rk) {
        fprintf(stderr, "eddy-drill: watermarks: %s\n", errstr);
        rd_kafka_conf_destroy(meta_conf);
        return -1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(list, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t err = rd_kafka_assign(tail.rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        fprintf(stderr, "eddy-drill: tail: assign: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    if (pthread_create(&tail.thread, NULL, tail_main, NULL)) {
        fprintf(stderr, "eddy-drill: tail: cannot start its thread\n");
        return -1;
    }
    tail.running = true;
    return 0;
}

/* Records read so far. */
static int64_t tail_count(void)
{
    int64_t n = 0;
    pthread_mutex_lock(&tail.lock);
    for (int p = 0; p < PARTITIONS; p++)
        n += tail.parts[p].next;
    pthread_mutex_unlock(&tail.lock);
    return n; /* offsets start at 0, so next offsets sum to records seen or skipped */
}

/* High watermarks of every partition; -1 on failure. */
static int high_watermarks(int64_t hw[PARTITIONS])
{
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(tail.meta_rk, TOPIC, p, &lo, &hw[p], 10000);
        if (err) {
            fprintf(stderr, "eddy-drill: watermarks of %s[%d]: %s\n", TOPIC, p,
                    rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

/* Waits until the tail has read every partition up to hw. */
static bool tail_wait(const int64_t hw[PARTITIONS], int timeout_s)
{
    for (int i = 0; i < timeout_s * 10 && !stop_requested; i++) {
        bool done = true;
        pthread_mutex_lock(&tail.lock);
        for (int p = 0; p < PARTITIONS; p++)
            done = done && tail.parts[p].next >= hw[p];
        pthread_mutex_unlock(&tail.lock);
        if (done)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* Stops the thread and moves the records into *out (ordered by partition, offset). */
static void tail_finish(eddy_test_topic_t *out)
{
    atomic_store(&tail.stop, true);
    if (tail.running)
        pthread_join(tail.thread, NULL);
    tail.running = false;
    rd_kafka_consumer_close(tail.rk);
    rd_kafka_destroy(tail.rk);
    tail.rk = NULL;
    if (tail.meta_rk)
        rd_kafka_destroy(tail.meta_rk);
    tail.meta_rk = NULL;
    if (tail_log)
        fclose(tail_log);
    tail_log = NULL;
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    for (int p = 0; p < PARTITIONS; p++)
        n += tail.parts[p].n;
    out->recs = calloc(n ? n : 1, sizeof(*out->recs));
    out->partitions = PARTITIONS;
    for (int p = 0; p < PARTITIONS; p++) {
        memcpy(out->recs + out->n, tail.parts[p].recs, tail.parts[p].n * sizeof(*out->recs));
        out->n += tail.parts[p].n;
        free(tail.parts[p].recs);
        tail.parts[p].recs = NULL;
    }
}

/* Records whose payload equals an earlier record's. Every generated event carries
 * a random request_id, so an equal payload is the same event written twice (by
 * the producer's retries, say, on a broker that does not deduplicate them). The
 * reference counts such records as often as they are in the topic, like eddy. */
static size_t count_duplicates(const eddy_test_topic_t *in, char *first, size_t cap)
{
    size_t slots = 1024;
    while (slots < in->n * 2)
        slots <<= 1;
    size_t *table = calloc(slots, sizeof(*table)); /* record index + 1; 0 = empty */
    if (!table)
        abort();
    size_t dups = 0;
    for (size_t i = 0; i < in->n; i++) {
        const eddy_test_record_t *r = &in->recs[i];
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (size_t k = 0; k < r->len; k++)
            h = (h ^ (unsigned char)r->value[k]) * 0x100000001b3ULL;
        size_t j = (size_t)h & (slots - 1);
        const eddy_test_record_t *same = NULL;
        for (; table[j]; j = (j + 1) & (slots - 1)) {
            const eddy_test_record_t *o = &in->recs[table[j] - 1];
            if (o->len == r->len && !memcmp(o->value, r->value, r->len)) {
                same = o;
                break;
            }
        }
        if (!same) {
            table[j] = i + 1;
            continue;
        }
        if (dups++ == 0)
            snprintf(first, cap, "partition %d offset %lld repeats offset %lld", (int)r->partition,
                     (long long)r->offset, (long long)same->offset);
    }
    free(table);
    return dups;
}

/* Records the broker's retention has deleted so far from `topic` (the sum of its
 * low watermarks), and on how many partitions; -1 if it cannot tell. */
static int64_t retention_lost(const char *topic, int *partitions)
{
    int64_t lost = 0;
    *partitions = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(tail.meta_rk, topic, p, &lo, &hi, 1000))
            return -1; /* e.g. its leader is down: do not wait for every partition */
        lost += lo;
        *partitions += lo > 0;
    }
    return lost;
}

/* One line on what the embedded broker's 5 MiB per partition has deleted: the
 * input, and the changelogs `eddy broker --application-id` created. A restore
 * from a changelog whose beginning is gone cannot be complete. */
static int broker_down; /* the broker id an outage has taken down, 0 if none */

static void report_retention(const char *when)
{
    if (broker_down) {
        progress("retention (%s): not asked, broker %d is down", when, broker_down);
        return;
    }
    static const char *const stores[] = {"requests_per_endpoint", "endpoint_stats", "status_codes",
                                         "region_stats"};
    char line[1024];
    int parts;
    int64_t lost = retention_lost(TOPIC, &parts);
    int len = snprintf(line, sizeof(line), "retention (%s): %s lost %lld records (%d partitions)",
                       when, TOPIC, (long long)lost, parts);
    for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]) && len < (int)sizeof(line); i++) {
        char topic[256];
        snprintf(topic, sizeof(topic), "%s-%s-changelog", APP_ID, stores[i]);
        lost = retention_lost(topic, &parts);
        len += snprintf(line + len, sizeof(line) - (size_t)len, "; %s %lld (%d)", stores[i],
                        (long long)lost, parts);
    }
    progress("%s", line);
}

/* --- processors ------------------------------------------------------------------ */

static int ports[2];
static char state_dirs[2][PATH_MAX];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int start_instance(int i)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", ports[i]);
    char *argv[32 + 2 * MAX_X];
    int n = 0;
    char *const fixed[] = {(char *)opt.eddy,
                           "run",
                           "--bootstrap",
                           bootstrap,
                           "--topology",
                           opt.topology,
                           "--state-dir",
                           state_dirs[i],
                           "--http",
                           listen,
                           "--threads",
                           "2",
                           "--application-id",
                           APP_ID,
                           "-X",
                           "consumer.session.timeout.ms=3000",
                           "-X",
                           "consumer.heartbeat.interval.ms=500",
                           "-X",
                           "consumer.partition.assignment.strategy=roundrobin"};
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
        argv[n++] = fixed[k];
    for (int k = 0; k < opt.n_xprops; k++) {
        argv[n++] = "-X";
        argv[n++] = (char *)opt.xprops[k];
    }
    argv[n] = NULL;
    return spawn(&inst[i], argv, -1, -1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* GET /api/health of instance i; NULL if it does not answer. */
static json_t *health(int i)
{
    eddy_test_http_resp_t resp = {0};
    json_t *body = NULL;
    if (eddy_test_http("127.0.0.1", ports[i], "GET", "/api/health", NULL, NULL, 0, &resp) == 0 &&
        resp.status == 200)
        body = json_loadb(resp.body, resp.body_len, 0, NULL);
    eddy_test_http_resp_free(&resp);
    return body;
}

/* What GET /api/health of an instance says (query/api.c). */
typedef struct health_s {
    int owned;                     /* partitions it owns; -1: no answer */
    int64_t committed[PARTITIONS]; /* committed offset of each; -1 where not owned */
    int64_t committed_records;     /* totals.committed_records */
    int64_t commits;               /* totals.commits since the process started */
    double commit_seconds;         /* totals.commit_seconds_total */
} health_t;

/* Asks instance i how it is doing; h->owned < 0 when it does not answer. */
static void get_health(int i, health_t *h)
{
    memset(h, 0, sizeof(*h));
    h->owned = -1;
    for (int p = 0; p < PARTITIONS; p++)
        h->committed[p] = -1;
    json_t *body = health(i);
    if (!body)
        return;
    size_t k;
    json_t *part;
    h->owned = 0;
    json_array_foreach(json_object_get(body, "partitions"), k, part)
    {
        json_int_t p = json_integer_value(json_object_get(part, "partition"));
        if (p >= 0 && p < PARTITIONS) {
            h->committed[p] = json_integer_value(json_object_get(part, "committed_offset"));
            h->owned++;
        }
    }
    json_t *totals = json_object_get(body, "totals");
    h->committed_records = json_integer_value(json_object_get(totals, "committed_records"));
    h->commits = json_integer_value(json_object_get(totals, "commits"));
    h->commit_seconds = json_number_value(json_object_get(totals, "commit_seconds_total"));
    json_decref(body);
}

/* --- the schedule ----------------------------------------------------------------- */

typedef enum act_kind_e {
    ACT_KILL,    /* SIGKILL instance a, restart it after `delay` (wiped: state dir first) */
    ACT_B_START, /* a failover begins: start instance b */
    ACT_B_KILL,  /* and ends: SIGKILL b, a takes over */
    ACT_FAULT,   /* request errors (arg: which kind) */
    ACT_DOWN,    /* broker arg down */
    ACT_UP,      /* and up again */
} act_kind_t;

typedef struct action_s {
    double t;        /* planned time, seconds after the start */
    act_kind_t kind; /* what */
    int arg;         /* fault kind or broker id */
    bool wipe;       /* ACT_KILL: the restart wipes the state dir */
    double delay;    /* ACT_KILL: seconds from the kill to the restart */
    int seq;         /* insertion order, for a stable sort */
    bool done;       /* carried out */
} action_t;

static action_t actions[MAX_ACTIONS];
static int n_actions;

static void plan(action_t a)
{
    a.seq = n_actions;
    actions[n_actions++] = a;
}

static int by_time(const void *a, const void *b)
{
    const action_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq - y->seq;
}

/* The request-error injections, cycled through: a few retriable errors each. */
static const struct {
    const char *request;
    const char *errors[2];
    int counts[2];
} fault_kinds[] = {
    {"Produce", {"NOT_LEADER_FOR_PARTITION", "REQUEST_TIMED_OUT"}, {2, 1}},
    {"EndTxn", {"CONCURRENT_TRANSACTIONS", "COORDINATOR_NOT_AVAILABLE"}, {2, 1}},
    {"AddPartitionsToTxn", {"CONCURRENT_TRANSACTIONS", "COORDINATOR_LOAD_IN_PROGRESS"}, {2, 1}},
    {"TxnOffsetCommit", {"COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"}, {2, 1}},
};
#define N_FAULT_KINDS (int)(sizeof(fault_kinds) / sizeof(fault_kinds[0]))
#define OUTAGE_S      3.0

/* Draws the schedule from the seed. Returns a reason when the options do not fit
 * into the duration, else NULL. Every planned time lies within the generator's
 * run (the middle 80% of it). */
static const char *make_schedule(void)
{
    const double lo = opt.duration * 0.1 > 1 ? opt.duration * 0.1 : 1, hi = opt.duration * 0.9;
    const double span = hi - lo;
    if (opt.kills > 0) {
        double slot = span / opt.kills;
        if (slot < 1.5)
            return "--kills: at most one kill per 1.5 s of the middle 80% of --duration";
        /* Which restarts wipe: a seeded shuffle of the kill numbers. */
        int order[MAX_ACTIONS / 4];
        for (int i = 0; i < opt.kills; i++)
            order[i] = i;
        for (int i = opt.kills - 1; i > 0; i--) {
            int j = (int)(rng_next() % (uint64_t)(i + 1));
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        bool wipe[MAX_ACTIONS / 4] = {false};
        for (int i = 0; i < opt.wipes; i++)
            wipe[order[i]] = true;
        for (int i = 0; i < opt.kills; i++) {
            double t = lo + i * slot + rng_range(0, 0.5 * slot);
            double delay = rng_range(0.2, 0.4 * slot < 2.0 ? 0.4 * slot : 2.0);
            plan((action_t){.t = t, .kind = ACT_KILL, .wipe = wipe[i], .delay = delay});
        }
    }
    if (opt.failovers > 0) {
        double seg = span / opt.failovers;
        if (seg < 10)
            return "--failovers: each needs 10 s of the middle 80% of --duration";
        double life = 0.7 * seg < 8 ? 8 : 0.7 * seg > 30 ? 30 : 0.7 * seg;
        for (int i = 0; i < opt.failovers; i++) {
            double t = lo + i * seg + rng_range(0, seg - life);
            plan((action_t){.t = t, .kind = ACT_B_START});
            plan((action_t){.t = t + life, .kind = ACT_B_KILL});
        }
    }
    for (int i = 0; i < opt.faults; i++)
        plan((action_t){.t = rng_range(lo, hi), .kind = ACT_FAULT, .arg = i % N_FAULT_KINDS});
    if (opt.outages > 0) {
        double slot = (span - OUTAGE_S) / opt.outages;
        if (slot < OUTAGE_S + 1)
            return "--outages: each needs 4 s of the middle 80% of --duration";
        for (int i = 0; i < opt.outages; i++) {
            double t = lo + i * slot + rng_range(0, slot - OUTAGE_S - 1);
            int id = 1 + (int)(rng_next() % 3);
            plan((action_t){.t = t, .kind = ACT_DOWN, .arg = id});
            plan((action_t){.t = t + OUTAGE_S, .kind = ACT_UP, .arg = id});
        }
    }
    qsort(actions, (size_t)n_actions, sizeof(actions[0]), by_time);
    return NULL;
}

/* --- watching: who owns what, and what retention deleted -------------------------- */

/* The latest answers of the instances and the broker, refreshed once a second. */
typedef struct view_s {
    health_t inst[2];              /* what each instance said last; owned -1: no answer */
    health_t shown[2];             /* what the last status line showed */
    int64_t lo[PARTITIONS];        /* the input's low watermarks (retention) */
    int64_t hi[PARTITIONS];        /* and high ones */
    int64_t best[PARTITIONS];      /* highest offset any instance has committed */
    int64_t lost_upto[PARTITIONS]; /* offsets below this are counted in lost */
    int64_t lost[PARTITIONS];      /* deleted before any instance committed them */
} view_t;

static view_t view;

/* Refreshes the view. Records that retention deleted while no instance had
 * committed past them can never be counted: eddy's consumer resets to the log
 * start. Those are tallied (and the first loss on a partition is printed), so that
 * mismatches that follow are explained. Committed offsets are sampled once a
 * second, so a loss right at the edge may be over-counted by a second's worth. */
static void observe(void)
{
    for (int i = 0; i < 2; i++) {
        health_t *h = &view.inst[i];
        if (inst[i].pid > 0) {
            get_health(i, h);
        } else {
            memset(h, 0, sizeof(*h));
            h->owned = -1;
        }
        for (int p = 0; p < PARTITIONS; p++)
            if (h->owned >= 0 && h->committed[p] > view.best[p])
                view.best[p] = h->committed[p];
    }
    if (!tail.rk)
        return;
    for (int p = 0; p < PARTITIONS; p++) {
        /* The watermarks of the tail's last fetch: no request, so no wait when a
         * broker is down (they are as old as that broker's outage, then). */
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(tail.rk, TOPIC, p, &lo, &hi) || lo < 0 || hi < 0)
            continue;
        view.lo[p] = lo;
        view.hi[p] = hi;
        int64_t from = view.best[p] > view.lost_upto[p] ? view.best[p] : view.lost_upto[p];
        if (lo <= from)
            continue;
        if (view.lost[p] == 0)
            progress("retention overtook processing: partition %d, offsets %lld..%lld were "
                     "deleted by the broker before any processor committed them",
                     p, (long long)from, (long long)lo - 1);
        view.lost[p] += lo - from;
        view.lost_upto[p] = lo;
    }
}

/* Records lost to retention so far, and on how many partitions. */
static int64_t retention_losses(int *partitions)
{
    int64_t n = 0;
    *partitions = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        n += view.lost[p];
        *partitions += view.lost[p] > 0;
    }
    return n;
}

/* True when instance a is back at work: every partition is owned (by a, or by a
 * and b while b runs) and a is less than about 10 s of input behind on each of its
 * own (a kill costs 3-6 s; the broker keeps about 34 s of input at 40,000
 * events/s). All partitions, not some: after a kill the embedded broker can hand
 * half of them to the dead instance's members until their session times out, and
 * killing a then leaves those unprocessed for another round. */
static bool a_at_work(void)
{
    const health_t *h = &view.inst[0];
    if (inst[0].pid == 0 || h->owned <= 0)
        return false;
    int b_owned = inst[1].pid != 0 && view.inst[1].owned > 0 ? view.inst[1].owned : 0;
    if (h->owned + b_owned < PARTITIONS)
        return false;
    int64_t allowed = 10 * opt.rate / PARTITIONS > 2000 ? 10 * opt.rate / PARTITIONS : 2000;
    for (int p = 0; p < PARTITIONS; p++)
        if (h->committed[p] >= 0 && h->committed[p] < view.hi[p] - allowed)
            return false;
    return true;
}

/* "status: N records read back; a: 12 partitions, M committed, 48 commits of 21 ms
 * on average": the commits since the previous status line (same incarnation). */
static void status_line(void)
{
    char parts[384] = "";
    size_t len = 0;
    for (int i = 0; i < 2 && len < sizeof(parts); i++) {
        const health_t *h = &view.inst[i], *prev = &view.shown[i];
        if (inst[i].pid == 0)
            continue;
        if (h->owned < 0) {
            len += (size_t)snprintf(parts + len, sizeof(parts) - len, "; %s: not answering",
                                    inst[i].name);
            continue;
        }
        len += (size_t)snprintf(parts + len, sizeof(parts) - len,
                                "; %s: %d partitions, %lld committed", inst[i].name, h->owned,
                                (long long)h->committed_records);
        int64_t commits = h->commits - (h->commits >= prev->commits ? prev->commits : 0);
        double secs = h->commit_seconds - (h->commits >= prev->commits ? prev->commit_seconds : 0);
        if (commits > 0 && len < sizeof(parts))
            len += (size_t)snprintf(parts + len, sizeof(parts) - len,
                                    ", %lld commits of %.0f ms on average", (long long)commits,
                                    1000 * secs / (double)commits);
        view.shown[i] = *h;
    }
    progress("status: %lld records read back%s", (long long)tail_count(), parts);
}

/* --- the run ------------------------------------------------------------------------ */

typedef struct tally_s {
    int kills, wipes, failovers, faults, outages; /* done */
    int failovers_unowned; /* second instances killed before they owned anything */
    int failovers_died;    /* second instances that died on their own before their kill */
    int kills_forced;      /* kills that waited KILL_WAIT_S for a to get back to work */
    int unexpected_exits;  /* processors that died without being killed */
    int control_errors;    /* control commands not answered ok */
    int b_max_owned;       /* partitions the current second instance owned at most */
} tally_t;

static tally_t done;
static size_t input_duplicates; /* records in the input topic twice */
static double restart_at = -1;  /* when to start a again after a kill; < 0: none due */
static bool restart_wipe;       /* and whether to wipe its state dir first */

/* How long a failover's kill waits past its time for b to own a partition: the
 * group may still be rebalancing after earlier kills (a SIGKILLed member stays in
 * it until its session times out). */
#define FAILOVER_WAIT_S 60.0
/* How long a kill of a waits past its time for a to be back at work (unless
 * --no-wait). */
#define KILL_WAIT_S 60.0

static void run_action(const action_t *a, double now)
{
    switch (a->kind) {
    case ACT_KILL: {
        char late[64] = "";
        if (now - a->t >= 0.5)
            snprintf(late, sizeof(late), "; %.1f s after its time, a was not at work", now - a->t);
        progress("kill -9 processor a (pid %d%s)", (int)inst[0].pid, late);
        kill(inst[0].pid, SIGKILL);
        waitpid(inst[0].pid, &inst[0].status, 0);
        inst[0].pid = 0;
        view.inst[0].owned = -1; /* what it said is stale now */
        done.kills++;
        restart_at = now + a->delay;
        restart_wipe = a->wipe;
        break;
    }
    case ACT_B_START:
        done.b_max_owned = 0;
        if (start_instance(1) == 0)
            progress("failover: start a second instance b (pid %d, http 127.0.0.1:%d, log %s)",
                     (int)inst[1].pid, ports[1], inst[1].log);
        break;
    case ACT_B_KILL:
        if (inst[1].pid > 0) {
            progress("failover: kill -9 instance b (pid %d; it owned up to %d partitions); a takes "
                     "over",
                     (int)inst[1].pid, done.b_max_owned);
            kill(inst[1].pid, SIGKILL);
            waitpid(inst[1].pid, &inst[1].status, 0);
            inst[1].pid = 0;
            if (done.b_max_owned > 0)
                done.failovers++;
            else
                done.failovers_unowned++;
        } else {
            progress("failover: instance b is not running (it died on its own), nothing to kill");
            done.failovers_died++;
        }
        break;
    case ACT_FAULT: {
        bool ok = true;
        for (int e = 0; e < 2; e++)
            ok = broker_command("error %s %d %s", fault_kinds[a->arg].request,
                                fault_kinds[a->arg].counts[e], fault_kinds[a->arg].errors[e]) &&
                 ok;
        if (ok)
            done.faults++;
        else
            done.control_errors++;
        break;
    }
    case ACT_DOWN:
        if (broker_command("down %d", a->arg))
            broker_down = a->arg;
        else
            done.control_errors++;
        break;
    case ACT_UP:
        if (broker_command("up %d", a->arg)) {
            done.outages++;
            broker_down = 0;
        } else {
            done.control_errors++;
        }
        break;
    }
}

static void restart_a(void)
{
    if (restart_wipe) {
        report_retention("before the wipe");
        rmtree(state_dirs[0]);
        done.wipes++;
    }
    if (start_instance(0) == 0)
        progress("start processor a%s (pid %d, log %s)",
                 restart_wipe ? " with its state wiped" : "", (int)inst[0].pid, inst[0].log);
    view.inst[0].owned = -1; /* not at work until it says so */
    restart_at = -1;
}

/* The last line of a log file (what a crashed process said last), "" if none. */
static void last_line(const char *path, char *out, size_t cap)
{
    char buf[4096];
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    char *nl = strrchr(buf, '\n');
    const char *line = nl ? nl + 1 : buf;
    size_t len = strlen(line) < cap - 1 ? strlen(line) : cap - 1;
    memcpy(out, line, len);
    out[len] = '\0';
}

/* Notices processors that died on their own; a is restarted so the drill goes on. */
static void watch_instances(void)
{
    for (int i = 0; i < 2; i++) {
        if (inst[i].pid == 0 || !reaped(&inst[i]))
            continue;
        char how[96], said[512];
        describe_status(inst[i].status, how, sizeof(how));
        last_line(inst[i].log, said, sizeof(said));
        progress("processor %s died on its own (%s); its last words: \"%s\" (see %s)", inst[i].name,
                 how, said, inst[i].log);
        done.unexpected_exits++;
        view.inst[i].owned = -1;
        if (i == 0 && restart_at < 0 && start_instance(0) == 0)
            progress("start processor a again (pid %d, log %s)", (int)inst[0].pid, inst[0].log);
    }
}

/* Whether action `a` may run now. A kill of a waits (unless --no-wait, and at
 * most KILL_WAIT_S) until a is back at work after the previous kill, so that
 * every kill hits a processor that is processing and committing, and the
 * processors never fall further behind than one outage (the broker keeps only
 * about 30 s of input at 40,000 events/s). A failover's kill waits until b has
 * owned a partition. */
static bool ready(const action_t *a, double now)
{
    switch (a->kind) {
    case ACT_KILL:
        if (inst[0].pid == 0 || restart_at >= 0)
            return false; /* the previous kill's restart is still due */
        if (opt.no_wait || a_at_work())
            return true;
        if (now < a->t + KILL_WAIT_S)
            return false;
        done.kills_forced++;
        return true;
    case ACT_B_KILL:
        return done.b_max_owned > 0 || inst[1].pid == 0 || now >= a->t + FAILOVER_WAIT_S;
    default:
        return true;
    }
}

/* Carries out the schedule while the generator runs, and after it as long as
 * steps are pending. Actions run in the order of their planned times; a kill or
 * failover step that is not ready() holds back the later ones of its kind. Returns
 * false if the drill cannot go on. */
static bool run_schedule(void)
{
    double next_status = 5, next_observe = 0;
    bool gen_done = false;
    while (!stop_requested) {
        double now = elapsed();
        if (now >= next_observe) {
            observe();
            if (view.inst[1].owned > done.b_max_owned)
                done.b_max_owned = view.inst[1].owned;
            next_observe = now + 1;
            if (now >= next_status) {
                status_line();
                next_status += 5;
            }
        }
        if (restart_at >= 0 && now >= restart_at)
            restart_a();
        bool kill_held = false, b_held = false, all_done = restart_at < 0;
        for (int i = 0; i < n_actions; i++) {
            action_t *a = &actions[i];
            if (a->done)
                continue;
            all_done = false;
            if (a->t > now)
                break;
            bool *held = a->kind == ACT_KILL                               ? &kill_held
                         : a->kind == ACT_B_START || a->kind == ACT_B_KILL ? &b_held
                                                                           : NULL;
            if (held && *held)
                continue;
            if (!ready(a, now)) {
                if (held)
                    *held = true;
                continue;
            }
            run_action(a, now);
            a->done = true;
        }
        if (broker_proc.pid > 0 && reaped(&broker_proc)) {
            char how[96];
            describe_status(broker_proc.status, how, sizeof(how));
            fail_step("the broker died (%s; see %s)", how, broker_proc.log);
            return false;
        }
        watch_instances();
        if (!gen_done && reaped(&gen_proc)) {
            gen_done = true;
            char how[96];
            describe_status(gen_proc.status, how, sizeof(how));
            progress("generator finished (%s)", how);
            if (!WIFEXITED(gen_proc.status) || WEXITSTATUS(gen_proc.status) != 0)
                fail_step("the generator ended with %s (see %s)", how, gen_proc.log);
        }
        if (gen_done && all_done)
            return true;
        if (!gen_done && now > opt.duration + 120) {
            stop_proc(&gen_proc, SIGTERM, 10000);
            fail_step("the generator was still running 120 s after --duration");
            gen_done = true;
        }
        sleep_ms(20);
    }
    fail_step("interrupted");
    return false;
}

/* Parses the generator's JSON summary line. */
static void gen_summary(int64_t *acked, int64_t *failed, double *seconds)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/gen.out", opt.workdir);
    json_t *s = json_load_file(path, 0, NULL);
    *acked = s ? json_integer_value(json_object_get(s, "acked")) : -1;
    *failed = s ? json_integer_value(json_object_get(s, "failed")) : -1;
    *seconds = s ? json_number_value(json_object_get(s, "seconds")) : 0;
    json_decref(s);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("eddy-drill: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'eddy-drill --help')\n", stderr);
    va_end(ap);
    exit(2);
}

static long parse_long(const char *name, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        usage_error("%s must be an integer in %ld..%ld, not '%s'", name, min, max, s);
    return v;
}

static double parse_seconds(const char *name, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        usage_error("%s must be a number of seconds in %g..%g, not '%s'", name, min, max, s);
    return v;
}

static void parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"eddy", required_argument, NULL, 'e'},
        {"topology", required_argument, NULL, 'T'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"kills", required_argument, NULL, 'k'},
        {"wipes", required_argument, NULL, 'w'},
        {"failovers", required_argument, NULL, 'f'},
        {"faults", required_argument, NULL, 'F'},
        {"outages", required_argument, NULL, 'o'},
        {"catchup-timeout", required_argument, NULL, 'c'},
        {"workdir", required_argument, NULL, 'W'},
        {"keep", no_argument, NULL, 'K'},
        {"forget", required_argument, NULL, 'g'},
        {"no-wait", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("EDDY_BIN");
    opt = (opts_t){.eddy = env && *env ? env : "./build/eddy",
                   .duration = 120,
                   .rate = 40000,
                   .seed = 1,
                   .kills = 10,
                   .wipes = 2,
                   .failovers = 1,
                   .faults = 4,
                   .outages = 1,
                   .catchup_timeout = 300};
    snprintf(opt.topology, sizeof(opt.topology), "%s/topology/examples/monitoring.json",
             EDDY_SOURCE_DIR);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            opt.eddy = optarg;
            break;
        case 'T':
            snprintf(opt.topology, sizeof(opt.topology), "%s", optarg);
            break;
        case 'd':
            opt.duration = parse_seconds("--duration", optarg, 10, 86400);
            break;
        case 'r':
            opt.rate = parse_long("--rate", optarg, 1, 1000000);
            break;
        case 's':
            opt.seed = parse_long("--seed", optarg, 0, LONG_MAX);
            break;
        case 'k':
            opt.kills = (int)parse_long("--kills", optarg, 0, 1000);
            break;
        case 'w':
            opt.wipes = (int)parse_long("--wipes", optarg, 0, 1000);
            break;
        case 'f':
            opt.failovers = (int)parse_long("--failovers", optarg, 0, 100);
            break;
        case 'F':
            opt.faults = (int)parse_long("--faults", optarg, 0, 1000);
            break;
        case 'o':
            opt.outages = (int)parse_long("--outages", optarg, 0, 100);
            break;
        case 'c':
            opt.catchup_timeout = parse_seconds("--catchup-timeout", optarg, 1, 86400);
            break;
        case 'W':
            if (strlen(optarg) >= sizeof(opt.workdir) - 32)
                usage_error("--workdir is too long");
            snprintf(opt.workdir, sizeof(opt.workdir), "%s", optarg);
            break;
        case 'K':
            opt.keep = true;
            break;
        case 'g':
            opt.forget = parse_long("--forget", optarg, 0, LONG_MAX);
            break;
        case 'N':
            opt.no_wait = true;
            break;
        case 'X':
            if (opt.n_xprops == MAX_X)
                usage_error("at most %d -X options", MAX_X);
            if (!strchr(optarg, '=') || optarg[0] == '=')
                usage_error("-X '%s' is not key=value", optarg);
            opt.xprops[opt.n_xprops++] = optarg;
            break;
        case 'h':
            fputs(drill_help, stdout);
            exit(0);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (opt.wipes > opt.kills)
        usage_error("--wipes (%d) cannot exceed --kills (%d): a wipe happens at a restart",
                    opt.wipes, opt.kills);
    if (access(opt.eddy, X_OK) != 0)
        usage_error("no executable eddy at '%s' (--eddy PATH or EDDY_BIN)", opt.eddy);
    if (access(opt.topology, R_OK) != 0)
        usage_error("cannot read the topology '%s' (--topology FILE)", opt.topology);
}

/* Copies the eddy binary into the work dir and runs the copy from then on, so
 * that a rebuild during the drill cannot change (or briefly remove) what runs. */
static int copy_binary(void)
{
    static char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s/eddy", opt.workdir);
    int in = open(opt.eddy, O_RDONLY | O_CLOEXEC);
    int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    bool ok = in >= 0 && out >= 0;
    char buf[65536];
    ssize_t n = 0;
    while (ok && (n = read(in, buf, sizeof(buf))) > 0)
        ok = write(out, buf, (size_t)n) == n;
    ok = ok && n == 0;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "eddy-drill: cannot copy %s to %s: %s\n", opt.eddy, copy, strerror(errno));
        return -1;
    }
    opt.eddy = copy;
    return 0;
}

/* Creates the work dir (unless given) and the state dir and port of each instance. */
static int prepare_workdir(void)
{
    if (!opt.workdir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(opt.workdir, sizeof(opt.workdir), "%.2000s/eddy-drill-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(opt.workdir)) {
            fprintf(stderr, "eddy-drill: mkdtemp %s: %s\n", opt.workdir, strerror(errno));
            return -1;
        }
        opt.own_workdir = true;
    } else if (mkdir(opt.workdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "eddy-drill: mkdir %s: %s\n", opt.workdir, strerror(errno));
        return -1;
    }
    if (copy_binary())
        return -1;
    for (int i = 0; i < 2; i++) {
        snprintf(state_dirs[i], sizeof(state_dirs[i]), "%s/state-%s", opt.workdir, inst[i].name);
        rmtree(state_dirs[i]);
        if ((ports[i] = free_port()) < 0) {
            fprintf(stderr, "eddy-drill: no free loopback port\n");
            return -1;
        }
    }
    return 0;
}

static void print_plan(void)
{
    printf("eddy-drill: seed %ld, %g s at %ld events/s; %d kills (%d wiped), %d failovers, "
           "%d faults, %d outages; work dir %s\n",
           opt.seed, opt.duration, opt.rate, opt.kills, opt.wipes, opt.failovers, opt.faults,
           opt.outages, opt.workdir);
    static const char *const names[] = {
        [ACT_KILL] = "kill a", [ACT_B_START] = "start b", [ACT_B_KILL] = "kill b",
        [ACT_FAULT] = "fault", [ACT_DOWN] = "down",       [ACT_UP] = "up",
    };
    printf("schedule%s:", opt.no_wait ? "" : " (kills wait for a to be at work)");
    for (int i = 0; i < n_actions; i++) {
        const action_t *a = &actions[i];
        printf("%s %.1fs %s", i ? "," : "", a->t, names[a->kind]);
        if (a->kind == ACT_FAULT)
            printf(" %s", fault_kinds[a->arg].request);
        else if (a->kind == ACT_DOWN || a->kind == ACT_UP)
            printf(" %d", a->arg);
        else if (a->kind == ACT_KILL)
            printf(" (restart +%.1fs%s)", a->delay, a->wipe ? ", wiped" : "");
    }
    printf("\n");
    fflush(stdout);
}

/* The broker, the tail and processor a; once a owns every partition, the
 * generator, whose start is t = 0 of the schedule. Event time follows the wall
 * clock (start at now, spread over --duration), so windows close as in production
 * and the same seed gives the same events. */
static bool start_all(void)
{
    if (start_broker()) {
        fail_step("the broker did not start");
        return false;
    }
    progress("broker up: %s (log %s)", bootstrap, broker_proc.log);
    if (tail_start()) {
        fail_step("the tail consumer did not start");
        return false;
    }
    if (start_instance(0)) {
        fail_step("processor a did not start");
        return false;
    }
    progress("start processor a (pid %d, http 127.0.0.1:%d, log %s)", (int)inst[0].pid, ports[0],
             inst[0].log);
    health_t h = {.owned = -1};
    for (int i = 0; i < 600 && !stop_requested && !reaped(&inst[0]); i++) {
        get_health(0, &h);
        if (h.owned == PARTITIONS)
            break;
        sleep_ms(100);
    }
    if (h.owned != PARTITIONS) {
        fail_step("processor a did not own all %d partitions within 60 s (see %s)", PARTITIONS,
                  inst[0].log);
        return false;
    }

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    char rate[32], duration[32], seed[32], start_ts[32], out_path[PATH_MAX];
    snprintf(rate, sizeof(rate), "%ld", opt.rate);
    snprintf(duration, sizeof(duration), "%g", opt.duration);
    snprintf(seed, sizeof(seed), "%ld", opt.seed);
    snprintf(start_ts, sizeof(start_ts), "%lld",
             (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
    snprintf(out_path, sizeof(out_path), "%s/gen.out", opt.workdir);
    char *const argv[] = {(char *)opt.eddy, "gen",    "--bootstrap", bootstrap, "--topic", TOPIC,
                          "--rate",         rate,     "--duration",  duration,  "--seed",  seed,
                          "--start-ts",     start_ts, "--span",      duration,  "-q",      NULL};
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    t0_ns = mono_ns();
    int rc = out_fd < 0 ? -1 : spawn(&gen_proc, argv, -1, out_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (rc) {
        fail_step("the generator did not start");
        return false;
    }
    progress("generator: %ld events/s for %s s, seed %s, event time from %s (log %s)", opt.rate,
             duration, seed, start_ts, gen_proc.log);
    return true;
}

/* --forget: drops the last records of partition 0 (the first run of records). */
static void forget_records(eddy_test_topic_t *input)
{
    size_t n0 = 0;
    while (n0 < input->n && input->recs[n0].partition == 0)
        n0++;
    size_t drop = (size_t)opt.forget < n0 ? (size_t)opt.forget : n0;
    if (drop == 0)
        return;
    for (size_t i = n0 - drop; i < n0; i++)
        eddy_test_record_free(&input->recs[i]);
    memmove(input->recs + n0 - drop, input->recs + n0, (input->n - n0) * sizeof(*input->recs));
    input->n -= drop;
    progress("self-check: %zu records of partition 0 left out of the reference", drop);
}

/* The input read back to its end, into *input; then processor a owning every
 * partition with everything committed. Returns false if the input is incomplete
 * (nothing can be compared); a catch-up that times out is only recorded. */
static bool catch_up(eddy_test_topic_t *input, int64_t *hw_total)
{
    int64_t hw[PARTITIONS];
    *hw_total = 0;
    if (high_watermarks(hw)) {
        fail_step("cannot read the input topic's watermarks");
        return false;
    }
    for (int p = 0; p < PARTITIONS; p++)
        *hw_total += hw[p];
    progress("the input topic ends at %lld records; waiting for the tail", (long long)*hw_total);
    if (!tail_wait(hw, 60)) {
        fail_step("the tail consumer did not read the input up to its end within 60 s");
        return false;
    }
    observe();
    report_retention("end of input");
    tail_finish(input);
    progress("input: %zu records in %d partitions read back (%lld consumer errors on the way, "
             "log %s/tail.log)",
             input->n, PARTITIONS, (long long)tail.errors, opt.workdir);
    if (tail.gaps)
        fail_step("the tail missed %lld records: %s", (long long)tail.gaps, tail.first_gap);
    if ((int64_t)input->n + tail.gaps != *hw_total)
        fail_step("read %zu records back, the topic has %lld", input->n, (long long)*hw_total);
    char first[256] = "";
    input_duplicates = count_duplicates(input, first, sizeof(first));
    if (input_duplicates)
        progress("input: %zu records are copies of earlier ones (%s): the topic holds some "
                 "events twice; the reference counts them as they are",
                 input_duplicates, first);
    forget_records(input);

    if (inst[1].pid > 0)
        stop_proc(&inst[1], SIGKILL, 1000);
    const double start = elapsed();
    health_t h = {.owned = -1};
    while (!stop_requested && elapsed() - start < opt.catchup_timeout) {
        watch_instances();
        get_health(0, &h);
        bool caught_up = h.owned == PARTITIONS && h.committed_records >= *hw_total;
        for (int p = 0; caught_up && p < PARTITIONS; p++)
            caught_up = h.committed[p] >= hw[p];
        if (caught_up) {
            progress("processor a caught up in %.1f s: %d partitions, %lld records committed",
                     elapsed() - start, h.owned, (long long)h.committed_records);
            return true;
        }
        sleep_ms(200);
    }
    char lag[1024] = "";
    size_t len = 0;
    for (int p = 0; p < PARTITIONS && len < sizeof(lag); p++)
        len += (size_t)snprintf(lag + len, sizeof(lag) - len, " p%d:%lld/%lld", p,
                                (long long)h.committed[p], (long long)hw[p]);
    fail_step("processor a did not catch up within %g s (owns %d partitions; committed/end "
              "offsets:%s)",
              opt.catchup_timeout, h.owned, lag);
    return true; /* compare anyway: the mismatches show what is missing */
}

/* --- diagnosis: which input records do the differences consist of? --------------- */

/* One (window, endpoint) cell of requests_per_endpoint where eddy and the
 * reference differ. */
typedef struct cell_s {
    int64_t start;    /* window start */
    char key[128];    /* endpoint */
    int64_t diff;     /* served count minus the reference's */
    int64_t in_range; /* records of the candidate range in this cell */
} cell_t;

#define MAX_CELLS 512

/* The cell of record r (its 1-minute window and endpoint), -1 if none of cells. */
static int cell_of(const eddy_test_record_t *r, const cell_t *cells, int n)
{
    json_t *ev = json_loadb(r->value, r->len, 0, NULL);
    json_t *ts = json_object_get(ev, "ts"), *ep = json_object_get(ev, "endpoint");
    int found = -1;
    if (json_is_integer(ts) && json_is_string(ep)) {
        int64_t t = json_integer_value(ts);
        int64_t start = t - ((t % 60000) + 60000) % 60000;
        for (int i = 0; i < n && found < 0; i++)
            if (cells[i].start == start && !strcmp(cells[i].key, json_string_value(ep)))
                found = i;
    }
    json_decref(ev);
    return found;
}

/* When the windows differ, says whether the differences of requests_per_endpoint
 * (1-minute counts per endpoint) are exactly the records of one contiguous offset
 * range of one partition, counted twice (eddy counts more) or not at all (fewer):
 * the signature of a task resuming at the wrong input offset. The range's offsets
 * can then be found in the processors' logs ("resuming at input offset ..."). */
static void diagnose(int port, const eddy_test_topic_t *input)
{
    const ref_spec_t spec = eddy_test_monitoring_spec("endpoint");
    eddy_test_http_resp_t resp = {0};
    json_t *body = NULL;
    if (eddy_test_http("127.0.0.1", port, "GET",
                       "/api/stores/requests_per_endpoint/windows?from=0&to=9000000000000", NULL,
                       NULL, 0, &resp) == 0 &&
        resp.status == 200)
        body = json_loadb(resp.body, resp.body_len, 0, NULL);
    eddy_test_http_resp_free(&resp);
    if (!body)
        return;
    ref_result_t ref;
    ref_compute(&spec, input, &ref);
    static cell_t cells[MAX_CELLS];
    int n = 0;
    int64_t total = 0;
    bool more = false, fewer = false;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(body, "windows"), i, w)
    {
        const char *key = json_string_value(json_object_get(w, "key"));
        int64_t start = json_integer_value(json_object_get(w, "start"));
        const ref_window_t *rw = key ? ref_find(&ref, start, key) : NULL;
        int64_t diff = json_integer_value(json_object_get(w, "count")) - (rw ? rw->count : 0);
        if (!key || diff == 0 || n == MAX_CELLS)
            continue;
        cells[n] = (cell_t){.start = start, .diff = diff};
        snprintf(cells[n].key, sizeof(cells[n].key), "%s", key);
        n++;
        total += diff > 0 ? diff : -diff;
        more = more || diff > 0;
        fewer = fewer || diff < 0;
    }
    json_decref(body);
    ref_result_free(&ref);
    if (n == 0 || (more && fewer)) {
        if (n)
            progress("diagnosis: requests_per_endpoint has both extra and missing counts; no "
                     "single offset range explains them");
        return;
    }
    /* Slide a range of `total` records over each partition; it explains the
     * differences when its records fill every differing cell exactly. */
    int *cell_idx = malloc((input->n ? input->n : 1) * sizeof(*cell_idx));
    for (size_t r = 0; r < input->n; r++)
        cell_idx[r] = cell_of(&input->recs[r], cells, n);
    int found = 0;
    size_t first = 0;
    while (first < input->n) {
        size_t end = first;
        while (end < input->n && input->recs[end].partition == input->recs[first].partition)
            end++;
        if (end - first >= (size_t)total) {
            for (int c = 0; c < n; c++)
                cells[c].in_range = 0;
            int64_t outside = 0; /* records of the range in no differing cell */
            int wrong = n;       /* cells whose count in the range is not |diff| */
            for (size_t r = first; r < end; r++) {
                /* add record r, and drop record r - total once the range is full */
                for (int step = 0; step < 2; step++) {
                    size_t k = step == 0 ? r : r - (size_t)total;
                    if (step == 1 && r < first + (size_t)total)
                        break;
                    int c = cell_idx[k], d = step == 0 ? 1 : -1;
                    if (c < 0) {
                        outside += d;
                        continue;
                    }
                    int64_t want = cells[c].diff > 0 ? cells[c].diff : -cells[c].diff;
                    wrong -= cells[c].in_range != want;
                    cells[c].in_range += d;
                    wrong += cells[c].in_range != want;
                }
                if (r + 1 >= first + (size_t)total && wrong == 0 && outside == 0 && found++ < 3)
                    progress("diagnosis: the differences of requests_per_endpoint are exactly "
                             "the records of partition %d, offsets %lld..%lld (%lld records), "
                             "%s",
                             (int)input->recs[first].partition,
                             (long long)input->recs[r + 1 - (size_t)total].offset,
                             (long long)input->recs[r].offset, (long long)total,
                             more ? "counted once more than the input holds them" : "not counted");
            }
        }
        first = end;
    }
    free(cell_idx);
    if (!found)
        progress("diagnosis: %lld %s counts in requests_per_endpoint; no single offset range of "
                 "one partition explains them",
                 (long long)total, more ? "extra" : "missing");
}

/* A clean stop must still work after all that: a on SIGTERM, the broker on quit. */
static void stop_all(void)
{
    if (inst[0].pid > 0) {
        bool in_time = stop_proc(&inst[0], SIGTERM, 30000);
        char how[96];
        describe_status(inst[0].status, how, sizeof(how));
        progress("stop processor a with SIGTERM: %s", in_time ? how : "did not stop in 30 s");
        if (!in_time || !WIFEXITED(inst[0].status) || WEXITSTATUS(inst[0].status) != 0)
            fail_step("processor a did not stop cleanly on SIGTERM (%s; see %s)", how, inst[0].log);
    }
    if (broker_command("quit")) {
        bool in_time = stop_proc(&broker_proc, 0, 10000); /* signal 0: just wait */
        if (!in_time || !WIFEXITED(broker_proc.status) || WEXITSTATUS(broker_proc.status) != 0)
            fail_step("the broker did not stop cleanly on 'quit' (see %s)", broker_proc.log);
    } else {
        fail_step("the broker did not answer 'quit'");
    }
}

/* Every planned step must have happened. */
static void check_steps(int64_t acked, int64_t gen_failed)
{
    const int64_t want = (int64_t)(opt.duration * (double)opt.rate + 0.5);
    if (acked != want || gen_failed != 0)
        fail_step("the generator acked %lld of %lld events (%lld failed)", (long long)acked,
                  (long long)want, (long long)gen_failed);
    if (done.kills != opt.kills)
        fail_step("%d of %d kills happened", done.kills, opt.kills);
    if (done.wipes != opt.wipes)
        fail_step("%d of %d wipes happened", done.wipes, opt.wipes);
    if (done.failovers != opt.failovers)
        fail_step("%d of %d failovers happened (%d second instances owned no partition within "
                  "%g s, %d died on their own before their kill)",
                  done.failovers, opt.failovers, done.failovers_unowned, FAILOVER_WAIT_S,
                  done.failovers_died);
    if (done.faults != opt.faults || done.outages != opt.outages || done.control_errors)
        fail_step("faults %d of %d, outages %d of %d, %d control commands failed", done.faults,
                  opt.faults, done.outages, opt.outages, done.control_errors);
    if (done.unexpected_exits)
        fail_step("%d processors died on their own", done.unexpected_exits);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    rng_state = (uint64_t)opt.seed * 0x2545f4914f6cdd1dULL + 1;
    const char *why = make_schedule();
    if (why)
        usage_error("%s", why);
    if (prepare_workdir())
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_children);
    print_plan();

    eddy_test_topic_t input = {0};
    eddy_test_check_t chk = {.max_print = 20};
    int64_t hw_total = 0, acked = -1, gen_failed = -1;
    double run_seconds = 0, gen_seconds = 0;
    if (!start_all() || !run_schedule())
        goto out;
    run_seconds = elapsed();
    if (!catch_up(&input, &hw_total))
        goto out;

    progress("comparing every window with the reference over %zu records", input.n);
    if (eddy_test_check_monitoring(ports[0], &input, &chk) != 0)
        fail_step("%zu stores could not be read from processor a", chk.fetch_errors);
    if (chk.mismatches)
        fail_step("%zu of %zu windows differ from the reference", chk.mismatches, chk.windows);
    if (chk.windows == 0)
        fail_step("no windows were compared");
    int lost_parts;
    int64_t lost = retention_losses(&lost_parts);
    if (lost)
        fail_step("the broker's retention deleted %lld input records on %d partitions before any "
                  "processor had committed them, so no processor could count them (the "
                  "embedded broker keeps 5 MiB per partition; see docs/drills.md)",
                  (long long)lost, lost_parts);
    progress("compared %zu windows: %zu mismatches (the reference drops %lld (record, window) "
             "pairs as late; %lld records undecodable)",
             chk.windows, chk.mismatches, (long long)chk.late, (long long)chk.undecodable);
    if (chk.mismatches)
        diagnose(ports[0], &input);
    stop_all();
    gen_summary(&acked, &gen_failed, &gen_seconds);
    check_steps(acked, gen_failed);

    printf("\ndrill summary\n");
    printf("  duration    %.1f s of schedule (generator %.1f s), seed %ld\n", run_seconds,
           gen_seconds, opt.seed);
    printf("  events      %lld produced and acked (%lld failed), %lld in the topic (%zu of them "
           "duplicates)\n",
           (long long)acked, (long long)gen_failed, (long long)hw_total, input_duplicates);
    printf("  retention   %lld input records deleted before any processor committed them\n",
           (long long)lost);
    printf("  kills       %d of %d (%d of them after waiting %g s in vain for a to be at work)\n",
           done.kills, opt.kills, done.kills_forced, KILL_WAIT_S);
    printf("  wipes       %d of %d\n", done.wipes, opt.wipes);
    printf("  failovers   %d of %d\n", done.failovers, opt.failovers);
    printf("  faults      %d of %d request-error injections, %d of %d broker outages\n",
           done.faults, opt.faults, done.outages, opt.outages);
    printf("  unexpected  %d processor deaths\n", done.unexpected_exits);
    printf("  windows     %zu compared, %zu mismatches\n", chk.windows, chk.mismatches);

out:
    kill_children();
    if (tail.rk) {
        eddy_test_topic_t rest;
        tail_finish(&rest);
        eddy_test_topic_free(&rest);
    }
    eddy_test_topic_free(&input);
    if (broker_in >= 0)
        close(broker_in);
    if (broker_out >= 0)
        close(broker_out);
    bool failed = reasons[0] != '\0';
    if (failed) {
        printf("drill: FAIL: %s\n  logs and state: %s\n", reasons, opt.workdir);
    } else {
        printf("drill: PASS\n");
        if (opt.own_workdir && !opt.keep)
            rmtree(opt.workdir);
    }
    fflush(stdout);
    return failed ? 1 : 0;
}
