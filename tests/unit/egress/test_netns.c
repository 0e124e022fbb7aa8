/* A real transparent-egress namespace (root only; skipped otherwise): a
 * forked child joins it with setns and tries to get out, while this
 * process serves the listeners and the DNS stub the namespace handed back.
 * Also prints the median cost of creating and destroying one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "egress/dns.h"
#include "egress/netns.h"
#include "egress/sniff.h"
#include "rm_tree.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cb-egress-XXXXXX");
    return mkdtemp(dir) == NULL;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(dir);
    return 0;
}

/* Whether a mount point at path appears in this process's mount table. */
static bool mounted(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    size_t n = strlen(path);
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        /* The fifth field is the mount point. */
        char *p = line;
        for (int i = 0; i < 4 && p != NULL; i++) {
            p = strchr(p, ' ');
            p = p != NULL ? p + 1 : NULL;
        }
        found = p != NULL && strncmp(p, path, n) == 0 && p[n] == ' ';
    }
    fclose(f);
    return found;
}

static struct cb_egress_netns *create(const char *name, uint16_t port)
{
    struct cb_egress_netns_opts o = {.dir = dir, .name = name, .proxy_port = port};
    struct cb_egress_netns *ns = NULL;
    struct cb_error err = {0};
    int rc = cb_egress_netns_create(&o, &ns, &err);
    if (rc != 0)
        fail_msg("create: %s", err.msg);
    return ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void create_destroy_and_cost(void **state)
{
    (void)state;
    enum { N = 21 };
    uint64_t made[N], gone[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "ct-%d", i);
        uint64_t t0 = cb_now_mono_ns();
        struct cb_egress_netns *ns = create(name, 0);
        uint64_t t1 = cb_now_mono_ns();
        assert_int_equal(ns->proxy_port, CB_EGRESS_PROXY_PORT);
        assert_true(ns->tcp4 >= 0 && ns->tcp6 >= 0 && ns->dns4 >= 0 && ns->dns6 >= 0);
        assert_true(mounted(ns->path));
        char *path = cb_xstrdup(ns->path);
        cb_egress_netns_destroy(ns);
        gone[i] = cb_now_mono_ns() - t1;
        made[i] = t1 - t0;
        assert_false(mounted(path));
        assert_int_equal(access(path, F_OK), -1);
        free(path);
    }
    qsort(made, N, sizeof(made[0]), cmp_u64);
    qsort(gone, N, sizeof(gone[0]), cmp_u64);
    printf("# network namespace: create median %.2f ms (min %.2f, max %.2f), destroy median "
           "%.2f ms, over %d\n",
           made[N / 2] / 1e6, made[0] / 1e6, made[N - 1] / 1e6, gone[N / 2] / 1e6, N);
}

static void create_refuses(void **state)
{
    (void)state;
    struct cb_error err = {0};
    struct cb_egress_netns *ns = NULL;
    struct cb_egress_netns_opts bad[] = {
        {.dir = dir, .name = "a/b"},
        {.dir = dir, .name = ""},
        {.dir = "relative", .name = "x"},
        {.dir = dir, .name = "x", .proxy_port = 53},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cb_egress_netns_create(&bad[i], &ns, &err), -EINVAL);
        assert_null(ns);
    }
    /* An existing file is not replaced, and is still there after. */
    struct cb_egress_netns *first = create("taken", 0);
    struct cb_egress_netns_opts again = {.dir = dir, .name = "taken"};
    assert_int_equal(cb_egress_netns_create(&again, &ns, &err), -EEXIST);
    assert_non_null(strstr(err.msg, "taken: creating the file: File exists"));
    assert_true(mounted(first->path));
    cb_egress_netns_destroy(first);
    struct cb_egress_netns_opts nodir = {.dir = "/nonexistent-cb-dir", .name = "x"};
    assert_int_equal(cb_egress_netns_create(&nodir, &ns, &err), -ENOENT);
    cb_egress_netns_destroy(NULL);
}

/* ------------------------- the child's attempts ------------------------- */

/* What the child reports, one code per failed step (exit status). */
enum {
    OK = 0,
    E_SETNS = 10,
    E_TCP4,
    E_TCP6,
    E_EXPLICIT,
    E_DNS_ALLOWED,
    E_DNS_DENIED,
    E_DNS6,
    E_UDP_OTHER,
    E_UDP6_OTHER,
    E_ICMP,
    E_LOOPBACK,
};

/* addr:port as a socket address of the family; returns its length. */
static socklen_t sockaddr_of(int family, const char *addr, uint16_t port,
                             struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        return sizeof(*a);
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    return sizeof(*a);
}

static int sock_to(int family, int type, const char *addr, uint16_t port)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(family, addr, port, &ss);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A TCP connection that gets through, with one byte sent on it. */
static bool tcp_reaches(int family, const char *addr, uint16_t port)
{
    int fd = sock_to(family, SOCK_STREAM, addr, port);
    if (fd < 0)
        return false;
    bool ok = send(fd, "x", 1, MSG_NOSIGNAL) == 1;
    char c;
    ok = ok && recv(fd, &c, 1, 0) == 1 && c == 'y';
    close(fd);
    return ok;
}

/* Sends an A query for name to addr:53; returns the rcode and the first
 * answer's 4 address bytes in a4 (-1 on no answer). */
static int dns_ask(int family, const char *addr, const char *name, uint8_t a4[4])
{
    int fd = sock_to(family, SOCK_DGRAM, addr, 53);
    if (fd < 0)
        return -1;
    uint8_t q[300] = {0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t n = 12;
    for (const char *p = name; *p;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        q[n++] = (uint8_t)l;
        memcpy(q + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    const uint8_t tail[] = {0, 0, 1, 0, 1};
    memcpy(q + n, tail, sizeof(tail));
    n += sizeof(tail);
    uint8_t r[CB_EGRESS_DNS_UDP_MAX];
    ssize_t got = -1;
    if (send(fd, q, n, 0) == (ssize_t)n)
        got = recv(fd, r, sizeof(r), 0);
    close(fd);
    if (got < 12 || r[0] != 0x42 || r[1] != 0x42)
        return -1;
    if (r[7] == 1 && (size_t)got >= n + 16)
        memcpy(a4, r + n + 12, 4);
    return r[3] & 0xf;
}

/* A listener of the child's own on 127.0.0.1:8080 answers it. */
static bool loopback_stays_local(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0)
        return false;
    int c = sock_to(AF_INET, SOCK_STREAM, "127.0.0.1", 8080);
    int s = c >= 0 ? accept(l, NULL, NULL) : -1;
    bool ok = s >= 0 && send(c, "z", 1, 0) == 1;
    char ch = 0;
    ok = ok && recv(s, &ch, 1, 0) == 1 && ch == 'z';
    close(s);
    close(c);
    close(l);
    return ok;
}

/* A datagram to addr:port is refused at once (EPERM from the reject
 * rule), not sent and left to time out. */
static bool refused(int family, int type, int proto, const char *addr, uint16_t port)
{
    int fd = socket(family, type | SOCK_CLOEXEC, proto);
    if (fd < 0)
        return false;
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(family, addr, port, &ss);
    /* An ICMP echo request, for the raw socket; a byte of payload for UDP. */
    const uint8_t echo[8] = {8, 0, 0xf7, 0xff, 0, 0, 0, 0};
    ssize_t r =
        sendto(fd, echo, type == SOCK_RAW ? sizeof(echo) : 1, 0, (struct sockaddr *)&ss, len);
    bool ok = r == -1 && errno == EPERM;
    close(fd);
    return ok;
}

static int child(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
        return E_SETNS;
    close(fd);
    uint8_t a4[4] = {0};
    if (!tcp_reaches(AF_INET, "203.0.113.5", 80))
        return E_TCP4;
    if (!tcp_reaches(AF_INET6, "2001:db8::5", 443))
        return E_TCP6;
    if (!tcp_reaches(AF_INET, "127.0.0.1", CB_EGRESS_PROXY_PORT))
        return E_EXPLICIT;
    if (dns_ask(AF_INET, "8.8.8.8", "allowed.example", a4) != CB_EGRESS_DNS_NOERROR ||
        memcmp(a4, (uint8_t[]){198, 18, 0, 1}, 4) != 0)
        return E_DNS_ALLOWED;
    if (dns_ask(AF_INET, "8.8.8.8", "denied.example", a4) != CB_EGRESS_DNS_NXDOMAIN)
        return E_DNS_DENIED;
    if (dns_ask(AF_INET6, "2001:4860:4860::8888", "allowed.example", a4) != CB_EGRESS_DNS_NOERROR)
        return E_DNS6;
    if (!refused(AF_INET, SOCK_DGRAM, 0, "8.8.8.8", 123))
        return E_UDP_OTHER;
    if (!refused(AF_INET6, SOCK_DGRAM, 0, "2001:db8::5", 123))
        return E_UDP6_OTHER;
    /* The child is root of the initial user namespace, so it may open a
     * raw socket; the rules still stop what it sends. */
    if (!refused(AF_INET, SOCK_RAW, IPPROTO_ICMP, "203.0.113.5", 0))
        return E_ICMP;
    if (!loopback_stays_local())
        return E_LOOPBACK;
    return OK;
}

/* ------------------------- this side: the server ------------------------ */

static bool allow(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "allowed.example") == 0;
}

struct accepted {
    char dst[64][INET6_ADDRSTRLEN + 8];
    int n;
};

/* Accepts one connection, records its original destination as
 * "addr port" and answers its byte with 'y'. */
static void accept_one(int l, struct accepted *acc)
{
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct sockaddr_storage ss;
    socklen_t len;
    struct cb_error err = {0};
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (cb_egress_original_dst(c, &ss, &len, &err) == 0) {
        const void *a = ss.ss_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        inet_ntop(ss.ss_family, a, host, sizeof(host));
        port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (acc->n < 64)
        snprintf(acc->dst[acc->n++], sizeof(acc->dst[0]), "%s %u", host, port);
    char b;
    struct pollfd p = {c, POLLIN, 0};
    if (poll(&p, 1, 2000) == 1 && recv(c, &b, 1, 0) == 1)
        send(c, "y", 1, MSG_NOSIGNAL);
    close(c);
}

static void from_inside(void **state)
{
    (void)state;
    struct cb_egress_netns *ns = create("inside", 0);
    struct cb_egress_pool *pool = cb_egress_pool_new(16);
    struct cb_egress_dns_hooks hooks = {.allow = allow};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(ns->path));
    struct accepted acc = {.n = 0};
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        struct pollfd p[] = {
            {ns->tcp4, POLLIN, 0},
            {ns->tcp6, POLLIN, 0},
            {ns->dns4, POLLIN, 0},
            {ns->dns6, POLLIN, 0},
        };
        if (poll(p, 4, 20) <= 0)
            continue;
        for (int i = 0; i < 2; i++)
            if (p[i].revents & POLLIN)
                accept_one(p[i].fd, &acc);
        for (int i = 2; i < 4; i++)
            if (p[i].revents & POLLIN)
                assert_true(cb_egress_dns_serve(p[i].fd, &hooks, pool) >= 0);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), OK);
    /* What the proxy saw: the intended destinations, and the explicit
     * client's own listener address; the child's own loopback listener
     * never reached it. */
    assert_int_equal(acc.n, 3);
    assert_string_equal(acc.dst[0], "203.0.113.5 80");
    assert_string_equal(acc.dst[1], "2001:db8::5 443");
    assert_string_equal(acc.dst[2], "127.0.0.1 3128");
    char *path = cb_xstrdup(ns->path);
    cb_egress_netns_destroy(ns);
    cb_egress_pool_free(pool);
    assert_false(mounted(path));
    assert_int_equal(access(path, F_OK), -1);
    free(path);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("skipped: network namespaces and nft rules need root\n");
        return 77; /* meson's "skipped" */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_destroy_and_cost),
        cmocka_unit_test(create_refuses),
        cmocka_unit_test(from_inside),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
