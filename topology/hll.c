/*
 * hll.c — HyperLogLog (see hll.h). Estimation follows O. Ertl, "New cardinality
 * estimation algorithms for HyperLogLog sketches" (2017), §4 "improved raw
 * estimator", which is unbiased from 0 to 2^64 without empirical tables.
 *
 * Serialized form: u8 version (1), u8 mode; mode 0 (sparse): varint k, then k
 * entries of 3 bytes (14-bit register index << 6 | 6-bit value), indices
 * ascending; mode 1 (dense): the 16,384 register bytes.
 */
#include "topology/hll.h"
#include "topology/hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q           (64 - EDDY_HLL_P) /* hash bits left after the index */
#define VERSION     1
#define MODE_SPARSE 0
#define MODE_DENSE  1

struct eddy_hll_s {
    uint8_t reg[EDDY_HLL_M]; /* register values, 0..Q+1 */
    uint32_t nonzero;        /* registers > 0, to size the sparse form */
};

eddy_hll_t *eddy_hll_new(void)
{
    return calloc(1, sizeof(eddy_hll_t));
}

void eddy_hll_destroy(eddy_hll_t *hll)
{
    free(hll);
}

void eddy_hll_reset(eddy_hll_t *hll)
{
    memset(hll, 0, sizeof(*hll));
}

void eddy_hll_add_hash(eddy_hll_t *hll, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> Q);
    uint64_t rest = hash << EDDY_HLL_P;
    /* Rank of the first 1 bit among the Q remaining bits, Q+1 if all are zero. */
    uint8_t rho = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(Q + 1);
    if (rho > hll->reg[idx]) {
        hll->nonzero += hll->reg[idx] == 0;
        hll->reg[idx] = rho;
    }
}

void eddy_hll_add(eddy_hll_t *hll, const void *data, size_t len)
{
    eddy_hll_add_hash(hll, eddy_hash64(data, len, 0));
}

eddy_err_t eddy_hll_merge(eddy_hll_t *dst, const eddy_hll_t *src)
{
    uint32_t nonzero = 0;
    for (uint32_t i = 0; i < EDDY_HLL_M; i++) {
        if (src->reg[i] > dst->reg[i])
            dst->reg[i] = src->reg[i];
        nonzero += dst->reg[i] != 0;
    }
    dst->nonzero = nonzero;
    return EDDY_OK;
}

static double sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1, z = x, prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

static double tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1 - x, prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (z != prev);
    return z / 3;
}

uint64_t eddy_hll_estimate(const eddy_hll_t *hll)
{
    uint32_t c[Q + 2] = {0};
    for (uint32_t i = 0; i < EDDY_HLL_M; i++)
        c[hll->reg[i]]++;
    const double m = EDDY_HLL_M;
    double z = m * tau(1.0 - c[Q + 1] / m);
    for (int k = Q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * sigma(c[0] / m);
    double alpha_inf = 1.0 / (2.0 * log(2.0));
    return (uint64_t)llround(alpha_inf * m * m / z);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t eddy_hll_serialized_size(const eddy_hll_t *hll)
{
    size_t sparse = 2 + varint_len(hll->nonzero) + 3 * (size_t)hll->nonzero;
    size_t dense = 2 + EDDY_HLL_M;
    return sparse < dense ? sparse : dense;
}

size_t eddy_hll_serialize(const eddy_hll_t *hll, uint8_t *buf, size_t cap)
{
    size_t need = eddy_hll_serialized_size(hll);
    if (cap < need)
        return 0;
    buf[0] = VERSION;
    if (need == 2 + EDDY_HLL_M) {
        buf[1] = MODE_DENSE;
        memcpy(buf + 2, hll->reg, EDDY_HLL_M);
        return need;
    }
    buf[1] = MODE_SPARSE;
    size_t n = 2;
    uint64_t k = hll->nonzero;
    while (k >= 0x80) {
        buf[n++] = (uint8_t)(k | 0x80);
        k >>= 7;
    }
    buf[n++] = (uint8_t)k;
    for (uint32_t i = 0; i < EDDY_HLL_M; i++) {
        if (!hll->reg[i])
            continue;
        uint32_t e = i << 6 | hll->reg[i];
        buf[n++] = (uint8_t)(e >> 16);
        buf[n++] = (uint8_t)(e >> 8);
        buf[n++] = (uint8_t)e;
    }
    return n;
}

eddy_err_t eddy_hll_deserialize(eddy_hll_t *hll, const uint8_t *buf, size_t len)
{
    if (len < 2 || buf[0] != VERSION)
        return EDDY_ERR_INVALID;
    if (buf[1] == MODE_DENSE) {
        if (len != 2 + EDDY_HLL_M)
            return EDDY_ERR_INVALID;
        uint32_t nonzero = 0;
        for (uint32_t i = 0; i < EDDY_HLL_M; i++) {
            if (buf[2 + i] > Q + 1)
                return EDDY_ERR_INVALID;
            nonzero += buf[2 + i] != 0;
        }
        memcpy(hll->reg, buf + 2, EDDY_HLL_M);
        hll->nonzero = nonzero;
        return EDDY_OK;
    }
    if (buf[1] != MODE_SPARSE)
        return EDDY_ERR_INVALID;
    size_t n = 2;
    uint64_t k = 0;
    for (int shift = 0;; shift += 7) {
        if (n >= len || shift > 21)
            return EDDY_ERR_INVALID;
        k |= (uint64_t)(buf[n] & 0x7f) << shift;
        if (!(buf[n++] & 0x80))
            break;
    }
    if (k > EDDY_HLL_M || len - n != 3 * k)
        return EDDY_ERR_INVALID;
    /* Validate fully before touching hll. */
    int64_t prev = -1;
    for (uint64_t j = 0; j < k; j++) {
        const uint8_t *e = buf + n + 3 * j;
        uint32_t v = (uint32_t)e[0] << 16 | (uint32_t)e[1] << 8 | e[2];
        int64_t idx = v >> 6;
        uint8_t r = v & 0x3f;
        if (idx <= prev || idx >= EDDY_HLL_M || r == 0 || r > Q + 1)
            return EDDY_ERR_INVALID;
        prev = idx;
    }
    memset(hll->reg, 0, sizeof(hll->reg));
    for (uint64_t j = 0; j < k; j++) {
        const uint8_t *e = buf + n + 3 * j;
        uint32_t v = (uint32_t)e[0] << 16 | (uint32_t)e[1] << 8 | e[2];
        hll->reg[v >> 6] = v & 0x3f;
    }
    hll->nonzero = (uint32_t)k;
    return EDDY_OK;
}
