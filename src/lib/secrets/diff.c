/* Comparing two loaded stores by name, for the audit line a server writes
 * when it reloads the store. Values are compared in place, never copied. */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

struct ref {
    const struct cb__cred *c;
    size_t pos;
};

static int cmp_ref(const void *x, const void *y)
{
    const struct ref *a = x, *b = y;
    int c = strcmp(a->c->f[CB__F_NAME], b->c->f[CB__F_NAME]);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* The entries of s sorted by name, keeping only the first entry of each
 * name (the one lookups find when a foreign file repeats a name). */
static struct ref *sorted_names(const struct cb_secret_store *s, size_t *n)
{
    size_t total = s ? s->list.n : 0, k = 0;
    struct ref *r = cb_xcalloc(total ? total : 1, sizeof(*r));
    for (size_t i = 0; i < total; i++)
        r[i] = (struct ref){&s->list.v[i], i};
    if (total > 0)
        qsort(r, total, sizeof(*r), cmp_ref);
    for (size_t i = 0; i < total; i++)
        if (k == 0 || strcmp(r[k - 1].c->f[CB__F_NAME], r[i].c->f[CB__F_NAME]) != 0)
            r[k++] = r[i];
    *n = k;
    return r;
}

static bool same_entry(const struct cb__cred *a, const struct cb__cred *b)
{
    if (a->allow_http != b->allow_http || a->port != b->port)
        return false;
    for (int f = 0; f < CB__F_COUNT; f++)
        if (a->len[f] != b->len[f] || memcmp(a->f[f], b->f[f], a->len[f]) != 0)
            return false;
    return true;
}

static void push(const char ***list, size_t *n, size_t cap, const char *name)
{
    if (*list == NULL)
        *list = cb_xcalloc(cap ? cap : 1, sizeof(**list));
    (*list)[(*n)++] = name;
}

void cb_secret_store_diff(const struct cb_secret_store *from, const struct cb_secret_store *to,
                          struct cb_secret_diff *out)
{
    size_t na, nb, i = 0, j = 0;
    struct ref *a = sorted_names(from, &na), *b = sorted_names(to, &nb);
    memset(out, 0, sizeof(*out));
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].c->f[CB__F_NAME], b[j].c->f[CB__F_NAME]);
        if (c < 0) {
            push(&out->removed, &out->n_removed, na, a[i++].c->f[CB__F_NAME]);
        } else if (c > 0) {
            push(&out->added, &out->n_added, nb, b[j++].c->f[CB__F_NAME]);
        } else {
            if (!same_entry(a[i].c, b[j].c))
                push(&out->changed, &out->n_changed, nb, b[j].c->f[CB__F_NAME]);
            i++;
            j++;
        }
    }
    free(a);
    free(b);
}

void cb_secret_diff_free(struct cb_secret_diff *d)
{
    free(d->added);
    free(d->removed);
    free(d->changed);
    memset(d, 0, sizeof(*d));
}
