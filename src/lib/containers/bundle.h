/* The OCI bundle of one container: its config.json, built with every
 * hardening point of the container design (user namespace, no capabilities, an x86_64
 * seccomp allowlist, read-only root, limits), and the small files it
 * bind-mounts (resolv.conf, hosts). Also the check of the environment keys
 * a request may set. Verified from inside real runc and crun containers by
 * tests/unit/containers/test_bundle.c. */
#ifndef CB_CONTAINERS_BUNDLE_H
#define CB_CONTAINERS_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Ids a container's user namespace maps: container id 0 to host_id_base,
 * through CB_CT_ID_RANGE - 1. */
#define CB_CT_ID_RANGE 65536u
/* The uid and gid the container's process runs as. */
#define CB_CT_UID 1000u
/* The longest environment key cb_ct_env_check accepts. */
#define CB_CT_ENV_KEY_MAX 255u

struct cb_ct_mount {
    const char *source;      /* absolute host path */
    const char *destination; /* absolute path in the container; must exist in the rootfs */
    bool read_only;
};

struct cb_ct_spec {
    const char *id;                   /* [A-Za-z0-9_.-], e.g. "clawbox-<uuid>" */
    const char *rootfs;               /* absolute, not a symlink */
    const char *const *args;          /* argv */
    size_t n_args;                    /* >= 1 */
    const char *const *env;           /* "KEY=VALUE", keys already checked */
    size_t n_env;                     /* */
    const char *cwd;                  /* absolute; NULL = "/" */
    uint32_t host_id_base;            /* uid/gid 0 inside = this on the host (> 0) */
    uint64_t memory_bytes;            /* memory and memory+swap (> 0) */
    uint64_t cpu_quota_us;            /* per 100000 us period; 0 = none */
    uint64_t pids_max;                /* > 0 */
    uint64_t tmp_size_bytes;          /* size of the /tmp tmpfs (> 0) */
    const struct cb_ct_mount *mounts; /* proxy dir, workspace */
    size_t n_mounts;                  /* */
    const char *netns_path;           /* NULL = a new network namespace (only lo) */
    /* No network namespace entry at all: the container keeps the
     * runtime's, which the launch has joined (cb_ct_backend.joins_netns);
     * netns_path is then ignored. */
    bool netns_inherited;
    const char *hostname; /* NULL = "clawbox" */
};

/* The OCI runtime config (config.json) for s, or NULL with -EINVAL in err
 * when s is not valid. The caller owns the result. The sources of the
 * resolv.conf and hosts mounts are relative to the bundle, as the OCI spec
 * allows; cb_ct_bundle_write makes them absolute. */
json_t *cb__ct_oci_config(const struct cb_ct_spec *s, struct cb_error *err);

/* Creates bundle_dir (absolute; its parent must exist) with mode 0711 and
 * writes config.json (0600: the environment holds the proxy token),
 * resolv.conf and hosts (0644) into it. Checks first that the rootfs is a
 * directory, not a symlink, and has every mount point the config needs
 * (the runtime cannot create them in a read-only root), and that its /tmp
 * is mode 1777 (runc gives the tmpfs the mode of the directory under it).
 * Returns 0 or a negative errno with the reason in err. */
int cb_ct_bundle_write(const char *bundle_dir, const struct cb_ct_spec *s, struct cb_error *err);

/* Whether `key` may be set in a container's environment: it must match
 * [A-Za-z_][A-Za-z0-9_]* and be at most CB_CT_ENV_KEY_MAX bytes, and must
 * not be reserved. Reserved are LD_* (the dynamic loader's), CLAWBOX_*
 * (set by clawbox), every *_proxy in any case (Python's urllib reads
 * `<scheme>_proxy` case-insensitively), BASH_ENV, ENV, PYTHONSTARTUP,
 * PYTHONPATH, NODE_OPTIONS and PERL5OPT. Returns 0, or -EINVAL with a
 * message naming the key. */
int cb_ct_env_check(const char *key, struct cb_error *err);

/* Whether a mount at d (a clean absolute path) would cover or replace what
 * every container's config mounts itself: /, /proc, /dev, /sys, the /tmp
 * tmpfs, the bound /etc/resolv.conf and /etc/hosts, or a directory above
 * them. */
bool cb_ct_mount_reserved(const char *d);

/* The system CA bundle in the rootfs at `rootfs` (absolute), which TLS
 * clients read when no variable names another: the first regular file of
 * Debian, Ubuntu and Alpine's /etc/ssl/certs/ca-certificates.crt,
 * Fedora's /etc/pki/tls/certs/ca-bundle.crt and /etc/ssl/cert.pem, as a
 * path in the container (static), or NULL when it has none. */
const char *cb_ct_trust_store(const char *rootfs);

/* Module-internal: the seccomp section of the config (x86_64 only), a new
 * reference. */
json_t *cb__ct_seccomp(void);

#endif
