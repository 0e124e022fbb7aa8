/* An exec's processes as the host sees them, through /proc: what
 * exec.c kills when an exec ends (see the top of exec.c). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "containers/internal.h"
#include "core/util.h"

/* Rounds of the session kill: each kills what it finds, until a round
 * finds nothing (a process forking while it is killed shows up in the
 * next). */
#define KILL_ROUNDS 50

/* Field `index` (0-based, after the command's closing parenthesis:
 * 0 state, 1 ppid, 2 pgrp, 3 session) of /proc/<pid>/stat, or -1; the
 * state as a letter in *state when not NULL. */
long long cb__ct_stat_field(pid_t pid, int index, char *state)
{
    char path[48], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -1;
    if (state != NULL)
        *state = p[2];
    for (int i = -1; i < index; i++)
        if ((p = strchr(p + 1, ' ')) == NULL)
            return -1;
    const char *start = p + 1, *end = strchr(start, ' ');
    uint64_t v;
    if (end == NULL || cb_parse_u64(start, (size_t)(end - start), &v) < 0 || v > INT32_MAX)
        return -1;
    return (long long)v;
}

/* The inode of pid's PID namespace, or 0. */
ino_t cb__ct_pid_ns(pid_t pid)
{
    char path[48];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Whether a process in session sid, started at `start`, is one of s's. */
static bool in_sessions(const struct cb__ct_sessions *s, long long sid, long long start)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->sids[i] > 1 && sid == s->sids[i])
            return true;
    return s->lo < s->hi && sid > s->lo && sid < s->hi && start >= s->since;
}

void cb__ct_kill_sessions(ino_t ns, const struct cb__ct_sessions *s)
{
    for (int round = 0; ns != 0 && round < KILL_ROUNDS; round++) {
        DIR *d = opendir("/proc");
        if (d == NULL)
            return;
        size_t found = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            uint64_t pid;
            char state = 0;
            if (cb_parse_u64(e->d_name, strlen(e->d_name), &pid) < 0 || pid > INT32_MAX)
                continue;
            /* A first look without a pidfd skips the processes of other
             * sessions (nearly all) cheaply; for one of ours the pidfd is
             * taken and everything read again: what is read then is of
             * the process it holds, or of none, so a pid reused meanwhile
             * is not hit. */
            if (!in_sessions(s, cb__ct_stat_field((pid_t)pid, 3, NULL),
                             cb__ct_stat_field((pid_t)pid, 19, NULL)))
                continue;
            int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
            if (fd < 0)
                continue;
            long long sid = cb__ct_stat_field((pid_t)pid, 3, &state);
            long long start = cb__ct_stat_field((pid_t)pid, 19, NULL);
            if (in_sessions(s, sid, start) && state != 'Z' && state != 'X' &&
                cb__ct_pid_ns((pid_t)pid) == ns &&
                syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0)
                found++;
            close(fd);
        }
        closedir(d);
        if (found == 0)
            return;
        usleep(1000);
    }
}
