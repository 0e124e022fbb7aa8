/* The container manager: spawns hardened containers through the
 * container backend (backend.h: the OCI runtime), each with its bundle (bundle.h), its image from
 * the local store (images.h) and its own proxy socket (proxysock.h); tracks them from `creating` to
 * `completed`, `failed`, `timed_out` or `killed` without polling (a thread waits on the monitors'
 * pidfds and the deadlines); keeps them as rows in the state database; and on start removes what an
 * earlier run of this server left in its runtime root.
 *
 * Every function is thread-safe. Errors map to the API's codes:
 * -EBADMSG 422 and -EINVAL 400 invalid_request, -EPERM 403 policy_denied,
 * -EAGAIN 429 resource_exhausted, -ENOENT 404 not_found, -ENODEV (no
 * working runtime) and anything else 500 container_error. */
#ifndef CB_CONTAINERS_MANAGER_H
#define CB_CONTAINERS_MANAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

struct cb_state;
struct cb_proxy;
struct cb_audit;
struct cb_metrics;
struct cb_ct_manager;

struct cb_ct_manager_options {
    const struct cb_config *cfg;
    struct cb_state *state;
    struct cb_proxy *proxy; /* the egress pipeline; its scanner redacts container output */
    struct cb_audit *audit; /* may be NULL */
    struct cb_metrics *metrics;
    const char *monitor_exe; /* the clawbox binary, normally "/proc/self/exe" */
};

/* Opens the manager. A host where no runtime works (or runtime = "none")
 * still gets a manager: every spawn then fails with -ENODEV and the reason,
 * which /health reports too. Fails only for an unusable data directory or
 * state database. */
int cb_ct_manager_open(const struct cb_ct_manager_options *o, struct cb_ct_manager **out,
                       struct cb_error *err);
/* Kills and removes every running container and its socket, then frees the
 * manager; accepts NULL. */
void cb_ct_manager_close(struct cb_ct_manager *m);

/* The runtime in use ("crun 1.8.1"), or NULL with *why set. */
const char *cb_ct_manager_runtime(const struct cb_ct_manager *m, const char **why);
/* Containers running or being created. */
size_t cb_ct_manager_active(struct cb_ct_manager *m);

/* Host id ranges past every container slot's (max_containers is at most
 * CB_CT_SLOTS_MAX), for an owner that keeps one range across its spawns so
 * that the files it writes keep their owner: range k starts at
 * userns_base + (CB_CT_SLOTS_MAX + k) * 65536. 0 when it would not fit
 * below 2^32 (a spawn with it is then refused). */
#define CB_CT_SLOTS_MAX 10000u
uint32_t cb_ct_owner_id_base(const struct cb_config *cfg, uint32_t k);

/* How a container ended, for cb_ct_spawn_opts.on_end. */
struct cb_ct_end {
    const char *container_id;
    const char *owner;
    const char *status; /* "completed", "failed", "timed_out" or "killed" */
    int exit_code;      /* -1 when no exit was recorded */
    const char *error;  /* why it failed or was killed, or NULL */
};

/* A directory the caller has opened (O_PATH is enough), bound into the
 * container at target, read-only or not. It is bound from its descriptor
 * (/proc/<server pid>/fd/N), never by a path that could be swapped after
 * the caller's checks; the caller keeps fd open until cb_ct_spawn returns.
 * The mount point is created in the image's rootfs when missing (resolved
 * within the rootfs: an image's symbolic links cannot lead out of it), and
 * the directory is given to the container's user (its host uid and gid)
 * so that it can write there. */
struct cb_ct_bind {
    int fd;
    const char *target; /* clean, absolute, not reserved (cb_ct_mount_reserved) */
    bool read_only;
};

/* What a caller other than POST /containers/spawn (the agents) adds. */
struct cb_ct_spawn_opts {
    const char *owner;             /* ContainerInfo.owner ("agent:<id>"); NULL: none */
    const struct cb_ct_bind *bind; /* NULL: none */
    uint32_t host_id_base;         /* 0: the slot's range; else cb_ct_owner_id_base() */
    uint64_t timeout_ms;           /* 0: the request's; capped by max_timeout_ms */
    /* Run the host's static catatonit (copied into the container's
     * /run/clawbox as init) with -P: an idle, reaping PID 1, in place of
     * the request's or the image's command. */
    bool idle_init;
    /* Called once the container's end is recorded, on the manager's
     * watcher thread, with no lock of the manager held; not called for the
     * ends the manager's close causes. It must not call into the manager
     * (a DELETE waits for the watcher). */
    void (*on_end)(void *ud, const struct cb_ct_end *end);
    /* Called for each authenticated request through the container's proxy
     * socket (on a connection thread) and at the start and the end of each
     * exec in it (counted: the request or the exec's start); it must be
     * quick and take no lock held while calling into the manager. */
    void (*on_activity)(void *ud, const char *owner, bool counted);
    void *ud;
};

/* POST /containers/spawn: *info is the new ContainerInfo (status running).
 * opts may be NULL. */
int cb_ct_spawn(struct cb_ct_manager *m, const json_t *body, const char *request_id,
                const struct cb_ct_spawn_opts *opts, json_t **info, struct cb_error *err);
/* GET /containers: every tracked container, sorted by creation. */
json_t *cb_ct_list(struct cb_ct_manager *m);
/* GET /containers/{id}: -ENOENT when unknown. */
int cb_ct_get(struct cb_ct_manager *m, const char *id, json_t **info);
/* DELETE /containers/{id}: kills it if it runs, removes it, and answers
 * {"container_id", "status": "killed", "output"} with the output capped,
 * scanned and redacted. -ENOENT when unknown. */
int cb_ct_delete(struct cb_ct_manager *m, const char *id, const char *request_id, json_t **result,
                 struct cb_error *err);
/* The container's output so far (the last `tail` lines; 0 = all), redacted,
 * as a new string. -ENOENT when unknown. */
int cb_ct_logs(struct cb_ct_manager *m, const char *id, size_t tail, char **text,
               struct cb_error *err);

/* A reader of a container's output as it grows (?follow=1), redacted as
 * cb_ct_logs redacts, but by whole lines (see containers/logs.c). It never
 * blocks: it reads what the log holds now. -ENOENT when unknown. The
 * follower must be freed before the manager. */
struct cb_ct_follow;
int cb_ct_logs_follow(struct cb_ct_manager *m, const char *id, size_t tail,
                      struct cb_ct_follow **out, struct cb_error *err);
/* Copies up to `room` bytes of redacted output into out (*n of them).
 * Returns 1 when that was the last of it (the container has ended and its
 * log is all handed out), 0 when more may come (*n may be 0: nothing yet),
 * or -EIO when the log cannot be read. */
int cb_ct_follow_read(struct cb_ct_follow *f, char *out, size_t room, size_t *n);
void cb_ct_follow_free(struct cb_ct_follow *f);

/* POST /containers/{id}/exec (exec.c): runs body's command in the running
 * container and answers {exec_id, stdout, stderr, exit_code, duration_ms,
 * truncated, timed_out}, the output redacted. -ESRCH when the container is not
 * running (HTTP 409), -EAGAIN at max_execs_per_container. */
int cb_ct_exec(struct cb_ct_manager *m, const char *id, const json_t *body, const char *request_id,
               json_t **result, struct cb_error *err);

/* The same exec with "detach": true (exec_stream.c): started here (failing
 * as cb_ct_exec does), it runs on a thread of its own to its end or its
 * timeout, whatever becomes of the request, with its stdout and stderr
 * the container's own (its log); *result is {exec_id, detached: true}.
 * cb_ct_exec_info tells its end. */
int cb_ct_exec_detach(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, json_t **result, struct cb_error *err);

/* Execs running in container id now (0 for an unknown one). */
int cb_ct_execs_running(struct cb_ct_manager *m, const char *id);
/* GET /containers/{id}/execs/{exec_id}: {exec_id, command, state
 * ("running", "exited", "timed_out" or "cancelled"), exit_code,
 * duration_ms, started_at} of a running exec or one of the last 64
 * finished in the container; -ENOENT for an unknown container or exec. */
int cb_ct_exec_info(struct cb_ct_manager *m, const char *id, const char *exec_id, json_t **out,
                    struct cb_error *err);

/* The same exec answered as it runs (exec_stream.c): the exec is started
 * here (failing as cb_ct_exec does), runs on a thread of its own, and
 * cb_ct_exec_stream_read hands out its NDJSON events, each a line:
 * {"type":"start","exec_id"}, {"type":"stdout"|"stderr","data"} in the
 * order the output arrived
 * (redacted by whole lines), then {"type":"exit","code","duration_ms",
 * "timed_out","truncated"}. Reading never blocks: it returns 1 when what
 * it copied was the last of it, else 0 (*n may be 0: nothing yet).
 * Freeing the stream before its end kills the exec as its timeout
 * would. The manager's close waits for the execs of streams still
 * running, which its kills end. */
struct cb_ct_exec_stream;
int cb_ct_exec_stream(struct cb_ct_manager *m, const char *id, const json_t *body,
                      const char *request_id, struct cb_ct_exec_stream **out, struct cb_error *err);
int cb_ct_exec_stream_read(struct cb_ct_exec_stream *s, char *out, size_t room, size_t *n);
/* The exec's id, for as long as the stream lives. */
const char *cb_ct_exec_stream_id(const struct cb_ct_exec_stream *s);
void cb_ct_exec_stream_free(struct cb_ct_exec_stream *s);

/* /containers/{id}/files (files.c): a path inside the running container,
 * resolved in its own root. READ gives *file, a copy of the file to hand
 * out (file_out.c); LIST and WRITE answer in *out; WRITE writes the len
 * bytes of src (an open file read from its start, -1 when empty).
 * Writes and removals only on its /tmp and a writable workspace.
 * -ENOENT (no container, or no such path), -ESRCH (not running, HTTP
 * 409), -EINVAL (a bad path), -EPERM (not writable there), -EACCES (a
 * binary file holding a secret), -EFBIG (over max_file_bytes), or the
 * errno of the failing call. */
enum cb_ct_files_op { CB_CT_FILES_READ, CB_CT_FILES_LIST, CB_CT_FILES_WRITE, CB_CT_FILES_REMOVE };
struct cb_ct_file;
int cb_ct_files(struct cb_ct_manager *m, const char *id, enum cb_ct_files_op op, const char *path,
                int src, uint64_t len, struct cb_ct_file **file, json_t **out,
                struct cb_error *err);
/* Whether the file is all UTF-8 text (sent redacted), else bytes. */
bool cb_ct_file_text(const struct cb_ct_file *f);
/* Copies up to room bytes of what the file gives next to out: 1 when they
 * were its last, 0 when more follows, or -errno. Text comes redacted, a
 * line at a time; *n may be 0 now and then. */
int cb_ct_file_read(struct cb_ct_file *f, char *out, size_t room, size_t *n);
void cb_ct_file_free(struct cb_ct_file *f);

#endif
