#include "config/env.h"
#include "cli.h"
#include "core/home.h"
#include "core/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("clawbox: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

void cli_conn_init(struct cli_conn *c)
{
    const char *host = cb_config_env(CB_ENV_HOST);
    const char *port = cb_config_env(CB_ENV_PORT);
    uint64_t p = 9800;
    if (port != NULL && cb_parse_u64(port, strlen(port), &p) < 0)
        p = 9800;
    memset(c, 0, sizeof(*c));
    c->client.host = host && host[0] ? host : "127.0.0.1";
    c->client.port = (unsigned)p;
    c->client.timeout_ms = 600000;
}

int cli_conn_token(struct cli_conn *c)
{
    struct cb_error err = {0};
    c->token = cb_client_resolve_token(c->token_flag, &err);
    if (c->token == NULL) {
        cli_fail("%s", err.msg);
        return -1;
    }
    c->client.token = c->token;
    return 0;
}

void cli_conn_free(struct cli_conn *c)
{
    if (c->token)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    c->token = NULL;
}

int cli_parse_port(const char *arg, uint16_t *port)
{
    uint64_t p;
    if (cb_parse_u64(arg, strlen(arg), &p) < 0 || p == 0 || p > 65535) {
        cli_fail("--port must be a number from 1 to 65535, got '%s'", arg);
        return -1;
    }
    *port = (uint16_t)p;
    return 0;
}

bool cli_conn_option(struct cli_conn *c, int opt, const char *arg)
{
    uint16_t p;
    switch (opt) {
    case 'H':
        c->client.host = arg;
        return true;
    case 'p':
        if (cli_parse_port(arg, &p) < 0)
            exit(2);
        c->client.port = p;
        return true;
    case 'S':
        c->client.unix_socket = arg;
        return true;
    case 't':
        c->token_flag = arg;
        return true;
    default:
        return false;
    }
}

/* Prints the ApiError message of a failed response, or the raw body. */
static void print_api_error(long status, const struct cb_buf *body)
{
    json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *code = json_string_value(json_object_get(j, "code"));
    if (msg != NULL)
        cli_fail("server returned %ld (%s): %s", status, code ? code : "error", msg);
    else
        cli_fail("server returned %ld: %.*s", status, (int)body->len, body->data ? body->data : "");
    json_decref(j);
}

/* The exit code of a request's outcome r, the errors printed. */
static int outcome(int r, long status, const struct cb_buf *out, const struct cb_error *err)
{
    if (r == -ECONNREFUSED) {
        cli_fail("%s\nIs the server running? Start it with: clawbox serve", err->msg);
        return 1;
    }
    if (r < 0)
        return cli_fail("%s", err->msg);
    if (status < 200 || status > 299) {
        print_api_error(status, out);
        return 1;
    }
    return 0;
}

int cli_request(const struct cli_conn *c, const char *method, const char *path, const char *body,
                struct cb_buf *out)
{
    struct cb_error err = {0};
    long status = 0;
    int r = cb_client_request(&c->client, method, path, body, &status, out, &err);
    return outcome(r, status, out, &err);
}

int cli_upload(const struct cli_conn *c, const char *method, const char *path, int fd, int64_t size,
               uint64_t *sent, struct cb_buf *out)
{
    struct cb_error err = {0};
    long status = 0;
    int r = cb_client_upload(&c->client, method, path, fd, size, sent, &status, out, &err);
    return outcome(r, status, out, &err);
}

int cli_stream(const struct cli_conn *c, const char *path, cb_client_sink_fn sink, void *ud)
{
    return cli_stream_request(c, "GET", path, NULL, NULL, sink, ud);
}

int cli_stream_request(const struct cli_conn *c, const char *method, const char *path,
                       const char *body, const char *accept, cb_client_sink_fn sink, void *ud)
{
    struct cb_error err = {0};
    struct cb_buf out;
    long status = 0;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int r = cb_client_stream_request(&c->client, method, path, body, accept, sink, ud, &status,
                                     &out, &err);
    int rc = outcome(r, status, &out, &err);
    cb_buf_free(&out);
    return rc;
}

char *cli_default_config_path(void)
{
    char *p = cb_home_path(CB_HOME_CONFIG);
    struct stat st;
    if (stat(p, &st) == 0)
        return p;
    free(p);
    return NULL;
}

struct cb_config *cli_load_config(const char *path)
{
    char *def = path ? NULL : cli_default_config_path();
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    if (cb_config_load(path ? path : def, &cfg, &diag, &err) < 0) {
        for (size_t i = 0; i < diag.errors.len; i++)
            fprintf(stderr, "error: %s\n", diag.errors.items[i]);
        cli_fail("invalid configuration (%s)", err.msg);
    }
    cb_config_diag_free(&diag);
    free(def);
    return cfg;
}

json_t *cli_reload_entry(const json_t *report, const char *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(report, list), i, v)
    {
        const char *n = json_is_string(v) ? json_string_value(v)
                                          : json_string_value(json_object_get(v, "tool"));
        if (n != NULL && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

void cli_print_body(const struct cb_buf *b)
{
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    if (j == NULL) {
        fwrite(b->data, 1, b->len, stdout);
    } else {
        json_dumpf(j, stdout, JSON_INDENT(2));
        json_decref(j);
    }
    fputc('\n', stdout);
}

int cli_list(struct cli_conn *c, const char *path, bool json, void (*table)(const json_t *list))
{
    if (cli_conn_token(c) < 0)
        return 1;
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    int rc = cli_request(c, "GET", path, NULL, &out);
    if (rc == 0 && json) {
        cli_print_body(&out);
    } else if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        table(j);
        json_decref(j);
    }
    cb_buf_free(&out);
    return rc;
}
