/*
 * http_int.h — what the HTTP server's files share: route patterns and request
 * targets (http_route.c), static files (http_static.c). Not an interface for other
 * modules; they use http.h.
 *
 * A route belongs to its server and never changes after eddy_http_start. A target
 * belongs to one request on one thread; its strings live in that request's scratch
 * buffer.
 */
#ifndef EDDY_HTTP_INT_H
#define EDDY_HTTP_INT_H

#include "query/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDDY_HTTP_MAX_SEGMENTS 32 /* path segments of a route or a request */
#define EDDY_HTTP_MAX_PARAMS   8  /* parameters of one route */
#define EDDY_HTTP_MAX_QUERY    64 /* query parameters of one request */

typedef enum eddy_http_seg_kind_e {
    EDDY_HTTP_SEG_LITERAL = 0, /* matches itself */
    EDDY_HTTP_SEG_PARAM = 1,   /* "{name}": one non-empty segment */
    EDDY_HTTP_SEG_REST = 2,    /* "{name...}": all remaining segments, last only */
} eddy_http_seg_kind_t;

typedef struct eddy_http_seg_s {
    eddy_http_seg_kind_t kind; /* what the segment matches */
    const char *text;          /* literal text or parameter name (in route->texts) */
} eddy_http_seg_t;

typedef struct eddy_http_route_s {
    char *method;                                 /* e.g. "GET" (owned) */
    char *pattern;                                /* as registered, for messages (owned) */
    char *texts;                                  /* NUL-separated segment texts (owned) */
    eddy_http_seg_t segs[EDDY_HTTP_MAX_SEGMENTS]; /* the pattern, split at '/' */
    size_t nsegs;                                 /* used entries of segs */
    eddy_http_handler_fn fn;                      /* the handler */
    void *opaque;                                 /* its argument (borrowed) */
} eddy_http_route_t;

/* A request target, split at '/' and '&' and percent-decoded. "/" is one empty
 * segment, "/a/" is "a" and "". */
typedef struct eddy_http_target_s {
    const char *path;                        /* the raw path without the query */
    const char *raw[EDDY_HTTP_MAX_SEGMENTS]; /* where each segment starts in path */
    const char *seg[EDDY_HTTP_MAX_SEGMENTS]; /* decoded segments, NUL-terminated */
    size_t nsegs;                            /* used entries of raw and seg */
    const char *qname[EDDY_HTTP_MAX_QUERY];  /* decoded query parameter names */
    const char *qvalue[EDDY_HTTP_MAX_QUERY]; /* and values ("" when none) */
    size_t nquery;                           /* used entries of qname and qvalue */
    char *rest;                              /* room for a decoded {name...} value */
    bool asterisk;                           /* the target was "*" (OPTIONS *) */
} eddy_http_target_t;

/** Parses a route pattern for `method` into *route (zeroed by the caller). On
 *  failure returns EDDY_ERR_INVALID or EDDY_ERR_NOMEM with errstr filled and
 *  leaves nothing to free. */
eddy_err_t eddy_http_route_init(eddy_http_route_t *route, const char *method, const char *pattern,
                                char *errstr, size_t errstr_size);

/** Frees what eddy_http_route_init allocated. */
void eddy_http_route_clear(eddy_http_route_t *route);

/** True if a and b have the same method and match the same paths. */
bool eddy_http_route_same(const eddy_http_route_t *a, const eddy_http_route_t *b);

/** > 0 if a is more specific than b (a literal where b has a parameter, or a
 *  parameter where b has a catch-all, at the first segment where they differ),
 *  < 0 if less, 0 if neither. */
int eddy_http_route_cmp(const eddy_http_route_t *a, const eddy_http_route_t *b);

/** True if route matches the target's path. With `values` non-NULL, fills
 *  values[i] with the i-th parameter's decoded value (a catch-all's value is
 *  written to target->rest). */
bool eddy_http_route_match(const eddy_http_route_t *route, eddy_http_target_t *target,
                           const char *values[EDDY_HTTP_MAX_PARAMS]);

/** Scratch bytes eddy_http_target_parse needs for a target of `len` bytes. */
size_t eddy_http_target_scratch(size_t len);

/** Splits and decodes the raw request target `uri` (origin form "/p?q", absolute
 *  form "http://h/p?q" or "*") into *target, using `scratch` (at least
 *  eddy_http_target_scratch(strlen(uri)) bytes) for the strings. Returns 0, or 400
 *  with a message for the client in msg. */
int eddy_http_target_parse(eddy_http_target_t *target, const char *uri, char *scratch, char *msg,
                           size_t msg_size);

/** Opens the file a GET of `target` names under `root` (a canonical directory
 *  path): index.html for a path ending in '/', nothing outside root (no "." or ".."
 *  segments, no hidden files, no symbolic link leading out). Returns 200 with *fd,
 *  *size and *content_type (static string) set, or 400/404 with a message. */
int eddy_http_static_open(const char *root, const eddy_http_target_t *target, int *fd,
                          uint64_t *size, const char **content_type, char *msg, size_t msg_size);

/** The Content-Type for a file name, by its extension; application/octet-stream
 *  when unknown. */
const char *eddy_http_content_type(const char *name);

#endif /* EDDY_HTTP_INT_H */
