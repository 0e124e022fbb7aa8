/* Internal to src/lib/secrets: the entry list and the JSON payload codec.
 * The codec is ours rather than jansson's so that every buffer that ever
 * holds plaintext is allocated once, by us, and wiped before it is freed. */
#ifndef CB_SECRETS_INTERNAL_H
#define CB_SECRETS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "core/file.h"
#include "secrets/secrets.h"

/* Field order is the reference's struct order, which is also the order
 * serde writes them in. */
enum cb__cred_field {
    CB__F_NAME,
    CB__F_VALUE,
    CB__F_DOMAIN,
    CB__F_HEADER,
    CB__F_PREFIX,
    CB__F_COUNT,
};

struct cb__cred {
    char *f[CB__F_COUNT]; /* each NUL-terminated, wiped on free */
    size_t len[CB__F_COUNT];
    /* Optional members (see secrets.h), written only when set. */
    bool allow_http;
    uint16_t port;
    /* Not stored: the canonical domain (cb_cred_domain_normalize), or ""
     * when the stored one can never match a host. */
    char match[CB_SECRETS_DOMAIN_MAX + 1];
};

struct cb__cred_list {
    struct cb__cred *v;
    size_t n;
    size_t cap;
};

extern const char *const cb__cred_field_names[CB__F_COUNT];

void cb__cred_clear(struct cb__cred *c);
/* Sets c->match from its domain ("" when it can never match). */
void cb__cred_set_match(struct cb__cred *c);
void cb__cred_list_free(struct cb__cred_list *l);
/* Appends c (taking ownership of its strings). */
void cb__cred_list_push(struct cb__cred_list *l, struct cb__cred *c);

/* Parses the decrypted payload. On failure the list is left empty and the
 * error (CB_SECRETS_E_BAD_PAYLOAD) says where and why. An entry whose
 * domain can never match is kept with an empty `match`. */
int cb__creds_parse(const char *json, size_t len, struct cb__cred_list *out, struct cb_error *err);

/* Serialises the list exactly as serde_json's compact writer would, into
 * one buffer of the exact size. Caller wipes and frees (cb_secret_free). */
char *cb__creds_serialize(const struct cb__cred_list *l, size_t *len);

struct cb_secret_store {
    char *path;
    struct cb_master_key key;
    struct cb__cred_list list;
    struct cb_file_stamp id; /* of the file we loaded or wrote */
};

/* AES-256-GCM over nonce || ct || tag, no AAD. Decrypts when `decrypt`
 * (tag is read; -EBADMSG on authentication failure), else encrypts (tag is
 * written). */
int cb__gcm(const struct cb_master_key *key, const unsigned char *nonce, const unsigned char *in,
            size_t n, unsigned char *out, unsigned char *tag, bool decrypt);

/* The "<store>.check" side file: records a key check value and the size of
 * the file we wrote, so that a failed decryption can be explained. Writing
 * it is best effort. */
void cb__store_check_write(const char *path, const struct cb_master_key *key, size_t size);
/* Called after authentication failed: sets err to the most specific reason
 * the side file allows and returns the matching CB_SECRETS_E_* code. */
int cb__store_diagnose(const char *path, const struct cb_master_key *key, size_t size,
                       struct cb_error *err);

#endif
