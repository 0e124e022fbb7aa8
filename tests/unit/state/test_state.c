#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "state/state.h"

#define SHORT_TIMEOUT_MS 200

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = cb_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cb-state-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct cb_state *open_ok(const char *path)
{
    struct cb_error err = {0};
    struct cb_state *s = NULL;
    struct cb_state_options opts = {.busy_timeout_ms = SHORT_TIMEOUT_MS};
    int r = cb_state_open_opts(path, &opts, &s, &err);
    if (r != 0)
        fail_msg("open failed: %d %s", r, err.msg);
    assert_non_null(s);
    return s;
}

/* Expects open to fail with `code` and a message containing `needle`. */
static void open_fails(const char *path, int code, const char *needle)
{
    struct cb_error err = {0};
    struct cb_state *s = (struct cb_state *)1;
    struct cb_state_options opts = {.busy_timeout_ms = SHORT_TIMEOUT_MS};
    int r = cb_state_open_opts(path, &opts, &s, &err);
    assert_int_equal(r, code);
    assert_null(s);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

/* Runs sql on a separate raw connection and returns the first column of
 * the first row as an integer (0 when there is no row). */
static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    long long v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void assert_doc(struct cb_state *s, const char *table, const char *key, const char *want)
{
    struct cb_error err = {0};
    char *got = NULL;
    assert_int_equal(cb_state_get(s, table, key, &got, &err), 0);
    assert_string_equal(got, want);
    free(got);
}

static void persists_across_reopen(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "echo", "{\"v\":1}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_AGENTS, "a1", "{\"n\":\"x\"}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_CONTAINERS, "c1", "{}", &err), 0);
    cb_state_close(s);

    s = open_ok(f->path);
    assert_doc(s, CB_STATE_TOOLS, "echo", "{\"v\":1}");
    assert_doc(s, CB_STATE_AGENTS, "a1", "{\"n\":\"x\"}");
    assert_doc(s, CB_STATE_CONTAINERS, "c1", "{}");
    assert_int_equal(cb_state_check(s, &err), 0);
    cb_state_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), cb__state_schema_version());
}

static void wal_mode_and_default_open(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = NULL;
    assert_int_equal(cb_state_open(f->path, &s, &err), 0);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    cb_state_close(s);
    cb_state_close(NULL);
}

static void assert_mode(const char *path, mode_t want)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, want);
}

static void files_are_0600(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    mode_t old = umask(0);
    struct cb_state *s = open_ok(f->path);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "t", "{}", &err), 0);
    assert_mode(f->path, 0600);
    char side[160];
    snprintf(side, sizeof(side), "%s-wal", f->path);
    assert_mode(side, 0600);
    snprintf(side, sizeof(side), "%s-shm", f->path);
    assert_mode(side, 0600);
    cb_state_close(s);

    /* A pre-existing world-readable file is tightened. */
    assert_int_equal(chmod(f->path, 0644), 0);
    s = open_ok(f->path);
    assert_mode(f->path, 0600);
    cb_state_close(s);
    umask(old);
}

static int count_cb(const char *key, const char *json, void *ud)
{
    (void)key;
    (void)json;
    (*(int *)ud)++;
    return 0;
}

static void unknown_table_rejected(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    const char *bad[] = {"users", "tools; DROP TABLE tools", "sqlite_schema", "TOOLS", ""};
    char *out = NULL;
    int n = 0;
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        assert_int_equal(cb_state_put(s, bad[i], "k", "{}", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "unknown state table"));
        assert_int_equal(cb_state_get(s, bad[i], "k", &out, &err), -EINVAL);
        assert_null(out);
        assert_int_equal(cb_state_delete(s, bad[i], "k", &err), -EINVAL);
        assert_int_equal(cb_state_list(s, bad[i], count_cb, &n, &err), -EINVAL);
    }
    assert_int_equal(cb_state_put(s, NULL, "k", "{}", &err), -EINVAL);
    assert_int_equal(n, 0);
    cb_state_close(s);
}

static void junk_file_is_corrupt(void **state)
{
    struct fixture *f = *state;
    unsigned char junk[4096], after[4096];
    assert_int_equal(cb_random_bytes(junk, sizeof(junk)), 0);
    write_file(f->path, junk, sizeof(junk));
    open_fails(f->path, -EBADMSG, "is corrupt or not a SQLite database");
    /* The file is left as it was, for the operator to inspect. */
    int fd = open(f->path, O_RDONLY);
    assert_int_equal(read(fd, after, sizeof(after)), (ssize_t)sizeof(after));
    close(fd);
    assert_memory_equal(junk, after, sizeof(junk));
}

/* Builds a database spanning many pages and returns its size. */
static off_t make_big_db(const char *path)
{
    struct cb_error err = {0};
    struct cb_state *s = open_ok(path);
    char doc[2048];
    memset(doc, 'x', sizeof(doc) - 1);
    doc[sizeof(doc) - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof(key), "tool-%03d", i);
        assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, key, doc, &err), 0);
        assert_int_equal(cb_state_put(s, CB_STATE_AGENTS, key, doc, &err), 0);
    }
    cb_state_close(s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 64 * 4096);
    return st.st_size;
}

static void truncated_db_is_corrupt(void **state)
{
    struct fixture *f = *state;
    off_t size = make_big_db(f->path);
    assert_int_equal(truncate(f->path, size / 2 + 1000), 0);
    open_fails(f->path, -EBADMSG, "is corrupt or not a SQLite database");
}

static void garbled_page_is_corrupt(void **state)
{
    struct fixture *f = *state;
    off_t size = make_big_db(f->path);
    unsigned char junk[4096];
    memset(junk, 0xA5, sizeof(junk));
    int fd = open(f->path, O_WRONLY);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), (size / 4096 / 2) * 4096), 4096);
    close(fd);
    open_fails(f->path, -EBADMSG, "is corrupt or not a SQLite database");
}

static void newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    cb_state_close(open_ok(f->path));
    raw_exec(f->path, "PRAGMA user_version = 99");
    char want[128];
    snprintf(want, sizeof(want),
             "state database schema version 99 is newer than this clawbox supports (%d)",
             cb__state_schema_version());
    open_fails(f->path, -ENOTSUP, want);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
}

static void open_fails_busy_quickly(const char *path)
{
    uint64_t t0 = cb_now_mono_ns();
    open_fails(path, -EBUSY, "is locked by another process");
    uint64_t ms = (cb_now_mono_ns() - t0) / 1000000;
    assert_true(ms >= SHORT_TIMEOUT_MS / 2);
    assert_true(ms < 3000);
}

/* A child process holding something (a lock) until told to let go. */
struct holder {
    pid_t pid;
    int release; /* closing it lets the child exit */
};

/* Forks a child that runs take(arg), which returns 0 once it holds what it
 * takes; returns when it does. */
static struct holder hold_in_child(int (*take)(const char *), const char *arg)
{
    int ready[2], release[2];
    char c = 0;
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        if (take(arg) != 0 || write(ready[1], "x", 1) != 1)
            _exit(1);
        while (read(release[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    return (struct holder){pid, release[1]};
}

/* Lets the child go and checks it exited cleanly. */
static void release_holder(struct holder *h)
{
    int status = 0;
    close(h->release);
    assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int take_exclusive(const char *path)
{
    sqlite3 *db = NULL;
    return sqlite3_open(path, &db) != SQLITE_OK ||
           sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK;
}

static void locked_by_other_process(void **state)
{
    struct fixture *f = *state;
    cb_state_close(open_ok(f->path));
    struct holder h = hold_in_child(take_exclusive, f->path);
    open_fails_busy_quickly(f->path);
    release_holder(&h);
    cb_state_close(open_ok(f->path));
}

static void locked_by_exclusive_locking_mode(void **state)
{
    struct fixture *f = *state;
    cb_state_close(open_ok(f->path));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    open_fails_busy_quickly(f->path);
    sqlite3_close(db);
    cb_state_close(open_ok(f->path));
}

static void missing_directory(void **state)
{
    struct fixture *f = *state;
    char path[192];
    snprintf(path, sizeof(path), "%s/nope/state.db", f->dir);
    open_fails(path, -ENOENT, "does not exist");
    snprintf(path, sizeof(path), "%s/state.db/x.db", f->dir);
    write_file(f->path, "", 0);
    open_fails(path, -ENOTDIR, "is not a directory");
}

struct collected {
    char keys[8][64];
    char docs[8][128];
    int n;
};

static int collect_cb(const char *key, const char *json, void *ud)
{
    struct collected *c = ud;
    if (c->n >= 8)
        return -E2BIG;
    snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
    snprintf(c->docs[c->n], sizeof(c->docs[0]), "%s", json);
    c->n++;
    return 0;
}

static void injection_text_stored_verbatim(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    const char *key = "x'); DROP TABLE tools; --";
    const char *doc = "{\"a\":\"'; DELETE FROM agents; --\",\"b\":\"\\\"?1\"}";
    assert_int_equal(cb_state_put(s, CB_STATE_AGENTS, "keep", "{}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, key, doc, &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "'", "\"", &err), 0);
    assert_doc(s, CB_STATE_TOOLS, key, doc);
    assert_doc(s, CB_STATE_TOOLS, "'", "\"");
    assert_doc(s, CB_STATE_AGENTS, "keep", "{}");
    struct collected c = {0};
    assert_int_equal(cb_state_list(s, CB_STATE_TOOLS, collect_cb, &c, &err), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "'");
    assert_string_equal(c.keys[1], key);
    assert_string_equal(c.docs[1], doc);
    cb_state_close(s);
}

static void get_and_delete_missing(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    char *out = (char *)1;
    assert_int_equal(cb_state_get(s, CB_STATE_TOOLS, "none", &out, &err), -ENOENT);
    assert_null(out);
    assert_int_equal(cb_state_delete(s, CB_STATE_TOOLS, "none", &err), -ENOENT);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "t", "{}", &err), 0);
    assert_int_equal(cb_state_delete(s, CB_STATE_TOOLS, "t", &err), 0);
    assert_int_equal(cb_state_get(s, CB_STATE_TOOLS, "t", &out, &err), -ENOENT);
    assert_int_equal(cb_state_delete(s, CB_STATE_TOOLS, "t", &err), -ENOENT);
    cb_state_close(s);
}

static void upsert_keeps_created_and_status(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    assert_int_equal(cb_state_put(s, CB_STATE_AGENTS, "a", "{\"v\":1}", &err), 0);
    assert_int_equal(raw_int(f->path, "SELECT status = '' FROM agents WHERE id = 'a'"), 1);
    raw_exec(f->path, "UPDATE agents SET status = 'running', created_at = 5 WHERE id = 'a'");
    assert_int_equal(cb_state_put(s, CB_STATE_AGENTS, "a", "{\"v\":2}", &err), 0);
    assert_doc(s, CB_STATE_AGENTS, "a", "{\"v\":2}");
    assert_int_equal(raw_int(f->path, "SELECT status = 'running' FROM agents"), 1);
    assert_int_equal(raw_int(f->path, "SELECT created_at FROM agents"), 5);
    assert_true(raw_int(f->path, "SELECT updated_at FROM agents") > 1600000000000LL);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM agents"), 1);
    cb_state_close(s);
}

static void limits_enforced(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    char key[CB_STATE_KEY_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, key, "{}", &err), -E2BIG);
    key[CB_STATE_KEY_MAX] = '\0';
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, key, "{}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "", "{}", &err), -EINVAL);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, NULL, "{}", &err), -EINVAL);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "k", NULL, &err), -EINVAL);
    char *big = cb_xmalloc(CB_STATE_DOC_MAX + 2);
    memset(big, ' ', CB_STATE_DOC_MAX + 1);
    big[CB_STATE_DOC_MAX + 1] = '\0';
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "k", big, &err), -E2BIG);
    big[CB_STATE_DOC_MAX] = '\0';
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "k", big, &err), 0);
    free(big);
    struct cb_state_options opts = {.busy_timeout_ms = -1};
    struct cb_state *s2 = NULL;
    assert_int_equal(cb_state_open_opts(f->path, &opts, &s2, &err), -EINVAL);
    cb_state_close(s);
}

struct reenter {
    struct cb_state *s;
    int seen;
};

/* Stops after two rows; rewrites each row it sees through the same handle. */
static int reenter_cb(const char *key, const char *json, void *ud)
{
    struct reenter *r = ud;
    struct cb_error err = {0};
    (void)json;
    if (r->seen == 2)
        return 42;
    r->seen++;
    return cb_state_put(r->s, CB_STATE_CONTAINERS, key, "{\"seen\":true}", &err);
}

static void list_stops_and_reenters(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    assert_int_equal(cb_state_put(s, CB_STATE_CONTAINERS, "c", "{}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_CONTAINERS, "a", "{}", &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_CONTAINERS, "b", "{}", &err), 0);
    struct reenter r = {.s = s};
    assert_int_equal(cb_state_list(s, CB_STATE_CONTAINERS, reenter_cb, &r, &err), 42);
    assert_int_equal(r.seen, 2);
    assert_doc(s, CB_STATE_CONTAINERS, "a", "{\"seen\":true}");
    assert_doc(s, CB_STATE_CONTAINERS, "b", "{\"seen\":true}");
    assert_doc(s, CB_STATE_CONTAINERS, "c", "{}");
    int n = 0;
    assert_int_equal(cb_state_list(s, CB_STATE_TOOLS, count_cb, &n, &err), 0);
    assert_int_equal(n, 0);
    cb_state_close(s);
}

#define THREADS    4
#define PER_THREAD 50

struct worker {
    struct cb_state *s;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct cb_error err = {0};
        char key[32], *out = NULL;
        snprintf(key, sizeof(key), "w%d-%d", w->id, i);
        if (cb_state_put(w->s, CB_STATE_TOOLS, key, key, &err) != 0 ||
            cb_state_get(w->s, CB_STATE_TOOLS, key, &out, &err) != 0 || strcmp(out, key) != 0)
            w->failures++;
        free(out);
    }
    return NULL;
}

static void threads_share_one_handle(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    pthread_t tids[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = s, .id = i};
        assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tids[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    int n = 0;
    assert_int_equal(cb_state_list(s, CB_STATE_TOOLS, count_cb, &n, &err), 0);
    assert_int_equal(n, THREADS * PER_THREAD);
    cb_state_close(s);
}

static struct cb_state_anchor anchor_of(uint64_t lines, char c)
{
    struct cb_state_anchor a = {.lines = lines};
    memset(a.head, c, CB_STATE_HASH_HEX);
    a.head[CB_STATE_HASH_HEX] = '\0';
    return a;
}

static void assert_anchor(struct cb_state *s, const char *name, uint64_t lines, char c)
{
    struct cb_state_anchor got, want = anchor_of(lines, c);
    struct cb_error err = {0};
    if (cb_state_anchor_get(s, name, &got, &err) != 0)
        fail_msg("anchor %s: %s", name, err.msg);
    assert_int_equal(got.lines, lines);
    assert_string_equal(got.head, want.head);
}

/* An anchor only moves forward (writers race), unless reset; anchors are
 * kept apart by name and survive a reopen. */
static void anchors_move_forward(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    static const struct {
        const char *name;
        uint64_t lines;
        char c;
        bool reset;
        uint64_t want_lines; /* what is stored afterwards */
        char want_c;
    } steps[] = {
        {"/var/log/a", 10, 'a', false, 10, 'a'}, {"/var/log/a", 9, 'b', false, 10, 'a'},
        {"/var/log/a", 10, 'c', false, 10, 'a'}, {"/var/log/a", 11, 'd', false, 11, 'd'},
        {"/var/log/a", 3, 'e', true, 3, 'e'},    {"/var/log/b", 1, 'f', false, 1, 'f'},
    };
    struct cb_state_anchor a;
    assert_int_equal(cb_state_anchor_get(s, "/var/log/a", &a, &err), -ENOENT);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        a = anchor_of(steps[i].lines, steps[i].c);
        assert_int_equal(cb_state_anchor_set(s, steps[i].name, &a, steps[i].reset, &err), 0);
        assert_anchor(s, steps[i].name, steps[i].want_lines, steps[i].want_c);
    }
    a.head[5] = '\0';
    assert_int_equal(cb_state_anchor_set(s, "/var/log/b", &a, true, &err), -EINVAL);
    assert_int_equal(cb_state_anchor_set(s, "", &a, true, &err), -EINVAL);
    cb_state_close(s);
    s = open_ok(f->path);
    assert_anchor(s, "/var/log/a", 3, 'e');
    assert_anchor(s, "/var/log/b", 1, 'f');
    cb_state_close(s);
}

/* The schema before anchors: the documents stay and the table appears;
 * a read-only handle on it (as `audit verify` opens one) sees no anchor,
 * changes nothing, and a missing file is -ENOENT, not created. */
static void anchors_migrate_and_read_only(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    raw_exec(f->path, "CREATE TABLE tools (name TEXT PRIMARY KEY, manifest TEXT NOT NULL,"
                      " wasm_sha256 TEXT, created_at INTEGER NOT NULL,"
                      " updated_at INTEGER NOT NULL);"
                      "CREATE TABLE agents (id TEXT PRIMARY KEY, config TEXT NOT NULL,"
                      " status TEXT NOT NULL, container_id TEXT, created_at INTEGER NOT NULL,"
                      " updated_at INTEGER NOT NULL);"
                      "CREATE TABLE containers (id TEXT PRIMARY KEY, info TEXT NOT NULL,"
                      " status TEXT NOT NULL, runtime_id TEXT, created_at INTEGER NOT NULL,"
                      " updated_at INTEGER NOT NULL);"
                      "INSERT INTO tools VALUES ('echo', '{}', NULL, 1, 1);"
                      "PRAGMA user_version = 1;");
    struct cb_state_options ro = {.busy_timeout_ms = SHORT_TIMEOUT_MS, .read_only = true};
    struct cb_state *s = NULL;
    struct cb_state_anchor a;
    assert_int_equal(cb_state_open_opts(f->path, &ro, &s, &err), 0);
    assert_int_equal(cb_state_anchor_get(s, "/x", &a, &err), -ENOENT);
    cb_state_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    s = open_ok(f->path);
    assert_doc(s, CB_STATE_TOOLS, "echo", "{}");
    a = anchor_of(2, '9');
    assert_int_equal(cb_state_anchor_set(s, "/x", &a, false, &err), 0);
    cb_state_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), cb__state_schema_version());
    assert_int_equal(cb_state_open_opts(f->path, &ro, &s, &err), 0);
    assert_anchor(s, "/x", 2, '9');
    a = anchor_of(3, '8');
    assert_true(cb_state_anchor_set(s, "/x", &a, false, &err) < 0);
    cb_state_close(s);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.db", f->dir);
    s = (struct cb_state *)1;
    assert_int_equal(cb_state_open_opts(missing, &ro, &s, &err), -ENOENT);
    assert_null(s);
    assert_int_equal(access(missing, F_OK), -1);
}

static int take_dir_lock(const char *dir)
{
    int fd = -1;
    return cb_state_lock_data_dir(dir, &fd, NULL);
}

/* One server per data directory: a second is refused naming the holder's
 * pid and the directory; the lock goes with its holder. */
static void data_dir_lock_refuses_a_second(void **state)
{
    struct fixture *f = *state;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/data", f->dir);
    struct holder h = hold_in_child(take_dir_lock, dir);
    struct cb_error err = {0};
    int fd = 7;
    assert_int_equal(cb_state_lock_data_dir(dir, &fd, &err), -EBUSY);
    assert_int_equal(fd, -1);
    char want[64];
    snprintf(want, sizeof(want), "(pid %ld)", (long)h.pid);
    if (strstr(err.msg, want) == NULL || strstr(err.msg, dir) == NULL)
        fail_msg("'%s' names neither the pid nor %s", err.msg, dir);
    release_holder(&h);
    assert_int_equal(cb_state_lock_data_dir(dir, &fd, &err), 0);
    struct stat st;
    char path[200];
    snprintf(path, sizeof(path), "%s/" CB_STATE_LOCK_FILE, dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    unlink(path);
    rmdir(dir);
}

/* The lock is the process's own: a child forked while it is held (as the
 * tool compiler forks the server) does not keep it after the holder has
 * gone. */
static void data_dir_lock_not_inherited(void **state)
{
    struct fixture *f = *state;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/data", f->dir);
    int release[2];
    assert_int_equal(pipe(release), 0);
    pid_t server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        int fd = -1;
        close(release[1]);
        if (cb_state_lock_data_dir(dir, &fd, NULL) != 0)
            _exit(1);
        pid_t child = fork(); /* keeps every descriptor, lock file included */
        if (child == 0) {
            char c;
            while (read(release[0], &c, 1) > 0)
                ;
            _exit(0);
        }
        _exit(child > 0 ? 0 : 1);
    }
    close(release[0]);
    int status = 0;
    assert_int_equal(waitpid(server, &status, 0), server);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int fd = -1;
    struct cb_error err = {0};
    if (cb_state_lock_data_dir(dir, &fd, &err) != 0)
        fail_msg("the forked child kept the lock: %s", err.msg);
    close(fd);
    close(release[1]); /* lets the orphaned child go */
    char path[200];
    snprintf(path, sizeof(path), "%s/" CB_STATE_LOCK_FILE, dir);
    unlink(path);
    rmdir(dir);
}

struct tool_row {
    int n;
    char names[2][8];
    char shas[2][65]; /* "" for NULL */
};

static int collect_tool(const char *name, const char *manifest, const char *sha, void *ud)
{
    struct tool_row *rows = ud;
    (void)manifest;
    snprintf(rows->names[rows->n], sizeof(rows->names[0]), "%s", name);
    snprintf(rows->shas[rows->n], sizeof(rows->shas[0]), "%s", sha ? sha : "");
    rows->n++;
    return 0;
}

/* A tool manifest stored with its module hash lists with it; a row put
 * through the document API has none; a malformed hash is refused. */
static void tool_rows_carry_the_module_hash(void **state)
{
    struct fixture *f = *state;
    struct cb_error err = {0};
    struct cb_state *s = open_ok(f->path);
    char sha[65];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    assert_int_equal(cb_state_put_tool(s, "t1", "{\"v\":1}", sha, &err), 0);
    assert_int_equal(cb_state_put(s, CB_STATE_TOOLS, "t2", "{\"v\":2}", &err), 0);
    sha[0] = 'A';
    assert_int_equal(cb_state_put_tool(s, "t3", "{}", sha, &err), -EINVAL);
    assert_int_equal(cb_state_put_tool(s, "t3", "{}", "abc", &err), -EINVAL);
    struct tool_row rows = {0};
    assert_int_equal(cb_state_list_tools(s, collect_tool, &rows, &err), 0);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.names[0], "t1");
    assert_int_equal(strspn(rows.shas[0], "a"), 64);
    assert_string_equal(rows.names[1], "t2");
    assert_string_equal(rows.shas[1], "");
    /* replacing the manifest replaces the binding */
    sha[0] = 'b';
    assert_int_equal(cb_state_put_tool(s, "t1", "{\"v\":3}", sha, &err), 0);
    assert_doc(s, CB_STATE_TOOLS, "t1", "{\"v\":3}");
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(cb_state_list_tools(s, collect_tool, &rows, &err), 0);
    assert_int_equal(rows.shas[0][0], 'b');
    cb_state_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(persists_across_reopen),
        T(wal_mode_and_default_open),
        T(files_are_0600),
        T(unknown_table_rejected),
        T(junk_file_is_corrupt),
        T(truncated_db_is_corrupt),
        T(garbled_page_is_corrupt),
        T(newer_schema_refused),
        T(locked_by_other_process),
        T(locked_by_exclusive_locking_mode),
        T(missing_directory),
        T(injection_text_stored_verbatim),
        T(get_and_delete_missing),
        T(upsert_keeps_created_and_status),
        T(limits_enforced),
        T(list_stops_and_reenters),
        T(threads_share_one_handle),
        T(tool_rows_carry_the_module_hash),
        T(anchors_move_forward),
        T(anchors_migrate_and_read_only),
        T(data_dir_lock_refuses_a_second),
        T(data_dir_lock_not_inherited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
