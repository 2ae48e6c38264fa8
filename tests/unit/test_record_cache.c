/*
 * test_record_cache.c — the record cache against a naive model: random inserts,
 * finds, dirty marking and evictions, checking after every step that the cache
 * holds exactly what the model holds (this exercises growth and backward-shift
 * deletion across probe runs that wrap around the table).
 */
#include "test_support.h"

#include "stores/record_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int freed;

static void count_free(void *state, void *opaque)
{
    (void)opaque;
    free(state);
    freed++;
}

typedef struct model_s {
    int64_t start;
    char key[16];
    bool present;
    bool dirty;
} model_t;

static void test_find_insert(void **state)
{
    freed = 0;
    eddy_cache_t *c = eddy_cache_new(count_free, NULL);
    assert_null(eddy_cache_find(c, 0, "a", 1));
    eddy_cache_entry_t *e = eddy_cache_insert(c, 60000, "/api/orders", 11, malloc(4));
    assert_non_null(e);
    assert_false(e->dirty);
    assert_ptr_equal(eddy_cache_find(c, 60000, "/api/orders", 11), e);
    assert_null(eddy_cache_find(c, 0, "/api/orders", 11));
    assert_null(eddy_cache_find(c, 60000, "/api/order", 10));
    /* Negative window starts and empty keys are keys like any other. */
    assert_non_null(eddy_cache_insert(c, -60000, "", 0, malloc(4)));
    assert_non_null(eddy_cache_find(c, -60000, "", 0));
    assert_int_equal(eddy_cache_count(c), 2);
    uint64_t hits, misses;
    eddy_cache_hit_stats(c, &hits, &misses);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 3);
    eddy_cache_destroy(c);
    assert_int_equal(freed, 2);
    eddy_cache_destroy(NULL);
}

static void mark_clean(eddy_cache_entry_t *e, void *opaque)
{
    (*(int *)opaque)++;
    e->dirty = false;
}

static void test_against_model(void **state)
{
    enum { N = 3000 };
    static model_t model[N];
    freed = 0;
    srand(7);
    eddy_cache_t *c = eddy_cache_new(count_free, NULL);
    for (int i = 0; i < N; i++) {
        model[i].start = (int64_t)(i % 50) * 60000 - 600000;
        snprintf(model[i].key, sizeof(model[i].key), "k%d", i);
        model[i].present = false;
    }
    int inserted = 0;
    for (int step = 0; step < 20000; step++) {
        int i = rand() % N;
        model_t *m = &model[i];
        int op = rand() % 10;
        size_t klen = strlen(m->key);
        if (op < 6) { /* touch: insert if absent, mark dirty */
            eddy_cache_entry_t *e = eddy_cache_find(c, m->start, m->key, klen);
            assert_true((e != NULL) == m->present);
            if (!e) {
                e = eddy_cache_insert(c, m->start, m->key, klen, malloc(8));
                inserted++;
                m->present = true;
            }
            e->dirty = true;
            m->dirty = true;
        } else if (op < 8) { /* commit: everything clean */
            int visited = 0;
            eddy_cache_foreach_dirty(c, mark_clean, &visited);
            int want = 0;
            for (int j = 0; j < N; j++) {
                want += model[j].present && model[j].dirty;
                model[j].dirty = false;
            }
            assert_int_equal(visited, want);
        } else { /* evict windows before a random cutoff (clean ones only) */
            int64_t cutoff = (int64_t)(rand() % 50) * 60000 - 600000;
            size_t want = 0;
            for (int j = 0; j < N; j++)
                if (model[j].present && !model[j].dirty && model[j].start < cutoff) {
                    model[j].present = false;
                    want++;
                }
            assert_int_equal(eddy_cache_evict_before(c, cutoff), want);
        }
        if (step % 500 == 0) {
            size_t present = 0;
            for (int j = 0; j < N; j++) {
                present += model[j].present;
                eddy_cache_entry_t *e =
                    eddy_cache_find(c, model[j].start, model[j].key, strlen(model[j].key));
                assert_true((e != NULL) == model[j].present);
                if (e)
                    assert_true(e->dirty == model[j].dirty);
            }
            assert_int_equal(eddy_cache_count(c), present);
        }
    }
    size_t left = eddy_cache_count(c);
    eddy_cache_destroy(c);
    assert_int_equal(freed, inserted);
    assert_true(left > 0);
}

/* eddy_cache_sorted: by window start, then key bytewise, a prefix first. */
static void test_sorted(void **state)
{
    eddy_cache_t *c = eddy_cache_new(count_free, NULL);
    size_t n = 99;
    eddy_cache_entry_t **e = eddy_cache_sorted(c, &n);
    assert_non_null(e);
    assert_int_equal(n, 0);
    free(e);
    static const struct {
        int64_t start;
        const char *key;
    } in[] = {{60000, "b"}, {0, "ab"}, {60000, "a"}, {-60000, "z"}, {0, "a"}, {0, "b"}};
    for (size_t i = 0; i < 6; i++)
        assert_non_null(eddy_cache_insert(c, in[i].start, in[i].key, strlen(in[i].key), malloc(1)));
    e = eddy_cache_sorted(c, &n);
    assert_int_equal(n, 6);
    static const char *const want[] = {"z", "a", "ab", "b", "a", "b"};
    static const int64_t want_start[] = {-60000, 0, 0, 0, 60000, 60000};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(e[i]->window_start, want_start[i]);
        assert_int_equal(e[i]->key_len, strlen(want[i]));
        assert_memory_equal(e[i]->key, want[i], e[i]->key_len);
    }
    free(e);
    eddy_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_insert),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
