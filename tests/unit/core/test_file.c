#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/file.h"
#include "core/util.h"
#include "rm_tree.h"

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *fx = cb_xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/cb-test-file-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    rm_tree(fx->dir);
    free(fx);
    return 0;
}

static char *put(const struct fixture *fx, const char *name, const char *text)
{
    char *path = cb_xasprintf("%s/%s", fx->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void appends(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void reads_a_file_with_a_terminating_nul(void **state)
{
    _cleanup_free_ char *path = put(*state, "a.txt", "hello\n");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 100, 0, &err), 0);
    assert_int_equal(f.buf.len, 6);
    assert_string_equal(f.buf.data, "hello\n");
    assert_int_equal(f.st.st_size, 6);
    assert_int_equal(f.failed, CB_FILE_OK);
    cb_file_close(&f);
}

static void an_empty_file_has_a_buffer(void **state)
{
    _cleanup_free_ char *path = put(*state, "empty", "");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 100, CB_FILE_EXACT, &err), 0);
    assert_non_null(f.buf.data);
    assert_int_equal(f.buf.len, 0);
    assert_string_equal(f.buf.data, "");
    cb_file_close(&f);
}

static void a_missing_file_fails_at_open(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *path = cb_xasprintf("%s/none", fx->dir);
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 100, 0, &err), -ENOENT);
    assert_int_equal(f.failed, CB_FILE_OPEN);
    assert_non_null(strstr(err.msg, "No such file"));
    cb_file_close(&f);
}

static void a_directory_or_fifo_is_refused(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *fifo = cb_xasprintf("%s/fifo", fx->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *paths[] = {fx->dir, fifo};
    for (size_t i = 0; i < CB_ARRAY_LEN(paths); i++) {
        struct cb_file f;
        struct cb_error err = {0};
        /* A FIFO without a writer would block a plain open(2). */
        assert_int_equal(cb_file_load(&f, AT_FDCWD, paths[i], 100, 0, &err), -EINVAL);
        assert_int_equal(f.failed, CB_FILE_TYPE);
        assert_non_null(strstr(err.msg, "not a regular file"));
        cb_file_close(&f);
    }
}

static void nofollow_refuses_a_link_and_dirfd_is_the_base(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *target = put(fx, "target", "x");
    _cleanup_free_ char *link = cb_xasprintf("%s/link", fx->dir);
    assert_int_equal(symlink(target, link), 0);
    _cleanup_close_ int dfd = open(fx->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, dfd, "link", 100, CB_FILE_NOFOLLOW, &err), -ELOOP);
    assert_int_equal(f.failed, CB_FILE_OPEN);
    cb_file_close(&f);
    assert_int_equal(cb_file_load(&f, dfd, "link", 100, 0, &err), 0);
    assert_string_equal(f.buf.data, "x");
    cb_file_close(&f);
    assert_int_equal(cb_file_load(&f, dfd, "target", 100, CB_FILE_NOFOLLOW, &err), 0);
    assert_string_equal(f.buf.data, "x");
    cb_file_close(&f);
}

static void the_bound_is_inclusive(void **state)
{
    _cleanup_free_ char *path = put(*state, "ten", "0123456789");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 10, 0, &err), 0);
    assert_int_equal(f.buf.len, 10);
    cb_file_close(&f);
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 9, 0, &err), -EFBIG);
    assert_int_equal(f.failed, CB_FILE_SIZE);
    assert_non_null(strstr(err.msg, "is larger than 9 bytes"));
    cb_file_close(&f);
}

static void a_file_that_grows_past_the_bound_is_refused(void **state)
{
    _cleanup_free_ char *path = put(*state, "grows", "0123456789");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_open(&f, AT_FDCWD, path, 0, &err), 0);
    appends(path, "0123456789");
    assert_int_equal(cb_file_read(&f, 15, &err), -EFBIG);
    assert_int_equal(f.failed, CB_FILE_SIZE);
    cb_file_close(&f);
    /* Below the bound, what was appended is read too. */
    assert_int_equal(cb_file_open(&f, AT_FDCWD, path, 0, &err), 0);
    appends(path, "abc");
    assert_int_equal(cb_file_read(&f, 100, &err), 0);
    assert_int_equal(f.buf.len, 23);
    cb_file_close(&f);
}

static void exact_reads_the_size_it_saw(void **state)
{
    _cleanup_free_ char *path = put(*state, "exact", "0123456789");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_open(&f, AT_FDCWD, path, CB_FILE_EXACT, &err), 0);
    appends(path, "more");
    assert_int_equal(cb_file_read(&f, 10, &err), 0);
    assert_int_equal(f.buf.len, 10);
    assert_string_equal(f.buf.data, "0123456789");
    cb_file_close(&f);

    assert_int_equal(cb_file_open(&f, AT_FDCWD, path, CB_FILE_EXACT, &err), 0);
    assert_int_equal(truncate(path, 4), 0);
    assert_int_equal(cb_file_read(&f, 100, &err), -EIO);
    assert_int_equal(f.failed, CB_FILE_SHORT);
    assert_int_equal(f.buf.len, 4);
    assert_non_null(strstr(err.msg, "it ended after 4 of 14 bytes"));
    cb_file_close(&f);
}

static void wipe_allocates_once_at_the_bound(void **state)
{
    _cleanup_free_ char *path = put(*state, "secret", "s3cret");
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, 256, CB_FILE_WIPE, &err), 0);
    assert_string_equal(f.buf.data, "s3cret");
    assert_int_equal(f.buf.cap, 257); /* never reallocated, so no copy is left behind */
    cb_file_close(&f);
    assert_null(f.buf.data);
    assert_int_equal(f.fd, -1);
}

static void a_large_file_is_read_whole(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *path = cb_xasprintf("%s/large", fx->dir);
    size_t n = 200000;
    char *data = cb_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(data, 1, n, out), n);
    fclose(out);
    struct cb_file f;
    struct cb_error err = {0};
    assert_int_equal(cb_file_load(&f, AT_FDCWD, path, n, 0, &err), 0);
    assert_int_equal(f.buf.len, n);
    assert_memory_equal(f.buf.data, data, n);
    cb_file_close(&f);
    free(data);
}

static void a_stamp_tells_a_changed_or_replaced_file(void **state)
{
    struct fixture *fx = *state;
    _cleanup_free_ char *path = put(fx, "watched", "one");
    _cleanup_free_ char *other = put(fx, "other", "one");
    struct stat st;
    struct cb_file_stamp s, t, absent = {0};
    assert_int_equal(stat(path, &st), 0);
    cb_file_stamp_of(&s, &st);
    assert_true(s.present);
    assert_true(cb_file_stamp_matches(&s, path));
    t = s;
    assert_true(cb_file_stamp_eq(&s, &t));
    assert_false(cb_file_stamp_eq(&s, &absent));
    assert_true(cb_file_stamp_eq(&absent, &absent));

    /* Same size and, maybe, the same mtime: the new inode tells. */
    assert_int_equal(rename(other, path), 0);
    assert_false(cb_file_stamp_matches(&s, path));
    assert_int_equal(stat(path, &st), 0);
    cb_file_stamp_of(&s, &st);
    /* Rewritten in place, same inode: size and times tell. */
    appends(path, "two");
    assert_false(cb_file_stamp_matches(&s, path));
    assert_int_equal(stat(path, &st), 0);
    cb_file_stamp_of(&t, &st);
    t.mtime.tv_nsec ^= 1;
    assert_false(cb_file_stamp_eq(&s, &t));

    /* A file that was absent and still is matches; one that appeared does not. */
    assert_int_equal(unlink(path), 0);
    assert_true(cb_file_stamp_matches(&absent, path));
    assert_false(cb_file_stamp_matches(&s, path));
    _cleanup_free_ char *again = put(fx, "watched", "x");
    assert_false(cb_file_stamp_matches(&absent, again));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_a_file_with_a_terminating_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_file_has_a_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(a_missing_file_fails_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(a_directory_or_fifo_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(nofollow_refuses_a_link_and_dirfd_is_the_base, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_bound_is_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_that_grows_past_the_bound_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exact_reads_the_size_it_saw, setup, teardown),
        cmocka_unit_test_setup_teardown(wipe_allocates_once_at_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(a_large_file_is_read_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stamp_tells_a_changed_or_replaced_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
