/* Finding tool projects for `clawbox build`: directories holding
 * manifest.json and main.c or main.cpp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "tooling/internal.h"
#include "tooling/tooling.h"

struct scan {
    struct cb_tooling_projects *out;
    size_t entries; /* directory entries looked at so far */
};

static bool is_file(const char *dir, const char *name)
{
    struct stat st;
    _cleanup_free_ char *path = cb__tooling_join(dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Fills *p if dir is a tool project. */
static bool detect(const char *dir, const char *name, struct cb_tooling_project *p)
{
    if (!is_file(dir, "manifest.json"))
        return false;
    bool c = is_file(dir, "main.c");
    if (!c && !is_file(dir, "main.cpp"))
        return false;
    p->name = cb_xstrdup(name);
    p->dir = cb_xstrdup(dir);
    p->source = cb__tooling_join(dir, c ? "main.c" : "main.cpp");
    p->cpp = !c;
    return true;
}

static void project_free(struct cb_tooling_project *p)
{
    free(p->name);
    free(p->dir);
    free(p->source);
}

static int push_project(struct scan *s, struct cb_tooling_project *p, struct cb_error *err)
{
    struct cb_tooling_projects *o = s->out;
    if (o->len >= CB_TOOLING_MAX_PROJECTS) {
        project_free(p);
        return cb_error_set(err, -E2BIG, "more than %u tool projects", CB_TOOLING_MAX_PROJECTS);
    }
    o->items = cb_xrealloc(o->items, (o->len + 1) * sizeof(*o->items));
    o->items[o->len++] = *p;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether entry e of the directory open as dfd is a directory, without
 * following symbolic links. */
static bool entry_is_dir(DIR *d, const struct dirent *e)
{
    struct stat st;
    if (e->d_type != DT_UNKNOWN)
        return e->d_type == DT_DIR;
    return fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* The sorted names of dir's visible subdirectories (caller frees). An
 * unreadable directory has none. */
static int subdirs(struct scan *s, const char *dir, char ***names, size_t *n, struct cb_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int r = 0;
    *names = NULL;
    *n = 0;
    while (d != NULL && r == 0 && (e = readdir(d)) != NULL) {
        if (++s->entries > CB_TOOLING_MAX_ENTRIES)
            r = cb_error_set(err, -E2BIG, "more than %u directory entries below the source",
                             CB_TOOLING_MAX_ENTRIES);
        else if (e->d_name[0] != '.' && entry_is_dir(d, e)) {
            *names = cb_xrealloc(*names, (*n + 1) * sizeof(**names));
            (*names)[(*n)++] = cb_xstrdup(e->d_name);
        }
    }
    if (d != NULL)
        closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof(**names), cmp_str);
    return r;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int walk(struct scan *s, const char *dir, const char *name, unsigned depth,
                struct cb_error *err)
{
    struct cb_tooling_project p;
    if (detect(dir, name, &p))
        return push_project(s, &p, err);
    if (depth >= CB_TOOLING_MAX_DEPTH)
        return 0;
    char **names;
    size_t n;
    int r = subdirs(s, dir, &names, &n, err);
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *child = cb__tooling_join(dir, names[i]);
        r = walk(s, child, names[i], depth + 1, err);
    }
    free_names(names, n);
    return r;
}

static int cmp_project(const void *a, const void *b)
{
    const struct cb_tooling_project *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->dir, y->dir);
}

static int check_duplicates(const struct cb_tooling_projects *o, struct cb_error *err)
{
    for (size_t i = 1; i < o->len; i++)
        if (strcmp(o->items[i - 1].name, o->items[i].name) == 0)
            return cb_error_set(err, -EEXIST, "two tool projects are named '%s': %s and %s",
                                o->items[i].name, o->items[i - 1].dir, o->items[i].dir);
    return 0;
}

/* Keeps only the project named `only`. */
static int filter_projects(struct cb_tooling_projects *o, const char *only, const char *source,
                           struct cb_error *err)
{
    size_t keep = o->len;
    for (size_t i = 0; i < o->len; i++)
        if (strcmp(o->items[i].name, only) == 0)
            keep = i;
        else
            project_free(&o->items[i]);
    if (keep == o->len) {
        o->len = 0;
        return cb_error_set(err, -ENOENT, "Tool '%s' not found in %s", only, source);
    }
    o->items[0] = o->items[keep];
    o->len = 1;
    return 0;
}

/* The name of the source directory itself, for a source that is a project. */
static char *root_name(const char *source)
{
    char real[PATH_MAX];
    if (realpath(source, real) == NULL)
        return cb_xstrdup(source);
    return cb_xstrdup(basename(real));
}

int cb_tooling_find(const char *source, const char *only, struct cb_tooling_projects *out,
                    struct cb_error *err)
{
    struct stat st;
    struct scan s = {out, 0};
    out->items = NULL;
    out->len = 0;
    if (stat(source, &st) < 0)
        return cb_error_set(err, -errno, "Source directory not found: %s (%s)", source,
                            strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "Source is not a directory: %s", source);
    _cleanup_free_ char *name = root_name(source);
    int r = walk(&s, source, name, 0, err);
    if (r < 0)
        return r;
    if (out->len > 1)
        qsort(out->items, out->len, sizeof(*out->items), cmp_project);
    r = check_duplicates(out, err);
    if (r == 0 && only != NULL)
        r = filter_projects(out, only, source, err);
    return r;
}

void cb_tooling_projects_free(struct cb_tooling_projects *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->len; i++)
        project_free(&p->items[i]);
    free(p->items);
    p->items = NULL;
    p->len = 0;
}
