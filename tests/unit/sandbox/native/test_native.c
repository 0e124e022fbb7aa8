/* Compile cache and tool shim, end to end: real wasm2c and cc compiles of
 * the fixtures in tests/fixtures/native, each run through the worker pool
 * (zygote, seccomp'd child, IPC) that production runs tools with. This test
 * binary is its own zygote: the pool execs it with "__zygote". Fixtures
 * are compiled once, on first use, into a cache directory shared by the
 * whole group. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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

#include "core/buf.h"
#include "core/util.h"
#include "sandbox/compile.h"
#include "sandbox/wasm.h"
#include "sandbox/worker.h"

#ifndef NATIVE_FIXTURES
#error "NATIVE_FIXTURES must name the directory of the built .wasm fixtures"
#endif
#ifndef HOSTILE_FIXTURES
#error "HOSTILE_FIXTURES must name the directory of tests/fixtures/hostile, built"
#endif

#define CALL_DEPTH     2000
#define COMPILE_MS     60000
#define MAX_OUT        (1u << 20)
#define FUEL_PLENTY    1000000u
#define TEST_ENV_MARK  "CB_NATIVE_TEST_MARK"
#define BIG_RESPONSE_N 500
#define TIMEOUT_MS     200
/* Worker limits of a run: generous, so that only the fixtures' own
 * behaviour decides the outcome. */
#define RUN_TIMEOUT_MS      60000
#define RUN_MEMORY_MB       64
#define RUN_MAX_HOST_CALLS  100
#define RUN_JOBS_PER_WORKER 100
/* A host call the test handler answers with BIG_RESPONSE_N + 9 bytes. */
#define BIG_REQUEST "{\"method\":\"big\"}"

static char cache_dir[] = "/tmp/cb-native-test-XXXXXX";

struct fixture {
    const char *name;
    char *so;
};

static struct fixture fixtures[] = {
    {"echo", NULL},    {"ctool", NULL},   {"exit3", NULL},    {"unreachable", NULL},
    {"recurse", NULL}, {"fuel", NULL},    {"hostcall", NULL}, {"nomem", NULL},
    {"wasi", NULL},    {"nostart", NULL}, {"badstart", NULL}, {"oob", NULL},
    {"startfn", NULL}, {"dataoob", NULL},
};

static uint8_t *read_wasm(const char *name, size_t *len)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s.wasm", NATIVE_FIXTURES, name);
    FILE *f = fopen(path, "rb");
    struct cb_buf b;
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    cb_buf_init(&b, 16u << 20);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(cb_buf_append(&b, chunk, n), 0);
    fclose(f);
    return (uint8_t *)cb_buf_steal(&b, len);
}

static struct cb_compile_opts default_opts(const char *dir)
{
    struct cb_compile_opts o = {
        .cache_dir = dir, .timeout_ms = COMPILE_MS, .max_call_depth = CALL_DEPTH};
    return o;
}

/* Path of the fixture's compiled .so, compiling it on first use. */
static const char *so_for(const char *name)
{
    for (size_t i = 0; i < CB_ARRAY_LEN(fixtures); i++) {
        if (strcmp(fixtures[i].name, name) != 0)
            continue;
        if (!fixtures[i].so) {
            struct cb_compile_opts o = default_opts(cache_dir);
            struct cb_error err = {0};
            size_t len;
            _cleanup_free_ uint8_t *wasm = read_wasm(name, &len);
            int rc = cb_compile_module(wasm, len, &o, &fixtures[i].so, &err);
            if (rc != 0)
                fail_msg("compiling %s: %s", name, err.msg);
        }
        return fixtures[i].so;
    }
    fail_msg("unknown fixture %s", name);
    return NULL;
}

/* ---- running through the worker pool, as production does ---- */

static char self_exe[4096];
static struct cb_worker_pool *pool;

/* Answers method "big" with {"ok":"xxx…"} (509 bytes) and any other
 * method with {"ok":<params>}. */
static char *test_host_call(void *ud, const char *method, json_t *params)
{
    struct cb_buf b;

    (void)ud;
    cb_buf_init(&b, 4096);
    if (strcmp(method, "big") == 0) {
        cb_buf_puts(&b, "{\"ok\":\"");
        for (int i = 0; i < BIG_RESPONSE_N; i++)
            cb_buf_puts(&b, "x");
        cb_buf_puts(&b, "\"}");
    } else {
        _cleanup_free_ char *p = json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY);
        cb_buf_puts(&b, "{\"ok\":");
        cb_buf_puts(&b, p ? p : "null");
        cb_buf_puts(&b, "}");
    }
    return cb_buf_steal(&b, NULL);
}

struct run {
    int rc;
    int host_calls;
    struct cb_tool_outcome outcome;
    bool stdout_truncated;
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
};

struct run_args {
    const char *so;
    const char *in;
    size_t in_len;
    uint64_t fuel;
    size_t max_out;
};

/* Runs the tool in a worker child of the pool (a fresh instance; a child
 * whose run did not end cleanly is not reused). */
static void run_args(const struct run_args *a, struct run *r)
{
    struct cb_worker_limits lim = {.fuel = a->fuel,
                                   .timeout_ms = RUN_TIMEOUT_MS,
                                   .memory_mb = RUN_MEMORY_MB,
                                   .max_output = a->max_out,
                                   .max_host_calls = RUN_MAX_HOST_CALLS};
    struct cb_worker_result res;
    struct cb_error err = {0};

    memset(r, 0, sizeof(*r));
    r->rc =
        cb_worker_execute(pool, a->so, a->in, a->in_len, &lim, test_host_call, NULL, &res, &err);
    if (r->rc < 0)
        fail_msg("executing %s: %s", a->so, err.msg);
    assert_false(res.timed_out);
    assert_false(res.crashed);
    r->host_calls = (int)res.host_calls;
    r->outcome = res.outcome;
    r->stdout_truncated = res.output_truncated;
    r->out = cb_xstrndup(res.out.data ? res.out.data : "", res.out.len);
    r->out_len = res.out.len;
    r->err = cb_xstrndup(res.err.data ? res.err.data : "", res.err.len);
    r->err_len = res.err.len;
    cb_worker_result_free(&res);
}

static void run_tool(const char *name, const char *in, uint64_t fuel, struct run *r)
{
    struct run_args a = {so_for(name), in, strlen(in), fuel, MAX_OUT};

    run_args(&a, r);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* ---- behaviour of tools ---- */

static void echo_copies_stdin(void **state)
{
    const char *in = "{\"hello\":\"world\",\"n\":[1,2,3]}";
    struct run r;

    (void)state;
    run_tool("echo", in, FUEL_PLENTY, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome.status, CB_TOOL_OK);
    assert_string_equal(r.out, in);
    assert_int_equal(r.outcome.fuel_consumed, 0); /* not metered */
    assert_false(r.stdout_truncated);
    run_free(&r);
}

static void echo_copies_large_stdin(void **state)
{
    size_t n = 300000;
    char *in = cb_xmalloc(n + 1);
    struct run r;

    (void)state;
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    in[n] = '\0';
    run_tool("echo", in, FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_OK);
    assert_int_equal(r.out_len, n);
    assert_memory_equal(r.out, in, n);
    free(in);
    run_free(&r);
}

static void c_tool_uses_libc(void **state)
{
    struct run r;

    (void)state;
    run_tool("ctool", "abc", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_OK);
    assert_string_equal(r.out, "{\"len\":3,\"sum\":294}\n");
    assert_string_equal(r.err, "done\n");
    run_free(&r);
}

static void proc_exit_nonzero(void **state)
{
    struct run r;

    (void)state;
    run_tool("exit3", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_EXIT_NONZERO);
    assert_int_equal(r.outcome.exit_code, 3);
    assert_string_equal(r.out, "bye");
    run_free(&r);
}

static void unreachable_traps(void **state)
{
    struct run r;

    (void)state;
    run_tool("unreachable", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_TRAP);
    assert_non_null(strstr(r.outcome.message, "unreachable"));
    run_free(&r);
}

static void out_of_bounds_traps_in_unexported_memory(void **state)
{
    struct run r;

    (void)state;
    for (int i = 0; i < 2; i++) { /* and the reservation is reused after it */
        run_tool("oob", "", FUEL_PLENTY, &r);
        assert_int_equal(r.outcome.status, CB_TOOL_TRAP);
        assert_non_null(strstr(r.outcome.message, "out of bounds"));
        run_free(&r);
    }
}

static void recursion_exhausts_stack(void **state)
{
    struct run r;

    (void)state;
    run_tool("recurse", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_TRAP);
    assert_non_null(strstr(r.outcome.message, "call stack exhausted"));
    run_free(&r);
}

/* The quick tier's frames are larger (-O0, and clang where it runs): the
 * call-depth limit must still trap before the native stack runs out. */
static void recursion_exhausts_stack_in_a_quick_build(void **state)
{
    struct cb_compile_opts o = default_opts(cache_dir);
    struct cb_error err = {0};
    size_t len;
    _cleanup_free_ uint8_t *wasm = read_wasm("recurse", &len);
    _cleanup_free_ char *so = NULL;
    struct run r;

    (void)state;
    o.quick = true;
    if (cb_compile_module(wasm, len, &o, &so, &err) != 0)
        fail_msg("compiling recurse quickly: %s", err.msg);
    struct run_args a = {so, "", 0, FUEL_PLENTY, MAX_OUT};
    run_args(&a, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_TRAP);
    assert_non_null(strstr(r.outcome.message, "call stack exhausted"));
    run_free(&r);
}

static void fuel_runs_out(void **state)
{
    struct run r;

    (void)state;
    run_tool("fuel", "", 500, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_FUEL_EXHAUSTED);
    assert_int_equal(r.outcome.fuel_consumed, 500);
    run_free(&r);
}

static void fuel_is_reported(void **state)
{
    struct run r;

    (void)state;
    run_tool("fuel", "", 5000, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_OK);
    assert_int_equal(r.outcome.fuel_consumed, 1000);
    run_free(&r);
}

/* The start function runs under the budget: fuel that runs out there is
 * fuel exhaustion, not a trap of instantiation. */
static void start_function_is_metered(void **state)
{
    struct run r;

    (void)state;
    run_tool("startfn", "f", 500, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_FUEL_EXHAUSTED);
    assert_int_equal(r.outcome.fuel_consumed, 500);
    run_free(&r);
    run_tool("startfn", "f", 5000, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_OK);
    assert_int_equal(r.outcome.fuel_consumed, 1000);
    assert_string_equal(r.out, "ok");
    run_free(&r);
}

/* A trap in the start function or in data initialisation fails the
 * instantiation, and says where. */
static void start_function_and_data_traps(void **state)
{
    struct run r;

    (void)state;
    run_tool("startfn", "t", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_INSTANTIATE);
    assert_string_equal(r.outcome.message, "start function trapped: unreachable instruction "
                                           "executed");
    run_free(&r);
    run_tool("dataoob", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_INSTANTIATE);
    assert_string_equal(r.outcome.message, "instantiation trapped: out of bounds memory or table "
                                           "access");
    run_free(&r);
}

static void missing_start(void **state)
{
    struct run r;

    (void)state;
    run_tool("nostart", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_NO_START);
    run_free(&r);
    run_tool("badstart", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_NO_START);
    run_free(&r);
}

static void stdout_cap_truncates(void **state)
{
    struct run_args a = {so_for("echo"), "0123456789abcdefghij", 20, FUEL_PLENTY, 10};
    struct run r;

    (void)state;
    run_args(&a, &r);
    assert_true(r.stdout_truncated);
    assert_int_equal(r.out_len, 10);
    assert_string_equal(r.out, "0123456789");
    /* the failed write makes echo trap */
    assert_int_equal(r.outcome.status, CB_TOOL_TRAP);
    run_free(&r);
}

static void wasi_capability_less(void **state)
{
    struct run r;

    (void)state;
    run_tool("wasi", "", FUEL_PLENTY, &r);
    if (r.outcome.status != CB_TOOL_OK)
        fail_msg("wasi check %u failed (%s)", r.outcome.exit_code, r.outcome.message);
    run_free(&r);
}

/* ---- host_call ---- */

/* Runs hostcall.wat with case `op` and request `req`; returns the
 * host_call result the guest saw. */
static int host_case(char op, const char *req, struct run *r)
{
    char in[256];

    snprintf(in, sizeof(in), "%c%s", op, req);
    run_tool("hostcall", in, FUEL_PLENTY, r);
    assert_int_equal(r->outcome.status, CB_TOOL_EXIT_NONZERO);
    return (int)r->outcome.exit_code - 1000;
}

static void host_call_round_trip(void **state)
{
    const char *req = "{\"method\":\"echo\",\"params\":{\"message\":\"hi\"}}";
    const char *want = "{\"ok\":{\"message\":\"hi\"}}";
    struct run r;

    (void)state;
    assert_int_equal(host_case('a', req, &r), (int)strlen(want));
    assert_string_equal(r.out, want);
    assert_int_equal(r.host_calls, 1);
    run_free(&r);
}

static void host_call_bad_request_not_dispatched(void **state)
{
    const char ops[] = {'b', 'f', 'g'};
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof(ops); i++) {
        assert_int_equal(host_case(ops[i], "{}", &r), -1);
        assert_int_equal(r.host_calls, 0);
        run_free(&r);
    }
}

/* A response buffer the guest could not receive the answer in is refused
 * before the call is dispatched: past the end, a length running past the
 * end, a negative capacity, a pointer past the end with capacity 0. */
static void host_call_bad_response_region(void **state)
{
    const char ops[] = {'e', 'j', 'k', 'l'};
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof(ops); i++) {
        assert_int_equal(host_case(ops[i], "{\"method\":\"x\"}", &r), -1);
        assert_int_equal(r.host_calls, 0);
        run_free(&r);
    }
}

static void host_call_response_too_large(void **state)
{
    const char *want = "{\"error\":\"response of 509 bytes does not fit the buffer of 100 bytes\"}";
    struct run r;

    (void)state;
    assert_int_equal(host_case('c', BIG_REQUEST, &r), (int)strlen(want));
    assert_string_equal(r.out, want);
    run_free(&r);
    assert_int_equal(host_case('d', BIG_REQUEST, &r), -1);
    assert_int_equal(r.host_calls, 1);
    run_free(&r);
}

static void host_call_retry_gets_the_held_response(void **state)
{
    struct run r;

    (void)state;
    /* The retry with room is answered without sending the request again. */
    assert_int_equal(host_case('h', BIG_REQUEST, &r), BIG_RESPONSE_N + 9);
    assert_int_equal(r.host_calls, 1);
    assert_int_equal(strspn(r.out + 7, "x"), BIG_RESPONSE_N);
    run_free(&r);
    /* A buffer too small even for the error: -1, but the response is held. */
    assert_int_equal(host_case('m', BIG_REQUEST, &r), BIG_RESPONSE_N + 9);
    assert_int_equal(r.host_calls, 1);
    run_free(&r);
    /* Another request in between drops what was held. */
    assert_int_equal(host_case('i', BIG_REQUEST, &r), BIG_RESPONSE_N + 9);
    assert_int_equal(r.host_calls, 3);
    run_free(&r);
}

static void host_call_without_memory_export(void **state)
{
    struct run r;

    (void)state;
    run_tool("nomem", "", FUEL_PLENTY, &r);
    assert_int_equal(r.outcome.status, CB_TOOL_EXIT_NONZERO);
    assert_int_equal(r.outcome.exit_code, 999);
    assert_int_equal(r.host_calls, 0);
    run_free(&r);
}

/* ---- compile cache ---- */

static void second_compile_hits_cache(void **state)
{
    struct cb_compile_opts o = default_opts(cache_dir);
    struct cb_error err = {0};
    const char *first = so_for("echo");
    _cleanup_free_ char *again = NULL;
    struct stat before, after;
    size_t len;
    _cleanup_free_ uint8_t *wasm = read_wasm("echo", &len);
    uint64_t t0;

    (void)state;
    assert_int_equal(stat(first, &before), 0);
    t0 = cb_now_mono_ns();
    assert_int_equal(cb_compile_module(wasm, len, &o, &again, &err), 0);
    assert_true(cb_now_mono_ns() - t0 < 100000000u); /* no 1 s recompile */
    assert_string_equal(again, first);
    assert_int_equal(stat(again, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    /* A lookup finds it without building; the quick tier is cached apart. */
    _cleanup_free_ char *found = NULL;
    assert_int_equal(cb_compile_lookup(wasm, len, &o, &found, &err), 0);
    assert_string_equal(found, first);
    o.quick = true;
    char *quick = NULL;
    assert_int_equal(cb_compile_lookup(wasm, len, &o, &quick, &err), -ENOENT);
    assert_null(quick);
}

static void cache_key_covers_settings(void **state)
{
    struct cb_compile_opts a = default_opts(cache_dir), b = a;
    char ka[65], kb[65], kc[65];
    const uint8_t w1[] = "\0asm1", w2[] = "\0asm2";

    (void)state;
    b.max_call_depth = CALL_DEPTH + 1;
    cb__compile_cache_key(w1, sizeof(w1), &a, ka);
    cb__compile_cache_key(w1, sizeof(w1), &b, kb);
    cb__compile_cache_key(w2, sizeof(w2), &a, kc);
    assert_int_equal(strlen(ka), 64);
    assert_string_not_equal(ka, kb);
    assert_string_not_equal(ka, kc);
    cb__compile_cache_key(w1, sizeof(w1), &a, kb);
    assert_string_equal(ka, kb);
    b = a;
    b.quick = true;
    cb__compile_cache_key(w1, sizeof(w1), &b, kb);
    assert_string_not_equal(ka, kb);
}

static void garbage_wasm_fails_clearly(void **state)
{
    struct cb_compile_opts o = default_opts(cache_dir);
    struct cb_error err = {0};
    const char junk[] = "this is not a wasm module";
    char *so = NULL;
    int rc;

    (void)state;
    rc = cb_compile_module((const uint8_t *)junk, sizeof(junk), &o, &so, &err);
    assert_true(rc < 0);
    assert_null(so);
    assert_non_null(strstr(err.msg, "wasm2c failed"));
    assert_non_null(strstr(err.msg, "magic"));
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* True if a live process other than us carries `mark` in its environment
 * (the toolchain inherits it; zombies show an empty environment). */
static bool marked_process_alive(const char *mark)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;

    assert_non_null(d);
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], env[65536];
        ssize_t n;
        int fd;
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || strtol(e->d_name, NULL, 10) == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        n = read(fd, env, sizeof(env) - 1);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(env + i) + 1) {
            env[n] = '\0';
            if (strcmp(env + i, mark) == 0)
                found = true;
        }
    }
    closedir(d);
    return found;
}

static void compile_timeout_kills_toolchain(void **state)
{
    char dir[] = "/tmp/cb-native-timeout-XXXXXX";
    _cleanup_free_ char *mark_val = NULL, *mark = NULL;
    struct cb_compile_opts o;
    struct cb_error err = {0};
    char *so = NULL;
    size_t len;
    _cleanup_free_ uint8_t *wasm = read_wasm("ctool", &len);

    (void)state;
    assert_non_null(mkdtemp(dir));
    o = default_opts(dir);
    o.timeout_ms = TIMEOUT_MS; /* lands while wasm2c or cc runs */
    mark_val = cb_xasprintf("%d", (int)getpid());
    mark = cb_xasprintf("%s=%s", TEST_ENV_MARK, mark_val);
    setenv(TEST_ENV_MARK, mark_val, 1);
    assert_int_equal(cb_compile_module(wasm, len, &o, &so, &err), -ETIMEDOUT);
    unsetenv(TEST_ENV_MARK);
    assert_null(so);
    assert_string_equal(err.msg, "compiling tool timed out after 200 ms");
    /* killed group: give the kernel a moment to tear the processes down */
    for (int i = 0; i < 100 && marked_process_alive(mark); i++)
        usleep(10000);
    assert_false(marked_process_alive(mark));
    assert_int_equal(count_entries(dir), 0); /* no .so, no temp dir */
    assert_int_equal(rmdir(dir), 0);
}

/* A hostile fixture (tests/fixtures/hostile), instrumented as the
 * pipeline does it. */
static uint8_t *read_hostile_metered(const char *name, size_t *len)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s.wasm", HOSTILE_FIXTURES, name);
    FILE *f = fopen(path, "rb");
    struct cb_buf b;
    char chunk[4096];
    size_t n;
    struct cb_error err = {0};
    const struct cb_wasm_instrument_opts io = {.max_memory_pages = 1024};
    uint8_t *out = NULL;

    assert_non_null(f);
    cb_buf_init(&b, 1u << 20);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(cb_buf_append(&b, chunk, n), 0);
    fclose(f);
    if (cb_wasm_instrument((const uint8_t *)b.data, b.len, &io, &out, len, &err) < 0)
        fail_msg("instrumenting %s: %s", name, err.msg);
    cb_buf_free(&b);
    return out;
}

/* Compiles a module expected to fail with `want`; says why if it did not. */
static void compile_fails(const uint8_t *wasm, size_t len, const struct cb_compile_opts *o,
                          int want, struct cb_error *err)
{
    char *so = NULL;
    int rc = cb_compile_module(wasm, len, o, &so, err);
    if (rc != want)
        fail_msg("compile returned %d, not %d: %s", rc, want, err->msg);
    assert_null(so);
}

static uint64_t ms_since(uint64_t t0)
{
    return (cb_now_mono_ns() - t0) / 1000000u;
}

static void compile_budget_grows_with_size(void **state)
{
    (void)state;
    assert_int_equal(cb_compile_budget_ms(0, 120000), 5000);
    assert_int_equal(cb_compile_budget_ms(25 * 1024, 120000), 7500);
    assert_int_equal(cb_compile_budget_ms(16u << 20, 120000), 120000);
    assert_int_equal(cb_compile_budget_ms(25 * 1024, 6000), 6000);
}

/* A module that needs more CPU than its budget fails when the budget is
 * spent, and the failure is remembered by content: the same module with
 * the same settings fails again at once, without compiling; a larger
 * budget tries again. */
static void cpu_budget_failure_is_remembered(void **state)
{
    struct cb_compile_opts o = default_opts(cache_dir);
    struct cb_error err = {0};
    char *so = NULL;
    size_t len;
    _cleanup_free_ uint8_t *wasm = read_hostile_metered("slowblocks", &len);
    uint64_t t0 = cb_now_mono_ns();

    (void)state;
    o.cpu_budget_ms = 1000;
    compile_fails(wasm, len, &o, -ETIME, &err);
    assert_null(so);
    assert_string_equal(err.msg, "compiling used its whole CPU budget of 1000 ms (it grows with "
                                 "the module's size, up to sandbox.compile_timeout_ms)");
    assert_true(ms_since(t0) < 30000); /* about 1 s of CPU; generous for a loaded machine */
    t0 = cb_now_mono_ns();
    compile_fails(wasm, len, &o, -ETIME, &err);
    assert_true(ms_since(t0) < 500);
    assert_non_null(strstr(err.msg, "CPU budget of 1000 ms (it grows"));
    assert_non_null(strstr(err.msg, "(cached: this module failed so before"));
    /* A lookup finds the failure too, without compiling. */
    assert_int_equal(cb_compile_lookup(wasm, len, &o, &so, &err), -ETIME);
    assert_null(so);
    assert_non_null(strstr(err.msg, "(cached: this module failed so before"));
    o.cpu_budget_ms = 2000;
    compile_fails(wasm, len, &o, -ETIME, &err);
    assert_non_null(strstr(err.msg, "CPU budget of 2000 ms"));
    assert_null(strstr(err.msg, "cached"));
}

/* Nested loops make wasm2c write C quadratic in the module's size (2500
 * loops, 5 KB: over 100 MB); the output limit stops it, and that is
 * remembered too. */
static void output_limit_failure_is_remembered(void **state)
{
    enum { LOOPS = 2500 };
    static const uint8_t head[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04,
                                   0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x0a};
    struct cb_compile_opts o = default_opts(cache_dir);
    struct cb_error err = {0};
    const struct cb_wasm_instrument_opts io = {.max_memory_pages = 1024};
    struct cb_buf in;
    char *so = NULL;
    uint8_t *wasm = NULL;
    size_t len;
    uint32_t body = 1 + 3 * LOOPS + 1; /* no locals, loop headers and ends, end */

    (void)state;
    cb_buf_init(&in, 1u << 20);
    cb_buf_append(&in, head, sizeof(head));
    /* section size, 1 body, body size: LEB128 of at most 2 bytes each */
    uint8_t sizes[] = {(uint8_t)((body + 3) | 0x80), (uint8_t)((body + 3) >> 7), 0x01,
                       (uint8_t)(body | 0x80),       (uint8_t)(body >> 7),       0x00};
    cb_buf_append(&in, sizes, sizeof(sizes));
    for (int i = 0; i < LOOPS; i++)
        cb_buf_append(&in, "\x03\x40", 2);
    for (int i = 0; i <= LOOPS; i++)
        cb_buf_append(&in, "\x0b", 1);
    if (cb_wasm_instrument((const uint8_t *)in.data, in.len, &io, &wasm, &len, &err) < 0)
        fail_msg("instrumenting: %s", err.msg);
    cb_buf_free(&in);
    uint64_t t0 = cb_now_mono_ns();
    compile_fails(wasm, len, &o, -EFBIG, &err);
    assert_non_null(strstr(err.msg, "the compiler's output reached its limit of"));
    assert_true(ms_since(t0) < 30000);
    compile_fails(wasm, len, &o, -EFBIG, &err);
    assert_non_null(strstr(err.msg, "(cached:"));
    assert_null(so);
    free(wasm);
}

/* ---- group setup ---- */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *p = cb_xasprintf("%s/%s", dir, e->d_name);
        if (unlink(p) < 0)
            remove_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int group_setup(void **state)
{
    struct cb_error err = {0};

    (void)state;
    if (mkdtemp(cache_dir) == NULL)
        return -1;
    if (cb_worker_pool_new(self_exe, RUN_JOBS_PER_WORKER, &pool, &err) < 0) {
        fprintf(stderr, "worker pool: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cb_worker_pool_free(pool);
    for (size_t i = 0; i < CB_ARRAY_LEN(fixtures); i++)
        free(fixtures[i].so);
    remove_tree(cache_dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "__zygote") == 0)
        return cb_zygote_main(3);
    if (realpath("/proc/self/exe", self_exe) == NULL)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_copies_stdin),
        cmocka_unit_test(echo_copies_large_stdin),
        cmocka_unit_test(c_tool_uses_libc),
        cmocka_unit_test(proc_exit_nonzero),
        cmocka_unit_test(unreachable_traps),
        cmocka_unit_test(out_of_bounds_traps_in_unexported_memory),
        cmocka_unit_test(recursion_exhausts_stack),
        cmocka_unit_test(recursion_exhausts_stack_in_a_quick_build),
        cmocka_unit_test(fuel_runs_out),
        cmocka_unit_test(fuel_is_reported),
        cmocka_unit_test(missing_start),
        cmocka_unit_test(start_function_is_metered),
        cmocka_unit_test(start_function_and_data_traps),
        cmocka_unit_test(stdout_cap_truncates),
        cmocka_unit_test(wasi_capability_less),
        cmocka_unit_test(host_call_round_trip),
        cmocka_unit_test(host_call_bad_request_not_dispatched),
        cmocka_unit_test(host_call_bad_response_region),
        cmocka_unit_test(host_call_response_too_large),
        cmocka_unit_test(host_call_retry_gets_the_held_response),
        cmocka_unit_test(host_call_without_memory_export),
        cmocka_unit_test(second_compile_hits_cache),
        cmocka_unit_test(cache_key_covers_settings),
        cmocka_unit_test(garbage_wasm_fails_clearly),
        cmocka_unit_test(compile_budget_grows_with_size),
        cmocka_unit_test(cpu_budget_failure_is_remembered),
        cmocka_unit_test(output_limit_failure_is_remembered),
        cmocka_unit_test(compile_timeout_kills_toolchain),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
