/*
 * test_changelog.c — changelog records and their replay (stores/changelog.h).
 *
 * The codec round-trips and rejects what eddy did not write; the replay applies
 * a commit's records only once its marker is read, drops the records of a commit
 * whose writer was followed by another incarnation (a crash or an abort), keeps
 * a trailing unfinished commit pending (never applied), and still applies
 * everything on a compacted log that kept only an incarnation's last marker; a
 * snapshot counts as whole only if every one of its records was read; a writer
 * that another incarnation followed is ignored from then on.
 */
#include "test_support.h"

#include "stores/changelog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct log_s {
    struct {
        uint8_t key[64], value[64];
        size_t key_len, value_len;
    } recs[32];
    int n;
} log_t;

/* A data record whose "state" is the text `state`. */
static void add_data(log_t *log, uint64_t inc, uint64_t seq, int64_t start, const char *key,
                     const char *state)
{
    assert_true(log->n < 32);
    size_t k = eddy_changelog_data_key(log->recs[log->n].key, sizeof(log->recs[0].key), start, key,
                                       strlen(key));
    assert_true(k > 0);
    log->recs[log->n].key_len = k;
    eddy_changelog_data_header(log->recs[log->n].value, inc, seq);
    memcpy(log->recs[log->n].value + EDDY_CHANGELOG_DATA_HDR, state, strlen(state));
    log->recs[log->n].value_len = EDDY_CHANGELOG_DATA_HDR + strlen(state);
    log->n++;
}

static void add_marker_flagged(log_t *log, uint64_t inc, uint64_t seq, int64_t input_offset,
                               uint32_t records, uint8_t flags)
{
    eddy_changelog_rec_t m = {.incarnation = inc,
                              .seq = seq,
                              .input_offset = input_offset,
                              .stream_time = 1000 + input_offset,
                              .records = records,
                              .flags = flags};
    eddy_changelog_marker(log->recs[log->n].key, log->recs[log->n].value, &m);
    log->recs[log->n].key_len = EDDY_CHANGELOG_MARKER_KEY;
    log->recs[log->n].value_len = EDDY_CHANGELOG_MARKER_LEN;
    log->n++;
}

static void add_marker(log_t *log, uint64_t inc, uint64_t seq, int64_t input_offset)
{
    add_marker_flagged(log, inc, seq, input_offset, 0, 0);
}

typedef struct applied_s {
    char states[32][16]; /* applied states, in order */
    int n;
    int64_t last_input;  /* input offset of the last marker */
    int64_t last_offset; /* changelog offset of the last marker */
    int markers;
} applied_t;

static void on_apply(const eddy_changelog_rec_t *rec, void *opaque)
{
    applied_t *a = opaque;
    snprintf(a->states[a->n++], sizeof(a->states[0]), "%.*s", (int)rec->state_len,
             (const char *)rec->state);
}

static void on_commit(const eddy_changelog_rec_t *m, int64_t offset, void *opaque)
{
    applied_t *a = opaque;
    a->last_input = m->input_offset;
    a->last_offset = offset;
    a->markers++;
}

static eddy_changelog_replay_t *replay(const log_t *log, applied_t *a)
{
    memset(a, 0, sizeof(*a));
    eddy_changelog_replay_t *r = eddy_changelog_replay_new(on_apply, on_commit, a);
    for (int i = 0; i < log->n; i++)
        eddy_changelog_replay_feed(r, 100 + i, log->recs[i].key, log->recs[i].key_len,
                                   log->recs[i].value, log->recs[i].value_len);
    return r;
}

static void test_codec(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 0xabcdef0123456789ULL, 7, -60000, "/api/cart", "S");
    add_marker(&log, 0xabcdef0123456789ULL, 7, 4242);
    eddy_changelog_rec_t rec;
    char errstr[128];
    assert_int_equal(eddy_changelog_decode(log.recs[0].key, log.recs[0].key_len, log.recs[0].value,
                                           log.recs[0].value_len, &rec, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_false(rec.marker);
    assert_true(rec.incarnation == 0xabcdef0123456789ULL && rec.seq == 7);
    assert_true(rec.window_start == -60000);
    assert_int_equal(rec.key_len, 9);
    assert_memory_equal(rec.key, "/api/cart", 9);
    assert_int_equal(rec.state_len, 1);
    assert_memory_equal(rec.state, "S", 1);
    assert_int_equal(eddy_changelog_decode(log.recs[1].key, log.recs[1].key_len, log.recs[1].value,
                                           log.recs[1].value_len, &rec, errstr, sizeof(errstr)),
                     EDDY_OK);
    assert_true(rec.marker && rec.seq == 7 && rec.input_offset == 4242);
    assert_true(rec.records == 0 && rec.flags == 0);
    assert_true(rec.stream_time == 1000 + 4242);

    /* Not eddy's: no key, a short value, a wrong version, an unknown key type, a
     * marker whose key and value disagree on the incarnation. */
    assert_int_equal(eddy_changelog_decode(NULL, 0, "x", 1, &rec, errstr, sizeof(errstr)),
                     EDDY_ERR_INVALID);
    assert_int_equal(eddy_changelog_decode("W", 1, "short", 5, &rec, errstr, sizeof(errstr)),
                     EDDY_ERR_INVALID);
    uint8_t v[EDDY_CHANGELOG_MARKER_LEN];
    memcpy(v, log.recs[1].value, sizeof(v));
    v[0] = 9;
    assert_int_equal(eddy_changelog_decode(log.recs[1].key, log.recs[1].key_len, v, sizeof(v), &rec,
                                           errstr, sizeof(errstr)),
                     EDDY_ERR_INVALID);
    assert_non_null(strstr(errstr, "version"));
    v[0] = EDDY_CHANGELOG_VERSION;
    uint8_t k[EDDY_CHANGELOG_MARKER_KEY];
    memcpy(k, log.recs[1].key, sizeof(k));
    k[0] = 'Z';
    assert_int_equal(
        eddy_changelog_decode(k, sizeof(k), v, sizeof(v), &rec, errstr, sizeof(errstr)),
        EDDY_ERR_INVALID);
    k[0] = 'M';
    k[8] ^= 1;
    assert_int_equal(
        eddy_changelog_decode(k, sizeof(k), v, sizeof(v), &rec, errstr, sizeof(errstr)),
        EDDY_ERR_INVALID);
    uint8_t small[4];
    assert_int_equal(eddy_changelog_data_key(small, sizeof(small), 0, "abc", 3), 0);
}

/* Commit 1 whole; commit 2 cut off by a crash (no marker), then a new incarnation
 * commits; then that incarnation's last commit is cut off at the end of the log. */
static void test_abandoned_commits_are_never_applied(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 1, 1, 0, "a", "a1");
    add_data(&log, 1, 1, 0, "b", "b1");
    add_marker(&log, 1, 1, 10);
    add_data(&log, 1, 2, 0, "a", "a2-crashed");
    add_data(&log, 1, 2, 0, "b", "b2-crashed");
    add_data(&log, 2, 1, 0, "a", "a2");
    add_marker(&log, 2, 1, 20);
    add_data(&log, 2, 2, 0, "b", "b3-unfinished");
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.states[0], "a1");
    assert_string_equal(a.states[1], "b1");
    assert_string_equal(a.states[2], "a2");
    assert_int_equal(a.markers, 2);
    assert_int_equal(a.last_input, 20);
    assert_int_equal(a.last_offset, 100 + 6);
    assert_int_equal(eddy_changelog_replay_dropped(r), 2);
    assert_int_equal(eddy_changelog_replay_pending(r), 1);
    assert_int_equal(eddy_changelog_replay_bad(r), 0);
    eddy_changelog_replay_destroy(r);
}

/* A marker covers its incarnation's commits up to its sequence: after compaction
 * only an incarnation's last marker may be left, and everything before it holds. */
static void test_compacted_log(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 5, 1, 0, "a", "a1");
    add_data(&log, 5, 2, 60000, "a", "x2");
    add_data(&log, 5, 3, 60000, "b", "y3");
    add_marker(&log, 5, 3, 30);
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.states[2], "y3");
    assert_int_equal(a.markers, 1);
    assert_int_equal(eddy_changelog_replay_pending(r), 0);
    assert_int_equal(eddy_changelog_replay_dropped(r), 0);
    eddy_changelog_replay_destroy(r);
}

/* Records that are not eddy's are counted and skipped, and do not break a commit. */
static void test_bad_records_are_skipped(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 1, 1, 0, "a", "a1");
    memcpy(log.recs[log.n].key, "junk", 4);
    log.recs[log.n].key_len = 4;
    memcpy(log.recs[log.n].value, "junk", 4);
    log.recs[log.n].value_len = 4;
    log.n++;
    add_marker(&log, 1, 1, 10);
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(eddy_changelog_replay_bad(r), 1);
    eddy_changelog_replay_destroy(r);
    eddy_changelog_replay_destroy(NULL);
}

/* Retention cut the log: the replay starts inside a snapshot commit (one of its
 * records gone), which therefore is not whole; the next snapshot is. */
static void test_snapshots(void **state)
{
    (void)state;
    log_t log = {0};
    /* what is left of snapshot 1 (3 records, the first deleted) */
    add_data(&log, 1, 1, 60000, "b", "b1");
    add_data(&log, 1, 1, 60000, "c", "c1");
    add_marker_flagged(&log, 1, 1, 10, 3, EDDY_CHANGELOG_SNAPSHOT);
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_false(eddy_changelog_replay_snapshot_seen(r));
    assert_int_equal(a.n, 2);
    eddy_changelog_replay_destroy(r);

    add_data(&log, 1, 2, 60000, "a", "a2");
    add_marker(&log, 1, 2, 20);
    add_data(&log, 1, 3, 60000, "a", "a3");
    add_data(&log, 1, 3, 60000, "b", "b1");
    add_data(&log, 1, 3, 60000, "c", "c1");
    add_marker_flagged(&log, 1, 3, 30, 3, EDDY_CHANGELOG_SNAPSHOT);
    r = replay(&log, &a);
    assert_true(eddy_changelog_replay_snapshot_seen(r));
    assert_int_equal(a.n, 6);
    assert_string_equal(a.states[3], "a3");
    assert_int_equal(a.last_input, 30);
    eddy_changelog_replay_destroy(r);
}

/* Incarnation 1 loses its partition without noticing and keeps writing after
 * incarnation 2 took over: those writes are ignored, whole commits included. */
static void test_zombie_writes_are_ignored(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 1, 1, 0, "a", "a1");
    add_marker(&log, 1, 1, 10);
    add_data(&log, 2, 1, 0, "a", "a2");
    add_marker(&log, 2, 1, 20);
    add_data(&log, 1, 2, 0, "a", "zombie");
    add_marker(&log, 1, 2, 99);
    add_data(&log, 2, 2, 0, "b", "b2");
    add_marker(&log, 2, 2, 30);
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.states[0], "a1");
    assert_string_equal(a.states[1], "a2");
    assert_string_equal(a.states[2], "b2");
    assert_int_equal(a.last_input, 30);
    assert_int_equal(a.markers, 3);
    assert_int_equal(eddy_changelog_replay_zombie(r), 2);
    eddy_changelog_replay_destroy(r);
}

/* A new writer's claim fences its predecessor: what the predecessor commits
 * after the claim is ignored, what it committed before stays. */
static void test_claims_fence_the_predecessor(void **state)
{
    (void)state;
    log_t log = {0};
    add_data(&log, 1, 1, 0, "a", "a1");
    add_marker(&log, 1, 1, 10);
    add_marker_flagged(&log, 2, 0, -1, 0, EDDY_CHANGELOG_CLAIM);
    add_data(&log, 1, 2, 0, "a", "after-claim");
    add_marker(&log, 1, 2, 99);
    add_data(&log, 2, 1, 0, "a", "a2");
    add_marker(&log, 2, 1, 20);
    applied_t a;
    eddy_changelog_replay_t *r = replay(&log, &a);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.states[0], "a1");
    assert_string_equal(a.states[1], "a2");
    assert_int_equal(a.last_input, 20);
    assert_int_equal(eddy_changelog_replay_zombie(r), 2);
    eddy_changelog_replay_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_abandoned_commits_are_never_applied),
        cmocka_unit_test(test_compacted_log),
        cmocka_unit_test(test_bad_records_are_skipped),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_zombie_writes_are_ignored),
        cmocka_unit_test(test_claims_fence_the_predecessor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
