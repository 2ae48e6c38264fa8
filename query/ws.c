/*
 * ws.c — the WebSocket endpoint: the handshake (on an HTTP server thread), then
 * every upgraded connection on the one ws thread, which multiplexes them with
 * epoll over non-blocking sockets, answers pings, sends its own, enforces the idle
 * timeout and polls the subscriptions' sources at their intervals.
 *
 * What always holds: only the ws thread touches a connection after it is adopted;
 * the HTTP threads hand new connections over through `pending` under `lock`. A
 * connection's send queue never holds more than max_queue bytes: a message that
 * would overflow it drops the client (counted in `drops`). A connection ends with
 * MHD_upgrade_action(CLOSE), after a lingering close when a close frame was sent
 * (shut the write side, read until the peer's EOF or a deadline) so that the peer
 * reads our close frame instead of a reset.
 */
#define _GNU_SOURCE
#include "query/ws.h"
#include "engine/log.h"
#include "engine/util.h"
#include "query/ws_frame.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SOURCES      8
#define MIN_INTERVAL_MS  50
#define MAX_INTERVAL_MS  3600000
#define CLOSE_LINGER_MS  2000 /* wait for the peer's EOF after our close frame */
#define STOP_LINGER_MS   500  /* at shutdown, for all connections together */
#define READS_PER_WAKEUP 4    /* so that one flooding client cannot starve the others */

typedef enum conn_state_e {
    CONN_OPEN = 0,    /* frames flow both ways */
    CONN_CLOSING = 1, /* our close frame is queued or sent; waiting for the peer's EOF */
    CONN_DEAD = 2,    /* to be freed at the end of the loop iteration */
} conn_state_t;

typedef struct sub_s {
    int id;              /* per connection, from 1 */
    int source;          /* index into ws->sources */
    char *name;          /* the name handed to the source (kind prefix removed) */
    json_t *params;      /* the subscribe message (owned) */
    int64_t interval_ms; /* between two checks */
    int64_t due_ms;      /* next check, monotonic */
    uint64_t hash;       /* FNV-1a of the last data sent */
    size_t hash_len;     /* its length */
    char *last_error;    /* the last error sent for this subscription, or NULL */
    struct sub_s *next;  /* the connection's list */
} sub_t;

typedef struct conn_s {
    eddy_ws_t *ws;                         /* the endpoint */
    int fd;                                /* the socket (non-blocking); MHD closes it */
    struct MHD_UpgradeResponseHandle *urh; /* ends the connection */
    conn_state_t state;                    /* see above */
    bool wr_shut;                          /* shutdown(SHUT_WR) done */
    bool want_out;                         /* EPOLLOUT registered */
    eddy_ws_reader_t rd;                   /* the client's frames */
    uint8_t *out;                          /* the send queue: out[head..len) is unsent */
    size_t out_head;                       /* first unsent byte */
    size_t out_len;                        /* end of queued bytes */
    size_t out_cap;                        /* out's size, at most max_queue */
    int64_t last_rx_ms;                    /* last bytes from the client, monotonic */
    int64_t next_ping_ms;                  /* when to ping next */
    int64_t close_deadline_ms;             /* CLOSING: give up waiting for EOF */
    sub_t *subs;                           /* subscriptions */
    unsigned nsubs;                        /* their number */
    int next_sub_id;                       /* the next subscription's id */
    struct conn_s *next;                   /* the thread's list, or the pending list */
} conn_t;

typedef struct source_s {
    char kind[32];        /* "" for the default kind */
    eddy_ws_source_fn fn; /* produces the data */
    void *opaque;         /* its argument */
} source_t;

struct eddy_ws_s {
    eddy_ws_config_t cfg;          /* defaults filled in */
    char *allowed_origins;         /* cfg.allowed_origins' copy */
    source_t sources[MAX_SOURCES]; /* registered kinds */
    int nsources;                  /* entries used */
    pthread_t thread;              /* the ws thread */
    bool thread_started;           /* thread is joinable */
    int epfd;                      /* the thread's epoll set */
    int evfd;                      /* wakes the thread: new connections, stop */
    pthread_mutex_t lock;          /* guards pending and stopping */
    conn_t *pending;               /* upgraded, not yet adopted by the thread */
    bool stopping;                 /* eddy_ws_stop called */
    bool stopped;                  /* the thread was joined */
    conn_t *conns;                 /* ws thread only: adopted connections */
    _Atomic uint64_t clients_open, clients_total, messages_sent, bytes_sent, drops,
        protocol_errors; /* eddy_ws_stats */
};

static int64_t mono_ms(void)
{
    return eddy_mono_ns() / 1000000;
}

/* --- life cycle ---------------------------------------------------------------------- */

static void *ws_main(void *arg);

eddy_ws_t *eddy_ws_new(const eddy_ws_config_t *cfg, char *errstr, size_t errstr_size)
{
    eddy_ws_t *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (cfg)
        ws->cfg = *cfg;
    if (ws->cfg.interval_ms <= 0)
        ws->cfg.interval_ms = 1000;
    if (ws->cfg.interval_ms < MIN_INTERVAL_MS)
        ws->cfg.interval_ms = MIN_INTERVAL_MS;
    if (!ws->cfg.max_queue)
        ws->cfg.max_queue = 1 << 20;
    if (!ws->cfg.max_message)
        ws->cfg.max_message = 64 << 10;
    if (ws->cfg.ping_s <= 0)
        ws->cfg.ping_s = 20;
    if (ws->cfg.idle_s <= 0)
        ws->cfg.idle_s = 60;
    if (!ws->cfg.max_subscriptions)
        ws->cfg.max_subscriptions = 32;
    if (cfg && cfg->allowed_origins && cfg->allowed_origins[0]) {
        char why[320];
        if (!eddy_ws_origins_valid(cfg->allowed_origins, why, sizeof(why))) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size, "http.ws.allowed.origins: %s", why);
            free(ws);
            return NULL;
        }
        if (!(ws->allowed_origins = strdup(cfg->allowed_origins))) {
            eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
            free(ws);
            return NULL;
        }
    }
    ws->cfg.allowed_origins = ws->allowed_origins;
    ws->epfd = epoll_create1(EPOLL_CLOEXEC);
    ws->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&ws->lock, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ws->epfd < 0 || ws->evfd < 0 || epoll_ctl(ws->epfd, EPOLL_CTL_ADD, ws->evfd, &ev)) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot set up the WebSocket poller: %s",
                  strerror(errno));
        goto err;
    }
    int rc = pthread_create(&ws->thread, NULL, ws_main, ws);
    if (rc) {
        eddy_errf(EDDY_ERR_IO, errstr, errstr_size, "cannot start the WebSocket thread: %s",
                  strerror(rc));
        goto err;
    }
    ws->thread_started = true;
    return ws;
err:
    ws->stopped = true;
    eddy_ws_destroy(ws);
    return NULL;
}

eddy_err_t eddy_ws_source(eddy_ws_t *ws, const char *kind, eddy_ws_source_fn fn, void *opaque)
{
    if (!kind)
        kind = "";
    if (ws->nsources == MAX_SOURCES || strlen(kind) >= sizeof(ws->sources[0].kind)) {
        eddy_log_error("ws: cannot register source kind '%s' (table full or name too long)", kind);
        return EDDY_ERR_INVALID;
    }
    for (int i = 0; i < ws->nsources; i++)
        if (!strcmp(ws->sources[i].kind, kind)) {
            eddy_log_error("ws: source kind '%s' registered twice", kind);
            return EDDY_ERR_INVALID;
        }
    source_t *s = &ws->sources[ws->nsources];
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    s->fn = fn;
    s->opaque = opaque;
    /* A client connecting later reads the table on the ws thread: publish it. */
    pthread_mutex_lock(&ws->lock);
    ws->nsources++;
    pthread_mutex_unlock(&ws->lock);
    return EDDY_OK;
}

void eddy_ws_stop(eddy_ws_t *ws)
{
    pthread_mutex_lock(&ws->lock);
    bool already = ws->stopping;
    ws->stopping = true;
    pthread_mutex_unlock(&ws->lock);
    if (already && ws->stopped)
        return;
    uint64_t one = 1;
    if (write(ws->evfd, &one, sizeof(one)) < 0) {
        /* Only EAGAIN (counter saturated) is possible: the thread is awake anyway. */
    }
    if (ws->thread_started)
        pthread_join(ws->thread, NULL);
    ws->thread_started = false;
    ws->stopped = true;
}

void eddy_ws_destroy(eddy_ws_t *ws)
{
    if (!ws)
        return;
    if (!ws->stopped)
        eddy_ws_stop(ws);
    if (ws->epfd >= 0)
        close(ws->epfd);
    if (ws->evfd >= 0)
        close(ws->evfd);
    pthread_mutex_destroy(&ws->lock);
    free(ws->allowed_origins);
    free(ws);
}

void eddy_ws_stats(const eddy_ws_t *ws, eddy_ws_stats_t *out)
{
    eddy_ws_t *w = (eddy_ws_t *)ws; /* atomic loads do not write */
    out->clients_open = atomic_load_explicit(&w->clients_open, memory_order_relaxed);
    out->clients_total = atomic_load_explicit(&w->clients_total, memory_order_relaxed);
    out->messages_sent = atomic_load_explicit(&w->messages_sent, memory_order_relaxed);
    out->bytes_sent = atomic_load_explicit(&w->bytes_sent, memory_order_relaxed);
    out->drops = atomic_load_explicit(&w->drops, memory_order_relaxed);
    out->protocol_errors = atomic_load_explicit(&w->protocol_errors, memory_order_relaxed);
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* --- the handshake (HTTP server threads) ---------------------------------------------- */

static void on_upgraded(void *opaque, int fd, const char *extra, size_t extra_len,
                        struct MHD_UpgradeResponseHandle *urh);

int eddy_ws_handle(eddy_http_req_t *req, eddy_http_resp_t *resp, void *opaque)
{
    eddy_ws_t *ws = opaque;
    const char *upgrade = eddy_http_header(req, "Upgrade");
    const char *connection = eddy_http_header(req, "Connection");
    const char *version = eddy_http_header(req, "Sec-WebSocket-Version");
    const char *key = eddy_http_header(req, "Sec-WebSocket-Key");
    const char *origin = eddy_http_header(req, "Origin");
    if (!upgrade || !eddy_ws_has_token(upgrade, "websocket") || !connection ||
        !eddy_ws_has_token(connection, "upgrade")) {
        eddy_http_resp_header(resp, "Upgrade", "websocket");
        return eddy_http_error(resp, 426,
                               "/ws is a WebSocket endpoint: send 'Upgrade: websocket' and "
                               "'Connection: Upgrade'");
    }
    if (!version || strcmp(version, "13")) {
        eddy_http_resp_header(resp, "Sec-WebSocket-Version", "13");
        return eddy_http_error(resp, 426, "unsupported Sec-WebSocket-Version '%s' (only 13)",
                               version ? version : "");
    }
    /* The key is 16 random bytes in base64: 22 characters and "==". */
    if (!key || strlen(key) != 24 || strcmp(key + 22, "==") ||
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != 22)
        return eddy_http_error(resp, 400, "missing or malformed Sec-WebSocket-Key");
    int local_port = 0;
    const char *local = eddy_http_local(req, &local_port);
    if (!eddy_ws_origin_allowed(origin, ws->allowed_origins, local, local_port))
        return eddy_http_error(resp, 403,
                               "origin '%.200s' is not allowed (this listener's own origin "
                               "only; see http.ws.allowed.origins)",
                               origin);
    pthread_mutex_lock(&ws->lock);
    bool stopping = ws->stopping;
    pthread_mutex_unlock(&ws->lock);
    if (stopping)
        return eddy_http_error(resp, 503, "the server is shutting down");
    char accept[29];
    eddy_ws_accept_key(key, accept);
    eddy_http_resp_header(resp, "Upgrade", "websocket");
    eddy_http_resp_header(resp, "Sec-WebSocket-Accept", accept);
    return eddy_http_upgrade(resp, on_upgraded, ws);
}

static void conn_free(conn_t *c)
{
    while (c->subs) {
        sub_t *s = c->subs;
        c->subs = s->next;
        free(s->name);
        free(s->last_error);
        json_decref(s->params);
        free(s);
    }
    eddy_ws_reader_free(&c->rd);
    free(c->out);
    free(c);
}

/* Runs on the HTTP thread that sent the 101: hand the connection to the ws thread. */
static void on_upgraded(void *opaque, int fd, const char *extra, size_t extra_len,
                        struct MHD_UpgradeResponseHandle *urh)
{
    eddy_ws_t *ws = opaque;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c || !eddy_ws_reader_init(&c->rd, ws->cfg.max_message)) {
        free(c);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    c->ws = ws;
    c->fd = fd;
    c->urh = urh;
    c->next_sub_id = 1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Frames the client sent right behind its request; more than a frame's worth
     * cannot be valid (the reader refuses longer frames at their header). */
    size_t n = extra_len < c->rd.cap ? extra_len : c->rd.cap;
    memcpy(c->rd.buf, extra, n);
    c->rd.len = n;
    count(&ws->clients_total, 1);
    count(&ws->clients_open, 1);
    pthread_mutex_lock(&ws->lock);
    bool stopping = ws->stopping;
    if (!stopping) {
        c->next = ws->pending;
        ws->pending = c;
    }
    pthread_mutex_unlock(&ws->lock);
    if (stopping) {
        count(&ws->clients_open, (uint64_t)-1);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        conn_free(c);
        return;
    }
    uint64_t v = 1;
    if (write(ws->evfd, &v, sizeof(v)) < 0) {
        /* EAGAIN only: the thread has a wakeup pending already. */
    }
}

/* --- the send queue (ws thread) ------------------------------------------------------- */

static void conn_kill(conn_t *c)
{
    if (c->state == CONN_DEAD)
        return;
    c->state = CONN_DEAD;
}

static void update_events(conn_t *c)
{
    bool want = c->out_head < c->out_len && c->state != CONN_DEAD;
    if (want == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->ws->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Writes what the kernel takes. */
static void conn_flush(conn_t *c)
{
    while (c->state != CONN_DEAD && c->out_head < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_head, c->out_len - c->out_head, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_kill(c); /* the peer is gone */
            break;
        }
        c->out_head += (size_t)n;
        count(&c->ws->bytes_sent, (uint64_t)n);
    }
    if (c->out_head == c->out_len)
        c->out_head = c->out_len = 0;
    if (c->state == CONN_CLOSING && c->out_len == 0 && !c->wr_shut) {
        shutdown(c->fd, SHUT_WR);
        c->wr_shut = true;
    }
    update_events(c);
}

/* Queues one frame. A client whose queue would pass max_queue is dropped: it reads
 * slower than we send, and holding more for it would grow without bound. */
static bool conn_send_limit(conn_t *c, int opcode, const void *data, size_t len, size_t max)
{
    if (c->state == CONN_DEAD)
        return false;
    uint8_t hdr[10];
    size_t hlen = eddy_ws_frame_header(hdr, opcode, len);
    if (c->out_head) {
        memmove(c->out, c->out + c->out_head, c->out_len - c->out_head);
        c->out_len -= c->out_head;
        c->out_head = 0;
    }
    if (c->out_len + hlen + len > max) {
        eddy_log_warn("ws: dropping a client that does not read (%zu bytes queued, limit %zu)",
                      c->out_len, max);
        count(&c->ws->drops, 1);
        conn_kill(c);
        return false;
    }
    if (c->out_len + hlen + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + hlen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            conn_kill(c);
            return false;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, hdr, hlen);
    memcpy(c->out + c->out_len + hlen, data, len);
    c->out_len += hlen + len;
    conn_flush(c);
    return c->state != CONN_DEAD;
}

static bool conn_send(conn_t *c, int opcode, const void *data, size_t len)
{
    return conn_send_limit(c, opcode, data, len, c->ws->cfg.max_queue);
}

static void conn_send_json(conn_t *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return;
    if (conn_send(c, EDDY_WS_OP_TEXT, text, strlen(text)))
        count(&c->ws->messages_sent, 1);
    free(text);
}

static void send_error(conn_t *c, int sub_id, const char *message)
{
    json_t *m = json_pack("{s:s,s:s}", "type", "error", "message", message);
    if (sub_id)
        json_object_set_new(m, "subscription", json_integer(sub_id));
    conn_send_json(c, m);
}

/* Sends our close frame and starts the lingering close. */
static void conn_close(conn_t *c, int code, const char *reason)
{
    if (c->state != CONN_OPEN)
        return;
    uint8_t p[125];
    size_t n = 0;
    if (code != 1005) { /* 1005: the client's close carried no code, so neither does ours */
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = strnlen(reason, sizeof(p) - 2);
        memcpy(p + 2, reason, n);
        n += 2;
    }
    c->state = CONN_CLOSING;
    c->close_deadline_ms = mono_ms() + CLOSE_LINGER_MS;
    /* The close frame gets room even in a full queue: it is the last frame. */
    conn_send_limit(c, EDDY_WS_OP_CLOSE, p, n, c->ws->cfg.max_queue + 128);
}

/* --- subscriptions (ws thread) ------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Asks the subscription's source (unless `data`, a reference it takes, is its
 * answer already); sends a snapshot (first) or an update (when the data changed)
 * or an error (when it changed). */
static void sub_poll(conn_t *c, sub_t *s, bool first, json_t *data)
{
    eddy_ws_t *ws = c->ws;
    char err[256] = "";
    source_t *src = &ws->sources[s->source];
    if (!data)
        data = src->fn(src->opaque, s->name, s->params, err, sizeof(err));
    if (!data) {
        if (!err[0])
            snprintf(err, sizeof(err), "source '%s' has no answer", s->name);
        if (!s->last_error || strcmp(s->last_error, err)) {
            send_error(c, s->id, err);
            free(s->last_error);
            s->last_error = strdup(err);
        }
        return;
    }
    free(s->last_error);
    s->last_error = NULL;
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!text)
        return;
    size_t len = strlen(text);
    uint64_t h = fnv1a(text, len);
    if (!first && h == s->hash && len == s->hash_len) {
        free(text);
        return;
    }
    /* The head is built by jansson (it escapes the name); the data is spliced in. */
    json_t *head =
        json_pack("{s:s,s:i}", "type", first ? "snapshot" : "update", "subscription", s->id);
    if (first)
        json_object_set_new(
            head, "source",
            json_string(json_string_value(json_object_get(s->params, "subscribe"))));
    char *ht = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(head);
    size_t hl = ht ? strlen(ht) : 1;
    size_t total = hl - 1 + strlen(",\"data\":") + len + 1;
    if (ht && total + 10 > ws->cfg.max_queue) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "the answer (%zu bytes) is larger than the send queue (%zu bytes); narrow it "
                 "with from, to or key",
                 total, ws->cfg.max_queue);
        send_error(c, s->id, msg);
    } else if (ht) {
        char *m = malloc(total);
        if (m) {
            memcpy(m, ht, hl - 1);
            size_t o = hl - 1;
            memcpy(m + o, ",\"data\":", 8);
            o += 8;
            memcpy(m + o, text, len);
            o += len;
            m[o++] = '}';
            if (conn_send(c, EDDY_WS_OP_TEXT, m, o))
                count(&ws->messages_sent, 1);
            free(m);
        }
    }
    s->hash = h;
    s->hash_len = len;
    free(ht);
    free(text);
}

static void subscribe(conn_t *c, json_t *msg)
{
    eddy_ws_t *ws = c->ws;
    const char *full = json_string_value(json_object_get(msg, "subscribe"));
    if (!full || !full[0]) {
        send_error(c, 0, "'subscribe' must be a non-empty string (a store or view name)");
        return;
    }
    if (c->nsubs >= ws->cfg.max_subscriptions) {
        char m[128];
        snprintf(m, sizeof(m), "too many subscriptions (at most %u per connection)",
                 ws->cfg.max_subscriptions);
        {
            send_error(c, 0, m);
            return;
        }
    }
    /* The kind: an explicit "kind", else a registered "kind:" prefix, else default. */
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    const char *name = full;
    if (!kind) {
        const char *colon = strchr(full, ':');
        kind = "";
        for (int i = 0; colon && i < ws->nsources; i++)
            if (ws->sources[i].kind[0] && strlen(ws->sources[i].kind) == (size_t)(colon - full) &&
                !strncmp(ws->sources[i].kind, full, (size_t)(colon - full))) {
                kind = ws->sources[i].kind;
                name = colon + 1;
            }
    }
    int src = -1;
    for (int i = 0; i < ws->nsources; i++)
        if (!strcmp(ws->sources[i].kind, kind))
            src = i;
    if (src < 0) {
        char m[160];
        snprintf(m, sizeof(m), "no source of kind '%.64s'", kind);
        {
            send_error(c, 0, m);
            return;
        }
    }
    int64_t interval = ws->cfg.interval_ms;
    json_t *iv = json_object_get(msg, "interval_ms");
    if (iv) {
        if (!json_is_integer(iv) || json_integer_value(iv) < MIN_INTERVAL_MS ||
            json_integer_value(iv) > MAX_INTERVAL_MS) {
            char m[128];
            snprintf(m, sizeof(m), "'interval_ms' must be an integer from %d to %d",
                     MIN_INTERVAL_MS, MAX_INTERVAL_MS);
            {
                send_error(c, 0, m);
                return;
            }
        }
        interval = json_integer_value(iv);
    }
    /* The source checks the rest of the parameters (and that the name exists); its
     * answer is the snapshot. */
    char err[256] = "";
    json_t *probe = ws->sources[src].fn(ws->sources[src].opaque, name, msg, err, sizeof(err));
    if (!probe) {
        if (!err[0])
            snprintf(err, sizeof(err), "no source named '%.200s'", full);
        {
            send_error(c, 0, err);
            return;
        }
    }
    sub_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        json_decref(probe);
        free(s);
        {
            send_error(c, 0, "out of memory");
            return;
        }
    }
    s->id = c->next_sub_id++;
    s->source = src;
    s->params = json_incref(msg);
    s->interval_ms = interval;
    s->due_ms = mono_ms() + interval;
    s->next = c->subs;
    c->subs = s;
    c->nsubs++;
    sub_poll(c, s, true, probe);
}

static void unsubscribe(conn_t *c, json_t *idv)
{
    if (!json_is_integer(idv)) {
        send_error(c, 0, "'unsubscribe' needs a subscription id (an integer)");
        return;
    }
    int id = (int)json_integer_value(idv);
    for (sub_t **pp = &c->subs; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            sub_t *s = *pp;
            *pp = s->next;
            c->nsubs--;
            free(s->name);
            free(s->last_error);
            json_decref(s->params);
            free(s);
            conn_send_json(c, json_pack("{s:s,s:i}", "type", "unsubscribed", "subscription", id));
            return;
        }
    char m[64];
    snprintf(m, sizeof(m), "no subscription %d", id);
    send_error(c, 0, m);
}

static void on_text(conn_t *c, const uint8_t *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)data, len, 0, &jerr);
    if (!msg) {
        char m[300];
        snprintf(m, sizeof(m), "bad JSON: %s (at character %d)", jerr.text, jerr.position);
        {
            send_error(c, 0, m);
            return;
        }
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!json_is_object(msg)) {
        send_error(c, 0, "a message must be a JSON object");
    } else if (json_object_get(msg, "subscribe")) {
        subscribe(c, msg);
    } else if (json_object_get(msg, "unsubscribe")) {
        unsubscribe(c, json_object_get(msg, "unsubscribe"));
    } else if (type && !strcmp(type, "unsubscribe")) {
        unsubscribe(c, json_object_get(msg, "subscription"));
    } else {
        send_error(c, 0,
                   "unknown message: expected {\"subscribe\":NAME,...} or "
                   "{\"unsubscribe\":ID}");
    }
    json_decref(msg);
}

/* --- reading (ws thread) ------------------------------------------------------------ */

static void conn_process(conn_t *c)
{
    eddy_ws_msg_t m;
    int rc;
    while (c->state == CONN_OPEN && (rc = eddy_ws_reader_next(&c->rd, &m)) != 0) {
        if (rc < 0) {
            eddy_log_info("ws: closing a connection (%d): %s", c->rd.close_code, c->rd.error);
            count(&c->ws->protocol_errors, 1);
            conn_close(c, c->rd.close_code, c->rd.error);
            return;
        }
        switch (m.opcode) {
        case EDDY_WS_OP_TEXT:
            on_text(c, m.data, m.len);
            break;
        case EDDY_WS_OP_BINARY:
            send_error(c, 0, "binary messages are not understood; send JSON text");
            break;
        case EDDY_WS_OP_PING:
            conn_send(c, EDDY_WS_OP_PONG, m.data, m.len);
            break;
        case EDDY_WS_OP_PONG:
            break; /* last_rx_ms already moved */
        case EDDY_WS_OP_CLOSE:
            conn_close(c, m.close_code == 1005 ? 1005 : m.close_code, "");
            break;
        }
    }
}

static void conn_readable(conn_t *c, int64_t now)
{
    for (int i = 0; i < READS_PER_WAKEUP && c->state != CONN_DEAD; i++) {
        uint8_t scratch[4096];
        uint8_t *dst = scratch;
        size_t room = sizeof(scratch);
        if (c->state == CONN_OPEN) {
            /* The reader compacts, and a frame never exceeds cap: there is room. */
            dst = c->rd.buf + c->rd.len;
            room = c->rd.cap - c->rd.len;
            assert(room > 0);
        }
        ssize_t n = recv(c->fd, dst, room, 0);
        if (n == 0) {
            conn_kill(c); /* EOF: after our close frame, the normal end */
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_kill(c);
            return;
        }
        c->last_rx_ms = now;
        if (c->state == CONN_OPEN) {
            c->rd.len += (size_t)n;
            conn_process(c);
        }
    }
}

/* --- the thread ------------------------------------------------------------------------- */

static void adopt_pending(eddy_ws_t *ws, int64_t now)
{
    pthread_mutex_lock(&ws->lock);
    conn_t *list = ws->pending;
    ws->pending = NULL;
    pthread_mutex_unlock(&ws->lock);
    while (list) {
        conn_t *c = list;
        list = c->next;
        c->next = ws->conns;
        ws->conns = c;
        c->last_rx_ms = now;
        c->next_ping_ms = now + (int64_t)ws->cfg.ping_s * 1000;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ws->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
            conn_kill(c);
            continue;
        }
        conn_process(c); /* frames that came with the request */
    }
}

/* Timers of one connection; returns when it next needs attention. */
static int64_t conn_tick(conn_t *c, int64_t now, bool stopping)
{
    eddy_ws_t *ws = c->ws;
    if (c->state == CONN_OPEN && stopping)
        conn_close(c, EDDY_WS_CLOSE_GOING_AWAY, "server shutting down");
    if (c->state == CONN_CLOSING) {
        if (now >= c->close_deadline_ms)
            conn_kill(c);
        return c->close_deadline_ms;
    }
    if (c->state != CONN_OPEN)
        return INT64_MAX;
    if (now - c->last_rx_ms >= (int64_t)ws->cfg.idle_s * 1000) {
        conn_close(c, EDDY_WS_CLOSE_GOING_AWAY, "idle timeout");
        return c->close_deadline_ms;
    }
    if (now >= c->next_ping_ms) {
        conn_send(c, EDDY_WS_OP_PING, "eddy", 4);
        c->next_ping_ms = now + (int64_t)ws->cfg.ping_s * 1000;
    }
    int64_t next = c->next_ping_ms;
    if (c->last_rx_ms + (int64_t)ws->cfg.idle_s * 1000 < next)
        next = c->last_rx_ms + (int64_t)ws->cfg.idle_s * 1000;
    for (sub_t *s = c->subs; s && c->state == CONN_OPEN; s = s->next) {
        if (now >= s->due_ms) {
            sub_poll(c, s, false, NULL);
            /* A slow source must not make the checks pile up: skip missed ones. */
            s->due_ms += s->interval_ms;
            if (s->due_ms <= now)
                s->due_ms = now + s->interval_ms;
        }
        if (s->due_ms < next)
            next = s->due_ms;
    }
    return next;
}

static void sweep(eddy_ws_t *ws)
{
    for (conn_t **pp = &ws->conns; *pp;) {
        conn_t *c = *pp;
        if (c->state != CONN_DEAD) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        epoll_ctl(ws->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        count(&ws->clients_open, (uint64_t)-1);
        conn_free(c);
    }
}

static void *ws_main(void *arg)
{
    eddy_ws_t *ws = arg;
    eddy_log_set_thread_name("ws");
    int64_t stop_deadline = INT64_MAX;
    for (;;) {
        int64_t now = mono_ms();
        pthread_mutex_lock(&ws->lock);
        bool stopping = ws->stopping;
        pthread_mutex_unlock(&ws->lock);
        if (stopping && stop_deadline == INT64_MAX)
            stop_deadline = now + STOP_LINGER_MS;
        int64_t next = stop_deadline;
        for (conn_t *c = ws->conns; c; c = c->next) {
            if (stopping && now >= stop_deadline)
                conn_kill(c);
            int64_t t = conn_tick(c, now, stopping);
            if (t < next)
                next = t;
        }
        sweep(ws);
        if (stopping && !ws->conns)
            break;
        int timeout = next == INT64_MAX ? -1 : next <= now ? 0 : (int)(next - now);
        struct epoll_event evs[64];
        int n = epoll_wait(ws->epfd, evs, 64, timeout);
        now = mono_ms();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                uint64_t v;
                if (read(ws->evfd, &v, sizeof(v)) < 0) {
                    /* EAGAIN: drained already */
                }
                adopt_pending(ws, now);
                continue;
            }
            if (c->state == CONN_DEAD)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_readable(c, now);
            if (evs[i].events & EPOLLOUT)
                conn_flush(c);
        }
        sweep(ws);
    }
    /* Connections upgraded while the loop ended: refused. */
    adopt_pending(ws, mono_ms());
    for (conn_t *c = ws->conns; c; c = c->next)
        conn_kill(c);
    sweep(ws);
    return NULL;
}
