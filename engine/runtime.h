/*
 * runtime.h — what every thread of a running eddy application shares: the
 * configuration, the topology, the state database and the metrics. Built by the
 * main thread before any stream thread starts and read-only afterwards, except
 * the metrics, which are atomics written by their owning thread and read by any.
 */
#ifndef EDDY_RUNTIME_H
#define EDDY_RUNTIME_H

#include "engine/config.h"
#include "stores/statedb.h"
#include "topology/aggregate.h"
#include "topology/topology_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/** Partitions per source topic eddy handles (tasks are indexed by partition). */
#define EDDY_MAX_PARTITIONS 256

/** Upper bounds of the commit latency histogram, in seconds. */
#define EDDY_COMMIT_BUCKETS 12

/** A task's life: it restores its stores from their changelogs, then processes.
 *  A task whose commits fail again and again for the same deterministic reason
 *  stops in ERROR (stream_thread.c): paused, committing nothing, until it is
 *  assigned afresh (a rebalance or a restart). */
typedef enum eddy_task_state_e {
    EDDY_TASK_RESTORING = 1,
    EDDY_TASK_RUNNING = 2,
    EDDY_TASK_ERROR = 3,
} eddy_task_state_t;

/** One input partition as seen by this instance. Written by the owning stream
 *  thread only (relaxed atomics), read by HTTP threads. */
typedef struct eddy_partition_stats_s {
    atomic_int owner;                   /* stream thread index + 1; 0 = not owned here */
    atomic_int state;                   /* eddy_task_state_t while owned */
    atomic_llong restore_read;          /* changelog records read by the current restore */
    atomic_llong restore_total;         /* changelog records it has to read */
    atomic_llong consumed;              /* input records taken (each offset once), committed */
    atomic_llong dead_lettered;         /* of those, bad input sent to the dead-letter topic;
                                           consumed - dead_lettered were applied to the stores */
    atomic_llong late;                  /* (record, window) updates dropped: window closed */
    atomic_llong dlq_written;           /* dead letters committed to the dead-letter topic */
    atomic_llong dlq_truncated;         /* of those, copies cut to fit the producer's limit */
    atomic_llong dlq_failed;            /* dead letters the producer refused or lost (each
                                           attempt; the record is retried with its commit) */
    atomic_int error_code;              /* EDDY_TASK_ERROR: the rd_kafka_resp_err_t at fault */
    atomic_int error_commits;           /* EDDY_TASK_ERROR: failed commits before it stopped */
    atomic_llong error_since_ms;        /* EDDY_TASK_ERROR: wall clock when it stopped */
    atomic_llong input_lost;            /* input records retention deleted unprocessed */
    atomic_llong next_offset;           /* next input offset to process (-1 unknown) */
    atomic_llong committed_offset;      /* next offset as of the last commit */
    atomic_llong stream_time;           /* largest event time seen (ms) */
    atomic_llong committed_stream_time; /* stream time as of the last commit */
    atomic_llong low_watermark;         /* input log start offset at the last commit (-1 unknown) */
    atomic_llong high_watermark;        /* input end offset (LSO with read_committed) at the
                                           last commit, from the consumer's fetches (-1 unknown) */
    atomic_llong cache_hits;            /* record cache lookups that hit, as of the last commit */
    atomic_llong cache_misses;          /* ... that missed (RocksDB read or new window) */
    atomic_llong sketch_collapses[EDDY_TOPOLOGY_MAX_STORES]; /* per store: percentile sketches
                                           of a (window, key) that lost accuracy, as of the
                                           last commit (topology/sketch.h) */
} eddy_partition_stats_t;

typedef struct eddy_metrics_s {
    atomic_llong commits;         /* successful commits */
    atomic_llong commit_ns_total; /* their summed duration */
    atomic_llong
        commit_buckets[EDDY_COMMIT_BUCKETS]; /* commit latency histogram (non-cumulative) */
    atomic_llong dirty_written;              /* window entries written at commits */
    atomic_llong rebalances;                 /* assignment changes seen */
    atomic_llong aborts;                     /* commits that failed and were rolled back */
    atomic_llong restores;                   /* task restores finished */
    atomic_llong restored_records;           /* changelog records they read */
    atomic_llong producer_restarts;          /* producers recreated after a fatal error */
    atomic_llong last_commit_ms;             /* wall clock of the last commit; 0: none yet */
    atomic_int brokers_down;                 /* a client saw all brokers down since then */
    atomic_llong dlq_max_bytes;              /* a dead-letter copy's limit: the producer's
                                                message.max.bytes, halved whenever the
                                                broker refuses a copy as too large */
    pthread_mutex_t commit_lock;             /* guards commit_ms */
    struct eddy_sketch_s *commit_ms;         /* commit latencies (ms), 1% relative error */
    eddy_partition_stats_t parts[EDDY_MAX_PARTITIONS]; /* per input partition */
} eddy_metrics_t;

/** The histogram's bucket bounds (seconds), ascending; the last is +Inf. */
extern const double eddy_commit_bucket_bounds[EDDY_COMMIT_BUCKETS];

typedef struct eddy_runtime_s {
    const eddy_config_t *cfg;                             /* settings */
    const eddy_topology_t *topo;                          /* the validated topology */
    eddy_statedb_t *db;                                   /* all stores of all local tasks */
    eddy_agg_layout_t *layouts[EDDY_TOPOLOGY_MAX_STORES]; /* per store, by index */
    const char *source_topic;                             /* the topology's source topic */
    char changelog_topics[EDDY_TOPOLOGY_MAX_STORES][256]; /* per store: <app>-<store>-changelog */
    int source_partitions;                                /* its partition count */
    char dlq_topic[256];                /* errors.deadletterqueue.topic.name, resolved */
    char sinks_topic[256];              /* <app>-sinks-changelog: where sink emission stands */
    int dlq_partitions;                 /* its partition count (a task writes to its own % count) */
    eddy_metrics_t metrics;             /* counters, see above */
    struct eddy_instances_s *instances; /* peers (engine/instances.h); NULL: not published */
    struct eddy_local_state_s *local_state; /* db's life and its readers' guard
                                               (engine/local_state.h); NULL: db is fixed */
} eddy_runtime_t;

/** Sets up the metrics (all zero); EDDY_ERR_NOMEM if out of memory. */
eddy_err_t eddy_metrics_init(eddy_metrics_t *m);

/** Frees what init allocated. */
void eddy_metrics_free(eddy_metrics_t *m);

/** Commit latency quantile q (0..1) in ms over every commit so far; 0 if none.
 *  Any thread. */
double eddy_metrics_commit_ms(eddy_metrics_t *m, double q);

/** Records one commit that took `ns` and wrote `dirty` entries. Any thread (one
 *  short lock per commit, never per record). */
void eddy_metrics_commit(eddy_metrics_t *m, int64_t ns, size_t dirty);

/** Counts an assignment change. */
void eddy_metrics_rebalance(eddy_metrics_t *m);

#endif /* EDDY_RUNTIME_H */
