/*
 * ws_frame.h — RFC 6455 framing without I/O: the handshake's accept key (with its
 * own SHA-1) and header checks (tokens, the Origin), a strict UTF-8 check, the
 * parser of client frames that assembles fragmented messages, and the header of
 * server frames. Pure functions on byte
 * arrays, so that the unit tests feed them bytes; query/ws.c does the sockets.
 * No shared state: any thread, one reader per connection.
 */
#ifndef EDDY_WS_FRAME_H
#define EDDY_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    EDDY_WS_OP_CONT = 0x0,
    EDDY_WS_OP_TEXT = 0x1,
    EDDY_WS_OP_BINARY = 0x2,
    EDDY_WS_OP_CLOSE = 0x8,
    EDDY_WS_OP_PING = 0x9,
    EDDY_WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 section 7.4.1). */
enum {
    EDDY_WS_CLOSE_NORMAL = 1000,
    EDDY_WS_CLOSE_GOING_AWAY = 1001,
    EDDY_WS_CLOSE_PROTOCOL = 1002,
    EDDY_WS_CLOSE_UNSUPPORTED = 1003,
    EDDY_WS_CLOSE_BAD_DATA = 1007,
    EDDY_WS_CLOSE_POLICY = 1008,
    EDDY_WS_CLOSE_TOO_BIG = 1009,
    EDDY_WS_CLOSE_INTERNAL = 1011,
};

/** SHA-1 (RFC 3174) of data[0..len). */
void eddy_ws_sha1(const void *data, size_t len, uint8_t out[20]);

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key ||
 *  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters and a NUL. */
void eddy_ws_accept_key(const char *key, char out[29]);

/** True if s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code
 *  points above U+10FFFF). */
bool eddy_ws_utf8_valid(const uint8_t *s, size_t len);

/** True if the comma-separated header value `list` (e.g. a Connection header)
 *  holds `token`, compared case-insensitively, blanks around items ignored. */
bool eddy_ws_has_token(const char *list, const char *token);

/** Checks `allowed`, a comma-separated list of origins ("https://dash.example.com",
 *  "http://10.0.0.5:8083") or "*"; blanks around items are ignored, "" is an empty
 *  list. False with the offending item named in errstr if one is not an origin
 *  (scheme://host[:port], nothing after it). */
bool eddy_ws_origins_valid(const char *allowed, char *errstr, size_t errstr_size);

/** Whether a browser page of origin `origin` (the Origin header; NULL: not a
 *  browser, allowed) may open the WebSocket on a connection that reached the
 *  server at address `local` (numeric, as eddy_http_local gives it) and port
 *  `local_port`. Allowed: an origin in `allowed` (a checked list; "*" allows
 *  any), compared by scheme, host (case-insensitive) and port (defaults filled
 *  in), or the listener's own origin: scheme http, port local_port, and a host
 *  that is `local` itself (an IP literal, so DNS cannot rebind it) or
 *  "localhost" when `local` is a loopback address. The Host header plays no
 *  part: a page of a rebound name (evil.example resolving to 127.0.0.1) sends
 *  Host and Origin of that name, and is refused. */
bool eddy_ws_origin_allowed(const char *origin, const char *allowed, const char *local,
                            int local_port);

/** Writes the header of an unfragmented, unmasked server frame with `opcode` and
 *  `len` payload bytes to out; returns its size (2, 4 or 10). */
size_t eddy_ws_frame_header(uint8_t out[10], int opcode, size_t len);

/** One thing the reader found: a whole data message or a control frame. */
typedef struct eddy_ws_msg_s {
    int opcode;          /**< TEXT, BINARY, CLOSE, PING or PONG */
    const uint8_t *data; /**< the (unmasked) payload, valid until the next reader call */
    size_t len;          /**< its length */
    int close_code;      /**< CLOSE: the code sent, 1005 (none) if the payload is empty */
} eddy_ws_msg_t;

/** Incremental parser of one connection's client frames. The caller appends bytes
 *  at buf + len (at most cap - len) and calls eddy_ws_reader_next until it answers
 *  0. Memory is bounded: cap = max_message + 14, plus one message being assembled. */
typedef struct eddy_ws_reader_s {
    uint8_t *buf;       /**< received, not yet parsed bytes */
    size_t len;         /**< bytes in buf */
    size_t cap;         /**< buf's size */
    size_t pos;         /**< parsed bytes at buf's start (dropped at the next call) */
    uint8_t *msg;       /**< fragments of the data message being assembled */
    size_t msg_len;     /**< bytes in msg */
    int msg_opcode;     /**< TEXT or BINARY while a fragmented message is open, else 0 */
    size_t max_message; /**< longest message (and frame payload) accepted */
    int close_code;     /**< after an error: the code to close with */
    const char *error;  /**< after an error: why, for the close reason and the log */
} eddy_ws_reader_t;

/** Sets up a reader for messages up to max_message bytes. Returns false if memory
 *  runs out. */
bool eddy_ws_reader_init(eddy_ws_reader_t *r, size_t max_message);

/** Frees the reader's buffers. */
void eddy_ws_reader_free(eddy_ws_reader_t *r);

/** Finds the next message or control frame in the buffered bytes: 1 with *out
 *  filled, 0 if more bytes are needed, -1 on a protocol error (r->close_code and
 *  r->error say which; the connection must be closed, the reader not used again).
 *  Errors: unmasked frame, reserved bits, unknown opcode, fragmented or long
 *  (> 125) control frame, continuation without a start, a data frame inside a
 *  fragmented message, malformed close payload (1002); a text message or close
 *  reason that is not UTF-8 (1007); a message over max_message (1009). */
int eddy_ws_reader_next(eddy_ws_reader_t *r, eddy_ws_msg_t *out);

#endif /* EDDY_WS_FRAME_H */
