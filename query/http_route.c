/*
 * http_route.c — route patterns and request targets for the HTTP server.
 *
 * Patterns and paths are compared segment by segment, after percent-decoding the
 * request's segments one at a time, so that "/api/metrics/endpoint/%2Fapi%2Forders"
 * has three segments and its last parameter is "/api/orders". Query strings are
 * decoded as forms ('+' is a space). Everything here is pure: patterns are parsed
 * once at registration, targets on the request's own thread into its own scratch.
 */
#include "query/http_int.h"

#include "engine/log.h"
#include "engine/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes src[0..len) into dst (at least len + 1 bytes) and NUL-terminates it. False
 * for a '%' not followed by two hex digits, or an encoded NUL (C strings could not
 * carry the rest). */
static bool pct_decode(const char *src, size_t len, char *dst, bool plus_is_space)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return false;
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            dst[n++] = ' ';
        } else {
            dst[n++] = ch;
        }
    }
    dst[n] = '\0';
    return true;
}

/* --- patterns ----------------------------------------------------------------------- */

static bool valid_param_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool valid_method(const char *m)
{
    if (!*m)
        return false;
    for (const char *p = m; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'))
            return false;
    return true;
}

eddy_err_t eddy_http_route_init(eddy_http_route_t *route, const char *method, const char *pattern,
                                char *errstr, size_t errstr_size)
{
    eddy_err_t err = EDDY_OK;
    if (!valid_method(method))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "route method '%s' is not an upper-case HTTP method", method);
    if (pattern[0] != '/')
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "route pattern '%s' does not start with '/'", pattern);
    route->method = strdup(method);
    route->pattern = strdup(pattern);
    route->texts = strdup(pattern + 1);
    if (!route->method || !route->pattern || !route->texts) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    /* Split the copy in place: every '/' becomes a NUL, braces are cut off. */
    char *s = route->texts;
    size_t nparams = 0;
    for (;;) {
        char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (slash)
            *slash = '\0';
        if (route->nsegs == EDDY_HTTP_MAX_SEGMENTS) {
            err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                            "route pattern '%s' has more than %d segments", pattern,
                            EDDY_HTTP_MAX_SEGMENTS);
            goto out;
        }
        eddy_http_seg_t *seg = &route->segs[route->nsegs++];
        if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
            bool rest = len > 5 && !memcmp(s + len - 4, "...}", 4);
            size_t name_len = len - 2 - (rest ? 3 : 0);
            if (!valid_param_name(s + 1, name_len)) {
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "route pattern '%s': '%s' is not {name} or {name...} with a "
                                "name of letters, digits and '_'",
                                pattern, s);
                goto out;
            }
            if (rest && slash) {
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "route pattern '%s': '%s' must be the last segment", pattern, s);
                goto out;
            }
            s[1 + name_len] = '\0';
            seg->kind = rest ? EDDY_HTTP_SEG_REST : EDDY_HTTP_SEG_PARAM;
            seg->text = s + 1;
            for (size_t i = 0; i + 1 < route->nsegs; i++)
                if (route->segs[i].kind != EDDY_HTTP_SEG_LITERAL &&
                    !strcmp(route->segs[i].text, seg->text)) {
                    err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                    "route pattern '%s' names parameter '%s' twice", pattern,
                                    seg->text);
                    goto out;
                }
            if (++nparams > EDDY_HTTP_MAX_PARAMS) {
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "route pattern '%s' has more than %d parameters", pattern,
                                EDDY_HTTP_MAX_PARAMS);
                goto out;
            }
        } else {
            if (memchr(s, '{', len) || memchr(s, '}', len) || memchr(s, '%', len) ||
                memchr(s, '?', len)) {
                err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                                "route pattern '%s': segment '%s' mixes text and '{', '}', "
                                "'%%' or '?'",
                                pattern, s);
                goto out;
            }
            seg->kind = EDDY_HTTP_SEG_LITERAL;
            seg->text = s;
        }
        if (!slash)
            break;
        s = slash + 1;
    }
out:
    if (err)
        eddy_http_route_clear(route);
    return err;
}

void eddy_http_route_clear(eddy_http_route_t *route)
{
    free(route->method);
    free(route->pattern);
    free(route->texts);
    memset(route, 0, sizeof(*route));
}

bool eddy_http_route_same(const eddy_http_route_t *a, const eddy_http_route_t *b)
{
    if (strcmp(a->method, b->method) || a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == EDDY_HTTP_SEG_LITERAL && strcmp(a->segs[i].text, b->segs[i].text))
            return false;
    }
    return true;
}

int eddy_http_route_cmp(const eddy_http_route_t *a, const eddy_http_route_t *b)
{
    for (size_t i = 0; i < a->nsegs && i < b->nsegs; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return a->segs[i].kind < b->segs[i].kind ? 1 : -1;
    /* Same kinds as far as both go: the longer one has more literal or parameter
     * segments before a catch-all, so it is the more specific. */
    return (a->nsegs > b->nsegs) - (a->nsegs < b->nsegs);
}

bool eddy_http_route_match(const eddy_http_route_t *route, eddy_http_target_t *target,
                           const char *values[EDDY_HTTP_MAX_PARAMS])
{
    size_t nvalues = 0;
    for (size_t i = 0; i < route->nsegs; i++) {
        const eddy_http_seg_t *seg = &route->segs[i];
        if (seg->kind == EDDY_HTTP_SEG_REST) {
            if (values) {
                /* Decode the raw remainder as a whole: "%2F" and "/" both come out
                 * as '/'. Every escape in it was checked by the target parser. */
                const char *raw = i < target->nsegs ? target->raw[i] : "";
                (void)pct_decode(raw, strlen(raw), target->rest, false);
                values[nvalues] = target->rest;
            }
            return true;
        }
        if (i >= target->nsegs)
            return false;
        if (seg->kind == EDDY_HTTP_SEG_LITERAL) {
            if (strcmp(seg->text, target->seg[i]))
                return false;
        } else {
            if (!target->seg[i][0])
                return false;
            if (values)
                values[nvalues] = target->seg[i];
            nvalues++;
        }
    }
    return route->nsegs == target->nsegs;
}

/* --- request targets ------------------------------------------------------------------ */

size_t eddy_http_target_scratch(size_t len)
{
    /* The raw path copy, the decoded segments, the decoded query and the catch-all
     * value each take at most len bytes plus their terminators. */
    return 4 * len + EDDY_HTTP_MAX_SEGMENTS + 2 * EDDY_HTTP_MAX_QUERY + 16;
}

int eddy_http_target_parse(eddy_http_target_t *target, const char *uri, char *scratch, char *msg,
                           size_t msg_size)
{
    target->path = NULL;
    target->nsegs = 0;
    target->nquery = 0;
    target->rest = NULL;
    target->asterisk = false;
    if (!strcmp(uri, "*")) {
        target->asterisk = true;
        target->path = "*";
        return 0;
    }
    /* Absolute form (proxies send it; RFC 9112 says servers accept it): drop the
     * scheme and authority. */
    if (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) {
        const char *auth = strstr(uri, "//") + 2;
        const char *slash = strpbrk(auth, "/?");
        uri = slash && *slash == '/' ? slash : "/";
    }
    if (uri[0] != '/') {
        snprintf(msg, msg_size, "the request target must be a path starting with '/'");
        return 400;
    }
    const char *q = strchr(uri, '?');
    size_t path_len = q ? (size_t)(q - uri) : strlen(uri);
    size_t query_len = q ? strlen(q + 1) : 0;

    char *path = scratch;
    memcpy(path, uri, path_len);
    path[path_len] = '\0';
    char *out = path + path_len + 1;
    target->path = path;

    /* Segments: raw pointers into path, decoded copies into out. */
    const char *s = path + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (target->nsegs == EDDY_HTTP_MAX_SEGMENTS) {
            snprintf(msg, msg_size, "the path has more than %d segments", EDDY_HTTP_MAX_SEGMENTS);
            return 400;
        }
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
            snprintf(msg, msg_size, "the path must not contain '.' or '..' segments");
            return 400;
        }
        if (!pct_decode(s, len, out, false)) {
            snprintf(msg, msg_size,
                     "the path has a malformed percent-encoding ('%%' must be followed by "
                     "two hex digits, and %%00 is not allowed)");
            return 400;
        }
        target->raw[target->nsegs] = s;
        target->seg[target->nsegs++] = out;
        out += strlen(out) + 1;
        if (!slash)
            break;
        s = slash + 1;
    }

    /* Query: name[=value] pairs separated by '&'; empty pairs are skipped. */
    const char *p = q ? q + 1 : NULL;
    const char *end = p ? p + query_len : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        if (pair_end > p) {
            if (target->nquery == EDDY_HTTP_MAX_QUERY) {
                snprintf(msg, msg_size, "the query has more than %d parameters",
                         EDDY_HTTP_MAX_QUERY);
                return 400;
            }
            const char *eq = memchr(p, '=', (size_t)(pair_end - p));
            const char *name_end = eq ? eq : pair_end;
            char *name = out;
            if (!pct_decode(p, (size_t)(name_end - p), name, true))
                goto bad_query;
            out += strlen(name) + 1;
            char *value = out;
            if (!pct_decode(eq ? eq + 1 : pair_end, eq ? (size_t)(pair_end - eq - 1) : 0, value,
                            true))
                goto bad_query;
            out += strlen(value) + 1;
            target->qname[target->nquery] = name;
            target->qvalue[target->nquery++] = value;
        }
        p = amp ? amp + 1 : end;
    }
    target->rest = out;
    return 0;

bad_query:
    snprintf(msg, msg_size,
             "the query string has a malformed percent-encoding ('%%' must be followed by two "
             "hex digits, and %%00 is not allowed)");
    return 400;
}
