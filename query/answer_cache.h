/*
 * answer_cache.h — serialized REST answers kept until the state they were read
 * from changes. Queries see committed state only, so an answer stays right until
 * a local commit, a rebalance, a finished restore or a rollback (the runtime's
 * "generation", a sum of monotonic counters) and, for what peers contributed, for
 * at most one commit interval. Dashboards ask the same question many times per
 * commit; with the cache they cost one read per commit, not one per request.
 *
 * A fixed number of slots, by hash of the key; a newer answer replaces whatever
 * held its slot. Any thread: one short lock per lookup (a copy of the answer).
 */
#ifndef EDDY_ANSWER_CACHE_H
#define EDDY_ANSWER_CACHE_H

#include "engine/runtime.h"
#include "query/http.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct eddy_answer_cache_s eddy_answer_cache_t;

/** A cache for answers read from `rt` (borrowed). NULL if out of memory. */
eddy_answer_cache_t *eddy_answer_cache_new(const eddy_runtime_t *rt);

void eddy_answer_cache_destroy(eddy_answer_cache_t *cache);

/** The runtime's generation now: read it BEFORE reading the state an answer is
 *  made of, and keep the answer under it. */
uint64_t eddy_answer_generation(const eddy_runtime_t *rt);

/** If the cache holds `key` at generation `gen`, younger than one commit
 *  interval, answers 200 with it and returns true. */
bool eddy_answer_cache_get(eddy_answer_cache_t *cache, const char *key, uint64_t gen,
                           eddy_http_resp_t *resp);

/** Answers 200 with `body` (taken over, JSON text from json_dumps) and keeps a
 *  copy under `key`, computed at generation `gen` at time `at_ns` (monotonic). */
int eddy_answer_cache_put(eddy_answer_cache_t *cache, const char *key, uint64_t gen, int64_t at_ns,
                          char *body, eddy_http_resp_t *resp);

/** The same for a JSON answer: serializes `body` (taken over) compactly. A NULL
 *  body answers 500 with `err` (what failed to build it), nothing is kept. */
int eddy_answer_cache_put_json(eddy_answer_cache_t *cache, const char *key, uint64_t gen,
                               int64_t at_ns, json_t *body, const char *err,
                               eddy_http_resp_t *resp);

/** Hits and misses so far (misses: answers computed). */
void eddy_answer_cache_stats(const eddy_answer_cache_t *cache, uint64_t *hits, uint64_t *misses);

#endif /* EDDY_ANSWER_CACHE_H */
