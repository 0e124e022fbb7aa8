/* A static probe the container tests run inside real containers. It reports
 * what the sandbox looks like from inside and tries what it must forbid;
 * each line is "name value", so a test can assert them one by one.
 *
 *   ctprobe hardening        identity, capabilities, seccomp, interfaces,
 *                            mounts, and the forbidden operations
 *   ctprobe http SOCK        sends stdin (a raw HTTP request) over the Unix
 *                            socket SOCK and prints the raw answer
 *   ctprobe fork N           tries to start N processes at once
 *   ctprobe alloc MB         allocates and touches MB MiB
 *   ctprobe print N          writes N bytes of 'x' to stdout */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>

static void status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':') {
            char *v = line + strlen(name) + 1;
            v += strspn(v, " \t");
            printf("%s %s", name, v);
        }
    if (f)
        fclose(f);
}

static void result(const char *what, int rc)
{
    printf("%s %s\n", what, rc == 0 ? "allowed" : strerror(errno));
}

/* Runs fn in a child and reports how the child ended (a seccomp kill shows
 * as SIGSYS). */
static void in_child(const char *what, void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s signal %d\n", what, WTERMSIG(st));
    else
        printf("%s exit %d\n", what, WEXITSTATUS(st));
}

static void i386_syscall(void)
{
    /* getpid through the 32-bit ABI: x86_64-only seccomp kills it. */
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory", "r8", "r9", "r10", "r11");
    (void)r;
}

static void interfaces(void)
{
    FILE *f = fopen("/proc/net/dev", "r");
    char line[512];
    printf("interfaces");
    for (int n = 0; f && fgets(line, sizeof(line), f); n++) {
        char *colon = strchr(line, ':');
        if (n < 2 || colon == NULL)
            continue;
        *colon = '\0';
        printf(" %s", line + strspn(line, " "));
    }
    printf("\n");
    if (f)
        fclose(f);
}

static void mount_flags(const char *target)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    char dev[256], dir[256], type[64], opts[512];
    while (f && fscanf(f, "%255s %255s %63s %511s %*d %*d", dev, dir, type, opts) == 4)
        if (strcmp(dir, target) == 0)
            printf("mount %s %s %s\n", target, type, opts);
    if (f)
        fclose(f);
}

static int hardening(void)
{
    printf("uid %d\ngid %d\n", (int)getuid(), (int)getgid());
    status_field("CapEff");
    status_field("CapPrm");
    status_field("CapBnd");
    status_field("NoNewPrivs");
    status_field("Seccomp");
    interfaces();
    mount_flags("/");
    mount_flags("/tmp");
    mount_flags("/run/clawbox");
    result("write_root", open("/probe", O_CREAT | O_WRONLY, 0644) < 0 ? -1 : 0);
    int fd = open("/tmp/probe", O_CREAT | O_WRONLY, 0755);
    result("write_tmp", fd < 0 ? -1 : 0);
    if (fd >= 0)
        close(fd);
    result("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    result("unshare_user", unshare(CLONE_NEWUSER));
    result("unshare_net", unshare(CLONE_NEWNET));
    result("setuid_0", setuid(0));
    result("keyctl", (int)syscall(SYS_keyctl, 0, 0, 0, 0, 0) < 0 ? -1 : 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(0x01010101)};
    result("connect_out", s < 0 ? -1 : connect(s, (struct sockaddr *)&a, sizeof(a)));
    result("raw_socket", socket(AF_PACKET, SOCK_RAW, 0) < 0 ? -1 : 0);
    in_child("i386_syscall", i386_syscall);
    printf("hostname ");
    fflush(stdout);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    printf("%s\n", host);
    return 0;
}

static int http(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        printf("connect %s\n", strerror(errno));
        return 1;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(0, buf, sizeof(buf))) > 0)
        if (write(s, buf, (size_t)n) != n)
            return 1;
    shutdown(s, SHUT_WR);
    while ((n = read(s, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}

static int forks(long n)
{
    long ok = 0;
    int err = 0;
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            err = errno;
            break;
        }
        ok++;
    }
    printf("forked %ld\nfork_error %s\n", ok, err ? strerror(err) : "none");
    fflush(stdout);
    kill(0, SIGKILL);
    return 0;
}

static int alloc(long mb)
{
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) {
            printf("malloc failed at %ld MiB\n", i);
            return 1;
        }
        memset(p, 1, 1 << 20);
    }
    printf("allocated %ld MiB\n", mb);
    return 0;
}

static int print(long n)
{
    static char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    while (n > 0) {
        size_t k = n < (long)sizeof(chunk) ? (size_t)n : sizeof(chunk);
        if (fwrite(chunk, 1, k, stdout) != k)
            return 1;
        n -= (long)k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* It tries to mount over /tmp and the like: never as root on a host. */
    if (argc == 2 && strcmp(argv[1], "hardening") == 0 && getuid() == 0) {
        fprintf(stderr, "ctprobe: refusing to probe as root (run it in a container)\n");
        return 2;
    }
    if (argc == 2 && strcmp(argv[1], "hardening") == 0)
        return hardening();
    if (argc == 3 && strcmp(argv[1], "http") == 0)
        return http(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fork") == 0)
        return forks(strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "alloc") == 0)
        return alloc(strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "print") == 0)
        return print(strtol(argv[2], NULL, 10));
    fprintf(stderr, "usage: ctprobe hardening|http SOCK|fork N|alloc MB|print N\n");
    return 2;
}
