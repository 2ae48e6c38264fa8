/*
 * http_client.c — the tests' blocking HTTP/1.1 client (see http_client.h).
 *
 * One receive buffer per connection: responses are parsed out of it and whatever
 * follows a response (the next pipelined response, WebSocket frames after a 101)
 * stays in it for the next read. Reads wait with poll() for the timeout.
 */
#define _GNU_SOURCE
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BUFFER (64 * 1024 * 1024) /* a response larger than this is an error */

struct eddy_test_http_conn_s {
    int fd;         /* the socket */
    int timeout_ms; /* per read */
    char host[64];  /* for the Host header */
    int port;       /* likewise */
    char *buf;      /* received, not yet consumed: buf[off..len) */
    size_t off;     /* start of unread bytes */
    size_t len;     /* end of unread bytes */
    size_t cap;     /* allocated */
};

eddy_test_http_conn_t *eddy_test_http_connect(const char *host, int port)
{
    return eddy_test_http_connect_from(host, port, NULL);
}

eddy_test_http_conn_t *eddy_test_http_connect_from(const char *host, int port, const char *source)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        sl = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*v6);
    } else {
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in src = {.sin_family = AF_INET};
    if (source && (ss.ss_family != AF_INET || inet_pton(AF_INET, source, &src.sin_addr) != 1 ||
                   bind(fd, (struct sockaddr *)&src, sizeof(src)))) {
        close(fd);
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl)) {
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    eddy_test_http_conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        close(fd);
        return NULL;
    }
    conn->fd = fd;
    conn->timeout_ms = 5000;
    snprintf(conn->host, sizeof(conn->host), "%s", host);
    conn->port = port;
    return conn;
}

void eddy_test_http_close(eddy_test_http_conn_t *conn)
{
    if (!conn)
        return;
    close(conn->fd);
    free(conn->buf);
    free(conn);
}

int eddy_test_http_fd(const eddy_test_http_conn_t *conn)
{
    return conn->fd;
}

void eddy_test_http_set_timeout(eddy_test_http_conn_t *conn, int timeout_ms)
{
    conn->timeout_ms = timeout_ms;
}

int eddy_test_http_send(eddy_test_http_conn_t *conn, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(conn->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int eddy_test_http_send_request(eddy_test_http_conn_t *conn, const char *method, const char *target,
                                const char *headers, const void *body, size_t body_len)
{
    size_t hlen = headers ? strlen(headers) : 0;
    size_t size = strlen(method) + strlen(target) + hlen + 256;
    char *head = malloc(size);
    if (!head)
        return -1;
    int n = snprintf(head, size, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", method, target, conn->host,
                     conn->port);
    if (body)
        n += snprintf(head + n, size - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(head + n, size - (size_t)n, "%s\r\n", headers ? headers : "");
    int rc = eddy_test_http_send(conn, head, (size_t)n);
    free(head);
    if (rc == 0 && body && body_len)
        rc = eddy_test_http_send(conn, body, body_len);
    return rc;
}

/* Reads more bytes into the buffer: > 0 read, 0 peer closed, -1 timeout or error. */
static ssize_t fill(eddy_test_http_conn_t *conn)
{
    if (conn->off == conn->len)
        conn->off = conn->len = 0;
    if (conn->cap - conn->len < 4096) {
        if (conn->off) {
            memmove(conn->buf, conn->buf + conn->off, conn->len - conn->off);
            conn->len -= conn->off;
            conn->off = 0;
        }
        if (conn->cap - conn->len < 4096) {
            size_t cap = conn->cap ? conn->cap * 2 : 16384;
            if (cap > MAX_BUFFER)
                return -1;
            char *b = realloc(conn->buf, cap);
            if (!b)
                return -1;
            conn->buf = b;
            conn->cap = cap;
        }
    }
    struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
    int pr;
    do
        pr = poll(&pfd, 1, conn->timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr <= 0)
        return -1;
    ssize_t n;
    do
        n = recv(conn->fd, conn->buf + conn->len, conn->cap - conn->len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET ? 0 : -1;
    conn->len += (size_t)n;
    return n;
}

/* Makes sure at least `need` unread bytes are buffered. */
static int need_bytes(eddy_test_http_conn_t *conn, size_t need)
{
    while (conn->len - conn->off < need)
        if (fill(conn) <= 0)
            return -1;
    return 0;
}

/* Finds `delim` in the unread bytes, reading more until it shows up; returns its
 * offset from the start of the unread bytes. */
static ssize_t find(eddy_test_http_conn_t *conn, const char *delim)
{
    size_t dlen = strlen(delim);
    for (;;) {
        const char *start = conn->buf ? conn->buf + conn->off : NULL;
        size_t avail = conn->len - conn->off;
        const char *hit = start ? memmem(start, avail, delim, dlen) : NULL;
        if (hit)
            return hit - start;
        if (fill(conn) <= 0)
            return -1;
    }
}

static int append_body(eddy_test_http_resp_t *resp, const char *data, size_t n)
{
    char *b = realloc(resp->body, resp->body_len + n + 1);
    if (!b)
        return -1;
    memcpy(b + resp->body_len, data, n);
    resp->body = b;
    resp->body_len += n;
    b[resp->body_len] = '\0';
    return 0;
}

static int parse_head(char *head, eddy_test_http_resp_t *resp)
{
    char *line_end = strstr(head, "\r\n");
    if (!line_end)
        return -1;
    *line_end = '\0';
    int status = 0, consumed = 0;
    if (sscanf(head, "HTTP/%*d.%*d %3d%n", &status, &consumed) != 1 || status < 100)
        return -1;
    resp->status = status;
    const char *reason = head + consumed;
    while (*reason == ' ')
        reason++;
    snprintf(resp->reason, sizeof(resp->reason), "%s", reason);
    for (char *line = line_end + 2; *line;) {
        char *end = strstr(line, "\r\n");
        if (!end)
            return -1;
        *end = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        size_t vlen = strlen(value);
        while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
            value[--vlen] = '\0';
        eddy_test_http_header_t *h = realloc(resp->headers, (resp->header_count + 1) * sizeof(*h));
        if (!h)
            return -1;
        resp->headers = h;
        h[resp->header_count].name = strdup(line);
        h[resp->header_count].value = strdup(value);
        resp->header_count++;
        line = end + 2;
    }
    return 0;
}

static int read_chunked(eddy_test_http_conn_t *conn, eddy_test_http_resp_t *resp)
{
    for (;;) {
        ssize_t eol = find(conn, "\r\n");
        if (eol < 0)
            return -1;
        unsigned long size = strtoul(conn->buf + conn->off, NULL, 16);
        conn->off += (size_t)eol + 2;
        if (size == 0) {
            /* Trailers, then the empty line. */
            for (;;) {
                eol = find(conn, "\r\n");
                if (eol < 0)
                    return -1;
                conn->off += (size_t)eol + 2;
                if (eol == 0)
                    return 0;
            }
        }
        if (need_bytes(conn, size + 2))
            return -1;
        if (append_body(resp, conn->buf + conn->off, size))
            return -1;
        conn->off += size + 2;
    }
}

int eddy_test_http_read_response(eddy_test_http_conn_t *conn, bool head,
                                 eddy_test_http_resp_t *resp)
{
    eddy_test_http_resp_free(resp);
    ssize_t end = find(conn, "\r\n\r\n");
    if (end < 0)
        return -1;
    size_t hlen = (size_t)end + 4;
    char *text = malloc(hlen + 1);
    if (!text)
        return -1;
    memcpy(text, conn->buf + conn->off, hlen);
    text[hlen - 2] = '\0'; /* keep the last header's CRLF, drop the empty line */
    conn->off += hlen;
    int rc = parse_head(text, resp);
    free(text);
    if (rc)
        return -1;
    if (append_body(resp, "", 0))
        return -1;
    int s = resp->status;
    if (head || s < 200 || s == 204 || s == 304)
        return 0;
    const char *te = eddy_test_http_header(resp, "Transfer-Encoding");
    if (te && strcasestr(te, "chunked"))
        return read_chunked(conn, resp);
    const char *cl = eddy_test_http_header(resp, "Content-Length");
    if (cl) {
        size_t n = strtoull(cl, NULL, 10);
        if (need_bytes(conn, n) || append_body(resp, conn->buf + conn->off, n))
            return -1;
        conn->off += n;
        return 0;
    }
    /* No length: the body runs to the close. */
    for (;;) {
        if (append_body(resp, conn->buf + conn->off, conn->len - conn->off))
            return -1;
        conn->off = conn->len;
        ssize_t n = fill(conn);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
    }
}

int eddy_test_http_request(eddy_test_http_conn_t *conn, const char *method, const char *target,
                           const char *headers, const void *body, size_t body_len,
                           eddy_test_http_resp_t *resp)
{
    if (eddy_test_http_send_request(conn, method, target, headers, body, body_len))
        return -1;
    return eddy_test_http_read_response(conn, !strcmp(method, "HEAD"), resp);
}

ssize_t eddy_test_http_recv(eddy_test_http_conn_t *conn, void *buf, size_t cap)
{
    if (conn->off == conn->len) {
        ssize_t n = fill(conn);
        if (n <= 0)
            return n;
    }
    size_t n = conn->len - conn->off;
    if (n > cap)
        n = cap;
    memcpy(buf, conn->buf + conn->off, n);
    conn->off += n;
    return (ssize_t)n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool eddy_test_http_peer_closed(eddy_test_http_conn_t *conn, int timeout_ms)
{
    int saved = conn->timeout_ms;
    int64_t deadline = now_ms() + timeout_ms;
    bool closed = false;
    conn->off = conn->len = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        conn->timeout_ms = (int)left;
        ssize_t n = fill(conn);
        conn->off = conn->len = 0;
        if (n == 0) {
            closed = true;
            break;
        }
        if (n < 0)
            break;
    }
    conn->timeout_ms = saved;
    return closed;
}

int eddy_test_http(const char *host, int port, const char *method, const char *target,
                   const char *headers, const void *body, size_t body_len,
                   eddy_test_http_resp_t *resp)
{
    eddy_test_http_conn_t *conn = eddy_test_http_connect(host, port);
    if (!conn)
        return -1;
    size_t hlen = headers ? strlen(headers) : 0;
    char *h = malloc(hlen + 32);
    if (!h) {
        eddy_test_http_close(conn);
        return -1;
    }
    snprintf(h, hlen + 32, "%sConnection: close\r\n", headers ? headers : "");
    int rc = eddy_test_http_request(conn, method, target, h, body, body_len, resp);
    free(h);
    eddy_test_http_close(conn);
    return rc;
}

const char *eddy_test_http_header(const eddy_test_http_resp_t *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (!strcasecmp(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

void eddy_test_http_resp_free(eddy_test_http_resp_t *resp)
{
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}
