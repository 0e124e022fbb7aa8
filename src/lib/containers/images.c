/* The image store: names, the allowlist, and the store's directory
 * protocol.
 *
 * <store>/.lock                  flock: held exclusively while an entry is
 *                                put in place or taken away
 * <store>/<entry>/               one image; <entry> is the name with '/',
 *                                ':' and '@' written as %2F, %3A, %40
 * <store>/<entry>/rootfs/        the unpacked rootfs
 * <store>/<entry>/image.json     name, created_at, source, size_bytes and
 *                                the image config's fields
 * <store>/<entry>/lock           flock: shared while the image is in use
 * <store>/.tmp-XXXXXX/           an image being made (flock: exclusive
 *                                while its maker runs)
 * <store>/.trash-XXXXXX/         a removed image being deleted
 *
 * What an interrupted import or remove leaves (.tmp-* nobody holds,
 * .trash-*) is deleted by the next import or build.
 *
 * A user of an image holds a shared lock on its lock file; removing or
 * replacing it needs the exclusive lock, taken without waiting. An entry
 * only ever moves by rename(2), so a reader sees a whole image or none. */
#include "containers/images.h"
#include "containers/image_store.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define META_MAX     (1024 * 1024)
#define GET_ATTEMPTS 16
#define NAME_ALLOWED "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:@+-"
#define DEFAULT_TAG  ":latest"

char *cb_image_store_path(const struct cb_config *cfg)
{
    if (cfg->containers.image_store != NULL)
        return cb_xstrdup(cfg->containers.image_store);
    return cb_xasprintf("%s/images", cfg->server.data_dir);
}

/* The repository part's checks: components non-empty, and no leading
 * '/' or '.'. */
static int check_components(const char *name, size_t len, struct cb_error *err)
{
    if (name[0] == '/' || name[0] == '.')
        return cb_error_set(err, -EINVAL, "image name '%s' must not start with '%c'", name,
                            name[0]);
    for (size_t i = 0; i + 1 < len; i++)
        if (name[i] == '/' && (name[i + 1] == '/' || name[i + 1] == ':' || name[i + 1] == '@'))
            return cb_error_set(err, -EINVAL, "image name '%s' has an empty path component", name);
    if (name[len - 1] == '/' || name[len - 1] == ':' || name[len - 1] == '@')
        return cb_error_set(err, -EINVAL, "image name '%s' has an empty %s", name,
                            name[len - 1] == '/'   ? "path component"
                            : name[len - 1] == ':' ? "tag"
                                                   : "digest");
    return 0;
}

int cb_image_name_normalize(const char *name, char *out, struct cb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return cb_error_set(err, -EINVAL, "the image name is empty");
    if (len + sizeof(DEFAULT_TAG) - 1 > CB_IMAGE_NAME_MAX)
        return cb_error_set(err, -EINVAL, "the image name is longer than %d bytes",
                            CB_IMAGE_NAME_MAX - (int)sizeof(DEFAULT_TAG) + 1);
    size_t ok = strspn(name, NAME_ALLOWED);
    if (ok != len)
        return cb_error_set(
            err, -EINVAL, "image name has a character outside [A-Za-z0-9._/:@+-] at byte %zu", ok);
    if (strstr(name, "..") != NULL)
        return cb_error_set(err, -EINVAL, "image name '%s' must not contain '..'", name);
    int r = check_components(name, len, err);
    if (r < 0)
        return r;
    const char *slash = strrchr(name, '/');
    bool tagged = strchr(slash ? slash : name, ':') != NULL;
    memcpy(out, name, len + 1);
    if (strchr(name, '@') == NULL && !tagged)
        memcpy(out + len, DEFAULT_TAG, sizeof(DEFAULT_TAG));
    return 0;
}

/* Spec §8.2 step 1 with the quirk fixed: the name without its digest or
 * tag, where a tag is a ':' after the last '/'. */
static size_t repo_len(const char *image)
{
    const char *at = strchr(image, '@');
    if (at != NULL)
        return (size_t)(at - image);
    const char *colon = strrchr(image, ':');
    const char *slash = strrchr(image, '/');
    if (colon != NULL && (slash == NULL || colon > slash))
        return (size_t)(colon - image);
    return strlen(image);
}

static bool prefix_admits(const char *p, const char *name, size_t n)
{
    size_t pl = strlen(p);
    if (pl == 0)
        return false;
    if (strchr(p, '/') != NULL && p[pl - 1] != ':') {
        if (n < pl || memcmp(name, p, pl) != 0)
            return false;
        return p[pl - 1] == '/' || n == pl || name[pl] == '/';
    }
    size_t want = p[pl - 1] == ':' ? pl - 1 : pl;
    return n == want && memcmp(name, p, want) == 0;
}

bool cb_image_allowed(const char *image, const struct cb_strlist *prefixes)
{
    if (image == NULL || prefixes == NULL)
        return false;
    size_t n = repo_len(image);
    for (size_t i = 0; i < prefixes->len; i++)
        if (prefix_admits(prefixes->items[i], image, n))
            return true;
    return false;
}

/* <store>/<entry> for a normalised name. */
static char *entry_path(const char *store, const char *name)
{
    struct cb_buf b;
    cb_buf_init(&b, strlen(store) + 3 * CB_IMAGE_NAME_MAX + 2);
    cb_buf_printf(&b, "%s/", store);
    for (const char *p = name; *p; p++) {
        if (*p == '/' || *p == ':' || *p == '@')
            cb_buf_printf(&b, "%%%02X", (unsigned)*p);
        else
            cb_buf_append(&b, p, 1);
    }
    return cb_buf_steal(&b, NULL);
}

static int normalize_entry(const char *store, const char *name, char *norm, char **entry,
                           struct cb_error *err)
{
    int r = cb_image_name_normalize(name, norm, err);
    if (r < 0)
        return r;
    *entry = entry_path(store, norm);
    return 0;
}

/* Whether fd is still the file at path. */
static bool same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* Opens <entry>/lock and takes `op` on it, making sure the lock is on the
 * entry that is at that path now (a replace swaps entries). Returns the fd,
 * -ENOENT for no entry, -EWOULDBLOCK when busy (LOCK_NB) or -errno. */
static int lock_entry(const char *entry, int op)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/lock", entry);
    for (int i = 0; i < GET_ATTEMPTS; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return -errno;
        int r = cb_flock_retry(fd, op);
        if (r == 0 && same_file(fd, path))
            return fd;
        close(fd);
        if (r < 0)
            return r;
    }
    return -EAGAIN;
}

/* Creates the store: missing parents 0700 like the data directory, the
 * store itself 0711 (a runtime in a user namespace must be able to pass
 * through it to a rootfs). */
static int make_store(const char *store, struct cb_error *err)
{
    _cleanup_free_ char *parent = cb_xstrdup(store);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        int r = cb_mkdir_p(parent, 0700, err);
        if (r < 0)
            return r;
    }
    if (mkdir(store, 0711) < 0 && errno != EEXIST)
        return cb_error_set(err, -errno, "creating image store %s: %s", store, strerror(errno));
    return 0;
}

/* The store-wide lock of the mutators, created with the store. */
static int lock_store(const char *store, struct cb_error *err)
{
    int r = make_store(store, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = cb_xasprintf("%s/.lock", store);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return cb_error_set(err, -errno, "opening %s: %s", path, strerror(errno));
    r = cb_flock_retry(fd, LOCK_EX);
    if (r < 0) {
        close(fd);
        return cb_error_set(err, r, "locking %s: %s", path, strerror(-r));
    }
    return fd;
}

static char **strings_of(const json_t *a, size_t *n)
{
    *n = json_is_array(a) ? json_array_size(a) : 0;
    char **v = cb_xcalloc(*n + 1, sizeof(*v));
    for (size_t i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        v[i] = cb_xstrdup(s ? s : "");
    }
    return v;
}

static char *string_or_null(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? cb_xstrdup(s) : NULL;
}

/* image.json of an entry, or NULL (err says why). */
static json_t *read_meta(const char *entry, struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/image.json", entry);
    struct cb_file f;
    int r = cb_file_load(&f, AT_FDCWD, path, META_MAX, CB_FILE_NOFOLLOW, err);
    json_t *meta = NULL;
    if (r == 0) {
        json_error_t je;
        meta = json_loadb(f.buf.data, f.buf.len, 0, &je);
        if (!json_is_object(meta)) {
            json_decref(meta);
            meta = NULL;
            cb_error_set(err, -EINVAL, "%s: not an image description: %s", path, je.text);
        }
    }
    cb_file_close(&f);
    return meta;
}

static struct cb_image *image_of(const char *norm, const char *entry, const json_t *meta)
{
    struct cb_image *img = cb_xcalloc(1, sizeof(*img));
    img->name = cb_xstrdup(norm);
    img->rootfs = cb_xasprintf("%s/rootfs", entry);
    img->entrypoint = strings_of(json_object_get(meta, "entrypoint"), &img->n_entrypoint);
    img->cmd = strings_of(json_object_get(meta, "cmd"), &img->n_cmd);
    img->env = strings_of(json_object_get(meta, "env"), &img->n_env);
    img->workdir = string_or_null(meta, "workdir");
    img->user = string_or_null(meta, "user");
    img->lock_fd = -1;
    return img;
}

static int not_found(const char *norm, const char *store, struct cb_error *err)
{
    return cb_error_set(err, -ENOENT,
                        "image '%s' is not in the image store %s (add it with `clawbox image "
                        "import` or `clawbox image build-default`)",
                        norm, store);
}

int cb_image_get(const char *store, const char *name, struct cb_image **out, struct cb_error *err)
{
    char norm[CB_IMAGE_NAME_MAX + 1];
    _cleanup_free_ char *abs = realpath(store, NULL);
    if (abs == NULL && errno != ENOENT)
        return cb_error_set(err, -errno, "image store %s: %s", store, strerror(errno));
    if (cb_image_name_normalize(name, norm, err) < 0)
        return -EINVAL;
    if (abs == NULL)
        return not_found(norm, store, err);
    _cleanup_free_ char *entry = entry_path(abs, norm);
    int fd = lock_entry(entry, LOCK_SH);
    if (fd == -ENOENT)
        return not_found(norm, store, err);
    if (fd < 0)
        return cb_error_set(err, fd, "locking image '%s': %s", norm, strerror(-fd));
    json_t *meta = read_meta(entry, err);
    if (meta == NULL) {
        close(fd);
        cb_error_prefix(err, "image '%s'", norm);
        return -EINVAL;
    }
    *out = image_of(norm, entry, meta);
    (*out)->lock_fd = fd;
    json_decref(meta);
    return 0;
}

static void image_free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void cb_image_free(struct cb_image *img)
{
    if (img == NULL)
        return;
    if (img->lock_fd >= 0)
        close(img->lock_fd);
    free(img->name);
    free(img->rootfs);
    image_free_strings(img->entrypoint, img->n_entrypoint);
    image_free_strings(img->cmd, img->n_cmd);
    image_free_strings(img->env, img->n_env);
    free(img->workdir);
    free(img->user);
    free(img);
}

bool cb_image_exists(const char *store, const char *name)
{
    char norm[CB_IMAGE_NAME_MAX + 1];
    struct cb_error err = {0};
    _cleanup_free_ char *entry = NULL;
    if (normalize_entry(store, name, norm, &entry, &err) < 0)
        return false;
    _cleanup_free_ char *meta = cb_xasprintf("%s/image.json", entry);
    struct stat st;
    return lstat(meta, &st) == 0 && S_ISREG(st.st_mode);
}

static json_t *list_entry(const json_t *meta)
{
    json_t *name = json_object_get(meta, "name");
    if (!json_is_string(name))
        return NULL;
    json_t *o = json_object();
    json_object_set(o, "name", name);
    json_object_set_new(o, "size_bytes",
                        json_integer(json_integer_value(json_object_get(meta, "size_bytes"))));
    const char *at = json_string_value(json_object_get(meta, "created_at"));
    const char *src = json_string_value(json_object_get(meta, "source"));
    json_object_set_new(o, "created_at", json_string(at ? at : ""));
    json_object_set_new(o, "source", json_string(src ? src : ""));
    return o;
}

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x, y);
}

/* Sorts the objects of array a by name (readdir order is arbitrary). */
static json_t *sorted(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **v = cb_xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(a, i));
    qsort(v, n, sizeof(*v), by_name);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, v[i]);
    free(v);
    json_decref(a);
    return out;
}

int cb_image_list(const char *store, json_t **out, struct cb_error *err)
{
    json_t *a = json_array();
    DIR *d = opendir(store);
    if (d == NULL && errno != ENOENT) {
        json_decref(a);
        return cb_error_set(err, -errno, "reading image store %s: %s", store, strerror(errno));
    }
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* the lock, stages and trash */
        _cleanup_free_ char *entry = cb_xasprintf("%s/%s", store, e->d_name);
        struct cb_error ignored = {0};
        json_t *meta = read_meta(entry, &ignored);
        json_t *o = meta ? list_entry(meta) : NULL;
        if (o != NULL)
            json_array_append_new(a, o);
        json_decref(meta);
    }
    if (d != NULL)
        closedir(d);
    *out = sorted(a);
    return 0;
}

static int busy(const char *norm, struct cb_error *err)
{
    return cb_error_set(err, -EBUSY,
                        "image '%s' is in use by a container; try again once the containers "
                        "using it have ended",
                        norm);
}

/* Moves <entry> (whose exclusive lock is held) aside into a trash
 * directory, returned for deletion once the locks are released. */
static char *move_to_trash(const char *store, const char *entry, struct cb_error *err)
{
    char *trash = cb_xasprintf("%s/.trash-XXXXXX", store);
    if (mkdtemp(trash) == NULL || rename(entry, trash) < 0) {
        cb_error_set(err, -errno, "moving %s aside: %s", entry, strerror(errno));
        rmdir(trash);
        free(trash);
        return NULL;
    }
    return trash;
}

int cb_image_remove(const char *store, const char *name, struct cb_error *err)
{
    char norm[CB_IMAGE_NAME_MAX + 1];
    _cleanup_free_ char *entry = NULL;
    int r = normalize_entry(store, name, norm, &entry, err);
    if (r < 0)
        return r;
    struct stat st;
    if (stat(store, &st) < 0)
        return not_found(norm, store, err);
    _cleanup_close_ int sfd = lock_store(store, err);
    if (sfd < 0)
        return sfd;
    _cleanup_close_ int fd = lock_entry(entry, LOCK_EX | LOCK_NB);
    if (fd == -ENOENT)
        return not_found(norm, store, err);
    if (fd == -EWOULDBLOCK)
        return busy(norm, err);
    if (fd < 0)
        return cb_error_set(err, fd, "locking image '%s': %s", norm, strerror(-fd));
    char *trash = move_to_trash(store, entry, err);
    if (trash == NULL)
        return -EIO;
    close(fd);
    fd = -1;
    close(sfd);
    sfd = -1;
    cb__image_rm_tree(trash);
    free(trash);
    return 0;
}

/* Whether a store entry named `name` is left over: trash a remove or
 * replace could not delete, or the stage of an import that died (nobody
 * holds its lock). */
static bool left_over(const char *store, const char *name)
{
    if (strncmp(name, ".trash-", 7) == 0)
        return true;
    if (strncmp(name, ".tmp-", 5) != 0)
        return false;
    _cleanup_free_ char *path = cb_xasprintf("%s/%s", store, name);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd >= 0 && cb_flock_retry(fd, LOCK_EX | LOCK_NB) == 0;
}

/* Removes what interrupted operations left. Called with the store lock
 * held, so no stage is between its creation and its lock. */
static void sweep(const char *store)
{
    DIR *d = opendir(store);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!left_over(store, e->d_name))
            continue;
        _cleanup_free_ char *path = cb_xasprintf("%s/%s", store, e->d_name);
        cb__image_rm_tree(path);
    }
    if (d != NULL)
        closedir(d);
}

/* mkdtemp, then an exclusive lock on the directory held until
 * cb__image_stage_close(): the mark of a stage in use. */
static int make_stage(const char *store, struct cb__image_stage *st, struct cb_error *err)
{
    st->dir = cb_xasprintf("%s/.tmp-XXXXXX", store);
    if (mkdtemp(st->dir) == NULL) {
        int r = cb_error_set(err, -errno, "creating a directory in %s: %s", store, strerror(errno));
        free(st->dir);
        st->dir = NULL;
        return r;
    }
    if (chmod(st->dir, 0711) == 0)
        st->lock_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (st->lock_fd < 0 || cb_flock_retry(st->lock_fd, LOCK_EX) < 0) {
        int r = cb_error_set(err, -errno, "creating a directory in %s: %s", store, strerror(errno));
        cb__image_stage_close(st);
        return r;
    }
    st->rootfs = cb_xasprintf("%s/rootfs", st->dir);
    return 0;
}

int cb__image_stage_open(const char *store, struct cb__image_stage *st, struct cb_error *err)
{
    memset(st, 0, sizeof(*st));
    st->lock_fd = -1;
    int fd = lock_store(store, err);
    if (fd < 0)
        return fd;
    sweep(store);
    int r = make_stage(store, st, err);
    close(fd);
    return r;
}

void cb__image_stage_close(struct cb__image_stage *st)
{
    if (st->dir != NULL)
        cb__image_rm_tree(st->dir);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->dir);
    free(st->rootfs);
    st->dir = st->rootfs = NULL;
    st->lock_fd = -1;
}

static void rfc3339_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes image.json and the lock file into the stage. */
static int write_meta(struct cb__image_stage *st, const char *name, json_t *config,
                      const char *source, struct cb_error *err)
{
    char now[32];
    rfc3339_now(now);
    json_object_set_new(config, "name", json_string(name));
    json_object_set_new(config, "created_at", json_string(now));
    json_object_set_new(config, "source", json_string(source));
    json_object_set_new(config, "size_bytes",
                        json_integer((json_int_t)cb__image_tree_size(st->rootfs)));
    char *text = json_dumps(config, JSON_INDENT(2) | JSON_SORT_KEYS);
    _cleanup_free_ char *path = cb_xasprintf("%s/image.json", st->dir);
    int r = cb_write_atomic(path, text, strlen(text), err);
    free(text);
    if (r < 0)
        return r;
    _cleanup_free_ char *lock = cb_xasprintf("%s/lock", st->dir);
    int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cb_error_set(err, -errno, "creating %s: %s", lock, strerror(errno));
    close(fd);
    return 0;
}

/* Puts the stage at entry: a rename when there is none, else an atomic
 * exchange with the old image (whose exclusive lock is taken first), which
 * then sits in the stage directory to be deleted. */
static int swap_in(const char *store, const char *norm, const char *entry,
                   struct cb__image_stage *st, struct cb_error *err)
{
    _cleanup_close_ int sfd = lock_store(store, err);
    if (sfd < 0)
        return sfd;
    _cleanup_close_ int fd = lock_entry(entry, LOCK_EX | LOCK_NB);
    if (fd == -EWOULDBLOCK)
        return busy(norm, err);
    if (fd < 0 && fd != -ENOENT)
        return cb_error_set(err, fd, "locking image '%s': %s", norm, strerror(-fd));
    int r = fd >= 0 ? renameat2(AT_FDCWD, st->dir, AT_FDCWD, entry, RENAME_EXCHANGE)
                    : renameat2(AT_FDCWD, st->dir, AT_FDCWD, entry, RENAME_NOREPLACE);
    if (r < 0)
        return cb_error_set(err, -errno, "moving the new image to %s: %s", entry, strerror(errno));
    return 0;
}

int cb__image_commit(const char *store, const char *name, struct cb__image_stage *st,
                     json_t *config, const char *source, struct cb_error *err)
{
    _cleanup_free_ char *entry = entry_path(store, name);
    int r = cb__image_rootfs_prepare(st->rootfs, err);
    if (r == 0)
        r = write_meta(st, name, config, source, err);
    if (r == 0)
        r = swap_in(store, name, entry, st, err);
    json_decref(config);
    return r;
}
