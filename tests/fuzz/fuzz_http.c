/*
 * fuzz_http.c — libFuzzer target: the HTTP server's own parsing of what clients
 * send (query/http_route.c): request targets (path segments, percent-decoding,
 * query strings, absolute form), matching them against a fixed route table the
 * way dispatch does (parameters, catch-alls, specificity), and route patterns.
 *
 * Input: the first byte picks what the rest is (even: a request target; odd: a
 * route pattern, then matched against "/" targets). Checks, beyond ASan/UBSan:
 * every decoded string lies in the scratch buffer the parser was given and is
 * NUL-terminated there; a matched route's parameters are all set and non-empty
 * for "{name}"; a failed parse says why. Built like fuzz_decode (tests/fuzz).
 */
#include "query/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[] = {
    "/api/stores",
    "/api/stores/{store}/windows",
    "/api/stores/special/windows",
    "/api/metrics/endpoint/{endpoint}",
    "/files/{path...}",
    "/api/internal/stores/{store}/partials",
    "/",
    "/ws",
    "/{a}/{b}/{c}",
};
#define N_ROUTES (sizeof(patterns) / sizeof(patterns[0]))
static eddy_http_route_t routes[N_ROUTES];

static void check(bool ok, const char *what, const char *input)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http: %s for input '%s'\n", what, input);
        abort();
    }
}

/* True if s is a NUL-terminated string inside [lo, hi). */
static bool inside(const char *s, const char *lo, const char *hi)
{
    return s >= lo && s < hi && memchr(s, '\0', (size_t)(hi - s));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char errstr[256];
    for (size_t i = 0; i < N_ROUTES; i++)
        if (eddy_http_route_init(&routes[i], "GET", patterns[i], errstr, sizeof(errstr))) {
            fprintf(stderr, "fuzz_http: %s\n", errstr);
            abort();
        }
    return 0;
}

static void fuzz_target(const char *uri)
{
    size_t len = strlen(uri);
    size_t cap = eddy_http_target_scratch(len);
    char *scratch = malloc(cap);
    eddy_http_target_t t;
    char msg[256] = "";
    int status = eddy_http_target_parse(&t, uri, scratch, msg, sizeof(msg));
    check(status == 0 || (status == 400 && msg[0]), "a parse failure without a reason", uri);
    if (status) {
        free(scratch);
        return;
    }
    const char *end = scratch + cap;
    if (t.asterisk) {
        free(scratch);
        return;
    }
    check(inside(t.path, scratch, end), "path outside scratch", uri);
    check(t.nsegs >= 1 && t.nsegs <= EDDY_HTTP_MAX_SEGMENTS, "segment count", uri);
    for (size_t i = 0; i < t.nsegs; i++) {
        check(inside(t.seg[i], scratch, end), "segment outside scratch", uri);
        check(t.raw[i] >= t.path && t.raw[i] <= t.path + strlen(t.path), "raw segment", uri);
    }
    check(t.nquery <= EDDY_HTTP_MAX_QUERY, "query count", uri);
    for (size_t i = 0; i < t.nquery; i++)
        check(inside(t.qname[i], scratch, end) && inside(t.qvalue[i], scratch, end),
              "query outside scratch", uri);
    check(t.rest && t.rest >= scratch && t.rest < end, "rest outside scratch", uri);

    /* Route as dispatch does: every match, the most specific one, its values. */
    const eddy_http_route_t *best = NULL;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (eddy_http_route_match(&routes[i], &t, NULL) &&
            (!best || eddy_http_route_cmp(&routes[i], best) > 0))
            best = &routes[i];
    if (best) {
        const char *values[EDDY_HTTP_MAX_PARAMS] = {0};
        check(eddy_http_route_match(best, &t, values), "a match that does not repeat", uri);
        size_t k = 0;
        for (size_t i = 0; i < best->nsegs; i++) {
            if (best->segs[i].kind == EDDY_HTTP_SEG_LITERAL)
                continue;
            check(values[k] && inside(values[k], scratch, end), "parameter value", uri);
            if (best->segs[i].kind == EDDY_HTTP_SEG_PARAM)
                check(values[k][0] != '\0', "an empty {name}", uri);
            k++;
        }
    }
    free(scratch);
}

static void fuzz_pattern(const char *pattern)
{
    eddy_http_route_t r;
    memset(&r, 0, sizeof(r));
    char errstr[256] = "";
    if (eddy_http_route_init(&r, "GET", pattern, errstr, sizeof(errstr))) {
        check(errstr[0] != '\0', "a refused pattern without a reason", pattern);
        return;
    }
    check(r.nsegs >= 1 && r.nsegs <= EDDY_HTTP_MAX_SEGMENTS, "pattern segments", pattern);
    for (size_t i = 0; i < N_ROUTES; i++) {
        (void)eddy_http_route_same(&r, &routes[i]);
        int a = eddy_http_route_cmp(&r, &routes[i]), b = eddy_http_route_cmp(&routes[i], &r);
        check((a > 0) == (b < 0) && (a == 0) == (b == 0), "route_cmp not antisymmetric", pattern);
    }
    /* The pattern's own text, as a request, must not crash matching either. */
    fuzz_target(pattern);
    eddy_http_route_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0'; /* MHD hands the target over as a C string */
    if (data[0] & 1)
        fuzz_pattern(s);
    else
        fuzz_target(s);
    free(s);
    return 0;
}
