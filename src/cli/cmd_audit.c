/* clawbox audit verify, and clawbox logs [--tail N] [--follow]. */
#include "audit/audit.h"
#include "cli.h"
#include "core/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FOLLOW_POLL_MS 200

static const char audit_usage[] =
    "Usage: clawbox audit verify [--config PATH] [--dir DIR]\n\n"
    "Checks the hash chain of the audit log (default [logging] audit_dir) across all\n"
    "its files and reports the first broken line, then checks that the log reaches\n"
    "its anchor in the state database (<server.data_dir>/state.db), which names how\n"
    "many lines were cut from its end. Exit 0 when intact, 1 when not.\n";

static const char logs_usage[] =
    "Usage: clawbox logs [--config PATH] [--dir DIR] [--tail N] [--follow]\n\n"
    "Prints the last N (default 20) audit lines as\n"
    "  [<timestamp>] <METHOD> <url> -> <status> (<ms>ms)\n"
    "(lines without a URL show the tool, or for credential changes what changed)\n"
    "and with --follow keeps printing new ones.\n";

struct audit_args {
    const char *config;
    const char *dir;
    size_t tail;
    bool follow;
};

static int parse(int argc, char **argv, struct audit_args *a, const char *usage)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"dir", required_argument, NULL, 'd'},
        {"tail", required_argument, NULL, 'n'},   {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int o;
    uint64_t n;
    a->tail = 20;
    while ((o = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
        if (o == 'c')
            a->config = optarg;
        else if (o == 'd')
            a->dir = optarg;
        else if (o == 'f')
            a->follow = true;
        else if (o == 'n' && cb_parse_u64(optarg, strlen(optarg), &n) == 0 &&
                 n <= CB_AUDIT_MAX_TAIL)
            a->tail = (size_t)n;
        else if (o == 'n')
            return cli_fail("--tail must be a number from 0 to %d", CB_AUDIT_MAX_TAIL);
        else
            return o == 'h' ? (fputs(usage, stdout), 0) : (fputs(usage, stderr), 2);
    }
    return -1;
}

/* The audit directory: --dir, else [logging] audit_dir. */
static char *audit_dir(const struct audit_args *a)
{
    if (a->dir)
        return cb_xstrdup(a->dir);
    struct cb_config *cfg = cli_load_config(a->config);
    char *d = cfg ? cb_xstrdup(cfg->logging.audit_dir) : NULL;
    cb_config_free(cfg);
    return d;
}

/* The state database holding the anchor: <server.data_dir>/state.db of
 * the config (also with --dir: the anchor is found by the directory's real
 * path). */
static char *anchor_db(const struct audit_args *a)
{
    struct cb_config *cfg = cli_load_config(a->config);
    char *db = cfg ? cb_xasprintf("%s/state.db", cfg->server.data_dir) : NULL;
    cb_config_free(cfg);
    return db;
}

static void print_intact(const struct cb_audit_verify_report *rep, const char *db)
{
    printf("audit log intact: %llu lines in %zu file(s); last hash %s\n",
           (unsigned long long)rep->lines, rep->files, rep->last_hash);
    if (rep->anchored)
        printf("anchor in %s: line %llu, reached\n", db, (unsigned long long)rep->anchor_lines);
    else
        printf("no anchor in %s: lines cut from the end of the log would not be noticed\n", db);
}

static int verify(const char *dir, const char *db)
{
    struct cb_audit_verify_report rep;
    struct cb_error err = {0};
    int r = cb_audit_verify_anchored(dir, db, &rep, &err);
    if (r == 0)
        print_intact(&rep, db);
    else if (r == CB_AUDIT_E_BROKEN && rep.missing > 0)
        cli_fail("audit chain broken at %s line %llu: %s\n%llu %s missing from the end of the "
                 "log",
                 rep.file, (unsigned long long)rep.line, rep.reason,
                 (unsigned long long)rep.missing, rep.missing == 1 ? "line is" : "lines are");
    else if (r == CB_AUDIT_E_BROKEN)
        cli_fail("audit chain broken at %s line %llu: %s", rep.file, (unsigned long long)rep.line,
                 rep.reason);
    else
        cli_fail("%s", err.msg);
    return r == 0 ? 0 : 1;
}

int cmd_audit(int argc, char **argv)
{
    struct audit_args a = {0};
    int rc = parse(argc, argv, &a, audit_usage);
    if (rc >= 0)
        return rc;
    if (optind >= argc || strcmp(argv[optind], "verify") != 0) {
        fputs(audit_usage, stderr);
        return 2;
    }
    char *dir = audit_dir(&a);
    char *db = dir ? anchor_db(&a) : NULL;
    rc = db ? verify(dir, db) : 1;
    free(db);
    free(dir);
    return rc;
}

static const char *field(json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    return v ? v : "?";
}

/* What a line is about: the URL of a proxied request, else the tool of an
 * execution or registration, else the reason (credential changes). */
static const char *subject(json_t *j)
{
    static const char *const keys[] = {"url", "tool", "reason"};
    for (size_t i = 0; i < CB_ARRAY_LEN(keys); i++) {
        const char *v = json_string_value(json_object_get(j, keys[i]));
        if (v != NULL)
            return v;
    }
    return "?";
}

/* Prints one audit line in the reference's `logs` format. */
static int print_line(const char *line, size_t len, void *ctx)
{
    (void)ctx;
    json_t *j = json_loadb(line, len, 0, NULL);
    if (j == NULL) {
        printf("%.*s\n", (int)len, line);
        return 0;
    }
    json_t *st = json_object_get(j, "status");
    json_t *ms = json_object_get(j, "duration_ms");
    char status[24] = "?", dur[24] = "?";
    if (json_is_integer(st))
        snprintf(status, sizeof(status), "%lld", (long long)json_integer_value(st));
    if (json_is_integer(ms))
        snprintf(dur, sizeof(dur), "%lld", (long long)json_integer_value(ms));
    printf("[%s] %s %s -> %s (%sms)\n", field(j, "timestamp"), field(j, "method"), subject(j),
           status, dur);
    json_decref(j);
    fflush(stdout);
    return 0;
}

static int follow(const char *dir)
{
    struct cb_audit_cursor *c = NULL;
    struct cb_error err = {0};
    if (cb_audit_cursor_open(dir, &c, &err) < 0)
        return cli_fail("%s", err.msg);
    for (;;) {
        if (cb_audit_cursor_poll(c, print_line, NULL, &err) < 0) {
            cb_audit_cursor_close(c);
            return cli_fail("%s", err.msg);
        }
        struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cmd_logs(int argc, char **argv)
{
    struct audit_args a = {0};
    int rc = parse(argc, argv, &a, logs_usage);
    if (rc >= 0)
        return rc;
    char *dir = audit_dir(&a);
    if (dir == NULL)
        return 1;
    struct cb_error err = {0};
    int r = a.tail > 0 ? cb_audit_tail(dir, a.tail, print_line, NULL, &err) : 0;
    if (r == -ENOENT && !a.follow)
        rc = cli_fail("no audit log in %s", dir);
    else if (r < 0 && r != -ENOENT)
        rc = cli_fail("%s", err.msg);
    else
        rc = a.follow ? follow(dir) : 0;
    free(dir);
    return rc;
}
