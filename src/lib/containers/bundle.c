/* A container's OCI bundle: config.json and the files it binds
 * (bundle.h). */
#include "containers/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/utf8.h"
#include "core/util.h"

#define CPU_PERIOD_US 100000
#define NOFILE_LIMIT  1024
#define ID_MAX        128
#define HOSTNAME_MAX  63
#define DEFAULT_HOST  "clawbox"
#define RESOLV_CONF   "resolv.conf"
#define HOSTS         "hosts"
#define CONFIG_JSON   "config.json"
#define DEV_SIZE      "size=65536k"

/* As `runc spec` sets them. /sys is not mounted at all (a user namespace
 * cannot mount sysfs), so its entry only covers an image's own /sys. */
static const char *const masked_paths[] = {
    "/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/sys/firmware",       "/proc/scsi",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* The character devices the runtime creates in /dev (null, zero, full,
 * random, urandom, tty, ptmx, and the pty slaves): the only ones the
 * device cgroup lets through. */
static const struct {
    int64_t major, minor; /* -1: any */
} char_devices[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}, {136, -1}};

/* jansson refuses other text: a string that is not UTF-8 would drop out
 * of the config silently. */
static bool utf8(const char *s)
{
    size_t n = strlen(s);
    return cb_utf8_valid_len(s, n) == n;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static bool valid_id(const char *id, size_t max)
{
    size_t n = id == NULL ? 0 : strnlen(id, max + 1);
    if (n == 0 || n > max || id[0] == '.' || id[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char(id[i]))
            return false;
    return true;
}

static int check_strings(const char *what, const char *const *v, size_t n, bool env,
                         struct cb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL || !utf8(v[i]))
            return cb_error_set(err, -EINVAL, "%s[%zu] is missing or not UTF-8", what, i);
        if (env && (v[i][0] == '=' || strchr(v[i], '=') == NULL))
            return cb_error_set(err, -EINVAL, "%s[%zu] is not KEY=VALUE", what, i);
    }
    return 0;
}

bool cb_ct_mount_reserved(const char *d)
{
    return strcmp(d, "/") == 0 || cb_path_under(d, "/proc") || cb_path_under(d, "/dev") ||
           cb_path_under(d, "/sys") || strcmp(d, "/tmp") == 0 ||
           strcmp(d, "/etc/resolv.conf") == 0 || strcmp(d, "/etc/hosts") == 0 ||
           cb_path_under("/etc/hosts", d) || cb_path_under("/etc/resolv.conf", d);
}

static int check_mounts(const struct cb_ct_spec *s, struct cb_error *err)
{
    for (size_t i = 0; i < s->n_mounts; i++) {
        const struct cb_ct_mount *m = &s->mounts[i];
        if (!cb_path_clean_abs(m->source) || !cb_path_clean_abs(m->destination) ||
            cb_ct_mount_reserved(m->destination))
            return cb_error_set(
                err, -EINVAL,
                "mount %zu (%s): source and destination must be clean "
                "absolute paths, the destination none of /, /proc, /dev, /sys, "
                "/tmp, /etc/resolv.conf, /etc/hosts",
                i, m->destination != NULL && utf8(m->destination) ? m->destination : "?");
    }
    return 0;
}

/* Checks what the config is built from; the rootfs itself is checked by
 * cb_ct_bundle_write. */
static int check_spec(const struct cb_ct_spec *s, struct cb_error *err)
{
    if (!valid_id(s->id, ID_MAX))
        return cb_error_set(err, -EINVAL, "container id must be 1-%d of [A-Za-z0-9_.-]", ID_MAX);
    if (!cb_path_clean_abs(s->rootfs) || strcmp(s->rootfs, "/") == 0)
        return cb_error_set(err, -EINVAL, "rootfs must be a clean absolute path, not /");
    if (s->n_args == 0 || s->args == NULL)
        return cb_error_set(err, -EINVAL, "no command to run");
    if (s->cwd != NULL && !cb_path_clean_abs(s->cwd))
        return cb_error_set(err, -EINVAL, "working directory must be a clean absolute path");
    if (s->netns_path != NULL && !cb_path_clean_abs(s->netns_path))
        return cb_error_set(err, -EINVAL, "network namespace must be a clean absolute path");
    if (s->hostname != NULL && !valid_id(s->hostname, HOSTNAME_MAX))
        return cb_error_set(err, -EINVAL, "hostname must be 1-%d of [A-Za-z0-9_.-]", HOSTNAME_MAX);
    /* Base 0 would make the container's root the host's root. */
    if (s->host_id_base == 0 || s->host_id_base > UINT32_MAX - CB_CT_ID_RANGE)
        return cb_error_set(err, -EINVAL, "host id base %u is not in 1..%u", s->host_id_base,
                            UINT32_MAX - CB_CT_ID_RANGE);
    if (s->memory_bytes == 0 || s->pids_max == 0 || s->tmp_size_bytes == 0 ||
        s->memory_bytes > INT64_MAX || s->pids_max > INT64_MAX || s->cpu_quota_us > INT64_MAX ||
        s->tmp_size_bytes > INT64_MAX)
        return cb_error_set(err, -EINVAL, "memory, pids and /tmp limits must be set and sane");
    int r = check_strings("args", s->args, s->n_args, false, err);
    if (r == 0)
        r = check_strings("env", s->env, s->n_env, true, err);
    return r < 0 ? r : check_mounts(s, err);
}

static json_t *strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *rlimit(const char *type, uint64_t value)
{
    return json_pack("{s:s, s:I, s:I}", "type", type, "hard", (json_int_t)value, "soft",
                     (json_int_t)value);
}

static json_t *process_section(const struct cb_ct_spec *s)
{
    json_t *caps = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "bounding", "effective",
                             "inheritable", "permitted", "ambient");
    return json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:[o, o], s:b}", "terminal", 0,
                     "user", "uid", CB_CT_UID, "gid", CB_CT_UID, "args",
                     strings(s->args, s->n_args), "env", strings(s->env, s->n_env), "cwd",
                     s->cwd != NULL ? s->cwd : "/", "capabilities", caps, "rlimits",
                     rlimit("RLIMIT_NOFILE", NOFILE_LIMIT), rlimit("RLIMIT_CORE", 0),
                     "noNewPrivileges", 1);
}

/* One mount; `options` is a NULL-terminated list. */
static json_t *mount_entry(const char *dest, const char *type, const char *source,
                           const char *const *options)
{
    json_t *opts = json_array();
    for (size_t i = 0; options[i] != NULL; i++)
        json_array_append_new(opts, json_string(options[i]));
    return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source,
                     "options", opts);
}

/* A bind mount, read-only when asked, never with set-uid or devices (crun
 * 1.8.1 applies nosuid and nodev to read-only binds only, under a user
 * namespace). A source not starting with '/' is relative to the bundle. */
static json_t *bind_entry(const char *dest, const char *source, bool ro, bool noexec)
{
    const char *opts[6] = {"bind", "nosuid", "nodev"};
    size_t n = 3;
    if (noexec)
        opts[n++] = "noexec";
    if (ro)
        opts[n++] = "ro";
    return mount_entry(dest, "bind", source, opts);
}

static json_t *mounts(const struct cb_ct_spec *s, const char *bundle_dir)
{
    json_t *m = json_array();
    char tmp_size[32];
    snprintf(tmp_size, sizeof(tmp_size), "size=%llu", (unsigned long long)s->tmp_size_bytes);
    json_array_append_new(m, mount_entry("/proc", "proc", "proc",
                                         (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    json_array_append_new(
        m, mount_entry("/dev", "tmpfs", "tmpfs",
                       (const char *[]){"nosuid", "strictatime", "mode=755", DEV_SIZE, NULL}));
    json_array_append_new(
        m, mount_entry("/dev/pts", "devpts", "devpts",
                       (const char *[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                        "mode=0620", "gid=5", NULL}));
    json_array_append_new(
        m, mount_entry("/dev/shm", "tmpfs", "shm",
                       (const char *[]){"nosuid", "noexec", "nodev", "mode=1777", DEV_SIZE, NULL}));
    json_array_append_new(m, mount_entry("/dev/mqueue", "mqueue", "mqueue",
                                         (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    json_array_append_new(
        m, mount_entry("/tmp", "tmpfs", "tmpfs",
                       (const char *[]){"nosuid", "noexec", "nodev", "mode=1777", tmp_size, NULL}));
    _cleanup_free_ char *resolv =
        bundle_dir != NULL ? cb_xasprintf("%s/%s", bundle_dir, RESOLV_CONF) : NULL;
    _cleanup_free_ char *hosts =
        bundle_dir != NULL ? cb_xasprintf("%s/%s", bundle_dir, HOSTS) : NULL;
    json_array_append_new(
        m, bind_entry("/etc/resolv.conf", resolv ? resolv : RESOLV_CONF, true, true));
    json_array_append_new(m, bind_entry("/etc/hosts", hosts ? hosts : HOSTS, true, true));
    for (size_t i = 0; i < s->n_mounts; i++)
        json_array_append_new(m, bind_entry(s->mounts[i].destination, s->mounts[i].source,
                                            s->mounts[i].read_only, false));
    return m;
}

static json_t *namespaces(const struct cb_ct_spec *s)
{
    json_t *ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type",
                           "ipc", "type", "uts", "type", "mount", "type", "cgroup", "type", "user");
    if (s->netns_inherited)
        return ns;
    json_t *net = json_pack("{s:s}", "type", "network");
    if (s->netns_path != NULL)
        json_object_set_new(net, "path", json_string(s->netns_path));
    json_array_insert_new(ns, 5, net);
    return ns;
}

static json_t *devices(void)
{
    json_t *d = json_array();
    json_array_append_new(d, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
    for (size_t i = 0; i < CB_ARRAY_LEN(char_devices); i++) {
        json_t *rule = json_pack("{s:b, s:s, s:I, s:s}", "allow", 1, "type", "c", "major",
                                 (json_int_t)char_devices[i].major, "access", "rwm");
        if (char_devices[i].minor >= 0)
            json_object_set_new(rule, "minor", json_integer(char_devices[i].minor));
        json_array_append_new(d, rule);
    }
    return d;
}

static json_t *resources_section(const struct cb_ct_spec *s)
{
    json_t *r = json_pack("{s:o, s:{s:I, s:I}, s:{s:I}}", "devices", devices(), "memory", "limit",
                          (json_int_t)s->memory_bytes, "swap", (json_int_t)s->memory_bytes, "pids",
                          "limit", (json_int_t)s->pids_max);
    if (s->cpu_quota_us > 0)
        json_object_set_new(r, "cpu",
                            json_pack("{s:I, s:I}", "quota", (json_int_t)s->cpu_quota_us, "period",
                                      (json_int_t)CPU_PERIOD_US));
    return r;
}

static json_t *id_map(uint32_t base)
{
    return json_pack("[{s:i, s:I, s:I}]", "containerID", 0, "hostID", (json_int_t)base, "size",
                     (json_int_t)CB_CT_ID_RANGE);
}

static json_t *linux_section(const struct cb_ct_spec *s)
{
    _cleanup_free_ char *cgroup = cb_xasprintf("/clawbox/%s", s->id);
    return json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "uidMappings",
                     id_map(s->host_id_base), "gidMappings", id_map(s->host_id_base), "namespaces",
                     namespaces(s), "cgroupsPath", cgroup, "resources", resources_section(s),
                     "maskedPaths", strings(masked_paths, CB_ARRAY_LEN(masked_paths)),
                     "readonlyPaths", strings(readonly_paths, CB_ARRAY_LEN(readonly_paths)),
                     "seccomp", cb__ct_seccomp());
}

static json_t *build_config(const struct cb_ct_spec *s, const char *bundle_dir,
                            struct cb_error *err)
{
    if (check_spec(s, err) < 0)
        return NULL;
    json_t *c = json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2",
                          "process", process_section(s), "root", "path", s->rootfs, "readonly", 1,
                          "hostname", s->hostname != NULL ? s->hostname : DEFAULT_HOST, "mounts",
                          mounts(s, bundle_dir), "linux", linux_section(s));
    if (c == NULL)
        cb_error_set(err, -EINVAL, "the OCI config could not be built");
    return c;
}

json_t *cb__ct_oci_config(const struct cb_ct_spec *s, struct cb_error *err)
{
    return build_config(s, NULL, err);
}

/* Opens path (absolute, in the container) inside the rootfs, resolving
 * symbolic links the way the runtime does: within the root. */
static int bundle_open_in_root(int rootfd, const char *path)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* Checks that the rootfs has a mount point at `path`, a directory or not
 * as `dir` says; with mode != 0, also its permission bits. */
static int need_mount_point(int rootfd, const char *rootfs, const char *path, bool dir, mode_t mode,
                            struct cb_error *err)
{
    _cleanup_close_ int fd = bundle_open_in_root(rootfd, path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return cb_error_set(err, fd < 0 ? fd : -errno,
                            "rootfs %s has no %s (a mount point; the runtime cannot create it "
                            "in a read-only root): %s",
                            rootfs, path, strerror(fd < 0 ? -fd : errno));
    if (dir != (bool)S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "rootfs %s: %s must be %s", rootfs, path,
                            dir ? "a directory" : "a file, not a directory");
    if (mode != 0 && (st.st_mode & 07777) != mode)
        return cb_error_set(err, -EPERM, "rootfs %s: %s has mode %04o, it must be %04o", rootfs,
                            path, (unsigned)(st.st_mode & 07777), (unsigned)mode);
    return 0;
}

static int check_mount_points(int rootfd, const struct cb_ct_spec *s, struct cb_error *err)
{
    /* runc gives the /tmp tmpfs the mode of the directory under it. */
    int r = need_mount_point(rootfd, s->rootfs, "/tmp", true, 01777, err);
    if (r == 0)
        r = need_mount_point(rootfd, s->rootfs, "/proc", true, 0, err);
    if (r == 0)
        r = need_mount_point(rootfd, s->rootfs, "/dev", true, 0, err);
    if (r == 0)
        r = need_mount_point(rootfd, s->rootfs, "/etc/resolv.conf", false, 0, err);
    if (r == 0)
        r = need_mount_point(rootfd, s->rootfs, "/etc/hosts", false, 0, err);
    for (size_t i = 0; r == 0 && i < s->n_mounts; i++) {
        struct stat st;
        if (stat(s->mounts[i].source, &st) < 0)
            return cb_error_set(err, -errno, "mount source %s: %s", s->mounts[i].source,
                                strerror(errno));
        r = need_mount_point(rootfd, s->rootfs, s->mounts[i].destination, S_ISDIR(st.st_mode), 0,
                             err);
    }
    return r;
}

/* Whether the container's root (host id `base`) may pass through a
 * directory: as its owner, with every capability over inodes whose ids are
 * mapped, else only as "others". */
static bool searchable(const struct stat *st, uint32_t base)
{
    if (st->st_uid >= base && st->st_uid - base < CB_CT_ID_RANGE && st->st_gid >= base &&
        st->st_gid - base < CB_CT_ID_RANGE)
        return true;
    return (st->st_mode & S_IXOTH) != 0;
}

/* Both runtimes resolve the rootfs from inside the user namespace (bind
 * sources they open before entering it): every directory above it must let
 * the container's ids through, or they fail with a bare EACCES. */
static int check_ancestors(const struct cb_ct_spec *s, struct cb_error *err)
{
    _cleanup_free_ char *p = cb_xstrdup(s->rootfs);
    for (char *slash = p; slash != NULL; slash = strchr(slash + 1, '/')) {
        char saved = slash[1];
        slash[1] = '\0';
        struct stat st;
        int r = stat(p, &st) < 0 ? -errno : 0;
        bool ok = r == 0 && searchable(&st, s->host_id_base);
        slash[1] = saved;
        if (r < 0)
            return cb_error_set(err, r, "rootfs %s: %s", s->rootfs, strerror(-r));
        if (!ok)
            return cb_error_set(err, -EACCES,
                                "rootfs %s: the directory above it at %.*s has mode %04o; the "
                                "container's ids (host %u and up) must be able to pass (o+x)",
                                s->rootfs, (int)(slash - p + (slash == p)), p,
                                (unsigned)(st.st_mode & 07777), s->host_id_base);
    }
    return 0;
}

/* runc refuses a rootfs that is a symbolic link; check it here, with the
 * mount points, so that the error names what is wrong. */
static int check_rootfs(const struct cb_ct_spec *s, struct cb_error *err)
{
    struct stat st;
    int r = check_ancestors(s, err);
    if (r < 0)
        return r;
    if (lstat(s->rootfs, &st) < 0)
        return cb_error_set(err, -errno, "rootfs %s: %s", s->rootfs, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "rootfs %s is not a directory (or is a symlink)",
                            s->rootfs);
    _cleanup_close_ int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return cb_error_set(err, -errno, "rootfs %s: %s", s->rootfs, strerror(errno));
    return check_mount_points(rootfd, s, err);
}

/* The bundle directory, 0711: the runtime's process in the user namespace
 * must pass through it to bind the files in it. */
static int make_bundle_dir(const char *dir, struct cb_error *err)
{
    struct stat st;
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return cb_error_set(err, -errno, "creating %s: %s", dir, strerror(errno));
    if (lstat(dir, &st) < 0)
        return cb_error_set(err, -errno, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "%s is not a directory", dir);
    if (chmod(dir, 0711) < 0)
        return cb_error_set(err, -errno, "chmod %s: %s", dir, strerror(errno));
    return 0;
}

/* Not fsynced (six fsyncs cost more than the runtime's create on a busy
 * disk): a bundle has no use after a host crash, and the server removes
 * what is left of it when it starts again. */
static int write_bundle_file(const char *dir, const char *name, const char *data, mode_t mode,
                             struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s", dir, name);
    int r = cb_write_replace(path, data, strlen(data), err);
    if (r == 0 && chmod(path, mode) < 0)
        r = cb_error_set(err, -errno, "chmod %s: %s", path, strerror(errno));
    return r;
}

/* resolv.conf names 127.0.0.1 (the container has no network: nothing
 * there answers a query unless clawbox serves DNS in its namespace); hosts
 * names only the loopback. Both are readable by the
 * container's user and bound read-only. */
static int write_bound_files(const char *dir, const struct cb_ct_spec *s, struct cb_error *err)
{
    const char *host = s->hostname != NULL ? s->hostname : DEFAULT_HOST;
    _cleanup_free_ char *hosts = cb_xasprintf("127.0.0.1\tlocalhost\n"
                                              "::1\tlocalhost ip6-localhost ip6-loopback\n"
                                              "127.0.1.1\t%s\n",
                                              host);
    int r = write_bundle_file(dir, RESOLV_CONF, "nameserver 127.0.0.1\n", 0644, err);
    return r < 0 ? r : write_bundle_file(dir, HOSTS, hosts, 0644, err);
}

int cb_ct_bundle_write(const char *bundle_dir, const struct cb_ct_spec *s, struct cb_error *err)
{
    if (!cb_path_clean_abs(bundle_dir))
        return cb_error_set(err, -EINVAL, "bundle directory must be a clean absolute path");
    json_t *config = build_config(s, bundle_dir, err);
    if (config == NULL)
        return -EINVAL;
    _cleanup_free_ char *text = json_dumps(config, JSON_COMPACT);
    json_decref(config);
    int r = check_rootfs(s, err);
    if (r == 0)
        r = make_bundle_dir(bundle_dir, err);
    if (r == 0)
        r = write_bound_files(bundle_dir, s, err);
    if (r == 0) {
        _cleanup_free_ char *path = cb_xasprintf("%s/%s", bundle_dir, CONFIG_JSON);
        /* Written last, 0600: its presence means a complete bundle, and its
         * environment holds the proxy token. */
        r = cb_write_replace(path, text, strlen(text), err);
    }
    if (r < 0)
        cb_error_prefix(err, "writing the bundle of %s", s->id);
    return r;
}

const char *cb_ct_trust_store(const char *rootfs)
{
    static const char *const stores[] = {"/etc/ssl/certs/ca-certificates.crt",
                                         "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"};
    _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; rootfd >= 0 && i < CB_ARRAY_LEN(stores); i++) {
        _cleanup_close_ int fd = bundle_open_in_root(rootfd, stores[i]);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            return stores[i];
    }
    return NULL;
}
