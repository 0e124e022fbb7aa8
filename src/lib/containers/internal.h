/* Internal to the container manager (manager.c, watch.c, recover.c,
 * info.c). */
#ifndef CB_CONTAINERS_INTERNAL_H
#define CB_CONTAINERS_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "containers/manager.h"
#include "containers/request.h"
#include "containers/backend.h"

struct cb_image;
struct cb_ct_proxy;
struct cb_metric;

enum cb__ct_status {
    CB__CT_NONE, /* kill_as: no kill sent */
    CB__CT_CREATING,
    CB__CT_RUNNING,
    CB__CT_COMPLETED,
    CB__CT_FAILED,
    CB__CT_TIMED_OUT,
    CB__CT_KILLED,
};

#define CB__CT_ID_MAX 48 /* "clawbox-" + a UUID + NUL */

struct cb__ct {
    struct cb_ct_manager *m;
    char id[CB__CT_ID_MAX];
    enum cb__ct_status status;
    enum cb_ct_policy policy;
    char *task;
    char *image;
    char *error;            /* why it failed or was removed, or NULL */
    char *owner;            /* cb_ct_spawn_opts.owner, or NULL */
    uint32_t owner_id_base; /* the owner's host id range, or 0: the slot's */
    void (*on_end)(void *ud, const struct cb_ct_end *end);
    void (*on_activity)(void *ud, const char *owner, bool counted);
    void *ud;
    uint64_t created_ms, finished_ms;
    uint64_t deadline_ns; /* monotonic; the timeout's end while it runs */
    uint64_t memory_mb;
    long slot; /* its host id range, or -1 */
    char *dir; /* <data_dir>/containers/<id>, NULL once removed */
    struct cb_image *img;
    struct cb_ct_proxy *px;
    struct cb_ct_started run; /* monitor_pidfd, exit_fd: -1 when not watched */
    /* A pidfd of its init, checked to be in its cgroup once it started
     * (cb__ct_init_pidfd), -1 before and after: what files.c trusts the
     * init's pid through. */
    int init_pidfd;
    char *bind_target; /* where the spawn's bind is mounted when writable, or NULL */
    /* What the watcher's epoll events point at: c's exit pipe (the exit
     * is recorded) and its monitor's pidfd (the container is deleted). */
    struct cb__ct_watch {
        struct cb__ct *c;
    } watch_exit, watch_gone;
    struct cb_ct_exit exit;
    bool exited;
    bool deleting;
    /* Its DELETE was answered before its monitor ended (a monitor stuck
     * past DELETE_WAIT_MS): it is out of sight (find, list), keeps its
     * slot and its files, and gone() removes it when the monitor ends. */
    bool abandoned;
    int execs; /* running execs (exec.c) */
    /* Its execs for GET .../execs/{exec_id}: the running ones and the
     * last CB__CT_EXECS_KEPT finished, newest first (manager.c). */
    struct cb__ct_exec_rec *exec_recs;
    /* Its spawn's audit line or its end's record is being written outside
     * the lock: it is not freed, and nothing later of it is written, until
     * this is 0. */
    int busy;
    enum cb__ct_status kill_as; /* what a kill we sent makes of its end */
    struct cb__ct *next;
};

struct cb_ct_manager {
    const struct cb_config *cfg;
    /* Execs entered and not yet left, whether or not their container is
     * still listed (a DELETE does not wait for them): the close waits for
     * this to reach 0, as each exec uses the manager until it leaves. */
    int execs;
    struct cb_state *state;
    struct cb_proxy *proxy;
    struct cb_audit *audit;
    char *monitor_exe;
    struct cb_ct_backend be; /* when have_rt */
    bool have_rt;
    char *why_not; /* when !have_rt */
    char *ct_root; /* <data_dir>/containers */
    char *image_store;
    /* The same two directories as the runtime is given them (see stage()
     * in manager.c); equal to the above when not staged. */
    char *ct_root_rt;
    char *image_store_rt;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a container ended or finished being created */
    struct cb__ct *list;    /* oldest first */
    size_t active;          /* holding a slot: not yet deleted by its monitor */
    unsigned char *slots;   /* max_containers flags: host id range in use */
    int epfd;               /* the monitors' pidfds and exit pipes, and wakefd */
    int wakefd;
    pthread_t watcher;
    bool watching;
    bool stopping;
    struct cb_metric *m_active, *m_total, *m_spawn_seconds, *m_proxied;
};

/* info.c: ContainerInfo as the API shows it, and the row stored. */
const char *cb__ct_status_name(enum cb__ct_status s);
int cb__ct_status_parse(const char *s, enum cb__ct_status *out);
json_t *cb__ct_info(const struct cb__ct *c);
/* The row of c as text (under m->lock), and storing it (without the lock,
 * since it waits for the disk; frees text; a failure is logged, and given
 * in err when not NULL). cb__ct_persist does both. */
char *cb__ct_record(const struct cb__ct *c);
int cb__ct_store(struct cb_ct_manager *m, const char *id, char *text, struct cb_error *err);
void cb__ct_persist(struct cb_ct_manager *m, const struct cb__ct *c);
/* Waits (under m->lock) until nothing of c is being written (busy). */
void cb__ct_wait_idle(struct cb_ct_manager *m, struct cb__ct *c);
void cb__ct_free(struct cb__ct *c);

/* watch.c: the thread that sees monitors end, enforces deadlines and drops
 * finished containers past their retention. */
int cb__ct_watch_start(struct cb_ct_manager *m, struct cb_error *err);
void cb__ct_watch_stop(struct cb_ct_manager *m);
/* Watches c's monitor from now on (c->run is set): the end of its exit
 * pipe makes the end seen, the end of the monitor frees its place. Under
 * m->lock. */
int cb__ct_watch_add(struct cb_ct_manager *m, struct cb__ct *c);
/* Stops watching c's monitor and closes what was watched (its end is no
 * longer of interest). Under m->lock. */
void cb__ct_unwatch(struct cb_ct_manager *m, struct cb__ct *c);
/* Wakes the watcher to recompute its deadlines. */
void cb__ct_watch_poke(struct cb_ct_manager *m);
/* Sends SIGKILL to a running container, recording what its end means.
 * Called without m->lock. */
void cb__ct_kill(struct cb_ct_manager *m, struct cb__ct *c, enum cb__ct_status as);

/* mountpoint.c: creates the directory `path` (clean, absolute) and any
 * missing one above it in the rootfs, resolving within it
 * (RESOLVE_IN_ROOT): an image's symbolic links cannot lead outside. */
int cb__ct_mkdir_in_root(const char *rootfs, const char *path, struct cb_error *err);
/* mountpoint.c: copies the host's static catatonit to dir/init, root:gid
 * 0750. -ENOENT when the host has none. */
int cb__ct_idle_init_install(const char *dir, gid_t gid, struct cb_error *err);

/* recover.c: what an earlier run of this server left. */
void cb__ct_recover(struct cb_ct_manager *m);

/* logs.c: output redaction and the follower. */

/* The text redacted like /execute output, as a new JSON string
 * ("[REDACTED]" when it cannot be scanned). */
json_t *cb__ct_redact_text(struct cb_ct_manager *m, const char *data, size_t len);
/* Where the last `tail` lines of data start (0 = all; a final line end
 * does not count as a line). */
size_t cb__ct_tail_start(const char *data, size_t len, size_t tail);
/* A follower of the log in dir (NULL: the container has none; the
 * follower then ends at once), starting at its last `tail` lines. */
struct cb_ct_follow *cb__ct_follow_new(struct cb_ct_manager *m, const char *id, const char *dir,
                                       size_t tail);

/* Text that arrives in pieces (a log, an exec's output), redacted by whole
 * lines with the end of what went before as context, so that a secret
 * written in two pieces is still caught (see the top of logs.c). Bytes
 * are added at hold[hold_len..CB__CT_LINES_HOLD) by the caller. */
#define CB__CT_LINES_HOLD (2u * 16384u) /* twice the longest secret (scan/leak.h) */
#define CB__CT_LINES_CTX  16384u        /* the longest secret */
struct cb__ct_lines {
    struct cb_ct_manager *m; /* whose scanner redacts */
    size_t hold_len;
    char hold[CB__CT_LINES_HOLD]; /* read, not yet redacted: the unfinished line */
    size_t ctx_len;
    char ctx[CB__CT_LINES_CTX]; /* the end of what was handed out, raw */
    json_t *ready;              /* redacted, being handed out from ready_off */
    size_t ready_off;
};
void cb__ct_lines_init(struct cb__ct_lines *l, struct cb_ct_manager *m);
/* Drops what is held and ready, zeroing it. */
void cb__ct_lines_clear(struct cb__ct_lines *l);
/* Redacts the held text up to its last line end (with `final`, all of
 * it; a line longer than the hold is cut) into what is ready, replacing
 * what was ready: take that first. */
void cb__ct_lines_release(struct cb__ct_lines *l, bool final);
/* How many redacted bytes are ready to go out, at *text when not NULL;
 * the caller adds what it took to ready_off. */
size_t cb__ct_lines_ready(const struct cb__ct_lines *l, const char **text);

/* manager.c */
/* Whether container id's output log is complete: it has ended, or is
 * gone. Takes m->lock. */
bool cb__ct_output_final(struct cb_ct_manager *m, const char *id);
void cb__ct_release(struct cb_ct_manager *m, struct cb__ct *c);      /* slot + active; under lock */
void cb__ct_unlink(struct cb_ct_manager *m, struct cb__ct *c);       /* from the list; under lock */
void cb__ct_remove_files(struct cb_ct_manager *m, struct cb__ct *c); /* socket, dir, row */
void cb__ct_audit(struct cb_ct_manager *m, const struct cb__ct *c, const char *request_id,
                  const char *method);
#define CB__CT_EXEC_ID_LEN 20 /* "ex_" + 16 hex digits + NUL */
#define CB__CT_EXECS_KEPT  64 /* finished execs a container remembers */
/* Where an exec runs; the strings are copies. */
struct cb__ct_exec_target {
    char *dir;      /* the container's directory */
    pid_t init_pid; /* its init */
    int init_pidfd; /* a duplicate of cb__ct.init_pidfd (valid while dir is set) */
    char *netns;    /* the namespace the runtime starts in (cb_ct_backend.joins_netns), or NULL */
    char exec_id[CB__CT_EXEC_ID_LEN]; /* the exec's new id */
};
/* An exec's place in running container id (at most
 * max_execs_per_container at once) and its record (running, q's
 * command), *t filled (free with cb__ct_exec_target_clear). -ENOENT (no
 * such container), -ESRCH (it is not running) or -EAGAIN (at the cap). */
int cb__ct_exec_enter(struct cb_ct_manager *m, const char *id, const struct cb_ct_exec_request *q,
                      struct cb__ct_exec_target *t, struct cb_error *err);
void cb__ct_exec_target_clear(struct cb__ct_exec_target *t);
/* Records how the exec ended (before its end is told to its client, so
 * that a report asked for then already has it). */
struct cb__ct_exec_outcome;
void cb__ct_exec_ended(struct cb_ct_manager *m, const char *id, const char *exec_id,
                       const struct cb__ct_exec_outcome *o);
/* Gives the place back; an exec that never ran (!ran) leaves no record. */
void cb__ct_exec_leave(struct cb_ct_manager *m, const char *id, const char *exec_id, bool ran);
/* Frees c's exec records (cb__ct_free). */
void cb__ct_exec_recs_free(struct cb__ct *c);

/* exec_kill.c: an exec's processes, as the host sees them. */
/* Field `index` (0-based, after the command's closing parenthesis:
 * 0 state, 1 ppid, 2 pgrp, 3 session, 19 start time) of /proc/<pid>/stat,
 * or -1; the state as a letter in *state when not NULL. */
long long cb__ct_stat_field(pid_t pid, int index, char *state);
/* The inode of pid's PID namespace, or 0. */
ino_t cb__ct_pid_ns(pid_t pid);
/* The sessions of an exec's processes: sids[0..n), and, when lo < hi,
 * any session led by a pid in (lo, hi) of processes started at
 * `since` (clock ticks after boot, as /proc/<pid>/stat says) or later. */
struct cb__ct_sessions {
    const pid_t *sids;
    size_t n;
    pid_t lo, hi;
    long long since;
};
/* Kills every live process of PID namespace ns in one of the sessions,
 * until a round finds none. */
void cb__ct_kill_sessions(ino_t ns, const struct cb__ct_sessions *s);

/* exec.c: an exec, started (cb__ct_exec_start: the request parsed, a
 * place among the container's execs taken, the runtime's exec running)
 * and then run to its end (cb__ct_exec_finish, which may be called on
 * another thread). Its output goes to a sink as it arrives. */
struct cb__ct_exec_sink {
    /* Raw output of stdout (is_err false) or stderr, within the cap. */
    void (*output)(void *ud, bool is_err, const char *data, size_t len);
    /* Whether the output must wait (the reader is behind); NULL: never. */
    bool (*full)(void *ud);
    /* Whether the exec is to be ended now (its reader went away); NULL:
     * never. */
    bool (*cancelled)(void *ud);
    /* Called before each wait: does what is due and returns the
     * milliseconds until it should be called again, or -1; NULL: never. */
    int (*due)(void *ud);
    int wake_fd; /* an eventfd written when full or cancelled changes, or -1 */
    void *ud;
};
struct cb__ct_exec_outcome {
    int code; /* its exit code, or -1 (killed: timed out, cancelled, a signal) */
    uint64_t duration_ms;
    bool timed_out, cancelled, truncated;
};
struct cb__ct_exec;
/* -EBADMSG/-EINVAL (the body), -ENOENT, -ESRCH, -EAGAIN (as
 * cb__ct_exec_enter), or the failure to start it. The sink must outlive
 * the exec's finish. body is held (by reference) until then. */
int cb__ct_exec_start(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, const struct cb__ct_exec_sink *sink,
                      struct cb__ct_exec **out, struct cb_error *err);
/* Runs the exec to its end (its exit, its timeout or its cancellation,
 * each killing what it left) and audits it. */
void cb__ct_exec_finish(struct cb__ct_exec *x, struct cb__ct_exec_outcome *o);
/* Gives its place among the container's execs back, and frees it; the
 * manager may be closed once every exec is freed. Accepts NULL. */
void cb__ct_exec_free(struct cb__ct_exec *x);
/* Its id ("ex_" + 16 hex digits). */
const char *cb__ct_exec_id(const struct cb__ct_exec *x);
/* What files.c works on; the fd and the string are the caller's. */
struct cb__ct_files_target {
    pid_t init;
    int init_pidfd;    /* a duplicate of cb__ct.init_pidfd */
    uint32_t id_base;  /* the host id of the container's uid 0 */
    char *bind_target; /* the writable bind's mount point, or NULL */
};
/* files.c's entry for running container id. -ENOENT or -ESRCH as for an
 * exec. */
int cb__ct_files_target(struct cb_ct_manager *m, const char *id, struct cb__ct_files_target *t,
                        struct cb_error *err);
/* file_out.c: a file to hand out, copied from src (at most max bytes) to
 * an unlinked file in the data directory, checked there: -EACCES for
 * bytes that are not text and hold a secret. */
int cb__ct_file_take(struct cb_ct_manager *m, int src, uint64_t max, struct cb_ct_file **out,
                     struct cb_error *err);
/* A pidfd of pid, a container's init just started, once /proc shows it in
 * the container's cgroup (/clawbox/<id>), so a pid taken by another process
 * since is never trusted; -1 when not. Close-on-exec. */
int cb__ct_init_pidfd(pid_t pid, const char *id);
/* Whether the init of init_pidfd still runs: checked after something was
 * opened through its pid, it proves the pid was that init's then. */
bool cb__ct_init_alive(int init_pidfd);

#endif
