/* clawbox spawn TEMPLATE, kill ID, list containers, logs --container ID:
 * clients of the container routes. */
#include "cli.h"
#include "config/templates.h"
#include "core/util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char spawn_usage[] =
    "Usage: clawbox spawn TEMPLATE [--task T] [--config PATH] [--host H] [--port P]\n"
    "                     [--socket PATH] [--token T]\n\n"
    "Starts a container from the image template TEMPLATE ([images.templates.TEMPLATE]\n"
    "in the config file) and prints its ContainerInfo as JSON.\n\n"
    "  --task T        what the container is for (kept as its task_summary)\n"
    "  --config PATH   config file holding the templates (default ~/.clawbox/config/clawbox.toml)\n"
    "" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

static const char kill_usage[] =
    "Usage: clawbox kill CONTAINER_ID [--host H] [--port P] [--socket PATH] [--token T]\n\n"
    "Kills and removes a container; prints its last output (redacted) as JSON.\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

static const char list_containers_usage[] =
    "Usage: clawbox list containers [--json] [--host H] [--port P] [--socket PATH] [--token T]\n\n"
    "Lists the server's containers, running and finished, as a table; --json prints\n"
    "the ContainerInfo array.\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

static const char container_logs_usage[] =
    "Usage: clawbox logs --container ID [--tail N] [--follow] [--host H] [--port P]\n"
    "                    [--socket PATH] [--token T]\n\n"
    "Prints a container's stdout and stderr (redacted; the server keeps at most\n"
    "[containers] max_output_bytes of it).\n\n"
    "  --tail N        only the last N lines\n"
    "  --follow        keep printing the output as it grows, until the container ends\n"
    "                  (lines are printed whole, once their end has arrived)\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

struct containers_args {
    struct cli_conn conn;
    const char *config;
    const char *task;
    const char *container;
    const char *tail;
    bool json;
    bool follow;
    int first; /* index of the first operand */
};

/* Parses the options of these verbs; returns -1 to go on, else the exit
 * code (help printed, or a usage error). */
static int parse_containers_args(int argc, char **argv, struct containers_args *a,
                                 const char *usage)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"config", required_argument, NULL, 'c'},
                                         {"task", required_argument, NULL, 'k'},
                                         {"container", required_argument, NULL, 'C'},
                                         {"tail", required_argument, NULL, 'n'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    cli_conn_init(&a->conn);
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&a->conn, o, optarg))
            continue;
        switch (o) {
        case 'c':
            a->config = optarg;
            break;
        case 'k':
            a->task = optarg;
            break;
        case 'C':
            a->container = optarg;
            break;
        case 'n':
            a->tail = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'f':
            if (usage != container_logs_usage) {
                fputs(usage, stderr);
                return 2;
            }
            a->follow = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    a->first = optind;
    return -1;
}

static int request_and_print(struct containers_args *a, const char *method, const char *path,
                             const char *body)
{
    if (cli_conn_token(&a->conn) < 0)
        return 1;
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(&a->conn, method, path, body, &out);
    if (rc == 0)
        cli_print_body(&out);
    cb_buf_free(&out);
    return rc;
}

int cmd_spawn(int argc, char **argv)
{
    struct containers_args a;
    int rc = parse_containers_args(argc, argv, &a, spawn_usage);
    if (rc >= 0)
        return rc;
    if (argc - a.first != 1) {
        fputs(spawn_usage, stderr);
        return 2;
    }
    const char *name = argv[a.first];
    struct cb_config *cfg = cli_load_config(a.config);
    if (cfg == NULL)
        return 1;
    const struct cb_image_template *t = cb_template_find(cfg, name);
    if (t == NULL) {
        rc = cli_fail("Image template %s not found in config ([images.templates.%s]; add one "
                      "with clawbox add image %s --image IMAGE)",
                      name, name, name);
    } else {
        json_t *body = cb_template_spawn_body(t, a.task);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        rc = request_and_print(&a, "POST", "/containers/spawn", text);
        free(text);
    }
    cb_config_free(cfg);
    cli_conn_free(&a.conn);
    return rc;
}

int cmd_kill(int argc, char **argv)
{
    struct containers_args a;
    int rc = parse_containers_args(argc, argv, &a, kill_usage);
    if (rc >= 0)
        return rc;
    if (argc - a.first != 1) {
        fputs(kill_usage, stderr);
        return 2;
    }
    if (!cb_name_valid(argv[a.first]))
        return cli_fail("'%s' is not a container id (clawbox list containers shows them)",
                        argv[a.first]);
    char *path = cb_xasprintf("/containers/%s", argv[a.first]);
    rc = request_and_print(&a, "DELETE", path, NULL);
    free(path);
    cli_conn_free(&a.conn);
    return rc;
}

static void print_containers_table(const json_t *list)
{
    printf("%-44s %-10s %-26s %-25s %s\n", "CONTAINER ID", "STATUS", "IMAGE", "CREATED", "TASK");
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *f[5] = {"container_id", "status", "image", "created_at", "task_summary"};
        const char *v[5];
        for (size_t k = 0; k < 5; k++) {
            v[k] = json_string_value(json_object_get(c, f[k]));
            v[k] = v[k] ? v[k] : "";
        }
        printf("%-44s %-10s %-26s %-25s %.60s\n", v[0], v[1], v[2], v[3], v[4]);
    }
    if (json_array_size(list) == 0)
        fputs("No containers.\n", stderr);
}

int cli_list_containers(int argc, char **argv)
{
    struct containers_args a;
    int rc = parse_containers_args(argc, argv, &a, list_containers_usage);
    if (rc >= 0)
        return rc;
    if (argc != a.first) {
        fputs(list_containers_usage, stderr);
        return 2;
    }
    rc = cli_list(&a.conn, "/containers", a.json, print_containers_table);
    cli_conn_free(&a.conn);
    return rc;
}

/* Prints followed output as it comes: stdout is flushed at once, even into
 * a pipe. */
static int print_chunk(void *ud, const char *data, size_t n)
{
    (void)ud;
    if (fwrite(data, 1, n, stdout) != n || fflush(stdout) != 0)
        return -1;
    return 0;
}

int cli_container_logs(int argc, char **argv)
{
    struct containers_args a;
    int rc = parse_containers_args(argc, argv, &a, container_logs_usage);
    if (rc >= 0)
        return rc;
    uint64_t tail = 0;
    if (a.container == NULL || argc != a.first) {
        fputs(container_logs_usage, stderr);
        return 2;
    }
    if (!cb_name_valid(a.container))
        return cli_fail("'%s' is not a container id", a.container);
    if (a.tail && cb_parse_u64(a.tail, strlen(a.tail), &tail) < 0)
        return cli_fail("--tail: '%s' is not a number of lines", a.tail);
    if (cli_conn_token(&a.conn) < 0)
        return 1;
    char *path = cb_xasprintf("/containers/%s/logs?tail=%" PRIu64 "%s", a.container, tail,
                              a.follow ? "&follow=1" : "");
    if (a.follow) {
        rc = cli_stream(&a.conn, path, print_chunk, NULL);
        free(path);
        cli_conn_free(&a.conn);
        return rc;
    }
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    rc = cli_request(&a.conn, "GET", path, NULL, &out);
    if (rc == 0)
        fwrite(out.data, 1, out.len, stdout);
    cb_buf_free(&out);
    free(path);
    cli_conn_free(&a.conn);
    return rc;
}
