/*
 * window_key.h — the byte layout of a window store key, shared by the state
 * database and anything that must sort or split keys the same way.
 *
 *   [task u32 big-endian][window start i64, sign bit flipped, big-endian][group key]
 *
 * Byte order equals (task, window start, group key) order, negative starts
 * included, so one task's windows are one contiguous run sorted by time and
 * "every window of task t before c" is the key range [t|INT64_MIN, t|c).
 * Pure functions on caller buffers; safe from any thread.
 */
#ifndef EDDY_WINDOW_KEY_H
#define EDDY_WINDOW_KEY_H

#include <stddef.h>
#include <stdint.h>

#define EDDY_WINDOW_KEY_PREFIX 12 /* bytes of task + window start before the group key */

/** Writes v big-endian into p[0..3]. */
static inline void eddy_key_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t eddy_key_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/** Writes v into p[0..7] so that memcmp order is signed numeric order. */
static inline void eddy_key_put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v ^ UINT64_C(0x8000000000000000);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

static inline int64_t eddy_key_get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)(u ^ UINT64_C(0x8000000000000000));
}

/** Writes the 12-byte prefix (task, window start) of a window key into out. */
static inline void eddy_window_key_prefix(uint8_t out[EDDY_WINDOW_KEY_PREFIX], uint32_t task,
                                          int64_t window_start)
{
    eddy_key_put_u32(out, task);
    eddy_key_put_i64(out + 4, window_start);
}

#endif /* EDDY_WINDOW_KEY_H */
