/* Tests for src/lib/audit: line format and limits, the hash chain across
 * reopen and rotation, crash recovery, kill -9 durability, concurrency,
 * verification of every kind of damage, tail and follow. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "core/util.h"
#include "state/state.h"
#include "rm_tree.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
    char dir[64];
    char cur[128];
};

static int setup(void **state)
{
    struct fx *f = cb_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cb-audit-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->cur, sizeof(f->cur), "%s/audit.jsonl", f->dir);
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

static struct cb_audit *open_log(const char *dir, uint64_t max)
{
    struct cb_error err = {0};
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {dir, max};
    if (cb_audit_open(&o, &a, &err) != 0)
        fail_msg("open: %s", err.msg);
    return a;
}

static struct cb_audit_record rec(const char *id)
{
    struct cb_audit_record r = {
        .kind = CB_AUDIT_PROXY,
        .request_id = id,
        .tool = "web_fetch",
        .method = "GET",
        .url = "https://api.example.com/v1?q=[REDACTED]",
        .decision = "allowed",
        .status = 200,
        .bytes = 1234,
        .duration_ms = 56,
    };
    return r;
}

static void append_ok(struct cb_audit *a, const char *id)
{
    struct cb_error err = {0};
    struct cb_audit_record r = rec(id);
    if (cb_audit_append(a, &r, &err) != 0)
        fail_msg("append: %s", err.msg);
}

static void append_n(struct cb_audit *a, int n)
{
    char id[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        append_ok(a, id);
    }
}

static void hash_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    SHA256((const unsigned char *)s, n, md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Reads a whole small file into a new NUL-terminated buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = cb_xmalloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    b[n] = '\0';
    if (len)
        *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

/* What a handle knows, read from its private state (audit/internal.h): the
 * hash the next line will carry as "prev", as it last saw the chain (another
 * writer may have appended since), and the bytes of incomplete last lines
 * it cut off. */
static void head_of(struct cb_audit *a, char out[CB_AUDIT_HASH_HEX + 1])
{
    pthread_mutex_lock(&a->mu);
    memcpy(out, a->head, CB_AUDIT_HASH_HEX + 1);
    pthread_mutex_unlock(&a->mu);
}

static size_t recovered_bytes(struct cb_audit *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->recovered;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static int verify(const char *dir, struct cb_audit_verify_report *rep)
{
    struct cb_error err = {0};
    int r = cb_audit_verify_anchored(dir, NULL, rep, &err);
    if (r == 0)
        assert_true(rep->ok);
    return r;
}

static void verify_ok(const char *dir, uint64_t lines)
{
    struct cb_audit_verify_report rep;
    int r = verify(dir, &rep);
    if (r != 0)
        fail_msg("verify: %s:%llu %s", rep.file, (unsigned long long)rep.line, rep.reason);
    assert_int_equal(rep.lines, lines);
}

/* Line i (1-based) of a file, into buf. */
static size_t nth_line(const char *path, int i, char *buf, size_t cap)
{
    char *all = slurp(path, NULL), *p = all;
    for (int k = 1; k < i; k++)
        p = strchr(p, '\n') + 1;
    size_t n = (size_t)(strchr(p, '\n') - p);
    assert_true(n < cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
    free(all);
    return n;
}

/* ------------------------------ format ------------------------------ */

static void test_format_fields(void **state)
{
    (void)state;
    static char line[CB_AUDIT_MAX_LINE + 1];
    struct cb_audit_record r = rec("r-1");
    r.kind = CB_AUDIT_EXECUTE;
    r.blocked = true;
    r.leak_detected = true;
    r.credential_injected = "github,openai";
    r.reason = "leak: \"x\"\\\n\x01";
    r.status = 403;
    r.bytes = UINT64_MAX;
    size_t n = cb__audit_format(&r, 1700000000123ull, 0, ZEROS, line);
    assert_int_equal(n, strlen(line));
    const char *want =
        "{\"timestamp\":\"2023-11-14T22:13:20.123+00:00\",\"request_id\":\"r-1\",\"kind\":"
        "\"execute\","
        "\"tool\":\"web_fetch\",\"method\":\"GET\",\"url\":\"https://api.example.com/"
        "v1?q=[REDACTED]\","
        "\"decision\":\"allowed\",\"status\":403,\"bytes\":18446744073709551615,\"duration_ms\":56,"
        "\"blocked\":true,\"leak_detected\":true,\"credential_injected\":\"github,openai\","
        "\"reason\":\"leak: \\\"x\\\"\\\\\\n\\u0001\",\"prev\":\"" ZEROS "\"}";
    assert_string_equal(line, want);
}

static void test_format_nulls_and_bad_utf8(void **state)
{
    (void)state;
    static char line[CB_AUDIT_MAX_LINE + 1];
    struct cb_audit_record r = {.kind = CB_AUDIT_CREDENTIAL, .url = "a\xff\xc3(b\xe2\x82\xac"};
    size_t n = cb__audit_format(&r, 0, 0, ZEROS, line);
    json_error_t je;
    json_t *o = json_loadb(line, n, 0, &je);
    if (o == NULL)
        fail_msg("%s: %s", line, je.text);
    assert_true(json_is_null(json_object_get(o, "request_id")));
    assert_true(json_is_null(json_object_get(o, "tool")));
    assert_true(json_is_null(json_object_get(o, "reason")));
    assert_true(json_is_null(json_object_get(o, "credential_injected")));
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "credential");
    assert_string_equal(json_string_value(json_object_get(o, "timestamp")),
                        "1970-01-01T00:00:00.000+00:00");
    assert_string_equal(json_string_value(json_object_get(o, "url")),
                        "a\xef\xbf\xbd\xef\xbf\xbd(b\xe2\x82\xac");
    json_decref(o);
    assert_string_equal(cb__audit_kind_name((enum cb_audit_kind)99), "unknown");
}

/* Whatever the caller passes, a line stays under the limit, is valid JSON
 * and marks what was cut; multi-byte characters are not split. */
static void test_format_truncation(void **state)
{
    (void)state;
    static char line[CB_AUDIT_MAX_LINE + 1];
    size_t big = 200 * 1024;
    char *url = cb_xmalloc(big + 1), *reason = cb_xmalloc(big + 1), *ctl = cb_xmalloc(big + 1);
    for (size_t i = 0; i + 3 <= big; i += 3)
        memcpy(url + i, "\xe2\x82\xac", 3);
    url[big - big % 3] = '\0';
    memset(reason, '"', big);
    reason[big] = '\0';
    memset(ctl, 0x01, big);
    ctl[big] = '\0';
    struct cb_audit_record r = rec("x");
    r.url = url;
    r.reason = reason;
    r.tool = ctl;
    r.request_id = ctl;
    r.method = ctl;
    r.decision = ctl;
    r.credential_injected = ctl;
    size_t n = cb__audit_format(&r, 0, 0, ZEROS, line);
    assert_true(n <= CB_AUDIT_MAX_LINE);
    json_error_t je;
    json_t *o = json_loadb(line, n, 0, &je);
    if (o == NULL)
        fail_msg("%s", je.text);
    const char *u = json_string_value(json_object_get(o, "url"));
    assert_true(strlen(u) > 16000 && strlen(u) <= 16384);
    assert_non_null(strstr(u, "...[truncated]"));
    assert_int_equal((strlen(u) - strlen("...[truncated]")) % 3, 0);
    assert_non_null(strstr(json_string_value(json_object_get(o, "reason")), "...[truncated]"));
    assert_non_null(strstr(json_string_value(json_object_get(o, "tool")), "...[truncated]"));
    json_decref(o);
    free(url);
    free(reason);
    free(ctl);
}

/* Credential lines carry the names as arrays (and no other kind does);
 * lists too long for their budget end with a marker element. */
static void test_format_credential_lists(void **state)
{
    (void)state;
    static char line[CB_AUDIT_MAX_LINE + 1];
    const char *added[] = {"github", "we\"ird"}, *changed[] = {"openai"};
    struct cb_audit_record r = {.kind = CB_AUDIT_CREDENTIAL,
                                .method = "CREDENTIAL",
                                .decision = "reload",
                                .domain = "api.github.com",
                                .added = added,
                                .n_added = 2,
                                .changed = changed,
                                .n_changed = 1};
    cb__audit_format(&r, 0, 0, ZEROS, line);
    assert_non_null(strstr(line, "\"domain\":\"api.github.com\",\"added\":[\"github\","
                                 "\"we\\\"ird\"],\"removed\":[],\"changed\":[\"openai\"],"
                                 "\"prev\":\"" ZEROS "\"}"));
    r.kind = CB_AUDIT_PROXY;
    cb__audit_format(&r, 0, 0, ZEROS, line);
    assert_null(strstr(line, "\"added\""));
    assert_null(strstr(line, "\"domain\""));

    enum { MANY = 2000 };
    static char names[MANY][16];
    static const char *list[MANY];
    for (int i = 0; i < MANY; i++) {
        snprintf(names[i], sizeof(names[i]), "cred-%04d", i);
        list[i] = names[i];
    }
    r = (struct cb_audit_record){.kind = CB_AUDIT_CREDENTIAL,
                                 .added = list,
                                 .n_added = MANY,
                                 .removed = list,
                                 .n_removed = MANY,
                                 .changed = list,
                                 .n_changed = 3};
    size_t n = cb__audit_format(&r, 0, 0, ZEROS, line);
    json_error_t je;
    json_t *o = json_loadb(line, n, 0, &je);
    if (o == NULL)
        fail_msg("%s", je.text);
    json_t *a = json_object_get(o, "added");
    size_t k = json_array_size(a);
    assert_true(k > 100 && k < MANY);
    assert_string_equal(json_string_value(json_array_get(a, k - 1)), "...[truncated]");
    assert_string_equal(json_string_value(json_array_get(a, k - 2)), names[k - 2]);
    assert_int_equal(json_array_size(json_object_get(o, "changed")), 3);
    json_decref(o);
}

/* ------------------------------ chain ------------------------------ */

static void test_chain_basic(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 0);
    char head[65], l1[4096], l2[4096], h[65];
    head_of(a, head);
    assert_string_equal(head, ZEROS);
    append_ok(a, "one");
    append_ok(a, "two");
    head_of(a, head);
    cb_audit_close(a);
    size_t n1 = nth_line(f->cur, 1, l1, sizeof(l1));
    size_t n2 = nth_line(f->cur, 2, l2, sizeof(l2));
    assert_non_null(strstr(l1, "\"prev\":\"" ZEROS "\"}"));
    hash_hex(l1, n1, h);
    char want[128];
    snprintf(want, sizeof(want), "\"prev\":\"%s\"}", h);
    assert_non_null(strstr(l2, want));
    hash_hex(l2, n2, h);
    assert_string_equal(head, h);
    struct stat st;
    assert_int_equal(stat(f->cur, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    verify_ok(f->dir, 2);
    struct cb_audit_verify_report rep;
    verify(f->dir, &rep);
    assert_string_equal(rep.last_hash, h);
    assert_int_equal(rep.files, 1);
}

static void test_reopen_continues_chain(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, 3);
    char h1[65], h2[65];
    head_of(a, h1);
    cb_audit_close(a);
    a = open_log(f->dir, 0);
    head_of(a, h2);
    assert_string_equal(h1, h2);
    assert_int_equal(recovered_bytes(a), 0);
    append_n(a, 2);
    cb_audit_close(a);
    verify_ok(f->dir, 5);
}

static void test_recover_incomplete_line(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, 2);
    cb_audit_close(a);
    size_t len;
    char *all = slurp(f->cur, &len);
    int fd = open(f->cur, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{\"torn\":", 8), 8);
    close(fd);
    struct cb_audit_verify_report rep;
    assert_int_equal(verify(f->dir, &rep), CB_AUDIT_E_BROKEN);
    assert_int_equal(rep.line, 3);
    assert_non_null(strstr(rep.reason, "incomplete last line"));
    a = open_log(f->dir, 0);
    assert_int_equal(recovered_bytes(a), 8);
    append_n(a, 1);
    cb_audit_close(a);
    verify_ok(f->dir, 3);
    char *after = slurp(f->cur, NULL);
    assert_memory_equal(after, all, len);
    free(all);
    free(after);
}

static void test_recover_whole_file_partial(void **state)
{
    struct fx *f = *state;
    spit(f->cur, "garbage without newline", 23);
    struct cb_audit *a = open_log(f->dir, 0);
    assert_int_equal(recovered_bytes(a), 23);
    char h[65];
    head_of(a, h);
    assert_string_equal(h, ZEROS);
    append_n(a, 1);
    cb_audit_close(a);
    verify_ok(f->dir, 1);
}

static void test_open_refuses_damaged_tail(void **state)
{
    struct fx *f = *state;
    /* A "last line" longer than any line we write: the head cannot be
     * trusted, so open fails rather than starting a new chain. */
    size_t n = CB_AUDIT_MAX_LINE + 100;
    char *big = cb_xmalloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\n';
    spit(f->cur, big, n + 1);
    free(big);
    struct cb_error err = {0};
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {f->dir, 0};
    assert_int_equal(cb_audit_open(&o, &a, &err), -EBADMSG);
    assert_null(a);
    assert_non_null(strstr(err.msg, "longer than"));
}

static void test_creates_nested_dir(void **state)
{
    struct fx *f = *state;
    char d[256];
    snprintf(d, sizeof(d), "%s/a/b/audit", f->dir);
    struct cb_audit *a = open_log(d, 0);
    append_n(a, 1);
    cb_audit_close(a);
    struct stat st;
    assert_int_equal(stat(d, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    verify_ok(d, 1);
}

/* ----------------------------- rotation ----------------------------- */

static int count_rotated(const char *dir, uint64_t max)
{
    int n = 0;
    char p[256];
    struct stat st;
    for (int i = 1; i < 10000; i++) {
        snprintf(p, sizeof(p), "%s/audit.%08d.jsonl", dir, i);
        if (stat(p, &st) < 0)
            break;
        assert_true((uint64_t)st.st_size <= max);
        n++;
    }
    return n;
}

/* Two handles on one directory (each with its own lock descriptor, as two
 * processes would have) take turns, across rotations: each picks up the
 * other's lines and rotations, so one chain results. */
static void test_two_writers_share_the_chain(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 4096), *b = open_log(f->dir, 4096);
    char ha[65], hb[65];
    for (int i = 0; i < 60; i++) {
        append_n(i % 3 ? a : b, 1 + i % 2);
        verify_ok(f->dir, (uint64_t)(i + 1) + (uint64_t)(i + 1) / 2);
    }
    assert_true(count_rotated(f->dir, 4096) >= 5);
    append_n(a, 1);
    append_n(b, 1);
    head_of(b, hb);
    cb_audit_close(a);
    cb_audit_close(b);
    cb_audit_close(NULL);
    a = open_log(f->dir, 4096);
    head_of(a, ha);
    assert_string_equal(ha, hb);
    cb_audit_close(a);
    verify_ok(f->dir, 92);
}

static void test_rotation_chains_across_files(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 4096);
    append_n(a, 100);
    cb_audit_close(a);
    int rotated = count_rotated(f->dir, 4096);
    assert_true(rotated >= 5);
    struct stat st;
    assert_int_equal(stat(f->cur, &st), 0);
    assert_true(st.st_size <= 4096);
    verify_ok(f->dir, 100);
    struct cb_audit_verify_report rep;
    verify(f->dir, &rep);
    assert_int_equal(rep.files, (size_t)rotated + 1);
    /* The first line of the newest file chains to the last of the one
     * before it. */
    char prevfile[256], last[4096], first[4096], h[65], want[100];
    snprintf(prevfile, sizeof(prevfile), "%s/audit.%08d.jsonl", f->dir, rotated);
    char *pf = slurp(prevfile, NULL);
    char *end = pf + strlen(pf) - 1, *s = end;
    while (s > pf && s[-1] != '\n')
        s--;
    memcpy(last, s, (size_t)(end - s));
    hash_hex(last, (size_t)(end - s), h);
    free(pf);
    nth_line(f->cur, 1, first, sizeof(first));
    snprintf(want, sizeof(want), "\"prev\":\"%s\"}", h);
    assert_non_null(strstr(first, want));
    /* Reopen continues numbering and the chain. */
    a = open_log(f->dir, 4096);
    append_n(a, 50);
    cb_audit_close(a);
    verify_ok(f->dir, 150);
    assert_true(count_rotated(f->dir, 4096) > rotated);
}

/* A crash after rotation's rename but before the first line of the new
 * file: the head comes from the newest rotated file. */
static void test_head_from_rotated_file(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, 3);
    char h1[65], h2[65];
    head_of(a, h1);
    cb_audit_close(a);
    char p[256];
    snprintf(p, sizeof(p), "%s/audit.00000007.jsonl", f->dir);
    assert_int_equal(rename(f->cur, p), 0);
    a = open_log(f->dir, 0);
    head_of(a, h2);
    assert_string_equal(h1, h2);
    append_n(a, 2);
    cb_audit_close(a);
    verify_ok(f->dir, 5);
}

/* --------------------------- verification --------------------------- */

static void make_log(struct fx *f, int n)
{
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, n);
    cb_audit_close(a);
}

/* Rewrites the current file with line `victim` (1-based) replaced by
 * `with` (NULL: removed); `extra` is inserted before it when set. */
static void edit_line(struct fx *f, int victim, const char *with, const char *extra)
{
    size_t len;
    char *all = slurp(f->cur, &len), *out = cb_xmalloc(len + 70000), *p = all;
    size_t w = 0;
    for (int i = 1; *p; i++) {
        char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p) + 1;
        if (i == victim && extra) {
            memcpy(out + w, extra, strlen(extra));
            w += strlen(extra);
        }
        if (i != victim || extra) {
            memcpy(out + w, p, n);
            w += n;
        } else if (with) {
            memcpy(out + w, with, strlen(with));
            w += strlen(with);
        }
        p = nl + 1;
    }
    spit(f->cur, out, w);
    free(all);
    free(out);
}

static void expect_broken(struct fx *f, uint64_t line, const char *why)
{
    struct cb_audit_verify_report rep;
    struct cb_error err = {0};
    assert_int_equal(cb_audit_verify_anchored(f->dir, NULL, &rep, &err), CB_AUDIT_E_BROKEN);
    assert_false(rep.ok);
    if (rep.line != line || strstr(rep.reason, why) == NULL)
        fail_msg("got %s:%llu '%s', want line %llu '%s'", rep.file, (unsigned long long)rep.line,
                 rep.reason, (unsigned long long)line, why);
    assert_non_null(strstr(rep.file, "audit.jsonl"));
    assert_non_null(strstr(err.msg, "audit chain broken"));
}

static void test_verify_modified_line(void **state)
{
    struct fx *f = *state;
    make_log(f, 5);
    char l3[4096];
    size_t n = nth_line(f->cur, 3, l3, sizeof(l3) - 1);
    char *s = strstr(l3, "\"status\":200");
    s[9] = '4'; /* 200 -> 400 */
    l3[n] = '\n';
    l3[n + 1] = '\0';
    edit_line(f, 3, l3, NULL);
    expect_broken(f, 4, "does not match the SHA-256 of the previous line");
    struct cb_audit_verify_report rep;
    cb_audit_verify_anchored(f->dir, NULL, &rep, NULL);
    assert_int_equal(rep.lines, 3);
    assert_non_null(strstr(rep.reason, "audit.jsonl:3"));
}

static void test_verify_removed_line(void **state)
{
    struct fx *f = *state;
    make_log(f, 5);
    edit_line(f, 2, NULL, NULL);
    expect_broken(f, 2, "does not match");
}

static void test_verify_inserted_line(void **state)
{
    struct fx *f = *state;
    make_log(f, 4);
    char l2[4096];
    size_t n = nth_line(f->cur, 2, l2, sizeof(l2) - 1);
    l2[n] = '\n';
    l2[n + 1] = '\0';
    edit_line(f, 3, NULL, l2); /* a copy of line 2 inserted before line 3 */
    expect_broken(f, 3, "does not match");
}

static void test_verify_first_line(void **state)
{
    struct fx *f = *state;
    make_log(f, 3);
    edit_line(f, 1, NULL, NULL);
    expect_broken(f, 1, "does not start a chain");
}

static void test_verify_bad_lines(void **state)
{
    struct fx *f = *state;
    make_log(f, 3);
    edit_line(f, 2, "not json\n", NULL);
    expect_broken(f, 2, "not a JSON object");
    teardown(state);
    setup(state);
    f = *state;
    make_log(f, 3);
    edit_line(f, 3, "[1,2]\n", NULL);
    expect_broken(f, 3, "not a JSON object");
    edit_line(f, 3, "{\"a\":1}\n", NULL);
    expect_broken(f, 3, "missing or malformed \"prev\"");
    edit_line(f, 3, "{\"prev\":\"ABC\"}\n", NULL);
    expect_broken(f, 3, "missing or malformed \"prev\"");
    edit_line(f, 3, "\n", NULL);
    expect_broken(f, 3, "not a JSON object");
    size_t n = CB_AUDIT_MAX_LINE + 10;
    char *big = cb_xmalloc(n + 2);
    memset(big, 'x', n);
    big[n] = '\n';
    big[n + 1] = '\0';
    edit_line(f, 3, big, NULL);
    free(big);
    expect_broken(f, 3, "longer than");
}

static void test_verify_duplicate_prev_key(void **state)
{
    struct fx *f = *state;
    make_log(f, 2);
    char l2[4096], forged[8192];
    nth_line(f->cur, 2, l2, sizeof(l2));
    /* A second "prev" must not let a forged line through. */
    snprintf(forged, sizeof(forged), "{\"prev\":\"%s\",%s\n", ZEROS, l2 + 1);
    edit_line(f, 2, forged, NULL);
    expect_broken(f, 2, "not a JSON object");
}

static void test_verify_missing_rotated_file(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 2048);
    append_n(a, 40);
    cb_audit_close(a);
    char p[256];
    /* The oldest file gone: the chain no longer starts at zeros. */
    snprintf(p, sizeof(p), "%s/audit.%08d.jsonl", f->dir, 1);
    char *saved = slurp(p, NULL);
    unlink(p);
    struct cb_audit_verify_report rep;
    assert_int_equal(cb_audit_verify_anchored(f->dir, NULL, &rep, NULL), CB_AUDIT_E_BROKEN);
    assert_int_equal(rep.line, 1);
    assert_non_null(strstr(rep.reason, "does not start a chain"));
    spit(p, saved, strlen(saved));
    free(saved);
    verify_ok(f->dir, 40);
    /* A middle file gone: the next file's first line does not chain. */
    snprintf(p, sizeof(p), "%s/audit.%08d.jsonl", f->dir, 2);
    unlink(p);
    assert_int_equal(cb_audit_verify_anchored(f->dir, NULL, &rep, NULL), CB_AUDIT_E_BROKEN);
    assert_int_equal(rep.line, 1);
    assert_non_null(strstr(rep.file, "audit.00000003.jsonl"));
    assert_non_null(strstr(rep.reason, "audit.00000001.jsonl"));
}

static void test_verify_empty_and_missing(void **state)
{
    struct fx *f = *state;
    verify_ok(f->dir, 0);
    struct cb_audit *a = open_log(f->dir, 0);
    cb_audit_close(a);
    verify_ok(f->dir, 0);
    char p[256];
    snprintf(p, sizeof(p), "%s/nope", f->dir);
    struct cb_audit_verify_report rep;
    struct cb_error err = {0};
    assert_int_equal(cb_audit_verify_anchored(p, NULL, &rep, &err), -ENOENT);
    assert_false(rep.ok);
}

/* ------------------------- numbering, anchor ------------------------- */

static void test_format_seq_and_audit_kind(void **state)
{
    (void)state;
    static char line[CB_AUDIT_MAX_LINE + 1];
    struct cb_audit_record r = rec("r");
    cb__audit_format(&r, 0, 7, ZEROS, line);
    assert_non_null(strstr(line, "\"reason\":null,\"seq\":7,\"prev\":\"" ZEROS "\"}"));
    r = (struct cb_audit_record){.kind = CB_AUDIT_AUDIT,
                                 .method = "AUDIT",
                                 .decision = "truncated",
                                 .reason = "cut",
                                 .missing = 3};
    cb__audit_format(&r, 0, 12, ZEROS, line);
    assert_non_null(strstr(line, "\"kind\":\"audit\","));
    assert_non_null(strstr(line, "\"reason\":\"cut\",\"missing\":3,\"seq\":12,\"prev\""));
    r.kind = CB_AUDIT_PROXY;
    cb__audit_format(&r, 0, 12, ZEROS, line);
    assert_null(strstr(line, "\"missing\""));
}

/* The "seq" of every line of a file, in order, into out; returns how many. */
static size_t seqs_of(const char *path, uint64_t *out, size_t cap)
{
    char *all = slurp(path, NULL), *p = all;
    size_t n = 0;
    for (char *nl; (nl = strchr(p, '\n')) != NULL && n < cap; p = nl + 1) {
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
        assert_non_null(o);
        out[n++] = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        json_decref(o);
    }
    free(all);
    return n;
}

/* Lines are numbered across rotations and writers; verify checks it. */
static void test_lines_are_numbered(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 2048), *b = open_log(f->dir, 2048);
    append_n(a, 7);
    append_n(b, 5);
    append_n(a, 3);
    cb_audit_close(a);
    cb_audit_close(b);
    assert_true(count_rotated(f->dir, 2048) >= 2);
    uint64_t seqs[64];
    size_t n = seqs_of(f->cur, seqs, 64);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], 15 - n + 1 + i);
    verify_ok(f->dir, 15);
    /* A line numbered wrongly (and chained correctly) is named. */
    char l2[4096], fixed[8200];
    teardown(state);
    setup(state);
    f = *state;
    make_log(f, 3);
    nth_line(f->cur, 2, l2, sizeof(l2));
    char *seq = strstr(l2, "\"seq\":2,");
    assert_non_null(seq);
    seq[6] = '5';
    char l1[4096];
    nth_line(f->cur, 1, l1, sizeof(l1));
    snprintf(fixed, sizeof(fixed), "%s\n%s\n", l1, l2);
    spit(f->cur, fixed, strlen(fixed));
    expect_broken(f, 2, "\"seq\" is 5, but this is line 2 of the chain");
}

/* A log written before lines were numbered is counted once, and its new
 * lines continue from there. */
static void test_legacy_log_continues_numbering(void **state)
{
    struct fx *f = *state;
    char prev[65] = ZEROS, all[4096] = "", line[512];
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), "{\"kind\":\"proxy\",\"n\":%d,\"prev\":\"%s\"}", i, prev);
        hash_hex(line, strlen(line), prev);
        used += (size_t)snprintf(all + used, sizeof(all) - used, "%s\n", line);
        assert_true(used < sizeof(all));
    }
    spit(f->cur, all, strlen(all));
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, 2);
    cb_audit_close(a);
    uint64_t seqs[8];
    assert_int_equal(seqs_of(f->cur, seqs, 8), 6);
    assert_int_equal(seqs[3], 0);
    assert_int_equal(seqs[4], 5);
    assert_int_equal(seqs[5], 6);
    verify_ok(f->dir, 6);
}

static void anchor_db(const struct fx *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/data/state.db", f->dir);
}

static struct cb_audit *open_anchored(const struct fx *f, uint64_t max)
{
    char db[256];
    anchor_db(f, db, sizeof(db));
    struct cb_error err = {0};
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {f->dir, max, db};
    if (cb_audit_open(&o, &a, &err) != 0)
        fail_msg("open: %s", err.msg);
    return a;
}

static void make_anchored(struct fx *f, int n, uint64_t max)
{
    struct cb_audit *a = open_anchored(f, max);
    append_n(a, n);
    cb_audit_close(a);
}

/* The anchor as stored; false when there is none. */
static bool stored_anchor(const struct fx *f, struct cb_state_anchor *out)
{
    char db[256], *name = realpath(f->dir, NULL);
    anchor_db(f, db, sizeof(db));
    struct cb_state_options o = {.busy_timeout_ms = 1000, .read_only = true};
    struct cb_state *st = NULL;
    assert_int_equal(cb_state_open_opts(db, &o, &st, NULL), 0);
    int r = cb_state_anchor_get(st, name, out, NULL);
    cb_state_close(st);
    free(name);
    return r == 0;
}

static void set_anchor(const struct fx *f, uint64_t lines, const char *head)
{
    char db[256], *name = realpath(f->dir, NULL);
    anchor_db(f, db, sizeof(db));
    struct cb_state *st = NULL;
    assert_int_equal(cb_state_open(db, &st, NULL), 0);
    struct cb_state_anchor a = {.lines = lines};
    memcpy(a.head, head, sizeof(a.head));
    assert_int_equal(cb_state_anchor_set(st, name, &a, true, NULL), 0);
    cb_state_close(st);
    free(name);
}

static int verify_anchored(const struct fx *f, struct cb_audit_verify_report *rep)
{
    char db[256];
    anchor_db(f, db, sizeof(db));
    struct cb_error err = {0};
    int r = cb_audit_verify_anchored(f->dir, db, rep, &err);
    if (r == CB_AUDIT_E_BROKEN)
        assert_non_null(strstr(err.msg, "audit chain broken"));
    return r;
}

static void expect_cut(const struct fx *f, uint64_t line, uint64_t missing, const char *why)
{
    struct cb_audit_verify_report rep;
    assert_int_equal(verify_anchored(f, &rep), CB_AUDIT_E_BROKEN);
    assert_true(rep.anchored);
    if (rep.line != line || rep.missing != missing || strstr(rep.reason, why) == NULL)
        fail_msg("got %s:%llu missing %llu '%s', want line %llu missing %llu '%s'", rep.file,
                 (unsigned long long)rep.line, (unsigned long long)rep.missing, rep.reason,
                 (unsigned long long)line, (unsigned long long)missing, why);
}

/* Keeps the first `keep` lines of the current file. */
static void keep_lines(const struct fx *f, int keep)
{
    size_t len;
    char *all = slurp(f->cur, &len), *p = all;
    for (int i = 0; i < keep; i++)
        p = strchr(p, '\n') + 1;
    spit(f->cur, all, (size_t)(p - all));
    free(all);
}

/* The anchor follows the head (it is stored by a thread of its own, so it
 * is checked once the handles are closed, which waits for it): its seq and
 * hash, whichever of two writers wrote it, across rotations. */
static void test_anchor_follows_the_head(void **state)
{
    struct fx *f = *state;
    struct cb_state_anchor st;
    char head[65];
    for (int round = 1; round <= 3; round++) {
        struct cb_audit *a = open_anchored(f, 4096), *b = open_anchored(f, 4096);
        for (int i = 1; i <= 10; i++)
            append_n(i % 3 ? a : b, 1);
        head_of(a, head); /* a wrote the last line (i = 10) */
        cb_audit_close(a);
        cb_audit_close(b);
        assert_true(stored_anchor(f, &st));
        assert_int_equal(st.lines, 10 * round);
        assert_string_equal(st.head, head);
    }
    assert_true(count_rotated(f->dir, 4096) >= 1);
    struct cb_audit_verify_report rep;
    assert_int_equal(verify_anchored(f, &rep), 0);
    assert_true(rep.anchored);
    assert_int_equal(rep.anchor_lines, 30);
}

/* Lines cut from the end: the chain alone still verifies, the anchor
 * names how many are missing, whether some, all, or the whole file. */
static void test_verify_names_lines_cut_from_the_end(void **state)
{
    struct fx *f = *state;
    make_anchored(f, 10, 0);
    keep_lines(f, 7);
    verify_ok(f->dir, 7); /* what the chain alone cannot see */
    expect_cut(f, 7, 3, "the log ends at line 7 of the chain, but the anchor in");
    expect_cut(f, 7, 3, "records 10 lines");
    expect_cut(f, 7, 3, "3 lines are missing from its end");
    keep_lines(f, 0);
    expect_cut(f, 0, 10, "10 lines are missing from its end");
    unlink(f->cur);
    expect_cut(f, 0, 10, "the log ends at line 0 of the chain");
    /* No anchor (another directory, or no database): verified as before. */
    char db[256];
    snprintf(db, sizeof(db), "%s/none/state.db", f->dir);
    struct cb_audit_verify_report rep;
    assert_int_equal(cb_audit_verify_anchored(f->dir, db, &rep, NULL), 0);
    assert_false(rep.anchored);
}

/* Cut across rotated files: the newest rotated file and the current file
 * gone, the rest still chains. */
static void test_verify_names_cut_rotated_files(void **state)
{
    struct fx *f = *state;
    make_anchored(f, 40, 2048);
    int rotated = count_rotated(f->dir, 2048);
    uint64_t seqs[64];
    size_t in_current = seqs_of(f->cur, seqs, 64);
    char p[256];
    snprintf(p, sizeof(p), "%s/audit.%08d.jsonl", f->dir, rotated);
    size_t in_newest = seqs_of(p, seqs, 64);
    unlink(f->cur);
    unlink(p);
    char older[256];
    snprintf(older, sizeof(older), "%s/audit.%08d.jsonl", f->dir, rotated - 1);
    size_t in_older = seqs_of(older, seqs, 64);
    expect_cut(f, in_older, in_current + in_newest, "lines are missing from its end");
    struct cb_audit_verify_report rep;
    verify_anchored(f, &rep);
    assert_string_equal(rep.file, older);
    verify_ok(f->dir, 40 - in_current - in_newest);
}

/* The line at the anchor's position replaced by another, correctly
 * chained and numbered: named as rewritten. */
static void test_verify_names_rewritten_tail(void **state)
{
    struct fx *f = *state;
    make_anchored(f, 5, 0);
    char l5[4096];
    size_t n = nth_line(f->cur, 5, l5, sizeof(l5) - 1);
    char *st = strstr(l5, "\"status\":200");
    st[9] = '4';
    l5[n] = '\n';
    l5[n + 1] = '\0';
    edit_line(f, 5, l5, NULL);
    verify_ok(f->dir, 5);
    expect_cut(f, 5, 0, "the anchor in");
    expect_cut(f, 5, 0, "recorded another line there");
}

/* A writer that opens a cut log records the cut as a line of its own and
 * resets the anchor to it, so the evidence stays once the log has grown
 * past the old anchor. */
static void test_writer_records_a_cut_at_open(void **state)
{
    struct fx *f = *state;
    make_anchored(f, 10, 0);
    keep_lines(f, 7);
    struct cb_audit *a = open_anchored(f, 0);
    struct cb_state_anchor st;
    assert_true(stored_anchor(f, &st));
    assert_int_equal(st.lines, 8);
    append_n(a, 6);
    cb_audit_close(a);
    char l8[4096];
    nth_line(f->cur, 8, l8, sizeof(l8));
    json_t *o = json_loads(l8, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "audit");
    assert_string_equal(json_string_value(json_object_get(o, "method")), "AUDIT");
    assert_string_equal(json_string_value(json_object_get(o, "decision")), "truncated");
    assert_int_equal(json_integer_value(json_object_get(o, "missing")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 8);
    assert_non_null(strstr(json_string_value(json_object_get(o, "reason")),
                           "the log ended at line 7, but it had reached line 10"));
    json_decref(o);
    expect_cut(f, 8, 3, "a writer found the log cut and recorded it here");
    expect_cut(f, 8, 3, "3 lines were cut from its end");
    assert_true(stored_anchor(f, &st));
    assert_int_equal(st.lines, 14);
    /* An anchor that lags (a crash between a sync and its anchor) is no
     * cut: nothing is recorded. */
    teardown(state);
    setup(state);
    f = *state;
    make_anchored(f, 4, 0);
    char l2[4096], h[65];
    size_t n = nth_line(f->cur, 2, l2, sizeof(l2));
    hash_hex(l2, n, h);
    set_anchor(f, 2, h);
    a = open_anchored(f, 0);
    append_n(a, 1);
    cb_audit_close(a);
    struct cb_audit_verify_report rep;
    assert_int_equal(verify_anchored(f, &rep), 0);
    assert_int_equal(rep.lines, 5);
}

/* A log cut while a writer holds it open: the writer's next append notices
 * it is behind what it wrote, records the cut, then appends. This needs no
 * anchor: the writer knows its own head. */
static void test_writer_notices_a_cut_while_open(void **state)
{
    struct fx *f = *state;
    for (int anchored = 0; anchored < 2; anchored++) {
        struct cb_audit *a = anchored ? open_anchored(f, 0) : open_log(f->dir, 0);
        append_n(a, 6);
        keep_lines(f, 4);
        append_ok(a, "after");
        cb_audit_close(a);
        uint64_t seqs[16];
        assert_int_equal(seqs_of(f->cur, seqs, 16), 6);
        assert_int_equal(seqs[4], 5);
        assert_int_equal(seqs[5], 6);
        struct cb_audit_verify_report rep;
        assert_int_equal(cb_audit_verify_anchored(f->dir, NULL, &rep, NULL), CB_AUDIT_E_BROKEN);
        assert_int_equal(rep.line, 5);
        assert_int_equal(rep.missing, 2);
        assert_non_null(strstr(rep.reason, "2 lines were cut from its end"));
        teardown(state);
        setup(state);
        f = *state;
    }
}

/* An anchor database that cannot be opened does not stop the log. */
static void test_unusable_anchor_database(void **state)
{
    struct fx *f = *state;
    char file[256], db[300];
    snprintf(file, sizeof(file), "%s/not-a-dir", f->dir);
    spit(file, "x", 1);
    snprintf(db, sizeof(db), "%s/state.db", file);
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {f->dir, 0, db};
    assert_int_equal(cb_audit_open(&o, &a, NULL), 0);
    append_n(a, 3);
    cb_audit_close(a);
    verify_ok(f->dir, 3);
}

/* --------------------------- concurrency --------------------------- */

struct worker {
    struct cb_audit *a;
    int id;
    int n;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char id[32];
    for (int i = 0; i < w->n; i++) {
        snprintf(id, sizeof(id), "t%d-%d", w->id, i);
        struct cb_audit_record r = rec(id);
        if (cb_audit_append(w->a, &r, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static void run_threads(struct cb_audit *a, int threads, int per)
{
    pthread_t t[16];
    struct worker w[16];
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){a, i, per};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res);
    }
}

static void test_threads(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 64 * 1024);
    run_threads(a, 8, 150);
    cb_audit_close(a);
    verify_ok(f->dir, 1200);
    assert_true(count_rotated(f->dir, 64 * 1024) >= 1);
}

/* ---------------------------- durability ---------------------------- */

/* The child appends n lines and SIGKILLs itself the moment the n-th
 * append returns: nothing after the return (no close, no exit handlers)
 * gets a chance to flush anything. */
typedef int append_fn(struct cb_audit *, const struct cb_audit_record *, struct cb_error *);

static void child_append_then_die_with(append_fn *append, const char *dir, int n, int ack_fd)
{
    struct cb_audit *a = NULL;
    struct cb_audit_options o = {dir, 8192};
    if (cb_audit_open(&o, &a, NULL) != 0)
        _exit(3);
    char id[32];
    for (int i = 0; i < n || n < 0; i++) {
        snprintf(id, sizeof(id), "kill-%d", i);
        struct cb_audit_record r = rec(id);
        if (append(a, &r, NULL) != 0)
            _exit(4);
        if (ack_fd >= 0 && write(ack_fd, &i, sizeof(i)) != sizeof(i))
            _exit(5);
        if (i + 1 == n)
            raise(SIGKILL);
    }
    _exit(6);
}

static void child_append_then_die(const char *dir, int n, int ack_fd)
{
    child_append_then_die_with(cb_audit_append, dir, n, ack_fd);
}

static int count_ids(const char *line, size_t len, void *ctx)
{
    int *seen = ctx;
    const char *p = memmem(line, len, "\"request_id\":\"kill-", 19);
    if (p != NULL)
        seen[strtol(p + 19, NULL, 10)]++;
    return 0;
}

/* Several processes append at once, each through its own handle, with
 * rotations: every line lands once and the chain verifies. */
static void test_processes_append_concurrently(void **state)
{
    struct fx *f = *state;
    enum { PROCS = 3, PER = 150 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct cb_audit *a = NULL;
            struct cb_audit_options o = {f->dir, 8192};
            if (cb_audit_open(&o, &a, NULL) != 0)
                _exit(2);
            char id[32];
            for (int i = 0; i < PER; i++) {
                snprintf(id, sizeof(id), "kill-%d", p * PER + i);
                struct cb_audit_record r = rec(id);
                if (cb_audit_append(a, &r, NULL) != 0)
                    _exit(3);
            }
            cb_audit_close(a);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    verify_ok(f->dir, PROCS * PER);
    assert_true(count_rotated(f->dir, 8192) >= 5);
    static int seen[PROCS * PER];
    memset(seen, 0, sizeof(seen));
    assert_int_equal(cb_audit_tail(f->dir, CB_AUDIT_MAX_TAIL, count_ids, seen, NULL), 0);
    for (int i = 0; i < PROCS * PER; i++)
        assert_int_equal(seen[i], 1);
}

static void test_kill9_after_ack(void **state)
{
    struct fx *f = *state;
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_append_then_die(f->dir, 40, -1);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
    }
    verify_ok(f->dir, 120);
    static int seen[40];
    memset(seen, 0, sizeof(seen));
    assert_int_equal(cb_audit_tail(f->dir, 1000, count_ids, seen, NULL), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(seen[i], 3);
}

/* A line appended without waiting for its sync is written when the call
 * returns: a kill -9 right after loses none. */
static void test_kill9_after_written(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_append_then_die_with(cb_audit_append_written, f->dir, 40, -1);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    verify_ok(f->dir, 40);
}

struct written_args {
    struct cb_audit *a;
    int from;
};

static void *append_written_25(void *arg)
{
    struct written_args *w = arg;
    char id[32];
    for (int i = w->from; i < w->from + 25; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        struct cb_audit_record r = rec(id);
        struct cb_error err = {0};
        if (cb_audit_append_written(w->a, &r, &err) != 0)
            fail_msg("append_written: %s", err.msg);
    }
    return NULL;
}

/* Lines appended without waiting are synced by the background thread,
 * with the log still open: the anchor, stored only for a head a sync made
 * durable, reaches the last of them. */
static void test_written_lines_are_synced_in_the_background(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_anchored(f, 0);
    pthread_t t[4];
    struct written_args w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct written_args){a, i * 25};
        assert_int_equal(pthread_create(&t[i], NULL, append_written_25, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct cb_state_anchor st = {0};
    for (int i = 0; i < 500 && !(stored_anchor(f, &st) && st.lines == 100); i++)
        usleep(10000);
    assert_int_equal(st.lines, 100);
    cb_audit_close(a);
    verify_ok(f->dir, 100);
}

/* The parent kills the child at an arbitrary moment: every line it had
 * acknowledged is there, and the chain verifies. */
static void test_kill9_mid_stream(void **state)
{
    struct fx *f = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_append_then_die(f->dir, -1, p[1]);
    }
    close(p[1]);
    int acked = -1, v;
    while (acked < 150 && read(p[0], &v, sizeof(v)) == sizeof(v))
        acked = v;
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    close(p[0]);
    static int seen[100000];
    memset(seen, 0, sizeof(seen));
    assert_int_equal(cb_audit_tail(f->dir, CB_AUDIT_MAX_TAIL, count_ids, seen, NULL), 0);
    for (int i = 0; i <= acked; i++)
        assert_int_equal(seen[i], 1);
    struct cb_audit_verify_report rep;
    int r = cb_audit_verify_anchored(f->dir, NULL, &rep, NULL);
    if (r != 0)
        fail_msg("%s:%llu %s", rep.file, (unsigned long long)rep.line, rep.reason);
    assert_true(rep.lines >= (uint64_t)acked + 1);
}

/* A writer that dies holding the writers' lock, half-way through a line,
 * leaves it to the next: that one takes it over at once, cuts the half
 * line and continues the chain. */
static void test_writer_dies_holding_the_lock(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 0);
    append_n(a, 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct cb_audit *b = NULL;
        struct cb_audit_options o = {f->dir, 0};
        if (cb_audit_open(&o, &b, NULL) != 0 || cb__audit_lock(b, NULL) != 0)
            _exit(2);
        static const char half[] = "{\"ts\":\"2026-";
        _exit(write(b->fd, half, sizeof(half) - 1) == (ssize_t)sizeof(half) - 1 ? 0 : 3);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    append_ok(a, "after");
    cb_audit_close(a);
    verify_ok(f->dir, 4);
}

/* A lock file that is not this build's lock is refused, not trusted; one
 * that a first writer did not finish laying out (the right size, no magic
 * yet) is laid out again. */
static void test_foreign_lock_file_is_refused(void **state)
{
    struct fx *f = *state;
    cb_audit_close(open_log(f->dir, 0));
    char *path = cb_xasprintf("%s/%s", f->dir, CB__AUDIT_LOCK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(truncate(path, st.st_size), 0);
    struct cb_audit *a = open_log(f->dir, 0);
    append_ok(a, "after");
    cb_audit_close(a);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a lock", fp);
    fclose(fp);
    a = NULL;
    struct cb_audit_options o = {f->dir, 0};
    struct cb_error err = {0};
    assert_int_equal(cb_audit_open(&o, &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is not a lock of this clawbox"));
    free(path);
}

/* A short write (file size limit) is undone, the call fails, and the log
 * refuses further appends; what was there still verifies. */
static void test_short_write_is_undone(void **state)
{
    struct fx *f = *state;
    make_log(f, 2);
    struct stat st;
    assert_int_equal(stat(f->cur, &st), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct cb_audit *a = NULL;
        struct cb_audit_options o = {f->dir, 0};
        if (cb_audit_open(&o, &a, NULL) != 0)
            _exit(2);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)st.st_size + 100, (rlim_t)st.st_size + 100};
        setrlimit(RLIMIT_FSIZE, &rl);
        struct cb_audit_record r = rec("too-big");
        struct cb_error err = {0};
        if (cb_audit_append(a, &r, &err) == 0)
            _exit(3);
        r.request_id = "x";
        if (cb_audit_append(a, &r, &err) != CB_AUDIT_E_FAILED)
            _exit(4);
        _exit(0);
    }
    int cst;
    waitpid(pid, &cst, 0);
    assert_true(WIFEXITED(cst));
    assert_int_equal(WEXITSTATUS(cst), 0);
    struct stat st2;
    assert_int_equal(stat(f->cur, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
    verify_ok(f->dir, 2);
}

/* ------------------------------ readers ------------------------------ */

struct collect {
    char ids[64][32];
    int n;
    int stop_after;
};

static int collect_line(const char *line, size_t len, void *ctx)
{
    struct collect *c = ctx;
    const char *p = memmem(line, len, "\"request_id\":\"", 14);
    assert_non_null(p);
    p += 14;
    const char *q = memchr(p, '"', len - (size_t)(p - line));
    snprintf(c->ids[c->n], sizeof(c->ids[0]), "%.*s", (int)(q - p), p);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_tail_across_files(void **state)
{
    struct fx *f = *state;
    struct cb_audit *a = open_log(f->dir, 2048);
    append_n(a, 30);
    cb_audit_close(a);
    struct collect c = {0};
    assert_int_equal(cb_audit_tail(f->dir, 20, collect_line, &c, NULL), 0);
    assert_int_equal(c.n, 20);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof(want), "req-%d", 10 + i);
        assert_string_equal(c.ids[i], want);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(cb_audit_tail(f->dir, 64, collect_line, &c, NULL), 0);
    assert_int_equal(c.n, 30);
    assert_string_equal(c.ids[0], "req-0");
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(cb_audit_tail(f->dir, 5, collect_line, &c, NULL), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "req-25");
    memset(&c, 0, sizeof(c));
    assert_int_equal(cb_audit_tail(f->dir, 0, collect_line, &c, NULL), 0);
    assert_int_equal(c.n, 0);
    char p[256];
    snprintf(p, sizeof(p), "%s/empty", f->dir);
    mkdir(p, 0700);
    struct cb_error err = {0};
    assert_int_equal(cb_audit_tail(p, 5, collect_line, &c, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no audit log"));
}

static void test_follow(void **state)
{
    struct fx *f = *state;
    struct cb_audit_cursor *cur = NULL;
    struct cb_error err = {0};
    struct collect c = {0};
    /* Started before the log exists. */
    assert_int_equal(cb_audit_cursor_open(f->dir, &cur, &err), 0);
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 0);
    struct cb_audit *a = open_log(f->dir, 2048);
    append_n(a, 3);
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 3);
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 0);
    /* Enough to rotate several times between polls... only the lines of
     * the file being read and the new current file are guaranteed, so
     * rotate once: 2048-byte files hold a handful of lines. */
    char id[32];
    for (int i = 3; i < 12; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        append_ok(a, id);
        if (i % 3 == 2)
            cb_audit_cursor_poll(cur, collect_line, &c, &err);
    }
    cb_audit_cursor_poll(cur, collect_line, &c, &err);
    cb_audit_close(a);
    assert_int_equal(c.n, 12);
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        assert_string_equal(c.ids[i], id);
    }
    cb_audit_cursor_close(cur);
    /* Started on an existing log: only new lines. */
    a = open_log(f->dir, 0);
    assert_int_equal(cb_audit_cursor_open(f->dir, &cur, &err), 0);
    memset(&c, 0, sizeof(c));
    append_ok(a, "new");
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 1);
    assert_string_equal(c.ids[0], "new");
    /* A line being written is not delivered until complete. */
    int fd = open(f->cur, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{\"request_id\":\"half\"", 20), 20);
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 0);
    assert_int_equal(write(fd, "}\n", 2), 2);
    close(fd);
    assert_int_equal(cb_audit_cursor_poll(cur, collect_line, &c, &err), 1);
    assert_string_equal(c.ids[1], "half");
    cb_audit_cursor_close(cur);
    cb_audit_cursor_close(NULL);
    cb_audit_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_fields),
        cmocka_unit_test(test_format_nulls_and_bad_utf8),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_format_credential_lists),
        cmocka_unit_test_setup_teardown(test_chain_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_incomplete_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_whole_file_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_damaged_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers_share_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creates_nested_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_chains_across_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_from_rotated_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_modified_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_removed_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_inserted_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_first_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_duplicate_prev_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_missing_rotated_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_empty_and_missing, setup, teardown),
        cmocka_unit_test(test_format_seq_and_audit_kind),
        cmocka_unit_test_setup_teardown(test_lines_are_numbered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_log_continues_numbering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_follows_the_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_lines_cut_from_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_cut_rotated_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_rewritten_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_records_a_cut_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_notices_a_cut_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_anchor_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes_append_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_after_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_dies_holding_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_lock_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_after_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_lines_are_synced_in_the_background, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_write_is_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_across_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
