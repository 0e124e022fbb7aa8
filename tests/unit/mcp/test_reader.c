/* The bounded line reader: lines split across reads, CRLF left to the
 * caller, a last line without newline, and over-long lines that are
 * reported once and skipped without being held in memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "mcp/reader.h"

/* A file holding `data`, positioned at its start. */
static int file_with(const char *data, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void expect_line(struct cb_mcp_reader *r, const char *want)
{
    const char *line;
    size_t len;
    struct cb_error err = {0};
    assert_int_equal(cb__mcp_reader_next(r, &line, &len, &err), 1);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(line, want, len);
}

static void expect_rc(struct cb_mcp_reader *r, int want)
{
    const char *line;
    size_t len;
    struct cb_error err = {0};
    assert_int_equal(cb__mcp_reader_next(r, &line, &len, &err), want);
}

static void splits_lines(void **state)
{
    (void)state;
    const char data[] = "one\ntwo\r\n\nlast";
    int fd = file_with(data, sizeof(data) - 1);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, fd, 100);
    expect_line(r, "one");
    expect_line(r, "two\r");
    expect_line(r, "");
    expect_line(r, "last");
    expect_rc(r, 0);
    expect_rc(r, 0);
    cb__mcp_reader_free(r);
    free(r);
    close(fd);
}

/* A line spanning several read chunks is assembled whole. */
static void long_line_across_chunks(void **state)
{
    (void)state;
    size_t n = 3 * CB_LINE_CHUNK + 17;
    char *data = cb_xmalloc(n + 4);
    memset(data, 'a', n);
    memcpy(data + n, "\nb\n", 3);
    int fd = file_with(data, n + 3);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, fd, n);
    const char *line;
    size_t len;
    struct cb_error err = {0};
    assert_int_equal(cb__mcp_reader_next(r, &line, &len, &err), 1);
    assert_int_equal(len, n);
    assert_memory_equal(line, data, n);
    expect_line(r, "b");
    expect_rc(r, 0);
    cb__mcp_reader_free(r);
    free(r);
    free(data);
    close(fd);
}

/* Over the limit: one -E2BIG, the buffer never grows past the limit, and
 * the next line is read normally. */
static void too_long_line_is_skipped(void **state)
{
    (void)state;
    size_t n = 5 * CB_LINE_CHUNK;
    char *data = cb_xmalloc(n + 16);
    memcpy(data, "ok\n", 3);
    memset(data + 3, 'x', n);
    memcpy(data + 3 + n, "\nnext\n", 6);
    int fd = file_with(data, n + 9);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, fd, 1000);
    expect_line(r, "ok");
    expect_rc(r, -E2BIG);
    assert_true(r->lines.line.cap <= 1001 + 64);
    expect_line(r, "next");
    expect_rc(r, 0);
    cb__mcp_reader_free(r);
    free(r);
    free(data);
    close(fd);
}

/* A too-long line ended by end of input is not handed out. */
static void too_long_last_line(void **state)
{
    (void)state;
    int fd = file_with("abcdefghij", 10);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, fd, 4);
    expect_rc(r, -E2BIG);
    expect_rc(r, 0);
    cb__mcp_reader_free(r);
    free(r);
    close(fd);
}

/* Exactly at the limit is fine. */
static void line_at_limit(void **state)
{
    (void)state;
    int fd = file_with("abcd\nabcde\nz\n", 13);
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    cb__mcp_reader_init(r, fd, 4);
    expect_line(r, "abcd");
    expect_rc(r, -E2BIG);
    expect_line(r, "z");
    expect_rc(r, 0);
    cb__mcp_reader_free(r);
    free(r);
    close(fd);
}

static void read_error_is_reported(void **state)
{
    (void)state;
    struct cb_mcp_reader *r = cb_xmalloc(sizeof(*r));
    struct cb_error err = {0};
    const char *line;
    size_t len;
    cb__mcp_reader_init(r, -1, 10);
    assert_int_equal(cb__mcp_reader_next(r, &line, &len, &err), -EBADF);
    assert_non_null(strstr(err.msg, "reading input"));
    cb__mcp_reader_free(r);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits_lines),
        cmocka_unit_test(long_line_across_chunks),
        cmocka_unit_test(too_long_line_is_skipped),
        cmocka_unit_test(too_long_last_line),
        cmocka_unit_test(line_at_limit),
        cmocka_unit_test(read_error_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
