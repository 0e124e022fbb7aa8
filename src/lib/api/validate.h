/* Shape checks of JSON request bodies. Each returns false after filling
 * `res` with 422 invalid_request naming the offending field. */
#ifndef CB_API_VALIDATE_H
#define CB_API_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

bool cb_api_body_object(const struct cb_http_request *req, struct cb_http_response *res);
/* Reads an optional (or required) unsigned integer field no larger than max. */
bool cb_api_get_uint(const struct cb_http_request *req, struct cb_http_response *res,
                     const char *field, bool required, uint64_t max, uint64_t *out);

#endif
