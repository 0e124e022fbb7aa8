/* ContainerSpawnRequest: shapes first (422), then values (400), as the
 * reference's deserialiser and handler do. Unknown keys are ignored. */
#include "containers/request.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/util.h"

struct request_parse {
    const struct cb_config *cfg;
    struct cb_ct_request *out;
    struct cb_error *err;
    size_t string_bytes; /* command and env, against CB_CT_STRINGS_BYTES */
};

static const struct {
    const char *name;
    enum cb_ct_policy policy;
} policy_names[] = {
    {"wasm_only", CB_CT_WASM_ONLY},
    {"wasm", CB_CT_WASM_ONLY},
    {"wasmonly", CB_CT_WASM_ONLY},
    {"container", CB_CT_CONTAINER},
    {"container_direct", CB_CT_CONTAINER_DIRECT},
    {"direct", CB_CT_CONTAINER_DIRECT},
    {"containerdirect", CB_CT_CONTAINER_DIRECT},
};

int cb_ct_policy_parse(const char *s, enum cb_ct_policy *out)
{
    char low[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(low))
        return -EINVAL;
    for (size_t i = 0; i <= n; i++)
        low[i] = s[i] == '-' ? '_' : s[i];
    for (size_t i = 0; i < CB_ARRAY_LEN(policy_names); i++)
        if (strcasecmp(low, policy_names[i].name) == 0) {
            *out = policy_names[i].policy;
            return 0;
        }
    return -EINVAL;
}

const char *cb_ct_policy_name(enum cb_ct_policy p)
{
    switch (p) {
    case CB_CT_CONTAINER:
        return "container";
    case CB_CT_CONTAINER_DIRECT:
        return "container_direct";
    case CB_CT_WASM_ONLY:
        break;
    }
    return "wasm_only";
}

static int shape(struct request_parse *p, const char *field, const char *want)
{
    return cb_error_set(p->err, -EBADMSG, "%s: expected %s", field, want);
}

/* An optional string field: absent or null leaves *out alone. */
static int request_opt_string(struct request_parse *p, const json_t *obj, const char *field,
                              size_t max, const char **out)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = cb_json_plain_string(v);
    if (s == NULL)
        return shape(p, field, "a string without NUL characters");
    if (strlen(s) > max)
        return cb_error_set(p->err, -EINVAL, "%s: longer than %zu bytes", field, max);
    *out = s;
    return 0;
}

/* A counted string for command and env, against the shared byte budget. */
static int count_bytes(struct request_parse *p, const char *field, const char *s)
{
    p->string_bytes += strlen(s) + 1;
    if (p->string_bytes > CB_CT_STRINGS_BYTES)
        return cb_error_set(p->err, -EINVAL, "%s: command and env together exceed %d bytes", field,
                            CB_CT_STRINGS_BYTES);
    return 0;
}

static int request_string_array(struct request_parse *p, const json_t *v, const char *field,
                                size_t max, bool counted, const char ***items, size_t *n)
{
    if (!json_is_array(v))
        return shape(p, field, "an array of strings");
    size_t len = json_array_size(v);
    if (len > max)
        return cb_error_set(p->err, -EINVAL, "%s: more than %zu items", field, max);
    *items = cb_xcalloc(len + 1, sizeof(char *));
    *n = len;
    for (size_t i = 0; i < len; i++) {
        const char *s = cb_json_plain_string(json_array_get(v, i));
        if (s == NULL)
            return cb_error_set(p->err, -EBADMSG,
                                "%s[%zu]: expected a string without NUL "
                                "characters",
                                field, i);
        if (counted && count_bytes(p, field, s) < 0)
            return -EINVAL;
        (*items)[i] = s;
    }
    return 0;
}

static int request_opt_uint(struct request_parse *p, const json_t *obj, const char *field,
                            uint64_t *out)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cb_error_set(p->err, -EBADMSG,
                            "capabilities.resources.%s: expected a "
                            "non-negative integer",
                            field);
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* capabilities.resources: every key optional (the reference wants all four,
 * which only turns partial objects into 422s); the server's defaults fill
 * the gaps and its maxima cap what is asked. */
static int request_resources(struct request_parse *p, const json_t *res)
{
    const struct cb_config *c = p->cfg;
    struct cb_ct_request *r = p->out;
    r->timeout_ms = c->containers.default_timeout_ms;
    r->memory_mb = c->containers.default_memory_mb;
    r->cpu_shares = 1024;
    r->max_output_bytes = c->containers.max_output_bytes;
    if (res == NULL || json_is_null(res))
        return 0;
    if (!json_is_object(res))
        return shape(p, "capabilities.resources", "an object");
    uint64_t v;
    int got;
    if ((got = request_opt_uint(p, res, "timeout_ms", &v)) < 0)
        return got;
    if (got && v == 0)
        return cb_error_set(p->err, -EINVAL,
                            "capabilities.resources.timeout_ms: must be at "
                            "least 1");
    if (got)
        r->timeout_ms = v < c->containers.max_timeout_ms ? v : c->containers.max_timeout_ms;
    if ((got = request_opt_uint(p, res, "memory_mb", &v)) < 0)
        return got;
    if (got && v > 0) /* 0 is "unlimited" in the reference: the default here */
        r->memory_mb = v < c->containers.max_memory_mb ? v : c->containers.max_memory_mb;
    if ((got = request_opt_uint(p, res, "cpu_shares", &v)) < 0)
        return got;
    if (got && (v < 2 || v > 262144))
        return cb_error_set(p->err, -EINVAL,
                            "capabilities.resources.cpu_shares: %" PRIu64 " is outside 2..262144",
                            v);
    if (got)
        r->cpu_shares = v;
    if ((got = request_opt_uint(p, res, "max_output_bytes", &v)) < 0)
        return got;
    if (got && v < r->max_output_bytes)
        r->max_output_bytes = v;
    return 0;
}

static int capabilities(struct request_parse *p, const json_t *caps)
{
    if (caps != NULL && !json_is_null(caps) && !json_is_object(caps))
        return shape(p, "capabilities", "an object");
    const json_t *creds = caps ? json_object_get(caps, "credentials") : NULL;
    if (creds != NULL && !json_is_null(creds)) {
        int r = request_string_array(p, creds, "capabilities.credentials", CB_CT_ENV_MAX, false,
                                     &p->out->credentials, &p->out->n_credentials);
        if (r < 0)
            return r;
    }
    /* capabilities.network is ignored: the server's container policy wins. */
    return request_resources(p, caps ? json_object_get(caps, "resources") : NULL);
}

static int env(struct request_parse *p, const json_t *v, const char ***keys, const char ***values,
               size_t *n_env)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return shape(p, "env", "an object of strings");
    size_t n = json_object_size(v);
    if (n > CB_CT_ENV_MAX)
        return cb_error_set(p->err, -EINVAL, "env: more than %d variables", CB_CT_ENV_MAX);
    *keys = cb_xcalloc(n + 1, sizeof(char *));
    *values = cb_xcalloc(n + 1, sizeof(char *));
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        const char *s = cb_json_plain_string(val);
        if (s == NULL)
            return cb_error_set(p->err, -EBADMSG,
                                "env.%s: expected a string without NUL "
                                "characters",
                                key);
        if (count_bytes(p, "env", key) < 0 || count_bytes(p, "env", s) < 0)
            return -EINVAL;
        (*keys)[*n_env] = key;
        (*values)[(*n_env)++] = s;
    }
    return 0;
}

static int parse_request(struct request_parse *p, const json_t *body)
{
    struct cb_ct_request *r = p->out;
    if (!json_is_object(body))
        return cb_error_set(p->err, -EBADMSG, "the body must be a JSON object");
    const json_t *task = json_object_get(body, "task");
    if (task == NULL)
        return cb_error_set(p->err, -EBADMSG, "task: missing field");
    r->image = p->cfg->containers.default_image;
    const char *policy = NULL;
    int rc = request_opt_string(p, body, "task", CB_CT_TASK_MAX, &r->task);
    if (rc == 0 && r->task == NULL)
        rc = shape(p, "task", "a string");
    if (rc == 0)
        rc = request_opt_string(p, body, "image", CB_CT_IMAGE_MAX, &r->image);
    if (rc == 0)
        rc = request_opt_string(p, body, "policy", 64, &policy);
    if (rc == 0 && policy != NULL && cb_ct_policy_parse(policy, &r->policy) < 0)
        rc = cb_error_set(p->err, -EBADMSG,
                          "policy: unknown policy '%s' (wasm_only, container, "
                          "container_direct)",
                          policy);
    if (rc == 0)
        rc = capabilities(p, json_object_get(body, "capabilities"));
    if (rc == 0)
        rc = env(p, json_object_get(body, "env"), &r->env_keys, &r->env_values, &r->n_env);
    const json_t *cmd = json_object_get(body, "command");
    if (rc == 0 && cmd != NULL && !json_is_null(cmd))
        rc = request_string_array(p, cmd, "command", CB_CT_ARGS_MAX, true, &r->command,
                                  &r->n_command);
    if (rc == 0 && r->command != NULL && r->n_command == 0)
        rc = cb_error_set(p->err, -EINVAL,
                          "command: must not be empty (leave it out for the "
                          "image's own command)");
    if (rc == 0 && r->image[0] == '\0')
        rc = cb_error_set(p->err, -EINVAL, "image: must not be empty");
    return rc;
}

int cb_ct_request_parse(const json_t *body, const struct cb_config *cfg, struct cb_ct_request *out,
                        struct cb_error *err)
{
    memset(out, 0, sizeof(*out));
    struct request_parse p = {.cfg = cfg, .out = out, .err = err};
    int rc = parse_request(&p, body);
    if (rc < 0)
        cb_ct_request_clear(out);
    return rc;
}

void cb_ct_request_clear(struct cb_ct_request *r)
{
    free(r->credentials);
    free(r->command);
    free(r->env_keys);
    free(r->env_values);
    memset(r, 0, sizeof(*r));
}

/* ---- POST /containers/{id}/exec ---- */

static int exec_parse(struct request_parse *p, const json_t *body, struct cb_ct_exec_request *r)
{
    const struct cb_config *c = p->cfg;
    if (!json_is_object(body))
        return cb_error_set(p->err, -EBADMSG, "the body must be a JSON object");
    const json_t *cmd = json_object_get(body, "command");
    if (cmd == NULL || json_is_null(cmd))
        return cb_error_set(p->err, -EBADMSG, "command: missing field");
    int rc =
        request_string_array(p, cmd, "command", CB_CT_ARGS_MAX, true, &r->command, &r->n_command);
    if (rc == 0 && r->n_command == 0)
        rc = cb_error_set(p->err, -EINVAL, "command: must not be empty");
    if (rc == 0)
        rc = env(p, json_object_get(body, "env"), &r->env_keys, &r->env_values, &r->n_env);
    if (rc == 0)
        rc = request_opt_string(p, body, "cwd", CB_CT_CWD_MAX, &r->cwd);
    if (rc == 0 && r->cwd != NULL && r->cwd[0] != '/')
        rc = cb_error_set(p->err, -EINVAL, "cwd: must be an absolute path");
    const json_t *in = json_object_get(body, "stdin");
    if (rc == 0 && in != NULL && !json_is_null(in)) {
        if (!json_is_string(in))
            rc = shape(p, "stdin", "a string");
        else if (json_string_length(in) > CB_CT_STDIN_MAX)
            rc = cb_error_set(p->err, -EINVAL, "stdin: longer than %d bytes", CB_CT_STDIN_MAX);
        else {
            r->stdin_data = json_string_value(in);
            r->stdin_len = json_string_length(in);
        }
    }
    r->timeout_ms = c->containers.default_exec_timeout_ms;
    const json_t *t = json_object_get(body, "timeout_ms");
    if (rc == 0 && t != NULL && !json_is_null(t)) {
        if (!json_is_integer(t) || json_integer_value(t) < 1)
            rc = cb_error_set(p->err, json_is_integer(t) ? -EINVAL : -EBADMSG,
                              "timeout_ms: expected an integer of at least 1");
        else
            r->timeout_ms = (uint64_t)json_integer_value(t);
    }
    if (r->timeout_ms > c->containers.max_timeout_ms)
        r->timeout_ms = c->containers.max_timeout_ms;
    const json_t *d = json_object_get(body, "detach");
    if (rc == 0 && d != NULL && !json_is_null(d) && !json_is_boolean(d))
        rc = shape(p, "detach", "a boolean");
    r->detach = json_is_true(d);
    return rc;
}

int cb_ct_exec_request_parse(const json_t *body, const struct cb_config *cfg,
                             struct cb_ct_exec_request *out, struct cb_error *err)
{
    memset(out, 0, sizeof(*out));
    struct request_parse p = {.cfg = cfg, .err = err};
    int rc = exec_parse(&p, body, out);
    if (rc < 0)
        cb_ct_exec_request_clear(out);
    return rc;
}

void cb_ct_exec_request_clear(struct cb_ct_exec_request *r)
{
    free(r->command);
    free(r->env_keys);
    free(r->env_values);
    memset(r, 0, sizeof(*r));
}
