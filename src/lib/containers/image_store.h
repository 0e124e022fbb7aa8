/* Internal to the image store (images.c, image_rootfs.c, image_import.c,
 * image_build.c). */
#ifndef CB_CONTAINERS_IMAGE_STORE_H
#define CB_CONTAINERS_IMAGE_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "containers/images.h"
#include "core/buf.h"
#include "core/error.h"

/* An image being made: a temporary directory of the store (0711) that
 * holds rootfs/ until cb__image_commit() renames it into place. */
struct cb__image_stage {
    char *dir;    /* <store>/.tmp-XXXXXX */
    char *rootfs; /* <dir>/rootfs */
    int lock_fd;  /* exclusive flock on dir: a stage in use is not swept */
};

/* Creates the store (0711) when missing and a stage in it. */
int cb__image_stage_open(const char *store, struct cb__image_stage *st, struct cb_error *err);
/* Removes what is left of the stage (nothing after a commit). */
void cb__image_stage_close(struct cb__image_stage *st);

/* Makes the staged rootfs ready for a bundle (cb__image_rootfs_prepare),
 * records `config` (entrypoint, cmd, env, workdir, user; taken) and
 * `source` in image.json, and puts the stage in place as `name`
 * (normalised), replacing an image of that name unless it is in use
 * (-EBUSY). */
int cb__image_commit(const char *store, const char *name, struct cb__image_stage *st,
                     json_t *config, const char *source, struct cb_error *err);

/* Gives a rootfs what every bundle mounts on or reads: the directories
 * proc dev sys tmp (1777) run/clawbox workspace, the files etc/resolv.conf
 * and etc/hosts, and etc/passwd and etc/group entries for uid/gid 1000.
 * Works through directory descriptors, never following a link of the
 * rootfs out of it. */
int cb__image_rootfs_prepare(const char *rootfs, struct cb_error *err);
/* Bytes in the regular files and links under dir (each file once). */
unsigned long long cb__image_tree_size(const char *dir);
/* rm -rf, not following links or crossing mounts. */
void cb__image_rm_tree(const char *path);
/* Whether the ELF executable at path has no program interpreter. */
bool cb__image_is_static(const char *path);
/* Copies the host file `src` to `rel` inside rootfs (mode 0755, parents
 * made 0755), refusing a link or a non-directory on the way. */
int cb__image_copy_in(const char *src, const char *rootfs, const char *rel, struct cb_error *err);
/* Makes `rel` inside rootfs a symbolic link to target (kept if it exists),
 * parents made as by cb__image_copy_in. */
int cb__image_symlink_in(const char *rootfs, const char *rel, const char *target,
                         struct cb_error *err);

/* Runs a tool (argv[0] looked up in PATH; env: "K=V" added, may be NULL)
 * to its end within timeout_ms. With fn, each line of its output goes to
 * fn as it comes. A failure's message ends with the last lines of the
 * output. */
int cb__image_run(char *const *argv, char *const *env, unsigned timeout_ms, cb_image_progress_fn fn,
                  void *ud, struct cb_error *err);
/* The same without progress, with the output kept in out. */
int cb__image_run_capture(char *const *argv, struct cb_buf *out, struct cb_error *err);
/* Sends a formatted progress line to fn (when not NULL). */
void cb__image_say(cb_image_progress_fn fn, void *ud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Unpacks a plain rootfs tarball into the stage's rootfs/. */
int cb__image_untar(const char *file, struct cb__image_stage *st, struct cb_error *err);

#endif
