/* The data directory's server lock: one `clawbox serve` per data_dir. Two
 * servers on one directory would share the state database, the tool cache
 * and the audit chain head without knowing of each other.
 *
 * It is a POSIX record lock (fcntl F_SETLK) on <data_dir>/server.lock, not
 * flock(2): a flock belongs to the open file description, which a fork
 * shares, so the compile children (forks of the server that run for up to
 * the compile timeout) would keep the directory locked after the server
 * died. A record lock belongs to the process: no child inherits it, and it
 * goes when the server exits, however it exits. Its one pitfall, that
 * closing any descriptor of the file drops the lock, does not arise
 * because nothing else in the process opens this file. */
#include "state/state.h"

#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void whole_file(struct flock *l)
{
    memset(l, 0, sizeof(*l));
    l->l_type = F_WRLCK;
    l->l_whence = SEEK_SET;
}

/* The refusal when another process holds the lock, naming it. */
static int held_elsewhere(int fd, const char *dir, struct cb_error *err)
{
    struct flock l;
    whole_file(&l);
    if (fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK)
        return cb_error_set(err, -EBUSY,
                            "another clawbox server (pid %ld) is running on data directory %s; "
                            "stop it first, or give this one another server.data_dir",
                            (long)l.l_pid, dir);
    return cb_error_set(err, -EBUSY,
                        "another clawbox server is running on data directory %s; stop it "
                        "first, or give this one another server.data_dir",
                        dir);
}

/* Records our pid in the file, for whoever looks at it by hand. */
static void write_pid(int fd)
{
    char pid[24];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        return; /* only informative: the lock itself is what counts */
}

int cb_state_lock_data_dir(const char *dir, int *fd_out, struct cb_error *err)
{
    *fd_out = -1;
    int r = cb_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = cb_xasprintf("%s/%s", dir, CB_STATE_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return cb_error_set(err, -errno, "opening %s: %s", path, strerror(errno));
    struct flock l;
    whole_file(&l);
    if (fcntl(fd, F_SETLK, &l) < 0) {
        int e = errno;
        r = e == EACCES || e == EAGAIN ? held_elsewhere(fd, dir, err)
                                       : cb_error_set(err, -e, "locking %s: %s", path, strerror(e));
        close(fd);
        return r;
    }
    write_pid(fd);
    *fd_out = fd;
    return 0;
}
