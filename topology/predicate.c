/*
 * predicate.c — parsing and evaluating count_if predicates (see predicate.h).
 * A hand-written scanner: identifiers, numbers, strings, operators, `and`, `or`.
 * Comparing a string field with a number literal (or the reverse) is false, and
 * so is any comparison with a missing field — except `!=`, which is true.
 */
#include "topology/predicate.h"
#include "engine/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct scanner_s {
    const char *text; /* the whole predicate */
    const char *p;    /* next character */
} scanner_t;

static void skip_space(scanner_t *sc)
{
    while (isspace((unsigned char)*sc->p))
        sc->p++;
}

static int column(const scanner_t *sc)
{
    return (int)(sc->p - sc->text) + 1;
}

static bool word(scanner_t *sc, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(sc->p, w, n) == 0 && !isalnum((unsigned char)sc->p[n]) && sc->p[n] != '_') {
        sc->p += n;
        return true;
    }
    return false;
}

void eddy_predicate_destroy(eddy_predicate_t *pred)
{
    if (!pred)
        return;
    for (int i = 0; i < pred->n_terms; i++) {
        free(pred->terms[i].field_name);
        free(pred->terms[i].str);
    }
    free(pred->text);
    free(pred);
}

const char *eddy_predicate_field_name(const eddy_predicate_t *pred, int i)
{
    return pred->terms[i].field_name;
}

static bool parse_term(scanner_t *sc, eddy_pred_term_t *t, char *errstr, size_t errstr_size)
{
    skip_space(sc);
    const char *start = sc->p;
    while (isalnum((unsigned char)*sc->p) || *sc->p == '_' || *sc->p == '.' || *sc->p == '-')
        sc->p++;
    if (sc->p == start || isdigit((unsigned char)*start)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "predicate \"%s\", column %d: expected a field name", sc->text,
                  (int)(start - sc->text) + 1);
        return false;
    }
    t->field_name = strndup(start, (size_t)(sc->p - start));
    t->field = -1;
    skip_space(sc);
    static const struct {
        const char *text;
        eddy_cmp_t op;
    } ops[] = {{"==", EDDY_CMP_EQ}, {"!=", EDDY_CMP_NE}, {"<=", EDDY_CMP_LE},
               {">=", EDDY_CMP_GE}, {"<", EDDY_CMP_LT},  {">", EDDY_CMP_GT}};
    size_t k;
    for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
        if (!strncmp(sc->p, ops[k].text, strlen(ops[k].text)))
            break;
    if (k == sizeof(ops) / sizeof(ops[0])) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "predicate \"%s\", column %d: expected a comparison operator (== != < <= > "
                  ">=) after '%s'",
                  sc->text, column(sc), t->field_name);
        return false;
    }
    t->op = ops[k].op;
    sc->p += strlen(ops[k].text);
    skip_space(sc);
    if (*sc->p == '"') {
        const char *s = ++sc->p;
        while (*sc->p && *sc->p != '"')
            sc->p++;
        if (!*sc->p) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "predicate \"%s\", column %d: unterminated string", sc->text,
                      (int)(s - sc->text));
            return false;
        }
        t->is_string = true;
        t->len = (size_t)(sc->p - s);
        t->str = strndup(s, t->len);
        sc->p++;
        return true;
    }
    char *end;
    t->num = strtod(sc->p, &end);
    if (end == sc->p || !isfinite(t->num)) {
        eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                  "predicate \"%s\", column %d: expected a number or a \"string\" after the "
                  "operator",
                  sc->text, column(sc));
        return false;
    }
    sc->p = end;
    return true;
}

eddy_predicate_t *eddy_predicate_parse(const char *text, char *errstr, size_t errstr_size)
{
    eddy_predicate_t *pred = calloc(1, sizeof(*pred));
    if (!pred) {
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    pred->text = strdup(text);
    scanner_t sc = {text, text};
    for (;;) {
        if (pred->n_terms == EDDY_PREDICATE_MAX_TERMS) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "predicate \"%s\": at most %d comparisons", text, EDDY_PREDICATE_MAX_TERMS);
            goto fail;
        }
        if (!parse_term(&sc, &pred->terms[pred->n_terms++], errstr, errstr_size))
            goto fail;
        skip_space(&sc);
        if (word(&sc, "and") || word(&sc, "&&"))
            continue;
        pred->group_end[pred->n_groups++] = pred->n_terms;
        if (word(&sc, "or") || word(&sc, "||"))
            continue;
        skip_space(&sc);
        if (*sc.p) {
            eddy_errf(EDDY_ERR_INVALID, errstr, errstr_size,
                      "predicate \"%s\", column %d: expected 'and', 'or' or the end, got '%s'",
                      text, column(&sc), sc.p);
            goto fail;
        }
        return pred;
    }
fail:
    eddy_predicate_destroy(pred);
    return NULL;
}

static bool cmp_result(eddy_cmp_t op, int c)
{
    switch (op) {
    case EDDY_CMP_EQ:
        return c == 0;
    case EDDY_CMP_NE:
        return c != 0;
    case EDDY_CMP_LT:
        return c < 0;
    case EDDY_CMP_LE:
        return c <= 0;
    case EDDY_CMP_GT:
        return c > 0;
    case EDDY_CMP_GE:
        return c >= 0;
    }
    return false;
}

static bool eval_term(const eddy_pred_term_t *t, const eddy_value_t *values)
{
    const eddy_value_t *v = &values[t->field];
    if (t->is_string && v->type == EDDY_VALUE_STRING) {
        size_t n = v->len < t->len ? v->len : t->len;
        int c = memcmp(v->str, t->str, n);
        if (c == 0)
            c = v->len < t->len ? -1 : v->len > t->len;
        return cmp_result(t->op, c);
    }
    if (!t->is_string && (v->type == EDDY_VALUE_NUMBER || v->type == EDDY_VALUE_BOOL))
        return cmp_result(t->op, v->num < t->num ? -1 : v->num > t->num);
    return t->op == EDDY_CMP_NE;
}

bool eddy_predicate_eval(const eddy_predicate_t *pred, const eddy_value_t *values)
{
    int start = 0;
    for (int g = 0; g < pred->n_groups; g++) {
        bool all = true;
        for (int i = start; i < pred->group_end[g] && all; i++)
            all = eval_term(&pred->terms[i], values);
        if (all)
            return true;
        start = pred->group_end[g];
    }
    return false;
}
