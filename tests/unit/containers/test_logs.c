/* The log follower (containers/logs.c) against a log file written by the
 * test, with a manager that holds one fake container: lines are handed
 * out whole, a secret written in two pieces is redacted, the rest goes
 * when the container ends. And a file handed out (containers/file_out.c):
 * text and bytes come out as they went in. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "containers/internal.h"
#include "core/util.h"
#include "scan/leak.h"

#define CT_ID "clawbox-test"

static struct {
    char dir[64];
    char log[96];
    struct cb_config *cfg;
    struct cb_ct_manager m;
    struct cb__ct ct;
} g;

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    snprintf(g.dir, sizeof(g.dir), "/tmp/cb-test-logs-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    snprintf(g.log, sizeof(g.log), "%s/output.log", g.dir);
    struct cb_config_diag diag = {0};
    struct cb_error err = {0};
    char *toml = cb_xasprintf("[server]\ndata_dir = \"%s\"\n", g.dir);
    assert_int_equal(cb_config_load_text("t.toml", toml, strlen(toml), &g.cfg, &diag, &err), 0);
    free(toml);
    cb_config_diag_free(&diag);
    g.m.cfg = g.cfg;
    pthread_mutex_init(&g.m.lock, NULL);
    snprintf(g.ct.id, sizeof(g.ct.id), "%s", CT_ID);
    g.ct.status = CB__CT_RUNNING;
    g.ct.dir = g.dir;
    g.m.list = &g.ct;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g.log);
    rmdir(g.dir);
    pthread_mutex_destroy(&g.m.lock);
    cb_config_free(g.cfg);
    return 0;
}

static void append(const char *s)
{
    int fd = open(g.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

/* Everything the follower hands out now, in small reads; *end says whether
 * it said that was the last of it. */
static char *drain(struct cb_ct_follow *f, int *end)
{
    static char out[1 << 17];
    size_t len = 0, n = 0;
    int rc = 0;
    do {
        rc = cb_ct_follow_read(f, out + len, 7, &n);
        assert_true(rc >= 0);
        len += n;
    } while (n > 0 && rc == 0);
    out[len] = '\0';
    *end = rc;
    return out;
}

static struct cb_ct_follow *follow(size_t tail)
{
    struct cb_ct_follow *f = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_ct_logs_follow(&g.m, CT_ID, tail, &f, &err), 0);
    return f;
}

static void lines_go_whole_and_the_rest_at_the_end(void **state)
{
    (void)state;
    int end = 0;
    struct cb_ct_follow *f = follow(0);
    assert_string_equal(drain(f, &end), ""); /* no log yet */
    assert_int_equal(end, 0);
    append("hello\nwor");
    assert_string_equal(drain(f, &end), "hello\n");
    append("ld\nand then");
    assert_string_equal(drain(f, &end), "world\n");
    assert_int_equal(end, 0);
    g.ct.status = CB__CT_COMPLETED;
    assert_string_equal(drain(f, &end), "and then");
    assert_int_equal(end, 1);
    assert_string_equal(drain(f, &end), "");
    assert_int_equal(end, 1);
    cb_ct_follow_free(f);
}

static void a_secret_written_in_two_pieces_is_redacted(void **state)
{
    (void)state;
    int end = 0;
    struct cb_ct_follow *f = follow(0);
    append("token=ghp_aaaaaaaaaaaaaaaaaa");
    assert_string_equal(drain(f, &end), "");
    append("aaaaaaaaaaaaaaaaaa done\n");
    char *out = drain(f, &end);
    assert_null(strstr(out, "ghp_"));
    assert_non_null(strstr(out, CB_LEAK_REDACTED " done\n"));
    cb_ct_follow_free(f);
}

/* A PEM key block arriving over several reads: its header went out
 * redacted with the base64 after it, and the lines that follow, without a
 * header of their own, are still redacted up to its end. */
static void a_key_block_over_several_reads_is_redacted(void **state)
{
    (void)state;
    int end = 0;
    struct cb_ct_follow *f = follow(0);
    append("before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfirstlineofbase64\n");
    char *out = drain(f, &end);
    assert_null(strstr(out, "MIIE"));
    assert_non_null(strstr(out, "before\n" CB_LEAK_REDACTED));
    append("QWERTYUIOPsecondlineofbase64zxcvbnm\n");
    out = drain(f, &end);
    assert_null(strstr(out, "QWERTY"));
    append("ASDFGHJKLthirdline\n-----END RSA PRIVATE KEY-----\nafter\n");
    out = drain(f, &end);
    assert_null(strstr(out, "ASDFGH"));
    assert_null(strstr(out, "thirdline"));
    assert_true(strlen(out) >= 6);
    assert_string_equal(out + strlen(out) - 6, "after\n");
    cb_ct_follow_free(f);
}

/* An AWS key id on one read, its secret key on the next. */
static void a_key_pair_over_two_reads_is_redacted(void **state)
{
    (void)state;
    int end = 0;
    const char *secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    struct cb_ct_follow *f = follow(0);
    append("id AKIAIOSFODNN7EXAMPLE\n");
    drain(f, &end);
    append("and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
    char *out = drain(f, &end);
    assert_null(strstr(out, secret));
    assert_string_equal(out, "and " CB_LEAK_REDACTED "\n");
    cb_ct_follow_free(f);
}

static void tail_starts_at_the_last_lines(void **state)
{
    (void)state;
    int end = 0;
    append("a\nb\nc\n");
    struct cb_ct_follow *f = follow(2);
    assert_string_equal(drain(f, &end), "b\nc\n");
    cb_ct_follow_free(f);
    assert_int_equal(cb__ct_tail_start("a\nb\nc\n", 6, 5), 0);
    assert_int_equal(cb__ct_tail_start("a\nb\nc", 5, 1), 4);
}

/* A line longer than the hold is cut at its last blank, not held for ever. */
static void an_overlong_line_is_cut_at_a_blank(void **state)
{
    (void)state;
    int end = 0;
    size_t n = 2 * CB_LEAK_MAX_SECRET_LEN + 100;
    char *line = cb_xmalloc(n + 1);
    memset(line, 'x', n);
    line[n] = '\0';
    line[30000] = ' ';
    append(line);
    struct cb_ct_follow *f = follow(0);
    char *out = drain(f, &end);
    assert_int_equal(strlen(out), 30001);
    assert_int_equal(out[30000], ' ');
    g.ct.status = CB__CT_FAILED;
    assert_int_equal(strlen(drain(f, &end)), n - 30001);
    assert_int_equal(end, 1);
    cb_ct_follow_free(f);
    free(line);
}

/* A line of two-byte characters longer than the hold, with no blank: the
 * cut falls between characters, so both sides come out as they were
 * (cut inside one, each half would be redacted as invalid text). */
static void an_overlong_line_is_never_cut_inside_a_character(void **state)
{
    (void)state;
    int end = 0;
    struct cb_buf line;
    cb_buf_init(&line, 1u << 20);
    cb_buf_append(&line, "x", 1);
    for (int i = 0; i < 20000; i++)
        cb_buf_append(&line, "\xc3\xa9", 2);
    cb_buf_append(&line, "\n", 1);
    append(line.data);
    g.ct.status = CB__CT_FAILED;
    struct cb_ct_follow *f = follow(0);
    char *out = drain(f, &end);
    assert_int_equal(end, 1);
    assert_int_equal(strlen(out), line.len);
    assert_memory_equal(out, line.data, line.len);
    cb_ct_follow_free(f);
    cb_buf_free(&line);
}

/* Everything a file to hand out gives, in reads of `room` bytes. */
static size_t file_drain(struct cb_ct_file *f, char *out, size_t room)
{
    size_t len = 0, n = 0;
    int rc = 0;
    do {
        rc = cb_ct_file_read(f, out + len, room, &n);
        assert_true(rc >= 0);
        len += n;
    } while (rc == 0);
    return len;
}

static struct cb_ct_file *file_of(const char *data, size_t len)
{
    int fd = open(g.log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct cb_ct_file *f = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb__ct_file_take(&g.m, fd, 1u << 24, &f, &err), 0);
    close(fd);
    return f;
}

/* Text: a character cut by the copy's 64 KiB chunks is still text, and
 * lines of 120 KB, longer than the hold and cut between characters, come
 * out whole.
 * Bytes: as they are. Over the bound: refused. */
static void a_file_comes_out_as_it_went_in(void **state)
{
    (void)state;
    static char out[1 << 20];
    size_t n = 3 * 66667;
    char *text = cb_xmalloc(n);
    for (size_t i = 0; i < n; i += 3)
        memcpy(text + i, i % 120000 == 0 ? "a \n" : "\xe2\x82\xac", 3); /* the euro sign */
    struct cb_ct_file *f = file_of(text, n - 2);
    assert_false(cb_ct_file_text(f)); /* ends inside a character */
    cb_ct_file_free(f);
    f = file_of(text, n - 3);
    assert_true(cb_ct_file_text(f));
    assert_int_equal(file_drain(f, out, 4096), n - 3);
    assert_memory_equal(out, text, n - 3);
    cb_ct_file_free(f);
    text[70000] = (char)0xff;
    f = file_of(text, n - 3);
    assert_false(cb_ct_file_text(f));
    assert_int_equal(file_drain(f, out, 16384), n - 3);
    assert_memory_equal(out, text, n - 3);
    cb_ct_file_free(f);
    f = file_of("", 0);
    assert_true(cb_ct_file_text(f));
    assert_int_equal(file_drain(f, out, 10), 0);
    cb_ct_file_free(f);
    int fd = open(g.log, O_RDWR | O_TRUNC | O_CLOEXEC);
    assert_int_equal(write(fd, text, 1001), 1001);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct cb_error err = {0};
    assert_int_equal(cb__ct_file_take(&g.m, fd, 1000, &f, &err), -EFBIG);
    close(fd);
    free(text);
}

static void a_removed_container_ends_its_follower(void **state)
{
    (void)state;
    int end = 0;
    append("x\n");
    struct cb_ct_follow *f = follow(0);
    g.m.list = NULL;
    assert_string_equal(drain(f, &end), "x\n");
    assert_int_equal(end, 1);
    cb_ct_follow_free(f);
    struct cb_error err = {0};
    assert_int_equal(cb_ct_logs_follow(&g.m, CT_ID, 0, &f, &err), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lines_go_whole_and_the_rest_at_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(a_secret_written_in_two_pieces_is_redacted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_key_block_over_several_reads_is_redacted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_key_pair_over_two_reads_is_redacted, setup, teardown),
        cmocka_unit_test_setup_teardown(tail_starts_at_the_last_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(an_overlong_line_is_cut_at_a_blank, setup, teardown),
        cmocka_unit_test_setup_teardown(an_overlong_line_is_never_cut_inside_a_character, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_file_comes_out_as_it_went_in, setup, teardown),
        cmocka_unit_test_setup_teardown(a_removed_container_ends_its_follower, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
