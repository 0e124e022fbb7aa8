#include "state/state.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct cb_state {
    sqlite3 *db;
    char *path;
    int busy_timeout_ms;
    bool relaxed_sync;
    bool read_only;
    /* The anchor writes, prepared once: an audit log stores its anchor up
     * to twenty times a second, and preparing costs as much as writing. */
    sqlite3_stmt *anchor_stmt[2]; /* [reset] */
};

/* Migration i takes the schema from user_version i to i + 1. Each runs in
 * its own transaction together with the user_version bump, so a crash
 * leaves the database at a version boundary. Append only; never edit one
 * that has shipped. */
static const char *const migrations[] = {
    "CREATE TABLE tools ("
    "  name TEXT PRIMARY KEY,"
    "  manifest TEXT NOT NULL,"
    "  wasm_sha256 TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE agents ("
    "  id TEXT PRIMARY KEY,"
    "  config TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  container_id TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE containers ("
    "  id TEXT PRIMARY KEY,"
    "  info TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  runtime_id TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);",
    "CREATE TABLE anchors ("
    "  name TEXT PRIMARY KEY,"
    "  lines INTEGER NOT NULL,"
    "  head TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL);",
};

/* The document API's statements, fixed at compile time per table so that no
 * caller-supplied name ever reaches SQL text. */
enum doc_op { DOC_PUT, DOC_GET, DOC_DELETE, DOC_LIST, DOC_OPS };

struct doc_table {
    const char *name;
    const char *sql[DOC_OPS];
};

#define DOC_TABLE(tbl, key, doc, extra_col, extra_val)                                             \
    {                                                                                              \
        .name = tbl,                                                                               \
        .sql[DOC_PUT] =                                                                            \
            "INSERT INTO " tbl " (" key ", " doc extra_col ", created_at, updated_at)"             \
            " VALUES (?1, ?2" extra_val ", ?3, ?3) ON CONFLICT (" key ")"                          \
            " DO UPDATE SET " doc " = excluded." doc ", updated_at = excluded.updated_at",         \
        .sql[DOC_GET] = "SELECT " doc " FROM " tbl " WHERE " key " = ?1",                          \
        .sql[DOC_DELETE] = "DELETE FROM " tbl " WHERE " key " = ?1",                               \
        .sql[DOC_LIST] = "SELECT " key ", " doc " FROM " tbl " ORDER BY " key,                     \
    }

static const struct doc_table doc_tables[] = {
    DOC_TABLE(CB_STATE_TOOLS, "name", "manifest", "", ""),
    DOC_TABLE(CB_STATE_AGENTS, "id", "config", ", status", ", ''"),
    DOC_TABLE(CB_STATE_CONTAINERS, "id", "info", ", status", ", ''"),
};

int cb__state_schema_version(void)
{
    return (int)CB_ARRAY_LEN(migrations);
}

/* Turns a failed SQLite call into a negative errno and a message that names
 * the file and, for the cases an operator must act on, says what is wrong. */
static int db_error(struct cb_state *s, int rc, const char *what, struct cb_error *err)
{
    const char *msg = sqlite3_errmsg(s->db);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return cb_error_set(err, -EBUSY,
                            "state database %s is locked by another process (waited %d ms)",
                            s->path, s->busy_timeout_ms);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return cb_error_set(err, -EBADMSG,
                            "state database %s is corrupt or not a SQLite database: %s", s->path,
                            msg);
    case SQLITE_FULL:
        return cb_error_set(err, -ENOSPC, "state database %s: %s: %s", s->path, what, msg);
    case SQLITE_READONLY:
        return cb_error_set(err, -EROFS, "state database %s: %s: %s", s->path, what, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        return cb_error_set(err, -EACCES, "state database %s: %s: %s", s->path, what, msg);
    case SQLITE_NOMEM:
        return cb_error_set(err, -ENOMEM, "state database %s: %s: %s", s->path, what, msg);
    default:
        return cb_error_set(err, -EIO, "state database %s: %s: %s", s->path, what, msg);
    }
}

static int exec(struct cb_state *s, const char *sql, const char *what, struct cb_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_error(s, rc, what, err);
}

static int prepare(struct cb_state *s, const char *sql, sqlite3_stmt **st, struct cb_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : db_error(s, rc, "preparing statement", err);
}

/* Runs a statement that yields one row and copies its first column. */
static int query_text(struct cb_state *s, const char *sql, char *out, size_t outsz,
                      struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare(s, sql, &st, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outsz, "%s", t ? (const char *)t : "");
    } else {
        r = db_error(s, rc, sql, err);
    }
    sqlite3_finalize(st);
    return r;
}

static int query_int(struct cb_state *s, const char *sql, int *out, struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare(s, sql, &st, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        r = db_error(s, rc, sql, err);
    sqlite3_finalize(st);
    return r;
}

static int check_dir(const char *path, struct cb_error *err)
{
    _cleanup_free_ char *dir = cb_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return 0;
    slash[slash == dir ? 1 : 0] = '\0';
    struct stat st;
    if (stat(dir, &st) < 0) {
        int e = errno;
        if (e == ENOENT)
            return cb_error_set(err, -ENOENT, "state database directory %s does not exist", dir);
        return cb_error_set(err, -e, "state database directory %s: %s", dir, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "state database directory %s is not a directory", dir);
    return 0;
}

/* Creates the file 0600 ourselves, because SQLite would create it 0644 less
 * the umask; the -wal and -shm files SQLite makes later copy its mode. An
 * existing file readable by others is tightened. */
static int create_file(const char *path, struct cb_error *err)
{
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return cb_error_set(err, -errno, "opening state database %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return cb_error_set(err, -errno, "stat state database %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cb_error_set(err, -EINVAL, "state database %s is not a regular file", path);
    if ((st.st_mode & 077) != 0 && fchmod(fd, st.st_mode & 0700) < 0)
        return cb_error_set(err, -errno, "chmod state database %s: %s", path, strerror(errno));
    return 0;
}

static int connect_db(struct cb_state *s, struct cb_error *err)
{
    int flags = (s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_FULLMUTEX;
#ifdef SQLITE_OPEN_NOFOLLOW
    flags |= SQLITE_OPEN_NOFOLLOW;
#endif
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (s->db == NULL)
        return cb_error_set(err, -ENOMEM, "state database %s: out of memory", s->path);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "opening", err);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_timeout_ms);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
    /* Nothing here edits the schema by hand; refuse writable_schema tricks. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
#endif
    return 0;
}

/* Reads every page of the small database once so that a garbled or
 * truncated file is refused at start-up rather than on the first request
 * that happens to touch the damage. Runs before anything writes. */
static int integrity_check(struct cb_state *s, struct cb_error *err)
{
    char result[256];
    int r = query_text(s, "PRAGMA quick_check(1)", result, sizeof(result), err);
    if (r < 0)
        return r;
    if (strcmp(result, "ok") != 0)
        return cb_error_set(err, -EBADMSG,
                            "state database %s is corrupt or not a SQLite database: %s", s->path,
                            result);
    return 0;
}

/* WAL lets the HTTP threads read while one writes. synchronous=FULL fsyncs
 * the WAL at every commit: NORMAL would survive a process crash but could
 * lose the last commits on power loss, and nothing acknowledged may be
 * lost (unless the handle asked for relaxed_sync). */
static int configure(struct cb_state *s, struct cb_error *err)
{
    char mode[32];
    int r = query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
    if (r < 0)
        return r;
    if (strcmp(mode, "wal") != 0)
        return cb_error_set(err, -ENOTSUP, "state database %s: cannot enable WAL (mode is %s)",
                            s->path, mode);
    r = exec(s, s->relaxed_sync ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
             "setting synchronous", err);
    if (r == 0)
        r = exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys", err);
    return r;
}

static int apply_migration(struct cb_state *s, int version, struct cb_error *err)
{
    int r = exec(s, migrations[version], "migrating schema", err);
    if (r < 0) {
        cb_error_prefix(err, "migration %d", version + 1);
        return r;
    }
    _cleanup_free_ char *bump = cb_xasprintf("PRAGMA user_version = %d", version + 1);
    return exec(s, bump, "setting schema version", err);
}

/* One step of the migration: under the write lock (so two processes
 * starting together cannot both migrate) reads the version and applies the
 * next migration, or sets *done. Taking the write lock even when there is
 * nothing to do is also how a database held by another process is noticed
 * at open rather than on the first write. */
static int migrate_step(struct cb_state *s, bool *done, struct cb_error *err)
{
    int r = exec(s, "BEGIN IMMEDIATE", "starting migration", err);
    if (r < 0)
        return r;
    int version = 0;
    int known = cb__state_schema_version();
    r = query_int(s, "PRAGMA user_version", &version, err);
    if (r == 0 && version > known)
        r = cb_error_set(err, -ENOTSUP,
                         "state database schema version %d is newer than this clawbox "
                         "supports (%d)",
                         version, known);
    else if (r == 0 && version < 0)
        r = cb_error_set(err, -EBADMSG, "state database %s has invalid schema version %d", s->path,
                         version);
    else if (r == 0 && version < known)
        r = apply_migration(s, version, err);
    if (r < 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    *done = version == known;
    return exec(s, "COMMIT", "committing migration", err);
}

static int migrate(struct cb_state *s, struct cb_error *err)
{
    bool done = false;
    int r = 0;
    while (r == 0 && !done)
        r = migrate_step(s, &done, err);
    return r;
}

/* A read-only handle needs the file to exist: SQLite would otherwise
 * report it as unopenable rather than absent. */
static int check_exists(const char *path, struct cb_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return cb_error_set(err, -errno, "state database %s: %s", path, strerror(errno));
    return 0;
}

int cb_state_open_opts(const char *path, const struct cb_state_options *opts, struct cb_state **out,
                       struct cb_error *err)
{
    *out = NULL;
    if (sqlite3_threadsafe() == 0)
        return cb_error_set(err, -ENOTSUP, "SQLite was built without thread safety");
    int timeout = opts != NULL ? opts->busy_timeout_ms : CB_STATE_BUSY_TIMEOUT_MS;
    bool read_only = opts != NULL && opts->read_only;
    if (timeout < 0)
        return cb_error_set(err, -EINVAL, "state database busy timeout must be >= 0");
    int r = check_dir(path, err);
    if (r == 0)
        r = read_only ? check_exists(path, err) : create_file(path, err);
    if (r < 0)
        return r;
    struct cb_state *s = cb_xcalloc(1, sizeof(*s));
    s->path = cb_xstrdup(path);
    s->busy_timeout_ms = timeout;
    s->relaxed_sync = opts != NULL && opts->relaxed_sync;
    s->read_only = read_only;
    r = connect_db(s, err);
    if (r == 0)
        r = integrity_check(s, err);
    if (r == 0 && !read_only)
        r = configure(s, err);
    if (r == 0 && !read_only)
        r = migrate(s, err);
    if (r < 0) {
        cb_state_close(s);
        return r;
    }
    *out = s;
    return 0;
}

int cb_state_open(const char *path, struct cb_state **out, struct cb_error *err)
{
    return cb_state_open_opts(path, NULL, out, err);
}

void cb_state_close(struct cb_state *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(s->anchor_stmt[0]);
    sqlite3_finalize(s->anchor_stmt[1]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* The connection's own (recursive) mutex is held across each whole call, so
 * that sqlite3_errmsg() belongs to our statement and a list callback may
 * call back in. */
static void lock(struct cb_state *s)
{
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db));
}

static void unlock(struct cb_state *s)
{
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
}

int cb_state_check(struct cb_state *s, struct cb_error *err)
{
    if (s == NULL)
        return cb_error_set(err, -EINVAL, "state database is not open");
    int version = 0;
    lock(s);
    int r = query_int(s, "PRAGMA user_version", &version, err);
    unlock(s);
    return r;
}

static const struct doc_table *find_table(const char *name, struct cb_error *err)
{
    for (size_t i = 0; name != NULL && i < CB_ARRAY_LEN(doc_tables); i++)
        if (strcmp(doc_tables[i].name, name) == 0)
            return &doc_tables[i];
    cb_error_set(err, -EINVAL, "unknown state table '%.64s'", name ? name : "(null)");
    return NULL;
}

static int check_key(const char *key, struct cb_error *err)
{
    if (key == NULL || key[0] == '\0')
        return cb_error_set(err, -EINVAL, "state key must not be empty");
    if (strnlen(key, CB_STATE_KEY_MAX + 1) > CB_STATE_KEY_MAX)
        return cb_error_set(err, -E2BIG, "state key is longer than %d bytes", CB_STATE_KEY_MAX);
    return 0;
}

/* Validates table and key and prepares the table's statement with the key
 * bound to ?1. The caller holds the lock and finalizes *st. */
static int prepare_keyed(struct cb_state *s, const char *table, const char *key, enum doc_op op,
                         sqlite3_stmt **st, struct cb_error *err)
{
    const struct doc_table *t = find_table(table, err);
    if (t == NULL)
        return -EINVAL;
    int r = check_key(key, err);
    if (r < 0)
        return r;
    r = prepare(s, t->sql[op], st, err);
    if (r == 0)
        sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    return r;
}

static int put_locked(struct cb_state *s, const char *table, const char *key, const char *json,
                      struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare_keyed(s, table, key, DOC_PUT, &st, err);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cb_now_wall_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = db_error(s, rc, "storing document", err);
    sqlite3_finalize(st);
    return r;
}

static int check_doc(const char *json, struct cb_error *err)
{
    if (json == NULL)
        return cb_error_set(err, -EINVAL, "state document must not be NULL");
    if (strnlen(json, CB_STATE_DOC_MAX + 1) > CB_STATE_DOC_MAX)
        return cb_error_set(err, -E2BIG, "state document is larger than %d bytes",
                            CB_STATE_DOC_MAX);
    return 0;
}

int cb_state_put(struct cb_state *s, const char *table, const char *key, const char *json,
                 struct cb_error *err)
{
    int r = check_doc(json, err);
    if (r < 0)
        return r;
    lock(s);
    r = put_locked(s, table, key, json, err);
    unlock(s);
    return r;
}

static int get_locked(struct cb_state *s, const char *table, const char *key, char **json_out,
                      struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare_keyed(s, table, key, DOC_GET, &st, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *doc = sqlite3_column_text(st, 0);
        *json_out = cb_xstrndup(doc ? (const char *)doc : "", (size_t)sqlite3_column_bytes(st, 0));
    } else if (rc == SQLITE_DONE) {
        r = cb_error_set(err, -ENOENT, "no %s entry '%.256s'", table, key);
    } else {
        r = db_error(s, rc, "reading document", err);
    }
    sqlite3_finalize(st);
    return r;
}

int cb_state_get(struct cb_state *s, const char *table, const char *key, char **json_out,
                 struct cb_error *err)
{
    *json_out = NULL;
    lock(s);
    int r = get_locked(s, table, key, json_out, err);
    unlock(s);
    return r;
}

static int delete_locked(struct cb_state *s, const char *table, const char *key,
                         struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare_keyed(s, table, key, DOC_DELETE, &st, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = db_error(s, rc, "deleting document", err);
    else if (sqlite3_changes(s->db) == 0)
        r = cb_error_set(err, -ENOENT, "no %s entry '%.256s'", table, key);
    sqlite3_finalize(st);
    return r;
}

int cb_state_delete(struct cb_state *s, const char *table, const char *key, struct cb_error *err)
{
    lock(s);
    int r = delete_locked(s, table, key, err);
    unlock(s);
    return r;
}

static const char *column_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static int list_locked(struct cb_state *s, const struct doc_table *t,
                       int (*cb)(const char *key, const char *json, void *ud), void *ud,
                       struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare(s, t->sql[DOC_LIST], &st, err);
    if (r < 0)
        return r;
    int rc = SQLITE_DONE;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        r = cb(column_str(st, 0), column_str(st, 1), ud);
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(s, rc, "listing documents", err);
    sqlite3_finalize(st);
    return r;
}

int cb_state_list(struct cb_state *s, const char *table,
                  int (*cb)(const char *key, const char *json, void *ud), void *ud,
                  struct cb_error *err)
{
    const struct doc_table *t = find_table(table, err);
    if (t == NULL)
        return -EINVAL;
    lock(s);
    int r = list_locked(s, t, cb, ud, err);
    unlock(s);
    return r;
}

/* -------------------------------- anchors -------------------------------- */

static int anchor_get_locked(struct cb_state *s, const char *name, struct cb_state_anchor *out,
                             struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(s->db, "SELECT lines, head FROM anchors WHERE name = ?1", -1, &st, NULL);
    /* A read-only handle on a database from before anchors has no table. */
    if (rc == SQLITE_ERROR && s->read_only)
        return cb_error_set(err, -ENOENT, "no anchor for %.256s", name);
    if (rc != SQLITE_OK)
        return db_error(s, rc, "preparing statement", err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = 0;
    rc = sqlite3_step(st);
    const unsigned char *head = rc == SQLITE_ROW ? sqlite3_column_text(st, 1) : NULL;
    if (rc == SQLITE_ROW && head != NULL && strlen((const char *)head) == CB_STATE_HASH_HEX &&
        sqlite3_column_int64(st, 0) >= 0) {
        out->lines = (uint64_t)sqlite3_column_int64(st, 0);
        memcpy(out->head, head, CB_STATE_HASH_HEX + 1);
    } else if (rc == SQLITE_ROW) {
        r = cb_error_set(err, -EBADMSG, "state database %s: the anchor for %.256s is malformed",
                         s->path, name);
    } else if (rc == SQLITE_DONE) {
        r = cb_error_set(err, -ENOENT, "no anchor for %.256s", name);
    } else {
        r = db_error(s, rc, "reading anchor", err);
    }
    sqlite3_finalize(st);
    return r;
}

int cb_state_anchor_get(struct cb_state *s, const char *name, struct cb_state_anchor *out,
                        struct cb_error *err)
{
    int r = check_key(name, err);
    if (r < 0)
        return r;
    lock(s);
    r = anchor_get_locked(s, name, out, err);
    unlock(s);
    return r;
}

static int anchor_set_locked(struct cb_state *s, const char *name, const struct cb_state_anchor *a,
                             bool reset, struct cb_error *err)
{
    static const char forward[] =
        "INSERT INTO anchors (name, lines, head, updated_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (name) DO UPDATE SET lines = excluded.lines, head = excluded.head,"
        " updated_at = excluded.updated_at WHERE excluded.lines > anchors.lines";
    static const char any[] =
        "INSERT INTO anchors (name, lines, head, updated_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (name) DO UPDATE SET lines = excluded.lines, head = excluded.head,"
        " updated_at = excluded.updated_at";
    sqlite3_stmt **st = &s->anchor_stmt[reset];
    int r = *st ? 0 : prepare(s, reset ? any : forward, st, err);
    if (r < 0)
        return r;
    sqlite3_bind_text(*st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(*st, 2, (sqlite3_int64)a->lines);
    sqlite3_bind_text(*st, 3, a->head, CB_STATE_HASH_HEX, SQLITE_STATIC);
    sqlite3_bind_int64(*st, 4, (sqlite3_int64)cb_now_wall_ms());
    int rc = sqlite3_step(*st);
    if (rc != SQLITE_DONE)
        r = db_error(s, rc, "storing anchor", err);
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    return r;
}

int cb_state_anchor_set(struct cb_state *s, const char *name, const struct cb_state_anchor *a,
                        bool reset, struct cb_error *err)
{
    int r = check_key(name, err);
    if (r < 0)
        return r;
    if (a->lines > INT64_MAX || strnlen(a->head, sizeof(a->head)) != CB_STATE_HASH_HEX)
        return cb_error_set(err, -EINVAL, "malformed anchor for %.256s", name);
    lock(s);
    r = anchor_set_locked(s, name, a, reset, err);
    unlock(s);
    return r;
}

/* ---- tools with their module binding ---- */

static const char put_tool_sql[] =
    "INSERT INTO tools (name, manifest, wasm_sha256, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO UPDATE SET"
    " manifest = excluded.manifest, wasm_sha256 = excluded.wasm_sha256,"
    " updated_at = excluded.updated_at";
static const char list_tools_sql[] = "SELECT name, manifest, wasm_sha256 FROM tools ORDER BY name";

static bool sha256_hex_valid(const char *h)
{
    return h != NULL && strlen(h) == 64 && cb_hex_is_lower(h, 64);
}

static int put_tool_locked(struct cb_state *s, const char *name, const char *manifest,
                           const char *sha, struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = prepare(s, put_tool_sql, &st, err);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, manifest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)cb_now_wall_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = db_error(s, rc, "storing tool manifest", err);
    sqlite3_finalize(st);
    return r;
}

int cb_state_put_tool(struct cb_state *s, const char *name, const char *manifest,
                      const char *wasm_sha256, struct cb_error *err)
{
    int r = check_key(name, err);
    if (r == 0)
        r = check_doc(manifest, err);
    if (r < 0)
        return r;
    if (!sha256_hex_valid(wasm_sha256))
        return cb_error_set(err, -EINVAL, "module hash must be 64 lowercase hex digits");
    lock(s);
    r = put_tool_locked(s, name, manifest, wasm_sha256, err);
    unlock(s);
    return r;
}

int cb_state_list_tools(struct cb_state *s,
                        int (*cb)(const char *name, const char *manifest, const char *wasm_sha256,
                                  void *ud),
                        void *ud, struct cb_error *err)
{
    sqlite3_stmt *st = NULL;
    lock(s);
    int r = prepare(s, list_tools_sql, &st, err);
    int rc = SQLITE_DONE;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *sha = sqlite3_column_text(st, 2);
        r = cb(column_str(st, 0), column_str(st, 1), (const char *)sha, ud);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(s, rc, "listing tool manifests", err);
    sqlite3_finalize(st);
    unlock(s);
    return r;
}
