/*
 * stream_thread.h — a stream thread: one Kafka consumer in the application's
 * consumer group, the tasks of the partitions assigned to it, and the commit
 * loop. Kafka Streams' StreamThread, minus the JVM.
 *
 * Each thread runs on its own pthread; everything it owns (consumer, tasks,
 * record caches, write batch) is touched by that thread only. Other threads read
 * its published counters (atomics) and nothing else.
 */
#ifndef EDDY_STREAM_THREAD_H
#define EDDY_STREAM_THREAD_H

#include "eddy.h"
#include "engine/runtime.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct eddy_stream_thread_s eddy_stream_thread_t;

/** Creates thread number `index` (names it "<application.id>-StreamThread-<index+1>")
 *  and starts it. The runtime is borrowed and must outlive the thread. */
eddy_stream_thread_t *eddy_stream_thread_start(eddy_runtime_t *rt, int index, char *errstr,
                                               size_t errstr_size);

/** Asks the thread to stop: it commits, leaves the group and exits. Returns at once. */
void eddy_stream_thread_signal_stop(eddy_stream_thread_t *st);

/** Waits for the thread to end and frees it. NULL is a no-op. */
void eddy_stream_thread_join(eddy_stream_thread_t *st);

/** True once the thread ended on a fatal error (the app then stops). */
bool eddy_stream_thread_failed(const eddy_stream_thread_t *st);

/** True while the thread, having found the local state damaged, has dropped its
 *  tasks and waits for a fresh state db (eddy_local_state_generation to move):
 *  from then on it does not touch rt->db. */
bool eddy_stream_thread_halted(const eddy_stream_thread_t *st);

#endif /* EDDY_STREAM_THREAD_H */
