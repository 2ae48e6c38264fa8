/*
 * test_statedb.c — the state database's contract: key order (negative window
 * starts included), point reads, range scans of one task and of all tasks,
 * sorted batches (the restore's bulk load) equal to plain ones, atomic
 * batches of state + checkpoint that survive close and kill -9,
 * retention deletes, dropping a task, adding stores, the directory lock,
 * format checks, scans racing a writer thread, stats, and damage: reads of a
 * flipped block, the verification at open, a corrupted CURRENT, a MANIFEST cut
 * inside a record, a missing file, and moving a dir aside. Each test works in
 * its own temporary state dir.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include "stores/statedb.h"
#include "stores/window_key.h"
#include "topology/hash.h"

#include <dirent.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const two_stores[] = {"counts", "stats"};

static eddy_statedb_t *open_ok(const char *dir, const char *const *names, size_t n)
{
    char errstr[512] = "";
    eddy_statedb_t *db = eddy_statedb_open(dir, names, n, errstr, sizeof(errstr));
    if (!db)
        fail_msg("open %s: %s", dir, errstr);
    return db;
}

static void put1(eddy_statedb_t *db, int store, int32_t task, int64_t start, const char *key,
                 const char *value)
{
    char errstr[256];
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    eddy_statedb_batch_put(batch, db, store, task, start, key, strlen(key), value, strlen(value));
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_batch_destroy(batch);
}

/* The value of (store, task, start, key) as a string, or "" if absent. */
static const char *get_str(eddy_statedb_t *db, int store, int32_t task, int64_t start,
                           const char *key)
{
    static char buf[256];
    char errstr[256];
    size_t len = 0;
    bool found = false;
    assert_int_equal(eddy_statedb_get(db, store, task, start, key, strlen(key), buf,
                                      sizeof(buf) - 1, &len, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    if (!found)
        return "";
    assert_true(len < sizeof(buf));
    buf[len] = '\0';
    return buf;
}

/* Scan results, flattened to "task:start:key=value;..." for easy comparison. */
typedef struct collect_s {
    char text[8192];
    int n;
    int stop_after; /* 0: never stop */
} collect_t;

static int collect(int32_t task, int64_t start, const char *key, size_t key_len, const void *value,
                   size_t value_len, void *opaque)
{
    collect_t *c = opaque;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof(c->text) - used, "%d:%lld:%.*s=%.*s;", task, (long long)start,
             (int)key_len, key, (int)value_len, (const char *)value);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static const char *scan_str(eddy_statedb_t *db, int store, int32_t task, int64_t from, int64_t to)
{
    static collect_t c;
    char errstr[256];
    memset(&c, 0, sizeof(c));
    assert_int_equal(
        eddy_statedb_scan(db, store, task, from, to, collect, &c, errstr, sizeof(errstr)), EDDY_OK);
    return c.text;
}

/* --- key layout ----------------------------------------------------------------- */

static void test_key_order(void **state)
{
    (void)state;
    /* Byte order of prefixes = (task, start) order, negative starts included. */
    const int64_t starts[] = {INT64_MIN, -86400000, -60000, -1, 0, 1, 60000, INT64_MAX};
    const uint32_t tasks[] = {0, 1, 255, 256, INT32_MAX};
    uint8_t prev[EDDY_WINDOW_KEY_PREFIX] = {0}, cur[EDDY_WINDOW_KEY_PREFIX];
    bool first = true;
    for (size_t t = 0; t < sizeof(tasks) / sizeof(tasks[0]); t++) {
        for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
            eddy_window_key_prefix(cur, tasks[t], starts[s]);
            assert_int_equal(eddy_key_get_u32(cur), tasks[t]);
            assert_true(eddy_key_get_i64(cur + 4) == starts[s]);
            if (!first)
                assert_true(memcmp(prev, cur, sizeof(cur)) < 0);
            memcpy(prev, cur, sizeof(cur));
            first = false;
        }
    }

    /* The same through the database: a scan returns windows in time order. */
    char dir[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    put1(db, 0, 1, 120000, "k", "c");
    put1(db, 0, 1, -120000, "k", "a");
    put1(db, 0, 1, 0, "k", "b");
    put1(db, 0, 1, -60000, "k", "a2");
    put1(db, 0, 1, 0, "j", "b0"); /* same window: group key order */
    assert_string_equal(scan_str(db, 0, 1, INT64_MIN, INT64_MAX),
                        "1:-120000:k=a;1:-60000:k=a2;1:0:j=b0;1:0:k=b;1:120000:k=c;");
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/* --- point reads ------------------------------------------------------------------ */

static void test_put_get_delete(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    assert_int_equal(eddy_statedb_store_index(db, "counts"), 0);
    assert_int_equal(eddy_statedb_store_index(db, "stats"), 1);
    assert_int_equal(eddy_statedb_store_index(db, "nope"), -1);

    put1(db, 0, 3, 60000, "/api/orders", "42");
    assert_string_equal(get_str(db, 0, 3, 60000, "/api/orders"), "42");
    assert_string_equal(get_str(db, 1, 3, 60000, "/api/orders"), ""); /* other store */
    assert_string_equal(get_str(db, 0, 4, 60000, "/api/orders"), ""); /* other task */
    assert_string_equal(get_str(db, 0, 3, 0, "/api/orders"), "");     /* other window */
    assert_string_equal(get_str(db, 0, 3, 60000, "/api/order"), "");  /* key prefix */

    /* A buffer too small: the size is reported, nothing is copied. */
    char small[1] = {'x'};
    size_t len = 0;
    bool found = false;
    assert_int_equal(eddy_statedb_get(db, 0, 3, 60000, "/api/orders", 11, small, sizeof(small),
                                      &len, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found);
    assert_int_equal(len, 2);
    assert_int_equal(small[0], 'x');

    /* Empty keys and values, binary keys, and keys longer than the stack buffer. */
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    eddy_statedb_batch_put(batch, db, 0, 3, 0, "", 0, "", 0);
    eddy_statedb_batch_put(batch, db, 0, 3, 0, "a\0b", 3, "nul", 3);
    char big_key[1000];
    memset(big_key, 'k', sizeof(big_key));
    static char big_value[1 << 20];
    memset(big_value, 'v', sizeof(big_value));
    eddy_statedb_batch_put(batch, db, 0, 3, 0, big_key, sizeof(big_key), big_value,
                           sizeof(big_value));
    assert_int_equal(eddy_statedb_batch_count(batch), 3);
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    assert_int_equal(eddy_statedb_get(db, 0, 3, 0, "", 0, small, sizeof(small), &len, &found,
                                      errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found);
    assert_int_equal(len, 0);
    char buf[8];
    assert_int_equal(eddy_statedb_get(db, 0, 3, 0, "a\0b", 3, buf, sizeof(buf), &len, &found,
                                      errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && len == 3 && !memcmp(buf, "nul", 3));
    assert_int_equal(eddy_statedb_get(db, 0, 3, 0, "a", 1, buf, sizeof(buf), &len, &found, errstr,
                                      sizeof(errstr)),
                     EDDY_OK);
    assert_false(found);
    char *out = malloc(sizeof(big_value));
    assert_int_equal(eddy_statedb_get(db, 0, 3, 0, big_key, sizeof(big_key), out, sizeof(big_value),
                                      &len, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && len == sizeof(big_value) && !memcmp(out, big_value, len));
    free(out);

    /* Deletes, and a batch that overwrites its own earlier put. */
    eddy_statedb_batch_clear(batch);
    assert_int_equal(eddy_statedb_batch_count(batch), 0);
    eddy_statedb_batch_delete(batch, db, 0, 3, 60000, "/api/orders", 11);
    eddy_statedb_batch_put(batch, db, 0, 3, 0, "x", 1, "1", 1);
    eddy_statedb_batch_put(batch, db, 0, 3, 0, "x", 1, "2", 1);
    assert_int_equal(eddy_statedb_write(db, batch, true, errstr, sizeof(errstr)), EDDY_OK);
    assert_string_equal(get_str(db, 0, 3, 60000, "/api/orders"), "");
    assert_string_equal(get_str(db, 0, 3, 0, "x"), "2");

    eddy_statedb_batch_destroy(batch);
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/* --- sorted batches (the restore's bulk load) ------------------------------------- */

/* Every entry of a store, all tasks, folded into a checksum and a count. */
typedef struct digest_s {
    uint64_t hash;
    int n;
} digest_t;

static int digest(int32_t task, int64_t start, const char *key, size_t key_len, const void *value,
                  size_t value_len, void *opaque)
{
    digest_t *d = opaque;
    const uint64_t fields[] = {(uint64_t)task, (uint64_t)start, key_len, value_len};
    d->hash = eddy_hash64(fields, sizeof(fields), d->hash);
    d->hash = eddy_hash64(key, key_len, d->hash);
    d->hash = eddy_hash64(value, value_len, d->hash);
    d->n++;
    return 0;
}

static digest_t digest_store(eddy_statedb_t *db, int store)
{
    digest_t d = {0, 0};
    char errstr[256];
    assert_int_equal(
        eddy_statedb_scan(db, store, -1, INT64_MIN, INT64_MAX, digest, &d, errstr, sizeof(errstr)),
        EDDY_OK);
    return d;
}

/* A sorted batch ends in the same state as a plain one given the same puts:
 * random keys of 0-40 bytes (shorter and longer than the 16 bytes compared as
 * integers, zero bytes, shared prefixes), negative and positive window starts,
 * three tasks, two stores, many overwrites of the same key (the last wins),
 * over several write and clear rounds; positions in the same batch commit with
 * the puts; the count includes the puts held back. */
static void test_sorted_batch(void **state)
{
    (void)state;
    char dir_a[256], dir_b[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir_a, sizeof(dir_a));
    eddy_test_mkdtemp("statedb", dir_b, sizeof(dir_b));
    eddy_statedb_t *plain_db = open_ok(dir_a, two_stores, 2);
    eddy_statedb_t *sorted_db = open_ok(dir_b, two_stores, 2);
    eddy_statedb_batch_t *plain = eddy_statedb_batch_new();
    eddy_statedb_batch_t *sorted = eddy_statedb_batch_new_sorted();
    uint64_t rng = 42;
    for (int round = 0; round < 4; round++) {
        int n = round == 3 ? 1 : 5000 * (round + 1); /* one put alone, too */
        for (int i = 0; i < n; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            uint32_t r = (uint32_t)(rng >> 33);
            int store = (int)(r & 1), task = (int)(r >> 1) % 3;
            int64_t start = ((int64_t)((r >> 3) % 7) - 3) * 60000;
            char key[40], value[12];
            size_t key_len = (r >> 6) % 41;
            for (size_t k = 0; k < key_len; k++)
                key[k] = (char)("ab\0z"[(r >> (k % 24)) % 4]); /* few letters: many repeats */
            int value_len = snprintf(value, sizeof(value), "%d.%d", round, i);
            eddy_statedb_batch_put(plain, plain_db, store, task, start, key, key_len, value,
                                   (size_t)value_len);
            eddy_statedb_batch_put(sorted, sorted_db, store, task, start, key, key_len, value,
                                   (size_t)value_len);
        }
        eddy_changelog_pos_t pos = {round + 1, 100 * round, 60000 * round};
        eddy_statedb_batch_set_changelog_pos(sorted, sorted_db, 1, 2, &pos);
        assert_int_equal(eddy_statedb_batch_count(sorted), n + 1);
        assert_int_equal(eddy_statedb_write(plain_db, plain, false, errstr, sizeof(errstr)),
                         EDDY_OK);
        assert_int_equal(eddy_statedb_write(sorted_db, sorted, false, errstr, sizeof(errstr)),
                         EDDY_OK);
        eddy_statedb_batch_clear(plain);
        eddy_statedb_batch_clear(sorted);
        assert_int_equal(eddy_statedb_batch_count(sorted), 0);
        for (int store = 0; store < 2; store++) {
            digest_t a = digest_store(plain_db, store), b = digest_store(sorted_db, store);
            assert_true(a.n > 0);
            assert_int_equal(a.n, b.n);
            assert_true(a.hash == b.hash);
        }
        eddy_changelog_pos_t got;
        bool found = false;
        assert_int_equal(
            eddy_statedb_get_changelog_pos(sorted_db, 1, 2, &got, &found, errstr, sizeof(errstr)),
            EDDY_OK);
        assert_true(found && got.next_offset == pos.next_offset);
    }
    /* A write of an empty sorted batch is a no-op. */
    assert_int_equal(eddy_statedb_write(sorted_db, sorted, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_batch_destroy(plain);
    eddy_statedb_batch_destroy(sorted);
    eddy_statedb_close(plain_db);
    eddy_statedb_close(sorted_db);
    eddy_test_rmtree(dir_a);
    eddy_test_rmtree(dir_b);
}

/* --- scans ------------------------------------------------------------------------ */

static void test_scan_ranges(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    /* Tasks 0, 3 and 7 (gaps in between), windows -60000 .. 120000. */
    const int32_t tasks[] = {7, 0, 3};
    for (size_t t = 0; t < 3; t++)
        for (int64_t s = -60000; s <= 120000; s += 60000) {
            char v[32];
            snprintf(v, sizeof(v), "%d/%lld", tasks[t], (long long)s);
            put1(db, 0, tasks[t], s, "a", v);
            put1(db, 0, tasks[t], s, "b", v);
        }
    put1(db, 1, 3, 0, "other", "store");

    /* One task, [from, to): the end is exclusive, the start inclusive. */
    assert_string_equal(scan_str(db, 0, 3, 0, 120000), "3:0:a=3/0;3:0:b=3/0;3:60000:a=3/60000;"
                                                       "3:60000:b=3/60000;");
    assert_string_equal(scan_str(db, 0, 3, -60000, -59999), "3:-60000:a=3/-60000;"
                                                            "3:-60000:b=3/-60000;");
    assert_string_equal(scan_str(db, 0, 3, 1, 60000), "");
    assert_string_equal(scan_str(db, 0, 3, 120001, INT64_MAX), "");
    assert_string_equal(scan_str(db, 0, 5, INT64_MIN, INT64_MAX), ""); /* no such task */
    assert_string_equal(scan_str(db, 0, 3, 60000, 60000), "");         /* empty range */
    assert_string_equal(scan_str(db, 0, 3, 60000, 0), "");             /* reversed */
    assert_string_equal(scan_str(db, 1, 3, INT64_MIN, INT64_MAX), "3:0:other=store;");

    /* Every task: task order, then time, then key; out-of-range windows of
     * each task are skipped. */
    assert_string_equal(scan_str(db, 0, -1, 60000, 120000),
                        "0:60000:a=0/60000;0:60000:b=0/60000;3:60000:a=3/60000;"
                        "3:60000:b=3/60000;7:60000:a=7/60000;7:60000:b=7/60000;");
    collect_t c = {.stop_after = 0};
    assert_int_equal(
        eddy_statedb_scan(db, 0, -1, INT64_MIN, INT64_MAX, collect, &c, errstr, sizeof(errstr)),
        EDDY_OK);
    assert_int_equal(c.n, 3 * 4 * 2);

    /* The callback stops the scan. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    assert_int_equal(
        eddy_statedb_scan(db, 0, -1, INT64_MIN, INT64_MAX, collect, &c, errstr, sizeof(errstr)),
        EDDY_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.text, "0:-60000:a=0/-60000;0:-60000:b=0/-60000;0:0:a=0/0;");

    /* The largest task id is a task like any other. */
    put1(db, 0, INT32_MAX, 0, "z", "max");
    assert_string_equal(scan_str(db, 0, -1, 0, 1),
                        "0:0:a=0/0;0:0:b=0/0;3:0:a=3/0;3:0:b=3/0;7:0:a=7/0;7:0:b=7/0;"
                        "2147483647:0:z=max;");
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/* --- atomic commits and durability ------------------------------------------------ */

static void test_commit_atomic_and_reopen(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    eddy_checkpoint_t cp = {0};
    bool found = true;
    eddy_changelog_pos_t pos = {0};
    assert_int_equal(eddy_statedb_get_checkpoint(db, 2, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(found);

    /* State of two stores, the checkpoint and a changelog offset in one batch:
     * nothing is visible before the write, everything after. */
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    eddy_statedb_batch_put(batch, db, 0, 2, 60000, "a", 1, "1", 1);
    eddy_statedb_batch_put(batch, db, 1, 2, 60000, "a", 1, "s", 1);
    eddy_statedb_batch_set_checkpoint(
        batch, db, 2, &(eddy_checkpoint_t){.input_offset = 1234, .stream_time = -5});
    eddy_statedb_batch_set_changelog_pos(
        batch, db, 1, 2,
        &(eddy_changelog_pos_t){.next_offset = 77, .input_offset = 5, .stream_time = -7});
    assert_string_equal(get_str(db, 0, 2, 60000, "a"), "");
    assert_int_equal(eddy_statedb_get_checkpoint(db, 2, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(found);
    /* sync=false: the WAL is written but not fsynced. A closed or killed
     * process loses nothing (the OS has the WAL pages); only a machine crash
     * could lose this last batch, whole. */
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    assert_string_equal(get_str(db, 0, 2, 60000, "a"), "1");
    assert_string_equal(get_str(db, 1, 2, 60000, "a"), "s");
    assert_int_equal(eddy_statedb_get_checkpoint(db, 2, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found);
    assert_true(cp.input_offset == 1234 && cp.stream_time == -5);
    assert_int_equal(eddy_statedb_get_changelog_pos(db, 1, 2, &pos, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && pos.next_offset == 77 && pos.input_offset == 5 && pos.stream_time == -7);
    assert_int_equal(eddy_statedb_get_changelog_pos(db, 0, 2, &pos, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(found); /* per store */
    eddy_statedb_batch_destroy(batch);
    eddy_statedb_close(db);

    /* After close (no flush; the WAL is replayed) everything is there. */
    db = open_ok(dir, two_stores, 2);
    assert_string_equal(get_str(db, 0, 2, 60000, "a"), "1");
    assert_string_equal(get_str(db, 1, 2, 60000, "a"), "s");
    assert_int_equal(eddy_statedb_get_checkpoint(db, 2, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && cp.input_offset == 1234 && cp.stream_time == -5);
    assert_int_equal(eddy_statedb_get_changelog_pos(db, 1, 2, &pos, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && pos.next_offset == 77 && pos.input_offset == 5 && pos.stream_time == -7);
    /* An empty batch is a no-op. */
    batch = eddy_statedb_batch_new();
    assert_int_equal(eddy_statedb_write(db, batch, true, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_batch_destroy(batch);
    assert_int_equal(eddy_statedb_flush(db, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_close(db);
    db = open_ok(dir, two_stores, 2);
    assert_string_equal(get_str(db, 1, 2, 60000, "a"), "s");
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/*
 * A child commits batch after batch with sync=false and is killed with SIGKILL
 * at a random moment; then it starts again from its checkpoint, as a restarted
 * task would. Batch i writes window i of task 0 (keys a and c in one store, b
 * in the other) and the checkpoint i + 1. Whatever survives must be whole
 * batches that agree with the checkpoint: exactly windows 0 .. checkpoint-1.
 * This relies on the WAL: every write is in the OS's page cache when it
 * returns, so a dead process loses nothing (only a machine crash could).
 *
 * The child is this binary started afresh (main, "--commit-forever DIR"): a
 * forked copy of a process that already ran RocksDB would inherit its
 * background thread pool without the threads, and stall at the first flush.
 * It writes one byte to stdout once it has committed 100 batches, so that the
 * kill lands mid-stream however slow the machine (or the sanitizer) is.
 */
static int commit_forever(const char *dir)
{
    char errstr[512];
    eddy_statedb_t *db = eddy_statedb_open(dir, two_stores, 2, errstr, sizeof(errstr));
    if (!db) {
        fprintf(stderr, "commit_forever: %s\n", errstr);
        return 2;
    }
    eddy_checkpoint_t cp = {0};
    bool found = false;
    if (eddy_statedb_get_checkpoint(db, 0, &cp, &found, errstr, sizeof(errstr)))
        return 3;
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    static char v[4096];
    memset(v, 'v', sizeof(v));
    int written = 0;
    for (int64_t i = found ? cp.input_offset : 0;; i++) {
        eddy_statedb_batch_clear(batch);
        eddy_statedb_batch_put(batch, db, 0, 0, i, "a", 1, v, sizeof(v));
        eddy_statedb_batch_put(batch, db, 1, 0, i, "b", 1, v, sizeof(v));
        eddy_statedb_batch_put(batch, db, 0, 0, i, "c", 1, v, sizeof(v));
        eddy_statedb_batch_set_checkpoint(batch, db, 0,
                                          &(eddy_checkpoint_t){.input_offset = i + 1});
        if (eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)))
            return 4;
        if (++written == 100 && (write(1, "!", 1) != 1 || close(1) != 0))
            return 5;
    }
}

/* Runs this test binary with `arg` `dir` in a new process; returns its pid.
 * With `out`, the child's stdout is a pipe whose read end goes to *out. */
static pid_t spawn_self(const char *arg, const char *dir, int *out)
{
    int fds[2] = {-1, -1};
    if (out)
        assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (out && dup2(fds[1], 1) < 0)
            _exit(126);
        execl("/proc/self/exe", "test_statedb", arg, dir, (char *)NULL);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        *out = fds[0];
    }
    return pid;
}

static int count_entries(int32_t task, int64_t start, const char *key, size_t key_len,
                         const void *value, size_t value_len, void *opaque)
{
    (*(int64_t *)opaque)++;
    return 0;
}

static int64_t count(eddy_statedb_t *db, int store, int32_t task, int64_t from, int64_t to)
{
    char errstr[256];
    int64_t n = 0;
    assert_int_equal(
        eddy_statedb_scan(db, store, task, from, to, count_entries, &n, errstr, sizeof(errstr)),
        EDDY_OK);
    return n;
}

static void test_kill_9_keeps_whole_batches(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    int64_t last = 0;
    for (int round = 0; round < 3; round++) {
        int ready = -1;
        char byte = 0;
        pid_t pid = spawn_self("--commit-forever", dir, &ready);
        ssize_t got = read(ready, &byte, 1); /* 100 batches committed (0: it failed) */
        close(ready);
        struct timespec ts = {0, (10 + 40 * round) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(got, 1);

        eddy_statedb_t *db = open_ok(dir, two_stores, 2);
        eddy_checkpoint_t cp;
        bool found = false;
        assert_int_equal(eddy_statedb_get_checkpoint(db, 0, &cp, &found, errstr, sizeof(errstr)),
                         EDDY_OK);
        int64_t n = found ? cp.input_offset : 0;
        assert_true(n >= last + 100);
        assert_int_equal(count(db, 0, 0, 0, n), 2 * n);
        assert_int_equal(count(db, 1, 0, 0, n), n);
        assert_int_equal(count(db, 0, 0, n, INT64_MAX), 0);
        assert_int_equal(count(db, 1, 0, n, INT64_MAX), 0);
        last = n;
        eddy_statedb_close(db);
    }
    eddy_test_rmtree(dir);
}

/* --- retention and dropping tasks ------------------------------------------------- */

static void fill(eddy_statedb_t *db, int store, int32_t task, int64_t from, int64_t to,
                 int64_t step)
{
    char errstr[256];
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    for (int64_t s = from; s < to; s += step) {
        eddy_statedb_batch_put(batch, db, store, task, s, "k1", 2, "v", 1);
        eddy_statedb_batch_put(batch, db, store, task, s, "k2", 2, "v", 1);
    }
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_batch_destroy(batch);
}

static void test_delete_windows_before(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    for (int32_t task = 0; task < 3; task++) {
        fill(db, 0, task, -3000, 3000, 1000);
        fill(db, 1, task, -3000, 3000, 1000);
    }
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    eddy_statedb_batch_delete_windows_before(batch, db, 0, 1, INT64_MIN); /* no-op */
    assert_int_equal(eddy_statedb_batch_count(batch), 0);
    eddy_statedb_batch_delete_windows_before(batch, db, 0, 1, 1000);
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    /* Task 1 of store 0 keeps exactly the windows starting at or after 1000. */
    assert_int_equal(count(db, 0, 1, INT64_MIN, 1000), 0);
    assert_int_equal(count(db, 0, 1, 1000, INT64_MAX), 2 * 2);
    assert_string_equal(scan_str(db, 0, 1, INT64_MIN, INT64_MAX),
                        "1:1000:k1=v;1:1000:k2=v;1:2000:k1=v;1:2000:k2=v;");
    /* Other tasks, and the same task in the other store, are untouched. */
    assert_int_equal(count(db, 0, 0, INT64_MIN, INT64_MAX), 6 * 2);
    assert_int_equal(count(db, 0, 2, INT64_MIN, INT64_MAX), 6 * 2);
    assert_int_equal(count(db, 1, 1, INT64_MIN, INT64_MAX), 6 * 2);
    /* Windows written after the delete are not affected by it. */
    put1(db, 0, 1, -5000, "late", "x");
    assert_string_equal(get_str(db, 0, 1, -5000, "late"), "x");
    /* Everything of the task, to the end of time. */
    eddy_statedb_batch_clear(batch);
    eddy_statedb_batch_delete_windows_before(batch, db, 0, 1, INT64_MAX);
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    assert_int_equal(count(db, 0, 1, INT64_MIN, INT64_MAX), 0);
    assert_int_equal(count(db, 0, -1, INT64_MIN, INT64_MAX), 2 * 6 * 2);
    eddy_statedb_batch_destroy(batch);
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

static void test_drop_task(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    const char *const three[] = {"counts", "stats", "extra"};
    eddy_statedb_t *db = open_ok(dir, three, 3);
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    for (int32_t task = 1; task <= 2; task++) {
        for (int store = 0; store < 3; store++) {
            fill(db, store, task, INT64_MIN, INT64_MIN + 2, 1);
            fill(db, store, task, INT64_MAX - 1, INT64_MAX, 1);
            eddy_statedb_batch_set_changelog_pos(batch, db, store, task,
                                                 &(eddy_changelog_pos_t){.next_offset = 10 * task,
                                                                         .input_offset = 5,
                                                                         .stream_time = -7});
        }
        eddy_statedb_batch_set_checkpoint(batch, db, task,
                                          &(eddy_checkpoint_t){.input_offset = task});
    }
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_close(db);

    /* Reopen without "extra": its column family is kept, unused, but dropping
     * a task still clears the task there too. */
    db = open_ok(dir, two_stores, 2);
    assert_int_equal(eddy_statedb_store_index(db, "extra"), -1);
    eddy_statedb_batch_clear(batch);
    eddy_statedb_batch_drop_task(batch, db, 1);
    assert_int_equal(eddy_statedb_write(db, batch, true, errstr, sizeof(errstr)), EDDY_OK);
    eddy_checkpoint_t cp;
    bool found = true;
    eddy_changelog_pos_t pos = {0};
    for (int store = 0; store < 2; store++) {
        assert_int_equal(count(db, store, 1, INT64_MIN, INT64_MAX), 0);
        assert_int_equal(count(db, store, 2, INT64_MIN, INT64_MAX), 3 * 2);
        assert_int_equal(
            eddy_statedb_get_changelog_pos(db, store, 1, &pos, &found, errstr, sizeof(errstr)),
            EDDY_OK);
        assert_false(found);
        assert_int_equal(
            eddy_statedb_get_changelog_pos(db, store, 2, &pos, &found, errstr, sizeof(errstr)),
            EDDY_OK);
        assert_true(found && pos.next_offset == 20);
    }
    assert_int_equal(eddy_statedb_get_checkpoint(db, 1, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(found);
    assert_int_equal(eddy_statedb_get_checkpoint(db, 2, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && cp.input_offset == 2);
    eddy_statedb_close(db);

    db = open_ok(dir, three, 3);
    assert_int_equal(count(db, 2, 1, INT64_MIN, INT64_MAX), 0);
    assert_int_equal(count(db, 2, 2, INT64_MIN, INT64_MAX), 3 * 2);
    assert_int_equal(eddy_statedb_get_changelog_pos(db, 2, 1, &pos, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(found);
    eddy_statedb_close(db);
    eddy_statedb_batch_destroy(batch);
    eddy_test_rmtree(dir);
}

/* --- opening ---------------------------------------------------------------------- */

static void test_reopen_adds_store(void **state)
{
    (void)state;
    char dir[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    const char *const a[] = {"a"};
    const char *const ba[] = {"b", "a"};
    const char *const b[] = {"b"};
    eddy_statedb_t *db = open_ok(dir, a, 1);
    put1(db, 0, 0, 0, "k", "in a");
    eddy_statedb_close(db);

    db = open_ok(dir, ba, 2); /* a new store, and a different order */
    assert_int_equal(eddy_statedb_store_index(db, "b"), 0);
    assert_int_equal(eddy_statedb_store_index(db, "a"), 1);
    assert_string_equal(get_str(db, 1, 0, 0, "k"), "in a");
    assert_string_equal(get_str(db, 0, 0, 0, "k"), "");
    put1(db, 0, 0, 0, "k", "in b");
    eddy_statedb_close(db);

    db = open_ok(dir, b, 1); /* a no longer declared: kept */
    assert_string_equal(get_str(db, 0, 0, 0, "k"), "in b");
    eddy_statedb_close(db);
    db = open_ok(dir, a, 1);
    assert_string_equal(get_str(db, 0, 0, 0, "k"), "in a");
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

static void test_locked_dir(void **state)
{
    (void)state;
    char dir[256], errstr[512];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);

    /* Another process. */
    pid_t pid = spawn_self("--expect-locked", dir, NULL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The same process, a second time. */
    errstr[0] = '\0';
    assert_null(eddy_statedb_open(dir, two_stores, 2, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, dir));
    assert_non_null(strstr(errstr, "is in use by another eddy process (RocksDB LOCK)"));

    eddy_statedb_close(db);
    db = open_ok(dir, two_stores, 2); /* free again */
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/* Writes raw bytes into the metadata column family, as another program could. */
static void raw_meta_put(const char *dir, const char *k, size_t klen, const char *v, size_t vlen)
{
    char *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[] = {"default", "eddy_meta"};
    const rocksdb_options_t *cf_opts[] = {o, o};
    rocksdb_column_family_handle_t *cf[2];
    rocksdb_t *rdb = rocksdb_open_column_families(o, dir, 2, names, cf_opts, cf, &err);
    if (err)
        fail_msg("raw open: %s", err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(rdb, wo, cf[1], k, klen, v, vlen, &err);
    assert_null(err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_column_family_handle_destroy(cf[0]);
    rocksdb_column_family_handle_destroy(cf[1]);
    rocksdb_close(rdb);
    rocksdb_options_destroy(o);
}

static void test_formats(void **state)
{
    (void)state;
    char dir[256], errstr[512];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_close(open_ok(dir, NULL, 0)); /* zero stores: metadata only */

    /* A checkpoint in a format this eddy does not know is an error, not a guess. */
    raw_meta_put(dir, "\0\0\0\5", 4, "\x09garbage", 8);
    eddy_statedb_t *db = open_ok(dir, NULL, 0);
    eddy_checkpoint_t cp;
    bool found = true;
    errstr[0] = '\0';
    assert_int_equal(eddy_statedb_get_checkpoint(db, 5, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_ERR_STORE);
    assert_false(found);
    assert_non_null(strstr(errstr, "checkpoint of task 5"));
    assert_non_null(strstr(errstr, "unknown format"));
    eddy_statedb_close(db);

    /* A state dir of another layout version is refused at open. */
    raw_meta_put(dir, "\377format", 7, "\0\0\0\x63", 4);
    errstr[0] = '\0';
    assert_null(eddy_statedb_open(dir, two_stores, 2, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "format 99"));
    assert_non_null(strstr(errstr, "wipe"));
    eddy_test_rmtree(dir);
}

static void test_open_errors(void **state)
{
    (void)state;
    char dir[256], path[512], errstr[512];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_close(NULL);
    eddy_statedb_batch_destroy(NULL);

    const char *const dup[] = {"a", "b", "a"};
    assert_null(eddy_statedb_open(dir, dup, 3, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "\"a\" is declared twice"));
    const char *const reserved[] = {"eddy_meta"};
    assert_null(eddy_statedb_open(dir, reserved, 1, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "reserved"));
    const char *const dflt[] = {"default"};
    assert_null(eddy_statedb_open(dir, dflt, 1, errstr, sizeof(errstr)));
    const char *const empty[] = {""};
    assert_null(eddy_statedb_open(dir, empty, 1, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "empty name"));

    /* mkdir -p */
    snprintf(path, sizeof(path), "%s/x/y/z", dir);
    eddy_statedb_t *db = open_ok(path, two_stores, 2);
    eddy_statedb_close(db);
    struct stat st;
    snprintf(path, sizeof(path), "%s/x/y/z/CURRENT", dir);
    assert_int_equal(stat(path, &st), 0);

    /* A file in the way. */
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/state", dir);
    errstr[0] = '\0';
    assert_null(eddy_statedb_open(path, two_stores, 2, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "cannot create state dir"));
    eddy_test_rmtree(dir);
}

/* --- concurrency ------------------------------------------------------------------ */

/*
 * A writer thread commits generation g = 1, 2, ...: every one of KEYS keys of
 * tasks 0 and 1 gets the value g, and the checkpoint of task 0 becomes g, in
 * one batch. Readers meanwhile must never see two generations in one scan,
 * and never go back in time.
 */
#define KEYS 64

typedef struct race_s {
    eddy_statedb_t *db;   /* shared by both threads */
    atomic_int stop;      /* set by the reader when done */
    atomic_llong written; /* last generation written */
    char error[256];      /* the writer's failure, "" if none */
} race_t;

/* cmocka's asserts must stay on the main thread: failures are reported in race. */
static void *writer_main(void *arg)
{
    race_t *race = arg;
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    for (int64_t g = 1; !atomic_load(&race->stop); g++) {
        eddy_statedb_batch_clear(batch);
        for (int32_t task = 0; task < 2; task++)
            for (int i = 0; i < KEYS; i++) {
                char key[16];
                int klen = snprintf(key, sizeof(key), "key%03d", i);
                eddy_statedb_batch_put(batch, race->db, 0, task, 60000 * (i % 4), key, (size_t)klen,
                                       &g, sizeof(g));
            }
        eddy_statedb_batch_set_checkpoint(batch, race->db, 0,
                                          &(eddy_checkpoint_t){.input_offset = g});
        if (g % 50 == 0) /* and some retention churn on an unrelated task */
            eddy_statedb_batch_delete_windows_before(batch, race->db, 0, 2, g);
        if (eddy_statedb_write(race->db, batch, false, race->error, sizeof(race->error)))
            break;
        atomic_store(&race->written, g);
    }
    eddy_statedb_batch_destroy(batch);
    return NULL;
}

typedef struct seen_s {
    int64_t gen; /* generation of the first entry, -1: none yet */
    int n;       /* entries */
    bool mixed;  /* a different generation seen */
} seen_t;

static int check_gen(int32_t task, int64_t start, const char *key, size_t key_len,
                     const void *value, size_t value_len, void *opaque)
{
    seen_t *seen = opaque;
    int64_t g;
    if (value_len != sizeof(g)) {
        seen->mixed = true;
        return 1;
    }
    memcpy(&g, value, sizeof(g));
    if (seen->gen < 0)
        seen->gen = g;
    else if (g != seen->gen)
        seen->mixed = true;
    seen->n++;
    return 0;
}

/* One round of reads; returns what was wrong, or NULL. *last: newest generation seen. */
static const char *read_round(eddy_statedb_t *db, int64_t *last)
{
    char errstr[256];
    seen_t all = {.gen = -1}, one = {.gen = -1};
    if (eddy_statedb_scan(db, 0, -1, INT64_MIN, INT64_MAX, check_gen, &all, errstr, sizeof(errstr)))
        return "scan of every task failed";
    if (all.mixed || (all.n != 0 && all.n != 2 * KEYS))
        return "a scan of every task saw part of a batch";
    if (all.gen >= 0 && all.gen < *last)
        return "a scan went back in time";
    if (all.gen > 0)
        *last = all.gen;
    /* A single task's scan, and a point read, from the same moment on. */
    if (eddy_statedb_scan(db, 0, 1, 0, 120000, check_gen, &one, errstr, sizeof(errstr)))
        return "scan of one task failed";
    if (one.mixed || (one.n != 0 && one.n != KEYS / 2)) /* windows 0 and 60000 */
        return "a scan of one task saw part of a batch";
    if (one.gen >= 0 && one.gen < *last)
        return "a scan of one task went back in time";
    eddy_checkpoint_t cp;
    bool found;
    if (eddy_statedb_get_checkpoint(db, 0, &cp, &found, errstr, sizeof(errstr)))
        return "reading the checkpoint failed";
    if (found && cp.input_offset < *last)
        return "the checkpoint is behind the state";
    return NULL;
}

static void test_scan_during_writes(void **state)
{
    (void)state;
    char dir[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    race_t race = {.db = open_ok(dir, two_stores, 2)};
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, writer_main, &race), 0);

    int64_t last = 0;
    int rounds = 0;
    const char *bad = NULL;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        bad = read_round(race.db, &last);
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!bad && !race.error[0] &&
             ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < 700 ||
              atomic_load(&race.written) < 10));
    atomic_store(&race.stop, 1);
    pthread_join(writer, NULL);
    eddy_statedb_close(race.db);
    eddy_test_rmtree(dir);
    if (bad)
        fail_msg("%s (round %d, generation %lld)", bad, rounds, (long long)last);
    if (race.error[0])
        fail_msg("writer: %s", race.error);
    assert_true(rounds > 10);
    assert_true(last > 1);
}

/* --- stats ------------------------------------------------------------------------ */

static void test_stats(void **state)
{
    (void)state;
    char dir[256], errstr[256];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    uint64_t keys = 1, sst = 1;
    eddy_statedb_store_stats(db, 0, &keys, &sst);
    assert_int_equal(keys, 0);
    assert_int_equal(sst, 0);

    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    for (int i = 0; i < 1000; i++) {
        char key[16];
        int klen = snprintf(key, sizeof(key), "k%d", i);
        eddy_statedb_batch_put(batch, db, 0, i % 4, 60000, key, (size_t)klen, "value", 5);
    }
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_store_stats(db, 0, &keys, &sst);
    assert_true(keys >= 900 && keys <= 1100); /* counted in the memtable */
    assert_int_equal(sst, 0);

    assert_int_equal(eddy_statedb_flush(db, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_store_stats(db, 0, &keys, &sst);
    assert_true(keys >= 900 && keys <= 1100);
    assert_true(sst > 1000 && sst < 1000000);
    eddy_statedb_store_stats(db, 1, &keys, &sst); /* the other store is still empty */
    assert_int_equal(keys, 0);
    assert_int_equal(sst, 0);
    eddy_statedb_batch_destroy(batch);
    eddy_statedb_close(db);
    eddy_test_rmtree(dir);
}

/* --- damage --------------------------------------------------------------------- */

/* Flips the first 64 bytes (the first data block) of every SST file of dir but
 * eddy_meta's; returns how many files. */
static int damage_store_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int damaged = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sst"))
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
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

static int count_sst(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".sst");
    }
    closedir(d);
    return n;
}

/* A state dir with 100 windows of store 0 and a checkpoint, all in SST files. */
static void make_state(const char *dir)
{
    char errstr[256];
    eddy_statedb_t *db = open_ok(dir, two_stores, 2);
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    for (int i = 0; i < 100; i++) {
        char key[16];
        int klen = snprintf(key, sizeof(key), "k%03d", i);
        eddy_statedb_batch_put(batch, db, 0, 1, 60000, key, (size_t)klen, "value", 5);
    }
    eddy_statedb_batch_set_checkpoint(batch, db, 1, &(eddy_checkpoint_t){.input_offset = 100});
    assert_int_equal(eddy_statedb_write(db, batch, false, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_batch_destroy(batch);
    assert_int_equal(eddy_statedb_flush(db, errstr, sizeof(errstr)), EDDY_OK);
    eddy_statedb_close(db);
}

static eddy_err_t open_why(const char *dir, bool verify, char *errstr, size_t errstr_size)
{
    eddy_err_t why = EDDY_OK;
    const eddy_statedb_open_opts_t opts = {.verify = verify};
    eddy_statedb_t *db =
        eddy_statedb_open_with(dir, two_stores, 2, &opts, &why, errstr, errstr_size);
    if (db) {
        assert_int_equal(why, EDDY_OK);
        eddy_statedb_close(db);
    }
    return why;
}

/* A flipped data block: reads of it fail as damage and mark the handle; other
 * reads go on; the verification at open finds it before any read. */
static void test_damage_found_by_reads(void **state)
{
    (void)state;
    char dir[256], errstr[512];
    eddy_test_mkdtemp("statedb", dir, sizeof(dir));
    make_state(dir);
    assert_int_equal(open_why(dir, true, errstr, sizeof(errstr)), EDDY_OK); /* healthy */
    assert_int_equal(damage_store_files(dir), 1);

    eddy_statedb_t *db = open_ok(dir, two_stores, 2); /* no verification: opens */
    assert_false(eddy_statedb_damaged(db));
    eddy_statedb_damage(db, errstr, sizeof(errstr));
    assert_string_equal(errstr, "");
    eddy_checkpoint_t cp;
    bool found = false;
    assert_int_equal(eddy_statedb_get_checkpoint(db, 1, &cp, &found, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(found && cp.input_offset == 100);
    assert_false(eddy_statedb_damaged(db));
    char buf[64];
    size_t len = 0;
    assert_int_equal(eddy_statedb_get(db, 0, 1, 60000, "k007", 4, buf, sizeof(buf), &len, &found,
                                      errstr, sizeof(errstr)),
                     EDDY_ERR_CORRUPT);
    assert_false(found);
    assert_non_null(strstr(errstr, "Corruption"));
    assert_true(eddy_statedb_damaged(db));
    char why[512];
    eddy_statedb_damage(db, why, sizeof(why));
    assert_string_equal(why, errstr);
    collect_t c = {0};
    assert_int_equal(
        eddy_statedb_scan(db, 0, -1, INT64_MIN, INT64_MAX, collect, &c, errstr, sizeof(errstr)),
        EDDY_ERR_CORRUPT);
    assert_int_equal(eddy_statedb_verify(db, NULL, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
    eddy_statedb_damage(db, errstr, sizeof(errstr));
    assert_string_equal(errstr, why); /* the first damage found is the one kept */
    eddy_statedb_close(db);

    assert_int_equal(open_why(dir, true, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
    assert_non_null(strstr(errstr, "verifying the state in"));
    assert_non_null(strstr(errstr, "block checksum mismatch"));
    eddy_test_rmtree(dir);
}

/* The current MANIFEST of dir. */
static void manifest_of(const char *dir, char *out, size_t size)
{
    char path[512], name[64] = "";
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(name, sizeof(name), f));
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    snprintf(out, size, "%s/%s", dir, name);
}

/* Where each record of a MANIFEST (RocksDB's log framing: 32 KiB blocks of
 * 7-byte headers, CRC, u16 LE length, type, and payloads) starts; returns how many. */
static int manifest_records(const char *path, long *starts, long *lens, int max)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char b[1 << 20];
    long size = (long)fread(b, 1, sizeof(b), f), pos = 0;
    fclose(f);
    int n = 0;
    while (pos + 7 <= size && n < max) {
        if (32768 - pos % 32768 < 7) {
            pos += 32768 - pos % 32768;
            continue;
        }
        starts[n] = pos;
        lens[n] = 7 + (b[pos + 4] | (long)b[pos + 5] << 8);
        pos += lens[n++];
    }
    assert_int_equal(pos, size); /* a MANIFEST RocksDB wrote ends at a record's end */
    return n;
}

/* What RocksDB refuses or would silently undo is damage, found before it opens. */
static void test_damaged_dir_at_open(void **state)
{
    (void)state;
    char base[256], dir[300], path[600], errstr[512];
    eddy_test_mkdtemp("statedb", base, sizeof(base));

    /* CURRENT with a flipped byte, or naming a MANIFEST that is not there. */
    snprintf(dir, sizeof(dir), "%s/current", base);
    make_state(dir);
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    FILE *f = fopen(path, "w");
    fputs("MANIFEST-0000x9\n", f);
    fclose(f);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
    f = fopen(path, "w");
    fputs("MANIFEST-999999\n", f);
    fclose(f);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
    assert_non_null(strstr(errstr, "No such file or directory"));

    /* A MANIFEST cut inside a record — at the end of its first record's header,
     * in the middle of its last record. RocksDB would open the version before
     * the cut and delete the SST files only later records named. */
    for (int where = 0; where < 2; where++) {
        snprintf(dir, sizeof(dir), "%s/manifest%d", base, where);
        make_state(dir);
        char manifest[600];
        manifest_of(dir, manifest, sizeof(manifest));
        long starts[4096], lens[4096];
        int n = manifest_records(manifest, starts, lens, 4096);
        assert_true(n >= 2);
        long cut = where == 0 ? starts[0] + 6 : starts[n - 1] + lens[n - 1] / 2;
        int ssts = count_sst(dir);
        assert_int_equal(truncate(manifest, cut), 0);
        assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
        assert_non_null(strstr(errstr, "its last record is cut off"));
        assert_int_equal(count_sst(dir), ssts); /* nothing deleted */
        if (where == 1) {
            /* Cut at a record boundary it is a shorter MANIFEST, which no check can
             * tell: RocksDB opens it (as the version before that record). */
            assert_int_equal(truncate(manifest, starts[n - 1]), 0);
            if (open_why(dir, false, errstr, sizeof(errstr)) != EDDY_OK)
                fail_msg("%s", errstr);
        }
    }

    /* An empty MANIFEST, and none at all. */
    snprintf(dir, sizeof(dir), "%s/empty", base);
    make_state(dir);
    manifest_of(dir, path, sizeof(path));
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);

    /* A deleted SST file. */
    snprintf(dir, sizeof(dir), "%s/sst", base);
    make_state(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".sst")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            assert_int_equal(unlink(path), 0);
            break;
        }
    closedir(d);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_CORRUPT);

    /* Not damage: another process holds it (test_locked_dir), another format
     * (test_formats); and a file where the dir should be is an error of its own. */
    snprintf(path, sizeof(path), "%s/file", base);
    f = fopen(path, "w");
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/file/state", base);
    assert_int_equal(open_why(dir, false, errstr, sizeof(errstr)), EDDY_ERR_IO);
    eddy_test_rmtree(base);
}

static void test_move_aside(void **state)
{
    (void)state;
    char base[256], dir[300], moved[2][400], path[900], errstr[512];
    eddy_test_mkdtemp("statedb", base, sizeof(base));
    snprintf(dir, sizeof(dir), "%s/app", base);
    for (int i = 0; i < 2; i++) {
        make_state(dir);
        assert_int_equal(
            eddy_statedb_move_aside(dir, moved[i], sizeof(moved[i]), errstr, sizeof(errstr)),
            EDDY_OK);
        struct stat st;
        assert_int_equal(stat(dir, &st), -1); /* gone from its place */
        snprintf(path, sizeof(path), "%s/CURRENT", moved[i]);
        assert_int_equal(stat(path, &st), 0); /* whole in the new one */
        /* <dir>.damaged-YYYYMMDDTHHMMSSZ, then -2, ... within the same second */
        assert_memory_equal(moved[i], dir, strlen(dir));
        const char *stamp = moved[i] + strlen(dir);
        assert_int_equal(strncmp(stamp, ".damaged-", 9), 0);
        assert_true(strlen(stamp) >= 9 + 16 && stamp[9 + 8] == 'T' && stamp[9 + 15] == 'Z');
    }
    assert_string_not_equal(moved[0], moved[1]);
    assert_int_equal(
        eddy_statedb_move_aside(dir, moved[0], sizeof(moved[0]), errstr, sizeof(errstr)),
        EDDY_ERR_NOTFOUND);
    eddy_test_rmtree(base);
}

/* TSan reads this before main, so that `make tsan` needs no option: RocksDB is
 * not TSan-instrumented (tests/tsan.supp says why; other binaries use that file). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:librocksdb.so\n";
}

/* The second process of test_locked_dir. */
static int expect_locked(const char *dir)
{
    char errstr[512] = "";
    eddy_statedb_t *db = eddy_statedb_open(dir, two_stores, 2, errstr, sizeof(errstr));
    if (db || !strstr(errstr, "is in use by another eddy process (RocksDB LOCK)")) {
        fprintf(stderr, "expect_locked: opened=%d, \"%s\"\n", db != NULL, errstr);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--commit-forever"))
        return commit_forever(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--expect-locked"))
        return expect_locked(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_put_get_delete),
        cmocka_unit_test(test_sorted_batch),
        cmocka_unit_test(test_scan_ranges),
        cmocka_unit_test(test_commit_atomic_and_reopen),
        cmocka_unit_test(test_kill_9_keeps_whole_batches),
        cmocka_unit_test(test_delete_windows_before),
        cmocka_unit_test(test_drop_task),
        cmocka_unit_test(test_reopen_adds_store),
        cmocka_unit_test(test_locked_dir),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_scan_during_writes),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_damage_found_by_reads),
        cmocka_unit_test(test_damaged_dir_at_open),
        cmocka_unit_test(test_move_aside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
