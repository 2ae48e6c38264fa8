/*
 * record_cache.h — the in-memory record cache in front of a task's window store.
 *
 * Every event updates the aggregate of (window start, group key) here; RocksDB
 * sees only the dirty entries, once per commit. An entry holds an opaque state
 * pointer owned by the cache (freed through the callback given at creation).
 * Entries are allocated once per new (window, key), never per event. One cache
 * belongs to one task and is used by its stream thread only.
 */
#ifndef EDDY_RECORD_CACHE_H
#define EDDY_RECORD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eddy_cache_entry_s {
    uint64_t hash;        /* hash of (window_start, key) */
    int64_t window_start; /* window start, ms */
    void *state;          /* aggregate state, owned by the cache */
    bool dirty;           /* changed since the last commit */
    uint32_t key_len;     /* bytes in key */
    char key[];           /* group key (not NUL-terminated) */
} eddy_cache_entry_t;

typedef struct eddy_cache_s eddy_cache_t;

typedef void(eddy_cache_free_fn)(void *state, void *opaque);

/** A new empty cache; free_state releases an entry's state. */
eddy_cache_t *eddy_cache_new(eddy_cache_free_fn *free_state, void *opaque);

/** Frees every entry (dirty ones too). NULL is a no-op. */
void eddy_cache_destroy(eddy_cache_t *cache);

/** The entry for (window_start, key), or NULL. */
eddy_cache_entry_t *eddy_cache_find(eddy_cache_t *cache, int64_t window_start, const char *key,
                                    size_t key_len);

/** Adds an entry that must not exist yet, taking ownership of `state`. Returns it
 *  (clean), or NULL if out of memory (state is then freed). */
eddy_cache_entry_t *eddy_cache_insert(eddy_cache_t *cache, int64_t window_start, const char *key,
                                      size_t key_len, void *state);

typedef void(eddy_cache_visit_fn)(eddy_cache_entry_t *entry, void *opaque);

/** Visits every dirty entry (order unspecified); the visitor may clear `dirty`. */
void eddy_cache_foreach_dirty(eddy_cache_t *cache, eddy_cache_visit_fn *fn, void *opaque);

/** Visits every entry (order unspecified). */
void eddy_cache_foreach(eddy_cache_t *cache, eddy_cache_visit_fn *fn, void *opaque);

/** Every entry, ordered by window start, then key (bytewise, shorter first), in
 *  an array the caller frees; *n gets their count. NULL if out of memory. The
 *  entries stay owned by the cache. */
eddy_cache_entry_t **eddy_cache_sorted(eddy_cache_t *cache, size_t *n);

/** Removes the clean entries whose window starts before `cutoff`; returns how
 *  many were removed. Dirty entries stay until they were committed. */
size_t eddy_cache_evict_before(eddy_cache_t *cache, int64_t cutoff);

/** Entries in the cache. */
size_t eddy_cache_count(const eddy_cache_t *cache);

/** Cache lookups that found / did not find their entry, since creation. */
void eddy_cache_hit_stats(const eddy_cache_t *cache, uint64_t *hits, uint64_t *misses);

#endif /* EDDY_RECORD_CACHE_H */
