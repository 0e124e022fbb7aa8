/* The body of POST /containers/spawn (ContainerSpawnRequest of the
 * reference), checked once and with the server's maxima applied, so the
 * manager never reads the JSON again. */
#ifndef CB_CONTAINERS_REQUEST_H
#define CB_CONTAINERS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

/* Bounds on what a request may carry, in items and bytes. */
#define CB_CT_TASK_MAX      16384
#define CB_CT_IMAGE_MAX     512
#define CB_CT_ARGS_MAX      256
#define CB_CT_ENV_MAX       256
#define CB_CT_STRINGS_BYTES (128 * 1024) /* command plus env, as the kernel's ARG_MAX share */

enum cb_ct_policy { CB_CT_WASM_ONLY, CB_CT_CONTAINER, CB_CT_CONTAINER_DIRECT };

struct cb_ct_request {
    /* Strings point into the request's JSON, which must outlive this. */
    const char *task;
    const char *image; /* never NULL: the request's or [containers].default_image */
    enum cb_ct_policy policy;
    const char **credentials; /* capabilities.credentials */
    size_t n_credentials;
    const char **command; /* NULL: the image's entrypoint and cmd */
    size_t n_command;
    const char **env_keys, **env_values;
    size_t n_env;
    /* capabilities.resources after the server's defaults and caps. */
    uint64_t timeout_ms;
    uint64_t memory_mb;
    uint64_t cpu_shares;
    uint64_t max_output_bytes;
};

/* Parses and checks `body`. -EBADMSG for a wrong shape (a missing field, a
 * wrong type: HTTP 422), -EINVAL for a bad value (HTTP 400); err names the
 * field. On success free the arrays with cb_ct_request_clear. */
int cb_ct_request_parse(const json_t *body, const struct cb_config *cfg, struct cb_ct_request *out,
                        struct cb_error *err);
void cb_ct_request_clear(struct cb_ct_request *r);

/* The body of POST /containers/{id}/exec. */
#define CB_CT_CWD_MAX   4096
#define CB_CT_STDIN_MAX (1024 * 1024)

struct cb_ct_exec_request {
    /* Strings point into the request's JSON, which must outlive this. */
    const char **command;
    size_t n_command;
    const char **env_keys, **env_values; /* on top of the container's */
    size_t n_env;
    const char *cwd; /* NULL: the container's */
    const char *stdin_data;
    size_t stdin_len;
    uint64_t timeout_ms; /* [containers] default_exec_timeout_ms, capped by max_timeout_ms */
    bool detach;         /* its output to the container's log, answered at once */
};

/* Parses and checks `body`, as cb_ct_request_parse. On success free the
 * arrays with cb_ct_exec_request_clear. */
int cb_ct_exec_request_parse(const json_t *body, const struct cb_config *cfg,
                             struct cb_ct_exec_request *out, struct cb_error *err);
void cb_ct_exec_request_clear(struct cb_ct_exec_request *r);

/* A policy name as the reference reads it: any case, '-' for '_', and the
 * aliases "wasm", "wasmonly", "direct", "containerdirect". -EINVAL when
 * unknown. */
int cb_ct_policy_parse(const char *s, enum cb_ct_policy *out);
/* The canonical name: "wasm_only", "container" or "container_direct". */
const char *cb_ct_policy_name(enum cb_ct_policy p);

#endif
