/* The runtime calls and the monitor, with real runc and crun: a busybox
 * rootfs and a minimal bundle made here, the monitor being the built
 * clawbox binary (CLAWBOX_BIN). Skipped when not root or when a runtime
 * does not work. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <unistd.h>
#include <cmocka.h>

#include "containers/runtime.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"
#include "rm_tree.h"

struct rt_case {
    const char *name;
    bool ok;
    struct cb_ct_runtime rt;
    struct cb_error why;
};

static struct rt_case cases[] = {{.name = "runc"}, {.name = "crun"}};
static char tmp[] = "/tmp/ct-runtime-XXXXXX";
static char rootfs[64], oci_root[64];
static const char *monitor_exe;
static bool ready;
static int host_mntns = -1; /* before cb_ct_mountns_prepare */
static bool host_hybrid;
static unsigned counter;

/* ---- set-up: a busybox rootfs ---- */

static void write_text(const char *path, const char *text)
{
    assert_int_equal(cb_write_atomic(path, text, strlen(text), NULL), 0);
    chmod(path, 0644);
}

static void make_rootfs(void)
{
    static const char *const dirs[] = {"bin", "proc", "dev", "sys", "etc", "tmp"};
    static const char *const links[] = {"sh",   "echo",  "cat", "head", "tail",
                                        "true", "sleep", "dd",  "yes"};
    char path[256];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
    assert_int_equal(mkdir(rootfs, 0755), 0);
    for (size_t i = 0; i < CB_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof(path), "%s/%s", rootfs, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof(path), "%s/tmp", rootfs);
    chmod(path, 01777);
    struct cb_file f;
    assert_int_equal(cb_file_load(&f, AT_FDCWD, "/bin/busybox", 8u << 20, 0, NULL), 0);
    snprintf(path, sizeof(path), "%s/bin/busybox", rootfs);
    assert_int_equal(cb_write_atomic(path, f.buf.data, f.buf.len, NULL), 0);
    chmod(path, 0755);
    cb_file_close(&f);
    for (size_t i = 0; i < CB_ARRAY_LEN(links); i++) {
        snprintf(path, sizeof(path), "%s/bin/%s", rootfs, links[i]);
        assert_int_equal(symlink("busybox", path), 0);
    }
    snprintf(path, sizeof(path), "%s/etc/passwd", rootfs);
    write_text(path, "root:x:0:0:root:/:/bin/sh\n");
}

static int group_setup(void **state)
{
    (void)state;
    monitor_exe = getenv("CLAWBOX_BIN");
    if (geteuid() != 0 || monitor_exe == NULL || access("/bin/busybox", X_OK) != 0)
        return 0;
    struct statfs sf;
    host_hybrid = statfs("/sys/fs/cgroup/unified", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
    host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    struct cb_error err;
    if (cb_ct_mountns_prepare(&err) < 0) {
        fprintf(stderr, "mountns_prepare: %s\n", err.msg);
        return -1;
    }
    assert_non_null(mkdtemp(tmp));
    chmod(tmp, 0711);
    make_rootfs();
    snprintf(oci_root, sizeof(oci_root), "%s/oci", tmp);
    for (size_t i = 0; i < CB_ARRAY_LEN(cases); i++) {
        cases[i].ok =
            cb_ct_runtime_detect(cases[i].name, oci_root, &cases[i].rt, &cases[i].why) == 0;
        if (!cases[i].ok)
            fprintf(stderr, "%s: %s\n", cases[i].name, cases[i].why.msg);
    }
    ready = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (ready)
        rm_tree(tmp);
    return 0;
}

static const struct cb_ct_runtime *need(void **state)
{
    struct rt_case *c = *state;
    if (!ready || !c->ok)
        skip();
    return &c->rt;
}

/* ---- one container ---- */

struct run {
    char id[64], dir[128], bundle[160], cgroup[96];
};

/* A minimal bundle: the busybox rootfs read-only, /proc and /dev, five
 * namespaces, cgroupsPath /clawbox/<id>, a memory limit when mem != 0. */
static void make_bundle(struct run *r, const char *const *args, uint64_t mem)
{
    snprintf(r->id, sizeof(r->id), "clawbox-test-%d-%u", (int)getpid(), counter++);
    snprintf(r->dir, sizeof(r->dir), "%s/%s", tmp, r->id);
    snprintf(r->bundle, sizeof(r->bundle), "%s/bundle", r->dir);
    snprintf(r->cgroup, sizeof(r->cgroup), "/clawbox/%s", r->id);
    assert_int_equal(cb_mkdir_p(r->bundle, 0711, NULL), 0);
    json_t *argv = json_array();
    for (; *args != NULL; args++)
        json_array_append_new(argv, json_string(*args));
    json_t *res = json_object();
    if (mem != 0)
        json_object_set_new(
            res, "memory",
            json_pack("{s:I, s:I}", "limit", (json_int_t)mem, "swap", (json_int_t)mem));
    json_t *cfg =
        json_pack("{s:s, s:{s:b, s:{s:i, s:i}, s:o, s:[s], s:s}, s:{s:s, s:b},"
                  " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:[s, s]}],"
                  " s:{s:s, s:o, s:[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]}}",
                  "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", 0, "gid", 0,
                  "args", argv, "env", "PATH=/bin", "cwd", "/", "root", "path", rootfs, "readonly",
                  1, "mounts", "destination", "/proc", "type", "proc", "source", "proc",
                  "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid",
                  "mode=755", "linux", "cgroupsPath", r->cgroup, "resources", res, "namespaces",
                  "type", "pid", "type", "mount", "type", "ipc", "type", "uts", "type", "network");
    assert_non_null(cfg);
    char *text = json_dumps(cfg, 0), path[192];
    snprintf(path, sizeof(path), "%s/config.json", r->bundle);
    write_text(path, text);
    free(text);
    json_decref(cfg);
}

static int launch(const struct cb_ct_runtime *rt, struct run *r, uint64_t cap,
                  struct cb_ct_started *st, struct cb_error *err)
{
    struct cb_ct_launch l = {.monitor_exe = monitor_exe,
                             .id = r->id,
                             .bundle = r->bundle,
                             .dir = r->dir,
                             .cgroup_path = r->cgroup,
                             .log_cap = cap};
    return cb_ct_launch(rt, &l, st, err);
}

/* Waits for the monitor's end through its pidfd. */
static void wait_monitor(struct cb_ct_started *st)
{
    struct pollfd p = {st->monitor_pidfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 120000), 1);
    close(st->monitor_pidfd);
    close(st->exit_fd);
}

static void run_to_end(const struct cb_ct_runtime *rt, struct run *r, const char *const *args,
                       uint64_t mem, uint64_t cap, struct cb_ct_exit *ex)
{
    struct cb_ct_started st;
    struct cb_error err;
    make_bundle(r, args, mem);
    int rc = launch(rt, r, cap, &st, &err);
    if (rc < 0)
        fail_msg("launch: %s", err.msg);
    assert_true(st.init_pid > 0);
    wait_monitor(&st);
    rc = cb_ct_exit_read(r->dir, ex, &err);
    if (rc < 0)
        fail_msg("exit_read: %s", err.msg);
}

static char *read_log(const struct run *r, size_t *len)
{
    char path[192];
    struct cb_file f;
    snprintf(path, sizeof(path), "%s/output.log", r->dir);
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 4u << 20, 0, NULL), 0);
    *len = f.buf.len;
    char *data = f.buf.data;
    f.buf.data = NULL;
    cb_file_close(&f);
    return data;
}

struct find {
    const char *id;
    bool found;
};

static int find_cb(const char *id, void *ud)
{
    struct find *f = ud;
    f->found |= strcmp(id, f->id) == 0;
    return 0;
}

static bool listed(const struct cb_ct_runtime *rt, const char *id)
{
    struct find f = {id, false};
    struct cb_error err;
    int rc = cb_ct_runtime_list(rt, find_cb, &f, &err);
    if (rc < 0)
        fail_msg("list: %s", err.msg);
    return f.found;
}

/* ---- tests ---- */

static void test_output_and_exit_0(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_exit ex;
    run_to_end(rt, &r, (const char *[]){"/bin/sh", "-c", "echo out; echo err >&2", NULL}, 0,
               1 << 20, &ex);
    assert_int_equal(ex.exit_code, 0);
    assert_int_equal(ex.signal, 0);
    assert_false(ex.oom_killed);
    assert_int_equal(ex.output_bytes, 8);
    assert_int_equal(ex.dropped_bytes, 0);
    assert_true(ex.finished_ms > 0);
    size_t len;
    char *log = read_log(&r, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(log, "out\nerr\n", 8);
    free(log);
    assert_false(listed(rt, r.id)); /* the monitor deleted it */
}

/* The exit pipe ends once exit.json is written; the monitor's own end
 * follows, with the container deleted. */
static void test_exit_pipe_ends_before_the_monitor(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_started st;
    struct cb_ct_exit ex;
    struct cb_error err;
    char c;
    make_bundle(&r, (const char *[]){"/bin/sh", "-c", "exit 5", NULL}, 0);
    assert_int_equal(launch(rt, &r, 1024, &st, &err), 0);
    struct pollfd p = {st.exit_fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 120000), 1);
    assert_int_equal(read(st.exit_fd, &c, 1), 0);
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), 0);
    assert_int_equal(ex.exit_code, 5);
    wait_monitor(&st);
    assert_false(listed(rt, r.id));
}

static void test_exit_code(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_exit ex;
    run_to_end(rt, &r, (const char *[]){"/bin/sh", "-c", "exit 3", NULL}, 0, 1024, &ex);
    assert_int_equal(ex.exit_code, 3);
    assert_int_equal(ex.signal, 0);
    assert_false(ex.oom_killed);
}

static void test_kill(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_started st;
    struct cb_error err;
    make_bundle(&r, (const char *[]){"/bin/sleep", "60", NULL}, 0);
    assert_int_equal(launch(rt, &r, 1024, &st, &err), 0);
    struct cb_ct_exit ex;
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), -ENOENT);
    assert_true(listed(rt, r.id));
    if (cb_ct_runtime_kill(rt, r.id, SIGKILL, &err) < 0)
        fail_msg("kill: %s", err.msg);
    wait_monitor(&st);
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), 0);
    assert_int_equal(ex.signal, SIGKILL);
    assert_int_equal(ex.exit_code, 128 + SIGKILL);
    assert_false(ex.oom_killed);
    assert_int_equal(cb_ct_runtime_kill(rt, r.id, SIGKILL, &err), -ENOENT);
}

static void test_output_cap(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_exit ex;
    run_to_end(
        rt, &r,
        (const char *[]){"/bin/sh", "-c", "head -c 3000000 /dev/zero; echo done >&2; exit 4", NULL},
        0, 1000, &ex);
    assert_int_equal(ex.exit_code, 4); /* it ran to its end: nothing blocked it */
    assert_int_equal(ex.output_bytes, 1000);
    assert_int_equal(ex.dropped_bytes, 3000005 - 1000);
    size_t len;
    free(read_log(&r, &len));
    assert_int_equal(len, 1000);
}

static void test_bad_command(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_started st;
    struct cb_error err;
    make_bundle(&r, (const char *[]){"/bin/no-such-program", NULL}, 0);
    assert_int_equal(launch(rt, &r, 1024, &st, &err), -EIO);
    printf("# %s: %s\n", rt->name, err.msg);
    assert_non_null(strstr(err.msg, "no-such-program"));
    struct cb_ct_exit ex;
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), -ENOENT);
    assert_false(listed(rt, r.id));
}

static void test_oom(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_exit ex;
    run_to_end(rt, &r,
               (const char *[]){"/bin/sh", "-c", "head -c 200000000 /dev/zero | tail", NULL},
               32u << 20, 1024, &ex);
    assert_true(ex.oom_killed);
    assert_int_equal(ex.exit_code, 137);
}

static void test_list_delete(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_started st;
    struct cb_error err;
    make_bundle(&r, (const char *[]){"/bin/sleep", "60", NULL}, 0);
    assert_int_equal(launch(rt, &r, 1024, &st, &err), 0);
    assert_true(listed(rt, r.id));
    if (cb_ct_runtime_delete(rt, r.id, &err) < 0)
        fail_msg("delete: %s", err.msg);
    wait_monitor(&st);
    assert_false(listed(rt, r.id));
    struct cb_ct_exit ex;
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), 0);
    assert_int_equal(ex.signal, SIGKILL);
    assert_int_equal(cb_ct_runtime_delete(rt, r.id, &err), 0); /* gone: still 0 */
}

/* The parent of a process, from /proc/PID/stat. */
static pid_t parent_of(pid_t pid)
{
    char path[64];
    struct cb_file f;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 4096, 0, NULL), 0);
    const char *p = strrchr(f.buf.data, ')');
    assert_non_null(p);
    uint64_t ppid;
    assert_int_equal(cb_parse_u64(p + 4, strcspn(p + 4, " "), &ppid), 0);
    cb_file_close(&f);
    return (pid_t)ppid;
}

/* A monitor outlives its zygote; the next launch starts a new zygote. */
static void test_zygote_death(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    struct run r;
    struct cb_ct_started st;
    struct cb_error err;
    make_bundle(&r, (const char *[]){"/bin/sh", "-c", "echo before; sleep 60", NULL}, 0);
    assert_int_equal(launch(rt, &r, 1024, &st, &err), 0);
    pid_t zygote = parent_of(st.monitor_pid);
    assert_int_equal(parent_of(zygote), getpid());
    assert_int_equal(kill(zygote, SIGKILL), 0);
    struct pollfd p = {st.monitor_pidfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 200), 0); /* still there */
    struct run r2;
    struct cb_ct_exit ex;
    run_to_end(rt, &r2, (const char *[]){"/bin/true", NULL}, 0, 1024, &ex);
    assert_int_equal(ex.exit_code, 0);
    assert_int_equal(cb_ct_runtime_kill(rt, r.id, SIGKILL, &err), 0);
    wait_monitor(&st);
    assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), 0);
    assert_int_equal(ex.signal, SIGKILL);
    assert_int_equal(ex.output_bytes, 7);
}

static void test_detect(void **state)
{
    (void)state;
    if (!ready)
        skip();
    struct cb_ct_runtime rt;
    struct cb_error err;
    assert_int_equal(cb_ct_runtime_detect("docker", oci_root, &rt, &err), -EINVAL);
    assert_int_equal(cb_ct_runtime_detect("crun", "relative/oci", &rt, &err), -EINVAL);
    if (!cases[0].ok && !cases[1].ok)
        skip();
    assert_int_equal(cb_ct_runtime_detect("auto", oci_root, &rt, &err), 0);
    assert_string_equal(rt.name, cases[1].ok ? "crun" : "runc");
    assert_true(rt.path[0] == '/');
    assert_true(rt.version[0] != '\0');
    assert_string_equal(rt.root, oci_root);
    printf("# auto: %s %s (%s)\n", rt.name, rt.version, rt.path);
    glob_t g;
    /* The probe's bundle went beside oci_root, where no other process's
     * can be. */
    _cleanup_free_ char *left = cb_xasprintf("%s/clawbox-probe-*", tmp);
    assert_int_equal(glob(left, GLOB_NOSORT, NULL, &g), GLOB_NOMATCH);
}

/* crun in the host's own mount namespace of a hybrid host: detect says
 * why it does not work. */
static void test_detect_hybrid(void **state)
{
    (void)state;
    if (!ready || !host_hybrid || host_mntns < 0 || !cases[1].ok)
        skip();
    pid_t pid = fork();
    if (pid == 0) {
        struct cb_ct_runtime rt;
        struct cb_error err;
        if (setns(host_mntns, CLONE_NEWNS) < 0)
            _exit(3);
        int rc = cb_ct_runtime_detect("crun", oci_root, &rt, &err);
        printf("# %s\n", err.msg);
        _exit(rc == -ENOTSUP && strstr(err.msg, "hybrid") != NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- launch -> exit against the bare runtime ---- */

static void spawn_wait(char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int status;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, NULL), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* create --pid-file, pidfd_open, start, the exit seen on the pidfd,
 * delete: the bare lifecycle. */
static uint64_t bare_ns(const struct cb_ct_runtime *rt, const struct run *r, const char *id)
{
    char pid_file[192];
    snprintf(pid_file, sizeof(pid_file), "%s/bare.pid", r->dir);
    char *root = (char *)rt->root, *path = (char *)rt->path;
    uint64_t t0 = cb_now_mono_ns();
    spawn_wait((char *[]){path, "--root", root, "create", "--bundle", (char *)r->bundle,
                          "--pid-file", pid_file, (char *)id, NULL});
    struct cb_file f;
    uint64_t pid;
    assert_int_equal(cb_file_load(&f, AT_FDCWD, pid_file, 32, 0, NULL), 0);
    assert_int_equal(cb_parse_u64(f.buf.data, strcspn(f.buf.data, "\n"), &pid), 0);
    cb_file_close(&f);
    int pidfd = pidfd_open((pid_t)pid, 0);
    assert_true(pidfd >= 0);
    spawn_wait((char *[]){path, "--root", root, "start", (char *)id, NULL});
    struct pollfd p = {pidfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 60000), 1);
    close(pidfd);
    spawn_wait((char *[]){path, "--root", root, "delete", "--force", (char *)id, NULL});
    return cb_now_mono_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_bench_true(void **state)
{
    const struct cb_ct_runtime *rt = need(state);
    enum { N = 15 };
    uint64_t mon[N], bare[N];
    struct run r;
    struct cb_error err;
    make_bundle(&r, (const char *[]){"/bin/true", NULL}, 64u << 20);
    for (int i = 0; i < N; i++) {
        char id[80];
        snprintf(id, sizeof(id), "%s-bare", r.id);
        bare[i] = bare_ns(rt, &r, id);
        struct cb_ct_started st;
        struct cb_ct_exit ex;
        uint64_t t0 = cb_now_mono_ns();
        assert_int_equal(launch(rt, &r, 1024, &st, &err), 0);
        wait_monitor(&st);
        assert_int_equal(cb_ct_exit_read(r.dir, &ex, &err), 0);
        mon[i] = cb_now_mono_ns() - t0;
        assert_int_equal(ex.exit_code, 0);
    }
    qsort(mon, N, sizeof(mon[0]), cmp_u64);
    qsort(bare, N, sizeof(bare[0]), cmp_u64);
    printf("# %s /bin/true launch->exit: median %.1f ms (min %.1f); bare create/start/wait/"
           "delete: median %.1f ms (min %.1f); ratio %.2f\n",
           rt->name, mon[N / 2] / 1e6, mon[0] / 1e6, bare[N / 2] / 1e6, bare[0] / 1e6,
           (double)mon[N / 2] / (double)bare[N / 2]);
}

#define BOTH(t) cmocka_unit_test_prestate(t, &cases[0]), cmocka_unit_test_prestate(t, &cases[1])

int main(void)
{
    cb_json_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_detect_hybrid),
        BOTH(test_output_and_exit_0),
        BOTH(test_exit_pipe_ends_before_the_monitor),
        BOTH(test_exit_code),
        BOTH(test_kill),
        BOTH(test_output_cap),
        BOTH(test_bad_command),
        BOTH(test_oom),
        BOTH(test_list_delete),
        BOTH(test_zygote_death),
        BOTH(test_bench_true),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
