/* Run inside a container by test_bundle (linked statically, so that it
 * needs nothing from the image): tries what the hardened config must
 * forbid, at the level of the system calls, and prints one `name=result`
 * line per check, where result is "ok" or the errno name, or for a child
 * "signal N" / "exit N". Never run it on the host as root. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void report(const char *name, long r)
{
    printf("%s=%s\n", name, r < 0 ? strerrorname_np(errno) : "ok");
}

/* Runs fn in a child and reports how the child ended. */
static void in_child(const char *name, void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        printf("%s=fork %s\n", name, strerrorname_np(errno));
        return;
    }
    if (WIFSIGNALED(st))
        printf("%s=signal %d\n", name, WTERMSIG(st));
    else
        printf("%s=exit %d\n", name, WEXITSTATUS(st));
}

/* getpid through the i386 entry point: another architecture. */
static void int80(void)
{
    long r = 20;
    __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
}

/* clone(2) or clone3(2) that succeeded: the child leaves at once. */
static void reap(const char *name, long r)
{
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    report(name, r);
}

static void namespaces(void)
{
    struct clone_args ca = {.exit_signal = SIGCHLD};
    reap("clone3", syscall(SYS_clone3, &ca, sizeof(ca)));
    reap("clone_plain", syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    reap("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    reap("clone_newnet", syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("unshare_mount", unshare(CLONE_NEWNS));
    report("setns", setns(0, 0));
}

static void privileged(void)
{
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("umount", umount2("/proc", MNT_DETACH));
    report("chroot", chroot("/tmp"));
    report("setuid0", setuid(0));
    report("mknod", mknod("/tmp/null", S_IFCHR | 0666, makedev(1, 3)));
    report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
    report("io_uring", syscall(SYS_io_uring_setup, 1, (char[120]){0}));
    report("personality_exec", personality(READ_IMPLIES_EXEC));
    report("personality_query", personality(0xffffffff));
    report("vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
    report("inet", socket(AF_INET, SOCK_STREAM, 0));
    report("ptrace_attach", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
}

static void files(void)
{
    report("write_root", open("/probe-written", O_WRONLY | O_CREAT, 0644));
    report("write_etc", open("/etc/resolv.conf", O_WRONLY));
    report("write_proxy_dir", open("/run/clawbox/written", O_WRONLY | O_CREAT, 0644));
    report("read_proxy_dir", open("/run/clawbox/present", O_RDONLY));
    report("write_workspace", open("/workspace/written", O_WRONLY | O_CREAT, 0644));
    report("write_tmp", open("/tmp/x.sh", O_WRONLY | O_CREAT, 0755));
    FILE *f = fopen("/tmp/x.sh", "w");
    if (f != NULL) {
        fputs("#!/bin/sh\nexit 0\n", f);
        fclose(f);
    }
    report("exec_tmp", execve("/tmp/x.sh", (char *[]){"x", NULL}, (char *[]){NULL}));
    report("proc_sys", open("/proc/sys/kernel/hostname", O_WRONLY));
}

int main(void)
{
    /* Its checks mount, unmount and chroot: as root outside a container
     * they would succeed and damage the host. */
    if (geteuid() == 0) {
        fputs("ct-probe: refusing to run as root; it belongs inside a test container\n", stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    namespaces();
    privileged();
    files();
    in_child("int80", int80);
    return 0;
}
