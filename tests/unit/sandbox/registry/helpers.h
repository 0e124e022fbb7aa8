/* Shared fixtures of the registry tests: a scratch directory with a tool
 * directory and a state database, and a fake loader whose "compiled"
 * so_path encodes the module bytes ("/fake/<bytes>.so"), so a test can see
 * which content a tool was built from. Modules starting with "FAIL" fail. */
#ifndef TEST_REGISTRY_HELPERS_H
#define TEST_REGISTRY_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "sandbox/registry.h"
#include "sandbox/registry/internal.h"
#include "state/state.h"

struct fake_loader {
    pthread_mutex_t mu;
    int calls;
};

static __attribute__((unused)) int fake_load(void *ud, const struct cb_registry_opts *opts,
                                             const uint8_t *wasm, size_t len, char **so_path,
                                             bool *quick, struct cb_error *err)
{
    (void)opts;
    (void)quick;
    struct fake_loader *f = ud;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    pthread_mutex_unlock(&f->mu);
    if (len >= 4 && memcmp(wasm, "FAIL", 4) == 0)
        return cb_error_set(err, -EINVAL, "fake compile error");
    *so_path = cb_xasprintf("/fake/%.*s.so", (int)len, (const char *)wasm);
    return 0;
}

static __attribute__((unused)) int fake_calls(struct fake_loader *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

struct fixture {
    char root[64];
    char tool_dir[128];
    char db_path[128];
    struct cb_state *state;
    struct cb_metrics *metrics;
    struct fake_loader loader;
    struct cb_registry_opts opts;
    struct cb_registry *reg;
};

static __attribute__((unused)) void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    cb_log_setup(false, CB_LOG_ERROR);
    snprintf(fx->root, sizeof(fx->root), "/tmp/cb-registry-test-XXXXXX");
    if (mkdtemp(fx->root) == NULL)
        abort();
    snprintf(fx->tool_dir, sizeof(fx->tool_dir), "%s/tools", fx->root);
    snprintf(fx->db_path, sizeof(fx->db_path), "%s/state.db", fx->root);
    if (mkdir(fx->tool_dir, 0700) < 0)
        abort();
    struct cb_error err = {0};
    if (cb_state_open(fx->db_path, &fx->state, &err) < 0)
        abort();
    fx->metrics = cb_metrics_new();
    pthread_mutex_init(&fx->loader.mu, NULL);
    fx->opts.tool_dir = fx->tool_dir;
    fx->opts.cache_dir = fx->root;
    fx->opts.state = fx->state;
    fx->opts.metrics = fx->metrics;
    fx->opts.debounce_ms = 50;
}

static __attribute__((unused)) int fixture_open(struct fixture *fx, struct cb_error *err)
{
    const struct cb__registry_loader l = {.load = fake_load, .ud = &fx->loader};
    return cb__registry_open_with(&fx->opts, &l, &fx->reg, err);
}

static __attribute__((unused)) void fixture_close(struct fixture *fx)
{
    cb_registry_close(fx->reg);
    fx->reg = NULL;
}

static __attribute__((unused)) void rm_tree(const char *root)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        abort();
}

static __attribute__((unused)) void fixture_free(struct fixture *fx)
{
    fixture_close(fx);
    cb_state_close(fx->state);
    cb_metrics_free(fx->metrics);
    pthread_mutex_destroy(&fx->loader.mu);
    rm_tree(fx->root);
}

/* Writes a file in the tool directory in one open/write/close. */
/* cmocka teardown for a heap-allocated fixture in *state (the includer has
 * included cmocka.h). */
static __attribute__((unused)) int fixture_teardown(void **state)
{
    fixture_free(*state);
    free(*state);
    return 0;
}

static __attribute__((unused)) void fixture_open_ok(struct fixture *fx)
{
    struct cb_error err = {0};
    int rc = fixture_open(fx, &err);
    if (rc != 0)
        fail_msg("open: %d %s", rc, err.msg);
}

static __attribute__((unused)) void write_path(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    size_t n = strlen(content);
    if (write(fd, content, n) != (ssize_t)n)
        abort();
    close(fd);
}

static __attribute__((unused)) void put_file(struct fixture *fx, const char *name,
                                             const char *content)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->tool_dir, name);
    write_path(path, content);
}

/* Writes a file outside the tool directory (in the fixture root) and
 * returns its path (caller frees). */
static __attribute__((unused)) char *put_outside(struct fixture *fx, const char *name,
                                                 const char *content)
{
    char *path = cb_xasprintf("%s/%s", fx->root, name);
    write_path(path, content);
    return path;
}

/* Makes tool_dir/name a symbolic link to target. */
static __attribute__((unused)) void put_link(struct fixture *fx, const char *name,
                                             const char *target)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->tool_dir, name);
    if (symlink(target, path) < 0)
        abort();
}

/* Sends fd 2 (the log) to a file until stderr_end, which returns what was
 * written (caller frees). */
struct stderr_capture {
    int saved;
    char path[128];
};

static __attribute__((unused)) void stderr_begin(struct fixture *fx, struct stderr_capture *c)
{
    snprintf(c->path, sizeof(c->path), "%s/stderr.log", fx->root);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    c->saved = dup(2);
    if (fd < 0 || c->saved < 0 || dup2(fd, 2) < 0)
        abort();
    close(fd);
}

static __attribute__((unused)) char *stderr_end(struct stderr_capture *c)
{
    if (dup2(c->saved, 2) < 0)
        abort();
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    if (f == NULL)
        abort();
    struct cb_buf b;
    cb_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cb_buf_append(&b, chunk, n);
    fclose(f);
    cb_buf_puts(&b, "");
    return cb_buf_steal(&b, NULL);
}

static __attribute__((unused)) void del_file(struct fixture *fx, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->tool_dir, name);
    if (unlink(path) < 0)
        abort();
}

static __attribute__((unused)) void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The so_path of the loaded tool (a new string), or NULL if not loaded. */
static __attribute__((unused)) char *loaded_so(struct cb_registry *r, const char *name)
{
    struct cb_tool *t = cb_registry_get(r, name);
    if (t == NULL)
        return NULL;
    char *s = cb_xstrdup(t->so_path);
    cb_tool_unref(t);
    return s;
}

static __attribute__((unused)) char *render_metrics(struct cb_metrics *m)
{
    struct cb_buf b;
    cb_buf_init(&b, 1 << 20);
    if (cb_metrics_render(m, &b) < 0)
        abort();
    return cb_buf_steal(&b, NULL);
}

static __attribute__((unused)) json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, jerr.text);
        abort();
    }
    return j;
}

#endif
