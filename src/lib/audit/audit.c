/* The audit log writer: chain head recovery, appends with group-committed
 * fdatasync, and rotation by size. See audit.h for the contract.
 *
 * Locking: several processes may append to one log (the server, and CLI
 * verbs such as `creds add` while it runs). Each append holds the
 * directory's writers' lock (lock.c: a mutex shared through
 * <dir>/.audit.lock) while it formats and writes its line; on taking the
 * lock it first catches up with whatever other writers did since its last
 * append (a rotation shows as audit.jsonl being another file, an append as
 * a size change; either way the head is read again from the file), so the
 * chain never forks. Within a process `mu` serialises appenders and covers
 * the chain state (head hash, file, size, rotation). Durability is handled
 * after both are released: `sync_mu` elects one thread at a time to run
 * fdatasync on the current descriptor, and every line written before that
 * sync started counts as synced when it finishes. A rotation (by any
 * process) fdatasyncs the old file before switching, and a writer that
 * finds the file rotated under it syncs its old descriptor too, so a sync
 * of the new file never needs to cover lines of the old one, and a sync
 * whose descriptor was closed under it (fd_gen moved) has nothing left to
 * make durable.
 *
 * Anchor: the thread that ran a sync hands the head it covered (seq and
 * hash) to the anchor writer thread (anchor.c), which stores the newest one
 * at most every 50 ms; the append path never waits for SQLite (nor for
 * another process holding its lock). So the anchor lags a little and never
 * runs ahead. The anchor is read only when the head is read from the files
 * (open, and catching up with another writer): a log that is then shorter
 * than the anchor, or than this writer knew it to be, was cut, and a line
 * of kind "audit" records it. */
#include "audit/audit.h"
#include "audit/internal.h"
#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long the background syncer lets lines gather before it syncs. */
#define SYNC_GATHER_US 2000u

static const char ZERO_HASH[CB_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static int sys_err(struct cb_error *err, const char *what, const char *name)
{
    int e = errno;
    return cb_error_set(err, -e, "audit log: %s %s: %s", what, name, strerror(e));
}

/* Takes the directory lock that every writer, in any process, holds while
 * it reads the chain head and writes a line. Blocks: a line takes one write
 * to append, so nobody holds it long. */
static int lock_dir(struct cb_audit *a, struct cb_error *err)
{
    return cb__audit_lock(a, err);
}

static void unlock_dir(struct cb_audit *a)
{
    cb__audit_unlock(a);
}

/* Takes the head (hash and seq) from the last line of a file; a chain
 * whose last line carries no seq (written before lines were numbered) is
 * counted once. No line at all: the chain is empty. */
static int take_audit_head(struct cb_audit *a, const struct cb__audit_tail *t, struct cb_error *err)
{
    if (!t->found) {
        memcpy(a->head, ZERO_HASH, sizeof(a->head));
        a->lines = 0;
        return 0;
    }
    memcpy(a->head, t->hash, sizeof(a->head));
    a->lines = t->seq;
    return t->seq > 0 ? 0 : cb__audit_count_lines(a->dir, &a->lines, err);
}

/* Chain head from the newest rotated file, used when audit.jsonl is empty
 * (new, or a crash between rotation's rename and the first line). */
static int head_from_rotated(struct cb_audit *a, struct cb_error *err)
{
    char name[64];
    struct stat st;
    struct cb__audit_tail t = {0};
    if (a->seq == 0)
        return take_audit_head(a, &t, err);
    snprintf(name, sizeof(name), "audit.%0*llu.jsonl", CB__AUDIT_SEQ_WIDTH,
             (unsigned long long)a->seq);
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, "opening", name);
    int r = fstat(fd, &st) < 0 ? sys_err(err, "stat", name)
                               : cb__audit_last_line(fd, st.st_size, &t, err);
    close(fd);
    return r < 0 ? r : take_audit_head(a, &t, err);
}

/* Reads the head from audit.jsonl, first cutting off an incomplete last
 * line: it was never acknowledged, and a line appended after it would be
 * glued to it. */
static int recover_head(struct cb_audit *a, struct cb_error *err)
{
    struct cb__audit_tail t = {0};
    int r = a->size ? cb__audit_last_line(a->fd, (off_t)a->size, &t, err) : 0;
    if (r == 0 && t.partial > 0) {
        if (ftruncate(a->fd, (off_t)(a->size - t.partial)) < 0 || fdatasync(a->fd) < 0)
            return sys_err(err, "cutting an incomplete line from", CB_AUDIT_FILE);
        a->size -= t.partial;
        a->recovered += t.partial;
    }
    if (r < 0)
        return r;
    return t.found ? take_audit_head(a, &t, err) : head_from_rotated(a, err);
}

static int open_current(struct cb_audit *a, struct cb_error *err)
{
    struct stat st;
    a->fd =
        openat(a->dirfd, CB_AUDIT_FILE, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->fd < 0)
        return sys_err(err, "opening", CB_AUDIT_FILE);
    if (fstat(a->fd, &st) < 0)
        return sys_err(err, "stat", CB_AUDIT_FILE);
    if (!S_ISREG(st.st_mode))
        return cb_error_set(err, -EINVAL, "audit log: %s is not a regular file", CB_AUDIT_FILE);
    a->size = (uint64_t)st.st_size;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    /* The file may have just been created: make its name durable. */
    if (fsync(a->dirfd) < 0)
        return sys_err(err, "syncing", a->dir);
    return 0;
}

/* Opens the current file and reads the chain head from the files on disk
 * (directory lock held). */
static int load_state(struct cb_audit *a, struct cb_error *err)
{
    struct cb__audit_files files;
    int r = cb__audit_list(a->dir, &files, err);
    if (r < 0)
        return r;
    a->seq = files.max_seq;
    cb__audit_files_free(&files);
    if ((r = open_current(a, err)) < 0)
        return r;
    return recover_head(a, err);
}

static int open_steps(struct cb_audit *a, const char *anchor_db, struct cb_error *err)
{
    int r = cb_mkdir_p(a->dir, 0700, err);
    if (r < 0)
        return r;
    a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0)
        return sys_err(err, "opening directory", a->dir);
    if ((r = cb__audit_lock_open(a, err)) < 0)
        return r;
    if (anchor_db != NULL)
        cb__audit_anchor_open(a, anchor_db);
    if ((r = lock_dir(a, err)) < 0)
        return r;
    r = load_state(a, err);
    if (r == 0)
        r = cb__audit_check_chain(a, NULL, err);
    unlock_dir(a);
    return r;
}

int cb_audit_open(const struct cb_audit_options *opts, struct cb_audit **out, struct cb_error *err)
{
    struct cb_audit *a = cb_xcalloc(1, sizeof(*a));
    a->dir = cb_xstrdup(opts->dir);
    a->max_file_bytes = opts->max_file_bytes;
    a->dirfd = a->lockfd = a->fd = -1;
    a->line = cb_xmalloc(CB_AUDIT_MAX_LINE + 2);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->sync_mu, NULL);
    pthread_cond_init(&a->sync_cv, NULL);
    int r = open_steps(a, opts->anchor_db, err);
    if (r < 0) {
        cb_audit_close(a);
        return r;
    }
    *out = a;
    return 0;
}

static void syncer_stop(struct cb_audit *a);

void cb_audit_close(struct cb_audit *a)
{
    if (a == NULL)
        return;
    syncer_stop(a);
    if (a->fd >= 0) {
        fdatasync(a->fd);
        close(a->fd);
    }
    cb__audit_lock_close(a);
    if (a->dirfd >= 0)
        close(a->dirfd);
    cb__audit_anchor_close(a);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->sync_mu);
    pthread_cond_destroy(&a->sync_cv);
    free(a->line);
    free(a->dir);
    free(a);
}

/* Renames audit.jsonl to the next audit.<seq>.jsonl and starts a new one.
 * The old file is synced first, so its lines are durable whatever happens
 * to the new one. Called with mu held. */
static int rotate(struct cb_audit *a, struct cb_error *err)
{
    char name[64];
    snprintf(name, sizeof(name), "audit.%0*llu.jsonl", CB__AUDIT_SEQ_WIDTH,
             (unsigned long long)(a->seq + 1));
    if (fdatasync(a->fd) < 0)
        return sys_err(err, "syncing", CB_AUDIT_FILE);
    if (renameat2(a->dirfd, CB_AUDIT_FILE, a->dirfd, name, RENAME_NOREPLACE) < 0)
        return sys_err(err, "rotating to", name);
    a->seq++;
    a->fd_gen++;
    close(a->fd);
    a->fd = -1;
    return open_current(a, err);
}

/* One write(2). A short write (disk full) is undone, so the file never
 * holds half a line; the log is then failed either way. */
static int write_line(struct cb_audit *a, const char *line, size_t n, struct cb_error *err)
{
    ssize_t w = cb_write_retry(a->fd, line, n);
    if (w == (ssize_t)n)
        return 0;
    int e = w < 0 ? (int)-w : ENOSPC;
    if (w > 0 && ftruncate(a->fd, (off_t)a->size) < 0)
        e = errno;
    return cb_error_set(err, -e, "audit log: writing %s: %s", CB_AUDIT_FILE, strerror(e));
}

/* Marks the log failed (mu held): lines written but not yet synced must not
 * be acknowledged either, since a later fdatasync may succeed after the
 * kernel dropped their pages. */
static void fail_locked(struct cb_audit *a, int r)
{
    a->failed = true;
    pthread_mutex_lock(&a->sync_mu);
    if (a->sync_err == 0)
        a->sync_err = r;
    pthread_cond_broadcast(&a->sync_cv);
    pthread_mutex_unlock(&a->sync_mu);
}

/* Another process rotated the log: our lines in the old file become
 * durable now (our later syncs cover only the new one), then the state is
 * read again. Called with mu and the directory lock held. */
static int follow_rotation(struct cb_audit *a, struct cb_error *err)
{
    if (fdatasync(a->fd) < 0)
        return sys_err(err, "syncing", CB_AUDIT_FILE);
    a->fd_gen++;
    close(a->fd);
    a->fd = -1;
    return load_state(a, err);
}

/* Reads the head again after the files changed under us (mu and the
 * directory lock held). */
static int reread(struct cb_audit *a, bool rotated, struct cb_error *err)
{
    struct stat ours;
    if (rotated)
        return follow_rotation(a, err);
    if (fstat(a->fd, &ours) < 0)
        return sys_err(err, "stat", CB_AUDIT_FILE);
    a->size = (uint64_t)ours.st_size;
    return recover_head(a, err);
}

/* Catches up with lines other processes appended since our last append
 * (called with mu and the directory lock held): when audit.jsonl is no
 * longer the file we hold, or has another size, the head is read again,
 * and must not be behind the head we knew (see cb__audit_check_chain). */
static int catch_up(struct cb_audit *a, struct cb_error *err)
{
    struct stat named;
    bool rotated;
    if (fstatat(a->dirfd, CB_AUDIT_FILE, &named, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return sys_err(err, "stat", CB_AUDIT_FILE);
        rotated = true;
    } else {
        rotated = named.st_dev != a->dev || named.st_ino != a->ino;
    }
    /* Not rotated: the name is the file we hold, so its size is ours. */
    if (!rotated && (uint64_t)named.st_size == a->size)
        return 0;
    struct cb_state_anchor before = {.lines = a->lines};
    memcpy(before.head, a->head, sizeof(before.head));
    int r = reread(a, rotated, err);
    return r < 0 ? r : cb__audit_check_chain(a, &before, err);
}

int cb__audit_write_locked(struct cb_audit *a, const struct cb_audit_record *rec, char *line,
                           struct cb_error *err)
{
    int r = catch_up(a, err);
    if (r < 0)
        return r;
    size_t n = cb__audit_format(rec, cb_now_wall_ms(), a->lines + 1, a->head, line);
    line[n] = '\n';
    if (a->max_file_bytes && a->size > 0 && a->size + n + 1 > a->max_file_bytes)
        r = rotate(a, err);
    if (r == 0)
        r = write_line(a, line, n + 1, err);
    if (r == 0) {
        cb__audit_hash(line, n, a->head);
        a->size += n + 1;
        a->lines++;
    }
    return r;
}

static int append_locked(struct cb_audit *a, const struct cb_audit_record *rec, char *line,
                         uint64_t *number, struct cb_error *err)
{
    if (a->failed)
        return cb_error_set(err, CB_AUDIT_E_FAILED,
                            "audit log: an earlier write or sync failed; refusing to append");
    int r = lock_dir(a, err);
    if (r == 0) {
        r = cb__audit_write_locked(a, rec, line, err);
        unlock_dir(a);
    }
    if (r < 0) {
        fail_locked(a, r);
        return r;
    }
    *number = ++a->written;
    return 0;
}

/* Runs one fdatasync for whoever is waiting, then has the head it covered
 * anchored (every line up to it, ours or another process's, is in the file
 * synced). Called with sync_mu held; returns with it held. */
static int lead_sync(struct cb_audit *a)
{
    struct cb_state_anchor head;
    a->syncing = true;
    pthread_mutex_unlock(&a->sync_mu);
    pthread_mutex_lock(&a->mu);
    uint64_t target = a->written;
    head.lines = a->lines;
    memcpy(head.head, a->head, sizeof(head.head));
    int fd = a->fd;
    uint64_t gen = a->fd_gen;
    pthread_mutex_unlock(&a->mu);
    /* No dup (two system calls per sync): a rotation may close fd, even
     * let its number be reused, while the sync runs; it synced every line
     * of the old file first, the target's included, so a failure of the
     * descriptor itself (EBADF, or EINVAL for a number reused by a file
     * that cannot sync) is then no loss. A write-back error (EIO, ENOSPC)
     * is reported to one fdatasync of the open file only, which may be
     * this one: it stays a failure. */
    int r = fd < 0 ? -EIO : fdatasync(fd) < 0 ? -errno : 0;
    if ((r == -EBADF || r == -EINVAL) && fd >= 0) {
        pthread_mutex_lock(&a->mu);
        if (a->fd_gen != gen)
            r = 0;
        pthread_mutex_unlock(&a->mu);
    }
    if (r == 0)
        cb__audit_anchor_post(a, &head);
    pthread_mutex_lock(&a->sync_mu);
    a->syncing = false;
    if (r < 0 && a->sync_err == 0)
        a->sync_err = r;
    if (r == 0 && target > a->synced)
        a->synced = target;
    pthread_cond_broadcast(&a->sync_cv);
    return r;
}

/* Waits until line `number` is durable, syncing if nobody else is. */
static int sync_until(struct cb_audit *a, uint64_t number, struct cb_error *err)
{
    int r = 0;
    pthread_mutex_lock(&a->sync_mu);
    while (r == 0 && a->synced < number) {
        if (a->sync_err != 0)
            r = a->sync_err;
        else if (a->syncing)
            pthread_cond_wait(&a->sync_cv, &a->sync_mu);
        else
            r = lead_sync(a);
    }
    pthread_mutex_unlock(&a->sync_mu);
    if (r < 0) {
        pthread_mutex_lock(&a->mu);
        a->failed = true;
        pthread_mutex_unlock(&a->mu);
        return cb_error_set(err, r, "audit log: line not made durable: %s", strerror(-r));
    }
    return 0;
}

static int write_one(struct cb_audit *a, const struct cb_audit_record *rec, uint64_t *number,
                     struct cb_error *err)
{
    pthread_mutex_lock(&a->mu);
    int r = append_locked(a, rec, a->line, number, err);
    pthread_mutex_unlock(&a->mu);
    return r;
}

int cb_audit_append(struct cb_audit *a, const struct cb_audit_record *rec, struct cb_error *err)
{
    uint64_t number = 0;
    int r = write_one(a, rec, &number, err);
    return r < 0 ? r : sync_until(a, number, err);
}

/* The background syncer: one fdatasync (with the group commit of
 * lead_sync) whenever lines are waiting for one, until the log closes or
 * a sync failed. It first lets the lines of the next SYNC_GATHER_US come
 * (asleep, so their appends wake nobody): under a steady stream of
 * proxied requests one sync then covers several, where a sync per line
 * cost the requests a fifth of the server's CPU on a small VM. */
/* Whether lines wait for a sync the syncer may run. With sync_mu. */
static bool sync_due(const struct cb_audit *a)
{
    return a->sync_err == 0 && a->synced < a->sync_wanted && !a->syncing;
}

static void *syncer(void *arg)
{
    struct cb_audit *a = arg;
    pthread_mutex_lock(&a->sync_mu);
    while (!a->syncer_stop) {
        if (sync_due(a)) {
            pthread_mutex_unlock(&a->sync_mu);
            struct timespec gather = {0, SYNC_GATHER_US * 1000L};
            nanosleep(&gather, NULL);
            pthread_mutex_lock(&a->sync_mu);
            /* Asked again: a sync led meanwhile, or one that failed, changed it. */
            if (sync_due(a))
                lead_sync(a);
        } else {
            a->syncer_idle = true;
            pthread_cond_wait(&a->sync_cv, &a->sync_mu);
            a->syncer_idle = false;
        }
    }
    pthread_mutex_unlock(&a->sync_mu);
    return NULL;
}

static void syncer_stop(struct cb_audit *a)
{
    pthread_mutex_lock(&a->sync_mu);
    bool started = a->syncer_started;
    a->syncer_stop = true;
    pthread_cond_broadcast(&a->sync_cv);
    pthread_mutex_unlock(&a->sync_mu);
    if (started)
        pthread_join(a->syncer, NULL);
}

int cb_audit_append_written(struct cb_audit *a, const struct cb_audit_record *rec,
                            struct cb_error *err)
{
    uint64_t number = 0;
    int r = write_one(a, rec, &number, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&a->sync_mu);
    r = a->sync_err;
    if (number > a->sync_wanted)
        a->sync_wanted = number;
    if (r == 0 && !a->syncer_started) {
        /* Without the thread, the line is synced here, as by append. */
        a->syncer_started = pthread_create(&a->syncer, NULL, syncer, a) == 0;
    }
    /* A syncer that is gathering or syncing comes back for this line by
     * itself: waking it for every line cost each request two futex calls
     * and a wake-up of another thread. */
    bool wake = a->syncer_idle;
    bool started = a->syncer_started;
    pthread_mutex_unlock(&a->sync_mu);
    if (wake)
        pthread_cond_broadcast(&a->sync_cv);
    if (r < 0)
        return cb_error_set(err, r, "audit log: an earlier sync failed: %s", strerror(-r));
    return started ? 0 : sync_until(a, number, err);
}

int cb_audit_append_as(struct cb_audit *log, const struct cb_audit_record *rec, const char *sync,
                       struct cb_error *err)
{
    if (sync != NULL && strcmp(sync, "before_response") == 0)
        return cb_audit_append(log, rec, err);
    return cb_audit_append_written(log, rec, err);
}
