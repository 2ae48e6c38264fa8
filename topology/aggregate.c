/*
 * aggregate.c — aggregate layouts and states (see aggregate.h).
 *
 * State = a fixed array of scalar slots (int64 counters and doubles) plus arrays
 * of sketch and HLL pointers, sized by the layout. A sum is a double s scaled by
 * 2^e (e a multiple of SUM_SHIFT, 0 until a sum would overflow), so that sums
 * and means of values near the double range stay finite: the mean of two 1e308
 * is 1e308, not a null.
 *
 * Serialized form, version 2 (topology/codec.h): u8 version, then each scalar
 * slot (int64 as zigzag varint, double as 8 bytes little-endian; a sum's double
 * followed by e / SUM_SHIFT as a varint), then per sketch and per HLL a varint
 * length and its bytes. Version 1, still read, has no e (it is 0).
 */
#include "topology/aggregate.h"
#include "engine/util.h"
#include "topology/codec.h"
#include "topology/hll.h"
#include "topology/sketch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_VERSION 2
#define MAX_SLOTS      64
#define SUM_SHIFT      512 /* a sum's scale steps: 2^512 */
#define SUM_SHIFTS_MAX 4   /* the most steps a serialized sum may claim */

typedef enum slot_kind_e {
    SLOT_COUNT,   /* int64: records */
    SLOT_COUNTIF, /* int64: records matching a predicate */
    SLOT_NCOUNT,  /* int64: records with a numeric value in a field */
    SLOT_SUM,     /* double: sum of a field */
    SLOT_MIN,     /* double: min of a field (+inf when none) */
    SLOT_MAX,     /* double: max of a field (-inf when none) */
} slot_kind_t;

typedef struct slot_s {
    slot_kind_t kind;             /* what it holds */
    int field;                    /* field index, -1 for COUNT/COUNTIF */
    const eddy_predicate_t *pred; /* COUNTIF only */
} slot_t;

/* How one declared aggregate is read out of the slots. */
typedef struct output_s {
    const eddy_agg_def_t *def; /* the declaration */
    int slot;                  /* main slot (count, sum, min, max) or -1 */
    int slot2;                 /* second slot: NCOUNT for mean, or -1 */
    int sketch;                /* sketch index for percentile, or -1 */
    int hll;                   /* hll index for distinct, or -1 */
    int num, den;              /* output indices for ratio, or -1 */
} output_t;

struct eddy_agg_layout_s {
    const eddy_store_def_t *store;         /* borrowed */
    slot_t slots[MAX_SLOTS];               /* scalar slots */
    int n_slots;                           /* used */
    int sketch_fields[MAX_SLOTS];          /* field of each sketch */
    int n_sketches;                        /* used */
    int hll_fields[MAX_SLOTS];             /* field of each HLL */
    int n_hlls;                            /* used */
    output_t outputs[EDDY_MAX_AGGREGATES]; /* one per declared aggregate */
    int n_outputs;                         /* used */
};

struct eddy_agg_s {
    union {
        int64_t i;
        double d;
    } v[MAX_SLOTS];                     /* scalar slots */
    int32_t e[MAX_SLOTS];               /* SUM slots: the value is v[i].d * 2^e[i] */
    eddy_sketch_t *sketches[MAX_SLOTS]; /* n_sketches used */
    eddy_hll_t *hlls[MAX_SLOTS];        /* n_hlls used */
    int n_sketches, n_hlls;             /* copies of the layout's counts */
};

static int find_or_add_slot(eddy_agg_layout_t *l, slot_kind_t kind, int field,
                            const eddy_predicate_t *pred)
{
    for (int i = 0; i < l->n_slots; i++)
        if (l->slots[i].kind == kind && l->slots[i].field == field && !pred)
            return i;
    if (l->n_slots == MAX_SLOTS)
        return -1;
    l->slots[l->n_slots] = (slot_t){.kind = kind, .field = field, .pred = pred};
    return l->n_slots++;
}

static int find_or_add_field(int *fields, int *n, int field)
{
    for (int i = 0; i < *n; i++)
        if (fields[i] == field)
            return i;
    fields[*n] = field;
    return (*n)++;
}

eddy_agg_layout_t *eddy_agg_layout_new(const eddy_store_def_t *store, char *errstr,
                                       size_t errstr_size)
{
    eddy_agg_layout_t *l = calloc(1, sizeof(*l));
    if (!l) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    l->store = store;
    /* Slot 0 is always the record count: windows report it and ratios use it. */
    find_or_add_slot(l, SLOT_COUNT, -1, NULL);
    for (size_t i = 0; i < store->n_aggregates; i++) {
        const eddy_agg_def_t *def = &store->aggregates[i];
        output_t *o = &l->outputs[l->n_outputs++];
        *o = (output_t){
            .def = def, .slot = -1, .slot2 = -1, .sketch = -1, .hll = -1, .num = -1, .den = -1};
        switch (def->op) {
        case EDDY_AGG_COUNT:
            o->slot = 0;
            break;
        case EDDY_AGG_COUNT_IF:
            o->slot = find_or_add_slot(l, SLOT_COUNTIF, -1, def->predicate);
            break;
        case EDDY_AGG_SUM:
            o->slot = find_or_add_slot(l, SLOT_SUM, def->field, NULL);
            break;
        case EDDY_AGG_MIN:
            o->slot = find_or_add_slot(l, SLOT_MIN, def->field, NULL);
            break;
        case EDDY_AGG_MAX:
            o->slot = find_or_add_slot(l, SLOT_MAX, def->field, NULL);
            break;
        case EDDY_AGG_MEAN:
            o->slot = find_or_add_slot(l, SLOT_SUM, def->field, NULL);
            o->slot2 = find_or_add_slot(l, SLOT_NCOUNT, def->field, NULL);
            break;
        case EDDY_AGG_PERCENTILE:
            o->sketch = find_or_add_field(l->sketch_fields, &l->n_sketches, def->field);
            break;
        case EDDY_AGG_DISTINCT:
            o->hll = find_or_add_field(l->hll_fields, &l->n_hlls, def->field);
            break;
        case EDDY_AGG_RATIO:
            o->num = def->numerator;
            o->den = def->denominator;
            break;
        }
        if (l->n_slots >= MAX_SLOTS ||
            (o->slot < 0 && o->sketch < 0 && o->hll < 0 && def->op != EDDY_AGG_RATIO)) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "store %s: too many aggregates (at most %d state slots)", store->name,
                      MAX_SLOTS);
            free(l);
            return NULL;
        }
    }
    return l;
}

void eddy_agg_layout_destroy(eddy_agg_layout_t *layout)
{
    free(layout);
}

static void reset_scalars(const eddy_agg_layout_t *l, eddy_agg_t *a)
{
    for (int i = 0; i < l->n_slots; i++) {
        switch (l->slots[i].kind) {
        case SLOT_MIN:
            a->v[i].d = INFINITY;
            break;
        case SLOT_MAX:
            a->v[i].d = -INFINITY;
            break;
        case SLOT_SUM:
            a->v[i].d = 0;
            a->e[i] = 0;
            break;
        default:
            a->v[i].i = 0;
        }
    }
}

/* (*s, *e) += (x, ex) for scaled sums: in the scale of the larger, one step
 * coarser while the sum overflows, finer again while it fits (so that small
 * values added after large ones cancelled are not lost). Infinities and NaN
 * (from a state of version 1) are carried along. */
static void sum_add_scaled(double *s, int32_t *e, double x, int32_t ex)
{
    if (!isfinite(*s) || !isfinite(x)) {
        *s += x;
        return;
    }
    int32_t m = *e > ex ? *e : ex;
    double t = ldexp(*s, *e - m) + ldexp(x, ex - m);
    while (!isfinite(t)) {
        m += SUM_SHIFT;
        t = ldexp(*s, *e - m) + ldexp(x, ex - m);
    }
    while (m > 0 && fabs(t) < 0x1p500) {
        t = ldexp(t, SUM_SHIFT);
        m -= SUM_SHIFT;
    }
    *s = t;
    *e = m;
}

/* Adds x to SUM slot i; the plain double addition unless it overflows. */
static inline void sum_add(eddy_agg_t *a, int i, double x)
{
    if (a->e[i] == 0) {
        double t = a->v[i].d + x;
        if (isfinite(t) || !isfinite(a->v[i].d)) {
            a->v[i].d = t;
            return;
        }
    }
    sum_add_scaled(&a->v[i].d, &a->e[i], x, 0);
}

eddy_agg_t *eddy_agg_new(const eddy_agg_layout_t *layout)
{
    eddy_agg_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    reset_scalars(layout, a);
    a->n_sketches = layout->n_sketches;
    a->n_hlls = layout->n_hlls;
    for (int i = 0; i < a->n_sketches; i++)
        if (!(a->sketches[i] = eddy_sketch_new()))
            goto fail;
    for (int i = 0; i < a->n_hlls; i++)
        if (!(a->hlls[i] = eddy_hll_new()))
            goto fail;
    return a;
fail:
    eddy_agg_destroy(a);
    return NULL;
}

void eddy_agg_destroy(eddy_agg_t *agg)
{
    if (!agg)
        return;
    for (int i = 0; i < agg->n_sketches; i++)
        eddy_sketch_destroy(agg->sketches[i]);
    for (int i = 0; i < agg->n_hlls; i++)
        eddy_hll_destroy(agg->hlls[i]);
    free(agg);
}

int eddy_agg_update(const eddy_agg_layout_t *l, eddy_agg_t *a, const eddy_value_t *values)
{
    for (int i = 0; i < l->n_slots; i++) {
        const slot_t *s = &l->slots[i];
        const eddy_value_t *v = s->field >= 0 ? &values[s->field] : NULL;
        bool num = v && v->type == EDDY_VALUE_NUMBER;
        switch (s->kind) {
        case SLOT_COUNT:
            a->v[i].i++;
            break;
        case SLOT_COUNTIF:
            a->v[i].i += eddy_predicate_eval(s->pred, values);
            break;
        case SLOT_NCOUNT:
            a->v[i].i += num;
            break;
        case SLOT_SUM:
            if (num)
                sum_add(a, i, v->num);
            break;
        case SLOT_MIN:
            if (num && v->num < a->v[i].d)
                a->v[i].d = v->num;
            break;
        case SLOT_MAX:
            if (num && v->num > a->v[i].d)
                a->v[i].d = v->num;
            break;
        }
    }
    int collapsed = 0;
    for (int i = 0; i < l->n_sketches; i++) {
        const eddy_value_t *v = &values[l->sketch_fields[i]];
        if (v->type == EDDY_VALUE_NUMBER) {
            bool was = eddy_sketch_collapsed(a->sketches[i]);
            eddy_sketch_add(a->sketches[i], v->num);
            collapsed += !was && eddy_sketch_collapsed(a->sketches[i]);
        }
    }
    for (int i = 0; i < l->n_hlls; i++) {
        const eddy_value_t *v = &values[l->hll_fields[i]];
        if (v->type == EDDY_VALUE_STRING)
            eddy_hll_add(a->hlls[i], v->str, v->len);
        else if (v->type == EDDY_VALUE_NUMBER)
            eddy_hll_add(a->hlls[i], &v->num, sizeof(v->num));
    }
    return collapsed;
}

eddy_err_t eddy_agg_merge(const eddy_agg_layout_t *l, eddy_agg_t *dst, const eddy_agg_t *src)
{
    for (int i = 0; i < l->n_slots; i++) {
        switch (l->slots[i].kind) {
        case SLOT_COUNT:
        case SLOT_COUNTIF:
        case SLOT_NCOUNT:
            dst->v[i].i += src->v[i].i;
            break;
        case SLOT_SUM:
            sum_add_scaled(&dst->v[i].d, &dst->e[i], src->v[i].d, src->e[i]);
            break;
        case SLOT_MIN:
            dst->v[i].d = fmin(dst->v[i].d, src->v[i].d);
            break;
        case SLOT_MAX:
            dst->v[i].d = fmax(dst->v[i].d, src->v[i].d);
            break;
        }
    }
    for (int i = 0; i < l->n_sketches; i++)
        if (eddy_sketch_merge(dst->sketches[i], src->sketches[i]))
            return EDDY_ERR_NOMEM;
    for (int i = 0; i < l->n_hlls; i++)
        if (eddy_hll_merge(dst->hlls[i], src->hlls[i]))
            return EDDY_ERR_NOMEM;
    return EDDY_OK;
}

/* --- serialization ---------------------------------------------------------- */

static bool is_int_slot(slot_kind_t k)
{
    return k == SLOT_COUNT || k == SLOT_COUNTIF || k == SLOT_NCOUNT;
}

/* Writes (or, with w->buf NULL, measures) the state; sketch and HLL bytes go
 * after their length, produced straight into the output. */
static void encode(const eddy_agg_layout_t *l, const eddy_agg_t *a, eddy_writer_t *w)
{
    eddy_put_byte(w, FORMAT_VERSION);
    for (int i = 0; i < l->n_slots; i++) {
        if (is_int_slot(l->slots[i].kind))
            eddy_put_varint(w, eddy_zigzag64(a->v[i].i));
        else
            eddy_put_f64(w, a->v[i].d);
        if (l->slots[i].kind == SLOT_SUM)
            eddy_put_varint(w, (uint64_t)(a->e[i] / SUM_SHIFT));
    }
    for (int i = 0; i < l->n_sketches + l->n_hlls; i++) {
        bool sk = i < l->n_sketches;
        size_t len = sk ? eddy_sketch_serialized_size(a->sketches[i])
                        : eddy_hll_serialized_size(a->hlls[i - l->n_sketches]);
        eddy_put_varint(w, len);
        if (w->buf && w->len + len <= w->cap) {
            if (sk)
                eddy_sketch_serialize(a->sketches[i], w->buf + w->len, len);
            else
                eddy_hll_serialize(a->hlls[i - l->n_sketches], w->buf + w->len, len);
        }
        w->len += len;
    }
}

size_t eddy_agg_serialized_size(const eddy_agg_layout_t *l, const eddy_agg_t *a)
{
    eddy_writer_t w = {NULL, 0, 0};
    encode(l, a, &w);
    return w.len;
}

size_t eddy_agg_serialize(const eddy_agg_layout_t *l, const eddy_agg_t *a, uint8_t *buf, size_t cap)
{
    eddy_writer_t w = {buf, cap, 0};
    encode(l, a, &w);
    return w.len <= cap ? w.len : 0;
}

eddy_err_t eddy_agg_deserialize(const eddy_agg_layout_t *l, eddy_agg_t *a, const uint8_t *buf,
                                size_t len)
{
    eddy_reader_t r = {buf, buf + len, false};
    uint8_t version = eddy_get_byte(&r);
    if (version != FORMAT_VERSION && version != 1)
        return EDDY_ERR_INVALID;
    for (int i = 0; i < l->n_slots && !r.bad; i++) {
        if (is_int_slot(l->slots[i].kind))
            a->v[i].i = eddy_unzigzag64(eddy_get_varint(&r));
        else
            a->v[i].d = eddy_get_f64(&r);
        if (l->slots[i].kind == SLOT_SUM) {
            uint64_t shifts = version == 1 ? 0 : eddy_get_varint(&r);
            if (shifts > SUM_SHIFTS_MAX)
                return EDDY_ERR_INVALID;
            a->e[i] = (int32_t)shifts * SUM_SHIFT;
        }
    }
    for (int i = 0; i < l->n_sketches + l->n_hlls && !r.bad; i++) {
        uint64_t n = eddy_get_varint(&r);
        const uint8_t *p = r.bad || n > (uint64_t)(r.end - r.p) ? NULL : eddy_get_bytes(&r, n);
        if (!p)
            return EDDY_ERR_INVALID;
        eddy_err_t err = i < l->n_sketches
                             ? eddy_sketch_deserialize(a->sketches[i], p, (size_t)n)
                             : eddy_hll_deserialize(a->hlls[i - l->n_sketches], p, (size_t)n);
        if (err)
            return EDDY_ERR_INVALID;
    }
    return !r.bad && r.p == r.end ? EDDY_OK : EDDY_ERR_INVALID;
}

int64_t eddy_agg_count(const eddy_agg_t *agg)
{
    return agg->v[0].i;
}

/* --- reading --------------------------------------------------------------------- */

/* Output i as s * 2^e (counts and sums, what a ratio divides); false for others. */
static bool output_scaled(const eddy_agg_layout_t *l, const eddy_agg_t *a, int i, double *s,
                          int32_t *e)
{
    const output_t *o = &l->outputs[i];
    *e = 0;
    switch (o->def->op) {
    case EDDY_AGG_COUNT:
    case EDDY_AGG_COUNT_IF:
        *s = (double)a->v[o->slot].i;
        return true;
    case EDDY_AGG_SUM:
        *s = a->v[o->slot].d;
        *e = a->e[o->slot];
        return true;
    default:
        return false;
    }
}

/* The value of output i as a double; NAN when undefined. */
static double output_value(const eddy_agg_layout_t *l, const eddy_agg_t *a, int i)
{
    const output_t *o = &l->outputs[i];
    double s, s2;
    int32_t e, e2;
    switch (o->def->op) {
    case EDDY_AGG_COUNT:
    case EDDY_AGG_COUNT_IF:
    case EDDY_AGG_SUM:
        output_scaled(l, a, i, &s, &e);
        return ldexp(s, e); /* a sum beyond the double range is an infinity: null */
    case EDDY_AGG_MIN:
    case EDDY_AGG_MAX:
        return isinf(a->v[o->slot].d) ? NAN : a->v[o->slot].d;
    case EDDY_AGG_MEAN:
        return a->v[o->slot2].i ? ldexp(a->v[o->slot].d / (double)a->v[o->slot2].i, a->e[o->slot])
                                : NAN;
    case EDDY_AGG_PERCENTILE:
        return eddy_sketch_quantile(a->sketches[o->sketch], o->def->q);
    case EDDY_AGG_DISTINCT:
        return (double)eddy_hll_estimate(a->hlls[o->hll]);
    case EDDY_AGG_RATIO:
        if (!output_scaled(l, a, o->num, &s, &e) || !output_scaled(l, a, o->den, &s2, &e2))
            return NAN; /* the loader allows counts and sums only */
        return s2 != 0 ? ldexp(s / s2, e - e2) : NAN;
    }
    return NAN;
}

void eddy_agg_to_json(const eddy_agg_layout_t *l, const eddy_agg_t *a, json_t *obj)
{
    json_t *degraded = NULL;
    for (int i = 0; i < l->n_outputs; i++) {
        const output_t *o = &l->outputs[i];
        json_t *v;
        if (o->def->op == EDDY_AGG_COUNT || o->def->op == EDDY_AGG_COUNT_IF)
            v = json_integer(a->v[o->slot].i);
        else if (o->def->op == EDDY_AGG_DISTINCT)
            v = json_integer((json_int_t)eddy_hll_estimate(a->hlls[o->hll]));
        else {
            double d = output_value(l, a, i);
            v = isfinite(d) ? json_real(d) : json_null();
        }
        json_object_set_new(obj, o->def->name, v);
        if (o->def->op == EDDY_AGG_PERCENTILE &&
            eddy_sketch_quantile_degraded(a->sketches[o->sketch], o->def->q)) {
            if (!degraded)
                degraded = json_array();
            json_array_append_new(degraded, json_string(o->def->name));
        }
    }
    if (degraded)
        json_object_set_new(obj, EDDY_AGG_DEGRADED, degraded);
}
