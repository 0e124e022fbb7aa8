#include "config/init.h"
#include "config/toml.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/home.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The config file init writes is about 1 KiB; paths make it longer. */
#define INIT_CONFIG_MAX (64u * 1024)

/* Appends s as a TOML basic string, quotes included. */
static void kv_path(struct cb_buf *b, const char *key, const char *base, const char *leaf)
{
    char *p = cb_xasprintf("%s/%s", base, leaf);
    cb_buf_printf(b, "%s = ", key);
    cb__toml_quote(b, p);
    cb_buf_puts(b, "\n");
    free(p);
}

static void render_config(struct cb_buf *b, const char *base, const char *token)
{
    cb_buf_puts(b, "# clawbox configuration, written by `clawbox init`.\n"
                   "# Every key is documented in docs/configuration.md.\n\n"
                   "[server]\nhost = \"127.0.0.1\"\nport = 9800\nauth_token = ");
    cb__toml_quote(b, token);
    cb_buf_puts(b, "\n");
    kv_path(b, "data_dir", base, CB_HOME_DATA);
    cb_buf_puts(b, "max_concurrent_executions = 10\n\n[sandbox]\n");
    kv_path(b, "tool_dir", base, CB_HOME_TOOLS);
    cb_buf_puts(b, "default_fuel = 100000000\ndefault_timeout_ms = 30000\nwatch_tools = true\n\n"
                   "[proxy]\nmax_response_bytes = 1048576\ndefault_timeout_ms = 30000\n\n"
                   "[credentials]\n");
    kv_path(b, "store_path", base, CB_HOME_CREDENTIALS);
    kv_path(b, "key_file", base, CB_HOME_MASTER_KEY);
    cb_buf_puts(b, "\n[logging]\nformat = \"json\"\nlevel = \"info\"\n");
    kv_path(b, "audit_dir", base, CB_HOME_AUDIT);
    cb_buf_puts(b, "\n[containers]\nmax_containers = 10\n\n"
                   "# Image templates for `clawbox spawn NAME` and the MCP tool\n"
                   "# clawbox_spawn_container. The image comes from the local store\n"
                   "# (`clawbox image build-default` makes this one); what a container may\n"
                   "# reach is [container_policy].network_allowlist, not the template's.\n"
                   "[images.templates.code-runner]\nimage = \"clawbox/agent-base:latest\"\n"
                   "description = \"python3, curl and a shell; no network\"\n\n"
                   "[images.templates.researcher]\nimage = \"clawbox/agent-base:latest\"\n"
                   "description = \"Research agent with web access\"\n"
                   "network_allowlist = [\"api.search.brave.com\", \"api.github.com\"]\n"
                   "credentials = [\"brave_search\", \"github_token\"]\n");
}

static int write_files(const char *base, struct cb_init_result *out, struct cb_error *err)
{
    char token[65];
    struct cb_buf b;
    int r = cb__config_new_token(token, err);
    if (r < 0)
        return r;
    cb_buf_init(&b, INIT_CONFIG_MAX);
    render_config(&b, base, token);
    r = cb_write_atomic(out->config_path, b.data, b.len, err);
    explicit_bzero(b.data, b.len);
    cb_buf_free(&b);
    if (r == 0) {
        token[64] = '\n';
        r = cb_write_atomic(out->token_path, token, 65, err);
    }
    explicit_bzero(token, sizeof(token));
    return r;
}

/* A fresh master key, unless one is there. */
static int write_key(struct cb_init_result *out, struct cb_error *err)
{
    struct stat st;
    if (lstat(out->key_path, &st) == 0)
        return 0;
    char key[65];
    int r = cb__config_new_token(key, err);
    if (r == 0) {
        key[64] = '\n';
        r = cb_write_atomic(out->key_path, key, 65, err);
    }
    explicit_bzero(key, sizeof(key));
    out->key_created = r == 0;
    return r;
}

int cb_init_home(const char *base, bool force, struct cb_init_result *out, struct cb_error *err)
{
    static const char *const dirs[] = {NULL, CB_HOME_CONFIG_DIR, CB_HOME_TOOLS, CB_HOME_AUDIT,
                                       CB_HOME_DATA};
    memset(out, 0, sizeof(*out));
    out->config_path = cb_xasprintf("%s/%s", base, CB_HOME_CONFIG);
    out->token_path = cb_xasprintf("%s/%s", base, CB_HOME_TOKEN);
    out->tools_dir = cb_xasprintf("%s/%s", base, CB_HOME_TOOLS);
    out->key_path = cb_xasprintf("%s/%s", base, CB_HOME_MASTER_KEY);
    for (size_t i = 0; i < CB_ARRAY_LEN(dirs); i++) {
        char *d = dirs[i] ? cb_xasprintf("%s/%s", base, dirs[i]) : cb_xstrdup(base);
        int r = cb_mkdir_p(d, 0700, err);
        free(d);
        if (r < 0)
            return r;
    }
    int r = write_key(out, err);
    struct stat st;
    if (r < 0 || (!force && lstat(out->config_path, &st) == 0))
        return r;
    out->created = true;
    return write_files(base, out, err);
}

void cb_init_result_free(struct cb_init_result *r)
{
    if (r == NULL)
        return;
    free(r->config_path);
    free(r->token_path);
    free(r->tools_dir);
    free(r->key_path);
}
