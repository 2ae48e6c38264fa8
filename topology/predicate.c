/*
 * predicate.c — parsing and evaluating count_if predicates (see predicate.h).
 *
 * A recursive-descent parser over the text, one function per precedence level
 * (or, and, primary), building a tree in a fixed array of nodes: comparisons are
 * leaves, `and` / `or` nodes name their two children by index. Evaluation walks
 * the tree with short-circuiting; depth is bounded by the number of nodes.
 * Messages point at the 1-based column of the offending token.
 */
#include "topology/predicate.h"
#include "engine/util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NODES (2 * EDDY_PREDICATE_MAX_TERMS - 1)
#define MAX_DEPTH 16 /* nested parentheses */

typedef enum node_kind_e { NODE_CMP, NODE_AND, NODE_OR } node_kind_t;
typedef enum cmp_e { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } cmp_t;
typedef enum lit_e { LIT_NUMBER, LIT_STRING, LIT_BOOL } lit_t;

typedef struct node_s {
    node_kind_t kind; /* comparison, and, or */
    int lhs, rhs;     /* AND, OR: children (node indices) */
    int name;         /* CMP: index into the predicate's field names */
    int slot;         /* CMP: index into the values array (= name until bound) */
    cmp_t op;         /* CMP: the operator */
    lit_t lit;        /* CMP: the literal's type */
    double num;       /* LIT_NUMBER; LIT_BOOL as 1 or 0 */
    char *str;        /* LIT_STRING: unescaped (owned) */
    size_t len;       /* LIT_STRING: bytes in str */
} node_t;

struct eddy_predicate_s {
    char *text;                            /* as parsed (owned) */
    node_t nodes[MAX_NODES];               /* the tree */
    int n_nodes;                           /* nodes used */
    int root;                              /* the top node */
    int n_terms;                           /* comparisons among the nodes */
    char *names[EDDY_PREDICATE_MAX_TERMS]; /* distinct field names (owned) */
    size_t n_names;                        /* used */
};

typedef struct parser_s {
    const char *text;       /* the whole predicate */
    const char *p;          /* the next character */
    eddy_predicate_t *pred; /* what is being built */
    int depth;              /* open parentheses */
    char *errstr;           /* caller's buffer */
    size_t errstr_size;     /* its size */
    bool failed;            /* an error was written */
} parser_t;

static const char *const cmp_text[] = {"==", "!=", "<", "<=", ">", ">="};

static int column_of(const parser_t *ps, const char *at)
{
    return (int)(at - ps->text) + 1;
}

/* Writes "column N: <message>" once (the innermost error wins) and returns -1. */
static int fail_at(parser_t *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(parser_t *ps, const char *at, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    eddy_errf(EDDY_ERR_INVALID, ps->errstr, ps->errstr_size, "column %d: %s", column_of(ps, at),
              msg);
    return -1;
}

static void skip_space(parser_t *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == '@' || c == '$';
}

static bool ident_char(char c)
{
    return ident_start(c) || isdigit((unsigned char)c) || c == '.' || c == '-';
}

/* The token at p for "got ..." in messages: 'word' or "the end of the text". */
static void describe_token(const char *p, char *buf, size_t cap)
{
    if (!*p) {
        snprintf(buf, cap, "the end of the text");
        return;
    }
    size_t n = 0;
    if (ident_char(*p) || *p == '"' || *p == '\'')
        while (p[n] && !isspace((unsigned char)p[n]) && p[n] != '(' && p[n] != ')' && n < 24)
            n++;
    else
        while (p[n] && strchr("=!<>&|", p[n]) && n < 3)
            n++;
    if (n == 0)
        n = 1;
    snprintf(buf, cap, "'%.*s'", (int)n, p);
}

/* Consumes keyword w (case-insensitive) if it stands alone at p. */
static bool keyword(parser_t *ps, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(ps->p, w, n) == 0 && !ident_char(ps->p[n])) {
        ps->p += n;
        return true;
    }
    return false;
}

static int new_node(parser_t *ps, node_kind_t kind)
{
    eddy_predicate_t *pred = ps->pred;
    if (pred->n_nodes == MAX_NODES)
        return fail_at(ps, ps->p, "too long: at most %d comparisons", EDDY_PREDICATE_MAX_TERMS);
    node_t *n = &pred->nodes[pred->n_nodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    return pred->n_nodes++;
}

static int name_index(parser_t *ps, const char *name, size_t len)
{
    eddy_predicate_t *pred = ps->pred;
    for (size_t i = 0; i < pred->n_names; i++)
        if (strlen(pred->names[i]) == len && !memcmp(pred->names[i], name, len))
            return (int)i;
    if (!(pred->names[pred->n_names] = strndup(name, len)))
        return fail_at(ps, ps->p, "out of memory");
    return (int)pred->n_names++;
}

/* A field name: an identifier, or anything between backquotes. */
static int parse_field(parser_t *ps, const char **name, size_t *len)
{
    const char *start = ps->p;
    char got[40];
    if (*ps->p == '`') {
        const char *end = strchr(ps->p + 1, '`');
        if (!end)
            return fail_at(ps, start, "unterminated `quoted field name`");
        if (end == ps->p + 1)
            return fail_at(ps, start, "empty `quoted field name`");
        *name = ps->p + 1;
        *len = (size_t)(end - *name);
        ps->p = end + 1;
        return 0;
    }
    if (!ident_start(*ps->p)) {
        describe_token(ps->p, got, sizeof(got));
        return fail_at(ps, start,
                       "expected a field name (a comparison such as 'status >= 500'), got %s", got);
    }
    while (ident_char(*ps->p))
        ps->p++;
    *name = start;
    *len = (size_t)(ps->p - start);
    if ((*len == 3 && !strncasecmp(start, "and", 3)) || (*len == 2 && !strncasecmp(start, "or", 2)))
        return fail_at(ps, start,
                       "expected a field name, got '%.*s' (write `%.*s` for a field "
                       "of that name)",
                       (int)*len, start, (int)*len, start);
    return 0;
}

static int parse_string(parser_t *ps, node_t *n)
{
    const char *start = ps->p;
    char quote = *ps->p++;
    size_t cap = strlen(ps->p) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return fail_at(ps, start, "out of memory");
    for (;;) {
        char c = *ps->p;
        if (!c) {
            free(out);
            return fail_at(ps, start, "unterminated string (no closing %c)", quote);
        }
        ps->p++;
        if (c == quote)
            break;
        if (c == '\\') {
            char e = *ps->p;
            if (e == '\\' || e == '"' || e == '\'')
                c = e;
            else if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else {
                free(out);
                return fail_at(ps, ps->p - 1,
                               "unknown escape '\\%c' (use \\\\, \\\", \\', \\n or \\t)",
                               e ? e : ' ');
            }
            ps->p++;
        }
        out[len++] = c;
    }
    out[len] = '\0';
    n->lit = LIT_STRING;
    n->str = out;
    n->len = len;
    return 0;
}

/* A number as JSON writes it, with an optional sign: [+-]?digits[.digits][e[+-]digits]. */
static int parse_number(parser_t *ps, node_t *n)
{
    const char *start = ps->p, *q = ps->p;
    if (*q == '+' || *q == '-')
        q++;
    const char *digits = q;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.')
        for (q++; isdigit((unsigned char)*q);)
            q++;
    bool some_digit = q > digits && !(q == digits + 1 && *digits == '.');
    if (some_digit && (*q == 'e' || *q == 'E')) {
        const char *e = q + 1;
        if (*e == '+' || *e == '-')
            e++;
        if (isdigit((unsigned char)*e)) {
            while (isdigit((unsigned char)*e))
                e++;
            q = e;
        }
    }
    char got[40];
    if (!some_digit || ident_char(*q) || q - start > 64) {
        describe_token(start, got, sizeof(got));
        return fail_at(ps, start, "expected a number, got %s", got);
    }
    char buf[80];
    memcpy(buf, start, (size_t)(q - start));
    buf[q - start] = '\0';
    n->lit = LIT_NUMBER;
    n->num = strtod(buf, NULL);
    if (!isfinite(n->num))
        return fail_at(ps, start, "the number %s is out of range", buf);
    ps->p = q;
    return 0;
}

static int parse_comparison(parser_t *ps)
{
    const char *name = NULL;
    size_t len = 0;
    if (parse_field(ps, &name, &len) < 0)
        return -1;
    if (ps->pred->n_terms == EDDY_PREDICATE_MAX_TERMS)
        return fail_at(ps, name, "too long: at most %d comparisons", EDDY_PREDICATE_MAX_TERMS);
    int idx = new_node(ps, NODE_CMP);
    if (idx < 0)
        return -1;
    ps->pred->n_terms++;
    int name_idx = name_index(ps, name, len);
    if (name_idx < 0)
        return -1;
    node_t *n = &ps->pred->nodes[idx];
    n->name = n->slot = name_idx;

    skip_space(ps);
    const char *at = ps->p;
    static const cmp_t order[] = {CMP_EQ, CMP_NE, CMP_LE, CMP_GE, CMP_LT, CMP_GT};
    size_t k;
    for (k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        if (!strncmp(ps->p, cmp_text[order[k]], strlen(cmp_text[order[k]])))
            break;
    char got[40];
    if (k == sizeof(order) / sizeof(order[0])) {
        if (*at == '=')
            return fail_at(ps, at, "'=' is not an operator; did you mean '=='?");
        describe_token(at, got, sizeof(got));
        return fail_at(ps, at,
                       "expected a comparison operator (==, !=, <, <=, >, >=) after '%.*s', "
                       "got %s",
                       (int)len, name, got);
    }
    n->op = order[k];
    ps->p += strlen(cmp_text[n->op]);

    skip_space(ps);
    at = ps->p;
    if (*at == '"' || *at == '\'')
        return parse_string(ps, n) < 0 ? -1 : idx;
    if (isdigit((unsigned char)*at) || *at == '-' || *at == '+' || *at == '.')
        return parse_number(ps, n) < 0 ? -1 : idx;
    if (keyword(ps, "true") || keyword(ps, "false")) {
        n->lit = LIT_BOOL;
        n->num = tolower((unsigned char)*at) == 't';
        if (n->op != CMP_EQ && n->op != CMP_NE)
            return fail_at(ps, at, "true and false can only be compared with == or !=");
        return idx;
    }
    describe_token(at, got, sizeof(got));
    return fail_at(ps, at, "expected a number, a quoted string, true or false after '%s', got %s",
                   cmp_text[n->op], got);
}

static int parse_or(parser_t *ps);

static int parse_primary(parser_t *ps)
{
    skip_space(ps);
    if (*ps->p != '(')
        return parse_comparison(ps);
    const char *open = ps->p++;
    if (++ps->depth > MAX_DEPTH)
        return fail_at(ps, open, "parentheses nested deeper than %d", MAX_DEPTH);
    int inner = parse_or(ps);
    if (inner < 0)
        return -1;
    skip_space(ps);
    if (*ps->p != ')') {
        char got[40];
        describe_token(ps->p, got, sizeof(got));
        return fail_at(ps, ps->p,
                       "expected 'and', 'or' or ')' to close the '(' of column %d, "
                       "got %s",
                       column_of(ps, open), got);
    }
    ps->p++;
    ps->depth--;
    return inner;
}

/* One precedence level: operand (word operand)*, left-associative. */
static int parse_level(parser_t *ps, const char *word, node_kind_t kind, int (*operand)(parser_t *))
{
    int lhs = operand(ps);
    for (;;) {
        if (lhs < 0)
            return -1;
        skip_space(ps);
        const char *at = ps->p;
        if (!keyword(ps, word)) {
            static const struct {
                const char *text, *instead;
            } cstyle[] = {{"&&", "and"}, {"||", "or"}};
            for (size_t i = 0; i < 2; i++)
                if (!strncmp(at, cstyle[i].text, 2))
                    return fail_at(ps, at, "'%s' is not an operator; use '%s'", cstyle[i].text,
                                   cstyle[i].instead);
            return lhs;
        }
        int rhs = operand(ps);
        if (rhs < 0)
            return -1;
        int n = new_node(ps, kind);
        if (n < 0)
            return -1;
        ps->pred->nodes[n].lhs = lhs;
        ps->pred->nodes[n].rhs = rhs;
        lhs = n;
    }
}

static int parse_and(parser_t *ps)
{
    return parse_level(ps, "and", NODE_AND, parse_primary);
}

static int parse_or(parser_t *ps)
{
    return parse_level(ps, "or", NODE_OR, parse_and);
}

void eddy_predicate_destroy(eddy_predicate_t *pred)
{
    if (!pred)
        return;
    for (int i = 0; i < pred->n_nodes; i++)
        free(pred->nodes[i].str);
    for (size_t i = 0; i < pred->n_names; i++)
        free(pred->names[i]);
    free(pred->text);
    free(pred);
}

eddy_predicate_t *eddy_predicate_parse(const char *text, char *errstr, size_t errstr_size)
{
    eddy_predicate_t *pred = calloc(1, sizeof(*pred));
    if (!pred || !(pred->text = strdup(text))) {
        free(pred);
        eddy_errf(EDDY_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    parser_t ps = {
        .text = text, .p = text, .pred = pred, .errstr = errstr, .errstr_size = errstr_size};
    skip_space(&ps);
    if (!*ps.p) {
        fail_at(&ps, ps.p, "empty predicate; expected a comparison such as 'status >= 500'");
        goto fail;
    }
    pred->root = parse_or(&ps);
    if (pred->root < 0)
        goto fail;
    skip_space(&ps);
    if (*ps.p == ')') {
        fail_at(&ps, ps.p, "')' without a matching '('");
        goto fail;
    }
    if (*ps.p) {
        char got[40];
        describe_token(ps.p, got, sizeof(got));
        fail_at(&ps, ps.p, "expected 'and', 'or' or the end of the text, got %s", got);
        goto fail;
    }
    return pred;
fail:
    eddy_predicate_destroy(pred);
    return NULL;
}

const char *eddy_predicate_text(const eddy_predicate_t *pred)
{
    return pred->text;
}

size_t eddy_predicate_field_count(const eddy_predicate_t *pred)
{
    return pred->n_names;
}

const char *eddy_predicate_field_name(const eddy_predicate_t *pred, size_t i)
{
    return pred->names[i];
}

unsigned eddy_predicate_field_literals(const eddy_predicate_t *pred, size_t i)
{
    static const unsigned bits[] = {[LIT_NUMBER] = EDDY_PREDICATE_LIT_NUMBER,
                                    [LIT_STRING] = EDDY_PREDICATE_LIT_STRING,
                                    [LIT_BOOL] = EDDY_PREDICATE_LIT_BOOL};
    unsigned lits = 0;
    for (int k = 0; k < pred->n_nodes; k++)
        if (pred->nodes[k].kind == NODE_CMP && pred->nodes[k].name == (int)i)
            lits |= bits[pred->nodes[k].lit];
    return lits;
}

void eddy_predicate_bind(eddy_predicate_t *pred, size_t i, int slot)
{
    for (int k = 0; k < pred->n_nodes; k++)
        if (pred->nodes[k].kind == NODE_CMP && pred->nodes[k].name == (int)i)
            pred->nodes[k].slot = slot;
}

static bool compare(const node_t *n, const eddy_value_t *v)
{
    int c;
    if (n->lit == LIT_NUMBER && v->type == EDDY_VALUE_NUMBER) {
        c = v->num < n->num ? -1 : v->num > n->num;
    } else if (n->lit == LIT_STRING && v->type == EDDY_VALUE_STRING) {
        size_t common = v->len < n->len ? v->len : n->len;
        c = common ? memcmp(v->str, n->str, common) : 0;
        if (c == 0)
            c = v->len < n->len ? -1 : v->len > n->len;
    } else if (n->lit == LIT_BOOL && v->type == EDDY_VALUE_BOOL) {
        c = v->num != n->num;
    } else {
        return n->op == CMP_NE; /* missing, null or another type: never equal */
    }
    switch (n->op) {
    case CMP_EQ:
        return c == 0;
    case CMP_NE:
        return c != 0;
    case CMP_LT:
        return c < 0;
    case CMP_LE:
        return c <= 0;
    case CMP_GT:
        return c > 0;
    case CMP_GE:
        return c >= 0;
    }
    return false;
}

static bool eval_node(const eddy_predicate_t *pred, int i, const eddy_value_t *values)
{
    const node_t *n = &pred->nodes[i];
    switch (n->kind) {
    case NODE_AND:
        return eval_node(pred, n->lhs, values) && eval_node(pred, n->rhs, values);
    case NODE_OR:
        return eval_node(pred, n->lhs, values) || eval_node(pred, n->rhs, values);
    case NODE_CMP:
        break;
    }
    return compare(n, &values[n->slot]);
}

bool eddy_predicate_eval(const eddy_predicate_t *pred, const eddy_value_t *values)
{
    return eval_node(pred, pred->root, values);
}
