/* clawbox add tool NAME FILE.wasm [--tool-dir DIR]
 * clawbox remove tool NAME [--tool-dir DIR] */
#include "cli.h"
#include "tooling/tooling.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_DIR_HELP                                                                              \
    "  --tool-dir DIR   the server's tool directory (default: [sandbox] tool_dir of\n"             \
    "                   ~/.clawbox/config/clawbox.toml if it exists, else\n"                       \
    "                   $CLAWBOX_TOOL_DIR, else ~/.clawbox/tools)\n"

static const char add_usage[] =
    "Usage: clawbox add tool NAME FILE.wasm [--tool-dir DIR]\n\n"
    "Installs the WebAssembly module FILE as tool NAME: copies it atomically to\n"
    "DIR/NAME.wasm, and its manifest (FILE with .wasm replaced by .json), if there\n"
    "is one, to DIR/NAME.json with tool.name set to NAME. A running server's\n"
    "watcher loads it (or run 'clawbox tools reload').\n"
    "NAME is 1-64 characters from A-Z a-z 0-9 _ -.\n\n" TOOL_DIR_HELP;

static const char remove_usage[] =
    "Usage: clawbox remove tool NAME [--tool-dir DIR]\n\n"
    "Deletes DIR/NAME.wasm and DIR/NAME.json. A running server's watcher unloads\n"
    "the tool. Exits 1 if there is no such module.\n\n" TOOL_DIR_HELP;

/* Parses "tool ARGS... [--tool-dir DIR]" after the verb. Returns -1 to go
 * on (positional arguments from argv[optind]), else an exit code. */
static int parse(int argc, char **argv, const char *usage, int nargs, const char **tool_dir)
{
    static const struct option opts[] = {{"tool-dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'd')
            *tool_dir = optarg;
        else
            return o == 'h' ? (fputs(usage, stdout), 0) : (fputs(usage, stderr), 2);
    }
    if (optind < argc && strcmp(argv[optind], "tool") != 0) {
        cli_fail("unknown kind '%s': only '%s tool' is implemented", argv[optind], argv[0]);
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

int cmd_add(int argc, char **argv)
{
    const char *flag = NULL;
    char *dir = NULL;
    int rc = parse(argc, argv, add_usage, 2, &flag);
    if (rc >= 0 || resolve_dir(flag, &dir) != 0)
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
        rc = 0;
    }
    cb_tooling_installed_free(&res);
    free(dir);
    return rc;
}

int cmd_remove(int argc, char **argv)
{
    const char *flag = NULL;
    char *dir = NULL;
    int rc = parse(argc, argv, remove_usage, 1, &flag);
    if (rc >= 0 || resolve_dir(flag, &dir) != 0)
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
