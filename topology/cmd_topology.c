/*
 * cmd_topology.c — `eddy topology check|describe`: validate topology files and
 * show a topology's graph (source -> stores -> sinks, and the event fields it
 * reads), as text or as JSON (--json, the same rendering as the HTTP API).
 * Runs on the main thread; stdout gets the result, stderr the errors.
 */
#include "engine/cli.h"
#include "topology/predicate.h"
#include "topology/topology_int.h"
#include "topology/topology_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char topology_help[] =
    "usage: eddy topology check FILE...\n"
    "       eddy topology describe [--json] FILE\n"
    "\n"
    "Topology files declare what eddy computes: the source topic(s), how to read each\n"
    "event's time, and window stores with their group keys, windows, aggregates and\n"
    "sink topics. The format is described in docs/topology.md; examples are in\n"
    "topology/examples/.\n"
    "\n"
    "check     validates each FILE; prints 'FILE: ok (N stores)' on stdout, or on\n"
    "          stderr one line naming the file, the JSON path and what was expected\n"
    "describe  prints the graph: source topics -> each store (group by, window,\n"
    "          aggregates, sink) and the table of event fields the topology reads\n"
    "\n"
    "options:\n"
    "  --json      (describe) print the topology as JSON instead, durations in ms\n"
    "  -h, --help  this help\n"
    "\n"
    "Exit codes: 0 valid, 1 a file is invalid or unreadable, 2 usage error.\n";

static void print_window(const eddy_window_spec_t *w)
{
    char size[48], advance[48], grace[48], retention[48];
    eddy_duration_format(w->size_ms, size, sizeof(size));
    eddy_duration_format(w->advance_ms, advance, sizeof(advance));
    eddy_duration_format(w->grace_ms, grace, sizeof(grace));
    eddy_duration_format(w->retention_ms, retention, sizeof(retention));
    if (w->type == EDDY_WINDOW_TUMBLING)
        printf("tumbling %s", size);
    else
        printf("hopping %s advancing %s (up to %zu windows per event)", size, advance,
               eddy_window_max_per_event(w));
    printf(", grace %s, retention %s\n", grace, retention);
}

static void print_aggregate(const eddy_agg_def_t *agg, int width)
{
    printf("%-*s  %s", width, agg->name, eddy_agg_op_name(agg->op));
    switch (agg->op) {
    case EDDY_AGG_COUNT:
        break;
    case EDDY_AGG_COUNT_IF:
        printf(" where %s", eddy_predicate_text(agg->predicate));
        break;
    case EDDY_AGG_PERCENTILE:
        printf(" %g of %s", agg->q, agg->field_name);
        break;
    case EDDY_AGG_RATIO:
        printf(" %s / %s", agg->num_name, agg->den_name);
        break;
    default:
        printf(" of %s", agg->field_name);
    }
    printf("\n");
}

static void describe_text(const eddy_topology_t *topo)
{
    printf("topology %s\n", topo->name);
    if (topo->description)
        printf("  %s\n", topo->description);
    printf("\nsource ");
    for (size_t i = 0; i < topo->n_sources; i++)
        printf("%s%s", i ? ", " : "", topo->sources[i]);
    printf(" (JSON events; event time: field \"%s\", %s)\n", topo->ts_field_name,
           eddy_ts_format_name(topo->ts_format));
    for (size_t i = 0; i < topo->n_stores; i++) {
        const eddy_store_def_t *s = topo->stores[i];
        const char *bar = i + 1 < topo->n_stores ? "|" : " ";
        printf("  |\n  +-> store %s\n", s->name);
        if (s->description)
            printf("  %s     %s\n", bar, s->description);
        printf("  %s     group by    ", bar);
        if (s->n_group == 0)
            printf("(nothing: one group of all events, key \"\")");
        for (size_t g = 0; g < s->n_group; g++)
            printf("%s%s", g ? ", " : "", s->group_names[g]);
        printf("\n  %s     window      ", bar);
        print_window(&s->window);
        int width = 0;
        for (size_t a = 0; a < s->n_aggregates; a++)
            if ((int)strlen(s->aggregates[a].name) > width)
                width = (int)strlen(s->aggregates[a].name);
        for (size_t a = 0; a < s->n_aggregates; a++) {
            printf("  %s     %s", bar, a == 0 ? "aggregates  " : "            ");
            print_aggregate(&s->aggregates[a], width);
        }
        printf("  %s     sink        ", bar);
        if (s->sink_topic)
            printf("-> %s (emit %s)\n", s->sink_topic, eddy_emit_name(s->sink_emit));
        else
            printf("none (served by queries only)\n");
    }
    static const char *const use_names[EDDY_FIELD_USE_COUNT] = {"timestamp", "group_by", "numeric",
                                                                "distinct", "predicate"};
    int width = 4, uses_width = 7;
    char uses[EDDY_TOPOLOGY_MAX_FIELDS][64];
    for (size_t i = 0; i < topo->n_fields; i++) {
        if ((int)strlen(topo->fields[i]) > width)
            width = (int)strlen(topo->fields[i]);
        size_t n = 0;
        uses[i][0] = '\0';
        for (unsigned b = 0; b < EDDY_FIELD_USE_COUNT; b++)
            if (topo->field_uses[i] & (1u << b))
                n += (size_t)snprintf(uses[i] + n, sizeof(uses[i]) - n, "%s%s", n ? ", " : "",
                                      use_names[b]);
        if ((int)n > uses_width)
            uses_width = (int)n;
    }
    printf("\nfields read from each event (%zu):\n", topo->n_fields);
    printf("  slot  %-*s  need     %-*s  valid\n", width, "name", uses_width, "used by");
    for (size_t i = 0; i < topo->n_fields; i++) {
        const eddy_field_rule_t *r = &topo->field_rules[i];
        printf("  %-4zu  %-*s  %-7s  %-*s  %s", i, width, topo->fields[i],
               eddy_field_type_name(r->type), uses_width, uses[i],
               r->required ? "required" : "optional (absent or null: no value)");
        if (isfinite(r->min) && isfinite(r->max))
            printf("; %.15g to %.15g", r->min, r->max);
        else if (isfinite(r->min))
            printf("; at least %.15g", r->min);
        else if (isfinite(r->max))
            printf("; at most %.15g", r->max);
        if (r->coerce)
            printf("; a string holding a number counts as it");
        if ((int)i == topo->ts_field) {
            char ahead[48] = "event.time.max.future.ms";
            if (topo->ts_max_future_ms >= 0)
                eddy_duration_format(topo->ts_max_future_ms, ahead, sizeof(ahead));
            printf("; from 1970 to the wall clock + %s", ahead);
        }
        printf("\n");
    }
    if (topo->n_views)
        printf("\nviews (%zu), served by eddy run:\n", topo->n_views);
    for (size_t i = 0; i < topo->n_views; i++) {
        const eddy_view_def_t *v = topo->views[i];
        printf("  GET %s  (%s)\n      %s of store %s", v->route, v->name,
               v->combine == EDDY_VIEW_MERGE ? "merged per key" : "series", v->store_name);
        if (v->key_from_param)
            printf(", key {%s}", v->param);
        else if (v->key)
            printf(", key \"%s\"", v->key);
        if (v->windows)
            printf(", %lld window%s", (long long)v->windows, v->windows == 1 ? "" : "s");
        else {
            char last[32];
            eddy_duration_format(v->last_ms, last, sizeof(last));
            printf(", last %s", last);
        }
        printf(" back from %s", v->at == EDDY_VIEW_NOW ? "now" : "stream time");
        if (v->having)
            printf(", having %s", eddy_predicate_text(v->having));
        if (v->share_name)
            printf(", share of %s", v->share_name);
        printf("\n");
    }
}

static int describe_json(const eddy_topology_t *topo)
{
    json_t *j = eddy_topology_to_json(topo);
    if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0) {
        json_decref(j);
        fprintf(stderr, "eddy topology: out of memory\n");
        return EDDY_EXIT_FAIL;
    }
    json_decref(j);
    printf("\n");
    return EDDY_EXIT_OK;
}

int eddy_cmd_topology(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(topology_help, stdout);
            return EDDY_EXIT_OK;
        }
    if (argc < 2)
        return eddy_cli_usage_error("topology", "expected a subcommand: check or describe");
    const char *sub = argv[1];
    bool describe = !strcmp(sub, "describe");
    if (!describe && strcmp(sub, "check"))
        return eddy_cli_usage_error("topology", "unknown subcommand '%s' (check or describe)", sub);
    bool as_json = false, options = true;
    const char *files[argc];
    int n_files = 0;
    for (int i = 2; i < argc; i++) {
        if (options && !strcmp(argv[i], "--"))
            options = false;
        else if (options && describe && !strcmp(argv[i], "--json"))
            as_json = true;
        else if (options && argv[i][0] == '-' && argv[i][1])
            return eddy_cli_usage_error("topology", "%s: unknown option '%s'", sub, argv[i]);
        else
            files[n_files++] = argv[i];
    }
    if (n_files == 0)
        return eddy_cli_usage_error("topology", "%s needs a FILE", sub);
    if (describe && n_files > 1)
        return eddy_cli_usage_error("topology", "describe takes one FILE, got %d", n_files);

    int rc = EDDY_EXIT_OK;
    for (int i = 0; i < n_files; i++) {
        char errstr[1024];
        eddy_topology_t *topo = eddy_topology_load_file(files[i], errstr, sizeof(errstr));
        if (!topo) {
            fprintf(stderr, "%s\n", errstr);
            rc = EDDY_EXIT_FAIL;
            continue;
        }
        if (!describe)
            printf("%s: ok (%zu %s)\n", files[i], topo->n_stores,
                   topo->n_stores == 1 ? "store" : "stores");
        else if (as_json)
            rc = describe_json(topo);
        else
            describe_text(topo);
        eddy_topology_destroy(topo);
    }
    fflush(stdout);
    return rc;
}
