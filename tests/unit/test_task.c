/*
 * test_task.c — a task never folds a record into a fresh aggregate when the
 * window's stored state cannot be read. A task commits two windows (no Kafka:
 * flush without a producer), the state is flushed to SST files and the data
 * blocks of the store's file are flipped on disk; a new task over the damaged
 * state (opened without verification, as with state.verify.on.open=false)
 * must then:
 *   - start a window that is not stored (the bloom filter says so) afresh;
 *   - fail on a record for a stored window (EDDY_ERR_CORRUPT, the db marked
 *     damaged), apply nothing of it, and refuse to flush (nothing to commit)
 *     or to process more, until rolled back.
 */
#define _GNU_SOURCE /* memmem */
#include "test_support.h"

#include "engine/runtime.h"
#include "engine/task.h"
#include "engine/util.h"
#include "stores/statedb.h"
#include "topology/aggregate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE 60000LL
#define T0     1700000040000LL /* a window start */

static const char topology_json[] =
    "{\"name\":\"t\",\"source\":{\"topic\":\"in\",\"format\":\"json\",\"timestamp\":"
    "{\"field\":\"ts\",\"format\":\"epoch_ms\"}},\"stores\":[{\"name\":\"counts\",\"group_by\":"
    "[\"k\"],\"window\":{\"type\":\"tumbling\",\"size\":\"1m\",\"grace\":\"1h\",\"retention\":"
    "\"1d\"},\"aggregates\":[{\"name\":\"count\",\"op\":\"count\"}]}]}";

typedef struct fixture_s {
    char dir[256];
    eddy_config_t cfg;
    eddy_runtime_t rt;
} fixture_t;

static void open_db(fixture_t *fx)
{
    char errstr[512], path[300];
    snprintf(path, sizeof(path), "%s/state", fx->dir);
    const char *names[] = {"counts"};
    fx->rt.db = eddy_statedb_open(path, names, 1, errstr, sizeof(errstr));
    if (!fx->rt.db)
        fail_msg("%s", errstr);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    eddy_test_mkdtemp("task", fx->dir, sizeof(fx->dir));
    char path[300], errstr[512];
    snprintf(path, sizeof(path), "%s/topology.json", fx->dir);
    FILE *f = fopen(path, "w");
    fputs(topology_json, f);
    fclose(f);
    eddy_config_init(&fx->cfg);
    fx->rt.cfg = &fx->cfg;
    fx->rt.topo = eddy_topology_load_file(path, errstr, sizeof(errstr));
    if (!fx->rt.topo)
        fail_msg("%s", errstr);
    fx->rt.layouts[0] =
        eddy_agg_layout_new(eddy_topology_store(fx->rt.topo, 0), errstr, sizeof(errstr));
    fx->rt.source_partitions = 1;
    if (!fx->rt.layouts[0] || eddy_metrics_init(&fx->rt.metrics))
        return -1;
    open_db(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_statedb_close(fx->rt.db);
    eddy_agg_layout_destroy(fx->rt.layouts[0]);
    eddy_topology_destroy((eddy_topology_t *)fx->rt.topo);
    eddy_metrics_free(&fx->rt.metrics);
    eddy_config_free(&fx->cfg);
    eddy_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* A task of partition 0, restored (nothing to read) and RUNNING. */
static eddy_task_t *running_task(fixture_t *fx)
{
    char errstr[512];
    eddy_task_t *task = eddy_task_new(&fx->rt, 0, 0, errstr, sizeof(errstr));
    if (!task)
        fail_msg("%s", errstr);
    int64_t offsets[1];
    assert_int_equal(eddy_task_restore_begin(task, offsets, errstr, sizeof(errstr)), EDDY_OK);
    eddy_task_restore_store_done(task, 0);
    assert_int_equal(eddy_task_restore_finish(task, errstr, sizeof(errstr)), EDDY_OK);
    assert_int_equal(eddy_task_state(task), EDDY_TASK_RUNNING);
    return task;
}

static eddy_err_t process(eddy_task_t *task, int64_t offset, int64_t ts, const char *key)
{
    char value[128];
    int n = snprintf(value, sizeof(value), "{\"ts\":%lld,\"k\":\"%s\"}", (long long)ts, key);
    rd_kafka_message_t msg = {.payload = value, .len = (size_t)n, .offset = offset};
    return eddy_task_process(task, &msg, eddy_now_ms());
}

/* Flushes the task into a batch and writes it (no changelog: no producer);
 * returns the window entries flushed, or -1 if the flush failed. */
static int commit(fixture_t *fx, eddy_task_t *task)
{
    char errstr[512];
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    size_t written = 0;
    eddy_err_t err = eddy_task_flush(task, batch, NULL, &written);
    int count = eddy_statedb_batch_count(batch);
    if (!err) {
        assert_int_equal(eddy_task_commit_positions(task, batch), EDDY_OK);
        assert_int_equal(eddy_statedb_write(fx->rt.db, batch, false, errstr, sizeof(errstr)),
                         EDDY_OK);
        eddy_task_committed(task);
    } else {
        assert_int_equal(count, 0); /* nothing of the task went into the batch */
    }
    eddy_statedb_batch_destroy(batch);
    return err ? -1 : (int)written;
}

/* The count stored for (window start, key), -1 if absent. */
static int64_t stored_count(fixture_t *fx, int64_t start, const char *key)
{
    char errstr[512];
    uint8_t buf[4096];
    size_t len = 0;
    bool found = false;
    assert_int_equal(eddy_statedb_get(fx->rt.db, 0, 0, start, key, strlen(key), buf, sizeof(buf),
                                      &len, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    if (!found)
        return -1;
    eddy_agg_t *agg = eddy_agg_new(fx->rt.layouts[0]);
    assert_int_equal(eddy_agg_deserialize(fx->rt.layouts[0], agg, buf, len), EDDY_OK);
    json_t *j = json_object();
    eddy_agg_to_json(fx->rt.layouts[0], agg, j);
    int64_t count = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    eddy_agg_destroy(agg);
    return count;
}

/* Flips the first bytes (the first data block) of every SST file but
 * eddy_meta's: the store's windows can no longer be read, positions can. */
static int damage_store_files(const char *db)
{
    DIR *d = opendir(db);
    assert_non_null(d);
    int damaged = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sst"))
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", db, e->d_name);
        FILE *f = fopen(path, "r+b");
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        if (!memmem(buf, n, "eddy_meta", 9)) {
            for (int i = 0; i < 64; i++)
                buf[i] ^= 0xff;
            fseek(f, 0, SEEK_SET);
            assert_int_equal(fwrite(buf, 1, 64, f), 64);
            damaged++;
        }
        fclose(f);
    }
    closedir(d);
    return damaged;
}

static void test_read_error_is_never_a_fresh_aggregate(void **state)
{
    fixture_t *fx = *state;
    char errstr[512], db[300];
    snprintf(db, sizeof(db), "%s/state", fx->dir);

    /* Two windows of key "a", 3 and 2 records, committed and flushed to SST. */
    eddy_task_t *task = running_task(fx);
    for (int i = 0; i < 5; i++)
        assert_int_equal(process(task, i, T0 + (i < 3 ? 0 : MINUTE) + i, "a"), EDDY_OK);
    assert_int_equal(commit(fx, task), 2);
    eddy_task_destroy(task);
    assert_int_equal(stored_count(fx, T0, "a"), 3);
    assert_int_equal(stored_count(fx, T0 + MINUTE, "a"), 2);
    assert_int_equal(eddy_statedb_flush(fx->rt.db, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_close(fx->rt.db);
    assert_true(damage_store_files(db) >= 1);
    open_db(fx); /* no verification: the damage shows at the first read */
    assert_false(eddy_statedb_damaged(fx->rt.db));

    task = running_task(fx);
    /* A window that was never stored: not read (the bloom filter), started afresh. */
    assert_int_equal(process(task, 5, T0 + 10 * MINUTE, "b"), EDDY_OK);
    assert_false(eddy_statedb_damaged(fx->rt.db));
    /* A stored window: its block cannot be read. */
    assert_int_equal(process(task, 6, T0 + 1, "a"), EDDY_ERR_CORRUPT);
    assert_true(eddy_statedb_damaged(fx->rt.db));
    eddy_statedb_damage(fx->rt.db, errstr, sizeof(errstr));
    assert_non_null(strstr(errstr, "Corruption"));
    /* Poisoned: nothing is committed, nothing more processed. */
    assert_int_equal(commit(fx, task), -1);
    assert_int_equal(process(task, 7, T0 + 10 * MINUTE + 1, "b"), EDDY_ERR_STATE);
    assert_int_equal(eddy_task_next_offset(task), 7); /* (redone after the restore) */
    /* A rollback lifts the poison; the damaged window still cannot be read. */
    assert_int_equal(eddy_task_rollback(task, errstr, sizeof(errstr)), EDDY_OK);
    eddy_task_destroy(task);
    task = running_task(fx);
    assert_int_equal(process(task, 6, T0 + 1, "a"), EDDY_ERR_CORRUPT);
    eddy_task_destroy(task);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_error_is_never_a_fresh_aggregate, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
