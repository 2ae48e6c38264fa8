/*
 * task.c — a stream task (see task.h).
 *
 * Per record: decode -> event time -> stream time = max(stream time, event time)
 * -> for every store, every window [s, s+size) holding the event: if
 * s + size + grace <= stream time the window has closed and the update is dropped
 * (counted as late); otherwise the (window, key) state in the record cache is
 * updated, loaded from RocksDB on first touch. docs/running.md ("What it does") is the contract;
 * the reference implementation in tests/support/reference.c restates it.
 *
 * A record that cannot be decoded (or whose group key is too long) changes no
 * store: it is copied into the task's dead letters and produced, with the reason
 * and its source position in headers, to the dead-letter topic by the next flush,
 * inside the same transaction as the changelog records and the input offsets. So
 * it reaches the dead-letter topic exactly once with exactly_once_v2; a rollback
 * drops the copies along with the rest, and the input is read again. The copy
 * keeps the record's key, headers and null value; one that would not fit the
 * producer's message limit is cut to fit (the whole record stays in the source
 * topic), so a bad record can never fail a commit by its size.
 *
 * Every record the task produces carries a delivery tag (its opaque) naming the
 * task, so that a record the producer refuses or the broker rejects is charged
 * to the task that wrote it (eddy_task_commit_error): the stream thread stops a
 * task whose commits keep failing for the same deterministic reason.
 *
 * A record whose window cannot be read from RocksDB (damaged state, an I/O
 * error) is never folded into a fresh aggregate: the task is poisoned — it
 * refuses to flush until rolled back — and the record is processed again after
 * the restore that follows.
 */
#include "engine/task.h"
#include "engine/decode.h"
#include "engine/log.h"
#include "engine/util.h"
#include "stores/changelog.h"
#include "stores/record_cache.h"
#include "topology/aggregate.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_KEY 1024

/* What a produced record's delivery report points to (the message opaque). */
typedef struct delivery_tag_s {
    struct eddy_task_s *task; /* the task that produced it */
    int64_t *offset;          /* a commit marker: where its offset goes; else NULL */
    const char *what;         /* what the record is, for errors ("a dead-letter copy") */
    int store;                /* the store of a changelog record or marker; -1 if none */
} delivery_tag_t;

/* The counters a task keeps, live, as of the flush in flight and as committed. */
typedef struct task_counts_s {
    int64_t consumed;      /* input records taken, each offset once */
    int64_t dead_lettered; /* of those, sent to the dead-letter topic */
    int64_t late;          /* (record, window) updates dropped: window closed */
    int64_t dlq_written;   /* dead-letter copies produced */
    int64_t dlq_truncated; /* of those, cut to fit */
} task_counts_t;

typedef struct task_store_s {
    struct eddy_task_s *task;        /* the task this belongs to */
    const eddy_store_def_t *def;     /* the declaration */
    const eddy_agg_layout_t *layout; /* shared by all tasks */
    int index;                       /* column family index in the state db */
    eddy_cache_t *cache;             /* (window, key) -> eddy_agg_t */
    int64_t expired_before;          /* windows before this start were deleted */
    eddy_changelog_pos_t pos;        /* where the store stands (as committed) */
    bool has_pos;                    /* pos was read or written (else: restore from 0) */
    int64_t skip_before;             /* input records below this are in the store already */
    int64_t marker_offset;           /* changelog offset of this commit's marker, from its
                                        delivery report; -1 until then */
    delivery_tag_t marker_tag;       /* the marker's delivery tag (offset: marker_offset) */
    delivery_tag_t data_tag;         /* the tag of the store's changelog records */
    eddy_changelog_replay_t *replay; /* while restoring: the changelog being read */
    bool restored;                   /* while restoring: reached the end of the changelog */
    bool truncated;                  /* while restoring: retention deleted records it needed */
    int64_t changelog_bytes;         /* bytes produced since the last snapshot began */
    int64_t snapshot_bytes;          /* size of the last snapshot */
    uint32_t commit_records;         /* data records of the commit in progress */
    bool snapshot;                   /* the commit in progress is a snapshot */
    int64_t collapses;               /* sketches that lost accuracy (eddy_agg_update) */
    int64_t flush_collapses;         /* ... as of the flush in progress */
    int64_t committed_collapses;     /* ... as of the last commit */
} task_store_t;

struct eddy_task_s {
    eddy_runtime_t *rt;                            /* shared context */
    int32_t partition;                             /* input partition = task id */
    eddy_task_state_t state;                       /* restoring or running */
    int64_t next_offset;                           /* next input offset; -1: from the start */
    int64_t stream_time;                           /* largest event time seen; INT64_MIN: none */
    int64_t committed_offset;                      /* next_offset as of the last commit */
    int64_t committed_stream_time;                 /* stream_time as of the last commit */
    int64_t flush_offset;                          /* next_offset as of the last flush */
    int64_t flush_stream_time;                     /* stream_time as of the last flush */
    task_counts_t flush_counts;                    /* the counters then */
    bool poisoned;                                 /* a record could not be applied: the work
                                                      since the last commit is incomplete and
                                                      must never be committed (rollback) */
    uint64_t incarnation;                          /* random id of this run of the task */
    uint64_t seq;                                  /* commits written in this incarnation */
    bool pending_marker;                           /* this commit produced markers */
    eddy_partition_stats_t *stats;                 /* published counters */
    task_store_t stores[EDDY_TOPOLOGY_MAX_STORES]; /* one per store */
    size_t n_stores;                               /* used */
    eddy_value_t values[EDDY_TOPOLOGY_MAX_FIELDS]; /* the current event's fields */
    eddy_decoder_t *decoder;                       /* decodes records into values */
    int64_t max_future_ms;                         /* event times this far ahead of the
                                                      wall clock are bad input */
    uint8_t *buf;                                  /* serialization buffer */
    size_t buf_cap;                                /* its size */
    eddy_statedb_batch_t *flush_batch;             /* batch of the flush in progress */
    rd_kafka_t *flush_rk;                          /* producer of the flush in progress */
    eddy_err_t flush_err;                          /* first produce error of the flush */
    task_counts_t counts;                          /* live counters */
    task_counts_t committed_counts;                /* as of the last commit (published) */
    delivery_tag_t dl_tag;                         /* delivery tag of dead-letter copies */
    rd_kafka_resp_err_t commit_err;                /* first error a record of the commit in
                                                      progress met (produce or delivery) */
    const char *commit_err_what;                   /* what that record was */
    int commit_err_store;                          /* its store, or -1 */
    size_t flushed;                                /* entries added by it */
    int64_t dl_logged;                             /* dead letters logged (capped) */
    eddy_statedb_batch_t *restore_batch;           /* restored records not yet written */
    int64_t restored_records;                      /* changelog records applied by the restore */
    int64_t restore_started_ns;                    /* when the restore began */
    eddy_err_t restore_err;                        /* first failed write of the restore */
    char restore_errstr[512];                      /* ... and what it said */
    uint64_t cache_hits, cache_misses;             /* of caches dropped by rollbacks */
    char *keys;                                    /* the current event's group key per
                                                      store, MAX_KEY bytes each */
    struct dead_letter_s *dl;                      /* dead letters of the open commit */
    size_t n_dl, dl_cap;                           /* used, allocated */
    char *dl_bytes;                                /* their keys and values */
    size_t dl_used, dl_bytes_cap;                  /* used, allocated */
};

/* A record bound for the dead-letter topic: (the start of) its key and value are
 * in dl_bytes, at most what the dead-letter limit let through when it came. */
typedef struct dead_letter_s {
    int64_t offset, timestamp;   /* source position and record timestamp (-1: none) */
    const char *reason;          /* static text from the decoder */
    int field;                   /* the topology field at fault, or -1 */
    size_t key_off, value_off;   /* into dl_bytes */
    size_t key_len, value_len;   /* bytes kept; SIZE_MAX: the record had no key / a null value */
    size_t key_size, value_size; /* the record's own sizes */
    rd_kafka_headers_t *headers; /* a copy of the record's headers (owned), or NULL */
} dead_letter_t;

static void dl_clear(eddy_task_t *task);

static void free_agg(void *state, void *opaque)
{
    (void)opaque;
    eddy_agg_destroy(state);
}

static uint64_t new_incarnation(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
        id = (uint64_t)eddy_mono_ns() ^ ((uint64_t)getpid() << 32);
    return id;
}

/* Reads every store's position; the task resumes at the smallest input offset and
 * each store skips the records below its own. */
static eddy_err_t load_positions(eddy_task_t *task, char *errstr, size_t errstr_size)
{
    task->next_offset = INT64_MAX;
    task->stream_time = INT64_MIN;
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        bool found = false;
        eddy_err_t err = eddy_statedb_get_changelog_pos(task->rt->db, ts->index, task->partition,
                                                        &ts->pos, &found, errstr, errstr_size);
        if (err)
            return err;
        ts->has_pos = found;
        if (!found)
            ts->pos = (eddy_changelog_pos_t){0, -1, INT64_MIN};
    }
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        ts->skip_before = ts->pos.input_offset;
        if (ts->pos.input_offset < task->next_offset) {
            task->next_offset = ts->pos.input_offset;
            task->stream_time = ts->pos.stream_time;
        }
    }
    if (task->n_stores == 0)
        task->next_offset = -1;
    return EDDY_OK;
}

/* Publishes the committed position and counters for other threads. */
static void publish(eddy_task_t *task)
{
    eddy_partition_stats_t *st = task->stats;
    /* The counters as committed, so that they agree with each other and with the
     * committed offset (the task may have gone on processing since the flush). */
    const task_counts_t *c = &task->committed_counts;
    atomic_store_explicit(&st->consumed, c->consumed, memory_order_relaxed);
    atomic_store_explicit(&st->dead_lettered, c->dead_lettered, memory_order_relaxed);
    atomic_store_explicit(&st->late, c->late, memory_order_relaxed);
    atomic_store_explicit(&st->dlq_written, c->dlq_written, memory_order_relaxed);
    atomic_store_explicit(&st->dlq_truncated, c->dlq_truncated, memory_order_relaxed);
    atomic_store_explicit(&st->next_offset, task->next_offset, memory_order_relaxed);
    atomic_store_explicit(&st->stream_time, task->stream_time, memory_order_relaxed);
    atomic_store_explicit(&st->committed_offset, task->committed_offset, memory_order_relaxed);
    atomic_store_explicit(&st->committed_stream_time, task->committed_stream_time,
                          memory_order_relaxed);
    uint64_t hits = task->cache_hits, misses = task->cache_misses;
    for (size_t i = 0; i < task->n_stores; i++) {
        uint64_t h = 0, m = 0;
        if (task->stores[i].cache)
            eddy_cache_hit_stats(task->stores[i].cache, &h, &m);
        hits += h;
        misses += m;
    }
    atomic_store_explicit(&st->cache_hits, (long long)hits, memory_order_relaxed);
    atomic_store_explicit(&st->cache_misses, (long long)misses, memory_order_relaxed);
    for (size_t i = 0; i < task->n_stores; i++)
        atomic_store_explicit(&st->sketch_collapses[i], task->stores[i].committed_collapses,
                              memory_order_relaxed);
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
    task->state = EDDY_TASK_RESTORING;
    task->incarnation = new_incarnation();
    task->stats = &rt->metrics.parts[partition];
    /* The partition's counters go on from what earlier tasks of it in this process
     * counted (a partition that moves between threads, or away and back, gets a
     * new task): totals stay per process, and Prometheus counters never go down. */
    task->committed_counts = (task_counts_t){
        .consumed = atomic_load(&task->stats->consumed),
        .dead_lettered = atomic_load(&task->stats->dead_lettered),
        .late = atomic_load(&task->stats->late),
        .dlq_written = atomic_load(&task->stats->dlq_written),
        .dlq_truncated = atomic_load(&task->stats->dlq_truncated),
    };
    task->counts = task->flush_counts = task->committed_counts;
    task->dl_tag = (delivery_tag_t){task, NULL, "a dead-letter copy", -1};
    task->cache_hits = (uint64_t)atomic_load(&task->stats->cache_hits);
    task->cache_misses = (uint64_t)atomic_load(&task->stats->cache_misses);
    task->n_stores = eddy_topology_store_count(rt->topo);
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        ts->task = task;
        ts->def = eddy_topology_store(rt->topo, i);
        ts->layout = rt->layouts[i];
        ts->index = eddy_statedb_store_index(rt->db, ts->def->name);
        ts->cache = eddy_cache_new(free_agg, NULL);
        ts->expired_before = INT64_MIN;
        ts->marker_offset = -1;
        ts->marker_tag = (delivery_tag_t){task, &ts->marker_offset, "a commit marker", (int)i};
        ts->data_tag = (delivery_tag_t){task, NULL, "a changelog record", (int)i};
        ts->changelog_bytes = INT64_MAX / 2; /* the first commit is a snapshot */
        ts->collapses = ts->committed_collapses = atomic_load(&task->stats->sketch_collapses[i]);
        if (!ts->cache || ts->index < 0) {
            eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "cannot set up store %s", ts->def->name);
            eddy_task_destroy(task);
            return NULL;
        }
    }
    task->buf_cap = 4096;
    task->buf = malloc(task->buf_cap);
    task->keys = malloc((task->n_stores ? task->n_stores : 1) * MAX_KEY);
    task->restore_batch = eddy_statedb_batch_new_sorted();
    task->decoder = eddy_decoder_new(rt->topo);
    task->max_future_ms = eddy_topology_max_future(rt->topo) >= 0
                              ? eddy_topology_max_future(rt->topo)
                              : rt->cfg->event_time_max_future_ms;
    if (!task->buf || !task->keys || !task->restore_batch || !task->decoder ||
        load_positions(task, errstr, errstr_size) != EDDY_OK) {
        eddy_task_destroy(task);
        return NULL;
    }
    task->committed_offset = task->next_offset;
    task->committed_stream_time = task->stream_time;
    atomic_store(&task->stats->owner, thread_index + 1);
    atomic_store(&task->stats->state, EDDY_TASK_RESTORING);
    publish(task);
    return task;
}

void eddy_task_destroy(eddy_task_t *task)
{
    if (!task)
        return;
    for (size_t i = 0; i < task->n_stores; i++) {
        eddy_cache_destroy(task->stores[i].cache);
        eddy_changelog_replay_destroy(task->stores[i].replay);
    }
    atomic_store(&task->stats->owner, 0);
    eddy_statedb_batch_destroy(task->restore_batch);
    eddy_decoder_destroy(task->decoder);
    dl_clear(task);
    free(task->buf);
    free(task->keys);
    free(task->dl);
    free(task->dl_bytes);
    free(task);
}

int32_t eddy_task_partition(const eddy_task_t *task)
{
    return task->partition;
}

eddy_task_state_t eddy_task_state(const eddy_task_t *task)
{
    return task->state;
}

size_t eddy_task_store_count(const eddy_task_t *task)
{
    return task->n_stores;
}

/* The cache entry of (window, key) in *out: cached, else loaded from RocksDB,
 * else new (absent from RocksDB). Anything else is an error, logged: a window
 * that could not be read is never started afresh. */
static eddy_err_t window_entry(eddy_task_t *task, task_store_t *ts, int64_t start, const char *key,
                               size_t key_len, eddy_cache_entry_t **out)
{
    if ((*out = eddy_cache_find(ts->cache, start, key, key_len)))
        return EDDY_OK;
    eddy_agg_t *agg = eddy_agg_new(ts->layout);
    size_t len = 0;
    char errstr[512];
    bool found = false;
    eddy_err_t err =
        agg ? EDDY_OK : eddy_errf(EDDY_ERR_NOMEM, errstr, sizeof(errstr), "out of memory");
    if (!err)
        err = eddy_statedb_get(task->rt->db, ts->index, task->partition, start, key, key_len,
                               task->buf, task->buf_cap, &len, &found, errstr, sizeof(errstr));
    if (!err && found && len > task->buf_cap) { /* larger than the buffer: grow, read again */
        uint8_t *buf = realloc(task->buf, len * 2);
        err = buf ? EDDY_OK : eddy_errf(EDDY_ERR_NOMEM, errstr, sizeof(errstr), "out of memory");
        if (buf) {
            task->buf = buf;
            task->buf_cap = len * 2;
            err = eddy_statedb_get(task->rt->db, ts->index, task->partition, start, key, key_len,
                                   task->buf, task->buf_cap, &len, &found, errstr, sizeof(errstr));
        }
    }
    if (!err && found && eddy_agg_deserialize(ts->layout, agg, task->buf, len))
        err = eddy_errf(EDDY_ERR_INVALID, errstr, sizeof(errstr),
                        "the stored state (%zu bytes) is not an aggregate of this store", len);
    if (!err && !(*out = eddy_cache_insert(ts->cache, start, key, key_len, agg))) {
        agg = NULL; /* the cache freed it */
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, sizeof(errstr), "out of memory");
    }
    if (err) {
        eddy_agg_destroy(agg);
        eddy_log_error("task %d: store %s: cannot read the window at %lld: %s; its records "
                       "since the last commit are processed again after a restore",
                       task->partition, ts->def->name, (long long)start, errstr);
    }
    return err;
}

/* Room for n more bytes of dead letters; false if out of memory. */
static bool dl_reserve(eddy_task_t *task, size_t n)
{
    if (task->n_dl == task->dl_cap) {
        size_t cap = task->dl_cap ? task->dl_cap * 2 : 16;
        dead_letter_t *dl = realloc(task->dl, cap * sizeof(*dl));
        if (!dl)
            return false;
        task->dl = dl;
        task->dl_cap = cap;
    }
    if (task->dl_used + n > task->dl_bytes_cap) {
        size_t cap = task->dl_bytes_cap ? task->dl_bytes_cap : 4096;
        while (cap < task->dl_used + n)
            cap *= 2;
        char *bytes = realloc(task->dl_bytes, cap);
        if (!bytes)
            return false;
        task->dl_bytes = bytes;
        task->dl_bytes_cap = cap;
    }
    return true;
}

/* The smallest dead-letter limit eddy goes down to after the broker refused a copy
 * as too large (each refusal halves the limit). */
#define DL_LIMIT_MIN 1024

/* Bytes the record batch and the record itself take besides key, value and
 * headers, with room to spare (librdkafka counts them against message.max.bytes). */
#define DL_OVERHEAD 128

/* eddy's own headers when a copy was cut, at their largest. */
#define DL_TRUNC_HEADERS_MAX 160

/* Bytes a set of headers takes in a record, near enough: names, values and a few
 * bytes of lengths for each. */
static size_t headers_size(const rd_kafka_headers_t *h)
{
    size_t n = 0;
    const char *name;
    const void *value;
    size_t len;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &value, &len); i++)
        n += strlen(name) + len + 12;
    return n;
}

/* Drops the dead letters of the open commit (produced, or to be read again). */
static void dl_clear(eddy_task_t *task)
{
    for (size_t i = 0; i < task->n_dl; i++)
        if (task->dl[i].headers) /* librdkafka's destroy takes no NULL */
            rd_kafka_headers_destroy(task->dl[i].headers);
    task->n_dl = 0;
    task->dl_used = 0;
}

/* Keeps a copy of `msg` for the dead-letter topic, at most what the dead-letter
 * limit could ever take of its key and value, so that the copies of a flood of
 * huge records stay small. */
static void note_dead_letter(eddy_task_t *task, const rd_kafka_message_t *msg, const char *reason,
                             int field)
{
    const size_t limit = (size_t)atomic_load(&task->rt->metrics.dlq_max_bytes);
    const size_t key_size = msg->key ? msg->key_len : 0, value_size = msg->payload ? msg->len : 0;
    const size_t key_keep = key_size < limit ? key_size : limit;
    const size_t value_keep = value_size < limit ? value_size : limit;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    if (dl_reserve(task, key_keep + value_keep)) {
        dead_letter_t *d = &task->dl[task->n_dl++];
        d->offset = msg->offset;
        d->timestamp = rd_kafka_message_timestamp(msg, NULL);
        d->reason = reason;
        d->field = field;
        d->key_size = key_size;
        d->value_size = value_size;
        d->key_off = task->dl_used;
        d->key_len = msg->key ? key_keep : SIZE_MAX;
        if (key_keep)
            memcpy(task->dl_bytes + task->dl_used, msg->key, key_keep);
        task->dl_used += key_keep;
        d->value_off = task->dl_used;
        d->value_len = msg->payload ? value_keep : SIZE_MAX;
        if (value_keep)
            memcpy(task->dl_bytes + task->dl_used, msg->payload, value_keep);
        task->dl_used += value_keep;
        d->headers = hdrs ? rd_kafka_headers_copy(hdrs) : NULL;
    } else {
        /* Counted as dead-lettered but not written: dlq_written falls behind. */
        eddy_log_error("task %d: out of memory for the dead-letter copy of offset %lld",
                       task->partition, (long long)msg->offset);
    }
    task->counts.dead_lettered++;
    if (task->dl_logged++ < 20)
        eddy_log_warn("bad record at %s/%d@%lld sent to the dead-letter topic: %s%s%s%s",
                      rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
                      reason, field >= 0 ? " (field '" : "",
                      field >= 0 ? eddy_topology_field_name(task->rt->topo, (size_t)field) : "",
                      field >= 0 ? "')" : "");
    else if (task->dl_logged == 21)
        eddy_log_warn("task %d: more bad records; not logging them one by one (dead_lettered in "
                      "/api/health counts them)",
                      task->partition);
}

eddy_err_t eddy_task_process(eddy_task_t *task, const rd_kafka_message_t *msg, int64_t now_ms)
{
    /* After a seek or a rollback the consumer may hand back records the task's
     * state already holds: each input offset is counted once. */
    if (msg->offset < task->next_offset)
        return EDDY_OK;
    if (task->poisoned)
        return EDDY_ERR_STATE;
    task->next_offset = msg->offset + 1;
    task->counts.consumed++;

    eddy_decoded_t dec;
    const char *reason = NULL;
    eddy_decoder_set_max_ts(task->decoder, now_ms + task->max_future_ms);
    if (eddy_decode_json(task->decoder, msg->payload, msg->len, task->values, &dec, &reason)) {
        note_dead_letter(task, msg, reason, dec.bad_field);
        return EDDY_OK;
    }
    /* Every store's key first: a record too big for one store goes to no store. */
    size_t key_lens[EDDY_TOPOLOGY_MAX_STORES];
    for (size_t i = 0; i < task->n_stores; i++)
        if (!eddy_store_group_key(task->stores[i].def, task->values, task->keys + i * MAX_KEY,
                                  MAX_KEY, &key_lens[i])) {
            /* The decoder checked the group fields; only an oversized key gets here. */
            note_dead_letter(task, msg, "the group key is longer than 1024 bytes", -1);
            return EDDY_OK;
        }
    /* Only a record that goes to the stores moves stream time, and only a valid
     * event time gets here: never before 1970, never further ahead of the wall
     * clock than max_future (a record stamped 9999 would otherwise move stream
     * time there, close every window and let retention delete them). */
    if (dec.ts > task->stream_time)
        task->stream_time = dec.ts;
    int64_t starts[EDDY_WINDOWS_PER_EVENT_MAX];
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        if (msg->offset < ts->skip_before)
            continue; /* restored from a changelog that was ahead of the other stores' */
        const char *key = task->keys + i * MAX_KEY;
        size_t key_len = key_lens[i];
        const eddy_window_spec_t *w = &ts->def->window;
        size_t n = eddy_window_starts(w, dec.ts, starts, EDDY_WINDOWS_PER_EVENT_MAX);
        if (n > EDDY_WINDOWS_PER_EVENT_MAX) /* the topology's limit makes this unreachable */
            n = EDDY_WINDOWS_PER_EVENT_MAX;
        for (size_t j = 0; j < n; j++) {
            if (starts[j] + w->size_ms + w->grace_ms <= task->stream_time) {
                task->counts.late++;
                continue;
            }
            eddy_cache_entry_t *e = NULL;
            eddy_err_t err = window_entry(task, ts, starts[j], key, key_len, &e);
            if (err) {
                /* Other windows may hold the record already: only a rollback
                 * makes the task whole again. */
                task->poisoned = true;
                return err;
            }
            ts->collapses += eddy_agg_update(ts->layout, e->state, task->values);
            e->dirty = true;
        }
    }
    return EDDY_OK;
}

/* --- commit ------------------------------------------------------------------------- */

/* Produces one changelog record, waiting while librdkafka's queue is full. */
/* Charges `err`, met by a record tagged `tag`, to the commit in progress: the
 * first error of a commit is the one that tells why it failed. */
static void note_commit_error(delivery_tag_t *tag, rd_kafka_resp_err_t err)
{
    eddy_task_t *task = tag->task;
    if (task->commit_err)
        return;
    task->commit_err = err;
    task->commit_err_what = tag->what;
    task->commit_err_store = tag->store;
}

/* Produces one record tagged `tag`, waiting while librdkafka's queue is full. */
static eddy_err_t produce(rd_kafka_t *rk, delivery_tag_t *tag, const char *topic, int32_t partition,
                          const void *key, size_t key_len, const void *value, size_t value_len)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(tag),
                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 10);
    if (err) {
        eddy_log_error("cannot produce %s (%zu bytes) to %s [%d]: %s", tag->what,
                       key_len + value_len, topic, (int)partition, rd_kafka_err2str(err));
        note_commit_error(tag, err);
        return EDDY_ERR_KAFKA;
    }
    return EDDY_OK;
}

typedef struct flush_ctx_s {
    eddy_task_t *task;
    task_store_t *ts;
    const char *topic;
} flush_ctx_t;

static void flush_entry(eddy_cache_entry_t *e, void *opaque)
{
    flush_ctx_t *ctx = opaque;
    eddy_task_t *task = ctx->task;
    const size_t hdr = EDDY_CHANGELOG_DATA_HDR;
    /* Serialize after room for the changelog header, so one buffer serves both
     * the RocksDB value and the changelog record; grow it only when too small. */
    size_t len =
        eddy_agg_serialize(ctx->ts->layout, e->state, task->buf + hdr, task->buf_cap - hdr);
    if (len == 0) {
        task->buf_cap = hdr + eddy_agg_serialized_size(ctx->ts->layout, e->state) * 2;
        task->buf = realloc(task->buf, task->buf_cap);
        len = eddy_agg_serialize(ctx->ts->layout, e->state, task->buf + hdr, task->buf_cap - hdr);
    }
    eddy_statedb_batch_put(task->flush_batch, task->rt->db, ctx->ts->index, task->partition,
                           e->window_start, e->key, e->key_len, task->buf + hdr, len);
    task->flushed++;
    if (!task->flush_rk || task->flush_err)
        return;
    uint8_t key[9 + MAX_KEY];
    size_t key_len = eddy_changelog_data_key(key, sizeof(key), e->window_start, e->key, e->key_len);
    eddy_changelog_data_header(task->buf, task->incarnation, task->seq);
    task->flush_err = produce(task->flush_rk, &ctx->ts->data_tag, ctx->topic, task->partition, key,
                              key_len, task->buf, hdr + len);
    ctx->ts->commit_records++;
    ctx->ts->changelog_bytes += (int64_t)(key_len + hdr + len);
}

static void mark_clean(eddy_cache_entry_t *e, void *opaque)
{
    (void)opaque;
    e->dirty = false;
}

/* A snapshot: every committed window of the store not dirty in the cache (the
 * dirty ones are in the commit already) goes to the changelog again. */
static int snapshot_entry(int32_t partition, int64_t start, const char *key, size_t key_len,
                          const void *value, size_t value_len, void *opaque)
{
    flush_ctx_t *ctx = opaque;
    eddy_task_t *task = ctx->task;
    eddy_cache_entry_t *e = eddy_cache_find(ctx->ts->cache, start, key, key_len);
    if ((e && e->dirty) || key_len > MAX_KEY)
        return 0;
    const size_t hdr = EDDY_CHANGELOG_DATA_HDR;
    if (hdr + value_len > task->buf_cap) {
        task->buf_cap = (hdr + value_len) * 2;
        task->buf = realloc(task->buf, task->buf_cap);
    }
    eddy_changelog_data_header(task->buf, task->incarnation, task->seq);
    memcpy(task->buf + hdr, value, value_len);
    uint8_t k[9 + MAX_KEY];
    size_t k_len = eddy_changelog_data_key(k, sizeof(k), start, key, key_len);
    task->flush_err = produce(task->flush_rk, &ctx->ts->data_tag, ctx->topic, partition, k, k_len,
                              task->buf, hdr + value_len);
    ctx->ts->commit_records++;
    ctx->ts->snapshot_bytes += (int64_t)(k_len + hdr + value_len);
    return task->flush_err != EDDY_OK;
}

/* How much of a dead letter goes into a copy of at most `limit` bytes, `reserve`
 * of which eddy's headers and the record's overhead take: the record's own
 * headers unless they would take more than a quarter of the room, then the key,
 * cut to half of the room if key and value do not fit together, then as much of
 * the value as is left. */
typedef struct dl_fit_s {
    size_t key, value; /* bytes of each that go */
    bool headers;      /* the record's headers go */
} dl_fit_t;

static dl_fit_t dl_fit(size_t limit, size_t reserve, const dead_letter_t *d, size_t hdrs)
{
    dl_fit_t fit;
    size_t room = limit > reserve + 256 ? limit - reserve : 256;
    size_t key = d->key_len == SIZE_MAX ? 0 : d->key_len;
    size_t value = d->value_len == SIZE_MAX ? 0 : d->value_len;
    fit.headers = hdrs <= room / 4;
    if (fit.headers)
        room -= hdrs;
    fit.key = key + value <= room || key <= room / 2 ? key : room / 2;
    fit.value = value <= room - fit.key ? value : room - fit.key;
    return fit;
}

/* Produces the dead letters of this commit to the dead-letter topic: each record's
 * key, value and headers as they were, and eddy's headers saying why and where
 * from; a copy that would not fit the dead-letter limit is cut to fit and says
 * so (eddy.truncated, eddy.original.*). */
static eddy_err_t flush_dead_letters(eddy_task_t *task, rd_kafka_t *rk)
{
    const eddy_runtime_t *rt = task->rt;
    int32_t partition = rt->dlq_partitions > 0 ? task->partition % rt->dlq_partitions : 0;
    for (size_t i = 0; i < task->n_dl; i++) {
        const dead_letter_t *d = &task->dl[i];
        char reason[512], num[6][24], cut[32];
        snprintf(reason, sizeof(reason), "%s%s%s%s", d->reason, d->field >= 0 ? " (field '" : "",
                 d->field >= 0 ? eddy_topology_field_name(rt->topo, (size_t)d->field) : "",
                 d->field >= 0 ? "')" : "");
        snprintf(num[0], sizeof(num[0]), "%d", (int)task->partition);
        snprintf(num[1], sizeof(num[1]), "%lld", (long long)d->offset);
        snprintf(num[2], sizeof(num[2]), "%lld", (long long)d->timestamp);
        const char *const names[5] = {"eddy.error.reason", "eddy.source.topic",
                                      "eddy.source.partition", "eddy.source.offset",
                                      "eddy.source.timestamp"};
        const char *const values[5] = {reason, rt->source_topic, num[0], num[1], num[2]};
        size_t reserve = DL_OVERHEAD + DL_TRUNC_HEADERS_MAX;
        for (int h = 0; h < 5; h++)
            reserve += strlen(names[h]) + strlen(values[h]) + 12;
        size_t hdrs = d->headers ? headers_size(d->headers) : 0;
        dl_fit_t fit = dl_fit((size_t)atomic_load(&rt->metrics.dlq_max_bytes), reserve, d, hdrs);
        rd_kafka_headers_t *h = d->headers && fit.headers ? rd_kafka_headers_copy(d->headers)
                                                          : rd_kafka_headers_new(10);
        for (int k = 0; k < 5; k++)
            rd_kafka_header_add(h, names[k], -1, values[k], -1);
        bool key_cut = fit.key < d->key_size, value_cut = fit.value < d->value_size;
        bool headers_cut = d->headers && !fit.headers;
        if (key_cut || value_cut || headers_cut) {
            snprintf(cut, sizeof(cut), "%s%s%s%s%s", key_cut ? "key" : "",
                     key_cut && (value_cut || headers_cut) ? "," : "", value_cut ? "value" : "",
                     value_cut && headers_cut ? "," : "", headers_cut ? "headers" : "");
            snprintf(num[3], sizeof(num[3]), "%zu", d->key_size);
            snprintf(num[4], sizeof(num[4]), "%zu", d->value_size);
            snprintf(num[5], sizeof(num[5]), "%zu",
                     headers_cut ? rd_kafka_header_cnt(d->headers) : (size_t)0);
            rd_kafka_header_add(h, "eddy.truncated", -1, cut, -1);
            rd_kafka_header_add(h, "eddy.original.key.size", -1, num[3], -1);
            rd_kafka_header_add(h, "eddy.original.value.size", -1, num[4], -1);
            if (headers_cut)
                rd_kafka_header_add(h, "eddy.original.headers.dropped", -1, num[5], -1);
        }
        const char *key = d->key_len == SIZE_MAX ? NULL : task->dl_bytes + d->key_off;
        const char *value = d->value_len == SIZE_MAX ? NULL : task->dl_bytes + d->value_off;
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(rt->dlq_topic), RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_KEY(key, key ? fit.key : 0),
                    RD_KAFKA_V_VALUE((void *)value, value ? fit.value : 0), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&task->dl_tag),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (err) { /* on success librdkafka owns the headers */
            rd_kafka_headers_destroy(h);
            eddy_log_error("cannot produce a dead-letter copy (%zu bytes) to %s [%d]: %s",
                           fit.key + fit.value, rt->dlq_topic, (int)partition,
                           rd_kafka_err2str(err));
            atomic_fetch_add(&task->stats->dlq_failed, 1);
            note_commit_error(&task->dl_tag, err);
            return EDDY_ERR_KAFKA;
        }
        task->counts.dlq_written++;
        task->counts.dlq_truncated += key_cut || value_cut || headers_cut;
    }
    dl_clear(task);
    return EDDY_OK;
}

eddy_err_t eddy_task_flush(eddy_task_t *task, eddy_statedb_batch_t *batch, rd_kafka_t *rk,
                           size_t *written)
{
    assert(task->state == EDDY_TASK_RUNNING);
    *written = 0;
    if (task->poisoned) {
        eddy_log_error("task %d: not committed: a record could not be applied since the last "
                       "commit",
                       task->partition);
        return EDDY_ERR_STATE;
    }
    task->flush_batch = batch;
    task->flush_rk = rk;
    task->flush_err = EDDY_OK;
    task->flushed = 0;
    task->pending_marker = false;
    task->seq++;
    /* What this commit holds: the task may go on processing while the commit is
     * in flight, so eddy_task_committed() must not read the live values. */
    task->flush_offset = task->next_offset;
    task->flush_stream_time = task->stream_time;
    task->commit_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < task->n_stores; i++)
        task->stores[i].flush_collapses = task->stores[i].collapses;
    const int64_t snapshot_every = task->rt->cfg->changelog_snapshot_bytes;
    bool moved = false;
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        flush_ctx_t ctx = {task, ts, task->rt->changelog_topics[i]};
        ts->commit_records = 0;
        eddy_cache_foreach_dirty(ts->cache, flush_entry, &ctx);
        moved = moved || ts->commit_records > 0;
        /* Retention: windows that started before stream time - retention go. The
         * cutoff is rounded down to the window advance so the range delete is
         * issued only when a whole window expires (each one slows iterators). */
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
        /* Snapshots keep a changelog whole on a broker that neither compacts nor
         * keeps much (the embedded one): every incarnation starts with one, then
         * one each time the changelog grew by the setting (and by twice the last
         * snapshot, so that snapshots never dominate). */
        ts->snapshot = false;
        bool progressed = moved || task->next_offset != task->committed_offset;
        if (rk && snapshot_every > 0 && progressed && !task->flush_err &&
            ts->changelog_bytes >= (snapshot_every > 2 * ts->snapshot_bytes
                                        ? snapshot_every
                                        : 2 * ts->snapshot_bytes)) {
            char errstr[256];
            ts->snapshot = true;
            ts->snapshot_bytes = 0;
            if (eddy_statedb_scan(task->rt->db, ts->index, task->partition, ts->expired_before,
                                  INT64_MAX, snapshot_entry, &ctx, errstr, sizeof(errstr)) &&
                !task->flush_err) {
                eddy_log_error("task %d: snapshot of store %s: %s", task->partition, ts->def->name,
                               errstr);
                task->flush_err = EDDY_ERR_STORE;
            }
            ts->changelog_bytes = ts->snapshot_bytes;
        }
        /* Clean now, not when the commit completes: an entry updated meanwhile is
         * dirty again, for the next commit. (Not before the snapshot, which skips
         * the entries this commit holds by their dirty flag.) */
        eddy_cache_foreach_dirty(ts->cache, mark_clean, NULL);
    }
    if (rk && !task->flush_err && task->n_dl > 0)
        task->flush_err = flush_dead_letters(task, rk);
    else if (!rk)
        dl_clear(task); /* nowhere to send them (unit tests) */
    /* After the dead letters: this commit holds their copies. */
    task->flush_counts = task->counts;
    /* A marker per store whenever the task moved: it confirms the records above
     * and carries the input position a restore resumes from. */
    if (rk && !task->flush_err &&
        (task->flushed > 0 || task->next_offset != task->committed_offset)) {
        for (size_t i = 0; i < task->n_stores && !task->flush_err; i++) {
            task_store_t *ts = &task->stores[i];
            uint8_t key[EDDY_CHANGELOG_MARKER_KEY], value[EDDY_CHANGELOG_MARKER_LEN];
            eddy_changelog_rec_t m = {.incarnation = task->incarnation,
                                      .seq = task->seq,
                                      .input_offset = task->next_offset,
                                      .stream_time = task->stream_time,
                                      .records = ts->commit_records,
                                      .flags = ts->snapshot ? EDDY_CHANGELOG_SNAPSHOT : 0};
            eddy_changelog_marker(key, value, &m);
            ts->marker_offset = -1;
            task->flush_err = produce(rk, &ts->marker_tag, task->rt->changelog_topics[i],
                                      task->partition, key, sizeof(key), value, sizeof(value));
        }
        task->pending_marker = true;
    }
    *written = task->flushed;
    return task->flush_err;
}

eddy_err_t eddy_task_claim(eddy_task_t *task, rd_kafka_t *rk)
{
    for (size_t i = 0; i < task->n_stores; i++) {
        uint8_t key[EDDY_CHANGELOG_MARKER_KEY], value[EDDY_CHANGELOG_MARKER_LEN];
        eddy_changelog_rec_t m = {.incarnation = task->incarnation,
                                  .input_offset = task->next_offset,
                                  .stream_time = task->stream_time,
                                  .flags = EDDY_CHANGELOG_CLAIM};
        eddy_changelog_marker(key, value, &m);
        eddy_err_t err = produce(rk, &task->stores[i].data_tag, task->rt->changelog_topics[i],
                                 task->partition, key, sizeof(key), value, sizeof(value));
        if (err)
            return err;
    }
    return EDDY_OK;
}

void eddy_task_delivered(void *opaque, rd_kafka_resp_err_t err, int64_t offset)
{
    delivery_tag_t *tag = opaque;
    if (!err) {
        if (tag->offset)
            *tag->offset = offset;
        return;
    }
    /* Purged by a rollback: the commit failed for another reason, charged already. */
    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return;
    note_commit_error(tag, err);
    eddy_task_t *task = tag->task;
    if (tag != &task->dl_tag)
        return;
    atomic_fetch_add(&task->stats->dlq_failed, 1);
    /* The broker takes less than the producer's limit (a topic's max.message.bytes):
     * halve the limit, so that the copy sent again after the rollback is smaller. */
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
        err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
        atomic_llong *limit = &task->rt->metrics.dlq_max_bytes;
        long long was = atomic_load(limit);
        while (was > DL_LIMIT_MIN &&
               !atomic_compare_exchange_weak(limit, &was,
                                             was / 2 > DL_LIMIT_MIN ? was / 2 : DL_LIMIT_MIN))
            ;
        eddy_log_warn("the dead-letter topic %s refused a copy as too large; copies are cut to "
                      "%lld bytes from now on",
                      task->rt->dlq_topic, (long long)atomic_load(limit));
    }
}

rd_kafka_resp_err_t eddy_task_commit_error(const eddy_task_t *task, char *what, size_t what_size)
{
    if (task->commit_err && what)
        snprintf(what, what_size, "%s%s%s", task->commit_err_what,
                 task->commit_err_store >= 0 ? " of store " : "",
                 task->commit_err_store >= 0 ? task->stores[task->commit_err_store].def->name : "");
    return task->commit_err;
}

void eddy_task_fail(eddy_task_t *task, rd_kafka_resp_err_t err, int failed_commits)
{
    task->state = EDDY_TASK_ERROR;
    atomic_store(&task->stats->error_code, (int)err);
    atomic_store(&task->stats->error_commits, failed_commits);
    atomic_store(&task->stats->error_since_ms, eddy_now_ms());
    atomic_store(&task->stats->state, EDDY_TASK_ERROR);
}

eddy_err_t eddy_task_commit_positions(eddy_task_t *task, eddy_statedb_batch_t *batch)
{
    if (task->pending_marker) {
        for (size_t i = 0; i < task->n_stores; i++)
            if (task->stores[i].marker_offset < 0)
                return EDDY_ERR_KAFKA; /* no delivery report: the commit is not confirmed */
        for (size_t i = 0; i < task->n_stores; i++) {
            task_store_t *ts = &task->stores[i];
            ts->pos = (eddy_changelog_pos_t){ts->marker_offset + 1, task->flush_offset,
                                             task->flush_stream_time};
            ts->has_pos = true;
            eddy_statedb_batch_set_changelog_pos(batch, task->rt->db, ts->index, task->partition,
                                                 &ts->pos);
        }
    }
    if (task->flush_offset >= 0) {
        eddy_checkpoint_t cp = {.input_offset = task->flush_offset,
                                .stream_time = task->flush_stream_time};
        eddy_statedb_batch_set_checkpoint(batch, task->rt->db, task->partition, &cp);
    }
    return EDDY_OK;
}

void eddy_task_committed(eddy_task_t *task)
{
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        /* Windows closed as of the flush are in RocksDB now and take no more
         * updates: drop them from the cache so it holds only the open windows.
         * (A window that closed only since may hold updates of the next commit.) */
        const eddy_window_spec_t *w = &ts->def->window;
        if (task->flush_stream_time != INT64_MIN)
            eddy_cache_evict_before(ts->cache,
                                    task->flush_stream_time - w->size_ms - w->grace_ms + 1);
    }
    task->committed_offset = task->flush_offset;
    task->committed_stream_time = task->flush_stream_time;
    task->committed_counts = task->flush_counts;
    for (size_t i = 0; i < task->n_stores; i++)
        task->stores[i].committed_collapses = task->stores[i].flush_collapses;
    /* Counters reach other threads once per commit: no atomic operation per record. */
    publish(task);
}

eddy_err_t eddy_task_rollback(eddy_task_t *task, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        uint64_t hits = 0, misses = 0;
        if (ts->cache)
            eddy_cache_hit_stats(ts->cache, &hits, &misses);
        task->cache_hits += hits; /* the published counters stay monotonic */
        task->cache_misses += misses;
        eddy_cache_destroy(ts->cache);
        ts->cache = eddy_cache_new(free_agg, NULL);
        if (!ts->cache)
            return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        ts->expired_before = INT64_MIN;
        ts->changelog_bytes = INT64_MAX / 2;
    }
    task->counts = task->committed_counts;
    for (size_t i = 0; i < task->n_stores; i++)
        task->stores[i].collapses = task->stores[i].committed_collapses;
    dl_clear(task); /* the input is read again, and so are they */
    task->poisoned = false;
    /* A new incarnation: whatever the failed commit left in the changelogs is
     * either confirmed by its marker (and replayed by the restore that follows)
     * or abandoned for good. */
    task->incarnation = new_incarnation();
    task->seq = 0;
    task->state = EDDY_TASK_RESTORING;
    atomic_store(&task->stats->state, EDDY_TASK_RESTORING);
    return load_positions(task, errstr, errstr_size);
}

int64_t eddy_task_next_offset(const eddy_task_t *task)
{
    return task->next_offset;
}

int64_t eddy_task_committed_offset(const eddy_task_t *task)
{
    return task->committed_offset;
}

/* --- restore ------------------------------------------------------------------------ */

static void restore_apply(const eddy_changelog_rec_t *rec, void *opaque)
{
    task_store_t *ts = opaque;
    eddy_task_t *task = ts->task;
    eddy_statedb_batch_put(task->restore_batch, task->rt->db, ts->index, task->partition,
                           rec->window_start, rec->key, rec->key_len, rec->state, rec->state_len);
    task->restored_records++;
}

/* Writes what was restored so far, with the positions it reaches: a restore that
 * is interrupted goes on from there next time. */
static eddy_err_t restore_write(eddy_task_t *task, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        if (ts->has_pos)
            eddy_statedb_batch_set_changelog_pos(task->restore_batch, task->rt->db, ts->index,
                                                 task->partition, &ts->pos);
    }
    eddy_err_t err =
        eddy_statedb_write(task->rt->db, task->restore_batch, false, errstr, errstr_size);
    eddy_statedb_batch_clear(task->restore_batch);
    return err;
}

static void restore_commit(const eddy_changelog_rec_t *marker, int64_t offset, void *opaque)
{
    task_store_t *ts = opaque;
    if (ts->task->restore_err) { /* nothing more goes in: the restore fails at its finish */
        eddy_statedb_batch_clear(ts->task->restore_batch);
        return;
    }
    if (marker->flags & EDDY_CHANGELOG_CLAIM) {
        /* A takeover carries no state: only the changelog position moves. */
        if (!ts->has_pos)
            ts->pos = (eddy_changelog_pos_t){0, -1, INT64_MIN};
        ts->pos.next_offset = offset + 1;
    } else {
        ts->pos = (eddy_changelog_pos_t){offset + 1, marker->input_offset, marker->stream_time};
    }
    ts->has_pos = true;
    if (eddy_statedb_batch_count(ts->task->restore_batch) >= 20000) {
        eddy_task_t *task = ts->task;
        task->restore_err = restore_write(task, task->restore_errstr, sizeof(task->restore_errstr));
        if (task->restore_err)
            eddy_log_error("task %d: %s", task->partition, task->restore_errstr);
    }
}

eddy_err_t eddy_task_restore_begin(eddy_task_t *task, int64_t *offsets, char *errstr,
                                   size_t errstr_size)
{
    task->restored_records = 0;
    task->restore_started_ns = eddy_mono_ns();
    task->restore_err = EDDY_OK;
    eddy_statedb_batch_clear(task->restore_batch);
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        ts->task = task;
        ts->restored = false;
        ts->truncated = false;
        eddy_changelog_replay_destroy(ts->replay);
        ts->replay = eddy_changelog_replay_new(restore_apply, restore_commit, ts);
        if (!ts->replay)
            return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        offsets[i] = ts->has_pos ? ts->pos.next_offset : 0;
    }
    return EDDY_OK;
}

void eddy_task_restore_record(eddy_task_t *task, size_t store, int64_t offset, const void *key,
                              size_t key_len, const void *value, size_t value_len)
{
    eddy_changelog_replay_feed(task->stores[store].replay, offset, key, key_len, value, value_len);
}

void eddy_task_restore_store_done(eddy_task_t *task, size_t store)
{
    task->stores[store].restored = true;
}

void eddy_task_restore_truncated(eddy_task_t *task, size_t store)
{
    task->stores[store].truncated = true;
}

bool eddy_task_restore_complete(const eddy_task_t *task)
{
    for (size_t i = 0; i < task->n_stores; i++)
        if (!task->stores[i].restored)
            return false;
    return true;
}

eddy_err_t eddy_task_restore_finish(eddy_task_t *task, char *errstr, size_t errstr_size)
{
    int64_t dropped = 0, bad = 0, zombie = 0;
    for (size_t i = 0; i < task->n_stores; i++) {
        task_store_t *ts = &task->stores[i];
        dropped += eddy_changelog_replay_dropped(ts->replay) +
                   (int64_t)eddy_changelog_replay_pending(ts->replay);
        bad += eddy_changelog_replay_bad(ts->replay);
        zombie += eddy_changelog_replay_zombie(ts->replay);
        if (ts->truncated && !eddy_changelog_replay_snapshot_seen(ts->replay))
            eddy_log_error("task %d: the changelog of store %s lost records to retention and "
                           "holds no whole snapshot after them: windows it had then may be "
                           "incomplete (lower changelog.snapshot.bytes, see docs/stores.md)",
                           task->partition, ts->def->name);
        eddy_changelog_replay_destroy(ts->replay);
        ts->replay = NULL;
    }
    /* A slice that could not be written leaves a gap: the restore failed. */
    eddy_err_t err = task->restore_err ? eddy_errf(task->restore_err, errstr, errstr_size,
                                                   "restore: %s", task->restore_errstr)
                                       : restore_write(task, errstr, errstr_size);
    if (!err)
        err = load_positions(task, errstr, errstr_size);
    if (err)
        return err;
    task->committed_offset = task->next_offset;
    task->committed_stream_time = task->stream_time;
    task->state = EDDY_TASK_RUNNING;
    atomic_store(&task->stats->state, EDDY_TASK_RUNNING);
    publish(task);
    double ms = (double)(eddy_mono_ns() - task->restore_started_ns) / 1e6;
    eddy_log_info("task %d: restored %lld changelog records in %.0f ms (%lld of unfinished "
                  "commits dropped, %lld written by a writer already replaced%s); resuming at "
                  "input offset %lld",
                  task->partition, (long long)task->restored_records, ms, (long long)dropped,
                  (long long)zombie, bad ? ", some undecodable" : "", (long long)task->next_offset);
    return EDDY_OK;
}
