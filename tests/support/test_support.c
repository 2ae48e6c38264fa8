/*
 * test_support.c — see test_support.h.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void eddy_test_mkdtemp(const char *tag, char *out, size_t out_size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, out_size, "%s/eddy-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(out))
        fail_msg("mkdtemp(%s) failed", out);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void eddy_test_rmtree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *eddy_test_bin(void)
{
    const char *bin = getenv("EDDY_BIN");
    return bin && *bin ? bin : NULL;
}
