/* GET /images: the stored images as the CLI's `image list --json` prints
 * them. The store is read on each call (a directory of small files), so
 * an import or remove by the CLI shows at once. */
#include "api/images.h"
#include "api/app.h"
#include "containers/images.h"

#include <stdlib.h>

void cb__api_images_list(struct cb_http_request *req, struct cb_http_response *res)
{
    const struct cb_app *app = req->app;
    char *store = cb_image_store_path(app->cfg);
    json_t *list = NULL;
    struct cb_error err = {0};
    if (cb_image_list(store, &list, &err) < 0)
        cb_http_respond_error(res, 500, "internal_error", "%s", err.msg);
    else
        cb_http_respond_json(res, 200, list);
    free(store);
}
