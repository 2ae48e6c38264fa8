/*
 * predicate.h — count_if predicates ("where"): comparisons FIELD OP LITERAL, OP
 * one of == != < <= > >=, LITERAL a number, a "string" or 'string', true or
 * false, joined by `and` / `or` (`and` binds tighter) and grouped by parentheses:
 *   status >= 500
 *   region == "eu-west-1" and (status == 429 or status >= 500)
 * Parsed once, when the topology is built, into a small array of nodes; evaluation
 * (eddy_predicate_eval in topology_int.h) never allocates. Built on one thread,
 * read-only and shareable afterwards.
 */
#ifndef EDDY_PREDICATE_H
#define EDDY_PREDICATE_H

#include "topology/topology_int.h"

/** Parses `text`. NULL on failure, with a message starting with the 1-based
 *  column, e.g. "column 8: expected a comparison operator (==, !=, <, <=, >, >=)
 *  after 'status', got 'is'". Until bound, a predicate reads field i of its own
 *  field list from values[i]. */
eddy_predicate_t *eddy_predicate_parse(const char *text, char *errstr, size_t errstr_size);

void eddy_predicate_destroy(eddy_predicate_t *pred);

/** The text as it was parsed. */
const char *eddy_predicate_text(const eddy_predicate_t *pred);

/** The distinct fields the predicate reads, in order of first appearance. */
size_t eddy_predicate_field_count(const eddy_predicate_t *pred);
const char *eddy_predicate_field_name(const eddy_predicate_t *pred, size_t i);

/* Kinds of literal a field is compared with (eddy_predicate_field_literals). */
enum {
    EDDY_PREDICATE_LIT_NUMBER = 1 << 0, /* 500, -1.5 */
    EDDY_PREDICATE_LIT_STRING = 1 << 1, /* "eu-west-1" */
    EDDY_PREDICATE_LIT_BOOL = 1 << 2,   /* true, false */
};

/** The kinds of literal (EDDY_PREDICATE_LIT_* bits) field i is compared with. */
unsigned eddy_predicate_field_literals(const eddy_predicate_t *pred, size_t i);

/** Makes the predicate read its field i from values[slot] (a field-table slot). */
void eddy_predicate_bind(eddy_predicate_t *pred, size_t i, int slot);

#endif /* EDDY_PREDICATE_H */
