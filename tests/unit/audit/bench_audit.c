/* Measures cb_audit_append on this disk: every call includes fdatasync, so
 * the single-thread rate is the disk's sync rate, and concurrent appenders
 * show what group commit buys. Also a baseline in the same run: write(2) +
 * fdatasync per line on a plain file, no formatting or hashing.
 *
 *   bench-audit [DIR] [N]     (DIR default: a temp dir under /tmp)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/util.h"
#include "state/state.h"
#include "rm_tree.h"

struct job {
    struct cb_audit *a;
    int n;
};

static void *run(void *arg)
{
    struct job *j = arg;
    struct cb_audit_record r = {
        .kind = CB_AUDIT_PROXY,
        .request_id = "0f6c1a2b-8d7e-4f3a-9b1c-2d3e4f5a6b7c",
        .tool = "web_fetch",
        .method = "GET",
        .url = "https://api.example.com/v1/items?page=[REDACTED]",
        .decision = "allowed",
        .status = 200,
        .bytes = 5123,
        .duration_ms = 42,
    };
    for (int i = 0; i < j->n; i++)
        if (cb_audit_append(j->a, &r, NULL) != 0)
            return (void *)1;
    return NULL;
}

/* anchor_db NULL: no anchor; else the state database that holds it. */
static double measure(const char *dir, const char *anchor_db, int threads, int total)
{
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {dir, 10 * 1024 * 1024, anchor_db};
    struct cb_error err = {0};
    if (cb_audit_open(&o, &a, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    pthread_t t[64];
    struct job j = {a, total / threads};
    uint64_t t0 = cb_now_mono_ns();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, run, &j);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    uint64_t ns = cb_now_mono_ns() - t0;
    cb_audit_close(a);
    return (double)(j.n * threads) / ((double)ns / 1e9);
}

static double baseline(const char *dir, int n)
{
    char *p = cb_xasprintf("%s/baseline", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
    char line[330];
    memset(line, 'x', sizeof(line));
    line[sizeof(line) - 1] = '\n';
    uint64_t t0 = cb_now_mono_ns();
    for (int i = 0; i < n; i++)
        if (write(fd, line, sizeof(line)) != (ssize_t)sizeof(line) || fdatasync(fd) != 0)
            exit(1);
    uint64_t ns = cb_now_mono_ns() - t0;
    close(fd);
    unlink(p);
    free(p);
    return n / ((double)ns / 1e9);
}

/* What one anchor write costs alone: a SQLite commit without fsync. */
static double anchor_us(const char *db, int n)
{
    struct cb_state_options o = {.busy_timeout_ms = 1000, .relaxed_sync = true};
    struct cb_state *st = NULL;
    if (cb_state_open_opts(db, &o, &st, NULL) != 0)
        exit(1);
    struct cb_state_anchor a = {0};
    memset(a.head, 'a', CB_STATE_HASH_HEX);
    uint64_t t0 = cb_now_mono_ns();
    for (int i = 0; i < n; i++) {
        a.lines = (uint64_t)i + 1;
        if (cb_state_anchor_set(st, "/bench", &a, false, NULL) != 0)
            exit(1);
    }
    uint64_t ns = cb_now_mono_ns() - t0;
    cb_state_close(st);
    return (double)ns / n / 1000.0;
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/cb-bench-audit-XXXXXX";
    const char *dir = argc > 1 && argv[1][0] ? argv[1] : mkdtemp(tmp);
    int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2000;
    if (dir == NULL || n <= 0)
        return 1;
    double base = baseline(dir, n);
    printf("baseline write+fdatasync, 1 thread: %10.0f lines/s (%.1f us each)\n", base, 1e6 / base);
    const int threads[] = {1, 4, 16};
    char *db = cb_xasprintf("%s/data/state.db", dir);
    /* With and without the anchor (one SQLite commit without fsync per
     * group of lines synced together), alternating so drift hits both. */
    for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
        double r = measure(dir, NULL, threads[i], n);
        double ra = measure(dir, db, threads[i], n);
        printf("cb_audit_append, %2d thread(s):       %10.0f lines/s  (%.2fx baseline)\n",
               threads[i], r, r / base);
        printf("  anchored:                          %10.0f lines/s  (%.2fx baseline, %.2fx "
               "unanchored)\n",
               ra, ra / base, ra / r);
    }
    printf("one anchor write alone:             %10.1f us\n", anchor_us(db, n));
    free(db);
    struct cb_audit_verify_report rep;
    int v = cb_audit_verify_anchored(dir, NULL, &rep, NULL);
    printf("verify: %s, %llu lines in %zu file(s)\n", v == 0 ? "ok" : rep.reason,
           (unsigned long long)rep.lines, rep.files);
    if (dir == tmp)
        rm_tree(dir);
    return v == 0 ? 0 : 1;
}
