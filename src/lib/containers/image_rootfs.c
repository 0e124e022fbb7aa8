/* Work on an unpacked rootfs from the host side. A rootfs is outside data
 * (it came from an archive): every step goes through directory
 * descriptors opened with O_NOFOLLOW, so that a link in the rootfs (say
 * /tmp -> /etc) never makes us write outside it. */
#include "containers/image_store.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ACCOUNTS_MAX (4 * 1024 * 1024)
#define AGENT_ID     "1000"

/* Makes name (in dirfd) a directory of `mode`, replacing a link or a file
 * of that name. Returns an fd of it, or -errno. */
static int ensure_dir(int dirfd, const char *name, mode_t mode)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
        unlinkat(dirfd, name, 0) < 0)
        return -errno;
    if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* Makes name (in dirfd) a regular file, keeping one that is: a bind mount
 * target. A link is replaced by an empty file. */
static int ensure_file(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISREG(st.st_mode))
            return 0;
        if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
            return -errno;
    }
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* Whether some line of an /etc/passwd or /etc/group text has `value` as
 * field number `field` (0-based). */
static bool has_field(const char *text, size_t len, int field, const char *value)
{
    size_t vl = strlen(value);
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        const char *p = line;
        for (int i = 0; i < field && p != NULL; i++) {
            p = memchr(p, ':', (size_t)(eol - p));
            p = p ? p + 1 : NULL;
        }
        if (p != NULL) {
            const char *q = memchr(p, ':', (size_t)(eol - p));
            size_t fl = (size_t)((q ? q : eol) - p);
            if (fl == vl && memcmp(p, value, vl) == 0)
                return true;
        }
        line = eol + 1;
    }
    return false;
}

/* Adds an entry for id 1000 to etc/<file> unless it has one. `fresh` is
 * the content when the file is missing; the line is the account name
 * ("agent", or "clawbox-agent" when "agent" is taken) and `rest`. */
static int ensure_account(int etcfd, const char *file, const char *fresh, const char *rest,
                          struct cb_error *err)
{
    struct cb_file f;
    struct cb_buf b;
    int r = cb_file_load(&f, etcfd, file, ACCOUNTS_MAX, CB_FILE_NOFOLLOW, err);
    cb_buf_init(&b, ACCOUNTS_MAX + 1024);
    if (r == 0)
        cb_buf_append(&b, f.buf.data, f.buf.len);
    else
        cb_buf_puts(&b, fresh);
    cb_file_close(&f);
    cb_error_clear(err);
    r = 0;
    if (!has_field(b.data, b.len, 2, AGENT_ID)) {
        if (b.len > 0 && b.data[b.len - 1] != '\n')
            cb_buf_puts(&b, "\n");
        cb_buf_puts(&b, has_field(b.data, b.len, 0, "agent") ? "clawbox-agent" : "agent");
        cb_buf_puts(&b, rest);
        _cleanup_free_ char *tmp = cb_xasprintf("%s.clawbox-new", file);
        int fd = openat(etcfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        r = fd < 0 ? -errno : cb_write_all(fd, b.data, b.len);
        if (fd >= 0 && (fchmod(fd, 0644) < 0 || close(fd) < 0) && r == 0)
            r = -errno;
        if (r == 0 && renameat(etcfd, tmp, etcfd, file) < 0)
            r = -errno;
        if (r < 0)
            cb_error_set(err, r, "writing etc/%s of the image: %s", file, strerror(-r));
    }
    cb_buf_free(&b);
    return r;
}

static int prepare_etc(int rfd, struct cb_error *err)
{
    _cleanup_close_ int etc = ensure_dir(rfd, "etc", 0755);
    if (etc < 0)
        return cb_error_set(err, etc, "making etc/ in the image: %s", strerror(-etc));
    static const char *const files[] = {"resolv.conf", "hosts"};
    for (size_t i = 0; i < CB_ARRAY_LEN(files); i++) {
        int r = ensure_file(etc, files[i]);
        if (r < 0)
            return cb_error_set(err, r, "making etc/%s in the image: %s", files[i], strerror(-r));
    }
    int r = ensure_account(etc, "passwd", "root:x:0:0:root:/root:/bin/sh\n",
                           ":x:1000:1000:agent:/workspace:/bin/sh\n", err);
    if (r == 0)
        r = ensure_account(etc, "group", "root:x:0:\n", ":x:1000:\n", err);
    return r;
}

int cb__image_rootfs_prepare(const char *rootfs, struct cb_error *err)
{
    static const struct {
        const char *name;
        mode_t mode;
    } dirs[] = {{"proc", 0555}, {"dev", 0755}, {"sys", 0555},
                {"tmp", 01777}, {"run", 0755}, {"workspace", 0755}};
    _cleanup_close_ int rfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rfd < 0)
        return cb_error_set(err, -errno, "opening %s: %s", rootfs, strerror(errno));
    if (fchmod(rfd, 0755) < 0)
        return cb_error_set(err, -errno, "chmod %s: %s", rootfs, strerror(errno));
    for (size_t i = 0; i < CB_ARRAY_LEN(dirs); i++) {
        int fd = ensure_dir(rfd, dirs[i].name, dirs[i].mode);
        if (fd < 0)
            return cb_error_set(err, fd, "making %s/ in the image: %s", dirs[i].name,
                                strerror(-fd));
        int sub = strcmp(dirs[i].name, "run") == 0 ? ensure_dir(fd, "clawbox", 0755) : 0;
        close(fd);
        if (sub < 0)
            return cb_error_set(err, sub, "making run/clawbox/ in the image: %s", strerror(-sub));
        if (sub > 0)
            close(sub);
    }
    return prepare_etc(rfd, err);
}

unsigned long long cb__image_tree_size(const char *dir)
{
    char *paths[] = {(char *)dir, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, NULL);
    unsigned long long total = 0;
    FTSENT *e;
    while (fts != NULL && (e = fts_read(fts)) != NULL)
        if (e->fts_info == FTS_F || e->fts_info == FTS_SL || e->fts_info == FTS_SLNONE)
            total += (unsigned long long)e->fts_statp->st_size;
    if (fts != NULL)
        fts_close(fts);
    return total;
}

void cb__image_rm_tree(const char *path)
{
    char *paths[] = {(char *)path, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, NULL);
    FTSENT *e;
    while (fts != NULL && (e = fts_read(fts)) != NULL) {
        if (e->fts_info == FTS_D)
            continue;
        if (e->fts_info == FTS_DP)
            rmdir(e->fts_accpath);
        else
            unlink(e->fts_accpath);
    }
    if (fts != NULL)
        fts_close(fts);
}

bool cb__image_is_static(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    Elf64_Ehdr eh;
    if (fd < 0 || cb_pread_all(fd, &eh, sizeof(eh), 0) < 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        return false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (cb_pread_all(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) < 0)
            return false;
        if (ph.p_type == PT_INTERP)
            return false;
    }
    return true;
}

/* Opens the directory that holds the last component of rel inside the
 * rootfs, making missing directories (0755) and refusing links. *last
 * points into rel. Returns the fd or -errno. */
static int open_parent(const char *rootfs, const char *rel, const char **last)
{
    int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    const char *p = rel;
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        _cleanup_free_ char *comp = cb_xstrndup(p, (size_t)(slash - p));
        int next = -1;
        if (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST)
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = next < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
            return r;
        fd = next;
    }
    *last = p;
    return fd;
}

int cb__image_copy_in(const char *src, const char *rootfs, const char *rel, struct cb_error *err)
{
    const char *last = NULL;
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return cb_error_set(err, -errno, "opening %s: %s", src, strerror(errno));
    _cleanup_close_ int dfd = open_parent(rootfs, rel, &last);
    if (dfd < 0)
        return cb_error_set(err, dfd, "making the directory of %s in the image: %s", rel,
                            strerror(-dfd));
    _cleanup_free_ char *tmp = cb_xasprintf("%s.clawbox-new", last);
    int out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0755);
    int r = out < 0 ? -errno : cb_copy_fd(in, out);
    if (out >= 0 && (fchmod(out, 0755) < 0 || close(out) < 0) && r == 0)
        r = -errno;
    if (r == 0 && renameat(dfd, tmp, dfd, last) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(dfd, tmp, 0);
        return cb_error_set(err, r, "copying %s to %s in the image: %s", src, rel, strerror(-r));
    }
    return 0;
}

int cb__image_symlink_in(const char *rootfs, const char *rel, const char *target,
                         struct cb_error *err)
{
    const char *last = NULL;
    _cleanup_close_ int dfd = open_parent(rootfs, rel, &last);
    if (dfd < 0)
        return cb_error_set(err, dfd, "making the directory of %s in the image: %s", rel,
                            strerror(-dfd));
    if (symlinkat(target, dfd, last) < 0 && errno != EEXIST)
        return cb_error_set(err, -errno, "linking %s in the image: %s", rel, strerror(errno));
    return 0;
}
