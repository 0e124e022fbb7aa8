/* Editing and saving the credential store, and the ".check" side file that
 * turns "authentication failed" into wrong key / truncated / modified. */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define NAME_MAX_LEN    256
#define HEADER_MAX_LEN  256
#define PREFIX_MAX_LEN  256
#define KEY_CHECK_LEN   16
#define CHECK_FILE_MAX  4096
#define KEY_CHECK_LABEL "clawbox credential store key check v1"

static bool has_ctl(const char *s, bool allow_space)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return true;
    }
    return false;
}

/* RFC 9110 token characters. */
static bool is_header_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && strchr(extra, c) == NULL)
            return false;
    }
    return true;
}

static int check_text(const char *what, const char *s, size_t max, bool allow_space,
                      bool allow_empty, struct cb_error *err)
{
    if (s == NULL || (!allow_empty && *s == '\0'))
        return cb_error_set(err, -EINVAL, "credential %s must not be empty", what);
    if (strlen(s) > max)
        return cb_error_set(err, -EINVAL, "credential %s is longer than %zu bytes", what, max);
    if (has_ctl(s, allow_space))
        return cb_error_set(err, -EINVAL, "credential %s contains a control character%s", what,
                            allow_space ? "" : " or a space");
    return 0;
}

static int validate_spec(const struct cb_cred_spec *c, const char *header, const char *prefix,
                         char domain[CB_SECRETS_DOMAIN_MAX + 1], struct cb_error *err)
{
    int r = check_text("name", c->name, NAME_MAX_LEN, false, false, err);
    if (r == 0)
        r = c->domain ? cb_cred_domain_normalize(c->domain, domain, err)
                      : cb_error_set(err, -EINVAL, "credential domain must not be empty");
    if (r == 0)
        r = check_text("header prefix", prefix, PREFIX_MAX_LEN, true, true, err);
    if (r == 0 && (strlen(header) > HEADER_MAX_LEN || !is_header_token(header)))
        r = cb_error_set(err, -EINVAL, "credential header '%.64s' is not a valid HTTP header name",
                         header);
    if (r < 0)
        return r;
    if (c->value == NULL || c->value_len == 0)
        return cb_error_set(err, -EINVAL, "credential value cannot be empty");
    if (c->value_len > CB_SECRETS_MAX_FIELD)
        return cb_error_set(err, -EINVAL, "credential value is longer than %u bytes",
                            CB_SECRETS_MAX_FIELD);
    /* It becomes a header value: CR, LF or NUL would split or cut it. */
    for (size_t i = 0; i < c->value_len; i++)
        if (c->value[i] == '\r' || c->value[i] == '\n' || c->value[i] == '\0')
            return cb_error_set(
                err, -EINVAL, "credential value contains a CR, LF or NUL byte (at offset %zu)", i);
    return 0;
}

static char *dup_field(const char *s, size_t n, size_t *len)
{
    *len = n;
    return cb_xstrndup(s, n);
}

int cb_secret_store_put(struct cb_secret_store *s, const struct cb_cred_spec *spec,
                        struct cb_error *err)
{
    const char *header = spec->header_name ? spec->header_name : CB_SECRETS_DEFAULT_HEADER;
    const char *prefix = spec->header_prefix ? spec->header_prefix : CB_SECRETS_DEFAULT_PREFIX;
    char domain[CB_SECRETS_DOMAIN_MAX + 1];
    int r = validate_spec(spec, header, prefix, domain, err);
    if (r < 0)
        return r;
    struct cb__cred c = {.allow_http = spec->allow_http, .port = spec->port};
    c.f[CB__F_NAME] = dup_field(spec->name, strlen(spec->name), &c.len[CB__F_NAME]);
    c.f[CB__F_VALUE] = dup_field(spec->value, spec->value_len, &c.len[CB__F_VALUE]);
    c.f[CB__F_DOMAIN] = dup_field(domain, strlen(domain), &c.len[CB__F_DOMAIN]);
    c.f[CB__F_HEADER] = dup_field(header, strlen(header), &c.len[CB__F_HEADER]);
    c.f[CB__F_PREFIX] = dup_field(prefix, strlen(prefix), &c.len[CB__F_PREFIX]);
    memcpy(c.match, domain, sizeof(domain));
    cb_secret_store_remove(s, spec->name);
    cb__cred_list_push(&s->list, &c);
    return 0;
}

static void key_check(const struct cb_master_key *key, char hex[2 * KEY_CHECK_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key->bytes, CB_SECRETS_KEY_LEN, (const unsigned char *)KEY_CHECK_LABEL,
         strlen(KEY_CHECK_LABEL), mac, &n);
    cb_hex_encode(mac, KEY_CHECK_LEN, hex);
}

static char *check_path(const char *path)
{
    return cb_xasprintf("%s.check", path);
}

void cb__store_check_write(const char *path, const struct cb_master_key *key, size_t size)
{
    char kc[2 * KEY_CHECK_LEN + 1];
    key_check(key, kc);
    json_t *o = json_pack("{s:i,s:s,s:I}", "version", 1, "key_check", kc, "size", (json_int_t)size);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    char *cp = check_path(path);
    /* A stale side file would misexplain a later failure: better none. */
    if (text == NULL || cb_write_atomic(cp, text, strlen(text), NULL) < 0)
        unlink(cp);
    free(cp);
    free(text);
    json_decref(o);
}

/* Reads the side file; false when absent or unusable. */
static bool check_read(const char *path, char kc[2 * KEY_CHECK_LEN + 1], json_int_t *size)
{
    char *cp = check_path(path);
    json_t *o = json_load_file(cp, JSON_REJECT_DUPLICATES, NULL);
    free(cp);
    const char *k = NULL;
    json_int_t v = 0, sz = -1;
    bool ok = o &&
              json_unpack(o, "{s:I,s:s,s:I}", "version", &v, "key_check", &k, "size", &sz) == 0 &&
              v == 1 && strlen(k) == 2 * KEY_CHECK_LEN && sz >= 0;
    if (ok) {
        memcpy(kc, k, 2 * KEY_CHECK_LEN + 1);
        *size = sz;
    }
    json_decref(o);
    return ok;
}

int cb__store_diagnose(const char *path, const struct cb_master_key *key, size_t size,
                       struct cb_error *err)
{
    char want[2 * KEY_CHECK_LEN + 1], have[2 * KEY_CHECK_LEN + 1];
    json_int_t written = 0;
    if (!check_read(path, want, &written))
        return cb_error_set(err, CB_SECRETS_E_WRONG_KEY,
                            "decryption error: decryption failed — wrong key? (authentication "
                            "failed: the master key is wrong, or the file was truncated or "
                            "modified; no .check file to tell which)");
    key_check(key, have);
    if (!cb_const_time_eq(want, sizeof(want), have, sizeof(have)))
        return cb_error_set(err, CB_SECRETS_E_WRONG_KEY,
                            "decryption error: wrong master key (it is not the key this store "
                            "was written with)");
    if ((json_int_t)size < written)
        return cb_error_set(err, CB_SECRETS_E_TRUNCATED,
                            "decryption error: file truncated (%zu bytes, written with %lld)", size,
                            (long long)written);
    return cb_error_set(err, CB_SECRETS_E_TAMPERED,
                        "decryption error: file modified or corrupted after it was written "
                        "(the key is right but authentication failed)");
}

/* nonce || ciphertext || tag of the serialised entries. */
static int seal(const struct cb_secret_store *s, unsigned char **out, size_t *out_len,
                struct cb_error *err)
{
    size_t plen = 0;
    char *plain = cb__creds_serialize(&s->list, &plen);
    size_t n = CB_SECRETS_NONCE_LEN + plen + CB_SECRETS_TAG_LEN;
    unsigned char *buf = cb_xmalloc(n);
    int r = cb_random_bytes(buf, CB_SECRETS_NONCE_LEN);
    if (r < 0)
        r = cb_error_set(err, r, "encryption error: no random nonce: %s", strerror(-r));
    else if (cb__gcm(&s->key, buf, (unsigned char *)plain, plen, buf + CB_SECRETS_NONCE_LEN,
                     buf + CB_SECRETS_NONCE_LEN + plen, false) < 0)
        r = cb_error_set(err, -EIO, "encryption error: OpenSSL AES-256-GCM failed");
    cb_secret_free(plain, plen);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* Takes an exclusive lock on "<store>.lock" so that two savers cannot both
 * pass the staleness check. Returns the fd or a negative errno. */
static int lock_secret_store(const char *path, struct cb_error *err)
{
    char *lp = cb_xasprintf("%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r = fd < 0 ? cb_error_set(err, -errno, "opening %s: %s", lp, strerror(errno)) : 0;
    if (r == 0 && (r = cb_flock_retry(fd, LOCK_EX)) < 0)
        cb_error_set(err, r, "locking %s: %s", lp, strerror(-r));
    free(lp);
    if (r < 0 && fd >= 0)
        close(fd);
    return r < 0 ? r : fd;
}

static int make_parent(const char *path, struct cb_error *err)
{
    char *copy = cb_xstrdup(path);
    int r = cb_mkdir_p(dirname(copy), 0700, err);
    free(copy);
    return r;
}

static int save_locked(struct cb_secret_store *s, struct cb_error *err)
{
    if (!cb_file_stamp_matches(&s->id, s->path))
        return cb_error_set(err, CB_SECRETS_E_STALE,
                            "the store changed on disk since it was loaded; reload and retry");
    unsigned char *data = NULL;
    size_t n = 0;
    int r = seal(s, &data, &n, err);
    if (r == 0)
        r = cb_write_atomic(s->path, data, n, err);
    free(data);
    struct stat st;
    if (r == 0 && stat(s->path, &st) < 0)
        r = cb_error_set(err, -errno, "stat %s: %s", s->path, strerror(errno));
    if (r == 0) {
        cb_file_stamp_of(&s->id, &st);
        cb__store_check_write(s->path, &s->key, n);
    }
    return r;
}

int cb_secret_store_save(struct cb_secret_store *s, struct cb_error *err)
{
    int r = make_parent(s->path, err);
    int fd = r < 0 ? r : lock_secret_store(s->path, err);
    if (fd >= 0) {
        r = save_locked(s, err);
        close(fd);
    } else {
        r = fd;
    }
    if (r < 0)
        cb_error_prefix(err, "saving credential store %s", s->path);
    return r;
}
