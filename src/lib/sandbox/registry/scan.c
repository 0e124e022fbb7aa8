/* Scanning tool_dir and (re)loading single modules.
 *
 * A module is read once, bounded by CB_WASM_MAX_MODULE, and hashed; it is
 * compiled only when its SHA-256 differs from the loaded version's, so a
 * touched-but-unchanged file costs a read. A failure never stops a scan and
 * never unloads a working older version.
 *
 * Files are opened relative to a descriptor of tool_dir with O_NOFOLLOW,
 * and only regular files are read: whoever can write tool_dir must not be
 * able to make the server (often root) read another file through a link.
 * No error or log line quotes what a file contains, since a file may still
 * hold anything (a hard link, a mistake): JSON errors give a position and a
 * fixed description, manifest errors name the field. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "sandbox/registry/internal.h"
#include "sandbox/wasm.h"

/* A descriptor of tool_dir for the *at() calls, or -errno. */
static int open_tool_dir(const struct cb_registry *r, struct cb_error *err)
{
    int dfd = open(r->opts.tool_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cb_error_set(err, -errno, "%s: %s", r->opts.tool_dir, strerror(errno));
    return dfd;
}

/* Error for a file of tool_dir that is not a regular file. */
static int not_regular(const struct cb_registry *r, const char *file, mode_t mode,
                       struct cb_error *err)
{
    if (S_ISLNK(mode))
        return cb_error_set(err, -ELOOP,
                            "%s/%s is a symbolic link; links in the tool directory are not "
                            "followed",
                            r->opts.tool_dir, file);
    return cb_error_set(err, -EINVAL, "%s/%s: not a regular file", r->opts.tool_dir, file);
}

/* Stats `file` in tool_dir without following a link. */
static int stat_in_dir(const struct cb_registry *r, const char *file, struct stat *st,
                       struct cb_error *err)
{
    _cleanup_close_ int dfd = open_tool_dir(r, err);
    if (dfd < 0)
        return dfd;
    if (fstatat(dfd, file, st, AT_SYMLINK_NOFOLLOW) < 0)
        return cb_error_set(err, -errno, "%s/%s: %s", r->opts.tool_dir, file, strerror(errno));
    return 0;
}

/* The error of a failed cb_file_open()/cb_file_read() of `file`. */
static int tool_read_error(const struct cb_registry *r, const char *file, const struct cb_file *f,
                           int rc, struct cb_error *err)
{
    switch (f->failed) {
    case CB_FILE_OPEN:
        if (rc == -ELOOP)
            return not_regular(r, file, S_IFLNK, err);
        return cb_error_set(err, rc, "%s/%s: %s", r->opts.tool_dir, file, strerror(-rc));
    case CB_FILE_TYPE:
        return not_regular(r, file, f->st.st_mode, err);
    case CB_FILE_SIZE:
        return cb_error_set(err, rc, "%s/%s: file is larger than %zu bytes", r->opts.tool_dir, file,
                            f->buf.max);
    case CB_FILE_READ:
        return cb_error_set(err, rc, "%s/%s: read: %s", r->opts.tool_dir, file, strerror(-rc));
    default:
        return cb_error_set(err, rc, "%s/%s: %s", r->opts.tool_dir, file, strerror(-rc));
    }
}

/* Reads the regular file `file` of tool_dir, of at most max bytes, into b
 * (initialised here) and returns its stamp. No link is followed: -ELOOP
 * for a symbolic link; -ENOENT if it does not exist. */
static int read_tool_file(const struct cb_registry *r, const char *file, size_t max,
                          struct cb_buf *b, struct cb_file_stamp *stamp, struct cb_error *err)
{
    cb_buf_init(b, max);
    _cleanup_close_ int dfd = open_tool_dir(r, err);
    if (dfd < 0)
        return dfd;
    struct cb_file f;
    int rc = cb_file_open(&f, dfd, file, CB_FILE_NOFOLLOW, err);
    if (rc == 0 && stamp != NULL)
        cb_file_stamp_of(stamp, &f.st);
    if (rc == 0)
        rc = cb_file_read(&f, max, err);
    if (rc == 0) {
        *b = f.buf;
        f.buf.data = NULL;
    } else {
        rc = tool_read_error(r, file, &f, rc, err);
    }
    cb_file_close(&f);
    return rc;
}

const char *cb__json_problem(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "unexpected end of input";
    case json_error_end_of_input_expected:
        return "text after the JSON value";
    case json_error_stack_overflow:
        return "nested too deeply";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "a NUL character";
    case json_error_duplicate_key:
        return "a duplicate key";
    case json_error_numeric_overflow:
        return "a number out of range";
    default:
        return "invalid JSON syntax";
    }
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    cb_hex_encode(md, sizeof(md), out);
}

/* Logs and counts a module that could not be loaded. */
static void report_failure(struct cb_registry *r, const char *name, const struct cb_error *err)
{
    cb_log(CB_LOG_WARN, "tool %s: loading %s/%s.wasm failed: %s", name, r->opts.tool_dir, name,
           err->msg);
    if (r->fail_counter != NULL)
        cb_metric_inc(r->fail_counter, (const char *const[]){name}, 1);
}

/* Parses and validates the text of <name>.json into *out. */
static int parse_manifest(const struct cb_registry *r, const char *name, const struct cb_buf *b,
                          struct cb_manifest **out, struct cb_error *err)
{
    int rc = cb__manifest_parse_file(b->data, b->len, r->opts.allow_wildcard_all, out, err);
    if (rc == 0 && strcmp((*out)->name, name) != 0) {
        rc = cb_error_set(err, -EINVAL, "its tool.name is not '%s'", name);
        cb_manifest_unref(*out);
        *out = NULL;
    }
    return rc;
}

/* The manifest from <name>.json beside the module, or NULL if there is
 * none or it is invalid (a warning: the tool gets the automatic manifest
 * instead). */
struct cb_manifest *cb__registry_file_manifest(struct cb_registry *r, const char *name)
{
    _cleanup_free_ char *file = cb_xasprintf("%s.json", name);
    struct cb_error err = {0};
    struct cb_buf b;
    struct cb_manifest *m = NULL;
    int rc = read_tool_file(r, file, CB__MANIFEST_FILE_MAX, &b, NULL, &err);
    if (rc == 0)
        rc = parse_manifest(r, name, &b, &m, &err);
    cb_buf_free(&b);
    if (rc < 0 && rc != -ENOENT)
        cb_log(CB_LOG_WARN, "tool %s: ignoring manifest %s/%s: %s; using the automatic manifest",
               name, r->opts.tool_dir, file, err.msg);
    if (m != NULL) {
        _cleanup_free_ char *path = cb_xasprintf("%s/%s", r->opts.tool_dir, file);
        cb_manifest_set_origin(m, path);
    }
    return m;
}

/* The loaded version of name (a reference), its stamp and whether it is a
 * quick build, or NULL. */
static struct cb_tool *current(struct cb_registry *r, const char *name, struct cb_file_stamp *stamp,
                               bool *quick)
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    struct cb_tool *t = NULL;
    if (s != NULL) {
        t = cb__tool_ref(s->tool);
        *stamp = s->stamp;
        *quick = s->quick;
    }
    pthread_mutex_unlock(&r->lock);
    return t;
}

int cb__registry_read_module(struct cb_registry *r, const char *name, struct cb_buf *b,
                             struct cb_file_stamp *stamp, char sha[65], struct cb_error *err)
{
    _cleanup_free_ char *file = cb_xasprintf("%s.wasm", name);
    int rc = read_tool_file(r, file, CB_WASM_MAX_MODULE, b, stamp, err);
    if (rc == 0)
        sha256_hex(b->data, b->len, sha);
    return rc;
}

/* Reads and, if its content is new, compiles the module. On success
 * *so_path (caller frees), sha, stamp and *quick describe the version to
 * install. The loaded version is kept when the content is the same, unless
 * it is a quick build: the loader may have the optimised one by now. */
static int build_tool(struct cb_registry *r, const char *name, const struct cb_tool *cur,
                      bool cur_quick, char **so_path, char sha[65], struct cb_file_stamp *stamp,
                      bool *quick, struct cb_error *err)
{
    struct cb_buf b;
    int rc = cb__registry_read_module(r, name, &b, stamp, sha, err);
    if (rc == 0) {
        if (cur != NULL && strcmp(cur->sha256, sha) == 0 && !cur_quick)
            *so_path = cb_xstrdup(cur->so_path);
        else
            rc = r->loader.load(r->loader.ud, &r->opts, (const uint8_t *)b.data, b.len, so_path,
                                quick, err);
    }
    cb_buf_free(&b);
    return rc;
}

/* The remembered failures are shared by the jobs of a batch: these take
 * r->fail_lock, except the _locked ones, whose caller holds it. */
static struct cb__failure *find_failure_locked(struct cb_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_failures; i++)
        if (strcmp(r->failures[i].name, name) == 0)
            return &r->failures[i];
    return NULL;
}

static void forget_failure_locked(struct cb_registry *r, const char *name)
{
    struct cb__failure *f = find_failure_locked(r, name);
    if (f == NULL)
        return;
    free(f->name);
    free(f->msg);
    *f = r->failures[--r->n_failures];
}

static void forget_failure(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->fail_lock);
    forget_failure_locked(r, name);
    pthread_mutex_unlock(&r->fail_lock);
}

static void remember_failure(struct cb_registry *r, const char *name,
                             const struct cb_file_stamp *stamp, int code,
                             const struct cb_error *err)
{
    pthread_mutex_lock(&r->fail_lock);
    forget_failure_locked(r, name);
    r->failures = cb_xrealloc(r->failures, (r->n_failures + 1) * sizeof(*r->failures));
    struct cb__failure *f = &r->failures[r->n_failures++];
    f->name = cb_xstrdup(name);
    f->msg = cb_xstrdup(err->msg);
    f->code = code;
    f->stamp = *stamp;
    pthread_mutex_unlock(&r->fail_lock);
}

void cb__registry_refuse(struct cb_registry *r, const char *name, const struct cb_file_stamp *stamp,
                         int code, const struct cb_error *err)
{
    report_failure(r, name, err);
    remember_failure(r, name, stamp, code, err);
    cb__registry_unload(r, name);
}

/* If name failed before in the version described by stamp, sets err to
 * that failure and returns its code; else 0. */
static int failed_before(struct cb_registry *r, const char *name, const struct cb_file_stamp *stamp,
                         struct cb_error *err)
{
    pthread_mutex_lock(&r->fail_lock);
    const struct cb__failure *f = find_failure_locked(r, name);
    int rc = f != NULL && cb_file_stamp_eq(&f->stamp, stamp)
                 ? cb_error_set(err, f->code, "%s", f->msg)
                 : 0;
    pthread_mutex_unlock(&r->fail_lock);
    return rc;
}

void cb__registry_free_failures(struct cb_registry *r)
{
    while (r->n_failures > 0)
        forget_failure_locked(r, r->failures[0].name);
    free(r->failures);
    r->failures = NULL;
}

/* Stats the module (a link itself, not its target); -ENOENT (after
 * unloading the tool) if it is gone. */
static int stat_module(struct cb_registry *r, const char *name, const char *file,
                       struct cb_file_stamp *stamp, struct cb_error *err)
{
    struct stat st;
    int rc = stat_in_dir(r, file, &st, err);
    if (rc == 0) {
        cb_file_stamp_of(stamp, &st);
        return 0;
    }
    if (rc == -ENOENT) {
        forget_failure(r, name);
        cb__registry_unload(r, name);
    } else {
        report_failure(r, name, err);
    }
    return rc;
}

/* Builds (or reuses) the version of name described by *stamp; *is_new
 * says whether it differs from the loaded one. */
static int prepare_tool(struct cb_registry *r, const char *name, bool force, char **so_path,
                        char sha[65], struct cb_file_stamp *stamp, bool *quick, bool *is_new,
                        struct cb_error *err)
{
    struct cb_file_stamp old = {0};
    bool cur_quick = false;
    struct cb_tool *cur = current(r, name, &old, &cur_quick);
    int rc = 0;
    if (cur != NULL && !force && cb_file_stamp_eq(&old, stamp)) {
        *so_path = cb_xstrdup(cur->so_path);
        snprintf(sha, 65, "%s", cur->sha256);
        *quick = cur_quick;
    } else {
        rc = build_tool(r, name, cur, cur_quick, so_path, sha, stamp, quick, err);
    }
    *is_new = rc == 0 && (cur == NULL || strcmp(cur->sha256, sha) != 0);
    cb_tool_unref(cur);
    return rc;
}

int cb__registry_refresh_one(struct cb_registry *r, const char *name, bool force,
                             struct cb_error *err)
{
    _cleanup_free_ char *file = cb_xasprintf("%s.wasm", name);
    struct cb_file_stamp stamp;
    int rc = stat_module(r, name, file, &stamp, err);
    if (rc < 0)
        return rc;
    rc = force ? 0 : failed_before(r, name, &stamp, err);
    if (rc < 0)
        return rc;
    char sha[65] = "";
    char *so_path = NULL;
    bool is_new = false, quick = false;
    uint64_t t0 = cb_now_mono_ns();
    rc = prepare_tool(r, name, force, &so_path, sha, &stamp, &quick, &is_new, err);
    if (rc == -ENOENT) {
        forget_failure(r, name);
        cb__registry_unload(r, name); /* deleted while we looked */
        return rc;
    }
    if (rc < 0) {
        report_failure(r, name, err);
        remember_failure(r, name, &stamp, rc, err);
        return rc;
    }
    forget_failure(r, name);
    cb__registry_install(r, name, so_path, sha, &stamp, cb__registry_file_manifest(r, name), quick);
    free(so_path);
    if (is_new)
        cb_log(CB_LOG_INFO, "tool %s ready (module sha256 %.12s, loaded in %" PRIu64 " ms)%s", name,
               sha, (cb_now_mono_ns() - t0) / 1000000u,
               quick ? " from a quick (-O0) build; the -O2 build follows in the background" : "");
    if (quick && is_new && r->loader.optimize != NULL)
        cb__registry_optimize_later(r, name);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
    char **v;
    size_t n;
};

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

/* A regular file or a symbolic link named *.wasm: a link is listed so that
 * loading it fails with a message saying why. */
static bool is_module_file(int dfd, const struct dirent *de)
{
    size_t len = strlen(de->d_name);
    if (len <= 5 || strcmp(de->d_name + len - 5, ".wasm") != 0)
        return false;
    struct stat st;
    return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
}

/* Lists the stems of the *.wasm files directly in tool_dir, sorted. A
 * missing directory is an empty list. */
static void list_modules(struct cb_registry *r, struct names *out)
{
    out->v = NULL;
    out->n = 0;
    DIR *d = opendir(r->opts.tool_dir);
    if (d == NULL) {
        if (errno != ENOENT)
            cb_log(CB_LOG_WARN, "cannot read tool directory %s: %s", r->opts.tool_dir,
                   strerror(errno));
        return;
    }
    size_t cap = 0;
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (!is_module_file(dirfd(d), de))
            continue;
        if (out->n == CB__REGISTRY_MAX_MODULES) {
            cb_log(CB_LOG_WARN, "more than %d modules in %s; ignoring the rest",
                   CB__REGISTRY_MAX_MODULES, r->opts.tool_dir);
            break;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            out->v = cb_xrealloc(out->v, cap * sizeof(*out->v));
        }
        out->v[out->n++] = cb_xstrndup(de->d_name, strlen(de->d_name) - 5);
    }
    closedir(d);
    if (out->n > 0)
        qsort(out->v, out->n, sizeof(*out->v), name_cmp);
}

/* The name comes from a file name, which need not be UTF-8. */
static void add_failure(json_t *failed, const char *name, const char *msg)
{
    json_array_append_new(failed, json_pack("{s:o, s:o}", "tool", cb_json_text(name, strlen(name)),
                                            "error", cb_json_text(msg, strlen(msg))));
}

static bool present_in(const struct names *present, const char *name)
{
    return present->n > 0 &&
           bsearch(&name, present->v, present->n, sizeof(*present->v), name_cmp) != NULL;
}

/* Unloads every tool whose module is not in the (sorted) list, and forgets
 * the failures of modules that are gone. */
static void unload_missing(struct cb_registry *r, const struct names *present)
{
    pthread_mutex_lock(&r->fail_lock);
    for (size_t i = 0; i < r->n_failures;) {
        if (present_in(present, r->failures[i].name))
            i++;
        else
            forget_failure_locked(r, r->failures[i].name);
    }
    pthread_mutex_unlock(&r->fail_lock);
    pthread_mutex_lock(&r->lock);
    size_t n = r->n_slots;
    char **gone = cb_xcalloc(n ? n : 1, sizeof(*gone));
    size_t ngone = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = r->slots[i].tool->name;
        if (!present_in(present, name))
            gone[ngone++] = cb_xstrdup(name);
    }
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < ngone; i++) {
        cb__registry_unload(r, gone[i]);
        free(gone[i]);
    }
    free(gone);
}

static json_t *loaded_names(struct cb_registry *r)
{
    json_t *a = json_array();
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_slots; i++)
        json_array_append_new(a, json_string(r->slots[i].tool->name));
    pthread_mutex_unlock(&r->lock);
    return a;
}

/* ---- refreshing many modules at once ----
 *
 * A batch runs on up to one job per CPU the process may use, each taking
 * the next name, so a module that is slow to compile holds one job for at
 * most its budget while the others keep loading; each tool is installed
 * (and usable) as soon as it is ready. */

struct batch {
    struct cb_registry *r;
    char *const *names;
    size_t n;
    bool force;
    atomic_size_t next;
    char **errors; /* per name: why it failed, or NULL */
};

/* Refreshes one name of the batch; NULL or why it failed. */
static char *batch_one(struct batch *b, const char *name)
{
    struct cb_error err = {0};
    if (!cb_tool_name_valid(name)) {
        cb_log(CB_LOG_WARN, "skipping %s/%s.wasm: invalid tool name (1-64 of [A-Za-z0-9_-])",
               b->r->opts.tool_dir, name);
        return cb_xstrdup("invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only");
    }
    int rc = cb__registry_refresh_one(b->r, name, b->force, &err);
    return rc < 0 && rc != -ENOENT ? cb_xstrdup(err.msg) : NULL;
}

static void *batch_main(void *arg)
{
    struct batch *b = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n || atomic_load(&b->r->stopping))
            return NULL;
        b->errors[i] = batch_one(b, b->names[i]);
        cb__registry_pending_done(b->r, b->names[i]);
    }
}

/* Jobs for n modules: the CPUs this process may run on, at most n. */
static size_t batch_jobs(size_t n)
{
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                             : sysconf(_SC_NPROCESSORS_ONLN);
    size_t jobs = cpus < 1 ? 1 : (size_t)cpus;
    if (jobs > CB__REGISTRY_MAX_JOBS)
        jobs = CB__REGISTRY_MAX_JOBS;
    return jobs < n ? jobs : n;
}

/* Refreshes the names in parallel and appends the failures to failed (when
 * not NULL) in the names' order. Caller holds r->scan_lock. */
static void refresh_batch(struct cb_registry *r, char *const *names, size_t n, bool force,
                          json_t *failed)
{
    struct batch b = {.r = r, .names = names, .n = n, .force = force};
    cb__registry_pending_add(r, names, n);
    b.errors = cb_xcalloc(n ? n : 1, sizeof(*b.errors));
    size_t jobs = batch_jobs(n);
    pthread_t *threads = cb_xcalloc(jobs ? jobs : 1, sizeof(*threads));
    size_t started = 0;
    while (started + 1 < jobs && pthread_create(&threads[started], NULL, batch_main, &b) == 0)
        started++;
    batch_main(&b); /* this thread is a job too */
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    for (size_t i = 0; i < n; i++) {
        if (b.errors[i] != NULL && failed != NULL)
            add_failure(failed, names[i], b.errors[i]);
        free(b.errors[i]);
    }
    free(b.errors);
    free(threads);
}

/* Unlike the reference, a failing module does not abort the scan: it is
 * reported in "failed" and the remaining modules are still processed. */
json_t *cb__registry_scan(struct cb_registry *r)
{
    pthread_mutex_lock(&r->scan_lock);
    struct names ns;
    list_modules(r, &ns);
    json_t *failed = json_array();
    refresh_batch(r, ns.v, ns.n, false, failed);
    unload_missing(r, &ns);
    pthread_mutex_unlock(&r->scan_lock);
    json_t *report = json_pack("{s:I, s:o, s:o}", "reloaded", (json_int_t)ns.n, "tools",
                               loaded_names(r), "failed", failed);
    names_free(&ns);
    return report;
}

void cb__registry_refresh(struct cb_registry *r, char *const *names, size_t n)
{
    pthread_mutex_lock(&r->scan_lock);
    refresh_batch(r, names, n, true, NULL);
    pthread_mutex_unlock(&r->scan_lock);
}
