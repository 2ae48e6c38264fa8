/*
 * statedb.c — the RocksDB state database (see statedb.h, docs/stores.md).
 *
 * Tuned for a small, write-heavy working set on a machine with few cores: WAL
 * on (a kill -9 loses nothing that eddy_statedb_write returned for), no fsync
 * per commit unless asked, LZ4 in the upper levels and ZSTD in the last one, a
 * 10-bit bloom filter per key (most cache misses are new windows, absent from
 * the db), one 16 MiB block cache and 32 MiB of memtables for all column
 * families, and two background threads. Sorted batches (the restore's bulk
 * load) hold their puts back and hand them to RocksDB in key order.
 *
 * What always holds: the handle's fields are written only by open and close
 * (but the damage mark, set once by the first call that finds damage), so every
 * other call reads them without a lock; keys in a store column family are
 * window keys (window_key.h); task ids are >= 0. Every RocksDB error passes
 * through store_error(), which tells damage from other failures.
 */
#include "stores/statedb.h"
#include "stores/window_key.h"
#include "engine/log.h"
#include "engine/util.h"

#include <rocksdb/c.h>

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define META_CF        "eddy_meta"
#define FORMAT_KEY     "\377format" /* first byte above any task's (tasks are >= 0) */
#define CHECKPOINT_VER 1
#define CHECKPOINT_LEN 17  /* version, input offset, stream time */
#define CHANGELOG_TAG  'c' /* meta key [task]['c'][store name] */
#define CHANGELOG_VER  2
#define CHANGELOG_LEN  25  /* version, next changelog offset, input offset, stream time */
#define STACK_KEY      256 /* keys up to this size are built on the stack */

struct eddy_statedb_s {
    char *dir;                            /* the state dir (for messages) */
    rocksdb_t *rdb;                       /* the database */
    rocksdb_options_t *opts;              /* db and column family options */
    rocksdb_cache_t *cache;               /* block cache shared by all CFs */
    rocksdb_writeoptions_t *wopts;        /* commits: WAL, no fsync */
    rocksdb_writeoptions_t *wopts_sync;   /* commits with fsync of the WAL */
    rocksdb_readoptions_t *ropts;         /* point reads of the latest state */
    rocksdb_column_family_handle_t *meta; /* checkpoints, changelog offsets, format */
    rocksdb_column_family_handle_t **cf;  /* declared stores [0, n_stores), then
                                             CFs of undeclared ones [n_stores, n_cf) */
    size_t n_cf;                          /* entries in cf */
    char **names;                         /* declared store names, owned */
    size_t n_stores;                      /* entries in names */
    atomic_int damaged;                   /* 0; 1 while damage is written; 2 once it is */
    char damage[512];                     /* the first error that found damage */
};

/* A put held back by a sorted batch: its key and value are in the arena. */
typedef struct staged_put_s {
    uint64_t head[2];   /* the key's bytes 0-7 and 8-15, big-endian, zero-padded: most
                           comparisons end here (task, window start, group key start) */
    size_t off;         /* the key's first byte in the arena; the value follows it */
    uint32_t key_len;   /* bytes of the whole key (prefix and group key) */
    uint32_t value_len; /* bytes of the value */
    uint32_t cf;        /* index into db->cf */
} staged_put_t;

struct eddy_statedb_batch_s {
    rocksdb_writebatch_t *wb; /* the RocksDB batch */
    bool sorted;              /* puts are staged and go in in key order (batch_new_sorted) */
    staged_put_t *staged;     /* the staged puts, in the order they came */
    staged_put_t *scratch;    /* cap_staged entries for the merge sort */
    size_t n_staged, cap_staged;
    uint8_t *arena; /* their keys and values */
    size_t arena_len, arena_cap;
};

/* --- helpers ------------------------------------------------------------------- */

/* Values use plain big-endian two's complement (no ordering needed). */
static void put_be64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

static int64_t get_be64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

/* --- errors ---------------------------------------------------------------------- */

/* RocksDB's status text names its kind. "Corruption:" is a failed checksum or
 * structure check; "No such file or directory" in the database's own dir is a
 * file it needs that is gone (RocksDB opens only files it knows). Both mean the
 * state is damaged. The rest (a full disk, EIO, permissions, a read-only file
 * system) is the environment: moving the state aside would not help. */
static bool is_damage(const char *err)
{
    return !strncmp(err, "Corruption:", 11) || strstr(err, "No such file or directory");
}

/* Marks the database damaged, keeping the first message. */
static void mark_damaged(eddy_statedb_t *db, const char *why)
{
    int expected = 0;
    if (!db || !atomic_compare_exchange_strong(&db->damaged, &expected, 1))
        return;
    snprintf(db->damage, sizeof(db->damage), "%s", why);
    atomic_store_explicit(&db->damaged, 2, memory_order_release);
    eddy_log_error("state: %s is damaged: %s", db->dir, why);
}

/* Formats "<what>: <RocksDB's error>" into errstr, frees err and returns
 * EDDY_ERR_CORRUPT (marking db damaged) or EDDY_ERR_STORE. db may be NULL (open). */
static eddy_err_t store_error(eddy_statedb_t *db, char *err, char *errstr, size_t errstr_size,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static eddy_err_t store_error(eddy_statedb_t *db, char *err, char *errstr, size_t errstr_size,
                              const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const eddy_err_t code = is_damage(err) ? EDDY_ERR_CORRUPT : EDDY_ERR_STORE;
    eddy_errf(code, errstr, errstr_size, "%s: %s", what, err);
    rocksdb_free(err);
    if (code == EDDY_ERR_CORRUPT)
        mark_damaged(db, errstr_size ? errstr : what);
    return code;
}

bool eddy_statedb_damaged(const eddy_statedb_t *db)
{
    return atomic_load_explicit(&db->damaged, memory_order_relaxed) != 0;
}

void eddy_statedb_damage(const eddy_statedb_t *db, char *why, size_t why_size)
{
    bool written = atomic_load_explicit(&db->damaged, memory_order_acquire) == 2;
    snprintf(why, why_size, "%s", written ? db->damage : "");
}

/* mkdir -p: creates dir and its missing parents. */
static eddy_err_t make_dirs(const char *dir, char *errstr, size_t errstr_size)
{
    char *path = strdup(dir);
    if (!path)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    eddy_err_t err = EDDY_OK;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot create state dir %s: %s",
                            path, strerror(errno));
            break;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(path);
    return err;
}

static eddy_err_t check_names(const char *const *names, size_t n, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !*names[i])
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "store %zu has an empty name",
                             i);
        if (!strcmp(names[i], "default") || !strcmp(names[i], META_CF))
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                             "store name \"%s\" is reserved by the state database; rename the "
                             "store",
                             names[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                 "store \"%s\" is declared twice", names[i]);
    }
    return EDDY_OK;
}

static void set_options(eddy_statedb_t *db)
{
    rocksdb_options_t *o = db->opts;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_max_background_jobs(o, 2);
    /* Memory is bounded by these two and the block cache below: about 48 MiB
     * at most whatever runs (docs/benchmarks.md, "Memory"). A window's state is
     * rewritten at every commit, so a memtable is mostly old versions: flushing
     * small ones costs little. */
    rocksdb_options_set_write_buffer_size(o, 4 << 20);
    rocksdb_options_set_db_write_buffer_size(o, 32 << 20); /* all CFs together */
    /* A rarely written CF (the metadata) would otherwise pin old WAL files. */
    rocksdb_options_set_max_total_wal_size(o, 64 << 20);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
    rocksdb_options_set_bytes_per_sync(o, 1 << 20);
    rocksdb_options_set_max_open_files(o, 512);
    rocksdb_options_set_keep_log_file_num(o, 3);

    /* Queries and cache misses read recent windows; they fit many times over. */
    db->cache = rocksdb_cache_create_lru(16 << 20);
    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(table, db->cache);
    /* The table options take ownership of the policy. */
    rocksdb_block_based_options_set_filter_policy(table,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_block_based_table_factory(o, table); /* copies the options */
    rocksdb_block_based_options_destroy(table);
}

/* Opens with column families names[0..n), each with cf_opts[i]; on a RocksDB
 * built without LZ4 or ZSTD, falls back to no compression rather than failing. */
static rocksdb_t *open_families(eddy_statedb_t *db, const char **names,
                                const rocksdb_options_t **cf_opts, size_t n,
                                rocksdb_column_family_handle_t **handles, char **err)
{
    rocksdb_t *rdb =
        rocksdb_open_column_families(db->opts, db->dir, (int)n, names, cf_opts, handles, err);
    if (*err && strstr(*err, "is not linked with the binary")) {
        eddy_log_warn("state: this RocksDB lacks LZ4/ZSTD (%s); storing uncompressed", *err);
        rocksdb_free(*err);
        *err = NULL;
        rocksdb_options_set_compression(db->opts, rocksdb_no_compression);
        rocksdb_options_set_bottommost_compression(db->opts, rocksdb_no_compression);
        rdb = rocksdb_open_column_families(db->opts, db->dir, (int)n, names, cf_opts, handles, err);
    }
    return rdb;
}

/* A new database gets the format key; an existing one must have ours. */
static eddy_err_t check_format(eddy_statedb_t *db, char *errstr, size_t errstr_size)
{
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(db->rdb, db->ropts, db->meta, FORMAT_KEY, sizeof(FORMAT_KEY) - 1, &len,
                             &err);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot read the state format in %s",
                           db->dir);
    if (v) {
        uint32_t format = len == 4 ? eddy_key_get_u32((const uint8_t *)v) : 0;
        rocksdb_free(v);
        if (format == EDDY_STATEDB_FORMAT)
            return EDDY_OK;
        return eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                         "state dir %s holds eddy state format %u, this eddy reads format %d: "
                         "wipe the directory (the state is rebuilt from the changelogs)",
                         db->dir, format, EDDY_STATEDB_FORMAT);
    }
    uint8_t f[4];
    eddy_key_put_u32(f, EDDY_STATEDB_FORMAT);
    rocksdb_put_cf(db->rdb, db->wopts_sync, db->meta, FORMAT_KEY, sizeof(FORMAT_KEY) - 1,
                   (const char *)f, sizeof(f), &err);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot write the state format in %s",
                           db->dir);
    return EDDY_OK;
}

/* --- the MANIFEST's framing ------------------------------------------------------- */

/*
 * RocksDB reads its MANIFEST (the log of which SST files make up the database)
 * as a log that a crash may have cut off: a last record that is incomplete is
 * taken for the end, the database opens as it was before that record — and the
 * SST files only the lost records knew are deleted as obsolete. A running
 * RocksDB writes each fragment of a record whole (one write(2) each), so a
 * MANIFEST a crash left ends at a fragment's end; one that ends inside a
 * fragment was truncated after the fact, and is refused as damaged before
 * RocksDB can open it. A cut exactly at a fragment's end cannot be told from a
 * shorter MANIFEST.
 *
 * The framing, as RocksDB (and LevelDB before it) writes it: 32 KiB blocks of
 * records, each a 7-byte header (CRC32C, u16 LE length, type) and its payload,
 * never crossing a block; fewer than 7 bytes at a block's end are zero padding.
 * Types: 1 a whole record, 2/3/4 the first/middle/last fragment of one, 0 (with
 * length 0) preallocated space. Anything else is left for RocksDB to judge.
 */
#define LOG_BLOCK  32768
#define LOG_HEADER 7

/* EDDY_ERR_CORRUPT if `dir`'s current MANIFEST ends inside a record; EDDY_OK when
 * it does not, and when there is none or CURRENT does not name one (RocksDB then
 * says what is wrong). */
static eddy_err_t check_manifest(const char *dir, char *errstr, size_t errstr_size)
{
    char path[4096], name[64];
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return EDDY_OK; /* a new database, or RocksDB reports it */
    size_t n = fread(name, 1, sizeof(name) - 1, f);
    fclose(f);
    name[n] = '\0';
    size_t len = strspn(name, "MANIFEST-0123456789");
    if (strncmp(name, "MANIFEST-", 9) || len == 9 || name[len] != '\n')
        return EDDY_OK; /* RocksDB refuses it as corrupted */
    name[len] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "rb")))
        return EDDY_OK;
    static const char *const why[] = {NULL, "its last record is cut off",
                                      "a record crosses a block boundary",
                                      "a record fragment is out of order"};
    int bad = 0;
    bool fragmented = false, more = true;
    uint8_t *block = malloc(LOG_BLOCK);
    int64_t offset = 0;
    while (block && more && !bad) {
        size_t got = fread(block, 1, LOG_BLOCK, f);
        more = got == LOG_BLOCK;
        size_t pos = 0;
        while (!bad && got - pos >= LOG_HEADER) {
            size_t length = block[pos + 4] | (size_t)block[pos + 5] << 8;
            uint8_t type = block[pos + 6];
            if (type == 0 && length == 0) { /* preallocated: the end of what was written */
                more = false;
                pos = got;
                break;
            }
            if (type < 1 || type > 4) { /* a kind this check does not know */
                more = false;
                pos = got;
                break;
            }
            if (pos + LOG_HEADER + length > got) {
                bad = got < LOG_BLOCK ? 1 : 2;
                break;
            }
            if ((type == 1 || type == 2) == fragmented)
                bad = 3; /* a whole or first record inside a record, or a fragment outside */
            fragmented = type == 2 || type == 3;
            pos += LOG_HEADER + length;
        }
        if (!bad && got < LOG_BLOCK && pos < got) /* the file ends inside a header */
            bad = 1;
        offset += (int64_t)got;
    }
    fclose(f);
    if (!block)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    free(block);
    /* Ending after a whole first or middle fragment is a crash between the writes
     * of a record longer than a block (one write per fragment): RocksDB drops the
     * record, which was never acknowledged, and nothing is lost. */
    if (!bad)
        return EDDY_OK;
    return eddy_errf(EDDY_ERR_CORRUPT, errstr, errstr_size,
                     "cannot open the state in %s: Corruption: %s (%lld bytes) is damaged: %s", dir,
                     path, (long long)offset, why[bad]);
}

/* --- open / close ---------------------------------------------------------------- */

eddy_err_t eddy_statedb_verify(eddy_statedb_t *db, uint64_t *bytes, char *errstr,
                               size_t errstr_size)
{
    /* Every block read from its file (not the cache), also those under range
     * deletes, which a compaction would read later. */
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(ro, 1);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_readoptions_set_ignore_range_deletions(ro, 1);
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    rocksdb_readoptions_set_readahead_size(ro, 2 << 20);
    uint64_t total = 0;
    eddy_err_t ret = EDDY_OK;
    for (size_t i = 0; i <= db->n_cf && !ret; i++) {
        rocksdb_column_family_handle_t *cf = i < db->n_cf ? db->cf[i] : db->meta;
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->rdb, ro, cf);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            rocksdb_iter_key(it, &klen);
            rocksdb_iter_value(it, &vlen);
            total += klen + vlen;
        }
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        rocksdb_iter_destroy(it);
        if (err)
            ret = store_error(db, err, errstr, errstr_size, "verifying the state in %s", db->dir);
    }
    rocksdb_readoptions_destroy(ro);
    if (bytes)
        *bytes = total;
    return ret;
}

eddy_statedb_t *eddy_statedb_open(const char *dir, const char *const *store_names, size_t n_stores,
                                  char *errstr, size_t errstr_size)
{
    return eddy_statedb_open_with(dir, store_names, n_stores, NULL, NULL, errstr, errstr_size);
}

eddy_statedb_t *eddy_statedb_open_with(const char *dir, const char *const *store_names,
                                       size_t n_stores, const eddy_statedb_open_opts_t *opts,
                                       eddy_err_t *why, char *errstr, size_t errstr_size)
{
    eddy_err_t code = check_names(store_names, n_stores, errstr, errstr_size);
    if (!code)
        code = make_dirs(dir, errstr, errstr_size);
    if (!code)
        code = check_manifest(dir, errstr, errstr_size);
    if (code) {
        if (why)
            *why = code;
        return NULL;
    }
    code = EDDY_ERR_STORE;

    eddy_statedb_t *db = calloc(1, sizeof(*db));
    char **existing = NULL;
    size_t n_existing = 0;
    const char **names = NULL;
    const rocksdb_options_t **cf_opts = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    char *err = NULL;
    if (!db || !(db->dir = strdup(dir)) ||
        !(db->names = calloc(n_stores ? n_stores : 1, sizeof(*db->names))))
        goto nomem;
    for (size_t i = 0; i < n_stores; i++)
        if (!(db->names[i] = strdup(store_names[i])))
            goto nomem;
    db->n_stores = n_stores;
    db->opts = rocksdb_options_create();
    db->wopts = rocksdb_writeoptions_create();
    db->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(db->wopts_sync, 1);
    db->ropts = rocksdb_readoptions_create();
    set_options(db);

    /* Every column family that exists must be opened, declared or not. Listing
     * fails on a new database, which has none (any other failure shows at open). */
    existing = rocksdb_list_column_families(db->opts, dir, &n_existing, &err);
    if (err) { /* the (empty) list is allocated all the same */
        rocksdb_free(err);
        err = NULL;
        rocksdb_list_column_families_destroy(existing, 0);
        existing = NULL;
        n_existing = 0;
    }
    size_t cap = 2 + n_stores + n_existing;
    names = calloc(cap, sizeof(*names));
    cf_opts = calloc(cap, sizeof(*cf_opts));
    handles = calloc(cap, sizeof(*handles));
    db->cf = calloc(cap, sizeof(*db->cf));
    if (!names || !cf_opts || !handles || !db->cf)
        goto nomem;
    for (size_t i = 0; i < cap; i++)
        cf_opts[i] = db->opts; /* the same options for every column family */
    size_t n = 0;
    names[n++] = "default"; /* RocksDB requires it; eddy keeps nothing there */
    names[n++] = META_CF;
    for (size_t i = 0; i < n_stores; i++)
        names[n++] = db->names[i];
    for (size_t i = 0; i < n_existing; i++) {
        bool known = false;
        for (size_t j = 0; j < n && !known; j++)
            known = !strcmp(existing[i], names[j]);
        if (!known)
            names[n++] = existing[i];
    }

    db->rdb = open_families(db, names, cf_opts, n, handles, &err);
    if (err) {
        if (strstr(err, "/LOCK")) {
            code = eddy_errf(EDDY_ERR_STATE, errstr, errstr_size,
                             "state dir %s is in use by another eddy process (RocksDB LOCK); "
                             "give each instance its own --state-dir",
                             dir);
            rocksdb_free(err);
        } else {
            code = store_error(NULL, err, errstr, errstr_size, "cannot open the state in %s", dir);
        }
        goto fail;
    }
    rocksdb_column_family_handle_destroy(handles[0]);
    db->meta = handles[1];
    db->n_cf = n - 2;
    memcpy(db->cf, handles + 2, db->n_cf * sizeof(*db->cf));
    if ((code = check_format(db, errstr, errstr_size)))
        goto fail;
    if (opts && opts->verify) {
        int64_t t0 = eddy_mono_ns();
        uint64_t bytes = 0;
        if ((code = eddy_statedb_verify(db, &bytes, errstr, errstr_size)))
            goto fail;
        eddy_log_info("state: verified %s (%.1f MiB of keys and values) in %.0f ms", dir,
                      (double)bytes / (1 << 20), (double)(eddy_mono_ns() - t0) / 1e6);
    }
    if (db->n_cf > n_stores)
        eddy_log_info("state: %s holds %zu store(s) the topology does not declare; kept, unused",
                      dir, db->n_cf - n_stores);
    code = EDDY_OK;
    goto out;

nomem:
    code = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory opening the state in %s",
                     dir);
fail:
    eddy_statedb_close(db);
    db = NULL;
out:
    free(handles);
    free(cf_opts);
    free(names);
    if (existing)
        rocksdb_list_column_families_destroy(existing, n_existing);
    if (why)
        *why = code;
    return db;
}

eddy_err_t eddy_statedb_move_aside(const char *dir, char *moved, size_t moved_size, char *errstr,
                                   size_t errstr_size)
{
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT)
        return eddy_errf(EDDY_ERR_NOTFOUND, errstr, errstr_size, "%s does not exist", dir);
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 1; i < 1000; i++) {
        int n = i == 1 ? snprintf(moved, moved_size, "%s.damaged-%s", dir, stamp)
                       : snprintf(moved, moved_size, "%s.damaged-%s-%d", dir, stamp, i);
        if (n < 0 || (size_t)n >= moved_size)
            return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "state dir %s: path too long",
                             dir);
        if (lstat(moved, &st) == 0 || errno != ENOENT)
            continue; /* taken: the next suffix (rename would replace an empty dir) */
        if (rename(dir, moved) == 0)
            return EDDY_OK;
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot move %s aside to %s: %s", dir,
                         moved, strerror(errno));
    }
    return eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                     "cannot move %s aside: too many %s.damaged-%s*", dir, dir, stamp);
}

void eddy_statedb_close(eddy_statedb_t *db)
{
    if (!db)
        return;
    if (db->rdb) {
        for (size_t i = 0; i < db->n_cf; i++)
            rocksdb_column_family_handle_destroy(db->cf[i]);
        rocksdb_column_family_handle_destroy(db->meta);
        rocksdb_close(db->rdb);
    }
    if (db->ropts)
        rocksdb_readoptions_destroy(db->ropts);
    if (db->wopts_sync)
        rocksdb_writeoptions_destroy(db->wopts_sync);
    if (db->wopts)
        rocksdb_writeoptions_destroy(db->wopts);
    if (db->opts)
        rocksdb_options_destroy(db->opts);
    if (db->cache)
        rocksdb_cache_destroy(db->cache);
    for (size_t i = 0; db->names && i < db->n_stores; i++)
        free(db->names[i]);
    free(db->names);
    free(db->cf);
    free(db->dir);
    free(db);
}

int eddy_statedb_store_index(const eddy_statedb_t *db, const char *name)
{
    for (size_t i = 0; i < db->n_stores; i++)
        if (!strcmp(db->names[i], name))
            return (int)i;
    return -1;
}

eddy_err_t eddy_statedb_flush(eddy_statedb_t *db, char *errstr, size_t errstr_size)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    for (size_t i = 0; i < db->n_cf && !err; i++)
        rocksdb_flush_cf(db->rdb, fo, db->cf[i], &err);
    if (!err)
        rocksdb_flush_cf(db->rdb, fo, db->meta, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot flush the state in %s", db->dir);
    return EDDY_OK;
}

/* --- batches -------------------------------------------------------------------- */

eddy_statedb_batch_t *eddy_statedb_batch_new(void)
{
    eddy_statedb_batch_t *batch = calloc(1, sizeof(*batch));
    if (batch)
        batch->wb = rocksdb_writebatch_create();
    return batch;
}

eddy_statedb_batch_t *eddy_statedb_batch_new_sorted(void)
{
    eddy_statedb_batch_t *batch = eddy_statedb_batch_new();
    if (batch)
        batch->sorted = true;
    return batch;
}

void eddy_statedb_batch_destroy(eddy_statedb_batch_t *batch)
{
    if (!batch)
        return;
    rocksdb_writebatch_destroy(batch->wb);
    free(batch->staged);
    free(batch->scratch);
    free(batch->arena);
    free(batch);
}

void eddy_statedb_batch_clear(eddy_statedb_batch_t *batch)
{
    rocksdb_writebatch_clear(batch->wb);
    batch->n_staged = 0;
    batch->arena_len = 0;
}

int eddy_statedb_batch_count(const eddy_statedb_batch_t *batch)
{
    return rocksdb_writebatch_count(batch->wb) + (int)batch->n_staged;
}

/* Keeps a put of a sorted batch for eddy_statedb_write; false if out of memory. */
static bool stage_put(eddy_statedb_batch_t *batch, int store, const uint8_t *prefix,
                      const char *key, size_t key_len, const void *value, size_t value_len)
{
    size_t klen = EDDY_WINDOW_KEY_PREFIX + key_len, need = klen + value_len;
    if (klen > UINT32_MAX || value_len > UINT32_MAX)
        return false;
    if (batch->n_staged == batch->cap_staged) {
        size_t cap = batch->cap_staged ? 2 * batch->cap_staged : 1024;
        staged_put_t *staged = realloc(batch->staged, cap * sizeof(*staged));
        if (staged)
            batch->staged = staged;
        staged_put_t *scratch = realloc(batch->scratch, cap * sizeof(*scratch));
        if (scratch)
            batch->scratch = scratch;
        if (!staged || !scratch)
            return false;
        batch->cap_staged = cap;
    }
    if (batch->arena_cap - batch->arena_len < need) {
        size_t cap = batch->arena_cap ? batch->arena_cap : 64 << 10;
        while (cap - batch->arena_len < need)
            cap *= 2;
        uint8_t *arena = realloc(batch->arena, cap);
        if (!arena)
            return false;
        batch->arena = arena;
        batch->arena_cap = cap;
    }
    uint8_t *at = batch->arena + batch->arena_len;
    memcpy(at, prefix, EDDY_WINDOW_KEY_PREFIX);
    memcpy(at + EDDY_WINDOW_KEY_PREFIX, key, key_len);
    memcpy(at + klen, value, value_len);
    staged_put_t *sp = &batch->staged[batch->n_staged];
    *sp = (staged_put_t){.off = batch->arena_len,
                         .key_len = (uint32_t)klen,
                         .value_len = (uint32_t)value_len,
                         .cf = (uint32_t)store};
    for (size_t i = 0; i < 16 && i < klen; i++)
        sp->head[i / 8] |= (uint64_t)at[i] << (56 - 8 * (i % 8));
    batch->n_staged++;
    batch->arena_len += need;
    return true;
}

/* The order of (column family, key); 0 for the same key. */
static int staged_cmp(const uint8_t *arena, const staged_put_t *x, const staged_put_t *y)
{
    if (x->cf != y->cf)
        return x->cf < y->cf ? -1 : 1;
    for (int i = 0; i < 2; i++)
        if (x->head[i] != y->head[i])
            return x->head[i] < y->head[i] ? -1 : 1;
    if (x->key_len > 16 && y->key_len > 16) {
        size_t n = (x->key_len < y->key_len ? x->key_len : y->key_len) - 16;
        int c = memcmp(arena + x->off + 16, arena + y->off + 16, n);
        if (c)
            return c;
    }
    return x->key_len == y->key_len ? 0 : x->key_len < y->key_len ? -1 : 1;
}

/* Stable merge sort of a[0, n) with tmp of the same size: equal keys keep the
 * order they were put in (glibc's qsort allocates its buffer on every call). */
static void staged_sort(const uint8_t *arena, staged_put_t *a, staged_put_t *tmp, size_t n)
{
    if (n < 2)
        return;
    if (n <= 16) { /* insertion sort */
        for (size_t i = 1; i < n; i++) {
            staged_put_t v = a[i];
            size_t j = i;
            for (; j > 0 && staged_cmp(arena, &a[j - 1], &v) > 0; j--)
                a[j] = a[j - 1];
            a[j] = v;
        }
        return;
    }
    size_t h = n / 2;
    staged_sort(arena, a, tmp, h);
    staged_sort(arena, a + h, tmp, n - h);
    if (staged_cmp(arena, &a[h - 1], &a[h]) <= 0)
        return; /* already in order: the common case of a changelog read in time order */
    memcpy(tmp, a, h * sizeof(*a));
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        a[k++] = staged_cmp(arena, &a[j], &tmp[i]) < 0 ? a[j++] : tmp[i++];
    while (i < h)
        a[k++] = tmp[i++];
}

/* Moves the staged puts into the RocksDB batch in key order, the last of equal
 * keys only. In order, RocksDB's memtable (a skip list) finds each key's place
 * from the one before it, where a random order costs a full search per key. */
static void unstage(eddy_statedb_batch_t *batch, eddy_statedb_t *db)
{
    if (batch->n_staged == 0)
        return;
    staged_sort(batch->arena, batch->staged, batch->scratch, batch->n_staged);
    for (size_t i = 0; i < batch->n_staged; i++) {
        const staged_put_t *sp = &batch->staged[i];
        if (i + 1 < batch->n_staged && !staged_cmp(batch->arena, sp, &batch->staged[i + 1]))
            continue; /* a later put of the same key follows */
        const char *k = (const char *)batch->arena + sp->off;
        rocksdb_writebatch_put_cf(batch->wb, db->cf[sp->cf], k, sp->key_len, k + sp->key_len,
                                  sp->value_len);
    }
    batch->n_staged = 0;
    batch->arena_len = 0;
}

void eddy_statedb_batch_put(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int store,
                            int32_t task, int64_t window_start, const char *key, size_t key_len,
                            const void *value, size_t value_len)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    uint8_t prefix[EDDY_WINDOW_KEY_PREFIX];
    eddy_window_key_prefix(prefix, (uint32_t)task, window_start);
    if (batch->sorted) {
        if (stage_put(batch, store, prefix, key, key_len, value, value_len))
            return;
        unstage(batch, db); /* out of memory: what came before goes in first */
    }
    /* The key goes in as two slices: no copy, no length limit. */
    const char *parts[2] = {(const char *)prefix, key};
    size_t sizes[2] = {sizeof(prefix), key_len};
    const char *v = value;
    rocksdb_writebatch_putv_cf(batch->wb, db->cf[store], 2, parts, sizes, 1, &v, &value_len);
}

void eddy_statedb_batch_delete(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int store,
                               int32_t task, int64_t window_start, const char *key, size_t key_len)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    uint8_t prefix[EDDY_WINDOW_KEY_PREFIX];
    eddy_window_key_prefix(prefix, (uint32_t)task, window_start);
    const char *parts[2] = {(const char *)prefix, key};
    size_t sizes[2] = {sizeof(prefix), key_len};
    rocksdb_writebatch_deletev_cf(batch->wb, db->cf[store], 2, parts, sizes);
}

void eddy_statedb_batch_delete_windows_before(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                              int store, int32_t task, int64_t cutoff)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    if (cutoff == INT64_MIN) /* nothing starts before it */
        return;
    uint8_t lo[EDDY_WINDOW_KEY_PREFIX], hi[EDDY_WINDOW_KEY_PREFIX];
    eddy_window_key_prefix(lo, (uint32_t)task, INT64_MIN);
    eddy_window_key_prefix(hi, (uint32_t)task, cutoff);
    rocksdb_writebatch_delete_range_cf(batch->wb, db->cf[store], (const char *)lo, sizeof(lo),
                                       (const char *)hi, sizeof(hi));
}

void eddy_statedb_batch_drop_task(eddy_statedb_batch_t *batch, eddy_statedb_t *db, int32_t task)
{
    assert(task >= 0);
    /* [task] <= every key of the task < [task + 1], in every family; no
     * overflow since task <= INT32_MAX. */
    uint8_t lo[4], hi[4];
    eddy_key_put_u32(lo, (uint32_t)task);
    eddy_key_put_u32(hi, (uint32_t)task + 1);
    for (size_t i = 0; i < db->n_cf; i++)
        rocksdb_writebatch_delete_range_cf(batch->wb, db->cf[i], (const char *)lo, sizeof(lo),
                                           (const char *)hi, sizeof(hi));
    rocksdb_writebatch_delete_range_cf(batch->wb, db->meta, (const char *)lo, sizeof(lo),
                                       (const char *)hi, sizeof(hi));
}

void eddy_statedb_batch_set_checkpoint(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                       int32_t task, const eddy_checkpoint_t *cp)
{
    assert(task >= 0);
    uint8_t k[4], v[CHECKPOINT_LEN];
    eddy_key_put_u32(k, (uint32_t)task);
    v[0] = CHECKPOINT_VER;
    put_be64(v + 1, cp->input_offset);
    put_be64(v + 9, cp->stream_time);
    rocksdb_writebatch_put_cf(batch->wb, db->meta, (const char *)k, sizeof(k), (const char *)v,
                              sizeof(v));
}

void eddy_statedb_batch_set_changelog_pos(eddy_statedb_batch_t *batch, eddy_statedb_t *db,
                                          int store, int32_t task, const eddy_changelog_pos_t *pos)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    uint8_t k[5], v[CHANGELOG_LEN];
    eddy_key_put_u32(k, (uint32_t)task);
    k[4] = CHANGELOG_TAG;
    const char *parts[2] = {(const char *)k, db->names[store]};
    size_t sizes[2] = {sizeof(k), strlen(db->names[store])};
    v[0] = CHANGELOG_VER;
    put_be64(v + 1, pos->next_offset);
    put_be64(v + 9, pos->input_offset);
    put_be64(v + 17, pos->stream_time);
    const char *value = (const char *)v;
    size_t value_len = sizeof(v);
    rocksdb_writebatch_putv_cf(batch->wb, db->meta, 2, parts, sizes, 1, &value, &value_len);
}

eddy_err_t eddy_statedb_write(eddy_statedb_t *db, eddy_statedb_batch_t *batch, bool sync,
                              char *errstr, size_t errstr_size)
{
    unstage(batch, db);
    if (rocksdb_writebatch_count(batch->wb) == 0)
        return EDDY_OK;
    char *err = NULL;
    rocksdb_write(db->rdb, sync ? db->wopts_sync : db->wopts, batch->wb, &err);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot write state to %s", db->dir);
    return EDDY_OK;
}

/* --- reads ------------------------------------------------------------------------ */

eddy_err_t eddy_statedb_get(eddy_statedb_t *db, int store, int32_t task, int64_t window_start,
                            const char *key, size_t key_len, void *buf, size_t cap, size_t *len,
                            bool *found, char *errstr, size_t errstr_size)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    *found = false;
    *len = 0;
    uint8_t stack[STACK_KEY];
    size_t klen = EDDY_WINDOW_KEY_PREFIX + key_len;
    uint8_t *k = klen <= sizeof(stack) ? stack : malloc(klen);
    if (!k)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    eddy_window_key_prefix(k, (uint32_t)task, window_start);
    memcpy(k + EDDY_WINDOW_KEY_PREFIX, key, key_len);
    char *err = NULL;
    /* Pinned: the value is read in place from the block cache or memtable. */
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(db->rdb, db->ropts, db->cf[store], (const char *)k, klen, &err);
    if (k != stack)
        free(k);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot read state of store %s",
                           db->names[store]);
    if (!ps)
        return EDDY_OK;
    const char *v = rocksdb_pinnableslice_value(ps, len);
    *found = true;
    if (*len <= cap && *len > 0)
        memcpy(buf, v, *len);
    rocksdb_pinnableslice_destroy(ps);
    return EDDY_OK;
}

/* Reads a meta value of exactly `want` bytes starting with `version` into out. */
static eddy_err_t get_meta(eddy_statedb_t *db, const char *k, size_t klen, uint8_t *out,
                           size_t want, uint8_t version, const char *what, bool *found,
                           char *errstr, size_t errstr_size)
{
    char *err = NULL;
    size_t len = 0;
    *found = false;
    char *v = rocksdb_get_cf(db->rdb, db->ropts, db->meta, k, klen, &len, &err);
    if (err)
        return store_error(db, err, errstr, errstr_size, "cannot read the %s", what);
    if (!v)
        return EDDY_OK;
    unsigned got = len > 0 ? (uint8_t)v[0] : 0;
    bool ok = len == want && got == version;
    if (ok)
        memcpy(out, v, want);
    rocksdb_free(v);
    if (!ok)
        return eddy_errf(EDDY_ERR_STORE, errstr, errstr_size,
                         "the %s in %s has an unknown format (version %u, %zu bytes); wipe the "
                         "state dir to rebuild it",
                         what, db->dir, got, len);
    *found = true;
    return EDDY_OK;
}

eddy_err_t eddy_statedb_get_checkpoint(eddy_statedb_t *db, int32_t task, eddy_checkpoint_t *cp,
                                       bool *found, char *errstr, size_t errstr_size)
{
    assert(task >= 0);
    uint8_t k[4], v[CHECKPOINT_LEN];
    eddy_key_put_u32(k, (uint32_t)task);
    char what[64];
    snprintf(what, sizeof(what), "checkpoint of task %d", task);
    eddy_err_t err = get_meta(db, (const char *)k, sizeof(k), v, sizeof(v), CHECKPOINT_VER, what,
                              found, errstr, errstr_size);
    if (err || !*found)
        return err;
    cp->input_offset = get_be64(v + 1);
    cp->stream_time = get_be64(v + 9);
    return EDDY_OK;
}

eddy_err_t eddy_statedb_get_changelog_pos(eddy_statedb_t *db, int store, int32_t task,
                                          eddy_changelog_pos_t *pos, bool *found, char *errstr,
                                          size_t errstr_size)
{
    assert(store >= 0 && (size_t)store < db->n_stores && task >= 0);
    uint8_t stack[STACK_KEY], v[CHANGELOG_LEN];
    *found = false;
    size_t name_len = strlen(db->names[store]);
    size_t klen = 5 + name_len;
    uint8_t *k = klen <= sizeof(stack) ? stack : malloc(klen);
    if (!k)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    eddy_key_put_u32(k, (uint32_t)task);
    k[4] = CHANGELOG_TAG;
    memcpy(k + 5, db->names[store], name_len);
    char what[300];
    snprintf(what, sizeof(what), "changelog position of store %s, task %d", db->names[store], task);
    eddy_err_t err = get_meta(db, (const char *)k, klen, v, sizeof(v), CHANGELOG_VER, what, found,
                              errstr, errstr_size);
    if (k != stack)
        free(k);
    if (!err && *found) {
        pos->next_offset = get_be64(v + 1);
        pos->input_offset = get_be64(v + 9);
        pos->stream_time = get_be64(v + 17);
    }
    return err;
}

/*
 * One iterator, whose implicit snapshot makes the whole scan one point in
 * time. One task: bounded to [task|from, task|to), so RocksDB stops at the end
 * of the range without reading past it. Every task: seek to [t|from] for each
 * task t found, and on to [t+1|from] once past `to`.
 */
eddy_err_t eddy_statedb_scan(eddy_statedb_t *db, int store, int32_t task, int64_t from, int64_t to,
                             eddy_statedb_scan_fn *fn, void *opaque, char *errstr,
                             size_t errstr_size)
{
    assert(store >= 0 && (size_t)store < db->n_stores);
    if (from >= to)
        return EDDY_OK;
    /* The read options point at lo and hi (no copy): they outlive the iterator. */
    uint8_t lo[EDDY_WINDOW_KEY_PREFIX], hi[EDDY_WINDOW_KEY_PREFIX], seek[EDDY_WINDOW_KEY_PREFIX];
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    eddy_window_key_prefix(seek, task >= 0 ? (uint32_t)task : 0, from);
    if (task >= 0) {
        memcpy(lo, seek, sizeof(lo));
        eddy_window_key_prefix(hi, (uint32_t)task, to);
        rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
        rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->rdb, ro, db->cf[store]);
    eddy_err_t ret = EDDY_OK;
    rocksdb_iter_seek(it, (const char *)seek, sizeof(seek));
    while (rocksdb_iter_valid(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen < EDDY_WINDOW_KEY_PREFIX) {
            ret = eddy_errf(EDDY_ERR_CORRUPT, errstr, errstr_size,
                            "store %s in %s holds a %zu-byte key, not a window key: the state "
                            "dir is damaged",
                            db->names[store], db->dir, klen);
            mark_damaged(db, errstr_size ? errstr : "a key that is not a window key");
            break;
        }
        uint32_t t = eddy_key_get_u32(k);
        int64_t start = eddy_key_get_i64(k + 4);
        if ((task < 0 || t == (uint32_t)task) && start >= from && start < to) {
            const char *v = rocksdb_iter_value(it, &vlen);
            if (fn((int32_t)t, start, (const char *)k + EDDY_WINDOW_KEY_PREFIX,
                   klen - EDDY_WINDOW_KEY_PREFIX, v, vlen, opaque))
                break;
            rocksdb_iter_next(it);
            continue;
        }
        /* Outside the range: for one task the end (the upper bound normally
         * ends the scan first); for every task, this task's range or the next's. */
        if (task >= 0 || (start >= to && t >= (uint32_t)INT32_MAX))
            break;
        eddy_window_key_prefix(seek, start < from ? t : t + 1, from);
        rocksdb_iter_seek(it, (const char *)seek, sizeof(seek));
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err)
        ret = store_error(db, err, errstr, errstr_size, "cannot scan store %s", db->names[store]);
    return ret;
}

static uint64_t property(eddy_statedb_t *db, rocksdb_column_family_handle_t *cf, const char *name)
{
    uint64_t v = 0;
    if (rocksdb_property_int_cf(db->rdb, cf, name, &v) != 0)
        return 0;
    return v;
}

void eddy_statedb_store_stats(eddy_statedb_t *db, int store, uint64_t *keys, uint64_t *sst_bytes)
{
    assert(store >= 0 && (size_t)store < db->n_stores);
    *keys = property(db, db->cf[store], "rocksdb.estimate-num-keys");
    *sst_bytes = property(db, db->cf[store], "rocksdb.total-sst-files-size");
}
