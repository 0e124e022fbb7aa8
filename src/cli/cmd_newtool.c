/* clawbox new-tool NAME [--lang c] [--dir DIR] */
#include "cli.h"
#include "tooling/tooling.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char newtool_usage_text[] =
    "Usage: clawbox new-tool NAME [--lang c] [--dir DIR]\n\n"
    "Scaffolds a C tool project in DIR/NAME (default ./NAME), which must not exist:\n"
    "main.c (echoes its params as {\"tool\": NAME, \"result\": params}), manifest.json,\n"
    "a copy of the SDK header clawbox_tool.h and a Makefile that builds NAME.wasm\n"
    "with clang for wasm32-wasi (and copies the manifest to NAME.json). NAME is 1-64 characters "
    "from A-Z a-z 0-9 _ -.\n\n"
    "  --lang LANG   language (default [tools] default_language of\n"
    "                ~/.clawbox/config/clawbox.toml, else c). Only c is implemented:\n"
    "                rust, js and ts need toolchains clawbox does not ship.\n"
    "  --dir DIR     parent directory (default .)\n";

/* Prints the outcome and the next steps; returns the exit code. */
static int report_created(int r, const char *name, const char *lang, const char *path,
                          const struct cb_error *err)
{
    if (r == -ENOTSUP) {
        cli_fail("%s", err->msg);
        fputs("Only C tools can be scaffolded: rust, js and ts need toolchains that clawbox "
              "does not ship.\n",
              stderr);
        return 1;
    }
    if (r < 0)
        return cli_fail("%s", err->msg);
    fprintf(stderr, "✓ Scaffolded %s tool '%s' at %s\n", lang, name, path);
    fprintf(stderr, "\nNext steps:\n  make -C %s\n  clawbox add tool %s %s/%s.wasm\n", path, name,
            path, name);
    return 0;
}

int cmd_new_tool(int argc, char **argv)
{
    static const struct option opts[] = {{"lang", required_argument, NULL, 'l'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *lang = NULL, *dir = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'l')
            lang = optarg;
        else if (o == 'd')
            dir = optarg;
        else
            return o == 'h' ? (fputs(newtool_usage_text, stdout), 0)
                            : (fputs(newtool_usage_text, stderr), 2);
    }
    if (optind != argc - 1) {
        fputs(newtool_usage_text, stderr);
        return 2;
    }
    struct cb_error err = {0};
    char *def = NULL, *path = NULL;
    int r = lang ? 0 : cb_tooling_default_language(&def, &err);
    if (r == 0)
        r = cb_tooling_scaffold(argv[optind], lang ? lang : def, dir, &path, &err);
    int rc = report_created(r, argv[optind], lang ? lang : def, path, &err);
    free(def);
    free(path);
    return rc;
}
