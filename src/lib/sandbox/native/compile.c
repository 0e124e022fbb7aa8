/* Compile cache: wasm -> C (wasm2c) -> shared object (cc), cached under
 * cache_dir as <sha256>.so.
 *
 * The toolchain runs in a forked child that leads its own process group
 * under CPU and address-space limits; the parent reads the combined output
 * through a pipe until the deadline and then kills the whole group. The
 * result is built in a private temp directory inside cache_dir and renamed
 * into place, so concurrent compiles of the same module are safe (the last
 * rename wins with identical content). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/fs.h"
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

/* Everything that changes the generated code, besides the wasm bytes, the
 * shim and the runtime, goes into the cache key through this list. */
static const char *const cc_flags[] = {
    "-shared",
    "-fPIC",
    "-O2",
    "-w",
    "-fvisibility=hidden",
    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1", /* guard pages, no bounds checks in code */
    "-DWASM_RT_SKIP_SIGNAL_RECOVERY=1",    /* the shim handles the faults */
    "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",   /* deterministic stack exhaustion */
};
static const char *const cc_libs[] = {"-Wl,-z,defs", "-lm"};
static const char *const runtime_files[] = {"wasm-rt-impl.c", "wasm-rt-impl.h", "wasm-rt.h"};

/* Exit codes of the compile child, naming the step that failed. */
enum { CHILD_OK = 0, CHILD_SETUP = 10, CHILD_WASM2C, CHILD_GLUE, CHILD_CC };

static const char *const step_names[] = {
    [CHILD_SETUP] = "setting up the compiler",
    [CHILD_WASM2C] = "wasm2c",
    [CHILD_GLUE] = "generating the shim glue",
    [CHILD_CC] = "cc",
};

/* Reads a whole file of at most `max` bytes into *data (caller frees). */
static int read_file(const char *path, size_t max, char **data, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct cb_buf b;
    char chunk[8192];
    ssize_t n;

    if (fd < 0)
        return -errno;
    cb_buf_init(&b, max);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || cb_buf_append(&b, chunk, (size_t)n) < 0) {
            int rc = n < 0 ? -errno : -EFBIG;
            cb_buf_free(&b);
            return rc;
        }
    }
    *data = cb_buf_steal(&b, len);
    return 0;
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
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        if (read_file(path, CB_RUNTIME_FILE_MAX, &data, &len) < 0)
            hash_str(ctx, "missing");
        else
            hash_field(ctx, data, len);
    }
}

void cb_compile_cache_key(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
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
    const char *p = data;

    if (fd < 0)
        return cb_error_set(err, -errno, "creating %s: %s", path, strerror(errno));
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cb_error_set(err, -errno, "writing %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
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
    t->cc[n++] = "cc";
    for (size_t i = 0; i < CB_ARRAY_LEN(cc_flags); i++)
        t->cc[n++] = (char *)cc_flags[i];
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

static void set_limit(int resource, rlim_t value)
{
    struct rlimit rl = {value, value};

    setrlimit(resource, &rl);
}

/* In the compile child: runs argv (no shell) under the CPU and address
 * space limits and waits. Returns 0 on exit 0. The limits are set in the
 * program's own process, after fork and before exec, because the compile
 * child is a copy of clawbox, whose address space may already exceed the
 * limit (ASan reserves terabytes). */
static int run_program(char **argv, unsigned timeout_ms)
{
    int status;
    pid_t pid = fork();

    if (pid < 0) {
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        set_limit(RLIMIT_CPU, timeout_ms / 1000 + 2);
        set_limit(RLIMIT_AS, CB_COMPILE_AS_LIMIT);
        set_limit(RLIMIT_CORE, 0);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFSIGNALED(status))
        dprintf(2, "%s killed by signal %d\n", argv[0], WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* In the child: tool.h -> tool_glue.h. */
static int make_glue(void)
{
    _cleanup_free_ char *hdr = NULL;
    struct cb_error err = {0};
    struct cb_buf glue;
    size_t len = 0;
    int rc;

    if (read_file("tool.h", CB_TOOL_HEADER_MAX, &hdr, &len) < 0) {
        dprintf(2, "cannot read tool.h\n");
        return -1;
    }
    cb_buf_init(&glue, 4096);
    rc = cb__native_glue(hdr, len, &glue, &err);
    if (rc == 0)
        rc = write_file(".", "tool_glue.h", glue.data, glue.len, &err);
    if (rc < 0)
        dprintf(2, "%s\n", err.msg);
    cb_buf_free(&glue);
    return rc;
}

/* The forked child: never returns. Output of every step goes to out_fd. */
static void compile_child(const char *dir, struct toolchain *t, unsigned timeout_ms, int out_fd)
{
    int null_fd = open("/dev/null", O_RDONLY);

    setpgid(0, 0);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0 ||
        chdir(dir) < 0)
        _exit(CHILD_SETUP);
    if (run_program(t->wasm2c, timeout_ms) < 0)
        _exit(CHILD_WASM2C);
    if (make_glue() < 0)
        _exit(CHILD_GLUE);
    if (run_program(t->cc, timeout_ms) < 0)
        _exit(CHILD_CC);
    _exit(CHILD_OK);
}

/* ---- the parent side ---- */

static int remaining_ms(uint64_t deadline_ns)
{
    uint64_t now = cb_now_mono_ns();

    if (now >= deadline_ns)
        return 0;
    return (int)((deadline_ns - now + 999999) / 1000000);
}

/* Reads the child's output into out (bounded) until EOF or the deadline.
 * Returns 0 at EOF, -ETIMEDOUT at the deadline. */
static int collect_output(int fd, uint64_t deadline_ns, struct cb_buf *out)
{
    char chunk[4096];

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int ms = remaining_ms(deadline_ns);
        ssize_t n;
        if (ms == 0)
            return -ETIMEDOUT;
        int ready = poll(&p, 1, ms);
        if (ready < 0 && errno != EINTR)
            return -errno;
        if (ready <= 0)
            continue; /* the deadline is checked at the top */
        n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        size_t room = out->max - out->len;
        cb_buf_append(out, chunk, (size_t)n < room ? (size_t)n : room);
    }
}

/* Waits for the child to exit until the deadline. Returns its status, or
 * -ETIMEDOUT. */
static int wait_child(pid_t pid, uint64_t deadline_ns, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (remaining_ms(deadline_ns) == 0)
            return -ETIMEDOUT;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

static void kill_group(pid_t pid)
{
    int status;

    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/* Maps the child's exit status to an error carrying the output head. */
static int child_error(int status, const struct cb_buf *out, struct cb_error *err)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char *step = code >= CHILD_SETUP && code <= CHILD_CC ? step_names[code] : "compiler";
    int shown = out->len < CB_COMPILE_OUTPUT_SHOWN ? (int)out->len : CB_COMPILE_OUTPUT_SHOWN;

    if (WIFSIGNALED(status))
        return cb_error_set(err, -ECHILD, "compiler killed by signal %d", WTERMSIG(status));
    return cb_error_set(err, -EINVAL, "%s failed%s%.*s", step, shown ? ": " : "", shown,
                        out->data ? out->data : "");
}

/* Runs wasm2c and cc in `dir`, leaving out.so there. */
static int run_toolchain(const char *dir, const struct cb_compile_opts *opts, struct cb_error *err)
{
    uint64_t deadline = cb_now_mono_ns() + (uint64_t)opts->timeout_ms * 1000000u;
    struct toolchain t;
    struct cb_buf out;
    int fds[2], status = 0, rc;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return cb_error_set(err, -errno, "pipe: %s", strerror(errno));
    toolchain_init(&t, opts);
    pid = fork();
    if (pid == 0)
        compile_child(dir, &t, opts->timeout_ms, fds[1]);
    if (pid < 0) {
        rc = cb_error_set(err, -errno, "fork: %s", strerror(errno));
        close(fds[1]);
        goto out_fd;
    }
    close(fds[1]);
    setpgid(pid, pid); /* also in the child: whichever runs first */
    cb_buf_init(&out, CB_COMPILE_OUTPUT_MAX);
    rc = collect_output(fds[0], deadline, &out);
    if (rc == 0)
        rc = wait_child(pid, deadline, &status);
    if (rc < 0) {
        kill_group(pid);
        rc = rc == -ETIMEDOUT
                 ? cb_error_set(err, rc, "compiling tool timed out after %u ms", opts->timeout_ms)
                 : cb_error_set(err, rc, "waiting for the compiler: %s", strerror(-rc));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
        rc = child_error(status, &out, err);
    }
    cb_buf_free(&out);
out_fd:
    close(fds[0]);
    toolchain_free(&t);
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

/* Builds the module in a fresh temp directory and renames the result to
 * so_path. */
static int build(const uint8_t *wasm, size_t len, const struct cb_compile_opts *opts,
                 const char *so_path, struct cb_error *err)
{
    _cleanup_free_ char *dir = cb_xasprintf("%s/tmp-XXXXXX", opts->cache_dir);
    _cleanup_free_ char *built = NULL;
    int rc;

    if (!mkdtemp(dir))
        return cb_error_set(err, -errno, "creating a build directory in %s: %s", opts->cache_dir,
                            strerror(errno));
    rc = populate_dir(dir, wasm, len, err);
    if (rc == 0)
        rc = run_toolchain(dir, opts, err);
    if (rc == 0) {
        built = cb_xasprintf("%s/out.so", dir);
        if (rename(built, so_path) < 0)
            rc = cb_error_set(err, -errno, "renaming into %s: %s", so_path, strerror(errno));
    }
    remove_dir(dir);
    return rc;
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
    cb_compile_cache_key(wasm, len, opts, key);
    path = cb_xasprintf("%s/%s.so", opts->cache_dir, key);
    if (access(path, R_OK) == 0) {
        *so_path = path;
        return 0;
    }
    rc = build(wasm, len, opts, path, err);
    if (rc < 0) {
        free(path);
        return rc;
    }
    *so_path = path;
    return 0;
}
