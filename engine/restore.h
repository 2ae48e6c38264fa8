/*
 * restore.h — a stream thread's restorer: rebuilds its restoring tasks' stores
 * from their changelog partitions, a slice at a time between the thread's polls,
 * so the thread's other tasks keep processing meanwhile (Kafka Streams' restore
 * consumer). Reads with its own consumer (assign mode, read_committed) from each
 * store's local position to the high watermark seen when the task was added.
 *
 * Belongs to one stream thread; every call comes from it.
 */
#ifndef EDDY_RESTORE_H
#define EDDY_RESTORE_H

#include "engine/runtime.h"
#include "engine/task.h"

typedef struct eddy_restorer_s eddy_restorer_t;

/** A restorer for the thread named `name`; NULL with errstr filled on error. */
eddy_restorer_t *eddy_restorer_new(eddy_runtime_t *rt, const char *name, char *errstr,
                                   size_t errstr_size);

/** NULL is a no-op. Tasks still restoring are left as they are (not freed). */
void eddy_restorer_destroy(eddy_restorer_t *r);

/** Starts restoring `task` (RESTORING; borrowed until it finishes or is removed).
 *  Sets *done when there is nothing to read: then call eddy_task_restore_finish
 *  yourself. */
eddy_err_t eddy_restorer_add(eddy_restorer_t *r, eddy_task_t *task, bool *done, char *errstr,
                             size_t errstr_size);

/** Stops restoring `task` (revoked, or rolled back to start over); no-op if it
 *  is not restoring here. */
void eddy_restorer_remove(eddy_restorer_t *r, eddy_task_t *task);

/** Tasks being restored. */
int eddy_restorer_count(const eddy_restorer_t *r);

/** Called for a task whose every store reached its end; the restorer forgot it. */
typedef void(eddy_restored_fn)(eddy_task_t *task, void *opaque);

/** Reads and applies changelog records for about `budget_ms`, calling `done` for
 *  each task that completes. */
void eddy_restorer_step(eddy_restorer_t *r, int budget_ms, eddy_restored_fn *done, void *opaque);

#endif /* EDDY_RESTORE_H */
