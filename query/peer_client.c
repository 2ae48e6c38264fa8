/*
 * peer_client.c — a deadline-bounded HTTP/1.1 GET (see peer_client.h). The
 * socket is non-blocking and every wait is a poll() for what is left of the
 * deadline, so a peer that accepts but never answers costs at most timeout_ms.
 * The response is read to the peer's close (we send "Connection: close") and
 * parsed afterwards.
 */
#define _GNU_SOURCE
#include "query/peer_client.h"
#include "engine/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Milliseconds left until deadline_ns (monotonic); 0 once it passed. */
static int left_ms(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - eddy_mono_ns()) / 1000000;
    return left > 0 ? (int)left : 0;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static eddy_err_t wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int ms = left_ms(deadline_ns);
        if (ms == 0)
            return EDDY_ERR_TIMEOUT;
        int n = poll(&pfd, 1, ms);
        if (n > 0)
            return EDDY_OK;
        if (n < 0 && errno != EINTR)
            return EDDY_ERR_IO;
    }
}

/* Splits "host:port" or "[v6]:port". */
static bool split_server(const char *server, char *host, size_t host_size, char *port,
                         size_t port_size)
{
    const char *colon = strrchr(server, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= port_size)
        return false;
    const char *h = server;
    size_t n = (size_t)(colon - server);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= host_size)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return true;
}

/* A non-blocking socket connected to server within the deadline, or -1. */
static int connect_to(const char *server, int64_t deadline_ns, eddy_err_t *err, char *errstr,
                      size_t errstr_size)
{
    char host[256], port[16];
    if (!split_server(server, host, sizeof(host), port, sizeof(port))) {
        *err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "'%s' is not HOST:PORT", server);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        *err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot resolve %s: %s", server,
                         gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    *err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot connect to %s", server);
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            eddy_err_t w = wait_fd(fd, POLLOUT, deadline_ns);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w == EDDY_ERR_TIMEOUT) {
                *err = eddy_errf(EDDY_ERR_TIMEOUT, errstr, errstr_size,
                                 "connecting to %s timed out", server);
                close(fd);
                fd = -1;
                break;
            }
            if (w || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
                *err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot connect to %s: %s",
                                 server, strerror(soerr ? soerr : errno));
                close(fd);
                fd = -1;
            }
        } else if (rc < 0) {
            *err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot connect to %s: %s", server,
                             strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0)
        *err = EDDY_OK;
    return fd;
}

/* The value of header `name` in the header block [head, end), or NULL; *vlen
 * gets its length. */
static const char *find_header(const char *head, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (const char *line = head; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

/* Decodes a chunked body [p, end) into out (at least end - p bytes). */
static eddy_err_t dechunk(const char *p, const char *end, char *out, size_t *out_len)
{
    size_t n = 0;
    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            return EDDY_ERR_IO;
        char *num_end;
        unsigned long long size = strtoull(p, &num_end, 16);
        if (num_end == p || (num_end < eol && *num_end != ';' && *num_end != ' '))
            return EDDY_ERR_IO;
        p = eol + 2;
        if (size == 0)
            break; /* trailers, if any, are ignored */
        if (size > (unsigned long long)(end - p) || (size_t)(end - p) - size < 2 ||
            memcmp(p + size, "\r\n", 2))
            return EDDY_ERR_IO;
        memcpy(out + n, p, size);
        n += size;
        p += size + 2;
    }
    *out_len = n;
    return EDDY_OK;
}

eddy_err_t eddy_peer_parse_response(const char *buf, size_t len, int *status, char **body,
                                    size_t *body_len, char *errstr, size_t errstr_size)
{
    const char *end = buf + len;
    const char *hdr_end = memmem(buf, len, "\r\n\r\n", 4);
    int major = 0, minor = 0, code = 0, consumed = 0;
    if (!hdr_end)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "response cut short in the headers");
    if (sscanf(buf, "HTTP/%d.%d %3d%n", &major, &minor, &code, &consumed) != 3 || major != 1 ||
        code < 100 || code > 599 || (buf[consumed] != ' ' && buf[consumed] != '\r'))
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "not an HTTP/1.x status line");
    const char *head = memmem(buf, (size_t)(hdr_end - buf) + 2, "\r\n", 2) + 2;
    const char *data = hdr_end + 4;
    size_t avail = (size_t)(end - data), vlen = 0, n = avail;
    char *out = malloc(avail + 1);
    if (!out)
        return eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
    const char *te = find_header(head, hdr_end + 2, "Transfer-Encoding", &vlen);
    const char *cl = NULL;
    if (te && vlen >= 7 && !strncasecmp(te + vlen - 7, "chunked", 7)) {
        if (dechunk(data, end, out, &n)) {
            free(out);
            return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "malformed chunked body");
        }
    } else if ((cl = find_header(head, hdr_end + 2, "Content-Length", &vlen))) {
        char tmp[32];
        char *num_end;
        if (vlen == 0 || vlen >= sizeof(tmp)) {
            free(out);
            return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "bad Content-Length");
        }
        memcpy(tmp, cl, vlen);
        tmp[vlen] = '\0';
        unsigned long long want = strtoull(tmp, &num_end, 10);
        if (*num_end || tmp[0] == '-' || want > avail) {
            free(out);
            return eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                             *num_end || tmp[0] == '-' ? "bad Content-Length"
                                                       : "response body cut short");
        }
        n = (size_t)want;
        memcpy(out, data, n);
    } else {
        memcpy(out, data, n); /* delimited by the close */
    }
    out[n] = '\0';
    *status = code;
    *body = out;
    *body_len = n;
    return EDDY_OK;
}

eddy_err_t eddy_peer_get(const char *server, const char *target, int timeout_ms, int *status,
                         char **body, size_t *body_len, char *errstr, size_t errstr_size)
{
    const int64_t deadline = eddy_mono_ns() + (int64_t)timeout_ms * 1000000;
    eddy_err_t err = EDDY_OK;
    char *buf = NULL;
    int fd = connect_to(server, deadline, &err, errstr, errstr_size);
    if (fd < 0)
        return err;
    char req[4096];
    int rlen = snprintf(req, sizeof(req),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                        "Connection: close\r\n\r\n",
                        target, server);
    if (rlen < 0 || (size_t)rlen >= sizeof(req)) {
        err = eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "request target too long");
        goto out;
    }
    for (size_t sent = 0; sent < (size_t)rlen;) {
        ssize_t w = send(fd, req + sent, (size_t)rlen - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((err = wait_fd(fd, POLLOUT, deadline)))
                goto timeout_or_io;
            continue;
        }
        err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "sending to %s: %s", server,
                        strerror(errno));
        goto out;
    }
    size_t len = 0, cap = 16384;
    if (!(buf = malloc(cap))) {
        err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= EDDY_PEER_MAX_BODY + 65536) {
                err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                                "the answer of %s is larger than %u bytes", server,
                                EDDY_PEER_MAX_BODY);
                goto out;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                err = eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EAGAIN || errno == EINTR) {
            if ((err = wait_fd(fd, POLLIN, deadline)))
                goto timeout_or_io;
            continue;
        }
        err = eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "reading from %s: %s", server,
                        strerror(errno));
        goto out;
    }
    err = eddy_peer_parse_response(buf, len, status, body, body_len, errstr, errstr_size);
    goto out;
timeout_or_io:
    err = err == EDDY_ERR_TIMEOUT ? eddy_errf(EDDY_ERR_TIMEOUT, errstr, errstr_size,
                                              "%s did not answer within %d ms", server, timeout_ms)
                                  : eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                                              "waiting for %s: %s", server, strerror(errno));
out:
    free(buf);
    close(fd);
    return err;
}
