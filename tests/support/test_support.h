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

#endif /* EDDY_TEST_SUPPORT_H */
