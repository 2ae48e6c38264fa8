/*
 * sketch.c — DDSketch with an exact, bounded bucket map (see sketch.h).
 *
 * What the sketch holds (its logical state): a map key -> count over the
 * non-empty buckets, keys ordered by value (negative buckets below the zero
 * bucket 0 below positive ones), plus count, sum, min, max and a collapsed flag.
 * The map has at most N = EDDY_SKETCH_MAX_BUCKETS keys: when a value opens bucket
 * N + 1, the lowest bucket is folded into the next lowest (which then holds every
 * value at or below it), and a value below the lowest bucket of a sketch that
 * collapsed goes into that lowest bucket.
 *
 * Why that is a function of the multiset M of values: let c(M) be M's exact map
 * with every bucket below its N-th highest key t folded into t. Adding a value v
 * to c(M) gives c(M + v): above t nothing but v's own bucket changes; a v in a
 * new bucket above t makes the (N-1)-th highest key of M the new t, and folding
 * t into it is one fold; a v at or below t lands in t. Merging: c(A) + B and
 * A + B have the same buckets at or above t(A), and t(A + B) >= t(A), so
 * c(c(A) + B) = c(A + B), hence c(c(A) + c(B)) = c(A + B). So the top N - 1
 * buckets of any multiset are exact, the N-th holds the rest, and the collapsed
 * flag is "M has more than N distinct buckets". A state read from version 1 may
 * hold its folded values with fewer than N buckets; the rule "nothing below the
 * lowest bucket of a collapsed sketch" (and, merging, "nothing below the other's
 * lowest") keeps it honest, and is a no-op for the states above.
 *
 * Where the counts live (the physical state, which may depend on the order):
 * per sign a dense array over a window of at most DENSE_MAX keys, where the hot
 * path adds with one compare; buckets outside both windows in one sparse array
 * sorted by key (binary search), so one far value costs 12 bytes, not a window
 * stretched over 35,000 keys. The zero bucket is a counter. A window moves to
 * where the mass is when too many adds of its sign miss it. Bounds: 2 x 1024 x 8
 * + 2049 x 12 bytes of arrays.
 */
#include "topology/sketch.h"

#include <assert.h>
#include "topology/codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ln(gamma) = ln((1 + a) / (1 - a)) = 2 atanh(a) for a = 0.01, to double precision. */
#define LN_GAMMA 0.020000666706669524

/* Bucket indices of EDDY_SKETCH_MIN_VALUE and of DBL_MAX: every finite |v| >=
 * EDDY_SKETCH_MIN_VALUE maps in between. Key of index i: i - INDEX_MIN + 1 for a
 * positive value, its negation for a negative one. */
#define INDEX_MIN (-1036)
#define INDEX_MAX 35488
#define KEY_MAX   (INDEX_MAX - INDEX_MIN + 1)

#define MAX_BUCKETS    EDDY_SKETCH_MAX_BUCKETS
#define DENSE_MAX      1024              /* slots of a sign's dense window */
#define SPARSE_MAX     (MAX_BUCKETS + 1) /* entries: a new bucket, then the fold */
#define INITIAL_CAP    64                /* slots of a dense window's first array */
#define INITIAL_SPARSE 16                /* entries of the sparse array's first allocation */
/* Adds of one sign to the sparse array (and more than half of all adds since)
 * before its window is placed again. */
#define REBALANCE 64

#define VERSION          2
#define FLAG_COLLAPSED   1
#define V1_SPAN          2048 /* version 1: buckets per sign, the span of a collapsed store */
#define V1_NEG_COLLAPSED 1
#define V1_POS_COLLAPSED 2

typedef struct dense_s {
    uint64_t *counts;     /* counts[k] is key offset + k; NULL before the first use */
    int32_t offset;       /* key of counts[0]; the window stays within its sign's keys */
    int32_t cap;          /* slots in counts, at most DENSE_MAX */
    int32_t lo;           /* lowest non-empty key (meaningless while n == 0) */
    int32_t hi;           /* highest non-empty key (meaningless while n == 0) */
    int32_t n;            /* non-empty slots */
    uint64_t sparse_adds; /* adds of this sign that went to the sparse array since the
                             window was last placed */
    uint64_t placed_at;   /* the sketch's count when the window was last placed */
} dense_t;

struct eddy_sketch_s {
    dense_t neg;        /* keys -KEY_MAX..-1 */
    dense_t pos;        /* keys 1..KEY_MAX */
    int32_t *skeys;     /* sparse keys, ascending, none inside a dense window, none 0 */
    uint64_t *scounts;  /* their counts, each >= 1 */
    int32_t n_sparse;   /* entries used */
    int32_t sparse_cap; /* entries allocated, at most SPARSE_MAX */
    uint64_t zero;      /* the zero bucket: values with |v| < MIN_VALUE */
    uint64_t count;     /* values in all buckets */
    double sum;         /* sum of every value added */
    double min;         /* exact smallest value (meaningless while count == 0) */
    double max;         /* exact largest value (meaningless while count == 0) */
    bool collapsed;     /* buckets were folded: the lowest bucket holds them */
};

_Static_assert(sizeof(eddy_sketch_t) + 2 * DENSE_MAX * sizeof(uint64_t) +
                       SPARSE_MAX * (sizeof(int32_t) + sizeof(uint64_t)) <=
                   EDDY_SKETCH_MAX_MEMORY,
               "EDDY_SKETCH_MAX_MEMORY is the bound");

/* The key of a finite v (not -0.0): 0 for |v| < MIN_VALUE. */
static int32_t key_of(double v)
{
    double mag = fabs(v);
    if (mag < EDDY_SKETCH_MIN_VALUE)
        return 0;
    /* The bucket i with mag in (gamma^(i-1), gamma^i]. */
    double i = ceil(log(mag) / LN_GAMMA);
    int32_t k = i < INDEX_MIN ? 1 : i > INDEX_MAX ? KEY_MAX : (int32_t)i - INDEX_MIN + 1;
    return v < 0 ? -k : k;
}

/* The value reported for key k, +-(1 - a) gamma^i = 2 gamma^i / (gamma + 1): within
 * a relative error of a of every magnitude in (gamma^(i-1), gamma^i]. */
static double value_of(int32_t k)
{
    if (k == 0)
        return 0.0;
    int32_t i = (k < 0 ? -k : k) + INDEX_MIN - 1;
    double mag = (1.0 - EDDY_SKETCH_ALPHA) * exp((double)i * LN_GAMMA);
    return k < 0 ? -mag : mag;
}

static int32_t buckets(const eddy_sketch_t *s)
{
    return s->neg.n + s->pos.n + s->n_sparse + (s->zero > 0);
}

/* --- the sparse array ----------------------------------------------------------- */

/* Index of the first entry with a key >= k. */
static int32_t sparse_lower(const eddy_sketch_t *s, int32_t k)
{
    int32_t lo = 0, hi = s->n_sparse;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (s->skeys[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static eddy_err_t sparse_reserve(eddy_sketch_t *s, int32_t n)
{
    assert(n <= SPARSE_MAX);
    if (n <= s->sparse_cap)
        return EDDY_OK;
    int32_t cap = s->sparse_cap ? s->sparse_cap : INITIAL_SPARSE;
    while (cap < n)
        cap *= 2;
    if (cap > SPARSE_MAX)
        cap = SPARSE_MAX;
    int32_t *keys = realloc(s->skeys, (size_t)cap * sizeof(*keys));
    if (!keys)
        return EDDY_ERR_NOMEM;
    s->skeys = keys;
    uint64_t *counts = realloc(s->scounts, (size_t)cap * sizeof(*counts));
    if (!counts)
        return EDDY_ERR_NOMEM; /* skeys grew, which changes nothing */
    s->scounts = counts;
    s->sparse_cap = cap;
    return EDDY_OK;
}

/* Opens n entries at index at (room reserved); the caller fills them. */
static void sparse_open(eddy_sketch_t *s, int32_t at, int32_t n)
{
    assert(s->n_sparse + n <= s->sparse_cap);
    size_t tail = (size_t)(s->n_sparse - at);
    memmove(s->skeys + at + n, s->skeys + at, tail * sizeof(*s->skeys));
    memmove(s->scounts + at + n, s->scounts + at, tail * sizeof(*s->scounts));
    s->n_sparse += n;
}

static void sparse_close(eddy_sketch_t *s, int32_t from, int32_t to)
{
    if (from == to)
        return; /* also while there is no array */
    size_t tail = (size_t)(s->n_sparse - to);
    memmove(s->skeys + from, s->skeys + to, tail * sizeof(*s->skeys));
    memmove(s->scounts + from, s->scounts + to, tail * sizeof(*s->scounts));
    s->n_sparse -= to - from;
}

/* --- dense windows -------------------------------------------------------------- */

static dense_t *dense_for(eddy_sketch_t *s, int32_t k)
{
    assert(k != 0);
    return k < 0 ? &s->neg : &s->pos;
}

/* The window's offset clamped so that cap slots stay within its sign's keys. */
static int32_t clamp_offset(const eddy_sketch_t *s, const dense_t *d, int32_t offset)
{
    int32_t min = d == &s->pos ? 1 : -KEY_MAX, max = d == &s->pos ? KEY_MAX - d->cap + 1 : -d->cap;
    return offset < min ? min : offset > max ? max : offset;
}

/* Makes the array at least `width` slots long, leaving every count where it is. */
static eddy_err_t dense_reserve(dense_t *d, int32_t width)
{
    assert(width >= 1 && width <= DENSE_MAX);
    if (width <= d->cap)
        return EDDY_OK;
    int32_t cap = d->cap ? d->cap : INITIAL_CAP;
    while (cap < width)
        cap *= 2;
    if (cap > DENSE_MAX)
        cap = DENSE_MAX;
    uint64_t *counts = realloc(d->counts, (size_t)cap * sizeof(*counts));
    if (!counts)
        return EDDY_ERR_NOMEM;
    memset(counts + d->cap, 0, (size_t)(cap - d->cap) * sizeof(*counts));
    d->counts = counts;
    d->cap = cap;
    return EDDY_OK;
}

static void dense_note(dense_t *d, int32_t k)
{
    if (d->n == 0 || k < d->lo)
        d->lo = k;
    if (d->n == 0 || k > d->hi)
        d->hi = k;
    d->n++;
}

/* Moves the window (room reserved) so that it covers [lo, hi] (its content
 * included), then takes in the sparse entries that fall inside it. */
static void dense_place(eddy_sketch_t *s, dense_t *d, int32_t lo, int32_t hi)
{
    if (d->n > 0) {
        lo = d->lo < lo ? d->lo : lo;
        hi = d->hi > hi ? d->hi : hi;
    }
    assert(hi - lo + 1 <= d->cap);
    if (lo < d->offset || hi >= d->offset + d->cap) {
        /* Slack on both sides: ranges tend to grow on either end. */
        int32_t offset = clamp_offset(s, d, lo - (d->cap - (hi - lo + 1)) / 2);
        if (d->n > 0) {
            size_t from = (size_t)(d->lo - d->offset), to = (size_t)(d->lo - offset);
            size_t n = (size_t)(d->hi - d->lo + 1);
            memmove(d->counts + to, d->counts + from, n * sizeof(*d->counts));
            memset(d->counts, 0, to * sizeof(*d->counts));
            memset(d->counts + to + n, 0, ((size_t)d->cap - to - n) * sizeof(*d->counts));
        }
        d->offset = offset;
    }
    int32_t from = sparse_lower(s, d->offset), to = sparse_lower(s, d->offset + d->cap);
    for (int32_t j = from; j < to; j++) {
        d->counts[s->skeys[j] - d->offset] = s->scounts[j];
        dense_note(d, s->skeys[j]);
    }
    sparse_close(s, from, to);
}

/* Empties a window into the sparse array (room reserved), keeping the array. */
static void dense_spill(eddy_sketch_t *s, dense_t *d)
{
    if (d->n == 0)
        return;
    int32_t at = sparse_lower(s, d->lo), j = at;
    sparse_open(s, at, d->n);
    for (int32_t k = d->lo; k <= d->hi; k++) {
        uint64_t *c = &d->counts[k - d->offset];
        if (*c) {
            s->skeys[j] = k;
            s->scounts[j++] = *c;
            *c = 0;
        }
    }
    assert(j == at + d->n);
    d->n = 0;
}

/* Places the window of one sign where it holds the most values: over the
 * DENSE_MAX keys with the largest count. Optional: nothing changes if memory is
 * short. */
static void rebalance(eddy_sketch_t *s, dense_t *d)
{
    d->sparse_adds = 0;
    d->placed_at = s->count;
    if (sparse_reserve(s, s->n_sparse + d->n))
        return;
    dense_spill(s, d);
    /* This sign's entries are [first, last) of the sorted array. */
    int32_t first = d == &s->pos ? sparse_lower(s, 1) : 0;
    int32_t last = d == &s->pos ? s->n_sparse : sparse_lower(s, 0);
    int32_t best_i = first, best_j = first;
    uint64_t best = 0, mass = 0;
    for (int32_t i = first, j = first; i < last; i++) {
        while (j < last && s->skeys[j] - s->skeys[i] < DENSE_MAX)
            mass += s->scounts[j++];
        if (mass > best) {
            best = mass;
            best_i = i;
            best_j = j;
        }
        mass -= s->scounts[i];
    }
    if (best_i == best_j)
        return;
    int32_t lo = s->skeys[best_i], hi = s->skeys[best_j - 1];
    if (dense_reserve(d, hi - lo + 1))
        return; /* everything stays in the sparse array: a valid state */
    d->offset = clamp_offset(s, d, lo - (d->cap - (hi - lo + 1)) / 2);
    dense_place(s, d, lo, hi);
}

/* Rebalances when most adds since the window was placed missed it (an outlier
 * came first, the values moved), not for a few outliers now and then. */
static void maybe_rebalance(eddy_sketch_t *s, dense_t *d)
{
    if (d->sparse_adds >= REBALANCE && d->sparse_adds > (s->count - d->placed_at) / 2)
        rebalance(s, d);
}

/* --- buckets in key order ------------------------------------------------------- */

typedef bool(bucket_fn)(int32_t key, uint64_t count, void *ctx); /* true: stop */

static bool walk_sparse(const eddy_sketch_t *s, int32_t *j, int32_t below, bucket_fn *fn, void *ctx)
{
    for (; *j < s->n_sparse && s->skeys[*j] < below; (*j)++)
        if (fn(s->skeys[*j], s->scounts[*j], ctx))
            return true;
    return false;
}

static bool walk_dense(const dense_t *d, bucket_fn *fn, void *ctx)
{
    for (int32_t k = d->lo; d->n > 0 && k <= d->hi; k++)
        if (d->counts[k - d->offset] && fn(k, d->counts[k - d->offset], ctx))
            return true;
    return false;
}

/* Calls fn for every non-empty bucket, ascending, until it returns true. */
static void walk(const eddy_sketch_t *s, bucket_fn *fn, void *ctx)
{
    int32_t j = 0;
    if (walk_sparse(s, &j, s->neg.n ? s->neg.lo : 0, fn, ctx) || walk_dense(&s->neg, fn, ctx) ||
        walk_sparse(s, &j, 0, fn, ctx) || (s->zero && fn(0, s->zero, ctx)) ||
        walk_sparse(s, &j, s->pos.n ? s->pos.lo : KEY_MAX + 1, fn, ctx) ||
        walk_dense(&s->pos, fn, ctx))
        return;
    walk_sparse(s, &j, KEY_MAX + 1, fn, ctx);
}

/* The lowest bucket's count slot and key; the sketch is not empty. */
static const uint64_t *lowest_slot(const eddy_sketch_t *s, int32_t *key)
{
    const uint64_t *slot = NULL;
    int32_t k = KEY_MAX + 1;
    if (s->n_sparse && s->skeys[0] < k) {
        k = s->skeys[0];
        slot = &s->scounts[0];
    }
    if (s->neg.n && s->neg.lo < k) {
        k = s->neg.lo;
        slot = &s->neg.counts[k - s->neg.offset];
    }
    if (s->zero && 0 < k) {
        k = 0;
        slot = &s->zero;
    }
    if (s->pos.n && s->pos.lo < k) {
        k = s->pos.lo;
        slot = &s->pos.counts[k - s->pos.offset];
    }
    assert(slot);
    *key = k;
    return slot;
}

static uint64_t *lowest(eddy_sketch_t *s, int32_t *key)
{
    return (uint64_t *)lowest_slot(s, key);
}

static int32_t lowest_key(const eddy_sketch_t *s)
{
    int32_t k;
    lowest_slot(s, &k);
    return k;
}

/* The highest bucket's key; the sketch is not empty. */
static int32_t highest_key(const eddy_sketch_t *s)
{
    int32_t k = -KEY_MAX - 1;
    if (s->n_sparse)
        k = s->skeys[s->n_sparse - 1];
    if (s->pos.n && s->pos.hi > k)
        k = s->pos.hi;
    if (s->zero && k < 0)
        k = 0;
    if (s->neg.n && s->neg.hi > k)
        k = s->neg.hi;
    assert(k >= -KEY_MAX);
    return k;
}

/* Folds the lowest bucket into the next lowest; there are at least two. */
static void fold_lowest(eddy_sketch_t *s)
{
    assert(buckets(s) >= 2);
    int32_t k;
    uint64_t *slot = lowest(s, &k), c = *slot;
    if (k == 0) {
        s->zero = 0;
    } else if (s->n_sparse && s->skeys[0] == k) {
        sparse_close(s, 0, 1);
    } else {
        dense_t *d = dense_for(s, k);
        *slot = 0;
        if (--d->n > 0)
            while (!d->counts[d->lo - d->offset])
                d->lo++;
    }
    *lowest(s, &k) += c;
    s->collapsed = true;
}

/* Adds c values to bucket k, keeping at most MAX_BUCKETS buckets (the file's
 * opening comment). May allocate, and then fails with nothing changed; with
 * `merging`, room for a sparse entry more was reserved and the windows stay
 * where they are, so that it cannot fail. */
static eddy_err_t add_count(eddy_sketch_t *s, int32_t k, uint64_t c, bool merging)
{
    int32_t n = buckets(s);
    if (n > 0 && (s->collapsed || n >= MAX_BUCKETS)) {
        int32_t low;
        uint64_t *slot = lowest(s, &low);
        if (k < low) {
            *slot += c;
            s->collapsed = true;
            return EDDY_OK;
        }
    }
    bool opened = false;
    dense_t *d = NULL;
    if (k == 0) {
        opened = s->zero == 0;
        s->zero += c;
    } else {
        d = dense_for(s, k);
        uint32_t u = (uint32_t)(k - d->offset);
        int32_t j;
        if (u < (uint32_t)d->cap) {
            opened = d->counts[u] == 0;
            if (opened)
                dense_note(d, k);
            d->counts[u] += c;
        } else if ((j = sparse_lower(s, k)) < s->n_sparse && s->skeys[j] == k) {
            s->scounts[j] += c;
            d->sparse_adds++;
        } else {
            opened = true;
            int32_t lo = d->n && d->lo < k ? d->lo : k, hi = d->n && d->hi > k ? d->hi : k;
            if (hi - lo + 1 <= DENSE_MAX && dense_reserve(d, hi - lo + 1) == EDDY_OK) {
                dense_place(s, d, k, k);
                d->counts[k - d->offset] += c;
                dense_note(d, k);
            } else {
                if (!merging && sparse_reserve(s, s->n_sparse + 1))
                    return EDDY_ERR_NOMEM;
                j = sparse_lower(s, k);
                sparse_open(s, j, 1);
                s->skeys[j] = k;
                s->scounts[j] = c;
                d->sparse_adds++;
            }
        }
    }
    if (opened && buckets(s) > MAX_BUCKETS)
        fold_lowest(s);
    if (d && !merging)
        maybe_rebalance(s, d);
    return EDDY_OK;
}

/* --- the sketch --------------------------------------------------------------- */

eddy_sketch_t *eddy_sketch_new(void)
{
    return calloc(1, sizeof(eddy_sketch_t));
}

static void free_arrays(eddy_sketch_t *s)
{
    free(s->neg.counts);
    free(s->pos.counts);
    free(s->skeys);
    free(s->scounts);
}

void eddy_sketch_destroy(eddy_sketch_t *sketch)
{
    if (!sketch)
        return;
    free_arrays(sketch);
    free(sketch);
}

static void dense_clear(dense_t *d)
{
    if (d->n > 0)
        memset(d->counts + (d->lo - d->offset), 0,
               (size_t)(d->hi - d->lo + 1) * sizeof(*d->counts));
    d->n = 0;
    d->sparse_adds = 0;
    d->placed_at = 0;
}

void eddy_sketch_reset(eddy_sketch_t *sketch)
{
    dense_clear(&sketch->neg);
    dense_clear(&sketch->pos);
    sketch->n_sparse = 0;
    sketch->zero = 0;
    sketch->count = 0;
    sketch->sum = 0;
    sketch->collapsed = false;
}

static void note_value(eddy_sketch_t *s, double v)
{
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (s->count == 0 || v > s->max)
        s->max = v;
    s->count++;
    s->sum += v;
}

eddy_err_t eddy_sketch_add(eddy_sketch_t *sketch, double v)
{
    if (!isfinite(v))
        return EDDY_ERR_INVALID;
    if (v == 0.0) /* -0.0 too: otherwise min and max would depend on the order of adds */
        v = 0.0;
    int32_t k = key_of(v);
    /* The hot path: a bucket already open in a dense window. */
    dense_t *d = k < 0 ? &sketch->neg : &sketch->pos;
    uint32_t u = (uint32_t)(k - d->offset);
    if (k != 0 && u < (uint32_t)d->cap && d->counts[u]) {
        d->counts[u]++;
    } else if (k == 0 && sketch->zero) {
        sketch->zero++;
    } else {
        eddy_err_t err = add_count(sketch, k, 1, false);
        if (err)
            return err;
    }
    note_value(sketch, v);
    return EDDY_OK;
}

typedef struct merge_ctx_s {
    eddy_sketch_t *dst; /* merged into */
} merge_ctx_t;

static bool merge_bucket(int32_t key, uint64_t count, void *ctx)
{
    eddy_err_t err = add_count(((merge_ctx_t *)ctx)->dst, key, count, true);
    assert(err == EDDY_OK);
    (void)err;
    return false;
}

static void double_counts(eddy_sketch_t *s)
{
    const dense_t *ds[2] = {&s->neg, &s->pos};
    for (int i = 0; i < 2; i++)
        for (int32_t k = ds[i]->lo; ds[i]->n > 0 && k <= ds[i]->hi; k++)
            ds[i]->counts[k - ds[i]->offset] *= 2;
    for (int32_t j = 0; j < s->n_sparse; j++)
        s->scounts[j] *= 2;
    s->zero *= 2;
    s->count *= 2;
    s->sum *= 2;
}

eddy_err_t eddy_sketch_merge(eddy_sketch_t *dst, const eddy_sketch_t *src)
{
    if (src->count == 0)
        return EDDY_OK;
    if (dst == src) { /* the same buckets, twice the values */
        double_counts(dst);
        return EDDY_OK;
    }
    /* Every new bucket may need a sparse entry; reserving them first means
     * nothing below can fail. */
    int32_t need = dst->n_sparse + buckets(src);
    eddy_err_t err = sparse_reserve(dst, need < SPARSE_MAX ? need : SPARSE_MAX);
    if (err)
        return err;
    const int32_t src_low = lowest_key(src);
    walk(src, merge_bucket, &(merge_ctx_t){dst});
    if (src->collapsed) {
        /* What src folded into its lowest bucket may have come from anywhere below. */
        while (buckets(dst) > 1 && lowest_key(dst) < src_low)
            fold_lowest(dst);
        dst->collapsed = true;
    }
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    maybe_rebalance(dst, &dst->neg);
    maybe_rebalance(dst, &dst->pos);
    return EDDY_OK;
}

typedef struct rank_ctx_s {
    uint64_t rank; /* 0-based rank looked for */
    uint64_t seen; /* values in the buckets walked */
    int32_t key;   /* the bucket holding it */
} rank_ctx_t;

static bool find_rank(int32_t key, uint64_t count, void *ctx)
{
    rank_ctx_t *r = ctx;
    r->key = key;
    r->seen += count;
    return r->seen > r->rank;
}

/* The 0-based rank of the q-quantile; false if there is none. */
static bool rank_of(const eddy_sketch_t *s, double q, uint64_t *rank)
{
    if (s->count == 0 || !(q >= 0.0 && q <= 1.0))
        return false;
    uint64_t last = s->count - 1;
    *rank = (uint64_t)floor(q * (double)last);
    if (*rank > last) /* (double)last rounds up above 2^53 */
        *rank = last;
    return true;
}

double eddy_sketch_quantile(const eddy_sketch_t *sketch, double q)
{
    uint64_t rank;
    if (!rank_of(sketch, q, &rank))
        return NAN;
    if (rank == 0)
        return sketch->min;
    if (rank == sketch->count - 1)
        return sketch->max;
    rank_ctx_t r = {.rank = rank};
    walk(sketch, find_rank, &r);
    double v = value_of(r.key);
    /* Only ever moves the estimate closer to the true value, and keeps a bucket
     * at the edge of the double range from reporting infinity. */
    if (v < sketch->min)
        v = sketch->min;
    if (v > sketch->max)
        v = sketch->max;
    return v;
}

bool eddy_sketch_quantile_degraded(const eddy_sketch_t *sketch, double q)
{
    uint64_t rank;
    if (!sketch->collapsed || !rank_of(sketch, q, &rank) || rank == 0 || rank == sketch->count - 1)
        return false;
    int32_t key;
    return rank < *lowest_slot(sketch, &key);
}

uint64_t eddy_sketch_count(const eddy_sketch_t *sketch)
{
    return sketch->count;
}

double eddy_sketch_sum(const eddy_sketch_t *sketch)
{
    return sketch->sum;
}

double eddy_sketch_min(const eddy_sketch_t *sketch)
{
    return sketch->count ? sketch->min : NAN;
}

double eddy_sketch_max(const eddy_sketch_t *sketch)
{
    return sketch->count ? sketch->max : NAN;
}

bool eddy_sketch_collapsed(const eddy_sketch_t *sketch)
{
    return sketch->collapsed;
}

size_t eddy_sketch_memory(const eddy_sketch_t *sketch)
{
    return sizeof(*sketch) + (size_t)(sketch->neg.cap + sketch->pos.cap) * sizeof(uint64_t) +
           (size_t)sketch->sparse_cap * (sizeof(int32_t) + sizeof(uint64_t));
}

/* --- serialization ------------------------------------------------------------ */

typedef struct encode_ctx_s {
    eddy_writer_t *w; /* output */
    int32_t prev;     /* key of the bucket written last */
    bool started;     /* a bucket was written */
} encode_ctx_t;

static bool encode_bucket(int32_t key, uint64_t count, void *ctx)
{
    encode_ctx_t *e = ctx;
    if (!e->started)
        eddy_put_varint(e->w, eddy_zigzag64(key));
    else if (key > e->prev + 1) {
        eddy_put_varint(e->w, 0);
        eddy_put_varint(e->w, (uint64_t)(key - e->prev - 2));
    }
    eddy_put_varint(e->w, count);
    e->prev = key;
    e->started = true;
    return false;
}

static size_t encode(const eddy_sketch_t *sketch, uint8_t *buf, size_t cap)
{
    eddy_writer_t w = {buf, cap, 0};
    eddy_put_byte(&w, VERSION);
    eddy_put_byte(&w, sketch->collapsed ? FLAG_COLLAPSED : 0);
    eddy_put_varint(&w, sketch->count);
    if (sketch->count > 0) {
        eddy_put_f64(&w, sketch->sum);
        eddy_put_f64(&w, sketch->min);
        eddy_put_f64(&w, sketch->max);
        eddy_put_varint(&w, (uint64_t)buckets(sketch));
        walk(sketch, encode_bucket, &(encode_ctx_t){.w = &w});
    }
    return w.len;
}

size_t eddy_sketch_serialized_size(const eddy_sketch_t *sketch)
{
    return encode(sketch, NULL, 0);
}

size_t eddy_sketch_serialize(const eddy_sketch_t *sketch, uint8_t *buf, size_t cap)
{
    size_t len = encode(sketch, buf, cap);
    return len <= cap ? len : 0;
}

/* What decoding learns about the buckets, and where it puts them. */
typedef struct decode_ctx_s {
    eddy_sketch_t *out;   /* filled by the second pass */
    uint64_t total;       /* values in the buckets */
    int32_t lo[2], hi[2]; /* lowest and highest key per sign (0: negative) */
    int32_t n[2];         /* buckets per sign */
} decode_ctx_t;

/* Reads the version 2 bucket list of n buckets, calling fn for each; the
 * caller checks r->bad. EDDY_ERR_INVALID for anything put_buckets would not
 * write. */
static eddy_err_t read_buckets(eddy_reader_t *r, uint64_t n, bucket_fn *fn, void *ctx)
{
    int64_t k = eddy_unzigzag64(eddy_get_varint(r));
    bool gap_ok = false; /* a gap may follow a count, never start or follow a gap */
    for (uint64_t seen = 0; seen < n && !r->bad;) {
        if (k < -KEY_MAX || k > KEY_MAX)
            return EDDY_ERR_INVALID;
        uint64_t c = eddy_get_varint(r);
        if (r->bad)
            break;
        if (c == 0) {
            uint64_t gap = eddy_get_varint(r);
            if (!gap_ok || gap > 2 * KEY_MAX)
                return EDDY_ERR_INVALID;
            k += (int64_t)gap + 1;
            gap_ok = false;
            continue;
        }
        if (fn((int32_t)k, c, ctx))
            return EDDY_ERR_INVALID;
        seen++;
        k++;
        gap_ok = true;
    }
    return r->bad ? EDDY_ERR_INVALID : EDDY_OK;
}

static bool survey_bucket(int32_t key, uint64_t count, void *ctx)
{
    decode_ctx_t *d = ctx;
    if (d->total + count < d->total)
        return true; /* the counts overflow */
    d->total += count;
    if (key != 0) {
        int s = key > 0;
        if (d->n[s]++ == 0)
            d->lo[s] = key;
        d->hi[s] = key;
    }
    return false;
}

static bool fill_bucket(int32_t key, uint64_t count, void *ctx)
{
    eddy_sketch_t *s = ((decode_ctx_t *)ctx)->out;
    if (key == 0) {
        s->zero = count;
        return false;
    }
    dense_t *d = dense_for(s, key);
    uint32_t u = (uint32_t)(key - d->offset);
    if (u < (uint32_t)d->cap) {
        d->counts[u] = count;
        dense_note(d, key);
    } else {
        s->skeys[s->n_sparse] = key;
        s->scounts[s->n_sparse++] = count;
    }
    return false;
}

/* min and max must lie in the lowest and the highest bucket (min at or below it
 * once collapsed: it may have been folded). */
static bool min_max_fit(const eddy_sketch_t *s)
{
    if (!isfinite(s->min) || !isfinite(s->max) || s->min > s->max)
        return false;
    int32_t kmin = key_of(s->min), low = lowest_key(s);
    return (s->collapsed ? kmin <= low : kmin == low) && key_of(s->max) == highest_key(s);
}

static eddy_err_t decode_v2(eddy_sketch_t *out, eddy_reader_t *r, uint8_t flags)
{
    if (flags & ~FLAG_COLLAPSED)
        return EDDY_ERR_INVALID;
    out->count = eddy_get_varint(r);
    if (r->bad)
        return EDDY_ERR_INVALID;
    if (out->count == 0)
        return flags == 0 && r->p == r->end ? EDDY_OK : EDDY_ERR_INVALID;
    out->sum = eddy_get_f64(r);
    out->min = eddy_get_f64(r);
    out->max = eddy_get_f64(r);
    uint64_t n = eddy_get_varint(r);
    /* Every bucket takes a byte at least: refuse before allocating for a lie. */
    if (r->bad || n == 0 || n > MAX_BUCKETS || n > (uint64_t)(r->end - r->p))
        return EDDY_ERR_INVALID;
    eddy_reader_t again = *r;
    decode_ctx_t d = {.out = out};
    if (read_buckets(r, n, survey_bucket, &d) || r->p != r->end || d.total != out->count)
        return EDDY_ERR_INVALID;

    /* Each sign's buckets into its window if they fit one, else into the sparse
     * array, from which rebalance() then picks the densest window. */
    dense_t *ds[2] = {&out->neg, &out->pos};
    int32_t sparse = 0;
    for (int s = 0; s < 2; s++) {
        if (d.n[s] == 0)
            continue;
        if (d.hi[s] - d.lo[s] + 1 > DENSE_MAX) {
            sparse += d.n[s];
            continue;
        }
        int32_t width = d.hi[s] - d.lo[s] + 1;
        if (dense_reserve(ds[s], width))
            return EDDY_ERR_NOMEM;
        ds[s]->offset = clamp_offset(out, ds[s], d.lo[s] - (ds[s]->cap - width) / 2);
    }
    if (sparse && sparse_reserve(out, sparse))
        return EDDY_ERR_NOMEM;
    eddy_err_t err = read_buckets(&again, n, fill_bucket, &d);
    assert(err == EDDY_OK);
    (void)err;
    for (int s = 0; s < 2; s++)
        if (d.n[s] && d.hi[s] - d.lo[s] + 1 > DENSE_MAX)
            rebalance(out, ds[s]);
    out->collapsed = flags & FLAG_COLLAPSED;
    return min_max_fit(out) ? EDDY_OK : EDDY_ERR_INVALID;
}

/* Version 1: reads one store (span, zigzag first index, span counts, both ends
 * non-empty) into `out` under keys key = sign * (index - INDEX_MIN + 1) (negative
 * indices were mirrored: index -i for magnitude bucket i). *low gets the key of
 * its lowest bucket. */
static eddy_err_t get_store_v1(eddy_reader_t *r, eddy_sketch_t *out, bool negative, bool collapsed,
                               uint64_t *total, int32_t *low)
{
    uint64_t span = eddy_get_varint(r);
    if (r->bad || span > V1_SPAN)
        return EDDY_ERR_INVALID;
    if (span == 0)
        return collapsed ? EDDY_ERR_INVALID : EDDY_OK;
    if (collapsed && span != V1_SPAN)
        return EDDY_ERR_INVALID;
    int64_t lo = eddy_unzigzag64(eddy_get_varint(r));
    int64_t index_min = negative ? -INDEX_MAX : INDEX_MIN;
    int64_t index_max = negative ? -INDEX_MIN : INDEX_MAX;
    if (r->bad || lo < index_min || lo > index_max || lo + (int64_t)span - 1 > index_max)
        return EDDY_ERR_INVALID;
    if (span > (uint64_t)(r->end - r->p))
        return EDDY_ERR_INVALID;
    for (uint64_t j = 0; j < span; j++) {
        uint64_t c = eddy_get_varint(r);
        if (r->bad || *total + c < *total || ((j == 0 || j == span - 1) && c == 0))
            return EDDY_ERR_INVALID;
        *total += c;
        int64_t index = lo + (int64_t)j;
        int32_t key =
            negative ? (int32_t)(index + INDEX_MIN - 1) : (int32_t)(index - INDEX_MIN + 1);
        if (j == 0)
            *low = key;
        if (c && add_count(out, key, c, false))
            return EDDY_ERR_NOMEM;
    }
    return EDDY_OK;
}

static eddy_err_t decode_v1(eddy_sketch_t *out, eddy_reader_t *r, uint8_t flags)
{
    if (flags & ~(V1_NEG_COLLAPSED | V1_POS_COLLAPSED))
        return EDDY_ERR_INVALID;
    uint64_t count = eddy_get_varint(r);
    if (r->bad)
        return EDDY_ERR_INVALID;
    if (count == 0)
        return flags == 0 && r->p == r->end ? EDDY_OK : EDDY_ERR_INVALID;
    double sum = eddy_get_f64(r), min = eddy_get_f64(r), max = eddy_get_f64(r);
    uint64_t zero = eddy_get_varint(r), total = zero;
    if (r->bad)
        return EDDY_ERR_INVALID;
    /* Negative buckets first: add_count() then sees them in ascending order. */
    int32_t neg_low = 0, pos_low = 0;
    eddy_err_t err = get_store_v1(r, out, true, flags & V1_NEG_COLLAPSED, &total, &neg_low);
    if (!err && zero)
        err = add_count(out, 0, zero, false);
    if (!err)
        err = get_store_v1(r, out, false, flags & V1_POS_COLLAPSED, &total, &pos_low);
    if (err)
        return err;
    if (r->p != r->end || total != count)
        return EDDY_ERR_INVALID;
    if (flags) {
        /* A collapsed store's lowest bucket holds values from anywhere below it. */
        int32_t fold_to = flags & V1_POS_COLLAPSED ? pos_low : neg_low;
        while (buckets(out) > 1 && lowest_key(out) < fold_to)
            fold_lowest(out);
        out->collapsed = true;
    }
    out->count = count;
    out->sum = sum;
    out->min = min;
    out->max = max;
    return min_max_fit(out) ? EDDY_OK : EDDY_ERR_INVALID;
}

/* Decodes buf into `out`, which starts zeroed; the caller frees its arrays
 * whatever the outcome. */
static eddy_err_t decode(eddy_sketch_t *out, const uint8_t *buf, size_t len)
{
    eddy_reader_t r = {buf, buf + len, false};
    uint8_t version = eddy_get_byte(&r);
    uint8_t flags = eddy_get_byte(&r);
    if (r.bad)
        return EDDY_ERR_INVALID;
    if (version == VERSION)
        return decode_v2(out, &r, flags);
    if (version == 1)
        return decode_v1(out, &r, flags);
    return EDDY_ERR_INVALID;
}

eddy_err_t eddy_sketch_deserialize(eddy_sketch_t *sketch, const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return EDDY_ERR_INVALID;
    eddy_sketch_t tmp = {0};
    eddy_err_t err = decode(&tmp, buf, len);
    if (err) {
        free_arrays(&tmp);
        return err;
    }
    free_arrays(sketch);
    *sketch = tmp;
    return EDDY_OK;
}

eddy_err_t eddy_sketch_merge_serialized(eddy_sketch_t *dst, const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return EDDY_ERR_INVALID;
    eddy_sketch_t tmp = {0};
    eddy_err_t err = decode(&tmp, buf, len);
    if (!err)
        err = eddy_sketch_merge(dst, &tmp);
    free_arrays(&tmp);
    return err;
}
