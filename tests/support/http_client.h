/*
 * http_client.h — a tiny blocking HTTP/1.1 client for tests, over plain sockets, so
 * that tests talk to eddy's server the way an outside client does (and can also
 * misbehave: raw bytes, half requests, WebSocket frames after an upgrade).
 *
 * A connection belongs to one thread. Every read waits at most the connection's
 * timeout (5 s unless set). Functions return 0 on success and -1 on failure (the
 * peer closed, a timeout, a malformed response); none of them fails the test.
 */
#ifndef EDDY_TEST_HTTP_CLIENT_H
#define EDDY_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct eddy_test_http_conn_s eddy_test_http_conn_t;

typedef struct eddy_test_http_header_s {
    char *name;  /* as received */
    char *value; /* without surrounding blanks */
} eddy_test_http_header_t;

typedef struct eddy_test_http_resp_s {
    int status;                       /* e.g. 200; 0 before a response was read */
    char reason[64];                  /* the reason phrase */
    eddy_test_http_header_t *headers; /* in order received */
    size_t header_count;              /* their number */
    char *body;                       /* the body, NUL-terminated ("" when none) */
    size_t body_len;                  /* its length */
} eddy_test_http_resp_t;

/** Connects to host:port (numeric IPv4 or IPv6 address). NULL on failure. */
eddy_test_http_conn_t *eddy_test_http_connect(const char *host, int port);

/** The same from the numeric IPv4 address `source` (e.g. "127.0.0.2"; NULL: any). */
eddy_test_http_conn_t *eddy_test_http_connect_from(const char *host, int port, const char *source);

/** Closes the connection and frees it. NULL is a no-op. */
void eddy_test_http_close(eddy_test_http_conn_t *conn);

/** The socket, for tests that need it (shutdown(), poll()). */
int eddy_test_http_fd(const eddy_test_http_conn_t *conn);

/** Sets the read timeout in milliseconds. */
void eddy_test_http_set_timeout(eddy_test_http_conn_t *conn, int timeout_ms);

/** Sends len raw bytes. */
int eddy_test_http_send(eddy_test_http_conn_t *conn, const void *data, size_t len);

/** Sends a request: the request line, Host, Content-Length when body is non-NULL,
 *  then `headers` as given ("Name: value\r\n" lines, may be NULL), then the body. */
int eddy_test_http_send_request(eddy_test_http_conn_t *conn, const char *method, const char *target,
                                const char *headers, const void *body, size_t body_len);

/** Reads one response into *resp (freed first with eddy_test_http_resp_free). The
 *  body is read by Content-Length, chunked encoding, or up to the close; `head`
 *  says that the request was HEAD (no body follows). Bytes after the response stay
 *  buffered for the next read. */
int eddy_test_http_read_response(eddy_test_http_conn_t *conn, bool head,
                                 eddy_test_http_resp_t *resp);

/** send_request and read_response in one call. */
int eddy_test_http_request(eddy_test_http_conn_t *conn, const char *method, const char *target,
                           const char *headers, const void *body, size_t body_len,
                           eddy_test_http_resp_t *resp);

/** Reads up to cap raw bytes (buffered ones first): > 0 bytes read, 0 when the peer
 *  closed, -1 on timeout or error. */
ssize_t eddy_test_http_recv(eddy_test_http_conn_t *conn, void *buf, size_t cap);

/** True if the peer closes (or resets) the connection within timeout_ms; bytes that
 *  arrive meanwhile are read and dropped. */
bool eddy_test_http_peer_closed(eddy_test_http_conn_t *conn, int timeout_ms);

/** One request on a fresh connection ("Connection: close" is added). */
int eddy_test_http(const char *host, int port, const char *method, const char *target,
                   const char *headers, const void *body, size_t body_len,
                   eddy_test_http_resp_t *resp);

/** The first value of header `name` (case-insensitive), or NULL. */
const char *eddy_test_http_header(const eddy_test_http_resp_t *resp, const char *name);

/** Frees what a response holds and zeroes it; a zeroed response is a no-op. */
void eddy_test_http_resp_free(eddy_test_http_resp_t *resp);

#endif /* EDDY_TEST_HTTP_CLIENT_H */
