#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "audit/audit.h"
#include "config/config.h"
#include "core/util.h"
#include "proxy/addr.h"
#include "proxy/allowlist.h"
#include "proxy/url.h"
#include "rm_tree.h"
#include "sandbox/manifest.h"
#include "secrets/secrets.h"

/* Requests between two clean-ups of the audit directory. */
#define AUDIT_ROUNDS 4096

static const char *const allowlist[] = {"127.0.0.1",   "10.0.0.1",   "169.254.169.254",
                                        "192.168.1.1", "100.64.0.1", "0.0.0.0"};

static struct {
    struct fuzz_proxy pub;
    char dir[256];
    char audit_dir[300];
    struct cb_config *cfg;
    struct cb_secret_store *store;
    struct cb_audit *audit;
    unsigned rounds;
} g;

static void die(const char *what, const struct cb_error *err)
{
    fprintf(stderr, "fuzz proxy fixture: %s: %s\n", what, err ? err->msg : "failed");
    abort();
}

/* The guarantee that no request leaves: every allowlist entry parses as an
 * address that the default policy refuses. */
static void check_unreachable(void)
{
    struct cb_proxy_addr_policy *policy = NULL;
    struct cb_proxy_allowlist *al = NULL;
    struct cb_error err = {0};
    if (cb__proxy_addr_policy_new(NULL, 0, &policy, &err) < 0 ||
        cb_proxy_allowlist_new((char **)allowlist, CB_ARRAY_LEN(allowlist), &al, &err) < 0)
        die("policy", &err);
    for (size_t i = 0; i < CB_ARRAY_LEN(allowlist); i++) {
        char *url = cb_xasprintf("http://%s/", allowlist[i]);
        struct cb_proxy_url u;
        struct sockaddr_storage ss;
        socklen_t len;
        if (cb__proxy_url_parse(url, strlen(url), &u, &err) < 0 ||
            cb__proxy_addr_from_host(&u.host, u.port, &ss, &len) < 0 ||
            cb__proxy_addr_check(policy, (struct sockaddr *)&ss, NULL, &err) == 0)
            die(allowlist[i], NULL);
        cb__proxy_url_free(&u);
        free(url);
    }
    cb_proxy_allowlist_free(al);
    cb__proxy_addr_policy_free(policy);
}

/* Opens the audit log and the proxy that writes to it. */
static void open_proxy(void)
{
    struct cb_error err = {0};
    struct cb_audit_options opts = {.dir = g.audit_dir};
    if (cb_audit_open(&opts, &g.audit, &err) < 0)
        die("audit", &err);
    g.pub.proxy = cb_proxy_new(g.cfg, g.store, NULL, g.audit, &err);
    if (g.pub.proxy == NULL)
        die("proxy", &err);
}

static void open_store(void)
{
    static const char key_hex[] =
        "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60";
    struct cb_master_key key;
    struct cb_error err = {0};
    char *path = cb_xasprintf("%s/credentials.enc", g.dir);
    if (cb__master_key_parse_hex(key_hex, strlen(key_hex), &key, &err) < 0 ||
        cb_secret_store_open(path, &key, &g.store, &err) < 0)
        die("store", &err);
    free(path);
    struct cb_cred_spec alpha = {"alpha", "127.0.0.1",       "X-Alpha",
                                 "Key ",  FUZZ_SECRET_ALPHA, strlen(FUZZ_SECRET_ALPHA)};
    struct cb_cred_spec beta = {"beta", "10.0.0.1",       NULL,
                                NULL,   FUZZ_SECRET_BETA, strlen(FUZZ_SECRET_BETA)};
    if (cb_secret_store_put(g.store, &alpha, &err) < 0 ||
        cb_secret_store_put(g.store, &beta, &err) < 0)
        die("store", &err);
    cb_master_key_wipe(&key);
}

static void cleanup(void)
{
    cb_proxy_free(g.pub.proxy);
    cb_audit_close(g.audit);
    cb_secret_store_free(g.store);
    cb_config_free(g.cfg);
    cb_manifest_unref(g.pub.manifest);
    json_decref(g.pub.granted);
    rm_tree(g.dir);
}

static void build_proxy(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof(g.dir), "%s/clawbox-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g.dir) == NULL)
        die(g.dir, NULL);
    snprintf(g.audit_dir, sizeof(g.audit_dir), "%s/audit", g.dir);
    check_unreachable();
    static const char text[] = "[proxy]\nrate_limit = 1000000\nrate_limit_burst = 1000000\n";
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    if (cb_config_load_text("fuzz.toml", text, strlen(text), &g.cfg, &diag, &err) < 0)
        die("config", &err);
    cb_config_diag_free(&diag);
    open_store();
    open_proxy();
    g.pub.tool = "fuzzed";
    json_t *list = json_array();
    for (size_t i = 0; i < CB_ARRAY_LEN(allowlist); i++)
        json_array_append_new(list, json_string(allowlist[i]));
    json_t *doc =
        json_pack("{s:{s:s}, s:{s:o}, s:{s:[s,s]}}", "tool", "name", g.pub.tool, "network",
                  "allowlist", list, "credentials", "available", "alpha", "beta");
    if (cb_manifest_parse(doc, false, &g.pub.manifest, &err) < 0)
        die("manifest", &err);
    json_decref(doc);
    g.pub.granted = json_pack("[s,s]", "alpha", "beta");
    atexit(cleanup);
}

/* The audit log grows by a line per request: start it afresh now and then
 * so that a long run does not fill the disk. */
static void trim_audit(void)
{
    if (++g.rounds % AUDIT_ROUNDS != 0)
        return;
    cb_proxy_free(g.pub.proxy);
    cb_audit_close(g.audit);
    rm_tree(g.audit_dir);
    open_proxy();
}

const struct fuzz_proxy *fuzz_proxy_get(void)
{
    if (g.pub.proxy == NULL)
        build_proxy();
    else
        trim_audit();
    return &g.pub;
}
