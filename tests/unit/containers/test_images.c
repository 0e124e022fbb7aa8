/* The image store: names, the allowlist, and import/list/get/remove with
 * real archives made here from the host's busybox (no network). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../rm_tree.h"
#include "containers/images.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/proc.h"
#include "core/util.h"

static void normalizes_names(void **state)
{
    (void)state;
    static const char *const ok[][2] = {
        {"busybox", "busybox:latest"},
        {"busybox:1.36", "busybox:1.36"},
        {"clawbox/agent-base", "clawbox/agent-base:latest"},
        {"localhost:5000/img", "localhost:5000/img:latest"},
        {"localhost:5000/img:v2", "localhost:5000/img:v2"},
        {"ghcr.io/x/tool@sha256:abc", "ghcr.io/x/tool@sha256:abc"},
    };
    char out[CB_IMAGE_NAME_MAX + 1];
    struct cb_error err = {0};
    for (size_t i = 0; i < CB_ARRAY_LEN(ok); i++) {
        assert_int_equal(cb_image_name_normalize(ok[i][0], out, &err), 0);
        assert_string_equal(out, ok[i][1]);
    }
    static const char *const bad[] = {"",   "../x", "a/../b", "/abs", "a\001b", "a//b", "a:",
                                      ".x", "a b",  "a/",     "a@",   "x/:t",   "a\nb", "a..b"};
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        cb_error_clear(&err);
        assert_int_equal(cb_image_name_normalize(bad[i], out, &err), -EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    char *long_name = cb_xcalloc(CB_IMAGE_NAME_MAX + 2, 1);
    memset(long_name, 'a', CB_IMAGE_NAME_MAX);
    assert_int_equal(cb_image_name_normalize(long_name, out, &err), -EINVAL);
    free(long_name);
}

static bool allowed(const char *image, const char *const *prefixes, size_t n)
{
    struct cb_strlist l = {(char **)prefixes, n};
    return cb_image_allowed(image, &l);
}

/* Spec §8.2's examples with the reference's prefixes. */
static void allowlist_matches_the_reference(void **state)
{
    (void)state;
    static const char *const ref[] = {"ghcr.io/n0xmare/", "alpine:", "ubuntu:", "debian:"};
    static const char *const yes[] = {"alpine", "alpine:3.18", "ghcr.io/n0xmare/tool:latest",
                                      "ghcr.io/n0xmare/tool@sha256:abc", "debian:bookworm"};
    static const char *const no[] = {"ghcr.io/n0xmare-evil/x:latest",
                                     "ghcr.io/n0xmarex/tool:latest",
                                     "docker.io/library/alpine",
                                     "python:3.12-slim",
                                     "clawbox/agent-base:latest",
                                     "Alpine:3",
                                     "alpinex:1",
                                     ""};
    for (size_t i = 0; i < CB_ARRAY_LEN(yes); i++)
        assert_true(allowed(yes[i], ref, CB_ARRAY_LEN(ref)));
    for (size_t i = 0; i < CB_ARRAY_LEN(no); i++)
        assert_false(allowed(no[i], ref, CB_ARRAY_LEN(ref)));
    static const char *const ours[] = {"clawbox/"};
    assert_true(allowed("clawbox/agent-base:latest", ours, 1));
    assert_false(allowed("clawboxx/agent-base:latest", ours, 1));
    assert_false(cb_image_allowed("alpine", NULL));
}

/* The quirk fixed: a ':' before the last '/' is a port, not a tag. */
static void allowlist_parses_a_registry_port(void **state)
{
    (void)state;
    static const char *const host[] = {"localhost:"};
    assert_false(allowed("localhost:5000/img", host, 1));
    assert_false(allowed("localhost:5000/img:latest", host, 1));
    assert_true(allowed("localhost:1", host, 1));
    static const char *const reg[] = {"localhost:5000/"};
    assert_true(allowed("localhost:5000/img", reg, 1));
    assert_true(allowed("localhost:5000/img:v1", reg, 1));
    assert_false(allowed("localhost:5001/img", reg, 1));
    static const char *const repo[] = {"localhost:5000/img"};
    assert_true(allowed("localhost:5000/img:v1", repo, 1));
    assert_true(allowed("localhost:5000/img/sub:v1", repo, 1));
    assert_false(allowed("localhost:5000/imgx:v1", repo, 1));
}

/* ---- the store, with real archives ---- */

struct fixture {
    char dir[64];
    char *store;
};

static int run(char *const *argv, const char *cwd)
{
    struct cb_buf out;
    cb_buf_init(&out, 1 << 20);
    struct cb_proc_spec spec = {.argv = argv, .cwd = cwd, .timeout_ms = 60000, .output = &out};
    struct cb_proc_result res = {0};
    struct cb_error err = {0};
    int r = cb_proc_run(&spec, &res, &err);
    if (r < 0 || !WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
        fprintf(stderr, "%s failed: %s %.*s\n", argv[0], err.msg, (int)out.len, out.data);
        r = -1;
    }
    cb_buf_free(&out);
    return r;
}

static char *path_in(const struct fixture *f, const char *rel)
{
    return cb_xasprintf("%s/%s", f->dir, rel);
}

static void write_file(const char *path, const char *text)
{
    struct cb_error err = {0};
    assert_int_equal(cb_write_atomic(path, text, strlen(text), &err), 0);
}

/* dir/rootfs: busybox as /bin/busybox and /bin/sh, a victim file for the
 * whiteout test, and links that point out of the rootfs. */
static void make_rootfs(struct fixture *f)
{
    char *r = path_in(f, "rootfs/bin");
    struct cb_error err = {0};
    assert_int_equal(cb_mkdir_p(r, 0755, &err), 0);
    char *cp[] = {"cp", "/usr/bin/busybox", r, NULL};
    assert_int_equal(run(cp, NULL), 0);
    char *sh = path_in(f, "rootfs/bin/sh");
    assert_int_equal(symlink("busybox", sh), 0);
    char *etc = path_in(f, "rootfs/etc");
    assert_int_equal(mkdir(etc, 0755), 0);
    char *victim = path_in(f, "rootfs/etc/victim");
    write_file(victim, "gone after the second layer\n");
    char *tmp = path_in(f, "rootfs/tmp");
    assert_int_equal(symlink("/nonexistent-clawbox-test", tmp), 0);
    char *resolv = path_in(f, "rootfs/etc/resolv.conf");
    assert_int_equal(symlink("/etc/shadow", resolv), 0);
    char *tar[] = {"tar", "-C", path_in(f, "rootfs"), "-cf", path_in(f, "rootfs.tar"), ".", NULL};
    assert_int_equal(run(tar, NULL), 0);
    free(tar[2]);
    free(tar[4]);
    free(r);
    free(sh);
    free(etc);
    free(victim);
    free(tmp);
    free(resolv);
}

static bool have(const char *tool)
{
    char *argv[] = {(char *)tool, "--version", NULL};
    return run(argv, NULL) == 0;
}

static int setup(void **state)
{
    struct fixture *f = cb_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cb-images-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->store = path_in(f, "data/images");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_tree(f->dir);
    free(f->store);
    free(f);
    return 0;
}

static bool can_run_store_tests(void)
{
    return geteuid() == 0 && access("/usr/bin/busybox", X_OK) == 0;
}

static void assert_mode(const char *rootfs, const char *rel, mode_t type, mode_t perm)
{
    char *p = cb_xasprintf("%s/%s", rootfs, rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & S_IFMT, type);
    if (perm != 0)
        assert_int_equal(st.st_mode & 07777, perm);
    free(p);
}

static bool file_has(const char *rootfs, const char *rel, const char *needle)
{
    char *p = cb_xasprintf("%s/%s", rootfs, rel);
    char buf[8192] = {0};
    int fd = open(p, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    free(p);
    return n > 0 && strstr(buf, needle) != NULL;
}

static void assert_prepared(const char *rootfs)
{
    static const char *const dirs[] = {"proc", "dev", "sys", "run/clawbox", "workspace"};
    for (size_t i = 0; i < CB_ARRAY_LEN(dirs); i++)
        assert_mode(rootfs, dirs[i], S_IFDIR, 0);
    assert_mode(rootfs, "tmp", S_IFDIR, 01777);
    assert_mode(rootfs, "etc/resolv.conf", S_IFREG, 0);
    assert_mode(rootfs, "etc/hosts", S_IFREG, 0);
    assert_true(file_has(rootfs, "etc/passwd", "agent:x:1000:1000:"));
    assert_true(file_has(rootfs, "etc/group", "agent:x:1000:"));
    assert_true(file_has(rootfs, "etc/passwd", "root:x:0:0:"));
}

static void imports_lists_gets_and_removes_a_rootfs_tarball(void **state)
{
    if (!can_run_store_tests())
        skip();
    struct fixture *f = *state;
    make_rootfs(f);
    struct cb_error err = {0};
    char *tar = path_in(f, "rootfs.tar");
    assert_int_equal(cb_image_import(f->store, "test/bb", tar, NULL, NULL, &err), 0);
    assert_true(cb_image_exists(f->store, "test/bb:latest"));
    /* The data directory as private as the server makes it; the store
     * passable. */
    assert_mode(f->dir, "data", S_IFDIR, 0700);
    assert_mode(f->dir, "data/images", S_IFDIR, 0711);
    json_t *list = NULL;
    assert_int_equal(cb_image_list(f->store, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_t *e = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "test/bb:latest");
    assert_string_equal(json_string_value(json_object_get(e, "source")), "rootfs-tar");
    assert_true(json_integer_value(json_object_get(e, "size_bytes")) > 100000);
    const char *at = json_string_value(json_object_get(e, "created_at"));
    assert_int_equal(strlen(at), 20);
    assert_int_equal(at[10], 'T');
    assert_int_equal(at[19], 'Z');
    json_decref(list);

    struct cb_image *img = NULL;
    assert_int_equal(cb_image_get(f->store, "test/bb", &img, &err), 0);
    assert_string_equal(img->name, "test/bb:latest");
    assert_true(img->rootfs[0] == '/');
    assert_int_equal(img->n_cmd, 1);
    assert_string_equal(img->cmd[0], "/bin/sh");
    assert_null(img->workdir);
    assert_true(img->lock_fd >= 0);
    assert_mode(img->rootfs, "bin/busybox", S_IFREG, 0);
    assert_prepared(img->rootfs);
    /* The links that pointed out were replaced inside, nothing written out. */
    assert_int_equal(access("/nonexistent-clawbox-test", F_OK), -1);

    /* In use: neither removed nor replaced. */
    assert_int_equal(cb_image_remove(f->store, "test/bb", &err), -EBUSY);
    assert_non_null(strstr(err.msg, "in use"));
    assert_int_equal(cb_image_import(f->store, "test/bb", tar, NULL, NULL, &err), -EBUSY);
    /* A second user is fine. */
    struct cb_image *again = NULL;
    assert_int_equal(cb_image_get(f->store, "test/bb:latest", &again, &err), 0);
    cb_image_free(again);
    cb_image_free(img);

    /* What a dead import left is swept by the next one; a live one's
     * stage (locked) is not. */
    char *stale = cb_xasprintf("%s/.tmp-dead00", f->store);
    char *live = cb_xasprintf("%s/.tmp-live00", f->store);
    assert_int_equal(mkdir(stale, 0700), 0);
    assert_int_equal(mkdir(live, 0700), 0);
    int live_fd = open(live, O_RDONLY | O_DIRECTORY);
    assert_int_equal(flock(live_fd, LOCK_EX), 0);

    /* Replaced once free, then removed. */
    assert_int_equal(cb_image_import(f->store, "test/bb", tar, NULL, NULL, &err), 0);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    close(live_fd);
    free(stale);
    free(live);
    assert_int_equal(cb_image_remove(f->store, "test/bb", &err), 0);
    assert_int_equal(cb_image_remove(f->store, "test/bb", &err), -ENOENT);
    assert_int_equal(cb_image_get(f->store, "test/bb", &img, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "clawbox image import"));
    assert_false(cb_image_exists(f->store, "test/bb"));
    assert_int_equal(cb_image_list(f->store, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    free(tar);
}

/* A hand-made tar member (ustar header + data), for names tar would not
 * write. */
static void tar_member(FILE *out, const char *name, const char *data)
{
    char h[512] = {0};
    size_t n = strlen(data);
    snprintf(h, 100, "%s", name);
    snprintf(h + 100, 8, "%07o", 0644);
    snprintf(h + 108, 8, "%07o", 0);
    snprintf(h + 116, 8, "%07o", 0);
    snprintf(h + 124, 12, "%011o", (unsigned)n);
    snprintf(h + 136, 12, "%011o", 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    fwrite(h, 1, sizeof(h), out);
    char pad[512] = {0};
    fwrite(data, 1, n, out);
    fwrite(pad, 1, (512 - n % 512) % 512, out);
}

static void refuses_dotdot_members_and_leaves_nothing(void **state)
{
    if (!can_run_store_tests())
        skip();
    struct fixture *f = *state;
    char *tar = path_in(f, "evil.tar");
    FILE *out = fopen(tar, "wb");
    tar_member(out, "ok", "fine\n");
    tar_member(out, "a/../../escaped", "bad\n");
    char zero[1024] = {0};
    fwrite(zero, 1, sizeof(zero), out);
    fclose(out);
    struct cb_error err = {0};
    assert_true(cb_image_import(f->store, "evil", tar, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, ".."));
    assert_false(cb_image_exists(f->store, "evil"));
    char *escaped = path_in(f, "data/images/escaped");
    assert_int_equal(access(escaped, F_OK), -1);
    /* Only the store's lock is left. */
    char *ls[] = {"sh", "-c", "test \"$(ls -A data/images)\" = .lock", NULL};
    assert_int_equal(run(ls, f->dir), 0);
    /* Bad names and missing files fail before anything is made. */
    assert_int_equal(cb_image_import(f->store, "../x", tar, NULL, NULL, &err), -EINVAL);
    char *missing = path_in(f, "missing.tar");
    assert_int_equal(cb_image_import(f->store, "x", missing, NULL, NULL, &err), -ENOENT);
    free(missing);
    free(escaped);
    free(tar);
}

static void progress(const char *line, void *ud)
{
    (*(int *)ud)++;
    assert_true(strchr(line, '\n') == NULL);
}

/* An OCI layout made with umoci (two layers, the second whiting out a
 * file, and an image config), saved as a docker archive by skopeo. */
static void imports_a_docker_archive_with_whiteouts(void **state)
{
    if (!can_run_store_tests() || !have("umoci") || !have("skopeo"))
        skip();
    struct fixture *f = *state;
    make_rootfs(f);
    char *wh = path_in(f, "wh/etc");
    struct cb_error err = {0};
    assert_int_equal(cb_mkdir_p(wh, 0755, &err), 0);
    char *whf = path_in(f, "wh/etc/.wh.victim");
    write_file(whf, "");
    char *wht[] = {"tar", "-C", "wh", "-cf", "wh.tar", ".", NULL};
    char *steps[][20] = {
        {"umoci", "init", "--layout", "oci", NULL},
        {"umoci", "new", "--image", "oci:bb", NULL},
        {"umoci", "raw", "add-layer", "--image", "oci:bb", "rootfs.tar", NULL},
        {"umoci", "raw", "add-layer", "--image", "oci:bb", "wh.tar", NULL},
        {"umoci", "config", "--image", "oci:bb", "--config.cmd", "/bin/sh", "--config.cmd", "-c",
         "--config.entrypoint", "/bin/busybox", "--config.env", "FOO=bar", "--config.workingdir",
         "/tmp", "--config.user", "1000:1000", NULL},
        {"skopeo", "copy", "--quiet", "oci:oci:bb", "docker-archive:bb-docker.tar:bb:latest", NULL},
    };
    assert_int_equal(run(wht, f->dir), 0);
    for (size_t i = 0; i < CB_ARRAY_LEN(steps); i++)
        assert_int_equal(run(steps[i], f->dir), 0);
    char *archive = path_in(f, "bb-docker.tar");
    int lines = 0;
    assert_int_equal(cb_image_import(f->store, "bb", archive, progress, &lines, &err), 0);
    assert_true(lines >= 2);
    struct cb_image *img = NULL;
    assert_int_equal(cb_image_get(f->store, "bb", &img, &err), 0);
    assert_int_equal(img->n_entrypoint, 1);
    assert_string_equal(img->entrypoint[0], "/bin/busybox");
    assert_int_equal(img->n_cmd, 2);
    assert_string_equal(img->cmd[1], "-c");
    assert_string_equal(img->workdir, "/tmp");
    assert_string_equal(img->user, "1000:1000");
    bool foo = false;
    for (size_t i = 0; i < img->n_env; i++)
        foo = foo || strcmp(img->env[i], "FOO=bar") == 0;
    assert_true(foo);
    assert_mode(img->rootfs, "bin/busybox", S_IFREG, 0);
    char *victim = cb_xasprintf("%s/etc/victim", img->rootfs);
    assert_int_equal(access(victim, F_OK), -1);
    assert_prepared(img->rootfs);
    json_t *list = NULL;
    assert_int_equal(cb_image_list(f->store, &list, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "source")),
                        "docker-archive");
    json_decref(list);
    cb_image_free(img);

    /* The same image as an OCI archive. */
    char *oa[] = {"skopeo", "copy", "--quiet", "oci:oci:bb", "oci-archive:bb-oci.tar:bb:latest",
                  NULL};
    assert_int_equal(run(oa, f->dir), 0);
    char *oci = path_in(f, "bb-oci.tar");
    assert_int_equal(cb_image_import(f->store, "bb-oci:1", oci, NULL, NULL, &err), 0);
    assert_true(cb_image_exists(f->store, "bb-oci:1"));
    free(oci);
    free(victim);
    free(archive);
    free(whf);
    free(wh);
}

int main(void)
{
    cb_json_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalizes_names),
        cmocka_unit_test(allowlist_matches_the_reference),
        cmocka_unit_test(allowlist_parses_a_registry_port),
        cmocka_unit_test_setup_teardown(imports_lists_gets_and_removes_a_rootfs_tarball, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refuses_dotdot_members_and_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(imports_a_docker_archive_with_whiteouts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
