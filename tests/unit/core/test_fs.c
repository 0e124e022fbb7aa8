#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/util.h"

static void iov_advance_skips_whole_and_part_buffers(void **state)
{
    (void)state;
    char a[] = "abc", b[] = "", c[] = "defg";
    struct iovec iov[3] = {{a, 3}, {b, 0}, {c, 4}};
    struct iovec *v = iov;
    assert_int_equal(cb_iov_advance(&v, 3, 0), 3);
    assert_ptr_equal(v, &iov[0]);
    assert_int_equal(cb_iov_advance(&v, 3, 2), 3);
    assert_ptr_equal(v, &iov[0]);
    assert_int_equal(v->iov_len, 1);
    assert_ptr_equal(v->iov_base, a + 2);
    /* The rest of "abc" and the empty buffer go; "defg" loses one byte. */
    assert_int_equal(cb_iov_advance(&v, 3, 2), 1);
    assert_ptr_equal(v, &iov[2]);
    assert_int_equal(v->iov_len, 3);
    assert_ptr_equal(v->iov_base, c + 1);
    assert_int_equal(cb_iov_advance(&v, 1, 3), 0);
}

struct drain {
    int fd;
    struct cb_buf got;
};

/* Reads the pipe to its end, after a pause that lets the writer block. */
static void *drain_pipe(void *arg)
{
    struct drain *d = arg;
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM); /* the timer is for the writer */
    pthread_sigmask(SIG_BLOCK, &alarm, NULL);
    usleep(50 * 1000);
    char chunk[4096];
    ssize_t n;
    while ((n = read(d->fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        cb_buf_append(&d->got, chunk, (size_t)n);
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* A timer interrupts the blocked writer every millisecond, without
 * SA_RESTART: writes end short or with EINTR, and all bytes still arrive
 * once, in order. */
static void write_all_survives_signals_and_short_writes(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *data = cb_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 251);
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    for (int vectored = 0; vectored < 2; vectored++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fcntl(p[1], F_SETPIPE_SZ, 4096);
        struct drain d = {.fd = p[0]};
        cb_buf_init(&d.got, 2 * n);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, drain_pipe, &d), 0);
        struct itimerval it = {{0, 1000}, {0, 1000}}, off = {0};
        setitimer(ITIMER_REAL, &it, NULL);
        struct iovec iov[3] = {{data, 1000}, {data + 1000, 0}, {data + 1000, n - 1000}};
        int r = vectored ? cb_writev_all(p[1], iov, 3) : cb_write_all(p[1], data, n);
        setitimer(ITIMER_REAL, &off, NULL);
        assert_int_equal(r, 0);
        close(p[1]);
        pthread_join(t, NULL);
        close(p[0]);
        assert_int_equal(d.got.len, n);
        assert_memory_equal(d.got.data, data, n);
        cb_buf_free(&d.got);
    }
    sigaction(SIGALRM, &old, NULL);
    free(data);
}

static void write_all_reports_errors(void **state)
{
    (void)state;
    assert_int_equal(cb_write_all(-1, "x", 1), -EBADF);
    assert_int_equal(cb_write_all(-1, "", 0), 0); /* nothing to write, no call */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(cb_write_all(p[1], "x", 1), -EPIPE);
    close(p[1]);
}

static void *write_later(void *arg)
{
    int fd = *(int *)arg;
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, NULL);
    usleep(30 * 1000);
    (void)cb_write_retry(fd, "hi", 2); /* the reader checks what came */
    return NULL;
}

/* A read blocked while a timer interrupts it every millisecond returns
 * the data when it comes, not EINTR. */
static void read_retry_waits_through_signals(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_later, &p[1]), 0);
    struct itimerval it = {{0, 1000}, {0, 1000}}, off = {0};
    setitimer(ITIMER_REAL, &it, NULL);
    char buf[8];
    ssize_t n = cb_read_retry(p[0], buf, sizeof(buf));
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    pthread_join(t, NULL);
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "hi", 2);
    close(p[1]);
    assert_int_equal(cb_read_retry(p[0], buf, sizeof(buf)), 0);
    close(p[0]);
    assert_int_equal(cb_read_retry(-1, buf, 1), -EBADF);
    assert_int_equal(cb_write_retry(-1, buf, 1), -EBADF);
}

static void pread_all_reads_at_an_offset_and_not_past_the_end(void **state)
{
    (void)state;
    char path[] = "/tmp/cb-test-fs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(cb_write_all(fd, "0123456789", 10), 0);
    char buf[8] = {0};
    assert_int_equal(cb_pread_all(fd, buf, 4, 3), 0);
    assert_memory_equal(buf, "3456", 4);
    assert_int_equal(cb_pread_all(fd, buf, 4, 8), -EIO);
    assert_int_equal(cb_pread_all(-1, buf, 4, 0), -EBADF);
    close(fd);
}

/* From the offset to the end, across several 64 KiB chunks; a bad
 * descriptor is its errno. */
static void copy_fd_copies_the_rest(void **state)
{
    (void)state;
    char a[] = "/tmp/cb-test-fs-XXXXXX", b[] = "/tmp/cb-test-fs-XXXXXX";
    int in = mkstemp(a), out = mkstemp(b);
    assert_true(in >= 0 && out >= 0);
    unlink(a);
    unlink(b);
    size_t n = 200000;
    char *data = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 % 253);
    assert_int_equal(cb_write_all(in, data, n), 0);
    assert_int_equal(lseek(in, 1000, SEEK_SET), 1000);
    assert_int_equal(cb_copy_fd(in, out), 0);
    assert_int_equal(lseek(out, 0, SEEK_END), (off_t)(n - 1000));
    assert_int_equal(cb_pread_all(out, back, n - 1000, 0), 0);
    assert_memory_equal(back, data + 1000, n - 1000);
    assert_int_equal(cb_copy_fd(-1, out), -EBADF);
    free(data);
    free(back);
    close(in);
    close(out);
}

static void flock_retry_takes_and_reports(void **state)
{
    (void)state;
    char path[] = "/tmp/cb-test-fs-XXXXXX";
    int a = mkstemp(path);
    assert_true(a >= 0);
    int b = open(path, O_RDWR | O_CLOEXEC);
    unlink(path);
    assert_int_equal(cb_flock_retry(a, LOCK_EX), 0);
    assert_int_equal(cb_flock_retry(b, LOCK_EX | LOCK_NB), -EWOULDBLOCK);
    assert_int_equal(cb_flock_retry(a, LOCK_UN), 0);
    assert_int_equal(cb_flock_retry(b, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(cb_flock_retry(-1, LOCK_EX), -EBADF);
    close(a);
    close(b);
}

static void rm_tree_removes_everything_and_follows_no_link(void **state)
{
    (void)state;
    char top[] = "/tmp/cb-rmtree-XXXXXX", keep[] = "/tmp/cb-rmkeep-XXXXXX";
    assert_non_null(mkdtemp(top));
    assert_non_null(mkdtemp(keep));
    char *sub = cb_xasprintf("%s/a/b", top), *file = cb_xasprintf("%s/a/b/f", top);
    char *link = cb_xasprintf("%s/a/l", top), *kept = cb_xasprintf("%s/k", keep);
    assert_int_equal(cb_mkdir_p(sub, 0700, NULL), 0);
    assert_int_equal(cb_write_atomic(file, "x", 1, NULL), 0);
    assert_int_equal(cb_write_atomic(kept, "y", 1, NULL), 0);
    assert_int_equal(symlink(keep, link), 0);
    assert_int_equal(cb_rm_tree(top), 0);
    assert_int_equal(access(top, F_OK), -1);
    assert_int_equal(access(kept, F_OK), 0); /* the link went, not its target */
    assert_int_equal(cb_rm_tree(top), 0);    /* missing is success */
    assert_int_equal(cb_rm_tree(keep), 0);
    free(sub);
    free(file);
    free(link);
    free(kept);
}

/* Both replace the whole file and leave no temp file beside it. */
static void write_atomic_and_replace_swap_the_whole_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/cb-replace-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = cb_xasprintf("%s/f", dir);
    int (*const writers[])(const char *, const void *, size_t,
                           struct cb_error *) = {cb_write_atomic, cb_write_replace};
    for (size_t i = 0; i < CB_ARRAY_LEN(writers); i++) {
        char buf[16] = "";
        assert_int_equal(writers[i](path, "first, longer", 13, NULL), 0);
        assert_int_equal(writers[i](path, "second", 6, NULL), 0);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf)), 6);
        assert_memory_equal(buf, "second", 6);
        close(fd);
    }
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);
    assert_int_equal(cb_rm_tree(dir), 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iov_advance_skips_whole_and_part_buffers),
        cmocka_unit_test(write_all_survives_signals_and_short_writes),
        cmocka_unit_test(write_all_reports_errors),
        cmocka_unit_test(read_retry_waits_through_signals),
        cmocka_unit_test(pread_all_reads_at_an_offset_and_not_past_the_end),
        cmocka_unit_test(copy_fd_copies_the_rest),
        cmocka_unit_test(flock_retry_takes_and_reports),
        cmocka_unit_test(rm_tree_removes_everything_and_follows_no_link),
        cmocka_unit_test(write_atomic_and_replace_swap_the_whole_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
