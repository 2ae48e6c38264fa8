/*
 * restore.c — the restorer (see restore.h).
 *
 * The restore consumer's assignment changes incrementally: a task's changelog
 * partitions are added when it starts and each is removed when read to its end,
 * so the others keep fetching where they are (reassigning everything restarted
 * every fetch at each store's end). A store is done when a
 * record at or past its end offset minus one was read, or the consumer reports
 * the partition's end (on a real cluster the last offsets are transaction
 * markers, never delivered). Progress goes to the partition's metrics and to
 * the log every few seconds.
 */
#include "engine/restore.h"
#include "engine/log.h"
#include "engine/util.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_NS   (5 * 1000000000LL)
#define RESTORE_BATCH 1024 /* records taken from the consumer's queue at once */

typedef struct restoring_s {
    eddy_task_t *task;                      /* NULL: slot free */
    int64_t end[EDDY_TOPOLOGY_MAX_STORES];  /* high watermark to reach per store */
    int64_t next[EDDY_TOPOLOGY_MAX_STORES]; /* next offset to read per store */
    bool done[EDDY_TOPOLOGY_MAX_STORES];    /* store reached its end */
    int64_t read;                           /* records read so far */
    int64_t total;                          /* records to read */
} restoring_t;

struct eddy_restorer_s {
    eddy_runtime_t *rt;                               /* borrowed */
    rd_kafka_t *rk;                                   /* the restore consumer */
    rd_kafka_queue_t *queue;                          /* its queue, read in batches */
    rd_kafka_topic_t *rkts[EDDY_TOPOLOGY_MAX_STORES]; /* the changelogs, by store */
    restoring_t parts[EDDY_MAX_PARTITIONS];           /* by input partition */
    int n;                                            /* tasks restoring */
    int64_t last_progress_ns;                         /* last progress line */
};

eddy_restorer_t *eddy_restorer_new(eddy_runtime_t *rt, const char *name, char *errstr,
                                   size_t errstr_size)
{
    char client_id[128], group[300];
    snprintf(client_id, sizeof(client_id), "%s-restore", name);
    /* Never joins or commits to this group: assign mode only. */
    snprintf(group, sizeof(group), "%s-restore", rt->cfg->application_id);
    const char *const settings[][2] = {
        {"bootstrap.servers", rt->cfg->bootstrap_servers},
        {"group.id", group},
        {"client.id", client_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
        {"fetch.wait.max.ms", "10"},
        {"log_level", "4"},
    };
    rd_kafka_conf_t *conf = eddy_config_kafka_conf(
        "restore consumer", settings, sizeof(settings) / sizeof(settings[0]),
        rt->cfg->consumer_props, rt->cfg->n_consumer_props, errstr, errstr_size);
    if (!conf)
        return NULL;
    eddy_restorer_t *r = calloc(1, sizeof(*r));
    if (!r) {
        rd_kafka_conf_destroy(conf);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    rd_kafka_t *rk =
        eddy_config_kafka_new(RD_KAFKA_CONSUMER, conf, "restore consumer", errstr, errstr_size);
    if (!rk) {
        free(r);
        return NULL;
    }
    r->rt = rt;
    r->rk = rk;
    r->queue = rd_kafka_queue_get_consumer(rk);
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo); i++)
        r->rkts[i] = rd_kafka_topic_new(rk, rt->changelog_topics[i], NULL);
    if (!r->queue) {
        eddy_restorer_destroy(r);
        eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size, "the restore consumer has no queue");
        return NULL;
    }
    return r;
}

void eddy_restorer_destroy(eddy_restorer_t *r)
{
    if (!r)
        return;
    rd_kafka_assign(r->rk, NULL);
    if (r->queue)
        rd_kafka_queue_destroy(r->queue);
    for (size_t i = 0; i < EDDY_TOPOLOGY_MAX_STORES; i++)
        if (r->rkts[i])
            rd_kafka_topic_destroy(r->rkts[i]);
    rd_kafka_destroy(r->rk);
    free(r);
}

int eddy_restorer_count(const eddy_restorer_t *r)
{
    return r->n;
}

/* Adds (or removes) the changelog partitions of `rs`'s stores that are not done,
 * or only `store` if it is >= 0, to the restore consumer's assignment. */
static void change_assignment(eddy_restorer_t *r, int32_t p, const restoring_t *rs, int store,
                              bool add)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < eddy_task_store_count(rs->task); i++)
        if (store >= 0 ? (size_t)store == i : !rs->done[i])
            rd_kafka_topic_partition_list_add(list, r->rt->changelog_topics[i], p)->offset =
                rs->next[i];
    rd_kafka_error_t *error = list->cnt == 0 ? NULL
                              : add          ? rd_kafka_incremental_assign(r->rk, list)
                                             : rd_kafka_incremental_unassign(r->rk, list);
    if (error) {
        eddy_log_error("restore consumer: cannot %s changelog partitions of task %d: %s",
                       add ? "assign" : "unassign", (int)p, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

eddy_err_t eddy_restorer_add(eddy_restorer_t *r, eddy_task_t *task, bool *done, char *errstr,
                             size_t errstr_size)
{
    int32_t p = eddy_task_partition(task);
    restoring_t *rs = &r->parts[p];
    int64_t offsets[EDDY_TOPOLOGY_MAX_STORES];
    *done = false;
    eddy_err_t err = eddy_task_restore_begin(task, offsets, errstr, errstr_size);
    if (err)
        return err;
    memset(rs, 0, sizeof(*rs));
    bool all_done = true;
    for (size_t i = 0; i < eddy_task_store_count(task); i++) {
        const char *topic = r->rt->changelog_topics[i];
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t rerr =
            rd_kafka_query_watermark_offsets(r->rk, topic, p, &lo, &hi, 10000);
        if (rerr)
            return eddy_errf(EDDY_ERR_KAFKA, errstr, errstr_size,
                             "cannot read the end offsets of changelog %s [%d]: %s", topic, (int)p,
                             rd_kafka_err2str(rerr));
        if (offsets[i] < lo) {
            /* Retention (the embedded broker keeps 5 MiB per partition) or a
             * recreated topic: what lies before lo is gone. */
            eddy_log_warn(
                "task %d: changelog %s [%d] starts at offset %lld, after the local "
                "position %lld: records before it were deleted; restoring from there (whole from "
                "its first snapshot on)",
                (int)p, topic, (int)p, (long long)lo, (long long)offsets[i]);
            offsets[i] = lo;
            eddy_task_restore_truncated(task, i);
        }
        if (offsets[i] > hi) {
            eddy_log_warn("task %d: local position %lld is past the end %lld of changelog %s "
                          "[%d] (was the topic recreated?); nothing to replay",
                          (int)p, (long long)offsets[i], (long long)hi, topic, (int)p);
            offsets[i] = hi;
        }
        rs->next[i] = offsets[i];
        rs->end[i] = hi;
        rs->done[i] = offsets[i] >= hi;
        if (rs->done[i])
            eddy_task_restore_store_done(task, i);
        rs->total += hi - offsets[i];
        all_done = all_done && rs->done[i];
    }
    eddy_partition_stats_t *ps = &r->rt->metrics.parts[p];
    atomic_store(&ps->restore_read, 0);
    atomic_store(&ps->restore_total, rs->total);
    if (all_done) {
        *done = true;
        return EDDY_OK;
    }
    rs->task = task;
    r->n++;
    eddy_log_info("task %d: restoring %lld changelog records", (int)p, (long long)rs->total);
    change_assignment(r, p, rs, -1, true);
    return EDDY_OK;
}

void eddy_restorer_remove(eddy_restorer_t *r, eddy_task_t *task)
{
    restoring_t *rs = &r->parts[eddy_task_partition(task)];
    if (rs->task != task)
        return;
    change_assignment(r, eddy_task_partition(task), rs, -1, false);
    rs->task = NULL;
    r->n--;
}

/* Index of the store whose changelog `rkt` is, or -1. librdkafka has one topic
 * object per name, so the handles taken at the start match; the name is the
 * fallback. */
static int store_of(const eddy_restorer_t *r, rd_kafka_topic_t *rkt)
{
    size_t n = eddy_topology_store_count(r->rt->topo);
    for (size_t i = 0; i < n; i++)
        if (r->rkts[i] == rkt)
            return (int)i;
    const char *topic = rd_kafka_topic_name(rkt);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r->rt->changelog_topics[i], topic))
            return (int)i;
    return -1;
}

static void log_progress(eddy_restorer_t *r)
{
    int64_t read = 0, total = 0;
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (r->parts[p].task) {
            read += r->parts[p].read;
            total += r->parts[p].total;
        }
    eddy_log_info("restoring %d tasks: %lld of %lld changelog records (%.0f%%)", r->n,
                  (long long)read, (long long)total,
                  total ? 100.0 * (double)read / (double)total : 100.0);
}

/* One record (or partition end) of the restore consumer. */
static void step_one(eddy_restorer_t *r, rd_kafka_message_t *msg, eddy_restored_fn *done,
                     void *opaque)
{
    int p = msg->partition;
    int store = msg->rkt ? store_of(r, msg->rkt) : -1;
    restoring_t *rs = p >= 0 && p < EDDY_MAX_PARTITIONS ? &r->parts[p] : NULL;
    if (!rs || !rs->task || store < 0 || rs->done[store]) {
        rd_kafka_message_destroy(msg);
        return;
    }
    bool at_end = false;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        at_end = msg->offset >= rs->end[store];
    } else if (msg->err) {
        eddy_log_warn("restore consumer: %s", rd_kafka_message_errstr(msg));
    } else if (msg->offset >= rs->next[store]) { /* not a stale fetch */
        rs->next[store] = msg->offset + 1;
        eddy_task_restore_record(rs->task, (size_t)store, msg->offset, msg->key, msg->key_len,
                                 msg->payload, msg->len);
        rs->read++;
        at_end = msg->offset + 1 >= rs->end[store];
    }
    rd_kafka_message_destroy(msg);
    if (!at_end)
        return;
    rs->done[store] = true;
    change_assignment(r, p, rs, store, false);
    eddy_task_restore_store_done(rs->task, (size_t)store);
    if (eddy_task_restore_complete(rs->task)) {
        eddy_task_t *task = rs->task;
        atomic_store(&r->rt->metrics.parts[p].restore_read, rs->total);
        atomic_fetch_add(&r->rt->metrics.restored_records, rs->read);
        rs->task = NULL;
        r->n--;
        done(task, opaque);
    }
}

void eddy_restorer_step(eddy_restorer_t *r, int budget_ms, eddy_restored_fn *done, void *opaque)
{
    int64_t deadline = eddy_mono_ns() + (int64_t)budget_ms * 1000000;
    rd_kafka_message_t *msgs[RESTORE_BATCH];
    while (r->n > 0 && eddy_mono_ns() < deadline) {
        /* Batches: one pass through the queue's lock for many records. */
        ssize_t got = eddy_kafka_consume_batch(r->queue, 5, msgs, RESTORE_BATCH);
        for (ssize_t m = 0; m < got; m++)
            step_one(r, msgs[m], done, opaque);
    }
    for (int p = 0; p < EDDY_MAX_PARTITIONS; p++)
        if (r->parts[p].task)
            atomic_store_explicit(&r->rt->metrics.parts[p].restore_read, r->parts[p].read,
                                  memory_order_relaxed);
    if (r->n > 0 && eddy_mono_ns() - r->last_progress_ns >= PROGRESS_NS) {
        if (r->last_progress_ns)
            log_progress(r);
        r->last_progress_ns = eddy_mono_ns();
    }
    if (r->n == 0)
        r->last_progress_ns = 0;
}
