/* Tests for src/lib/secrets: master key handling, the store's round trip,
 * compatibility with the reference format (an independent EVP encoder in
 * this file, a known-answer vector made by node's crypto, and node itself
 * when available), and every way a store can be unreadable. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "core/util.h"
#include "secrets/secrets.h"
#include "rm_tree.h"

extern char **environ;

static const char *g_node;
static const char *g_refstore;

#define KEY_HEX   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2_HEX  "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define MAX_PLAIN (64 * 1024)

struct fx {
    char dir[64];
    char path[192];
    struct cb_master_key key;
};

static int setup(void **state)
{
    struct fx *f = cb_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cb-secrets-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    /* A missing parent directory: save must create it. */
    snprintf(f->path, sizeof(f->path), "%s/sub/credentials.enc", f->dir);
    if (cb__master_key_parse_hex(KEY_HEX, strlen(KEY_HEX), &f->key, NULL) < 0)
        return -1;
    unsetenv(CB_SECRETS_ENV_KEY);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_tree(f->dir);
    free(f);
    return 0;
}

/* --- independent implementation of the reference layout (EVP directly) --- */

static void ref_seal(const struct cb_master_key *key, const unsigned char nonce[12],
                     const char *plain, size_t n, unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    memcpy(out, nonce, 12);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key->bytes, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out + 12, &len, (const unsigned char *)plain, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + 12 + len, &len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n), 1);
    EVP_CIPHER_CTX_free(c);
}

/* Replaces rather than truncates: ext4 flushes a file truncated and
 * rewritten in place on close, which made the mutation loop slow. */
static void write_file(const char *path, const void *data, size_t n)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static size_t read_file(const char *path, unsigned char *buf, size_t max)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, max);
    assert_true(n >= 0);
    close(fd);
    return (size_t)n;
}

/* Writes plain as a reference store at path. */
static void ref_write(const char *path, const struct cb_master_key *key, const char *plain)
{
    size_t n = strlen(plain);
    unsigned char nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    unsigned char *out = cb_xmalloc(n + 28);
    ref_seal(key, nonce, plain, n, out);
    write_file(path, out, n + 28);
    free(out);
}

/* Decrypts the store at path by the reference layout; returns the plaintext
 * length, or -1 when authentication fails. */
static ssize_t ref_read(const char *path, const struct cb_master_key *key, char *plain)
{
    static unsigned char data[MAX_PLAIN + 28];
    size_t n = read_file(path, data, sizeof(data));
    assert_true(n >= 28);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok;
    EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key->bytes, data);
    EVP_DecryptUpdate(c, (unsigned char *)plain, &len, data + 12, (int)(n - 28));
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, data + n - 16);
    ok = EVP_DecryptFinal_ex(c, (unsigned char *)plain + len, &len) > 0;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return -1;
    plain[n - 28] = '\0';
    return (ssize_t)(n - 28);
}

static void mkparent(struct fx *f)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/sub", f->dir);
    mkdir(p, 0700);
}

static struct cb_secret_store *open_ok(struct fx *f)
{
    struct cb_error err = {0};
    struct cb_secret_store *s = NULL;
    int r = cb_secret_store_open(f->path, &f->key, &s, &err);
    if (r != 0)
        fail_msg("open: %s", err.msg);
    return s;
}

static int open_err(struct fx *f, const struct cb_master_key *key, struct cb_error *err)
{
    struct cb_secret_store *s = (struct cb_secret_store *)0x1;
    int r = cb_secret_store_open(f->path, key, &s, err);
    assert_true(r < 0);
    assert_ptr_equal(s, (struct cb_secret_store *)0x1); /* nothing handed out */
    return r;
}

static void put_ok(struct cb_secret_store *s, const char *name, const char *domain,
                   const char *header, const char *prefix, const char *value)
{
    struct cb_error err = {0};
    struct cb_cred_spec spec = {name, domain, header, prefix, value, strlen(value)};
    if (cb_secret_store_put(s, &spec, &err) != 0)
        fail_msg("put: %s", err.msg);
}

static void save_ok(struct cb_secret_store *s)
{
    struct cb_error err = {0};
    if (cb_secret_store_save(s, &err) != 0)
        fail_msg("save: %s", err.msg);
}

static void assert_value(struct cb_secret_store *s, const char *name, const char *want)
{
    char *v = NULL;
    size_t n = 0;
    assert_int_equal(cb_secret_store_get_value(s, name, &v, &n, NULL), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
    cb_secret_free(v, n);
}

/* Makes a saved two-entry store and returns its size. */
static size_t make_store(struct fx *f)
{
    struct cb_secret_store *s = open_ok(f);
    put_ok(s, "github", "api.github.com", NULL, NULL, "ghp_secret1");
    put_ok(s, "openai", "api.openai.com", "X-Api-Key", "", "sk-secret2");
    save_ok(s);
    cb_secret_store_free(s);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    return (size_t)st.st_size;
}

/* ---------------------------- master key ---------------------------- */

static void test_key_parse(void **state)
{
    (void)state;
    struct cb_master_key k;
    const char *s = "  " KEY_HEX "\n";
    assert_int_equal(cb__master_key_parse_hex(s, strlen(s), &k, NULL), 0);
    assert_int_equal(k.bytes[0], 0x00);
    assert_int_equal(k.bytes[31], 0x1f);
    const char *up = "FF0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    assert_int_equal(cb__master_key_parse_hex(up, strlen(up), &k, NULL), 0);
    assert_int_equal(k.bytes[0], 0xff);
    cb_master_key_wipe(&k);
    for (size_t i = 0; i < sizeof(k.bytes); i++)
        assert_int_equal(k.bytes[i], 0);
}

static void test_key_parse_bad(void **state)
{
    (void)state;
    struct cb_master_key k;
    struct cb_error err = {0};
    assert_int_equal(cb__master_key_parse_hex("abcd", 4, &k, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "64 hex chars"));
    assert_non_null(strstr(err.msg, "openssl rand -hex 32"));
    char bad[65];
    memcpy(bad, KEY_HEX, 65);
    bad[10] = 'g';
    assert_int_equal(cb__master_key_parse_hex(bad, 64, &k, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "non-hex character at position 10"));
    assert_int_equal(cb__master_key_parse_hex(KEY_HEX "0", 65, &k, &err), -EINVAL);
    /* Multi-byte UTF-8 of the right byte length (a Rust panic in the
     * reference) is a plain error here. */
    const char *utf = "\xc3\xa9" KEY_HEX;
    assert_int_equal(cb__master_key_parse_hex(utf, 64, &k, &err), -EINVAL);
}

static void test_key_env(void **state)
{
    (void)state;
    struct cb_master_key k;
    struct cb_error err = {0};
    assert_int_equal(cb_master_key_from_env(&k, &err), -ENOENT);
    assert_int_equal(cb_master_key_load(NULL, &k, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "openssl rand -hex 32"));
    setenv(CB_SECRETS_ENV_KEY, KEY2_HEX, 1);
    assert_int_equal(cb_master_key_load(NULL, &k, &err), 0);
    assert_int_equal(k.bytes[0], 0xff);
    setenv(CB_SECRETS_ENV_KEY, "short", 1);
    assert_int_equal(cb_master_key_from_env(&k, &err), -EINVAL);
    assert_non_null(strstr(err.msg, CB_SECRETS_ENV_KEY ": invalid master key"));
    unsetenv(CB_SECRETS_ENV_KEY);
}

static void write_key_file(const char *path, const char *text, mode_t mode)
{
    write_file(path, text, strlen(text));
    assert_int_equal(chmod(path, mode), 0);
}

static void test_key_file(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cb_master_key k;
    struct cb_error err = {0};
    snprintf(p, sizeof(p), "%s/master.key", f->dir);
    write_key_file(p, KEY2_HEX "\n", 0600);
    setenv(CB_SECRETS_ENV_KEY, KEY_HEX, 1);
    /* An explicit key file wins over the environment. */
    assert_int_equal(cb_master_key_load(p, &k, &err), 0);
    assert_int_equal(k.bytes[0], 0xff);
    unsetenv(CB_SECRETS_ENV_KEY);
    assert_int_equal(chmod(p, 0400), 0);
    assert_int_equal(cb_master_key_from_file(p, &k, &err), 0);
}

static void test_key_file_refused(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cb_master_key k;
    struct cb_error err = {0};
    snprintf(p, sizeof(p), "%s/master.key", f->dir);
    const mode_t loose[] = {0644, 0640, 0604, 0660, 0602, 0700 | 0020};
    for (size_t i = 0; i < CB_ARRAY_LEN(loose); i++) {
        write_key_file(p, KEY_HEX, loose[i]);
        assert_int_equal(cb_master_key_from_file(p, &k, &err), -EPERM);
        assert_non_null(strstr(err.msg, "0600 or stricter"));
        unlink(p);
    }
    assert_int_equal(cb_master_key_from_file(p, &k, &err), -ENOENT);
    assert_int_equal(cb_master_key_from_file(f->dir, &k, &err), -EPERM);
    assert_non_null(strstr(err.msg, "not a regular file"));
    write_key_file(p, "not a key\n", 0600);
    assert_int_equal(cb_master_key_from_file(p, &k, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "key file"));
    unlink(p);
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_key_file(p, big, 0600);
    assert_int_equal(cb_master_key_from_file(p, &k, &err), -EFBIG);
    if (geteuid() == 0) {
        unlink(p);
        write_key_file(p, KEY_HEX, 0600);
        assert_int_equal(chown(p, 65534, 65534), 0);
        assert_int_equal(cb_master_key_from_file(p, &k, &err), -EPERM);
        assert_non_null(strstr(err.msg, "not by this user"));
    }
}

/* ----------------------------- the store ----------------------------- */

static void test_missing_is_empty(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *s = open_ok(f);
    assert_false(cb_secret_store_exists(s));
    assert_int_equal(cb_secret_store_count(s), 0);
    struct cb_cred_info info;
    assert_int_equal(cb_secret_store_entry(s, 0, &info), -ERANGE);
    assert_int_equal(cb_secret_store_find(s, "x", &info), -ENOENT);
    /* Opening does not create anything. */
    assert_int_equal(access(f->path, F_OK), -1);
    cb_secret_store_free(s);
    cb_secret_store_free(NULL);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    make_store(f);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char parent[256];
    snprintf(parent, sizeof(parent), "%s/sub", f->dir);
    assert_int_equal(stat(parent, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    struct cb_secret_store *s = open_ok(f);
    assert_true(cb_secret_store_exists(s));
    assert_int_equal(cb_secret_store_count(s), 2);
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_entry(s, 0, &i), 0);
    assert_string_equal(i.name, "github");
    assert_string_equal(i.domain, "api.github.com");
    assert_string_equal(i.header_name, "Authorization");
    assert_string_equal(i.header_prefix, "Bearer ");
    assert_int_equal(cb_secret_store_find(s, "openai", &i), 0);
    assert_string_equal(i.header_name, "X-Api-Key");
    assert_string_equal(i.header_prefix, "");
    assert_value(s, "github", "ghp_secret1");
    assert_value(s, "openai", "sk-secret2");
    const char *v;
    size_t n;
    assert_int_equal(cb_secret_store_value_at(s, 1, &v, &n), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(v, "sk-secret2", 10);
    assert_int_equal(cb_secret_store_value_at(s, 2, &v, &n), -ERANGE);
    struct cb_error err = {0};
    char *copy = NULL;
    assert_int_equal(cb_secret_store_get_value(s, "nope", &copy, &n, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "nope"));
    cb_secret_store_free(s);
}

/* Our file is exactly nonce || GCM(serde-compact JSON) || tag, so the
 * reference (and the independent decoder here) can read it. */
static void test_layout_of_saved_file(void **state)
{
    struct fx *f = *state;
    size_t size = make_store(f);
    static char plain[MAX_PLAIN];
    ssize_t n = ref_read(f->path, &f->key, plain);
    const char *want =
        "[{\"name\":\"github\",\"value\":\"ghp_secret1\",\"domain\":\"api.github.com\","
        "\"header_name\":\"Authorization\",\"header_prefix\":\"Bearer \"},"
        "{\"name\":\"openai\",\"value\":\"sk-secret2\",\"domain\":\"api.openai.com\","
        "\"header_name\":\"X-Api-Key\",\"header_prefix\":\"\"}]";
    assert_int_equal(n, (ssize_t)strlen(want));
    assert_string_equal(plain, want);
    assert_int_equal(size, 12 + strlen(want) + 16);
    /* A fresh nonce per save. */
    unsigned char a[16], b[16];
    read_file(f->path, a, sizeof(a));
    struct cb_secret_store *s = open_ok(f);
    save_ok(s);
    cb_secret_store_free(s);
    read_file(f->path, b, sizeof(b));
    assert_memory_not_equal(a, b, 12);
}

/* serde_json's escaping: short forms for \b \t \n \f \r, \u00xx for other
 * controls, UTF-8 raw, '/' and DEL unescaped. */
static void test_serialised_escapes(void **state)
{
    struct fx *f = *state;
    mkparent(f);
    /* Control bytes in a value can only come from a stored file. */
    ref_write(f->path, &f->key,
              "[{\"name\":\"n\",\"value\":\"q\\\"b\\\\s/\\u0001\\b\\f\\t\\u007f\\u00e9\","
              "\"domain\":\"d\",\"header_name\":\"H\",\"header_prefix\":\"\"}]");
    struct cb_secret_store *s = open_ok(f);
    assert_value(s, "n", "q\"b\\s/\x01\b\f\t\x7f\xc3\xa9");
    save_ok(s);
    cb_secret_store_free(s);
    static char plain[MAX_PLAIN];
    ref_read(f->path, &f->key, plain);
    assert_string_equal(plain,
                        "[{\"name\":\"n\",\"value\":\"q\\\"b\\\\s/\\u0001\\b\\f\\t\x7f\xc3\xa9\","
                        "\"domain\":\"d\",\"header_name\":\"H\",\"header_prefix\":\"\"}]");
}

static void test_put_replace_remove(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *s = open_ok(f);
    put_ok(s, "a", "a.example", NULL, NULL, "va");
    put_ok(s, "b", "b.example", NULL, NULL, "vb");
    put_ok(s, "c", "*.c.example", NULL, NULL, "vc");
    /* Replacing moves the entry to the end, as the reference does. */
    put_ok(s, "a", "a2.example", "X-Key", "Token ", "va2");
    struct cb_cred_info i;
    const char *order[] = {"b", "c", "a"};
    assert_int_equal(cb_secret_store_count(s), 3);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(cb_secret_store_entry(s, k, &i), 0);
        assert_string_equal(i.name, order[k]);
    }
    assert_string_equal(i.domain, "a2.example");
    assert_string_equal(i.header_prefix, "Token ");
    assert_value(s, "a", "va2");
    assert_int_equal(cb_secret_store_remove(s, "c"), 0);
    assert_int_equal(cb_secret_store_remove(s, "c"), -ENOENT);
    save_ok(s);
    cb_secret_store_free(s);
    s = open_ok(f);
    assert_int_equal(cb_secret_store_count(s), 2);
    assert_int_equal(cb_secret_store_entry(s, 0, &i), 0);
    assert_string_equal(i.name, "b");
    assert_int_equal(cb_secret_store_entry(s, 1, &i), 0);
    assert_string_equal(i.name, "a");
    /* Removing everything leaves a valid empty store, not a missing one. */
    cb_secret_store_remove(s, "a");
    cb_secret_store_remove(s, "b");
    save_ok(s);
    cb_secret_store_free(s);
    s = open_ok(f);
    assert_true(cb_secret_store_exists(s));
    assert_int_equal(cb_secret_store_count(s), 0);
    cb_secret_store_free(s);
}

static void assert_names(const char **got, size_t n, const char *const *want, size_t n_want)
{
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
}

/* The diff a reload audits: names added, removed and changed (any field,
 * the value included), sorted; an unchanged or reordered entry is not
 * listed; a NULL store is empty; a repeated name counts once (the first,
 * as lookups find it). */
static void test_diff(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *a = open_ok(f), *b = open_ok(f);
    put_ok(a, "same", "s.example", NULL, NULL, "value-same");
    put_ok(a, "gone", "g.example", NULL, NULL, "value-gone");
    put_ok(a, "val", "v.example", NULL, NULL, "value-old");
    put_ok(a, "dom", "d.example", NULL, NULL, "value-dom");
    put_ok(a, "hdr", "h.example", "X-A", "", "value-hdr");
    put_ok(a, "pfx", "p.example", NULL, "Bearer ", "value-pfx");
    put_ok(b, "pfx", "p.example", NULL, "Token ", "value-pfx");
    put_ok(b, "new", "n.example", NULL, NULL, "value-new");
    put_ok(b, "hdr", "h.example", "X-B", "", "value-hdr");
    put_ok(b, "dom", "d2.example", NULL, NULL, "value-dom");
    put_ok(b, "val", "v.example", NULL, NULL, "value-new");
    put_ok(b, "same", "s.example", NULL, NULL, "value-same");
    struct cb_secret_diff d;
    cb_secret_store_diff(a, b, &d);
    const char *added[] = {"new"}, *removed[] = {"gone"}, *changed[] = {"dom", "hdr", "pfx", "val"};
    assert_names(d.added, d.n_added, added, 1);
    assert_names(d.removed, d.n_removed, removed, 1);
    assert_names(d.changed, d.n_changed, changed, 4);
    cb_secret_diff_free(&d);
    cb_secret_store_diff(b, b, &d);
    assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
    cb_secret_diff_free(&d);
    cb_secret_store_diff(NULL, a, &d);
    const char *all[] = {"dom", "gone", "hdr", "pfx", "same", "val"};
    assert_names(d.added, d.n_added, all, 6);
    assert_int_equal(d.n_removed + d.n_changed, 0);
    cb_secret_diff_free(&d);
    cb_secret_store_diff(a, NULL, &d);
    assert_names(d.removed, d.n_removed, all, 6);
    cb_secret_diff_free(&d);
    cb_secret_store_free(a);
    cb_secret_store_free(b);

    mkparent(f);
    ref_write(f->path, &f->key,
              "[{\"name\":\"n\",\"value\":\"first-value\",\"domain\":\"d\",\"header_name\":"
              "\"H\",\"header_prefix\":\"\"},{\"name\":\"n\",\"value\":\"other-value\","
              "\"domain\":\"d\",\"header_name\":\"H\",\"header_prefix\":\"\"}]");
    a = open_ok(f);
    b = open_ok(f);
    cb_secret_store_remove(b, "n"); /* drops the first: the second becomes visible */
    cb_secret_store_diff(a, a, &d);
    assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
    cb_secret_diff_free(&d);
    cb_secret_store_diff(a, b, &d);
    assert_int_equal(d.n_added + d.n_removed, 0);
    assert_int_equal(d.n_changed, 1);
    cb_secret_diff_free(&d);
    cb_secret_store_free(a);
    cb_secret_store_free(b);
}

static int collect_line(const char *line, size_t len, void *ctx)
{
    json_array_append_new(ctx, json_loadb(line, len, 0, NULL));
    return 0;
}

static const char *member(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static char *names_of(const json_t *o, const char *key)
{
    return json_dumps(json_object_get(o, key), JSON_COMPACT);
}

/* One audit line per credential change, for the server's reload (a diff
 * of two stores) and the CLI (one name, with its domain); no line when
 * nothing changed; names only, never values. */
static void test_change_audit(void **state)
{
    struct fx *f = *state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/audit", f->dir);
    struct cb_audit_options ao = {.dir = dir};
    struct cb_audit *log = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_audit_open(&ao, &log, &err), 0);
    struct cb_secret_store *a = open_ok(f), *b = open_ok(f);
    put_ok(a, "gone", "g.example", NULL, NULL, "value-gone-1234");
    put_ok(a, "kept", "k.example", NULL, NULL, "value-kept-1234");
    put_ok(b, "kept", "k.example", NULL, NULL, "value-kept-5678");
    put_ok(b, "new", "n.example", NULL, NULL, "value-new-1234");
    struct cb_secret_change c = {.decision = "reload", .reason = "store reloaded"};
    cb_secret_store_diff(a, b, &c.names);
    assert_int_equal(cb_secret_change_audit(log, &c, &err), 0);
    cb_secret_diff_free(&c.names);
    cb_secret_store_diff(b, b, &c.names); /* nothing changed: no line */
    assert_int_equal(cb_secret_change_audit(log, &c, &err), 0);
    cb_secret_diff_free(&c.names);
    const char *one[] = {"new"};
    struct cb_secret_change add = {.decision = "add",
                                   .reason = "clawbox creds: add credential 'new'",
                                   .domain = "n.example",
                                   .names = {.added = one, .n_added = 1}};
    assert_int_equal(cb_secret_change_audit(log, &add, &err), 0);
    cb_audit_close(log);
    json_t *lines = json_array();
    assert_int_equal(cb_audit_tail(dir, 10, collect_line, lines, &err), 0);
    assert_int_equal(json_array_size(lines), 2);
    json_t *r = json_array_get(lines, 0), *l = json_array_get(lines, 1);
    assert_string_equal(member(r, "kind"), "credential");
    assert_string_equal(member(r, "method"), "CREDENTIAL");
    assert_string_equal(member(r, "decision"), "reload");
    assert_string_equal(member(r, "reason"), "store reloaded");
    assert_true(json_is_null(json_object_get(r, "domain")));
    char *got[3] = {names_of(r, "added"), names_of(r, "removed"), names_of(r, "changed")};
    assert_string_equal(got[0], "[\"new\"]");
    assert_string_equal(got[1], "[\"gone\"]");
    assert_string_equal(got[2], "[\"kept\"]");
    for (int i = 0; i < 3; i++)
        free(got[i]);
    assert_string_equal(member(l, "decision"), "add");
    assert_string_equal(member(l, "domain"), "n.example");
    char *text = json_dumps(lines, JSON_COMPACT);
    assert_null(strstr(text, "value-"));
    free(text);
    json_decref(lines);
    cb_secret_store_free(a);
    cb_secret_store_free(b);
}

static void put_bad(struct cb_secret_store *s, const char *name, const char *domain,
                    const char *header, const char *prefix, const char *value, size_t vlen,
                    const char *msg)
{
    struct cb_error err = {0};
    struct cb_cred_spec spec = {name, domain, header, prefix, value, vlen};
    assert_int_equal(cb_secret_store_put(s, &spec, &err), -EINVAL);
    if (strstr(err.msg, msg) == NULL)
        fail_msg("'%s' lacks '%s'", err.msg, msg);
}

static void test_put_validation(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *s = open_ok(f);
    put_bad(s, "", "d", NULL, NULL, "v", 1, "name must not be empty");
    put_bad(s, NULL, "d", NULL, NULL, "v", 1, "name must not be empty");
    put_bad(s, "n", "", NULL, NULL, "v", 1, "domain must not be empty");
    put_bad(s, "n m", "d", NULL, NULL, "v", 1, "name contains");
    put_bad(s, "n", "d d", NULL, NULL, "v", 1, "contains a space");
    put_bad(s, "n\x01", "d", NULL, NULL, "v", 1, "control");
    put_bad(s, "n", "d", "X Key", NULL, "v", 1, "not a valid HTTP header");
    put_bad(s, "n", "d", "X:Key", NULL, "v", 1, "not a valid HTTP header");
    put_bad(s, "n", "d", "", NULL, "v", 1, "not a valid HTTP header");
    put_bad(s, "n", "d", NULL, "Bearer\r\n", "v", 1, "prefix contains");
    put_bad(s, "n", "d", NULL, NULL, "", 0, "cannot be empty");
    put_bad(s, "n", "d", NULL, NULL, "a\r\nX-Evil: 1", 12, "CR, LF or NUL");
    put_bad(s, "n", "d", NULL, NULL, "a\0b", 3, "CR, LF or NUL");
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    put_bad(s, longname, "d", NULL, NULL, "v", 1, "longer than");
    assert_int_equal(cb_secret_store_count(s), 0);
    cb_secret_store_free(s);
}

struct domain_case {
    const char *in;
    const char *want; /* canonical form, or a piece of the refusal */
};

/* Every domain a request's host can equal is accepted in its canonical
 * form; every one it never can is refused, saying what is wrong. */
static void test_domain_normalize(void **state)
{
    (void)state;
    static const struct domain_case ok[] = {
        {"api.github.com", "api.github.com"},
        {"API.GitHub.COM", "api.github.com"},
        {"*.Example.com", "*.example.com"},
        {"localhost", "localhost"},
        {"127.0.0.1", "127.0.0.1"},
        {"0x7f.1", "127.0.0.1"},
        {"[::1]", "::1"},
        {"::1", "::1"},
        {"2001:DB8::1", "2001:db8::1"},
    };
    static const struct domain_case bad[] = {
        {"", "must not be empty"},
        {"*", "every host"},
        {"api.github.com.", "ends with a dot"},
        {"*.example.com.", "ends with a dot"},
        {"api.github.com:443", "includes a port"},
        {"[::1]:8443", "includes a port"},
        {"api%2egithub.com", "contains '%'"},
        {"fe80::1%eth0", "contains '%'"},
        {"a..b.com", "empty label"},
        {".a.com", "empty label"},
        {"a b.com", "space or control"},
        {"\tapi.com", "space or control"},
        {"https://api.github.com", "not a host"},
        {"api.*.com", "not a whole first label"},
        {"**.a.com", "not a whole first label"},
        {"*", "every host"},
        {"*.com", "top-level domain"},
        {"*.co.uk", "public suffix"},
        {"*.10.0.0.1", "IP address"},
        {"ex_ample.com", "is not valid"},
        {"\xc3\xbcn.com", "not ASCII"},
        {"1.2.3.256", "not a valid IPv4"},
    };
    char out[CB_SECRETS_DOMAIN_MAX + 1];
    for (size_t i = 0; i < CB_ARRAY_LEN(ok); i++) {
        struct cb_error err = {0};
        if (cb_cred_domain_normalize(ok[i].in, out, &err) != 0)
            fail_msg("'%s' refused: %s", ok[i].in, err.msg);
        assert_string_equal(out, ok[i].want);
    }
    for (size_t i = 0; i < CB_ARRAY_LEN(bad); i++) {
        struct cb_error err = {0};
        assert_int_equal(cb_cred_domain_normalize(bad[i].in, out, &err), -EINVAL);
        if (strstr(err.msg, bad[i].want) == NULL)
            fail_msg("'%s': '%s' lacks '%s'", bad[i].in, err.msg, bad[i].want);
    }
    char longd[300];
    memset(longd, 'a', sizeof(longd) - 1);
    longd[sizeof(longd) - 1] = '\0';
    assert_int_equal(cb_cred_domain_normalize(longd, out, NULL), -EINVAL);
}

static void put_flags(struct cb_secret_store *s, const char *name, const char *domain,
                      bool allow_http, uint16_t port)
{
    struct cb_error err = {0};
    struct cb_cred_spec spec = {name, domain, NULL, NULL, "value-123", 9, allow_http, port};
    if (cb_secret_store_put(s, &spec, &err) != 0)
        fail_msg("put: %s", err.msg);
}

/* add stores the canonical domain; allow_http and port are kept, written
 * only when set (after the reference's five fields), and read back. */
static void test_put_canonical_and_flags(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *s = open_ok(f);
    put_flags(s, "a", "API.Example.COM", true, 8443);
    put_flags(s, "b", "[::1]", false, 0);
    put_flags(s, "c", "c.example", false, 443);
    save_ok(s);
    cb_secret_store_free(s);
    static char plain[MAX_PLAIN];
    ref_read(f->path, &f->key, plain);
    assert_string_equal(plain,
                        "[{\"name\":\"a\",\"value\":\"value-123\",\"domain\":\"api.example.com\","
                        "\"header_name\":\"Authorization\",\"header_prefix\":\"Bearer \","
                        "\"allow_http\":true,\"port\":8443},"
                        "{\"name\":\"b\",\"value\":\"value-123\",\"domain\":\"::1\","
                        "\"header_name\":\"Authorization\",\"header_prefix\":\"Bearer \"},"
                        "{\"name\":\"c\",\"value\":\"value-123\",\"domain\":\"c.example\","
                        "\"header_name\":\"Authorization\",\"header_prefix\":\"Bearer \","
                        "\"port\":443}]");
    s = open_ok(f);
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_find(s, "a", &i), 0);
    assert_string_equal(i.domain, "api.example.com");
    assert_string_equal(i.match, "api.example.com");
    assert_true(i.allow_http);
    assert_int_equal(i.port, 8443);
    assert_int_equal(cb_secret_store_find(s, "b", &i), 0);
    assert_string_equal(i.match, "::1");
    assert_false(i.allow_http);
    assert_int_equal(i.port, 0);
    assert_int_equal(cb_secret_store_find(s, "c", &i), 0);
    assert_false(i.allow_http);
    assert_int_equal(i.port, 443);
    cb_secret_store_free(s);
}

#define ENTRY(d)                                                                                   \
    "{\"name\":\"" d "\",\"value\":\"v\",\"domain\":\"" d "\",\"header_name\":\"H\","              \
    "\"header_prefix\":\"\"}"

/* A store written by another program may hold a domain that can never
 * match: it is loaded (so it can be listed, removed, and scanned for) and
 * saved back unchanged, but has no match domain, so it is never
 * injected. Upper case is matched as its lower-case form. */
static void test_unusable_domains_kept(void **state)
{
    struct fx *f = *state;
    mkparent(f);
    ref_write(f->path, &f->key,
              "[" ENTRY("*") "," ENTRY("x.com.") "," ENTRY("x.com:443") "," ENTRY("X.COM") "]");
    struct cb_secret_store *s = open_ok(f);
    assert_int_equal(cb_secret_store_count(s), 4);
    struct cb_cred_info i;
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(cb_secret_store_entry(s, k, &i), 0);
        assert_null(i.match);
    }
    assert_int_equal(cb_secret_store_entry(s, 3, &i), 0);
    assert_string_equal(i.domain, "X.COM");
    assert_string_equal(i.match, "x.com");
    save_ok(s);
    cb_secret_store_free(s);
    s = open_ok(f);
    assert_int_equal(cb_secret_store_find(s, "x.com:443", &i), 0);
    assert_string_equal(i.domain, "x.com:443");
    assert_null(i.match);
    /* And an entry whose domain is refused is not added at all. */
    struct cb_error err = {0};
    struct cb_cred_spec spec = {"y", "*", NULL, NULL, "v", 1};
    assert_int_equal(cb_secret_store_put(s, &spec, &err), -EINVAL);
    assert_int_equal(cb_secret_store_count(s), 4);
    cb_secret_store_free(s);
}

/* A change of allow_http or port alone is a change (it is audited). */
static void test_diff_flags(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *a = open_ok(f), *b = open_ok(f);
    put_flags(a, "h", "h.example", false, 0);
    put_flags(a, "p", "p.example", false, 0);
    put_flags(a, "s", "s.example", true, 8080);
    put_flags(b, "h", "h.example", true, 0);
    put_flags(b, "p", "p.example", false, 8443);
    put_flags(b, "s", "s.example", true, 8080);
    struct cb_secret_diff d;
    cb_secret_store_diff(a, b, &d);
    const char *changed[] = {"h", "p"};
    assert_names(d.changed, d.n_changed, changed, 2);
    assert_int_equal(d.n_added + d.n_removed, 0);
    cb_secret_diff_free(&d);
    cb_secret_store_free(a);
    cb_secret_store_free(b);
}

/* ------------------------ unreadable stores ------------------------ */

static void test_wrong_key(void **state)
{
    struct fx *f = *state;
    make_store(f);
    struct cb_master_key other;
    assert_int_equal(cb__master_key_parse_hex(KEY2_HEX, 64, &other, NULL), 0);
    struct cb_error err = {0};
    assert_int_equal(open_err(f, &other, &err), CB_SECRETS_E_WRONG_KEY);
    assert_non_null(strstr(err.msg, "wrong master key"));
    assert_null(strstr(err.msg, "ghp_"));
    /* A reference store has no .check file: one combined message. */
    char cp[256];
    snprintf(cp, sizeof(cp), "%s.check", f->path);
    assert_int_equal(unlink(cp), 0);
    assert_int_equal(open_err(f, &other, &err), CB_SECRETS_E_WRONG_KEY);
    assert_non_null(strstr(err.msg, "decryption failed — wrong key?"));
    /* A corrupt .check file is the same as none. */
    write_file(cp, "{garbage", 8);
    assert_int_equal(open_err(f, &other, &err), CB_SECRETS_E_WRONG_KEY);
    assert_non_null(strstr(err.msg, "wrong key?"));
}

static void test_truncated(void **state)
{
    struct fx *f = *state;
    size_t size = make_store(f);
    struct cb_error err = {0};
    const size_t cuts[] = {size - 1, size - 16, 40, 28};
    for (size_t i = 0; i < CB_ARRAY_LEN(cuts); i++) {
        assert_int_equal(truncate(f->path, (off_t)cuts[i]), 0);
        assert_int_equal(open_err(f, &f->key, &err), CB_SECRETS_E_TRUNCATED);
        assert_non_null(strstr(err.msg, "truncated"));
    }
    const size_t short_cuts[] = {27, 12, 11, 1, 0};
    for (size_t i = 0; i < CB_ARRAY_LEN(short_cuts); i++) {
        assert_int_equal(truncate(f->path, (off_t)short_cuts[i]), 0);
        assert_int_equal(open_err(f, &f->key, &err), CB_SECRETS_E_TRUNCATED);
        assert_non_null(strstr(err.msg, "credential file too short"));
    }
}

static void flip(const char *path, size_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void test_tampered(void **state)
{
    struct fx *f = *state;
    size_t size = make_store(f);
    struct cb_error err = {0};
    /* Nonce, ciphertext and tag bytes; each flip is caught, then undone. */
    const size_t offs[] = {0, 11, 12, 50, size - 17, size - 16, size - 1};
    for (size_t i = 0; i < CB_ARRAY_LEN(offs); i++) {
        flip(f->path, offs[i]);
        assert_int_equal(open_err(f, &f->key, &err), CB_SECRETS_E_TAMPERED);
        assert_non_null(strstr(err.msg, "modified"));
        flip(f->path, offs[i]);
    }
    /* Appended bytes are a modification too. */
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "xx", 2), 2);
    close(fd);
    assert_int_equal(open_err(f, &f->key, &err), CB_SECRETS_E_TAMPERED);
}

static void test_not_regular_or_too_big(void **state)
{
    struct fx *f = *state;
    struct cb_error err = {0};
    mkparent(f);
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(open_err(f, &f->key, &err), -EINVAL);
    rmdir(f->path);
    write_file(f->path, "x", 1);
    assert_int_equal(truncate(f->path, CB_SECRETS_MAX_FILE_BYTES + 1), 0);
    assert_int_equal(open_err(f, &f->key, &err), -EFBIG);
    if (geteuid() != 0) {
        chmod(f->path, 0);
        assert_int_equal(open_err(f, &f->key, &err), -EACCES);
    }
}

struct bad_payload {
    const char *json;
    const char *msg;
};

#define E(v)                                                                                       \
    "{\"name\":\"n\",\"value\":" v ",\"domain\":\"d\",\"header_name\":\"H\",\"header_prefix\":"    \
    "\"\"}"

static void test_bad_payload(void **state)
{
    struct fx *f = *state;
    static const struct bad_payload cases[] = {
        {"", "expected a JSON array"},
        {"{}", "expected a JSON array"},
        {"null", "expected a JSON array"},
        {"[", "expected an object"},
        {"[1]", "expected an object"},
        {"[" E("\"v\"") "", "expected ',' or ']'"},
        {"[" E("\"v\"") "] x", "trailing data"},
        {"[" E("\"v\"") ",]", "expected an object"},
        {"[" E("1") "]", "expected a string"},
        {"[" E("null") "]", "expected a string"},
        {"[{\"name\":\"unterminated", "unterminated string"},
        {"[{\"name\":\"a\\", "unterminated string"},
        {"[" E("\"a\\q\"") "]", "unknown escape"},
        {"[" E("\"\\u12\"") "]", "bad hex digit"},
        {"[" E("\"\\ud800\"") "]", "lone leading surrogate"},
        {"[" E("\"\\udc00x\"") "]", "lone trailing surrogate"},
        {"[" E("\"\\ud800\\u0041\"") "]", "bad trailing surrogate"},
        {"[" E("\"\xff\"") "]", "invalid UTF-8"},
        {"[" E("\"\xc0\xaf\"") "]", "invalid UTF-8"},
        {"[" E("\"tab\there\"") "]", "control character"},
        {"[{\"name\":\"n\",\"value\":\"v\"}]", "lacks the field \"domain\""},
        {"[{\"name\":\"n\",\"name\":\"m\",\"value\":\"v\"}]", "duplicate field"},
        {"[{\"name\" \"n\"}]", "expected ':'"},
        {"[{\"name\":\"n\\u0000\",\"value\":\"v\",\"domain\":\"d\",\"header_name\":\"H\","
         "\"header_prefix\":\"\"}]",
         "NUL character"},
        {"[{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]",
         "nesting too deep"},
        {"[{\"x\":tru}]", "expected a value"},
        {"[{\"allow_http\":\"yes\"}]", "\"allow_http\" is not true or false"},
        {"[{\"allow_http\":1}]", "\"allow_http\" is not true or false"},
        {"[{\"allow_http\":true,\"allow_http\":false}]", "duplicate field"},
        {"[{\"port\":70000}]", "\"port\" is not an integer"},
        {"[{\"port\":-1}]", "\"port\" is not an integer"},
        {"[{\"port\":1.5}]", "\"port\" is not an integer"},
        {"[{\"port\":08}]", "\"port\" is not an integer"},
        {"[{\"port\":1234567}]", "\"port\" is not an integer"},
        {"[{\"port\":\"443\"}]", "\"port\" is not an integer"},
        {"[{\"port\":1,\"port\":2}]", "duplicate field"},
    };
    mkparent(f);
    for (size_t i = 0; i < CB_ARRAY_LEN(cases); i++) {
        struct cb_error err = {0};
        ref_write(f->path, &f->key, cases[i].json);
        assert_int_equal(open_err(f, &f->key, &err), CB_SECRETS_E_BAD_PAYLOAD);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
    }
}

/* What serde would accept: whitespace, any member order, unknown members
 * (skipped), every escape form. */
static void test_lenient_payload(void **state)
{
    struct fx *f = *state;
    mkparent(f);
    ref_write(
        f->path, &f->key,
        " [ { \"header_prefix\" : \"\" , \"extra\" : {\"a\":[1,-2.5e3,true,false,null,\"s\"]},"
        " \"domain\":\"d\\/x\", \"value\":\"\\u00e9\\ud83d\\ude00\\\"\\\\\\n\\r\","
        " \"header_name\":\"H\", \"name\":\"n\" } ] \n");
    struct cb_secret_store *s = open_ok(f);
    assert_int_equal(cb_secret_store_count(s), 1);
    assert_value(s, "n", "\xc3\xa9\xf0\x9f\x98\x80\"\\\n\r");
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_find(s, "n", &i), 0);
    assert_string_equal(i.domain, "d/x");
    assert_null(i.match); /* kept, but never injected */
    cb_secret_store_free(s);
    ref_write(f->path, &f->key, "[]");
    s = open_ok(f);
    assert_true(cb_secret_store_exists(s));
    assert_int_equal(cb_secret_store_count(s), 0);
    cb_secret_store_free(s);
}

/* Random damage to a valid payload, encrypted with the right key: the
 * parser either accepts it or gives the payload error, never anything else
 * (and never crashes, which ASan checks). */
static void test_payload_mutations(void **state)
{
    struct fx *f = *state;
    const char *base = "[" E("\"v\\u00e9\\ud83d\\ude00\"") "," E("\"w\"") "]";
    size_t n = strlen(base);
    char *buf = cb_xmalloc(n + 1);
    unsigned seed = 12345;
    mkparent(f);
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, base, n + 1);
        for (int k = 0; k < 1 + it % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            buf[pos] = (char)(seed >> 20);
        }
        size_t len = strnlen(buf, n);
        unsigned char nonce[12] = {0};
        unsigned char *out = cb_xmalloc(len + 28);
        ref_seal(&f->key, nonce, buf, len, out);
        write_file(f->path, out, len + 28);
        free(out);
        struct cb_secret_store *s = NULL;
        int r = cb_secret_store_open(f->path, &f->key, &s, NULL);
        assert_true(r == 0 || r == CB_SECRETS_E_BAD_PAYLOAD);
        cb_secret_store_free(s);
    }
    free(buf);
}

/* ------------------- compatibility with the reference ------------------- */

/* Made with node's crypto (tests/unit/secrets/refstore.js logic) for
 * key 00..1f and nonce a0..ab; a fixed answer no code of ours produced. */
static const char KAT_HEX[] =
    "a0a1a2a3a4a5a6a7a8a9aaabbd635e4324a6679d5847e0ba7312b5bc52807b66f3db3709be3404e117db2a6a"
    "b3028456f3002b1f73be60a7641bea976521642912b93419282a632bc65ee6dfd99ea94d58c085849190a076"
    "eea3a998f729ead1b1a9f608870f5feed8f523b6a3a643ce62caeae9c1ab7435e3e1950a1e7223cbbf47fe4e"
    "0feda388cf779c2ca8749245f129b2351b7b88ea7e3ff4f4b2fbdb599cfcd8e892a0dc9cc1e50e09be367ac9"
    "d707307ae728070007b7d7851254a2f6630bcb1cb8a02e141df2767a7f5335eb4cf3d388923925bd165440d0"
    "34809cca0541fac5b0bbaeb497e5999091c7a0c5809091735a";

static void test_known_answer(void **state)
{
    struct fx *f = *state;
    unsigned char bin[sizeof(KAT_HEX) / 2];
    size_t n = strlen(KAT_HEX) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(KAT_HEX + 2 * i, "%2x", &v), 1);
        bin[i] = (unsigned char)v;
    }
    mkparent(f);
    write_file(f->path, bin, n);
    struct cb_secret_store *s = open_ok(f);
    assert_int_equal(cb_secret_store_count(s), 2);
    assert_value(s, "github", "ghp_kat\xc3\xa9\"x");
    assert_value(s, "k2", "v2");
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_find(s, "k2", &i), 0);
    assert_string_equal(i.domain, "x.example");
    assert_string_equal(i.header_name, "X-Api-Key");
    assert_string_equal(i.header_prefix, "");
    cb_secret_store_free(s);
}

/* Runs node refstore.js with args; stdout goes to out_path. */
static int run_node(const char *out_path, const char *a1, const char *a2, const char *a3,
                    const char *a4)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {(char *)g_node, (char *)g_refstore, (char *)a1, (char *)a2,
                    (char *)a3,     (char *)a4,         NULL};
    pid_t pid;
    int st = -1;
    if (posix_spawn(&pid, g_node, &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_node_writes_we_read(void **state)
{
    struct fx *f = *state;
    if (g_node == NULL)
        skip();
    char out[256];
    snprintf(out, sizeof(out), "%s/node.out", f->dir);
    mkparent(f);
    const char *entries = "[{\"name\":\"gh\",\"value\":\"tok\\\"\\u00e9\\ud83d\\ude00\\t\","
                          "\"domain\":\"api.github.com\",\"header_name\":\"Authorization\","
                          "\"header_prefix\":\"Bearer \"},{\"name\":\"k\",\"value\":\"v\","
                          "\"domain\":\"k.example\",\"header_name\":\"X-Api-Key\","
                          "\"header_prefix\":\"\"}]";
    assert_int_equal(run_node(out, "write", f->path, KEY_HEX, entries), 0);
    struct cb_secret_store *s = open_ok(f);
    assert_int_equal(cb_secret_store_count(s), 2);
    assert_value(s, "gh", "tok\"\xc3\xa9\xf0\x9f\x98\x80\t");
    assert_value(s, "k", "v");
    cb_secret_store_free(s);
    /* The optional members, as another writer following the format. */
    const char *flagged = "[{\"name\":\"f\",\"value\":\"v\",\"domain\":\"f.example\","
                          "\"header_name\":\"H\",\"header_prefix\":\"\",\"allow_http\":true,"
                          "\"port\":8080}]";
    assert_int_equal(run_node(out, "write", f->path, KEY_HEX, flagged), 0);
    s = open_ok(f);
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_find(s, "f", &i), 0);
    assert_true(i.allow_http);
    assert_int_equal(i.port, 8080);
    cb_secret_store_free(s);
    /* And with the wrong key: the reference has no .check file. */
    struct cb_master_key other;
    struct cb_error err = {0};
    cb__master_key_parse_hex(KEY2_HEX, 64, &other, NULL);
    assert_int_equal(open_err(f, &other, &err), CB_SECRETS_E_WRONG_KEY);
}

static void test_we_write_node_reads(void **state)
{
    struct fx *f = *state;
    if (g_node == NULL)
        skip();
    char out[256];
    snprintf(out, sizeof(out), "%s/node.out", f->dir);
    struct cb_secret_store *s = open_ok(f);
    put_ok(s, "gh", "api.github.com", NULL, NULL, "ghp_\"quoted\"\\\xc3\xa9\t");
    put_ok(s, "k", "k.example", "X-Api-Key", "", "v");
    put_flags(s, "f", "f.example", true, 8080);
    save_ok(s);
    cb_secret_store_free(s);
    /* refstore.js also checks the bytes are canonical compact JSON. */
    assert_int_equal(run_node(out, "read", f->path, KEY_HEX, NULL), 0);
    static unsigned char got[MAX_PLAIN];
    size_t n = read_file(out, got, sizeof(got) - 1);
    got[n] = '\0';
    assert_string_equal((char *)got,
                        "[{\"name\":\"gh\",\"value\":\"ghp_\\\"quoted\\\"\\\\\xc3\xa9\\t\","
                        "\"domain\":\"api.github.com\",\"header_name\":\"Authorization\","
                        "\"header_prefix\":\"Bearer \"},{\"name\":\"k\",\"value\":\"v\","
                        "\"domain\":\"k.example\",\"header_name\":\"X-Api-Key\","
                        "\"header_prefix\":\"\"},{\"name\":\"f\",\"value\":\"value-123\","
                        "\"domain\":\"f.example\",\"header_name\":\"Authorization\","
                        "\"header_prefix\":\"Bearer \",\"allow_http\":true,\"port\":8080}]");
    /* node refuses it under another key, as the reference would. */
    assert_int_not_equal(run_node(out, "read", f->path, KEY2_HEX, NULL), 0);
}

/* ------------------------- concurrent writers ------------------------- */

static void test_stale_save_refused(void **state)
{
    struct fx *f = *state;
    make_store(f);
    struct cb_secret_store *a = open_ok(f);
    struct cb_secret_store *b = open_ok(f);
    assert_false(cb_secret_store_changed_on_disk(a));
    put_ok(b, "new", "n.example", NULL, NULL, "vn");
    save_ok(b);
    assert_false(cb_secret_store_changed_on_disk(b));
    assert_true(cb_secret_store_changed_on_disk(a));
    put_ok(a, "lost", "l.example", NULL, NULL, "vl");
    struct cb_error err = {0};
    assert_int_equal(cb_secret_store_save(a, &err), CB_SECRETS_E_STALE);
    assert_non_null(strstr(err.msg, "changed on disk"));
    cb_secret_store_free(a);
    cb_secret_store_free(b);
    struct cb_secret_store *c = open_ok(f);
    struct cb_cred_info i;
    assert_int_equal(cb_secret_store_find(c, "new", &i), 0);
    assert_int_equal(cb_secret_store_find(c, "lost", &i), -ENOENT);
    cb_secret_store_free(c);
}

static void test_stale_when_created_behind_us(void **state)
{
    struct fx *f = *state;
    struct cb_secret_store *a = open_ok(f); /* no file yet */
    make_store(f);                          /* someone else creates it */
    assert_true(cb_secret_store_changed_on_disk(a));
    put_ok(a, "x", "x.example", NULL, NULL, "v");
    assert_int_equal(cb_secret_store_save(a, NULL), CB_SECRETS_E_STALE);
    cb_secret_store_free(a);
}

int main(int argc, char **argv)
{
    if (argc >= 3) {
        g_node = argv[1];
        g_refstore = argv[2];
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_parse_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_of_saved_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serialised_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_replace_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_normalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_canonical_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_domains_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_regular_or_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lenient_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_writes_we_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_we_write_node_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_save_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_when_created_behind_us, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
