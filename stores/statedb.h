/*
 * statedb.h — eddy's local state: one RocksDB instance per process, a column
 * family per window store, and one ("eddy_meta") for per-task positions.
 *
 * A window entry is (store, task, window start, group key) -> an opaque
 * serialized aggregate; keys are laid out as in window_key.h, so one task's
 * windows are contiguous and time-ordered and both retention and dropping a
 * task are one DeleteRange. A task's checkpoint (next input offset, stream
 * time) and its per-store changelog offsets are written in the same atomic
 * batch as its state, so after any crash state and positions agree.
 * docs/stores.md has the layout, the record formats and the commit protocol.
 *
 * Threads: the handle is shared by every stream and query thread; all calls
 * taking only a db are thread-safe. A batch belongs to the thread filling it.
 * Reads see committed batches whole or not at all; a scan sees one point in time.
 *
 * Damage: a call that finds the database damaged (RocksDB's Corruption status, a
 * file it needs gone, a key no eddy wrote) returns EDDY_ERR_CORRUPT and marks the
 * handle damaged for good (eddy_statedb_damaged); every other failure (a full
 * disk, an I/O error, permissions) is EDDY_ERR_STORE. Local state is a cache of
 * the changelogs: damaged state is moved aside (eddy_statedb_move_aside) and
 * rebuilt; docs/stores.md, "Damaged local state".
 */
#ifndef EDDY_STATEDB_H
#define EDDY_STATEDB_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDDY_STATEDB_FORMAT 2 /* layout version stored in the db; see docs/stores.md */

typedef struct eddy_statedb_s eddy_statedb_t;

/** Where a (store, task)'s local state stands: how far it includes the store's
 *  changelog partition and, through the last commit marker applied, the input.
 *  Stores of one task can stand at different input offsets after a restore from
 *  changelogs (a crash between two stores' markers); the task then resumes at the
 *  smallest and each store skips the records it already holds. */
typedef struct eddy_changelog_pos_s {
    int64_t next_offset;  /* next changelog offset not yet applied */
    int64_t input_offset; /* next input offset the store's state does not include */
    int64_t stream_time;  /* the task's stream time at that input offset, INT64_MIN: none */
} eddy_changelog_pos_t;
typedef struct eddy_statedb_batch_s eddy_statedb_batch_t;

/** Where a task's local state ends in its input. */
typedef struct eddy_checkpoint_s {
    int64_t input_offset; /* next input offset the state does not include yet */
    int64_t stream_time;  /* the task's stream time at that point (ms), INT64_MIN: none */
} eddy_checkpoint_t;

/** Opens (creating `dir` and the database as needed) the state in `dir` with a
 *  column family per store name; names must be unique, non-empty and not
 *  "default" or "eddy_meta". Column families of stores not listed are kept
 *  and left alone (only drop_task touches them). Returns NULL and fills
 *  errstr if the directory is locked by another process, holds another state
 *  format, or cannot be opened. Call once per process, from any thread. */
eddy_statedb_t *eddy_statedb_open(const char *dir, const char *const *store_names, size_t n_stores,
                                  char *errstr, size_t errstr_size);

/** How eddy_statedb_open_with opens. */
typedef struct eddy_statedb_open_opts_s {
    bool verify; /* read every block of every SST file at open, checking its checksum
                    (costs a read of the whole state: docs/stores.md) */
} eddy_statedb_open_opts_t;

/** eddy_statedb_open with options (NULL: the defaults, no verification). On
 *  failure *err (if not NULL) says why: EDDY_ERR_CORRUPT when the state in `dir`
 *  is damaged (RocksDB refuses it as corrupt, a file it needs is gone, the
 *  MANIFEST's last record is cut off, or the verification found a bad block),
 *  EDDY_ERR_STATE when another process holds it or it has another format, other
 *  codes otherwise. A damaged dir is left exactly as it was found. */
eddy_statedb_t *eddy_statedb_open_with(const char *dir, const char *const *store_names,
                                       size_t n_stores, const eddy_statedb_open_opts_t *opts,
                                       eddy_err_t *err, char *errstr, size_t errstr_size);

/** Reads every entry of every column family, checking every block's checksum
 *  (not through the block cache), as the verification at open does; *bytes (if
 *  not NULL) gets the bytes of keys and values read. EDDY_ERR_CORRUPT if a block
 *  is damaged. Any thread. */
eddy_err_t eddy_statedb_verify(eddy_statedb_t *db, uint64_t *bytes, char *errstr,
                               size_t errstr_size);

/** True once a call on this handle found the database damaged (see the top of
 *  this file); one atomic load, any thread. */
bool eddy_statedb_damaged(const eddy_statedb_t *db);

/** What the first call that found the damage said ("" if none did yet). */
void eddy_statedb_damage(const eddy_statedb_t *db, char *why, size_t why_size);

/** Moves the closed state dir `dir` aside to `<dir>.damaged-<UTC time>` (a
 *  suffix -2, -3, ... if that exists): nothing is deleted. `moved` gets the new
 *  path. EDDY_ERR_NOTFOUND if `dir` does not exist (nothing to move). */
eddy_err_t eddy_statedb_move_aside(const char *dir, char *moved, size_t moved_size, char *errstr,
                                   size_t errstr_size);

/** Closes the database. Every write that returned is in the WAL, so nothing
 *  is flushed first. No other call may be running or follow. NULL is a no-op. */
void eddy_statedb_close(eddy_statedb_t *db);

/** Index of the store named `name` (as given to open), or -1. */
int eddy_statedb_store_index(const eddy_statedb_t *db, const char *name);

/** Flushes every memtable to SST files, so that a restart has no WAL to replay
 *  and stats count SST bytes. Optional (e.g. at a clean shutdown); any thread. */
eddy_err_t eddy_statedb_flush(eddy_statedb_t *db, char *errstr, size_t errstr_size);

/* --- batches: collect changes, then eddy_statedb_write applies them at once --- */

/** A new empty batch, or NULL if out of memory. Owned by the calling thread. */
eddy_statedb_batch_t *eddy_statedb_batch_new(void);
/** A batch for bulk loads (the restore): its puts are held back and go into
 *  RocksDB in key order at eddy_statedb_write, only the last of equal keys,
 *  after the batch's other operations (so it must not delete what it puts).
 *  RocksDB's memtable inserts keys in order several times faster. */
eddy_statedb_batch_t *eddy_statedb_batch_new_sorted(void);
/** NULL is a no-op. */
void eddy_statedb_batch_destroy(eddy_statedb_batch_t *batch);
/** Empties the batch for reuse (keeps its memory). */
void eddy_statedb_batch_clear(eddy_statedb_batch_t *batch);
/** Operations (puts, deletes, range deletes, checkpoints) in the batch. */
int eddy_statedb_batch_count(const eddy_statedb_batch_t *batch);

/** Sets (store, task, window_start, key) to value; both are copied. */
void eddy_statedb_batch_put(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int store,
                            int32_t task, int64_t window_start, const char *key, size_t key_len,
                            const void *value, size_t value_len);
void eddy_statedb_batch_delete(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int store,
                               int32_t task, int64_t window_start, const char *key, size_t key_len);

/** Deletes every window of (store, task) that starts before `cutoff`, as one
 *  range tombstone. Tombstones slow down iterators until compacted, so call it
 *  when the cutoff passes a window start (align it to the window advance), not
 *  with a new cutoff on every commit. */
void eddy_statedb_batch_delete_windows_before(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                              int store, int32_t task, int64_t cutoff);

/** Deletes everything of the task: its windows in every column family (also
 *  stores not listed at open), its checkpoint and its changelog offsets. */
void eddy_statedb_batch_drop_task(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int32_t task);

/** Records the task's checkpoint; commit it in the batch holding the state it covers. */
void eddy_statedb_batch_set_checkpoint(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                       int32_t task, const eddy_checkpoint_t *cp);

/** Records where the state of (store, task) stands in its changelog partition
 *  and in the input; commit it in the batch holding that state. */
void eddy_statedb_batch_set_changelog_pos(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                          int store, int32_t task, const eddy_changelog_pos_t *pos);

/** Applies the batch atomically: after a crash at any moment either all of it
 *  or none of it is there. `sync` fsyncs the WAL first; without it a process
 *  crash (kill -9) loses nothing that returned, a machine crash may lose the
 *  last writes (whole batches, never part of one). The batch is left as it
 *  was; clear it to reuse it. Any thread; concurrent writes are serialized. */
eddy_err_t eddy_statedb_write(eddy_statedb_t *db, eddy_statedb_batch_t *batch, bool sync,
                              char *errstr, size_t errstr_size);

/* --- reads: any thread, concurrently with writes ---------------------------- */

/** Point read of (store, task, window_start, key). Sets *found; when found,
 *  *len is the value's size and the value is copied into buf if it fits in
 *  `cap` (otherwise nothing is copied: call again with len bytes). */
eddy_err_t eddy_statedb_get(eddy_statedb_t *db, int store, int32_t task, int64_t window_start,
                            const char *key, size_t key_len, void *buf, size_t cap, size_t *len,
                            bool *found, char *errstr, size_t errstr_size);

/** The task's checkpoint; *found is false if it has none (no local state). */
eddy_err_t eddy_statedb_get_checkpoint(eddy_statedb_t *db, int32_t task, eddy_checkpoint_t *cp,
                                       bool *found, char *errstr, size_t errstr_size);

/** Where (store, task) stands; *found is false if nothing was recorded (the
 *  store's state of this task must be restored from the start of its changelog). */
eddy_err_t eddy_statedb_get_changelog_pos(eddy_statedb_t *db, int store, int32_t task,
                                          eddy_changelog_pos_t *pos, bool *found, char *errstr,
                                          size_t errstr_size);

/** Called for each entry of a scan; return nonzero to stop the scan. The
 *  pointers are valid during the call only. */
typedef int(eddy_statedb_scan_fn)(int32_t task, int64_t window_start, const char *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  void *opaque);

/** Visits the entries of `store` with from <= window start < to, of one task
 *  (task >= 0) or of every task (task < 0), in (task, window start, key) order.
 *  The scan reads one consistent point in time: a batch written meanwhile is
 *  seen entirely or not at all. */
eddy_err_t eddy_statedb_scan(eddy_statedb_t *db, int store, int32_t task, int64_t from, int64_t to,
                             eddy_statedb_scan_fn *fn, void *opaque, char *errstr,
                             size_t errstr_size);

/** RocksDB's estimates for a store (all tasks), for metrics; cheap (no I/O).
 *  keys: live keys, memtables included (deletes not yet compacted skew it);
 *  sst_bytes: bytes in SST files on disk (0 until a memtable is flushed). */
void eddy_statedb_store_stats(eddy_statedb_t *db, int store, uint64_t *keys, uint64_t *sst_bytes);

#endif /* EDDY_STATEDB_H */
