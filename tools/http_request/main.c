/* http_request: performs one HTTP request through clawbox's proxy.
 * Params: {"url": string, "method"?: string (GET), "headers"?: {name:
 * string}, "body"?: string}. Output: the host's result {"status",
 * "headers", "body"}, or {"error": "<message>"} (e.g. when the manifest's
 * allowlist does not cover the URL). */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

/* Fills req from params. Returns NULL, or a message naming the bad field. */
static const char *read_request(const struct cb_json *params, struct cb_http_request *req)
{
    const struct cb_json *method = cb_json_get(params, "method");
    const struct cb_json *headers = cb_json_get(params, "headers");
    const struct cb_json *body = cb_json_get(params, "body");

    if (!cb_json_is(params, CB_JSON_OBJECT))
        return "params must be an object";
    if (!(req->url = cb_json_str(cb_json_get(params, "url"))))
        return "'url' (string) is required";
    if (method && !cb_json_is(method, CB_JSON_NULL) && !(req->method = cb_json_str(method)))
        return "'method' must be a string";
    if (headers && !cb_json_is(headers, CB_JSON_NULL)) {
        if (!cb_json_is(headers, CB_JSON_OBJECT))
            return "'headers' must be an object of strings";
        for (size_t i = 0; i < headers->count; i++)
            if (!cb_json_is(headers->items[i].value, CB_JSON_STRING))
                return "'headers' values must be strings";
        req->headers = headers;
    }
    if (body && !cb_json_is(body, CB_JSON_NULL)) {
        if (!(req->body = cb_json_str(body)))
            return "'body' must be a string";
        req->body_len = body->text_len;
    }
    return NULL;
}

int main(void)
{
    struct cb_tool_error err;
    struct cb_http_request req = {0};
    struct cb_http_response resp;
    struct cb_json *params;
    const char *bad;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    if ((bad = read_request(params, &req)) != NULL) {
        cb_output_error("invalid input: %s", bad);
    } else {
        clawbox_logf("info", "HTTP %s %s", req.method ? req.method : "GET", req.url);
        if (cb_http_request(&req, &resp, &err) == 0)
            cb_output(resp.value);
        else
            cb_output_error("%s", err.msg);
        cb_http_response_free(&resp);
    }
    cb_json_free(params);
    return 0;
}
