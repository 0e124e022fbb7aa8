/* clawbox health / clawbox status: read GET /health. */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>

static const char health_usage[] =
    "Usage: clawbox health [--host H] [--port P] [--socket PATH]\n\n"
    "Prints the server's /health response as JSON.\n\n" CLI_CONN_HELP;
static const char status_usage[] =
    "Usage: clawbox status [--host H] [--port P] [--socket PATH] [--json]\n\n"
    "Prints a short summary of the server's health; with --json, the whole\n"
    "/health answer (as clawbox health does).\n\n" CLI_CONN_HELP;

/* Parses the connection options; returns -1 to go on, else an exit code. */
static int parse_health_args(int argc, char **argv, struct cli_conn *c, bool *as_json,
                             const char *usage)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    cli_conn_init(c);
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(c, o, optarg))
            continue;
        if (o == 'j') {
            *as_json = true;
            continue;
        }
        return o == 'h' ? (fputs(usage, stdout), 0) : (fputs(usage, stderr), 2);
    }
    return -1;
}

static json_t *fetch_health(int argc, char **argv, const char *usage, bool *as_json, int *rc)
{
    struct cli_conn c;
    struct cb_buf body;
    json_t *j = NULL;
    *rc = parse_health_args(argc, argv, &c, as_json, usage);
    if (*rc >= 0)
        return NULL;
    cb_buf_init(&body, CB_CLIENT_MAX_RESPONSE);
    *rc = cli_request(&c, "GET", "/health", NULL, &body);
    if (*rc == 0) {
        j = json_loadb(body.data, body.len, 0, NULL);
        if (j == NULL)
            *rc = cli_fail("the server's /health answer is not JSON");
    }
    cb_buf_free(&body);
    return j;
}

static void print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

int cmd_health(int argc, char **argv)
{
    int rc;
    bool as_json = true;
    json_t *j = fetch_health(argc, argv, health_usage, &as_json, &rc);
    if (j == NULL)
        return rc;
    print_json(j);
    json_decref(j);
    return 0;
}

int cmd_status(int argc, char **argv)
{
    int rc;
    bool as_json = false;
    json_t *j = fetch_health(argc, argv, status_usage, &as_json, &rc);
    if (j == NULL)
        return rc;
    if (as_json) {
        print_json(j);
        json_decref(j);
        return 0;
    }
    printf("=== clawbox status ===\nVersion: %s\nUptime:  %llds\nStatus:  %s\n",
           json_string_value(json_object_get(j, "version")),
           (long long)json_integer_value(json_object_get(j, "uptime_seconds")),
           json_string_value(json_object_get(j, "status")));
    const char *name;
    json_t *comp;
    json_object_foreach(json_object_get(j, "components"), name, comp)
        printf("  %-14s %s\n", name, json_string_value(json_object_get(comp, "status")));
    json_t *engine =
        json_object_get(json_object_get(json_object_get(j, "components"), "wasm_engine"), "detail");
    printf("Tools:   %lld ready, %lld compiling, %lld failed\n",
           (long long)json_integer_value(json_object_get(engine, "tools_loaded")),
           (long long)json_integer_value(json_object_get(engine, "tools_compiling")),
           (long long)json_integer_value(json_object_get(engine, "tools_failed")));
    json_decref(j);
    return 0;
}
