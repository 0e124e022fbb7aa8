#include "api/validate.h"

#include <inttypes.h>
#include <stdio.h>

bool cb__api_invalid_field(struct cb_http_response *res, const char *field, const char *msg)
{
    json_t *details = json_pack("{s:s}", "field", field);
    cb_http_respond_error_details(res, 422, "invalid_request", details, msg);
    return false;
}

bool cb__api_body_object(const struct cb_http_request *req, struct cb_http_response *res)
{
    if (json_is_object(req->json))
        return true;
    return cb__api_invalid_field(res, "", "request body must be a JSON object");
}

/* Looks a field up. Returns it, or NULL when it is absent or null; then
 * *ok says whether that is acceptable (it is not when required, and res
 * holds the 422). */
static json_t *field_value(const struct cb_http_request *req, struct cb_http_response *res,
                           const char *field, bool required, bool *ok)
{
    char msg[256];
    json_t *v = json_object_get(req->json, field);
    *ok = true;
    if (v != NULL && !json_is_null(v))
        return v;
    if (required) {
        snprintf(msg, sizeof(msg), "missing required field '%s'", field);
        *ok = cb__api_invalid_field(res, field, msg);
    }
    return NULL;
}

bool cb__api_get_uint(const struct cb_http_request *req, struct cb_http_response *res,
                      const char *field, bool required, uint64_t max, uint64_t *out)
{
    char msg[256];
    bool ok;
    json_t *v = field_value(req, res, field, required, &ok);
    if (v == NULL)
        return ok;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        snprintf(msg, sizeof(msg), "field '%s' must be an integer from 0 to %" PRIu64, field, max);
        return cb__api_invalid_field(res, field, msg);
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

bool cb__api_get_string(const struct cb_http_request *req, struct cb_http_response *res,
                        const char *field, bool required, const char **out)
{
    char msg[256];
    bool ok;
    json_t *v = field_value(req, res, field, required, &ok);
    if (v == NULL)
        return ok;
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(msg, sizeof(msg), "field '%s' must be a non-empty string", field);
        return cb__api_invalid_field(res, field, msg);
    }
    *out = json_string_value(v);
    return true;
}
