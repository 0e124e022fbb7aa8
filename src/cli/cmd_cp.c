/* clawbox cp SRC DST: a file into or out of a running container, over
 * /containers/{id}/files. One side is CONTAINER_ID:/PATH, the other a
 * local path or "-" (stdin or stdout). A download is written beside its
 * destination and renamed over it once whole, so a failed copy leaves no
 * partial file. */
#include "cli.h"
#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A files URL: the route, the id and the escaped path (4096 bytes, at
 * most three each escaped). */
#define URL_MAX 16384

static const char cp_usage[] =
    "Usage: clawbox cp [--host H] [--port P] [--socket PATH] [--token T] SRC DST\n\n"
    "Copies one file into or out of a running container. One of SRC and DST is\n"
    "CONTAINER_ID:/PATH (an absolute path inside the container), the other a local\n"
    "path, or - for stdin or stdout:\n\n"
    "  clawbox cp notes.txt clawbox-<uuid>:/tmp/notes.txt\n"
    "  clawbox cp clawbox-<uuid>:/tmp/out.csv .\n\n"
    "A local directory as DST takes the file's own name; so does a container path\n"
    "ending in /. Only the container's /tmp and an agent's writable workspace take\n"
    "writes; text read out is redacted as every clawbox output is.\n\n" CLI_CONN_HELP
    "  --token T       auth token (default $CLAWBOX_AUTH_TOKEN, then ~/.clawbox/token)\n";

struct remote {
    char id[CB_NAME_MAX + 1];
    const char *path;
};

/* "ID:/PATH" with a valid id; a local path never parses as one unless it
 * looks exactly like that (write ./ID:/x for such a local file). */
static bool parse_remote(const char *s, struct remote *r)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon[1] != '/' || (size_t)(colon - s) > CB_NAME_MAX)
        return false;
    memcpy(r->id, s, (size_t)(colon - s));
    r->id[colon - s] = '\0';
    r->path = colon + 1;
    return cb_name_valid(r->id);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "/containers/ID/files?path=P" with P escaped. */
static char *files_url(const struct remote *r, const char *path)
{
    struct cb_buf b;
    cb_buf_init(&b, URL_MAX);
    cb_buf_printf(&b, "/containers/%s/files?path=", r->id);
    if (cb_buf_put_query(&b, path) < 0) {
        cb_buf_free(&b);
        return NULL;
    }
    return cb_buf_steal(&b, NULL);
}

/* The local file sent as it is read: its size when it is a regular file,
 * chunked (-1) for a pipe. */
static int upload(struct cli_conn *c, const char *src, const struct remote *r)
{
    bool from_stdin = strcmp(src, "-") == 0;
    int fd = from_stdin ? 0 : open(src, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = cli_fail("%s: %s", src, strerror(errno));
        if (fd > 0)
            close(fd);
        return rc;
    }
    /* A directory target takes the source's name. */
    char *path = r->path[strlen(r->path) - 1] == '/' && !from_stdin
                     ? cb_xasprintf("%s%s", r->path, base_name(src))
                     : cb_xstrdup(r->path);
    char *url = files_url(r, path);
    struct cb_buf out;
    cb_buf_init(&out, CB_CLIENT_MAX_RESPONSE);
    uint64_t sent = 0;
    int rc = url ? cli_upload(c, "PUT", url, fd, S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1,
                              &sent, &out)
                 : cli_fail("%s: path too long", path);
    if (rc == 0)
        fprintf(stderr, "copied %" PRIu64 " bytes to %s:%s\n", sent, r->id, path);
    if (fd != 0)
        close(fd);
    cb_buf_free(&out);
    free(url);
    free(path);
    return rc;
}

struct sink {
    int fd;
    const char *what;
    uint64_t bytes;
    int err;
};

static int write_out(void *ud, const char *data, size_t n)
{
    struct sink *s = ud;
    int rc = cb_write_all(s->fd, data, n);
    if (rc < 0) {
        s->err = -rc;
        return -1;
    }
    s->bytes += n;
    return 0;
}

/* The local file a download goes to: dst, or dst/NAME for a directory. */
static char *local_target(const char *dst, const char *remote_path)
{
    struct stat st;
    if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
        return cb_xasprintf("%s/%s", dst, base_name(remote_path));
    return cb_xstrdup(dst);
}

static int download(struct cli_conn *c, const struct remote *r, const char *dst)
{
    char *url = files_url(r, r->path);
    if (url == NULL)
        return cli_fail("%s: path too long", r->path);
    bool to_stdout = strcmp(dst, "-") == 0;
    char *target = to_stdout ? NULL : local_target(dst, r->path);
    char *tmp = to_stdout ? NULL : cb_xasprintf("%s.clawbox-cp-XXXXXX", target);
    struct sink s = {.fd = to_stdout ? 1 : mkostemp(tmp, O_CLOEXEC), .what = target};
    int rc = s.fd < 0 ? cli_fail("%s: %s", tmp, strerror(errno)) : 0;
    if (rc == 0)
        rc = cli_stream(c, url, write_out, &s);
    if (rc == 0 && s.err != 0)
        rc = cli_fail("%s: %s", to_stdout ? "stdout" : target, strerror(s.err));
    if (!to_stdout && s.fd >= 0) {
        if (rc == 0 && (fchmod(s.fd, 0644) < 0 || fsync(s.fd) < 0 || close(s.fd) < 0))
            rc = cli_fail("%s: %s", tmp, strerror(errno));
        else if (rc != 0)
            close(s.fd);
        if (rc == 0 && rename(tmp, target) < 0)
            rc = cli_fail("%s: %s", target, strerror(errno));
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0 && !to_stdout)
        fprintf(stderr, "copied %" PRIu64 " bytes to %s\n", s.bytes, target);
    free(tmp);
    free(target);
    free(url);
    return rc;
}

int cmd_cp(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_CONN_OPTIONS, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct cli_conn conn;
    cli_conn_init(&conn);
    optind = 1;
    int o, rc = -1;
    while (rc < 0 && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_conn_option(&conn, o, optarg))
            continue;
        if (o == 'h') {
            fputs(cp_usage, stdout);
            rc = 0;
        } else {
            fputs(cp_usage, stderr);
            rc = 2;
        }
    }
    struct remote from, to;
    bool src_remote = rc < 0 && argc - optind == 2 && parse_remote(argv[optind], &from);
    bool dst_remote = rc < 0 && argc - optind == 2 && parse_remote(argv[optind + 1], &to);
    if (rc < 0 && argc - optind != 2) {
        fputs(cp_usage, stderr);
        rc = 2;
    } else if (rc < 0 && src_remote == dst_remote) {
        rc = cli_fail("exactly one of SRC and DST must be CONTAINER_ID:/PATH (clawbox list "
                      "containers shows the ids)");
    }
    if (rc < 0)
        rc = cli_conn_token(&conn) < 0 ? 1 : -1;
    if (rc < 0)
        rc = src_remote ? download(&conn, &from, argv[optind + 1])
                        : upload(&conn, argv[optind], &to);
    cli_conn_free(&conn);
    return rc;
}
