/* The state database: one SQLite file (server.data_dir/state.db) that holds
 * the JSON documents of the tool registry, the agents and the containers.
 *
 * The file is opened in WAL mode with synchronous=FULL, so a write that has
 * returned 0 survives a process crash and a power loss. The schema is
 * versioned with PRAGMA user_version and migrated forward at open; a
 * database from a newer clawbox, a corrupt file and a file locked by another
 * process are refused at open with a message that says which.
 *
 * One handle may be shared by many threads: every call is serialized on the
 * connection's own mutex. */
#ifndef CB_STATE_STATE_H
#define CB_STATE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* How long a statement waits for another process's lock before it fails. */
#define CB_STATE_BUSY_TIMEOUT_MS 5000
/* Limits on what the document API accepts, in bytes (excluding the NUL). */
#define CB_STATE_KEY_MAX 256
#define CB_STATE_DOC_MAX (1024 * 1024)

/* Document tables; no other name is accepted by the document API. */
#define CB_STATE_TOOLS      "tools"
#define CB_STATE_AGENTS     "agents"
#define CB_STATE_CONTAINERS "containers"

struct cb_state;

struct cb_state_options {
    /* Milliseconds to wait for a lock held elsewhere before failing with
     * -EBUSY; 0 fails at once. */
    int busy_timeout_ms;
    /* synchronous=NORMAL instead of FULL: a commit survives a crash of the
     * process but not a power loss, and costs no fsync. For records that
     * may lag behind but must never run ahead (the audit anchor). */
    bool relaxed_sync;
    /* Opens an existing database for reading: nothing is created or
     * migrated, and a missing file is -ENOENT. */
    bool read_only;
};

/* Opens (creating it 0600 if absent) the database at path, whose directory
 * must already exist, checks it, and migrates it to the current schema.
 * On success *out owns the handle (free with cb_state_close). Errors:
 * -ENOENT/-ENOTDIR (directory missing), -EBADMSG (corrupt or not SQLite),
 * -EBUSY (locked by another process), -ENOTSUP (schema newer than this
 * binary), other negative errno values for I/O and permission failures. */
int cb_state_open(const char *path, struct cb_state **out, struct cb_error *err);

/* As cb_state_open, with options; opts may be NULL for the defaults. */
int cb_state_open_opts(const char *path, const struct cb_state_options *opts, struct cb_state **out,
                       struct cb_error *err);

/* Closes the handle; accepts NULL. */
void cb_state_close(struct cb_state *s);

/* The schema version this binary migrates to. */
int cb__state_schema_version(void);

/* Cheap health check for /health: one read of the database header. */
int cb_state_check(struct cb_state *s, struct cb_error *err);

/* Inserts or replaces the document for key in table (one of CB_STATE_*).
 * The document goes in the table's JSON column (tools.manifest,
 * agents.config, containers.info); created_at is kept on replace and
 * updated_at set, both in Unix milliseconds. A new agent or container row
 * gets status ''; a replace keeps the status. -EINVAL for an unknown table
 * or empty key, -E2BIG past CB_STATE_KEY_MAX or CB_STATE_DOC_MAX. */
int cb_state_put(struct cb_state *s, const char *table, const char *key, const char *json,
                 struct cb_error *err);

/* Copies the document for key into a new string the caller frees.
 * -ENOENT if there is none. */
int cb_state_get(struct cb_state *s, const char *table, const char *key, char **json_out,
                 struct cb_error *err);

/* Removes the document for key; -ENOENT if there was none. */
int cb_state_delete(struct cb_state *s, const char *table, const char *key, struct cb_error *err);

/* Calls cb for every document of table, in key order. The strings are valid
 * only during the call. cb returns 0 to go on; any other value stops the
 * walk and is returned. cb may call back into the same handle. */
int cb_state_list(struct cb_state *s, const char *table,
                  int (*cb)(const char *key, const char *json, void *ud), void *ud,
                  struct cb_error *err);

/* The anchor of a hash chain kept elsewhere (the audit log): how many
 * lines it had and the hash of the last, so that lines cut from its end
 * are noticed. Keyed by name (the log's directory). */
#define CB_STATE_HASH_HEX 64
struct cb_state_anchor {
    uint64_t lines;
    char head[CB_STATE_HASH_HEX + 1];
};

/* Reads the anchor called name; -ENOENT when there is none (also when the
 * database predates anchors and is open read-only). */
int cb_state_anchor_get(struct cb_state *s, const char *name, struct cb_state_anchor *out,
                        struct cb_error *err);

/* Stores the anchor called name. Several writers race to store the lines
 * each made durable, so without `reset` it only ever moves forward: a
 * count not beyond the stored one is ignored. `reset` stores it whatever
 * was there (after the writer recorded a truncation in the log). */
int cb_state_anchor_set(struct cb_state *s, const char *name, const struct cb_state_anchor *a,
                        bool reset, struct cb_error *err);

/* The server lock file in a data directory. */
#define CB_STATE_LOCK_FILE "server.lock"

/* Takes the lock that makes `clawbox serve` the only server on data_dir
 * (created 0700 if missing): a POSIX record lock on <data_dir>/server.lock
 * that the process holds until it exits or closes *fd (see lock.c for why
 * not flock). Refused with -EBUSY and a message naming the directory and
 * the pid of the server holding it. */
int cb_state_lock_data_dir(const char *data_dir, int *fd, struct cb_error *err);

/* The tools table with its module binding: a registered manifest belongs to
 * the module whose SHA-256 (64 lowercase hex digits) is in wasm_sha256.
 * cb_state_put_tool stores both (as cb_state_put otherwise); -EINVAL for a
 * malformed hash. cb_state_list_tools walks the rows as cb_state_list does,
 * with the row's hash, or NULL for a row stored without one. */
int cb_state_put_tool(struct cb_state *s, const char *name, const char *manifest,
                      const char *wasm_sha256, struct cb_error *err);
int cb_state_list_tools(struct cb_state *s,
                        int (*cb)(const char *name, const char *manifest, const char *wasm_sha256,
                                  void *ud),
                        void *ud, struct cb_error *err);

#endif
