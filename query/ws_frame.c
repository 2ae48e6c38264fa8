/*
 * ws_frame.c — RFC 6455 framing on byte arrays (see ws_frame.h): SHA-1 and base64
 * for the handshake, its header checks (tokens, the Origin), UTF-8 validation, the client frame
 * parser and message assembler, server frame headers.
 *
 * The reader never trusts a length before checking it against max_message, so a
 * client cannot make it allocate more than cap + max_message bytes. Payloads are
 * unmasked in place.
 */
#include "query/ws_frame.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- SHA-1 (RFC 3174) ------------------------------------------------------------ */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void eddy_ws_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    /* The tail, 0x80, zeros and the bit length fill one or two last blocks. */
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t n = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (n == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

void eddy_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char buf[128 + sizeof(guid)];
    size_t klen = strnlen(key, 128);
    memcpy(buf, key, klen);
    memcpy(buf + klen, guid, sizeof(guid) - 1);
    uint8_t d[21] = {0}; /* 20 bytes of digest, padded to a multiple of 3 */
    eddy_ws_sha1(buf, klen + sizeof(guid) - 1, d);
    for (int i = 0, o = 0; i < 21; i += 3, o += 4) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[o] = b64[v >> 18 & 63];
        out[o + 1] = b64[v >> 12 & 63];
        out[o + 2] = b64[v >> 6 & 63];
        out[o + 3] = b64[v & 63];
    }
    out[27] = '='; /* 20 bytes: the last group holds two */
    out[28] = '\0';
}

/* --- UTF-8 ------------------------------------------------------------------------ */

bool eddy_ws_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* --- handshake headers ---------------------------------------------------------------- */

bool eddy_ws_has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tlen && !strncasecmp(p, token, tlen))
            return true;
        p = end;
    }
    return false;
}

/* An origin (RFC 6454): scheme "://" host [":" port], lower-cased, the scheme's
 * default port filled in (0 for a scheme without one and no port given). */
typedef struct origin_s {
    char scheme[16];
    char host[256]; /* an IPv6 literal without its brackets */
    bool ipv6;      /* host was bracketed */
    int port;
} origin_t;

static bool origin_parse(const char *s, size_t len, origin_t *o)
{
    memset(o, 0, sizeof(*o));
    size_t i = 0;
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == 0 || i >= sizeof(o->scheme) || !isalpha((unsigned char)s[0]) || len - i < 3 ||
        memcmp(s + i, "://", 3))
        return false;
    for (size_t k = 0; k < i; k++)
        o->scheme[k] = (char)tolower((unsigned char)s[k]);
    const char *h = s + i + 3, *end = s + len;
    const char *hend;
    if (h < end && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return false;
        o->ipv6 = true;
        h++;
        hend = close;
    } else {
        hend = h;
        while (hend < end && *hend != ':')
            hend++;
    }
    size_t hlen = (size_t)(hend - h);
    if (hlen == 0 || hlen >= sizeof(o->host))
        return false;
    for (size_t k = 0; k < hlen; k++) {
        unsigned char ch = (unsigned char)h[k];
        /* A reg-name or an IP literal: nothing that could end the authority. */
        if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || (o->ipv6 && ch == ':')))
            return false;
        o->host[k] = (char)tolower(ch);
    }
    const char *p = hend + (o->ipv6 ? 1 : 0);
    if (p < end) {
        if (*p != ':' || end - p < 2 || end - p > 6)
            return false;
        int port = 0;
        for (const char *q = p + 1; q < end; q++) {
            if (*q < '0' || *q > '9')
                return false;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return false;
        o->port = port;
    } else if (!strcmp(o->scheme, "http") || !strcmp(o->scheme, "ws")) {
        o->port = 80;
    } else if (!strcmp(o->scheme, "https") || !strcmp(o->scheme, "wss")) {
        o->port = 443;
    }
    return true;
}

static bool origin_same(const origin_t *a, const origin_t *b)
{
    return !strcmp(a->scheme, b->scheme) && !strcmp(a->host, b->host) && a->port == b->port;
}

/* Calls fn on each item of the comma-separated list until it returns true. */
static bool list_any(const char *list, bool (*fn)(const char *item, size_t len, void *arg),
                     void *arg)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > p && fn(p, (size_t)(e - p), arg))
            return true;
        p = end;
    }
    return false;
}

typedef struct invalid_s {
    char *errstr;
    size_t errstr_size;
} invalid_t;

static bool item_invalid(const char *item, size_t len, void *arg)
{
    invalid_t *iv = arg;
    origin_t o;
    if ((len == 1 && *item == '*') || origin_parse(item, len, &o))
        return false;
    snprintf(iv->errstr, iv->errstr_size,
             "'%.*s' is not an origin (scheme://host[:port], e.g. https://dash.example.com) "
             "nor *",
             (int)(len > 200 ? 200 : len), item);
    return true;
}

bool eddy_ws_origins_valid(const char *allowed, char *errstr, size_t errstr_size)
{
    invalid_t iv = {errstr, errstr_size};
    return !list_any(allowed, item_invalid, &iv);
}

static bool item_matches(const char *item, size_t len, void *arg)
{
    const origin_t *want = arg;
    origin_t o;
    return (len == 1 && *item == '*') || (origin_parse(item, len, &o) && origin_same(&o, want));
}

/* The 16 (IPv6) or 4 (IPv4, also from an IPv4-mapped IPv6) bytes of a numeric
 * address; 0 if it is not one. */
static size_t ip_bytes(const char *text, uint8_t out[16])
{
    if (inet_pton(AF_INET, text, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, text, out) != 1)
        return 0;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(out, mapped, 12)) {
        memmove(out, out + 12, 4);
        return 4;
    }
    return 16;
}

static bool is_loopback(const uint8_t *ip, size_t n)
{
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (n == 4 && ip[0] == 127) || (n == 16 && !memcmp(ip, v6, 16));
}

bool eddy_ws_origin_allowed(const char *origin, const char *allowed, const char *local,
                            int local_port)
{
    if (!origin)
        return true; /* not a browser: nothing to protect against */
    origin_t o;
    if (!origin_parse(origin, strlen(origin), &o)) /* "null", or garbage */
        return allowed && eddy_ws_has_token(allowed, "*");
    if (allowed && list_any(allowed, item_matches, &o))
        return true;
    /* The listener's own origin. */
    uint8_t lip[16], oip[16];
    size_t ln = local ? ip_bytes(local, lip) : 0;
    if (!ln || strcmp(o.scheme, "http") || o.port != local_port)
        return false;
    if (!strcmp(o.host, "localhost"))
        return is_loopback(lip, ln);
    size_t on = ip_bytes(o.host, oip);
    /* An IPv4 literal must be written as one, an IPv6 one in brackets. */
    if (!on || o.ipv6 != (strchr(o.host, ':') != NULL))
        return false;
    return on == ln && !memcmp(oip, lip, on);
}

/* --- frames -------------------------------------------------------------------------- */

size_t eddy_ws_frame_header(uint8_t out[10], int opcode, size_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[9 - i] = (uint8_t)((uint64_t)len >> (8 * i));
    return 10;
}

bool eddy_ws_reader_init(eddy_ws_reader_t *r, size_t max_message)
{
    memset(r, 0, sizeof(*r));
    r->max_message = max_message;
    r->cap = max_message + 14; /* the longest header: 2 + 8 + 4 (mask) */
    r->buf = malloc(r->cap);
    r->msg = malloc(max_message ? max_message : 1);
    if (!r->buf || !r->msg) {
        eddy_ws_reader_free(r);
        return false;
    }
    return true;
}

void eddy_ws_reader_free(eddy_ws_reader_t *r)
{
    free(r->buf);
    free(r->msg);
    r->buf = r->msg = NULL;
}

static int fail(eddy_ws_reader_t *r, int code, const char *why)
{
    r->close_code = code;
    r->error = why;
    return -1;
}

static bool close_code_valid(int code)
{
    /* RFC 6455 7.4: 1004-1006 and 1015 are never sent; 1012-1014 are registered. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Drops the parsed bytes, so that the caller can append at buf + len. */
static int need_more(eddy_ws_reader_t *r)
{
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    return 0;
}

int eddy_ws_reader_next(eddy_ws_reader_t *r, eddy_ws_msg_t *out)
{
    if (r->close_code)
        return -1;
    /* The bytes handed out last time are no longer needed. */
    need_more(r);
    for (;;) {
        const uint8_t *b = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        if (avail < 2)
            return need_more(r);
        const bool fin = b[0] & 0x80;
        const int opcode = b[0] & 0x0F;
        const bool control = opcode & 0x08;
        if (b[0] & 0x70)
            return fail(r, EDDY_WS_CLOSE_PROTOCOL, "reserved bits set");
        if (!(opcode <= EDDY_WS_OP_BINARY ||
              (opcode >= EDDY_WS_OP_CLOSE && opcode <= EDDY_WS_OP_PONG)))
            return fail(r, EDDY_WS_CLOSE_PROTOCOL, "unknown opcode");
        if (!(b[1] & 0x80))
            return fail(r, EDDY_WS_CLOSE_PROTOCOL, "client frame not masked");
        uint64_t plen = b[1] & 0x7F;
        size_t hlen = 2;
        if (control && !fin)
            return fail(r, EDDY_WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (control && plen > 125)
            return fail(r, EDDY_WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
        if (plen == 126) {
            if (avail < 4)
                return need_more(r);
            plen = (uint64_t)b[2] << 8 | b[3];
            hlen = 4;
        } else if (plen == 127) {
            if (avail < 10)
                return need_more(r);
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | b[2 + i];
            hlen = 10;
            if (plen >> 63)
                return fail(r, EDDY_WS_CLOSE_PROTOCOL, "frame length out of range");
        }
        /* Checked before waiting for the payload: a client announcing a huge
         * frame is refused at its header. */
        if (plen > r->max_message)
            return fail(r, EDDY_WS_CLOSE_TOO_BIG, "message too big");
        if (!control) {
            if (opcode == EDDY_WS_OP_CONT && !r->msg_opcode)
                return fail(r, EDDY_WS_CLOSE_PROTOCOL, "continuation frame without a start");
            if (opcode != EDDY_WS_OP_CONT && r->msg_opcode)
                return fail(r, EDDY_WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
            if (r->msg_len + plen > r->max_message)
                return fail(r, EDDY_WS_CLOSE_TOO_BIG, "message too big");
        }
        if (avail < hlen + 4 + plen)
            return need_more(r);
        uint8_t *payload = r->buf + r->pos + hlen + 4;
        const uint8_t *mask = payload - 4;
        for (size_t i = 0; i < plen; i++)
            payload[i] ^= mask[i & 3];
        r->pos += hlen + 4 + plen;

        if (control) {
            *out = (eddy_ws_msg_t){.opcode = opcode, .data = payload, .len = plen};
            if (opcode == EDDY_WS_OP_CLOSE) {
                out->close_code = 1005;
                if (plen == 1)
                    return fail(r, EDDY_WS_CLOSE_PROTOCOL, "close payload of one byte");
                if (plen >= 2) {
                    out->close_code = payload[0] << 8 | payload[1];
                    if (!close_code_valid(out->close_code))
                        return fail(r, EDDY_WS_CLOSE_PROTOCOL, "invalid close code");
                    if (!eddy_ws_utf8_valid(payload + 2, plen - 2))
                        return fail(r, EDDY_WS_CLOSE_BAD_DATA, "close reason not UTF-8");
                }
            }
            return 1;
        }
        if (opcode != EDDY_WS_OP_CONT)
            r->msg_opcode = opcode;
        if (fin && r->msg_len == 0) {
            /* An unfragmented message is handed out from the buffer itself. */
            *out = (eddy_ws_msg_t){.opcode = r->msg_opcode, .data = payload, .len = plen};
        } else {
            memcpy(r->msg + r->msg_len, payload, plen);
            r->msg_len += plen;
            if (!fin)
                continue;
            *out = (eddy_ws_msg_t){.opcode = r->msg_opcode, .data = r->msg, .len = r->msg_len};
            r->msg_len = 0;
        }
        r->msg_opcode = 0;
        if (out->opcode == EDDY_WS_OP_TEXT && !eddy_ws_utf8_valid(out->data, out->len))
            return fail(r, EDDY_WS_CLOSE_BAD_DATA, "text message not UTF-8");
        return 1;
    }
}
