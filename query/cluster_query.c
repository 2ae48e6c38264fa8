/*
 * cluster_query.c — cluster-wide window reads (see cluster_query.h).
 *
 * One answer: (1) every source partition this instance owns is read from the
 * state database into a record cache of merged aggregates; (2) every other
 * partition is assigned to one live peer that claims it (running before
 * restoring, then the freshest record), and each peer gets one request for
 * exactly its partitions, all on threads of their own, in parallel; (3) each
 * peer's answer names what it covered (it may have lost a partition since its
 * last heartbeat), its partials are merged into the same cache; (4) requested
 * but uncovered partitions are unreachable. A partition is read from exactly one
 * instance, so nothing is counted twice.
 */
#include "query/cluster_query.h"
#include "engine/instances.h"
#include "engine/local_state.h"
#include "engine/util.h"
#include "query/peer_client.h"
#include "stores/record_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ASKED 64

/* --- local partials ---------------------------------------------------------------- */

typedef struct scan_ctx_s {
    const eddy_agg_layout_t *layout; /* the store's layout */
    const bool *want;                /* partitions to read */
    eddy_cache_t *merged;            /* (start, key) -> merged eddy_agg_t */
    eddy_agg_t *scratch;             /* deserialization target */
    const char *key;                 /* only this group key, or NULL */
    size_t key_len;                  /* its length */
    bool corrupt;                    /* an entry could not be read */
    bool nomem;                      /* out of memory: stop */
} scan_ctx_t;

static void free_agg(void *state, void *opaque)
{
    (void)opaque;
    eddy_agg_destroy(state);
}

/* Merges src into the cache entry of (start, key). */
static bool merge_into(eddy_cache_t *merged, const eddy_agg_layout_t *layout, int64_t start,
                       const char *key, size_t key_len, const eddy_agg_t *src)
{
    eddy_cache_entry_t *e = eddy_cache_find(merged, start, key, key_len);
    if (!e) {
        eddy_agg_t *agg = eddy_agg_new(layout);
        if (!agg)
            return false;
        if (!(e = eddy_cache_insert(merged, start, key, key_len, agg)))
            return false; /* the cache freed agg */
    }
    eddy_agg_merge(layout, e->state, src);
    return true;
}

static int scan_entry(int32_t task, int64_t start, const char *key, size_t key_len,
                      const void *value, size_t value_len, void *opaque)
{
    scan_ctx_t *s = opaque;
    if (task < 0 || task >= EDDY_MAX_PARTITIONS || !s->want[task])
        return 0;
    if (s->key && (key_len != s->key_len || memcmp(key, s->key, key_len)))
        return 0;
    if (eddy_agg_deserialize(s->layout, s->scratch, value, value_len)) {
        s->corrupt = true;
        return 0;
    }
    if (!merge_into(s->merged, s->layout, start, key, key_len, s->scratch)) {
        s->nomem = true;
        return 1;
    }
    return 0;
}

/* Reads the partitions in `want` that this instance owns now into `merged`,
 * marking them in covered/restoring/failed (a task stopped in the error state:
 * its windows stand as of its last commit). */
static eddy_err_t read_local(eddy_runtime_t *rt, int store, int64_t from, int64_t to,
                             const char *key, const bool *want, eddy_cache_t *merged, bool *covered,
                             bool *restoring, bool *failed, bool *corrupt, char *errstr,
                             size_t errstr_size)
{
    bool read[EDDY_MAX_PARTITIONS] = {0};
    int n = 0;
    for (int p = 0; p < rt->source_partitions; p++)
        if (want[p] && atomic_load(&rt->metrics.parts[p].owner)) {
            read[p] = covered[p] = true;
            restoring[p] = atomic_load(&rt->metrics.parts[p].state) == EDDY_TASK_RESTORING;
            failed[p] = atomic_load(&rt->metrics.parts[p].state) == EDDY_TASK_ERROR;
            n++;
        }
    if (n == 0)
        return EDDY_OK;
    scan_ctx_t s = {.layout = rt->layouts[store],
                    .want = read,
                    .merged = merged,
                    .scratch = eddy_agg_new(rt->layouts[store]),
                    .key = key,
                    .key_len = key ? strlen(key) : 0};
    if (!s.scratch)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    eddy_statedb_t *db = eddy_local_state_read_begin(rt);
    if (!db) {
        eddy_agg_destroy(s.scratch);
        return eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                         "local state is being restored: damaged state was found and is moved "
                         "aside; the tasks restore from their changelogs (retry shortly)");
    }
    eddy_err_t err =
        eddy_statedb_scan(db, store, -1, from, to, scan_entry, &s, errstr, errstr_size);
    eddy_local_state_read_end(rt);
    if (!err && s.nomem)
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory merging windows");
    *corrupt |= s.corrupt;
    eddy_agg_destroy(s.scratch);
    return err;
}

/* --- the codec of a partials answer ---------------------------------------------- */

json_t *eddy_partial_encode(const eddy_agg_layout_t *layout, int64_t start, const char *key,
                            size_t key_len, const eddy_agg_t *agg)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = eddy_agg_serialized_size(layout, agg);
    uint8_t *bin = malloc(n ? n : 1);
    char *hex = malloc(2 * n + 1);
    json_t *entry = NULL;
    if (bin && hex && eddy_agg_serialize(layout, agg, bin, n) == n) {
        for (size_t i = 0; i < n; i++) {
            hex[2 * i] = digits[bin[i] >> 4];
            hex[2 * i + 1] = digits[bin[i] & 15];
        }
        entry = json_pack("[Is#s#]", (json_int_t)start, key, key_len, hex, 2 * n);
    }
    free(bin);
    free(hex);
    return entry;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

eddy_err_t eddy_partial_decode(const eddy_agg_layout_t *layout, json_t *entry, int64_t *start,
                               const char **key, size_t *key_len, eddy_agg_t *agg)
{
    json_t *s = json_array_get(entry, 0), *k = json_array_get(entry, 1);
    json_t *h = json_array_get(entry, 2);
    if (json_array_size(entry) != 3 || !json_is_integer(s) || !json_is_string(k) ||
        !json_is_string(h) || json_string_length(h) % 2)
        return EDDY_ERR_INVALID;
    const char *hex = json_string_value(h);
    size_t n = json_string_length(h) / 2;
    uint8_t *bin = malloc(n ? n : 1);
    if (!bin)
        return EDDY_ERR_NOMEM;
    eddy_err_t err = EDDY_OK;
    for (size_t i = 0; i < n && !err; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            err = EDDY_ERR_INVALID;
        else
            bin[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!err)
        err = eddy_agg_deserialize(layout, agg, bin, n);
    free(bin);
    *start = json_integer_value(s);
    *key = json_string_value(k);
    *key_len = json_string_length(k);
    return err;
}

/* --- GET /api/internal/stores/{store}/partials -------------------------------------- */

typedef struct encode_ctx_s {
    const eddy_agg_layout_t *layout; /* the store's layout */
    json_t *windows;                 /* the array being filled */
    bool nomem;                      /* an entry could not be encoded */
} encode_ctx_t;

static void encode_entry(eddy_cache_entry_t *e, void *opaque)
{
    encode_ctx_t *c = opaque;
    json_t *j = eddy_partial_encode(c->layout, e->window_start, e->key, e->key_len, e->state);
    if (!j)
        c->nomem = true;
    else
        json_array_append_new(c->windows, j);
}

static json_t *set_json(const bool *set, int n)
{
    json_t *a = json_array();
    for (int p = 0; p < n; p++)
        if (set[p])
            json_array_append_new(a, json_integer(p));
    return a;
}

/* Marks the partitions of a JSON array in set; false if it is not one. */
static bool parse_partitions_json(json_t *a, bool *set)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= EDDY_MAX_PARTITIONS)
            return false;
        set[json_integer_value(v)] = true;
    }
    return true;
}

/* Parses "P,Q,..." into want; false if malformed or out of range. */
static bool parse_list(const char *s, int n, bool *want)
{
    while (*s) {
        char *end;
        long p = strtol(s, &end, 10);
        if (end == s || p < 0 || p >= n || (*end && *end != ','))
            return false;
        want[p] = true;
        s = *end ? end + 1 : end;
    }
    return true;
}

int eddy_partials_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_runtime_t *rt = opaque;
    const char *name = eddy_http_param(req, "store");
    const eddy_store_def_t *def = eddy_topology_store_by_name(rt->topo, name);
    if (!def)
        return eddy_http_error(resp, 404, "no store named '%s' (GET /api/stores lists them)", name);
    int64_t from = 0, to = INT64_MAX;
    if (eddy_http_query_i64(req, resp, "from", "epoch milliseconds", INT64_MIN, INT64_MAX, &from) ||
        eddy_http_query_i64(req, resp, "to", "epoch milliseconds", INT64_MIN, INT64_MAX, &to))
        return 0; /* answered 400 */
    bool want[EDDY_MAX_PARTITIONS] = {0}, covered[EDDY_MAX_PARTITIONS] = {0},
         restoring[EDDY_MAX_PARTITIONS] = {0}, failed[EDDY_MAX_PARTITIONS] = {0};
    const char *list = eddy_http_query(req, "partitions");
    if (!list)
        memset(want, 1, sizeof(want));
    else if (!parse_list(list, rt->source_partitions, want))
        return eddy_http_error(resp, 400, "'partitions' must be comma-separated partitions 0..%d",
                               rt->source_partitions - 1);
    const int store = (int)def->index;
    eddy_cache_t *merged = eddy_cache_new(free_agg, NULL);
    bool corrupt = false;
    char errstr[256];
    if (!merged)
        return eddy_http_error(resp, 500, "out of memory");
    eddy_err_t err = read_local(rt, store, from, to, eddy_http_query(req, "key"), want, merged,
                                covered, restoring, failed, &corrupt, errstr, sizeof(errstr));
    if (err) {
        eddy_cache_destroy(merged);
        return eddy_windows_error(resp, err, errstr);
    }
    encode_ctx_t c = {.layout = rt->layouts[store], .windows = json_array()};
    eddy_cache_foreach(merged, encode_entry, &c);
    eddy_cache_destroy(merged);
    if (c.nomem) {
        json_decref(c.windows);
        return eddy_http_error(resp, 500, "out of memory encoding partials");
    }
    json_t *body = json_object();
    json_object_set_new(body, "store", json_string(def->name));
    json_object_set_new(body, "partitions", set_json(covered, rt->source_partitions));
    json_object_set_new(body, "restoring", set_json(restoring, rt->source_partitions));
    json_object_set_new(body, "failed", set_json(failed, rt->source_partitions));
    json_object_set_new(body, "corrupt", json_boolean(corrupt));
    json_object_set_new(body, "windows", c.windows);
    return eddy_http_json(resp, 200, body);
}

/* --- fan-out -------------------------------------------------------------------------- */

typedef struct ask_s {
    const eddy_peer_t *peer;         /* whom */
    bool parts[EDDY_MAX_PARTITIONS]; /* for which partitions */
    char target[2048];               /* the request target */
    int timeout_ms;                  /* query.peer.timeout.ms */
    pthread_t thread;                /* ask_peer() */
    bool started;                    /* thread was created */
    json_t *answer;                  /* the parsed body of a 200, or NULL */
    char error[256];                 /* why there is no answer */
} ask_t;

static void *ask_peer(void *arg)
{
    ask_t *a = arg;
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    if (eddy_peer_get(a->peer->server, a->target, a->timeout_ms, &status, &body, &len, a->error,
                      sizeof(a->error)))
        return NULL;
    json_error_t jerr;
    if (status != 200)
        snprintf(a->error, sizeof(a->error), "answered HTTP %d", status);
    else if (!(a->answer = json_loadb(body, len, JSON_ALLOW_NUL, &jerr)) ||
             !json_is_object(a->answer))
        snprintf(a->error, sizeof(a->error), "answered invalid JSON: %s", jerr.text);
    free(body);
    return NULL;
}

/* Appends s to buf percent-encoded (RFC 3986 unreserved characters kept). */
static void append_encoded(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            buf[n++] = (char)ch;
        else
            n += (size_t)snprintf(buf + n, size - n, "%%%02X", ch);
    }
    buf[n] = '\0';
}

/* Chooses, for each partition in `need`, the live peer that claims it (running
 * before restoring, then the freshest), and groups the partitions by peer. */
static size_t plan(const eddy_peer_t *peers, size_t n_peers, const bool *need, int partitions,
                   ask_t *asks)
{
    size_t n_asks = 0;
    int chosen[MAX_ASKED];
    for (int p = 0; p < partitions; p++) {
        if (!need[p])
            continue;
        int best = -1;
        for (size_t i = 0; i < n_peers; i++) {
            if (!peers[i].running[p] && !peers[i].restoring[p])
                continue;
            if (best < 0 || (peers[i].running[p] && !peers[best].running[p]) ||
                (peers[i].running[p] == peers[best].running[p] &&
                 peers[i].time_ms > peers[best].time_ms))
                best = (int)i;
        }
        if (best < 0)
            continue;
        size_t a = 0;
        while (a < n_asks && chosen[a] != best)
            a++;
        if (a == n_asks) {
            chosen[n_asks] = best;
            memset(&asks[n_asks], 0, sizeof(asks[n_asks]));
            asks[n_asks++].peer = &peers[best];
        }
        asks[a].parts[p] = true;
    }
    return n_asks;
}

/* Merges one peer's answer; marks what it covered. */
static void merge_answer(eddy_runtime_t *rt, int store, ask_t *a, eddy_cache_t *merged,
                         eddy_coverage_t *cov, bool *corrupt)
{
    bool got[EDDY_MAX_PARTITIONS] = {0}, rest[EDDY_MAX_PARTITIONS] = {0},
         bad[EDDY_MAX_PARTITIONS] = {0};
    json_t *windows = json_object_get(a->answer, "windows");
    json_t *failed = json_object_get(a->answer, "failed"); /* absent from older peers */
    if (!parse_partitions_json(json_object_get(a->answer, "partitions"), got) ||
        !parse_partitions_json(json_object_get(a->answer, "restoring"), rest) ||
        (failed && !parse_partitions_json(failed, bad)) || !json_is_array(windows)) {
        snprintf(a->error, sizeof(a->error), "answered no valid partials");
        return;
    }
    eddy_agg_t *scratch = eddy_agg_new(rt->layouts[store]);
    size_t i;
    json_t *w;
    json_array_foreach(windows, i, w)
    {
        int64_t start;
        const char *key;
        size_t key_len;
        if (!scratch ||
            eddy_partial_decode(rt->layouts[store], w, &start, &key, &key_len, scratch)) {
            *corrupt = true;
            continue;
        }
        if (!merge_into(merged, rt->layouts[store], start, key, key_len, scratch))
            *corrupt = true;
    }
    eddy_agg_destroy(scratch);
    *corrupt |= json_is_true(json_object_get(a->answer, "corrupt"));
    for (int p = 0; p < cov->source_partitions; p++)
        if (a->parts[p] && got[p]) {
            cov->covered[p] = true;
            cov->restoring[p] = rest[p];
            cov->failed[p] = bad[p];
        }
}

/* Builds the request target of one ask. */
static void ask_target(ask_t *a, const char *store, int64_t from, int64_t to, const char *key,
                       int partitions)
{
    char *t = a->target;
    const size_t size = sizeof(a->target);
    snprintf(t, size, "/api/internal/stores/");
    append_encoded(t, size, store);
    size_t n = strlen(t);
    n += (size_t)snprintf(
        t + n, size - n, "/partials?from=%lld&to=%lld&partitions=", (long long)from, (long long)to);
    for (int p = 0, first = 1; p < partitions && n + 8 < size; p++)
        if (a->parts[p]) {
            n += (size_t)snprintf(t + n, size - n, "%s%d", first ? "" : ",", p);
            first = 0;
        }
    if (key) {
        snprintf(t + n, size - n, "&key=");
        append_encoded(t, size, key);
    }
}

eddy_err_t eddy_windows_cluster(eddy_runtime_t *rt, int store, int64_t from, int64_t to,
                                const char *key, bool local_only, eddy_window_fn *fn, void *opaque,
                                eddy_coverage_t *cov, bool *corrupt, char *errstr,
                                size_t errstr_size)
{
    const int partitions = rt->source_partitions;
    const eddy_store_def_t *def = eddy_topology_store(rt->topo, (size_t)store);
    memset(cov, 0, sizeof(*cov));
    cov->source_partitions = partitions;
    cov->local_only = local_only || !rt->instances;
    cov->peers = json_array();
    bool all[EDDY_MAX_PARTITIONS], is_corrupt = false;
    memset(all, 1, sizeof(all));
    eddy_cache_t *merged = eddy_cache_new(free_agg, NULL);
    eddy_peer_t *peers = NULL;
    ask_t *asks = NULL;
    size_t n_asks = 0;
    eddy_cache_entry_t **sorted = NULL;
    eddy_err_t err = EDDY_OK;
    if (!merged) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if ((err = read_local(rt, store, from, to, key, all, merged, cov->covered, cov->restoring,
                          cov->failed, &is_corrupt, errstr, errstr_size)))
        goto out;
    bool need[EDDY_MAX_PARTITIONS] = {0}, missing = false;
    for (int p = 0; p < partitions; p++)
        missing |= need[p] = !cov->covered[p];
    if (!cov->local_only && missing) {
        peers = calloc(MAX_ASKED, sizeof(*peers));
        asks = calloc(MAX_ASKED, sizeof(*asks));
        if (!peers || !asks) {
            err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out;
        }
        size_t n_peers = eddy_instances_peers(rt->instances, peers, MAX_ASKED);
        n_asks = plan(peers, n_peers, need, partitions, asks);
        for (size_t i = 0; i < n_asks; i++) {
            asks[i].timeout_ms = (int)rt->cfg->peer_timeout_ms;
            ask_target(&asks[i], def->name, from, to, key, partitions);
            asks[i].started = !pthread_create(&asks[i].thread, NULL, ask_peer, &asks[i]);
            if (!asks[i].started)
                snprintf(asks[i].error, sizeof(asks[i].error), "cannot start a thread");
        }
        for (size_t i = 0; i < n_asks; i++) {
            if (asks[i].started)
                pthread_join(asks[i].thread, NULL);
            if (asks[i].answer)
                merge_answer(rt, store, &asks[i], merged, cov, &is_corrupt);
            json_t *pj = json_object();
            json_object_set_new(pj, "id", json_string(asks[i].peer->id));
            json_object_set_new(pj, "server", json_string(asks[i].peer->server));
            json_object_set_new(pj, "asked", set_json(asks[i].parts, partitions));
            if (*asks[i].error)
                json_object_set_new(pj, "error", json_string(asks[i].error));
            json_array_append_new(cov->peers, pj);
            json_decref(asks[i].answer);
            asks[i].answer = NULL;
        }
    }
    if (!cov->local_only)
        for (int p = 0; p < partitions; p++)
            cov->unreachable[p] = !cov->covered[p];
    size_t n = 0;
    if (!(sorted = eddy_cache_sorted(merged, &n))) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        fn(sorted[i]->window_start, sorted[i]->key, sorted[i]->key_len, sorted[i]->state, opaque);
out:
    if (corrupt)
        *corrupt = is_corrupt;
    free(sorted);
    free(asks);
    free(peers);
    eddy_cache_destroy(merged);
    return err;
}

int eddy_windows_error(eddy_http_resp_t *resp, eddy_err_t err, const char *errstr)
{
    if (err == EDDY_ERR_STATE)
        return eddy_http_error(resp, 503, "%s", errstr);
    if (err == EDDY_ERR_CORRUPT)
        return eddy_http_error(resp, 503,
                               "local state is being restored: %s; it is moved aside and the "
                               "tasks restore from their changelogs (retry shortly)",
                               errstr);
    return eddy_http_error(resp, 500, "%s", errstr);
}

void eddy_coverage_json(const eddy_coverage_t *cov, json_t *body)
{
    bool complete = true;
    for (int p = 0; p < cov->source_partitions; p++)
        complete &= cov->covered[p] && !cov->restoring[p] && !cov->failed[p];
    json_object_set_new(body, "partitions", set_json(cov->covered, cov->source_partitions));
    json_object_set_new(body, "restoring", set_json(cov->restoring, cov->source_partitions));
    json_object_set_new(body, "failed", set_json(cov->failed, cov->source_partitions));
    json_object_set_new(body, "unreachable", set_json(cov->unreachable, cov->source_partitions));
    json_object_set_new(body, "complete", json_boolean(complete));
    json_object_set_new(body, "local", json_boolean(cov->local_only));
    if (cov->peers)
        json_object_set(body, "peers", cov->peers);
    else
        json_object_set_new(body, "peers", json_array());
}

void eddy_coverage_free(eddy_coverage_t *cov)
{
    json_decref(cov->peers);
    cov->peers = NULL;
}
