/* Scanning tool_dir and (re)loading single modules.
 *
 * A module is read once, bounded by CB_WASM_MAX_MODULE, and hashed; it is
 * compiled only when its SHA-256 differs from the loaded version's, so a
 * touched-but-unchanged file costs a read. A failure never stops a scan and
 * never unloads a working older version. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "sandbox/registry/internal.h"
#include "sandbox/wasm.h"

#define READ_CHUNK (64u * 1024)

static void stamp_of(const struct stat *st, struct cb__stamp *out)
{
    out->dev = st->st_dev;
    out->ino = st->st_ino;
    out->size = st->st_size;
    out->mtime = st->st_mtim;
    out->ctime = st->st_ctim;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool stamp_eq(const struct cb__stamp *a, const struct cb__stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           ts_eq(a->mtime, b->mtime) && ts_eq(a->ctime, b->ctime);
}

static int read_fd(int fd, size_t max, struct cb_buf *b, struct cb_error *err)
{
    char chunk[READ_CHUNK];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cb_error_set(err, -errno, "read: %s", strerror(errno));
        if (n == 0)
            return 0;
        if (cb_buf_append(b, chunk, (size_t)n) < 0)
            return cb_error_set(err, -EFBIG, "file is larger than %zu bytes", max);
    }
}

/* Reads a regular file of at most max bytes into b (initialised here) and
 * returns its stamp. -ENOENT if it does not exist. */
static int read_file(const char *path, size_t max, struct cb_buf *b, struct cb__stamp *stamp,
                     struct cb_error *err)
{
    cb_buf_init(b, max);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cb_error_set(err, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return cb_error_set(err, -errno, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cb_error_set(err, -EINVAL, "%s: not a regular file", path);
    if (stamp != NULL)
        stamp_of(&st, stamp);
    int rc = read_fd(fd, max, b, err);
    if (rc < 0)
        cb_error_prefix(err, "%s", path);
    return rc;
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

/* The manifest from <name>.json beside the module (normalised), or NULL if
 * there is none or it is invalid (a warning: the tool gets the automatic
 * manifest instead). */
static json_t *file_manifest(struct cb_registry *r, const char *name)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s.json", r->opts.tool_dir, name);
    struct cb_error err = {0};
    struct cb_buf b;
    int rc = read_file(path, CB__MANIFEST_FILE_MAX, &b, NULL, &err);
    if (rc == -ENOENT) {
        cb_buf_free(&b);
        return NULL;
    }
    json_t *m = NULL;
    json_error_t jerr;
    json_t *in = rc == 0 ? json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    cb_buf_free(&b);
    if (rc == 0 && in == NULL)
        rc = cb_error_set(&err, -EBADMSG, "line %d: %s", jerr.line, jerr.text);
    if (rc == 0)
        rc = cb__manifest_normalize(in, r->opts.allow_wildcard_all, &m, &err);
    json_decref(in);
    if (rc == 0 && strcmp(cb__manifest_name(m), name) != 0)
        rc = cb_error_set(&err, -EINVAL, "it names tool '%s'", cb__manifest_name(m));
    if (rc < 0) {
        cb_log(CB_LOG_WARN, "tool %s: ignoring manifest %s: %s; using the automatic manifest", name,
               path, err.msg);
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The loaded version of name (a reference) and its stamp, or NULL. */
static struct cb_tool *current(struct cb_registry *r, const char *name, struct cb__stamp *stamp)
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    struct cb_tool *t = NULL;
    if (s != NULL) {
        t = cb__tool_ref(s->tool);
        *stamp = s->stamp;
    }
    pthread_mutex_unlock(&r->lock);
    return t;
}

/* Reads and, if its content is new, compiles the module. On success
 * *so_path (caller frees), sha and stamp describe the version to install. */
static int build(struct cb_registry *r, const char *path, const struct cb_tool *cur, char **so_path,
                 char sha[65], struct cb__stamp *stamp, struct cb_error *err)
{
    struct cb_buf b;
    int rc = read_file(path, CB_WASM_MAX_MODULE, &b, stamp, err);
    if (rc == 0) {
        sha256_hex(b.data, b.len, sha);
        if (cur != NULL && strcmp(cur->sha256, sha) == 0)
            *so_path = cb_xstrdup(cur->so_path);
        else
            rc = r->loader.load(r->loader.ud, &r->opts, (const uint8_t *)b.data, b.len, so_path,
                                err);
    }
    cb_buf_free(&b);
    return rc;
}

static struct cb__failure *find_failure(struct cb_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_failures; i++)
        if (strcmp(r->failures[i].name, name) == 0)
            return &r->failures[i];
    return NULL;
}

static void forget_failure(struct cb_registry *r, const char *name)
{
    struct cb__failure *f = find_failure(r, name);
    if (f == NULL)
        return;
    free(f->name);
    free(f->msg);
    *f = r->failures[--r->n_failures];
}

static void remember_failure(struct cb_registry *r, const char *name, const struct cb__stamp *stamp,
                             int code, const struct cb_error *err)
{
    forget_failure(r, name);
    r->failures = cb_xrealloc(r->failures, (r->n_failures + 1) * sizeof(*r->failures));
    struct cb__failure *f = &r->failures[r->n_failures++];
    f->name = cb_xstrdup(name);
    f->msg = cb_xstrdup(err->msg);
    f->code = code;
    f->stamp = *stamp;
}

void cb__registry_free_failures(struct cb_registry *r)
{
    while (r->n_failures > 0)
        forget_failure(r, r->failures[0].name);
    free(r->failures);
    r->failures = NULL;
}

/* Stats the module; -ENOENT (after unloading the tool) if it is gone. */
static int stat_module(struct cb_registry *r, const char *name, const char *path,
                       struct cb__stamp *stamp, struct cb_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        stamp_of(&st, stamp);
        return 0;
    }
    int rc = cb_error_set(err, -errno, "%s: %s", path, strerror(errno));
    if (rc == -ENOENT) {
        forget_failure(r, name);
        cb__registry_unload(r, name);
    } else {
        report_failure(r, name, err);
    }
    return rc;
}

/* Builds (or reuses) the version of name described by *stamp. */
static int prepare(struct cb_registry *r, const char *name, const char *path, bool force,
                   char **so_path, char sha[65], struct cb__stamp *stamp, struct cb_error *err)
{
    struct cb__stamp old = {0};
    struct cb_tool *cur = current(r, name, &old);
    int rc = 0;
    if (cur != NULL && !force && stamp_eq(&old, stamp)) {
        *so_path = cb_xstrdup(cur->so_path);
        snprintf(sha, 65, "%s", cur->sha256);
    } else {
        rc = build(r, path, cur, so_path, sha, stamp, err);
    }
    cb_tool_unref(cur);
    return rc;
}

int cb__registry_refresh_one(struct cb_registry *r, const char *name, bool force,
                             struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s.wasm", r->opts.tool_dir, name);
    struct cb__stamp stamp;
    int rc = stat_module(r, name, path, &stamp, err);
    if (rc < 0)
        return rc;
    const struct cb__failure *f = force ? NULL : find_failure(r, name);
    if (f != NULL && stamp_eq(&f->stamp, &stamp))
        return cb_error_set(err, f->code, "%s", f->msg);
    char sha[65] = "";
    char *so_path = NULL;
    rc = prepare(r, name, path, force, &so_path, sha, &stamp, err);
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
    cb__registry_install(r, name, so_path, sha, &stamp, file_manifest(r, name));
    free(so_path);
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

static bool is_module_file(int dfd, const struct dirent *de)
{
    size_t len = strlen(de->d_name);
    if (len <= 5 || strcmp(de->d_name + len - 5, ".wasm") != 0)
        return false;
    struct stat st;
    return fstatat(dfd, de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode);
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

static void add_failure(json_t *failed, const char *name, const char *msg)
{
    json_array_append_new(failed, json_pack("{s:s, s:s}", "tool", name, "error", msg));
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
    for (size_t i = 0; i < r->n_failures;) {
        if (present_in(present, r->failures[i].name))
            i++;
        else
            forget_failure(r, r->failures[i].name);
    }
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

/* Unlike the reference, a failing module does not abort the scan: it is
 * reported in "failed" and the remaining modules are still processed. */
json_t *cb__registry_scan(struct cb_registry *r)
{
    pthread_mutex_lock(&r->scan_lock);
    struct names ns;
    list_modules(r, &ns);
    json_t *failed = json_array();
    for (size_t i = 0; i < ns.n && !atomic_load(&r->stopping); i++) {
        struct cb_error err = {0};
        if (!cb_tool_name_valid(ns.v[i])) {
            cb_log(CB_LOG_WARN, "skipping %s/%s.wasm: invalid tool name (1-64 of [A-Za-z0-9_-])",
                   r->opts.tool_dir, ns.v[i]);
            add_failure(failed, ns.v[i],
                        "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only");
            continue;
        }
        int rc = cb__registry_refresh_one(r, ns.v[i], false, &err);
        if (rc < 0 && rc != -ENOENT)
            add_failure(failed, ns.v[i], err.msg);
    }
    unload_missing(r, &ns);
    pthread_mutex_unlock(&r->scan_lock);
    json_t *report = json_pack("{s:I, s:o, s:o}", "reloaded", (json_int_t)ns.n, "tools",
                               loaded_names(r), "failed", failed);
    names_free(&ns);
    return report;
}

void cb__registry_refresh(struct cb_registry *r, const char *name)
{
    struct cb_error err = {0};
    pthread_mutex_lock(&r->scan_lock);
    int rc = cb__registry_refresh_one(r, name, true, &err);
    pthread_mutex_unlock(&r->scan_lock);
    if (rc == 0)
        cb_log(CB_LOG_INFO, "tool %s reloaded", name);
}
