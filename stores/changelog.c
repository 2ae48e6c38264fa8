/*
 * changelog.c — changelog record codec and replay (see changelog.h).
 *
 *   data key    'W' | window start (i64, sign-flipped big-endian) | group key
 *   data value  version | incarnation u64 | seq u64 | serialized aggregate
 *   marker key  'M' | incarnation u64
 *   marker value version | incarnation u64 | seq u64 | input offset i64 | stream time i64
 *                | records u32 | flags u8
 *
 * Replay holds the data records of the commit in progress in one growing arena
 * (copied: librdkafka's buffers do not outlive the message); it is emptied at
 * every marker, so it never holds more than one commit.
 */
#include "stores/changelog.h"
#include "stores/window_key.h"
#include "engine/util.h"

#include <stdlib.h>
#include <string.h>

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

size_t eddy_changelog_data_key(uint8_t *out, size_t cap, int64_t window_start, const char *key,
                               size_t key_len)
{
    if (cap < 9 + key_len)
        return 0;
    out[0] = 'W';
    eddy_key_put_i64(out + 1, window_start);
    memcpy(out + 9, key, key_len);
    return 9 + key_len;
}

void eddy_changelog_data_header(uint8_t out[EDDY_CHANGELOG_DATA_HDR], uint64_t incarnation,
                                uint64_t seq)
{
    out[0] = EDDY_CHANGELOG_VERSION;
    put_u64(out + 1, incarnation);
    put_u64(out + 9, seq);
}

void eddy_changelog_marker(uint8_t key[EDDY_CHANGELOG_MARKER_KEY],
                           uint8_t value[EDDY_CHANGELOG_MARKER_LEN], const eddy_changelog_rec_t *m)
{
    key[0] = 'M';
    put_u64(key + 1, m->incarnation);
    value[0] = EDDY_CHANGELOG_VERSION;
    put_u64(value + 1, m->incarnation);
    put_u64(value + 9, m->seq);
    put_u64(value + 17, (uint64_t)m->input_offset);
    put_u64(value + 25, (uint64_t)m->stream_time);
    for (int i = 0; i < 4; i++)
        value[33 + i] = (uint8_t)(m->records >> (24 - 8 * i));
    value[37] = m->flags;
}

eddy_err_t eddy_changelog_decode(const void *key, size_t key_len, const void *value,
                                 size_t value_len, eddy_changelog_rec_t *rec, char *errstr,
                                 size_t errstr_size)
{
    const uint8_t *k = key, *v = value;
    memset(rec, 0, sizeof(*rec));
    if (!k || key_len < 1)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "record without a key");
    if (!v || value_len < EDDY_CHANGELOG_DATA_HDR || v[0] != EDDY_CHANGELOG_VERSION)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "value of %zu bytes is not a version %d changelog record", value_len,
                         EDDY_CHANGELOG_VERSION);
    rec->incarnation = get_u64(v + 1);
    rec->seq = get_u64(v + 9);
    if (k[0] == 'M') {
        if (key_len != EDDY_CHANGELOG_MARKER_KEY || value_len != EDDY_CHANGELOG_MARKER_LEN ||
            get_u64(k + 1) != rec->incarnation)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "malformed commit marker");
        rec->marker = true;
        rec->input_offset = (int64_t)get_u64(v + 17);
        rec->stream_time = (int64_t)get_u64(v + 25);
        rec->records = (uint32_t)v[33] << 24 | (uint32_t)v[34] << 16 | (uint32_t)v[35] << 8 | v[36];
        rec->flags = v[37];
        return EDDY_OK;
    }
    if (k[0] != 'W' || key_len < 9)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "unknown record key type 0x%02x",
                         k[0]);
    rec->window_start = eddy_key_get_i64(k + 1);
    rec->key = (const char *)k + 9;
    rec->key_len = key_len - 9;
    rec->state = v + EDDY_CHANGELOG_DATA_HDR;
    rec->state_len = value_len - EDDY_CHANGELOG_DATA_HDR;
    return EDDY_OK;
}

/* --- replay ------------------------------------------------------------------------ */

typedef struct held_s {
    size_t at;        /* offset of the copy in the arena: key, then value */
    size_t key_len;   /* key bytes */
    size_t value_len; /* value bytes */
} held_t;

struct eddy_changelog_replay_s {
    eddy_changelog_apply_fn *apply;   /* confirmed data records go here */
    eddy_changelog_commit_fn *commit; /* and markers here */
    void *opaque;                     /* for both */
    uint8_t *arena;                   /* copies of the held records */
    size_t arena_len, arena_cap;      /* used, allocated */
    held_t *held;                     /* the held records, in log order */
    size_t n_held, cap_held;          /* used, allocated */
    uint64_t incarnation;             /* the current writer's incarnation */
    bool has_writer;                  /* incarnation is set */
    uint64_t *retired;                /* incarnations that another one followed */
    size_t n_retired, cap_retired;    /* used, allocated */
    int64_t zombie;                   /* records of retired incarnations, ignored */
    int64_t dropped;                  /* records of abandoned commits */
    int64_t bad;                      /* undecodable records */
    bool snapshot_seen;               /* a whole snapshot commit was applied */
};

eddy_changelog_replay_t *eddy_changelog_replay_new(eddy_changelog_apply_fn *apply,
                                                   eddy_changelog_commit_fn *commit, void *opaque)
{
    eddy_changelog_replay_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->apply = apply;
    r->commit = commit;
    r->opaque = opaque;
    return r;
}

void eddy_changelog_replay_destroy(eddy_changelog_replay_t *r)
{
    if (!r)
        return;
    free(r->arena);
    free(r->held);
    free(r->retired);
    free(r);
}

static void drop_held(eddy_changelog_replay_t *r)
{
    r->dropped += (int64_t)r->n_held;
    r->n_held = 0;
    r->arena_len = 0;
}

static bool hold(eddy_changelog_replay_t *r, const void *key, size_t key_len, const void *value,
                 size_t value_len)
{
    size_t need = r->arena_len + key_len + value_len;
    if (need > r->arena_cap) {
        size_t cap = r->arena_cap ? r->arena_cap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *a = realloc(r->arena, cap);
        if (!a)
            return false;
        r->arena = a;
        r->arena_cap = cap;
    }
    if (r->n_held == r->cap_held) {
        size_t cap = r->cap_held ? r->cap_held * 2 : 256;
        held_t *h = realloc(r->held, cap * sizeof(*h));
        if (!h)
            return false;
        r->held = h;
        r->cap_held = cap;
    }
    r->held[r->n_held++] = (held_t){r->arena_len, key_len, value_len};
    memcpy(r->arena + r->arena_len, key, key_len);
    memcpy(r->arena + r->arena_len + key_len, value, value_len);
    r->arena_len = need;
    return true;
}

void eddy_changelog_replay_feed(eddy_changelog_replay_t *r, int64_t offset, const void *key,
                                size_t key_len, const void *value, size_t value_len)
{
    eddy_changelog_rec_t rec;
    char errstr[128];
    if (eddy_changelog_decode(key, key_len, value, value_len, &rec, errstr, sizeof(errstr))) {
        r->bad++;
        return;
    }
    if (!r->has_writer || rec.incarnation != r->incarnation) {
        /* A writer that another one followed is gone for good: what it writes
         * after that (a zombie that had lost the partition without noticing) is
         * ignored, so the log is one history of writers taking over from each
         * other. Each task start and rollback draws a new incarnation, so a live
         * writer never reappears after another one. */
        for (size_t i = 0; i < r->n_retired; i++)
            if (r->retired[i] == rec.incarnation) {
                r->zombie++;
                return;
            }
        if (r->has_writer) {
            /* The held commit's writer is gone: it never finished. */
            drop_held(r);
            if (r->n_retired == r->cap_retired) {
                size_t cap = r->cap_retired ? r->cap_retired * 2 : 16;
                uint64_t *ids = realloc(r->retired, cap * sizeof(*ids));
                if (ids) {
                    r->retired = ids;
                    r->cap_retired = cap;
                }
            }
            if (r->n_retired < r->cap_retired)
                r->retired[r->n_retired++] = r->incarnation;
        }
        r->incarnation = rec.incarnation;
        r->has_writer = true;
    }
    if (!rec.marker) {
        if (!hold(r, key, key_len, value, value_len))
            r->bad++; /* out of memory: counted, never applied half */
        return;
    }
    size_t kept = 0, applied_of_seq = 0;
    for (size_t i = 0; i < r->n_held; i++) {
        held_t *h = &r->held[i];
        eddy_changelog_rec_t data;
        eddy_changelog_decode(r->arena + h->at, h->key_len, r->arena + h->at + h->key_len,
                              h->value_len, &data, errstr, sizeof(errstr));
        if (data.seq <= rec.seq) {
            r->apply(&data, r->opaque);
            applied_of_seq += data.seq == rec.seq;
        } else
            r->held[kept++] = *h; /* a later commit's (not written by eddy, but harmless) */
    }
    r->n_held = kept;
    if (kept == 0)
        r->arena_len = 0;
    /* Whole only if every record of it was read: retention may have cut into it. */
    if ((rec.flags & EDDY_CHANGELOG_SNAPSHOT) && applied_of_seq == rec.records)
        r->snapshot_seen = true;
    r->commit(&rec, offset, r->opaque);
}

size_t eddy_changelog_replay_pending(const eddy_changelog_replay_t *r)
{
    return r->n_held;
}

int64_t eddy_changelog_replay_dropped(const eddy_changelog_replay_t *r)
{
    return r->dropped;
}

int64_t eddy_changelog_replay_bad(const eddy_changelog_replay_t *r)
{
    return r->bad;
}

bool eddy_changelog_replay_snapshot_seen(const eddy_changelog_replay_t *r)
{
    return r->snapshot_seen;
}

int64_t eddy_changelog_replay_zombie(const eddy_changelog_replay_t *r)
{
    return r->zombie;
}
