/*
 * ws.h — the WebSocket endpoint (/ws): RFC 6455 over the HTTP server's upgrade,
 * and a small subscription protocol on top (docs/http.md, "WebSocket").
 *
 * A client subscribes to a named source ("endpoint_stats", "view:errors"); the
 * server answers with a snapshot, then with an update whenever the source's answer
 * changed, checked every interval. Sources are callbacks registered by kind, so the
 * REST layer (stores), views or cluster-wide queries plug in without touching ws.c.
 *
 * Threads: the handshake runs on the HTTP server's threads (eddy_ws_handle); every
 * upgraded connection is then served by the one thread of the eddy_ws_t (epoll,
 * non-blocking sockets), which also calls the sources. Each client has a bounded
 * send queue; a client that would overflow it is dropped, never allowed to grow.
 */
#ifndef EDDY_WS_H
#define EDDY_WS_H

#include "eddy.h"
#include "query/http.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eddy_ws_s eddy_ws_t;

/** Settings. Zero fields take the default in brackets. */
typedef struct eddy_ws_config_s {
    int64_t interval_ms;         /**< default update check interval, ms [1000] */
    size_t max_queue;            /**< per-client send queue, bytes; past it: dropped [1 MiB] */
    size_t max_message;          /**< largest client message, bytes; past it: close 1009 [64 KiB] */
    int ping_s;                  /**< a ping every this many seconds [20] */
    int idle_s;                  /**< no frame from the client this long: close 1001 [60] */
    unsigned max_subscriptions;  /**< per client [32] */
    const char *allowed_origins; /**< comma-separated origins (or "*") allowed besides the
                                      listener's own (eddy_ws_origin_allowed in
                                      ws_frame.h); NULL/"": the listener's own only;
                                      eddy_ws_new refuses an item that is no origin */
} eddy_ws_config_t;

/** Counters (cumulative since eddy_ws_new, except clients_open). */
typedef struct eddy_ws_stats_s {
    uint64_t clients_open;    /**< connections open now (gauge) */
    uint64_t clients_total;   /**< connections upgraded */
    uint64_t messages_sent;   /**< data messages (snapshot, update, error, ...) queued */
    uint64_t bytes_sent;      /**< bytes written to sockets, frame headers included */
    uint64_t drops;           /**< clients dropped because their send queue was full */
    uint64_t protocol_errors; /**< connections closed for a bad frame (1002, 1007, 1009) */
} eddy_ws_stats_t;

/** Produces the current answer of source `name` (the part after "kind:", or the
 *  whole name for the default kind) for a subscription with parameters `params`
 *  (the client's subscribe message, borrowed). Returns a new reference, or NULL
 *  with err filled ("no store named 'x'"): the client gets an error message.
 *  Called on the ws thread, once at subscribe and then every interval. */
typedef json_t *(*eddy_ws_source_fn)(void *opaque, const char *name, json_t *params, char *err,
                                     size_t errsz);

/** A new endpoint (cfg and its strings copied; NULL cfg: all defaults). Its thread
 *  starts at once. NULL with errstr filled on failure. */
eddy_ws_t *eddy_ws_new(const eddy_ws_config_t *cfg, char *errstr, size_t errstr_size);

/** Registers `fn` for subscriptions "kind:name"; kind NULL or "" is the default
 *  kind, used for names without a known "kind:" prefix (stores). `opaque` is
 *  borrowed. Call before the first client connects. EDDY_ERR_INVALID if the kind is
 *  already registered or the table is full. */
eddy_err_t eddy_ws_source(eddy_ws_t *ws, const char *kind, eddy_ws_source_fn fn, void *opaque);

/** The HTTP handler for GET /ws (register it with opaque = the eddy_ws_t): checks
 *  the handshake and the Origin, answers 101 and hands the connection to the ws
 *  thread; 400/403/426 JSON errors otherwise. Runs on an HTTP server thread. */
int eddy_ws_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque);

/** Closes every connection (close 1001), stops and joins the thread. Connections
 *  upgraded afterwards are closed at once. Call before eddy_http_destroy(). */
void eddy_ws_stop(eddy_ws_t *ws);

/** Stops (if not yet stopped) and frees. NULL is a no-op. */
void eddy_ws_destroy(eddy_ws_t *ws);

/** Copies the counters into *out. Any thread. */
void eddy_ws_stats(const eddy_ws_t *ws, eddy_ws_stats_t *out);

#endif /* EDDY_WS_H */
