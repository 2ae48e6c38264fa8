/*
 * http.h — eddy's HTTP server: a small router on libmicrohttpd (MHD) that the REST
 * API, the dashboard's static files, /metrics and the WebSocket endpoint plug into.
 *
 * Life cycle: eddy_http_new() binds the listening socket (so the port is known and
 * "address in use" is reported at once), eddy_http_route() registers handlers,
 * eddy_http_start() starts MHD's threads, eddy_http_destroy() stops them, closing
 * open connections. Routes are registered by one thread before start; after start
 * the route table never changes.
 *
 * Threads: handlers run on MHD's threads, several at once (one per pool thread, or
 * one per connection). A handler must only read shared state or guard it itself.
 * The req and resp a handler gets belong to that request and that thread alone.
 *
 * Every error the server produces itself (400, 404, 405, 408, 413, 500, 503) has the
 * body {"error":{"status":N,"message":"..."}}; docs/http.md has the details.
 *
 * Slow clients: a request must deliver its headers, then its body, by deadlines
 * counted from its start, whatever it trickles meanwhile; when the server (or one
 * address) is at its connection limit, the oldest connection still receiving a
 * request is evicted to make room for a newcomer. Requests being answered and
 * upgraded connections are never evicted.
 */
#ifndef EDDY_HTTP_H
#define EDDY_HTTP_H

#include "eddy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eddy_http_s eddy_http_t;
typedef struct eddy_http_req_s eddy_http_req_t;
typedef struct eddy_http_resp_s eddy_http_resp_t;

/** How MHD runs connections. */
typedef enum eddy_http_threading_e {
    EDDY_HTTP_POOL_EPOLL = 0, /**< default: `threads` threads, each with its own epoll set */
    EDDY_HTTP_POOL_POLL = 1,  /**< `threads` threads, each with poll() */
    EDDY_HTTP_THREAD_PER_CONNECTION = 2, /**< one thread per connection (`threads` unused) */
} eddy_http_threading_t;

/** Server settings. Zero fields take the default in brackets, so
 *  `(eddy_http_config_t){.listen = "127.0.0.1:0"}` is a complete configuration. */
typedef struct eddy_http_config_s {
    const char *listen; /**< "HOST:PORT", "[v6addr]:PORT" or ":PORT"; port 0 picks one */
    eddy_http_threading_t threading; /**< [EDDY_HTTP_POOL_EPOLL] */
    unsigned threads;                /**< pool threads [2] */
    unsigned connection_limit;       /**< open connections; past it the oldest incomplete
                                          request is evicted, else the newcomer gets 503 [256] */
    unsigned per_ip_limit;           /**< connections from one address; likewise [64] */
    unsigned timeout_s;         /**< a connection that moves no byte this long is closed [30] */
    unsigned header_timeout_ms; /**< a request's headers must be in this long after its
                                     start (accept, or the previous answer's end) [10000] */
    unsigned body_timeout_ms;   /**< and its body this long after it (at least the
                                     header timeout) [30000] */
    size_t max_body;            /**< request body bytes; larger bodies get 413 [64 KiB] */
    const char *static_root;    /**< directory served for GET of unrouted paths [none] */
    const char *cors_origin;    /**< Access-Control-Allow-Origin value; NULL: CORS off */
} eddy_http_config_t;

/** Handles one request: fills `resp` and returns 0. Any other return value means
 *  the handler failed: whatever resp holds is dropped and the client gets a JSON 500.
 *  Runs on an MHD thread, possibly concurrently with other handlers (see above). */
typedef int (*eddy_http_handler_fn)(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque);

/** Binds and listens on cfg->listen (nothing is served before eddy_http_start). cfg
 *  and its strings are copied. NULL with errstr filled on failure, e.g. "cannot
 *  listen on 127.0.0.1:8083: Address already in use". */
eddy_http_t *eddy_http_new(const eddy_http_config_t *cfg, char *errstr, size_t errstr_size);

/** Registers `fn` for `method` (e.g. "GET"; a GET route also answers HEAD) and
 *  `pattern`: '/'-separated segments, each literal, "{name}" (one non-empty
 *  segment, percent-decoded) or, as the last one only, "{name...}" (the rest of the
 *  path, possibly empty). When several routes match, the one with a literal segment
 *  where the others have a parameter wins, left to right. `opaque` is borrowed and
 *  passed to fn. EDDY_ERR_INVALID (logged) for a malformed pattern or a duplicate
 *  route, EDDY_ERR_STATE after eddy_http_start. Call before eddy_http_start. */
eddy_err_t eddy_http_route(eddy_http_t *http, const char *method, const char *pattern,
                           eddy_http_handler_fn fn, void *opaque);

/** Starts serving on MHD's threads. EDDY_ERR_IO with errstr filled if MHD cannot
 *  start; EDDY_ERR_STATE if already started. */
eddy_err_t eddy_http_start(eddy_http_t *http, char *errstr, size_t errstr_size);

/** The bound TCP port (useful after listening on port 0). Any thread. */
int eddy_http_port(const eddy_http_t *http);

/** Stops serving and frees the server. Closes open connections and waits for the
 *  handlers that are running. Connections handed to an upgrade callback must be
 *  closed by their owner before this. NULL is a no-op. Not from a handler. */
void eddy_http_destroy(eddy_http_t *http);

/* --- metrics ------------------------------------------------------------------------
 * Counted with relaxed atomics on the serving threads; read at any time from any
 * thread. Request latency runs from the request line's arrival to the last byte of
 * the answer handed to the kernel; upgraded (101) requests are counted by status
 * but left out of the latency histogram. */

#define EDDY_HTTP_LATENCY_BUCKETS 16

/** Upper bounds, in seconds, of the latency buckets: 0.0001 .. 10. */
extern const double eddy_http_latency_bounds[EDDY_HTTP_LATENCY_BUCKETS];

/** A snapshot of a server's counters (Prometheus-style: counts are cumulative
 *  since eddy_http_new, histogram buckets are cumulative "less or equal"). */
typedef struct eddy_http_stats_s {
    uint64_t requests;                              /**< requests answered */
    uint64_t status_class[6];                       /**< [1]..[5]: 1xx..5xx answers; [0]: none */
    uint64_t latency_le[EDDY_HTTP_LATENCY_BUCKETS]; /**< answered within bounds[i] seconds */
    uint64_t latency_count;                         /**< observations (the +Inf bucket) */
    double latency_sum;                             /**< their total, seconds */
    uint64_t connections_open;                      /**< connections open now */
    uint64_t connections_total;                     /**< connections accepted */
    uint64_t connections_refused;                   /**< answered 503 for the connection limit */
    uint64_t connections_timed_out; /**< closed for missing a header or body deadline */
    uint64_t connections_evicted;   /**< closed to make room for a newcomer (limits) */
    uint64_t requests_in_flight;    /**< being answered now (dispatched, answer not yet
                                         completed: MHD's completion may lag the last byte) */
} eddy_http_stats_t;

/** Copies the server's counters into *out. Any thread. */
void eddy_http_stats(const eddy_http_t *http, eddy_http_stats_t *out);

/* --- the request ---------------------------------------------------------------------
 * Strings returned below belong to the request and are valid until the handler
 * returns. Names are matched exactly, except header names (case-insensitive). */

/** The request method as sent ("GET", "POST", ...); a GET route answering a HEAD
 *  request sees "HEAD" (the server drops the body it builds). */
const char *eddy_http_method(const eddy_http_req_t *req);

/** The request path as sent: still percent-encoded, without the query string. */
const char *eddy_http_path(const eddy_http_req_t *req);

/** The percent-decoded value of path parameter `name` (from "{name}" in the route),
 *  or NULL if the route has no such parameter. */
const char *eddy_http_param(const eddy_http_req_t *req, const char *name);

/** The first value of query parameter `name`, percent-decoded ('+' is a space), ""
 *  for "?name" or "?name=", NULL if absent. */
const char *eddy_http_query(const eddy_http_req_t *req, const char *name);

/** Parses query parameter `name` as a base-10 integer in [min, max] into *out; if it
 *  is absent, returns EDDY_OK and leaves *out as it is. If it is malformed, fills
 *  resp with a 400 "query parameter 'NAME' must be EXPECTED, got 'VALUE'" and returns
 *  EDDY_ERR_INVALID; the handler then returns 0. `expected` (e.g. "epoch
 *  milliseconds") may be NULL: "an integer from MIN to MAX". */
eddy_err_t eddy_http_query_i64(eddy_http_req_t *req, eddy_http_resp_t *resp, const char *name,
                               const char *expected, int64_t min, int64_t max, int64_t *out);

/** Request header `name` (case-insensitive), or NULL. */
const char *eddy_http_header(const eddy_http_req_t *req, const char *name);

/** The request body (NUL-terminated for convenience, but it may hold NULs) and its
 *  length through *len (may be NULL). "" with length 0 when there is none. */
const char *eddy_http_body(const eddy_http_req_t *req, size_t *len);

/** The client's address as text ("127.0.0.1", "::1"); "" if unknown. */
const char *eddy_http_client(const eddy_http_req_t *req);

/** The address the client reached the server on, as text ("127.0.0.1", "::1"; an
 *  IPv4-mapped IPv6 address as plain IPv4), with its port through *port (may be
 *  NULL); "" and 0 if unknown. With a wildcard listener this is the interface's
 *  own address. */
const char *eddy_http_local(const eddy_http_req_t *req, int *port);

/* --- the response -----------------------------------------------------------------
 * A handler sets one body (the last call wins). Handler responses carry
 * Cache-Control: no-store unless the handler sets its own. The setters below return
 * 0 so that a handler can end with `return eddy_http_json(resp, 200, body);`. */

/** Answers `status` with `body` serialized compactly as application/json;
 *  charset=utf-8. Takes over the reference to body (NULL: an empty body). */
int eddy_http_json(eddy_http_resp_t *resp, int status, json_t *body);

/** Answers `status` with a copy of data[0..len) as `content_type`. */
int eddy_http_bytes(eddy_http_resp_t *resp, int status, const char *content_type, const void *data,
                    size_t len);

/** Like eddy_http_bytes without a copy: the server owns `data` from here on and
 *  calls free_fn(data) once it is sent (or dropped); free_fn NULL means data is
 *  static and never freed. */
int eddy_http_bytes_owned(eddy_http_resp_t *resp, int status, const char *content_type, void *data,
                          size_t len, void (*free_fn)(void *));

/** Answers `status` with {"error":{"status":STATUS,"message":"..."}}, the message
 *  formatted printf-style (at most 1 KiB is kept). */
int eddy_http_error(eddy_http_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Adds a response header (copied). EDDY_ERR_INVALID for CR or LF in it or a name
 *  the server sets itself (Content-Length, Content-Type, Server, Connection), or when
 *  the handler's headers exceed 16 or 2 KiB in total. */
eddy_err_t eddy_http_resp_header(eddy_http_resp_t *resp, const char *name, const char *value);

struct MHD_UpgradeResponseHandle;

/** Called on the serving thread once "101 Switching Protocols" is sent: `fd` is the
 *  connection's socket (blocking mode unspecified; set it yourself), extra[0..len)
 *  the bytes already read past the request (valid during the call only). The
 *  callee owns the connection from here and ends it with
 *  MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) (<microhttpd.h>); it must not
 *  block the serving thread for long. */
typedef void (*eddy_http_upgrade_fn)(void *opaque, int fd, const char *extra, size_t extra_len,
                                     struct MHD_UpgradeResponseHandle *urh);

/** Answers 101 and hands the connection to fn (see above). The handler adds the
 *  "Upgrade" header (and e.g. Sec-WebSocket-Accept) with eddy_http_resp_header;
 *  the server adds "Connection: Upgrade". HTTP/1.0 requests get a 400 instead. */
int eddy_http_upgrade(eddy_http_resp_t *resp, eddy_http_upgrade_fn fn, void *opaque);

#endif /* EDDY_HTTP_H */
