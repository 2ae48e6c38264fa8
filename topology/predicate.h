/*
 * predicate.h — count_if predicates: "status >= 500",
 * "region == \"eu-west-1\" and status >= 500", "status == 429 or status >= 500".
 * Comparisons FIELD OP LITERAL (OP one of == != < <= > >=; LITERAL a number or a
 * double-quoted string) joined by `and` / `or`, `and` binding tighter. Parsed
 * once when the topology loads; evaluation (topology_int.h) never allocates.
 */
#ifndef EDDY_PREDICATE_H
#define EDDY_PREDICATE_H

#include "topology/topology_int.h"

/** Parses `text`; NULL with a message naming the column on a syntax error. Field
 *  indices are left -1 until the topology resolves them. */
eddy_predicate_t *eddy_predicate_parse(const char *text, char *errstr, size_t errstr_size);

void eddy_predicate_destroy(eddy_predicate_t *pred);

/** The field name of term i, as written. */
const char *eddy_predicate_field_name(const eddy_predicate_t *pred, int i);

#endif /* EDDY_PREDICATE_H */
