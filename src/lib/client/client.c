#include "config/env.h"
#include "client/client.h"
#include "config/config.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/home.h"
#include "core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_FILE_MAX 4096

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct cb_buf *out = ud;
    return cb_buf_append(out, p, size * n) == 0 ? size * n : 0;
}

static struct curl_slist *headers_for(const struct cb_client *c, bool has_body)
{
    struct curl_slist *h = NULL;
    if (c->token != NULL) {
        char *auth = cb_xasprintf("Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    if (has_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    return curl_slist_append(h, "Expect:");
}

static int map_curl_error(CURLcode rc, const struct cb_client *c, struct cb_error *err)
{
    int code =
        (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) ? -ECONNREFUSED : -EIO;
    if (c->unix_socket)
        return cb_error_set(err, code, "cannot reach clawbox at unix socket %s: %s", c->unix_socket,
                            curl_easy_strerror(rc));
    return cb_error_set(err, code, "cannot reach clawbox at http://%s:%u: %s", c->host, c->port,
                        curl_easy_strerror(rc));
}

/* A handle set up for one request; *url and *hdrs are the caller's to
 * free after the transfer. */
static CURL *client_prepare(const struct cb_client *c, const char *method, const char *path,
                            const char *json_body, char **url, struct curl_slist **hdrs)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    *url = cb_xasprintf("http://%s:%u%s", c->unix_socket ? "localhost" : c->host, c->port, path);
    *hdrs = headers_for(c, json_body != NULL);
    curl_easy_setopt(h, CURLOPT_URL, *url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (c->unix_socket)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
    if (json_body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
    return h;
}

/* Runs the transfer and frees the handle. */
static int client_perform(CURL *h, const struct cb_client *c, char *url, struct curl_slist *hdrs,
                          long *status, struct cb_error *err)
{
    CURLcode rc = curl_easy_perform(h);
    int r = 0;
    if (rc != CURLE_OK)
        r = map_curl_error(rc, c, err);
    else
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    return r;
}

int cb_client_request(const struct cb_client *c, const char *method, const char *path,
                      const char *json_body, long *status, struct cb_buf *out, struct cb_error *err)
{
    char *url = NULL;
    struct curl_slist *hdrs = NULL;
    CURL *h = client_prepare(c, method, path, json_body, &url, &hdrs);
    if (h == NULL)
        return cb_error_set(err, -ENOMEM, "curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    return client_perform(h, c, url, hdrs, status, err);
}

struct upload {
    int fd;
    uint64_t sent;
    int err; /* errno of a failed read */
};

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    ssize_t k = cb_read_retry(u->fd, p, size * n);
    if (k < 0) {
        u->err = (int)-k;
        return CURL_READFUNC_ABORT;
    }
    u->sent += (uint64_t)k;
    return (size_t)k;
}

int cb_client_upload(const struct cb_client *c, const char *method, const char *path, int fd,
                     int64_t size, uint64_t *sent, long *status, struct cb_buf *out,
                     struct cb_error *err)
{
    char *url = NULL;
    struct curl_slist *hdrs = NULL;
    CURL *h = client_prepare(c, method, path, NULL, &url, &hdrs);
    if (h == NULL)
        return cb_error_set(err, -ENOMEM, "curl_easy_init failed");
    struct upload u = {.fd = fd};
    hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    int r = client_perform(h, c, url, hdrs, status, err);
    *sent = u.sent;
    if (u.err != 0)
        r = cb_error_set(err, -u.err, "reading the upload: %s", strerror(u.err));
    return r;
}

struct stream_ctx {
    CURL *h;
    cb_client_sink_fn sink;
    void *ud;
    struct cb_buf *out;
};

static size_t on_stream_data(char *p, size_t size, size_t n, void *ud)
{
    struct stream_ctx *s = ud;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        return on_data(p, size, n, s->out);
    return s->sink(s->ud, p, size * n) == 0 ? size * n : 0;
}

int cb_client_stream_request(const struct cb_client *c, const char *method, const char *path,
                             const char *json_body, const char *accept, cb_client_sink_fn sink,
                             void *ud, long *status, struct cb_buf *out, struct cb_error *err)
{
    char *url = NULL;
    struct curl_slist *hdrs = NULL;
    CURL *h = client_prepare(c, method, path, json_body, &url, &hdrs);
    if (h == NULL)
        return cb_error_set(err, -ENOMEM, "curl_easy_init failed");
    if (accept != NULL) {
        char *line = cb_xasprintf("Accept: %s", accept);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    struct stream_ctx s = {h, sink, ud, out};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    return client_perform(h, c, url, hdrs, status, err);
}

static char *trimmed(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    return cb_xstrndup(s, n);
}

static char *read_token_file(struct cb_error *err)
{
    char *path = cb_home_path(CB_HOME_TOKEN);
    struct cb_file f;
    int r = cb_file_load(&f, AT_FDCWD, path, TOKEN_FILE_MAX, CB_FILE_WIPE, NULL);
    free(path);
    char *t = r == 0 && f.buf.len > 0 ? trimmed(f.buf.data, f.buf.len) : NULL;
    cb_file_close(&f);
    if (t == NULL)
        cb_error_set(err, -ENOENT,
                     "no auth token: pass --token, set CLAWBOX_AUTH_TOKEN, or run "
                     "`clawbox init`");
    return t;
}

char *cb_client_resolve_token(const char *flag, struct cb_error *err)
{
    if (flag != NULL && flag[0] != '\0')
        return cb_xstrdup(flag);
    const char *env = cb_config_env(CB_ENV_AUTH_TOKEN);
    if (env != NULL)
        return cb_xstrdup(env);
    return read_token_file(err);
}
