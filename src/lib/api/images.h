/* GET /images: the local image store (containers/images.h), for clients
 * that want to know what a spawn can use. */
#ifndef CB_API_IMAGES_H
#define CB_API_IMAGES_H

#include "http/http.h"

void cb__api_images_list(struct cb_http_request *req, struct cb_http_response *res);

#endif
