/*
 * test_corruption.c — damaged local state, against a live `eddy run` on the
 * embedded broker. Local state is a cache of the changelogs, so damaged state
 * must be detected, moved aside (never deleted) beside a fresh state dir,
 * counted (eddy_state_damaged_total, /api/health "local_state") and rebuilt
 * from the changelogs, every window of every store then equal to the
 * reference recomputed from the input topic (tests/support/reference.c):
 *
 *   1. a flipped block in an SST file, found at startup (state.verify.on.open);
 *   2. a CURRENT file with a flipped byte;
 *   3. a MANIFEST truncated inside a record (RocksDB alone would open an older
 *      version and delete the SST files the lost records named);
 *   4. damage found while running, by processing: every data block of the
 *      stores' SST files flipped, no verification at open, input into windows
 *      that are in those blocks — no window starts afresh, the records are
 *      processed again after the reset (exact: nothing lost, none twice);
 *   5. the same found by queries while running: they answer 503, never 500,
 *      until the state is back;
 *   6. state.corruption.action=fail: eddy exits non-zero naming the dir and
 *      leaves it where it was, at startup and while running.
 *
 * Each case processes the input, stops eddy cleanly (which flushes RocksDB's
 * memtables: SST files, no WAL to replay), damages the state dir and starts
 * eddy again.
 */
#define _GNU_SOURCE /* memmem */
#include "eddy_proc.h"
#include "http_client.h"
#include "reference.h"
#include "test_support.h"
#include "topic_reader.h"
#include "window_check.h"

#include "engine/broker.h"
#include "producer/gen.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0         1700000000000LL
#define PARTITIONS 12
#define EVENTS     30000

static const char *const apps[] = {"sst", "current", "manifest", "running", "queried", "fail"};

typedef struct fixture_s {
    eddy_broker_t *broker;
    char dir[256]; /* everything of the test */
} fixture_t;

/* One case: its application id, state dir and log. */
typedef struct case_s {
    fixture_t *fx;
    const char *app;
    char state_dir[300]; /* state.dir */
    char db[400];        /* <state.dir>/<app>: the RocksDB dir */
    char log[300];       /* eddy's stderr */
    int port;
} case_t;

static int setup(void **state)
{
    char errstr[256];
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->broker = eddy_broker_new(3, errstr, sizeof(errstr));
    if (!fx->broker ||
        eddy_broker_create_topic(fx->broker, "log-events", PARTITIONS, errstr, sizeof(errstr)))
        return -1;
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
        if (eddy_test_create_changelogs(fx->broker, "monitoring.json", apps[i], PARTITIONS))
            return -1;
    eddy_test_generate(eddy_broker_bootstraps(fx->broker), "log-events", EDDY_GEN_HTTP, 7, EVENTS,
                       T0, 450);
    eddy_test_mkdtemp("corrupt", fx->dir, sizeof(fx->dir));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    eddy_broker_destroy(fx->broker);
    if (getenv("EDDY_TEST_KEEP"))
        fprintf(stderr, "kept %s\n", fx->dir);
    else
        eddy_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static case_t new_case(fixture_t *fx, const char *app)
{
    case_t c = {.fx = fx, .app = app, .port = eddy_test_free_port()};
    snprintf(c.state_dir, sizeof(c.state_dir), "%s/state-%s", fx->dir, app);
    snprintf(c.db, sizeof(c.db), "%s/%s", c.state_dir, app);
    snprintf(c.log, sizeof(c.log), "%s/%s.log", fx->dir, app);
    return c;
}

/* eddy run for the case, with up to three more settings (NULL-terminated). */
static pid_t start(const case_t *c, const char *s1, const char *s2, const char *s3)
{
    eddy_test_run_t run = {.bootstrap = eddy_broker_bootstraps(c->fx->broker),
                           .topology = "monitoring.json",
                           .app = c->app,
                           .state_dir = c->state_dir,
                           .port = c->port,
                           .log_path = c->log};
    const char *settings[] = {s1, s2, s3};
    int n = 0;
    for (int i = 0; i < 3 && settings[i]; i++) {
        run.extra[n++] = "-X";
        run.extra[n++] = settings[i];
    }
    return eddy_test_run_start(&run);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until the case's eddy has caught up with the whole input, then compares
 * every window of every store with the reference. */
static void check_exact(const case_t *c)
{
    eddy_test_topic_t input;
    assert_int_equal(
        eddy_test_read_topic(eddy_broker_bootstraps(c->fx->broker), "log-events", &input), 0);
    json_decref(eddy_test_wait_caught_up(c->port, PARTITIONS, (int64_t)input.n, 120));
    eddy_test_check_t chk = {.max_print = 10};
    assert_int_equal(eddy_test_check_monitoring(c->port, &input, &chk), 0);
    if (chk.mismatches)
        fail_msg("%s: %zu of %zu windows differ from the reference", c->app, chk.mismatches,
                 chk.windows);
    assert_true(chk.windows > 100);
    eddy_test_topic_free(&input);
}

/* Whether `path` holds `needle` (files are small here). */
static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

/* --- damaging RocksDB's files ------------------------------------------------------ */

/* The SST files of `db`, full paths, largest first; returns how many. */
static int list_sst(const char *db, char paths[][512], int max)
{
    DIR *d = opendir(db);
    assert_non_null(d);
    int n = 0;
    long sizes[64];
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sst"))
            continue;
        snprintf(paths[n], 512, "%s/%s", db, e->d_name);
        struct stat st;
        assert_int_equal(stat(paths[n], &st), 0);
        sizes[n] = (long)st.st_size;
        for (int i = n; i > 0 && sizes[i] > sizes[i - 1]; i--) { /* insertion, largest first */
            long s = sizes[i];
            sizes[i] = sizes[i - 1];
            sizes[i - 1] = s;
            char p[512];
            memcpy(p, paths[i], 512);
            memcpy(paths[i], paths[i - 1], 512);
            memcpy(paths[i - 1], p, 512);
        }
        n++;
    }
    closedir(d);
    return n;
}

static uint64_t varint(const uint8_t *p, size_t *i)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            break;
    }
    return v;
}

/* Where the data blocks of an SST file end: the smallest offset of the blocks
 * its footer and metaindex name (filter, index, properties, ...), which follow
 * the data. The footer of RocksDB's block-based format (versions 1-5): checksum
 * type, metaindex and index handles (varints), padding, version, magic; the
 * metaindex is an uncompressed block of (name -> handle) entries. */
static long sst_data_end(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *b = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    const uint8_t *footer = b + size - 53;
    assert_true(footer[45] == 0xf7 && footer[52] == 0x88); /* the block-based magic */
    size_t i = 1;
    uint64_t meta_off = varint(footer, &i), meta_size = varint(footer, &i);
    uint64_t index_off = varint(footer, &i);
    uint64_t end = meta_off < index_off ? meta_off : index_off;
    const uint8_t *blk = b + meta_off;
    uint32_t restarts = (uint32_t)blk[meta_size - 4] | (uint32_t)blk[meta_size - 3] << 8 |
                        (uint32_t)blk[meta_size - 2] << 16 | (uint32_t)blk[meta_size - 1] << 24;
    size_t entries_end = meta_size - 4 - 4 * (size_t)restarts;
    for (size_t j = 0; j < entries_end;) {
        varint(blk, &j); /* shared key bytes */
        uint64_t unshared = varint(blk, &j), value_len = varint(blk, &j);
        j += unshared;
        size_t k = j;
        uint64_t off = varint(blk, &k);
        if (off < end)
            end = off;
        j += value_len;
    }
    free(b);
    assert_true(end > 0);
    return (long)end;
}

/* XORs len bytes at off of the file with 0xff, in place (the same inode). */
static void flip(const char *path, long off, long len)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t *buf = malloc((size_t)len);
    fseek(f, off, SEEK_SET);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    for (long i = 0; i < len; i++)
        buf[i] ^= 0xff;
    fseek(f, off, SEEK_SET);
    assert_int_equal(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    free(buf);
}

/* Every data block of the SST files of the window stores (not eddy_meta's, so
 * that tasks start and only reads of windows fail). Returns the files damaged. */
static int flip_store_data(const char *db)
{
    char paths[64][512];
    int n = list_sst(db, paths, 64), damaged = 0;
    for (int i = 0; i < n; i++) {
        if (file_contains(paths[i], "eddy_meta"))
            continue;
        flip(paths[i], 0, sst_data_end(paths[i]));
        damaged++;
    }
    return damaged;
}

/* The current MANIFEST of db, as CURRENT names it. */
static void manifest_path(const char *db, char *out, size_t size)
{
    char path[512], name[64] = "";
    snprintf(path, sizeof(path), "%s/CURRENT", db);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(name, sizeof(name), f));
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    snprintf(out, size, "%s/%s", db, name);
}

/* A length inside a record of the MANIFEST, near its middle: RocksDB's log
 * framing is 32 KiB blocks of records, each a 7-byte header (checksum, u16 LE
 * length, type) and a payload; a cut at a record boundary would just be a
 * shorter MANIFEST, which no check can tell. */
static long inside_a_record(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t b[1 << 20];
    long size = (long)fread(b, 1, sizeof(b), f);
    fclose(f);
    long pos = 0, best = -1;
    while (pos + 7 <= size) {
        long left = 32768 - pos % 32768;
        if (left < 7) {
            pos += left;
            continue;
        }
        long len = b[pos + 4] | (long)b[pos + 5] << 8;
        long cut = len >= 2 ? pos + 7 + len / 2 : pos + 3; /* in its payload, or header */
        if (best < 0 || labs(cut - size / 2) < labs(best - size / 2))
            best = cut;
        pos += 7 + len;
    }
    assert_true(best > 0 && best < size);
    return best;
}

/* --- what eddy says about it -------------------------------------------------------- */

/* The one entry <app>.damaged-* beside the case's db (fails if none or several). */
static void damaged_dir(const case_t *c, char *out, size_t size)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s.damaged-", c->app);
    DIR *d = opendir(c->state_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            snprintf(out, size, "%.300s/%.200s", c->state_dir, e->d_name);
            n++;
        }
    closedir(d);
    if (n != 1)
        fail_msg("%d %s* dirs in %s, expected 1", n, prefix, c->state_dir);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The value of an unlabelled sample of GET /metrics, or -1. */
static double metric(int port, const char *name)
{
    eddy_test_http_resp_t r = {0};
    double v = -1;
    if (eddy_test_http("127.0.0.1", port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 &&
        r.status == 200) {
        char line[256];
        snprintf(line, sizeof(line), "\n%s ", name);
        const char *p = strstr(r.body, line);
        if (p)
            v = strtod(p + strlen(line), NULL);
    }
    eddy_test_http_resp_free(&r);
    return v;
}

/* After a reset: the damaged dir beside the fresh one, holding what was damaged;
 * the metric and /api/health count one damage; the log says where it went. */
static void check_moved_aside(const case_t *c, const char *damaged_file)
{
    char moved[512], path[1024];
    damaged_dir(c, moved, sizeof(moved));
    assert_true(exists(c->db)); /* the fresh one */
    if (damaged_file) {         /* kept, not deleted */
        snprintf(path, sizeof(path), "%s/%s", moved, strrchr(damaged_file, '/') + 1);
        if (!exists(path))
            fail_msg("%s is not in %s", damaged_file, moved);
    }
    assert_true(metric(c->port, "eddy_state_damaged_total") == 1);
    assert_true(metric(c->port, "eddy_state_resets_total") == 1);
    assert_true(metric(c->port, "eddy_state_last_reset_timestamp_seconds") > 1e9);
    int status = 0;
    json_t *h = eddy_test_get_json(c->port, "/api/health", &status);
    json_t *ls = json_object_get(h, "local_state");
    assert_int_equal(json_integer_value(json_object_get(ls, "damaged")), 1);
    assert_string_equal(json_string_value(json_object_get(ls, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(ls, "moved_to")), moved);
    json_decref(h);
    char said[600];
    snprintf(said, sizeof(said), "Moved it aside to %s", moved);
    assert_true(file_contains(c->log, said));
    assert_true(file_contains(c->log, "ERROR"));
}

/* Processes the input, stops cleanly and checks that the state is in SST files. */
static void first_run(const case_t *c, const char *s1, const char *s2)
{
    pid_t pid = start(c, s1, s2, NULL);
    check_exact(c);
    eddy_test_run_stop(pid, SIGTERM);
    char paths[64][512];
    int n = list_sst(c->db, paths, 64);
    if (n < 5) /* one per store and eddy_meta at least: the memtables were flushed */
        fail_msg("%s holds %d SST files after a clean stop", c->db, n);
}

/* --- the cases ------------------------------------------------------------------------- */

/* 1. */
static void test_flipped_block_found_at_startup(void **state)
{
    case_t c = new_case(*state, "sst");
    first_run(&c, NULL, NULL);
    char paths[64][512];
    list_sst(c.db, paths, 64);
    flip(paths[0], sst_data_end(paths[0]) / 2, 16); /* in a data block of the largest */
    pid_t pid = start(&c, NULL, NULL, NULL);
    check_exact(&c);
    check_moved_aside(&c, paths[0]);
    /* The fresh state goes on like any other. */
    eddy_test_generate(eddy_broker_bootstraps(c.fx->broker), "log-events", EDDY_GEN_HTTP, 8, 3000,
                       T0 + 450000, 60);
    check_exact(&c);
    eddy_test_run_stop(pid, SIGTERM);
}

/* 2. */
static void test_corrupted_current(void **state)
{
    case_t c = new_case(*state, "current");
    first_run(&c, NULL, NULL);
    char path[512];
    snprintf(path, sizeof(path), "%s/CURRENT", c.db);
    flip(path, 4, 1); /* "MANI?EST-..." */
    pid_t pid = start(&c, NULL, NULL, NULL);
    check_exact(&c);
    check_moved_aside(&c, path);
    eddy_test_run_stop(pid, SIGTERM);
}

/* 3. */
static void test_truncated_manifest(void **state)
{
    case_t c = new_case(*state, "manifest");
    first_run(&c, NULL, NULL);
    char manifest[512], paths[64][512];
    manifest_path(c.db, manifest, sizeof(manifest));
    int n_sst = list_sst(c.db, paths, 64);
    assert_int_equal(truncate(manifest, inside_a_record(manifest)), 0);
    pid_t pid = start(&c, NULL, NULL, NULL);
    check_exact(&c);
    check_moved_aside(&c, manifest);
    /* Every SST file is still there: none was deleted as obsolete. */
    char moved[512], path[1024];
    damaged_dir(&c, moved, sizeof(moved));
    for (int i = 0; i < n_sst; i++) {
        snprintf(path, sizeof(path), "%s/%s", moved, strrchr(paths[i], '/') + 1);
        if (!exists(path))
            fail_msg("%s was deleted", path);
    }
    eddy_test_run_stop(pid, SIGTERM);
}

/* 4. No snapshots (changelog.snapshot.bytes=0), so that only processing reads
 *    the windows: the records must go into windows that are in the SST files. */
static void test_damage_found_by_processing(void **state)
{
    case_t c = new_case(*state, "running");
    first_run(&c, "changelog.snapshot.bytes=0", NULL);
    assert_true(flip_store_data(c.db) >= 4);
    pid_t pid = start(&c, "state.verify.on.open=false", "changelog.snapshot.bytes=0", NULL);
    eddy_test_topic_t input;
    assert_int_equal(
        eddy_test_read_topic(eddy_broker_bootstraps(c.fx->broker), "log-events", &input), 0);
    json_decref(eddy_test_wait_caught_up(c.port, PARTITIONS, (int64_t)input.n, 120));
    eddy_test_topic_free(&input);
    assert_true(metric(c.port, "eddy_state_damaged_total") == 0); /* nothing read it yet */
    /* Into the last, still open, windows of the first run (stream time ~T0+450 s). */
    eddy_test_generate(eddy_broker_bootstraps(c.fx->broker), "log-events", EDDY_GEN_HTTP, 9, 2000,
                       T0 + 440000, 9);
    check_exact(&c);
    check_moved_aside(&c, NULL);
    assert_true(file_contains(c.log, "cannot read the window"));
    assert_true(file_contains(c.log, "Corruption"));
    eddy_test_run_stop(pid, SIGTERM);
}

/* Asks for the windows of endpoint_stats again and again, counting answers. */
typedef struct poller_s {
    int port;
    atomic_bool stop;
    atomic_int ok, unavailable, other, other_status;
} poller_t;

static void *poll_main(void *arg)
{
    poller_t *p = arg;
    while (!atomic_load(&p->stop)) {
        eddy_test_http_resp_t r = {0};
        if (eddy_test_http("127.0.0.1", p->port, "GET", "/api/stores/endpoint_stats/windows", NULL,
                           NULL, 0, &r) == 0) {
            json_t *body = json_loadb(r.body, r.body_len, 0, NULL);
            json_t *err = json_object_get(body, "error");
            if (r.status == 200 && json_is_array(json_object_get(body, "windows")))
                atomic_fetch_add(&p->ok, 1);
            else if (r.status == 503 && strstr(json_string_value(json_object_get(err, "message")),
                                               "local state is being restored"))
                atomic_fetch_add(&p->unavailable, 1);
            else {
                atomic_fetch_add(&p->other, 1);
                atomic_store(&p->other_status, r.status);
            }
            json_decref(body);
        }
        eddy_test_http_resp_free(&r);
        sleep_ms(5);
    }
    return NULL;
}

/* 5. */
static void test_damage_found_by_queries(void **state)
{
    case_t c = new_case(*state, "queried");
    first_run(&c, "changelog.snapshot.bytes=0", NULL);
    assert_true(flip_store_data(c.db) >= 4);
    poller_t p = {.port = c.port};
    pthread_t thread;
    pid_t pid = start(&c, "state.verify.on.open=false", "changelog.snapshot.bytes=0", NULL);
    assert_int_equal(pthread_create(&thread, NULL, poll_main, &p), 0);
    for (int i = 0; i < 1200 && metric(c.port, "eddy_state_resets_total") < 1; i++)
        sleep_ms(50);
    check_exact(&c);
    atomic_store(&p.stop, true);
    pthread_join(thread, NULL);
    check_moved_aside(&c, NULL);
    if (atomic_load(&p.other))
        fail_msg("%d answers were neither 200 nor 503 (last: %d)", atomic_load(&p.other),
                 atomic_load(&p.other_status));
    assert_true(atomic_load(&p.unavailable) >= 1); /* the query that found it, at least */
    assert_true(atomic_load(&p.ok) >= 1);
    eddy_test_run_stop(pid, SIGTERM);
}

/* Waits up to timeout_s for pid to exit; its exit status, or -1 if it did not. */
static int wait_exit(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 20; i++) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* 6. */
static void test_fail_action_stops(void **state)
{
    case_t c = new_case(*state, "fail");
    first_run(&c, NULL, NULL);
    char paths[64][512];
    int n_sst = list_sst(c.db, paths, 64);
    assert_true(flip_store_data(c.db) >= 4);
    /* At startup: the verification finds it. */
    pid_t pid = start(&c, "state.corruption.action=fail", NULL, NULL);
    int rc = wait_exit(pid, 60);
    assert_true(rc > 0);
    char said[600];
    snprintf(said, sizeof(said), "local state in %s is damaged", c.db);
    assert_true(file_contains(c.log, said));
    assert_true(file_contains(c.log, "state.corruption.action=fail"));
    for (int i = 0; i < n_sst; i++)
        assert_true(exists(paths[i])); /* left where it was */
    /* While running: a query finds it. */
    pid = start(&c, "state.corruption.action=fail", "state.verify.on.open=false", NULL);
    rc = -1;
    for (int i = 0; i < 1200 && rc < 0; i++) {
        int status = 0;
        json_decref(eddy_test_get_json(c.port, "/api/stores/endpoint_stats/windows", &status));
        if (waitpid(pid, &status, WNOHANG) == pid)
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        sleep_ms(50);
    }
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("eddy did not stop on damaged state with state.corruption.action=fail");
    }
    assert_true(rc > 0);
    for (int i = 0; i < n_sst; i++)
        assert_true(exists(paths[i]));
    DIR *d = opendir(c.state_dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".damaged-"))
            fail_msg("%s was moved aside with state.corruption.action=fail", c.db);
    closedir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flipped_block_found_at_startup),
        cmocka_unit_test(test_corrupted_current),
        cmocka_unit_test(test_truncated_manifest),
        cmocka_unit_test(test_damage_found_by_processing),
        cmocka_unit_test(test_damage_found_by_queries),
        cmocka_unit_test(test_fail_action_stops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
