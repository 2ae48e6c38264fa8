/*
 * task.c — a stream task (see task.h).
 *
 * Per record: decode -> event time -> stream time = max(stream time, event time)
 * -> for every store, every window [s, s+size) holding the event: if
 * s + size + grace <= stream time the window has closed and the update is dropped
 * (counted as late); otherwise the (window, key) state in the record cache is
 * updated, loaded from RocksDB on first touch. DESIGN.md §2 is the contract; the
 * reference implementation in tests/support/reference.c restates it.
 */
#include "engine/task.h"
#include "engine/decode.h"
#include "engine/log.h"
#include "engine/util.h"
#include "stores/record_cache.h"
#include "topology/aggregate.h"

#include <stdlib.h>
#include <string.h>

#define MAX_KEY 1024

typedef struct task_store_s {
    const eddy_store_def_t *def;     /* the declaration */
    const eddy_agg_layout_t *layout; /* shared by all tasks */
    int index;                       /* column family index in the state db */
    eddy_cache_t *cache;             /* (window, key) -> eddy_agg_t */
    int64_t expired_before;          /* windows before this start were deleted */
} task_store_t;

struct eddy_task_s {
    eddy_runtime_t *rt;                            /* shared context */
    int32_t partition;                             /* input partition = task id */
    int64_t next_offset;                           /* next input offset; -1: from the start */
    int64_t stream_time;                           /* largest event time seen; INT64_MIN: none */
    eddy_partition_stats_t *stats;                 /* published counters */
    task_store_t stores[EDDY_TOPOLOGY_MAX_STORES]; /* one per store */
    size_t n_stores;                               /* used */
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS]; /* the current event's fields */
    uint8_t *buf;                                  /* serialization buffer */
    size_t buf_cap;                                /* its size */
    eddy_statedb_batch_t *flush_batch;             /* batch of the flush in progress */
    int64_t processed, late, undecodable;          /* counters, published at each commit */
    size_t flushed;                                /* entries added by it */
    int64_t undecodable_logged;                    /* undecodable records logged (capped) */
};

static void free_agg(void *state, void *opaque)
{
    (void)opaque;
    eddy_agg_destroy(state);
}

eddy_task_t *eddy_task_new(eddy_runtime_t *rt, int32_t partition, int thread_index, char *errstr,
                           size_t errstr_size)
{
    eddy_task_t *task = calloc(1, sizeof(*task));
    if (!task) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    task->rt = rt;
    task->partition = partition;
    task->next_offset = -1;
    task->stream_time = INT64_MIN;
    task->stats = &rt->metrics.parts[partition];
    task->n_stores = eddy_topology_store_count(rt->topo);
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        ts->def = eddy_topology_store(rt->topo, i);
        ts->layout = rt->layouts[i];
        ts->index = eddy_statedb_store_index(rt->db, ts->def->name);
        ts->cache = eddy_cache_new(free_agg, NULL);
        ts->expired_before = INT64_MIN;
        if (!ts->cache || ts->index < 0) {
            eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "cannot set up store %s", ts->def->name);
            eddy_task_destroy(task);
            return NULL;
        }
    }
    task->buf_cap = 4096;
    task->buf = malloc(task->buf_cap);

    eddy_checkpoint_t cp;
    bool found = false;
    if (eddy_statedb_get_checkpoint(rt->db, partition, &cp, &found, errstr, errstr_size)) {
        eddy_task_destroy(task);
        return NULL;
    }
    if (found) {
        task->next_offset = cp.input_offset;
        task->stream_time = cp.stream_time;
    }
    atomic_store(&task->stats->owner, thread_index + 1);
    atomic_store(&task->stats->next_offset, task->next_offset);
    atomic_store(&task->stats->committed_offset, task->next_offset);
    atomic_store(&task->stats->stream_time, task->stream_time);
    atomic_store(&task->stats->committed_stream_time, task->stream_time);
    eddy_log_info("task %d: %s", partition,
                  found ? "resuming from local state"
                        : "no local state, starting at the "
                          "beginning of the partition");
    return task;
}

void eddy_task_destroy(eddy_task_t *task)
{
    if (!task)
        return;
    for (size_t i = 0; i < task->n_stores; i++)
        eddy_cache_destroy(task->stores[i].cache);
    atomic_store(&task->stats->owner, 0);
    free(task->buf);
    free(task);
}

/* The cache entry of (window, key): cached, else loaded from RocksDB, else new. */
static eddy_cache_entry_t *window_entry(eddy_task_t *task, task_store_t *ts, int64_t start,
                                        const char *key, size_t key_len)
{
    eddy_cache_entry_t *e = eddy_cache_find(ts->cache, start, key, key_len);
    if (e)
        return e;
    eddy_agg_t *agg = eddy_agg_new(ts->layout);
    if (!agg)
        return NULL;
    size_t len = 0;
    char errstr[256];
    bool found = false;
    if (eddy_statedb_get(task->rt->db, ts->index, task->partition, start, key, key_len, task->buf,
                         task->buf_cap, &len, &found, errstr, sizeof(errstr)) == EDDY_OK &&
        found) {
        if (len > task->buf_cap) { /* larger than the buffer: grow and read again */
            task->buf_cap = len * 2;
            task->buf = realloc(task->buf, task->buf_cap);
            eddy_statedb_get(task->rt->db, ts->index, task->partition, start, key, key_len,
                             task->buf, task->buf_cap, &len, &found, errstr, sizeof(errstr));
        }
        if (eddy_agg_deserialize(ts->layout, agg, task->buf, len))
            eddy_log_error("task %d: store %s: unreadable state for a window at %lld; "
                           "starting it afresh",
                           task->partition, ts->def->name, (long long)start);
    }
    return eddy_cache_insert(ts->cache, start, key, key_len, agg);
}

static void note_undecodable(eddy_task_t *task, const rd_kafka_message_t *msg, const char *reason,
                             int field)
{
    task->undecodable++;
    if (task->undecodable_logged++ < 20)
        eddy_log_warn("undecodable record at %s/%d@%lld skipped: %s%s%s%s",
                      rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
                      reason, field >= 0 ? " (field '" : "",
                      field >= 0 ? eddy_topology_field_name(task->rt->topo, (size_t)field) : "",
                      field >= 0 ? "')" : "");
    else if (task->undecodable_logged == 21)
        eddy_log_warn("task %d: more undecodable records; not logging them one by one",
                      task->partition);
}

void eddy_task_process(eddy_task_t *task, const rd_kafka_message_t *msg)
{
    task->next_offset = msg->offset + 1;
    task->processed++;

    eddy_decoded_t dec;
    const char *reason = NULL;
    if (eddy_decode_json(task->rt->topo, msg->payload, msg->len, task->values, &dec, &reason)) {
        note_undecodable(task, msg, reason, dec.bad_field);
        return;
    }
    if (dec.ts > task->stream_time) {
        task->stream_time = dec.ts;
    }
    char key[MAX_KEY];
    int64_t starts[EDDY_WINDOWS_PER_EVENT_MAX];
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        size_t key_len;
        if (!eddy_store_group_key(ts->def, task->values, key, sizeof(key), &key_len)) {
            /* The decoder checked the group fields; only an oversized key gets here. */
            note_undecodable(task, msg, "the group key is longer than 1024 bytes", -1);
            break;
        }
        const eddy_window_spec_t *w = &ts->def->window;
        size_t n = eddy_window_starts(w, dec.ts, starts, EDDY_WINDOWS_PER_EVENT_MAX);
        if (n > EDDY_WINDOWS_PER_EVENT_MAX) /* the topology's limit makes this unreachable */
            n = EDDY_WINDOWS_PER_EVENT_MAX;
        for (size_t j = 0; j < n; j++) {
            if (starts[j] + w->size_ms + w->grace_ms <= task->stream_time) {
                task->late++;
                continue;
            }
            eddy_cache_entry_t *e = window_entry(task, ts, starts[j], key, key_len);
            if (!e) {
                eddy_log_error("task %d: out of memory for store %s", task->partition,
                               ts->def->name);
                continue;
            }
            eddy_agg_update(ts->layout, e->state, task->values);
            e->dirty = true;
        }
    }
    eddy_decoded_release(&dec);
}

typedef struct flush_ctx_s {
    eddy_task_t *task;
    task_store_t *ts;
} flush_ctx_t;

static void flush_entry(eddy_cache_entry_t *e, void *opaque)
{
    flush_ctx_t *ctx = opaque;
    eddy_task_t *task = ctx->task;
    /* Serialize into the task's buffer; size and grow it only when it is too small. */
    size_t len = eddy_agg_serialize(ctx->ts->layout, e->state, task->buf, task->buf_cap);
    if (len == 0) {
        task->buf_cap = eddy_agg_serialized_size(ctx->ts->layout, e->state) * 2;
        task->buf = realloc(task->buf, task->buf_cap);
        len = eddy_agg_serialize(ctx->ts->layout, e->state, task->buf, task->buf_cap);
    }
    eddy_statedb_batch_put(task->flush_batch, task->rt->db, ctx->ts->index, task->partition,
                           e->window_start, e->key, e->key_len, task->buf, len);
    task->flushed++;
}

size_t eddy_task_flush(eddy_task_t *task, eddy_statedb_batch_t *batch)
{
    task->flush_batch = batch;
    task->flushed = 0;
    for (size_t i = 0; i < task->n_stores; i++) {
        flush_ctx_t ctx = {task, &task->stores[i]};
        eddy_cache_foreach_dirty(task->stores[i].cache, flush_entry, &ctx);
        /* Retention: windows that started before stream time - retention go. The
         * cutoff is rounded down to the window advance so the range delete is
         * issued only when a whole window expires (each one slows iterators). */
        task_store_t *ts = &task->stores[i];
        const eddy_window_spec_t *w = &ts->def->window;
        if (task->stream_time != INT64_MIN) {
            int64_t cutoff = task->stream_time - w->retention_ms;
            cutoff -= ((cutoff % w->advance_ms) + w->advance_ms) % w->advance_ms;
            if (cutoff > ts->expired_before) {
                eddy_statedb_batch_delete_windows_before(batch, task->rt->db, ts->index,
                                                         task->partition, cutoff);
                ts->expired_before = cutoff;
            }
        }
    }
    if (task->next_offset >= 0) {
        eddy_checkpoint_t cp = {.input_offset = task->next_offset,
                                .stream_time = task->stream_time};
        eddy_statedb_batch_set_checkpoint(batch, task->rt->db, task->partition, &cp);
    }
    return task->flushed;
}

static void mark_clean(eddy_cache_entry_t *e, void *opaque)
{
    (void)opaque;
    e->dirty = false;
}

void eddy_task_committed(eddy_task_t *task)
{
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        eddy_cache_foreach_dirty(ts->cache, mark_clean, NULL);
        /* Closed windows are in RocksDB now and take no more updates: drop them
         * from the cache so it holds only the open windows. */
        const eddy_window_spec_t *w = &ts->def->window;
        if (task->stream_time != INT64_MIN)
            eddy_cache_evict_before(ts->cache, task->stream_time - w->size_ms - w->grace_ms + 1);
    }
    /* Counters reach other threads once per commit: no atomic operation per record. */
    eddy_partition_stats_t *st = task->stats;
    atomic_store_explicit(&st->processed, task->processed, memory_order_relaxed);
    atomic_store_explicit(&st->late, task->late, memory_order_relaxed);
    atomic_store_explicit(&st->undecodable, task->undecodable, memory_order_relaxed);
    atomic_store_explicit(&st->next_offset, task->next_offset, memory_order_relaxed);
    atomic_store_explicit(&st->stream_time, task->stream_time, memory_order_relaxed);
    atomic_store_explicit(&st->committed_offset, task->next_offset, memory_order_relaxed);
    atomic_store_explicit(&task->stats->committed_stream_time, task->stream_time,
                          memory_order_relaxed);
}

int64_t eddy_task_next_offset(const eddy_task_t *task)
{
    return task->next_offset;
}
