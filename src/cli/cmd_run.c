/* clawbox run TOOL [PARAMS|-] [--credentials a,b] [-q] */
#include "cli.h"
#include "core/json.h"
#include "core/util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define PARAMS_MAX (10u * 1024 * 1024)

static const char run_usage_text[] =
    "Usage: clawbox run TOOL [PARAMS|-] [--credentials a,b] [-q] [--host H] [--port P]\n"
    "                    [--socket PATH] [--token T]\n\n"
    "Runs TOOL once with PARAMS (JSON text; '-' reads it from stdin; default {}) and prints\n"
    "the response as JSON. Exits 0 when the tool succeeded, 1 when it reported an error\n"
    "(metadata.tool_error, which is printed on stderr) or the server refused the "
    "run.\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n"
    "  --credentials   comma-separated credential names to request\n"
    "  -q, --quiet     print only the tool's output\n";

static json_t *read_params(const char *arg)
{
    json_error_t je;
    json_t *p;
    if (strcmp(arg, "-") == 0) {
        struct cb_buf b;
        char chunk[65536];
        size_t n;
        cb_buf_init(&b, PARAMS_MAX);
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
            if (cb_buf_append(&b, chunk, n) < 0) {
                cb_buf_free(&b);
                cli_fail("params on stdin exceed %u bytes", PARAMS_MAX);
                return NULL;
            }
        p = json_loadb(b.data ? b.data : "", b.len, JSON_DECODE_ANY, &je);
        cb_buf_free(&b);
    } else {
        p = json_loads(arg, JSON_DECODE_ANY, &je);
    }
    if (p == NULL)
        cli_fail("PARAMS is not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
    return p;
}

static json_t *credential_list(const char *csv)
{
    json_t *a = json_array();
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0)
            json_array_append_new(a, cb_json_text(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

/* Prints the response (or only its output) and says on stderr what went
 * wrong: the tool's error, and credentials the request could not use.
 * Returns the exit code. */
static int report_response(json_t *j, bool quiet)
{
    json_t *meta = json_object_get(j, "metadata");
    json_t *shown = quiet ? json_object_get(j, "output") : j;
    json_dumpf(shown, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    size_t i;
    json_t *cr;
    json_array_foreach(json_object_get(meta, "credentials_refused"), i, cr)
        fprintf(stderr, "clawbox: credential %s not used: %s\n",
                json_string_value(json_object_get(cr, "name")),
                json_string_value(json_object_get(cr, "reason")));
    const char *terr = json_string_value(json_object_get(meta, "tool_error"));
    if (terr == NULL)
        return 0;
    return cli_fail("the tool reported an error: %s", terr);
}

static int execute(struct cli_conn *c, const char *tool, json_t *params, const char *creds,
                   bool quiet)
{
    json_t *body =
        json_pack("{s:o, s:O}", "tool", cb_json_text(tool, strlen(tool)), "params", params);
    if (creds)
        json_object_set_new(body, "capabilities",
                            json_pack("{s:o}", "credentials", credential_list(creds)));
    char *text = cb_json_dump_or(body, JSON_COMPACT, "{}");
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, "POST", "/execute", text, &out);
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        rc = j ? report_response(j, quiet) : cli_fail("the server's answer is not JSON");
        json_decref(j);
    }
    cb_buf_free(&out);
    free(text);
    json_decref(body);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"credentials", required_argument, NULL, 'C'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_conn c;
    const char *creds = NULL;
    bool quiet = false;
    int o;
    cli_conn_init(&c);
    while ((o = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (cli_conn_option(&c, o, optarg))
            continue;
        if (o == 'C')
            creds = optarg;
        else if (o == 'q')
            quiet = true;
        else
            return o == 'h' ? (fputs(run_usage_text, stdout), 0)
                            : (fputs(run_usage_text, stderr), 2);
    }
    if (optind >= argc || argc - optind > 2) {
        fputs(run_usage_text, stderr);
        return 2;
    }
    if (cli_conn_token(&c) < 0)
        return 1;
    json_t *params = read_params(optind + 1 < argc ? argv[optind + 1] : "{}");
    if (params == NULL)
        return 1;
    int rc = execute(&c, argv[optind], params, creds, quiet);
    json_decref(params);
    cli_conn_free(&c);
    return rc;
}
