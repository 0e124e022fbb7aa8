/* clawbox exec CONTAINER_ID [options] -- COMMAND [ARGS...]: a client of
 * POST /containers/{id}/exec that prints the command's stdout and stderr
 * where they belong as they come (the NDJSON answer) and exits with its
 * code. */
#include "cli.h"
#include "core/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What --stdin may send (the server's limit). */
#define STDIN_MAX (1024 * 1024)
/* The exit code of a command that ran out of time, as timeout(1) has it. */
#define EXIT_TIMED_OUT 124
/* The longest event line taken from the server: one piece of redacted
 * output (at most 32 KiB) escaped as JSON. */
#define EVENT_MAX (1024 * 1024)

static const char exec_usage[] =
    "Usage: clawbox exec CONTAINER_ID [--timeout MS] [--cwd DIR] [--env NAME=VALUE]...\n"
    "                    [--stdin] [--detach] [--json] [--host H] [--port P] [--socket PATH]\n"
    "                    [--token T] -- COMMAND [ARGS...]\n\n"
    "Runs COMMAND inside the running container as its own user, and prints its\n"
    "stdout and stderr (redacted, by whole lines) on stdout and stderr as they\n"
    "come. Interrupting it ends the command. Exits with the command's\n"
    "exit code; 124 when it ran out of time (it and everything it started are\n"
    "killed).\n\n"
    "  --timeout MS    how long it may run (default [containers] default_exec_timeout_ms)\n"
    "  --cwd DIR       its working directory inside the container\n"
    "  --env N=V       an environment variable on top of the container's (repeatable)\n"
    "  --stdin         send this command's stdin (at most 1 MiB) to it\n"
    "  --detach        start it and return: prints its exec id (GET\n"
    "                  /containers/ID/execs/EXEC_ID tells how it ended); its output\n"
    "                  goes to the container's log (clawbox logs --container ID)\n"
    "  --json          print the server's answer as JSON instead\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

struct exec_args {
    struct cli_conn conn;
    json_t *body;
    bool json;
    bool stdin_too;
    bool detach;
};

static int bad(void)
{
    fputs(exec_usage, stderr);
    return 2;
}

/* Parses the options into a->body; returns -1 to go on, else the exit
 * code. */
static int parse_exec_args(int argc, char **argv, struct exec_args *a, int *first)
{
    static const struct option opts[] = {CLI_CONN_OPTIONS,
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"cwd", required_argument, NULL, 'd'},
                                         {"env", required_argument, NULL, 'e'},
                                         {"stdin", no_argument, NULL, 'i'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"detach", no_argument, NULL, 'D'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    json_t *env = json_object();
    json_object_set_new(a->body, "env", env);
    optind = 1;
    int o;
    uint64_t ms;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&a->conn, o, optarg))
            continue;
        const char *eq = o == 'e' ? strchr(optarg, '=') : NULL;
        switch (o) {
        case 'T':
            if (cb_parse_u64(optarg, strlen(optarg), &ms) < 0 || ms == 0)
                return cli_fail("--timeout: expected milliseconds (1 or more), not '%s'", optarg);
            json_object_set_new(a->body, "timeout_ms", json_integer((json_int_t)ms));
            break;
        case 'd':
            json_object_set_new(a->body, "cwd", json_string(optarg));
            break;
        case 'e':
            if (eq == NULL || eq == optarg)
                return cli_fail("--env: expected NAME=VALUE, not '%s'", optarg);
            json_object_setn_new(env, optarg, (size_t)(eq - optarg), json_string(eq + 1));
            break;
        case 'i':
            a->stdin_too = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'D':
            a->detach = true;
            json_object_set_new(a->body, "detach", json_true());
            break;
        case 'h':
            fputs(exec_usage, stdout);
            return 0;
        default:
            return bad();
        }
    }
    *first = optind;
    return -1;
}

static int read_stdin(json_t *body)
{
    char *buf = cb_xmalloc(STDIN_MAX + 1);
    size_t n = fread(buf, 1, STDIN_MAX + 1, stdin);
    int rc = 0;
    json_t *text = n <= STDIN_MAX ? json_stringn(buf, n) : NULL;
    if (n > STDIN_MAX)
        rc = cli_fail("stdin: more than %d bytes", STDIN_MAX);
    else if (text == NULL)
        rc = cli_fail("stdin: not text (UTF-8 without NUL); clawbox exec sends text only");
    else
        json_object_set_new(body, "stdin", text);
    free(buf);
    return rc;
}

/* The command's exit code from its end (the exit event): its code, 124
 * when it ran out of time, 1 when it has none. */
static int exec_outcome(const json_t *end)
{
    json_t *code = json_object_get(end, "code");
    int rc = json_is_integer(code) ? (int)(json_integer_value(code) & 0xff) : 1;
    if (json_is_true(json_object_get(end, "timed_out"))) {
        fprintf(stderr, "clawbox: the command ran out of time and was killed\n");
        rc = EXIT_TIMED_OUT;
    }
    if (json_is_true(json_object_get(end, "truncated")))
        fprintf(stderr, "clawbox: output past [containers] max_exec_output_bytes was dropped\n");
    return rc;
}

/* The streamed answer, one event a line (docs/api.md). */
struct events {
    struct cb_buf line; /* the event being received */
    json_t *end;        /* the exit event, once it came */
};

static void put_data(FILE *f, const json_t *data)
{
    if (json_is_string(data)) {
        fwrite(json_string_value(data), 1, json_string_length(data), f);
        fflush(f);
    }
}

static void event(struct events *e)
{
    json_t *ev = json_loadb(e->line.data ? e->line.data : "", e->line.len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (type != NULL && strcmp(type, "stdout") == 0)
        put_data(stdout, json_object_get(ev, "data"));
    else if (type != NULL && strcmp(type, "stderr") == 0)
        put_data(stderr, json_object_get(ev, "data"));
    else if (type != NULL && strcmp(type, "exit") == 0)
        e->end = json_incref(ev);
    json_decref(ev);
    cb_buf_reset(&e->line);
}

static int on_events(void *ud, const char *data, size_t n)
{
    struct events *e = ud;
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t)(nl - data) : n;
        if (cb_buf_append(&e->line, data, k) < 0)
            return -1;
        if (nl != NULL) {
            event(e);
            k++;
        }
        data += k;
        n -= k;
    }
    return 0;
}

static int stream(struct exec_args *a, const char *path, const char *text)
{
    struct events e = {0};
    cb_buf_init(&e.line, EVENT_MAX);
    int rc =
        cli_stream_request(&a->conn, "POST", path, text, "application/x-ndjson", on_events, &e);
    if (rc == 0 && e.end == NULL)
        rc = cli_fail("the server's answer ended before the command's exit");
    else if (rc == 0)
        rc = exec_outcome(e.end);
    json_decref(e.end);
    cb_buf_free(&e.line);
    return rc;
}

/* A detached exec's id, alone on its line (for scripts). */
static void print_exec_id(const struct cb_buf *out)
{
    json_t *j = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "exec_id"));
    printf("%s\n", id ? id : "");
    json_decref(j);
}

static int run_exec(struct exec_args *a, const char *id)
{
    if (cli_conn_token(&a->conn) < 0)
        return 1;
    char *path = cb_xasprintf("/containers/%s/exec", id);
    char *text = json_dumps(a->body, JSON_COMPACT);
    int rc = 0;
    if (a->json || a->detach) {
        struct cb_buf out;
        cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
        rc = cli_request(&a->conn, "POST", path, text, &out);
        if (rc == 0 && a->json)
            cli_print_body(&out);
        else if (rc == 0)
            print_exec_id(&out);
        cb_buf_free(&out);
    } else {
        rc = stream(a, path, text);
    }
    free(text);
    free(path);
    return rc;
}

int cmd_exec(int argc, char **argv)
{
    struct exec_args a = {.body = json_object()};
    cli_conn_init(&a.conn);
    int first = 0;
    int rc = parse_exec_args(argc, argv, &a, &first);
    /* getopt moved CONTAINER_ID in front of what followed "--". */
    if (rc < 0 && argc - first < 2)
        rc = bad();
    if (rc < 0 && !cb_name_valid(argv[first]))
        rc = cli_fail("'%s' is not a container id (clawbox list containers shows them)",
                      argv[first]);
    if (rc < 0) {
        json_t *cmd = json_array();
        for (int i = first + 1; i < argc; i++)
            json_array_append_new(cmd, json_string(argv[i]));
        json_object_set_new(a.body, "command", cmd);
        rc = a.stdin_too ? read_stdin(a.body) : 0;
        if (rc == 0)
            rc = run_exec(&a, argv[first]);
    }
    json_decref(a.body);
    cli_conn_free(&a.conn);
    return rc;
}
