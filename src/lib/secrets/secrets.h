/* The encrypted credential store.
 *
 * On-disk format, identical to the reference so that each can read the
 * other's stores:
 *
 *     nonce[12] || AES-256-GCM(key, nonce, plaintext) || tag[16]
 *
 * with a fresh random nonce per save, no associated data and no header. The
 * plaintext is a compact JSON array of
 *     {"name","value","domain","header_name","header_prefix"}
 * objects (all strings), in insertion order, each optionally followed by
 *     "allow_http":true      the credential may be sent over plain http
 *     "port":N               the credential is sent only to port N
 * Both are written only when set, so a store that uses neither is byte for
 * byte what the reference writes; the reference (serde) ignores them when
 * it reads ours. Without "allow_http" a credential goes over https only.
 *
 * Beyond the reference:
 *  - saves are atomic (temp 0600, fsync, rename, directory fsync) and refuse
 *    to overwrite a store that changed on disk since it was loaded;
 *  - a small side file "<store>.check" (JSON: key check value, size and
 *    SHA-256 of the last file we wrote) lets a failed decryption say whether
 *    the key is wrong, the file was truncated or it was modified. Stores
 *    without it (written by the reference) get one combined message;
 *  - the JSON payload is parsed and written by our own code into buffers we
 *    wipe, so no plaintext copy is left in freed memory.
 *
 * A store object is not thread-safe; the owner serialises access. */
#ifndef CB_SECRETS_SECRETS_H
#define CB_SECRETS_SECRETS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CB_SECRETS_KEY_LEN   32
#define CB_SECRETS_NONCE_LEN 12
#define CB_SECRETS_TAG_LEN   16
/* Upper bounds on what we read; a larger file is refused, never parsed. */
#define CB_SECRETS_MAX_FILE_BYTES (16u * 1024 * 1024)
#define CB_SECRETS_MAX_ENTRIES    10000
#define CB_SECRETS_MAX_FIELD      (1024u * 1024)

#define CB_SECRETS_ENV_KEY        "CLAWBOX_MASTER_KEY"
#define CB_SECRETS_DEFAULT_HEADER "Authorization"
#define CB_SECRETS_DEFAULT_PREFIX "Bearer "

/* Distinct error codes for a store that cannot be opened. The message in
 * `struct cb_error` says the same in words. */
#define CB_SECRETS_E_WRONG_KEY   (-EKEYREJECTED) /* authentication failed, wrong key */
#define CB_SECRETS_E_TRUNCATED   (-ENODATA)      /* shorter than written / than 28 bytes */
#define CB_SECRETS_E_TAMPERED    (-EBADMSG)      /* authentication failed, key is right */
#define CB_SECRETS_E_BAD_PAYLOAD (-EPROTO)       /* decrypts, but is not the expected JSON */
#define CB_SECRETS_E_STALE       (-ESTALE)       /* save: file changed since load */

struct cb_master_key {
    unsigned char bytes[CB_SECRETS_KEY_LEN];
};

/* Parses 64 hex characters (surrounding whitespace ignored) into key. */
int cb__master_key_parse_hex(const char *s, size_t len, struct cb_master_key *key,
                             struct cb_error *err);

/* Reads the key from a file that holds 64 hex characters (a trailing
 * newline is fine). The file must be a regular file owned by the effective
 * user with no group or other permission bits (0600 or stricter); otherwise
 * it is refused with -EPERM. */
int cb_master_key_from_file(const char *path, struct cb_master_key *key, struct cb_error *err);

/* Reads CLAWBOX_MASTER_KEY. -ENOENT when unset. */
int cb_master_key_from_env(struct cb_master_key *key, struct cb_error *err);

/* The key a caller should use: key_file when non-NULL, else the
 * environment. Neither gives -ENOENT with a message explaining how to make a
 * key (`openssl rand -hex 32`). */
int cb_master_key_load(const char *key_file, struct cb_master_key *key, struct cb_error *err);

void cb_master_key_wipe(struct cb_master_key *key);

/* Longest credential domain, in bytes. */
#define CB_SECRETS_DOMAIN_MAX 255

/* Checks a credential domain and writes its canonical form into out: a
 * host name in lower case, a dotted-quad IPv4 address, an IPv6 address
 * without brackets, or "*." and a host name (the name and all its
 * subdomains). Everything a request's host can never equal is refused with
 * -EINVAL and a message that says what to write instead: "*" alone, a
 * trailing dot, a port, a URL, '%', empty labels, spaces, control
 * characters, "*." before an IP address or a single label ("*.com"). */
int cb_cred_domain_normalize(const char *domain, char out[CB_SECRETS_DOMAIN_MAX + 1],
                             struct cb_error *err);

/* One credential as listed: everything but the value. Pointers are owned by
 * the store and valid until it is modified or freed. */
struct cb_cred_info {
    const char *name;
    const char *domain; /* as stored */
    const char *header_name;
    const char *header_prefix;
    /* The canonical domain requests are matched against, or NULL when the
     * stored domain can never match a host (a store written by another
     * program): such an entry is kept, listed and scanned for, but never
     * injected. */
    const char *match;
    bool allow_http; /* may be sent over plain http, not only https */
    uint16_t port;   /* 0: any port; else only requests to this port */
};

/* What add/replace takes. header_name/header_prefix NULL mean the defaults
 * ("Authorization", "Bearer "). value is value_len bytes, not necessarily
 * NUL-terminated; the store copies it. */
struct cb_cred_spec {
    const char *name;
    const char *domain;
    const char *header_name;
    const char *header_prefix;
    const char *value;
    size_t value_len;
    bool allow_http;
    uint16_t port; /* 0: any */
};

struct cb_secret_store;

/* Opens the store at path with key (copied). A missing file is an empty
 * store (as in the reference); cb_secret_store_exists() tells the two
 * apart. Any other problem is an error: nothing is returned on failure. */
int cb_secret_store_open(const char *path, const struct cb_master_key *key,
                         struct cb_secret_store **out, struct cb_error *err);

/* Wipes every value and the key, then frees. Accepts NULL. */
void cb_secret_store_free(struct cb_secret_store *store);

bool cb_secret_store_exists(const struct cb_secret_store *store);
size_t cb_secret_store_count(const struct cb_secret_store *store);

/* Entry i in insertion order; -ERANGE past the end. */
int cb_secret_store_entry(const struct cb_secret_store *store, size_t i, struct cb_cred_info *out);

/* Looks an entry up by name; -ENOENT when absent. */
int cb_secret_store_find(const struct cb_secret_store *store, const char *name,
                         struct cb_cred_info *out);

/* Borrowed view of a value (for the leak scanner and the injector, which
 * run in the same trusted process). Valid until the store is modified or
 * freed. i as in cb_secret_store_entry. */
int cb_secret_store_value_at(const struct cb_secret_store *store, size_t i, const char **value,
                             size_t *len);

/* Copies the value of `name` into a new NUL-terminated buffer. The caller
 * releases it with cb_secret_free(value, len). -ENOENT when absent. */
int cb_secret_store_get_value(const struct cb_secret_store *store, const char *name, char **value,
                              size_t *len, struct cb_error *err);

/* Adds a credential, or replaces the one with the same name (which moves
 * to the end, as in the reference). Validates: name non-empty, the domain
 * as cb_cred_domain_normalize (the canonical form is stored), no control
 * characters in name/header/prefix, header a valid HTTP token, value
 * non-empty without CR, LF or NUL, sizes bounded. In memory only: call
 * save. */
int cb_secret_store_put(struct cb_secret_store *store, const struct cb_cred_spec *spec,
                        struct cb_error *err);

/* Removes `name`: 0 when removed, -ENOENT when it was not there. */
int cb_secret_store_remove(struct cb_secret_store *store, const char *name);

/* Encrypts and writes the store atomically. Fails with CB_SECRETS_E_STALE
 * when the file on disk is not the one this object loaded (another writer
 * got there first). */
int cb_secret_store_save(struct cb_secret_store *store, struct cb_error *err);

/* True when the file at the store's path is no longer the one loaded or
 * saved by this object (for a server that reloads on change). */
bool cb_secret_store_changed_on_disk(const struct cb_secret_store *store);

/* The names that differ between two stores, each list sorted by name:
 * added (only in `to`), removed (only in `from`), and changed (in both,
 * with another domain, header, prefix, value, allow_http or port). Either store may be NULL
 * (empty). The names point into the stores and stay valid while both are
 * unmodified; free the lists with cb_secret_diff_free. Values are compared
 * in place and never copied, so nothing here is secret. */
struct cb_secret_diff {
    const char **added;
    const char **removed;
    const char **changed;
    size_t n_added;
    size_t n_removed;
    size_t n_changed;
};

void cb_secret_store_diff(const struct cb_secret_store *from, const struct cb_secret_store *to,
                          struct cb_secret_diff *out);
void cb_secret_diff_free(struct cb_secret_diff *d);

struct cb_audit;

/* A change of the credential store, as its audit line records it. */
struct cb_secret_change {
    /* What made it: "add", "replace" or "remove" (clawbox creds), or
     * "reload" (the server picked up a changed store file). */
    const char *decision;
    const char *reason; /* in words, for `clawbox logs`; never a value */
    const char *domain; /* the domain of a single change, or NULL */
    struct cb_secret_diff names;
};

/* Writes the one audit line of a credential change (kind "credential",
 * method "CREDENTIAL"): the names added, removed and changed, never
 * values. The CLI and the server's reload both record changes through it.
 * Returns 0 without writing when no name changed, else cb_audit_append's
 * result. */
int cb_secret_change_audit(struct cb_audit *log, const struct cb_secret_change *c,
                           struct cb_error *err);

/* Wipes len bytes of p and frees it. Accepts NULL. */
void cb_secret_free(char *p, size_t len);

#endif
