/* A container init's pidfd, trusted only once the process it names is
 * seen in the container's cgroup: between the monitor's "ok PID" and the
 * pidfd_open the init may have ended and its pid gone to another process
 * (the monitor is its subreaper and reaps it), and that process's root
 * must never be taken for the container's. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "containers/internal.h"
#include "core/file.h"

/* A line of /proc/<pid>/cgroup ("0::<path>" on the unified hierarchy,
 * "N:<controllers>:<path>" on v1), the path as the server's cgroup
 * namespace shows it, ends in the container's cgroupsPath. */
static bool in_cgroup(pid_t pid, const char *id)
{
    char path[48], want[CB__CT_ID_MAX + 16];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    int n = snprintf(want, sizeof(want), "/clawbox/%s\n", id);
    struct cb_file f;
    struct cb_error err = {0};
    if (n < 0 || (size_t)n >= sizeof(want))
        return false;
    if (cb_file_load(&f, AT_FDCWD, path, 4096, 0, &err) < 0) {
        cb_file_close(&f); /* the init may have ended: its /proc entry reads ESRCH */
        return false;
    }
    const char *line = f.buf.data, *end = f.buf.data + f.buf.len;
    bool found = false;
    while (!found && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl + 1 : end;
        size_t len = (size_t)(stop - line);
        found = len >= (size_t)n && memcmp(stop - n, want, (size_t)n) == 0;
        line = stop;
    }
    cb_file_close(&f);
    return found;
}

bool cb__ct_init_alive(int init_pidfd)
{
    struct pollfd p = {init_pidfd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

int cb__ct_init_pidfd(pid_t pid, const char *id)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    /* Checked after the pidfd is held: a live pidfd after the check means
     * the process checked is the one it names. */
    if (!in_cgroup(pid, id) || !cb__ct_init_alive(fd)) {
        close(fd);
        return -1;
    }
    return fd;
}
