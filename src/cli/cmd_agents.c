/* clawbox agents create|list|get|start|stop|delete: clients of the /agents
 * routes. */
#include "agents/config.h"
#include "cli.h"
#include "config/toml_json.h"
#include "core/file.h"
#include "core/util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (1024 * 1024)

static const char agents_usage[] =
    "Usage: clawbox agents create ID --name NAME [options] [-- COMMAND...]\n"
    "       clawbox agents create --file FILE.json|FILE.toml\n"
    "       clawbox agents list [--json]\n"
    "       clawbox agents get ID\n"
    "       clawbox agents start|stop ID [--json]\n"
    "       clawbox agents delete ID [--purge]\n\n"
    "Registers, lists, shows, starts, stops and removes agents: named, long-lived\n"
    "containers with a workspace under [containers] workspace_root. create and get\n"
    "print the AgentInfo as JSON; start and stop print the agent's status (the\n"
    "AgentInfo with --json).\n\n"
    "create:\n"
    "  --file FILE            the AgentConfig as JSON or TOML (.toml); flags add to it\n"
    "  --name NAME            display name (required unless in the file)\n"
    "  --image IMAGE          image (default [containers] default_image)\n"
    "  --policy P             sandbox policy (default container)\n"
    "  --env K=V              an environment variable; repeat for more\n"
    "  --workspace PATH       a directory beneath workspace_root (default <root>/ID)\n"
    "  --mount-point PATH     where the workspace appears (default /workspace)\n"
    "  --read-only            mount the workspace read-only\n"
    "  --max-idle-ms N        stop after N ms without activity (default 3600000)\n"
    "  --max-lifetime-ms N    terminate N ms after a start\n"
    "  --restart-on-crash     restart a crashed container (up to --max-restarts, default 3)\n"
    "  --max-restarts N\n"
    "  -- COMMAND...          the command (default: an idle init, for exec)\n"
    "delete:\n"
    "  --purge                remove the default workspace directory too\n"
    "list:\n"
    "  --json                 print the AgentInfo array\n" CLI_CONN_HELP
    "  --token T              auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

static int usage_error(void)
{
    fputs(agents_usage, stderr);
    return 2;
}

enum {
    O_FILE = 256,
    O_NAME,
    O_IMAGE,
    O_POLICY,
    O_ENV,
    O_WORKSPACE,
    O_MOUNT,
    O_READ_ONLY,
    O_IDLE,
    O_LIFETIME,
    O_RESTART,
    O_MAX_RESTARTS,
    O_PURGE,
    O_JSON,
};

struct agents_args {
    struct cli_conn conn;
    json_t *body; /* create: the AgentConfig being built */
    const char *file;
    bool purge, json;
    int first; /* the first operand */
    int end;   /* where the operands end: argc, or the "--" */
};

static json_t *sub(json_t *body, const char *key)
{
    json_t *o = json_object_get(body, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(body, key, o);
    }
    return o;
}

/* One create flag into the body; non-zero on a bad value (printed). */
static int flag(struct agents_args *a, int o, const char *arg)
{
    static const struct {
        int opt;
        const char *table; /* NULL: the body itself */
        const char *key;
        enum { TEXT, NUMBER, TRUE } kind;
    } map[] = {
        {O_NAME, NULL, "name", TEXT},
        {O_IMAGE, NULL, "image", TEXT},
        {O_POLICY, NULL, "policy", TEXT},
        {O_WORKSPACE, "workspace", "host_path", TEXT},
        {O_MOUNT, "workspace", "mount_point", TEXT},
        {O_READ_ONLY, "workspace", "read_only", TRUE},
        {O_IDLE, "lifecycle", "max_idle_ms", NUMBER},
        {O_LIFETIME, "lifecycle", "max_lifetime_ms", NUMBER},
        {O_RESTART, "lifecycle", "restart_on_crash", TRUE},
        {O_MAX_RESTARTS, "lifecycle", "max_restarts", NUMBER},
    };
    if (o == O_ENV) {
        const char *eq = strchr(arg, '=');
        if (eq == NULL || eq == arg)
            return cli_fail("--env: '%s' is not KEY=VALUE", arg);
        if (json_object_setn_new(sub(a->body, "env"), arg, (size_t)(eq - arg),
                                 json_string(eq + 1)) < 0)
            return cli_fail("--env: '%s' is not UTF-8", arg);
        return 0;
    }
    for (size_t i = 0; i < CB_ARRAY_LEN(map); i++) {
        if (map[i].opt != o)
            continue;
        json_t *v = map[i].kind == TEXT ? json_string(arg) : json_true();
        if (v == NULL)
            return cli_fail("--%s: '%s' is not UTF-8", map[i].key, arg);
        uint64_t n;
        if (map[i].kind == NUMBER) {
            if (cb_parse_u64(arg, strlen(arg), &n) < 0 || n > INT64_MAX)
                return cli_fail("--%s: '%s' is not a number", map[i].key, arg);
            v = json_integer((json_int_t)n);
        }
        json_object_set_new(map[i].table ? sub(a->body, map[i].table) : a->body, map[i].key, v);
    }
    return 0;
}

/* Options of every subcommand; returns -1 to go on, else the exit code. */
static int parse_agents_args(int argc, char **argv, struct agents_args *a)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"file", required_argument, NULL, O_FILE},
                                         {"name", required_argument, NULL, O_NAME},
                                         {"image", required_argument, NULL, O_IMAGE},
                                         {"policy", required_argument, NULL, O_POLICY},
                                         {"env", required_argument, NULL, O_ENV},
                                         {"workspace", required_argument, NULL, O_WORKSPACE},
                                         {"mount-point", required_argument, NULL, O_MOUNT},
                                         {"read-only", no_argument, NULL, O_READ_ONLY},
                                         {"max-idle-ms", required_argument, NULL, O_IDLE},
                                         {"max-lifetime-ms", required_argument, NULL, O_LIFETIME},
                                         {"restart-on-crash", no_argument, NULL, O_RESTART},
                                         {"max-restarts", required_argument, NULL, O_MAX_RESTARTS},
                                         {"purge", no_argument, NULL, O_PURGE},
                                         {"json", no_argument, NULL, O_JSON},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cli_conn_init(&a->conn);
    a->body = json_object();
    /* Everything after "--" is the command, never an option or the id. */
    for (a->end = 1; a->end < argc && strcmp(argv[a->end], "--") != 0; a->end++)
        ;
    optind = 1;
    int o;
    while ((o = getopt_long(a->end, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&a->conn, o, optarg))
            continue;
        if (o == 'h') {
            fputs(agents_usage, stdout);
            return 0;
        }
        if (o == '?' || o == ':')
            return usage_error();
        if (o == O_FILE)
            a->file = optarg;
        else if (o == O_PURGE)
            a->purge = true;
        else if (o == O_JSON)
            a->json = true;
        else if (flag(a, o, optarg) != 0)
            return 1;
    }
    a->first = optind;
    return -1;
}

/* The AgentConfig in FILE (JSON, or TOML for a .toml name), with the flags
 * already given laid over it. */
static int load_file(struct agents_args *a)
{
    struct cb_file f;
    struct cb_error err = {0};
    if (cb_file_load(&f, AT_FDCWD, a->file, FILE_MAX, 0, &err) < 0) {
        cb_file_close(&f);
        return cli_fail("%s", err.msg);
    }
    size_t n = strlen(a->file);
    json_t *j;
    if (n > 5 && strcmp(a->file + n - 5, ".toml") == 0) {
        j = cb_toml_to_json(f.buf.data, f.buf.len, &err);
    } else {
        json_error_t je;
        j = json_loadb(f.buf.data, f.buf.len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL)
            snprintf(err.msg, sizeof(err.msg), "line %d, column %d: %s", je.line, je.column,
                     je.text);
    }
    cb_file_close(&f);
    if (!json_is_object(j)) {
        json_decref(j);
        return cli_fail("%s: %s", a->file, err.msg[0] ? err.msg : "not an object");
    }
    json_object_update_recursive(j, a->body);
    json_decref(a->body);
    a->body = j;
    return 0;
}

static int send(struct agents_args *a, const char *method, const char *path, const char *body,
                bool print)
{
    if (cli_conn_token(&a->conn) < 0)
        return 1;
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(&a->conn, method, path, body, &out);
    if (rc == 0 && print)
        cli_print_body(&out);
    cb_buf_free(&out);
    return rc;
}

static int create(struct agents_args *a, int argc, char **argv)
{
    if (a->file != NULL && load_file(a) != 0)
        return 1;
    int operands = a->end - a->first - 1;
    if (operands > 1)
        return usage_error();
    if (operands == 1 &&
        json_object_set_new(a->body, "agent_id", json_string(argv[a->first + 1])) < 0)
        return cli_fail("'%s' is not an agent id", argv[a->first + 1]);
    if (a->end + 1 < argc) {
        json_t *cmd = json_array();
        for (int i = a->end + 1; i < argc; i++)
            if (json_array_append_new(cmd, json_string(argv[i])) < 0) {
                json_decref(cmd);
                return cli_fail("command: argument %d is not UTF-8", i - a->end);
            }
        json_object_set_new(a->body, "command", cmd);
    }
    if (json_object_get(a->body, "agent_id") == NULL)
        return cli_fail("agents create: give the agent's id (or agent_id in --file)");
    char *text = json_dumps(a->body, JSON_COMPACT);
    int rc = send(a, "POST", "/agents", text, true);
    free(text);
    return rc;
}

static void print_agents_table(const json_t *list)
{
    printf("%-24s %-11s %-25s %s\n", "AGENT ID", "STATUS", "LAST ACTIVITY", "NAME");
    size_t i;
    const json_t *g;
    json_array_foreach(list, i, g)
    {
        const char *f[4] = {"agent_id", "status", "last_activity", "name"};
        const char *v[4];
        for (size_t k = 0; k < 4; k++) {
            v[k] = json_string_value(json_object_get(g, f[k]));
            v[k] = v[k] ? v[k] : "";
        }
        printf("%-24s %-11s %-25s %.60s\n", v[0], v[1], v[2], v[3]);
    }
    if (json_array_size(list) == 0)
        fputs("No agents.\n", stderr);
}

/* get and delete: one agent by id. */
static int one(struct agents_args *a, const char *verb, const char *id)
{
    struct cb_error err = {0};
    if (cb_agent_id_check(id, &err) < 0)
        return cli_fail("'%s' is not an agent id (%s)", id, err.msg);
    bool del = strcmp(verb, "delete") == 0;
    char *path = cb_xasprintf("/agents/%s%s", id, del && a->purge ? "?purge=true" : "");
    int rc = send(a, del ? "DELETE" : "GET", path, NULL, !del);
    free(path);
    return rc;
}

/* start and stop: the new status in words, or the AgentInfo. */
static int start_stop(struct agents_args *a, const char *verb, const char *id)
{
    struct cb_error err = {0};
    if (cb_agent_id_check(id, &err) < 0)
        return cli_fail("'%s' is not an agent id (%s)", id, err.msg);
    if (cli_conn_token(&a->conn) < 0)
        return 1;
    char *path = cb_xasprintf("/agents/%s/%s", id, verb);
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(&a->conn, "POST", path, NULL, &out);
    free(path);
    json_t *info = rc == 0 ? json_loadb(out.data ? out.data : "", out.len, 0, NULL) : NULL;
    if (rc == 0 && a->json) {
        cli_print_body(&out);
    } else if (rc == 0) {
        const char *status = json_string_value(json_object_get(info, "status"));
        const char *ct = json_string_value(json_object_get(info, "container_id"));
        printf("agent %s: %s%s%s\n", id, status ? status : "?", ct ? ", container " : "",
               ct ? ct : "");
    }
    json_decref(info);
    cb_buf_free(&out);
    return rc;
}

int cmd_agents(int argc, char **argv)
{
    struct agents_args a = {0};
    int rc = parse_agents_args(argc, argv, &a);
    const char *verb = a.first < a.end ? argv[a.first] : "";
    int operands = a.end - a.first - 1;
    if (rc >= 0)
        ; /* help or a usage error */
    else if (strcmp(verb, "create") == 0)
        rc = create(&a, argc, argv);
    else if (a.end < argc) /* a command for a verb other than create */
        rc = usage_error();
    else if (strcmp(verb, "list") == 0 && operands == 0)
        rc = cli_list(&a.conn, "/agents", a.json, print_agents_table);
    else if ((strcmp(verb, "get") == 0 || strcmp(verb, "delete") == 0) && operands == 1)
        rc = one(&a, verb, argv[a.first + 1]);
    else if ((strcmp(verb, "start") == 0 || strcmp(verb, "stop") == 0) && operands == 1)
        rc = start_stop(&a, verb, argv[a.first + 1]);
    else
        rc = usage_error();
    json_decref(a.body);
    cli_conn_free(&a.conn);
    return rc;
}
