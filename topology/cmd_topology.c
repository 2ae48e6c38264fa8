/*
 * cmd_topology.c — `eddy topology check|describe FILE`: validate a topology file
 * and show its graph (source -> stores -> sinks), as text or as JSON (--json; the
 * dashboard and /api/topology use the same rendering, eddy_topology_to_json).
 */
#include "engine/cli.h"
#include "topology/topology_int.h"
#include "topology/topology_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char topology_help[] =
    "usage: eddy topology check FILE\n"
    "       eddy topology describe [--json] FILE\n"
    "\n"
    "check     validates a topology file; prints 'FILE: ok (N stores)' or the error,\n"
    "          which names the file, the JSON path and what was expected (exit 1)\n"
    "describe  prints the graph: source topics -> stores (group by, window,\n"
    "          aggregates) -> sink topics, and the event fields the topology reads;\n"
    "          --json prints it as JSON\n"
    "\n"
    "The file format is described in docs/topology.md; examples are in\n"
    "topology/examples/.\n";

static const char *op_name(eddy_agg_op_t op)
{
    static const char *const names[] = {"count", "count_if",   "sum",      "min",  "max",
                                        "mean",  "percentile", "distinct", "ratio"};
    return names[op];
}

static void describe_text(const eddy_topology_t *topo)
{
    printf("topology %s\n", topo->name);
    printf("  source: ");
    for (size_t i = 0; i < topo->n_sources; i++)
        printf("%s%s", i ? ", " : "", topo->sources[i]);
    printf("  (event time: %s, %s)\n", topo->ts_field_name,
           topo->ts_format == EDDY_TS_EPOCH_MS  ? "epoch ms"
           : topo->ts_format == EDDY_TS_ISO8601 ? "ISO-8601"
                                                : "epoch ms or ISO-8601");
    for (size_t i = 0; i < topo->n_stores; i++) {
        const eddy_store_def_t *s = topo->stores[i];
        char size[32], advance[32], grace[32], retention[32];
        eddy_duration_format(s->window.size_ms, size, sizeof(size));
        eddy_duration_format(s->window.advance_ms, advance, sizeof(advance));
        eddy_duration_format(s->window.grace_ms, grace, sizeof(grace));
        eddy_duration_format(s->window.retention_ms, retention, sizeof(retention));
        printf("    |\n    +-> store %s\n", s->name);
        printf("          group by: ");
        if (s->n_group == 0)
            printf("(one global group)");
        for (size_t g = 0; g < s->n_group; g++)
            printf("%s%s", g ? ", " : "", s->group_names[g]);
        if (s->window.type == EDDY_WINDOW_TUMBLING)
            printf("\n          window:   tumbling %s", size);
        else
            printf("\n          window:   hopping %s every %s", size, advance);
        printf(", grace %s, retention %s\n", grace, retention);
        for (size_t a = 0; a < s->n_aggregates; a++) {
            const eddy_agg_def_t *d = &s->aggregates[a];
            printf("          %-18s %s", d->name, op_name(d->op));
            if (d->op == EDDY_AGG_COUNT_IF)
                printf(" where %s", d->predicate->text);
            else if (d->op == EDDY_AGG_PERCENTILE)
                printf(" %g of %s", d->q, d->field_name);
            else if (d->op == EDDY_AGG_RATIO)
                printf(" %s / %s", d->num_name, d->den_name);
            else if (d->field_name)
                printf(" of %s", d->field_name);
            printf("\n");
        }
        if (s->sink_topic)
            printf("          -> sink %s (%s)\n", s->sink_topic,
                   s->sink_emit == EDDY_EMIT_ON_CLOSE ? "closed windows" : "every update");
    }
    printf("  fields read: ");
    for (size_t i = 0; i < topo->n_fields; i++)
        printf("%s%s", i ? ", " : "", topo->fields[i]);
    printf("\n");
}

int eddy_cmd_topology(int argc, char **argv)
{
    if (argc < 2)
        return eddy_cli_usage_error("topology", "expected 'check FILE' or 'describe FILE'");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(topology_help, stdout);
        return EDDY_EXIT_OK;
    }
    const char *sub = argv[1];
    bool as_json = false;
    const char *file = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(topology_help, stdout);
            return EDDY_EXIT_OK;
        } else if (!strcmp(argv[i], "--json") && !strcmp(sub, "describe")) {
            as_json = true;
        } else if (argv[i][0] == '-') {
            return eddy_cli_usage_error("topology", "unknown option '%s'", argv[i]);
        } else if (file) {
            return eddy_cli_usage_error("topology", "unexpected argument '%s'", argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (strcmp(sub, "check") && strcmp(sub, "describe"))
        return eddy_cli_usage_error("topology", "unknown subcommand '%s' (check or describe)", sub);
    if (!file)
        return eddy_cli_usage_error("topology", "%s needs a FILE", sub);

    char errstr[1024];
    eddy_topology_t *topo = eddy_topology_load_file(file, errstr, sizeof(errstr));
    if (!topo) {
        fprintf(stderr, "%s\n", errstr);
        return EDDY_EXIT_FAIL;
    }
    if (!strcmp(sub, "check")) {
        printf("%s: ok (%zu stores)\n", file, topo->n_stores);
    } else if (as_json) {
        json_t *j = eddy_topology_to_json(topo);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(j);
    } else {
        describe_text(topo);
    }
    eddy_topology_destroy(topo);
    return EDDY_EXIT_OK;
}
