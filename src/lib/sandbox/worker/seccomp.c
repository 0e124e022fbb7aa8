/* The filter allows what running a translated tool needs: memory
 * management without executable mappings, reads and writes on the one
 * socket it has, clocks, randomness and exit. Opening files, sockets,
 * exec, fork/clone and executable mappings fail with EPERM; any other
 * system call kills the process. */
#include "sandbox/worker/seccomp.h"
#include "core/util.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

static const int allowed_syscalls[] = {
    SCMP_SYS(read),           SCMP_SYS(write),           SCMP_SYS(readv),
    SCMP_SYS(writev),         SCMP_SYS(recvmsg),         SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),       SCMP_SYS(sendto),          SCMP_SYS(close),
    SCMP_SYS(exit),           SCMP_SYS(exit_group),      SCMP_SYS(brk),
    SCMP_SYS(munmap),         SCMP_SYS(mremap),          SCMP_SYS(madvise),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),    SCMP_SYS(sigaltstack),
    SCMP_SYS(clock_gettime),  SCMP_SYS(clock_getres),    SCMP_SYS(gettimeofday),
    SCMP_SYS(nanosleep),      SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom),
    SCMP_SYS(futex),          SCMP_SYS(sched_yield),     SCMP_SYS(getpid),
    SCMP_SYS(gettid),         SCMP_SYS(fstat),           SCMP_SYS(lseek),
    SCMP_SYS(tgkill),         SCMP_SYS(rt_sigaction),    SCMP_SYS(prlimit64),
};

static const int denied_syscalls[] = {
    SCMP_SYS(open),         SCMP_SYS(openat),     SCMP_SYS(openat2),       SCMP_SYS(creat),
    SCMP_SYS(socket),       SCMP_SYS(socketpair), SCMP_SYS(connect),       SCMP_SYS(bind),
    SCMP_SYS(execve),       SCMP_SYS(execveat),   SCMP_SYS(fork),          SCMP_SYS(vfork),
    SCMP_SYS(clone),        SCMP_SYS(clone3),     SCMP_SYS(ptrace),        SCMP_SYS(kill),
    SCMP_SYS(memfd_create), SCMP_SYS(unlink),     SCMP_SYS(unlinkat),      SCMP_SYS(mkdir),
    SCMP_SYS(newfstatat),   SCMP_SYS(stat),       SCMP_SYS(lstat),         SCMP_SYS(access),
    SCMP_SYS(faccessat),    SCMP_SYS(readlink),   SCMP_SYS(readlinkat),    SCMP_SYS(prctl),
    SCMP_SYS(seccomp),      SCMP_SYS(setrlimit),  SCMP_SYS(pkey_mprotect),
};

static int add_rules(scmp_filter_ctx ctx)
{
    int r = 0;
    for (size_t i = 0; i < CB_ARRAY_LEN(allowed_syscalls) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
    for (size_t i = 0; i < CB_ARRAY_LEN(denied_syscalls) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied_syscalls[i], 0);
    /* mmap and mprotect only without PROT_EXEC. */
    const int mem[] = {SCMP_SYS(mmap), SCMP_SYS(mprotect)};
    for (size_t i = 0; i < CB_ARRAY_LEN(mem) && r == 0; i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, mem[i], 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r == 0)
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), mem[i], 1,
                                 SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
    }
    return r;
}

/* Exports the compiled BPF through a pipe into memory. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog, struct cb_error *err)
{
    int p[2];
    char buf[65536];
    if (pipe(p) < 0)
        return cb_error_set(err, -errno, "pipe: %s", strerror(errno));
    int r = seccomp_export_bpf(ctx, p[1]);
    close(p[1]);
    ssize_t n = r == 0 ? read(p[0], buf, sizeof(buf)) : -1;
    close(p[0]);
    if (n <= 0 || n % (ssize_t)sizeof(struct sock_filter) != 0)
        return cb_error_set(err, -EINVAL, "exporting the seccomp filter failed");
    prog->len = (unsigned short)(n / (ssize_t)sizeof(struct sock_filter));
    prog->filter = cb_xmalloc((size_t)n);
    memcpy(prog->filter, buf, (size_t)n);
    return 0;
}

int cb__seccomp_build(struct sock_fprog *prog, struct cb_error *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return cb_error_set(err, -ENOMEM, "seccomp_init failed");
    int r = add_rules(ctx);
    if (r < 0)
        r = cb_error_set(err, r, "building the seccomp filter: %s", strerror(-r));
    else
        r = export_bpf(ctx, prog, err);
    seccomp_release(ctx);
    return r;
}

int cb__seccomp_load(const struct sock_fprog *prog)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0)
        return -errno;
    return 0;
}
