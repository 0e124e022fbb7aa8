/* /containers/{id}/files: reading, listing, writing and removing files
 * inside a running container.
 *
 * Every path is resolved inside the container's own root, as its init
 * process sees it (/proc/<init>/root, which shows the container's mounts:
 * its read-only image and its /tmp), with openat2(RESOLVE_IN_ROOT): "..",
 * absolute symbolic links and links that point out all stay inside that
 * root, so no path, and no link the container plants before or during a
 * request, reaches a host file. Magic links (/proc/self/...) are refused.
 * Writes and removals are only allowed on the container's /tmp and on a
 * writable bound directory (an agent's workspace): the mount of the
 * directory reached must be one of theirs; everything else is its
 * read-only image. A written file belongs to the container's user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "containers/internal.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/util.h"

#define PATH_MAX_LEN 4096
#define LIST_MAX     10000
/* The container's user, as its process spec has it (bundle.c). */
#define CT_UID 1000u

struct root {
    int fd;           /* the container's root, O_PATH */
    uint64_t tmp_mnt; /* the mount id of its /tmp */
    uint64_t ws_mnt;  /* that of its writable bound directory, or 0 */
    uint32_t id_base; /* host id of its uid 0 */
};

static int open_in(int rootfd, const char *rel, int flags, mode_t mode, uint64_t extra,
                   struct cb_error *err)
{
    /* O_NOCTTY: a container's pty opened here must never become the
     * server's controlling terminal (openat2 refuses it beside O_PATH). */
    if (!(flags & O_PATH))
        flags |= O_NOCTTY;
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                           .mode = mode,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra};
    int fd = (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof(how));
    if (fd < 0)
        return cb_error_set(err, -errno, "/%s: %s", rel, strerror(errno));
    return fd;
}

/* The mount id of fd, 0 when unknown. */
static uint64_t mount_id(int fd)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
        return 0;
    return stx.stx_mnt_id;
}

/* The mount id of an absolute mount point in the root, reached with no
 * symbolic link (the container may have replaced one part with a link). */
static uint64_t mount_at(const struct root *r, const char *where)
{
    struct cb_error ignored = {0};
    while (*where == '/')
        where++;
    int fd = open_in(r->fd, where, O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS, &ignored);
    uint64_t id = fd >= 0 ? mount_id(fd) : 0;
    if (fd >= 0)
        close(fd);
    return id;
}

/* The container's root through its init. The init's pidfd, held since
 * its start, still live once the root is open, means the pid named that
 * init when it was opened, not a process that took the pid since. */
static int open_root(const struct cb__ct_files_target *t, struct root *r, struct cb_error *err)
{
    char path[48];
    snprintf(path, sizeof(path), "/proc/%d/root", (int)t->init);
    r->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    bool ended = !cb__ct_init_alive(t->init_pidfd);
    if (r->fd < 0 || ended) {
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        return cb_error_set(err, -ESRCH, "the container is not running");
    }
    r->id_base = t->id_base;
    r->tmp_mnt = mount_at(r, "/tmp");
    r->ws_mnt = t->bind_target ? mount_at(r, t->bind_target) : 0;
    return 0;
}

/* path, checked, without its leading slashes (relative to the root). */
static int relative(const char *path, const char **rel, struct cb_error *err)
{
    if (path[0] != '/')
        return cb_error_set(err, -EINVAL, "path: must be absolute, such as /tmp/notes.txt");
    if (strlen(path) > PATH_MAX_LEN)
        return cb_error_set(err, -EINVAL, "path: longer than %d bytes", PATH_MAX_LEN);
    while (*path == '/')
        path++;
    *rel = path;
    return 0;
}

/* Splits rel into its directory and its last name (new strings); -EINVAL
 * for the root itself, "." or "..". */
static int split_path(const char *rel, char **dir, char **name, struct cb_error *err)
{
    size_t n = strlen(rel);
    while (n > 0 && rel[n - 1] == '/')
        n--;
    size_t i = n;
    while (i > 0 && rel[i - 1] != '/')
        i--;
    size_t len = n - i;
    if (len == 0 || (len == 1 && rel[i] == '.') || (len == 2 && rel[i] == '.' && rel[i + 1] == '.'))
        return cb_error_set(err, -EINVAL, "path: must name a file");
    *dir = cb_xstrndup(rel, i);
    *name = cb_xstrndup(rel + i, len);
    return 0;
}

/* Every operation runs as the container's user (this thread's fsuid and
 * fsgid, which also drops the file-system capabilities): the container's
 * own permissions apply, and its /tmp belongs to its user namespace,
 * where the host's root has no id to create files with. */
struct as_user {
    uid_t uid;
    gid_t gid;
};

static void unbecome(const struct as_user *was)
{
    setfsuid(was->uid);
    setfsgid(was->gid);
}

/* Fails closed: setfsuid returns the old id whether or not it changed
 * it, so the change is read back; -EPERM (restored) when it did not. */
static int become(const struct root *r, struct as_user *was, struct cb_error *err)
{
    uid_t want = r->id_base + CT_UID;
    was->uid = (uid_t)setfsuid(want);
    was->gid = (gid_t)setfsgid(want);
    if ((uid_t)setfsuid((uid_t)-1) == want && (gid_t)setfsgid((gid_t)-1) == want)
        return 0;
    unbecome(was);
    return cb_error_set(err, -EPERM, "cannot act as the container's user (is clawbox root?)");
}

/* ---- the operations ---- */

/* The directory of rel, opened inside the root as the container's user,
 * on the container's /tmp file system (where writes are allowed). */
static int writable_dir(const struct root *r, const char *dir, struct cb_error *err)
{
    struct as_user was;
    int fd = become(r, &was, err);
    if (fd < 0)
        return fd;
    fd = open_in(r->fd, dir, O_PATH | O_DIRECTORY, 0, 0, err);
    unbecome(&was);
    uint64_t mnt = fd >= 0 ? mount_id(fd) : 0;
    if (fd >= 0 && (mnt == 0 || (mnt != r->tmp_mnt && mnt != r->ws_mnt))) {
        close(fd);
        return cb_error_set(err, -EPERM,
                            "path: only the container's /tmp and its writable workspace take "
                            "writes; /%s is in neither",
                            dir);
    }
    return fd;
}

static json_t *entry(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return NULL;
    const char *type = S_ISREG(st.st_mode)   ? "file"
                       : S_ISDIR(st.st_mode) ? "directory"
                       : S_ISLNK(st.st_mode) ? "symlink"
                                             : "other";
    return json_pack("{s:o, s:s, s:I, s:i, s:I}", "name", cb_json_text(name, strlen(name)), "type",
                     type, "size", (json_int_t)st.st_size, "mode", (int)(st.st_mode & 07777),
                     "modified_ms",
                     (json_int_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

static int list_dir(const struct root *r, const char *rel, json_t **out, struct cb_error *err)
{
    struct as_user was;
    int fd = become(r, &was, err);
    if (fd < 0)
        return fd;
    fd = open_in(r->fd, rel, O_RDONLY | O_DIRECTORY, 0, 0, err);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        unbecome(&was);
        if (fd < 0)
            return fd;
        close(fd);
        return cb_error_set(err, -errno, "listing: %s", strerror(errno));
    }
    json_t **items = cb_xcalloc(LIST_MAX, sizeof(*items));
    size_t n = 0;
    bool more = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == LIST_MAX) {
            more = true;
            break;
        }
        json_t *it = entry(dirfd(d), e->d_name);
        if (it != NULL)
            items[n++] = it;
    }
    closedir(d);
    unbecome(&was);
    qsort(items, n, sizeof(items[0]), cmp_names);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, items[i]);
    free(items);
    *out = json_pack("{s:o, s:b}", "entries", a, "truncated", more);
    return 0;
}

/* A file to send (file_out.c): text redacted like container output;
 * other bytes sent as they are unless they hold a secret (then refused). */
static int read_ct_file(struct cb_ct_manager *m, const struct root *r, const char *rel,
                        struct cb_ct_file **out, struct cb_error *err)
{
    /* Found with O_PATH, and opened for reading only once it is known to
     * be a regular file: a device, a FIFO or a pty is never opened. */
    struct as_user was;
    int pfd = become(r, &was, err);
    if (pfd < 0)
        return pfd;
    pfd = open_in(r->fd, rel, O_PATH | O_NOFOLLOW, 0, 0, err);
    unbecome(&was);
    if (pfd < 0)
        return pfd;
    struct stat st;
    int rc = 0, fd = -1;
    uint64_t max = m->cfg->containers.max_file_bytes;
    if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = cb_error_set(err, -EISDIR, "path: not a regular file (add list=1 for a directory)");
    } else {
        char self[48];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
        rc = become(r, &was, err);
        fd = rc == 0 ? open(self, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) : -1;
        int e = errno;
        if (rc == 0)
            unbecome(&was);
        if (rc == 0 && fd < 0)
            rc = cb_error_set(err, -e, "/%s: %s", rel, strerror(e));
    }
    close(pfd);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size > max)
        rc = cb_error_set(err, -EFBIG, "path: %lld bytes, over [containers] max_file_bytes (%llu)",
                          (long long)st.st_size, (unsigned long long)max);
    if (rc == 0)
        rc = cb__ct_file_take(m, fd, max, out, err);
    close(fd);
    return rc;
}

/* Writes src (its len bytes, from its start; -1 when empty) to the file,
 * through a temporary file beside it renamed over it once whole. */
static int write_ct_file(const struct root *r, const char *path, const char *rel, int src,
                         uint64_t len, json_t **out, struct cb_error *err)
{
    _cleanup_free_ char *dir = NULL, *name = NULL;
    int rc = split_path(rel, &dir, &name, err);
    int dfd = rc == 0 ? writable_dir(r, dir, err) : rc;
    if (dfd < 0)
        return dfd;
    unsigned char rnd[6];
    char tmp[64], hex[13];
    cb_random_bytes(rnd, sizeof(rnd));
    cb_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(tmp, sizeof(tmp), ".upload-%s.partial", hex);
    struct as_user was;
    if ((rc = become(r, &was, err)) < 0) {
        close(dfd);
        return rc;
    }
    int fd =
        openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = cb_error_set(err, -errno, "path: %s", strerror(errno));
    else if (src >= 0 && (rc = lseek(src, 0, SEEK_SET) < 0 ? -errno : cb_copy_fd(src, fd)) < 0)
        rc = cb_error_set(err, rc, "writing: %s", strerror(-rc));
    if (fd >= 0)
        close(fd);
    if (rc == 0 && renameat(dfd, tmp, dfd, name) < 0)
        rc = cb_error_set(err, -errno, "path: %s", strerror(errno));
    if (rc < 0 && fd >= 0)
        unlinkat(dfd, tmp, 0);
    unbecome(&was);
    close(dfd);
    if (rc == 0)
        *out = json_pack("{s:s, s:I}", "path", path, "bytes", (json_int_t)len);
    return rc;
}

static int remove_file(const struct root *r, const char *rel, struct cb_error *err)
{
    _cleanup_free_ char *dir = NULL, *name = NULL;
    int rc = split_path(rel, &dir, &name, err);
    int dfd = rc == 0 ? writable_dir(r, dir, err) : rc;
    if (dfd < 0)
        return dfd;
    struct stat st;
    struct as_user was;
    if ((rc = become(r, &was, err)) < 0) {
        close(dfd);
        return rc;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = cb_error_set(err, -errno, "path: %s", strerror(errno));
    else if (unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
        rc = cb_error_set(err, -errno, "path: %s", strerror(errno));
    unbecome(&was);
    close(dfd);
    return rc;
}

int cb_ct_files(struct cb_ct_manager *m, const char *id, enum cb_ct_files_op op, const char *path,
                int src, uint64_t len, struct cb_ct_file **file, json_t **out, struct cb_error *err)
{
    const char *rel = "";
    int rc = relative(path, &rel, err);
    struct cb__ct_files_target t = {.init_pidfd = -1};
    if (rc == 0)
        rc = cb__ct_files_target(m, id, &t, err);
    struct root r = {.fd = -1};
    if (rc == 0)
        rc = open_root(&t, &r, err);
    if (rc == 0) {
        switch (op) {
        case CB_CT_FILES_READ:
            rc = read_ct_file(m, &r, rel, file, err);
            break;
        case CB_CT_FILES_LIST:
            rc = list_dir(&r, rel, out, err);
            break;
        case CB_CT_FILES_WRITE:
            rc = write_ct_file(&r, path, rel, src, len, out, err);
            break;
        case CB_CT_FILES_REMOVE:
            rc = remove_file(&r, rel, err);
            break;
        }
    }
    if (r.fd >= 0)
        close(r.fd);
    if (t.init_pidfd >= 0)
        close(t.init_pidfd);
    free(t.bind_target);
    return rc;
}
