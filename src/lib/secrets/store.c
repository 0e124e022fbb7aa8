/* The credential store object: load (decrypt + parse), query, edit, save
 * (serialise + encrypt + atomic write). See secrets.h for the format. */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/file.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cb__gcm(const struct cb_master_key *key, const unsigned char *nonce, const unsigned char *in,
            size_t n, unsigned char *out, unsigned char *tag, bool decrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = ctx != NULL && n <= (size_t)INT32_MAX;
    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, decrypt ? 0 : 1);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CB_SECRETS_NONCE_LEN, NULL);
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, key->bytes, nonce, -1);
    ok = ok && (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, (int)n));
    if (ok && decrypt)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CB_SECRETS_TAG_LEN, tag);
    int fin = ok && EVP_CipherFinal_ex(ctx, out + len, &len) > 0;
    if (fin && !decrypt)
        fin = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CB_SECRETS_TAG_LEN, tag);
    EVP_CIPHER_CTX_free(ctx);
    if (!ok)
        return -EIO;
    return fin ? 0 : -EBADMSG;
}

/* Decrypts data (nonce || ct || tag) and parses the payload into the store. */
static int decrypt_and_parse(struct cb_secret_store *s, unsigned char *data, size_t size,
                             struct cb_error *err)
{
    if (size < CB_SECRETS_NONCE_LEN + CB_SECRETS_TAG_LEN)
        return cb_error_set(err, CB_SECRETS_E_TRUNCATED,
                            "decryption error: credential file too short (%zu bytes; a store "
                            "is at least %d): truncated",
                            size, CB_SECRETS_NONCE_LEN + CB_SECRETS_TAG_LEN);
    size_t ct_len = size - CB_SECRETS_NONCE_LEN - CB_SECRETS_TAG_LEN;
    unsigned char *plain = cb_xmalloc(ct_len + 1);
    int r = cb__gcm(&s->key, data, data + CB_SECRETS_NONCE_LEN, ct_len, plain,
                    data + CB_SECRETS_NONCE_LEN + ct_len, true);
    if (r == -EBADMSG)
        r = cb__store_diagnose(s->path, &s->key, size, err);
    else if (r < 0)
        r = cb_error_set(err, r, "decryption error: OpenSSL AES-256-GCM failed");
    else
        r = cb__creds_parse((const char *)plain, ct_len, &s->list, err);
    cb_secret_free((char *)plain, ct_len + 1);
    return r;
}

/* Says, once per load, which entries are kept but never injected because
 * no host can match their domain (a store written by another program). */
static void warn_unmatchable(const struct cb_secret_store *s)
{
    for (size_t i = 0; i < s->list.n; i++) {
        const struct cb__cred *c = &s->list.v[i];
        char canon[CB_SECRETS_DOMAIN_MAX + 1];
        struct cb_error e = {0};
        if (c->match[0] != '\0' || cb_cred_domain_normalize(c->f[CB__F_DOMAIN], canon, &e) == 0)
            continue;
        cb_log(CB_LOG_WARN,
               "credential store %s: credential '%.64s' is never injected: %s (add it again "
               "with clawbox creds add)",
               s->path, c->f[CB__F_NAME], e.msg);
    }
}

/* A missing file is an empty store (the reference's behaviour, and what a
 * first `creds add` needs); every other failure is an error. */
/* The error of a failed read of the store file, in the words it had. */
static int read_error(const struct cb_secret_store *s, const struct cb_file *f, int r,
                      struct cb_error *err)
{
    switch (f->failed) {
    case CB_FILE_OPEN:
        return cb_error_set(err, r, "opening %s: %s", s->path, strerror(-r));
    case CB_FILE_STAT:
        return cb_error_set(err, r, "stat %s: %s", s->path, strerror(-r));
    case CB_FILE_TYPE:
        return cb_error_set(err, r, "%s is not a regular file", s->path);
    case CB_FILE_SIZE:
        return cb_error_set(err, r, "%s is larger than the %u-byte limit", s->path,
                            CB_SECRETS_MAX_FILE_BYTES);
    case CB_FILE_SHORT:
        return cb_error_set(err, r, "reading %s: file shrank while reading", s->path);
    default:
        return cb_error_set(err, r, "reading %s: %s", s->path, strerror(-r));
    }
}

/* A missing file is an empty store (the reference's behaviour, and what a
 * first `creds add` needs); every other failure is an error. */
static int load(struct cb_secret_store *s, struct cb_error *err)
{
    struct cb_file f;
    int r = cb_file_load(&f, AT_FDCWD, s->path, CB_SECRETS_MAX_FILE_BYTES, CB_FILE_EXACT, err);
    if (r == -ENOENT && f.failed == CB_FILE_OPEN)
        r = 0;
    else if (r < 0)
        r = read_error(s, &f, r, err);
    else
        r = decrypt_and_parse(s, (unsigned char *)f.buf.data, f.buf.len, err);
    if (r == 0 && f.failed == CB_FILE_OK) {
        cb_file_stamp_of(&s->id, &f.st);
        warn_unmatchable(s);
    }
    cb_file_close(&f);
    return r;
}

int cb_secret_store_open(const char *path, const struct cb_master_key *key,
                         struct cb_secret_store **out, struct cb_error *err)
{
    struct cb_secret_store *s = cb_xcalloc(1, sizeof(*s));
    s->path = cb_xstrdup(path);
    s->key = *key;
    int r = load(s, err);
    if (r < 0) {
        cb_error_prefix(err, "credential store %s", path);
        cb_secret_store_free(s);
        return r;
    }
    *out = s;
    return 0;
}

void cb_secret_store_free(struct cb_secret_store *s)
{
    if (s == NULL)
        return;
    cb__cred_list_free(&s->list);
    cb_master_key_wipe(&s->key);
    free(s->path);
    free(s);
}

bool cb_secret_store_exists(const struct cb_secret_store *s)
{
    return s->id.present;
}

size_t cb_secret_store_count(const struct cb_secret_store *s)
{
    return s->list.n;
}

static void info_of(const struct cb__cred *c, struct cb_cred_info *out)
{
    out->name = c->f[CB__F_NAME];
    out->domain = c->f[CB__F_DOMAIN];
    out->header_name = c->f[CB__F_HEADER];
    out->header_prefix = c->f[CB__F_PREFIX];
    out->match = c->match[0] ? c->match : NULL;
    out->allow_http = c->allow_http;
    out->port = c->port;
}

int cb_secret_store_entry(const struct cb_secret_store *s, size_t i, struct cb_cred_info *out)
{
    if (i >= s->list.n)
        return -ERANGE;
    info_of(&s->list.v[i], out);
    return 0;
}

static ssize_t find_index(const struct cb_secret_store *s, const char *name)
{
    for (size_t i = 0; i < s->list.n; i++)
        if (strcmp(s->list.v[i].f[CB__F_NAME], name) == 0)
            return (ssize_t)i;
    return -1;
}

int cb_secret_store_find(const struct cb_secret_store *s, const char *name,
                         struct cb_cred_info *out)
{
    ssize_t i = find_index(s, name);
    if (i < 0)
        return -ENOENT;
    info_of(&s->list.v[i], out);
    return 0;
}

int cb_secret_store_value_at(const struct cb_secret_store *s, size_t i, const char **value,
                             size_t *len)
{
    if (i >= s->list.n)
        return -ERANGE;
    *value = s->list.v[i].f[CB__F_VALUE];
    *len = s->list.v[i].len[CB__F_VALUE];
    return 0;
}

int cb_secret_store_get_value(const struct cb_secret_store *s, const char *name, char **value,
                              size_t *len, struct cb_error *err)
{
    ssize_t i = find_index(s, name);
    if (i < 0)
        return cb_error_set(err, -ENOENT, "no credential named '%s'", name);
    const struct cb__cred *c = &s->list.v[i];
    *value = cb_xstrndup(c->f[CB__F_VALUE], c->len[CB__F_VALUE]);
    *len = c->len[CB__F_VALUE];
    return 0;
}

int cb_secret_store_remove(struct cb_secret_store *s, const char *name)
{
    ssize_t i = find_index(s, name);
    if (i < 0)
        return -ENOENT;
    cb__cred_clear(&s->list.v[i]);
    memmove(&s->list.v[i], &s->list.v[i + 1], (s->list.n - (size_t)i - 1) * sizeof(s->list.v[0]));
    s->list.n--;
    return 0;
}

bool cb_secret_store_changed_on_disk(const struct cb_secret_store *s)
{
    return !cb_file_stamp_matches(&s->id, s->path);
}
