/*
 * hll.c — HyperLogLog (see hll.h), after Heule, Nunkesser and Hall, "HyperLogLog
 * in practice" (2013) for the sparse form and O. Ertl, "New cardinality
 * estimation algorithms for HyperLogLog sketches" (2017) for the estimator.
 *
 * Always holds: regs == NULL (sparse) or sparse == NULL (dense). A sparse entry
 * is index << 6 | rank for the top 25 bits of the hash and the rank of its other
 * 39 bits; the entries are ascending, one per index, at most EDDY_HLL_SPARSE_MAX.
 * A sparse entry maps to exactly the dense register and rank its hash would have
 * set, so turning dense or merging into a dense HLL loses nothing.
 */
#include "topology/hll.h"
#include "topology/hash.h"

#include "topology/codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q         (64 - EDDY_HLL_P)        /* hash bits after the dense index */
#define SPARSE_Q  (64 - EDDY_HLL_SPARSE_P) /* hash bits after the sparse index */
#define SPARSE_M  (1u << EDDY_HLL_SPARSE_P)
#define EXTRA     (EDDY_HLL_SPARSE_P - EDDY_HLL_P) /* sparse index bits beyond the dense ones */
#define MAX_ENTRY ((SPARSE_M - 1) << 6 | (SPARSE_Q + 1))

#define INITIAL_CAP 16                   /* sparse entries of the first allocation */
#define PACKED_SIZE (EDDY_HLL_M / 4 * 3) /* dense registers, 6 bits each */

#define VERSION     1
#define FORM_SPARSE 0
#define FORM_DENSE  1

struct eddy_hll_s {
    uint8_t *regs;    /* dense: EDDY_HLL_M registers, each 0..Q+1; NULL while sparse */
    uint32_t *sparse; /* sparse: n entries, ascending (see above); NULL when dense */
    uint32_t n;       /* sparse entries used */
    uint32_t cap;     /* sparse entries allocated */
};

/* 1 + the number of leading zeros of the `bits` significant (top) bits of w. */
static uint8_t rank_of(uint64_t w, int bits)
{
    return w ? (uint8_t)(__builtin_clzll(w) + 1) : (uint8_t)(bits + 1);
}

static uint32_t sparse_entry(uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> SPARSE_Q);
    return idx << 6 | rank_of(hash << EDDY_HLL_SPARSE_P, SPARSE_Q);
}

static void dense_add(uint8_t *regs, uint64_t hash)
{
    uint32_t i = (uint32_t)(hash >> Q);
    uint8_t r = rank_of(hash << EDDY_HLL_P, Q);
    if (r > regs[i])
        regs[i] = r;
}

/* Sets the dense registers from sparse entries. The EXTRA low bits of a sparse
 * index are the first bits after the dense index: when one of them is set it
 * decides the dense rank, otherwise the rank continues into the sparse rank. */
static void fold_sparse(uint8_t *regs, const uint32_t *entries, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t idx = entries[k] >> 6;
        uint32_t extra = idx & ((1u << EXTRA) - 1);
        uint8_t r = extra ? (uint8_t)(__builtin_clz(extra) - (32 - EXTRA) + 1)
                          : (uint8_t)(EXTRA + (entries[k] & 63));
        if (r > regs[idx >> EXTRA])
            regs[idx >> EXTRA] = r;
    }
}

/* Where the entry for e's index is, or would go, in the sorted sparse list. */
static uint32_t sparse_find(const eddy_hll_t *hll, uint32_t e)
{
    uint32_t key = e >> 6, lo = 0, hi = hll->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (hll->sparse[mid] >> 6 < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static eddy_err_t sparse_reserve(eddy_hll_t *hll, uint32_t need)
{
    if (need <= hll->cap)
        return EDDY_OK;
    uint32_t cap = hll->cap ? hll->cap : INITIAL_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > EDDY_HLL_SPARSE_MAX)
        cap = EDDY_HLL_SPARSE_MAX;
    uint32_t *sparse = realloc(hll->sparse, (size_t)cap * sizeof(*sparse));
    if (!sparse)
        return EDDY_ERR_NOMEM;
    hll->sparse = sparse;
    hll->cap = cap;
    return EDDY_OK;
}

/* Installs dense registers `regs` (already holding the sparse entries' ranks). */
static void become_dense(eddy_hll_t *hll, uint8_t *regs)
{
    free(hll->sparse);
    hll->sparse = NULL;
    hll->n = 0;
    hll->cap = 0;
    hll->regs = regs;
}

static eddy_err_t to_dense(eddy_hll_t *hll)
{
    uint8_t *regs = calloc(EDDY_HLL_M, 1);
    if (!regs)
        return EDDY_ERR_NOMEM;
    fold_sparse(regs, hll->sparse, hll->n);
    become_dense(hll, regs);
    return EDDY_OK;
}

eddy_hll_t *eddy_hll_new(void)
{
    return calloc(1, sizeof(eddy_hll_t));
}

void eddy_hll_destroy(eddy_hll_t *hll)
{
    if (!hll)
        return;
    free(hll->regs);
    free(hll->sparse);
    free(hll);
}

void eddy_hll_reset(eddy_hll_t *hll)
{
    free(hll->regs);
    hll->regs = NULL;
    hll->n = 0;
}

eddy_err_t eddy_hll_add_hash(eddy_hll_t *hll, uint64_t hash)
{
    if (hll->regs) {
        dense_add(hll->regs, hash);
        return EDDY_OK;
    }
    uint32_t e = sparse_entry(hash);
    uint32_t pos = sparse_find(hll, e);
    if (pos < hll->n && hll->sparse[pos] >> 6 == e >> 6) {
        if (e > hll->sparse[pos]) /* same index: the larger entry has the larger rank */
            hll->sparse[pos] = e;
        return EDDY_OK;
    }
    if (hll->n == EDDY_HLL_SPARSE_MAX) {
        eddy_err_t err = to_dense(hll);
        if (err)
            return err;
        dense_add(hll->regs, hash);
        return EDDY_OK;
    }
    eddy_err_t err = sparse_reserve(hll, hll->n + 1);
    if (err)
        return err;
    memmove(hll->sparse + pos + 1, hll->sparse + pos, (hll->n - pos) * sizeof(*hll->sparse));
    hll->sparse[pos] = e;
    hll->n++;
    return EDDY_OK;
}

eddy_err_t eddy_hll_add(eddy_hll_t *hll, const void *data, size_t len)
{
    return eddy_hll_add_hash(hll, eddy_hash64(data, len, EDDY_HLL_SEED));
}

/* Distinct indices in the union of two sparse lists. */
static uint32_t union_count(const eddy_hll_t *a, const eddy_hll_t *b)
{
    uint32_t i = 0, j = 0, u = 0;
    while (i < a->n && j < b->n) {
        uint32_t x = a->sparse[i] >> 6, y = b->sparse[j] >> 6;
        i += x <= y;
        j += y <= x;
        u++;
    }
    return u + (a->n - i) + (b->n - j);
}

eddy_err_t eddy_hll_merge(eddy_hll_t *dst, const eddy_hll_t *src)
{
    if (dst == src)
        return EDDY_OK;
    if (src->regs) {
        if (!dst->regs) {
            eddy_err_t err = to_dense(dst);
            if (err)
                return err;
        }
        for (uint32_t i = 0; i < EDDY_HLL_M; i++)
            if (src->regs[i] > dst->regs[i])
                dst->regs[i] = src->regs[i];
        return EDDY_OK;
    }
    if (src->n == 0)
        return EDDY_OK;
    if (dst->regs) {
        fold_sparse(dst->regs, src->sparse, src->n);
        return EDDY_OK;
    }

    uint32_t u = union_count(dst, src);
    if (u > EDDY_HLL_SPARSE_MAX) {
        uint8_t *regs = calloc(EDDY_HLL_M, 1);
        if (!regs)
            return EDDY_ERR_NOMEM;
        fold_sparse(regs, dst->sparse, dst->n);
        fold_sparse(regs, src->sparse, src->n);
        become_dense(dst, regs);
        return EDDY_OK;
    }
    eddy_err_t err = sparse_reserve(dst, u);
    if (err)
        return err;
    /* Merge from the back, in place: slot k is never one still to be read. */
    int64_t i = (int64_t)dst->n - 1, j = (int64_t)src->n - 1, k = (int64_t)u - 1;
    while (j >= 0) {
        uint32_t b = src->sparse[j];
        uint32_t a = i >= 0 ? dst->sparse[i] : 0;
        if (i >= 0 && a >> 6 > b >> 6) {
            dst->sparse[k--] = a;
            i--;
        } else if (i >= 0 && a >> 6 == b >> 6) {
            dst->sparse[k--] = a > b ? a : b;
            i--;
            j--;
        } else {
            dst->sparse[k--] = b;
            j--;
        }
    }
    dst->n = u;
    return EDDY_OK;
}

/* Ertl's sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1). */
static double sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

/* Ertl's tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3. */
static double tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1.0 - x, prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != prev);
    return z / 3.0;
}

/* Ertl's improved raw estimator over the histogram c[0..Q+1] of register values. */
static double dense_estimate(const uint8_t *regs)
{
    uint32_t c[Q + 2] = {0};
    for (uint32_t i = 0; i < EDDY_HLL_M; i++)
        c[regs[i]]++;
    const double m = EDDY_HLL_M;
    double z = m * tau(1.0 - c[Q + 1] / m);
    for (int k = Q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * sigma(c[0] / m);
    return m * m / (2.0 * M_LN2 * z);
}

uint64_t eddy_hll_estimate(const eddy_hll_t *hll)
{
    double e;
    if (hll->regs)
        e = dense_estimate(hll->regs);
    else /* linear counting over the 2^25 virtual registers of the sparse index */
        e = -(double)SPARSE_M * log1p(-(double)hll->n / SPARSE_M);
    if (!(e < 18446744073709551615.0)) /* every register saturated */
        return UINT64_MAX;
    return (uint64_t)(e + 0.5);
}

bool eddy_hll_is_sparse(const eddy_hll_t *hll)
{
    return hll->regs == NULL;
}

/* --- serialization ------------------------------------------------------------ */

static size_t encode(const eddy_hll_t *hll, uint8_t *buf, size_t cap)
{
    eddy_writer_t w = {buf, cap, 0};
    eddy_put_byte(&w, VERSION);
    if (hll->regs) {
        eddy_put_byte(&w, FORM_DENSE);
        if (w.len + PACKED_SIZE > cap) /* only measuring, or too small */
            return w.len + PACKED_SIZE;
        const uint8_t *r = hll->regs;
        for (uint32_t i = 0; i < EDDY_HLL_M; i += 4) {
            uint32_t v = r[i] | (uint32_t)r[i + 1] << 6 | (uint32_t)r[i + 2] << 12 |
                         (uint32_t)r[i + 3] << 18;
            eddy_put_byte(&w, (uint8_t)v);
            eddy_put_byte(&w, (uint8_t)(v >> 8));
            eddy_put_byte(&w, (uint8_t)(v >> 16));
        }
        return w.len;
    }
    eddy_put_byte(&w, FORM_SPARSE);
    eddy_put_varint(&w, hll->n);
    uint32_t prev = 0;
    for (uint32_t k = 0; k < hll->n; k++) {
        eddy_put_varint(&w, hll->sparse[k] - prev);
        prev = hll->sparse[k];
    }
    return w.len;
}

size_t eddy_hll_serialized_size(const eddy_hll_t *hll)
{
    return encode(hll, NULL, 0);
}

size_t eddy_hll_serialize(const eddy_hll_t *hll, uint8_t *buf, size_t cap)
{
    size_t len = encode(hll, buf, cap);
    return len <= cap ? len : 0;
}

/* Decodes buf into `out`, which starts zeroed; the caller frees it whatever the
 * outcome. */
static eddy_err_t decode(eddy_hll_t *out, const uint8_t *buf, size_t len)
{
    eddy_reader_t r = {buf, buf + len, false};
    uint8_t version = eddy_get_byte(&r);
    uint8_t form = eddy_get_byte(&r);
    if (r.bad || version != VERSION)
        return EDDY_ERR_INVALID;

    if (form == FORM_DENSE) {
        if ((size_t)(r.end - r.p) != PACKED_SIZE)
            return EDDY_ERR_INVALID;
        uint8_t *regs = malloc(EDDY_HLL_M);
        if (!regs)
            return EDDY_ERR_NOMEM;
        out->regs = regs;
        for (uint32_t i = 0; i < EDDY_HLL_M; i += 4, r.p += 3) {
            uint32_t v = r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16;
            for (int k = 0; k < 4; k++) {
                regs[i + k] = (uint8_t)(v >> (6 * k) & 63);
                if (regs[i + k] > Q + 1)
                    return EDDY_ERR_INVALID;
            }
        }
        return EDDY_OK;
    }
    if (form != FORM_SPARSE)
        return EDDY_ERR_INVALID;

    uint64_t n = eddy_get_varint(&r);
    /* Every entry takes a byte at least: refuse before allocating for a lie. */
    if (r.bad || n > EDDY_HLL_SPARSE_MAX || n > (uint64_t)(r.end - r.p))
        return EDDY_ERR_INVALID;
    if (n > 0 && sparse_reserve(out, (uint32_t)n) != EDDY_OK)
        return EDDY_ERR_NOMEM;
    uint64_t prev = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t delta = eddy_get_varint(&r);
        uint64_t e = prev + delta;
        uint64_t rank = e & 63;
        if (r.bad || delta > MAX_ENTRY || e > MAX_ENTRY || rank < 1 || rank > SPARSE_Q + 1)
            return EDDY_ERR_INVALID;
        if (k > 0 && e >> 6 <= prev >> 6) /* indices strictly ascending */
            return EDDY_ERR_INVALID;
        out->sparse[k] = (uint32_t)e;
        prev = e;
    }
    out->n = (uint32_t)n;
    return r.p == r.end ? EDDY_OK : EDDY_ERR_INVALID;
}

static void hll_free_content(eddy_hll_t *hll)
{
    free(hll->regs);
    free(hll->sparse);
}

eddy_err_t eddy_hll_deserialize(eddy_hll_t *hll, const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return EDDY_ERR_INVALID;
    eddy_hll_t tmp = {0};
    eddy_err_t err = decode(&tmp, buf, len);
    if (err) {
        hll_free_content(&tmp);
        return err;
    }
    hll_free_content(hll);
    *hll = tmp;
    return EDDY_OK;
}

eddy_err_t eddy_hll_merge_serialized(eddy_hll_t *dst, const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return EDDY_ERR_INVALID;
    eddy_hll_t tmp = {0};
    eddy_err_t err = decode(&tmp, buf, len);
    if (!err)
        err = eddy_hll_merge(dst, &tmp);
    hll_free_content(&tmp);
    return err;
}
