/*
 * http.c — the HTTP server: libmicrohttpd (MHD) underneath, eddy's routes on top.
 *
 * MHD parses HTTP and runs the threads; this file keeps per-connection state, reads
 * each request's raw target (MHD's URI log callback sees it before MHD decodes it,
 * which keeps "%2F" inside one path segment), routes it, and turns the handler's
 * answer into an MHD response. A connection is served by one MHD thread at a time,
 * so its state (conn_t, with the req and resp handed to handlers) needs no lock;
 * the counters are relaxed atomics; the route table is frozen by eddy_http_start.
 *
 * Per request, in MHD's order: on_uri (request line read: start the clock, copy
 * the target), on_access (first call: headers read, parse and check limits; then
 * body chunks; last call: dispatch and queue the answer), on_completed (answer sent
 * or connection gone: count it, release it).
 *
 * Slow clients. MHD's own timeout closes only connections that move no byte; one
 * that trickles a header byte a second would live for ever. So every connection is
 * also in a registry (`conns`, under `conns_lock`) with its phase (waiting for a
 * request, headers, body, answering, upgraded) and the start of its current
 * request (its accept, then the end of the previous answer: never later than the
 * request's first byte). A reaper thread closes those past their header or body
 * deadline; when a newcomer takes the server (or its address) past its limit, the
 * connection with the oldest start that is still waiting or receiving is evicted
 * instead of refusing the newcomer. To close a connection owned by an MHD thread,
 * the reaper sends a short JSON error (408 or 503; only once a request line came,
 * without blocking) and shutdown()s the socket: MHD's thread then reads the end
 * of the stream and closes the connection in its usual way, as it does when its
 * own MHD_stop_daemon shuts sockets down from another thread.
 *
 * Why touching that fd from another thread is safe: the fd is read once, at
 * MHD_CONNECTION_NOTIFY_STARTED, and never changes during the connection's life
 * (libmicrohttpd 0.9.75 sets socket_fd only at accept); the entry leaves the
 * registry, under conns_lock, in MHD_CONNECTION_NOTIFY_CLOSED, which MHD calls
 * before it close()s the socket on every path (MHD_cleanup_connections and
 * new_connection_process_'s failure path both notify, then close). The reaper
 * reads fds and sends/shuts down only while holding conns_lock, so every fd it
 * touches is still open and still this connection's: it can never reach a closed
 * fd the kernel has handed to someone else. Phase changes also happen under the
 * lock, so a request that is being answered, or an upgraded (WebSocket)
 * connection, is never shut down: the reaper's decision and its shutdown() are
 * one critical section. What may race is harmless: MHD writing its own error
 * answer (a malformed header) as the reaper writes a 408 interleaves bytes on a
 * connection about to close; shutdown() concurrent with MHD's recv()/send() is
 * what shutdown is for.
 */
#include "query/http.h"
#include "query/http_int.h"

#include "engine/log.h"
#include "engine/util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS          2
#define DEFAULT_CONNECTION_LIMIT 256
#define DEFAULT_PER_IP_LIMIT     64
#define DEFAULT_TIMEOUT_S        30
#define DEFAULT_HEADER_TIMEOUT   10000         /* ms */
#define DEFAULT_BODY_TIMEOUT     30000         /* ms */
#define REAPER_TICK_MAX_MS       100           /* deadlines are kept to within this */
#define SLOW_LOG_INTERVAL_NS     10000000000LL /* at most one summary line per 10 s */
#define DEFAULT_MAX_BODY         (64 * 1024)
#define RESP_MAX_HEADERS         16
#define RESP_HEADER_BYTES        2048
#define KEEP_SCRATCH_BYTES       8192  /* larger request buffers are freed after use */
#define KEEP_BODY_BYTES          16384 /* likewise for bodies */
#define LOG_BURST                10    /* MHD messages logged per second */

const double eddy_http_latency_bounds[EDDY_HTTP_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The same bounds in nanoseconds, for integer comparisons on the hot path. */
static const int64_t latency_bounds_ns[EDDY_HTTP_LATENCY_BUCKETS] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

typedef enum body_kind_e {
    BODY_NONE = 0, /* status only */
    BODY_JSON,     /* resp->json */
    BODY_BYTES,    /* resp->data */
    BODY_FILE,     /* resp->fd */
    BODY_UPGRADE,  /* 101, then resp->upgrade_fn */
} body_kind_t;

struct eddy_http_resp_s {
    int status;                        /* 0 until someone answers */
    body_kind_t kind;                  /* which body fields are set */
    json_t *json;                      /* BODY_JSON (owned) */
    void *data;                        /* BODY_BYTES */
    size_t len;                        /* its length */
    void (*free_fn)(void *);           /* frees data; NULL: static */
    int fd;                            /* BODY_FILE (owned), -1 otherwise */
    uint64_t fsize;                    /* its size */
    eddy_http_upgrade_fn upgrade_fn;   /* BODY_UPGRADE */
    void *upgrade_opaque;              /* its argument */
    bool close;                        /* send Connection: close */
    char content_type[128];            /* "" for none */
    char allow[160];                   /* Allow header for 405 and OPTIONS, "" for none */
    size_t nheaders;                   /* handler headers used */
    uint16_t hname[RESP_MAX_HEADERS];  /* offsets into hbuf */
    uint16_t hvalue[RESP_MAX_HEADERS]; /* offsets into hbuf */
    size_t hused;                      /* bytes of hbuf used */
    char hbuf[RESP_HEADER_BYTES];      /* handler header names and values */
};

typedef struct conn_s conn_t;

/* Where a connection is, for its deadlines and for eviction (see the top). */
typedef enum conn_phase_e {
    PHASE_WAITING = 0, /* accepted, or between keep-alive requests: no request line yet */
    PHASE_HEADERS,     /* request line in, headers arriving */
    PHASE_BODY,        /* headers in, body arriving */
    PHASE_ANSWERING,   /* dispatched (or answered early): never evicted */
    PHASE_UPGRADED,    /* handed to an upgrade callback: never evicted */
    PHASE_CLOSING,     /* shut down by the server; MHD closes it */
} conn_phase_t;

struct eddy_http_req_s {
    conn_t *conn;                             /* the connection it came on */
    struct MHD_Connection *mc;                /* MHD's connection (headers, address) */
    const char *method;                       /* MHD's copy, valid for the request */
    eddy_http_target_t target;                /* path and query, decoded */
    const eddy_http_route_t *route;           /* the matched route, or NULL */
    const char *values[EDDY_HTTP_MAX_PARAMS]; /* its parameters' values */
};

/* Per-connection state, made when MHD accepts a socket and freed when it closes;
 * the buffers are reused by the connection's successive (keep-alive) requests. */
struct conn_s {
    eddy_http_t *http;             /* the server */
    bool over_limit;               /* accepted past connection_limit: answer 503 */
    bool started;                  /* on_access has seen the current request */
    int err_status;                /* an error found before dispatch (0: none) */
    unsigned queued_status;        /* the status queued with MHD (0: none yet) */
    char err_msg[256];             /* its message */
    int64_t t0_ns;                 /* when the request line arrived */
    char *scratch;                 /* the target's strings, then a copy of the raw target */
    char *uri;                     /* that copy (inside scratch) */
    size_t scratch_cap;            /* its size */
    char *body;                    /* the request body, NUL-terminated */
    size_t body_len;               /* its length */
    size_t body_cap;               /* allocated */
    bool body_too_large;           /* a chunked body went past max_body */
    char client[INET6_ADDRSTRLEN]; /* the peer address, "" until asked */
    eddy_http_upgrade_fn up_fn;    /* the upgrade callback, kept past the request */
    void *up_opaque;               /* its argument */
    eddy_http_req_t req;           /* the current request */
    eddy_http_resp_t resp;         /* its answer */
    char local[INET6_ADDRSTRLEN];  /* the server's address, "" until asked */
    int local_port;                /* and its port */

    /* The registry (see the top); fd and addr are set before the entry is linked
     * and never change; the rest is guarded by http->conns_lock. */
    int fd;              /* the socket, MHD's (never closed here) */
    uint8_t addr[16];    /* the peer's address (4 bytes for IPv4) */
    uint8_t addr_len;    /* 0 if unknown */
    bool over_ip;        /* accepted past per_ip_limit with nothing to evict: 503 */
    conn_phase_t phase;  /* what the connection is doing */
    int64_t since_ns;    /* start of the current request, monotonic */
    conn_t *prev, *next; /* the registry, oldest accept first */
};

struct eddy_http_s {
    eddy_http_config_t cfg;    /* defaults applied; strings point to the copies below */
    char listen[256];          /* cfg.listen */
    char *static_root;         /* canonical static root, or NULL */
    char *cors_origin;         /* or NULL */
    int fd;                    /* the listening socket until MHD owns it, then -1 */
    int port;                  /* the bound port */
    unsigned hard_limit;       /* MHD's connection limit: connection_limit plus room for 503s */
    struct MHD_Daemon *mhd;    /* NULL until started */
    eddy_http_route_t *routes; /* the route table (frozen once started) */
    size_t nroutes;            /* used */
    size_t routes_cap;         /* allocated */

    atomic_uint_fast64_t requests;                                      /* answered */
    atomic_uint_fast64_t status_class[6];                               /* by status / 100 */
    atomic_uint_fast64_t latency_bucket[EDDY_HTTP_LATENCY_BUCKETS + 1]; /* last: > 10 s */
    atomic_uint_fast64_t latency_sum_ns;                                /* total latency */
    atomic_uint_fast64_t conns_open;                                    /* open now */
    atomic_uint_fast64_t conns_total;                                   /* accepted */
    atomic_uint_fast64_t conns_refused;                                 /* 503 for the limit */
    atomic_uint_fast64_t conns_timed_out;                               /* past a deadline */
    atomic_uint_fast64_t conns_evicted;                                 /* to make room */
    atomic_int_fast64_t log_second; /* of the last MHD message */
    atomic_uint_fast64_t log_count; /* MHD messages that second */

    pthread_mutex_t conns_lock; /* guards the registry and every entry's phase and since */
    pthread_cond_t reaper_cond; /* wakes the reaper: first entry, or stop */
    conn_t *conns_head;         /* the registry, oldest accept first */
    conn_t *conns_tail;         /* its newest entry */
    unsigned nlive;             /* entries not CLOSING */
    bool reaper_stop;           /* eddy_http_destroy asks the reaper to end */
    bool reaper_started;        /* the reaper thread is joinable */
    pthread_t reaper;           /* closes late connections */
};

/* --- responses -------------------------------------------------------------------------- */

/* Drops the body (not the headers) of resp. */
static void resp_drop_body(eddy_http_resp_t *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
    if (resp->data && resp->free_fn)
        resp->free_fn(resp->data);
    resp->data = NULL;
    resp->free_fn = NULL;
    resp->len = 0;
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
    resp->kind = BODY_NONE;
    resp->content_type[0] = '\0';
}

static void resp_reset(eddy_http_resp_t *resp)
{
    resp_drop_body(resp);
    resp->status = 0;
    resp->close = false;
    resp->allow[0] = '\0';
    resp->nheaders = 0;
    resp->hused = 0;
}

static void set_content_type(eddy_http_resp_t *resp, const char *content_type)
{
    if (!content_type)
        content_type = "";
    if ((size_t)snprintf(resp->content_type, sizeof(resp->content_type), "%s", content_type) >=
        sizeof(resp->content_type))
        snprintf(resp->content_type, sizeof(resp->content_type), "application/octet-stream");
}

/* A JSON string of msg; bytes that are not UTF-8 (a client's path can hold any)
 * become '?', so that the error body can always be built. */
static json_t *json_message(const char *msg)
{
    json_t *s = json_string(msg);
    if (s)
        return s;
    char clean[1024];
    size_t i = 0;
    for (; msg[i] && i + 1 < sizeof(clean); i++)
        clean[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
    clean[i] = '\0';
    return json_string(clean);
}

static void set_error(eddy_http_resp_t *resp, int status, const char *msg)
{
    json_t *inner = json_object();
    json_object_set_new(inner, "status", json_integer(status));
    json_object_set_new(inner, "message", json_message(msg));
    json_t *body = json_object();
    json_object_set_new(body, "error", inner);
    eddy_http_json(resp, status, body);
}

int eddy_http_json(eddy_http_resp_t *resp, int status, json_t *body)
{
    resp_drop_body(resp);
    resp->status = status;
    resp->kind = BODY_JSON;
    resp->json = body;
    set_content_type(resp, "application/json; charset=utf-8");
    return 0;
}

int eddy_http_bytes_owned(eddy_http_resp_t *resp, int status, const char *content_type, void *data,
                          size_t len, void (*free_fn)(void *))
{
    resp_drop_body(resp);
    resp->status = status;
    resp->kind = BODY_BYTES;
    resp->data = data;
    resp->len = len;
    resp->free_fn = free_fn;
    set_content_type(resp, content_type);
    return 0;
}

int eddy_http_bytes(eddy_http_resp_t *resp, int status, const char *content_type, const void *data,
                    size_t len)
{
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return eddy_http_error(resp, 500, "out of memory");
    if (len)
        memcpy(copy, data, len);
    return eddy_http_bytes_owned(resp, status, content_type, copy, len, free);
}

int eddy_http_error(eddy_http_resp_t *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error(resp, status, msg);
    return 0;
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

eddy_err_t eddy_http_resp_header(eddy_http_resp_t *resp, const char *name, const char *value)
{
    static const char *const reserved[] = {"Content-Length", "Content-Type", "Server", "Connection",
                                           "Transfer-Encoding"};
    if (!*name || has_crlf(name) || has_crlf(value) || strchr(name, ':'))
        return EDDY_ERR_INVALID;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!strcasecmp(name, reserved[i]))
            return EDDY_ERR_INVALID;
    size_t nlen = strlen(name) + 1, vlen = strlen(value) + 1;
    if (resp->nheaders == RESP_MAX_HEADERS || resp->hused + nlen + vlen > sizeof(resp->hbuf))
        return EDDY_ERR_INVALID;
    resp->hname[resp->nheaders] = (uint16_t)resp->hused;
    memcpy(resp->hbuf + resp->hused, name, nlen);
    resp->hused += nlen;
    resp->hvalue[resp->nheaders++] = (uint16_t)resp->hused;
    memcpy(resp->hbuf + resp->hused, value, vlen);
    resp->hused += vlen;
    return EDDY_OK;
}

int eddy_http_upgrade(eddy_http_resp_t *resp, eddy_http_upgrade_fn fn, void *opaque)
{
    resp_drop_body(resp);
    resp->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    resp->kind = BODY_UPGRADE;
    resp->upgrade_fn = fn;
    resp->upgrade_opaque = opaque;
    return 0;
}

/* --- requests ----------------------------------------------------------------------------- */

const char *eddy_http_method(const eddy_http_req_t *req)
{
    return req->method;
}

const char *eddy_http_path(const eddy_http_req_t *req)
{
    return req->target.path;
}

const char *eddy_http_param(const eddy_http_req_t *req, const char *name)
{
    const eddy_http_route_t *route = req->route;
    if (!route)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < route->nsegs; i++) {
        if (route->segs[i].kind == EDDY_HTTP_SEG_LITERAL)
            continue;
        if (!strcmp(route->segs[i].text, name))
            return req->values[k];
        k++;
    }
    return NULL;
}

const char *eddy_http_query(const eddy_http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->target.nquery; i++)
        if (!strcmp(req->target.qname[i], name))
            return req->target.qvalue[i];
    return NULL;
}

eddy_err_t eddy_http_query_i64(eddy_http_req_t *req, eddy_http_resp_t *resp, const char *name,
                               const char *expected, int64_t min, int64_t max, int64_t *out)
{
    const char *v = eddy_http_query(req, name);
    if (!v || eddy_parse_i64(v, min, max, out))
        return EDDY_OK;
    if (expected)
        eddy_http_error(resp, 400, "query parameter '%s' must be %s, got '%.200s'", name, expected,
                        v);
    else
        eddy_http_error(resp, 400,
                        "query parameter '%s' must be an integer from %lld to %lld, got '%.200s'",
                        name, (long long)min, (long long)max, v);
    return EDDY_ERR_INVALID;
}

const char *eddy_http_header(const eddy_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, name);
}

const char *eddy_http_body(const eddy_http_req_t *req, size_t *len)
{
    const conn_t *c = req->conn;
    if (len)
        *len = c->body ? c->body_len : 0;
    return c->body ? c->body : "";
}

const char *eddy_http_client(const eddy_http_req_t *req)
{
    conn_t *c = req->conn;
    if (c->client[0])
        return c->client;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, c->client,
                  sizeof(c->client));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, c->client,
                  sizeof(c->client));
    return c->client;
}

const char *eddy_http_local(const eddy_http_req_t *req, int *port)
{
    conn_t *c = req->conn;
    if (!c->local[0] && c->fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)&ss;
                inet_ntop(AF_INET, &s4->sin_addr, c->local, sizeof(c->local));
                c->local_port = ntohs(s4->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)&ss;
                if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
                    inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, c->local, sizeof(c->local));
                else
                    inet_ntop(AF_INET6, &s6->sin6_addr, c->local, sizeof(c->local));
                c->local_port = ntohs(s6->sin6_port);
            }
        }
    }
    if (port)
        *port = c->local[0] ? c->local_port : 0;
    return c->local;
}

/* --- metrics -------------------------------------------------------------------------------- */

static void count_request(eddy_http_t *http, unsigned status, int64_t ns)
{
    unsigned cls = status >= 100 && status < 600 ? status / 100 : 0;
    atomic_fetch_add_explicit(&http->status_class[cls], 1, memory_order_relaxed);
    if (!cls)
        return;
    atomic_fetch_add_explicit(&http->requests, 1, memory_order_relaxed);
    if (status == MHD_HTTP_SWITCHING_PROTOCOLS)
        return; /* its "latency" would be the upgraded connection's life */
    if (ns < 0)
        ns = 0;
    size_t b = 0;
    while (b < EDDY_HTTP_LATENCY_BUCKETS && ns > latency_bounds_ns[b])
        b++;
    atomic_fetch_add_explicit(&http->latency_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&http->latency_sum_ns, (uint64_t)ns, memory_order_relaxed);
}

void eddy_http_stats(const eddy_http_t *http, eddy_http_stats_t *out)
{
    /* atomic_load takes a non-const pointer in C11; the counters are only read. */
    eddy_http_t *h = (eddy_http_t *)http;
    memset(out, 0, sizeof(*out));
    out->requests = atomic_load_explicit(&h->requests, memory_order_relaxed);
    for (size_t i = 0; i < 6; i++)
        out->status_class[i] = atomic_load_explicit(&h->status_class[i], memory_order_relaxed);
    /* Cumulate the buckets; the count is their sum, so that +Inf always equals the
     * count even while requests are being recorded. */
    uint64_t total = 0;
    for (size_t i = 0; i <= EDDY_HTTP_LATENCY_BUCKETS; i++) {
        total += atomic_load_explicit(&h->latency_bucket[i], memory_order_relaxed);
        if (i < EDDY_HTTP_LATENCY_BUCKETS)
            out->latency_le[i] = total;
    }
    out->latency_count = total;
    out->latency_sum = (double)atomic_load_explicit(&h->latency_sum_ns, memory_order_relaxed) / 1e9;
    out->connections_open = atomic_load_explicit(&h->conns_open, memory_order_relaxed);
    out->connections_total = atomic_load_explicit(&h->conns_total, memory_order_relaxed);
    out->connections_refused = atomic_load_explicit(&h->conns_refused, memory_order_relaxed);
    out->connections_timed_out = atomic_load_explicit(&h->conns_timed_out, memory_order_relaxed);
    out->connections_evicted = atomic_load_explicit(&h->conns_evicted, memory_order_relaxed);
    /* A walk of the registry: stats are read per scrape, never per request. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&h->conns_lock;
    out->requests_in_flight = 0;
    pthread_mutex_lock(lock);
    for (const conn_t *c = h->conns_head; c; c = c->next)
        out->requests_in_flight += c->phase == PHASE_ANSWERING;
    pthread_mutex_unlock(lock);
}

/* --- slow clients: the registry, deadlines, eviction (see the top) ------------------------ */

/* A connection's answer when the server closes it: a status line and a JSON error,
 * sent without blocking (whatever does not fit the socket's buffer is lost). */
static void send_closing_answer(int fd, int status, const char *reason, const char *msg)
{
    char body[256], out[640];
    int blen =
        snprintf(body, sizeof(body), "{\"error\":{\"status\":%d,\"message\":\"%s\"}}", status, msg);
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\nServer: eddy\r\nContent-Type: application/json; "
                     "charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n%s",
                     status, reason, blen, status == 503 ? "Retry-After: 1\r\n" : "", body);
    if (n > 0 && (size_t)n < sizeof(out) && send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL)) {
        /* Nothing to do about a client that cannot take 300 bytes: it is closed. */
    }
}

typedef enum close_why_e { CLOSE_HEADER_LATE, CLOSE_BODY_LATE, CLOSE_EVICTED } close_why_t;

/* Shuts c down (conns_lock held). A request that has begun is told why; a
 * connection that has sent no request line yet is closed like an idle one. */
static void close_slow(eddy_http_t *http, conn_t *c, close_why_t why)
{
    assert(c->phase != PHASE_ANSWERING && c->phase != PHASE_UPGRADED && c->phase != PHASE_CLOSING);
    if (c->fd >= 0 && c->phase != PHASE_WAITING) {
        if (why == CLOSE_EVICTED)
            send_closing_answer(c->fd, 503, "Service Unavailable",
                                "the server is at its connection limit and this request was "
                                "the slowest incomplete one; try again");
        else
            send_closing_answer(c->fd, 408, "Request Timeout",
                                why == CLOSE_HEADER_LATE
                                    ? "the request's headers did not arrive in time"
                                    : "the request's body did not arrive in time");
    }
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    c->phase = PHASE_CLOSING;
    http->nlive--;
    atomic_fetch_add_explicit(why == CLOSE_EVICTED ? &http->conns_evicted : &http->conns_timed_out,
                              1, memory_order_relaxed);
}

static bool evictable(const conn_t *c)
{
    return c->phase == PHASE_WAITING || c->phase == PHASE_HEADERS || c->phase == PHASE_BODY;
}

static bool same_addr(const conn_t *a, const conn_t *b)
{
    return a->addr_len && a->addr_len == b->addr_len && !memcmp(a->addr, b->addr, a->addr_len);
}

/* The evictable entry with the oldest start other than `except`, only from
 * except's address if `same_ip`; NULL if none (conns_lock held). */
static conn_t *oldest_evictable(eddy_http_t *http, const conn_t *except, bool same_ip)
{
    conn_t *best = NULL;
    for (conn_t *c = http->conns_head; c; c = c->next)
        if (c != except && evictable(c) && (!same_ip || same_addr(c, except)) &&
            (!best || c->since_ns < best->since_ns))
            best = c;
    return best;
}

/* Copies the peer address of MHD's connection into c's key. */
static void set_addr(conn_t *c, const struct sockaddr *sa)
{
    c->addr_len = 0;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(c->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        c->addr_len = 4;
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(c->addr, a6->s6_addr + 12, 4);
            c->addr_len = 4;
        } else {
            memcpy(c->addr, a6->s6_addr, 16);
            c->addr_len = 16;
        }
    }
}

/* Registers a new connection (MHD thread, at NOTIFY_STARTED) and makes room for it:
 * past the connection limit, or its address's, the oldest waiting or receiving
 * connection (of that address) is evicted; if there is none the newcomer will be
 * answered 503. */
static void registry_add(eddy_http_t *http, conn_t *c)
{
    pthread_mutex_lock(&http->conns_lock);
    bool was_empty = !http->conns_head;
    c->phase = PHASE_WAITING;
    c->since_ns = eddy_mono_ns();
    c->prev = http->conns_tail;
    c->next = NULL;
    if (http->conns_tail)
        http->conns_tail->next = c;
    else
        http->conns_head = c;
    http->conns_tail = c;
    http->nlive++;
    if (http->nlive > http->cfg.connection_limit) {
        conn_t *victim = oldest_evictable(http, c, false);
        if (victim)
            close_slow(http, victim, CLOSE_EVICTED);
        else
            c->over_limit = true;
    }
    if (!c->over_limit && c->addr_len) {
        unsigned same = 0;
        for (conn_t *o = http->conns_head; o; o = o->next)
            same += o->phase != PHASE_CLOSING && same_addr(o, c);
        if (same > http->cfg.per_ip_limit) {
            conn_t *victim = oldest_evictable(http, c, true);
            if (victim)
                close_slow(http, victim, CLOSE_EVICTED);
            else
                c->over_ip = true;
        }
    }
    if (was_empty)
        pthread_cond_signal(&http->reaper_cond);
    pthread_mutex_unlock(&http->conns_lock);
}

/* A newcomer that found nothing to evict when it connected looks again once its
 * headers are in: a connection that was being answered then (its answer sent,
 * MHD's completion not yet run) may be idle by now, and is evicted instead of
 * refusing the newcomer. */
static void second_chance(eddy_http_t *http, conn_t *c)
{
    pthread_mutex_lock(&http->conns_lock);
    conn_t *victim = oldest_evictable(http, c, c->over_ip && !c->over_limit);
    if (victim) {
        close_slow(http, victim, CLOSE_EVICTED);
        c->over_limit = c->over_ip = false;
    }
    pthread_mutex_unlock(&http->conns_lock);
}

/* Unregisters c (MHD thread, at NOTIFY_CLOSED: before MHD closes the fd). */
static void registry_remove(eddy_http_t *http, conn_t *c)
{
    pthread_mutex_lock(&http->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        http->conns_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        http->conns_tail = c->prev;
    if (c->phase != PHASE_CLOSING)
        http->nlive--;
    pthread_mutex_unlock(&http->conns_lock);
}

/* Moves c to `phase` (its serving thread); `restart` starts its next request's
 * clock. A connection the server shut down stays CLOSING, an upgraded one
 * UPGRADED. */
static void set_phase(conn_t *c, conn_phase_t phase, bool restart)
{
    eddy_http_t *http = c->http;
    pthread_mutex_lock(&http->conns_lock);
    if (c->phase != PHASE_CLOSING && c->phase != PHASE_UPGRADED)
        c->phase = phase;
    if (restart)
        c->since_ns = eddy_mono_ns();
    pthread_mutex_unlock(&http->conns_lock);
}

/* Closes the connections past their deadline (conns_lock held). */
static void reap(eddy_http_t *http, int64_t now)
{
    const int64_t header_ns = (int64_t)http->cfg.header_timeout_ms * 1000000;
    const int64_t body_ns = (int64_t)http->cfg.body_timeout_ms * 1000000;
    for (conn_t *c = http->conns_head; c; c = c->next) {
        if ((c->phase == PHASE_WAITING || c->phase == PHASE_HEADERS) &&
            now - c->since_ns >= header_ns)
            close_slow(http, c, CLOSE_HEADER_LATE);
        else if (c->phase == PHASE_BODY && now - c->since_ns >= body_ns)
            close_slow(http, c, CLOSE_BODY_LATE);
    }
}

static void *reaper_main(void *arg)
{
    eddy_http_t *http = arg;
    unsigned tick_ms = http->cfg.header_timeout_ms / 10;
    if (tick_ms > REAPER_TICK_MAX_MS)
        tick_ms = REAPER_TICK_MAX_MS;
    if (tick_ms < 1)
        tick_ms = 1;
    uint64_t logged_late = 0, logged_evicted = 0;
    int64_t logged_ns = 0;
    pthread_mutex_lock(&http->conns_lock);
    while (!http->reaper_stop) {
        if (!http->conns_head) {
            pthread_cond_wait(&http->reaper_cond, &http->conns_lock);
            continue;
        }
        int64_t now = eddy_mono_ns();
        reap(http, now);
        if (now - logged_ns >= SLOW_LOG_INTERVAL_NS) {
            uint64_t late = atomic_load_explicit(&http->conns_timed_out, memory_order_relaxed);
            uint64_t evicted = atomic_load_explicit(&http->conns_evicted, memory_order_relaxed);
            if (late != logged_late || evicted != logged_evicted)
                eddy_log_warn("http port %d: closed %llu slow connections past their header or "
                              "body deadline and evicted %llu to make room (since the last such "
                              "line; %u open now)",
                              http->port, (unsigned long long)(late - logged_late),
                              (unsigned long long)(evicted - logged_evicted), http->nlive);
            logged_late = late;
            logged_evicted = evicted;
            logged_ns = now;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)tick_ms * 1000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&http->reaper_cond, &http->conns_lock, &ts);
    }
    pthread_mutex_unlock(&http->conns_lock);
    return NULL;
}

/* --- dispatch --------------------------------------------------------------------------------- */

static bool method_serves(const char *route_method, const char *method)
{
    return !strcmp(route_method, method) ||
           (!strcmp(method, "HEAD") && !strcmp(route_method, "GET"));
}

/* Appends method to the comma-separated list in buf unless it is there. */
static void allow_add(char *buf, size_t size, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = buf; *p;) {
        const char *comma = strstr(p, ", ");
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == mlen && !memcmp(p, method, len))
            return;
        p += len + (comma ? 2 : 0);
    }
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? ", " : "", method);
}

static void dispatch_static(conn_t *c)
{
    eddy_http_t *http = c->http;
    eddy_http_req_t *req = &c->req;
    eddy_http_resp_t *resp = &c->resp;
    char msg[512];
    int fd = -1;
    uint64_t size = 0;
    const char *type = NULL;
    int status =
        eddy_http_static_open(http->static_root, &req->target, &fd, &size, &type, msg, sizeof(msg));
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (status != 200) {
        set_error(resp, status, msg);
        return;
    }
    if (!get) {
        close(fd);
        snprintf(resp->allow, sizeof(resp->allow), "GET, HEAD, OPTIONS");
        if (!strcmp(req->method, "OPTIONS")) {
            resp->status = MHD_HTTP_NO_CONTENT;
            return;
        }
        eddy_http_error(resp, 405, "method %s is not allowed for %.200s (allowed: %s)", req->method,
                        req->target.path, resp->allow);
        return;
    }
    resp->status = 200;
    resp->kind = BODY_FILE;
    resp->fd = fd;
    resp->fsize = size;
    set_content_type(resp, type);
}

/* Routes the current request and fills c->resp. */
static void dispatch(conn_t *c)
{
    eddy_http_t *http = c->http;
    eddy_http_req_t *req = &c->req;
    eddy_http_resp_t *resp = &c->resp;
    const char *method = req->method;

    if (req->target.asterisk) {
        if (strcmp(method, "OPTIONS"))
            eddy_http_error(resp, 400, "the target '*' is only for OPTIONS");
        else
            resp->status = MHD_HTTP_NO_CONTENT;
        return;
    }
    const eddy_http_route_t *best = NULL;
    bool path_known = false;
    for (size_t i = 0; i < http->nroutes; i++) {
        const eddy_http_route_t *route = &http->routes[i];
        if (!eddy_http_route_match(route, &req->target, NULL))
            continue;
        path_known = true;
        allow_add(resp->allow, sizeof(resp->allow), route->method);
        if (!strcmp(route->method, "GET"))
            allow_add(resp->allow, sizeof(resp->allow), "HEAD");
        if (!method_serves(route->method, method))
            continue;
        /* On equal shapes an exact method (a HEAD route for HEAD) beats GET. */
        int cmp = best ? eddy_http_route_cmp(route, best) : 1;
        if (cmp > 0 || (cmp == 0 && !strcmp(route->method, method)))
            best = route;
    }
    allow_add(resp->allow, sizeof(resp->allow), "OPTIONS");

    if (best) {
        resp->allow[0] = '\0';
        req->route = best;
        eddy_http_route_match(best, &req->target, req->values);
        int rc = best->fn(req, resp, best->opaque);
        int status = resp->status;
        /* 1xx answers other than an upgrade's 101 are MHD's business. */
        bool valid = resp->kind == BODY_UPGRADE ? status == MHD_HTTP_SWITCHING_PROTOCOLS
                                                : status >= 200 && status <= 999;
        if (rc != 0 || !valid) {
            eddy_log_warn("http: %s %.200s: handler for %s %s %s", method, req->target.path,
                          best->method, best->pattern, rc ? "failed" : "answered no valid status");
            resp_reset(resp);
            eddy_http_error(resp, 500, "the server failed to answer %s %.200s", method,
                            req->target.path);
        }
        return;
    }
    if (path_known && !strcmp(method, "OPTIONS")) {
        resp->status = MHD_HTTP_NO_CONTENT;
        return;
    }
    if (path_known) {
        eddy_http_error(resp, 405, "method %s is not allowed for %.200s (allowed: %s)", method,
                        req->target.path, resp->allow);
        return;
    }
    resp->allow[0] = '\0';
    if (http->static_root) {
        dispatch_static(c);
        return;
    }
    eddy_http_error(resp, 404, "no such resource: %.200s", req->target.path);
}

static void on_upgrade(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    conn_t *c = cls;
    set_phase(c, PHASE_UPGRADED, false);
    c->up_fn(c->up_opaque, sock, extra_in, extra_in_size, urh);
}

static void jansson_free(void *p)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

/* Turns c->resp into an MHD response (NULL if memory ran out). */
static struct MHD_Response *make_response(conn_t *c)
{
    eddy_http_t *http = c->http;
    eddy_http_resp_t *resp = &c->resp;
    struct MHD_Response *r = NULL;
    switch (resp->kind) {
    case BODY_JSON: {
        char *text = resp->json ? json_dumps(resp->json, JSON_COMPACT) : NULL;
        if (resp->json && !text) {
            resp_drop_body(resp);
            set_error(resp, 500, "the answer could not be serialized");
            text = json_dumps(resp->json, JSON_COMPACT);
        }
        json_decref(resp->json);
        resp->json = NULL;
        if (text) {
            r = MHD_create_response_from_buffer_with_free_callback(strlen(text), text,
                                                                   jansson_free);
            if (!r)
                jansson_free(text);
        } else {
            r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        break;
    }
    case BODY_BYTES:
        if (resp->free_fn) {
            r = MHD_create_response_from_buffer_with_free_callback(resp->len, resp->data,
                                                                   resp->free_fn);
            if (!r)
                resp->free_fn(resp->data);
        } else {
            r = MHD_create_response_from_buffer(resp->len, resp->data, MHD_RESPMEM_PERSISTENT);
        }
        resp->data = NULL;
        resp->free_fn = NULL;
        break;
    case BODY_FILE:
        r = MHD_create_response_from_fd((size_t)resp->fsize, resp->fd);
        if (!r)
            close(resp->fd);
        resp->fd = -1;
        break;
    case BODY_UPGRADE:
        c->up_fn = resp->upgrade_fn;
        c->up_opaque = resp->upgrade_opaque;
        r = MHD_create_response_for_upgrade(on_upgrade, c);
        break;
    case BODY_NONE:
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        break;
    }
    if (!r)
        return NULL;

    MHD_add_response_header(r, MHD_HTTP_HEADER_SERVER, "eddy");
    if (resp->content_type[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    bool cache_set = false;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const char *name = resp->hbuf + resp->hname[i];
        MHD_add_response_header(r, name, resp->hbuf + resp->hvalue[i]);
        cache_set |= !strcasecmp(name, MHD_HTTP_HEADER_CACHE_CONTROL);
    }
    if (!cache_set)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                                resp->kind == BODY_FILE ? "no-cache" : "no-store");
    if (resp->allow[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    if (http->cors_origin) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, http->cors_origin);
        if (strcmp(http->cors_origin, "*"))
            MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
        if (resp->status == MHD_HTTP_NO_CONTENT && resp->allow[0]) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", resp->allow);
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        }
    }
    if (resp->status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (resp->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return r;
}

static const char oom_body[] = "{\"error\":{\"status\":503,\"message\":\"the server is out of "
                               "memory\"}}";

/* Answers a connection that has no state (memory ran out when it was accepted). */
static enum MHD_Result queue_oom(struct MHD_Connection *mc)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)oom_body,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue(conn_t *c, struct MHD_Connection *mc)
{
    struct MHD_Response *r = make_response(c);
    if (!r)
        return queue_oom(mc);
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)c->resp.status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES)
        c->queued_status = (unsigned)c->resp.status;
    if (ret == MHD_NO && c->resp.kind == BODY_UPGRADE) {
        /* MHD refuses upgrades on HTTP/1.0 (and for a few other reasons it logs). */
        resp_reset(&c->resp);
        set_error(&c->resp, 400, "this request cannot switch protocols (HTTP/1.1 needed)");
        r = make_response(c);
        if (!r)
            return queue_oom(mc);
        ret = MHD_queue_response(mc, (unsigned)c->resp.status, r);
        MHD_destroy_response(r);
        if (ret == MHD_YES)
            c->queued_status = (unsigned)c->resp.status;
    }
    return ret;
}

/* Answers at once, before the body is read; MHD closes the connection after it. */
static enum MHD_Result queue_early(conn_t *c, struct MHD_Connection *mc, int status,
                                   const char *msg)
{
    set_phase(c, PHASE_ANSWERING, false);
    set_error(&c->resp, status, msg);
    c->resp.close = true;
    return queue(c, mc);
}

/* --- MHD callbacks ------------------------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    eddy_http_t *http = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add_explicit(&http->conns_open, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&http->conns_total, 1, memory_order_relaxed);
        conn_t *c = calloc(1, sizeof(*c));
        if (c) {
            c->http = http;
            c->resp.fd = -1;
            c->req.conn = c;
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
            c->fd = ci ? ci->connect_fd : -1;
            ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            set_addr(c, ci ? ci->client_addr : NULL);
            registry_add(http, c);
        }
        *socket_context = c;
        return;
    }
    atomic_fetch_sub_explicit(&http->conns_open, 1, memory_order_relaxed);
    conn_t *c = *socket_context;
    if (!c)
        return;
    registry_remove(http, c);
    resp_reset(&c->resp);
    free(c->scratch);
    free(c->body);
    free(c);
    *socket_context = NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *c = ci ? ci->socket_context : NULL;
    if (!c)
        return NULL;
    set_phase(c, PHASE_HEADERS, false);
    c->uri = (char *)"";
    c->t0_ns = eddy_mono_ns();
    c->started = false;
    c->err_status = 0;
    c->queued_status = 0;
    c->body_len = 0;
    c->body_too_large = false;
    c->req.mc = mc;
    c->req.route = NULL;
    c->req.target.path = "";
    c->req.target.nsegs = 0;
    c->req.target.nquery = 0;
    c->req.target.asterisk = false;
    resp_reset(&c->resp);

    size_t len = strlen(uri);
    size_t parsed = eddy_http_target_scratch(len);
    size_t need = parsed + len + 1;
    if (need > c->scratch_cap) {
        char *s = realloc(c->scratch, need);
        if (!s) {
            c->err_status = 503;
            snprintf(c->err_msg, sizeof(c->err_msg), "the server is out of memory");
            return c;
        }
        c->scratch = s;
        c->scratch_cap = need;
    }
    /* MHD's buffer is reused once this returns; the target is parsed later from
     * this copy, when the headers are in and errors can be answered. */
    c->uri = c->scratch + parsed;
    memcpy(c->uri, uri, len + 1);
    return c;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    eddy_http_t *http = cls;
    conn_t *c = *con_cls;
    if (!c)
        return;
    /* MHD knows the status of its own error answers too; after an upgrade it has
     * dropped the response, so fall back to what was queued here. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_HTTP_STATUS);
    count_request(http, ci ? ci->http_status : c->queued_status, eddy_mono_ns() - c->t0_ns);
    resp_reset(&c->resp);
    if (c->scratch_cap > KEEP_SCRATCH_BYTES) {
        free(c->scratch);
        c->scratch = NULL;
        c->scratch_cap = 0;
    }
    if (c->body_cap > KEEP_BODY_BYTES) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->body_len = 0;
    *con_cls = NULL;
    set_phase(c, PHASE_WAITING, true); /* the next request's clock starts now */
}

/* Appends a body chunk; past max_body the rest is read and dropped (413 at the end). */
static void add_body(conn_t *c, const char *data, size_t n)
{
    size_t max = c->http->cfg.max_body;
    if (c->body_too_large || n > max - c->body_len) {
        c->body_too_large = true;
        return;
    }
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(c->body, cap);
        if (!b) {
            c->err_status = 503;
            snprintf(c->err_msg, sizeof(c->err_msg), "the server is out of memory");
            c->body_too_large = true;
            return;
        }
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    eddy_http_t *http = cls;
    conn_t *c = *con_cls;
    if (!c)
        return queue_oom(mc);

    if (!c->started) {
        /* Headers are in. Refuse what must be refused before reading a body. */
        c->started = true;
        c->req.method = method;
        set_phase(c, PHASE_BODY, false);
        if (c->over_limit || c->over_ip)
            second_chance(http, c);
        if (c->over_limit || c->over_ip) {
            atomic_fetch_add_explicit(&http->conns_refused, 1, memory_order_relaxed);
            return queue_early(c, mc, 503,
                               c->over_limit
                                   ? "the server has too many connections; try again shortly"
                                   : "too many connections from your address; try again shortly");
        }
        if (c->err_status)
            return queue_early(c, mc, c->err_status, c->err_msg);
        const char *cl =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t clen = 0;
        if (cl && eddy_parse_i64(cl, 0, INT64_MAX, &clen) && (uint64_t)clen > http->cfg.max_body) {
            char msg[128];
            snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes",
                     http->cfg.max_body);
            return queue_early(c, mc, 413, msg);
        }
        c->err_status = eddy_http_target_parse(&c->req.target, c->uri, c->scratch, c->err_msg,
                                               sizeof(c->err_msg));
        return MHD_YES;
    }
    if (*upload_size) {
        add_body(c, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }

    set_phase(c, PHASE_ANSWERING, false);
    if (c->body_too_large && !c->err_status) {
        c->err_status = 413;
        snprintf(c->err_msg, sizeof(c->err_msg), "the request body is larger than %zu bytes",
                 http->cfg.max_body);
    }
    if (c->err_status)
        set_error(&c->resp, c->err_status, c->err_msg);
    else
        dispatch(c);
    return queue(c, mc);
}

/* MHD's messages: most are about clients (malformed requests, limits reached), a
 * few about the server (accept failing for want of descriptors). Both matter, but a
 * misbehaving client must not flood the log: at most LOG_BURST lines a second. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
    eddy_http_t *http = cls;
    int64_t second = eddy_mono_ns() / 1000000000;
    int64_t seen = atomic_load_explicit(&http->log_second, memory_order_relaxed);
    if (seen != second &&
        atomic_compare_exchange_strong_explicit(&http->log_second, &seen, second,
                                                memory_order_relaxed, memory_order_relaxed)) {
        uint64_t dropped = atomic_exchange_explicit(&http->log_count, 0, memory_order_relaxed);
        if (dropped > LOG_BURST)
            eddy_log_warn("http port %d: %llu more libmicrohttpd messages were not logged",
                          http->port, (unsigned long long)(dropped - LOG_BURST));
    }
    if (atomic_fetch_add_explicit(&http->log_count, 1, memory_order_relaxed) >= LOG_BURST)
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    eddy_log_warn("http port %d: %s", http->port, msg);
}

/* --- life cycle ------------------------------------------------------------------------------ */

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" into host (empty: any) and port. */
static eddy_err_t split_listen(const char *listen, char *host, size_t host_size, char *port,
                               size_t port_size, char *errstr, size_t errstr_size)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (colon && memchr(listen, ':', hlen)) {
        colon = NULL; /* an IPv6 address without brackets */
    }
    int64_t p;
    if (!colon || hlen >= host_size || !eddy_parse_i64(colon + 1, 0, 65535, &p))
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                         "listen address '%s' is not HOST:PORT (e.g. 127.0.0.1:8080, "
                         "[::1]:8080 or :8080)",
                         listen);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (!strcmp(host, "*"))
        host[0] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return EDDY_OK;
}

static eddy_err_t open_listener(eddy_http_t *http, char *errstr, size_t errstr_size)
{
    char host[256], port[16];
    eddy_err_t err =
        split_listen(http->listen, host, sizeof(host), port, sizeof(port), errstr, errstr_size);
    if (err)
        return err;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (gai)
        return eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "cannot listen on %s: %s",
                         http->listen, gai_strerror(gai));
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        /* Restarting right after a crash must not wait out TIME_WAIT; this does not
         * let two servers listen on one port. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
            last_errno = errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            http->port =
                ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)(void *)&ss)->sin_port);
        http->fd = fd;
        break;
    }
    freeaddrinfo(res);
    if (http->fd < 0)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot listen on %s: %s", http->listen,
                         strerror(last_errno ? last_errno : EADDRNOTAVAIL));
    return EDDY_OK;
}

eddy_http_t *eddy_http_new(const eddy_http_config_t *cfg, char *errstr, size_t errstr_size)
{
    eddy_http_t *http = calloc(1, sizeof(*http));
    if (!http) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    http->fd = -1;
    http->cfg = *cfg;
    pthread_mutex_init(&http->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&http->reaper_cond, &ca);
    pthread_condattr_destroy(&ca);
    eddy_http_config_t *c = &http->cfg;
    if (!c->threads)
        c->threads = DEFAULT_THREADS;
    if (!c->connection_limit)
        c->connection_limit = DEFAULT_CONNECTION_LIMIT;
    if (!c->per_ip_limit)
        c->per_ip_limit = DEFAULT_PER_IP_LIMIT;
    if (!c->timeout_s)
        c->timeout_s = DEFAULT_TIMEOUT_S;
    if (!c->max_body)
        c->max_body = DEFAULT_MAX_BODY;
    if (!c->header_timeout_ms)
        c->header_timeout_ms = DEFAULT_HEADER_TIMEOUT;
    if (!c->body_timeout_ms)
        c->body_timeout_ms = DEFAULT_BODY_TIMEOUT;
    if (c->body_timeout_ms < c->header_timeout_ms)
        c->body_timeout_ms = c->header_timeout_ms;
    /* Connections past connection_limit are still accepted, up to this, so that they
     * can be told 503 instead of being left hanging. */
    http->hard_limit = c->connection_limit + c->connection_limit / 8 + 8;
    if (http->hard_limit < c->threads)
        http->hard_limit = c->threads;

    if (!cfg->listen || (size_t)snprintf(http->listen, sizeof(http->listen), "%s", cfg->listen) >=
                            sizeof(http->listen)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "the HTTP listen address is %s",
                  cfg->listen ? "too long" : "missing");
        goto fail;
    }
    c->listen = http->listen;
    if (cfg->static_root) {
        http->static_root = realpath(cfg->static_root, NULL);
        struct stat st;
        if (!http->static_root || stat(http->static_root, &st) || !S_ISDIR(st.st_mode)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "static root '%s': %s",
                      cfg->static_root, http->static_root ? "not a directory" : strerror(errno));
            goto fail;
        }
        c->static_root = http->static_root;
    }
    if (cfg->cors_origin) {
        if (!*cfg->cors_origin || has_crlf(cfg->cors_origin)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "CORS origin '%s' is not a header value", cfg->cors_origin);
            goto fail;
        }
        if (!(http->cors_origin = strdup(cfg->cors_origin))) {
            eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto fail;
        }
        c->cors_origin = http->cors_origin;
    }
    if (c->threading > EDDY_HTTP_THREAD_PER_CONNECTION) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "unknown HTTP threading model %d",
                  (int)c->threading);
        goto fail;
    }
    if (open_listener(http, errstr, errstr_size))
        goto fail;
    return http;

fail:
    eddy_http_destroy(http);
    return NULL;
}

eddy_err_t eddy_http_route(eddy_http_t *http, const char *method, const char *pattern,
                           eddy_http_handler_fn fn, void *opaque)
{
    assert(method && pattern && fn);
    char errstr[256];
    if (http->mhd) {
        eddy_log_error("http: route %s %s added after the server started", method, pattern);
        return EDDY_ERR_STATE;
    }
    if (http->nroutes == http->routes_cap) {
        size_t cap = http->routes_cap ? 2 * http->routes_cap : 16;
        eddy_http_route_t *routes = realloc(http->routes, cap * sizeof(*routes));
        if (!routes)
            return EDDY_ERR_NOMEM;
        http->routes = routes;
        http->routes_cap = cap;
    }
    eddy_http_route_t *route = &http->routes[http->nroutes];
    memset(route, 0, sizeof(*route));
    eddy_err_t err = eddy_http_route_init(route, method, pattern, errstr, sizeof(errstr));
    if (err) {
        eddy_log_error("http: %s", errstr);
        return err;
    }
    for (size_t i = 0; i < http->nroutes; i++)
        if (eddy_http_route_same(&http->routes[i], route)) {
            eddy_log_error("http: route %s %s duplicates %s %s", method, pattern,
                           http->routes[i].method, http->routes[i].pattern);
            eddy_http_route_clear(route);
            return EDDY_ERR_INVALID;
        }
    route->fn = fn;
    route->opaque = opaque;
    http->nroutes++;
    return EDDY_OK;
}

eddy_err_t eddy_http_start(eddy_http_t *http, char *errstr, size_t errstr_size)
{
    if (http->mhd || http->fd < 0)
        return eddy_errf(EDDY_ERR_STATE, errstr, errstr_size, "the HTTP server on %s %s",
                         http->listen, http->mhd ? "is already running" : "was stopped");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem pool[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)http->cfg.threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    switch (http->cfg.threading) {
    case EDDY_HTTP_POOL_EPOLL:
        flags |= MHD_USE_EPOLL;
        break;
    case EDDY_HTTP_POOL_POLL:
        flags |= MHD_USE_POLL;
        break;
    case EDDY_HTTP_THREAD_PER_CONNECTION:
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
        break;
    }
    if (http->cfg.threading == EDDY_HTTP_THREAD_PER_CONNECTION || http->cfg.threads < 2)
        pool[0].option = MHD_OPTION_END;

    /* MHD closes the socket it is given when it stops, and on most (not all) of its
     * failure paths; giving it a duplicate keeps ours ours. */
    int fd = fcntl(http->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot start HTTP on %s: %s",
                         http->listen, strerror(errno));
    /* No MHD_OPTION_PER_IP_CONNECTION_LIMIT: registry_add enforces per_ip_limit by
     * evicting, and MHD's would reset newcomers at accept while the connections
     * evicted for them are still closing. Past hard_limit MHD stops accepting, and
     * newcomers wait in the backlog. */
    http->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, http, MHD_OPTION_EXTERNAL_LOGGER, on_log, http,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, http,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, http, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, http, MHD_OPTION_CONNECTION_LIMIT, http->hard_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, http->cfg.timeout_s, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
    if (!http->mhd)
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                         "cannot start HTTP on %s (libmicrohttpd failed; see the log)",
                         http->listen);
    /* MHD owns the duplicate now; ours would only keep the port bound after stop. */
    close(http->fd);
    http->fd = -1;
    int rc = pthread_create(&http->reaper, NULL, reaper_main, http);
    if (rc) {
        MHD_stop_daemon(http->mhd);
        http->mhd = NULL;
        return eddy_errf(EDDY_ERR_IO, errstr, errstr_size,
                         "cannot start HTTP on %s: no thread for its deadlines: %s", http->listen,
                         strerror(rc));
    }
    http->reaper_started = true;
    eddy_log_info("http: serving on %s (port %d)", http->listen, http->port);
    return EDDY_OK;
}

int eddy_http_port(const eddy_http_t *http)
{
    return http->port;
}

void eddy_http_destroy(eddy_http_t *http)
{
    if (!http)
        return;
    if (http->reaper_started) {
        pthread_mutex_lock(&http->conns_lock);
        http->reaper_stop = true;
        pthread_cond_signal(&http->reaper_cond);
        pthread_mutex_unlock(&http->conns_lock);
        pthread_join(http->reaper, NULL);
    }
    if (http->mhd)
        MHD_stop_daemon(http->mhd);
    if (http->fd >= 0)
        close(http->fd);
    for (size_t i = 0; i < http->nroutes; i++)
        eddy_http_route_clear(&http->routes[i]);
    free(http->routes);
    free(http->static_root);
    free(http->cors_origin);
    pthread_cond_destroy(&http->reaper_cond);
    pthread_mutex_destroy(&http->conns_lock);
    free(http);
}
