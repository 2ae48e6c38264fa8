/*
 * test_ws.c — the WebSocket endpoint (query/ws.h, query/ws_frame.h): SHA-1 and the
 * accept key against RFC 3174 / RFC 6455 vectors, UTF-8 validation, the frame
 * parser on byte arrays, and then a real server (eddy_http + eddy_ws with a fake
 * source, no broker) over raw TCP sockets: the handshake and its refusals, the
 * Origin check, the close code of every kind of bad frame, ping/pong, close
 * echo, idle timeout, subscriptions (snapshot, update only on change, errors
 * without closing, unsubscribe, the view kind), a slow client that is dropped,
 * and shutdown with clients connected.
 */
#define _GNU_SOURCE
#include "test_support.h"

#include "http_client.h"
#include "query/http.h"
#include "query/ws.h"
#include "query/ws_frame.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOST "127.0.0.1"

/* --- SHA-1, accept key, UTF-8 ------------------------------------------------------- */

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void assert_sha1(const void *data, size_t len, const char *want)
{
    uint8_t d[20];
    char h[41];
    eddy_ws_sha1(data, len, d);
    hex(d, 20, h);
    assert_string_equal(h, want);
}

static void test_sha1_vectors(void **state)
{
    /* RFC 3174 section 7.3, plus the empty string and the block-boundary lengths. */
    assert_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *t2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha1(t2, strlen(t2), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    assert_sha1(a, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
    char t4[641];
    for (int i = 0; i < 10; i++)
        memcpy(t4 + 64 * i, "0123456701234567012345670123456701234567012345670123456701234567", 64);
    assert_sha1(t4, 640, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
    assert_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* 55 and 56 bytes: the length fits in the last block, or needs one more
     * (digests from Python's hashlib). */
    char x[64];
    memset(x, 'x', sizeof(x));
    assert_sha1(x, 55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1");
    assert_sha1(x, 56, "901305367c259952f4e7af8323f480d59f81335b");
}

static void test_accept_key(void **state)
{
    char out[29];
    /* RFC 6455 section 1.3. */
    eddy_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Another key (digest checked with Python's hashlib). */
    eddy_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"h\xc3\xa9llo", true},                 /* é */
        {"\xe2\x82\xac", true},                 /* € */
        {"\xf0\x9f\x98\x80", true},             /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},             /* U+10FFFF */
        {"\xc3", false},                        /* truncated */
        {"\x80", false},                        /* lone continuation */
        {"\xc0\xaf", false},                    /* overlong '/' */
        {"\xe0\x80\xaf", false},                /* overlong, 3 bytes */
        {"\xed\xa0\x80", false},                /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", false},            /* above U+10FFFF */
        {"\xf8\x88\x80\x80\x80", false},        /* 5-byte form */
        {"\xce\xba\xe1\xbd\xb9\xcf\x83", true}, /* Autobahn's "κόσ" */
        {"\xce\xba\xe1\xbd\xb9\xcf", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = eddy_ws_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok)
            fail_msg("case %zu: expected %d", i, cases[i].ok);
    }
}

static void test_frame_header(void **state)
{
    uint8_t h[10];
    assert_int_equal(eddy_ws_frame_header(h, EDDY_WS_OP_TEXT, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(eddy_ws_frame_header(h, EDDY_WS_OP_BINARY, 256), 4);
    assert_memory_equal(h, "\x82\x7e\x01\x00", 4);
    assert_int_equal(eddy_ws_frame_header(h, EDDY_WS_OP_TEXT, 65536), 10);
    assert_memory_equal(h, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

/* --- the frame parser on byte arrays --------------------------------------------------- */

/* Appends one client frame (masked unless `unmasked`) to buf. */
static size_t frame(uint8_t *buf, uint8_t first, bool unmasked, const void *payload, size_t len)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t o = 0;
    buf[o++] = first;
    uint8_t m = unmasked ? 0 : 0x80;
    if (len < 126) {
        buf[o++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        buf[o++] = m | 126;
        buf[o++] = (uint8_t)(len >> 8);
        buf[o++] = (uint8_t)len;
    } else {
        buf[o++] = m | 127;
        for (int i = 7; i >= 0; i--)
            buf[o++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (!unmasked) {
        memcpy(buf + o, mask, 4);
        o += 4;
    }
    for (size_t i = 0; i < len; i++)
        buf[o + i] = ((const uint8_t *)payload)[i] ^ (unmasked ? 0 : mask[i & 3]);
    return o + len;
}

/* Feeds bytes to a fresh reader; returns the result of the last next() and the
 * messages found before it. */
typedef struct parsed_s {
    int rc;        /* last eddy_ws_reader_next result */
    int n;         /* messages found */
    int opcode[8]; /* their opcodes */
    char data[8][256];
    int close_code; /* reader's on error, or the last close message's */
} parsed_t;

static parsed_t parse(const uint8_t *bytes, size_t len, size_t max_message, size_t chunk)
{
    parsed_t p = {0};
    eddy_ws_reader_t r;
    assert_true(eddy_ws_reader_init(&r, max_message));
    size_t off = 0;
    for (;;) {
        eddy_ws_msg_t m;
        p.rc = eddy_ws_reader_next(&r, &m);
        if (p.rc < 0) {
            p.close_code = r.close_code;
            break;
        }
        if (p.rc == 1) {
            assert_true(p.n < 8);
            p.opcode[p.n] = m.opcode;
            snprintf(p.data[p.n], sizeof(p.data[0]), "%.*s", (int)m.len, (const char *)m.data);
            if (m.opcode == EDDY_WS_OP_CLOSE)
                p.close_code = m.close_code;
            p.n++;
            continue;
        }
        if (off == len)
            break;
        size_t n = len - off < chunk ? len - off : chunk;
        if (n > r.cap - r.len)
            n = r.cap - r.len;
        memcpy(r.buf + r.len, bytes + off, n);
        r.len += n;
        off += n;
    }
    eddy_ws_reader_free(&r);
    return p;
}

static void test_parser_messages(void **state)
{
    /* RFC 6455 section 5.7: a masked "Hello". */
    const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    parsed_t p = parse(hello, sizeof(hello), 1024, 1);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.opcode[0], EDDY_WS_OP_TEXT);
    assert_string_equal(p.data[0], "Hello");

    /* Fragmented "Hel" + ping + "lo", then a close with a code: byte by byte and whole. */
    uint8_t b[512];
    size_t n = frame(b, 0x01, false, "Hel", 3);
    n += frame(b + n, 0x89, false, "p!", 2);
    n += frame(b + n, 0x80, false, "lo", 2);
    n += frame(b + n, 0x88, false,
               "\x03\xe8"
               "bye",
               5);
    for (size_t chunk = 1; chunk <= n; chunk = chunk * 3 + 1) {
        p = parse(b, n, 1024, chunk);
        assert_int_equal(p.rc, 0);
        assert_int_equal(p.n, 3);
        assert_int_equal(p.opcode[0], EDDY_WS_OP_PING);
        assert_string_equal(p.data[0], "p!");
        assert_int_equal(p.opcode[1], EDDY_WS_OP_TEXT);
        assert_string_equal(p.data[1], "Hello");
        assert_int_equal(p.opcode[2], EDDY_WS_OP_CLOSE);
        assert_int_equal(p.close_code, 1000);
    }

    /* 16- and 64-bit lengths; an empty close has code 1005. */
    char big[300];
    memset(big, 'z', sizeof(big));
    n = frame(b, 0x82, false, big, 300);
    p = parse(b, n, 1024, 7);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.opcode[0], EDDY_WS_OP_BINARY);
    uint8_t *huge = malloc(70000 + 14);
    char *payload = calloc(1, 70000);
    memset(payload, 'q', 70000);
    n = frame(huge, 0x81, false, payload, 70000);
    assert_int_equal(huge[1] & 0x7f, 127);
    p = parse(huge, n, 70000, 4096);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.n, 1);
    p = parse(huge, n, 69999, 4096); /* one byte over the cap: refused at the header */
    assert_int_equal(p.rc, -1);
    assert_int_equal(p.close_code, 1009);
    free(huge);
    free(payload);
    n = frame(b, 0x88, false, "", 0);
    p = parse(b, n, 1024, 100);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.close_code, 1005);
}

static void assert_parse_error(const uint8_t *b, size_t n, size_t max, int code)
{
    parsed_t p = parse(b, n, max, n);
    assert_int_equal(p.rc, -1);
    assert_int_equal(p.close_code, code);
}

static void test_parser_errors(void **state)
{
    uint8_t b[512];
    size_t n;
    n = frame(b, 0x81, true, "hi", 2); /* unmasked */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0xC1, false, "hi", 2); /* RSV1 */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x83, false, "hi", 2); /* opcode 3 */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x8B, false, "hi", 2); /* opcode 0xB */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x09, false, "hi", 2); /* ping with FIN=0 */
    assert_parse_error(b, n, 1024, 1002);
    char p126[126];
    memset(p126, 'p', sizeof(p126));
    n = frame(b, 0x89, false, p126, 126); /* control payload > 125 */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x80, false, "x", 1); /* continuation without a start */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x01, false, "a", 1);
    n += frame(b + n, 0x81, false, "b", 1); /* a new message inside a fragmented one */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x81, false, "\xc0\xaf", 2); /* not UTF-8 */
    assert_parse_error(b, n, 1024, 1007);
    n = frame(b, 0x01, false, "\xe2\x82", 2); /* UTF-8 split across fragments is fine */
    n += frame(b + n, 0x80, false, "\xac", 1);
    parsed_t p = parse(b, n, 1024, n);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.data[0], "\xe2\x82\xac");
    n = frame(b, 0x01, false, "12345", 5); /* fragments adding up past the cap */
    n += frame(b + n, 0x80, false, "678", 3);
    assert_parse_error(b, n, 7, 1009);
    n = frame(b, 0x88, false, "\x03", 1); /* close payload of one byte */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x88, false, "\x03\xed", 2); /* close code 1005 is never sent */
    assert_parse_error(b, n, 1024, 1002);
    n = frame(b, 0x88, false, "\x03\xe8\xc0\xaf", 4); /* close reason not UTF-8 */
    assert_parse_error(b, n, 1024, 1007);
}

/* --- a server with a fake source ---------------------------------------------------------- */

static atomic_int g_value;       /* what source "counter" answers */
static atomic_int g_big_calls;   /* calls of source "big" */
static atomic_size_t g_big_size; /* bytes source "big" answers */

static json_t *fake_source(void *opaque, const char *name, json_t *params, char *err, size_t errsz)
{
    if (!strcmp(name, "counter")) {
        json_t *key = json_object_get(params, "key");
        return json_pack("{s:i,s:O}", "value", atomic_load(&g_value), "key",
                         key ? key : json_null());
    }
    if (!strcmp(name, "big")) {
        size_t n = atomic_load(&g_big_size);
        char *s = malloc(n + 1);
        memset(s, 'b', n);
        s[n] = '\0';
        json_t *j = json_pack("{s:i,s:s}", "call", atomic_fetch_add(&g_big_calls, 1), "blob", s);
        free(s);
        return j;
    }
    snprintf(err, errsz, "no store named '%s'", name);
    return NULL;
}

static json_t *view_source(void *opaque, const char *name, json_t *params, char *err, size_t errsz)
{
    return json_pack("{s:s}", "view", name);
}

typedef struct server_s {
    eddy_http_t *http;
    eddy_ws_t *ws;
    int port;
} server_t;

static server_t server_start(eddy_ws_config_t wcfg)
{
    server_t s = {0};
    char err[256];
    s.http = eddy_http_new(&(eddy_http_config_t){.listen = HOST ":0"}, err, sizeof(err));
    assert_non_null(s.http);
    s.ws = eddy_ws_new(&wcfg, err, sizeof(err));
    assert_non_null(s.ws);
    assert_int_equal(eddy_ws_source(s.ws, NULL, fake_source, NULL), EDDY_OK);
    assert_int_equal(eddy_ws_source(s.ws, "view", view_source, NULL), EDDY_OK);
    assert_int_equal(eddy_ws_source(s.ws, "view", view_source, NULL), EDDY_ERR_INVALID);
    assert_int_equal(eddy_http_route(s.http, "GET", "/ws", eddy_ws_handle, s.ws), EDDY_OK);
    assert_int_equal(eddy_http_start(s.http, err, sizeof(err)), EDDY_OK);
    s.port = eddy_http_port(s.http);
    return s;
}

static void server_stop(server_t *s)
{
    eddy_ws_stop(s->ws);
    eddy_http_destroy(s->http);
    eddy_ws_destroy(s->ws);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Sends a handshake with `extra` header lines (may be NULL) and reads the answer. */
static int handshake(eddy_test_http_conn_t *conn, const char *extra, eddy_test_http_resp_t *r)
{
    char hdrs[1024];
    snprintf(hdrs, sizeof(hdrs),
             "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n%s",
             extra ? extra : "");
    if (eddy_test_http_request(conn, "GET", "/ws", hdrs, NULL, 0, r))
        return -1;
    return r->status;
}

static eddy_test_http_conn_t *ws_connect(server_t *s)
{
    eddy_test_http_conn_t *conn = eddy_test_http_connect(HOST, s->port);
    assert_non_null(conn);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(handshake(conn, NULL, &r), 101);
    assert_string_equal(eddy_test_http_header(&r, "Sec-WebSocket-Accept"),
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    eddy_test_http_resp_free(&r);
    return conn;
}

static void ws_send(eddy_test_http_conn_t *conn, uint8_t first, bool unmasked, const void *data,
                    size_t len)
{
    uint8_t *b = malloc(len + 14);
    size_t n = frame(b, first, unmasked, data, len);
    assert_int_equal(eddy_test_http_send(conn, b, n), 0);
    free(b);
}

static void ws_send_text(eddy_test_http_conn_t *conn, const char *text)
{
    ws_send(conn, 0x81, false, text, strlen(text));
}

static int recv_all(eddy_test_http_conn_t *conn, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = eddy_test_http_recv(conn, (char *)buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Reads one server frame: returns its opcode (-1 on EOF or timeout); the payload
 * is malloc'ed, NUL-terminated, into *data. */
static int ws_recv(eddy_test_http_conn_t *conn, char **data, size_t *len)
{
    uint8_t h[10];
    *data = NULL;
    if (recv_all(conn, h, 2))
        return -1;
    assert_int_equal(h[1] & 0x80, 0); /* servers never mask */
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        if (recv_all(conn, h + 2, 2))
            return -1;
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        if (recv_all(conn, h + 2, 8))
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[2 + i];
    }
    *data = malloc(n + 1);
    if (recv_all(conn, *data, n)) {
        free(*data);
        *data = NULL;
        return -1;
    }
    (*data)[n] = '\0';
    if (len)
        *len = n;
    return h[0] & 0x0f;
}

/* Reads frames up to the next text message and parses it (pings are skipped). */
static json_t *ws_recv_json(eddy_test_http_conn_t *conn)
{
    for (;;) {
        char *d;
        int op = ws_recv(conn, &d, NULL);
        if (op == EDDY_WS_OP_PING) {
            free(d);
            continue;
        }
        if (op != EDDY_WS_OP_TEXT)
            fail_msg("expected a text message, got opcode %d (%s)", op, d ? d : "");
        json_error_t e;
        json_t *j = json_loads(d, 0, &e);
        if (!j)
            fail_msg("not JSON: %s", d);
        free(d);
        return j;
    }
}

/* Reads frames until a close frame; returns its code (or -1) and checks that the
 * server then closes the TCP connection. */
static int ws_expect_close(eddy_test_http_conn_t *conn)
{
    for (;;) {
        char *d;
        size_t n;
        int op = ws_recv(conn, &d, &n);
        if (op < 0)
            return -1;
        if (op == EDDY_WS_OP_CLOSE) {
            int code = n >= 2 ? ((uint8_t)d[0] << 8 | (uint8_t)d[1]) : 1005;
            free(d);
            assert_true(eddy_test_http_peer_closed(conn, 3000));
            return code;
        }
        free(d);
    }
}

static void wait_stat(server_t *s, size_t field_offset, uint64_t want)
{
    for (int i = 0; i < 1500; i++) { /* 15 s: sanitizers on a busy machine */
        eddy_ws_stats_t st;
        eddy_ws_stats(s->ws, &st);
        if (*(uint64_t *)((char *)&st + field_offset) == want)
            return;
        usleep(10 * 1000);
    }
    fail_msg("counter at offset %zu never reached %llu", field_offset, (unsigned long long)want);
}

/* --- handshake and Origin ---------------------------------------------------------------- */

static void test_handshake(void **state)
{
    server_t s = server_start((eddy_ws_config_t){.allowed_origins = "https://dash.example.com"});
    eddy_test_http_resp_t r = {0};
    eddy_test_http_conn_t *conn;

    /* Not an upgrade: 426 with the JSON error shape. */
    assert_int_equal(eddy_test_http(HOST, s.port, "GET", "/ws", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 426);
    assert_non_null(strstr(r.body, "\"status\":426"));
    static const struct {
        const char *headers;
        int status;
    } bad[] = {
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
         "Sec-WebSocket-Key: " KEY "\r\n",
         426},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: short\r\n",
         400},
        {"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n", 426},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(eddy_test_http(HOST, s.port, "GET", "/ws", bad[i].headers, NULL, 0, &r),
                         0);
        assert_int_equal(r.status, bad[i].status);
    }
    assert_string_equal(eddy_test_http_header(&r, "Upgrade"), "websocket");

    /* Origin: the listener's own, the allow list, anything else 403. */
    char own[128];
    static const struct {
        const char *origin;
        int status;
    } origins[] = {
        {"http://evil.example.com", 403},
        {"https://dash.example.com", 101},
        {"https://dash.example.com:8443", 403},
        {"null", 403},
        {NULL, 101}, /* own host, filled below */
        {"http://127.0.0.1:1", 403},
        {"http://[::1]", 403}, /* another address than the listener's */
    };
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        if (origins[i].origin)
            snprintf(own, sizeof(own), "Origin: %s\r\n", origins[i].origin);
        else
            snprintf(own, sizeof(own), "Origin: http://" HOST ":%d\r\n", s.port);
        conn = eddy_test_http_connect(HOST, s.port);
        assert_int_equal(handshake(conn, own, &r), origins[i].status);
        if (r.status == 403)
            assert_non_null(strstr(r.body, "\"status\":403"));
        eddy_test_http_close(conn);
    }

    /* DNS rebinding: a page on evil.example, its name now resolving to 127.0.0.1,
     * sends Host and Origin of that name. They agree with each other, not with the
     * listener: 403. The same page through "localhost" is the listener's own. */
    static const struct {
        const char *host;
        int status;
    } rebinding[] = {{"evil.example", 403}, {"localhost", 101}};
    for (size_t i = 0; i < sizeof(rebinding) / sizeof(rebinding[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req),
                 "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nOrigin: http://%s:%d\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: " KEY "\r\n\r\n",
                 rebinding[i].host, s.port, rebinding[i].host, s.port);
        conn = eddy_test_http_connect(HOST, s.port);
        assert_int_equal(eddy_test_http_send(conn, req, strlen(req)), 0);
        assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
        assert_int_equal(r.status, rebinding[i].status);
        if (r.status == 403)
            assert_non_null(strstr(r.body, "\"status\":403"));
        eddy_test_http_close(conn);
    }
    eddy_test_http_resp_free(&r);
    /* The ws thread counts a client after its 101 went out: wait for all three. */
    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_total), 3);
    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_open), 0);
    eddy_ws_stats_t st;
    eddy_ws_stats(s.ws, &st);
    assert_int_equal(st.clients_total, 3);
    server_stop(&s);
}

/* The Origin rule itself, for listeners on every kind of address. */
static void test_origin_rule(void **state)
{
    static const struct {
        const char *origin, *allowed, *local;
        int port;
        bool ok;
    } cases[] = {
        {NULL, NULL, "127.0.0.1", 8083, true}, /* not a browser */
        {"http://127.0.0.1:8083", NULL, "127.0.0.1", 8083, true},
        {"HTTP://LOCALHOST:8083", NULL, "127.0.0.1", 8083, true},
        {"http://localhost:8083", NULL, "::1", 8083, true},
        {"http://[::1]:8083", NULL, "::1", 8083, true},
        {"http://[0:0::1]:8083", NULL, "::1", 8083, true},
        {"http://localhost:8083", NULL, "192.168.1.5", 8083, false}, /* not loopback */
        {"http://127.0.0.1:8084", NULL, "127.0.0.1", 8083, false},
        {"http://127.0.0.1", NULL, "127.0.0.1", 80, true},
        {"http://127.0.0.1:80", NULL, "127.0.0.1", 80, true},
        {"https://127.0.0.1:8083", NULL, "127.0.0.1", 8083, false}, /* eddy speaks http */
        {"http://evil.example:8083", NULL, "127.0.0.1", 8083, false},
        {"http://127.0.0.1.evil.example:8083", NULL, "127.0.0.1", 8083, false},
        {"http://127.0.0.1:8083/", NULL, "127.0.0.1", 8083, false}, /* not an origin */
        {"http://127.0.0.1:8083@evil.example", NULL, "127.0.0.1", 8083, false},
        {"http://[127.0.0.1]:8083", NULL, "127.0.0.1", 8083, false},
        {"null", NULL, "127.0.0.1", 8083, false},
        {"", NULL, "127.0.0.1", 8083, false},
        /* A wildcard listener: the address the client reached, as an IP literal. */
        {"http://192.168.1.5:8083", NULL, "192.168.1.5", 8083, true},
        {"http://10.0.0.7:8083", NULL, "192.168.1.5", 8083, false},
        {"http://[::ffff:192.168.1.5]:8083", NULL, "192.168.1.5", 8083, true},
        {"http://myhost.corp:8083", NULL, "192.168.1.5", 8083, false},
        {"http://myhost.corp:8083", "http://myhost.corp:8083", "192.168.1.5", 8083, true},
        /* The allow list: scheme, host and port, defaults filled in. */
        {"https://dash.example.com", " https://dash.example.com:443 ,x://y", "127.0.0.1", 8083,
         true},
        {"https://Dash.Example.com:443", "https://dash.example.com", "127.0.0.1", 8083, true},
        {"http://dash.example.com", "https://dash.example.com", "127.0.0.1", 8083, false},
        {"https://dash.example.com:8443", "https://dash.example.com", "127.0.0.1", 8083, false},
        {"null", "*", "127.0.0.1", 8083, true},
        {"http://evil.example", "https://a.example, *", "127.0.0.1", 8083, true},
        {"http://127.0.0.1:8083", "https://a.example", "", 0, false}, /* local unknown */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (eddy_ws_origin_allowed(cases[i].origin, cases[i].allowed, cases[i].local,
                                   cases[i].port) != cases[i].ok)
            fail_msg("origin '%s' (allowed '%s', local %s:%d): expected %s", cases[i].origin,
                     cases[i].allowed ? cases[i].allowed : "", cases[i].local, cases[i].port,
                     cases[i].ok ? "allowed" : "refused");

    char err[320];
    assert_true(eddy_ws_origins_valid("", err, sizeof(err)));
    assert_true(eddy_ws_origins_valid("*", err, sizeof(err)));
    assert_true(eddy_ws_origins_valid("https://a.example, http://[::1]:8080", err, sizeof(err)));
    assert_false(eddy_ws_origins_valid("https://a.example, dash.example.com", err, sizeof(err)));
    assert_non_null(strstr(err, "'dash.example.com' is not an origin"));
    assert_false(eddy_ws_origins_valid("https://a.example/path", err, sizeof(err)));
    assert_null(
        eddy_ws_new(&(eddy_ws_config_t){.allowed_origins = "localhost:8083"}, err, sizeof(err)));
    assert_non_null(strstr(err, "http.ws.allowed.origins: 'localhost:8083' is not an origin"));

    assert_true(eddy_ws_has_token("keep-alive, Upgrade", "upgrade"));
    assert_true(eddy_ws_has_token(" websocket\t", "WebSocket"));
    assert_false(eddy_ws_has_token("upgrades", "upgrade"));
    assert_false(eddy_ws_has_token("", "upgrade"));
}

/* --- bad frames ------------------------------------------------------------------------- */

static int close_code_after(server_t *s, uint8_t first, bool unmasked, const void *data, size_t len)
{
    eddy_test_http_conn_t *conn = ws_connect(s);
    ws_send(conn, first, unmasked, data, len);
    int code = ws_expect_close(conn);
    eddy_test_http_close(conn);
    return code;
}

static void test_bad_frames(void **state)
{
    server_t s = server_start((eddy_ws_config_t){.max_message = 1024});
    char big[2000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(close_code_after(&s, 0x81, true, "{}", 2), 1002);    /* unmasked */
    assert_int_equal(close_code_after(&s, 0x81, false, big, 1025), 1009); /* oversize */
    assert_int_equal(close_code_after(&s, 0x83, false, "x", 1), 1002);    /* bad opcode */
    assert_int_equal(close_code_after(&s, 0x09, false, "x", 1), 1002);    /* fragmented ping */
    assert_int_equal(close_code_after(&s, 0x89, false, big, 126), 1002);  /* long ping */
    assert_int_equal(close_code_after(&s, 0x81, false, "\xff", 1), 1007); /* not UTF-8 */
    assert_int_equal(close_code_after(&s, 0xA1, false, "{}", 2), 1002);   /* RSV2 */
    assert_int_equal(close_code_after(&s, 0x80, false, "{}", 2), 1002);   /* lone continuation */

    /* Oversize across fragments, each under the cap. */
    eddy_test_http_conn_t *conn = ws_connect(&s);
    ws_send(conn, 0x01, false, big, 600);
    ws_send(conn, 0x80, false, big, 600);
    assert_int_equal(ws_expect_close(conn), 1009);
    eddy_test_http_close(conn);

    /* A frame sent together with the handshake is parsed too. */
    conn = eddy_test_http_connect(HOST, s.port);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n\r\n");
    uint8_t f[16];
    size_t fl = frame(f, 0x8F, false, "", 0); /* opcode 0xF */
    memcpy(req + n, f, fl);
    assert_int_equal(eddy_test_http_send(conn, req, (size_t)n + fl), 0);
    eddy_test_http_resp_t r = {0};
    assert_int_equal(eddy_test_http_read_response(conn, false, &r), 0);
    assert_int_equal(r.status, 101);
    eddy_test_http_resp_free(&r);
    assert_int_equal(ws_expect_close(conn), 1002);
    eddy_test_http_close(conn);

    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_open), 0);
    eddy_ws_stats_t st;
    eddy_ws_stats(s.ws, &st);
    assert_int_equal(st.protocol_errors, 10);
    server_stop(&s);
}

/* --- control frames, idle, shutdown -------------------------------------------------------- */

static void test_ping_close(void **state)
{
    server_t s = server_start((eddy_ws_config_t){.ping_s = 1, .idle_s = 2});
    eddy_test_http_conn_t *conn = ws_connect(&s);
    char *d;
    size_t n;
    /* Our ping is answered with its payload; a fragmented message may hold a ping. */
    ws_send(conn, 0x89, false, "abc", 3);
    assert_int_equal(ws_recv(conn, &d, &n), EDDY_WS_OP_PONG);
    assert_string_equal(d, "abc");
    free(d);
    ws_send(conn, 0x01, false, "{\"subscr", 8);
    ws_send(conn, 0x89, false, "", 0);
    ws_send(conn, 0x80, false, "ibe\":\"counter\"}", 15);
    assert_int_equal(ws_recv(conn, &d, &n), EDDY_WS_OP_PONG);
    free(d);
    json_t *j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    json_decref(j);
    /* The server pings every second. */
    assert_int_equal(ws_recv(conn, &d, &n), EDDY_WS_OP_PING);
    free(d);
    /* Our close is echoed with its code, then the server closes the socket. */
    ws_send(conn, 0x88, false,
            "\x0f\xa0"
            "done",
            6);
    assert_int_equal(ws_expect_close(conn), 4000);
    eddy_test_http_close(conn);

    /* A client that says nothing for idle_s is closed with 1001. */
    conn = ws_connect(&s);
    int64_t t0 = time(NULL);
    assert_int_equal(ws_expect_close(conn), 1001);
    assert_true(time(NULL) - t0 >= 1);
    eddy_test_http_close(conn);

    /* Shutdown closes connected clients with 1001. */
    conn = ws_connect(&s);
    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_open), 1);
    eddy_ws_stop(s.ws);
    assert_int_equal(ws_expect_close(conn), 1001);
    eddy_test_http_close(conn);
    eddy_ws_stats_t st;
    eddy_ws_stats(s.ws, &st);
    assert_int_equal(st.clients_open, 0);
    assert_int_equal(st.protocol_errors, 0);
    /* Stopped: a handshake is refused. */
    eddy_test_http_resp_t r = {0};
    conn = eddy_test_http_connect(HOST, s.port);
    assert_int_equal(handshake(conn, NULL, &r), 503);
    eddy_test_http_resp_free(&r);
    eddy_test_http_close(conn);
    server_stop(&s);
}

/* --- subscriptions ------------------------------------------------------------------------ */

static void test_subscriptions(void **state)
{
    atomic_store(&g_value, 7);
    server_t s = server_start((eddy_ws_config_t){.interval_ms = 50});
    eddy_test_http_conn_t *conn = ws_connect(&s);

    /* Bad requests get an error message; the connection stays open. */
    ws_send_text(conn, "{not json");
    json_t *j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "bad JSON"));
    json_decref(j);
    ws_send_text(conn, "{\"subscribe\":\"nope\"}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "no store named 'nope'");
    json_decref(j);
    ws_send_text(conn, "{\"subscribe\":\"counter\",\"interval_ms\":1}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    ws_send_text(conn, "[1,2]");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    ws_send_text(conn, "{\"unsubscribe\":99}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "no subscription 99");
    json_decref(j);

    /* Snapshot at once, with the parameters handed to the source. */
    ws_send_text(conn, "{\"subscribe\":\"counter\",\"key\":\"k1\"}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    assert_int_equal(json_integer_value(json_object_get(j, "subscription")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "counter");
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "value")), 7);
    assert_string_equal(json_string_value(json_object_get(data, "key")), "k1");
    json_decref(j);

    /* No update while nothing changes; one when it does. */
    char *d;
    eddy_test_http_set_timeout(conn, 300);
    assert_int_equal(ws_recv(conn, &d, NULL), -1);
    eddy_test_http_set_timeout(conn, 5000);
    atomic_store(&g_value, 8);
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "update");
    assert_int_equal(json_integer_value(json_object_get(j, "subscription")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "value")), 8);
    json_decref(j);

    /* The view kind, by prefix. */
    ws_send_text(conn, "{\"subscribe\":\"view:errors\"}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "snapshot");
    assert_int_equal(json_integer_value(json_object_get(j, "subscription")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "view")),
                        "errors");
    json_decref(j);

    /* Unsubscribed: no more updates. */
    ws_send_text(conn, "{\"type\":\"unsubscribe\",\"subscription\":1}");
    j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "unsubscribed");
    json_decref(j);
    atomic_store(&g_value, 9);
    eddy_test_http_set_timeout(conn, 300);
    assert_int_equal(ws_recv(conn, &d, NULL), -1);
    eddy_test_http_close(conn);

    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_open), 0);
    eddy_ws_stats_t st;
    eddy_ws_stats(s.ws, &st);
    assert_int_equal(st.messages_sent, 9); /* 5 errors, 2 snapshots, 1 update, 1 unsubscribed */
    assert_true(st.bytes_sent > 100);
    assert_int_equal(st.drops, 0);
    server_stop(&s);
}

/* --- slow clients ------------------------------------------------------------------------- */

static void test_slow_client(void **state)
{
    atomic_store(&g_big_size, 200000);
    server_t s = server_start((eddy_ws_config_t){.interval_ms = 50, .max_queue = 256 << 10});
    eddy_test_http_conn_t *conn = ws_connect(&s);
    int small = 4096;
    setsockopt(eddy_test_http_fd(conn), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ws_send_text(conn, "{\"subscribe\":\"big\"}");
    /* Never read: every 50 ms 200 kB more, until the kernel's buffers and then
     * the 256 KiB queue are full. */
    wait_stat(&s, offsetof(eddy_ws_stats_t, drops), 1);
    wait_stat(&s, offsetof(eddy_ws_stats_t, clients_open), 0);
    eddy_test_http_close(conn);

    /* An answer larger than the whole queue is an error, not a drop. */
    atomic_store(&g_big_size, 300000);
    conn = ws_connect(&s);
    ws_send_text(conn, "{\"subscribe\":\"big\"}");
    json_t *j = ws_recv_json(conn);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "send queue"));
    json_decref(j);
    eddy_test_http_close(conn);
    eddy_ws_stats_t st;
    eddy_ws_stats(s.ws, &st);
    assert_int_equal(st.drops, 1);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_parser_messages),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_origin_rule),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_ping_close),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_slow_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
