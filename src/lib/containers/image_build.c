/* clawbox image build-default: the default agent image, a minimal Debian
 * rootfs made by mmdebstrap from the host's apt archive (containers.md
 * gives the command and why the merged-usr hook matters), or a
 * busybox-static rootfs where that cannot be done. Both get a static
 * catatonit, for an idle PID 1. */
#include "containers/image_store.h"
#include "core/file.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What `busybox --list-full` may print. */
#define APPLET_LIST_MAX (1024 * 1024)

#define MMDEBSTRAP_TIMEOUT_MS (20u * 60 * 1000)
#define DEFAULT_SUITE         "bookworm"
#define SUITE_MAX             32
#define IMAGE_PATH            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const busybox_paths[] = {"/usr/bin/busybox", "/bin/busybox"};
static const char *const catatonit_candidates[] = {"/usr/bin/catatonit", "/usr/libexec/catatonit",
                                                   "/usr/libexec/podman/catatonit"};

/* The host's Debian codename (VERSION_CODENAME of /etc/os-release when ID
 * is debian), else bookworm. */
static void host_suite(char out[SUITE_MAX])
{
    snprintf(out, SUITE_MAX, "%s", DEFAULT_SUITE);
    struct cb_file f;
    struct cb_error err = {0};
    if (cb_file_load(&f, AT_FDCWD, "/etc/os-release", 65536, 0, &err) == 0 &&
        strstr(f.buf.data, "\nID=debian\n") != NULL) {
        const char *c = strstr(f.buf.data, "\nVERSION_CODENAME=");
        if (c != NULL) {
            c += strlen("\nVERSION_CODENAME=");
            size_t n = strspn(c, "abcdefghijklmnopqrstuvwxyz");
            if (n > 0 && n < SUITE_MAX)
                snprintf(out, SUITE_MAX, "%.*s", (int)n, c);
        }
    }
    cb_file_close(&f);
}

/* Its temporary directory (a few hundred MB) goes in the stage, on the
 * store's file system, rather than in a /tmp that may be a small tmpfs. */
static int run_mmdebstrap(const char *suite, const char *stage, const char *tarball,
                          cb_image_progress_fn fn, void *ud, struct cb_error *err)
{
    _cleanup_free_ char *tmpdir = cb_xasprintf("TMPDIR=%s", stage);
    char *env[] = {tmpdir, NULL};
    char *argv[] = {"mmdebstrap",
                    "--mode=root",
                    "--variant=essential",
                    "--include=python3,ca-certificates,curl",
                    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-exclude=/usr/share/locale/*",
                    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/info/*",
                    (char *)suite,
                    (char *)tarball,
                    NULL};
    return cb__image_run(argv, env, MMDEBSTRAP_TIMEOUT_MS, fn, ud, err);
}

static int debian_rootfs(struct cb__image_stage *st, const char *suite, cb_image_progress_fn fn,
                         void *ud, struct cb_error *err)
{
    _cleanup_free_ char *tarball = cb_xasprintf("%s/rootfs.tar", st->dir);
    int r = run_mmdebstrap(suite, st->dir, tarball, fn, ud, err);
    if (r == 0) {
        cb__image_say(fn, ud, "unpacking the rootfs");
        r = cb__image_untar(tarball, st, err);
    }
    unlink(tarball);
    return r;
}

static const char *static_binary(const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (access(paths[i], X_OK) == 0 && cb__image_is_static(paths[i]))
            return paths[i];
    return NULL;
}

/* One link to /bin/busybox per applet `busybox --list-full` names. */
static int link_applets(const char *busybox, const char *rootfs, struct cb_error *err)
{
    struct cb_buf out;
    cb_buf_init(&out, APPLET_LIST_MAX);
    char *argv[] = {(char *)busybox, "--list-full", NULL};
    int r = cb__image_run_capture(argv, &out, err);
    for (char *line = out.data, *nl; r == 0 && line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        while (*line == '/')
            line++;
        if (*line && strcmp(line, "bin/busybox") != 0 && strstr(line, "..") == NULL)
            r = cb__image_symlink_in(rootfs, line, "/bin/busybox", err);
    }
    cb_buf_free(&out);
    return r;
}

static int busybox_rootfs(struct cb__image_stage *st, struct cb_error *err)
{
    const char *bb = static_binary(busybox_paths, CB_ARRAY_LEN(busybox_paths));
    if (bb == NULL)
        return cb_error_set(err, -ENOENT,
                            "no static busybox on this host either (install busybox-static)");
    cb__image_rm_tree(st->rootfs);
    if (mkdir(st->rootfs, 0755) < 0)
        return cb_error_set(err, -errno, "creating %s: %s", st->rootfs, strerror(errno));
    int r = cb__image_copy_in(bb, st->rootfs, "bin/busybox", err);
    return r < 0 ? r : link_applets(bb, st->rootfs, err);
}

static void add_catatonit(const char *rootfs, cb_image_progress_fn fn, void *ud)
{
    const char *c = static_binary(catatonit_candidates, CB_ARRAY_LEN(catatonit_candidates));
    struct cb_error err = {0};
    if (c == NULL)
        cb__image_say(fn, ud, "no static catatonit on this host: the image has none");
    else if (cb__image_copy_in(c, rootfs, "usr/bin/catatonit", &err) < 0)
        cb__image_say(fn, ud, "catatonit not added: %s", err.msg);
    else
        cb__image_say(fn, ud, "added %s as /usr/bin/catatonit", c);
}

int cb_image_build_default(const char *store, const char *name, cb_image_progress_fn fn, void *ud,
                           struct cb_error *err)
{
    char norm[CB_IMAGE_NAME_MAX + 1];
    char suite[SUITE_MAX];
    int r = cb_image_name_normalize(name, norm, err);
    struct cb__image_stage st;
    if (r == 0)
        r = cb__image_stage_open(store, &st, err);
    if (r < 0)
        return r;
    host_suite(suite);
    cb__image_say(fn, ud,
                  "building %s: Debian %s with python3, curl and ca-certificates (mmdebstrap, "
                  "from the host's apt archive; half a minute to a few minutes)",
                  norm, suite);
    _cleanup_free_ char *source = cb_xasprintf("mmdebstrap:%s", suite);
    r = debian_rootfs(&st, suite, fn, ud, err);
    if (r < 0) {
        cb__image_say(fn, ud,
                      "mmdebstrap could not build the image (%s); building a busybox-static "
                      "rootfs instead: it has a shell and busybox's tools, but no python3, "
                      "curl or ca-certificates",
                      err->msg);
        cb_error_clear(err);
        free(source);
        source = cb_xstrdup("busybox-static");
        r = busybox_rootfs(&st, err);
    }
    if (r == 0) {
        add_catatonit(st.rootfs, fn, ud);
        json_t *config = json_pack("{s:[], s:[s], s:[s], s:n, s:n}", "entrypoint", "cmd", "/bin/sh",
                                   "env", IMAGE_PATH, "workdir", "user");
        r = cb__image_commit(store, norm, &st, config, source, err);
    }
    cb__image_stage_close(&st);
    if (r < 0)
        cb_error_prefix(err, "building '%s'", norm);
    else
        cb__image_say(fn, ud, "%s is ready (%s)", norm, source);
    return r;
}
