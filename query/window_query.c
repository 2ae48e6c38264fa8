/*
 * window_query.c — merged window reads (see window_query.h). A record cache,
 * keyed like the tasks' caches, collects the merge; entries are then sorted.
 */
#include "query/window_query.h"
#include "engine/local_state.h"
#include "engine/util.h"
#include "stores/record_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct merge_ctx_s {
    const eddy_runtime_t *rt;        /* which partitions this instance owns */
    const eddy_agg_layout_t *layout; /* the store's layout */
    eddy_cache_t *merged;            /* (start, key) -> merged eddy_agg_t */
    eddy_agg_t *scratch;             /* deserialization target */
    const char *key;                 /* only this group key, or NULL */
    size_t key_len;                  /* its length */
    bool corrupt;                    /* an entry could not be read */
    bool nomem;                      /* out of memory: stop */
} merge_ctx_t;

static void free_agg(void *state, void *opaque)
{
    (void)opaque;
    eddy_agg_destroy(state);
}

static int merge_entry(int32_t task, int64_t start, const char *key, size_t key_len,
                       const void *value, size_t value_len, void *opaque)
{
    merge_ctx_t *m = opaque;
    /* State of a partition this instance no longer owns is stale: its new owner
     * answers for it. */
    if (task < 0 || task >= EDDY_MAX_PARTITIONS || !atomic_load(&m->rt->metrics.parts[task].owner))
        return 0;
    if (m->key && (key_len != m->key_len || memcmp(key, m->key, key_len)))
        return 0;
    if (eddy_agg_deserialize(m->layout, m->scratch, value, value_len)) {
        m->corrupt = true;
        return 0;
    }
    eddy_cache_entry_t *e = eddy_cache_find(m->merged, start, key, key_len);
    if (!e) {
        eddy_agg_t *agg = eddy_agg_new(m->layout);
        if (!agg || !(e = eddy_cache_insert(m->merged, start, key, key_len, agg))) {
            m->nomem = true;
            return 1;
        }
    }
    eddy_agg_merge(m->layout, e->state, m->scratch);
    return 0;
}

eddy_err_t eddy_windows_merged(eddy_runtime_t *rt, int store, int64_t from, int64_t to,
                               const char *key, eddy_window_fn *fn, void *opaque, bool *corrupt,
                               char *errstr, size_t errstr_size)
{
    merge_ctx_t m = {.rt = rt,
                     .layout = rt->layouts[store],
                     .merged = eddy_cache_new(free_agg, NULL),
                     .scratch = eddy_agg_new(rt->layouts[store]),
                     .key = key,
                     .key_len = key ? strlen(key) : 0};
    eddy_cache_entry_t **sorted = NULL;
    eddy_err_t err = EDDY_OK;
    if (!m.merged || !m.scratch) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    eddy_statedb_t *db = eddy_local_state_read_begin(rt);
    if (!db) {
        err = eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                        "local state is being restored (damaged state was found)");
        goto out;
    }
    err = eddy_statedb_scan(db, store, -1, from, to, merge_entry, &m, errstr, errstr_size);
    eddy_local_state_read_end(rt);
    if (!err && m.nomem)
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory merging windows");
    if (err)
        goto out;
    size_t n = 0;
    if (!(sorted = eddy_cache_sorted(m.merged, &n))) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        fn(sorted[i]->window_start, sorted[i]->key, sorted[i]->key_len, sorted[i]->state, opaque);
out:
    if (corrupt)
        *corrupt = m.corrupt;
    free(sorted);
    eddy_cache_destroy(m.merged);
    eddy_agg_destroy(m.scratch);
    return err;
}

json_t *eddy_window_to_json(const eddy_runtime_t *rt, int store, int64_t start, const char *key,
                            size_t key_len, const eddy_agg_t *agg)
{
    const eddy_store_def_t *def = eddy_topology_store(rt->topo, (size_t)store);
    json_t *w = json_object();
    json_object_set_new(w, "key", json_stringn(key, key_len));
    json_object_set_new(w, "start", json_integer(start));
    json_object_set_new(w, "end", json_integer(start + def->window.size_ms));
    eddy_agg_to_json(rt->layouts[store], agg, w);
    return w;
}

void eddy_windows_coverage_json(eddy_runtime_t *rt, json_t *body)
{
    json_t *parts = json_array(), *restoring = json_array(), *failed = json_array();
    int owned = 0;
    for (int p = 0; p < rt->source_partitions; p++)
        if (atomic_load(&rt->metrics.parts[p].owner)) {
            json_array_append_new(parts, json_integer(p));
            owned++;
            int state = atomic_load(&rt->metrics.parts[p].state);
            if (state == EDDY_TASK_RESTORING)
                json_array_append_new(restoring, json_integer(p));
            else if (state == EDDY_TASK_ERROR)
                json_array_append_new(failed, json_integer(p));
        }
    const bool complete = owned == rt->source_partitions && json_array_size(restoring) == 0 &&
                          json_array_size(failed) == 0;
    json_object_set_new(body, "partitions", parts);
    json_object_set_new(body, "restoring", restoring);
    json_object_set_new(body, "failed", failed);
    json_object_set_new(body, "complete", json_boolean(complete));
}

int64_t eddy_windows_stream_time(eddy_runtime_t *rt)
{
    int64_t t = INT64_MIN;
    for (int p = 0; p < rt->source_partitions; p++)
        if (atomic_load(&rt->metrics.parts[p].owner)) {
            int64_t st = atomic_load(&rt->metrics.parts[p].committed_stream_time);
            if (st > t)
                t = st;
        }
    return t;
}
