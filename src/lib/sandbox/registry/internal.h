/* Internal interfaces of the tool registry, shared by the files of
 * src/lib/sandbox/registry/ and by its unit tests. */
#ifndef CB_SANDBOX_REGISTRY_INTERNAL_H
#define CB_SANDBOX_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/file.h"
#include "sandbox/manifest.h"
#include "sandbox/registry.h"

/* A manifest file (<name>.json) larger than this is rejected. */
#define CB__MANIFEST_FILE_MAX (1024u * 1024)
/* Modules considered per scan of tool_dir; more are ignored with a warning. */
#define CB__REGISTRY_MAX_MODULES         4096
#define CB__REGISTRY_DEFAULT_DEBOUNCE_MS 200
/* Modules compiled at once: one per usable CPU, at most this many. */
#define CB__REGISTRY_MAX_JOBS 16

/* Turns the bytes of one module into a compiled shared object (*so_path,
 * caller frees). The real pipeline (pipeline.c) inspects, checks imports,
 * instruments and compiles; unit tests inject fakes. The registry calls it
 * from several threads at once, for different modules. */
struct cb__registry_loader {
    /* Sets *quick (false before the call) when the object is a quick
     * build that optimize can better. */
    int (*load)(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm, size_t len,
                char **so_path, bool *quick, struct cb_error *err);
    /* May be NULL. Builds the optimised object of a module into the cache
     * (a later load returns it), in the background; stops with -ECANCELED
     * when *cancel is set. -ETIME or -EFBIG: the module ran out of a limit
     * that depends on it alone (its CPU budget, its output limit), and is
     * refused as if its first build had failed so; a later load returns
     * that failure. */
    int (*optimize)(void *ud, const struct cb_registry_opts *opts, const uint8_t *wasm, size_t len,
                    const atomic_bool *cancel, struct cb_error *err);
    void *ud;
};

struct cb__slot {
    struct cb_tool *tool;       /* current version; the registry holds one reference */
    struct cb_file_stamp stamp; /* of the module it was built from */
    bool file_manifest;         /* a valid <name>.json was found beside the module */
    bool quick;                 /* a quick build, queued for optimising */
};

/* A module file that failed to load, remembered so that a rescan does not
 * rebuild (and recount) it until the file changes. */
struct cb__failure {
    char *name;
    char *msg;
    int code;
    struct cb_file_stamp stamp;
};

/* A registered manifest and the module it was registered for. */
struct cb__registration {
    char *name;
    char sha256[65];
    struct cb_manifest *manifest; /* one reference */
};

struct cb__watch;
struct cb_metric;

struct cb_registry {
    struct cb_registry_opts opts; /* strings are copies owned here */
    struct cb__registry_loader loader;
    pthread_mutex_t lock;      /* slots, registered, at_open, tool objects swapped in */
    pthread_mutex_t scan_lock; /* one scan or refresh at a time: compiles never race */
    pthread_mutex_t reg_lock;  /* one registration at a time: DB order = memory order */
    pthread_mutex_t fail_lock; /* failures: the jobs of a scan share them */
    struct cb__slot *slots;    /* sorted by tool name */
    size_t n_slots;
    size_t cap_slots;
    /* Manifests registered through the API, as persisted: each applies
     * only to the module it was registered for. */
    struct cb__registration *registered;
    size_t n_registered;
    json_t *at_open; /* names loaded by open: their auto manifests count as existing */
    struct cb_metric *loaded_gauge;
    struct cb_metric *fail_counter;
    struct cb__failure *failures; /* under fail_lock */
    size_t n_failures;
    struct cb__watch *watch;
    pthread_t loader_thread; /* the background initial scan, if any */
    bool has_loader;
    json_t *pending;        /* names queued or compiling in a batch, under lock */
    pthread_cond_t changed; /* with lock: a pending name finished, or ready was set */
    atomic_bool ready;      /* the initial scan is done */
    atomic_bool stopping;   /* close is waiting: scans stop between modules */
    /* Names of quick builds to optimise, oldest first, under lock; the
     * optimiser thread is started with the first. */
    json_t *to_optimize;
    pthread_cond_t optimize_cond; /* with lock: a name was queued, or stopping */
    pthread_t optimizer;
    bool has_optimizer;
};

/* registry.c */
int cb__registry_open_with(const struct cb_registry_opts *opts,
                           const struct cb__registry_loader *loader, struct cb_registry **out,
                           struct cb_error *err);
struct cb__slot *cb__registry_find(struct cb_registry *r, const char *name);
/* Installs a new version of `name` (under r->lock). file_m (a reference
 * stolen, may be NULL) is the manifest from <name>.json; quick says the
 * object is a quick build. */
void cb__registry_install(struct cb_registry *r, const char *name, const char *so_path,
                          const char *sha256, const struct cb_file_stamp *stamp,
                          struct cb_manifest *file_m, bool quick);
void cb__registry_unload(struct cb_registry *r, const char *name);
struct cb_tool *cb__tool_ref(struct cb_tool *t);

/* Where the manifest of a loaded tool comes from: "registered", "file" or
 * "auto". Caller holds r->lock. */
const char *cb__manifest_source(struct cb_registry *r, const struct cb__slot *s);

/* states.c: the names a batch is working on, for listing and waiting. */
void cb__registry_pending_add(struct cb_registry *r, char *const *names, size_t n);
void cb__registry_pending_done(struct cb_registry *r, const char *name);
/* Marks the initial scan done and wakes the waiters. */
void cb__registry_set_ready(struct cb_registry *r);

/* scan.c */
/* Loads or refreshes one module; force re-reads the file even when its
 * stamp is unchanged. Returns 0, -ENOENT when the file is gone (and the tool
 * was unloaded), or another negative code when loading failed (logged and
 * counted; a loaded older version stays). Without force, a file that
 * failed before and has not changed since fails again from memory, without
 * a rebuild, a log line or a count. A new version is logged when ready.
 * Caller holds r->scan_lock; other jobs of its batch may run it at the
 * same time for other names. */
int cb__registry_refresh_one(struct cb_registry *r, const char *name, bool force,
                             struct cb_error *err);
/* A fixed description of a jansson parse error: its text may quote the
 * input, which must not reach a log line when the input is a file. */
const char *cb__json_problem(const json_error_t *e);
/* Rescans tool_dir, compiling in parallel; returns the reload report.
 * Takes r->scan_lock. */
json_t *cb__registry_scan(struct cb_registry *r);
void cb__registry_free_failures(struct cb_registry *r);
/* The watcher's entry point for changed files: refresh_one with force for
 * each of the names, in parallel. Takes r->scan_lock. */
void cb__registry_refresh(struct cb_registry *r, char *const *names, size_t n);

/* Reads <name>.wasm of tool_dir (bounded, no link followed) into b
 * (initialised here; caller frees) with its stamp and hex SHA-256. */
int cb__registry_read_module(struct cb_registry *r, const char *name, struct cb_buf *b,
                             struct cb_file_stamp *stamp, char sha[65], struct cb_error *err);
/* Unloads name, logs and counts the failure and remembers it for the
 * version described by stamp, as a failed load does. */
void cb__registry_refuse(struct cb_registry *r, const char *name, const struct cb_file_stamp *stamp,
                         int code, const struct cb_error *err);
/* The manifest from <name>.json (one reference), or NULL. */
struct cb_manifest *cb__registry_file_manifest(struct cb_registry *r, const char *name);

/* optimize.c: quick builds are rebuilt at -O2 one at a time, at a low
 * priority, and swapped in when the module has not changed meanwhile. */
/* Queues name for optimising; the caller does not hold r->lock. */
void cb__registry_optimize_later(struct cb_registry *r, const char *name);
/* Cancels the build under way and joins the thread; r->stopping is set. */
void cb__registry_optimizer_stop(struct cb_registry *r);

/* manifest.c */
/* The deny-all manifest of a module that has no other (one reference). */
struct cb_manifest *cb__manifest_auto(const char *name);
/* cb_manifest_parse of the JSON text of a <name>.json file. Messages name
 * the field but never quote the file (a JSON error gives its position). */
int cb__manifest_parse_file(const char *text, size_t len, bool allow_wildcard_all,
                            struct cb_manifest **out, struct cb_error *err);

/* watch.c */
/* Starts the inotify watcher thread on r->opts.tool_dir. */
int cb__watch_start(struct cb_registry *r, struct cb__watch **out, struct cb_error *err);
/* Wakes and joins the thread; accepts NULL. */
void cb__watch_stop(struct cb__watch *w);

#endif
