/*
 * sketch.c — DDSketch (see sketch.h).
 *
 * Each sign has a store: a dense array of counts covering the bucket indices
 * [offset, offset + cap), of which [lo, hi] is the non-empty range (both ends
 * non-zero, every other slot zero). Negative values are stored under the
 * mirrored index -index(|v|), so that in both stores a higher index is a higher
 * value and folding the lowest buckets always sacrifices the lowest values. What
 * folds depends only on the lowest and highest index ever seen, that is on the
 * multiset of values, which is what makes merging exact.
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
 * EDDY_SKETCH_MIN_VALUE maps in between. */
#define INDEX_MIN (-1036)
#define INDEX_MAX 35488

#define MAX_BUCKETS EDDY_SKETCH_MAX_BUCKETS
#define INITIAL_CAP 64 /* slots of a store's first array */

#define VERSION            1
#define FLAG_NEG_COLLAPSED 1
#define FLAG_POS_COLLAPSED 2

typedef struct store_s {
    uint64_t *counts; /* counts[k] is bucket offset + k; NULL before the first value */
    int32_t offset;   /* bucket index of counts[0] */
    int32_t cap;      /* slots in counts, at most MAX_BUCKETS */
    int32_t lo;       /* lowest non-empty bucket (meaningless while total == 0) */
    int32_t hi;       /* highest non-empty bucket (meaningless while total == 0) */
    uint64_t total;   /* values in the store */
    bool collapsed;   /* buckets below lo were folded into lo */
} store_t;

struct eddy_sketch_s {
    store_t neg;    /* values <= -MIN_VALUE, under the mirrored index -index(|v|) */
    store_t pos;    /* values >= MIN_VALUE, under index(v) */
    uint64_t zero;  /* values with |v| < MIN_VALUE */
    uint64_t count; /* zero + neg.total + pos.total */
    double sum;     /* sum of every value added */
    double min;     /* exact smallest value (meaningless while count == 0) */
    double max;     /* exact largest value (meaningless while count == 0) */
};

/* The bucket of a magnitude >= EDDY_SKETCH_MIN_VALUE: i with mag in (gamma^(i-1), gamma^i]. */
static int32_t index_of(double mag)
{
    double i = ceil(log(mag) / LN_GAMMA);
    if (i < INDEX_MIN)
        return INDEX_MIN;
    if (i > INDEX_MAX)
        return INDEX_MAX;
    return (int32_t)i;
}

/* The value reported for bucket i, (1 - a) gamma^i = 2 gamma^i / (gamma + 1): within
 * a relative error of a of every magnitude in (gamma^(i-1), gamma^i]. */
static double value_of(int32_t i)
{
    return (1.0 - EDDY_SKETCH_ALPHA) * exp((double)i * LN_GAMMA);
}

/* --- stores ----------------------------------------------------------------- */

/* The range the store must cover to also hold [want_lo, want_hi], cut to its
 * highest MAX_BUCKETS buckets. True if that cut drops something (a collapse). */
static bool store_target(const store_t *st, int32_t want_lo, int32_t want_hi, int32_t *lo,
                         int32_t *hi)
{
    int32_t l = want_lo, h = want_hi;
    if (st->total > 0) {
        if (st->lo < l)
            l = st->lo;
        if (st->hi > h)
            h = st->hi;
    }
    bool collapse = h - l + 1 > MAX_BUCKETS;
    if (collapse)
        l = h - MAX_BUCKETS + 1;
    *lo = l;
    *hi = h;
    return collapse;
}

/* Makes the array at least `width` slots long, leaving every count where it is.
 * The only step of an update that can fail, so it runs before any change. */
static eddy_err_t store_reserve(store_t *st, int32_t width)
{
    assert(width >= 1 && width <= MAX_BUCKETS);
    if (width <= st->cap)
        return EDDY_OK;
    int32_t cap = st->cap ? st->cap : INITIAL_CAP;
    while (cap < width)
        cap *= 2;
    if (cap > MAX_BUCKETS)
        cap = MAX_BUCKETS;
    uint64_t *counts = realloc(st->counts, (size_t)cap * sizeof(*counts));
    if (!counts)
        return EDDY_ERR_NOMEM;
    memset(counts + st->cap, 0, (size_t)(cap - st->cap) * sizeof(*counts));
    st->counts = counts;
    st->cap = cap;
    return EDDY_OK;
}

/* Makes [lo, hi] (from store_target, room reserved) the store's range: folds the
 * buckets below lo into lo and re-centres the counts in the array if it does not
 * cover [lo, hi]. The caller then adds to the edge buckets that are still empty. */
static void store_cover(store_t *st, int32_t lo, int32_t hi, bool collapse)
{
    assert(hi - lo + 1 <= st->cap);
    uint64_t folded = 0;
    int32_t keep_lo = lo, keep_hi = lo - 1; /* old non-empty range that survives */
    if (st->total > 0) {
        for (int32_t i = st->lo; i < lo && i <= st->hi; i++) {
            folded += st->counts[i - st->offset];
            st->counts[i - st->offset] = 0;
        }
        keep_lo = st->lo > lo ? st->lo : lo;
        keep_hi = st->hi;
    }
    if (lo < st->offset || hi >= st->offset + st->cap) {
        /* Slack on both sides: ranges tend to grow on either end. */
        int32_t offset = lo - (st->cap - (hi - lo + 1)) / 2;
        if (keep_lo <= keep_hi) {
            size_t from = (size_t)(keep_lo - st->offset), to = (size_t)(keep_lo - offset);
            size_t n = (size_t)(keep_hi - keep_lo + 1);
            memmove(st->counts + to, st->counts + from, n * sizeof(*st->counts));
            memset(st->counts, 0, to * sizeof(*st->counts));
            memset(st->counts + to + n, 0, ((size_t)st->cap - to - n) * sizeof(*st->counts));
        }
        st->offset = offset;
    }
    st->counts[lo - st->offset] += folded;
    st->lo = lo;
    st->hi = hi;
    st->collapsed |= collapse;
}

static eddy_err_t store_add(store_t *st, int32_t i)
{
    if (st->total == 0 || i < st->lo || i > st->hi) {
        int32_t lo, hi;
        bool collapse = store_target(st, i, i, &lo, &hi);
        eddy_err_t err = store_reserve(st, hi - lo + 1);
        if (err)
            return err;
        store_cover(st, lo, hi, collapse);
        if (i < lo)
            i = lo;
    }
    st->counts[i - st->offset]++;
    st->total++;
    return EDDY_OK;
}

static eddy_err_t store_reserve_merge(store_t *dst, const store_t *src)
{
    if (src->total == 0)
        return EDDY_OK;
    int32_t lo, hi;
    store_target(dst, src->lo, src->hi, &lo, &hi);
    return store_reserve(dst, hi - lo + 1);
}

/* dst += src, room reserved by store_reserve_merge. Works for dst == src. */
static void store_merge(store_t *dst, const store_t *src)
{
    if (src->total == 0)
        return;
    int32_t src_lo = src->lo, src_hi = src->hi;
    uint64_t src_total = src->total;
    bool src_collapsed = src->collapsed;
    int32_t lo, hi;
    bool collapse = store_target(dst, src_lo, src_hi, &lo, &hi);
    store_cover(dst, lo, hi, collapse);
    for (int32_t i = src_lo; i <= src_hi; i++) {
        int32_t j = i < dst->lo ? dst->lo : i;
        dst->counts[j - dst->offset] += src->counts[i - src->offset];
    }
    dst->total += src_total;
    dst->collapsed |= src_collapsed;
}

static void store_clear(store_t *st)
{
    if (st->total > 0)
        memset(st->counts + (st->lo - st->offset), 0,
               (size_t)(st->hi - st->lo + 1) * sizeof(*st->counts));
    st->total = 0;
    st->collapsed = false;
}

/* The bucket holding the value of 0-based rank `rank` (< total) in the store. */
static int32_t store_find(const store_t *st, uint64_t rank)
{
    uint64_t seen = 0;
    for (int32_t i = st->lo; i < st->hi; i++) {
        seen += st->counts[i - st->offset];
        if (seen > rank)
            return i;
    }
    return st->hi;
}

/* --- the sketch --------------------------------------------------------------- */

eddy_sketch_t *eddy_sketch_new(void)
{
    return calloc(1, sizeof(eddy_sketch_t));
}

static void sketch_free_stores(eddy_sketch_t *sketch)
{
    free(sketch->neg.counts);
    free(sketch->pos.counts);
}

void eddy_sketch_destroy(eddy_sketch_t *sketch)
{
    if (!sketch)
        return;
    sketch_free_stores(sketch);
    free(sketch);
}

void eddy_sketch_reset(eddy_sketch_t *sketch)
{
    store_clear(&sketch->neg);
    store_clear(&sketch->pos);
    sketch->zero = 0;
    sketch->count = 0;
    sketch->sum = 0;
}

eddy_err_t eddy_sketch_add(eddy_sketch_t *sketch, double v)
{
    if (!isfinite(v))
        return EDDY_ERR_INVALID;
    if (v == 0.0) /* -0.0 too: otherwise min and max would depend on the order of adds */
        v = 0.0;
    eddy_err_t err = EDDY_OK;
    if (v >= EDDY_SKETCH_MIN_VALUE)
        err = store_add(&sketch->pos, index_of(v));
    else if (v <= -EDDY_SKETCH_MIN_VALUE)
        err = store_add(&sketch->neg, -index_of(-v));
    else
        sketch->zero++;
    if (err)
        return err;
    if (sketch->count == 0 || v < sketch->min)
        sketch->min = v;
    if (sketch->count == 0 || v > sketch->max)
        sketch->max = v;
    sketch->count++;
    sketch->sum += v;
    return EDDY_OK;
}

eddy_err_t eddy_sketch_merge(eddy_sketch_t *dst, const eddy_sketch_t *src)
{
    if (src->count == 0)
        return EDDY_OK;
    /* Both allocations first, so that running out of memory changes nothing. */
    eddy_err_t err = store_reserve_merge(&dst->neg, &src->neg);
    if (!err)
        err = store_reserve_merge(&dst->pos, &src->pos);
    if (err)
        return err;
    store_merge(&dst->neg, &src->neg);
    store_merge(&dst->pos, &src->pos);
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->zero += src->zero;
    dst->count += src->count;
    dst->sum += src->sum;
    return EDDY_OK;
}

double eddy_sketch_quantile(const eddy_sketch_t *sketch, double q)
{
    if (sketch->count == 0 || !(q >= 0.0 && q <= 1.0))
        return NAN;
    uint64_t last = sketch->count - 1;
    uint64_t rank = (uint64_t)floor(q * (double)last);
    if (rank > last) /* (double)last rounds up above 2^53 */
        rank = last;
    if (rank == 0)
        return sketch->min;
    if (rank == last)
        return sketch->max;

    double v;
    if (rank < sketch->neg.total) {
        v = -value_of(-store_find(&sketch->neg, rank));
    } else {
        rank -= sketch->neg.total;
        if (rank < sketch->zero)
            v = 0.0;
        else
            v = value_of(store_find(&sketch->pos, rank - sketch->zero));
    }
    /* Only ever moves the estimate closer to the true value, and keeps a bucket
     * at the edge of the double range from reporting infinity. */
    if (v < sketch->min)
        v = sketch->min;
    if (v > sketch->max)
        v = sketch->max;
    return v;
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
    return sketch->neg.collapsed || sketch->pos.collapsed;
}

/* --- serialization ------------------------------------------------------------ */

static uint64_t zigzag(int32_t v)
{
    return v < 0 ? ((uint64_t)(-(int64_t)v) << 1) - 1 : (uint64_t)v << 1;
}

static int64_t unzigzag(uint64_t z)
{
    return z & 1 ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
}

static void put_store(eddy_writer_t *w, const store_t *st)
{
    if (st->total == 0) {
        eddy_put_varint(w, 0);
        return;
    }
    eddy_put_varint(w, (uint64_t)(st->hi - st->lo + 1));
    eddy_put_varint(w, zigzag(st->lo));
    for (int32_t i = st->lo; i <= st->hi; i++)
        eddy_put_varint(w, st->counts[i - st->offset]);
}

static size_t encode(const eddy_sketch_t *sketch, uint8_t *buf, size_t cap)
{
    eddy_writer_t w = {buf, cap, 0};
    eddy_put_byte(&w, VERSION);
    eddy_put_byte(&w, (uint8_t)((sketch->neg.collapsed ? FLAG_NEG_COLLAPSED : 0) |
                                (sketch->pos.collapsed ? FLAG_POS_COLLAPSED : 0)));
    eddy_put_varint(&w, sketch->count);
    if (sketch->count > 0) {
        eddy_put_f64(&w, sketch->sum);
        eddy_put_f64(&w, sketch->min);
        eddy_put_f64(&w, sketch->max);
        eddy_put_varint(&w, sketch->zero);
        put_store(&w, &sketch->neg);
        put_store(&w, &sketch->pos);
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

/* Reads one store into an empty st, accepting only what put_store writes for
 * indices in [index_min, index_max]. */
static eddy_err_t get_store(eddy_reader_t *r, store_t *st, int32_t index_min, int32_t index_max,
                            bool collapsed)
{
    uint64_t span = eddy_get_varint(r);
    if (r->bad || span > MAX_BUCKETS)
        return EDDY_ERR_INVALID;
    if (span == 0)
        return collapsed ? EDDY_ERR_INVALID : EDDY_OK;
    /* A collapsed store always spans exactly MAX_BUCKETS. */
    if (collapsed && span != MAX_BUCKETS)
        return EDDY_ERR_INVALID;
    int64_t lo = unzigzag(eddy_get_varint(r));
    if (r->bad || lo < index_min || lo + (int64_t)span - 1 > index_max)
        return EDDY_ERR_INVALID;
    /* Every count takes a byte at least: refuse before allocating for a lie. */
    if (span > (uint64_t)(r->end - r->p))
        return EDDY_ERR_INVALID;
    eddy_err_t err = store_reserve(st, (int32_t)span);
    if (err)
        return err;
    st->offset = (int32_t)lo;
    st->lo = (int32_t)lo;
    st->hi = (int32_t)(lo + (int64_t)span - 1);
    for (uint64_t k = 0; k < span; k++) {
        uint64_t c = eddy_get_varint(r);
        if (r->bad || st->total + c < st->total)
            return EDDY_ERR_INVALID;
        if ((k == 0 || k == span - 1) && c == 0)
            return EDDY_ERR_INVALID;
        st->counts[k] = c;
        st->total += c;
    }
    st->collapsed = collapsed;
    return EDDY_OK;
}

static int sign_class(double v)
{
    return v >= EDDY_SKETCH_MIN_VALUE ? 1 : v <= -EDDY_SKETCH_MIN_VALUE ? -1 : 0;
}

/* Decodes buf into `out`, which starts zeroed; the caller frees its stores
 * whatever the outcome. */
static eddy_err_t decode(eddy_sketch_t *out, const uint8_t *buf, size_t len)
{
    eddy_reader_t r = {buf, buf + len, false};
    uint8_t version = eddy_get_byte(&r);
    uint8_t flags = eddy_get_byte(&r);
    uint64_t count = eddy_get_varint(&r);
    if (r.bad || version != VERSION || (flags & ~(FLAG_NEG_COLLAPSED | FLAG_POS_COLLAPSED)))
        return EDDY_ERR_INVALID;
    if (count == 0)
        return flags == 0 && r.p == r.end ? EDDY_OK : EDDY_ERR_INVALID;

    out->count = count;
    out->sum = eddy_get_f64(&r);
    out->min = eddy_get_f64(&r);
    out->max = eddy_get_f64(&r);
    out->zero = eddy_get_varint(&r);
    if (r.bad || !isfinite(out->min) || !isfinite(out->max) || out->min > out->max)
        return EDDY_ERR_INVALID;
    eddy_err_t err = get_store(&r, &out->neg, -INDEX_MAX, -INDEX_MIN, flags & FLAG_NEG_COLLAPSED);
    if (!err)
        err = get_store(&r, &out->pos, INDEX_MIN, INDEX_MAX, flags & FLAG_POS_COLLAPSED);
    if (err)
        return err;
    if (r.p != r.end)
        return EDDY_ERR_INVALID;

    uint64_t total = out->zero + out->neg.total;
    if (total < out->zero || total + out->pos.total < total || total + out->pos.total != count)
        return EDDY_ERR_INVALID;
    /* min and max must fall in the lowest and the highest class holding values. */
    int lowest = out->neg.total ? -1 : out->zero ? 0 : 1;
    int highest = out->pos.total ? 1 : out->zero ? 0 : -1;
    if (sign_class(out->min) != lowest || sign_class(out->max) != highest)
        return EDDY_ERR_INVALID;
    return EDDY_OK;
}

eddy_err_t eddy_sketch_deserialize(eddy_sketch_t *sketch, const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return EDDY_ERR_INVALID;
    eddy_sketch_t tmp = {0};
    eddy_err_t err = decode(&tmp, buf, len);
    if (err) {
        sketch_free_stores(&tmp);
        return err;
    }
    sketch_free_stores(sketch);
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
    sketch_free_stores(&tmp);
    return err;
}
