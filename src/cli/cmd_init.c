/* clawbox init [--dir DIR] [--force] */
#include "cli.h"
#include "config/init.h"
#include "core/home.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char init_usage_text[] =
    "Usage: clawbox init [--dir DIR] [--force]\n\n"
    "Creates DIR (default $CLAWBOX_HOME, else ~/.clawbox) with config/clawbox.toml (mode\n"
    "0600) holding a fresh auth token, the token file DIR/token, the credential store's\n"
    "master key DIR/master.key, and the tools, audit and data directories. An existing\n"
    "config is never overwritten unless --force is given; an existing key never is.\n"
    "With another DIR, export CLAWBOX_HOME=DIR so that the other verbs find it.\n\n"
    "  --dir DIR   base directory (default $CLAWBOX_HOME, else $HOME/.clawbox)\n"
    "  --force     overwrite an existing config with a new token\n";

/* Whether --dir names the home the other verbs use anyway. */
static bool same_dir(const char *base)
{
    if (base == NULL)
        return true;
    char *home = cb_home_dir();
    char *a = realpath(base, NULL), *b = realpath(home, NULL);
    bool same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    free(home);
    return same;
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char *base = NULL;
    bool force = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'd')
            base = optarg;
        else if (o == 'f')
            force = true;
        else
            return o == 'h' ? (fputs(init_usage_text, stdout), 0)
                            : (fputs(init_usage_text, stderr), 2);
    }
    char *def = base ? NULL : cb_home_dir();
    struct cb_init_result res;
    struct cb_error err = {0};
    int r = cb_init_home(base ? base : def, force, &res, &err);
    if (r == 0 && !res.created)
        fprintf(stderr, "Config already exists at %s (kept; use --force to replace it).\n",
                res.config_path);
    else if (r == 0)
        fprintf(stderr,
                "Initialised clawbox in %s\n  config:     %s\n  tools:      %s\n"
                "  token file: %s\n  master key: %s%s\n",
                base ? base : def, res.config_path, res.tools_dir, res.token_path, res.key_path,
                res.key_created ? "" : " (kept)");
    if (r == 0 && !same_dir(base))
        fprintf(stderr,
                "\nSo that every verb finds this directory (its config and token):\n"
                "  export CLAWBOX_HOME=%s\n",
                base);
    if (r == 0)
        fprintf(stderr,
                "\nTo use the CLI, export the token:\n"
                "  export CLAWBOX_AUTH_TOKEN=\"$(cat %s)\"\n"
                "Then start the server:\n  clawbox serve --config %s\n",
                res.token_path, res.config_path);
    else
        cli_fail("%s", err.msg);
    cb_init_result_free(&res);
    free(def);
    return r == 0 ? 0 : 1;
}
