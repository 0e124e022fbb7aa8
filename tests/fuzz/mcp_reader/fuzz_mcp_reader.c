/* libFuzzer target for the MCP line reader (mcp/reader.c, over
 * core/line.c), the framing of `clawbox mcp`. The first input byte sets
 * the line limit (1 to 64 bytes, so that long lines are common), the
 * second the size of the packets the rest is written in (1 to 256 bytes)
 * over a SOCK_SEQPACKET pair, so that each read(2) of the reader ends
 * where a packet ends and lines cross read boundaries anywhere.
 *
 * Invariant (a broken one calls __builtin_trap()): the reader agrees with
 * a model of the framing. Split at '\n', each piece (the last one only
 * when not empty) is a line when it fits the limit and one -E2BIG when it
 * does not; then 0 (end of input), also when asked again. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "mcp/reader.h"

/* The client's end: the input and how far it got. */
struct writer {
    int fd;
    const uint8_t *p;
    size_t n, step, pos;
};

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

/* Sends packets from w->p on; returns false when the socket is full
 * (nonblocking) or fails. */
static bool send_packets(struct writer *w, int flags)
{
    while (w->pos < w->n) {
        size_t k = w->n - w->pos < w->step ? w->n - w->pos : w->step;
        ssize_t r = send(w->fd, w->p + w->pos, k, MSG_NOSIGNAL | flags);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        w->pos += k;
    }
    return true;
}

static void *write_rest(void *arg)
{
    struct writer *w = arg;
    send_packets(w, 0);
    close(w->fd);
    return NULL;
}

/* Checks the reader's next answer against the next piece of the input. */
static void expect_piece(struct cb_mcp_reader *r, const uint8_t *p, size_t n, size_t max)
{
    const char *line = NULL;
    size_t len = 0;
    struct cb_error err = {0};
    int rc = cb__mcp_reader_next(r, &line, &len, &err);
    if (n > max) {
        check(rc == -E2BIG);
    } else {
        check(rc == 1 && len == n && (n == 0 || memcmp(line, p, n) == 0));
        check(line[len] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 1 + data[0] % 64;
    struct writer w = {.p = data + 2, .n = size - 2, .step = 1 + (size_t)data[1]};
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        __builtin_trap();
    w.fd = sv[1];
    /* Usually everything fits in the socket; a thread sends the rest when
     * it does not. */
    pthread_t t;
    bool threaded = !send_packets(&w, MSG_DONTWAIT);
    if (threaded && pthread_create(&t, NULL, write_rest, &w) != 0)
        __builtin_trap();
    if (!threaded)
        close(sv[1]);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, sv[0], max);
    const uint8_t *p = w.p, *end = w.p + w.n;
    for (;;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            if (p < end)
                expect_piece(r, p, (size_t)(end - p), max);
            break;
        }
        expect_piece(r, p, (size_t)(nl - p), max);
        p = nl + 1;
    }
    const char *line;
    size_t len;
    struct cb_error err = {0};
    check(cb__mcp_reader_next(r, &line, &len, &err) == 0);
    check(cb__mcp_reader_next(r, &line, &len, &err) == 0);
    if (threaded)
        pthread_join(t, NULL);
    cb__mcp_reader_free(r);
    free(r);
    close(sv[0]);
    return 0;
}
