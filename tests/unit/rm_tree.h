/* Test helper: removes a temporary directory and everything in it (rm -rf,
 * without following symbolic links). Header-only, for the unit tests. */
#ifndef CB_TESTS_RM_TREE_H
#define CB_TESTS_RM_TREE_H

#include <ftw.h>
#include <stdio.h>

static inline int rm_tree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_tree(const char *dir)
{
    nftw(dir, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
