/* The configuration model. Every option is described once in a table
 * (config_table.c): section, key, type, default, bounds, environment
 * override and documentation. Parsing, validation, --check-config and the
 * generated reference in docs/configuration.md all come from that table. */
#ifndef CB_CONFIG_CONFIG_H
#define CB_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* A config file larger than this is rejected. */
#define CB_CONFIG_MAX_FILE (1024u * 1024)

struct cb_strlist {
    char **items;
    size_t len;
};

struct cb_image_template {
    char *name;
    char *image;
    char *description;
    struct cb_strlist network_allowlist;
    struct cb_strlist credentials;
    struct cb_strlist command;
    bool has_command;
    uint64_t max_lifetime_ms; /* 0 = not set */
};

struct cb_config {
    struct {
        char *host;
        uint64_t port;
        char *auth_token;
        char *unix_socket; /* NULL = no Unix socket listener */
        char *data_dir;
        uint64_t max_concurrent_executions;
        uint64_t max_queued_requests;
        uint64_t queue_timeout_ms;
        uint64_t max_body_bytes;
        uint64_t shutdown_grace_ms;
        uint64_t http_threads;
        uint64_t max_connections;
        uint64_t max_connections_per_address;
        uint64_t request_head_timeout_ms;
        uint64_t request_body_timeout_ms;
    } server;
    struct {
        char *tool_dir;
        uint64_t default_fuel;
        uint64_t default_timeout_ms;
        uint64_t max_timeout_ms;
        uint64_t max_memory_mb;
        uint64_t max_host_calls;
        uint64_t executions_per_worker;
        char *cache_dir; /* NULL = <data_dir>/cache */
        uint64_t compile_timeout_ms;
        bool watch_tools;
    } sandbox;
    struct {
        uint64_t max_response_bytes;
        uint64_t default_timeout_ms;
        uint64_t rate_limit;
        uint64_t rate_limit_burst;
        bool allow_wildcard_all;
        struct cb_strlist allow_private_cidrs;
        char *ca_bundle;
    } proxy;
    struct {
        char *store_path;
        char *key_file; /* NULL = CLAWBOX_MASTER_KEY */
    } credentials;
    struct {
        char *format;
        char *level;
        char *audit_dir;
        uint64_t audit_max_file_bytes;
        char *proxy_audit_sync; /* "background" | "before_response" */
    } logging;
    struct {
        uint64_t max_containers;
        char *workspace_root;
        char *runtime;      /* auto|crun|runc|none */
        char *egress;       /* transparent|socket-only */
        char *runtime_root; /* NULL = <data_dir>/oci */
        char *image_store;  /* NULL = <data_dir>/images */
        char *default_image;
        uint64_t default_timeout_ms;
        uint64_t max_timeout_ms;
        uint64_t default_memory_mb;
        uint64_t max_memory_mb;
        uint64_t max_cpu_percent;
        uint64_t max_pids;
        uint64_t max_output_bytes;
        uint64_t default_exec_timeout_ms;
        uint64_t max_execs_per_container;
        uint64_t max_exec_output_bytes;
        uint64_t max_file_bytes;
        uint64_t tmp_size_mb;
        uint64_t userns_base;
        uint64_t retention_ms;
    } containers;
    struct {
        struct cb_strlist network_allowlist;
        struct cb_strlist allowed_credentials;
        struct cb_strlist allowed_policies;
        struct cb_strlist allowed_images;
        char *tls; /* passthrough|intercept */
    } container_policy;
    struct {
        char *default_language;
    } tools;
    struct cb_image_template *templates;
    size_t n_templates;
};

/* Problems found while loading: warnings (unknown keys) and errors (wrong
 * types, out-of-range values). Each entry is one line of text that names
 * the file, line and key. */
struct cb_config_diag {
    struct cb_strlist warnings;
    struct cb_strlist errors;
};

/* Loads the configuration: built-in defaults, then the TOML file at `path`
 * (NULL for none), then environment overrides, then `~/` expansion and
 * validation. On success returns 0 and a config owned by the caller. On
 * failure returns a negative code; every problem is listed in diag (which
 * the caller frees with cb_config_diag_free) and err holds a summary. */
int cb_config_load(const char *path, struct cb_config **out, struct cb_config_diag *diag,
                   struct cb_error *err);

/* cb_config_load for TOML text held in memory (NULL: none) rather than a
 * file; `name` labels diagnostics. With no file there is no file mode to
 * warn about. The tests and the fuzz fixtures load their configs so. */
int cb_config_load_text(const char *name, const char *text, size_t len, struct cb_config **out,
                        struct cb_config_diag *diag, struct cb_error *err);

void cb_config_free(struct cb_config *c);
void cb_config_diag_free(struct cb_config_diag *d);

/* Appends the Markdown reference of every option to out. */
int cb_config_render_reference(struct cb_buf *out);

/* Writes a 64-hex-character random token plus NUL into out[65]. */
int cb__config_new_token(char out[65], struct cb_error *err);

#endif
