/* The runtime's command line: detection (a container created and deleted
 * without running), kill, delete and list, each with the absolute --root.
 * Runtime commands run through cb_proc_run, with a deadline and a clean
 * environment. */
#include "containers/runtime.h"
#include "containers/runtime_internal.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/proc.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* `list --format json`: a few hundred bytes per container. */
#define LIST_OUTPUT_MAX (8u << 20)
#define ARGS_MAX        12
#define UNIFIED         "/sys/fs/cgroup/unified"

/* ---- running a runtime command ---- */

/* Copies runc's Go-quoted msg="..." text (escapes undone) into dst. */
static void unquote(const char *p, const char *end, char *dst, size_t cap)
{
    size_t o = 0;
    for (; p < end && *p != '"' && o + 1 < cap; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        dst[o++] = *p;
    }
    dst[o] = '\0';
}

void cb__ct_rt_message(const char *out, size_t n, char *dst, size_t cap)
{
    const char *end = out + n;
    while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > out && start[-1] != '\n')
        start--;
    const char *msg = memmem(start, (size_t)(end - start), "msg=\"", 5);
    if (msg != NULL) {
        unquote(msg + 5, end, dst, cap);
        return;
    }
    size_t len = (size_t)(end - start) < cap - 1 ? (size_t)(end - start) : cap - 1;
    memcpy(dst, start, len);
    dst[len] = '\0';
}

int cb__ct_rt_run(const struct cb_ct_runtime *rt, const char *const *args, size_t n_args,
                  struct cb_buf *out, struct cb_error *err)
{
    char *argv[ARGS_MAX + 4] = {(char *)rt->path, "--root", (char *)rt->root};
    char *env[] = {CB__CT_PATH_ENV, NULL};
    if (n_args > ARGS_MAX)
        return cb_error_set(err, -E2BIG, "%s: too many arguments", rt->name);
    memcpy(argv + 3, args, n_args * sizeof(*args));
    struct cb_buf local;
    cb_buf_init(&local, CB__CT_MSG_MAX);
    struct cb_proc_spec spec = {.argv = argv,
                                .env = env,
                                .env_clear = true,
                                .timeout_ms = CB__CT_STEP_MS,
                                .output = out ? out : &local};
    struct cb_proc_result res;
    int r = cb_proc_run(&spec, &res, err);
    if (r == 0 && !(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0)) {
        char msg[CB__CT_MSG_MAX];
        cb__ct_rt_message(spec.output->data, spec.output->len, msg, sizeof(msg));
        r = cb_error_set(err, -EIO, "%s %s: %s", rt->name, args[0],
                         msg[0] != '\0' ? msg : "failed without a message");
    }
    cb_buf_free(&local);
    return r;
}

/* Whether the runtime keeps state for id under its root. */
static bool known(const struct cb_ct_runtime *rt, const char *id)
{
    char path[sizeof(rt->root) + 256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", rt->root, id);
    return lstat(path, &st) == 0;
}

int cb_ct_runtime_kill(const struct cb_ct_runtime *rt, const char *id, int sig,
                       struct cb_error *err)
{
    char signame[16];
    snprintf(signame, sizeof(signame), "%d", sig);
    int r = cb__ct_rt_run(rt, (const char *const[]){"kill", id, signame}, 3, NULL, err);
    if (r < 0 && !known(rt, id))
        return cb_error_set(err, -ENOENT, "%s kill: no container %s", rt->name, id);
    return r;
}

int cb_ct_runtime_delete(const struct cb_ct_runtime *rt, const char *id, struct cb_error *err)
{
    return cb__ct_rt_run(rt, (const char *const[]){"delete", "--force", id}, 3, NULL, err);
}

int cb_ct_runtime_list(const struct cb_ct_runtime *rt, int (*cb)(const char *id, void *ud),
                       void *ud, struct cb_error *err)
{
    struct cb_buf out;
    cb_buf_init(&out, LIST_OUTPUT_MAX);
    int r = cb__ct_rt_run(rt, (const char *const[]){"list", "--format", "json"}, 3, &out, err);
    json_error_t jerr;
    json_t *list = r == 0 ? json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr) : NULL;
    if (r == 0 && list == NULL)
        r = cb_error_set(err, -EIO, "%s list: unreadable output: %s", rt->name, jerr.text);
    else if (r == 0 && !json_is_array(list) && !json_is_null(list))
        r = cb_error_set(err, -EIO, "%s list: not a JSON array", rt->name);
    size_t i;
    json_t *c;
    /* No iterations for null, runc's empty list. */
    json_array_foreach(list, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        if (r == 0 && id != NULL)
            r = cb(id, ud);
    }
    json_decref(list);
    cb_buf_free(&out);
    return r;
}

/* ---- the mount namespace ---- */

static bool is_fs(const char *path, long magic)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == magic;
}

static bool hybrid_cgroups(void)
{
    return is_fs("/sys/fs/cgroup", TMPFS_MAGIC) && is_fs(UNIFIED, CGROUP2_SUPER_MAGIC);
}

static bool private_ns;

int cb_ct_mountns_prepare(struct cb_error *err)
{
    if (unshare(CLONE_NEWNS) < 0)
        return cb_error_set(err, -errno, "entering a private mount namespace: %s", strerror(errno));
    /* A slave still sees the host's later mounts; nothing goes back. */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return cb_error_set(err, -errno, "making the mounts private: %s", strerror(errno));
    private_ns = true;
    if (hybrid_cgroups() && umount2(UNIFIED, MNT_DETACH) < 0)
        return cb_error_set(err, -errno, "unmounting %s: %s", UNIFIED, strerror(errno));
    return 0;
}

bool cb_ct_mountns_private(void)
{
    return private_ns;
}

/* ---- detection ---- */

/* The runtime binary in the system's directories, not the server's PATH:
 * a server started without sbin in PATH still finds runc, and nothing in
 * the user's directories stands in for the runtime. */
static bool find_binary(const char *name, char *path, size_t cap)
{
    _cleanup_free_ char *dirs = cb_xstrdup(CB__CT_PATH);
    for (char *d = dirs, *next; d != NULL; d = next) {
        next = strchr(d, ':');
        if (next != NULL)
            *next++ = '\0';
        struct stat st;
        if (d[0] != '/' || snprintf(path, cap, "%s/%s", d, name) >= (int)cap)
            continue;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
            return true;
    }
    return false;
}

/* "crun version 1.8.1\n..." -> "1.8.1". */
static int read_version(struct cb_ct_runtime *rt, struct cb_error *err)
{
    char *argv[] = {rt->path, "--version", NULL};
    char *env[] = {CB__CT_PATH_ENV, NULL};
    struct cb_buf out;
    cb_buf_init(&out, CB__CT_MSG_MAX);
    struct cb_proc_spec spec = {
        .argv = argv, .env = env, .env_clear = true, .timeout_ms = CB__CT_STEP_MS, .output = &out};
    struct cb_proc_result res;
    int r = cb_proc_run(&spec, &res, err);
    const char *v = r == 0 ? strstr(out.data, " version ") : NULL;
    if (r == 0 && v == NULL)
        r = cb_error_set(err, -ENOTSUP, "%s --version printed no version", rt->path);
    if (r == 0) {
        v += strlen(" version ");
        size_t n = strcspn(v, " \r\n");
        snprintf(rt->version, sizeof(rt->version), "%.*s", (int)n, v);
    }
    cb_buf_free(&out);
    return r;
}

/* The probe container: an empty rootfs with /proc and a tmpfs /dev (the
 * runtime's device nodes go there, not into the rootfs), whose process is
 * the runtime's own init (/proc/self/exe, there in any rootfs). It is
 * created (namespaces, cgroups with a memory limit, mounts) but never
 * started. */
static int write_probe_bundle(const char *dir, const char *id, struct cb_error *err)
{
    _cleanup_free_ char *proc = cb_xasprintf("%s/rootfs/proc", dir);
    _cleanup_free_ char *dev = cb_xasprintf("%s/rootfs/dev", dir);
    _cleanup_free_ char *cfg_path = cb_xasprintf("%s/config.json", dir);
    _cleanup_free_ char *cgroup = cb_xasprintf("/clawbox/%s", id);
    int r = cb_mkdir_p(proc, 0755, err);
    if (r == 0)
        r = cb_mkdir_p(dev, 0755, err);
    if (r < 0)
        return r;
    json_t *cfg =
        json_pack("{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:s}, s:{s:s, s:b},"
                  " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}],"
                  " s:{s:s, s:{s:{s:I}}, s:[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]}}",
                  "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", 0, "gid", 0,
                  "args", "/proc/self/exe", "cwd", "/", "root", "path", "rootfs", "readonly", 1,
                  "mounts", "destination", "/proc", "type", "proc", "source", "proc", "destination",
                  "/dev", "type", "tmpfs", "source", "tmpfs", "linux", "cgroupsPath", cgroup,
                  "resources", "memory", "limit", (json_int_t)(16 << 20), "namespaces", "type",
                  "pid", "type", "mount", "type", "ipc", "type", "uts", "type", "network");
    _cleanup_free_ char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    return cb_write_atomic(cfg_path, text, strlen(text), err);
}

struct probe_create {
    const struct cb_ct_runtime *rt;
    const char *bundle, *id, *log;
};

/* In the child of cb_proc_run: create's stdio goes to a file, since the
 * created container keeps it open (a pipe would never end). */
static int probe_create_child(void *arg)
{
    const struct probe_create *p = arg;
    int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        return 127;
    char *argv[] = {(char *)p->rt->path, "--root",          (char *)p->rt->root, "create",
                    "--bundle",          (char *)p->bundle, (char *)p->id,       NULL};
    execv(argv[0], argv);
    return 127;
}

/* Creates the probe container; on failure err has the runtime's reason. */
static int probe_create(const struct cb_ct_runtime *rt, const char *bundle, const char *id,
                        struct cb_error *err)
{
    _cleanup_free_ char *log = cb_xasprintf("%s/create.log", bundle);
    struct probe_create pc = {rt, bundle, id, log};
    char *argv[] = {(char *)rt->path, NULL};
    char *env[] = {CB__CT_PATH_ENV, NULL};
    struct cb_proc_spec spec = {.argv = argv,
                                .fn = probe_create_child,
                                .arg = &pc,
                                .env = env,
                                .env_clear = true,
                                .timeout_ms = CB__CT_STEP_MS};
    struct cb_proc_result res;
    int r = cb_proc_run(&spec, &res, err);
    if (r < 0 || (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0))
        return r;
    struct cb_file f;
    char msg[CB__CT_MSG_MAX] = "";
    if (cb_file_load(&f, AT_FDCWD, log, CB__CT_MSG_MAX, 0, NULL) == 0)
        cb__ct_rt_message(f.buf.data, f.buf.len, msg, sizeof(msg));
    cb_file_close(&f);
    unlink(log);
    return cb_error_set(err, -ENOTSUP, "%s", msg[0] ? msg : "create failed without a message");
}

static void remove_probe_bundle(const char *dir)
{
    const char *const names[] = {"create.log", "config.json", "rootfs/proc",
                                 "rootfs/dev", "rootfs",      ""};
    for (size_t i = 0; i < CB_ARRAY_LEN(names); i++) {
        _cleanup_free_ char *p = cb_xasprintf("%s/%s", dir, names[i]);
        if (unlink(p) < 0)
            rmdir(p);
    }
}

static int probe_runtime(const struct cb_ct_runtime *rt, struct cb_error *err)
{
    unsigned char rnd[6];
    char hex[sizeof(rnd) * 2 + 1];
    /* Beside the runtime's root (under the server's data directory), not
     * in the runtime root, whose directories it takes for containers. */
    _cleanup_free_ char *parent = cb_xstrdup(rt->root);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        slash[slash == parent ? 1 : 0] = '\0';
    _cleanup_free_ char *dir = cb_xasprintf("%s/clawbox-probe-XXXXXX", parent);
    if (cb_random_bytes(rnd, sizeof(rnd)) < 0 || mkdtemp(dir) == NULL)
        return cb_error_set(err, -errno, "making the probe bundle: %s", strerror(errno));
    cb_hex_encode(rnd, sizeof(rnd), hex);
    _cleanup_free_ char *id = cb_xasprintf("clawbox-probe-%s", hex);
    int r = write_probe_bundle(dir, id, err);
    if (r == 0)
        r = probe_create(rt, dir, id, err);
    struct cb_error derr;
    int d = cb_ct_runtime_delete(rt, id, &derr);
    if (r == 0 && d < 0)
        r = cb_error_set(err, -ENOTSUP, "%s", derr.msg);
    remove_probe_bundle(dir);
    return r;
}

static int detect_one(const char *name, const char *root, struct cb_ct_runtime *rt,
                      struct cb_error *err)
{
    *rt = (struct cb_ct_runtime){0};
    snprintf(rt->name, sizeof(rt->name), "%s", name);
    snprintf(rt->root, sizeof(rt->root), "%s", root);
    if (!find_binary(name, rt->path, sizeof(rt->path)))
        return cb_error_set(err, -ENOENT, "%s is not installed", name);
    int r = read_version(rt, err);
    if (r == 0)
        r = cb_mkdir_p(root, 0700, err);
    if (r == 0)
        r = probe_runtime(rt, err);
    if (r < 0 && strcmp(name, "crun") == 0 && hybrid_cgroups())
        cb_error_prefix(err, "hybrid cgroup host (cb_ct_mountns_prepare was not called)");
    if (r == 0)
        return 0;
    cb_error_prefix(err, "%s %s does not work here", rt->path, rt->version);
    if (err != NULL)
        err->code = -ENOTSUP;
    return -ENOTSUP;
}

int cb_ct_runtime_detect(const char *want, const char *root, struct cb_ct_runtime *out,
                         struct cb_error *err)
{
    if (root[0] != '/' || strlen(root) >= sizeof(out->root))
        return cb_error_set(err, -EINVAL, "runtime root %s: not an absolute path", root);
    if (strcmp(want, "crun") == 0 || strcmp(want, "runc") == 0)
        return detect_one(want, root, out, err);
    if (strcmp(want, "auto") != 0)
        return cb_error_set(err, -EINVAL, "unknown runtime %s (auto, crun or runc)", want);
    struct cb_error crun_err;
    if (detect_one("crun", root, out, &crun_err) == 0)
        return 0;
    int r = detect_one("runc", root, out, err);
    if (r < 0)
        cb_error_prefix(err, "%s; and", crun_err.msg);
    return r;
}
