/*
 * event_model.h — the generator's synthetic events, separate from sending them.
 *
 * A model is a seeded pseudo-random source that writes one JSON event per call:
 * `http` events (seed 001: endpoint, method, status, latency, region, user) or
 * `activity` events (seeds 000/004: user actions). The same seed, kind and event
 * times give byte-identical events, on any machine. No allocation, no syscalls;
 * one model belongs to one thread. Schemas: docs/events.md.
 */
#ifndef EDDY_EVENT_MODEL_H
#define EDDY_EVENT_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum eddy_gen_kind_e {
    EDDY_GEN_HTTP = 0,     /**< HTTP request log events (monitoring topology) */
    EDDY_GEN_ACTIVITY = 1, /**< user activity events (activity topology) */
} eddy_gen_kind_t;

typedef struct eddy_gen_model_s {
    uint64_t s[4];        /* xoshiro256** state */
    eddy_gen_kind_t kind; /* which events to write */
} eddy_gen_model_t;

/** Largest event the model writes, in bytes, with room to spare. */
#define EDDY_GEN_EVENT_MAX 512

/** Seeds the model; equal seeds give equal event sequences. */
void eddy_gen_model_init(eddy_gen_model_t *model, eddy_gen_kind_t kind, uint64_t seed);

/** Writes the next event, with event time `ts_ms`, into buf (cap >= EDDY_GEN_EVENT_MAX)
 *  and returns its length. The record key (the user_id value) lies inside buf at
 *  [*key_off, *key_off + *key_len). */
size_t eddy_gen_model_next(eddy_gen_model_t *model, int64_t ts_ms, char *buf, size_t cap,
                           size_t *key_off, size_t *key_len);

/** Formats epoch milliseconds as ISO-8601 UTC with milliseconds,
 *  "2024-01-15T10:30:00.123Z" (24 characters + NUL; cap >= 25). Returns the length. */
size_t eddy_format_iso8601_ms(int64_t ts_ms, char *buf, size_t cap);

/** Parses "http" or "activity"; returns -1 for anything else. */
int eddy_gen_kind_parse(const char *name);

/** The vocabularies, for tests and docs: NULL-terminated lists. */
extern const char *const eddy_gen_http_endpoints[];
extern const char *const eddy_gen_http_regions[];
extern const char *const eddy_gen_http_methods[];
extern const char *const eddy_gen_activity_types[];

#endif /* EDDY_EVENT_MODEL_H */
