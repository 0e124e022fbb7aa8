/* Fuel metering. The module is parsed (and so checked) first; then it is
 * copied section by section, rewriting only the memory, global, export
 * and code sections and adding the global and export sections when the
 * module has none. Every function body gets a charge at the start of each
 * straight-line stretch: its start, loop headers, if arms and the code
 * after each end (see cb__wasm_walk_expr for the costs). A charge is
 *
 *   global.get $fuel  i64.const COST  i64.sub  global.set $fuel
 *   global.get $fuel  i64.const 0  i64.lt_s  if  unreachable  end
 *
 * which leaves the operand stack as it found it, so it is valid anywhere
 * an instruction sequence may start, loops with parameters included.
 *
 * A start section is dropped and its function exported instead: a start
 * function runs inside instantiation, before the runtime can set the
 * budget, so the runtime calls the export itself once the budget is set. */
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "sandbox/wasm/internal.h"

#define FUEL_SEQ_MAX 48

struct inst {
    const uint8_t *in;
    uint32_t fuel_idx;
    uint32_t cap_pages;
    struct cb_buf out;
    size_t sec_at; /* where the section being rewritten has its size */
    struct cb__wasm_walk walk;
    bool global_done, export_done;
    bool has_start;
    uint32_t start_func;
};

static int put_bytes(struct cb_buf *b, const void *p, size_t n, struct cb_error *err)
{
    if (cb_buf_append(b, p, n) < 0)
        return cb_error_set(err, -E2BIG, "instrumented module exceeds %u bytes",
                            CB_WASM_MAX_MODULE);
    return 0;
}

static int put_u32(struct cb_buf *b, uint32_t v, struct cb_error *err)
{
    uint8_t tmp[5];
    return put_bytes(b, tmp, cb__wasm_put_u32(tmp, v), err);
}

static size_t fuel_seq(uint8_t *p, uint32_t idx, uint64_t cost)
{
    size_t n = 0;
    p[n++] = 0x23; /* global.get */
    n += cb__wasm_put_u32(p + n, idx);
    p[n++] = 0x42; /* i64.const */
    n += cb__wasm_put_s64(p + n, (int64_t)cost);
    p[n++] = 0x7d; /* i64.sub */
    p[n++] = 0x24; /* global.set */
    n += cb__wasm_put_u32(p + n, idx);
    p[n++] = 0x23;
    n += cb__wasm_put_u32(p + n, idx);
    static const uint8_t tail[] = {
        0x42, 0x00, /* i64.const 0 */
        0x53,       /* i64.lt_s */
        0x04, 0x40, /* if (empty) */
        0x00,       /* unreachable */
        0x0b,       /* end */
    };
    memcpy(p + n, tail, sizeof(tail));
    return n + sizeof(tail);
}

/* A rewritten section is written straight to the output after room for
 * the longest size field; end_section() fills the size in and moves the
 * content back over the room it did not need. */
static int begin_section(struct inst *st, uint8_t id, struct cb_error *err)
{
    static const uint8_t room[5] = {0};
    int r = put_bytes(&st->out, &id, 1, err);
    st->sec_at = st->out.len;
    return r < 0 ? r : put_bytes(&st->out, room, sizeof(room), err);
}

static int end_section(struct inst *st, int r)
{
    if (r < 0)
        return r;
    uint8_t size[5];
    size_t content = st->sec_at + sizeof(size);
    size_t len = st->out.len - content;
    size_t n = cb__wasm_put_u32(size, (uint32_t)len);
    memmove(st->out.data + st->sec_at + n, st->out.data + content, len);
    memcpy(st->out.data + st->sec_at, size, n);
    st->out.len -= sizeof(size) - n;
    st->out.data[st->out.len] = '\0';
    return 0;
}

static int fuel_global(struct inst *st, struct cb_error *err)
{
    /* mutable i64, initialised to INT64_MAX (signed LEB128: nine 0xff and
     * 0x00). Nothing metered runs before the runtime sets the budget (the
     * start function is exported instead), so the value only matters to a
     * host that never sets one: it runs unmetered rather than trapping. */
    static const uint8_t g[] = {0x7e, 0x01, 0x42, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x0b};
    return put_bytes(&st->out, g, sizeof(g), err);
}

static int put_export(struct inst *st, const char *name, uint8_t kind, uint32_t idx,
                      struct cb_error *err)
{
    int r = put_u32(&st->out, (uint32_t)strlen(name), err);
    if (r == 0)
        r = put_bytes(&st->out, name, strlen(name), err);
    if (r == 0)
        r = put_bytes(&st->out, &kind, 1, err);
    return r < 0 ? r : put_u32(&st->out, idx, err);
}

/* The fuel export, and the start function's when there is one. */
static int added_exports(struct inst *st, struct cb_error *err)
{
    int r = put_export(st, CB_WASM_FUEL_EXPORT, CB_WASM_GLOBAL, st->fuel_idx, err);
    if (r == 0 && st->has_start)
        r = put_export(st, CB_WASM_START_EXPORT, CB_WASM_FUNC, st->start_func, err);
    return r;
}

/* Rewrites a global or export section: the new count, the old entries, the
 * new entries. A NULL content adds a section of its own. */
static int append_entry(struct inst *st, uint8_t id, struct cb__wasm_rd *content,
                        struct cb_error *err)
{
    uint32_t n = 0;
    uint32_t added = id == CB__WASM_SEC_EXPORT && st->has_start ? 2 : 1;
    int r = content ? cb__wasm_u32(content, &n, err) : 0;
    if (r == 0)
        r = begin_section(st, id, err);
    if (r == 0)
        r = put_u32(&st->out, n + added, err);
    if (r == 0 && content != NULL)
        r = put_bytes(&st->out, st->in + content->pos, content->end - content->pos, err);
    if (r == 0)
        r = id == CB__WASM_SEC_GLOBAL ? fuel_global(st, err) : added_exports(st, err);
    if (id == CB__WASM_SEC_GLOBAL)
        st->global_done = true;
    else
        st->export_done = true;
    return end_section(st, r);
}

/* Adds the global and export sections, when the module lacks them, before
 * the first section that must follow them. */
static int add_missing(struct inst *st, int rank, struct cb_error *err)
{
    int r = 0;
    if (!st->global_done && rank > cb__wasm_section_rank(CB__WASM_SEC_GLOBAL))
        r = append_entry(st, CB__WASM_SEC_GLOBAL, NULL, err);
    if (r == 0 && !st->export_done && rank > cb__wasm_section_rank(CB__WASM_SEC_EXPORT))
        r = append_entry(st, CB__WASM_SEC_EXPORT, NULL, err);
    return r;
}

static int clamp_memory(struct inst *st, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint8_t flags;
    uint32_t min, max;
    int r = cb__wasm_limits(rd, true, &flags, &min, &max, err);
    if (r < 0)
        return r;
    if (min > st->cap_pages)
        return cb_error_set(err, -E2BIG, "memory minimum %u pages exceeds the cap of %u", min,
                            st->cap_pages);
    if (!(flags & 1) || max > st->cap_pages)
        max = st->cap_pages;
    flags |= 1;
    r = put_bytes(&st->out, &flags, 1, err);
    if (r == 0)
        r = put_u32(&st->out, min, err);
    return r < 0 ? r : put_u32(&st->out, max, err);
}

static int rewrite_memory(struct inst *st, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_u32(rd, &n, err);
    if (r == 0)
        r = begin_section(st, CB__WASM_SEC_MEMORY, err);
    if (r == 0)
        r = put_u32(&st->out, n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        r = clamp_memory(st, rd, err);
    return end_section(st, r);
}

/* Rewrites one function body, whose sites the walker has just found. */
static int rewrite_body(struct inst *st, const struct cb__wasm_rd *body, struct cb_error *err)
{
    uint8_t seq[FUEL_SEQ_MAX];
    size_t size = body->end - body->pos;
    for (size_t i = 0; i < st->walk.n_sites; i++)
        size += fuel_seq(seq, st->fuel_idx, st->walk.sites[i].cost);
    if (size > CB__WASM_MAX_BODY_SIZE)
        return cb__wasm_fail(err, body->pos, "function body grows past %u bytes when metered",
                             CB__WASM_MAX_BODY_SIZE);
    int r = put_u32(&st->out, (uint32_t)size, err);
    size_t pos = body->pos;
    for (size_t i = 0; r == 0 && i < st->walk.n_sites; i++) {
        const struct cb__wasm_site *s = &st->walk.sites[i];
        r = put_bytes(&st->out, st->in + pos, s->pos - pos, err);
        if (r == 0)
            r = put_bytes(&st->out, seq, fuel_seq(seq, st->fuel_idx, s->cost), err);
        pos = s->pos;
    }
    return r < 0 ? r : put_bytes(&st->out, st->in + pos, body->end - pos, err);
}

static int rewrite_code(struct inst *st, struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_u32(rd, &n, err);
    if (r == 0)
        r = begin_section(st, CB__WASM_SEC_CODE, err);
    if (r == 0)
        r = put_u32(&st->out, n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        struct cb__wasm_rd body;
        r = cb__wasm_body(rd, &body, &st->walk, err);
        if (r == 0)
            r = rewrite_body(st, &body, err);
    }
    return end_section(st, r);
}

static int instrument_section(struct inst *st, struct cb__wasm_rd *rd, struct cb_error *err)
{
    size_t at = rd->pos;
    uint8_t id;
    struct cb__wasm_rd content;
    int r = cb__wasm_section(rd, &id, &content, err);
    if (r == 0 && id != CB__WASM_SEC_CUSTOM)
        r = add_missing(st, cb__wasm_section_rank(id), err);
    if (r < 0)
        return r;
    switch (id) {
    case CB__WASM_SEC_MEMORY:
        return rewrite_memory(st, &content, err);
    case CB__WASM_SEC_GLOBAL:
    case CB__WASM_SEC_EXPORT:
        return append_entry(st, id, &content, err);
    case CB__WASM_SEC_CODE:
        return rewrite_code(st, &content, err);
    case CB__WASM_SEC_START:
        return 0; /* exported instead (added_exports) */
    default:
        return put_bytes(&st->out, st->in + at, rd->pos - at, err);
    }
}

/* Refuses modules the rewrite would break or push past a limit. */
static int preconditions(const struct cb__wasm_module *m, struct cb_error *err)
{
    if (m->has_fuel_export)
        return cb_error_set(err, -EEXIST, "the module already exports %s", CB_WASM_FUEL_EXPORT);
    if (m->has_start_export)
        return cb_error_set(err, -EEXIST, "the module already exports %s", CB_WASM_START_EXPORT);
    if ((uint64_t)m->n_imported_globals + m->n_globals >= CB__WASM_MAX_GLOBALS)
        return cb_error_set(err, -E2BIG, "no room for the fuel global (%u globals)",
                            CB__WASM_MAX_GLOBALS);
    if ((uint64_t)m->n_exports + 1 + m->has_start > CB__WASM_MAX_EXPORTS)
        return cb_error_set(err, -E2BIG, "no room for the fuel export (%u exports)",
                            CB__WASM_MAX_EXPORTS);
    return 0;
}

static int rewrite(struct inst *st, size_t len, struct cb_error *err)
{
    struct cb__wasm_rd rd = {.data = st->in, .pos = 8, .end = len};
    int r = put_bytes(&st->out, st->in, 8, err);
    while (r == 0 && rd.pos < rd.end)
        r = instrument_section(st, &rd, err);
    return r < 0 ? r : add_missing(st, CB__WASM_N_SECTIONS + 1, err);
}

int cb_wasm_instrument(const uint8_t *in, size_t len, const struct cb_wasm_instrument_opts *opts,
                       uint8_t **out, size_t *out_len, struct cb_error *err)
{
    *out = NULL;
    *out_len = 0;
    struct cb__wasm_module m;
    int r = cb__wasm_parse(in, len, true, &m, NULL, err);
    if (r == 0)
        r = preconditions(&m, err);
    if (r < 0)
        return r;
    struct inst st = {
        .in = in,
        .fuel_idx = m.n_imported_globals + m.n_globals,
        .has_start = m.has_start,
        .start_func = m.start_func,
        .cap_pages = opts->max_memory_pages < CB__WASM_MAX_PAGES ? opts->max_memory_pages
                                                                 : CB__WASM_MAX_PAGES,
    };
    cb_buf_init(&st.out, CB_WASM_MAX_MODULE);
    r = rewrite(&st, len, err);
    if (r == 0)
        *out = (uint8_t *)cb_buf_steal(&st.out, out_len);
    cb_buf_free(&st.out);
    cb__wasm_walk_free(&st.walk);
    return r;
}
