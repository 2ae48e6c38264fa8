/*
 * local_state.c — opening, resetting and guarding the state database (see
 * local_state.h, docs/stores.md "Damaged local state").
 *
 * A reset never deletes: the damaged dir is renamed beside the new one, for
 * inspection. What always holds: rt->db is written only here, by the main
 * thread, under the write lock and while no stream thread runs; `resetting` is
 * set from the moment damage is noticed until a fresh rt->db is in place, and
 * readers check it before and after taking the read lock.
 */
#include "engine/local_state.h"
#include "engine/log.h"
#include "engine/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Damage again this soon after a reset is not a one-off: stop instead of looping. */
#define RESET_MIN_INTERVAL_NS (600LL * 1000000000)

struct eddy_local_state_s {
    eddy_runtime_t *rt;                          /* rt->db is the database */
    char dir[4096];                              /* <state.dir>/<application.id> */
    const char *names[EDDY_TOPOLOGY_MAX_STORES]; /* store names (the topology's) */
    size_t n_stores;                             /* entries in names */
    bool fail;                                   /* state.corruption.action=fail */
    bool verify;                                 /* state.verify.on.open */
    pthread_rwlock_t lock;                       /* readers: read; the reset: write */
    atomic_bool resetting;                       /* damage noticed, fresh db not in place */
    atomic_ullong generation;                    /* fresh databases put in place */
    atomic_llong damaged, resets;                /* counters (see the stats) */
    atomic_llong last_reset_ms, last_reset_ns;   /* the last reset's end and duration */
    int64_t last_reset_mono;                     /* its end, monotonic (main thread only) */
    int64_t noticed_ns;                          /* when the damage being reset was noticed */
    pthread_mutex_t info_lock;                   /* guards moved_to and reason */
    char moved_to[4200];                         /* where the last damaged state went */
    char reason[512];                            /* what was found */
};

static void set_info(eddy_local_state_t *ls, const char *moved_to, const char *reason)
{
    pthread_mutex_lock(&ls->info_lock);
    if (moved_to)
        snprintf(ls->moved_to, sizeof(ls->moved_to), "%s", moved_to);
    if (reason)
        snprintf(ls->reason, sizeof(ls->reason), "%s", reason);
    pthread_mutex_unlock(&ls->info_lock);
}

/* Moves the (closed) damaged dir aside and opens a fresh database as rt->db. */
static eddy_err_t move_aside_and_reopen(eddy_local_state_t *ls, const char *reason, char *errstr,
                                        size_t errstr_size)
{
    int64_t t0 = eddy_mono_ns();
    char moved[sizeof(ls->moved_to)];
    eddy_err_t err = eddy_statedb_move_aside(ls->dir, moved, sizeof(moved), errstr, errstr_size);
    if (err == EDDY_ERR_NOTFOUND) {
        snprintf(moved, sizeof(moved), "(nothing: %s was gone)", ls->dir);
    } else if (err) {
        return eddy_errf(err, errstr, errstr_size,
                         "local state in %s is damaged (%s) and cannot be moved aside: %.600s; "
                         "move or delete it, and eddy restores it from the changelogs",
                         ls->dir, reason, errstr);
    }
    eddy_log_error("local state in %s is damaged: %s. Moved it aside to %s (kept for inspection; "
                   "delete it when done); a fresh state database is opened and every task "
                   "restores from its changelogs (state.corruption.action=restore)",
                   ls->dir, reason, moved);
    set_info(ls, moved, reason);
    char why[1024];
    ls->rt->db = eddy_statedb_open(ls->dir, ls->names, ls->n_stores, why, sizeof(why));
    if (!ls->rt->db)
        return eddy_errf(EDDY_ERR_STORE, errstr, errstr_size,
                         "cannot open a fresh state database after moving the damaged one "
                         "aside: %s",
                         why);
    int64_t ns = eddy_mono_ns() - t0;
    atomic_fetch_add(&ls->resets, 1);
    atomic_store(&ls->last_reset_ns, ns);
    atomic_store(&ls->last_reset_ms, eddy_now_ms());
    ls->last_reset_mono = eddy_mono_ns();
    return EDDY_OK;
}

eddy_local_state_t *eddy_local_state_open(eddy_runtime_t *rt, char *errstr, size_t errstr_size)
{
    const eddy_config_t *cfg = rt->cfg;
    eddy_local_state_t *ls = calloc(1, sizeof(*ls));
    if (!ls) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    ls->rt = rt;
    snprintf(ls->dir, sizeof(ls->dir), "%s/%s", cfg->state_dir, cfg->application_id);
    ls->n_stores = eddy_topology_store_count(rt->topo);
    for (size_t i = 0; i < ls->n_stores; i++)
        ls->names[i] = eddy_topology_store(rt->topo, i)->name;
    ls->fail = !strcmp(cfg->state_corruption_action, "fail");
    ls->verify = strcmp(cfg->state_verify_on_open, "false") != 0;
    /* Writers first: a steady stream of queries must not hold a reset off. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ls->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&ls->info_lock, NULL);

    const eddy_statedb_open_opts_t opts = {.verify = ls->verify};
    eddy_err_t why = EDDY_OK;
    char reason[1024];
    rt->db = eddy_statedb_open_with(ls->dir, ls->names, ls->n_stores, &opts, &why, reason,
                                    sizeof(reason));
    if (!rt->db && why == EDDY_ERR_CORRUPT) {
        atomic_fetch_add(&ls->damaged, 1);
        if (ls->fail) {
            eddy_errf(EDDY_ERR_CORRUPT, errstr, errstr_size,
                      "local state in %s is damaged (%s); stopping (state.corruption.action="
                      "fail): move the dir away or set state.corruption.action=restore, and eddy "
                      "restores it from the changelogs",
                      ls->dir, reason);
            goto fail;
        }
        if (move_aside_and_reopen(ls, reason, errstr, errstr_size))
            goto fail;
        rt->local_state = ls;
        return ls;
    }
    if (!rt->db) {
        eddy_errf(why ? why : EDDY_ERR_STORE, errstr, errstr_size, "%s", reason);
        goto fail;
    }
    rt->local_state = ls;
    return ls;
fail:
    pthread_rwlock_destroy(&ls->lock);
    pthread_mutex_destroy(&ls->info_lock);
    free(ls);
    return NULL;
}

void eddy_local_state_close(eddy_local_state_t *ls, bool flush)
{
    if (!ls)
        return;
    eddy_runtime_t *rt = ls->rt;
    if (rt->db && flush && !eddy_statedb_damaged(rt->db)) {
        char errstr[512];
        if (eddy_statedb_flush(rt->db, errstr, sizeof(errstr)))
            eddy_log_warn("%s (the next start replays the WAL instead)", errstr);
    }
    pthread_rwlock_wrlock(&ls->lock);
    eddy_statedb_close(rt->db);
    rt->db = NULL;
    rt->local_state = NULL;
    pthread_rwlock_unlock(&ls->lock);
    pthread_rwlock_destroy(&ls->lock);
    pthread_mutex_destroy(&ls->info_lock);
    free(ls);
}

bool eddy_local_state_damaged(const eddy_local_state_t *ls)
{
    return ls->rt->db && eddy_statedb_damaged(ls->rt->db);
}

bool eddy_local_state_fails(const eddy_local_state_t *ls)
{
    return ls->fail;
}

void eddy_local_state_noticed(eddy_local_state_t *ls)
{
    char reason[512];
    eddy_statedb_damage(ls->rt->db, reason, sizeof(reason));
    ls->noticed_ns = eddy_mono_ns();
    atomic_store(&ls->resetting, true);
    atomic_fetch_add(&ls->damaged, 1);
    set_info(ls, NULL, reason);
}

eddy_err_t eddy_local_state_reset(eddy_local_state_t *ls, char *errstr, size_t errstr_size)
{
    eddy_runtime_t *rt = ls->rt;
    char reason[512];
    eddy_statedb_damage(rt->db, reason, sizeof(reason));
    if (ls->last_reset_mono && eddy_mono_ns() - ls->last_reset_mono < RESET_MIN_INTERVAL_NS)
        return eddy_errf(EDDY_ERR_CORRUPT, errstr, errstr_size,
                         "local state in %s is damaged again (%s), %.0f s after it was last "
                         "moved aside: the disk (or this eddy) keeps damaging it; stopping",
                         ls->dir, reason, (double)(eddy_mono_ns() - ls->last_reset_mono) / 1e9);
    int64_t t0 = eddy_mono_ns();
    pthread_rwlock_wrlock(&ls->lock); /* waits for the queries reading it */
    eddy_statedb_close(rt->db);
    rt->db = NULL;
    eddy_err_t err = move_aside_and_reopen(ls, reason, errstr, errstr_size);
    if (!err) {
        atomic_store(&ls->resetting, false);
        atomic_fetch_add(&ls->generation, 1); /* after rt->db: halted threads go on */
    }
    pthread_rwlock_unlock(&ls->lock);
    if (!err)
        eddy_log_info("local state: the damaged database closed, moved aside and a fresh one "
                      "opened in %.0f ms",
                      (double)(eddy_mono_ns() - t0) / 1e6);
    return err;
}

void eddy_local_state_reset_done(eddy_local_state_t *ls)
{
    int64_t ns = eddy_mono_ns() - ls->noticed_ns;
    atomic_store(&ls->last_reset_ns, ns);
    eddy_log_info("local state reset done %.0f ms after the damage was noticed; the tasks restore "
                  "from their changelogs",
                  (double)ns / 1e6);
}

uint64_t eddy_local_state_generation(const eddy_runtime_t *rt)
{
    return rt->local_state ? atomic_load(&rt->local_state->generation) : 0;
}

eddy_statedb_t *eddy_local_state_read_begin(eddy_runtime_t *rt)
{
    eddy_local_state_t *ls = rt->local_state;
    if (!ls)
        return rt->db;
    if (atomic_load(&ls->resetting))
        return NULL;
    pthread_rwlock_rdlock(&ls->lock);
    if (atomic_load(&ls->resetting) || !rt->db || eddy_statedb_damaged(rt->db)) {
        pthread_rwlock_unlock(&ls->lock);
        return NULL;
    }
    return rt->db;
}

void eddy_local_state_read_end(eddy_runtime_t *rt)
{
    if (rt->local_state)
        pthread_rwlock_unlock(&rt->local_state->lock);
}

void eddy_local_state_stats(const eddy_runtime_t *rt, eddy_local_state_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    eddy_local_state_t *ls = rt->local_state;
    if (!ls)
        return;
    out->damaged = atomic_load(&ls->damaged);
    out->resets = atomic_load(&ls->resets);
    out->last_reset_ms = atomic_load(&ls->last_reset_ms);
    out->last_reset_ns = atomic_load(&ls->last_reset_ns);
    out->resetting = atomic_load(&ls->resetting);
    if (!out->resetting) { /* rt->db may be swapped meanwhile: under the lock */
        pthread_rwlock_rdlock(&ls->lock);
        out->resetting = rt->db && eddy_statedb_damaged(rt->db);
        pthread_rwlock_unlock(&ls->lock);
    }
    pthread_mutex_lock(&ls->info_lock);
    snprintf(out->moved_to, sizeof(out->moved_to), "%s", ls->moved_to);
    snprintf(out->reason, sizeof(out->reason), "%s", ls->reason);
    pthread_mutex_unlock(&ls->info_lock);
}
