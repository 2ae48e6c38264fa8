/*
 * sketch.c — DDSketch (see sketch.h).
 *
 * A side (positive or negative values) is a dense array of counts covering the
 * bucket indices [offset, offset + n). It grows to cover new indices, to at most
 * MAX_BUCKETS; beyond that the lowest indices fold into the lowest kept bucket.
 *
 * Serialized form: u8 version (1); varint zero count; f64 sum, min, max; then per
 * side (positive, negative): varint n, zigzag varint offset, n varint counts.
 */
#include "topology/sketch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS   2048
#define MIN_INDEXABLE 1e-9
#define VERSION       1

typedef struct side_s {
    uint64_t *counts; /* n buckets, counts[i] holds index offset + i */
    int32_t offset;   /* bucket index of counts[0] */
    int32_t n;        /* buckets in use */
    int32_t cap;      /* allocated buckets */
} side_t;

struct eddy_sketch_s {
    side_t pos;           /* values >= MIN_INDEXABLE */
    side_t neg;           /* values <= -MIN_INDEXABLE, by |value| */
    uint64_t zero;        /* values in between */
    uint64_t count;       /* all values */
    double sum, min, max; /* exact */
};

static double gamma_value(void)
{
    return (1 + EDDY_SKETCH_ALPHA) / (1 - EDDY_SKETCH_ALPHA);
}

static double log_gamma(void)
{
    static double lg;
    if (lg == 0) /* benign race: every thread computes the same value */
        lg = log(gamma_value());
    return lg;
}

static int32_t bucket_index(double v)
{
    return (int32_t)ceil(log(v) / log_gamma());
}

/* The value reported for bucket i: within alpha of everything in it. */
static double bucket_value(int32_t i)
{
    return 2.0 * pow(gamma_value(), i) / (gamma_value() + 1.0);
}

eddy_sketch_t *eddy_sketch_new(void)
{
    eddy_sketch_t *s = calloc(1, sizeof(*s));
    if (s) {
        s->min = INFINITY;
        s->max = -INFINITY;
    }
    return s;
}

void eddy_sketch_destroy(eddy_sketch_t *sketch)
{
    if (!sketch)
        return;
    free(sketch->pos.counts);
    free(sketch->neg.counts);
    free(sketch);
}

void eddy_sketch_reset(eddy_sketch_t *s)
{
    s->pos.n = s->neg.n = 0;
    s->zero = s->count = 0;
    s->sum = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

/* Makes the side cover index i; returns the slot or -1 if out of memory. */
static int32_t side_slot(side_t *sd, int32_t i)
{
    if (sd->n == 0) {
        if (sd->cap < 16) {
            uint64_t *c = realloc(sd->counts, 16 * sizeof(*c));
            if (!c)
                return -1;
            sd->counts = c;
            sd->cap = 16;
        }
        sd->offset = i;
        sd->n = 1;
        sd->counts[0] = 0;
        return 0;
    }
    if (i >= sd->offset && i < sd->offset + sd->n)
        return i - sd->offset;
    int32_t lo = i < sd->offset ? i : sd->offset;
    int32_t hi = i >= sd->offset + sd->n ? i + 1 : sd->offset + sd->n;
    if (hi - lo > MAX_BUCKETS) {
        /* Too wide: fold the lowest buckets so the range ends at hi. */
        lo = hi - MAX_BUCKETS;
        if (i < lo)
            i = lo; /* a value below the kept range counts in the lowest bucket */
        if (sd->offset < lo) {
            int32_t fold = lo - sd->offset; /* buckets below lo */
            uint64_t folded = 0;
            for (int32_t k = 0; k < fold && k < sd->n; k++)
                folded += sd->counts[k];
            int32_t keep = sd->n - fold;
            if (keep > 0) {
                memmove(sd->counts, sd->counts + fold, (size_t)keep * sizeof(*sd->counts));
                sd->counts[0] += folded;
                sd->n = keep;
            } else {
                sd->counts[0] = folded;
                sd->n = 1;
            }
            sd->offset = lo;
        }
        if (i >= sd->offset && i < sd->offset + sd->n)
            return i - sd->offset;
        if (i < sd->offset)
            lo = i;
        else
            lo = sd->offset;
    }
    int32_t need = hi - lo;
    if (need > sd->cap) {
        int32_t cap = sd->cap * 2 > need ? sd->cap * 2 : need;
        if (cap > MAX_BUCKETS)
            cap = MAX_BUCKETS;
        uint64_t *c = realloc(sd->counts, (size_t)cap * sizeof(*c));
        if (!c)
            return -1;
        sd->counts = c;
        sd->cap = cap;
    }
    if (lo < sd->offset) {
        int32_t shift = sd->offset - lo;
        memmove(sd->counts + shift, sd->counts, (size_t)sd->n * sizeof(*sd->counts));
        memset(sd->counts, 0, (size_t)shift * sizeof(*sd->counts));
        sd->offset = lo;
        sd->n += shift;
    }
    if (hi > sd->offset + sd->n) {
        memset(sd->counts + sd->n, 0, (size_t)(hi - sd->offset - sd->n) * sizeof(*sd->counts));
        sd->n = hi - sd->offset;
    }
    return i - sd->offset;
}

static int side_add(side_t *sd, int32_t i, uint64_t n)
{
    int32_t slot = side_slot(sd, i);
    if (slot < 0)
        return -1;
    sd->counts[slot] += n;
    return 0;
}

void eddy_sketch_add(eddy_sketch_t *s, double v)
{
    if (isnan(v))
        return;
    int rc = 0;
    if (v >= MIN_INDEXABLE)
        rc = side_add(&s->pos, bucket_index(v), 1);
    else if (v <= -MIN_INDEXABLE)
        rc = side_add(&s->neg, bucket_index(-v), 1);
    else
        s->zero++;
    if (rc)
        return; /* out of memory: the value is not counted anywhere */
    s->count++;
    s->sum += v;
    if (v < s->min)
        s->min = v;
    if (v > s->max)
        s->max = v;
}

eddy_err_t eddy_sketch_merge(eddy_sketch_t *dst, const eddy_sketch_t *src)
{
    const side_t *sides[2] = {&src->pos, &src->neg};
    side_t *dsides[2] = {&dst->pos, &dst->neg};
    for (int k = 0; k < 2; k++)
        for (int32_t j = 0; j < sides[k]->n; j++)
            if (sides[k]->counts[j] &&
                side_add(dsides[k], sides[k]->offset + j, sides[k]->counts[j]))
                return EDDY_ERR_NOMEM;
    dst->zero += src->zero;
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return EDDY_OK;
}

double eddy_sketch_quantile(const eddy_sketch_t *s, double q)
{
    if (s->count == 0 || isnan(q))
        return NAN;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = floor(q * (double)(s->count - 1));
    double seen = 0, v = NAN;
    /* Ascending order: negatives from the largest magnitude down, zeros, positives. */
    for (int32_t j = s->neg.n - 1; j >= 0 && isnan(v); j--) {
        seen += (double)s->neg.counts[j];
        if (seen > rank)
            v = -bucket_value(s->neg.offset + j);
    }
    if (isnan(v)) {
        seen += (double)s->zero;
        if (seen > rank)
            v = 0;
    }
    for (int32_t j = 0; j < s->pos.n && isnan(v); j++) {
        seen += (double)s->pos.counts[j];
        if (seen > rank)
            v = bucket_value(s->pos.offset + j);
    }
    if (isnan(v))
        v = s->max;
    /* The exact extremes are known: never report beyond them. */
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

uint64_t eddy_sketch_count(const eddy_sketch_t *s)
{
    return s->count;
}

double eddy_sketch_sum(const eddy_sketch_t *s)
{
    return s->sum;
}

double eddy_sketch_min(const eddy_sketch_t *s)
{
    return s->count ? s->min : NAN;
}

double eddy_sketch_max(const eddy_sketch_t *s)
{
    return s->count ? s->max : NAN;
}

/* --- serialization ------------------------------------------------------------ */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static uint8_t *put_f64(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i));
    return p;
}

static bool get_f64(const uint8_t **p, const uint8_t *end, double *d)
{
    if (end - *p < 8)
        return false;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)(*p)[i] << (8 * i);
    *p += 8;
    memcpy(d, &bits, 8);
    return true;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t side_size(const side_t *sd)
{
    size_t n = varint_len((uint64_t)sd->n) + varint_len(zigzag(sd->offset));
    for (int32_t j = 0; j < sd->n; j++)
        n += varint_len(sd->counts[j]);
    return n;
}

size_t eddy_sketch_serialized_size(const eddy_sketch_t *s)
{
    return 1 + varint_len(s->zero) + 24 + side_size(&s->pos) + side_size(&s->neg);
}

size_t eddy_sketch_serialize(const eddy_sketch_t *s, uint8_t *buf, size_t cap)
{
    size_t need = eddy_sketch_serialized_size(s);
    if (cap < need)
        return 0;
    uint8_t *p = buf;
    *p++ = VERSION;
    p = put_varint(p, s->zero);
    p = put_f64(p, s->sum);
    p = put_f64(p, s->min);
    p = put_f64(p, s->max);
    const side_t *sides[2] = {&s->pos, &s->neg};
    for (int k = 0; k < 2; k++) {
        p = put_varint(p, (uint64_t)sides[k]->n);
        p = put_varint(p, zigzag(sides[k]->offset));
        for (int32_t j = 0; j < sides[k]->n; j++)
            p = put_varint(p, sides[k]->counts[j]);
    }
    return (size_t)(p - buf);
}

eddy_err_t eddy_sketch_deserialize(eddy_sketch_t *s, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    if (len < 1 || *p++ != VERSION)
        return EDDY_ERR_INVALID;
    eddy_sketch_t tmp = {0};
    if (!get_varint(&p, end, &tmp.zero) || !get_f64(&p, end, &tmp.sum) ||
        !get_f64(&p, end, &tmp.min) || !get_f64(&p, end, &tmp.max))
        return EDDY_ERR_INVALID;
    side_t *sides[2] = {&tmp.pos, &tmp.neg};
    tmp.count = tmp.zero;
    for (int k = 0; k < 2; k++) {
        uint64_t n, zoff;
        if (!get_varint(&p, end, &n) || n > MAX_BUCKETS || !get_varint(&p, end, &zoff))
            goto bad;
        int64_t off = (int64_t)(zoff >> 1) ^ -(int64_t)(zoff & 1);
        if (off < -100000 || off > 100000)
            goto bad;
        if (n > 0) {
            sides[k]->counts = malloc((size_t)n * sizeof(uint64_t));
            if (!sides[k]->counts)
                goto bad;
            sides[k]->cap = (int32_t)n;
        }
        sides[k]->n = (int32_t)n;
        sides[k]->offset = (int32_t)off;
        for (uint64_t j = 0; j < n; j++) {
            if (!get_varint(&p, end, &sides[k]->counts[j]))
                goto bad;
            tmp.count += sides[k]->counts[j];
        }
    }
    if (p != end || (tmp.count > 0 && !(tmp.min <= tmp.max)))
        goto bad;
    if (tmp.count == 0) {
        tmp.min = INFINITY;
        tmp.max = -INFINITY;
    }
    free(s->pos.counts);
    free(s->neg.counts);
    *s = tmp;
    return EDDY_OK;
bad:
    free(tmp.pos.counts);
    free(tmp.neg.counts);
    return EDDY_ERR_INVALID;
}
