#include "core/home.h"
#include "core/util.h"

#include <stdlib.h>

static const char *user_home(void)
{
    const char *home = getenv("HOME");
    return home != NULL && home[0] != '\0' ? home : NULL;
}

char *cb_home_dir(void)
{
    const char *own = getenv(CB_HOME_ENV);
    if (own != NULL && own[0] != '\0')
        return cb_xstrdup(own);
    const char *home = user_home();
    return cb_xasprintf("%s/" CB_HOME_NAME, home ? home : "/root");
}

char *cb_home_path(const char *leaf)
{
    char *dir = cb_home_dir();
    char *p = cb_xasprintf("%s/%s", dir, leaf);
    free(dir);
    return p;
}

char *cb_home_expand(const char *path)
{
    const char *home = user_home();
    if (path[0] == '~' && path[1] == '/' && home != NULL)
        return cb_xasprintf("%s/%s", home, path + 2);
    return cb_xstrdup(path);
}
