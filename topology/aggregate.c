/*
 * aggregate.c — aggregate layouts and states (see aggregate.h).
 *
 * State = a fixed array of scalar slots (int64 counters and doubles) plus arrays
 * of sketch and HLL pointers, sized by the layout. Serialized form, version 1:
 *   u8 version, then each scalar slot (int64 as zigzag varint, double as 8 bytes
 *   little-endian), then per sketch and per HLL a varint length + its bytes.
 */
#include "topology/aggregate.h"
#include "engine/util.h"
#include "topology/hll.h"
#include "topology/sketch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_VERSION 1
#define MAX_SLOTS      64

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
            break;
        default:
            a->v[i].i = 0;
        }
    }
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

void eddy_agg_update(const eddy_agg_layout_t *l, eddy_agg_t *a, const eddy_value_t *values)
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
                a->v[i].d += v->num;
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
    for (int i = 0; i < l->n_sketches; i++) {
        const eddy_value_t *v = &values[l->sketch_fields[i]];
        if (v->type == EDDY_VALUE_NUMBER)
            eddy_sketch_add(a->sketches[i], v->num);
    }
    for (int i = 0; i < l->n_hlls; i++) {
        const eddy_value_t *v = &values[l->hll_fields[i]];
        if (v->type == EDDY_VALUE_STRING)
            eddy_hll_add(a->hlls[i], v->str, v->len);
        else if (v->type == EDDY_VALUE_NUMBER)
            eddy_hll_add(a->hlls[i], &v->num, sizeof(v->num));
    }
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
            dst->v[i].d += src->v[i].d;
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

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool is_int_slot(slot_kind_t k)
{
    return k == SLOT_COUNT || k == SLOT_COUNTIF || k == SLOT_NCOUNT;
}

size_t eddy_agg_serialized_size(const eddy_agg_layout_t *l, const eddy_agg_t *a)
{
    size_t n = 1 + (size_t)l->n_slots * 10;
    for (int i = 0; i < l->n_sketches; i++)
        n += 10 + eddy_sketch_serialized_size(a->sketches[i]);
    for (int i = 0; i < l->n_hlls; i++)
        n += 10 + eddy_hll_serialized_size(a->hlls[i]);
    return n;
}

size_t eddy_agg_serialize(const eddy_agg_layout_t *l, const eddy_agg_t *a, uint8_t *buf, size_t cap)
{
    if (cap < eddy_agg_serialized_size(l, a))
        return 0;
    uint8_t *p = buf;
    *p++ = FORMAT_VERSION;
    for (int i = 0; i < l->n_slots; i++) {
        if (is_int_slot(l->slots[i].kind)) {
            int64_t v = a->v[i].i;
            p += put_varint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
        } else {
            uint64_t bits;
            memcpy(&bits, &a->v[i].d, 8);
            for (int b = 0; b < 8; b++)
                *p++ = (uint8_t)(bits >> (8 * b));
        }
    }
    for (int i = 0; i < l->n_sketches; i++) {
        size_t len = eddy_sketch_serialized_size(a->sketches[i]);
        p += put_varint(p, len);
        p += eddy_sketch_serialize(a->sketches[i], p, len);
    }
    for (int i = 0; i < l->n_hlls; i++) {
        size_t len = eddy_hll_serialized_size(a->hlls[i]);
        p += put_varint(p, len);
        p += eddy_hll_serialize(a->hlls[i], p, len);
    }
    return (size_t)(p - buf);
}

eddy_err_t eddy_agg_deserialize(const eddy_agg_layout_t *l, eddy_agg_t *a, const uint8_t *buf,
                                size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    if (len < 1 || *p++ != FORMAT_VERSION)
        return EDDY_ERR_INVALID;
    for (int i = 0; i < l->n_slots; i++) {
        if (is_int_slot(l->slots[i].kind)) {
            uint64_t z;
            if (!get_varint(&p, end, &z))
                return EDDY_ERR_INVALID;
            a->v[i].i = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        } else {
            if (end - p < 8)
                return EDDY_ERR_INVALID;
            uint64_t bits = 0;
            for (int b = 0; b < 8; b++)
                bits |= (uint64_t)p[b] << (8 * b);
            p += 8;
            memcpy(&a->v[i].d, &bits, 8);
        }
    }
    for (int i = 0; i < l->n_sketches; i++) {
        uint64_t n;
        if (!get_varint(&p, end, &n) || n > (uint64_t)(end - p) ||
            eddy_sketch_deserialize(a->sketches[i], p, (size_t)n))
            return EDDY_ERR_INVALID;
        p += n;
    }
    for (int i = 0; i < l->n_hlls; i++) {
        uint64_t n;
        if (!get_varint(&p, end, &n) || n > (uint64_t)(end - p) ||
            eddy_hll_deserialize(a->hlls[i], p, (size_t)n))
            return EDDY_ERR_INVALID;
        p += n;
    }
    return p == end ? EDDY_OK : EDDY_ERR_INVALID;
}

int64_t eddy_agg_count(const eddy_agg_t *agg)
{
    return agg->v[0].i;
}

/* --- reading --------------------------------------------------------------------- */

/* The value of output i as a double; NAN when undefined. */
static double output_value(const eddy_agg_layout_t *l, const eddy_agg_t *a, int i)
{
    const output_t *o = &l->outputs[i];
    switch (o->def->op) {
    case EDDY_AGG_COUNT:
    case EDDY_AGG_COUNT_IF:
        return (double)a->v[o->slot].i;
    case EDDY_AGG_SUM:
        return a->v[o->slot].d;
    case EDDY_AGG_MIN:
    case EDDY_AGG_MAX:
        return isinf(a->v[o->slot].d) ? NAN : a->v[o->slot].d;
    case EDDY_AGG_MEAN:
        return a->v[o->slot2].i ? a->v[o->slot].d / (double)a->v[o->slot2].i : NAN;
    case EDDY_AGG_PERCENTILE:
        return eddy_sketch_quantile(a->sketches[o->sketch], o->def->q);
    case EDDY_AGG_DISTINCT:
        return (double)eddy_hll_estimate(a->hlls[o->hll]);
    case EDDY_AGG_RATIO: {
        double den = output_value(l, a, o->den);
        return den != 0 ? output_value(l, a, o->num) / den : NAN;
    }
    }
    return NAN;
}

void eddy_agg_to_json(const eddy_agg_layout_t *l, const eddy_agg_t *a, json_t *obj)
{
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
    }
}
