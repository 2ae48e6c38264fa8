/*
 * codec.h — the byte-level pieces of eddy's serialized states (sketches, HLLs,
 * aggregate states): a writer that can also just measure (buf NULL), a reader
 * that turns every overrun or malformed value into one sticky `bad` flag, LEB128
 * varints (minimal encodings only) and little-endian doubles. Header-only.
 */
#ifndef EDDY_CODEC_H
#define EDDY_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct eddy_writer_s {
    uint8_t *buf; /* output; NULL to only measure */
    size_t cap;   /* bytes available at buf */
    size_t len;   /* bytes produced so far, possibly more than cap */
} eddy_writer_t;

static inline void eddy_put_byte(eddy_writer_t *w, uint8_t b)
{
    if (w->len < w->cap)
        w->buf[w->len] = b;
    w->len++;
}

static inline void eddy_put_varint(eddy_writer_t *w, uint64_t v)
{
    while (v >= 0x80) {
        eddy_put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    eddy_put_byte(w, (uint8_t)v);
}

static inline void eddy_put_f64(eddy_writer_t *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    for (int i = 0; i < 8; i++)
        eddy_put_byte(w, (uint8_t)(u >> (8 * i)));
}

static inline void eddy_put_bytes(eddy_writer_t *w, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        eddy_put_byte(w, ((const uint8_t *)p)[i]);
}

typedef struct eddy_reader_s {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
    bool bad;           /* ran out or met a malformed varint; reads return 0 from then on */
} eddy_reader_t;

static inline uint8_t eddy_get_byte(eddy_reader_t *r)
{
    if (r->bad || r->p == r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

/* A minimal LEB128 varint of at most 64 bits; anything else marks r bad. */
static inline uint64_t eddy_get_varint(eddy_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = eddy_get_byte(r);
        if (r->bad)
            return 0;
        if (shift == 63 && b > 1)
            break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) /* a redundant trailing zero group */
                break;
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static inline double eddy_get_f64(eddy_reader_t *r)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)eddy_get_byte(r) << (8 * i);
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Takes n bytes; NULL (and r bad) if fewer remain. */
static inline const uint8_t *eddy_get_bytes(eddy_reader_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static inline uint64_t eddy_zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t eddy_unzigzag64(uint64_t z)
{
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

#endif /* EDDY_CODEC_H */
