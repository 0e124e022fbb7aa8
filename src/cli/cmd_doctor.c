/* clawbox doctor [--config PATH] [--json]: checks the installation and
 * prints what to fix. */
#include "cli.h"
#include "core/home.h"
#include "core/util.h"
#include "http/listen.h"
#include "sandbox/compile.h"
#include "secrets/secrets.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char doctor_usage_text[] =
    "Usage: clawbox doctor [--config PATH] [--json]\n\n"
    "Checks this installation: configuration, tool compiler, master key, file\n"
    "permissions, the listening port and free disk. Prints each finding and what\n"
    "to do about it; exits 1 when something must be fixed, else 0.\n\n"
    "  --config PATH   config file (default ~/.clawbox/config/clawbox.toml if it exists)\n"
    "  --json          print the findings as a JSON array\n";

#define DISK_WARN_BYTES (1ull << 30)
#define DISK_FAIL_BYTES (100ull << 20)
/* Enough of a /health answer to see that it is clawbox's. */
#define HEALTH_BODY_MAX 4096

enum level { OK, WARN, FAIL };
static const char *const level_names[] = {"ok", "warn", "fail"};

struct doctor {
    json_t *findings;
    int failed;
};

static void add(struct doctor *d, enum level lv, const char *check, const char *what,
                const char *fix)
{
    json_array_append_new(d->findings, json_pack("{s:s, s:s, s:s, s:s?}", "level", level_names[lv],
                                                 "check", check, "message", what, "fix", fix));
    if (lv == FAIL)
        d->failed++;
}

static void check_config(struct doctor *d, const char *path, const struct cb_config_diag *diag,
                         int rc, const char *why)
{
    for (size_t i = 0; i < diag->warnings.len; i++)
        add(d, WARN, "config", diag->warnings.items[i], NULL);
    for (size_t i = 0; i < diag->errors.len; i++)
        add(d, FAIL, "config", diag->errors.items[i],
            "correct the file, then run "
            "clawbox serve --check-config");
    if (rc < 0 && diag->errors.len == 0)
        add(d, FAIL, "config", why, "correct the file, then run clawbox serve --check-config");
    else if (rc == 0) {
        char *m = cb_xasprintf("loaded %s", path ? path : "the built-in defaults");
        add(d, path ? OK : WARN, "config", m,
            path ? NULL : "run clawbox init to create ~/.clawbox with a config and a token");
        free(m);
    }
}

static void check_compiler(struct doctor *d)
{
    struct cb_error err = {0};
    if (cb_compile_toolchain_check(&err) < 0)
        add(d, FAIL, "compiler", err.msg,
            "install the packages of scripts/deps.sh build (make deps does it)");
    else
        add(d, OK, "compiler", "wasm2c, cc and the wasm2c runtime are present", NULL);
}

static void check_key(struct doctor *d, const struct cb_config *cfg)
{
    struct cb_master_key key;
    struct cb_error err = {0};
    struct stat st;
    bool store = stat(cfg->credentials.store_path, &st) == 0;
    int rc = cb_master_key_load(cfg->credentials.key_file, &key, &err);
    explicit_bzero(&key, sizeof(key));
    if (rc == 0) {
        add(d, OK, "master key", "the credential store's master key loads", NULL);
        return;
    }
    if (rc == -ENOENT) {
        char *m = cb_xasprintf("no master key%s: credentials are never injected",
                               store ? " but a credential store exists" : "");
        char *kpath = cb_home_path(CB_HOME_MASTER_KEY);
        char *fix = cb_xasprintf("clawbox init writes one (and never replaces a key); or: umask "
                                 "077; openssl rand -hex 32 > %s, then set [credentials] "
                                 "key_file = \"%s\"",
                                 kpath, kpath);
        add(d, store ? FAIL : WARN, "master key", m, fix);
        free(m);
        free(fix);
        free(kpath);
        return;
    }
    add(d, FAIL, "master key", err.msg, "chmod 600 the key file, owned by the server's user");
}

/* Files that hold secrets must be private to their owner. */
static void check_private(struct doctor *d, const char *what, const char *path)
{
    struct stat st;
    if (path == NULL || stat(path, &st) < 0)
        return;
    if ((st.st_mode & 077) == 0) {
        char *m = cb_xasprintf("%s %s is private (mode %04o)", what, path, st.st_mode & 07777);
        add(d, OK, "permissions", m, NULL);
        free(m);
        return;
    }
    char *m = cb_xasprintf("%s %s has mode %04o: other users can read it", what, path,
                           st.st_mode & 07777);
    char *fix = cb_xasprintf("chmod 600 %s", path);
    add(d, FAIL, "permissions", m, fix);
    free(m);
    free(fix);
}

static void check_dir(struct doctor *d, const char *what, const char *path)
{
    char *m;
    if (access(path, W_OK | X_OK) == 0) {
        m = cb_xasprintf("%s %s is writable", what, path);
        add(d, OK, "permissions", m, NULL);
    } else if (errno == ENOENT) {
        m = cb_xasprintf("%s %s does not exist yet; the server creates it", what, path);
        add(d, OK, "permissions", m, NULL);
    } else {
        m = cb_xasprintf("%s %s is not writable: %s", what, path, strerror(errno));
        add(d, FAIL, "permissions", m, "give the server's user write access to it");
    }
    free(m);
}

/* Free space where dir lives (its nearest existing ancestor). */
static void check_disk(struct doctor *d, const char *what, const char *dir)
{
    char *p = cb_xstrdup(dir);
    struct statvfs vfs;
    while (statvfs(p, &vfs) < 0) {
        char *slash = strrchr(p, '/');
        if (slash == NULL || slash == p) {
            free(p);
            p = cb_xstrdup("/");
            break;
        }
        *slash = '\0';
    }
    unsigned long long avail = 0;
    if (statvfs(p, &vfs) == 0)
        avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    char *m = cb_xasprintf("%llu MiB free for the %s (%s)", avail >> 20, what, p);
    enum level lv = avail < DISK_FAIL_BYTES ? FAIL : avail < DISK_WARN_BYTES ? WARN : OK;
    add(d, lv, "disk", m, lv == OK ? NULL : "free some space: compiled tools and logs live there");
    free(m);
    free(p);
}

/* The port is free, or a clawbox server answers on it. */
static void check_port(struct doctor *d, const struct cb_config *cfg)
{
    int fd = -1;
    struct cb_error err = {0};
    char *m;
    if (cb_listen_tcp(cfg->server.host, (uint16_t)cfg->server.port, &fd, &err) == 0) {
        close(fd);
        m = cb_xasprintf("%s:%u is free to listen on", cfg->server.host,
                         (unsigned)cfg->server.port);
        add(d, OK, "port", m, NULL);
        free(m);
        return;
    }
    struct cb_client c = {
        .host = cfg->server.host, .port = (unsigned)cfg->server.port, .timeout_ms = 2000};
    struct cb_buf body;
    long status = 0;
    cb_buf_init(&body, HEALTH_BODY_MAX);
    struct cb_error cerr = {0};
    bool ours = cb_client_request(&c, "GET", "/health", NULL, &status, &body, &cerr) == 0 &&
                status == 200 && body.len > 0 && memmem(body.data, body.len, "\"status\"", 8);
    cb_buf_free(&body);
    if (ours) {
        m = cb_xasprintf("a clawbox server is running on %s:%u", cfg->server.host,
                         (unsigned)cfg->server.port);
        add(d, OK, "port", m, NULL);
    } else {
        m = cb_xasprintf("%s", err.msg);
        add(d, FAIL, "port", m,
            "stop the program on that port, or use clawbox serve --port N or [server] port");
    }
    free(m);
}

static void print_findings(const json_t *findings)
{
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f)
    {
        const char *lv = json_string_value(json_object_get(f, "level"));
        printf("%-5s %s: %s\n", lv, json_string_value(json_object_get(f, "check")),
               json_string_value(json_object_get(f, "message")));
        const char *fix = json_string_value(json_object_get(f, "fix"));
        if (fix != NULL)
            printf("      fix: %s\n", fix);
    }
}

static int run_doctor(const char *path, bool as_json)
{
    struct doctor d = {.findings = json_array()};
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    int rc = cb_config_load(path, &cfg, &diag, &err);
    check_config(&d, path, &diag, rc, err.msg);
    cb_config_diag_free(&diag);
    check_compiler(&d);
    if (cfg != NULL) {
        check_key(&d, cfg);
        check_private(&d, "config file", path);
        check_private(&d, "key file", cfg->credentials.key_file);
        check_private(&d, "credential store", cfg->credentials.store_path);
        check_dir(&d, "data directory", cfg->server.data_dir);
        check_dir(&d, "audit directory", cfg->logging.audit_dir);
        check_port(&d, cfg);
        check_disk(&d, "data directory", cfg->server.data_dir);
        cb_config_free(cfg);
    }
    if (as_json) {
        json_dumpf(d.findings, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        print_findings(d.findings);
        printf("%s\n",
               d.failed ? "Something must be fixed: see the fail lines above." : "Nothing to fix.");
    }
    json_decref(d.findings);
    return d.failed ? 1 : 0;
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    bool as_json = false;
    int o;
    while ((o = getopt_long(argc, argv, "hc:", opts, NULL)) != -1) {
        if (o == 'c')
            config = optarg;
        else if (o == 'j')
            as_json = true;
        else
            return o == 'h' ? (fputs(doctor_usage_text, stdout), 0)
                            : (fputs(doctor_usage_text, stderr), 2);
    }
    char *def = config ? NULL : cli_default_config_path();
    int rc = run_doctor(config ? config : def, as_json);
    free(def);
    return rc;
}
