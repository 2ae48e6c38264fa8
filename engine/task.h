/*
 * task.h — a stream task: the processing of one input partition, Kafka Streams
 * style. It decodes each record, keeps the partition's stream time, drops late
 * records (counted), and folds the rest into the windows of every store through
 * its record caches; at commit it hands the dirty windows and its checkpoint to
 * the thread's write batch.
 *
 * A task belongs to one stream thread and is only ever touched by it.
 */
#ifndef EDDY_TASK_H
#define EDDY_TASK_H

#include "eddy.h"
#include "engine/runtime.h"

#include <librdkafka/rdkafka.h>

typedef struct eddy_task_s eddy_task_t;

/** Creates the task of `partition`, resuming from its local checkpoint if there is
 *  one. `thread_index` is published in the partition's metrics. */
eddy_task_t *eddy_task_new(eddy_runtime_t *rt, int32_t partition, int thread_index, char *errstr,
                           size_t errstr_size);

/** Commits nothing; frees the task and its caches (dirty entries are lost, so
 *  commit first). NULL is a no-op. */
void eddy_task_destroy(eddy_task_t *task);

/** Processes one record of the task's partition. Never fails: a record that
 *  cannot be decoded is counted and logged with its topic/partition/offset. */
void eddy_task_process(eddy_task_t *task, const rd_kafka_message_t *msg);

/** Adds the dirty windows and the checkpoint to `batch`; returns the number of
 *  window entries added. The task stays dirty until eddy_task_committed(). */
size_t eddy_task_flush(eddy_task_t *task, eddy_statedb_batch_t *batch);

/** Called after the batch of the last flush was written: marks entries clean,
 *  evicts closed windows from the cache and expired ones from the store. */
void eddy_task_committed(eddy_task_t *task);

/** Next input offset to process, or -1 when the task has no checkpoint and has
 *  processed nothing (start from the beginning). */
int64_t eddy_task_next_offset(const eddy_task_t *task);

#endif /* EDDY_TASK_H */
