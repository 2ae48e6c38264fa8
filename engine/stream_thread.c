/*
 * stream_thread.c — the stream thread's loop (see stream_thread.h).
 *
 *   poll -> task of the record's partition -> process
 *   every commit.interval.ms: one RocksDB WriteBatch with every task's dirty
 *   windows and checkpoint (input offset), written atomically; then the same
 *   offsets are committed to the consumer group (informational: lag, tooling).
 *
 * Local state is the source of truth for where a task resumes: a task starts at
 * its checkpoint's offset, or at the beginning of the partition without one, so a
 * restart never counts an event twice or skips one (state and offsets move
 * together). Partitions come and go through the cooperative-sticky assignor; a
 * revoked task is committed before it is closed.
 */
#include "engine/stream_thread.h"
#include "engine/log.h"
#include "engine/task.h"
#include "engine/util.h"

#include <librdkafka/rdkafka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eddy_stream_thread_s {
    eddy_runtime_t *rt;                      /* shared, read-only context */
    int index;                               /* 0-based thread number */
    char name[64];                           /* "<app>-StreamThread-N" */
    pthread_t thread;                        /* the pthread running thread_main */
    rd_kafka_t *rk;                          /* this thread's consumer */
    eddy_task_t *tasks[EDDY_MAX_PARTITIONS]; /* by partition; NULL when not owned */
    int n_tasks;                             /* non-NULL entries in tasks */
    eddy_statedb_batch_t *batch;             /* reused for every commit */
    atomic_int stop;                         /* set by signal_stop */
    atomic_bool failed;                      /* ended on a fatal error */
    int64_t last_commit_ns;                  /* monotonic time of the last commit */
    int64_t last_group_commit_ns;            /* ... and of the last one sent to the group */
};

/* Writes every task's dirty state and checkpoint in one atomic batch, then tells
 * the group. Runs on the stream thread (also from the rebalance callback). */
static eddy_err_t commit_tasks(eddy_stream_thread_t *st, bool to_group)
{
    if (st->n_tasks == 0)
        return EDDY_OK;
    int64_t t0 = eddy_mono_ns();
    char errstr[512];
    eddy_statedb_batch_clear(st->batch);
    size_t dirty = 0;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (st->tasks[p])
            dirty += eddy_task_flush(st->tasks[p], st->batch);
    eddy_err_t err = eddy_statedb_write(st->rt->db, st->batch, false, errstr, sizeof(errstr));
    if (err) {
        eddy_log_error("commit failed: %s", errstr);
        return err;
    }
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(st->n_tasks);
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++) {
        if (!st->tasks[p])
            continue;
        eddy_task_committed(st->tasks[p]);
        int64_t next = eddy_task_next_offset(st->tasks[p]);
        if (next >= 0)
            rd_kafka_topic_partition_list_add(offsets, st->rt->source_topic, p)->offset = next;
    }
    /* The group's offsets are for lag and tooling only (local state is what a task
     * resumes from), so once a second is plenty. */
    if (offsets->cnt > 0 && to_group && eddy_mono_ns() - st->last_group_commit_ns >= 1000000000) {
        rd_kafka_commit(st->rk, offsets, 1 /* async */);
        st->last_group_commit_ns = eddy_mono_ns();
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    int64_t dt = eddy_mono_ns() - t0;
    eddy_metrics_commit(&st->rt->metrics, dt, dirty);
    st->last_commit_ns = eddy_mono_ns();
    return EDDY_OK;
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

static void on_assign(eddy_stream_thread_t *st, rd_kafka_topic_partition_list_t *parts,
                      bool cooperative)
{
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int p = tp->partition;
        if (p < 0 || p >= EDDY_MAX_PARTITIONS) {
            eddy_log_error("partition %d is beyond eddy's limit of %d; not processed", p,
                           EDDY_MAX_PARTITIONS);
            continue;
        }
        if (!st->tasks[p]) {
            char errstr[512];
            st->tasks[p] = eddy_task_new(st->rt, p, st->index, errstr, sizeof(errstr));
            if (!st->tasks[p]) {
                eddy_log_error("cannot create task for partition %d: %s", p, errstr);
                atomic_store(&st->failed, true);
                atomic_store(&st->stop, 1);
                continue;
            }
            st->n_tasks++;
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
}

static void on_revoke(eddy_stream_thread_t *st, rd_kafka_topic_partition_list_t *parts,
                      bool cooperative)
{
    /* State and offsets of the leaving tasks are written before they go, so the
     * next owner (here or elsewhere) resumes exactly where they stopped. */
    /* Not to the group: it is rebalancing and would refuse; local state is what
     * the next owner resumes from. */
    if (commit_tasks(st, false))
        eddy_log_error("could not commit revoked tasks; they will resume from the last "
                       "successful commit");
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < EDDY_MAX_PARTITIONS && st->tasks[p]) {
            eddy_task_destroy(st->tasks[p]);
            st->tasks[p] = NULL;
            st->n_tasks--;
        }
    }
    eddy_metrics_rebalance(&st->rt->metrics);
    log_partitions(st, rd_kafka_assignment_lost(st->rk) ? "lost" : "revoked", parts);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(st->rk, parts);
        if (error)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(st->rk, NULL);
    }
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
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "50"},
        {"queued.min.messages", "200000"},
        {"log_level", "4"},
    };
    rd_kafka_conf_t *conf =
        eddy_config_kafka_conf("consumer", settings, sizeof(settings) / sizeof(settings[0]),
                               cfg->consumer_props, cfg->n_consumer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, st);
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "cannot create a consumer: %s", rderr);
    }
    return rk;
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

    st->last_commit_ns = eddy_mono_ns();
    while (!atomic_load(&st->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(st->rk, poll_ms);
        if (msg) {
            if (!msg->err) {
                int p = msg->partition;
                if (p >= 0 && p < EDDY_MAX_PARTITIONS && st->tasks[p])
                    eddy_task_process(st->tasks[p], msg);
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                eddy_log_warn("consumer: %s", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
        }
        if (eddy_mono_ns() - st->last_commit_ns >= commit_ns && commit_tasks(st, true)) {
            atomic_store(&st->failed, true);
            break;
        }
    }
    if (!atomic_load(&st->failed))
        commit_tasks(st, true);
    /* Leaves the group: the revoke callback commits and closes every task. */
    rd_kafka_consumer_close(st->rk);
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (st->tasks[p]) {
            eddy_task_destroy(st->tasks[p]);
            st->tasks[p] = NULL;
        }
    eddy_log_info("stopped");
    return NULL;
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
    st->batch = eddy_statedb_batch_new();
    st->rk = make_consumer(st, errstr, errstr_size);
    if (!st->rk || !st->batch)
        goto fail;
    if (pthread_create(&st->thread, NULL, thread_main, st) != 0) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot start a thread");
        goto fail;
    }
    return st;
fail:
    if (st->rk)
        rd_kafka_destroy(st->rk);
    eddy_statedb_batch_destroy(st->batch);
    free(st);
    return NULL;
}

void eddy_stream_thread_signal_stop(eddy_stream_thread_t *st)
{
    atomic_store(&st->stop, 1);
}

void eddy_stream_thread_join(eddy_stream_thread_t *st)
{
    if (!st)
        return;
    pthread_join(st->thread, NULL);
    rd_kafka_destroy(st->rk);
    eddy_statedb_batch_destroy(st->batch);
    free(st);
}

bool eddy_stream_thread_failed(const eddy_stream_thread_t *st)
{
    return atomic_load(&st->failed);
}
