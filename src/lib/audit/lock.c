/* The writers' lock of an audit directory, shared by every process that
 * appends to it (the server, and CLI verbs such as `creds add` while it
 * runs): a process-shared robust mutex in <dir>/.audit.lock, which each
 * writer maps.
 *
 * Taking and releasing it costs no system call while nobody else holds it
 * (flock(2), which it replaces, cost two per line). A writer that died
 * holding it (kill -9 in the middle of a line) leaves it to the next, which
 * finds the file changed as after any other writer's line (audit.c,
 * catch_up) and reads the head, cutting a half-written line, again.
 *
 * The page is laid out once, by the first writer, under flock(2) on the
 * same file (so two first writers cannot both do it); a page laid out by
 * another build (another mutex size) is refused rather than trusted. */
#include "audit/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"

/* "clawbox audit lock", the layout's version, and the mutex's size. */
#define LOCK_MAGIC (0x636c617564310000ull | (uint64_t)sizeof(pthread_mutex_t))

struct cb__audit_shared {
    _Atomic uint64_t magic; /* LOCK_MAGIC once the page is laid out */
    pthread_mutex_t mu;
};

static int lock_err(struct cb_error *err, const char *what, const char *dir)
{
    int e = errno;
    return cb_error_set(err, -e, "audit log: %s %s/%s: %s", what, dir, CB__AUDIT_LOCK, strerror(e));
}

static int lay_out(struct cb__audit_shared *sh)
{
    pthread_mutexattr_t at;
    int r = pthread_mutexattr_init(&at);
    if (r == 0)
        r = pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutex_init(&sh->mu, &at);
    pthread_mutexattr_destroy(&at);
    if (r == 0)
        atomic_store(&sh->magic, LOCK_MAGIC);
    return -r;
}

/* Maps the page (laying it out when the file is new); flock held. */
static int map_page(struct cb_audit *a, struct cb_error *err)
{
    struct stat st;
    if (fstat(a->lockfd, &st) < 0)
        return lock_err(err, "stat", a->dir);
    if (!S_ISREG(st.st_mode))
        return cb_error_set(err, -EINVAL, "audit log: %s/%s is not a regular file", a->dir,
                            CB__AUDIT_LOCK);
    bool fresh = st.st_size == 0;
    if (fresh && ftruncate(a->lockfd, sizeof(struct cb__audit_shared)) < 0)
        return lock_err(err, "sizing", a->dir);
    if (!fresh && (size_t)st.st_size != sizeof(struct cb__audit_shared))
        return cb_error_set(err, -EINVAL,
                            "audit log: %s/%s is not a lock of this clawbox (%lld bytes); stop "
                            "every clawbox that writes there and remove it",
                            a->dir, CB__AUDIT_LOCK, (long long)st.st_size);
    void *p = mmap(NULL, sizeof(struct cb__audit_shared), PROT_READ | PROT_WRITE, MAP_SHARED,
                   a->lockfd, 0);
    if (p == MAP_FAILED)
        return lock_err(err, "mapping", a->dir);
    a->shared = p;
    /* No magic yet: a first writer died laying it out, so nobody uses it. */
    int r = fresh || atomic_load(&a->shared->magic) == 0 ? lay_out(a->shared) : 0;
    if (r < 0)
        return cb_error_set(err, r, "audit log: laying out %s/%s: %s", a->dir, CB__AUDIT_LOCK,
                            strerror(-r));
    if (atomic_load(&a->shared->magic) != LOCK_MAGIC)
        return cb_error_set(err, -EINVAL,
                            "audit log: %s/%s was laid out by another clawbox build; stop every "
                            "clawbox that writes there and remove it",
                            a->dir, CB__AUDIT_LOCK);
    return 0;
}

int cb__audit_lock_open(struct cb_audit *a, struct cb_error *err)
{
    a->lockfd = openat(a->dirfd, CB__AUDIT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lockfd < 0)
        return lock_err(err, "opening", a->dir);
    int r = cb_flock_retry(a->lockfd, LOCK_EX);
    if (r < 0)
        return cb_error_set(err, r, "audit log: locking %s/%s: %s", a->dir, CB__AUDIT_LOCK,
                            strerror(-r));
    r = map_page(a, err);
    flock(a->lockfd, LOCK_UN);
    return r;
}

void cb__audit_lock_close(struct cb_audit *a)
{
    if (a->shared != NULL)
        munmap(a->shared, sizeof(*a->shared));
    a->shared = NULL;
    if (a->lockfd >= 0)
        close(a->lockfd);
    a->lockfd = -1;
}

int cb__audit_lock(struct cb_audit *a, struct cb_error *err)
{
    int r = pthread_mutex_lock(&a->shared->mu);
    if (r == EOWNERDEAD) /* its holder died, perhaps half-way through a line */
        r = pthread_mutex_consistent(&a->shared->mu);
    if (r != 0)
        return cb_error_set(err, -r, "audit log: locking %s/%s: %s", a->dir, CB__AUDIT_LOCK,
                            strerror(r));
    return 0;
}

void cb__audit_unlock(struct cb_audit *a)
{
    pthread_mutex_unlock(&a->shared->mu);
}
