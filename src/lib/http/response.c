#include "http/http.h"
#include "core/json.h"
#include "core/utf8.h"
#include "core/util.h"
#include "http/internal.h"
#include "http/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cb_http_param(const struct cb_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nparams; i++)
        if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
            return req->params[i].value;
    return NULL;
}

const char *cb__http_header(const struct cb_http_request *req, const char *name)
{
    const struct cb_http_head *h = req->head;
    for (size_t i = 0; h != NULL && i < h->nfields; i++)
        if (cb__http_name_is(req->raw + h->fields[i].name.off, h->fields[i].name.len, name))
            return req->raw + h->fields[i].value.off;
    return NULL;
}

/* Decodes one query value (%XX and '+') into out; false when it does not
 * fit, or holds a NUL or a bad escape. */
static bool decode_query_value(const char *v, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? cb_hex_digit((unsigned char)v[i + 1]) : -1;
            int lo = i + 2 < len ? cb_hex_digit((unsigned char)v[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || n + 1 >= size)
            return false;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return true;
}

/* Finds the raw value of query parameter `name`; false when absent. */
static bool find_query(const struct cb_http_request *req, const char *name, const char **value,
                       size_t *len)
{
    const struct cb_http_head *h = req->head;
    if (h == NULL || !h->has_query)
        return false;
    const char *q = req->raw + h->query.off, *end = q + h->query.len;
    size_t n = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *key_end = eq ? eq : stop;
        if ((size_t)(key_end - q) == n && memcmp(q, name, n) == 0) {
            *value = eq ? eq + 1 : stop;
            *len = (size_t)(stop - *value);
            return true;
        }
        q = stop + 1;
    }
    return false;
}

int cb_http_query(const struct cb_http_request *req, const char *name, char *out, size_t size)
{
    const char *v;
    size_t len;
    if (!find_query(req, name, &v, &len))
        return 0;
    return size > 0 && decode_query_value(v, len, out, size) ? 1 : -1;
}

static void set_body(struct cb_http_response *res, char *body, size_t len)
{
    free(res->body);
    res->body = body;
    res->body_len = len;
}

static void respond_text(struct cb_http_response *res, unsigned status, const char *content_type,
                         const char *text, size_t len)
{
    res->status = status;
    res->content_type = content_type;
    set_body(res, cb_xstrndup(text, len), len);
}

void cb_http_respond_stream(struct cb_http_response *res, const char *content_type,
                            const struct cb_http_stream *stream)
{
    res->status = 200;
    res->content_type = content_type;
    set_body(res, NULL, 0);
    res->stream = *stream;
}

void cb_http_respond_json(struct cb_http_response *res, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text == NULL) {
        static const char fallback[] = "{\"error\":\"response serialisation failed\","
                                       "\"code\":\"internal_error\",\"details\":null}";
        respond_text(res, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    res->status = status;
    res->content_type = "application/json";
    set_body(res, text, strlen(text));
}

void cb_http_respond_error_details(struct cb_http_response *res, unsigned status, const char *code,
                                   json_t *details, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", cb_json_text(msg, strlen(msg)));
    json_object_set_new(o, "code", json_string(code));
    json_object_set_new(o, "details", details ? details : json_null());
    cb_http_respond_json(res, status, o);
}

void cb_http_respond_error(struct cb_http_response *res, unsigned status, const char *code,
                           const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    cb_utf8_vformat(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cb_http_respond_error_details(res, status, code, NULL, msg);
}

const char *cb_http_reason(unsigned status)
{
    static const struct {
        unsigned status;
        const char *text;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < CB_ARRAY_LEN(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

bool cb__response_has_body(unsigned status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Appends to a fixed buffer; what does not fit is dropped (the fields
 * here are bounded and come from code, so nothing is ever dropped). */
static void put_fmt(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put_fmt(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

void cb__response_head(struct cb__req *r, const char *date, bool close, bool keep_alive_10)
{
    const struct cb_http_response *res = &r->res;
    char *o = r->out;
    size_t cap = sizeof(r->out);
    size_t n = 0;
    put_fmt(o, cap, &n, "HTTP/1.1 %u %s\r\nDate: %s\r\nX-Request-Id: %s\r\n", res->status,
            cb_http_reason(res->status), date, r->request_id);
    /* A streamed body on HTTP/1.0 has no framing: the connection's end
     * delimits it. */
    if (r->streamed && r->head.minor != 0)
        put_fmt(o, cap, &n, "Transfer-Encoding: chunked\r\n");
    else if (cb__response_has_body(res->status) && !r->streamed)
        put_fmt(o, cap, &n, "Content-Length: %zu\r\n", res->body_len);
    if (res->content_type)
        put_fmt(o, cap, &n, "Content-Type: %s\r\n", res->content_type);
    if (res->allow[0] && res->status == 405)
        put_fmt(o, cap, &n, "Allow: %s\r\n", res->allow);
    if (res->status == 401)
        put_fmt(o, cap, &n, "WWW-Authenticate: Bearer\r\n");
    if (res->retry_after)
        put_fmt(o, cap, &n, "Retry-After: %u\r\n", res->retry_after);
    if (res->extra_header[0])
        put_fmt(o, cap, &n, "%s\r\n", res->extra_header);
    if (close)
        put_fmt(o, cap, &n, "Connection: close\r\n");
    else if (keep_alive_10)
        put_fmt(o, cap, &n, "Connection: keep-alive\r\n");
    put_fmt(o, cap, &n, "\r\n");
    r->out_len = n;
}
