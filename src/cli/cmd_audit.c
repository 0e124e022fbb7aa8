/* clawbox audit verify, and clawbox logs [--tail N] [--follow] [filters] [--json]. */
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
    "Usage: clawbox logs [--config PATH] [--dir DIR] [--tail N] [--follow] [--tool NAME]\n"
    "                    [--decision D] [--since TIME] [--json]\n\n"
    "Prints the last N (default 20) audit lines that pass the filters as\n"
    "  [<timestamp>] <METHOD> <url> -> <status> (<ms>ms) <decision>[: <reason>]\n"
    "(lines without a URL show the tool, or for credential changes what changed)\n"
    "and with --follow keeps printing new ones.\n\n"
    "  --tool NAME      only lines of this tool\n"
    "  --decision D     only lines with this decision (allowed, denied, error, ...)\n"
    "  --since TIME     only lines at or after TIME: an ISO 8601 UTC time\n"
    "                   (2026-01-31T12:00:00Z, or a prefix such as 2026-01-31) or an\n"
    "                   age such as 90s, 15m, 2h, 7d\n"
    "  --json           print the matching audit lines themselves (JSON Lines)\n";

struct audit_args {
    const char *config;
    const char *dir;
    size_t tail;
    bool follow;
    bool json;
    const char *tool;
    const char *decision;
    char since[32]; /* ISO 8601 UTC prefix; "" = no bound */
};

/* --since: an ISO 8601 UTC time (kept as given: audit timestamps compare
 * as text) or an age in s, m, h or d, turned into the time that long ago. */
static int parse_since(const char *arg, char out[32])
{
    size_t n = strlen(arg);
    static const struct {
        char unit;
        uint64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    uint64_t v;
    for (size_t i = 0; n > 1 && i < CB_ARRAY_LEN(units); i++) {
        if (arg[n - 1] != units[i].unit || cb_parse_u64(arg, n - 1, &v) < 0 ||
            v > UINT64_MAX / units[i].seconds)
            continue;
        time_t now = time(NULL);
        uint64_t age = v * units[i].seconds;
        time_t t = age >= (uint64_t)now ? 0 : now - (time_t)age;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        return 0;
    }
    if (n < 4 || n >= 32 || arg[0] < '0' || arg[0] > '9')
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789-T:.Z", arg[i]))
            return -1;
    memcpy(out, arg, n + 1);
    return 0;
}

static int parse_audit_args(int argc, char **argv, struct audit_args *a, const char *usage)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"dir", required_argument, NULL, 'd'},
        {"tail", required_argument, NULL, 'n'},   {"follow", no_argument, NULL, 'f'},
        {"tool", required_argument, NULL, 't'},   {"decision", required_argument, NULL, 'D'},
        {"since", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
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
        else if (o == 'j')
            a->json = true;
        else if (o == 't')
            a->tool = optarg;
        else if (o == 'D')
            a->decision = optarg;
        else if (o == 's' && parse_since(optarg, a->since) < 0)
            return cli_fail("--since must be an ISO 8601 UTC time (2026-01-31T12:00:00Z) or an "
                            "age such as 15m, 2h or 7d; got '%s'",
                            optarg);
        else if (o == 's')
            continue;
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
    int rc = parse_audit_args(argc, argv, &a, audit_usage);
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

static bool wanted(const struct audit_args *a, json_t *j)
{
    if (a->tool && strcmp(field(j, "tool"), a->tool) != 0)
        return false;
    if (a->decision && strcmp(field(j, "decision"), a->decision) != 0)
        return false;
    return a->since[0] == '\0' || strcmp(field(j, "timestamp"), a->since) >= 0;
}

/* Prints one audit line in the reference's `logs` format, with the
 * decision and the reason after it. */
static void print_audit_text(json_t *j)
{
    json_t *st = json_object_get(j, "status");
    json_t *ms = json_object_get(j, "duration_ms");
    char status[24] = "?", dur[24] = "?";
    if (json_is_integer(st))
        snprintf(status, sizeof(status), "%lld", (long long)json_integer_value(st));
    if (json_is_integer(ms))
        snprintf(dur, sizeof(dur), "%lld", (long long)json_integer_value(ms));
    const char *decision = json_string_value(json_object_get(j, "decision"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    bool why = decision && reason && reason[0];
    printf("[%s] %s %s -> %s (%sms)%s%s%s%s\n", field(j, "timestamp"), field(j, "method"),
           subject(j), status, dur, decision ? " " : "", decision ? decision : "", why ? ": " : "",
           why ? reason : "");
}

/* The lines kept for --tail with filters: a ring of the last n matches. */
struct ring {
    char **lines;
    size_t n, next, count;
};

struct print_ctx {
    const struct audit_args *a;
    struct ring *ring; /* NULL: print at once */
};

static void emit(const struct audit_args *a, const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    if (j == NULL) {
        if (a->tool == NULL && a->decision == NULL && a->since[0] == '\0')
            printf("%.*s\n", (int)len, line);
        return;
    }
    if (wanted(a, j)) {
        if (a->json)
            printf("%.*s\n", (int)len, line);
        else
            print_audit_text(j);
    }
    json_decref(j);
    fflush(stdout);
}

static int print_line(const char *line, size_t len, void *ctx)
{
    struct print_ctx *pc = ctx;
    if (pc->ring == NULL) {
        emit(pc->a, line, len);
        return 0;
    }
    json_t *j = json_loadb(line, len, 0, NULL);
    bool keep = j != NULL && wanted(pc->a, j);
    json_decref(j);
    if (keep) {
        struct ring *r = pc->ring;
        free(r->lines[r->next]);
        r->lines[r->next] = cb_xstrndup(line, len);
        r->next = (r->next + 1) % r->n;
        r->count += r->count < r->n;
    }
    return 0;
}

/* The last a->tail lines that pass the filters, among the last
 * CB_AUDIT_MAX_TAIL lines of the log. */
static int print_tail(const char *dir, const struct audit_args *a, struct cb_error *err)
{
    bool filtered = a->tool || a->decision || a->since[0];
    struct ring ring = {.n = a->tail};
    struct print_ctx pc = {a, filtered ? &ring : NULL};
    if (!filtered)
        return cb_audit_tail(dir, a->tail, print_line, &pc, err);
    ring.lines = cb_xcalloc(ring.n, sizeof(char *));
    int r = cb_audit_tail(dir, CB_AUDIT_MAX_TAIL, print_line, &pc, err);
    size_t first = (ring.next + ring.n - ring.count) % ring.n;
    for (size_t i = 0; i < ring.count; i++) {
        const char *l = ring.lines[(first + i) % ring.n];
        emit(a, l, strlen(l));
    }
    for (size_t i = 0; i < ring.n; i++)
        free(ring.lines[i]);
    free(ring.lines);
    return r;
}

static int follow(const char *dir, const struct audit_args *a)
{
    struct print_ctx pc = {a, NULL};
    struct cb_audit_cursor *c = NULL;
    struct cb_error err = {0};
    if (cb_audit_cursor_open(dir, &c, &err) < 0)
        return cli_fail("%s", err.msg);
    for (;;) {
        if (cb_audit_cursor_poll(c, print_line, &pc, &err) < 0) {
            cb_audit_cursor_close(c);
            return cli_fail("%s", err.msg);
        }
        struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cmd_logs(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--container", 11) == 0 && (argv[i][11] == '\0' || argv[i][11] == '='))
            return cli_container_logs(argc, argv);
    struct audit_args a = {0};
    int rc = parse_audit_args(argc, argv, &a, logs_usage);
    if (rc >= 0)
        return rc;
    char *dir = audit_dir(&a);
    if (dir == NULL)
        return 1;
    struct cb_error err = {0};
    int r = a.tail > 0 ? print_tail(dir, &a, &err) : 0;
    if (r == -ENOENT && !a.follow)
        rc = cli_fail("no audit log in %s", dir);
    else if (r < 0 && r != -ENOENT)
        rc = cli_fail("%s", err.msg);
    else
        rc = a.follow ? follow(dir, &a) : 0;
    free(dir);
    return rc;
}
