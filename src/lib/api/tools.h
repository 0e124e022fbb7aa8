/* The tool routes: GET /tools, GET /tools/{name}, DELETE
 * /tools/{name}/registration, POST /tools/register (a JSON route) and POST
 * /tools/reload. They use the registry in
 * ((struct cb_app *)req->app)->registry. */
#ifndef CB_API_TOOLS_H
#define CB_API_TOOLS_H

#include "http/http.h"

struct cb_registry;

void cb__api_tools_list(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_tools_get(struct cb_http_request *req, struct cb_http_response *res);
/* 404 tool_not_found for name, saying when it is still being compiled. */
void cb__api_tool_not_found(struct cb_http_response *res, struct cb_registry *r, const char *name);
void cb__api_tools_unregister(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_tools_register(struct cb_http_request *req, struct cb_http_response *res);
void cb__api_tools_reload(struct cb_http_request *req, struct cb_http_response *res);

#endif
