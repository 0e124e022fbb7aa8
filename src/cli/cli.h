/* Shared pieces of the CLI verbs. Each verb lives in its own cmd_*.c and is
 * a thin client of src/lib/. */
#ifndef CB_CLI_CLI_H
#define CB_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"
#include "config/config.h"

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_config_reference(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tools(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_new_tool(int argc, char **argv); /* cmd_newtool.c */
int cmd_build(int argc, char **argv);
int cmd_add(int argc, char **argv); /* cmd_addtool.c: add tool, remove tool */
int cmd_remove(int argc, char **argv);
int cmd_mcp(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_spawn(int argc, char **argv); /* cmd_containers.c: spawn, kill */
int cmd_kill(int argc, char **argv);
int cmd_exec(int argc, char **argv);   /* cmd_exec.c */
int cmd_cp(int argc, char **argv);     /* cmd_cp.c */
int cmd_agents(int argc, char **argv); /* cmd_agents.c */
/* clawbox list containers (cmd_containers.c), from cmd_list. */
int cli_list_containers(int argc, char **argv);
/* clawbox add image, remove image, list images (cmd_templates.c). */
int cli_add_image(int argc, char **argv);
int cli_remove_image(int argc, char **argv);
int cli_list_images(int argc, char **argv);
/* clawbox logs --container ID (cmd_containers.c), from cmd_logs. */
int cli_container_logs(int argc, char **argv);

/* Options every client verb takes: --host, --port, --socket, --token. */
struct cli_conn {
    struct cb_client client;
    const char *token_flag;
    char *token; /* resolved by cli_conn_token */
};

#define CLI_CONN_OPTIONS                                                                           \
    {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},                \
        {"socket", required_argument, NULL, 'S'},                                                  \
    {                                                                                              \
        "token", required_argument, NULL, 't'                                                      \
    }

#define CLI_CONN_HELP                                                                              \
    "  --host HOST     server address (default $CLAWBOX_HOST or 127.0.0.1)\n"                      \
    "  --port PORT     server port (default $CLAWBOX_PORT or 9800)\n"                              \
    "  --socket PATH   talk to the server's Unix socket instead of TCP\n"

void cli_conn_init(struct cli_conn *c);
/* Resolves the auth token (flag, environment, token file); prints the
 * error and returns -1 when there is none. */
int cli_conn_token(struct cli_conn *c);
void cli_conn_free(struct cli_conn *c);
/* Parses a --port value (1-65535) into *port; prints why and returns -1
 * when it is not one. */
int cli_parse_port(const char *arg, uint16_t *port);
/* Handles a connection option; returns false if `opt` is not one. */
bool cli_conn_option(struct cli_conn *c, int opt, const char *arg);

/* Performs a request and prints errors. Returns 0 and the body on 2xx;
 * prints the clawbox error (or a hint to start the server) and returns 1
 * otherwise. */
int cli_request(const struct cli_conn *c, const char *method, const char *path, const char *body,
                struct cb_buf *out);

/* The same with a body read from fd as it goes (cb_client_upload). */
int cli_upload(const struct cli_conn *c, const char *method, const char *path, int fd, int64_t size,
               uint64_t *sent, struct cb_buf *out);

/* Performs a GET whose 2xx body streams to `sink` until the server ends
 * it; prints errors as cli_request does. Returns 0 or 1. */
int cli_stream(const struct cli_conn *c, const char *path, cb_client_sink_fn sink, void *ud);
/* The same for any method, with a JSON body (or NULL) and an Accept
 * header (or NULL). */
int cli_stream_request(const struct cli_conn *c, const char *method, const char *path,
                       const char *body, const char *accept, cb_client_sink_fn sink, void *ud);

/* Prints a response body on stdout as indented JSON (raw when it is not
 * JSON), with a newline. */
void cli_print_body(const struct cb_buf *b);
/* GET path, a JSON array: printed as it came with json, else given to
 * table. Returns the exit code. */
int cli_list(struct cli_conn *c, const char *path, bool json, void (*table)(const json_t *list));

/* The entry of tool `name` in list `list` of a POST /tools/reload report:
 * "tools" (names) or "failed" ({"tool", "error"}); NULL when absent. */
json_t *cli_reload_entry(const json_t *report, const char *list, const char *name);

/* clawbox tools allow|disallow NAME HOST (tools_allow.c). */
int cli_tools_allow(struct cli_conn *c, bool allow, const char *name, const char *host);

/* ~/.clawbox/config/clawbox.toml if it exists (a new string), else NULL. */
char *cli_default_config_path(void);

/* Loads the configuration of a local (non-client) verb: `path`, else the
 * default config file, else the built-in defaults. Prints problems and
 * returns NULL on error. */
struct cb_config *cli_load_config(const char *path);

int cmd_creds(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_logs(int argc, char **argv);

/* Prints "clawbox: <msg>" on stderr and returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when argv has -h or --help; the verb then prints its usage. */
bool cli_wants_help(int argc, char **argv);

#endif
