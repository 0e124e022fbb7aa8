/* Shape checks of JSON request bodies. Each returns false after filling
 * `res` with 422 invalid_request naming the offending field. */
#ifndef CB_API_VALIDATE_H
#define CB_API_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

bool cb__api_body_object(const struct cb_http_request *req, struct cb_http_response *res);
/* Reads an optional (or required) unsigned integer field no larger than max. */
bool cb__api_get_uint(const struct cb_http_request *req, struct cb_http_response *res,
                      const char *field, bool required, uint64_t max, uint64_t *out);

/* Reads an optional (or required) non-empty string field. *out points
 * into the request's JSON. */
bool cb__api_get_string(const struct cb_http_request *req, struct cb_http_response *res,
                        const char *field, bool required, const char **out);
/* Fills res with 422 invalid_request naming `field`; returns false. */
bool cb__api_invalid_field(struct cb_http_response *res, const char *field, const char *msg);

#endif
