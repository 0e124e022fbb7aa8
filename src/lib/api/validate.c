#include "api/validate.h"

#include <inttypes.h>
#include <stdio.h>

bool cb_api_invalid_field(struct cb_http_response *res, const char *field, const char *msg)
{
    json_t *details = json_pack("{s:s}", "field", field);
    cb_http_respond_error_details(res, 422, "invalid_request", details, msg);
    return false;
}

bool cb_api_body_object(const struct cb_http_request *req, struct cb_http_response *res)
{
    if (json_is_object(req->json))
        return true;
    return cb_api_invalid_field(res, "", "request body must be a JSON object");
}

bool cb_api_get_uint(const struct cb_http_request *req, struct cb_http_response *res,
                     const char *field, bool required, uint64_t max, uint64_t *out)
{
    char msg[256];
    json_t *v = json_object_get(req->json, field);
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return true;
        snprintf(msg, sizeof(msg), "missing required field '%s'", field);
        return cb_api_invalid_field(res, field, msg);
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        snprintf(msg, sizeof(msg), "field '%s' must be an integer from 0 to %" PRIu64, field, max);
        return cb_api_invalid_field(res, field, msg);
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

bool cb_api_get_string(const struct cb_http_request *req, struct cb_http_response *res,
                       const char *field, bool required, const char **out)
{
    char msg[256];
    json_t *v = json_object_get(req->json, field);
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return true;
        snprintf(msg, sizeof(msg), "missing required field '%s'", field);
        return cb_api_invalid_field(res, field, msg);
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(msg, sizeof(msg), "field '%s' must be a non-empty string", field);
        return cb_api_invalid_field(res, field, msg);
    }
    *out = json_string_value(v);
    return true;
}
