/* A loopback HTTP upstream for the proxy tests: a thread that accepts on
 * 127.0.0.1 (port 0, so tests never collide), reads one request per
 * connection (head, and a body of Content-Length bytes), records it, and
 * answers through the test's callback. Header-only: each test is one
 * executable. */
#ifndef CB_TEST_PROXY_UPSTREAM_H
#define CB_TEST_PROXY_UPSTREAM_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_UPSTREAM_MAX_REQUEST 16384

/* Answers one request on connection c; `request` is the whole request
 * (head and body, NUL-terminated) and `path` its request target. */
typedef void (*test_upstream_answer_fn)(int c, const char *path, const char *request, void *arg);

struct test_upstream {
    int fd;
    uint16_t port;
    struct sockaddr_in addr;
    pthread_t thread;
    pthread_mutex_t mu;
    unsigned requests; /* requests seen */
    char last[TEST_UPSTREAM_MAX_REQUEST + 1];
    test_upstream_answer_fn answer;
    void *arg;
};

/* Writes all of s (a test upstream gives up on a broken connection). */
static inline void test_upstream_send(int c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Sends a complete response with the given extra header lines (each ending
 * in \r\n, or "") and body; the connection is closed afterwards. */
static inline void test_upstream_reply(int c, int status, const char *headers, const char *body,
                                       size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     headers, body_len);
    test_upstream_send(c, head, (size_t)n);
    test_upstream_send(c, body, body_len);
}

/* Content-Length of the head in buf (0 when absent). */
static inline size_t test_upstream_content_length(const char *buf)
{
    for (const char *p = strchr(buf, '\n'); p != NULL; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            return strtoul(p + 16, NULL, 10);
    return 0;
}

/* Reads one request (bounded) into buf; returns its length, 0 on failure. */
static inline size_t test_upstream_read(int c, char *buf)
{
    size_t n = 0, want = 0;
    for (;;) {
        ssize_t r = read(c, buf + n, TEST_UPSTREAM_MAX_REQUEST - n);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL && want == 0)
            want = (size_t)(end + 4 - buf) + test_upstream_content_length(buf);
        if ((want > 0 && n >= want) || n == TEST_UPSTREAM_MAX_REQUEST)
            return n;
    }
}

static inline void *test_upstream_main(void *arg)
{
    struct test_upstream *u = arg;
    char *buf = malloc(TEST_UPSTREAM_MAX_REQUEST + 1);
    for (;;) {
        int c = accept(u->fd, NULL, NULL);
        if (c < 0)
            break;
        size_t n = test_upstream_read(c, buf);
        char path[1024] = "";
        if (n > 0) {
            sscanf(buf, "%*s %1023s", path);
            pthread_mutex_lock(&u->mu);
            u->requests++;
            memcpy(u->last, buf, n + 1);
            pthread_mutex_unlock(&u->mu);
            u->answer(c, path, buf, u->arg);
        }
        close(c);
    }
    free(buf);
    return NULL;
}

static inline int test_upstream_start(struct test_upstream *u, test_upstream_answer_fn answer,
                                      void *arg)
{
    socklen_t len = sizeof(u->addr);
    memset(u, 0, sizeof(*u));
    u->answer = answer;
    u->arg = arg;
    pthread_mutex_init(&u->mu, NULL);
    u->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    u->addr.sin_family = AF_INET;
    u->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&u->addr, sizeof(u->addr)) < 0 ||
        listen(u->fd, 16) < 0 || getsockname(u->fd, (struct sockaddr *)&u->addr, &len) < 0)
        return -1;
    u->port = ntohs(u->addr.sin_port);
    return pthread_create(&u->thread, NULL, test_upstream_main, u) == 0 ? 0 : -1;
}

/* Stops accepting (shutdown wakes the blocked accept) and joins. */
static inline void test_upstream_stop(struct test_upstream *u)
{
    shutdown(u->fd, SHUT_RDWR);
    pthread_join(u->thread, NULL);
    close(u->fd);
    pthread_mutex_destroy(&u->mu);
}

static inline unsigned test_upstream_requests(struct test_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    unsigned n = u->requests;
    pthread_mutex_unlock(&u->mu);
    return n;
}

/* A copy of the last request (free() it). */
static inline char *test_upstream_last(struct test_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    char *s = strdup(u->last);
    pthread_mutex_unlock(&u->mu);
    return s;
}

#endif
