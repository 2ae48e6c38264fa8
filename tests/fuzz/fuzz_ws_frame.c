/*
 * fuzz_ws_frame.c — libFuzzer target: the WebSocket code that reads what clients
 * send (query/ws_frame.c): the frame reader (lengths, masks, control frames,
 * fragments, close payloads, UTF-8) and the handshake's header checks (the
 * Origin rule, the allow list, Connection/Upgrade tokens).
 *
 * Input: the first byte picks the mode. Frames: byte 1 sets max_message (0..255,
 * or 64 KiB), byte 2 the size of the chunks the bytes arrive in (as from a
 * socket), the rest is the stream. Checked beyond ASan/UBSan: no message longer
 * than max_message, text is UTF-8, control payloads at most 125 bytes, an error
 * has a close code and a reason, and the reader never stalls with a full buffer
 * (its buffer always holds a whole frame or finds an error). Handshake: the rest
 * is split at NULs into origin, allow list and local address; the rule must not
 * depend on the case of the scheme and host. Built like fuzz_decode.
 */
#include "query/ws_frame.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_ws_frame: %s\n", what);
        abort();
    }
}

static void fuzz_frames(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    size_t max_message = data[0] == 255 ? 64 << 10 : data[0];
    size_t chunk = data[1] ? data[1] : 1;
    data += 2;
    size -= 2;
    eddy_ws_reader_t r;
    if (!eddy_ws_reader_init(&r, max_message))
        return;
    size_t off = 0;
    for (;;) {
        size_t room = r.cap - r.len, n = size - off;
        if (n > chunk)
            n = chunk;
        if (n > room)
            n = room;
        memcpy(r.buf + r.len, data + off, n);
        r.len += n;
        off += n;
        eddy_ws_msg_t m;
        int rc;
        while ((rc = eddy_ws_reader_next(&r, &m)) == 1) {
            check(m.len <= max_message, "a message longer than max_message");
            check(m.opcode == EDDY_WS_OP_TEXT || m.opcode == EDDY_WS_OP_BINARY ||
                      m.opcode == EDDY_WS_OP_CLOSE || m.opcode == EDDY_WS_OP_PING ||
                      m.opcode == EDDY_WS_OP_PONG,
                  "an unknown opcode handed out");
            if (m.len)
                check(m.data != NULL, "a payload without data");
            if (m.opcode == EDDY_WS_OP_TEXT)
                check(eddy_ws_utf8_valid(m.data, m.len), "text that is not UTF-8");
            if (m.opcode & 0x08)
                check(m.len <= 125, "a control frame over 125 bytes");
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < m.len; i++)
                sink ^= m.data[i]; /* the payload must be readable (ASan) */
            (void)sink;
        }
        if (rc < 0) {
            check(r.close_code >= 1000 && r.error && r.error[0], "an error without its code");
            break;
        }
        check(r.len < r.cap, "the reader stalled with a full buffer");
        if (off == size)
            break;
    }
    eddy_ws_reader_free(&r);
}

static void fuzz_handshake(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 3);
    memcpy(s, data, size);
    s[size] = s[size + 1] = s[size + 2] = '\0';
    const char *origin = s;
    const char *allowed = origin + strlen(origin) + 1;
    if (allowed > s + size)
        allowed = s + size;
    const char *local = allowed + strlen(allowed) + 1;
    if (local > s + size + 1)
        local = s + size + 1;
    char err[320];
    bool valid = eddy_ws_origins_valid(allowed, err, sizeof(err));
    bool ok = eddy_ws_origin_allowed(origin, valid ? allowed : NULL, local, 8083);
    /* The same origin with its scheme and host upper-cased is the same origin. */
    char *up = strdup(origin);
    for (char *p = up; *p && *p != '/'; p++)
        *p = (char)toupper((unsigned char)*p);
    char *auth = strstr(up, "://");
    for (char *p = auth ? auth + 3 : up + strlen(up); *p && *p != ':' && *p != '/'; p++)
        *p = (char)toupper((unsigned char)*p);
    if (auth && !strchr(origin, '[')) {
        bool ok_up = eddy_ws_origin_allowed(up, valid ? allowed : NULL, local, 8083);
        check(ok == ok_up, "the Origin rule depends on case");
    }
    (void)eddy_ws_has_token(origin, allowed);
    free(up);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000)
        return 0;
    if (data[0] & 1)
        fuzz_handshake(data + 1, size - 1);
    else
        fuzz_frames(data + 1, size - 1);
    return 0;
}
