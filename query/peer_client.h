/*
 * peer_client.h — the small HTTP/1.1 client one eddy instance uses to ask another
 * for its partial aggregates (query/cluster_query.c). Blocking over plain
 * sockets, one request per connection ("Connection: close"), everything — the
 * connect, the send and the whole response — bounded by one deadline. Any thread;
 * nothing is shared between calls.
 */
#ifndef EDDY_PEER_CLIENT_H
#define EDDY_PEER_CLIENT_H

#include "eddy.h"

#include <stddef.h>

/** Largest response body accepted. */
#define EDDY_PEER_MAX_BODY (64u << 20)

/** GET http://server/target within timeout_ms. server is "HOST:PORT" (numeric
 *  IPv4, "[v6]:PORT", or a name getaddrinfo resolves). On success *status is the
 *  HTTP status and *body (NUL-terminated, *body_len bytes, the caller frees it)
 *  the body; EDDY_ERR_TIMEOUT when the deadline passed, EDDY_ERR_IO when the peer
 *  could not be reached or answered malformed HTTP. */
eddy_err_t eddy_peer_get(const char *server, const char *target, int timeout_ms, int *status,
                         char **body, size_t *body_len, char *errstr, size_t errstr_size);

/** Parses a complete response (everything up to the peer's close) in buf[0..len):
 *  the status line, the headers, then a body framed by Content-Length, chunked
 *  transfer coding, or the close. The body is copied into a new NUL-terminated
 *  buffer the caller frees. EDDY_ERR_IO if the response is malformed or cut
 *  short. Exposed for the unit tests. */
eddy_err_t eddy_peer_parse_response(const char *buf, size_t len, int *status, char **body,
                                    size_t *body_len, char *errstr, size_t errstr_size);

#endif /* EDDY_PEER_CLIENT_H */
