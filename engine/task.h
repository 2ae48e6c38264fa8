/*
 * task.h — a stream task: the processing of one input partition, Kafka Streams
 * style. It decodes each record, keeps the partition's stream time, drops late
 * records (counted), and folds the rest into the windows of every store through
 * its record caches; at commit it hands the dirty windows to the thread's write
 * batch and produces them, with one commit marker per store, to the stores'
 * changelog partitions (changelog.h).
 *
 * Life: new (RESTORING) -> restore_begin/record/store_done/finish (RUNNING) ->
 * process ... flush, commit_positions, committed ... -> destroy. A failed commit
 * calls rollback, which makes the task RESTORING again: the changelogs, read from
 * the last local position, say what the failed commit left behind. A task whose
 * commits keep failing for one deterministic reason is stopped: rollback, then
 * fail (ERROR) until it is destroyed.
 *
 * A task belongs to one stream thread and is only ever touched by it.
 */
#ifndef EDDY_TASK_H
#define EDDY_TASK_H

#include "eddy.h"
#include "engine/runtime.h"

#include <librdkafka/rdkafka.h>

typedef struct eddy_task_s eddy_task_t;

/** Creates the task of `partition` from its local positions (RESTORING).
 *  `thread_index` is published in the partition's metrics. */
eddy_task_t *eddy_task_new(eddy_runtime_t *rt, int32_t partition, int thread_index, char *errstr,
                           size_t errstr_size);

/** Commits nothing; frees the task and its caches (dirty entries are lost, so
 *  commit first). NULL is a no-op. */
void eddy_task_destroy(eddy_task_t *task);

int32_t eddy_task_partition(const eddy_task_t *task);
eddy_task_state_t eddy_task_state(const eddy_task_t *task);
size_t eddy_task_store_count(const eddy_task_t *task);

/** Processes one record of the task's partition (RUNNING). A record that cannot
 *  be used is counted, logged with its topic/partition/offset and kept for the
 *  dead-letter topic; a record below the task's position is ignored. `now_ms` is
 *  the wall clock (read once per batch by the caller): event times more than the
 *  topology's max_future (else event.time.max.future.ms) ahead of it are bad
 *  input. Fails (logged) only when a window's stored state cannot be read:
 *  EDDY_ERR_CORRUPT (the state db is damaged: eddy_statedb_damaged),
 *  EDDY_ERR_STORE (an I/O error), EDDY_ERR_INVALID (a stored value this eddy
 *  cannot read) or EDDY_ERR_NOMEM. The record is then not applied (no window
 *  starts afresh), the task is poisoned — it fails every flush and process
 *  (EDDY_ERR_STATE) until eddy_task_rollback — and the record is processed again
 *  after the restore. */
eddy_err_t eddy_task_process(eddy_task_t *task, const rd_kafka_message_t *msg, int64_t now_ms);

/** Adds the dirty windows to `batch` and produces them with `rk` to the
 *  changelogs, followed by one marker per store if the task moved; `*written`
 *  is the number of window entries. Markers' delivery reports must be passed to
 *  eddy_task_marker_delivered (the message opaque). The entries flushed are clean
 *  from here on; the task may process more records before eddy_task_committed(),
 *  which then covers what was flushed, not what came after. */
eddy_err_t eddy_task_flush(eddy_task_t *task, eddy_statedb_batch_t *batch, rd_kafka_t *rk,
                           size_t *written);

/** Produces the claim markers of the task's incarnation (one per store) with `rk`:
 *  written before the task restores, they fence its predecessor (changelog.h). */
eddy_err_t eddy_task_claim(eddy_task_t *task, rd_kafka_t *rk);

/** The delivery report of a record a task produced (flush or claim): `opaque` is
 *  the message's opaque, `err` its error, `offset` where it landed. Records a
 *  marker's offset; charges an error to the commit in progress of the task that
 *  produced the record (eddy_task_commit_error). On whichever thread serves the
 *  producer's reports; the stream thread reads what it wrote only after the
 *  commit's Kafka part is done. */
void eddy_task_delivered(void *opaque, rd_kafka_resp_err_t err, int64_t offset);

/** The first error a record of the commit in progress met, when it was produced
 *  or in its delivery report (0: none), and what the record was ("a changelog
 *  record of store S", "a dead-letter copy", ...) in `what` if not NULL. Reset
 *  by eddy_task_flush. */
rd_kafka_resp_err_t eddy_task_commit_error(const eddy_task_t *task, char *what, size_t what_size);

/** Stops the task for good (ERROR, published with `err` and the count of failed
 *  commits): called after eddy_task_rollback, for a task whose commits keep
 *  failing for the same deterministic reason. It is neither processed nor
 *  committed again; eddy_task_destroy is what is left to do. */
void eddy_task_fail(eddy_task_t *task, rd_kafka_resp_err_t err, int failed_commits);

/** After the produced records are committed to Kafka: adds the stores' new
 *  positions and the checkpoint to `batch`. Fails if a marker was not confirmed. */
eddy_err_t eddy_task_commit_positions(eddy_task_t *task, eddy_statedb_batch_t *batch);

/** Called after `batch` was written: marks entries clean, evicts closed windows
 *  from the cache and publishes the committed position and counters. */
void eddy_task_committed(eddy_task_t *task);

/** Forgets everything since the last commit (caches, position, counters, the
 *  poison of a failed read) and starts a new incarnation; the task is RESTORING
 *  and must be restored before it processes again. */
eddy_err_t eddy_task_rollback(eddy_task_t *task, char *errstr, size_t errstr_size);

/** Next input offset to process, or -1 when the task has no position and has
 *  processed nothing (start from the beginning). */
int64_t eddy_task_next_offset(const eddy_task_t *task);

/** Next input offset as of the last commit (-1 as eddy_task_next_offset). */
int64_t eddy_task_committed_offset(const eddy_task_t *task);

/* --- restore (RESTORING) ---------------------------------------------------------- */

/** Starts a restore; `offsets[i]` is where store i's changelog partition is to be
 *  read from (its local position, or 0). */
eddy_err_t eddy_task_restore_begin(eddy_task_t *task, int64_t *offsets, char *errstr,
                                   size_t errstr_size);

/** Feeds record `offset` of store `store`'s changelog partition, in order. */
void eddy_task_restore_record(eddy_task_t *task, size_t store, int64_t offset, const void *key,
                              size_t key_len, const void *value, size_t value_len);

/** Store `store`'s changelog was read to its end. */
void eddy_task_restore_store_done(eddy_task_t *task, size_t store);

/** Store `store`'s changelog no longer starts where the restore needed it to
 *  (retention): the restore then relies on a whole snapshot after its start. */
void eddy_task_restore_truncated(eddy_task_t *task, size_t store);

/** Every store was read to its end. */
bool eddy_task_restore_complete(const eddy_task_t *task);

/** Writes the restored state with its positions and makes the task RUNNING at the
 *  restored input position (eddy_task_next_offset). Fails if any part of the
 *  restore could not be written (the task stays RESTORING). */
eddy_err_t eddy_task_restore_finish(eddy_task_t *task, char *errstr, size_t errstr_size);

#endif /* EDDY_TASK_H */
