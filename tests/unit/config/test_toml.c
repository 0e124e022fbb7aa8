#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/toml.h"
#include "config/toml_json.h"
#include "core/util.h"

/* Parses text that must be valid; fails the test with the parser's message
 * otherwise. */
static struct cb_toml_value *ok_n(const char *text, size_t len)
{
    struct cb_error err = {0};
    struct cb_toml_value *v = cb_toml_parse(text, len, &err);
    if (v == NULL)
        fail_msg("unexpected error: %s\ninput: %s", err.msg, text);
    assert_int_equal(v->type, CB_TOML_TABLE);
    return v;
}

static struct cb_toml_value *ok(const char *text)
{
    return ok_n(text, strlen(text));
}

/* Text that must be rejected with a message containing `needle`. */
static void bad_n(const char *text, size_t len, const char *needle)
{
    struct cb_error err = {0};
    struct cb_toml_value *v = cb_toml_parse(text, len, &err);
    if (v != NULL) {
        cb__toml_free(v);
        fail_msg("accepted invalid input: %s", text);
    }
    assert_int_equal(err.code, -EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_non_null(strstr(err.msg, "line "));
}

static void bad(const char *text, const char *needle)
{
    bad_n(text, strlen(text), needle);
}

/* Looks up a dotted path of bare keys ("a.b.c") from the root. */
static struct cb_toml_value *at(const struct cb_toml_value *root, const char *path)
{
    char k[256];
    const struct cb_toml_value *v = root;
    for (const char *p = path; v != NULL && p != NULL;) {
        const char *dot = strchr(p, '.');
        snprintf(k, sizeof(k), "%.*s", dot ? (int)(dot - p) : (int)strlen(p), p);
        v = cb_toml_get(v, k);
        p = dot ? dot + 1 : NULL;
    }
    if (v == NULL)
        fail_msg("no value at %s", path);
    return (struct cb_toml_value *)v;
}

static void assert_str(const struct cb_toml_value *root, const char *path, const char *want,
                       size_t want_len)
{
    const struct cb_toml_value *v = at(root, path);
    assert_int_equal(v->type, CB_TOML_STRING);
    assert_int_equal(v->u.str.len, want_len);
    assert_memory_equal(v->u.str.ptr, want, want_len);
    assert_int_equal(v->u.str.ptr[want_len], '\0');
}

#define STR(root, path, lit) assert_str(root, path, lit, sizeof(lit) - 1)

static int64_t int_at(const struct cb_toml_value *root, const char *path)
{
    const struct cb_toml_value *v = at(root, path);
    assert_int_equal(v->type, CB_TOML_INTEGER);
    return v->u.i;
}

static double float_at(const struct cb_toml_value *root, const char *path)
{
    const struct cb_toml_value *v = at(root, path);
    assert_int_equal(v->type, CB_TOML_FLOAT);
    return v->u.f;
}

static void basic_string_escapes(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("s = \"\\b\\t\\n\\f\\r\\\"\\\\ \\u00e9 \\U0001F600 tab:\t.\"\n"
                                 "nul = \"a\\u0000b\"\n"
                                 "empty = \"\"\n");
    STR(r, "s", "\b\t\n\f\r\"\\ \xC3\xA9 \xF0\x9F\x98\x80 tab:\t.");
    STR(r, "nul", "a\0b");
    STR(r, "empty", "");
    cb__toml_free(r);
}

static void bad_escapes_are_rejected(void **state)
{
    (void)state;
    bad("s = \"\\e\"", "line 1, column 6: invalid escape sequence: backslash followed by 'e'");
    bad("s = \"\\x41\"", "backslash followed by 'x'");
    bad("s = \"\\ \"", "backslash followed by whitespace");
    bad("s = \"\\uD800\"", "escape \\uD800 is not a Unicode scalar value");
    bad("s = \"\\U00110000\"", "not a Unicode scalar value");
    bad("s = \"\\u12\"", "\\u escape needs 4 hex digits");
    bad("s = \"\\U1234567\"", "\\U escape needs 8 hex digits");
}

static void literal_strings_keep_backslashes(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("p = 'C:\\Users\\nodejs\\templates'\n"
                                 "q = '<\\i\\c*\\s*>'\n"
                                 "e = ''\n");
    STR(r, "p", "C:\\Users\\nodejs\\templates");
    STR(r, "q", "<\\i\\c*\\s*>");
    STR(r, "e", "");
    cb__toml_free(r);
}

static void multi_line_basic_strings(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = \"\"\"\nRoses\nViolets\"\"\"\n"
                                 "b = \"\"\"\\\n   The quick \\\n\n   fox \\   \n  jumps.\"\"\"\n"
                                 "c = \"\"\"Here are two quotes: \"\". Simple.\"\"\"\n"
                                 "d = \"\"\"\"quoted\"\"\"\"\n"
                                 "e = \"\"\"x\"\"\"\"\"\n"
                                 "f = \"\"\"\r\nwin\r\nend\"\"\"\n"
                                 "g = \"\"\"esc \\\"\"\" \\u0041\"\"\"\n");
    STR(r, "a", "Roses\nViolets");
    STR(r, "b", "The quick fox jumps.");
    STR(r, "c", "Here are two quotes: \"\". Simple.");
    STR(r, "d", "\"quoted\"");
    STR(r, "e", "x\"\"");
    STR(r, "f", "win\nend");
    STR(r, "g", "esc \"\"\" A");
    assert_int_equal(at(r, "b")->line, 4);
    assert_int_equal(at(r, "c")->line, 9);
    cb__toml_free(r);
}

static void multi_line_literal_strings(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = '''\nThe first newline is\ntrimmed in raw strings.\n'''\n"
                                 "b = ''''That,' she said'''\n"
                                 "c = '''no \\escapes \\n here'''''\n");
    STR(r, "a", "The first newline is\ntrimmed in raw strings.\n");
    STR(r, "b", "'That,' she said");
    STR(r, "c", "no \\escapes \\n here''");
    cb__toml_free(r);
}

static void bad_strings_are_rejected(void **state)
{
    (void)state;
    bad("s = \"abc\ndef\"", "line 1, column 9: string is not closed before the end of the line");
    bad("s = 'abc", "string is not closed");
    bad("\n\ns = \"\"\"abc\n", "line 3: multi-line string is never closed");
    bad("s = '''abc\n", "multi-line string is never closed");
    bad("s = \"\"\"a\"\"\"\"\"\"", "too many quotes");
    bad("s = '''a''''''", "too many quotes");
    bad("s = \"a\" \"b\"", "expected end of line, found '\"'");
    bad("s = \"\"\"a\"\"\" b", "expected end of line, found 'b'");
}

static void integers(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = 99\nb = +42\nc = 0\nd = -17\ne = -0\nf = +0\n"
                                 "g = 1_000\nh = 5_349_221\ni = 1_2_3_4_5\n"
                                 "hex = 0xDEAD_beef\noct = 0o01234567\nbin = 0b1101_0110\n"
                                 "max = 9223372036854775807\nmin = -9223372036854775808\n"
                                 "hmax = 0x7fffffffffffffff\nz = 0x0000\n");
    assert_int_equal(int_at(r, "a"), 99);
    assert_int_equal(int_at(r, "b"), 42);
    assert_int_equal(int_at(r, "c"), 0);
    assert_int_equal(int_at(r, "d"), -17);
    assert_int_equal(int_at(r, "e"), 0);
    assert_int_equal(int_at(r, "f"), 0);
    assert_int_equal(int_at(r, "g"), 1000);
    assert_int_equal(int_at(r, "h"), 5349221);
    assert_int_equal(int_at(r, "i"), 12345);
    assert_int_equal(int_at(r, "hex"), 0xDEADBEEF);
    assert_int_equal(int_at(r, "oct"), 01234567);
    assert_int_equal(int_at(r, "bin"), 0xD6);
    assert_true(int_at(r, "max") == INT64_MAX);
    assert_true(int_at(r, "min") == INT64_MIN);
    assert_true(int_at(r, "hmax") == INT64_MAX);
    assert_int_equal(int_at(r, "z"), 0);
    cb__toml_free(r);
}

static void bad_integers_are_rejected(void **state)
{
    (void)state;
    bad("a = 9223372036854775808", "number '9223372036854775808' is out of range");
    bad("a = -9223372036854775809", "out of range");
    bad("a = 0x8000000000000000", "out of range");
    bad("a = 0xffffffffffffffff", "out of range");
    bad("a = 99999999999999999999999999", "out of range");
    bad("a = 012", "invalid number '012': leading zeros are not allowed");
    bad("a = -01", "leading zeros");
    bad("a = 0_1", "leading zeros");
    bad("a = 1__2", "invalid number '1__2'");
    bad("a = 1_", "invalid number '1_'");
    bad("a = _1", "expected a value, found '_'");
    bad("a = 0X1F", "invalid number '0X1F'");
    bad("a = -0x1F", "invalid number");
    bad("a = +0b1", "invalid number");
    bad("a = 0b102", "invalid number");
    bad("a = 0o8", "invalid number");
    bad("a = 0x_1", "invalid number");
    bad("a = 0x", "invalid number");
    bad("a = 1 2", "expected end of line, found '2'");
    bad("a = 12abc", "invalid number '12abc'");
}

static void floats(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = +1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\n"
                                 "f = -2E-2\ng = 6.626e-34\nh = 224_617.445_991_228\n"
                                 "i = 0.0\nj = -0.0\nk = 0e0\nl = 1e-400\n"
                                 "pinf = inf\npinf2 = +inf\nninf = -inf\n"
                                 "nan1 = nan\nnan2 = +nan\nnan3 = -nan\n");
    assert_true(float_at(r, "a") == 1.0);
    assert_true(float_at(r, "b") == 3.1415);
    assert_true(float_at(r, "c") == -0.01);
    assert_true(float_at(r, "d") == 5e22);
    assert_true(float_at(r, "e") == 1e6);
    assert_true(float_at(r, "f") == -2e-2);
    assert_true(float_at(r, "g") == 6.626e-34);
    assert_true(float_at(r, "h") == 224617.445991228);
    assert_true(float_at(r, "i") == 0.0);
    assert_true(float_at(r, "j") == 0.0 && signbit(float_at(r, "j")));
    assert_true(float_at(r, "k") == 0.0);
    assert_true(float_at(r, "l") == 0.0);
    assert_true(isinf(float_at(r, "pinf")) && float_at(r, "pinf") > 0);
    assert_true(isinf(float_at(r, "pinf2")) && float_at(r, "pinf2") > 0);
    assert_true(isinf(float_at(r, "ninf")) && float_at(r, "ninf") < 0);
    assert_true(isnan(float_at(r, "nan1")));
    assert_true(isnan(float_at(r, "nan2")));
    assert_true(isnan(float_at(r, "nan3")));
    cb__toml_free(r);
}

static void bad_floats_are_rejected(void **state)
{
    (void)state;
    bad("a = .5", "expected a value, found '.'");
    bad("a = 5.", "invalid number '5.'");
    bad("a = 1.e5", "invalid number");
    bad("a = 1e", "invalid number");
    bad("a = 1e_5", "invalid number");
    bad("a = 1_.5", "invalid number");
    bad("a = 1._5", "invalid number");
    bad("a = 01.5", "leading zeros");
    bad("a = 1e1000", "number '1e1000' is out of range");
    bad("a = infinity", "invalid number 'infinity'");
    bad("a = NaN", "invalid value 'NaN'");
    bad("a = in_f", "invalid number");
    bad("a = 1.2.3", "invalid number");
}

static void booleans(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("t = true\nf = false\n");
    assert_int_equal(at(r, "t")->type, CB_TOML_BOOL);
    assert_true(at(r, "t")->u.b);
    assert_false(at(r, "f")->u.b);
    cb__toml_free(r);
    bad("t = True", "invalid value 'True' (strings need quotes)");
    bad("t = truex", "invalid value 'truex'");
    bad("t = bare", "invalid value 'bare'");
    bad("t = true false", "expected end of line");
}

static void assert_dt(const struct cb_toml_value *root, const char *key, enum cb_toml_type type,
                      const char *text)
{
    const struct cb_toml_value *v = at(root, key);
    assert_int_equal(v->type, type);
    assert_string_equal(v->u.str.ptr, text);
    assert_int_equal(v->u.str.len, strlen(text));
}

static void dates_and_times(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("odt1 = 1979-05-27T07:32:00Z\n"
                                 "odt2 = 1979-05-27T00:32:00-07:00\n"
                                 "odt3 = 1979-05-27T00:32:00.999999+07:00\n"
                                 "odt4 = 1979-05-27 07:32:00z\n"
                                 "odt5 = 1979-05-27t07:32:00Z\n"
                                 "ldt = 1979-05-27T07:32:00.5\n"
                                 "ld = 1979-05-27 # a comment\n"
                                 "lt = 00:32:00.999999\n"
                                 "leap = 2020-02-29\n"
                                 "sec60 = 1990-12-31T23:59:60Z\n");
    assert_dt(r, "odt1", CB_TOML_DATETIME, "1979-05-27T07:32:00Z");
    assert_dt(r, "odt2", CB_TOML_DATETIME, "1979-05-27T00:32:00-07:00");
    assert_dt(r, "odt3", CB_TOML_DATETIME, "1979-05-27T00:32:00.999999+07:00");
    assert_dt(r, "odt4", CB_TOML_DATETIME, "1979-05-27 07:32:00z");
    assert_dt(r, "odt5", CB_TOML_DATETIME, "1979-05-27t07:32:00Z");
    assert_dt(r, "ldt", CB_TOML_DATETIME_LOCAL, "1979-05-27T07:32:00.5");
    assert_dt(r, "ld", CB_TOML_DATE_LOCAL, "1979-05-27");
    assert_dt(r, "lt", CB_TOML_TIME_LOCAL, "00:32:00.999999");
    assert_dt(r, "leap", CB_TOML_DATE_LOCAL, "2020-02-29");
    assert_dt(r, "sec60", CB_TOML_DATETIME, "1990-12-31T23:59:60Z");
    cb__toml_free(r);
}

static void bad_dates_are_rejected(void **state)
{
    (void)state;
    bad("d = 2021-02-29", "line 1, column 5: day 29 is out of range for 2021-02");
    bad("d = 1900-02-29", "day 29 is out of range");
    bad("d = 2021-13-01", "month 13 is out of range");
    bad("d = 2021-04-31", "day 31 is out of range");
    bad("d = 2021-1-01", "invalid date");
    bad("d = 24:00:00", "time 24:00:00 is out of range");
    bad("d = 12:60:00", "out of range");
    bad("d = 12:00:61", "out of range");
    bad("d = 07:32", "invalid time, expected HH:MM:SS");
    bad("d = 1979-05-27T", "invalid time");
    bad("d = 1979-05-27T07:32:00+24:00", "time offset +24:00 is out of range");
    bad("d = 1979-05-27T07:32:00+0700", "invalid time offset");
    bad("d = 1979-05-27T07:32:00.Z", "must be followed by digits");
    bad("d = 1979-05-27T07:32:00ZZ", "expected end of line, found 'Z'");
    bad("d = 07:32:00Z", "expected end of line, found 'Z'");
}

static void arrays(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = [ 1, 2, 3 ]\n"
                                 "b = [ [ 1, 2 ], [\"a\", 'b'], [] ]\n"
                                 "c = [\n  1, # one\n  # nothing\n  2,\n]\n"
                                 "d = [ 0.1, \"x\", { k = 1 }, 1979-05-27 ]\n"
                                 "e = []\n");
    const struct cb_toml_value *a = at(r, "a");
    assert_int_equal(a->type, CB_TOML_ARRAY);
    assert_int_equal(a->u.arr.len, 3);
    assert_int_equal(a->u.arr.items[2]->u.i, 3);
    const struct cb_toml_value *b = at(r, "b");
    assert_int_equal(b->u.arr.len, 3);
    assert_int_equal(b->u.arr.items[1]->u.arr.len, 2);
    assert_string_equal(b->u.arr.items[1]->u.arr.items[1]->u.str.ptr, "b");
    assert_int_equal(b->u.arr.items[2]->u.arr.len, 0);
    const struct cb_toml_value *c = at(r, "c");
    assert_int_equal(c->u.arr.len, 2);
    assert_int_equal(c->u.arr.items[1]->line, 6);
    const struct cb_toml_value *d = at(r, "d");
    assert_int_equal(d->u.arr.items[2]->type, CB_TOML_TABLE);
    assert_int_equal(cb_toml_get(d->u.arr.items[2], "k")->u.i, 1);
    assert_int_equal(d->u.arr.items[3]->type, CB_TOML_DATE_LOCAL);
    assert_int_equal(at(r, "e")->u.arr.len, 0);
    cb__toml_free(r);
}

static void bad_arrays_are_rejected(void **state)
{
    (void)state;
    bad("a = [1 2]", "line 1, column 8: expected ',' or ']' in array, found '2'");
    bad("a = [1,,2]", "expected a value, found ','");
    bad("a = [,]", "expected a value, found ','");
    bad("a = [1, 2", "found end of input");
    bad("a = [\n1,\n2\n", "line 4, column 1: expected ',' or ']' in array, found end of input");
    bad("a = [\n1,\n", "line 3, column 1: expected a value, found end of input");
}

static void inline_tables(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
                                 "point = {x=1,y=2}\n"
                                 "animal = { type.name = \"pug\", type.size = 3 }\n"
                                 "nest = { a = { b = { c = [ { d = 1 } ] } } }\n"
                                 "empty = {}\n");
    STR(r, "name.first", "Tom");
    assert_int_equal(int_at(r, "point.y"), 2);
    STR(r, "animal.type.name", "pug");
    assert_int_equal(int_at(r, "animal.type.size"), 3);
    const struct cb_toml_value *c = at(r, "nest.a.b.c");
    assert_int_equal(cb_toml_get(c->u.arr.items[0], "d")->u.i, 1);
    assert_int_equal(at(r, "empty")->u.tbl.len, 0);
    cb__toml_free(r);
}

static void bad_inline_tables_are_rejected(void **state)
{
    (void)state;
    bad("a = { b = 1, }", "trailing comma in inline table");
    bad("a = { b = 1\n}", "expected ',' or '}' in inline table, found end of line");
    bad("a = {\nb = 1 }", "expected a key, found end of line");
    bad("a = { b = 1 c = 2 }", "found 'c'");
    bad("a = { b = 1, b = 2 }", "duplicate key 'b'");
    bad("a = { b = {}, b.c = 1 }", "cannot extend 'b': it is an inline table");
    bad("a = { b = 1 }\n[a]", "line 2: cannot define table [a]: it is already an inline table");
    bad("a = { b = 1 }\n[a.c]", "line 2: cannot extend 'a': it is an inline table (line 1)");
    bad("a = { b = 1 }\na.c = 2", "cannot extend 'a': it is an inline table");
    bad("a = { b = { c = 1 } }\n[a.b.d]", "cannot extend 'a'");
    bad("a = [ { b = 1 } ]\n[a.c]", "cannot extend 'a': it is a static array");
    bad("a = [ { b = 1 } ]\n[[a]]",
        "cannot define array of tables [[a]]: it is already a static array");
}

static void keys(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("bare_key-1 = 1\n1234 = 2\n\"127.0.0.1\" = 3\n"
                                 "'quoted \"value\"' = 4\n\"\" = 5\n"
                                 "3.14159 = \"pi\"\n"
                                 "site . \"google.com\" = true\n"
                                 "\"\\u00e9t\\u00e9\" = 6\n"
                                 "\"a\\u0000b\" = 7\n");
    assert_int_equal(int_at(r, "bare_key-1"), 1);
    assert_int_equal(int_at(r, "1234"), 2);
    assert_int_equal(cb_toml_get(r, "127.0.0.1")->u.i, 3);
    assert_int_equal(cb_toml_get(r, "quoted \"value\"")->u.i, 4);
    assert_int_equal(cb_toml_get(r, "")->u.i, 5);
    STR(r, "3.14159", "pi");
    assert_true(cb_toml_get(at(r, "site"), "google.com")->u.b);
    assert_int_equal(cb_toml_get(r, "\xC3\xA9t\xC3\xA9")->u.i, 6);
    const struct cb_toml_kv *kv = &r->u.tbl.items[r->u.tbl.len - 1];
    assert_int_equal(kv->key_len, 3);
    assert_memory_equal(kv->key, "a\0b", 4);
    cb__toml_free(r);
}

static void bad_keys_are_rejected(void **state)
{
    (void)state;
    bad("= 1", "line 1, column 1: expected a key, found '='");
    bad("a b = 1", "expected '=' after key 'a', found 'b'");
    bad("a. = 1", "expected a key, found '='");
    bad(".a = 1", "expected a key, found '.'");
    bad("a..b = 1", "expected a key, found '.'");
    bad("\"\"\"a\"\"\" = 1", "a multi-line string cannot be a key");
    bad("a = 1 = 2", "expected end of line, found '='");
    bad("a", "expected '=' after key 'a', found end of input");
    bad("a =", "expected a value, found end of input");
    bad("\xC3\xA9 = 1", "expected a key, found a non-ASCII character");
}

static void dotted_keys(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("name = \"Orange\"\n"
                                 "physical.color = \"orange\"\n"
                                 "physical.shape = \"round\"\n"
                                 "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
                                 "[fruit.apple.texture]\nsmooth = true\n");
    STR(r, "physical.color", "orange");
    STR(r, "physical.shape", "round");
    assert_true(at(r, "fruit.apple.taste.sweet")->u.b);
    assert_true(at(r, "fruit.apple.texture.smooth")->u.b);
    cb__toml_free(r);
    r = ok("apple.type = \"fruit\"\norange.type = \"fruit\"\napple.skin = \"thin\"\n");
    STR(r, "apple.skin", "thin");
    cb__toml_free(r);
    /* A table that so far only exists as the parent of a header may be
     * extended with dotted keys (as Python's tomllib allows). */
    r = ok("[a.b.c]\nx = 1\n[a]\nb.d = 2\n");
    assert_int_equal(int_at(r, "a.b.d"), 2);
    cb__toml_free(r);
}

static void bad_dotted_keys_are_rejected(void **state)
{
    (void)state;
    bad("a = 1\na.b = 2", "line 2: cannot use 'a' as a table: it is an integer (line 1)");
    bad("a.b = 1\na.b.c = 2", "cannot use 'a.b' as a table: it is an integer");
    bad("a.b = 1\na = 2", "line 2: duplicate key 'a' (first defined on line 1)");
    bad("a.b = 1\na.b = 2", "duplicate key 'a.b'");
    bad("[fruit]\napple.color = \"red\"\n[fruit.apple]",
        "line 3: table [fruit.apple] was already defined by dotted keys (line 2)");
    bad("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", "already defined by dotted keys");
    bad("[a.b.c]\nz = 9\n[a]\nb.c.t = 1",
        "line 4: cannot add to table 'b.c' with dotted keys: it has its own header (line 1)");
    bad("[a.b.c]\n[a]\nb.d = 2\n[a.b]", "table [a.b] was already defined by dotted keys");
    bad("[[arr]]\nx.y = 1\n[arr.x]", "table [arr.x] was already defined by dotted keys");
}

static void tables(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("[table-1]\nkey1 = \"some string\"\n"
                                 "[ dog . \"tater.man\" ]\ntype.name = \"pug\"\n"
                                 "[x.y.z.w]\n[x]\nk = 1\n"
                                 "[ j . \"ʞ\" . 'l' ]\n"
                                 "[empty]\n");
    STR(r, "table-1.key1", "some string");
    STR(cb_toml_get(at(r, "dog"), "tater.man"), "type.name", "pug");
    assert_int_equal(int_at(r, "x.k"), 1);
    assert_int_equal(at(r, "x.y.z.w")->type, CB_TOML_TABLE);
    assert_int_equal(at(r, "x")->line, 6);
    assert_int_equal(at(r, "empty")->u.tbl.len, 0);
    assert_int_equal(at(r, "empty")->line, 9);
    cb__toml_free(r);
}

static void bad_tables_are_rejected(void **state)
{
    (void)state;
    bad("[a]\nb = 1\n\n[a]", "line 4: table [a] is defined twice (first on line 1)");
    bad("[a]\nb = 1\n[a.b]",
        "line 3: cannot define table [a.b]: it is already an integer (line 2)");
    bad("[a.b]\n[a]\n[a]", "table [a] is defined twice");
    bad("a = 1\n[a]", "cannot define table [a]: it is already an integer");
    bad("[a]\nb = 1\n[a.b.c]", "cannot use 'a.b' as a table: it is an integer");
    bad("[]", "expected a key, found ']'");
    bad("[a", "expected ']' to close the table header, found end of input");
    bad("[a b]", "expected ']' to close the table header, found 'b'");
    bad("[a] b = 1", "expected end of line, found 'b'");
    bad("[a.]", "expected a key, found ']'");
    bad("[[a]", "line 1, column 4: expected ']]' to close the table header, found ']'");
    bad("[[a] ]", "expected ']]'");
}

static void arrays_of_tables(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("[[fruits]]\nname = \"apple\"\n"
                                 "[fruits.physical]\ncolor = \"red\"\n"
                                 "[[fruits.varieties]]\nname = \"red delicious\"\n"
                                 "[[fruits.varieties]]\nname = \"granny smith\"\n"
                                 "[[fruits]]\nname = \"banana\"\n"
                                 "[[fruits.varieties]]\nname = \"plantain\"\n"
                                 "[[empty]]\n[[empty]]\n");
    const struct cb_toml_value *f = at(r, "fruits");
    assert_int_equal(f->type, CB_TOML_ARRAY);
    assert_int_equal(f->u.arr.len, 2);
    STR(f->u.arr.items[0], "physical.color", "red");
    const struct cb_toml_value *v = cb_toml_get(f->u.arr.items[0], "varieties");
    assert_int_equal(v->u.arr.len, 2);
    STR(v->u.arr.items[1], "name", "granny smith");
    v = cb_toml_get(f->u.arr.items[1], "varieties");
    assert_int_equal(v->u.arr.len, 1);
    STR(v->u.arr.items[0], "name", "plantain");
    assert_int_equal(at(r, "empty")->u.arr.len, 2);
    assert_int_equal(f->u.arr.items[1]->line, 9);
    cb__toml_free(r);
}

static void bad_arrays_of_tables_are_rejected(void **state)
{
    (void)state;
    bad("fruits = []\n[[fruits]]",
        "line 2: cannot define array of tables [[fruits]]: it is already a static array (line 1)");
    bad("[a]\n[[a]]", "cannot define array of tables [[a]]: it is already a table");
    bad("[[a]]\n[a]", "cannot define table [a]: it is already an array of tables");
    bad("[[a.b]]\n[[a]]", "it is already a table");
    bad("[[fruits]]\n[fruits.physical]\n[fruits.physical]",
        "table [fruits.physical] is defined twice");
    bad("[[a]]\nb = 1\n[[a.b]]", "cannot define array of tables [[a.b]]: it is already an integer");
}

static void duplicate_key_message_names_key_and_line(void **state)
{
    (void)state;
    struct cb_error err = {0};
    const char *text = "[server]\nhost = \"x\"\n\n# comment\n\nother = 1\nport = 80\nport = 81\n";
    assert_null(cb_toml_parse(text, strlen(text), &err));
    assert_string_equal(err.msg, "line 8: duplicate key 'port' (first defined on line 7)");
    text = "a = 1\n\"a b\".\"c\\u0001\" = 1\n\"a b\".\"c\\u0001\" = 2";
    assert_null(cb_toml_parse(text, strlen(text), &err));
    assert_string_equal(err.msg,
                        "line 3: duplicate key '\"a b\".\"c?\"' (first defined on line 2)");
}

static void errors_carry_line_and_column(void **state)
{
    (void)state;
    struct cb_error err = {0};
    const char *text = "a = 1\r\nb = 2\r\n\r\n  c = [1, 2,, 3]\n";
    assert_null(cb_toml_parse(text, strlen(text), &err));
    assert_string_equal(err.msg, "line 4, column 13: expected a value, found ','");
    /* Columns count characters, not bytes. */
    text = "s = \"\xC3\xA9\xC3\xA9\" x";
    assert_null(cb_toml_parse(text, strlen(text), &err));
    assert_string_equal(err.msg, "line 1, column 10: expected end of line, found 'x'");
}

static void encoding_and_control_characters(void **state)
{
    (void)state;
    bad_n("a = 1 # nul \0 here", 18, "line 1, column 13: control character U+0000 is not allowed");
    bad("# del \x7F", "control character U+007F");
    bad("s = \"a\x1F\"", "control character U+001F");
    bad("s = '''a\x0C'''", "control character U+000C");
    bad("a = 1\rb = 2", "line 1, column 6: carriage return not followed by a line feed");
    bad("a = 1\n# \xC0\x80", "line 2, column 3: invalid UTF-8");
    bad("s = \"\xED\xA0\x80\"", "invalid UTF-8");
    bad("s = \"\xF4\x90\x80\x80\"", "invalid UTF-8");
    bad("s = \"\xF5\x80\x80\x80\"", "invalid UTF-8");
    bad("s = \"\xE2\x82\"", "invalid UTF-8");
    bad("s = \"a\" \xEF\xBB\xBF", "found a non-ASCII character");
    struct cb_toml_value *r = ok("\xEF\xBB\xBF"
                                 "a = \"\xF0\x9F\x98\x80 \xEF\xBB\xBF\" # \xE2\x82\xAC\tok\r\n");
    STR(r, "a", "\xF0\x9F\x98\x80 \xEF\xBB\xBF");
    cb__toml_free(r);
}

static void empty_and_comment_only_documents(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("");
    assert_int_equal(r->u.tbl.len, 0);
    cb__toml_free(r);
    struct cb_error err = {0};
    r = cb_toml_parse(NULL, 0, &err);
    assert_non_null(r);
    assert_int_equal(r->u.tbl.len, 0);
    cb__toml_free(r);
    r = ok("# only\n\n   \t# comments\n#");
    assert_int_equal(r->u.tbl.len, 0);
    cb__toml_free(r);
    cb__toml_free(NULL);
}

static void input_size_is_bounded(void **state)
{
    (void)state;
    size_t n = CB_TOML_MAX_INPUT + 1;
    char *big = cb_xmalloc(n);
    memset(big, '\n', n);
    struct cb_error err = {0};
    assert_null(cb_toml_parse(big, n, &err));
    assert_int_equal(err.code, -E2BIG);
    assert_non_null(strstr(err.msg, "line 1: document is 4194305 bytes"));
    struct cb_toml_value *r = ok_n(big, n - 1);
    cb__toml_free(r);
    free(big);
}

/* "a = " followed by `depth` opening brackets and as many closing ones. */
static char *nested(const char *open, const char *close, int depth)
{
    struct {
        char *p;
        size_t n;
    } b = {cb_xmalloc(8 + (size_t)depth * 8), 0};
    b.n += (size_t)snprintf(b.p, 8, "a = ");
    for (int i = 0; i < depth; i++)
        b.n += (size_t)snprintf(b.p + b.n, 8, "%s", open);
    for (int i = 0; i < depth; i++)
        b.n += (size_t)snprintf(b.p + b.n, 8, "%s", close);
    return b.p;
}

static void nesting_depth_is_bounded(void **state)
{
    (void)state;
    char *s = nested("[", "]", CB_TOML_MAX_DEPTH);
    struct cb_toml_value *r = ok(s);
    cb__toml_free(r);
    free(s);
    s = nested("[", "]", CB_TOML_MAX_DEPTH + 1);
    bad(s, "nesting is deeper than 128 levels");
    free(s);
    s = nested("{b=", "}", CB_TOML_MAX_DEPTH + 1);
    bad(s, "nesting is deeper than 128 levels");
    free(s);
    s = nested("[", "]", 100000);
    bad(s, "nesting is deeper");
    free(s);
    /* Dotted keys and headers nest too. */
    char key[CB_TOML_MAX_DEPTH * 2 + 16] = "k";
    for (size_t i = 1; i < CB_TOML_MAX_DEPTH; i++)
        memcpy(key + 2 * i - 1, ".k", 3);
    char doc[sizeof(key) + 64];
    snprintf(doc, sizeof(doc), "%s = 1", key);
    r = ok(doc);
    cb__toml_free(r);
    snprintf(doc, sizeof(doc), "%s.k = 1", key);
    bad(doc, "key has more than 128 parts");
    snprintf(doc, sizeof(doc), "[%s]\na = [1]", key);
    bad(doc, "nesting is deeper");
    snprintf(doc, sizeof(doc), "[%s]\nb.c = 1", key);
    bad(doc, "nesting is deeper");
}

static void large_tables_find_every_key(void **state)
{
    (void)state;
    enum { N = 2000 };
    char *doc = cb_xmalloc(N * 32);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(doc + n, 32, "key%d = %d\n", i, i);
    struct cb_toml_value *r = ok_n(doc, n);
    assert_int_equal(r->u.tbl.len, N);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(int_at(r, k), i);
        assert_memory_equal(r->u.tbl.items[i].key, k, strlen(k) + 1);
    }
    assert_null(cb_toml_get(r, "key2000"));
    cb__toml_free(r);
    n += (size_t)snprintf(doc + n, 32, "key1234 = 0\n");
    bad_n(doc, n, "line 2001: duplicate key 'key1234' (first defined on line 1235)");
    free(doc);
}

static void get_and_type_names(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("a = 1\n[t]\nb = 2\n");
    assert_null(cb_toml_get(r, "missing"));
    assert_null(cb_toml_get(at(r, "a"), "x"));
    assert_null(cb_toml_get(NULL, "x"));
    assert_null(cb_toml_get(r, NULL));
    assert_int_equal(at(r, "t.b")->u.i, 2);
    assert_int_equal(at(r, "t.b")->line, 3);
    assert_int_equal(at(r, "t")->line, 2);
    cb__toml_free(r);
    assert_string_equal(cb__toml_type_name(CB_TOML_STRING), "string");
    assert_string_equal(cb__toml_type_name(CB_TOML_INTEGER), "integer");
    assert_string_equal(cb__toml_type_name(CB_TOML_FLOAT), "float");
    assert_string_equal(cb__toml_type_name(CB_TOML_BOOL), "bool");
    assert_string_equal(cb__toml_type_name(CB_TOML_DATETIME), "datetime");
    assert_string_equal(cb__toml_type_name(CB_TOML_DATETIME_LOCAL), "datetime-local");
    assert_string_equal(cb__toml_type_name(CB_TOML_DATE_LOCAL), "date-local");
    assert_string_equal(cb__toml_type_name(CB_TOML_TIME_LOCAL), "time-local");
    assert_string_equal(cb__toml_type_name(CB_TOML_ARRAY), "array");
    assert_string_equal(cb__toml_type_name(CB_TOML_TABLE), "table");
    assert_string_equal(cb__toml_type_name((enum cb_toml_type)99), "unknown");
}

static void document_order_is_kept(void **state)
{
    (void)state;
    struct cb_toml_value *r = ok("z = 1\na = 2\n[m]\n[b]\n");
    const char *want[] = {"z", "a", "m", "b"};
    assert_int_equal(r->u.tbl.len, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(r->u.tbl.items[i].key, want[i]);
    cb__toml_free(r);
}

/* TOML to JSON: every type, nesting, document order, and the parse error. */
static void converts_to_json(void **state)
{
    (void)state;
    static const char text[] = "b = true\ni = -3\nf = 1.5\ns = \"x\"\nd = 1979-05-27\n"
                               "a = [1, \"two\"]\n[t]\nk = \"v\"\n[[arr]]\nn = 1\n";
    struct cb_error err = {0};
    json_t *j = cb_toml_to_json(text, sizeof(text) - 1, &err);
    assert_non_null(j);
    json_t *want = json_loads("{\"b\": true, \"i\": -3, \"f\": 1.5, \"s\": \"x\", \"d\": "
                              "\"1979-05-27\", \"a\": [1, \"two\"], \"t\": {\"k\": \"v\"}, "
                              "\"arr\": [{\"n\": 1}]}",
                              0, NULL);
    assert_true(json_equal(j, want));
    const char *first;
    json_t *v;
    json_object_foreach(j, first, v) break;
    assert_string_equal(first, "b");
    json_decref(j);
    json_decref(want);
    assert_null(cb_toml_to_json("a = ", 4, &err));
    assert_non_null(strstr(err.msg, "line 1"));
    static const char nan_text[] = "x = 1\n[t]\ny = nan\n";
    assert_null(cb_toml_to_json(nan_text, sizeof(nan_text) - 1, &err));
    assert_string_equal(err.msg, "line 3: nan and inf have no JSON form");
    static const char arr_text[] = "a = [1, inf]\n";
    assert_null(cb_toml_to_json(arr_text, sizeof(arr_text) - 1, &err));
    assert_non_null(strstr(err.msg, "line 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic_string_escapes),
        cmocka_unit_test(bad_escapes_are_rejected),
        cmocka_unit_test(literal_strings_keep_backslashes),
        cmocka_unit_test(multi_line_basic_strings),
        cmocka_unit_test(multi_line_literal_strings),
        cmocka_unit_test(bad_strings_are_rejected),
        cmocka_unit_test(integers),
        cmocka_unit_test(bad_integers_are_rejected),
        cmocka_unit_test(floats),
        cmocka_unit_test(bad_floats_are_rejected),
        cmocka_unit_test(booleans),
        cmocka_unit_test(dates_and_times),
        cmocka_unit_test(bad_dates_are_rejected),
        cmocka_unit_test(arrays),
        cmocka_unit_test(bad_arrays_are_rejected),
        cmocka_unit_test(inline_tables),
        cmocka_unit_test(bad_inline_tables_are_rejected),
        cmocka_unit_test(keys),
        cmocka_unit_test(bad_keys_are_rejected),
        cmocka_unit_test(dotted_keys),
        cmocka_unit_test(bad_dotted_keys_are_rejected),
        cmocka_unit_test(tables),
        cmocka_unit_test(bad_tables_are_rejected),
        cmocka_unit_test(arrays_of_tables),
        cmocka_unit_test(bad_arrays_of_tables_are_rejected),
        cmocka_unit_test(duplicate_key_message_names_key_and_line),
        cmocka_unit_test(errors_carry_line_and_column),
        cmocka_unit_test(encoding_and_control_characters),
        cmocka_unit_test(empty_and_comment_only_documents),
        cmocka_unit_test(input_size_is_bounded),
        cmocka_unit_test(nesting_depth_is_bounded),
        cmocka_unit_test(large_tables_find_every_key),
        cmocka_unit_test(get_and_type_names),
        cmocka_unit_test(document_order_is_kept),
        cmocka_unit_test(converts_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
