/*
 * local_state.h — the life of the process's state database (stores/statedb.h):
 * opened checked (and verified, with state.verify.on.open), and, when it is found
 * damaged — at open, or later by any reader — moved aside, never deleted, for a
 * fresh one in which every task restores from its changelogs (local state is a
 * cache of them), or, with state.corruption.action=fail, eddy stops.
 *
 * Threads: the main thread opens, resets and closes. Stream threads use rt->db
 * directly, on the per-event path without any lock: rt->db changes only while
 * no stream thread runs. Every other reader (HTTP, WebSocket, the sink) brackets
 * its reads with eddy_local_state_read_begin/_end, a read lock the reset takes
 * for writing, so no query ever touches a closed database.
 */
#ifndef EDDY_LOCAL_STATE_H
#define EDDY_LOCAL_STATE_H

#include "engine/runtime.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct eddy_local_state_s eddy_local_state_t;

/** What /api/health and /metrics show. */
typedef struct eddy_local_state_stats_s {
    int64_t damaged;       /* times damaged local state was found (at open or running) */
    int64_t resets;        /* times it was moved aside and a fresh database opened */
    int64_t last_reset_ms; /* wall clock when the last reset ended; 0: none */
    int64_t last_reset_ns; /* how long it took (stop threads, move aside, reopen) */
    bool resetting;        /* damage was found and the reset is not done: reads get 503 */
    char moved_to[4200];   /* where the last damaged state went ("" if none) */
    char reason[512];      /* what was found ("" if nothing) */
} eddy_local_state_stats_t;

/** Opens <state.dir>/<application.id> as rt->db and sets rt->local_state. State
 *  found damaged is moved aside and a fresh database opened, logged at ERROR with
 *  the path it went to; with state.corruption.action=fail it is an error that
 *  names the dir instead. NULL with errstr filled on failure. Main thread. */
eddy_local_state_t *eddy_local_state_open(eddy_runtime_t *rt, char *errstr, size_t errstr_size);

/** Closes rt->db, first flushing its memtables when `flush` (a clean stop: the
 *  next start finds SST files and no WAL to replay; skipped when damaged), and
 *  frees. No other thread may use rt->db any more. NULL is a no-op. */
void eddy_local_state_close(eddy_local_state_t *ls, bool flush);

/** True once a reader found rt->db damaged; the main thread then stops the stream
 *  threads (they commit nothing more) and calls eddy_local_state_reset, or, if
 *  eddy_local_state_fails, stops. Any thread; cheap. */
bool eddy_local_state_damaged(const eddy_local_state_t *ls);

/** state.corruption.action=fail: damaged state stops eddy instead of a reset. */
bool eddy_local_state_fails(const eddy_local_state_t *ls);

/** The main thread noticed the damage: counts it, and from now on readers get
 *  NULL until a fresh database is in place. Call before stopping the threads. */
void eddy_local_state_noticed(eddy_local_state_t *ls);

/** With no stream thread running: closes the damaged rt->db, moves its dir to
 *  <dir>.damaged-<UTC time>, opens a fresh one as rt->db. Fails (eddy must stop)
 *  if the dir cannot be moved, the new one not opened, or the state was reset
 *  less than 10 minutes ago (a disk that keeps damaging it). Main thread. */
eddy_err_t eddy_local_state_reset(eddy_local_state_t *ls, char *errstr, size_t errstr_size);

/** The stream threads run again: records how long the reset took since it was
 *  noticed. Main thread. */
void eddy_local_state_reset_done(eddy_local_state_t *ls);

/** Counts the fresh databases put in place; a halted stream thread waits for it
 *  to move before it reads rt->db again. 0 without a local state. Any thread. */
uint64_t eddy_local_state_generation(const eddy_runtime_t *rt);

/** For readers that are not stream threads: rt->db with a read lock held, or
 *  NULL while it is damaged or being reset (answer "being restored", 503). A
 *  non-NULL result must be released with eddy_local_state_read_end. Without a
 *  local state (unit tests) simply rt->db. Never on the per-event path. */
eddy_statedb_t *eddy_local_state_read_begin(eddy_runtime_t *rt);
void eddy_local_state_read_end(eddy_runtime_t *rt);

/** Copies the counters and the last reset's details. Any thread. */
void eddy_local_state_stats(const eddy_runtime_t *rt, eddy_local_state_stats_t *out);

#endif /* EDDY_LOCAL_STATE_H */
