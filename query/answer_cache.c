/*
 * answer_cache.c — serialized REST answers until their state changes (see
 * answer_cache.h).
 */
#include "query/answer_cache.h"
#include "engine/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS   64
#define KEY_MAX 320

typedef struct slot_s {
    char key[KEY_MAX]; /* what was asked */
    uint64_t gen;      /* generation it was computed at */
    int64_t at_ns;     /* when (monotonic) */
    char *body;        /* the serialized answer (owned) */
    size_t len;        /* its length */
} slot_t;

struct eddy_answer_cache_s {
    const eddy_runtime_t *rt;   /* borrowed */
    pthread_mutex_t lock;       /* guards slots */
    slot_t slots[SLOTS];        /* by hash of the key */
    atomic_ullong hits, misses; /* counters */
};

eddy_answer_cache_t *eddy_answer_cache_new(const eddy_runtime_t *rt)
{
    eddy_answer_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->rt = rt;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void eddy_answer_cache_destroy(eddy_answer_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < SLOTS; i++)
        free(c->slots[i].body);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

uint64_t eddy_answer_generation(const eddy_runtime_t *rt)
{
    const eddy_metrics_t *m = &rt->metrics;
    return (uint64_t)atomic_load_explicit(&m->commits, memory_order_acquire) +
           (uint64_t)atomic_load_explicit(&m->rebalances, memory_order_acquire) +
           (uint64_t)atomic_load_explicit(&m->restores, memory_order_acquire) +
           (uint64_t)atomic_load_explicit(&m->aborts, memory_order_acquire);
}

static slot_t *slot_of(eddy_answer_cache_t *c, const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &c->slots[h % SLOTS];
}

bool eddy_answer_cache_get(eddy_answer_cache_t *c, const char *key, uint64_t gen,
                           eddy_http_resp_t *resp)
{
    if (!c || strlen(key) >= KEY_MAX)
        return false;
    const int64_t ttl_ns = c->rt->cfg->commit_interval_ms * 1000000;
    char *copy = NULL;
    size_t len = 0;
    pthread_mutex_lock(&c->lock);
    slot_t *s = slot_of(c, key);
    if (s->body && s->gen == gen && eddy_mono_ns() - s->at_ns < ttl_ns && !strcmp(s->key, key) &&
        (copy = malloc(s->len)))
        memcpy(copy, s->body, len = s->len);
    pthread_mutex_unlock(&c->lock);
    if (!copy)
        return false;
    atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
    eddy_http_bytes_owned(resp, 200, "application/json; charset=utf-8", copy, len, free);
    return true;
}

int eddy_answer_cache_put(eddy_answer_cache_t *c, const char *key, uint64_t gen, int64_t at_ns,
                          char *body, eddy_http_resp_t *resp)
{
    size_t len = strlen(body);
    char *copy = c && strlen(key) < KEY_MAX ? malloc(len) : NULL;
    if (copy) {
        memcpy(copy, body, len);
        pthread_mutex_lock(&c->lock);
        slot_t *s = slot_of(c, key);
        free(s->body);
        memcpy(s->key, key, strlen(key) + 1);
        s->gen = gen;
        s->at_ns = at_ns;
        s->body = copy;
        s->len = len;
        pthread_mutex_unlock(&c->lock);
    }
    if (c)
        atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
    return eddy_http_bytes_owned(resp, 200, "application/json; charset=utf-8", body, len, free);
}

int eddy_answer_cache_put_json(eddy_answer_cache_t *c, const char *key, uint64_t gen, int64_t at_ns,
                               json_t *body, const char *err, eddy_http_resp_t *resp)
{
    if (!body)
        return eddy_http_error(resp, 500, "%s", err);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return eddy_http_error(resp, 500, "out of memory");
    return eddy_answer_cache_put(c, key, gen, at_ns, text, resp);
}

void eddy_answer_cache_stats(const eddy_answer_cache_t *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? atomic_load_explicit(&c->hits, memory_order_relaxed) : 0;
    *misses = c ? atomic_load_explicit(&c->misses, memory_order_relaxed) : 0;
}
