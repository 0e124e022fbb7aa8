/* The master key: 64 hex characters, from CLAWBOX_MASTER_KEY or from a key
 * file that only its owner can read. Used directly as the AES-256 key, as
 * the reference does (no KDF), so both read the same stores. */
#include "secrets/secrets.h"

#include "core/file.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A key file is 64 hex characters plus a little whitespace; anything
 * bigger is not a key file. */
#define KEY_FILE_MAX 256

#define KEY_HOWTO "generate one with: openssl rand -hex 32"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int cb__master_key_parse_hex(const char *s, size_t len, struct cb_master_key *key,
                             struct cb_error *err)
{
    while (len > 0 && is_space(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1]))
        len--;
    if (len != 2 * CB_SECRETS_KEY_LEN)
        return cb_error_set(err, -EINVAL,
                            "invalid master key: must be 64 hex chars (32 bytes), got %zu "
                            "characters; " KEY_HOWTO,
                            len);
    for (size_t i = 0; i < CB_SECRETS_KEY_LEN; i++) {
        int hi = cb_hex_digit((unsigned char)s[2 * i]);
        int lo = cb_hex_digit((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            cb_master_key_wipe(key);
            return cb_error_set(err, -EINVAL,
                                "invalid master key: non-hex character at position %zu",
                                2 * i + (hi < 0 ? 0 : 1));
        }
        key->bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int cb_master_key_from_env(struct cb_master_key *key, struct cb_error *err)
{
    const char *v = getenv(CB_SECRETS_ENV_KEY);
    if (v == NULL)
        return cb_error_set(err, -ENOENT, CB_SECRETS_ENV_KEY " is not set; " KEY_HOWTO);
    int r = cb__master_key_parse_hex(v, strlen(v), key, err);
    if (r < 0)
        cb_error_prefix(err, CB_SECRETS_ENV_KEY);
    return r;
}

/* Refuses a key file that someone other than us could have read or
 * replaced: not a regular file, another owner, or any group/other bit. */
static int open_key_file(struct cb_file *f, const char *path, struct cb_error *err)
{
    int r = cb_file_open(f, AT_FDCWD, path, CB_FILE_WIPE, err);
    if (f->failed == CB_FILE_TYPE)
        return cb_error_set(err, -EPERM, "key file %s: not a regular file", path);
    if (r < 0)
        return cb_error_set(err, r, "key file %s: %s", path, strerror(-r));
    if (f->st.st_uid != geteuid())
        return cb_error_set(err, -EPERM, "key file %s: owned by uid %u, not by this user (%u)",
                            path, (unsigned)f->st.st_uid, (unsigned)geteuid());
    if ((f->st.st_mode & 077) != 0)
        return cb_error_set(err, -EPERM,
                            "key file %s: mode %04o lets others read it; it must be 0600 or "
                            "stricter (chmod 600 %s)",
                            path, (unsigned)(f->st.st_mode & 07777), path);
    return 0;
}

int cb_master_key_from_file(const char *path, struct cb_master_key *key, struct cb_error *err)
{
    struct cb_file f;
    int r = open_key_file(&f, path, err);
    if (r == 0)
        r = cb_file_read(&f, KEY_FILE_MAX, err);
    if (f.failed == CB_FILE_SIZE)
        r = cb_error_set(err, r, "key file %s: too large to be a key file", path);
    else if (f.failed == CB_FILE_READ)
        r = cb_error_set(err, r, "key file %s: %s", path, strerror(-r));
    if (r == 0) {
        r = cb__master_key_parse_hex(f.buf.data, f.buf.len, key, err);
        if (r < 0)
            cb_error_prefix(err, "key file %s", path);
    }
    cb_file_close(&f);
    return r;
}

int cb_master_key_load(const char *key_file, struct cb_master_key *key, struct cb_error *err)
{
    if (key_file != NULL)
        return cb_master_key_from_file(key_file, key, err);
    if (getenv(CB_SECRETS_ENV_KEY) == NULL)
        return cb_error_set(err, -ENOENT,
                            "no master key: set " CB_SECRETS_ENV_KEY
                            " to 64 hex characters or use a key file (mode 0600); " KEY_HOWTO);
    return cb_master_key_from_env(key, err);
}

void cb_master_key_wipe(struct cb_master_key *key)
{
    if (key != NULL)
        explicit_bzero(key->bytes, sizeof(key->bytes));
}

void cb_secret_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}
