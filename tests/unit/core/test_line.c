#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/line.h"
#include "core/util.h"

/* A descriptor that reads `data` in packets of `step` bytes, so that lines
 * cross read boundaries. */
static int packets(const char *data, size_t n, size_t step)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    for (size_t pos = 0; pos < n; pos += step)
        assert_true(send(sv[1], data + pos, n - pos < step ? n - pos : step, 0) > 0);
    close(sv[1]);
    return sv[0];
}

static void expect(struct cb_line_reader *r, int rc, const char *want)
{
    const char *line = NULL;
    size_t len = 0;
    assert_int_equal(cb_line_reader_next(r, &line, &len), rc);
    if (want != NULL) {
        assert_int_equal(len, strlen(want));
        assert_memory_equal(line, want, len);
        assert_int_equal(line[len], '\0');
    }
}

static void lines_across_reads(void **state)
{
    (void)state;
    const char *in = "one\n\ntwo three\nfour\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        struct cb_line_reader r;
        cb_line_reader_init(&r, packets(in, strlen(in), step), 16);
        expect(&r, CB_LINE_OK, "one");
        expect(&r, CB_LINE_OK, "");
        expect(&r, CB_LINE_OK, "two three");
        expect(&r, CB_LINE_OK, "four");
        expect(&r, CB_LINE_EOF, NULL);
        expect(&r, CB_LINE_EOF, NULL);
        assert_int_equal(r.lineno, 4);
        close(r.fd);
        cb_line_reader_free(&r);
    }
}

/* The bound is inclusive; a longer line is reported once, even when it is
 * the last and has no newline, and the lines around it are read. */
static void too_long_lines_are_reported_once(void **state)
{
    (void)state;
    const char *in = "1234\n12345\nok\n123456789";
    for (size_t step = 1; step <= strlen(in); step++) {
        struct cb_line_reader r;
        cb_line_reader_init(&r, packets(in, strlen(in), step), 4);
        expect(&r, CB_LINE_OK, "1234");
        expect(&r, CB_LINE_TOO_LONG, NULL);
        expect(&r, CB_LINE_OK, "ok");
        expect(&r, CB_LINE_TOO_LONG, NULL);
        expect(&r, CB_LINE_EOF, NULL);
        assert_int_equal(r.lineno, 4);
        assert_true(r.line.cap <= 5);
        close(r.fd);
        cb_line_reader_free(&r);
    }
}

static void a_last_line_without_newline_is_partial(void **state)
{
    (void)state;
    const char *in = "a\nbc";
    for (size_t step = 1; step <= strlen(in); step++) {
        struct cb_line_reader r;
        cb_line_reader_init(&r, packets(in, strlen(in), step), 8);
        expect(&r, CB_LINE_OK, "a");
        expect(&r, CB_LINE_PARTIAL, "bc");
        expect(&r, CB_LINE_EOF, NULL);
        assert_int_equal(r.lineno, 2);
        close(r.fd);
        cb_line_reader_free(&r);
    }
}

/* A line longer than a read chunk is assembled whole. */
static void a_line_longer_than_a_chunk(void **state)
{
    (void)state;
    size_t n = 2 * CB_LINE_CHUNK + 5;
    char *data = cb_xmalloc(n + 3);
    memset(data, 'x', n);
    memcpy(data + n, "\ny\n", 3);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    assert_int_equal(write(p[1], data, n + 3), (ssize_t)(n + 3));
    close(p[1]);
    struct cb_line_reader r;
    cb_line_reader_init(&r, p[0], n);
    const char *line;
    size_t len;
    assert_int_equal(cb_line_reader_next(&r, &line, &len), CB_LINE_OK);
    assert_int_equal(len, n);
    assert_memory_equal(line, data, n);
    expect(&r, CB_LINE_OK, "y");
    expect(&r, CB_LINE_EOF, NULL);
    cb_line_reader_free(&r);
    close(p[0]);
    free(data);
}

static void a_read_error_is_returned(void **state)
{
    (void)state;
    struct cb_line_reader r;
    cb_line_reader_init(&r, -1, 8);
    expect(&r, -EBADF, NULL);
    cb_line_reader_free(&r);
    cb_line_reader_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_across_reads),
        cmocka_unit_test(too_long_lines_are_reported_once),
        cmocka_unit_test(a_last_line_without_newline_is_partial),
        cmocka_unit_test(a_line_longer_than_a_chunk),
        cmocka_unit_test(a_read_error_is_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
