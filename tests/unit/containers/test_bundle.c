/* The OCI bundle (containers/bundle.h): the config it builds, the files it
 * writes and what it refuses; then, as root with runc and crun installed,
 * real containers from it, probed from the inside (a shell script and the
 * static tests/fixtures/ctprobe given as argv[1]), and the time of their
 * lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "containers/bundle.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/proc.h"
#include "core/util.h"
#include "rm_tree.h"

#define OUTPUT_MAX (256 * 1024)
#define TEST_BASE  4000000000u /* a host id range no user owns */
#define LIFECYCLES 10

static const char *probe_exe; /* argv[1] */

static const char *const test_args[] = {"/bin/sh", "/probe.sh"};
static const char *const test_env[] = {"PATH=/bin", "FOO=bar baz"};

static struct cb_ct_spec base_spec(void)
{
    return (struct cb_ct_spec){
        .id = "clawbox-test",
        .rootfs = "/srv/rootfs",
        .args = test_args,
        .n_args = 2,
        .env = test_env,
        .n_env = 2,
        .host_id_base = TEST_BASE,
        .memory_bytes = 256u << 20,
        .cpu_quota_us = 50000,
        .pids_max = 64,
        .tmp_size_bytes = 16u << 20,
    };
}

static json_t *config_of(const struct cb_ct_spec *s)
{
    struct cb_error err = {0};
    json_t *c = cb__ct_oci_config(s, &err);
    if (c == NULL)
        fail_msg("config refused: %s", err.msg);
    return c;
}

/* json_object_get along a path of keys. */
static json_t *at(json_t *v, const char *path)
{
    char key[64];
    for (const char *p = path; v != NULL && *p != '\0';) {
        size_t n = strcspn(p, ".");
        assert_true(n < sizeof(key));
        memcpy(key, p, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    return v;
}

static json_int_t int_at(json_t *v, const char *path)
{
    json_t *i = at(v, path);
    if (!json_is_integer(i))
        fail_msg("%s is not an integer", path);
    return json_integer_value(i);
}

static const char *str_at(json_t *v, const char *path)
{
    json_t *s = at(v, path);
    if (!json_is_string(s))
        fail_msg("%s is not a string", path);
    return json_string_value(s);
}

static json_t *mount_at(json_t *config, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(config, "mounts"), i, m)
    {
        if (strcmp(str_at(m, "destination"), dest) == 0)
            return m;
    }
    return NULL;
}

static bool has_string(json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void process_is_unprivileged(void **state)
{
    (void)state;
    struct cb_ct_spec s = base_spec();
    json_t *c = config_of(&s);
    assert_int_equal(int_at(c, "process.user.uid"), 1000);
    assert_int_equal(int_at(c, "process.user.gid"), 1000);
    assert_null(at(c, "process.user.additionalGids"));
    const char *sets[] = {"bounding", "effective", "inheritable", "permitted", "ambient"};
    for (size_t i = 0; i < 5; i++) {
        json_t *set = at(at(c, "process.capabilities"), sets[i]);
        assert_true(json_is_array(set));
        assert_int_equal(json_array_size(set), 0);
    }
    assert_true(json_is_true(at(c, "process.noNewPrivileges")));
    assert_true(json_is_false(at(c, "process.terminal")));
    assert_string_equal(str_at(c, "process.cwd"), "/");
    assert_int_equal(json_array_size(at(c, "process.args")), 2);
    assert_true(has_string(at(c, "process.env"), "FOO=bar baz"));
    json_t *nofile = json_array_get(at(c, "process.rlimits"), 0);
    json_t *core = json_array_get(at(c, "process.rlimits"), 1);
    assert_string_equal(str_at(nofile, "type"), "RLIMIT_NOFILE");
    assert_int_equal(int_at(nofile, "soft"), 1024);
    assert_int_equal(int_at(nofile, "hard"), 1024);
    assert_string_equal(str_at(core, "type"), "RLIMIT_CORE");
    assert_int_equal(int_at(core, "hard"), 0);
    assert_true(json_is_true(at(c, "root.readonly")));
    assert_string_equal(str_at(c, "root.path"), "/srv/rootfs");
    assert_string_equal(str_at(c, "hostname"), "clawbox");
    json_decref(c);
}

static void linux_section_isolates(void **state)
{
    (void)state;
    struct cb_ct_spec s = base_spec();
    json_t *c = config_of(&s);
    const char *maps[] = {"linux.uidMappings", "linux.gidMappings"};
    for (size_t i = 0; i < 2; i++) {
        json_t *m = at(c, maps[i]);
        assert_int_equal(json_array_size(m), 1);
        assert_int_equal(int_at(json_array_get(m, 0), "containerID"), 0);
        assert_int_equal(int_at(json_array_get(m, 0), "hostID"), TEST_BASE);
        assert_int_equal(int_at(json_array_get(m, 0), "size"), 65536);
    }
    const char *want[] = {"pid", "ipc", "uts", "mount", "cgroup", "network", "user"};
    json_t *ns = at(c, "linux.namespaces");
    assert_int_equal(json_array_size(ns), 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(str_at(json_array_get(ns, i), "type"), want[i]);
        assert_null(at(json_array_get(ns, i), "path"));
    }
    assert_string_equal(str_at(c, "linux.cgroupsPath"), "/clawbox/clawbox-test");
    assert_int_equal(int_at(c, "linux.resources.memory.limit"), 256 << 20);
    assert_int_equal(int_at(c, "linux.resources.memory.swap"), 256 << 20);
    assert_int_equal(int_at(c, "linux.resources.pids.limit"), 64);
    assert_int_equal(int_at(c, "linux.resources.cpu.quota"), 50000);
    assert_int_equal(int_at(c, "linux.resources.cpu.period"), 100000);
    json_t *dev0 = json_array_get(at(c, "linux.resources.devices"), 0);
    assert_true(json_is_false(at(dev0, "allow")));
    assert_string_equal(str_at(dev0, "access"), "rwm");
    assert_true(has_string(at(c, "linux.maskedPaths"), "/proc/kcore"));
    assert_true(has_string(at(c, "linux.maskedPaths"), "/proc/keys"));
    assert_true(has_string(at(c, "linux.readonlyPaths"), "/proc/sys"));
    assert_true(has_string(at(c, "linux.readonlyPaths"), "/proc/sysrq-trigger"));
    json_decref(c);

    s.netns_path = "/run/netns/x";
    s.cpu_quota_us = 0;
    s.hostname = "agent";
    c = config_of(&s);
    assert_string_equal(str_at(json_array_get(at(c, "linux.namespaces"), 5), "path"),
                        "/run/netns/x");
    assert_null(at(c, "linux.resources.cpu"));
    assert_string_equal(str_at(c, "hostname"), "agent");
    json_decref(c);

    /* Inherited: no network entry at all (the runtime's namespace), every
     * other namespace still its own. */
    s.netns_inherited = true;
    c = config_of(&s);
    json_t *nss = at(c, "linux.namespaces");
    assert_int_equal(json_array_size(nss), 6);
    size_t i;
    json_t *e;
    json_array_foreach(nss, i, e)
    {
        assert_string_not_equal(str_at(e, "type"), "network");
        assert_null(json_object_get(e, "path"));
    }
    json_decref(c);
}

static void mounts_are_hardened(void **state)
{
    (void)state;
    struct cb_ct_spec s = base_spec();
    struct cb_ct_mount m[] = {{"/srv/proxy/x", "/run/clawbox", true},
                              {"/srv/ws", "/workspace", false}};
    s.mounts = m;
    s.n_mounts = 2;
    json_t *c = config_of(&s);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "mounts"), i, e)
    {
        const char *type = str_at(e, "type"), *dest = str_at(e, "destination");
        if (strcmp(type, "sysfs") == 0 || strcmp(type, "cgroup") == 0 ||
            strncmp(dest, "/sys", 4) == 0)
            fail_msg("%s mounted at %s under a user namespace", type, dest);
    }
    json_t *tmp = mount_at(c, "/tmp");
    assert_non_null(tmp);
    assert_string_equal(str_at(tmp, "type"), "tmpfs");
    const char *tmp_opts[] = {"nosuid", "noexec", "nodev", "size=16777216"};
    for (i = 0; i < 4; i++)
        assert_true(has_string(at(tmp, "options"), tmp_opts[i]));
    assert_string_equal(str_at(mount_at(c, "/proc"), "type"), "proc");
    assert_string_equal(str_at(mount_at(c, "/dev"), "type"), "tmpfs");
    assert_string_equal(str_at(mount_at(c, "/dev/pts"), "type"), "devpts");
    assert_non_null(mount_at(c, "/dev/shm"));
    assert_non_null(mount_at(c, "/dev/mqueue"));
    const char *files[] = {"/etc/resolv.conf", "/etc/hosts"};
    const char *sources[] = {"resolv.conf", "hosts"};
    for (i = 0; i < 2; i++) {
        json_t *f = mount_at(c, files[i]);
        assert_non_null(f);
        assert_string_equal(str_at(f, "source"), sources[i]);
        assert_true(has_string(at(f, "options"), "bind"));
        assert_true(has_string(at(f, "options"), "ro"));
    }
    json_t *proxy = mount_at(c, "/run/clawbox"), *ws = mount_at(c, "/workspace");
    assert_string_equal(str_at(proxy, "source"), "/srv/proxy/x");
    assert_true(has_string(at(proxy, "options"), "ro"));
    assert_true(has_string(at(proxy, "options"), "nosuid"));
    assert_false(has_string(at(ws, "options"), "ro"));
    assert_true(has_string(at(ws, "options"), "nodev"));
    json_decref(c);
}

static void seccomp_is_x86_64_allowlist(void **state)
{
    (void)state;
    struct cb_ct_spec s = base_spec();
    json_t *c = config_of(&s);
    json_t *sc = at(c, "linux.seccomp");
    assert_string_equal(str_at(sc, "defaultAction"), "SCMP_ACT_ERRNO");
    assert_int_equal(int_at(sc, "defaultErrnoRet"), EPERM);
    assert_int_equal(json_array_size(at(sc, "architectures")), 1);
    assert_string_equal(json_string_value(json_array_get(at(sc, "architectures"), 0)),
                        "SCMP_ARCH_X86_64");
    bool clone3_enosys = false, clone_masked = false;
    size_t i, j;
    json_t *rule, *name;
    json_array_foreach(at(sc, "syscalls"), i, rule)
    {
        const char *action = str_at(rule, "action");
        json_array_foreach(at(rule, "names"), j, name)
        {
            const char *n = json_string_value(name);
            if (seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, n) < 0)
                fail_msg("%s is not an x86_64 system call", n);
            /* What Docker allows only with a capability stays out. */
            const char *never[] = {"mount",          "umount2",        "unshare",
                                   "setns",          "pivot_root",     "keyctl",
                                   "add_key",        "request_key",    "bpf",
                                   "kexec_load",     "init_module",    "open_by_handle_at",
                                   "io_uring_setup", "fsopen",         "move_mount",
                                   "chroot",         "reboot",         "syslog",
                                   "userfaultfd",    "perf_event_open"};
            for (size_t k = 0; k < sizeof(never) / sizeof(never[0]); k++)
                if (strcmp(n, never[k]) == 0)
                    fail_msg("%s is allowed", n);
            if (strcmp(n, "clone3") == 0) {
                assert_string_equal(action, "SCMP_ACT_ERRNO");
                assert_int_equal(int_at(rule, "errnoRet"), ENOSYS);
                clone3_enosys = true;
            }
            if (strcmp(n, "clone") == 0) {
                json_t *a = json_array_get(at(rule, "args"), 0);
                assert_string_equal(str_at(a, "op"), "SCMP_CMP_MASKED_EQ");
                assert_int_equal(int_at(a, "value"), 0x7E020000);
                assert_int_equal(int_at(a, "valueTwo"), 0);
                clone_masked = true;
            }
        }
    }
    assert_true(clone3_enosys);
    assert_true(clone_masked);
    json_decref(c);
}

static void refuse(struct cb_ct_spec s, const char *why)
{
    struct cb_error err = {0};
    json_t *c = cb__ct_oci_config(&s, &err);
    if (c != NULL)
        fail_msg("accepted: %s", why);
    assert_int_equal(err.code, -EINVAL);
    assert_true(err.msg[0] != '\0');
}

static void bad_specs_are_refused(void **state)
{
    (void)state;
    struct cb_ct_spec s = base_spec();
    s.host_id_base = 0;
    refuse(s, "host id base 0 maps the container's root to the host's");
    s = base_spec();
    s.host_id_base = UINT32_MAX - 1000;
    refuse(s, "an id range past the last uid");
    s = base_spec();
    s.id = "a/b";
    refuse(s, "an id with a slash (cgroup path)");
    s.id = "..";
    refuse(s, "id ..");
    s.id = "";
    refuse(s, "empty id");
    s = base_spec();
    s.rootfs = "srv/rootfs";
    refuse(s, "relative rootfs");
    s.rootfs = "/srv/../etc";
    refuse(s, "rootfs with ..");
    s.rootfs = "/";
    refuse(s, "the host's root as rootfs");
    s = base_spec();
    s.n_args = 0;
    refuse(s, "no command");
    const char *bad_utf8[] = {"/bin/sh", "\xff"};
    s.args = bad_utf8;
    s.n_args = 2;
    refuse(s, "an argument that is not UTF-8");
    s = base_spec();
    const char *bad_env[] = {"NOEQUALS"};
    s.env = bad_env;
    s.n_env = 1;
    refuse(s, "env without =");
    s = base_spec();
    s.memory_bytes = 0;
    refuse(s, "no memory limit");
    s = base_spec();
    s.pids_max = 0;
    refuse(s, "no pids limit");
    s = base_spec();
    s.tmp_size_bytes = 0;
    refuse(s, "no /tmp size");
    s = base_spec();
    s.cwd = "work";
    refuse(s, "relative cwd");
    s = base_spec();
    s.hostname = "a b";
    refuse(s, "hostname with a space");
    s = base_spec();
    struct cb_ct_mount up[] = {{"/srv/ws", "/workspace/../etc", false}};
    s.mounts = up;
    s.n_mounts = 1;
    refuse(s, "mount destination with ..");
    struct cb_ct_mount root[] = {{"/srv/ws", "/", false}};
    s.mounts = root;
    refuse(s, "mount over /");
    const char *covered[] = {"/proc", "/proc/sys",        "/dev",      "/dev/shm", "/sys",
                             "/tmp",  "/etc/resolv.conf", "/etc/hosts"};
    for (size_t i = 0; i < sizeof(covered) / sizeof(covered[0]); i++) {
        struct cb_ct_mount over[] = {{"/srv/ws", covered[i], false}};
        s.mounts = over;
        refuse(s, covered[i]);
    }
    struct cb_ct_mount rel[] = {{"srv/ws", "/workspace", false}};
    s.mounts = rel;
    refuse(s, "relative mount source");
}

/* ---- A busybox rootfs on disk ---- */

struct fixture {
    char dir[64];     /* mkdtemp, then 0711 */
    char rootfs[128]; /* dir/rootfs */
    char bundle[128]; /* dir/bundle */
    char proxy[128];  /* dir/proxy: root:<ctgid> 0710, bound at /run/clawbox */
    char ws[128];     /* dir/ws: owned by the container's uid, at /workspace */
    struct cb_ct_mount mounts[2];
};

static void put(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void copy(const char *from, const char *to)
{
    struct cb_buf b;
    cb_buf_init(&b, 64 << 20);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    char chunk[65536];
    ssize_t n;
    while ((n = read(in, chunk, sizeof(chunk))) > 0)
        assert_int_equal(cb_buf_append(&b, chunk, (size_t)n), 0);
    close(in);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    assert_true(out >= 0);
    assert_int_equal(write(out, b.data, b.len), (ssize_t)b.len);
    close(out);
    cb_buf_free(&b);
}

static void mkdirs(const char *root, const char *const *dirs, size_t n)
{
    char p[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
}

/* What the image store guarantees (containers-plan.md): the mount points,
 * /tmp 1777, passwd and group entries for 1000; here with busybox's
 * applets as symlinks in /bin, the probe and its script. */
static void make_rootfs(const char *rootfs)
{
    const char *dirs[] = {"",    "bin", "etc", "proc",        "dev",
                          "sys", "tmp", "run", "run/clawbox", "workspace"};
    mkdirs(rootfs, dirs, sizeof(dirs) / sizeof(dirs[0]));
    char p[256], q[256];
    snprintf(p, sizeof(p), "%s/tmp", rootfs);
    assert_int_equal(chmod(p, 01777), 0);
    snprintf(p, sizeof(p), "%s/bin/busybox", rootfs);
    copy("/bin/busybox", p);
    snprintf(p, sizeof(p), "%s/bin/ctprobe", rootfs);
    copy(probe_exe, p);

    struct cb_buf list;
    cb_buf_init(&list, OUTPUT_MAX);
    struct cb_proc_spec ps = {.argv = (char *const[]){"/bin/busybox", "--list", NULL},
                              .timeout_ms = 10000,
                              .output = &list};
    struct cb_proc_result res;
    struct cb_error err = {0};
    assert_int_equal(cb_proc_run(&ps, &res, &err), 0);
    for (char *line = list.data; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (n > 0 && strncmp(line, "busybox", n) != 0) {
            snprintf(q, sizeof(q), "%s/bin/%.*s", rootfs, (int)n, line);
            assert_int_equal(symlink("busybox", q), 0);
        }
        line += n + (line[n] == '\n');
    }
    cb_buf_free(&list);

    const char *files[][2] = {
        {"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/workspace:/bin/sh\n"},
        {"etc/group", "root:x:0:\nagent:x:1000:\n"},
        {"etc/resolv.conf", ""},
        {"etc/hosts", ""},
        {"probe.sh", "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n"
                     "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
                     "/proc/self/status | tr -d '\\t '\n"
                     "echo \"ifaces=$(sed -n '3,$p' /proc/net/dev | cut -d: -f1 | tr -d ' ' "
                     "| tr '\\n' ,)\"\n"
                     "echo \"sys_entries=$(ls -A /sys | wc -l)\"\n"
                     "awk '{print \"mount \" $2 \" \" $4}' /proc/self/mounts\n"
                     "echo \"hostname=$(hostname)\"\n"
                     "echo \"nofile=$(ulimit -n) core=$(ulimit -c)\"\n"
                     "echo \"resolv=$(cat /etc/resolv.conf)\"\n"
                     "echo \"env_FOO=$FOO\" \"cwd=$(pwd)\"\n"
                     "touch /x 2>/dev/null && echo sh_write_root=yes || echo sh_write_root=no\n"
                     "mount -t tmpfs none /tmp 2>/dev/null && echo sh_mount=yes "
                     "|| echo sh_mount=no\n"
                     "unshare -U true 2>/dev/null && echo sh_unshare=yes "
                     "|| echo sh_unshare=no\n"
                     "exec /bin/ctprobe\n"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", rootfs, files[i][0]);
        put(p, files[i][1], 0644);
    }
}

static void fixture_init(struct fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/cb-ctbundle-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(chmod(f->dir, 0711), 0);
    snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->dir);
    snprintf(f->bundle, sizeof(f->bundle), "%s/bundle", f->dir);
    snprintf(f->proxy, sizeof(f->proxy), "%s/proxy", f->dir);
    snprintf(f->ws, sizeof(f->ws), "%s/ws", f->dir);
    make_rootfs(f->rootfs);
    uid_t ct = TEST_BASE + CB_CT_UID;
    assert_int_equal(mkdir(f->proxy, 0710), 0);
    assert_int_equal(chown(f->proxy, 0, ct), 0);
    assert_int_equal(chmod(f->proxy, 0710), 0);
    char p[256];
    snprintf(p, sizeof(p), "%s/present", f->proxy);
    put(p, "x", 0640);
    assert_int_equal(chown(p, 0, ct), 0);
    assert_int_equal(mkdir(f->ws, 0755), 0);
    assert_int_equal(chown(f->ws, ct, ct), 0);
    f->mounts[0] = (struct cb_ct_mount){f->proxy, "/run/clawbox", true};
    f->mounts[1] = (struct cb_ct_mount){f->ws, "/workspace", false};
}

static struct cb_ct_spec fixture_spec(struct fixture *f, const char *id)
{
    struct cb_ct_spec s = base_spec();
    s.id = id;
    s.rootfs = f->rootfs;
    s.mounts = f->mounts;
    s.n_mounts = 2;
    s.cwd = "/workspace";
    return s;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode & 07777;
}

static char *slurp(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char *text = cb_xcalloc(1, 65536);
    size_t n = fread(text, 1, 65535, fp);
    fclose(fp);
    text[n] = '\0';
    return text;
}

static void bundle_write_makes_the_files(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* chown to the container's ids */
    struct fixture f;
    fixture_init(&f);
    struct cb_ct_spec s = fixture_spec(&f, "clawbox-files");
    struct cb_error err = {0};
    int r = cb_ct_bundle_write(f.bundle, &s, &err);
    if (r != 0)
        fail_msg("bundle: %s", err.msg);
    assert_int_equal(mode_of(f.dir, "bundle"), 0711);
    assert_int_equal(mode_of(f.bundle, "config.json"), 0600);
    assert_int_equal(mode_of(f.bundle, "resolv.conf"), 0644);
    assert_int_equal(mode_of(f.bundle, "hosts"), 0644);
    char *resolv = slurp(f.bundle, "resolv.conf"), *hosts = slurp(f.bundle, "hosts");
    assert_string_equal(resolv, "nameserver 127.0.0.1\n");
    assert_non_null(strstr(hosts, "127.0.0.1\tlocalhost\n"));
    assert_non_null(strstr(hosts, "\tclawbox\n"));
    free(resolv);
    free(hosts);

    json_error_t jerr;
    char p[256];
    snprintf(p, sizeof(p), "%s/config.json", f.bundle);
    json_t *c = json_load_file(p, 0, &jerr);
    assert_non_null(c);
    snprintf(p, sizeof(p), "%s/resolv.conf", f.bundle);
    assert_string_equal(str_at(mount_at(c, "/etc/resolv.conf"), "source"), p);
    snprintf(p, sizeof(p), "%s/hosts", f.bundle);
    assert_string_equal(str_at(mount_at(c, "/etc/hosts"), "source"), p);
    json_decref(c);

    /* Again over the same directory: replaced, mode restored. */
    assert_int_equal(chmod(f.bundle, 0755), 0);
    assert_int_equal(cb_ct_bundle_write(f.bundle, &s, &err), 0);
    assert_int_equal(mode_of(f.dir, "bundle"), 0711);
    rm_tree(f.dir);
}

static void expect_write_error(struct fixture *f, const struct cb_ct_spec *s, int code,
                               const char *needle)
{
    struct cb_error err = {0};
    int r = cb_ct_bundle_write(f->bundle, s, &err);
    if (r != code || strstr(err.msg, needle) == NULL)
        fail_msg("want %d with \"%s\", got %d: %s", code, needle, r, err.msg);
    struct stat st;
    char p[256];
    snprintf(p, sizeof(p), "%s/config.json", f->bundle);
    assert_int_equal(stat(p, &st), -1);
}

static void bundle_write_checks_the_rootfs(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fixture f;
    fixture_init(&f);
    struct cb_ct_spec s = fixture_spec(&f, "clawbox-rootfs");
    char p[256], q[256];

    snprintf(p, sizeof(p), "%s/tmp", f.rootfs);
    assert_int_equal(chmod(p, 0755), 0);
    expect_write_error(&f, &s, -EPERM, "/tmp has mode 0755, it must be 1777");
    assert_int_equal(chmod(p, 01777), 0);

    snprintf(p, sizeof(p), "%s/run/clawbox", f.rootfs);
    assert_int_equal(rmdir(p), 0);
    expect_write_error(&f, &s, -ENOENT, "has no /run/clawbox");
    assert_int_equal(mkdir(p, 0755), 0);

    /* A symlink is followed inside the root, as the runtime does: an
     * absolute target names the rootfs's own file, not the host's. */
    snprintf(p, sizeof(p), "%s/etc/hosts", f.rootfs);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    struct cb_error err = {0};
    assert_int_equal(cb_ct_bundle_write(f.bundle, &s, &err), 0);
    snprintf(q, sizeof(q), "%s/config.json", f.bundle);
    assert_int_equal(unlink(q), 0);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("/nonexistent-host-file", p), 0);
    expect_write_error(&f, &s, -ENOENT, "has no /etc/hosts");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    expect_write_error(&f, &s, -ENOTDIR, "/etc/hosts must be a file");
    assert_int_equal(rmdir(p), 0);
    put(p, "", 0644);

    /* Like a data directory left 0700: the runtime could not reach it. */
    assert_int_equal(chmod(f.dir, 0700), 0);
    expect_write_error(&f, &s, -EACCES, "has mode 0700; the container's ids (host 4000000000");
    assert_int_equal(chmod(f.dir, 0711), 0);

    snprintf(q, sizeof(q), "%s/link", f.dir);
    assert_int_equal(symlink(f.rootfs, q), 0);
    s.rootfs = q;
    expect_write_error(&f, &s, -ENOTDIR, "is a symlink");
    rm_tree(f.dir);
}

/* ---- Real runtimes ---- */

/* The runtime's path, or NULL (then the test is skipped). */
static const char *runtime(const char *name)
{
    static char path[64];
    const char *dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

/* crun refuses a hybrid cgroup host unless the unified mount is gone from
 * its mount namespace (containers.md); the server does that once for
 * itself, a test per call. */
static char *crun_cmd(const char *crun, const char *root, const char *args)
{
    return cb_xasprintf("umount /sys/fs/cgroup/unified 2>/dev/null; exec %s --root %s %s", crun,
                        root, args);
}

static bool has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)) != NULL; p++)
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static void expect_lines(const char *rt, const char *out, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_line(out, lines[i]))
            fail_msg("%s: no line \"%s\" in:\n%s", rt, lines[i], out);
}

static const char *const probe_lines[] = {
    "uid=1000 gid=1000 groups=1000", "CapInh:0000000000000000", "CapPrm:0000000000000000",
    "CapEff:0000000000000000", "CapBnd:0000000000000000", "CapAmb:0000000000000000", "NoNewPrivs:1",
    "Seccomp:2", "ifaces=lo,", "sys_entries=0", "hostname=clawbox", "nofile=1024 core=0",
    "resolv=nameserver 127.0.0.1", "env_FOO=bar baz cwd=/workspace", "sh_write_root=no",
    "sh_mount=no", "sh_unshare=no",
    /* ctprobe */
    "clone3=ENOSYS", "clone_plain=ok", "clone_newuser=EPERM", "clone_newnet=EPERM",
    "unshare_user=EPERM", "unshare_mount=EPERM", "setns=EPERM", "mount=EPERM", "umount=EPERM",
    "chroot=EPERM", "setuid0=EPERM", "mknod=EPERM", "keyctl=EPERM", "io_uring=EPERM",
    "personality_exec=EPERM", "personality_query=ok", "vsock=EPERM", "inet=ok", "write_root=EROFS",
    "write_etc=EACCES", /* the file is root's; the mount is checked ro below */
    "write_proxy_dir=EROFS", "read_proxy_dir=ok", "write_workspace=ok", "write_tmp=ok",
    "exec_tmp=EACCES", "proc_sys=EACCES", /* root's; /proc/sys is checked ro below */
};

/* Mount points and the options each must show in /proc/self/mounts. */
static const char *const mount_checks[][2] = {
    {"/", "ro"},
    {"/tmp", "rw nosuid nodev noexec size=16384k"},
    {"/etc/resolv.conf", "ro nosuid nodev noexec"},
    {"/etc/hosts", "ro nosuid nodev noexec"},
    {"/run/clawbox", "ro nosuid nodev"},
    {"/workspace", "rw"},
    {"/proc", "rw nosuid nodev noexec"},
    {"/proc/sys", "ro"},
    {"/proc/keys", ""}, /* masked (kcore is absent on this kernel) */
    {"/proc/timer_list", ""},
    {"/dev/mqueue", "nosuid nodev noexec"},
};

/* The options of the last (topmost) mount at dest, as ",a,b,", or NULL. */
static char *mount_options(const char *out, const char *dest)
{
    char key[128];
    snprintf(key, sizeof(key), "\nmount %s ", dest);
    const char *last = NULL;
    for (const char *p = out; (p = strstr(p, key)) != NULL; p++)
        last = p;
    if (last == NULL)
        return NULL;
    last += strlen(key);
    return cb_xasprintf(",%.*s,", (int)strcspn(last, "\n"), last);
}

static void check_mounts(const char *rt, const char *out)
{
    for (size_t i = 0; i < sizeof(mount_checks) / sizeof(mount_checks[0]); i++) {
        char *opts = mount_options(out, mount_checks[i][0]);
        if (opts == NULL)
            fail_msg("%s: nothing mounted at %s", rt, mount_checks[i][0]);
        char want[64];
        for (const char *w = mount_checks[i][1]; *w != '\0';) {
            size_t n = strcspn(w, " ");
            snprintf(want, sizeof(want), ",%.*s,", (int)n, w);
            if (strstr(opts, want) == NULL)
                fail_msg("%s: %s lacks %s: %s", rt, mount_checks[i][0], want, opts);
            w += n + (w[n] == ' ');
        }
        free(opts);
    }
    if (strstr(out, "\nmount /sys") != NULL)
        fail_msg("%s: something is mounted under /sys", rt);
    /* crun 1.8.1 applies nosuid and nodev to read-only bind mounts only:
     * the workspace then relies on no_new_privs (set-uid bits ignored),
     * the deny-all device cgroup and the lack of CAP_MKNOD. */
    char *ws = mount_options(out, "/workspace");
    if (strcmp(rt, "runc") == 0 &&
        (strstr(ws, ",nosuid,") == NULL || strstr(ws, ",nodev,") == NULL))
        fail_msg("%s: /workspace lacks nosuid or nodev: %s", rt, ws);
    if (strstr(ws, ",nosuid,") == NULL)
        print_message("%s: note: /workspace is mounted without nosuid/nodev: %s\n", rt, ws);
    free(ws);
}

/* Runs argv, output into out; returns the wait status. */
static int run(char *const *argv, struct cb_buf *out)
{
    struct cb_proc_spec ps = {.argv = argv, .timeout_ms = 60000, .output = out};
    struct cb_proc_result res;
    struct cb_error err = {0};
    int r = cb_proc_run(&ps, &res, &err);
    if (r != 0)
        fail_msg("%s: %s", argv[0], err.msg);
    return res.status;
}

static void probe_in(const char *name)
{
    const char *rt = runtime(name);
    if (geteuid() != 0 || rt == NULL || access("/bin/busybox", X_OK) != 0) {
        print_message("%s: needs root, %s and /bin/busybox\n", name, name);
        skip();
    }
    struct fixture f;
    fixture_init(&f);
    char id[64], root[128];
    snprintf(id, sizeof(id), "clawbox-test-%s-%d", name, (int)getpid());
    snprintf(root, sizeof(root), "%s/oci", f.dir);
    struct cb_ct_spec s = fixture_spec(&f, id);
    struct cb_error err = {0};
    if (cb_ct_bundle_write(f.bundle, &s, &err) != 0)
        fail_msg("bundle: %s", err.msg);

    struct cb_buf out;
    cb_buf_init(&out, OUTPUT_MAX);
    int st;
    if (strcmp(name, "crun") == 0) {
        _cleanup_free_ char *args = cb_xasprintf("run -b %s %s", f.bundle, id);
        _cleanup_free_ char *cmd = crun_cmd(rt, root, args);
        st = run((char *const[]){"unshare", "-m", "sh", "-c", cmd, NULL}, &out);
    } else {
        st =
            run((char *const[]){(char *)rt, "--root", root, "run", "-b", f.bundle, id, NULL}, &out);
    }
    print_message("%s probe output:\n%s", name, out.data);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s run: status %#x\n%s", name, st, out.data);
    expect_lines(name, out.data, probe_lines, sizeof(probe_lines) / sizeof(probe_lines[0]));
    check_mounts(name, out.data);
    /* An i386 system call is killed: SIGSYS from the filter's architecture
     * check, or SIGSEGV on kernels (such as this VM's) that refuse
     * `int $0x80` before seccomp sees it. */
    if (!has_line(out.data, "int80=signal 31") && !has_line(out.data, "int80=signal 11"))
        fail_msg("%s: an i386 system call was not killed:\n%s", name, out.data);
    /* The workspace file belongs to the container's uid on the host. */
    char p[256];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/written", f.ws);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_uid, TEST_BASE + CB_CT_UID);
    cb_buf_free(&out);
    rm_tree(f.dir);
}

static void runc_container_is_hardened(void **state)
{
    (void)state;
    probe_in("runc");
}

static void crun_container_is_hardened(void **state)
{
    (void)state;
    probe_in("crun");
}

/* ---- Lifecycle times ---- */

struct timing {
    double create, start, exited, del, total; /* ms */
};

static double ms_since(uint64_t t0)
{
    return (double)(cb_now_mono_ns() - t0) / 1e6;
}

/* Runs argv with stdin and stdout on /dev/null, stderr appended to log:
 * 0 when it exits 0. */
static int spawn_wait(char *const *argv, const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid;
    extern char **environ;
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    if (r != 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static uint64_t read_u64(const char *path)
{
    char text[64] = {0};
    uint64_t v = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0 || cb_parse_u64(text, strcspn(text, "\n"), &v) < 0)
        return 0;
    return v;
}

/* The limits of the spec, read from the host's cgroup v1 hierarchy while
 * the container exists. */
static int check_cgroup(const char *id)
{
    const struct {
        const char *controller, *file;
        uint64_t want;
    } limits[] = {
        {"memory", "memory.limit_in_bytes", 256u << 20},
        {"memory", "memory.memsw.limit_in_bytes", 256u << 20},
        {"pids", "pids.max", 64},
        {"cpu", "cpu.cfs_quota_us", 50000},
        {"cpu", "cpu.cfs_period_us", 100000},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char rel[256], path[300];
        snprintf(rel, sizeof(rel), "%s/clawbox/%s/%s", limits[i].controller, id, limits[i].file);
        snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", rel);
        uint64_t got = read_u64(path);
        printf("  cgroup %s = %llu\n", rel, (unsigned long long)got);
        if (got != limits[i].want) {
            printf("  want %llu\n", (unsigned long long)limits[i].want);
            bad = 1;
        }
    }
    return bad;
}

/* One create, start, wait, delete of the bundle; 0 or -1. */
static int one_lifecycle(const char *rt, const char *root, const char *bundle, const char *id,
                         const char *spec_id, const char *log, bool check_limits,
                         struct timing *out)
{
    char pidfile[256];
    snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", root, id);
    uint64_t t0 = cb_now_mono_ns(), t;
    char *const create[] = {(char *)rt, "--root", (char *)root,   "create",   "--pid-file",
                            pidfile,    "-b",     (char *)bundle, (char *)id, NULL};
    if (spawn_wait(create, log) < 0)
        return -1;
    out->create = ms_since(t0);
    int pid = (int)read_u64(pidfile);
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    int bad = check_limits ? check_cgroup(spec_id) : 0;
    t = cb_now_mono_ns();
    char *const start[] = {(char *)rt, "--root", (char *)root, "start", (char *)id, NULL};
    int r = spawn_wait(start, log);
    out->start = ms_since(t);
    t = cb_now_mono_ns();
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    if (pidfd < 0 || poll(&p, 1, 10000) != 1)
        r = -1;
    out->exited = ms_since(t);
    t = cb_now_mono_ns();
    char *const del[] = {(char *)rt, "--root", (char *)root, "delete", "-f", (char *)id, NULL};
    if (spawn_wait(del, log) < 0)
        r = -1;
    out->del = ms_since(t);
    out->total = ms_since(t0);
    if (pidfd >= 0)
        close(pidfd);
    return r < 0 || bad ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(struct timing *t, size_t n, size_t field)
{
    double v[LIFECYCLES];
    for (size_t i = 0; i < n; i++)
        v[i] = ((double *)&t[i])[field];
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* In a child: LIFECYCLES runs of each bundle, then the medians. For crun,
 * first what the server does once at start (containers.md): a private
 * mount namespace without the cgroup2 mount of this hybrid host. */
static int time_lifecycles(const char *name, const char *rt, const char *root,
                           const char *const bundles[2], const char *spec_id, const char *log)
{
    if (strcmp(name, "crun") == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            return 1;
        umount2("/sys/fs/cgroup/unified", MNT_DETACH);
    }
    const char *what[2] = {"hardened", "hardened minus seccomp"};
    for (size_t b = 0; b < 2; b++) {
        struct timing t[LIFECYCLES];
        for (size_t i = 0; i < LIFECYCLES; i++) {
            char id[64];
            snprintf(id, sizeof(id), "clawbox-time-%s-%d-%zu-%zu", name, (int)getpid(), b, i);
            if (one_lifecycle(rt, root, bundles[b], id, spec_id, log, b == 0 && i == 0, &t[i]) <
                0) {
                printf("%s: lifecycle %zu of %s failed\n", name, i, bundles[b]);
                return 1;
            }
        }
        printf("%s /bin/true, %s, median of %d: create %.1f ms, start %.1f ms, exit seen "
               "%.1f ms, delete %.1f ms, lifecycle %.1f ms (containers.md: %s)\n",
               name, what[b], LIFECYCLES, median(t, LIFECYCLES, 0), median(t, LIFECYCLES, 1),
               median(t, LIFECYCLES, 2), median(t, LIFECYCLES, 3), median(t, LIFECYCLES, 4),
               strcmp(name, "crun") == 0 ? "41 ms" : "62 ms");
    }
    return 0;
}

/* The same config for /bin/true, once as written and once without its
 * seccomp section (to see what the filter costs). */
static void write_true_bundles(struct fixture *f, const char *spec_id, char out[2][160])
{
    static const char *const true_args[] = {"/bin/true"};
    struct cb_ct_spec s = fixture_spec(f, spec_id);
    s.args = true_args;
    s.n_args = 1;
    struct cb_error err = {0};
    snprintf(out[0], 160, "%s/true", f->dir);
    snprintf(out[1], 160, "%s/true-noseccomp", f->dir);
    for (size_t i = 0; i < 2; i++)
        if (cb_ct_bundle_write(out[i], &s, &err) != 0)
            fail_msg("bundle: %s", err.msg);
    char p[200];
    snprintf(p, sizeof(p), "%s/config.json", out[1]);
    json_error_t jerr;
    json_t *c = json_load_file(p, 0, &jerr);
    assert_non_null(c);
    assert_int_equal(json_object_del(json_object_get(c, "linux"), "seccomp"), 0);
    assert_int_equal(json_dump_file(c, p, JSON_COMPACT), 0);
    json_decref(c);
}

static void lifecycle_in(const char *name)
{
    const char *rt = runtime(name);
    if (geteuid() != 0 || rt == NULL || access("/bin/busybox", X_OK) != 0)
        skip();
    struct fixture f;
    fixture_init(&f);
    char bundles[2][160], root[128], log[128];
    /* Its cgroup is /clawbox/<spec_id>: unique, as other runs may share
     * the host. */
    char spec_id[64];
    snprintf(spec_id, sizeof(spec_id), "clawbox-time-%s-%d", name, (int)getpid());
    write_true_bundles(&f, spec_id, bundles);
    snprintf(root, sizeof(root), "%s/oci", f.dir);
    snprintf(log, sizeof(log), "%s/runtime.log", f.dir);
    assert_int_equal(mkdir(root, 0700), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *const b[2] = {bundles[0], bundles[1]};
        int r = time_lifecycles(name, rt, root, b, spec_id, log);
        fflush(stdout);
        _exit(r);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *text = slurp(f.dir, "runtime.log");
        fail_msg("%s lifecycle failed (status %#x); runtime said:\n%s", name, st, text);
    }
    rm_tree(f.dir);
}

static void runc_lifecycle_time(void **state)
{
    (void)state;
    lifecycle_in("runc");
}

static void crun_lifecycle_time(void **state)
{
    (void)state;
    lifecycle_in("crun");
}

/* cb_ct_trust_store: the first system CA bundle the rootfs has, as a
 * regular file, resolved inside the rootfs. */
static void trust_store_is_found_in_the_rootfs(void **state)
{
    (void)state;
    char root[] = "/tmp/cb-trust-XXXXXX", p[256];
    assert_non_null(mkdtemp(root));
    assert_null(cb_ct_trust_store(root));
    mkdirs(root,
           (const char *const[]){"etc", "etc/ssl", "etc/ssl/certs", "etc/pki", "etc/pki/tls",
                                 "etc/pki/tls/certs"},
           6);
    /* A directory where Debian's file would be does not count. */
    snprintf(p, sizeof(p), "%s/etc/ssl/certs/ca-certificates.crt", root);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_null(cb_ct_trust_store(root));
    snprintf(p, sizeof(p), "%s/etc/pki/tls/certs/ca-bundle.crt", root);
    put(p, "x", 0644);
    assert_string_equal(cb_ct_trust_store(root), "/etc/pki/tls/certs/ca-bundle.crt");
    /* An absolute symlink is resolved inside the rootfs, not on the host. */
    snprintf(p, sizeof(p), "%s/etc/ssl/certs/ca-certificates.crt", root);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(symlink("/etc/pki/tls/certs/ca-bundle.crt", p), 0);
    assert_string_equal(cb_ct_trust_store(root), "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("/etc/hostname", p), 0); /* on the host, not in the rootfs */
    assert_string_equal(cb_ct_trust_store(root), "/etc/pki/tls/certs/ca-bundle.crt");
    rm_tree(root);
}

int main(int argc, char **argv)
{
    cb_json_setup();
    probe_exe = argc > 1 ? argv[1] : "ctprobe";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(process_is_unprivileged),
        cmocka_unit_test(linux_section_isolates),
        cmocka_unit_test(mounts_are_hardened),
        cmocka_unit_test(seccomp_is_x86_64_allowlist),
        cmocka_unit_test(bad_specs_are_refused),
        cmocka_unit_test(bundle_write_makes_the_files),
        cmocka_unit_test(bundle_write_checks_the_rootfs),
        cmocka_unit_test(runc_container_is_hardened),
        cmocka_unit_test(crun_container_is_hardened),
        cmocka_unit_test(runc_lifecycle_time),
        cmocka_unit_test(crun_lifecycle_time),
        cmocka_unit_test(trust_store_is_found_in_the_rootfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
