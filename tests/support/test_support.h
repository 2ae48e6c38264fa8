/*
 * test_support.h — helpers for eddy's cmocka tests: temporary directories that
 * clean up after themselves, and where the built `eddy` binary is.
 */
#ifndef EDDY_TEST_SUPPORT_H
#define EDDY_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/** Creates a fresh directory under $TMPDIR (or /tmp) named eddy-<tag>-XXXXXX and
 *  writes its path into `out`. Fails the test if it cannot. */
void eddy_test_mkdtemp(const char *tag, char *out, size_t out_size);

/** Removes a directory tree made by eddy_test_mkdtemp (best effort). */
void eddy_test_rmtree(const char *path);

/** Path of the built `eddy` binary (ctest sets EDDY_BIN); NULL if unknown. */
const char *eddy_test_bin(void);

/** Sends `count` events of `kind` with `seed` to `topic` as fast as possible, with
 *  simulated event time spread over [start_ts, start_ts + span_s); fails the test
 *  unless every event is acknowledged. Returns the number of partitions the topic
 *  has. (kind is an eddy_gen_kind_t.) */
int eddy_test_generate(const char *bootstrap, const char *topic, int kind, uint64_t seed,
                       int64_t count, int64_t start_ts, double span_s);

/** Creates the changelog topics <app>-<store>-changelog of every store of the
 *  example topology `topology` (a file name under topology/examples/, or an
 *  absolute path) and the dead-letter topic <app>-dlq on the embedded broker,
 *  `partitions` each, and for a topology with sinks <app>-sinks-changelog (1
 *  partition).
 *  Returns 0, or -1 after printing why. */
struct eddy_broker_s;
int eddy_test_create_changelogs(struct eddy_broker_s *broker, const char *topology, const char *app,
                                int partitions);

#endif /* EDDY_TEST_SUPPORT_H */
