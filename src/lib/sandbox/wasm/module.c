/* Structural parsing of a whole module: the header, every section's
 * framing and order, and the contents of every known section down to
 * each instruction's immediates. Collects imports and exports for
 * cb_wasm_inspect and the counts the instrumenter needs. */
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "sandbox/wasm/internal.h"

static const char *const section_names[CB__WASM_N_SECTIONS] = {
    "custom", "type",  "import",  "function", "table", "memory",    "global",
    "export", "start", "element", "code",     "data",  "datacount",
};

const char *cb__wasm_section_name(uint8_t id)
{
    return id < CB__WASM_N_SECTIONS ? section_names[id] : "unknown";
}

int cb__wasm_section_rank(uint8_t id)
{
    /* datacount (12) sits between element (9) and code (10). */
    if (id == CB__WASM_SEC_DATACOUNT)
        return 10;
    if (id == CB__WASM_SEC_CODE || id == CB__WASM_SEC_DATA)
        return id + 1;
    return id;
}

int cb__wasm_section(struct cb__wasm_rd *rd, uint8_t *id, struct cb__wasm_rd *content,
                     struct cb_error *err)
{
    size_t at = rd->pos;
    uint32_t size;
    int r = cb__wasm_u8(rd, id, err);
    if (r == 0)
        r = cb__wasm_u32(rd, &size, err);
    if (r < 0)
        return r;
    if (size > rd->end - rd->pos)
        return cb__wasm_fail(err, at, "section %u (%s) overruns the module", *id,
                             cb__wasm_section_name(*id));
    *content = (struct cb__wasm_rd){.data = rd->data, .pos = rd->pos, .end = rd->pos + size};
    rd->pos += size;
    return 0;
}

/* State of one parse. */
struct parse {
    struct cb__wasm_module *m;
    struct cb_wasm_info *info;
    struct cb__wasm_walk walk;
    size_t cap_imports, cap_exports;
    uint32_t n_funcs, n_bodies, n_data, datacount;
    bool has_datacount;
    bool skip_bodies;
};

int cb__wasm_limits(struct cb__wasm_rd *rd, bool memory, uint8_t *flags, uint32_t *min,
                    uint32_t *max, struct cb_error *err)
{
    size_t at = rd->pos;
    int r = cb__wasm_u8(rd, flags, err);
    if (r < 0)
        return r;
    /* Bit 1 marks a shared memory (threads); memory64 and beyond are not
     * supported. */
    if (*flags > (memory ? 3 : 1))
        return cb__wasm_fail(err, at, "unsupported limits flags 0x%02x", *flags);
    *max = UINT32_MAX;
    r = cb__wasm_u32(rd, min, err);
    if (r == 0 && (*flags & 1))
        r = cb__wasm_u32(rd, max, err);
    if (r < 0)
        return r;
    if ((*flags & 1) && *max < *min)
        return cb__wasm_fail(err, at, "limits maximum %u is below the minimum %u", *max, *min);
    if (memory && (*min > CB__WASM_MAX_PAGES || ((*flags & 1) && *max > CB__WASM_MAX_PAGES)))
        return cb__wasm_fail(err, at, "memory limits exceed %u pages", CB__WASM_MAX_PAGES);
    return 0;
}

static int byte_in(struct cb__wasm_rd *rd, bool (*ok)(uint8_t), const char *what,
                   struct cb_error *err)
{
    uint8_t b;
    int r = cb__wasm_u8(rd, &b, err);
    if (r == 0 && !ok(b))
        return cb__wasm_fail(err, rd->pos - 1, "invalid %s 0x%02x", what, b);
    return r;
}

static bool is_reftype(uint8_t b)
{
    return b == 0x70 || b == 0x6f;
}

static bool is_mut(uint8_t b)
{
    return b <= 1;
}

static bool is_zero(uint8_t b)
{
    return b == 0;
}

static int table_type(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint8_t flags;
    uint32_t min, max;
    int r = byte_in(rd, is_reftype, "reference type", err);
    return r < 0 ? r : cb__wasm_limits(rd, false, &flags, &min, &max, err);
}

static int global_type(struct cb__wasm_rd *rd, struct cb_error *err)
{
    int r = byte_in(rd, cb__wasm_is_valtype, "value type", err);
    return r < 0 ? r : byte_in(rd, is_mut, "mutability", err);
}

static int valtype_vec(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_count(rd, 1, CB__WASM_MAX_PARAMS, "parameters or results", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = byte_in(rd, cb__wasm_is_valtype, "value type", err);
    return r;
}

static int sec_type(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    (void)ps;
    uint32_t n;
    int r = cb__wasm_count(rd, 3, CB__WASM_MAX_TYPES, "types", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        uint8_t form;
        r = cb__wasm_u8(rd, &form, err);
        if (r == 0 && form != 0x60)
            return cb__wasm_fail(err, rd->pos - 1, "unsupported type form 0x%02x", form);
        if (r == 0)
            r = valtype_vec(rd, err);
        if (r == 0)
            r = valtype_vec(rd, err);
    }
    return r;
}

/* Copies a name out of the module for the caller; names with NUL bytes
 * are refused, as they would be cut short as C strings. */
static int dup_name(struct cb__wasm_rd *rd, char **out, struct cb_error *err)
{
    size_t at = rd->pos;
    const uint8_t *p;
    uint32_t n;
    int r = cb__wasm_name(rd, &p, &n, err);
    if (r < 0)
        return r;
    if (memchr(p, 0, n) != NULL)
        return cb__wasm_fail(err, at, "name contains a NUL byte");
    if (out != NULL)
        *out = cb_xstrndup((const char *)p, n);
    return 0;
}

static struct cb_wasm_extern *add_extern(struct cb_wasm_extern **arr, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = cb_xrealloc(*arr, *cap * sizeof(**arr));
    }
    struct cb_wasm_extern *e = &(*arr)[(*n)++];
    *e = (struct cb_wasm_extern){0};
    return e;
}

static int import_desc(struct cb__wasm_rd *rd, uint8_t kind, struct cb_error *err)
{
    uint32_t idx, min, max;
    uint8_t flags;
    switch (kind) {
    case CB_WASM_FUNC:
        return cb__wasm_u32(rd, &idx, err);
    case CB_WASM_TABLE:
        return table_type(rd, err);
    case CB_WASM_MEMORY:
        return cb__wasm_limits(rd, true, &flags, &min, &max, err);
    case CB_WASM_GLOBAL:
        return global_type(rd, err);
    default:
        return cb__wasm_fail(err, rd->pos - 1, "unknown import kind %u", kind);
    }
}

static int one_import(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    struct cb_wasm_extern *e = NULL;
    if (ps->info != NULL)
        e = add_extern(&ps->info->imports, &ps->info->n_imports, &ps->cap_imports);
    uint8_t kind;
    int r = dup_name(rd, e ? &e->module : NULL, err);
    if (r == 0)
        r = dup_name(rd, e ? &e->name : NULL, err);
    if (r == 0)
        r = cb__wasm_u8(rd, &kind, err);
    if (r == 0)
        r = import_desc(rd, kind, err);
    if (r < 0)
        return r;
    if (e != NULL)
        e->kind = (enum cb_wasm_extern_kind)kind;
    if (kind == CB_WASM_GLOBAL)
        ps->m->n_imported_globals++;
    return 0;
}

static int sec_import(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_count(rd, 4, CB__WASM_MAX_IMPORTS, "imports", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = one_import(ps, rd, err);
    return r;
}

static int sec_function(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t idx;
    int r = cb__wasm_count(rd, 1, CB__WASM_MAX_FUNCTIONS, "functions", &ps->n_funcs, err);
    for (uint32_t i = 0; r == 0 && i < ps->n_funcs; i++)
        r = cb__wasm_u32(rd, &idx, err);
    return r;
}

static int sec_table(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    (void)ps;
    uint32_t n;
    int r = cb__wasm_count(rd, 3, CB__WASM_MAX_TABLES, "tables", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = table_type(rd, err);
    return r;
}

static int sec_memory(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    (void)ps;
    uint32_t n, min, max;
    uint8_t flags;
    int r = cb__wasm_count(rd, 2, CB__WASM_MAX_MEMORIES, "memories", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = cb__wasm_limits(rd, true, &flags, &min, &max, err);
    return r;
}

static int sec_global(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    uint32_t room = CB__WASM_MAX_GLOBALS - ps->m->n_imported_globals;
    int r = cb__wasm_count(rd, 3, room, "globals", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        r = global_type(rd, err);
        if (r == 0)
            r = cb__wasm_walk_expr(rd, &ps->walk, err);
    }
    ps->m->n_globals = n;
    return r;
}

static int one_export(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    struct cb_wasm_extern *e = NULL;
    if (ps->info != NULL)
        e = add_extern(&ps->info->exports, &ps->info->n_exports, &ps->cap_exports);
    size_t name_at = rd->pos;
    uint8_t kind;
    uint32_t idx;
    int r = dup_name(rd, e ? &e->name : NULL, err);
    if (r == 0)
        r = cb__wasm_u8(rd, &kind, err);
    if (r == 0 && kind > CB_WASM_GLOBAL)
        return cb__wasm_fail(err, rd->pos - 1, "unknown export kind %u", kind);
    if (r == 0)
        r = cb__wasm_u32(rd, &idx, err);
    if (r < 0)
        return r;
    if (e != NULL)
        e->kind = (enum cb_wasm_extern_kind)kind;
    struct cb__wasm_rd nr = {.data = rd->data, .pos = name_at, .end = rd->end};
    const uint8_t *p;
    uint32_t n;
    cb__wasm_name(&nr, &p, &n, NULL);
    if (n == strlen(CB_WASM_FUEL_EXPORT) && memcmp(p, CB_WASM_FUEL_EXPORT, n) == 0)
        ps->m->has_fuel_export = true;
    if (n == strlen(CB_WASM_START_EXPORT) && memcmp(p, CB_WASM_START_EXPORT, n) == 0)
        ps->m->has_start_export = true;
    return 0;
}

static int sec_export(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    int r = cb__wasm_count(rd, 3, CB__WASM_MAX_EXPORTS, "exports", &ps->m->n_exports, err);
    for (uint32_t i = 0; r == 0 && i < ps->m->n_exports; i++)
        r = one_export(ps, rd, err);
    return r;
}

static int sec_start(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    int r = cb__wasm_u32(rd, &ps->m->start_func, err);
    if (r == 0)
        ps->m->has_start = true;
    if (r == 0 && ps->info != NULL)
        ps->info->has_start = true;
    return r;
}

/* Element segment flags: bit 0 passive or declarative, bit 1 an explicit
 * table index (active) or declarative (passive), bit 2 expressions
 * instead of function indices. */
static int one_elem(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    size_t at = rd->pos;
    uint32_t flags, idx, n;
    int r = cb__wasm_u32(rd, &flags, err);
    if (r == 0 && flags > 7)
        return cb__wasm_fail(err, at, "unknown element segment flags %u", flags);
    if (r == 0 && (flags & 3) == 2)
        r = cb__wasm_u32(rd, &idx, err);
    if (r == 0 && !(flags & 1))
        r = cb__wasm_walk_expr(rd, &ps->walk, err);
    if (r == 0 && (flags & 3))
        r = (flags & 4) ? byte_in(rd, is_reftype, "reference type", err)
                        : byte_in(rd, is_zero, "element kind", err);
    if (r == 0)
        r = cb__wasm_count(rd, 1, UINT32_MAX, "elements", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = (flags & 4) ? cb__wasm_walk_expr(rd, &ps->walk, err) : cb__wasm_u32(rd, &idx, err);
    return r;
}

static int sec_element(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_count(rd, 2, CB__WASM_MAX_ELEM_SEGS, "element segments", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = one_elem(ps, rd, err);
    return r;
}

static int locals(struct cb__wasm_rd *rd, struct cb_error *err)
{
    size_t at = rd->pos;
    uint32_t n, count;
    uint64_t total = 0;
    int r = cb__wasm_count(rd, 2, CB__WASM_MAX_LOCALS, "local declarations", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        r = cb__wasm_u32(rd, &count, err);
        if (r == 0)
            r = byte_in(rd, cb__wasm_is_valtype, "value type", err);
        total += count;
    }
    if (r == 0 && total > CB__WASM_MAX_LOCALS)
        return cb__wasm_fail(err, at, "too many locals (%llu, the limit is %u)",
                             (unsigned long long)total, CB__WASM_MAX_LOCALS);
    return r;
}

int cb__wasm_body(struct cb__wasm_rd *rd, struct cb__wasm_rd *body, struct cb__wasm_walk *w,
                  struct cb_error *err)
{
    size_t at = rd->pos;
    uint32_t size;
    int r = cb__wasm_u32(rd, &size, err);
    if (r < 0)
        return r;
    if (size > CB__WASM_MAX_BODY_SIZE || size > rd->end - rd->pos)
        return cb__wasm_fail(err, at, "function body of %u bytes overruns the code section", size);
    *body = (struct cb__wasm_rd){.data = rd->data, .pos = rd->pos, .end = rd->pos + size};
    rd->pos += size;
    struct cb__wasm_rd b = *body;
    r = locals(&b, err);
    if (r == 0)
        r = cb__wasm_walk_expr(&b, w, err);
    if (r == 0 && b.pos != b.end)
        return cb__wasm_fail(err, b.pos, "%zu stray bytes after the end of a function body",
                             b.end - b.pos);
    return r;
}

static int skip_body(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t size;
    int r = cb__wasm_u32(rd, &size, err);
    return r < 0 ? r : cb__wasm_skip(rd, size, err);
}

static int sec_code(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    struct cb__wasm_rd body;
    int r = cb__wasm_count(rd, 1, CB__WASM_MAX_FUNCTIONS, "function bodies", &ps->n_bodies, err);
    for (uint32_t i = 0; r == 0 && i < ps->n_bodies; i++)
        r = ps->skip_bodies ? skip_body(rd, err) : cb__wasm_body(rd, &body, &ps->walk, err);
    return r;
}

static int one_data(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    size_t at = rd->pos;
    uint32_t flags, idx, n;
    int r = cb__wasm_u32(rd, &flags, err);
    if (r == 0 && flags > 2)
        return cb__wasm_fail(err, at, "unknown data segment flags %u", flags);
    if (r == 0 && flags == 2)
        r = cb__wasm_u32(rd, &idx, err);
    if (r == 0 && flags != 1)
        r = cb__wasm_walk_expr(rd, &ps->walk, err);
    if (r == 0)
        r = cb__wasm_count(rd, 1, UINT32_MAX, "data bytes", &n, err);
    return r < 0 ? r : cb__wasm_skip(rd, n, err);
}

static int sec_data(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    int r = cb__wasm_count(rd, 2, CB__WASM_MAX_DATA_SEGS, "data segments", &ps->n_data, err);
    for (uint32_t i = 0; r == 0 && i < ps->n_data; i++)
        r = one_data(ps, rd, err);
    return r;
}

static int sec_datacount(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    ps->has_datacount = true;
    return cb__wasm_u32(rd, &ps->datacount, err);
}

static int sec_custom(struct parse *ps, struct cb__wasm_rd *rd, struct cb_error *err)
{
    (void)ps;
    const uint8_t *name;
    uint32_t n;
    int r = cb__wasm_name(rd, &name, &n, err);
    if (r == 0)
        rd->pos = rd->end;
    return r;
}

typedef int (*section_fn)(struct parse *, struct cb__wasm_rd *, struct cb_error *);

static const section_fn section_fns[CB__WASM_N_SECTIONS] = {
    sec_custom, sec_type,  sec_import,  sec_function, sec_table, sec_memory,    sec_global,
    sec_export, sec_start, sec_element, sec_code,     sec_data,  sec_datacount,
};

static int header(const uint8_t *data, size_t len, struct cb_error *err)
{
    static const uint8_t magic[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    if (len > CB_WASM_MAX_MODULE)
        return cb_error_set(err, -EFBIG, "module of %zu bytes exceeds the limit of %u", len,
                            CB_WASM_MAX_MODULE);
    if (len < 4 || memcmp(data, magic, 4) != 0)
        return cb_error_set(err, -EINVAL, "offset 0x0: not a wasm module (bad magic)");
    if (len < 8 || memcmp(data + 4, magic + 4, 4) != 0)
        return cb_error_set(err, -EINVAL, "offset 0x4: unsupported wasm version");
    return 0;
}

static int one_section(struct parse *ps, struct cb__wasm_rd *rd, int *last_rank,
                       struct cb_error *err)
{
    size_t at = rd->pos;
    uint8_t id;
    struct cb__wasm_rd content;
    int r = cb__wasm_section(rd, &id, &content, err);
    if (r < 0)
        return r;
    if (id >= CB__WASM_N_SECTIONS)
        return cb__wasm_fail(err, at, "unknown section id %u", id);
    int rank = cb__wasm_section_rank(id);
    if (rank != 0 && rank <= *last_rank)
        return cb__wasm_fail(err, at, "section %u (%s) is repeated or out of order", id,
                             cb__wasm_section_name(id));
    if (rank != 0)
        *last_rank = rank;
    r = section_fns[id](ps, &content, err);
    if (r == 0 && content.pos != content.end)
        return cb__wasm_fail(err, content.pos, "section %u (%s) has %zu bytes after its content",
                             id, cb__wasm_section_name(id), content.end - content.pos);
    return r;
}

static int cross_checks(const struct parse *ps, size_t len, struct cb_error *err)
{
    if (ps->n_funcs != ps->n_bodies)
        return cb__wasm_fail(err, len,
                             "the function section declares %u functions but the code section "
                             "has %u bodies",
                             ps->n_funcs, ps->n_bodies);
    if (ps->has_datacount && ps->datacount != ps->n_data)
        return cb__wasm_fail(err, len, "datacount %u does not match the %u data segments",
                             ps->datacount, ps->n_data);
    return 0;
}

int cb__wasm_parse(const uint8_t *data, size_t len, bool skip_bodies, struct cb__wasm_module *m,
                   struct cb_wasm_info *info, struct cb_error *err)
{
    *m = (struct cb__wasm_module){0};
    int r = header(data, len, err);
    if (r < 0)
        return r;
    struct parse ps = {.m = m, .info = info, .skip_bodies = skip_bodies};
    struct cb__wasm_rd rd = {.data = data, .pos = 8, .end = len};
    int last_rank = 0;
    while (r == 0 && rd.pos < rd.end)
        r = one_section(&ps, &rd, &last_rank, err);
    if (r == 0)
        r = cross_checks(&ps, len, err);
    cb__wasm_walk_free(&ps.walk);
    return r;
}

int cb_wasm_inspect(const uint8_t *data, size_t len, struct cb_wasm_info *out, struct cb_error *err)
{
    *out = (struct cb_wasm_info){0};
    struct cb__wasm_module m;
    int r = cb__wasm_parse(data, len, false, &m, out, err);
    if (r < 0)
        cb_wasm_info_free(out);
    return r;
}

static void free_externs(struct cb_wasm_extern *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].module);
        free(e[i].name);
    }
    free(e);
}

void cb_wasm_info_free(struct cb_wasm_info *info)
{
    if (info == NULL)
        return;
    free_externs(info->imports, info->n_imports);
    free_externs(info->exports, info->n_exports);
    *info = (struct cb_wasm_info){0};
}
