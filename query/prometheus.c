/*
 * prometheus.c — the text exposition format 0.0.4 (see prometheus.h) and GET
 * /metrics.
 *
 * The format, as Prometheus parses it: per family one "# HELP name text" (help
 * escapes \ and newline) and one "# TYPE name type" line, then its samples
 * "name{label="value",...} value", all of a family together; label values escape
 * \, " and newline. A histogram's buckets are cumulative and end with le="+Inf",
 * which equals _count.
 *
 * The handler runs on an HTTP server thread. It copies each counter once (relaxed
 * loads; a scrape during a commit may see one counter of it updated and the next
 * not yet, never a torn value) and writes families in a fixed order.
 */
#include "query/prometheus.h"
#include "eddy.h"
#include "engine/local_state.h"
#include "query/ws.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eddy_prom_s {
    char *buf;             /* the text, NUL-terminated */
    size_t len;            /* bytes in buf */
    size_t cap;            /* its size */
    bool oom;              /* an allocation failed: the text is incomplete */
    char **families;       /* names written, for the once-per-family check */
    size_t n_families;     /* used */
    size_t cap_families;   /* allocated */
    const char *family;    /* the current family's name (an entry of families) */
    eddy_prom_type_t type; /* ... and its type */
};

eddy_prom_t *eddy_prom_new(void)
{
    eddy_prom_t *prom = calloc(1, sizeof(*prom));
    if (!prom)
        return NULL;
    prom->cap = 16384;
    prom->buf = malloc(prom->cap);
    if (!prom->buf) {
        free(prom);
        return NULL;
    }
    prom->buf[0] = '\0';
    return prom;
}

void eddy_prom_destroy(eddy_prom_t *prom)
{
    if (!prom)
        return;
    for (size_t i = 0; i < prom->n_families; i++)
        free(prom->families[i]);
    free(prom->families);
    free(prom->buf);
    free(prom);
}

const char *eddy_prom_text(const eddy_prom_t *prom, size_t *len)
{
    if (prom->oom)
        return NULL;
    if (len)
        *len = prom->len;
    return prom->buf;
}

/* --- the buffer ----------------------------------------------------------------------- */

static bool reserve(eddy_prom_t *prom, size_t more)
{
    if (prom->oom)
        return false;
    if (prom->len + more + 1 <= prom->cap)
        return true;
    size_t cap = prom->cap;
    while (prom->len + more + 1 > cap)
        cap *= 2;
    char *buf = realloc(prom->buf, cap);
    if (!buf) {
        prom->oom = true;
        return false;
    }
    prom->buf = buf;
    prom->cap = cap;
    return true;
}

static void put(eddy_prom_t *prom, const char *s, size_t n)
{
    if (!reserve(prom, n))
        return;
    memcpy(prom->buf + prom->len, s, n);
    prom->len += n;
    prom->buf[prom->len] = '\0';
}

static void puts_(eddy_prom_t *prom, const char *s)
{
    put(prom, s, strlen(s));
}

/* `s` with \ and newline escaped, and " too for label values. */
static void put_escaped(eddy_prom_t *prom, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(prom, "\\\\", 2);
        else if (*s == '\n')
            put(prom, "\\n", 2);
        else if (*s == '"' && quote)
            put(prom, "\\\"", 2);
        else
            put(prom, s, 1);
    }
}

/* A value as Prometheus parses it (Go's ParseFloat): integers exactly, other
 * numbers with the fewest digits that read back the same. */
static void format_value(double v, char *out, size_t size)
{
    if (isnan(v))
        snprintf(out, size, "NaN");
    else if (isinf(v))
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact */
        snprintf(out, size, "%lld", (long long)v);
    else {
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(out, size, "%.*g", digits, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* --- names ----------------------------------------------------------------------------- */

__attribute__((unused)) static bool valid_name(const char *s, bool metric)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && !(metric && *s == ':'))
            return false;
    return true;
}

__attribute__((unused)) static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static const char *const type_names[] = {"counter", "gauge", "histogram"};

void eddy_prom_family(eddy_prom_t *prom, const char *name, eddy_prom_type_t type, const char *help)
{
    assert(valid_name(name, true));
    assert(type != EDDY_PROM_COUNTER || ends_with(name, "_total"));
    for (size_t i = 0; i < prom->n_families; i++)
        assert(strcmp(prom->families[i], name) != 0); /* a family is written once */
    if (prom->n_families == prom->cap_families) {
        size_t cap = prom->cap_families ? prom->cap_families * 2 : 64;
        char **families = realloc(prom->families, cap * sizeof(*families));
        if (!families) {
            prom->oom = true;
            return;
        }
        prom->families = families;
        prom->cap_families = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        prom->oom = true;
        return;
    }
    prom->families[prom->n_families++] = copy;
    prom->family = copy;
    prom->type = type;
    puts_(prom, "# HELP ");
    puts_(prom, name);
    puts_(prom, " ");
    put_escaped(prom, help, false);
    puts_(prom, "\n# TYPE ");
    puts_(prom, name);
    puts_(prom, " ");
    puts_(prom, type_names[type]);
    puts_(prom, "\n");
}

/* NAME[SUFFIX]{labels[,le="LE"]} VALUE\n */
static void put_sample(eddy_prom_t *prom, const char *suffix, const char *const *labels,
                       const char *le, double value)
{
    if (!prom->family)
        return; /* out of memory in eddy_prom_family */
    puts_(prom, prom->family);
    puts_(prom, suffix);
    bool any = (labels && labels[0]) || le;
    if (any)
        puts_(prom, "{");
    size_t i = 0;
    for (; labels && labels[i]; i += 2) {
        assert(labels[i + 1] && valid_name(labels[i], false) && strncmp(labels[i], "__", 2));
        if (i)
            puts_(prom, ",");
        puts_(prom, labels[i]);
        puts_(prom, "=\"");
        put_escaped(prom, labels[i + 1], true);
        puts_(prom, "\"");
    }
    if (le) {
        puts_(prom, i ? ",le=\"" : "le=\"");
        puts_(prom, le);
        puts_(prom, "\"");
    }
    if (any)
        puts_(prom, "}");
    char v[40];
    format_value(value, v, sizeof(v));
    puts_(prom, " ");
    puts_(prom, v);
    puts_(prom, "\n");
}

void eddy_prom_sample(eddy_prom_t *prom, const char *const *labels, double value)
{
    assert(!prom->family || prom->type != EDDY_PROM_HISTOGRAM);
    put_sample(prom, "", labels, NULL, value);
}

void eddy_prom_histogram(eddy_prom_t *prom, const char *const *labels, const double *bounds,
                         const uint64_t *le, size_t n, uint64_t count, double sum)
{
    assert(!prom->family || prom->type == EDDY_PROM_HISTOGRAM);
    char b[40];
    for (size_t i = 0; i < n; i++) {
        assert(isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
        assert(i == 0 || le[i] >= le[i - 1]);
        format_value(bounds[i], b, sizeof(b));
        put_sample(prom, "_bucket", labels, b, (double)le[i]);
    }
    assert(n == 0 || count >= le[n - 1]);
    put_sample(prom, "_bucket", labels, "+Inf", (double)count);
    put_sample(prom, "_sum", labels, NULL, sum);
    put_sample(prom, "_count", labels, NULL, (double)count);
}

void eddy_prom_metric(eddy_prom_t *prom, const char *name, eddy_prom_type_t type, const char *help,
                      double value)
{
    eddy_prom_family(prom, name, type, help);
    eddy_prom_sample(prom, NULL, value);
}

/* --- an instance's metrics --------------------------------------------------------------- */

/* One owned input partition, copied once per scrape. */
typedef struct part_snap_s {
    int partition;                       /* input partition */
    bool restoring;                      /* state: restoring */
    bool failed;                         /* state: stopped in error */
    int64_t consumed, late, dead;        /* published at the last commit */
    int64_t dlq_written, dlq_truncated;  /* likewise */
    int64_t dlq_failed;                  /* dead-letter copies refused or lost (attempts) */
    int64_t lost;                        /* input retention deleted */
    int64_t next, committed;             /* offsets (-1 unknown) */
    int64_t low, high;                   /* watermarks (-1 unknown) */
    int64_t stream_time;                 /* ms, INT64_MIN: none */
    int64_t restore_read, restore_total; /* the current or last restore */
    int64_t hits, misses;                /* record cache lookups */
    char label[16];                      /* the partition as text */
} part_snap_t;

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static size_t snapshot_parts(eddy_runtime_t *rt, part_snap_t *out)
{
    size_t n = 0;
    for (int p = 0; p < rt->source_partitions && p < EDDY_MAX_PARTITIONS; p++) {
        eddy_partition_stats_t *ps = &rt->metrics.parts[p];
        if (!LOAD(ps->owner))
            continue;
        part_snap_t *s = &out[n++];
        s->partition = p;
        s->restoring = LOAD(ps->state) == EDDY_TASK_RESTORING;
        s->failed = LOAD(ps->state) == EDDY_TASK_ERROR;
        s->consumed = LOAD(ps->consumed);
        s->late = LOAD(ps->late);
        s->dead = LOAD(ps->dead_lettered);
        s->dlq_written = LOAD(ps->dlq_written);
        s->dlq_truncated = LOAD(ps->dlq_truncated);
        s->dlq_failed = LOAD(ps->dlq_failed);
        s->lost = LOAD(ps->input_lost);
        s->next = LOAD(ps->next_offset);
        s->committed = LOAD(ps->committed_offset);
        s->low = LOAD(ps->low_watermark);
        s->high = LOAD(ps->high_watermark);
        s->stream_time = LOAD(ps->stream_time);
        s->restore_read = LOAD(ps->restore_read);
        s->restore_total = LOAD(ps->restore_total);
        s->hits = LOAD(ps->cache_hits);
        s->misses = LOAD(ps->cache_misses);
        snprintf(s->label, sizeof(s->label), "%d", p);
    }
    return n;
}

/* A per-partition family. */
typedef struct part_metric_s {
    const char *name;
    eddy_prom_type_t type;
    const char *help;
} part_metric_t;

static int64_t consumer_lag(const part_snap_t *s)
{
    if (s->high < 0)
        return -1; /* no fetch response yet */
    /* A task with no position reads from the log start. */
    int64_t pos = s->next >= 0 ? s->next : (s->low >= 0 ? s->low : 0);
    return s->high > pos ? s->high - pos : 0;
}

static void write_partitions(eddy_prom_t *prom, eddy_runtime_t *rt)
{
    part_snap_t *snap = calloc(EDDY_MAX_PARTITIONS, sizeof(*snap));
    if (!snap) {
        prom->oom = true;
        return;
    }
    size_t n = snapshot_parts(rt, snap);
    size_t restoring = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        restoring += snap[i].restoring;
        failed += snap[i].failed;
    }

    eddy_prom_family(prom, "eddy_tasks", EDDY_PROM_GAUGE,
                     "Tasks (input partitions) this instance owns, by state.");
    eddy_prom_sample(prom, (const char *[]){"state", "running", NULL},
                     (double)(n - restoring - failed));
    eddy_prom_sample(prom, (const char *[]){"state", "restoring", NULL}, (double)restoring);
    eddy_prom_sample(prom, (const char *[]){"state", "error", NULL}, (double)failed);

    enum {
        CONSUMED,
        PROCESSED,
        DEAD_LETTERED,
        DLQ_WRITTEN,
        DLQ_TRUNCATED,
        DLQ_FAILED,
        FAILED,
        LATE,
        LOST,
        LAG,
        HIGH,
        NEXT,
        COMMITTED,
        STREAM_TIME,
        RESTORING,
        RESTORE_READ,
        RESTORE_TOTAL,
        HITS,
        MISSES,
        N_METRICS
    };
    static const part_metric_t metrics[N_METRICS] = {
        [CONSUMED] = {"eddy_task_records_consumed_total", EDDY_PROM_COUNTER,
                      "Input records the task took from its partition (each offset once), as of "
                      "its last commit; restarts at 0 when the task is created here."},
        [PROCESSED] = {"eddy_task_records_processed_total", EDDY_PROM_COUNTER,
                       "Input records decoded and applied to the stores (consumed minus "
                       "dead-lettered), as of the last commit."},
        [DEAD_LETTERED] = {"eddy_task_records_dead_lettered_total", EDDY_PROM_COUNTER,
                           "Input records that were bad input (not JSON, missing or mistyped "
                           "fields, bad timestamps) and went to the dead-letter topic instead of "
                           "the stores, as of the last commit."},
        [DLQ_WRITTEN] = {"eddy_dlq_records_written_total", EDDY_PROM_COUNTER,
                         "Dead-letter copies committed to the dead-letter topic (equals "
                         "dead-lettered unless eddy ran out of memory for a copy)."},
        [DLQ_TRUNCATED] = {"eddy_dlq_records_truncated_total", EDDY_PROM_COUNTER,
                           "Of those, copies cut to fit the producer's message.max.bytes (the "
                           "whole record stays in the source topic)."},
        [DLQ_FAILED] = {"eddy_dlq_write_failures_total", EDDY_PROM_COUNTER,
                        "Attempts to write a dead-letter copy that the producer refused or the "
                        "broker rejected (the copy is written again with the commit that "
                        "follows the rollback)."},
        [FAILED] = {"eddy_task_failed", EDDY_PROM_GAUGE,
                    "1 when the task stopped in the error state (its commits kept failing for "
                    "the same deterministic reason, see /api/health), else 0."},
        [LATE] = {"eddy_task_late_updates_total", EDDY_PROM_COUNTER,
                  "Window updates dropped because the window had closed (one per record and "
                  "window: a hopping window counts once per window it would have updated)."},
        [LOST] = {"eddy_task_input_lost_records_total", EDDY_PROM_COUNTER,
                  "Input records deleted by the broker's retention before they were processed."},
        [LAG] = {"eddy_consumer_lag_records", EDDY_PROM_GAUGE,
                 "Records between the task's input position and the partition's end (high "
                 "watermark; last stable offset under read_committed), sampled at each commit "
                 "from the consumer's last fetch. Absent until the first fetch answered."},
        [HIGH] = {"eddy_consumer_high_watermark_offset", EDDY_PROM_GAUGE,
                  "The partition's end offset as of the task's last commit."},
        [NEXT] = {"eddy_task_next_offset", EDDY_PROM_GAUGE,
                  "The next input offset the task processes, as of its last commit."},
        [COMMITTED] = {"eddy_task_committed_offset", EDDY_PROM_GAUGE,
                       "The input offset the task's last commit resumes from."},
        [STREAM_TIME] = {"eddy_task_stream_time_seconds", EDDY_PROM_GAUGE,
                         "The task's stream time (largest event time seen), epoch seconds."},
        [RESTORING] = {"eddy_task_restoring", EDDY_PROM_GAUGE,
                       "1 while the task restores its stores from their changelogs, else 0."},
        [RESTORE_READ] = {"eddy_task_restore_records", EDDY_PROM_GAUGE,
                          "Changelog records read by the task's current (or last) restore."},
        [RESTORE_TOTAL] = {"eddy_task_restore_target_records", EDDY_PROM_GAUGE,
                           "Changelog records the task's current (or last) restore has to read."},
        [HITS] = {"eddy_record_cache_hits_total", EDDY_PROM_COUNTER,
                  "Record cache lookups of a (window, key) that found it in memory, all stores "
                  "of the task, as of its last commit."},
        [MISSES] = {"eddy_record_cache_misses_total", EDDY_PROM_COUNTER,
                    "Record cache lookups that missed (read from RocksDB or a new window), as of "
                    "the task's last commit."},
    };
    for (int m = 0; m < N_METRICS; m++) {
        eddy_prom_family(prom, metrics[m].name, metrics[m].type, metrics[m].help);
        for (size_t i = 0; i < n; i++) {
            const part_snap_t *s = &snap[i];
            double v = 0;
            switch (m) {
            case CONSUMED:
                v = (double)s->consumed;
                break;
            case PROCESSED:
                v = (double)(s->consumed - s->dead);
                break;
            case DEAD_LETTERED:
                v = (double)s->dead;
                break;
            case DLQ_WRITTEN:
                v = (double)s->dlq_written;
                break;
            case DLQ_TRUNCATED:
                v = (double)s->dlq_truncated;
                break;
            case DLQ_FAILED:
                v = (double)s->dlq_failed;
                break;
            case FAILED:
                v = s->failed;
                break;
            case LATE:
                v = (double)s->late;
                break;
            case LOST:
                v = (double)s->lost;
                break;
            case LAG:
                if (consumer_lag(s) < 0)
                    continue;
                v = (double)consumer_lag(s);
                break;
            case HIGH:
                if (s->high < 0)
                    continue;
                v = (double)s->high;
                break;
            case NEXT:
                v = (double)s->next;
                break;
            case COMMITTED:
                v = (double)s->committed;
                break;
            case STREAM_TIME:
                if (s->stream_time == INT64_MIN)
                    continue;
                v = (double)s->stream_time / 1000.0;
                break;
            case RESTORING:
                v = s->restoring;
                break;
            case RESTORE_READ:
                v = (double)s->restore_read;
                break;
            case RESTORE_TOTAL:
                v = (double)s->restore_total;
                break;
            case HITS:
                v = (double)s->hits;
                break;
            case MISSES:
                v = (double)s->misses;
                break;
            }
            eddy_prom_sample(
                prom, (const char *[]){"topic", rt->source_topic, "partition", s->label, NULL}, v);
        }
    }
    free(snap);
}

static void write_engine(eddy_prom_t *prom, eddy_runtime_t *rt)
{
    eddy_metrics_t *m = &rt->metrics;
    eddy_prom_family(prom, "eddy_info", EDDY_PROM_GAUGE,
                     "Always 1; the labels describe the instance.");
    eddy_prom_sample(prom,
                     (const char *[]){"version", eddy_version(), "application_id",
                                      rt->cfg->application_id, "processing_guarantee",
                                      rt->cfg->guarantee == EDDY_EXACTLY_ONCE_V2 ? "exactly_once_v2"
                                                                                 : "at_least_once",
                                      NULL},
                     1);
    eddy_prom_metric(prom, "eddy_stream_threads", EDDY_PROM_GAUGE, "Stream threads configured.",
                     rt->cfg->num_stream_threads);
    eddy_prom_metric(prom, "eddy_source_partitions", EDDY_PROM_GAUGE,
                     "Partitions of the source topic (tasks of the application).",
                     rt->source_partitions);

    /* The histogram first, then the counter: commits and buckets are bumped in
     * the other order, so a scrape during a commit sees commits >= _count. */
    uint64_t le[EDDY_COMMIT_BUCKETS], total = 0;
    for (int b = 0; b < EDDY_COMMIT_BUCKETS; b++) {
        total += (uint64_t)LOAD(m->commit_buckets[b]);
        le[b] = total;
    }
    double sum = (double)LOAD(m->commit_ns_total) / 1e9;
    eddy_prom_family(prom, "eddy_commit_duration_seconds", EDDY_PROM_HISTOGRAM,
                     "Duration of successful commits (changelogs, markers, transaction, local "
                     "write).");
    /* The last bound of eddy_commit_bucket_bounds is +Inf: the histogram's own. */
    eddy_prom_histogram(prom, NULL, eddy_commit_bucket_bounds, le, EDDY_COMMIT_BUCKETS - 1, total,
                        sum);
    eddy_prom_metric(prom, "eddy_commits_total", EDDY_PROM_COUNTER,
                     "Successful commits of all stream threads.", (double)LOAD(m->commits));
    eddy_prom_metric(prom, "eddy_commit_aborts_total", EDDY_PROM_COUNTER,
                     "Commits that failed and were rolled back (their tasks restored again).",
                     (double)LOAD(m->aborts));
    eddy_prom_metric(prom, "eddy_commit_windows_written_total", EDDY_PROM_COUNTER,
                     "Dirty window entries written by commits.", (double)LOAD(m->dirty_written));
    eddy_prom_metric(prom, "eddy_producer_restarts_total", EDDY_PROM_COUNTER,
                     "Changelog producers recreated after a fatal error or failed commit.",
                     (double)LOAD(m->producer_restarts));
    eddy_prom_metric(prom, "eddy_rebalances_total", EDDY_PROM_COUNTER,
                     "Assignment changes (partitions assigned or revoked) seen by the stream "
                     "threads.",
                     (double)LOAD(m->rebalances));
    eddy_prom_metric(prom, "eddy_restores_total", EDDY_PROM_COUNTER, "Task restores finished.",
                     (double)LOAD(m->restores));
    eddy_prom_metric(prom, "eddy_restored_records_total", EDDY_PROM_COUNTER,
                     "Changelog records read by finished restores.",
                     (double)LOAD(m->restored_records));
    int64_t last = LOAD(m->last_commit_ms);
    eddy_prom_metric(prom, "eddy_last_commit_timestamp_seconds", EDDY_PROM_GAUGE,
                     "Wall-clock time of the last successful commit (0: none yet); alert on "
                     "time() minus this.",
                     (double)last / 1000.0);
}

/* Per store with percentiles and owned partition: sketches that lost accuracy. */
static void write_sketch_collapses(eddy_prom_t *prom, eddy_runtime_t *rt)
{
    eddy_prom_family(prom, "eddy_sketch_collapses_total", EDDY_PROM_COUNTER,
                     "Percentile sketches of a (window, key) whose values fell in more than 2048 "
                     "distinct buckets, so that the lowest were folded together and the "
                     "percentiles among them lost their 1% bound (answers list those in "
                     "\"degraded\"); counted once per sketch by the task, as of its last commit.");
    for (size_t i = 0; i < eddy_topology_store_count(rt->topo) && i < EDDY_TOPOLOGY_MAX_STORES;
         i++) {
        const eddy_store_def_t *def = eddy_topology_store(rt->topo, i);
        bool sketched = false;
        for (size_t a = 0; a < def->n_aggregates; a++)
            sketched = sketched || def->aggregates[a].op == EDDY_AGG_PERCENTILE;
        for (int p = 0; sketched && p < rt->source_partitions && p < EDDY_MAX_PARTITIONS; p++) {
            eddy_partition_stats_t *ps = &rt->metrics.parts[p];
            if (!LOAD(ps->owner))
                continue;
            char label[16];
            snprintf(label, sizeof(label), "%d", p);
            eddy_prom_sample(prom,
                             (const char *[]){"store", def->name, "topic", rt->source_topic,
                                              "partition", label, NULL},
                             (double)LOAD(ps->sketch_collapses[i]));
        }
    }
}

static void write_stores(eddy_prom_t *prom, eddy_runtime_t *rt)
{
    size_t n = eddy_topology_store_count(rt->topo);
    uint64_t keys[EDDY_TOPOLOGY_MAX_STORES] = {0}, sst[EDDY_TOPOLOGY_MAX_STORES] = {0};
    eddy_statedb_t *db = eddy_local_state_read_begin(rt); /* NULL while reset: zeros */
    for (size_t i = 0; db && i < n && i < EDDY_TOPOLOGY_MAX_STORES; i++)
        eddy_statedb_store_stats(db, (int)i, &keys[i], &sst[i]);
    if (db)
        eddy_local_state_read_end(rt);
    eddy_local_state_stats_t ls;
    eddy_local_state_stats(rt, &ls);
    eddy_prom_metric(prom, "eddy_state_damaged_total", EDDY_PROM_COUNTER,
                     "Times the local state was found damaged (at startup or by a read), "
                     "moved aside and restored from the changelogs (or, with "
                     "state.corruption.action=fail, eddy stopped).",
                     (double)ls.damaged);
    eddy_prom_metric(prom, "eddy_state_resets_total", EDDY_PROM_COUNTER,
                     "Times damaged local state was moved aside and a fresh state database "
                     "opened.",
                     (double)ls.resets);
    eddy_prom_metric(prom, "eddy_state_last_reset_timestamp_seconds", EDDY_PROM_GAUGE,
                     "Wall-clock time the last reset of damaged local state ended (0: none).",
                     (double)ls.last_reset_ms / 1000.0);
    eddy_prom_metric(prom, "eddy_state_last_reset_duration_seconds", EDDY_PROM_GAUGE,
                     "How long the last reset took, from the damage noticed to the stream "
                     "threads running again (0: none; the restore follows).",
                     (double)ls.last_reset_ns / 1e9);
    eddy_prom_metric(prom, "eddy_state_resetting", EDDY_PROM_GAUGE,
                     "1 while damaged local state is being moved aside (queries answer 503), "
                     "else 0.",
                     ls.resetting);
    eddy_prom_family(prom, "eddy_store_keys", EDDY_PROM_GAUGE,
                     "Keys in the store's column family, all tasks (RocksDB's estimate, "
                     "rocksdb.estimate-num-keys).");
    for (size_t i = 0; i < n && i < EDDY_TOPOLOGY_MAX_STORES; i++)
        eddy_prom_sample(prom,
                         (const char *[]){"store", eddy_topology_store(rt->topo, i)->name, NULL},
                         (double)keys[i]);
    eddy_prom_family(prom, "eddy_store_sst_bytes", EDDY_PROM_GAUGE,
                     "Bytes of the store's SST files on disk (rocksdb.total-sst-files-size; 0 "
                     "until a memtable is flushed).");
    for (size_t i = 0; i < n && i < EDDY_TOPOLOGY_MAX_STORES; i++)
        eddy_prom_sample(prom,
                         (const char *[]){"store", eddy_topology_store(rt->topo, i)->name, NULL},
                         (double)sst[i]);
    write_sketch_collapses(prom, rt);
}

static void write_http(eddy_prom_t *prom, const eddy_http_t *http)
{
    eddy_http_stats_t st;
    eddy_http_stats(http, &st);
    eddy_prom_family(prom, "eddy_http_request_duration_seconds", EDDY_PROM_HISTOGRAM,
                     "HTTP request latency, from the request line to the last byte handed to the "
                     "kernel (upgrades left out).");
    eddy_prom_histogram(prom, NULL, eddy_http_latency_bounds, st.latency_le,
                        EDDY_HTTP_LATENCY_BUCKETS, st.latency_count, st.latency_sum);
    eddy_prom_metric(prom, "eddy_http_requests_total", EDDY_PROM_COUNTER, "HTTP requests answered.",
                     (double)st.requests);
    eddy_prom_family(prom, "eddy_http_responses_total", EDDY_PROM_COUNTER,
                     "HTTP answers by status class.");
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int c = 1; c <= 5; c++)
        eddy_prom_sample(prom, (const char *[]){"code", classes[c - 1], NULL},
                         (double)st.status_class[c]);
    eddy_prom_metric(prom, "eddy_http_connections", EDDY_PROM_GAUGE, "HTTP connections open.",
                     (double)st.connections_open);
    eddy_prom_metric(prom, "eddy_http_connections_total", EDDY_PROM_COUNTER,
                     "HTTP connections accepted.", (double)st.connections_total);
    eddy_prom_metric(prom, "eddy_http_connections_refused_total", EDDY_PROM_COUNTER,
                     "HTTP connections answered 503 for the connection limit.",
                     (double)st.connections_refused);
    eddy_prom_metric(prom, "eddy_http_connections_timed_out_total", EDDY_PROM_COUNTER,
                     "HTTP connections closed for missing a header or body deadline.",
                     (double)st.connections_timed_out);
    eddy_prom_metric(prom, "eddy_http_connections_evicted_total", EDDY_PROM_COUNTER,
                     "HTTP connections with an incomplete request closed to make room.",
                     (double)st.connections_evicted);
    eddy_prom_metric(prom, "eddy_http_requests_in_flight", EDDY_PROM_GAUGE,
                     "HTTP requests being answered now.", (double)st.requests_in_flight);
}

static void write_ws(eddy_prom_t *prom, const eddy_ws_t *ws)
{
    eddy_ws_stats_t st;
    eddy_ws_stats(ws, &st);
    eddy_prom_metric(prom, "eddy_ws_clients", EDDY_PROM_GAUGE, "WebSocket clients connected.",
                     (double)st.clients_open);
    eddy_prom_metric(prom, "eddy_ws_clients_total", EDDY_PROM_COUNTER,
                     "WebSocket connections upgraded.", (double)st.clients_total);
    eddy_prom_metric(prom, "eddy_ws_messages_sent_total", EDDY_PROM_COUNTER,
                     "WebSocket data messages (snapshots, updates, errors) queued to clients.",
                     (double)st.messages_sent);
    eddy_prom_metric(prom, "eddy_ws_sent_bytes_total", EDDY_PROM_COUNTER,
                     "Bytes written to WebSocket clients, frame headers included.",
                     (double)st.bytes_sent);
    eddy_prom_metric(prom, "eddy_ws_slow_client_drops_total", EDDY_PROM_COUNTER,
                     "WebSocket clients dropped because their send queue was full.",
                     (double)st.drops);
    eddy_prom_metric(prom, "eddy_ws_protocol_errors_total", EDDY_PROM_COUNTER,
                     "WebSocket connections closed for a bad frame (1002, 1007, 1009).",
                     (double)st.protocol_errors);
}

void eddy_prom_write_instance(eddy_prom_t *prom, const eddy_prom_sources_t *src)
{
    write_engine(prom, src->rt);
    write_partitions(prom, src->rt);
    write_stores(prom, src->rt);
    if (src->http)
        write_http(prom, src->http);
    if (src->ws)
        write_ws(prom, src->ws);
}

int eddy_prom_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_prom_t *prom = eddy_prom_new();
    if (!prom)
        return eddy_http_error(resp, 503, "out of memory");
    eddy_prom_write_instance(prom, opaque);
    size_t len = 0;
    const char *text = eddy_prom_text(prom, &len);
    if (!text) {
        eddy_prom_destroy(prom);
        return eddy_http_error(resp, 503, "out of memory");
    }
    /* The buffer goes to the server as it is: no copy of a large exposition. */
    char *buf = prom->buf;
    prom->buf = NULL;
    eddy_prom_destroy(prom);
    return eddy_http_bytes_owned(resp, 200, EDDY_PROM_CONTENT_TYPE, buf, len, free);
}
