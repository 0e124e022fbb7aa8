/* Compile cache: wasm -> C (wasm2c) -> shared object (cc), cached under
 * cache_dir as <sha256>.so.
 *
 * The toolchain runs in a forked child (core/proc) that leads its own
 * process group, killed as a whole at the wall-clock deadline. The child
 * runs each program under what is left of the CPU budget (shared by wasm2c
 * and cc and all their processes, counted from what each program used),
 * an output file size limit that scales with the module (a deeply nested
 * module makes wasm2c write C quadratic in its size) and an address-space
 * limit. Running out of CPU or output size depends only on the module and
 * the settings, not on the load, so it is remembered as <sha256>.fail
 * with the limits it had, and the module is not compiled again unless the
 * limits grow. A wall-clock timeout depends on the load and is not
 * remembered.
 *
 * The result is built in a private temp directory inside cache_dir and
 * renamed into place, so concurrent compiles of the same module are safe
 * (the last rename wins with identical content). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/proc.h"
#include "core/util.h"
#include "sandbox/compile.h"
#include "sandbox/native/native.h"
#include "sandbox/tool_abi.h"

#define CB_WASM2C_RUNTIME_DIR   "/usr/src/wasm2c"
#define CB_COMPILE_OUTPUT_MAX   (16 * 1024)  /* compiler output kept for errors */
#define CB_COMPILE_OUTPUT_SHOWN 600          /* of which the error shows */
#define CB_COMPILE_AS_LIMIT     (4ull << 30) /* RLIMIT_AS of the toolchain */
#define CB_RUNTIME_FILE_MAX     (1u << 20)
#define CB_TOOL_HEADER_MAX      (64u << 20)
/* Any file the toolchain writes may be this large, plus OUTPUT_RATIO times
 * the module (real tools' C is about 14 times their instrumented module). */
#define CB_COMPILE_OUTPUT_BASE  (64ull << 20)
#define CB_COMPILE_OUTPUT_RATIO 32u
#define CB_COMPILE_FAILURE_MAX  (16u * 1024) /* a remembered failure's file */
#define CB_GLUE_HEADER_MAX      4096u        /* the per-module shim glue header */

/* Everything that changes the generated code, besides the wasm bytes, the
 * shim and the runtime, goes into the cache key through this list and the
 * compiler and optimisation level (compiler, opt_flag). */
static const char *const cc_flags[] = {
    "-shared",
    "-fPIC",
    "-w",
    "-fvisibility=hidden",
    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1", /* guard pages, no bounds checks in code */
    "-DWASM_RT_SKIP_SIGNAL_RECOVERY=1",    /* the shim handles the faults */
    "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",   /* deterministic stack exhaustion */
};
static const char *const cc_libs[] = {"-Wl,-z,defs", "-lm"};
static const char *const runtime_files[] = {"wasm-rt-impl.c", "wasm-rt-impl.h", "wasm-rt.h"};

/* Exit codes of the compile child, naming the step that failed, or the
 * limit that stopped it. */
enum {
    CHILD_OK = 0,
    CHILD_WASM2C = 10,
    CHILD_GLUE,
    CHILD_CC,
    CHILD_CPU,
    CHILD_FSIZE,
};

static const char *const compile_step_names[] = {
    [CHILD_WASM2C] = "wasm2c",
    [CHILD_GLUE] = "generating the shim glue",
    [CHILD_CC] = "cc",
};

/* What the toolchain may use for one module. */
struct limits {
    uint64_t cpu_ms;     /* CPU time of all its processes together */
    uint64_t fsize;      /* bytes of any one file it writes */
    unsigned timeout_ms; /* wall clock */
};

/* How a program of the toolchain ended. */
enum prog_result { PROG_OK, PROG_FAILED, PROG_CPU, PROG_FSIZE };

unsigned cb_compile_budget_ms(size_t len, unsigned cap_ms)
{
    uint64_t ms = CB_COMPILE_BUDGET_BASE_MS + (uint64_t)CB_COMPILE_BUDGET_MS_PER_KIB * len / 1024;
    return ms < cap_ms ? (unsigned)ms : cap_ms;
}

/* -O0 compiles in about 40 % of -O2's CPU time (the fuel-metered hash tool:
 * 2.3 s against 6.8 s) and runs several times slower. */
static const char *opt_flag(const struct cb_compile_opts *opts)
{
    return opts->quick ? "-O0" : "-O2";
}

static bool runs(const char *prog);

static const char *quick_compiler;

static void find_quick_compiler(void)
{
    quick_compiler = runs("clang") ? "clang" : "cc";
}

/* The compiler of a tier. clang -O0 takes less than half of gcc -O0's CPU
 * time on wasm2c's output (hash: 0.35 s against 0.80 s), so the quick
 * tier uses it where it runs (it is installed with the wasm toolchain of
 * scripts/deps.sh); -O2 stays with cc, whose code is what the runtime
 * figures were measured with. */
static const char *compiler(const struct cb_compile_opts *opts)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    if (!opts->quick)
        return "cc";
    pthread_once(&once, find_quick_compiler);
    return quick_compiler;
}

/* ---- cache key ---- */

/* Hashes a length-prefixed field, so that fields cannot run together. */
static void hash_field(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    uint64_t len = n;

    EVP_DigestUpdate(ctx, &len, sizeof(len));
    EVP_DigestUpdate(ctx, p, n);
}

static void hash_str(EVP_MD_CTX *ctx, const char *s)
{
    hash_field(ctx, s, strlen(s));
}

static void hash_runtime(EVP_MD_CTX *ctx)
{
    for (size_t i = 0; i < CB_ARRAY_LEN(runtime_files); i++) {
        _cleanup_free_ char *path = cb_xasprintf("%s/%s", CB_WASM2C_RUNTIME_DIR, runtime_files[i]);
        struct cb_file f;
        if (cb_file_load(&f, AT_FDCWD, path, CB_RUNTIME_FILE_MAX, 0, NULL) < 0)
            hash_str(ctx, "missing");
        else
            hash_field(ctx, f.buf.data, f.buf.len);
        cb_file_close(&f);
    }
}

void cb__compile_cache_key(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                           char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    char num[32];

    if (!ctx)
        abort(); /* out of memory is fatal, as with cb_xmalloc */
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    hash_str(ctx, "clawbox-native-tool");
    snprintf(num, sizeof(num), "abi=%d depth=%u", CB_TOOL_ABI_VERSION, opts->max_call_depth);
    hash_str(ctx, num);
    for (size_t i = 0; i < CB_ARRAY_LEN(cc_flags); i++)
        hash_str(ctx, cc_flags[i]);
    hash_str(ctx, compiler(opts));
    hash_str(ctx, opt_flag(opts));
    for (size_t i = 0; i < CB_ARRAY_LEN(cc_libs); i++)
        hash_str(ctx, cc_libs[i]);
    hash_field(ctx, cb__native_shim_src, cb__native_shim_len);
    hash_field(ctx, cb__native_abi_src, cb__native_abi_len);
    hash_runtime(ctx);
    hash_field(ctx, wasm, len);
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    cb_hex_encode(md, sizeof(md), out);
}

/* ---- the build directory ---- */

static int write_file(const char *dir, const char *name, const void *data, size_t len,
                      struct cb_error *err)
{
    _cleanup_free_ char *path = cb_xasprintf("%s/%s", dir, name);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cb_error_set(err, -errno, "creating %s: %s", path, strerror(errno));
    int w = cb_write_all(fd, data, len);
    return w < 0 ? cb_error_set(err, w, "writing %s: %s", path, strerror(-w)) : 0;
}

/* Removes the flat temp build directory; errors are ignored because a
 * leftover directory only costs disk space. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int populate_dir(const char *dir, const uint8_t *wasm, size_t len, struct cb_error *err)
{
    int rc = write_file(dir, "tool.wasm", wasm, len, err);

    if (rc == 0)
        rc = write_file(dir, "tool_shim.c", cb__native_shim_src, cb__native_shim_len, err);
    if (rc == 0)
        rc = write_file(dir, "tool_abi.h", cb__native_abi_src, cb__native_abi_len, err);
    return rc;
}

/* ---- the compile child ---- */

struct toolchain {
    char *wasm2c[8];
    char *cc[32];
    char *depth_flag;
    char *include_flag;
};

static void toolchain_init(struct toolchain *t, const struct cb_compile_opts *opts)
{
    static char *const wasm2c[] = {"wasm2c", "tool.wasm", "-n", "tool", "-o", "tool.c", NULL};
    size_t n = 0;

    t->depth_flag = cb_xasprintf("-DWASM_RT_MAX_CALL_STACK_DEPTH=%u", opts->max_call_depth);
    t->include_flag = cb_xstrdup("-I" CB_WASM2C_RUNTIME_DIR);
    memcpy(t->wasm2c, wasm2c, sizeof(wasm2c));
    t->cc[n++] = (char *)compiler(opts);
    for (size_t i = 0; i < CB_ARRAY_LEN(cc_flags); i++)
        t->cc[n++] = (char *)cc_flags[i];
    t->cc[n++] = (char *)opt_flag(opts);
    t->cc[n++] = t->depth_flag;
    t->cc[n++] = "-I.";
    t->cc[n++] = t->include_flag;
    t->cc[n++] = "tool.c";
    t->cc[n++] = "tool_shim.c"; /* includes wasm-rt-impl.c */
    t->cc[n++] = "-o";
    t->cc[n++] = "out.so";
    for (size_t i = 0; i < CB_ARRAY_LEN(cc_libs); i++)
        t->cc[n++] = (char *)cc_libs[i];
    t->cc[n] = NULL;
}

static void toolchain_free(struct toolchain *t)
{
    free(t->depth_flag);
    free(t->include_flag);
}

/* What cc prints (in the C locale) when a program it ran got SIGXCPU. */
#define CPU_LIMIT_TEXT "CPU time limit exceeded signal terminated program"

/* What the compile child works from; its copy of cpu_used_ms counts the
 * CPU time of the programs it ran (and of their descendants). */
struct compile_job {
    struct toolchain t;
    const struct limits *lim;
    uint64_t cpu_used_ms;
    bool background;
};

/* Whether a file in the current (build) directory reached the size limit:
 * the driver (cc) reports a compiler killed by SIGXFSZ only as a failure. */
static bool output_at_limit(uint64_t fsize)
{
    DIR *d = opendir(".");
    struct dirent *e;
    struct stat st;
    bool hit = false;

    while (d && !hit && (e = readdir(d)) != NULL)
        hit = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_size >= fsize;
    if (d)
        closedir(d);
    return hit;
}

/* In the compile child: runs argv (no shell, in the child's process group,
 * writing where it does) with what is left of the CPU budget, the output
 * limit and the address-space limit, and waits. The CPU limit's soft value
 * sends SIGXCPU, which the driver (cc) reports for its compiler as
 * CPU_LIMIT_TEXT; the hard one, a second later, kills. */
static enum prog_result run_program(char **argv, struct compile_job *job)
{
    const struct limits *lim = job->lim;
    struct cb_error err = {0};
    struct cb_proc_result res;

    if (job->cpu_used_ms >= lim->cpu_ms)
        return PROG_CPU;
    rlim_t cpu_s = (rlim_t)((lim->cpu_ms - job->cpu_used_ms + 999) / 1000);
    const struct cb_proc_rlimit limits[] = {
        {RLIMIT_CPU, cpu_s, cpu_s + 1},
        {RLIMIT_FSIZE, (rlim_t)lim->fsize, (rlim_t)lim->fsize},
        {RLIMIT_AS, CB_COMPILE_AS_LIMIT, CB_COMPILE_AS_LIMIT},
        {RLIMIT_CORE, 0, 0},
    };
    const struct cb_proc_spec spec = {
        .argv = argv,
        .rlimits = limits,
        .n_rlimits = CB_ARRAY_LEN(limits),
        .in_caller_group = true,
    };
    if (cb_proc_run(&spec, &res, &err) < 0) {
        dprintf(2, "%s\n", err.msg);
        return PROG_FAILED;
    }
    job->cpu_used_ms += res.cpu_ms;
    int status = res.status;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return PROG_OK;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
        return PROG_CPU;
    if ((WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) || output_at_limit(lim->fsize))
        return PROG_FSIZE;
    if (WIFSIGNALED(status))
        dprintf(2, "%s killed by signal %d\n", argv[0], WTERMSIG(status));
    return PROG_FAILED;
}

/* Runs one step; exits the compile child unless it succeeded. */
static void step(char **argv, struct compile_job *job, int child_code)
{
    switch (run_program(argv, job)) {
    case PROG_OK:
        return;
    case PROG_CPU:
        _exit(CHILD_CPU);
    case PROG_FSIZE:
        _exit(CHILD_FSIZE);
    default:
        _exit(child_code);
    }
}

/* In the child: tool.h -> tool_glue.h. */
static int make_glue(void)
{
    struct cb_file hdr;
    struct cb_error err = {0};
    struct cb_buf glue;
    int rc;

    if (cb_file_load(&hdr, AT_FDCWD, "tool.h", CB_TOOL_HEADER_MAX, 0, NULL) < 0) {
        cb_file_close(&hdr);
        dprintf(2, "cannot read tool.h\n");
        return -1;
    }
    cb_buf_init(&glue, CB_GLUE_HEADER_MAX);
    rc = cb__native_glue(hdr.buf.data, hdr.buf.len, &glue, &err);
    cb_file_close(&hdr);
    if (rc == 0)
        rc = write_file(".", "tool_glue.h", glue.data, glue.len, &err);
    if (rc < 0)
        dprintf(2, "%s\n", err.msg);
    cb_buf_free(&glue);
    return rc;
}

/* TMPDIR is the build directory, so that cc's temporary files are under
 * the output limit check and removed with the directory; LC_ALL=C makes
 * the messages the parent looks for (CPU_LIMIT_TEXT) predictable. */
static char *const child_env[] = {"TMPDIR=.", "LC_ALL=C", NULL};

/* The forked child, in the build directory with output of every step on
 * stdout and stderr. It lives for seconds without exec; core/proc closed
 * the server's descriptors (client connections, listeners) for it. */
static int compile_child(void *arg)
{
    struct compile_job *job = arg;

    /* Inherited by wasm2c and cc: a background build yields to the
     * server's own work and to the quick builds of tools not yet served. */
    if (job->background && setpriority(PRIO_PROCESS, 0, CB_COMPILE_BACKGROUND_NICE) < 0)
        dprintf(2, "setpriority: %s\n", strerror(errno));
    step(job->t.wasm2c, job, CHILD_WASM2C);
    if (make_glue() < 0)
        return CHILD_GLUE;
    step(job->t.cc, job, CHILD_CC);
    return CHILD_OK;
}

/* ---- the parent side ---- */

/* Maps the child's exit status to an error carrying the output head. */
static int child_error(int status, const struct cb_buf *out, const struct limits *lim,
                       struct cb_error *err)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char *step =
        code >= CHILD_WASM2C && code <= CHILD_CC ? compile_step_names[code] : "compiler";
    int shown = out->len < CB_COMPILE_OUTPUT_SHOWN ? (int)out->len : CB_COMPILE_OUTPUT_SHOWN;

    if (WIFSIGNALED(status))
        return cb_error_set(err, -ECHILD, "compiler killed by signal %d", WTERMSIG(status));
    if (code == CHILD_CC && out->data != NULL &&
        memmem(out->data, out->len, CPU_LIMIT_TEXT, sizeof(CPU_LIMIT_TEXT) - 1) != NULL)
        code = CHILD_CPU; /* cc's compiler got SIGXCPU */
    if (code == CHILD_CPU)
        return cb_error_set(err, -ETIME,
                            "compiling used its whole CPU budget of %" PRIu64
                            " ms (it grows with the module's size, up to "
                            "sandbox.compile_timeout_ms)",
                            lim->cpu_ms);
    if (code == CHILD_FSIZE)
        return cb_error_set(err, -EFBIG,
                            "the compiler's output reached its limit of %" PRIu64
                            " bytes for a module of this size",
                            lim->fsize);
    return cb_error_set(err, -EINVAL, "%s failed%s%.*s", step, shown ? ": " : "", shown,
                        out->data ? out->data : "");
}

/* Runs wasm2c and cc in `dir`, leaving out.so there. */
static int run_toolchain(const char *dir, const struct cb_compile_opts *opts,
                         const struct limits *lim, struct cb_error *err)
{
    struct compile_job job = {.lim = lim, .background = opts->background};
    char *name[] = {"compiler", NULL};
    struct cb_proc_result res;
    struct cb_buf out;

    toolchain_init(&job.t, opts);
    cb_buf_init(&out, CB_COMPILE_OUTPUT_MAX);
    const struct cb_proc_spec spec = {
        .argv = name,
        .fn = compile_child,
        .arg = &job,
        .env = child_env,
        .cwd = dir,
        .timeout_ms = lim->timeout_ms,
        .output = &out,
        .cancel = opts->cancel,
    };
    int rc = cb_proc_run(&spec, &res, err);
    if (rc == -ETIMEDOUT)
        rc = cb_error_set(err, rc, "compiling tool timed out after %u ms", lim->timeout_ms);
    else if (rc == 0 && (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != CHILD_OK))
        rc = child_error(res.status, &out, lim, err);
    cb_buf_free(&out);
    toolchain_free(&job.t);
    return rc;
}

static int check_opts(const struct cb_compile_opts *opts, struct cb_error *err)
{
    if (!opts || !opts->cache_dir || !opts->cache_dir[0])
        return cb_error_set(err, -EINVAL, "compile: no cache directory");
    if (opts->timeout_ms == 0 || opts->max_call_depth == 0)
        return cb_error_set(err, -EINVAL, "compile: timeout and call depth must be positive");
    return 0;
}

/* The limits for a module of len (instrumented) bytes. */
static struct limits limits_for(size_t len, const struct cb_compile_opts *opts)
{
    unsigned cpu = opts->cpu_budget_ms;

    uint64_t wall =
        (uint64_t)opts->timeout_ms * (opts->background ? CB_COMPILE_BACKGROUND_SLACK : 1);
    return (struct limits){
        .cpu_ms = cpu != 0 && cpu < opts->timeout_ms ? cpu : opts->timeout_ms,
        .fsize = CB_COMPILE_OUTPUT_BASE + (uint64_t)CB_COMPILE_OUTPUT_RATIO * len,
        .timeout_ms = wall < UINT_MAX ? (unsigned)wall : UINT_MAX,
    };
}

/* ---- remembered failures ---- */

/* Whether a failure is a property of the module and the limits alone. */
static bool remembered_kind(int rc)
{
    return rc == -ETIME || rc == -EFBIG;
}

/* Writes <key>.fail: the error and the limits it happened under. Best
 * effort: not remembering only costs a compile. */
static void remember_compile_failure(const char *fail_path, int rc, const struct limits *lim,
                                     const char *msg)
{
    _cleanup_free_ char *tmp = cb_xasprintf("%s.tmp-XXXXXX", fail_path);
    json_t *rec =
        json_pack("{s:i, s:I, s:I, s:s}", "code", rc, "cpu_budget_ms", (json_int_t)lim->cpu_ms,
                  "output_limit", (json_int_t)lim->fsize, "message", msg);
    _cleanup_free_ char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    if (close(fd) < 0 || !ok || rename(tmp, fail_path) < 0)
        unlink(tmp);
}

/* If a failure of this module is remembered under a limit at least as
 * large as the current one that it ran out of (the CPU budget or the output
 * limit), sets err to it and returns its code; else returns 0. */
static int remembered_failure(const char *fail_path, const struct limits *lim, struct cb_error *err)
{
    struct cb_file f;
    if (cb_file_load(&f, AT_FDCWD, fail_path, CB_COMPILE_FAILURE_MAX, 0, NULL) < 0) {
        cb_file_close(&f);
        return 0;
    }
    json_t *rec = json_loadb(f.buf.data, f.buf.len, JSON_REJECT_DUPLICATES, NULL);
    cb_file_close(&f);
    json_int_t code = json_integer_value(json_object_get(rec, "code"));
    json_int_t cpu = json_integer_value(json_object_get(rec, "cpu_budget_ms"));
    json_int_t out = json_integer_value(json_object_get(rec, "output_limit"));
    const char *msg = json_string_value(json_object_get(rec, "message"));
    int rc = 0;
    bool applies = (code == -ETIME && cpu >= 0 && (uint64_t)cpu >= lim->cpu_ms) ||
                   (code == -EFBIG && out >= 0 && (uint64_t)out >= lim->fsize);
    if (msg != NULL && applies)
        rc = cb_error_set(err, (int)code,
                          "%s (cached: this module failed so before, with the "
                          "same settings)",
                          msg);
    json_decref(rec);
    return rc;
}

/* Builds the module in a fresh temp directory and renames the result to
 * so_path. */
static int build(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                 const struct limits *lim, const char *so_path, struct cb_error *err)
{
    _cleanup_free_ char *dir = cb_xasprintf("%s/tmp-XXXXXX", opts->cache_dir);
    _cleanup_free_ char *built = NULL;
    int rc;

    if (!mkdtemp(dir))
        return cb_error_set(err, -errno, "creating a build directory in %s: %s", opts->cache_dir,
                            strerror(errno));
    rc = populate_dir(dir, wasm, len, err);
    if (rc == 0)
        rc = run_toolchain(dir, opts, lim, err);
    if (rc == 0) {
        built = cb_xasprintf("%s/out.so", dir);
        if (rename(built, so_path) < 0)
            rc = cb_error_set(err, -errno, "renaming into %s: %s", so_path, strerror(errno));
    }
    remove_dir(dir);
    return rc;
}

int cb_compile_lookup(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                      char **so_path, struct cb_error *err)
{
    char key[65];

    cb__compile_cache_key(wasm, len, opts, key);
    *so_path = cb_xasprintf("%s/%s.so", opts->cache_dir, key);
    if (access(*so_path, R_OK) == 0)
        return 0;
    free(*so_path);
    *so_path = NULL;
    const struct limits lim = limits_for(len, opts);
    _cleanup_free_ char *fail_path = cb_xasprintf("%s/%s.fail", opts->cache_dir, key);
    int rc = remembered_failure(fail_path, &lim, err);
    return rc < 0 ? rc : -ENOENT;
}

int cb_compile_module(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                      char **so_path, struct cb_error *err)
{
    char key[65];
    char *path;
    int rc;

    *so_path = NULL;
    rc = check_opts(opts, err);
    if (rc < 0)
        return rc;
    rc = cb_mkdir_p(opts->cache_dir, 0700, err);
    if (rc < 0)
        return rc;
    cb__compile_cache_key(wasm, len, opts, key);
    path = cb_xasprintf("%s/%s.so", opts->cache_dir, key);
    if (access(path, R_OK) == 0) {
        *so_path = path;
        return 0;
    }
    const struct limits lim = limits_for(len, opts);
    _cleanup_free_ char *fail_path = cb_xasprintf("%s/%s.fail", opts->cache_dir, key);
    rc = remembered_failure(fail_path, &lim, err);
    if (rc == 0) {
        rc = build(wasm, len, opts, &lim, path, err);
        if (remembered_kind(rc))
            remember_compile_failure(fail_path, rc, &lim, err->msg);
    }
    if (rc < 0) {
        free(path);
        return rc;
    }
    *so_path = path;
    return 0;
}

/* True when `prog --version` runs and exits 0 (found through PATH, as the
 * compile child finds it). Its output is read and dropped. */
static bool runs(const char *prog)
{
    char *argv[] = {(char *)prog, "--version", NULL};
    struct cb_error err = {0};
    struct cb_proc_result res;
    struct cb_buf out;

    cb_buf_init(&out, CB_COMPILE_OUTPUT_MAX);
    const struct cb_proc_spec spec = {.argv = argv, .output = &out};
    int rc = cb_proc_run(&spec, &res, &err);
    cb_buf_free(&out);
    return rc == 0 && WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0;
}

int cb_compile_toolchain_check(struct cb_error *err)
{
    static const struct {
        const char *prog, *package;
    } progs[] = {{"wasm2c", "wabt"}, {"cc", "gcc"}};
    for (size_t i = 0; i < CB_ARRAY_LEN(progs); i++)
        if (!runs(progs[i].prog))
            return cb_error_set(err, -ENOENT,
                                "%s does not run or is not on PATH (Debian package %s)",
                                progs[i].prog, progs[i].package);
    for (size_t i = 0; i < CB_ARRAY_LEN(runtime_files); i++) {
        _cleanup_free_ char *f = cb_xasprintf("%s/%s", CB_WASM2C_RUNTIME_DIR, runtime_files[i]);
        if (access(f, R_OK) < 0)
            return cb_error_set(err, -ENOENT,
                                "the wasm2c runtime %s is missing (Debian package wabt)", f);
    }
    return 0;
}
