/* The audit line of a credential store change, one shape for every writer
 * (clawbox creds, the server's reload). */
#include "secrets/secrets.h"

#include "audit/audit.h"

int cb_secret_change_audit(struct cb_audit *log, const struct cb_secret_change *c,
                           struct cb_error *err)
{
    const struct cb_secret_diff *d = &c->names;
    if (d->n_added + d->n_removed + d->n_changed == 0)
        return 0;
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_CREDENTIAL,
        .method = "CREDENTIAL",
        .decision = c->decision,
        .reason = c->reason,
        .domain = c->domain,
        .added = d->added,
        .n_added = d->n_added,
        .removed = d->removed,
        .n_removed = d->n_removed,
        .changed = d->changed,
        .n_changed = d->n_changed,
    };
    return cb_audit_append(log, &rec, err);
}
