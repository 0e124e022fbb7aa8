/* clawbox serve [--config PATH] [--host HOST] [--port PORT] [--check-config] [--insecure] */
#include "api/serve.h"
#include "cli.h"
#include "config/config.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char serve_usage_text[] =
    "Usage: clawbox serve [--config PATH] [--host HOST] [--port PORT] [--check-config]\n"
    "                     [--insecure]\n\n"
    "Runs the clawbox API server until SIGTERM or SIGINT.\n\n"
    "  --config PATH    config file (default ~/.clawbox/config/clawbox.toml if it exists,\n"
    "                   else the built-in defaults)\n"
    "  --host HOST      address to listen on (overrides [server] host and $CLAWBOX_HOST)\n"
    "  --port PORT      port to listen on (overrides [server] port and $CLAWBOX_PORT)\n"
    "  --check-config   validate the configuration, list every problem, and exit\n"
    "                   (0 if valid, 1 if not)\n"
    "  --insecure       allow the placeholder auth token 'changeme'\n";

static void print_diag(const struct cb_config_diag *d)
{
    for (size_t i = 0; i < d->warnings.len; i++)
        fprintf(stderr, "warning: %s\n", d->warnings.items[i]);
    for (size_t i = 0; i < d->errors.len; i++)
        fprintf(stderr, "error: %s\n", d->errors.items[i]);
}

static void setup_logging(const struct cb_config *cfg)
{
    int level = cb_log_level_parse(cfg->logging.level);
    cb_log_setup(strcmp(cfg->logging.format, "json") == 0,
                 level < 0 ? CB_LOG_INFO : (enum cb_log_level)level);
}

/* Serves while holding the data directory's lock, so that a second server
 * on the same directory is refused before it touches anything. */
static int serve_locked(const struct cb_config *cfg)
{
    struct cb_error err = {0};
    int fd = -1, rc = 0;
    if (cb_state_lock_data_dir(cfg->server.data_dir, &fd, &err) < 0)
        return cli_fail("%s", err.msg);
    setup_logging(cfg);
    if (cb_serve(cfg, &err) < 0)
        rc = cli_fail("%s", err.msg);
    close(fd);
    return rc;
}

static int run_server(const char *path, bool check_only, bool insecure)
{
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    int r = cb_config_load(path, &cfg, &diag, &err);
    print_diag(&diag);
    cb_config_diag_free(&diag);
    if (r < 0) {
        cli_fail("invalid configuration (%s)", err.msg);
        return 1;
    }
    int rc = 0;
    if (strcmp(cfg->server.auth_token, "changeme") == 0 && !insecure)
        rc = cli_fail("auth_token is 'changeme'. Set a real token in the config or use "
                      "--insecure");
    else if (check_only)
        fprintf(stderr, "configuration OK: %s\n", path ? path : "built-in defaults");
    else
        rc = serve_locked(cfg);
    cb_config_free(cfg);
    return rc;
}

/* --host and --port win over the file and the environment: they become the
 * environment overrides the configuration table already validates. */
static int override_listen(int opt, const char *arg)
{
    uint16_t p;
    if (opt == 'p' && cli_parse_port(arg, &p) < 0)
        return -1;
    if (opt == 'H' && arg[0] == '\0') {
        cli_fail("--host must not be empty");
        return -1;
    }
    setenv(opt == 'p' ? "CLAWBOX_PORT" : "CLAWBOX_HOST", arg, 1);
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"insecure", no_argument, NULL, 'i'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    bool check = false, insecure = false;
    int o;
    while ((o = getopt_long(argc, argv, "hc:", opts, NULL)) != -1) {
        if (o == 'c')
            config = optarg;
        else if (o == 'k')
            check = true;
        else if (o == 'i')
            insecure = true;
        else if (o == 'H' || o == 'p') {
            if (override_listen(o, optarg) < 0)
                return 2;
        } else
            return o == 'h' ? (fputs(serve_usage_text, stdout), 0)
                            : (fputs(serve_usage_text, stderr), 2);
    }
    char *def = config ? NULL : cli_default_config_path();
    if (def != NULL)
        fprintf(stderr, "Using config: %s\n", def);
    int rc = run_server(config ? config : def, check, insecure);
    free(def);
    return rc;
}
