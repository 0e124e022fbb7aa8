/* clawbox mcp: serves the tools of a running `clawbox serve` to MCP clients
 * over stdio. stdout carries only protocol messages; everything else goes
 * to stderr. */
#include "cli.h"
#include "core/log.h"
#include "core/util.h"
#include "mcp/mcp.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* How often the tool list is compared, for notifications/tools/list_changed. */
#define MCP_WATCH_MS 2000

static const char mcp_usage_text[] =
    "Usage: clawbox mcp [--host H] [--port P] [--socket PATH] [--token T] [--queue N]\n"
    "                   [--config PATH] [--debug]\n\n"
    "Speaks the Model Context Protocol (newline-delimited JSON-RPC) on stdin/stdout and\n"
    "runs every registered tool of a running 'clawbox serve' for the client, e.g.\n"
    "  claude mcp add clawbox -- clawbox mcp\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n"
    "  --queue N       requests that wait when 16 are running (default 256, 1-65536);\n"
    "                  beyond that a request is refused with -32000 busy\n"
    "  --config PATH   config file whose [images.templates] clawbox_spawn_container\n"
    "                  starts (default ~/.clawbox/config/clawbox.toml)\n"
    "  --debug         log debugging messages on stderr\n";

/* A missing token is not fatal: initialize must still work, and the
 * server's auth_required answer tells the model what to fix. */
static void resolve_token(struct cli_conn *c)
{
    struct cb_error err = {0};
    c->token = cb_client_resolve_token(c->token_flag, &err);
    if (c->token == NULL)
        cb_log(CB_LOG_WARN, "mcp: %s; tool calls will be refused", err.msg);
    c->client.token = c->token;
}

int cmd_mcp(int argc, char **argv)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"debug", no_argument, NULL, 'd'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_conn c;
    bool debug = false;
    uint64_t queue = 0;
    const char *config_path = NULL;
    int o;
    cli_conn_init(&c);
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&c, o, optarg))
            continue;
        if (o == 'd')
            debug = true;
        else if (o == 'c')
            config_path = optarg;
        else if (o == 'q' &&
                 (cb_parse_u64(optarg, strlen(optarg), &queue) < 0 || queue < 1 || queue > 65536))
            return cli_fail("--queue must be a number from 1 to 65536, got '%s'", optarg) + 1;
        else if (o == 'q')
            continue;
        else
            return o == 'h' ? (fputs(mcp_usage_text, stdout), 0)
                            : (fputs(mcp_usage_text, stderr), 2);
    }
    if (optind < argc) {
        fputs(mcp_usage_text, stderr);
        return 2;
    }
    cb_log_setup(false, debug ? CB_LOG_DEBUG : CB_LOG_WARN);
    /* A client that goes away must not kill us mid-write; the write fails
     * instead and the loop ends. */
    signal(SIGPIPE, SIG_IGN);
    resolve_token(&c);
    /* Without a readable config the container templates are missing, and
     * clawbox_spawn_container says so; the tools still work. */
    struct cb_config *config = cli_load_config(config_path);
    struct cb_mcp_config cfg = {.client = &c.client,
                                .out_fd = STDOUT_FILENO,
                                .max_queued = (unsigned)queue,
                                .watch_ms = MCP_WATCH_MS,
                                .config = config};
    struct cb_mcp *m = cb_mcp_new(&cfg);
    struct cb_error err = {0};
    int rc = cb_mcp_serve(m, STDIN_FILENO, CB_MCP_MAX_LINE, &err);
    cb_mcp_free(m);
    cb_config_free(config);
    cli_conn_free(&c);
    if (rc < 0)
        return cli_fail("mcp: %s", err.msg);
    return 0;
}
