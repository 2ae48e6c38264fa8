/*
 * sink.h — sends the windows of stores that declare a sink to their sink topic.
 *
 * A window is final once every partition's committed stream time has passed its
 * end plus grace (so, as in Kafka Streams, a partition that never receives data
 * holds its windows open). Stores with emit "on_close" get each final window once,
 * merged across all partitions; stores with emit "updates" also get the current
 * value of every open window at each tick. Merging needs every partition, so an
 * instance emits only while it owns all of them.
 *
 * Exactly once: with exactly_once_v2 the windows of a tick and one progress record
 * per store ("windows starting before X are out") go to the sink topics and the
 * sinks changelog <application.id>-sinks-changelog in one transaction of a
 * producer with transactional.id <application.id>-sinks. An instance that becomes
 * the emitter (at start, after a wipe, after taking partitions over) first fences
 * the previous emitter (init_transactions) and then reads the changelog back, so
 * it goes on exactly where the last committed transaction ended. With
 * at_least_once the progress record follows the windows in one flush: a crash in
 * between repeats that tick's windows.
 *
 * Runs on the main thread of `eddy run` (eddy_sink_tick from its loop).
 */
#ifndef EDDY_SINK_H
#define EDDY_SINK_H

#include "engine/runtime.h"

typedef struct eddy_sink_s eddy_sink_t;

/** NULL with errstr empty if no store has a sink; NULL with a message on error
 *  (for example when the sink producer cannot start its transactions). */
eddy_sink_t *eddy_sink_new(eddy_runtime_t *rt, char *errstr, size_t errstr_size);

/** Emits what became final (and, for "updates" stores, the open windows). */
void eddy_sink_tick(eddy_sink_t *sink);

/** Waits for outstanding deliveries (up to 10 s) and frees. NULL is a no-op. */
void eddy_sink_destroy(eddy_sink_t *sink);

#endif /* EDDY_SINK_H */
