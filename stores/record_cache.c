/*
 * record_cache.c — an open-addressing hash table (linear probing, power-of-two
 * capacity, load factor <= 1/2) of entry pointers; see record_cache.h. Deletion
 * uses backward-shift so no tombstones accumulate as windows come and go.
 */
#include "stores/record_cache.h"

#include <stdlib.h>
#include <string.h>

struct eddy_cache_s {
    eddy_cache_entry_t **slots;     /* capacity slots, NULL = empty */
    size_t capacity;                /* power of two */
    size_t count;                   /* occupied slots */
    eddy_cache_free_fn *free_state; /* releases an entry's state */
    void *opaque;                   /* passed to free_state */
    uint64_t hits;                  /* finds that found */
    uint64_t misses;                /* finds that did not */
};

/* Eight bytes at a time (the key is short: an endpoint, a status, a region):
 * each word is mixed in with a multiply, then a final avalanche so linear
 * probing sees well-spread low bits. In memory only: never stored. */
static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w * 0x9e3779b97f4a7c15ULL;
    h = (h << 31) | (h >> 33);
    return h * 0xc2b2ae3d27d4eb4fULL;
}

static uint64_t entry_hash(int64_t window_start, const char *key, size_t key_len)
{
    uint64_t h = mix(0xcbf29ce484222325ULL ^ key_len, (uint64_t)window_start);
    size_t i = 0;
    for (; i + 8 <= key_len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = mix(h, w);
    }
    if (i < key_len) {
        uint64_t w = 0;
        memcpy(&w, key + i, key_len - i);
        h = mix(h, w);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

eddy_cache_t *eddy_cache_new(eddy_cache_free_fn *free_state, void *opaque)
{
    eddy_cache_t *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->capacity = 64;
    cache->slots = calloc(cache->capacity, sizeof(*cache->slots));
    if (!cache->slots) {
        free(cache);
        return NULL;
    }
    cache->free_state = free_state;
    cache->opaque = opaque;
    return cache;
}

static void free_entry(eddy_cache_t *cache, eddy_cache_entry_t *e)
{
    if (cache->free_state)
        cache->free_state(e->state, cache->opaque);
    free(e);
}

void eddy_cache_destroy(eddy_cache_t *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->capacity; i++)
        if (cache->slots[i])
            free_entry(cache, cache->slots[i]);
    free(cache->slots);
    free(cache);
}

eddy_cache_entry_t *eddy_cache_find(eddy_cache_t *cache, int64_t window_start, const char *key,
                                    size_t key_len)
{
    uint64_t h = entry_hash(window_start, key, key_len);
    size_t mask = cache->capacity - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        eddy_cache_entry_t *e = cache->slots[i];
        if (!e) {
            cache->misses++;
            return NULL;
        }
        if (e->hash == h && e->window_start == window_start && e->key_len == key_len &&
            memcmp(e->key, key, key_len) == 0) {
            cache->hits++;
            return e;
        }
    }
}

static int grow(eddy_cache_t *cache)
{
    size_t capacity = cache->capacity * 2;
    eddy_cache_entry_t **slots = calloc(capacity, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < cache->capacity; i++) {
        eddy_cache_entry_t *e = cache->slots[i];
        if (!e)
            continue;
        size_t j = e->hash & (capacity - 1);
        while (slots[j])
            j = (j + 1) & (capacity - 1);
        slots[j] = e;
    }
    free(cache->slots);
    cache->slots = slots;
    cache->capacity = capacity;
    return 0;
}

eddy_cache_entry_t *eddy_cache_insert(eddy_cache_t *cache, int64_t window_start, const char *key,
                                      size_t key_len, void *state)
{
    if ((cache->count + 1) * 2 > cache->capacity && grow(cache) != 0) {
        if (cache->free_state)
            cache->free_state(state, cache->opaque);
        return NULL;
    }
    eddy_cache_entry_t *e = malloc(sizeof(*e) + key_len);
    if (!e) {
        if (cache->free_state)
            cache->free_state(state, cache->opaque);
        return NULL;
    }
    e->hash = entry_hash(window_start, key, key_len);
    e->window_start = window_start;
    e->state = state;
    e->dirty = false;
    e->key_len = (uint32_t)key_len;
    memcpy(e->key, key, key_len);
    size_t mask = cache->capacity - 1;
    size_t i = e->hash & mask;
    while (cache->slots[i])
        i = (i + 1) & mask;
    cache->slots[i] = e;
    cache->count++;
    return e;
}

void eddy_cache_foreach_dirty(eddy_cache_t *cache, eddy_cache_visit_fn *fn, void *opaque)
{
    for (size_t i = 0; i < cache->capacity; i++)
        if (cache->slots[i] && cache->slots[i]->dirty)
            fn(cache->slots[i], opaque);
}

void eddy_cache_foreach(eddy_cache_t *cache, eddy_cache_visit_fn *fn, void *opaque)
{
    for (size_t i = 0; i < cache->capacity; i++)
        if (cache->slots[i])
            fn(cache->slots[i], opaque);
}

static int by_start_key(const void *a, const void *b)
{
    const eddy_cache_entry_t *x = *(eddy_cache_entry_t *const *)a;
    const eddy_cache_entry_t *y = *(eddy_cache_entry_t *const *)b;
    if (x->window_start != y->window_start)
        return x->window_start < y->window_start ? -1 : 1;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

eddy_cache_entry_t **eddy_cache_sorted(eddy_cache_t *cache, size_t *n)
{
    eddy_cache_entry_t **entries = malloc((cache->count ? cache->count : 1) * sizeof(*entries));
    *n = 0;
    if (!entries)
        return NULL;
    for (size_t i = 0; i < cache->capacity; i++)
        if (cache->slots[i])
            entries[(*n)++] = cache->slots[i];
    qsort(entries, *n, sizeof(*entries), by_start_key);
    return entries;
}

/* Removes slot i and shifts later members of its probe run back (no tombstones). */
static void remove_slot(eddy_cache_t *cache, size_t i)
{
    size_t mask = cache->capacity - 1;
    cache->slots[i] = NULL;
    cache->count--;
    for (size_t j = (i + 1) & mask; cache->slots[j]; j = (j + 1) & mask) {
        size_t home = cache->slots[j]->hash & mask;
        /* Move j back into the hole at i if its home is not in (i, j]. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            cache->slots[i] = cache->slots[j];
            cache->slots[j] = NULL;
            i = j;
        }
    }
}

size_t eddy_cache_evict_before(eddy_cache_t *cache, int64_t cutoff)
{
    size_t removed = 0;
    for (size_t i = 0; i < cache->capacity;) {
        eddy_cache_entry_t *e = cache->slots[i];
        if (e && !e->dirty && e->window_start < cutoff) {
            remove_slot(cache, i);
            free_entry(cache, e);
            removed++;
            continue; /* slot i may now hold a shifted entry */
        }
        i++;
    }
    return removed;
}

size_t eddy_cache_count(const eddy_cache_t *cache)
{
    return cache->count;
}

void eddy_cache_hit_stats(const eddy_cache_t *cache, uint64_t *hits, uint64_t *misses)
{
    *hits = cache->hits;
    *misses = cache->misses;
}
