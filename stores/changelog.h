/*
 * changelog.h — the records of a store's changelog topic and how a restore reads
 * them back (docs/stores.md, "Changelogs").
 *
 * Each (store, task) has one changelog partition. A commit writes one data record
 * per dirty window (its whole serialized state, not a delta) and then one commit
 * marker, all tagged with the writer's incarnation (a random id per task start)
 * and the commit's sequence number within it. A restore applies a data record
 * only once a marker of the same incarnation with a sequence at or past the
 * record's has been read after it, so the records of a commit that never
 * finished (a crash, an abort the embedded broker shows anyway) are never
 * applied. Once a record of another incarnation appears, the earlier writer is
 * retired: anything it writes later (a zombie that lost its partition without
 * noticing; the embedded broker fences nobody) is ignored, so the log reads as
 * one history of writers taking over from each other. A writer starts with a
 * *claim* (a marker without state) and restores up to it, so whatever its
 * predecessor writes after the claim is ignored and everything before it is in
 * the new writer's state: a fence on a broker that fences nobody. Marker keys are per
 * incarnation, so log compaction keeps the last
 * marker of every incarnation and the rule still holds on a compacted topic.
 * A *snapshot* commit also rewrites every live window of its (store, task), so
 * a changelog whose start retention deleted (the embedded broker keeps 5 MiB per
 * partition and does not compact) is still whole from its last snapshot on.
 *
 * Pure functions and a per-partition replay state; used by one thread at a time.
 */
#ifndef EDDY_CHANGELOG_H
#define EDDY_CHANGELOG_H

#include "eddy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDDY_CHANGELOG_VERSION    1
#define EDDY_CHANGELOG_DATA_HDR   17 /* version, incarnation, sequence */
#define EDDY_CHANGELOG_MARKER_KEY 9  /* 'M', incarnation */
/* Marker value: version, incarnation, sequence, input offset, stream time,
 * records u32, flags u8. */
#define EDDY_CHANGELOG_MARKER_LEN 38
#define EDDY_CHANGELOG_SNAPSHOT   1 /* marker flag: the commit holds every live window */
#define EDDY_CHANGELOG_CLAIM      2 /* marker flag: a new writer takes over (no state) */

/** A decoded changelog record; pointers point into the record given to decode. */
typedef struct eddy_changelog_rec_s {
    bool marker;          /* a commit marker, else a data record */
    uint64_t incarnation; /* the writer's incarnation */
    uint64_t seq;         /* the commit's sequence number in the incarnation */
    int64_t window_start; /* data: window start */
    const char *key;      /* data: group key */
    size_t key_len;       /* data: its length */
    const void *state;    /* data: the serialized aggregate */
    size_t state_len;     /* data: its length */
    int64_t input_offset; /* marker: next input offset the commit covers */
    int64_t stream_time;  /* marker: the task's stream time then */
    uint32_t records;     /* marker: data records of the commit in this partition */
    uint8_t flags;        /* marker: EDDY_CHANGELOG_SNAPSHOT */
} eddy_changelog_rec_t;

/** Writes the key of the data record of (window_start, key) into out (cap bytes;
 *  9 + key_len are needed); returns its length, or 0 if it does not fit. */
size_t eddy_changelog_data_key(uint8_t *out, size_t cap, int64_t window_start, const char *key,
                               size_t key_len);

/** Writes the header of a data record's value; the serialized state follows it. */
void eddy_changelog_data_header(uint8_t out[EDDY_CHANGELOG_DATA_HDR], uint64_t incarnation,
                                uint64_t seq);

/** Writes a commit marker's key and value: `m` gives incarnation, seq,
 *  input_offset, stream_time, records and flags (the data fields are unused). */
void eddy_changelog_marker(uint8_t key[EDDY_CHANGELOG_MARKER_KEY],
                           uint8_t value[EDDY_CHANGELOG_MARKER_LEN], const eddy_changelog_rec_t *m);

/** Decodes a record; EDDY_ERR_INVALID (with the reason in errstr) if it is not one
 *  eddy wrote. */
eddy_err_t eddy_changelog_decode(const void *key, size_t key_len, const void *value,
                                 size_t value_len, eddy_changelog_rec_t *rec, char *errstr,
                                 size_t errstr_size);

/* --- replay: one changelog partition read in offset order ------------------------ */

typedef struct eddy_changelog_replay_s eddy_changelog_replay_t;

/** Called for every data record of a confirmed commit, in log order. */
typedef void(eddy_changelog_apply_fn)(const eddy_changelog_rec_t *rec, void *opaque);
/** Called for each marker after its commit's records were applied; `offset` is
 *  the marker's offset in the changelog partition. */
typedef void(eddy_changelog_commit_fn)(const eddy_changelog_rec_t *marker, int64_t offset,
                                       void *opaque);

eddy_changelog_replay_t *eddy_changelog_replay_new(eddy_changelog_apply_fn *apply,
                                                   eddy_changelog_commit_fn *commit, void *opaque);
/** Frees the replay; records still pending are dropped. NULL is a no-op. */
void eddy_changelog_replay_destroy(eddy_changelog_replay_t *r);

/** Feeds the record at `offset`. Records of an unfinished commit are held (copied)
 *  until their marker arrives, and dropped when a record of another incarnation
 *  shows that commit was abandoned. Undecodable records are counted and skipped. */
void eddy_changelog_replay_feed(eddy_changelog_replay_t *r, int64_t offset, const void *key,
                                size_t key_len, const void *value, size_t value_len);

/** Data records held, waiting for their marker. */
size_t eddy_changelog_replay_pending(const eddy_changelog_replay_t *r);

/** Data records dropped so far as parts of abandoned commits (pending ones at the
 *  end of a restore count once eddy_changelog_replay_destroy would drop them:
 *  add eddy_changelog_replay_pending). */
int64_t eddy_changelog_replay_dropped(const eddy_changelog_replay_t *r);

/** Records ignored because their incarnation had been followed by another one
 *  (a writer that kept writing after losing its partition). */
int64_t eddy_changelog_replay_zombie(const eddy_changelog_replay_t *r);

/** Records that could not be decoded. */
int64_t eddy_changelog_replay_bad(const eddy_changelog_replay_t *r);

/** True once a whole snapshot commit (its marker flagged EDDY_CHANGELOG_SNAPSHOT
 *  and every one of its records read) was applied: from there on the replay
 *  holds every live window, whatever retention removed before it. */
bool eddy_changelog_replay_snapshot_seen(const eddy_changelog_replay_t *r);

#endif /* EDDY_CHANGELOG_H */
