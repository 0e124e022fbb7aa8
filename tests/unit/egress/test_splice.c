/* The passthrough relay between two socketpairs: bytes both ways with the
 * counts, half-close, the idle timeout, a peer that stops reading, a peer
 * that goes away. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "egress/splice.h"

#define UP_BYTES   (300u * 1024)
#define DOWN_BYTES (100u * 1024 + 17)

/* The app ends (client program, upstream server) and the relay's ends. */
struct wires {
    int client_app, client, upstream, upstream_app;
};

static void wires_open(struct wires *w)
{
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    *w = (struct wires){a[0], a[1], b[0], b[1]};
    assert_int_equal(fcntl(w->client, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(w->upstream, F_SETFL, O_NONBLOCK), 0);
}

static void wires_close(struct wires *w)
{
    int *fds[] = {&w->client_app, &w->client, &w->upstream, &w->upstream_app};
    for (size_t i = 0; i < CB_ARRAY_LEN(fds); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
}

struct relay {
    struct cb_egress_splice *s;
    int fds[2];
    int result;
    struct cb_error err;
};

/* The loop a thread would run: wait for what the step asks, no longer
 * than the idle deadline, leaving out an fd it asks nothing of. */
static void *relay_main(void *arg)
{
    struct relay *r = arg;
    for (;;) {
        short ev[2];
        int s = cb_egress_splice_step(r->s, ev, &r->err);
        if (s <= 0) {
            r->result = s;
            return NULL;
        }
        struct pollfd p[2];
        for (int i = 0; i < 2; i++)
            p[i] = (struct pollfd){.fd = ev[i] ? r->fds[i] : -1, .events = ev[i]};
        uint64_t now = cb_now_mono_ns(), end = cb_egress_splice_deadline_ns(r->s);
        poll(p, 2, end > now ? (int)((end - now) / 1000000 + 1) : 0);
    }
}

static void relay_start(struct relay *r, const struct wires *w, uint64_t idle_ms, pthread_t *t)
{
    *r = (struct relay){.fds = {w->client, w->upstream}};
    assert_int_equal(cb_egress_splice_new(w->client, w->upstream, idle_ms, &r->s, &r->err), 0);
    assert_int_equal(pthread_create(t, NULL, relay_main, r), 0);
}

static uint8_t pattern(size_t i, unsigned seed)
{
    return (uint8_t)((i * 131u + seed) ^ (i >> 9));
}

static void write_all(int fd, size_t n, unsigned seed)
{
    uint8_t buf[4096];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
        for (size_t i = 0; i < k; i++)
            buf[i] = pattern(done + i, seed);
        ssize_t w = write(fd, buf, k);
        assert_true(w > 0);
        done += (size_t)w;
    }
}

/* Reads to end of stream, checking the pattern; returns the count. */
static size_t read_to_eof(int fd, unsigned seed)
{
    uint8_t buf[8192];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        assert_true(n >= 0);
        if (n == 0)
            return total;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(total + (size_t)i, seed))
                fail_msg("byte %zu differs", total + (size_t)i);
        total += (size_t)n;
    }
}

struct client_app {
    int fd;
    size_t received;
};

/* Sends the request, ends its sending, then reads the whole response: a
 * protocol that needs the half-close to reach the upstream. */
static void *client_app_main(void *arg)
{
    struct client_app *c = arg;
    write_all(c->fd, UP_BYTES, 1);
    shutdown(c->fd, SHUT_WR);
    c->received = read_to_eof(c->fd, 2);
    return NULL;
}

static void relays_both_ways_with_half_close(void **state)
{
    (void)state;
    struct wires w;
    wires_open(&w);
    struct relay r;
    pthread_t rt, ct;
    relay_start(&r, &w, 5000, &rt);
    struct client_app c = {.fd = w.client_app};
    assert_int_equal(pthread_create(&ct, NULL, client_app_main, &c), 0);
    /* The upstream sees the whole request and its end before answering. */
    assert_int_equal(read_to_eof(w.upstream_app, 1), UP_BYTES);
    write_all(w.upstream_app, DOWN_BYTES, 2);
    shutdown(w.upstream_app, SHUT_WR);
    pthread_join(ct, NULL);
    pthread_join(rt, NULL);
    assert_int_equal(c.received, DOWN_BYTES);
    assert_int_equal(r.result, 0);
    uint64_t up, down;
    cb_egress_splice_bytes(r.s, &up, &down);
    assert_int_equal(up, UP_BYTES);
    assert_int_equal(down, DOWN_BYTES);
    cb_egress_splice_free(r.s);
    wires_close(&w);
}

static void idle_timeout(void **state)
{
    (void)state;
    struct wires w;
    wires_open(&w);
    struct relay r;
    pthread_t t;
    uint64_t t0 = cb_now_mono_ns();
    relay_start(&r, &w, 100, &t);
    pthread_join(t, NULL);
    uint64_t ms = (cb_now_mono_ns() - t0) / 1000000;
    assert_int_equal(r.result, -ETIMEDOUT);
    assert_non_null(strstr(r.err.msg, "idle"));
    assert_true(ms >= 100 && ms < 2000);
    cb_egress_splice_free(r.s);

    /* A byte every 40 ms keeps a 150 ms relay alive past its timeout. */
    relay_start(&r, &w, 150, &t);
    t0 = cb_now_mono_ns();
    for (int i = 0; i < 10; i++) {
        assert_int_equal(write(w.client_app, "x", 1), 1);
        usleep(40 * 1000);
    }
    pthread_join(t, NULL);
    assert_true((cb_now_mono_ns() - t0) / 1000000 >= 400 + 150 - 40);
    assert_int_equal(r.result, -ETIMEDOUT);
    uint64_t up, down;
    cb_egress_splice_bytes(r.s, &up, &down);
    assert_int_equal(up, 10);
    assert_int_equal(down, 0);
    cb_egress_splice_free(r.s);
    wires_close(&w);
}

/* An upstream that never reads: every step returns at once, and the relay
 * stops reading the client once its buffer is full. */
static void slow_peer_never_blocks(void **state)
{
    (void)state;
    struct wires w;
    wires_open(&w);
    assert_int_equal(fcntl(w.client_app, F_SETFL, O_NONBLOCK), 0);
    struct cb_egress_splice *s;
    assert_int_equal(cb_egress_splice_new(w.client, w.upstream, 5000, &s, NULL), 0);
    uint8_t chunk[4096] = {0};
    size_t sent = 0;
    uint64_t worst = 0;
    short ev[2] = {0, 0};
    for (int i = 0; i < 2000; i++) {
        ssize_t n = write(w.client_app, chunk, sizeof(chunk));
        if (n > 0)
            sent += (size_t)n;
        uint64_t t0 = cb_now_mono_ns();
        assert_int_equal(cb_egress_splice_step(s, ev, NULL), 1);
        uint64_t dt = cb_now_mono_ns() - t0;
        worst = dt > worst ? dt : worst;
    }
    uint64_t up, down;
    cb_egress_splice_bytes(s, &up, &down);
    assert_true(up > 0 && up < sent);
    assert_int_equal(down, 0);
    assert_int_equal(ev[CB_EGRESS_SPLICE_UP] & POLLIN, 0);
    assert_int_equal(ev[CB_EGRESS_SPLICE_DOWN], POLLIN | POLLOUT);
    assert_true(worst < 50 * 1000000ull);
    cb_egress_splice_free(s);
    wires_close(&w);
}

static void peer_gone_is_an_error(void **state)
{
    (void)state;
    struct wires w;
    wires_open(&w);
    struct relay r;
    pthread_t t;
    relay_start(&r, &w, 5000, &t);
    close(w.upstream_app);
    w.upstream_app = -1;
    write_all(w.client_app, 1000, 1);
    pthread_join(t, NULL);
    assert_int_equal(r.result, -EPIPE);
    assert_non_null(strstr(r.err.msg, "client to upstream: send"));
    cb_egress_splice_free(r.s);
    wires_close(&w);
}

static void refuses_bad_arguments(void **state)
{
    (void)state;
    struct wires w;
    wires_open(&w);
    struct cb_egress_splice *s;
    struct cb_error err = {0};
    assert_int_equal(cb_egress_splice_new(w.client_app, w.upstream, 100, &s, &err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "nonblocking"));
    assert_int_equal(cb_egress_splice_new(w.client, w.upstream, 0, &s, &err), -EINVAL);
    cb_egress_splice_free(NULL);
    wires_close(&w);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relays_both_ways_with_half_close),
        cmocka_unit_test(idle_timeout),
        cmocka_unit_test(slow_peer_never_blocks),
        cmocka_unit_test(peer_gone_is_an_error),
        cmocka_unit_test(refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
