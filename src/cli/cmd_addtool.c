/* clawbox add tool NAME FILE.wasm [--tool-dir DIR] [--no-wait] [connection options]
 * clawbox remove tool NAME [--tool-dir DIR] */
#include "cli.h"
#include "tooling/tooling.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_DIR_HELP                                                                              \
    "  --tool-dir DIR   the server's tool directory (default: [sandbox] tool_dir of\n"             \
    "                   ~/.clawbox/config/clawbox.toml if it exists, else\n"                       \
    "                   $CLAWBOX_TOOL_DIR, else ~/.clawbox/tools)\n"

static const char add_tool_usage[] =
    "Usage: clawbox add tool NAME FILE.wasm [--tool-dir DIR] [--no-wait] [--host H]\n"
    "                        [--port P] [--socket PATH] [--token T]\n\n"
    "Installs the WebAssembly module FILE as tool NAME: copies it atomically to\n"
    "DIR/NAME.wasm, and its manifest (FILE with .wasm replaced by .json), if there\n"
    "is one, to DIR/NAME.json with tool.name set to NAME. Then asks the running\n"
    "server to load it (POST /tools/reload) and prints its verdict: exits 1 when the\n"
    "server refused the module, saying why. Without a running server it says so and\n"
    "exits 0: the server loads the tool when it starts.\n"
    "NAME is 1-64 characters from A-Z a-z 0-9 _ -.\n\n" TOOL_DIR_HELP
    "  --no-wait        install only; do not ask the server\n" CLI_CONN_HELP;

static const char remove_tool_usage[] =
    "Usage: clawbox remove tool NAME [--tool-dir DIR]\n\n"
    "Deletes DIR/NAME.wasm and DIR/NAME.json. A running server's watcher unloads\n"
    "the tool. Exits 1 if there is no such module.\n\n" TOOL_DIR_HELP;

/* Parses "tool ARGS... [--tool-dir DIR]" after the verb. Returns -1 to go
 * on (positional arguments from argv[optind]), else an exit code. */
struct add_args {
    const char *tool_dir;
    bool no_wait;
    struct cli_conn conn;
};

static int parse_add_args(int argc, char **argv, const char *usage, int nargs, struct add_args *a)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"tool-dir", required_argument, NULL, 'd'},
                                         {"no-wait", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    cli_conn_init(&a->conn);
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&a->conn, o, optarg))
            continue;
        if (o == 'd')
            a->tool_dir = optarg;
        else if (o == 'n')
            a->no_wait = true;
        else
            return o == 'h' ? (fputs(usage, stdout), 0) : (fputs(usage, stderr), 2);
    }
    if (optind < argc && strcmp(argv[optind], "tool") != 0) {
        cli_fail("unknown kind '%s': '%s tool' or '%s image'", argv[optind], argv[0], argv[0]);
        return 2;
    }
    if (argc - optind != nargs + 1) {
        fputs(usage, stderr);
        return 2;
    }
    optind++;
    return -1;
}

static int resolve_dir(const char *flag, char **dir)
{
    struct cb_error err = {0};
    if (cb_tooling_tool_dir(flag, dir, &err) < 0)
        return cli_fail("cannot find the tool directory: %s", err.msg);
    return 0;
}

/* Asks the server to load the tool now and reports its verdict. */
static int server_verdict(struct cli_conn *c, const char *name)
{
    struct cb_error err = {0};
    c->token = cb_client_resolve_token(c->token_flag, &err);
    if (c->token == NULL) {
        fprintf(stderr, "  not checked with the server: %s\n", err.msg);
        return 0;
    }
    c->client.token = c->token;
    struct cb_buf out;
    long status = 0;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int r = cb_client_request(&c->client, "POST", "/tools/reload", NULL, &status, &out, &err);
    json_t *j = r == 0 && status == 200 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    cb_buf_free(&out);
    json_t *e = NULL;
    int rc = 0;
    if (r < 0)
        fprintf(stderr, "  no server answered (%s): it loads the tool when it starts\n", err.msg);
    else if (j == NULL)
        rc = cli_fail("the server answered POST /tools/reload with %ld", status);
    else if ((e = cli_reload_entry(j, "failed", name)) != NULL)
        rc = cli_fail("the server refused tool '%s': %s", name,
                      json_string_value(json_object_get(e, "error")));
    else if (cli_reload_entry(j, "tools", name) != NULL)
        fprintf(stderr, "✓ The server loaded tool '%s'\n", name);
    else
        rc = cli_fail("the server did not find tool '%s': is --tool-dir the server's "
                      "[sandbox] tool_dir?",
                      name);
    json_decref(j);
    return rc;
}

int cmd_add(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "image") == 0)
        return cli_add_image(argc - 1, argv + 1);
    struct add_args a = {0};
    char *dir = NULL;
    int rc = parse_add_args(argc, argv, add_tool_usage, 2, &a);
    if (rc >= 0 || resolve_dir(a.tool_dir, &dir) != 0)
        return rc >= 0 ? rc : 1;
    const char *name = argv[optind], *file = argv[optind + 1];
    struct cb_tooling_installed res;
    struct cb_error err = {0};
    if (cb_tooling_install(name, file, dir, &res, &err) < 0) {
        rc = cli_fail("%s", err.msg);
    } else {
        fprintf(stderr, "✓ Tool '%s' installed at %s\n", name, res.wasm_path);
        if (res.manifest_path)
            fprintf(stderr, "  manifest: %s\n", res.manifest_path);
        else
            fprintf(stderr, "  no manifest beside %s: the server uses a deny-all one\n", file);
        rc = a.no_wait ? 0 : server_verdict(&a.conn, name);
    }
    cb_tooling_installed_free(&res);
    cli_conn_free(&a.conn);
    free(dir);
    return rc;
}

int cmd_remove(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "image") == 0)
        return cli_remove_image(argc - 1, argv + 1);
    struct add_args a = {0};
    char *dir = NULL;
    int rc = parse_add_args(argc, argv, remove_tool_usage, 1, &a);
    if (rc >= 0 || resolve_dir(a.tool_dir, &dir) != 0)
        return rc >= 0 ? rc : 1;
    const char *name = argv[optind];
    struct cb_error err = {0};
    bool manifest;
    if (cb_tooling_remove(name, dir, &manifest, &err) < 0) {
        rc = cli_fail("%s", err.msg);
    } else {
        fprintf(stderr, "✓ Tool '%s' removed from %s%s\n", name, dir,
                manifest ? " (with its manifest)" : "");
        rc = 0;
    }
    free(dir);
    return rc;
}
