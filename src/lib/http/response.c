#include "http/http.h"
#include "core/json.h"
#include "core/utf8.h"
#include "core/util.h"

#include <microhttpd.h>
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

const char *cb_http_header(const struct cb_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *cb_http_query(const struct cb_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void set_body(struct cb_http_response *res, char *body, size_t len)
{
    free(res->body);
    res->body = body;
    res->body_len = len;
}

void cb_http_respond_json(struct cb_http_response *res, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text == NULL) {
        static const char fallback[] = "{\"error\":\"response serialisation failed\","
                                       "\"code\":\"internal_error\",\"details\":null}";
        cb_http_respond_text(res, 500, "application/json", fallback, sizeof(fallback) - 1);
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

void cb_http_respond_text(struct cb_http_response *res, unsigned status, const char *content_type,
                          const char *text, size_t len)
{
    res->status = status;
    res->content_type = content_type;
    set_body(res, cb_xstrndup(text, len), len);
}
