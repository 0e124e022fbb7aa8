/* AgentConfig: shapes first (422-style -EBADMSG), then values (-EINVAL),
 * like the container request. Unknown keys are ignored, as the reference's
 * deserialiser does. */
#include "agents/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "containers/bundle.h"
#include "containers/request.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"

#define DEFAULT_MOUNT_POINT  "/workspace"
#define DEFAULT_MAX_IDLE_MS  3600000u
#define DEFAULT_MAX_RESTARTS 3u
#define MAX_RESTARTS_LIMIT   100u
#define SOCKET_DIR           "/run/clawbox" /* the container's proxy socket */

/* The spawn fields a start passes on, as sent. */
static const char *const spawn_fields[] = {"image", "policy", "capabilities", "env", "command"};

int cb_agent_id_check(const char *id, struct cb_error *err)
{
    size_t n = strlen(id);
    if (n == 0 || n > CB_AGENT_ID_MAX)
        return cb_error_set(err, -EINVAL, "agent_id: must be 1-%d characters", CB_AGENT_ID_MAX);
    if (strstr(id, "..") != NULL || strpbrk(id, "/\\") != NULL)
        return cb_error_set(err, -EINVAL, "agent_id: contains invalid characters (path traversal)");
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return cb_error_set(err, -EINVAL,
                                "agent_id: must be ASCII letters, digits and hyphens only");
    }
    return 0;
}

static int string_field(const json_t *obj, const char *field, const char *label, size_t max,
                        bool required, const char **out, struct cb_error *err)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return required ? cb_error_set(err, -EBADMSG, "%s: missing field", label) : 0;
    const char *s = cb_json_plain_string(v);
    if (s == NULL)
        return cb_error_set(err, -EBADMSG, "%s: expected a string without NUL characters", label);
    if (strlen(s) > max)
        return cb_error_set(err, -EINVAL, "%s: longer than %zu bytes", label, max);
    *out = s;
    return 0;
}

/* 1 when present (and *out set), 0 when absent or null. */
static int uint_field(const json_t *obj, const char *field, uint64_t *out, struct cb_error *err)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cb_error_set(err, -EBADMSG, "lifecycle.%s: expected a non-negative integer", field);
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static int bool_field(const json_t *obj, const char *field, const char *label, bool *out,
                      struct cb_error *err)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return cb_error_set(err, -EBADMSG, "%s: expected true or false", label);
    *out = json_is_true(v);
    return 0;
}

/* A clean absolute path below "/", outside the reserved mounts. */
static int mount_point_check(const char *p, struct cb_error *err)
{
    if (!cb_path_clean_abs(p) || p[1] == '\0')
        return cb_error_set(err, -EINVAL,
                            "workspace.mount_point: '%s' must be an absolute path below / with no "
                            "empty, '.' or '..' component",
                            p);
    /* What every container mounts, and its proxy socket's directory. */
    bool socket_dir = cb_path_under(p, SOCKET_DIR) || cb_path_under(SOCKET_DIR, p);
    if (cb_ct_mount_reserved(p) || socket_dir)
        return cb_error_set(err, -EINVAL,
                            "workspace.mount_point: '%s' is reserved (it would cover /proc, /dev, "
                            "/sys, /tmp, /etc/hosts, /etc/resolv.conf or " SOCKET_DIR ")",
                            p);
    return 0;
}

static int workspace(const json_t *v, struct cb_agent_workspace *w, struct cb_error *err)
{
    const char *host = NULL, *mount = DEFAULT_MOUNT_POINT;
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            return cb_error_set(err, -EBADMSG, "workspace: expected an object or null");
        int rc = string_field(v, "host_path", "workspace.host_path", CB_AGENT_PATH_MAX, false,
                              &host, err);
        if (rc == 0)
            rc = string_field(v, "mount_point", "workspace.mount_point", CB_AGENT_PATH_MAX, false,
                              &mount, err);
        if (rc == 0)
            rc = bool_field(v, "read_only", "workspace.read_only", &w->read_only, err);
        if (rc < 0)
            return rc;
        if (host != NULL && host[0] == '\0')
            return cb_error_set(err, -EINVAL,
                                "workspace.host_path: must not be empty (leave it out for "
                                "<workspace_root>/<agent_id>)");
    }
    int rc = mount_point_check(mount, err);
    if (rc < 0)
        return rc;
    w->host_path = host ? cb_xstrdup(host) : NULL;
    w->mount_point = cb_xstrdup(mount);
    return 0;
}

static int lifecycle(const json_t *v, struct cb_agent_lifecycle *l, struct cb_error *err)
{
    *l = (struct cb_agent_lifecycle){.max_idle_ms = DEFAULT_MAX_IDLE_MS,
                                     .max_restarts = DEFAULT_MAX_RESTARTS};
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return cb_error_set(err, -EBADMSG, "lifecycle: expected an object or null");
    uint64_t n;
    int got;
    if ((got = uint_field(v, "max_idle_ms", &n, err)) < 0)
        return got;
    if (got && n == 0)
        return cb_error_set(err, -EINVAL, "lifecycle.max_idle_ms: must be at least 1");
    if (got)
        l->max_idle_ms = n;
    if ((got = uint_field(v, "max_lifetime_ms", &n, err)) < 0)
        return got;
    if (got && n == 0)
        return cb_error_set(err, -EINVAL,
                            "lifecycle.max_lifetime_ms: must be at least 1 (null for none)");
    if (got)
        l->max_lifetime_ms = n;
    if ((got = uint_field(v, "max_restarts", &n, err)) < 0)
        return got;
    if (got && n > MAX_RESTARTS_LIMIT)
        return cb_error_set(err, -EINVAL, "lifecycle.max_restarts: at most %u", MAX_RESTARTS_LIMIT);
    if (got)
        l->max_restarts = (uint32_t)n;
    return bool_field(v, "restart_on_crash", "lifecycle.restart_on_crash", &l->restart_on_crash,
                      err);
}

/* The spawn request a start sends, checked now by the container parser so a
 * bad image, env or command is refused at registration. */
static int spawn_request(const json_t *body, const struct cb_config *cfg, struct cb_agent_config *c,
                         struct cb_error *err)
{
    char task[CB_AGENT_ID_MAX + 8];
    snprintf(task, sizeof(task), "agent:%s", c->id);
    c->spawn = json_pack("{ss}", "task", task);
    for (size_t i = 0; i < CB_ARRAY_LEN(spawn_fields); i++) {
        json_t *v = json_object_get(body, spawn_fields[i]);
        if (v != NULL && !json_is_null(v))
            json_object_set_new(c->spawn, spawn_fields[i], json_deep_copy(v));
    }
    /* An agent runs in a container, so its default is the container
     * policy; the reference's default (wasm_only) could never start. */
    if (json_object_get(c->spawn, "policy") == NULL)
        json_object_set_new(c->spawn, "policy", json_string("container"));
    struct cb_ct_request r;
    int rc = cb_ct_request_parse(c->spawn, cfg, &r, err);
    if (rc < 0)
        return rc;
    /* The spawn checks env names only after its policy checks; an agent's
     * are checked now, as the rest of its body is. */
    for (size_t i = 0; i < r.n_env && rc == 0; i++)
        if ((rc = cb_ct_env_check(r.env_keys[i], err)) < 0)
            cb_error_prefix(err, "env");
    cb_ct_request_clear(&r);
    return rc;
}

static int parse_agent_config(const json_t *body, const struct cb_config *cfg,
                              struct cb_agent_config *c, struct cb_error *err)
{
    if (!json_is_object(body))
        return cb_error_set(err, -EBADMSG, "the body must be a JSON object");
    const char *id = NULL, *name = NULL;
    int rc = string_field(body, "agent_id", "agent_id", 4096, true, &id, err);
    if (rc == 0)
        rc = string_field(body, "name", "name", CB_AGENT_NAME_MAX, true, &name, err);
    if (rc == 0)
        rc = cb_agent_id_check(id, err);
    if (rc < 0)
        return rc;
    memcpy(c->id, id, strlen(id) + 1);
    c->name = cb_xstrdup(name);
    rc = workspace(json_object_get(body, "workspace"), &c->workspace, err);
    if (rc == 0)
        rc = lifecycle(json_object_get(body, "lifecycle"), &c->lifecycle, err);
    if (rc == 0)
        rc = spawn_request(body, cfg, c, err);
    return rc;
}

int cb_agent_config_parse(const json_t *body, const struct cb_config *cfg,
                          struct cb_agent_config *out, struct cb_error *err)
{
    memset(out, 0, sizeof(*out));
    int rc = parse_agent_config(body, cfg, out, err);
    if (rc < 0)
        cb_agent_config_clear(out);
    return rc;
}

json_t *cb_agent_config_json(const struct cb_agent_config *c)
{
    const struct cb_agent_workspace *w = &c->workspace;
    const struct cb_agent_lifecycle *l = &c->lifecycle;
    json_t *j = json_pack(
        "{ss ss s{so* ss sb} s{sI so sb sI}}", "agent_id", c->id, "name", c->name, "workspace",
        "host_path", w->host_path ? json_string(w->host_path) : json_null(), "mount_point",
        w->mount_point, "read_only", w->read_only, "lifecycle", "max_idle_ms",
        (json_int_t)l->max_idle_ms, "max_lifetime_ms",
        l->max_lifetime_ms ? json_integer((json_int_t)l->max_lifetime_ms) : json_null(),
        "restart_on_crash", l->restart_on_crash, "max_restarts", (json_int_t)l->max_restarts);
    for (size_t i = 0; i < CB_ARRAY_LEN(spawn_fields); i++) {
        json_t *v = json_object_get(c->spawn, spawn_fields[i]);
        if (v != NULL)
            json_object_set(j, spawn_fields[i], v);
    }
    return j;
}

void cb_agent_config_clear(struct cb_agent_config *c)
{
    free(c->name);
    free(c->workspace.host_path);
    free(c->workspace.mount_point);
    json_decref(c->spawn);
    memset(c, 0, sizeof(*c));
}

/* The part of host_path below root (or real_root), or NULL when it is an
 * absolute path elsewhere. A relative host_path is taken below root. */
static const char *below_root(const char *host, const char *root, const char *real_root)
{
    if (host[0] != '/')
        return host;
    const char *roots[] = {root, real_root};
    for (size_t i = 0; i < CB_ARRAY_LEN(roots); i++) {
        size_t n = strlen(roots[i]);
        while (n > 1 && roots[i][n - 1] == '/')
            n--;
        if (strncmp(host, roots[i], n) == 0 && (host[n] == '/' || host[n] == '\0'))
            return host[n] == '\0' ? "." : host + n + 1;
    }
    return NULL;
}

int cb_agent_workspace_open(const char *workspace_root, const struct cb_agent_config *c,
                            char *path_out, struct cb_error *err)
{
    int rc = cb_mkdir_p(workspace_root, 0750, err);
    if (rc < 0)
        return rc;
    int root = open(workspace_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return cb_error_set(err, -errno, "workspace_root %s: %s", workspace_root, strerror(errno));
    char real_root[PATH_MAX];
    const char *rel = c->id;
    if (realpath(workspace_root, real_root) == NULL) {
        rc = cb_error_set(err, -errno, "workspace_root %s: %s", workspace_root, strerror(errno));
        goto out;
    }
    if (c->workspace.host_path != NULL) {
        rel = below_root(c->workspace.host_path, workspace_root, real_root);
        if (rel == NULL) {
            rc = cb_error_set(err, -EXDEV, "workspace.host_path: %s is outside workspace_root %s",
                              c->workspace.host_path, real_root);
            goto out;
        }
    } else if (mkdirat(root, rel, 0750) < 0 && errno != EEXIST) {
        rc = cb_error_set(err, -errno, "workspace %s/%s: %s", real_root, rel, strerror(errno));
        goto out;
    }
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
    if (fd < 0) {
        int e = errno;
        rc = cb_error_set(err, -e, "workspace %s: %s",
                          c->workspace.host_path ? c->workspace.host_path : rel,
                          e == EXDEV ? "leads outside workspace_root" : strerror(e));
        goto out;
    }
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path_out, CB_AGENT_PATH_MAX - 1);
    if (n < 0 || n >= CB_AGENT_PATH_MAX - 1) {
        rc = cb_error_set(err, -ENAMETOOLONG, "workspace path of %s: too long", c->id);
        close(fd);
        goto out;
    }
    path_out[n] = '\0';
    if (strcmp(path_out, real_root) == 0) {
        rc = cb_error_set(err, -EXDEV,
                          "workspace.host_path: must be a directory below %s, not "
                          "workspace_root itself",
                          real_root);
        close(fd);
        goto out;
    }
    rc = fd;
out:
    close(root);
    return rc;
}

int cb_agent_workspace_reopen(const char *workspace_root, const char *workspace_path, bool create,
                              struct cb_error *err)
{
    _cleanup_close_ int root = open(workspace_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    char real_root[PATH_MAX];
    if (root < 0 || realpath(workspace_root, real_root) == NULL)
        return cb_error_set(err, -errno, "workspace_root %s: %s", workspace_root, strerror(errno));
    const char *rel = below_root(workspace_path, real_root, real_root);
    if (rel == NULL || strcmp(rel, ".") == 0)
        return cb_error_set(err, -EXDEV, "workspace %s is no longer beneath workspace_root %s",
                            workspace_path, real_root);
    if (create && mkdirat(root, rel, 0750) < 0 && errno != EEXIST)
        return cb_error_set(err, -errno, "workspace %s: %s", workspace_path, strerror(errno));
    /* No O_NOFOLLOW: with it, a link at the end would be opened itself. */
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
    if (fd < 0) {
        int e = errno;
        return cb_error_set(err, -e, "workspace %s: %s", workspace_path,
                            e == ELOOP   ? "a symbolic link is on its path"
                            : e == EXDEV ? "leads outside workspace_root"
                                         : strerror(e));
    }
    return fd;
}
