/* The local image store: container images are names in a directory
 * (`[containers].image_store`, default <data_dir>/images), with no
 * registry. Each image is an unpacked rootfs plus the few fields of its
 * image config that a spawn uses. Images come from `clawbox image import`
 * (an OCI archive, a docker/podman save tarball or a plain rootfs tarball)
 * or `clawbox image build-default`.
 *
 * Every change is atomic (built in a temporary directory of the store,
 * then renamed into place) and safe against a server using the store at
 * the same time: an image held by cb_image_get() cannot be removed or
 * replaced until cb_image_free(). */
#ifndef CB_CONTAINERS_IMAGES_H
#define CB_CONTAINERS_IMAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/error.h"

/* The name `clawbox image build-default` builds. */
#define CB_IMAGE_DEFAULT_NAME "clawbox/agent-base:latest"
/* Longest image name accepted (a docker reference is at most 255 for the
 * repository; a tag or digest adds to it). */
#define CB_IMAGE_NAME_MAX 400

struct cb_image {
    char *name;   /* normalised, e.g. "busybox:latest" */
    char *rootfs; /* absolute path of the unpacked rootfs */
    char **entrypoint;
    size_t n_entrypoint;
    char **cmd;
    size_t n_cmd;
    char **env; /* "K=V" from the image config */
    size_t n_env;
    char *workdir; /* NULL = "/" */
    char *user;    /* the image config's User, NULL when unset (spawns run as 1000:1000) */
    int lock_fd;   /* shared lock: the image cannot be removed while held */
};

/* One line of progress (no newline) from a long operation. */
typedef void (*cb_image_progress_fn)(const char *line, void *ud);

/* The store directory of a configuration: image_store, else
 * <data_dir>/images. The caller frees it. */
char *cb_image_store_path(const struct cb_config *cfg);

/* Normalises an image name into out (CB_IMAGE_NAME_MAX + 1 bytes): adds
 * ":latest" when there is neither a tag (a ':' after the last '/') nor a
 * digest ('@'). Refuses (-EINVAL, with the reason) an empty or too long
 * name, characters outside [A-Za-z0-9._/:@+-], "..", a leading '/' or '.',
 * an empty path component and an empty tag. */
int cb_image_name_normalize(const char *name, char *out, struct cb_error *err);

/* Whether a spawn may use `image` under the allowlist `prefixes`: the
 * reference's algorithm (spec §8.2), except that only a ':' after the last
 * '/' starts a tag, so "localhost:5000/img" is the name
 * "localhost:5000/img", not "localhost". */
bool cb_image_allowed(const char *image, const struct cb_strlist *prefixes);

/* Opens the stored image `name` (normalised here) with a shared lock that
 * keeps it from being removed or replaced until cb_image_free(). -ENOENT
 * when there is no such image. */
int cb_image_get(const char *store, const char *name, struct cb_image **out, struct cb_error *err);
/* Releases the lock and frees img; NULL is fine. */
void cb_image_free(struct cb_image *img);
/* Whether the store holds `name` (normalised here). */
bool cb_image_exists(const char *store, const char *name);

/* A new JSON array of the stored images, by name: objects with name,
 * size_bytes, created_at (RFC 3339, UTC) and source. An absent store is an
 * empty list. */
int cb_image_list(const char *store, json_t **out, struct cb_error *err);

/* Imports `file` as `name`: an OCI archive, a docker/podman save tarball
 * (through skopeo and umoci, whiteouts applied) or a plain rootfs tarball
 * (any compression GNU tar reads; a member with ".." fails the import).
 * Replaces an image of that name unless it is in use (-EBUSY). fn (may be
 * NULL) gets progress lines. */
int cb_image_import(const char *store, const char *name, const char *file, cb_image_progress_fn fn,
                    void *ud, struct cb_error *err);

/* Removes `name`; -EBUSY while it is in use, -ENOENT when absent. */
int cb_image_remove(const char *store, const char *name, struct cb_error *err);

/* Builds the default agent image as `name`: a minimal Debian rootfs with
 * python3, curl and ca-certificates made by mmdebstrap from the host's apt
 * archive or, when that fails, a busybox-static rootfs (fn is told which).
 * Both get catatonit as /usr/bin/catatonit when the host has a static one.
 * The default command is /bin/sh. */
int cb_image_build_default(const char *store, const char *name, cb_image_progress_fn fn, void *ud,
                           struct cb_error *err);

#endif
