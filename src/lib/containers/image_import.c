/* clawbox image import: an OCI archive or layout, a docker/podman save
 * tarball, or a plain rootfs tarball, into the store.
 *
 * Archives go through the tools that know the formats: `skopeo copy` to an
 * OCI layout in the stage (whatever the archive's own reference), then
 * `umoci unpack`, which applies the layers in order with their whiteouts.
 * Of umoci's bundle only rootfs/ is kept; the image config (entrypoint,
 * cmd, env, workdir, user) is read from the layout, and the runtime config
 * is ours to write at spawn time (containers.md). */
#include "containers/image_store.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/proc.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* The member list of an archive, as tar -t prints it. */
#define MEMBER_LIST_MAX (1024 * 1024)

#define TOOL_TIMEOUT_MS (15u * 60 * 1000)
#define TOOL_OUTPUT_MAX (64u * 1024 * 1024)
#define BLOB_MAX        (4u * 1024 * 1024)
#define ERROR_TAIL      480
#define LINE_MAX_SHOWN  400
#define PLAIN_PATH      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void cb__image_say(cb_image_progress_fn fn, void *ud, const char *fmt, ...)
{
    if (fn == NULL)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fn(line, ud);
}

/* Cuts a tool's output into lines for the progress callback. */
struct liner {
    cb_image_progress_fn fn;
    void *ud;
    size_t len;
    char line[LINE_MAX_SHOWN + 1];
};

static void liner_flush(struct liner *l)
{
    if (l->len == 0)
        return;
    l->line[l->len] = '\0';
    l->fn(l->line, l->ud);
    l->len = 0;
}

static void liner_feed(const char *p, size_t n, void *ud)
{
    struct liner *l = ud;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r')
            liner_flush(l);
        else if (l->len < LINE_MAX_SHOWN)
            l->line[l->len++] = (unsigned char)p[i] < 0x20 ? ' ' : p[i];
    }
}

/* The last bytes of a tool's output, from a line start, for a message. */
static const char *tail_of(const struct cb_buf *b)
{
    size_t len = b->len;
    while (len > 0 && (b->data[len - 1] == '\n' || b->data[len - 1] == ' '))
        b->data[--len] = '\0';
    if (len <= ERROR_TAIL)
        return b->data;
    const char *t = b->data + len - ERROR_TAIL;
    const char *nl = strchr(t, '\n');
    return nl ? nl + 1 : t;
}

static int run_into(char *const *argv, char *const *env, unsigned timeout_ms,
                    cb_image_progress_fn fn, void *ud, struct cb_buf *out, struct cb_error *err)
{
    struct liner l = {.fn = fn, .ud = ud};
    struct cb_proc_spec spec = {.argv = argv,
                                .env = env,
                                .timeout_ms = timeout_ms,
                                .output = out,
                                .on_output = fn ? liner_feed : NULL,
                                .on_output_ud = &l};
    struct cb_proc_result res = {0};
    int r = cb_proc_run(&spec, &res, err);
    if (fn != NULL)
        liner_flush(&l);
    if (r == -ETIMEDOUT)
        return cb_error_set(err, r, "%s did not finish within %u s", argv[0], timeout_ms / 1000);
    if (r < 0)
        return r;
    if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0)
        return 0;
    return cb_error_set(err, -EIO, "%s failed (%s %d): %s", argv[0],
                        WIFEXITED(res.status) ? "exit status" : "signal",
                        WIFEXITED(res.status) ? WEXITSTATUS(res.status) : WTERMSIG(res.status),
                        tail_of(out));
}

int cb__image_run(char *const *argv, char *const *env, unsigned timeout_ms, cb_image_progress_fn fn,
                  void *ud, struct cb_error *err)
{
    struct cb_buf out;
    cb_buf_init(&out, TOOL_OUTPUT_MAX);
    int r = run_into(argv, env, timeout_ms, fn, ud, &out, err);
    cb_buf_free(&out);
    return r;
}

int cb__image_run_capture(char *const *argv, struct cb_buf *out, struct cb_error *err)
{
    return run_into(argv, NULL, TOOL_TIMEOUT_MS, NULL, NULL, out, err);
}

int cb__image_untar(const char *file, struct cb__image_stage *st, struct cb_error *err)
{
    if (mkdir(st->rootfs, 0755) < 0)
        return cb_error_set(err, -errno, "creating %s: %s", st->rootfs, strerror(errno));
    /* As root, tar keeps owners and modes; --numeric-owner keeps the host's
     * user names out of it. Leading '/' is stripped and a member with ".."
     * fails the run. */
    char *argv[] = {"tar",
                    "-x",
                    "-f",
                    (char *)file,
                    "-C",
                    st->rootfs,
                    "--numeric-owner",
                    "--same-owner",
                    "--same-permissions",
                    NULL};
    return cb__image_run(argv, NULL, TOOL_TIMEOUT_MS, NULL, NULL, err);
}

enum kind { KIND_ROOTFS, KIND_DOCKER, KIND_OCI_ARCHIVE, KIND_OCI_DIR };

static bool buf_has_line(const struct cb_buf *b, const char *name)
{
    _cleanup_free_ char *a = cb_xasprintf("\n%s\n", name);
    _cleanup_free_ char *d = cb_xasprintf("\n./%s\n", name);
    _cleanup_free_ char *text = cb_xasprintf("\n%.*s\n", (int)b->len, b->data);
    return strstr(text, a) != NULL || strstr(text, d) != NULL;
}

/* What `file` is, from its top-level members (an archive has a handful, a
 * rootfs thousands: a listing cut at its maximum is a rootfs). */
static int detect_kind(const char *file, enum kind *kind, struct cb_error *err)
{
    struct stat st;
    if (stat(file, &st) < 0)
        return cb_error_set(err, -errno, "%s: %s", file, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        _cleanup_free_ char *layout = cb_xasprintf("%s/oci-layout", file);
        *kind = KIND_OCI_DIR;
        if (stat(layout, &st) < 0)
            return cb_error_set(err, -EINVAL, "%s is a directory but not an OCI layout", file);
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return cb_error_set(err, -EINVAL, "%s is not a regular file", file);
    struct cb_buf out;
    cb_buf_init(&out, MEMBER_LIST_MAX);
    char *argv[] = {"tar", "-t", "-f", (char *)file, NULL};
    int r = run_into(argv, NULL, TOOL_TIMEOUT_MS, NULL, NULL, &out, err);
    if (r == 0 || out.len == out.max) {
        cb_error_clear(err);
        r = 0;
        *kind = buf_has_line(&out, "manifest.json") ? KIND_DOCKER
                : buf_has_line(&out, "oci-layout")  ? KIND_OCI_ARCHIVE
                                                    : KIND_ROOTFS;
    } else {
        cb_error_prefix(err, "%s is not a tar archive", file);
    }
    cb_buf_free(&out);
    return r;
}

/* The JSON of a blob of the layout, by its digest ("sha256:<64 hex>"). */
static json_t *load_blob(const char *layout, const char *digest, struct cb_error *err)
{
    if (digest == NULL || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + 64 ||
        !cb_hex_is_lower(digest + 7, 64)) {
        cb_error_set(err, -EINVAL, "the image has a malformed digest");
        return NULL;
    }
    _cleanup_free_ char *path = cb_xasprintf("%s/blobs/sha256/%s", layout, digest + 7);
    struct cb_file f;
    json_t *j = NULL;
    if (cb_file_load(&f, AT_FDCWD, path, BLOB_MAX, CB_FILE_NOFOLLOW, err) == 0) {
        j = json_loadb(f.buf.data, f.buf.len, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            j = NULL;
            cb_error_set(err, -EINVAL, "%s is not a JSON object", path);
        }
    }
    cb_file_close(&f);
    return j;
}

static json_t *json_string_array(const json_t *a)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v))
            json_array_append(out, v);
    }
    return out;
}

/* Our record of an image config's "config" object. */
static json_t *config_of(const json_t *image_config)
{
    const json_t *c = json_object_get(image_config, "config");
    json_t *out = json_object();
    json_object_set_new(out, "entrypoint", json_string_array(json_object_get(c, "Entrypoint")));
    json_object_set_new(out, "cmd", json_string_array(json_object_get(c, "Cmd")));
    json_object_set_new(out, "env", json_string_array(json_object_get(c, "Env")));
    const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
    const char *user = json_string_value(json_object_get(c, "User"));
    json_object_set_new(out, "workdir", wd && wd[0] ? json_string(wd) : json_null());
    json_object_set_new(out, "user", user && user[0] ? json_string(user) : json_null());
    return out;
}

/* index.json -> the one manifest -> its config blob. */
static json_t *read_image_config(const char *layout, struct cb_error *err)
{
    _cleanup_free_ char *index_path = cb_xasprintf("%s/index.json", layout);
    struct cb_file f;
    json_t *index = NULL, *manifest = NULL, *config = NULL;
    if (cb_file_load(&f, AT_FDCWD, index_path, BLOB_MAX, CB_FILE_NOFOLLOW, err) == 0)
        index = json_loadb(f.buf.data, f.buf.len, 0, NULL);
    cb_file_close(&f);
    json_t *m = json_array_get(json_object_get(index, "manifests"), 0);
    if (m == NULL)
        cb_error_set(err, -EINVAL, "%s names no image", index_path);
    else
        manifest = load_blob(layout, json_string_value(json_object_get(m, "digest")), err);
    json_t *c = json_object_get(json_object_get(manifest, "config"), "digest");
    if (manifest != NULL)
        config = load_blob(layout, json_string_value(c), err);
    json_t *out = config ? config_of(config) : NULL;
    json_decref(index);
    json_decref(manifest);
    json_decref(config);
    return out;
}

static const char *transport_of(enum kind k)
{
    return k == KIND_DOCKER ? "docker-archive" : k == KIND_OCI_ARCHIVE ? "oci-archive" : "oci";
}

/* skopeo copy to <stage>/oci, umoci unpack to <stage>/bundle, keep the
 * rootfs and the image config. */
static int unpack_archive(const char *file, enum kind k, struct cb__image_stage *st,
                          json_t **config, cb_image_progress_fn fn, void *ud, struct cb_error *err)
{
    _cleanup_free_ char *src = cb_xasprintf("%s:%s", transport_of(k), file);
    _cleanup_free_ char *layout = cb_xasprintf("%s/oci", st->dir);
    _cleanup_free_ char *dst = cb_xasprintf("oci:%s:img", layout);
    _cleanup_free_ char *image = cb_xasprintf("%s:img", layout);
    _cleanup_free_ char *bundle = cb_xasprintf("%s/bundle", st->dir);
    _cleanup_free_ char *rootfs = cb_xasprintf("%s/rootfs", bundle);
    char *copy[] = {"skopeo", "copy", "--quiet", src, dst, NULL};
    char *unpack[] = {"umoci", "unpack", "--image", image, bundle, NULL};
    cb__image_say(fn, ud, "copying %s to an OCI layout (skopeo)", src);
    int r = cb__image_run(copy, NULL, TOOL_TIMEOUT_MS, NULL, NULL, err);
    if (r == 0) {
        cb__image_say(fn, ud, "unpacking the layers (umoci)");
        r = cb__image_run(unpack, NULL, TOOL_TIMEOUT_MS, NULL, NULL, err);
    }
    if (r == 0 && rename(rootfs, st->rootfs) < 0)
        r = cb_error_set(err, -errno, "moving %s: %s", rootfs, strerror(errno));
    if (r == 0 && (*config = read_image_config(layout, err)) == NULL)
        r = -EINVAL;
    cb__image_rm_tree(bundle);
    cb__image_rm_tree(layout);
    return r;
}

/* A plain rootfs has no image config: a shell and the usual PATH. */
static json_t *plain_config(void)
{
    return json_pack("{s:[], s:[s], s:[s], s:n, s:n}", "entrypoint", "cmd", "/bin/sh", "env",
                     PLAIN_PATH, "workdir", "user");
}

int cb_image_import(const char *store, const char *name, const char *file, cb_image_progress_fn fn,
                    void *ud, struct cb_error *err)
{
    char norm[CB_IMAGE_NAME_MAX + 1];
    enum kind k = KIND_ROOTFS;
    int r = cb_image_name_normalize(name, norm, err);
    if (r == 0)
        r = detect_kind(file, &k, err);
    if (r < 0)
        return r;
    struct cb__image_stage st;
    r = cb__image_stage_open(store, &st, err);
    if (r < 0)
        return r;
    json_t *config = NULL;
    if (k == KIND_ROOTFS) {
        cb__image_say(fn, ud, "unpacking %s as a plain rootfs tarball", file);
        r = cb__image_untar(file, &st, err);
        config = r == 0 ? plain_config() : NULL;
    } else {
        r = unpack_archive(file, k, &st, &config, fn, ud, err);
    }
    if (r == 0)
        r = cb__image_commit(store, norm, &st, config,
                             k == KIND_ROOTFS ? "rootfs-tar" : transport_of(k), err);
    else
        json_decref(config);
    cb__image_stage_close(&st);
    if (r < 0)
        cb_error_prefix(err, "importing %s as '%s'", file, norm);
    return r;
}
