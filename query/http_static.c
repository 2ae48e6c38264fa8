/*
 * http_static.c — static files (the dashboard) for the HTTP server.
 *
 * A GET of an unrouted path opens the file of that name under the static root.
 * What always holds: nothing outside the root is ever opened. The decoded segments
 * are checked ('.', '..', hidden names, '/' or '\' inside a segment are refused),
 * then the joined path is resolved with realpath() and must still lie under the
 * (canonical) root, so symbolic links may point around inside the root but never
 * out of it; the final open refuses a link swapped in meanwhile (O_NOFOLLOW).
 * Runs on the serving threads; no state.
 */
#include "query/http_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct content_type_s {
    const char *ext;  /* extension, without the dot */
    const char *type; /* Content-Type */
} content_type_t;

static const content_type_t content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
};

const char *eddy_http_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (!strcasecmp(dot + 1, content_types[i].ext))
                return content_types[i].type;
    return "application/octet-stream";
}

int eddy_http_static_open(const char *root, const eddy_http_target_t *target, int *fd,
                          uint64_t *size, const char **content_type, char *msg, size_t msg_size)
{
    char path[PATH_MAX];
    size_t n = (size_t)snprintf(path, sizeof(path), "%s", root);
    for (size_t i = 0; i < target->nsegs; i++) {
        const char *seg = target->seg[i];
        bool last = i + 1 == target->nsegs;
        if (!strcmp(seg, ".") || !strcmp(seg, "..")) {
            snprintf(msg, msg_size, "the path must not contain '.' or '..' segments");
            return 400;
        }
        /* An empty segment is only allowed last ("/", "/docs/"): it names the
         * directory's index.html. Hidden files (".git", ".env") are never served. */
        if ((!*seg && !last) || seg[0] == '.' || strchr(seg, '/') || strchr(seg, '\\'))
            goto not_found;
        n += (size_t)snprintf(path + n, n < sizeof(path) ? sizeof(path) - n : 0, "/%s",
                              *seg ? seg : "index.html");
        if (n >= sizeof(path))
            goto not_found;
    }

    char resolved[PATH_MAX];
    if (!realpath(path, resolved))
        goto not_found;
    size_t root_len = strlen(root);
    bool inside = !strncmp(resolved, root, root_len) &&
                  (resolved[root_len] == '/' || (root_len == 1 && root[0] == '/'));
    if (!inside)
        goto not_found;
    int f = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (f < 0)
        goto not_found;
    struct stat st;
    if (fstat(f, &st) || !S_ISREG(st.st_mode)) {
        close(f);
        goto not_found;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    *content_type = eddy_http_content_type(path);
    return 200;

not_found:
    snprintf(msg, msg_size, "no such file: %.200s", target->path);
    return 404;
}
