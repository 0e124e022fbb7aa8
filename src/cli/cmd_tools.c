/* clawbox tools list|show NAME|register FILE|unregister NAME|reload, and clawbox list tools. */
#include "cli.h"
#include "core/util.h"
#include "sandbox/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define MANIFEST_MAX (1024u * 1024)

static const char tools_usage_text[] =
    "Usage: clawbox tools [--host H] [--port P] [--socket PATH] [--token T] [--json] ACTION\n\n"
    "Actions:\n"
    "  list            list the loaded tools\n"
    "  register FILE   register the tool manifest in FILE (JSON)\n"
    "  unregister NAME forget NAME's registered manifest: its .json file (or the\n"
    "                  automatic deny-all manifest) applies again\n"
    "  show NAME       print NAME's manifest, where it came from and its module's hash\n"
    "  allow NAME HOST add HOST to NAME's network.allowlist, where its manifest lives:\n"
    "                  the registered manifest, else the tool's NAME.json\n"
    "  disallow NAME HOST  take HOST out again\n"
    "  reload          rescan the tool directory now; exits 1 when a module "
    "failed\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n"
    "  --json          list prints the tools' manifests as a JSON array\n";

static const char list_tools_usage[] =
    "Usage: clawbox list tools [--host H] [--port P] [--socket PATH] [--token T] [--json]\n\n"
    "Lists the loaded tools (same as 'clawbox tools list'); with --json, their\n"
    "manifests as a JSON array.\n";

static void print_tools_table(json_t *tools)
{
    size_t i;
    json_t *t;
    printf("%-24s %-10s %s\n", "NAME", "VERSION", "DESCRIPTION");
    printf("------------------------------------------------------------\n");
    json_array_foreach(tools, i, t)
    {
        json_t *meta = json_object_get(t, "tool");
        const char *name = json_string_value(json_object_get(meta, "name"));
        const char *ver = json_string_value(json_object_get(meta, "version"));
        const char *desc = json_string_value(json_object_get(meta, "description"));
        printf("%-24s %-10s %s\n", name ? name : "?", ver ? ver : "", desc ? desc : "");
    }
}

static int do_list(struct cli_conn *c, bool as_json)
{
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, "GET", "/tools", NULL, &out);
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        if (as_json)
            cli_print_body(&out);
        else
            print_tools_table(j);
        json_decref(j);
    }
    cb_buf_free(&out);
    return rc;
}

static int do_register(struct cli_conn *c, const char *file)
{
    json_error_t je;
    json_t *m = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (m == NULL)
        return cli_fail("%s: not valid JSON (line %d, column %d): %s", file, je.line, je.column,
                        je.text);
    char *text = json_dumps(m, JSON_COMPACT);
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, "POST", "/tools/register", text, &out);
    if (rc == 0)
        cli_print_body(&out);
    cb_buf_free(&out);
    free(text);
    json_decref(m);
    return rc;
}

/* Requests `method path` and prints the answer (tools show, unregister). */
static int do_simple(struct cli_conn *c, const char *method, const char *path)
{
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, method, path, NULL, &out);
    if (rc == 0)
        cli_print_body(&out);
    cb_buf_free(&out);
    return rc;
}

static int do_named(struct cli_conn *c, const char *action, const char *name)
{
    if (!cb_tool_name_valid(name))
        return cli_fail("'%s' is not a tool name (1-64 of A-Z a-z 0-9 _ -)", name);
    bool show = strcmp(action, "show") == 0;
    char *path = cb_xasprintf("/tools/%s%s", name, show ? "" : "/registration");
    int rc = do_simple(c, show ? "GET" : "DELETE", path);
    free(path);
    return rc;
}

static int do_reload(struct cli_conn *c)
{
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, "POST", "/tools/reload", NULL, &out);
    if (rc == 0) {
        cli_print_body(&out);
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        size_t failed = json_array_size(json_object_get(j, "failed"));
        fprintf(stderr, "%zu loaded, %zu failed\n", json_array_size(json_object_get(j, "tools")),
                failed);
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(j, "failed"), i, f)
            fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(f, "tool")),
                    json_string_value(json_object_get(f, "error")));
        rc = failed > 0;
        json_decref(j);
    }
    cb_buf_free(&out);
    return rc;
}

/* Parses connection options; returns -1 to go on, else an exit code. */
static int parse_tools_args(int argc, char **argv, struct cli_conn *c, bool *as_json,
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

static int dispatch(struct cli_conn *c, bool as_json, int argc, char **argv)
{
    const char *action = argv[0];
    if (strcmp(action, "list") == 0 && argc == 1)
        return do_list(c, as_json);
    if (strcmp(action, "register") == 0 && argc == 2)
        return do_register(c, argv[1]);
    if (strcmp(action, "reload") == 0 && argc == 1)
        return do_reload(c);
    if ((strcmp(action, "unregister") == 0 || strcmp(action, "show") == 0) && argc == 2)
        return do_named(c, action, argv[1]);
    if ((strcmp(action, "allow") == 0 || strcmp(action, "disallow") == 0) && argc == 3) {
        if (!cb_tool_name_valid(argv[1]))
            return cli_fail("'%s' is not a tool name (1-64 of A-Z a-z 0-9 _ -)", argv[1]);
        return cli_tools_allow(c, strcmp(action, "allow") == 0, argv[1], argv[2]);
    }
    fputs(tools_usage_text, stderr);
    return 2;
}

int cmd_tools(int argc, char **argv)
{
    struct cli_conn c;
    bool as_json = false;
    int rc = parse_tools_args(argc, argv, &c, &as_json, tools_usage_text);
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        fputs(tools_usage_text, stderr);
        return 2;
    }
    if (cli_conn_token(&c) < 0)
        return 1;
    rc = dispatch(&c, as_json, argc - optind, argv + optind);
    cli_conn_free(&c);
    return rc;
}

int cmd_list(int argc, char **argv)
{
    struct cli_conn c;
    bool as_json = false;
    if (argc >= 2 && strcmp(argv[1], "containers") == 0)
        return cli_list_containers(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "images") == 0)
        return cli_list_images(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "tools") == 0) {
        argv++;
        argc--;
    } else if (!cli_wants_help(argc, argv)) {
        return cli_fail("usage: clawbox list tools|containers|images [options]");
    }
    int rc = parse_tools_args(argc, argv, &c, &as_json, list_tools_usage);
    if (rc >= 0)
        return rc;
    if (cli_conn_token(&c) < 0)
        return 1;
    rc = do_list(&c, as_json);
    cli_conn_free(&c);
    return rc;
}
