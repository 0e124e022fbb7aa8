/* clawbox creds add|list|remove: the encrypted credential store. Each add
 * or remove is recorded in the audit log (names and domains, never
 * values). */
#include "audit/audit.h"
#include "cli.h"
#include "core/util.h"
#include "secrets/secrets.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define VALUE_MAX 16384

static const char creds_usage_text[] =
    "Usage: clawbox creds [--config PATH] [--key-file PATH] ACTION\n\n"
    "Manages the encrypted credential store ([credentials] store_path). The key is\n"
    "CLAWBOX_MASTER_KEY (64 hex characters; make one with `openssl rand -hex 32`)\n"
    "or --key-file (a file of mode 0600 holding it).\n\n"
    "Actions:\n"
    "  add --name N --domain D [--header H] [--prefix P] [--allow-http] [--port N]\n"
    "                  store a credential; the value is read from stdin (not echoed).\n"
    "                  Header defaults to Authorization, prefix to \"Bearer \".\n"
    "                  D is a host (api.example.com, 127.0.0.1, ::1) or *.domain (the\n"
    "                  domain and its subdomains); no scheme, port or trailing dot.\n"
    "                  The credential is sent over https only, unless --allow-http;\n"
    "                  --port N sends it only to requests for port N.\n"
    "  list [--json]   names, domains and headers (never values)\n"
    "  remove --name N delete a credential\n\n"
    "Each add and remove writes a line to the audit log ([logging] audit_dir) with\n"
    "the credential's name and domain, never its value.\n"
    "A running server picks up changes to the store without a restart.\n";

struct creds_args {
    const char *config;
    const char *key_file;
    const char *name;
    const char *domain;
    const char *header;
    const char *prefix;
    bool allow_http;
    bool json;
    uint16_t port;
};

/* Reads one line from stdin with echo off when it is a terminal. */
static char *read_value(size_t *len)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    char *buf = cb_xmalloc(VALUE_MAX + 2);
    if (tty) {
        fputs("Credential value: ", stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    char *got = fgets(buf, VALUE_MAX + 2, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputc('\n', stderr);
    }
    size_t n = got ? strcspn(buf, "\r\n") : 0;
    *len = n;
    buf[n] = '\0';
    return buf;
}

static int open_store(const struct cb_config *cfg, const struct creds_args *a,
                      struct cb_secret_store **store)
{
    struct cb_master_key key;
    struct cb_error err = {0};
    int r = cb_master_key_load(a->key_file, &key, &err);
    if (r == 0) {
        r = cb_secret_store_open(cfg->credentials.store_path, &key, store, &err);
        cb_master_key_wipe(&key);
    }
    return r < 0 ? cli_fail("%s", err.msg) : 0;
}

/* Opened before the store is changed, so that a log that cannot be opened
 * leaves the store as it was. */
static int open_audit(const struct cb_config *cfg, struct cb_audit **log)
{
    /* The chain's anchor lives in the server's state database; a CLI verb
     * does not create the data directory for it (the server anchors these
     * lines too when it next appends). */
    struct stat st;
    bool anchored = stat(cfg->server.data_dir, &st) == 0 && S_ISDIR(st.st_mode);
    char *db = anchored ? cb_xasprintf("%s/state.db", cfg->server.data_dir) : NULL;
    struct cb_audit_options o = {
        .dir = cfg->logging.audit_dir,
        .max_file_bytes = cfg->logging.audit_max_file_bytes,
        .anchor_db = db,
    };
    struct cb_error err = {0};
    int r = cb_audit_open(&o, log, &err);
    free(db);
    if (r < 0)
        return cli_fail("%s; the credential store was not changed", err.msg);
    return 0;
}

/* Appends the line for one change that is already saved: `action` is add,
 * replace or remove. On failure the store stays changed, and the message
 * says so. */
static int audit_change(struct cb_audit *log, const char *action, const char *name,
                        const char *domain)
{
    const char *names[] = {name};
    char *reason =
        cb_xasprintf("clawbox creds: %s credential '%s' for domain %s", action, name, domain);
    struct cb_secret_change c = {.decision = action, .reason = reason, .domain = domain};
    if (strcmp(action, "add") == 0) {
        c.names.added = names;
        c.names.n_added = 1;
    } else if (strcmp(action, "replace") == 0) {
        c.names.changed = names;
        c.names.n_changed = 1;
    } else {
        c.names.removed = names;
        c.names.n_removed = 1;
    }
    struct cb_error err = {0};
    int r = cb_secret_change_audit(log, &c, &err);
    free(reason);
    if (r < 0)
        return cli_fail("the credential store WAS changed (%s '%s'), but its audit line could "
                        "not be written: %s",
                        action, name, err.msg);
    return 0;
}

static int save(struct cb_secret_store *s)
{
    struct cb_error err = {0};
    return cb_secret_store_save(s, &err) < 0 ? cli_fail("%s", err.msg) : 0;
}

static int do_add(struct cb_secret_store *s, struct cb_audit *log, const struct creds_args *a)
{
    size_t len = 0;
    struct cb_cred_info old;
    if (a->name == NULL || a->domain == NULL)
        return cli_fail("creds add needs --name and --domain");
    char canon[CB_SECRETS_DOMAIN_MAX + 1];
    struct cb_error err = {0};
    /* Before the value is asked for, so nobody types a secret for nothing. */
    if (cb_cred_domain_normalize(a->domain, canon, &err) < 0)
        return cli_fail("%s", err.msg);
    bool existed = cb_secret_store_find(s, a->name, &old) == 0;
    char *value = read_value(&len);
    int rc = 0;
    struct cb_cred_spec spec = {a->name, a->domain, a->header,     a->prefix,
                                value,   len,       a->allow_http, a->port};
    struct cb_cred_info now;
    if (len == 0)
        rc = cli_fail("credential value cannot be empty");
    else if (cb_secret_store_put(s, &spec, &err) < 0)
        rc = cli_fail("%s", err.msg);
    else if ((rc = save(s)) == 0 && cb_secret_store_find(s, a->name, &now) == 0) {
        fprintf(stderr, "Credential '%s' stored for domain '%s'%s\n", a->name, now.domain,
                now.allow_http ? " (http and https)" : " (https only)");
        rc = audit_change(log, existed ? "replace" : "add", a->name, now.domain);
    }
    cb_secret_free(value, VALUE_MAX + 2);
    return rc;
}

/* creds list --json: one object per credential, values never included. */
static int list_json(struct cb_secret_store *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cb_secret_store_count(s); i++) {
        struct cb_cred_info info;
        if (cb_secret_store_entry(s, i, &info) == 0)
            json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:b}", "name",
                                               info.name, "domain", info.domain, "header",
                                               info.header_name, "prefix",
                                               info.header_prefix ? info.header_prefix : "",
                                               "allow_http", info.allow_http, "port",
                                               (int)info.port, "matches", info.match != NULL));
    }
    json_dumpf(a, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(a);
    return 0;
}

static int do_list_creds(struct cb_secret_store *s, bool as_json)
{
    if (as_json)
        return list_json(s);
    size_t n = cb_secret_store_count(s);
    if (n == 0)
        puts("No credentials stored.");
    for (size_t i = 0; i < n; i++) {
        struct cb_cred_info info;
        char port[24] = "";
        if (cb_secret_store_entry(s, i, &info) < 0)
            continue;
        if (info.port != 0)
            snprintf(port, sizeof(port), " port=%u", (unsigned)info.port);
        printf("  %-24s %-32s %s%s%s%s\n", info.name, info.domain, info.header_name,
               info.allow_http ? " allow-http" : "", port,
               info.match ? "" : " [domain can never match: not injected]");
    }
    return 0;
}

static int do_remove_cred(struct cb_secret_store *s, struct cb_audit *log,
                          const struct creds_args *a)
{
    struct cb_cred_info info;
    if (a->name == NULL)
        return cli_fail("creds remove needs --name");
    if (cb_secret_store_find(s, a->name, &info) < 0)
        return cli_fail("no credential named '%s'", a->name);
    char *domain = cb_xstrdup(info.domain);
    cb_secret_store_remove(s, a->name);
    int rc = save(s);
    if (rc == 0) {
        fprintf(stderr, "Credential '%s' removed\n", a->name);
        rc = audit_change(log, "remove", a->name, domain);
    }
    free(domain);
    return rc;
}

/* --allow-http and --port N. */
static int option_flag(struct creds_args *a, int o, const char *arg)
{
    if (o == 'a') {
        a->allow_http = true;
        return 0;
    }
    return cli_parse_port(arg, &a->port);
}

static int parse_creds_args(int argc, char **argv, struct creds_args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"key-file", required_argument, NULL, 'k'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"domain", required_argument, NULL, 'd'},
                                         {"header", required_argument, NULL, 'H'},
                                         {"prefix", required_argument, NULL, 'P'},
                                         {"allow-http", no_argument, NULL, 'a'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'j') {
            a->json = true;
            continue;
        }
        if (o == 'a' || o == 'p') {
            if (option_flag(a, o, optarg) < 0)
                return 2;
            continue;
        }
        const char **slot = o == 'c'   ? &a->config
                            : o == 'k' ? &a->key_file
                            : o == 'n' ? &a->name
                            : o == 'd' ? &a->domain
                            : o == 'H' ? &a->header
                            : o == 'P' ? &a->prefix
                                       : NULL;
        if (slot == NULL)
            return o == 'h' ? (fputs(creds_usage_text, stdout), 0)
                            : (fputs(creds_usage_text, stderr), 2);
        *slot = optarg;
    }
    return -1;
}

int cmd_creds(int argc, char **argv)
{
    struct creds_args a = {0};
    int rc = parse_creds_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    const char *action = optind < argc ? argv[optind] : "";
    if (strcmp(action, "add") != 0 && strcmp(action, "list") != 0 &&
        strcmp(action, "remove") != 0) {
        fputs(creds_usage_text, stderr);
        return 2;
    }
    struct cb_config *cfg = cli_load_config(a.config);
    if (cfg == NULL)
        return 1;
    bool list = strcmp(action, "list") == 0;
    struct cb_secret_store *s = NULL;
    struct cb_audit *log = NULL;
    rc = open_store(cfg, &a, &s);
    if (rc == 0 && !list)
        rc = open_audit(cfg, &log);
    if (rc == 0)
        rc = list                         ? do_list_creds(s, a.json)
             : strcmp(action, "add") == 0 ? do_add(s, log, &a)
                                          : do_remove_cred(s, log, &a);
    cb_audit_close(log);
    cb_secret_store_free(s);
    cb_config_free(cfg);
    return rc;
}
