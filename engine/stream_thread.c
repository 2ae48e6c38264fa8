/*
 * stream_thread.c — the stream thread's loop (see stream_thread.h).
 *
 *   poll -> task of the record's partition -> process
 *   restoring tasks: a slice of changelog records between polls (restore.c)
 *   every commit.interval.ms, for the running tasks (docs/stores.md, "Commit"):
 *     1. exactly_once_v2: begin a transaction;
 *     2. each task's dirty windows go into one RocksDB WriteBatch and, as whole
 *        states, to its stores' changelog partitions, each followed by a commit
 *        marker (incarnation, sequence, input offset, stream time);
 *     3. exactly_once_v2: input offsets to the transaction, commit it (a commit
 *        that times out is retried, never aborted); at_least_once: wait for
 *        every delivery;
 *     4. the batch, with each store's new changelog position, is written.
 *   A commit that fails in 1-3 is aborted and rolled back: the tasks drop what
 *   they did since the last commit and restore again from their local position,
 *   so whatever the failed commit left in the changelogs is applied if its marker
 *   made it and ignored otherwise (the embedded broker shows aborted records).
 *   A fatal producer error recreates the producer; the thread stays in the group.
 *   A task whose records fail its thread's commits again and again for the same
 *   deterministic reason (the producer or the broker refuses a record for what it
 *   is: too large, invalid) is stopped in ERROR after task.max.failed.commits of
 *   them, so that its thread's other tasks go on; every other failure (brokers
 *   down, timeouts, fencing) is retried for as long as it lasts.
 *
 * The changelogs are the truth; local state is a cache of them, so a task
 * resumes at the input position of its last commit marker wherever it runs.
 * When a reader finds the local state damaged (stores/statedb.h), the thread
 * drops its tasks without a commit, waits while the main thread moves the
 * state aside and opens a fresh one (engine/local_state.h), and creates them
 * again: they restore from the changelogs. Any other failure to read a task's
 * state fails the thread.
 */
#include "engine/stream_thread.h"
#include "engine/local_state.h"
#include "engine/log.h"
#include "engine/restore.h"
#include "engine/task.h"
#include "engine/util.h"

#include <librdkafka/rdkafka.h>

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define KAFKA_TIMEOUT_MS 30000 /* one step of a commit: a transactional call or flush */
#define STOP_TIMEOUT_MS                                                                            \
    5000                     /* all of them together once stopping: a stop never hangs             \
                                (1 s when no broker answered since the last commit) */
#define COMMIT_RETRIES   20  /* the commit and the abort may take this many steps' time */
#define SLICE_MS         500 /* the longest one call waits before the stop is looked at */
#define RESTORE_SLICE_MS 20  /* changelog reading between two polls */

struct eddy_stream_thread_s {
    eddy_runtime_t *rt;                          /* shared, read-only context */
    int index;                                   /* 0-based thread number */
    char name[64];                               /* "<app>-StreamThread-N" */
    char txn_id[300];                            /* transactional.id (exactly_once_v2) */
    pthread_t thread;                            /* the pthread running thread_main */
    rd_kafka_t *rk;                              /* this thread's consumer */
    rd_kafka_t *producer;                        /* changelog producer; transactional with EOS */
    bool eos;                                    /* processing.guarantee=exactly_once_v2 */
    eddy_restorer_t *restorer;                   /* restores tasks from changelogs */
    eddy_task_t *tasks[EDDY_MAX_PARTITIONS];     /* by partition; NULL when not owned */
    bool seek_pending[EDDY_MAX_PARTITIONS];      /* restored, but its input is not positioned
                                                    yet: paused, its records ignored */
    unsigned seek_failures[EDDY_MAX_PARTITIONS]; /* in a row, for the log */
    rd_kafka_resp_err_t fail_err[EDDY_MAX_PARTITIONS]; /* the deterministic error that failed
                                                          the task's last commits */
    int fail_count[EDDY_MAX_PARTITIONS];               /* how many in a row, since the task's
                                                          last successful commit */
    int n_tasks;                                       /* non-NULL entries in tasks */
    eddy_statedb_batch_t *batch;                       /* reused for every commit */
    int64_t delivery_failures;                         /* failed deliveries since the last commit */
    atomic_int stop;                                   /* set by signal_stop */
    atomic_llong stop_ns;                              /* monotonic time stop was set */
    atomic_bool failed;                                /* ended on a fatal error */
    atomic_bool halted;                                /* tasks dropped, waiting for a fresh
                                                          state db (restart_tasks) */
    int64_t last_commit_ns;                            /* monotonic time of the last commit */
    int64_t last_group_commit_ns; /* ... and of the last one sent to the group */
    rd_kafka_queue_t *queue;      /* the consumer's queue, read in batches */
    /* The commit in flight: flushed, handed to the committer, not yet finished. */
    bool in_flight;                      /* a commit is in flight */
    bool in_commit[EDDY_MAX_PARTITIONS]; /* the tasks it holds */
    size_t commit_dirty;                 /* window entries it holds */
    int64_t commit_t0;                   /* when it began */
    /* The committer thread: commit_transaction (or, at_least_once, flush) off
     * the stream thread, so that processing goes on meanwhile. */
    pthread_t committer;        /* runs committer_main */
    bool committer_started;     /* committer is joinable */
    pthread_mutex_t cm_lock;    /* guards the two below and cm_state's waits */
    pthread_cond_t cm_cond;     /* cm_state changed */
    atomic_int cm_state;        /* CM_IDLE, CM_BUSY, CM_DONE, CM_QUIT */
    rd_kafka_error_t *cm_error; /* CM_DONE: the commit's error (owned) */
    bool cm_flush_failed;       /* CM_DONE, at_least_once: flush timed out */
};

enum { CM_IDLE, CM_BUSY, CM_DONE, CM_QUIT };

#define BATCH_MAX 512 /* records taken from the consumer's queue at once */

static void request_stop(eddy_stream_thread_t *st)
{
    long long none = 0;
    atomic_compare_exchange_strong(&st->stop_ns, &none, (long long)eddy_mono_ns());
    atomic_store(&st->stop, 1);
}

static void fail(eddy_stream_thread_t *st)
{
    atomic_store(&st->failed, true);
    request_stop(st);
}

/* A transactional call (or a flush) with a timeout. */
typedef rd_kafka_error_t *(*kafka_call_fn)(rd_kafka_t *rk, int timeout_ms, void *arg);

/* Makes `fn` in slices of at most SLICE_MS for up to `budget_ms` (once stopping:
 * until STOP_TIMEOUT_MS after the stop, for all calls together), again as long as
 * it fails with a retriable error. A transactional call that timed out resumes
 * where it was when called again (librdkafka), so slicing changes nothing but
 * how soon a stop is noticed: with the brokers down, SIGTERM used to wait ~40 s
 * in calls started before it. Returns the last error (owned), NULL on success, or
 * a __TIMED_OUT error if the stop left no time for a first call. */
static rd_kafka_error_t *kafka_call(eddy_stream_thread_t *st, int64_t budget_ms, kafka_call_fn fn,
                                    void *arg, const char *what)
{
    const int64_t start = eddy_mono_ns();
    int64_t end = start + budget_ms * 1000000, warned = start;
    rd_kafka_error_t *error = NULL;
    for (;;) {
        int64_t now = eddy_mono_ns(), limit = end;
        if (atomic_load(&st->stop)) {
            /* With no broker answering, a second is all a stop waits for one. */
            int64_t wait_ms = atomic_load(&st->rt->metrics.brokers_down) ? 1000 : STOP_TIMEOUT_MS;
            int64_t stop_end = atomic_load(&st->stop_ns) + wait_ms * 1000000;
            limit = stop_end < end ? stop_end : end;
        }
        int64_t left_ms = (limit - now) / 1000000;
        if (left_ms <= 0)
            return error ? error
                         : rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT,
                                              "%s: no time left while stopping", what);
        if (error)
            rd_kafka_error_destroy(error);
        int64_t t0 = eddy_mono_ns();
        error = fn(st->producer, left_ms < SLICE_MS ? (int)left_ms : SLICE_MS, arg);
        /* A flush that timed out is worth going on with too. */
        if (!error || !(rd_kafka_error_is_retriable(error) ||
                        rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT))
            return error;
        /* The brokers cannot be reached: what /api/health says, and while
         * stopping, the end of trying (the last commit stands). */
        rd_kafka_resp_err_t code = rd_kafka_error_code(error);
        if (code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
            code == RD_KAFKA_RESP_ERR__RESOLVE) {
            atomic_store(&st->rt->metrics.brokers_down, 1);
            if (atomic_load(&st->stop))
                return error;
        }
        if (eddy_mono_ns() - warned >= 10LL * 1000000000) {
            eddy_log_warn("%s: %s; still trying", what, rd_kafka_error_string(error));
            warned = eddy_mono_ns();
        }
        /* A retriable error that came back at once: no busy loop. */
        if (eddy_mono_ns() - t0 < 50 * 1000000)
            eddy_sleep_ns(50 * 1000000, NULL);
    }
}

static rd_kafka_error_t *commit_call(rd_kafka_t *rk, int timeout_ms, void *arg)
{
    return rd_kafka_commit_transaction(rk, timeout_ms);
}

static rd_kafka_error_t *abort_call(rd_kafka_t *rk, int timeout_ms, void *arg)
{
    return rd_kafka_abort_transaction(rk, timeout_ms);
}

static rd_kafka_error_t *flush_call(rd_kafka_t *rk, int timeout_ms, void *arg)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, timeout_ms);
    return err ? rd_kafka_error_new(err, "%s", rd_kafka_err2str(err)) : NULL;
}

/* send_offsets_to_transaction's arguments. */
typedef struct offsets_arg_s {
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *cgmd;
} offsets_arg_t;

static rd_kafka_error_t *offsets_call(rd_kafka_t *rk, int timeout_ms, void *arg)
{
    offsets_arg_t *a = arg;
    return rd_kafka_send_offsets_to_transaction(rk, a->offsets, a->cgmd, timeout_ms);
}

/* --- the changelog producer ------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    eddy_stream_thread_t *st = opaque;
    if (msg->err && st->delivery_failures++ == 0)
        eddy_log_warn("delivery to %s [%d] failed: %s", rd_kafka_topic_name(msg->rkt),
                      (int)msg->partition, rd_kafka_err2str(msg->err));
    if (msg->_private) /* every record a task produces is tagged (task.h) */
        eddy_task_delivered(msg->_private, msg->err, msg->offset);
}

/* librdkafka's errors, for the log and /api/health's "broker": with this set it no
 * longer logs them itself. "All brokers down" holds until the next commit. */
static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    eddy_stream_thread_t *st = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&st->rt->metrics.brokers_down, 1);
    eddy_log_warn("%s: %s", rd_kafka_name(rk), reason);
}

/* Asks for the metadata of every topic the producer writes to, once: otherwise
 * librdkafka learns of a topic at its first record and the first commit (the
 * claims of the first tasks: on the way to serving) waits about a second for
 * the next metadata round. A failure only costs that second. */
static void warm_metadata(eddy_stream_thread_t *st, rd_kafka_t *rk)
{
    const eddy_runtime_t *rt = st->rt;
    size_t n = eddy_topology_store_count(rt->topo);
    for (size_t i = 0; i <= n; i++) {
        const char *name = i < n ? rt->changelog_topics[i] : rt->dlq_topic;
        rd_kafka_topic_t *rkt = name[0] ? rd_kafka_topic_new(rk, name, NULL) : NULL;
        const struct rd_kafka_metadata *md = NULL;
        if (!rkt)
            continue;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
}

static rd_kafka_t *make_producer(eddy_stream_thread_t *st, char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = st->rt->cfg;
    char client_id[128];
    snprintf(client_id, sizeof(client_id), "%s-producer", st->name);
    const char *const settings[][2] = {
        {"bootstrap.servers", cfg->bootstrap_servers},
        {"client.id", client_id},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.codec", "zstd"},
        {"linger.ms", "5"},
        {"queue.buffering.max.messages", "1000000"},
        /* Kafka's Java clients' default: librdkafka's 10 s made each transactional
         * call wait up to that long for the next reconnect while a broker is down,
         * timeout or not, and so a stop (librdkafka 2.0.2). */
        {"reconnect.backoff.max.ms", "1000"},
        {"log_level", "4"},
        {"transactional.id", st->txn_id}, /* these two only with exactly_once_v2 */
        {"transaction.timeout.ms", "60000"},
    };
    size_t n = sizeof(settings) / sizeof(settings[0]) - (st->eos ? 0 : 2);
    rd_kafka_conf_t *conf = eddy_config_kafka_conf("producer", settings, n, cfg->producer_props,
                                                   cfg->n_producer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    /* Dead-letter copies are cut to fit what this producer may send. */
    char max_bytes[32];
    size_t max_bytes_size = sizeof(max_bytes);
    long long limit = 0;
    if (rd_kafka_conf_get(conf, "message.max.bytes", max_bytes, &max_bytes_size) ==
            RD_KAFKA_CONF_OK &&
        (limit = atoll(max_bytes)) > 0) {
        long long unset = 1000000;
        atomic_compare_exchange_strong(&st->rt->metrics.dlq_max_bytes, &unset, limit);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_t *rk =
        eddy_config_kafka_new(RD_KAFKA_PRODUCER, conf, "producer", errstr, errstr_size);
    if (!rk)
        return NULL;
    warm_metadata(st, rk);
    if (!st->eos)
        return rk;
    for (int attempt = 1;; attempt++) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(rk, KAFKA_TIMEOUT_MS);
        if (!error)
            return rk;
        bool again = rd_kafka_error_is_retriable(error) && attempt < 10 && !atomic_load(&st->stop);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot start transactions as %s: %s",
                  st->txn_id, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        if (!again) {
            rd_kafka_destroy(rk);
            return NULL;
        }
        eddy_log_warn("%s; retrying", errstr);
    }
}

/* --- partitions of the input ------------------------------------------------------- */

static void pause_partition(eddy_stream_thread_t *st, int32_t p, bool pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, st->rt->source_topic, p);
    if (pause)
        rd_kafka_pause_partitions(st->rk, list);
    else
        rd_kafka_resume_partitions(st->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

/* Positions a restored task's input at its next offset, then resumes it. Needed,
 * not an optimisation: after a rollback the consumer is past the position, and
 * records it skipped would never be processed. A seek that fails (librdkafka
 * under load times out) leaves the partition paused and seek_pending set; the
 * thread's loop tries again, and ignores the partition's records meanwhile. */
static bool seek_input(eddy_stream_thread_t *st, int32_t p, int timeout_ms)
{
    int64_t next = eddy_task_next_offset(st->tasks[p]);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, st->rt->source_topic, p)->offset =
        next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(st->rk, list, timeout_ms);
    bool ok = !error && !list->elems[0].err;
    if (!ok && st->seek_failures[p]++ % 10 == 0)
        eddy_log_warn("task %d: seek to %lld failed (%s); the partition stays paused and the "
                      "seek is retried",
                      (int)p, (long long)next,
                      error ? rd_kafka_error_string(error) : rd_kafka_err2str(list->elems[0].err));
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    if (ok) {
        st->seek_pending[p] = false;
        st->seek_failures[p] = 0;
        pause_partition(st, p, false);
    }
    return ok;
}

/* A restored task processes again: from its restored position on. */
static void on_restored(eddy_task_t *task, void *opaque)
{
    eddy_stream_thread_t *st = opaque;
    char errstr[512];
    if (eddy_task_restore_finish(task, errstr, sizeof(errstr))) {
        eddy_log_error("task %d: %s", eddy_task_partition(task), errstr);
        if (!eddy_statedb_damaged(st->rt->db)) /* damaged: restart_tasks() redoes it */
            fail(st);
        return;
    }
    atomic_fetch_add(&st->rt->metrics.restores, 1);
    int32_t p = eddy_task_partition(task);
    st->seek_pending[p] = true;
    seek_input(st, p, 2000);
}

/* Hands a RESTORING task to the restorer, its input paused until it is done. */
static void start_restore(eddy_stream_thread_t *st, eddy_task_t *task)
{
    char errstr[512];
    bool done = false;
    pause_partition(st, eddy_task_partition(task), true);
    if (eddy_restorer_add(st->restorer, task, &done, errstr, sizeof(errstr))) {
        eddy_log_error("task %d: %s", eddy_task_partition(task), errstr);
        fail(st);
        return;
    }
    if (done)
        on_restored(task, st);
}

/* A record came after a gap in the task's input. Transaction markers and aborted
 * records make small gaps on a real cluster; retention makes them when a
 * processor falls behind by more than the broker keeps (the embedded one: 5 MiB
 * per partition). Only what lies below the log start was deleted: that is
 * counted (input_lost) and logged, never skipped silently. Rare, so one
 * watermark request is fine. */
static void check_gap(eddy_stream_thread_t *st, int32_t p, int64_t next, int64_t offset)
{
    int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(st->rk, st->rt->source_topic, p, &lo, &hi) || lo <= next)
        rd_kafka_query_watermark_offsets(st->rk, st->rt->source_topic, p, &lo, &hi, 5000);
    int64_t lost = (lo < offset ? lo : offset) - next;
    if (lost <= 0)
        return;
    atomic_fetch_add(&st->rt->metrics.parts[p].input_lost, lost);
    eddy_log_error("task %d: input offsets %lld..%lld of %s [%d] were deleted by retention "
                   "before they were processed: %lld records lost (input_lost in /api/health)",
                   (int)p, (long long)next, (long long)(next + lost - 1), st->rt->source_topic,
                   (int)p, (long long)lost);
}

/* Writes the claims of `n` tasks about to restore and waits until they are in
 * the changelogs: the restore then reads up to them, and a predecessor that
 * still writes (the embedded broker fences nobody) is ignored after them. A
 * failure is logged; the tasks restore anyway (without the fence). */
static void claim_tasks(eddy_stream_thread_t *st, eddy_task_t **tasks, int n)
{
    if (n == 0 || !st->producer || atomic_load(&st->stop))
        return;
    rd_kafka_error_t *error = NULL;
    const char *step = "begin transaction";
    if (st->eos && (error = rd_kafka_begin_transaction(st->producer)))
        goto failed;
    step = "produce";
    for (int i = 0; i < n; i++)
        if (eddy_task_claim(tasks[i], st->producer))
            goto failed;
    step = "commit";
    error = kafka_call(st, KAFKA_TIMEOUT_MS, st->eos ? commit_call : flush_call, NULL,
                       "commit of the claims");
    if (!error) {
        rd_kafka_poll(st->producer, 0);
        return;
    }
failed:
    eddy_log_warn("could not write the claims of %d restoring tasks (%s%s%s); they restore "
                  "without fencing their predecessor",
                  n, step, error ? ": " : "", error ? rd_kafka_error_string(error) : "");
    if (error)
        rd_kafka_error_destroy(error);
    if (st->eos) {
        rd_kafka_error_t *e =
            kafka_call(st, KAFKA_TIMEOUT_MS, abort_call, NULL, "abort of the claims");
        if (e)
            rd_kafka_error_destroy(e);
    }
    rd_kafka_poll(st->producer, 0);
}

/* --- commit ------------------------------------------------------------------------- */

/* True for errors that a record gets for what it is, so that sending it again can
 * only fail again: the producer's or the broker's size limits, a record the broker
 * finds invalid or against its policy. Not for anything about the brokers, the
 * network, the transaction or the producer's state: those pass or are fatal. */
static bool deterministic(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        return true;
    default:
        return false;
    }
}

/* Counts, per task of the failed commit, a failure its own record caused for a
 * deterministic reason; true in stop[p] for a task that reached
 * task.max.failed.commits of them in a row. */
static void charge_failures(eddy_stream_thread_t *st, bool *stop)
{
    const int max = (int)st->rt->cfg->task_max_failed_commits;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        stop[p] = false;
        if (!st->tasks[p] || !st->in_commit[p])
            continue;
        char what[160];
        rd_kafka_resp_err_t err = eddy_task_commit_error(st->tasks[p], what, sizeof(what));
        if (!deterministic(err))
            continue;
        st->fail_count[p] = err == st->fail_err[p] ? st->fail_count[p] + 1 : 1;
        st->fail_err[p] = err;
        stop[p] = st->fail_count[p] >= max;
        if (stop[p])
            eddy_log_error("task %d stops: %s was refused in %d commits in a row (%s); its "
                           "partition is paused and no longer committed, the thread's other "
                           "tasks go on; a restart or a rebalance tries it again (/api/health "
                           "shows it as \"error\")",
                           p, what, st->fail_count[p], rd_kafka_err2str(err));
        else
            eddy_log_warn("task %d: %s was refused (%s): failed commit %d of at most %d", p, what,
                          rd_kafka_err2str(err), st->fail_count[p], max);
    }
}

/* After a failed commit: abort what can be aborted, recreate the producer if it
 * is unusable, and roll every task back to its last commit. */
static void recover(eddy_stream_thread_t *st, const char *step, rd_kafka_error_t *error)
{
    bool stop_task[EDDY_MAX_PARTITIONS];
    charge_failures(st, stop_task);
    bool fatal = (error && rd_kafka_error_is_fatal(error)) ||
                 rd_kafka_fatal_error(st->producer, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
    eddy_log_warn("commit failed (%s%s%s); rolling back %d tasks to their last commit", step,
                  error ? ": " : "", error ? rd_kafka_error_string(error) : "", st->n_tasks);
    if (error)
        rd_kafka_error_destroy(error);
    atomic_fetch_add(&st->rt->metrics.aborts, 1);
    if (st->eos && !fatal) {
        rd_kafka_error_t *e = kafka_call(st, (int64_t)KAFKA_TIMEOUT_MS * COMMIT_RETRIES, abort_call,
                                         NULL, "abort of the transaction");
        if (e) {
            eddy_log_warn("abort: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            fatal = true;
        }
    }
    /* Without transactions undelivered records cannot be withdrawn; a new producer
     * starts a clean idempotent sequence. */
    if ((fatal || !st->eos) && !atomic_load(&st->stop)) {
        rd_kafka_purge(st->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(st->producer, 0);
        rd_kafka_destroy(st->producer);
        char errstr[512];
        st->producer = make_producer(st, errstr, sizeof(errstr));
        if (!st->producer) {
            eddy_log_error("%s", errstr);
            fail(st);
            return;
        }
        atomic_fetch_add(&st->rt->metrics.producer_restarts, 1);
    }
    st->delivery_failures = 0;
    eddy_task_t *rolled[EDDY_MAX_PARTITIONS];
    int n_rolled = 0;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        eddy_task_t *task = st->tasks[p];
        if (!task)
            continue;
        char errstr[512];
        eddy_restorer_remove(st->restorer, task);
        if (atomic_load(&st->stop)) { /* leaving: the next start restores */
            eddy_task_rollback(task, errstr, sizeof(errstr));
            continue;
        }
        if (eddy_task_rollback(task, errstr, sizeof(errstr))) {
            eddy_log_error("task %d: %s", p, errstr);
            fail(st);
            return;
        }
        if (stop_task[p]) {
            eddy_task_fail(task, st->fail_err[p], st->fail_count[p]);
            pause_partition(st, p, true);
            st->seek_pending[p] = false;
            continue;
        }
        rolled[n_rolled++] = task;
    }
    claim_tasks(st, rolled, n_rolled);
    for (int i = 0; i < n_rolled; i++)
        start_restore(st, rolled[i]);
}

/* The committer thread: waits for a commit handed over by commit_begin(), runs
 * its blocking part (exactly_once_v2: commit the transaction, retrying what is
 * retriable; at_least_once: wait for every delivery) and reports back. Delivery
 * reports may be served here; the stream thread reads what they wrote only after
 * CM_DONE, under cm_lock. */
static void *committer_main(void *arg)
{
    eddy_stream_thread_t *st = arg;
    pthread_mutex_lock(&st->cm_lock);
    for (;;) {
        while (atomic_load(&st->cm_state) == CM_IDLE || atomic_load(&st->cm_state) == CM_DONE)
            pthread_cond_wait(&st->cm_cond, &st->cm_lock);
        if (atomic_load(&st->cm_state) == CM_QUIT)
            break;
        pthread_mutex_unlock(&st->cm_lock);
        rd_kafka_error_t *error = NULL;
        bool flush_failed = false;
        /* A commit that times out is retried (resumed), never aborted, for as
         * long as COMMIT_RETRIES steps may take; while stopping, as long as the
         * stop leaves. */
        if (st->eos) {
            error = kafka_call(st, (int64_t)KAFKA_TIMEOUT_MS * COMMIT_RETRIES, commit_call, NULL,
                               "commit of the transaction");
        } else {
            rd_kafka_error_t *e = kafka_call(st, KAFKA_TIMEOUT_MS, flush_call, NULL, "flush");
            flush_failed = e != NULL;
            if (e)
                rd_kafka_error_destroy(e);
        }
        pthread_mutex_lock(&st->cm_lock);
        st->cm_error = error;
        st->cm_flush_failed = flush_failed;
        atomic_store(&st->cm_state, CM_DONE);
        pthread_cond_broadcast(&st->cm_cond);
    }
    pthread_mutex_unlock(&st->cm_lock);
    return NULL;
}

/* Starts a commit of the running tasks (see the top of this file): steps 1 and 2
 * and the offsets here, the rest by the committer while the thread goes on
 * processing; commit_end() finishes it. A failure here is recovered from at
 * once. */
static void commit_begin(eddy_stream_thread_t *st)
{
    assert(!st->in_flight);
    int running = 0;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        st->in_commit[p] = st->tasks[p] && eddy_task_state(st->tasks[p]) == EDDY_TASK_RUNNING;
        running += st->in_commit[p];
    }
    st->last_commit_ns = eddy_mono_ns();
    if (running == 0 || !st->producer)
        return;
    st->commit_t0 = st->last_commit_ns;
    const char *step = "produce";
    rd_kafka_error_t *error = NULL;
    eddy_statedb_batch_clear(st->batch);
    st->delivery_failures = 0;
    if (st->eos && (error = rd_kafka_begin_transaction(st->producer))) {
        step = "begin transaction";
        goto failed;
    }
    size_t dirty = 0;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        size_t n = 0;
        if (!st->in_commit[p])
            continue;
        if (eddy_task_flush(st->tasks[p], st->batch, st->producer, &n))
            goto failed;
        dirty += n;
    }
    st->commit_dirty = dirty;
    if (st->eos) {
        rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(running);
        for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
            if (st->in_commit[p] && eddy_task_next_offset(st->tasks[p]) >= 0)
                rd_kafka_topic_partition_list_add(offsets, st->rt->source_topic, p)->offset =
                    eddy_task_next_offset(st->tasks[p]);
        if (offsets->cnt > 0) {
            offsets_arg_t arg = {offsets, rd_kafka_consumer_group_metadata(st->rk)};
            error = kafka_call(st, KAFKA_TIMEOUT_MS, offsets_call, &arg,
                               "sending the offsets to the transaction");
            rd_kafka_consumer_group_metadata_destroy(arg.cgmd);
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        if (error) {
            step = "send offsets to the transaction";
            goto failed;
        }
    }
    pthread_mutex_lock(&st->cm_lock);
    atomic_store(&st->cm_state, CM_BUSY);
    pthread_cond_broadcast(&st->cm_cond);
    pthread_mutex_unlock(&st->cm_lock);
    st->in_flight = true;
    return;
failed:
    recover(st, step, error);
}

/* Finishes the commit in flight, if there is one: waits for the committer (or,
 * with !wait, returns at once while it is busy), then steps 3 and 4 for the
 * tasks the commit holds. Fails only when local state cannot be written. */
static eddy_err_t commit_end(eddy_stream_thread_t *st, bool wait, bool to_group)
{
    if (!st->in_flight)
        return EDDY_OK;
    if (!wait && atomic_load_explicit(&st->cm_state, memory_order_acquire) != CM_DONE)
        return EDDY_OK;
    pthread_mutex_lock(&st->cm_lock);
    while (atomic_load(&st->cm_state) != CM_DONE)
        pthread_cond_wait(&st->cm_cond, &st->cm_lock);
    rd_kafka_error_t *error = st->cm_error;
    bool flush_failed = st->cm_flush_failed;
    st->cm_error = NULL;
    atomic_store(&st->cm_state, CM_IDLE);
    pthread_mutex_unlock(&st->cm_lock);
    st->in_flight = false;

    char errstr[512];
    const char *step = st->eos ? "commit transaction" : "flush";
    if (error || flush_failed)
        goto failed;
    rd_kafka_poll(st->producer, 0); /* serves the delivery reports: marker offsets */
    if (st->delivery_failures) {
        step = "delivery";
        goto failed;
    }
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        if (st->in_commit[p] && eddy_task_commit_positions(st->tasks[p], st->batch)) {
            step = "marker not confirmed";
            goto failed;
        }
    }
    eddy_err_t err = eddy_statedb_write(st->rt->db, st->batch, false, errstr, sizeof(errstr));
    if (err) {
        eddy_log_error("commit failed: %s", errstr);
        return err;
    }
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(st->n_tasks);
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        eddy_task_t *task = st->tasks[p];
        if (!st->in_commit[p])
            continue;
        int64_t before = eddy_task_committed_offset(task);
        eddy_task_committed(task);
        /* Only a commit that moved the task clears its failures: one that held
         * nothing of it (right after a rollback's restore) proves nothing. */
        if (eddy_task_committed_offset(task) != before) {
            st->fail_count[p] = 0;
            st->fail_err[p] = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        /* For the lag in /metrics: librdkafka's cached watermarks from the
         * last fetch response, no request to the broker. */
        int64_t lo = -1, hi = -1;
        if (!rd_kafka_get_watermark_offsets(st->rk, st->rt->source_topic, p, &lo, &hi) && hi >= 0) {
            atomic_store_explicit(&st->rt->metrics.parts[p].low_watermark, lo < 0 ? -1 : lo,
                                  memory_order_relaxed);
            atomic_store_explicit(&st->rt->metrics.parts[p].high_watermark, hi,
                                  memory_order_relaxed);
        }
        int64_t next = eddy_task_committed_offset(task);
        if (next >= 0)
            rd_kafka_topic_partition_list_add(offsets, st->rt->source_topic, p)->offset = next;
    }
    /* The group's offsets are for lag and tooling only (the changelog markers are
     * what a task resumes from), so once a second is plenty. */
    if (offsets->cnt > 0 && to_group && eddy_mono_ns() - st->last_group_commit_ns >= 1000000000) {
        rd_kafka_commit(st->rk, offsets, 1 /* async */);
        st->last_group_commit_ns = eddy_mono_ns();
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    eddy_metrics_commit(&st->rt->metrics, eddy_mono_ns() - st->commit_t0, st->commit_dirty);
    return EDDY_OK;
failed:
    recover(st, step, error);
    return EDDY_OK;
}

/* Commits the running tasks and waits for it, after the commit in flight, if
 * any. Runs on the stream thread (also from the rebalance callback). */
static eddy_err_t commit_tasks(eddy_stream_thread_t *st, bool to_group)
{
    eddy_err_t err = commit_end(st, true, to_group);
    if (err)
        return err;
    commit_begin(st);
    return commit_end(st, true, to_group);
}

static void log_partitions(eddy_stream_thread_t *st, const char *what,
                           const rd_kafka_topic_partition_list_t *parts)
{
    char list[1024];
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; i < parts->cnt && n < sizeof(list) - 16; i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d", i ? "," : "",
                              (int)parts->elems[i].partition);
    eddy_log_info("%s partitions [%s] of %s (%d tasks now)", what, list, st->rt->source_topic,
                  st->n_tasks);
}

/* Creates the task of partition p (RESTORING). A failure fails the thread, but
 * on damaged state, which restart_tasks() redoes. */
static eddy_task_t *new_task(eddy_stream_thread_t *st, int32_t p)
{
    char errstr[512];
    st->tasks[p] = eddy_task_new(st->rt, p, st->index, errstr, sizeof(errstr));
    if (!st->tasks[p]) {
        eddy_log_error("cannot create task for partition %d: %s", p, errstr);
        if (!eddy_statedb_damaged(st->rt->db))
            fail(st);
        return NULL;
    }
    st->n_tasks++;
    st->fail_count[p] = 0;
    st->fail_err[p] = RD_KAFKA_RESP_ERR_NO_ERROR;
    return st->tasks[p];
}

static void on_assign(eddy_stream_thread_t *st, rd_kafka_topic_partition_list_t *parts,
                      bool cooperative)
{
    eddy_task_t *fresh[EDDY_MAX_PARTITIONS];
    int n_fresh = 0;
    /* The claims below need the producer, which the commit in flight holds. */
    if (commit_end(st, true, false))
        fail(st);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int p = tp->partition;
        if (p < 0 || p >= EDDY_MAX_PARTITIONS) {
            eddy_log_error("partition %d is beyond eddy's limit of %d; not processed", p,
                           EDDY_MAX_PARTITIONS);
            continue;
        }
        if (!st->tasks[p]) {
            if (!new_task(st, p))
                continue;
            fresh[n_fresh++] = st->tasks[p];
        }
        int64_t next = eddy_task_next_offset(st->tasks[p]);
        tp->offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
    }
    eddy_metrics_rebalance(&st->rt->metrics);
    log_partitions(st, "assigned", parts);
    rd_kafka_error_t *error = NULL;
    if (cooperative)
        error = rd_kafka_incremental_assign(st->rk, parts);
    else
        rd_kafka_assign(st->rk, parts);
    if (error) {
        eddy_log_error("assign failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    /* Each new task claims its partitions, then catches up with its changelogs
     * (what another instance, or this one before a crash, committed after the
     * local state) up to its claim. */
    claim_tasks(st, fresh, n_fresh);
    for (int i = 0; i < n_fresh; i++)
        start_restore(st, fresh[i]);
}

/* Forgets the task of partition p: what it did since its last commit goes with
 * it (a restore from the changelogs brings the rest back). */
static void drop_task(eddy_stream_thread_t *st, int32_t p)
{
    eddy_restorer_remove(st->restorer, st->tasks[p]);
    eddy_task_destroy(st->tasks[p]);
    st->tasks[p] = NULL;
    st->seek_pending[p] = false;
    st->n_tasks--;
}

/* A lost task's local state may hold commits written after its successor's
 * claim, which the changelog no longer counts: it goes, and a return restores
 * from the changelog. */
static void drop_local_state(eddy_stream_thread_t *st, int32_t p)
{
    char errstr[512];
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    if (!batch)
        return;
    eddy_statedb_batch_drop_task(batch, st->rt->db, p);
    if (eddy_statedb_write(st->rt->db, batch, false, errstr, sizeof(errstr)))
        eddy_log_error("task %d: %s", (int)p, errstr);
    eddy_statedb_batch_destroy(batch);
}

static void on_revoke(eddy_stream_thread_t *st, rd_kafka_topic_partition_list_t *parts,
                      bool cooperative)
{
    /* The leaving tasks' work is committed before they go, so the next owner
     * (here or elsewhere) resumes exactly where they stopped. Not when the
     * assignment was lost: the group gave the partitions away already and their
     * new owner may be writing; what was not committed is redone there. */
    bool lost = rd_kafka_assignment_lost(st->rk);
    /* Whatever happens to the tasks, the commit in flight finishes first: its
     * delivery reports point into them. No new commit while the thread stops:
     * rd_kafka_consumer_close() calls this right after the thread's last commit,
     * and a commit from inside the close can hang for good
     * (rd_kafka_consumer_group_metadata() waits on the closing group; seen after
     * a broker outage). */
    if (commit_end(st, true, false))
        fail(st);
    else if (!lost && !atomic_load(&st->stop) && !eddy_statedb_damaged(st->rt->db) &&
             commit_tasks(st, false))
        eddy_log_error("could not commit revoked tasks; they will resume from the last "
                       "successful commit");
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < EDDY_MAX_PARTITIONS && st->tasks[p] && lost)
            drop_local_state(st, p);
        if (p >= 0 && p < EDDY_MAX_PARTITIONS && st->tasks[p])
            drop_task(st, p);
    }
    eddy_metrics_rebalance(&st->rt->metrics);
    log_partitions(st, lost ? "lost" : "revoked", parts);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(st->rk, parts);
        if (error)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(st->rk, NULL);
    }
}

/* The local state is damaged (found by any reader). Every task goes without a
 * commit — what it did since its last commit is redone; only the commit in
 * flight ends, its Kafka part being done already. Then the thread waits, not
 * polling (no callback may touch the state db), until the main thread has a
 * fresh state db in place, and creates the tasks of its assignment again: they
 * claim and restore from their changelogs like new ones. The consumer stays in
 * the group throughout, so nothing rebalances. */
static void restart_tasks(eddy_stream_thread_t *st)
{
    commit_end(st, true, false); /* its write into the damaged db may fail: no matter */
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (st->tasks[p])
            drop_task(st, p);
    const uint64_t gen = eddy_local_state_generation(st->rt);
    eddy_log_warn("local state damaged: tasks dropped without a commit; waiting for a fresh "
                  "state database");
    atomic_store(&st->halted, true); /* from here on rt->db is not touched */
    while (!atomic_load(&st->stop) && eddy_local_state_generation(st->rt) == gen)
        eddy_sleep_ns(5 * 1000000, NULL);
    atomic_store(&st->halted, false);
    if (atomic_load(&st->stop))
        return;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(st->rk, &parts);
    if (err) {
        eddy_log_error("cannot read the assignment: %s", rd_kafka_err2str(err));
        fail(st);
        return;
    }
    eddy_task_t *fresh[EDDY_MAX_PARTITIONS];
    int n_fresh = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < EDDY_MAX_PARTITIONS && !st->tasks[p] && new_task(st, p))
            fresh[n_fresh++] = st->tasks[p];
    }
    rd_kafka_topic_partition_list_destroy(parts);
    eddy_log_info("local state: restoring %d tasks from their changelogs", n_fresh);
    claim_tasks(st, fresh, n_fresh);
    for (int i = 0; i < n_fresh; i++)
        start_restore(st, fresh[i]);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    eddy_stream_thread_t *st = opaque;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(st, parts, cooperative);
    else
        on_revoke(st, parts, cooperative);
}

static rd_kafka_t *make_consumer(eddy_stream_thread_t *st, char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = st->rt->cfg;
    const char *const settings[][2] = {
        {"bootstrap.servers", cfg->bootstrap_servers},
        {"group.id", cfg->application_id},
        {"client.id", st->name},
        /* Eager, not cooperative-sticky: librdkafka 2.0.2 aborts when a
         * cooperative-sticky consumer is destroyed before its first assignment
         * (librdkafka #4312, fixed in 2.3), which a stop during a rebalance
         * does, and its mock cluster keeps reporting cooperative assignments
         * lost between several members. The rebalance callback serves both. */
        {"partition.assignment.strategy", "roundrobin"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "50"},
        /* Kafka Streams before 3.0: a dead instance's tasks move within ~10 s, and
         * a member the embedded broker loses track of in a rebalance (it does,
         * when several join at once) stalls the group that long, not 45 s. */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"queued.min.messages", "200000"},
        {"reconnect.backoff.max.ms", "1000"}, /* as the producer's */
        {"log_level", "4"},
    };
    rd_kafka_conf_t *conf =
        eddy_config_kafka_conf("consumer", settings, sizeof(settings) / sizeof(settings[0]),
                               cfg->consumer_props, cfg->n_consumer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_opaque(conf, st);
    return eddy_config_kafka_new(RD_KAFKA_CONSUMER, conf, "consumer", errstr, errstr_size);
}

/* Leaves the group before the consumer is closed: unsubscribes, then serves the
 * revoke (on_revoke drops every task; no commit while stopping) until nothing is
 * assigned, for at most LEAVE_MS. A close that still has an assignment to revoke
 * can hang for good in librdkafka 2.0.2: it calls rd_kafka_assign() itself,
 * whose reply never comes (librdkafka issue #4884; seen once in a CI run, right
 * after a reset of damaged state). Records fetched meanwhile are dropped: the
 * last commit is behind them. */
#define LEAVE_MS 5000
static void leave_group(eddy_stream_thread_t *st)
{
    rd_kafka_resp_err_t err = rd_kafka_unsubscribe(st->rk);
    if (err) {
        eddy_log_warn("unsubscribe: %s", rd_kafka_err2str(err));
        return;
    }
    rd_kafka_message_t *msgs[BATCH_MAX];
    const int64_t end = eddy_mono_ns() + (int64_t)LEAVE_MS * 1000000;
    for (;;) {
        rd_kafka_topic_partition_list_t *assigned = NULL;
        bool empty = rd_kafka_assignment(st->rk, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                     assigned->cnt == 0;
        if (assigned)
            rd_kafka_topic_partition_list_destroy(assigned);
        if (empty)
            return;
        if (eddy_mono_ns() >= end) {
            eddy_log_warn("still assigned %d s after leaving the group; closing anyway",
                          LEAVE_MS / 1000);
            return;
        }
        ssize_t n = eddy_kafka_consume_batch(st->queue, 100, msgs, BATCH_MAX);
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
    }
}

static void *thread_main(void *arg)
{
    eddy_stream_thread_t *st = arg;
    eddy_log_set_thread_name(st->name + strlen(st->rt->cfg->application_id) + 1);
    const int64_t commit_ns = st->rt->cfg->commit_interval_ms * 1000000;
    const int poll_ms = (int)st->rt->cfg->poll_ms;

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, st->rt->source_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(st->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        eddy_log_error("cannot subscribe to %s: %s", st->rt->source_topic, rd_kafka_err2str(err));
        atomic_store(&st->failed, true);
        return NULL;
    }
    eddy_log_info("started; subscribed to %s as %s", st->rt->source_topic, st->name);

    st->queue = rd_kafka_queue_get_consumer(st->rk);
    rd_kafka_message_t *msgs[BATCH_MAX];
    st->last_commit_ns = eddy_mono_ns();
    while (!atomic_load(&st->stop)) {
        if (eddy_statedb_damaged(st->rt->db)) { /* found by this thread or any reader */
            restart_tasks(st);
            continue;
        }
        /* Restore before the poll: a task that finishes here seeks its input, and
         * the poll that follows cannot return a record fetched before that. While
         * restoring, the thread alternates slices of restore and of input for
         * its running tasks. */
        for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
            if (st->seek_pending[p] && st->tasks[p] &&
                eddy_task_state(st->tasks[p]) == EDDY_TASK_RUNNING)
                seek_input(st, p, 500);
        bool restoring = eddy_restorer_count(st->restorer) > 0;
        if (restoring)
            eddy_restorer_step(st->restorer, RESTORE_SLICE_MS, on_restored, st);
        int64_t slice_end = restoring ? eddy_mono_ns() + (int64_t)RESTORE_SLICE_MS * 1000000 : 0;
        /* A commit in flight is noticed between batches: no long waits then. */
        int timeout_ms = restoring ? 0 : st->in_flight ? 2 : poll_ms;
        for (;;) {
            /* Batches: one pass through the queue's lock for many records. The
             * rebalance callback may run in here; each record is checked against
             * the tasks as they are after it. */
            ssize_t n = eddy_kafka_consume_batch(st->queue, timeout_ms, msgs, BATCH_MAX);
            /* The wall clock bounds event times (event.time.max.future.ms): read
             * once per batch, not per record. A batch takes milliseconds, nothing
             * against a bound of hours. That the bound moves between batches is
             * fine: a record refused as "too far in the future" now and read again
             * after a rollback may be accepted then, but only a committed decision
             * counts, and each record's decision is committed exactly once, with
             * the offsets that passed it. */
            const int64_t now_ms = n > 0 ? eddy_now_ms() : 0;
            bool unreadable = false; /* a task's state could not be read */
            for (ssize_t i = 0; i < n; i++) {
                rd_kafka_message_t *msg = msgs[i];
                if (unreadable) {
                    /* read again once the state is whole */
                } else if (!msg->err) {
                    int p = msg->partition;
                    /* A restoring task's input is paused; what was fetched before
                     * the pause is read again after the restore. */
                    if (p >= 0 && p < EDDY_MAX_PARTITIONS && st->tasks[p] && !st->seek_pending[p] &&
                        eddy_task_state(st->tasks[p]) == EDDY_TASK_RUNNING) {
                        int64_t next = eddy_task_next_offset(st->tasks[p]);
                        if (msg->offset > (next > 0 ? next : 0) + 1)
                            check_gap(st, p, next > 0 ? next : 0, msg->offset);
                        if (eddy_task_process(st->tasks[p], msg, now_ms)) {
                            /* Damaged state: restart_tasks() at the top of the
                             * loop. Anything else (an I/O error, a full disk, a
                             * value this eddy cannot read) fails the thread and
                             * eddy stops with the error logged. No commit either way. */
                            unreadable = true;
                            if (!eddy_statedb_damaged(st->rt->db))
                                fail(st);
                        }
                    }
                } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    eddy_log_warn("consumer: %s", rd_kafka_message_errstr(msg));
                }
                rd_kafka_message_destroy(msg);
            }
            if (!restoring || n <= 0 || eddy_mono_ns() >= slice_end || unreadable)
                break;
        }
        if (atomic_load(&st->stop) || eddy_statedb_damaged(st->rt->db))
            continue; /* no commit after a task could not read its state */
        if (st->in_flight) {
            if (commit_end(st, false, true) && !eddy_statedb_damaged(st->rt->db)) {
                atomic_store(&st->failed, true);
                break;
            }
        } else if (eddy_mono_ns() - st->last_commit_ns >= commit_ns) {
            commit_begin(st);
        }
    }
    /* Nothing goes into a damaged state db, nor to the changelogs from tasks that
     * may have read it, but the commit in flight, which must end. */
    /* The last commit, unless no broker answers: then it could only fail after
     * the stop's time; what it would have held is redone from the last commit. */
    if (!atomic_load(&st->failed) && !eddy_statedb_damaged(st->rt->db) &&
        !atomic_load(&st->rt->metrics.brokers_down))
        commit_tasks(st, true);
    else
        commit_end(st, true, false); /* nothing may be left in flight */
    leave_group(st);
    rd_kafka_queue_destroy(st->queue);
    rd_kafka_consumer_close(st->rk);
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (st->tasks[p])
            drop_task(st, p);
    eddy_log_info("stopped");
    return NULL;
}

/* Ends the committer thread (idle by now: the stream thread finished every
 * commit it began). */
static void stop_committer(eddy_stream_thread_t *st)
{
    if (!st->committer_started)
        return;
    pthread_mutex_lock(&st->cm_lock);
    atomic_store(&st->cm_state, CM_QUIT);
    pthread_cond_broadcast(&st->cm_cond);
    pthread_mutex_unlock(&st->cm_lock);
    pthread_join(st->committer, NULL);
    st->committer_started = false;
    pthread_cond_destroy(&st->cm_cond);
    pthread_mutex_destroy(&st->cm_lock);
}

eddy_stream_thread_t *eddy_stream_thread_start(eddy_runtime_t *rt, int index, char *errstr,
                                               size_t errstr_size)
{
    eddy_stream_thread_t *st = calloc(1, sizeof(*st));
    if (!st) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    st->rt = rt;
    st->index = index;
    snprintf(st->name, sizeof(st->name), "%s-StreamThread-%d", rt->cfg->application_id, index + 1);
    st->eos = rt->cfg->guarantee == EDDY_EXACTLY_ONCE_V2;
    /* EOS v2: one transactional id per thread and process run; zombies of an
     * earlier run are fenced through the consumer group's generation. */
    uint32_t run_id = 0;
    if (getrandom(&run_id, sizeof(run_id), 0) != (ssize_t)sizeof(run_id))
        run_id = (uint32_t)eddy_mono_ns();
    snprintf(st->txn_id, sizeof(st->txn_id), "%s-%08x-%d", rt->cfg->application_id, run_id,
             index + 1);
    st->batch = eddy_statedb_batch_new();
    st->rk = make_consumer(st, errstr, errstr_size);
    if (!st->rk || !st->batch)
        goto fail;
    st->restorer = eddy_restorer_new(rt, st->name, errstr, errstr_size);
    if (!st->restorer)
        goto fail;
    st->producer = make_producer(st, errstr, errstr_size);
    if (!st->producer)
        goto fail;
    pthread_mutex_init(&st->cm_lock, NULL);
    pthread_cond_init(&st->cm_cond, NULL);
    atomic_init(&st->cm_state, CM_IDLE);
    if (pthread_create(&st->committer, NULL, committer_main, st) != 0) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot start a thread");
        goto fail;
    }
    st->committer_started = true;
    if (pthread_create(&st->thread, NULL, thread_main, st) != 0) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot start a thread");
        goto fail;
    }
    return st;
fail:
    stop_committer(st);
    if (st->producer)
        rd_kafka_destroy(st->producer);
    eddy_restorer_destroy(st->restorer);
    if (st->rk)
        rd_kafka_destroy(st->rk);
    eddy_statedb_batch_destroy(st->batch);
    free(st);
    return NULL;
}

void eddy_stream_thread_signal_stop(eddy_stream_thread_t *st)
{
    request_stop(st);
}

void eddy_stream_thread_join(eddy_stream_thread_t *st)
{
    if (!st)
        return;
    pthread_join(st->thread, NULL);
    stop_committer(st);
    if (st->producer) {
        /* Whatever is still queued belongs to a commit that did not finish. */
        rd_kafka_purge(st->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(st->producer);
    }
    eddy_restorer_destroy(st->restorer);
    rd_kafka_destroy(st->rk);
    eddy_statedb_batch_destroy(st->batch);
    free(st);
}

bool eddy_stream_thread_failed(const eddy_stream_thread_t *st)
{
    return atomic_load(&st->failed);
}

bool eddy_stream_thread_halted(const eddy_stream_thread_t *st)
{
    return atomic_load(&st->halted);
}
