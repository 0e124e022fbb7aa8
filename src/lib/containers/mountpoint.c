/* What a spawn with options (cb_ct_spawn_opts) puts in place before the
 * bundle: a bind's mount point in the image's rootfs, and the idle init in
 * the container's /run/clawbox. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "containers/image_store.h"
#include "containers/internal.h"
#include "core/fs.h"
#include "core/util.h"

#define INIT_NAME "init"

static const char *const catatonit_paths[] = {"/usr/bin/catatonit", "/usr/libexec/catatonit",
                                              "/usr/libexec/podman/catatonit"};

/* path (absolute, in the image) opened within the rootfs, as the runtime
 * resolves it. */
static int open_in_root(int rootfd, const char *path)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

int cb__ct_mkdir_in_root(const char *rootfs, const char *path, struct cb_error *err)
{
    _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return cb_error_set(err, -errno, "rootfs %s: %s", rootfs, strerror(errno));
    _cleanup_free_ char *p = cb_xstrdup(path);
    /* Each prefix in turn: "/a", "/a/b", ... */
    for (char *slash = strchr(p + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash != NULL)
            *slash = '\0';
        int fd = open_in_root(rootfd, p);
        if (fd == -ENOENT) {
            char *last = strrchr(p, '/');
            *last = '\0';
            _cleanup_close_ int parent = open_in_root(rootfd, p[0] ? p : "/");
            *last = '/';
            /* mkdirat never follows a link at its last component. */
            if (parent < 0 || (mkdirat(parent, last + 1, 0755) < 0 && errno != EEXIST))
                return cb_error_set(err, parent < 0 ? parent : -errno,
                                    "creating the mount point %s in %s: %s", path, rootfs,
                                    strerror(parent < 0 ? -parent : errno));
            fd = open_in_root(rootfd, p);
        }
        if (fd < 0)
            return cb_error_set(err, fd, "the mount point %s in %s: %s", path, rootfs,
                                fd == -ENOTDIR ? "not a directory" : strerror(-fd));
        close(fd);
        if (slash == NULL)
            return 0;
        *slash = '/';
    }
}

int cb__ct_idle_init_install(const char *dir, gid_t gid, struct cb_error *err)
{
    const char *src = NULL;
    for (size_t i = 0; i < CB_ARRAY_LEN(catatonit_paths) && src == NULL; i++)
        if (access(catatonit_paths[i], X_OK) == 0 && cb__image_is_static(catatonit_paths[i]))
            src = catatonit_paths[i];
    if (src == NULL)
        return cb_error_set(err, -ENOENT,
                            "no static catatonit on this host for the idle init (install "
                            "catatonit, or give the agent a command)");
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0 || dfd < 0)
        return cb_error_set(err, -errno, "idle init %s into %s: %s", src, dir, strerror(errno));
    _cleanup_close_ int out =
        openat(dfd, INIT_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
    int r = out < 0 ? -errno : 0;
    /* Readable and executable by the container's group only. */
    if (r == 0 && (fchown(out, 0, gid) < 0 || fchmod(out, 0750) < 0))
        r = -errno;
    if (r == 0)
        r = cb_copy_fd(in, out);
    if (r < 0)
        return cb_error_set(err, r, "copying %s into %s: %s", src, dir, strerror(-r));
    return 0;
}
