// cpp_wordcount: counts the lines, words and characters of params.text and
// lists the most frequent words. Written in C++ (std::string, std::map,
// std::vector) on top of the C SDK, to show that any language that targets
// wasm32-wasi can implement the tool ABI.
// Params: {"text": string, "top"?: 0..100 (10)}
// Output: {"tool":"cpp_wordcount","lines","words","chars","bytes",
//          "unique_words","top_words":[{"word","count"}]}
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace
{

struct Counts {
    size_t lines = 0;
    size_t words = 0;
    size_t chars = 0; // Unicode scalar values
    size_t bytes = 0;
    std::map<std::string, size_t> freq;
};

bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_punct(unsigned char c)
{
    return c < 0x80 &&
           !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '\'' || c == '-' || c == '_');
}

// Lower-cases ASCII letters and strips punctuation at both ends, so that
// "Hello," and "hello" count as one word.
std::string normalise(const std::string &word)
{
    std::string w;
    for (unsigned char c : word)
        w.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : static_cast<char>(c));
    size_t b = 0, e = w.size();
    while (b < e && is_punct(static_cast<unsigned char>(w[b])))
        b++;
    while (e > b && is_punct(static_cast<unsigned char>(w[e - 1])))
        e--;
    return w.substr(b, e - b);
}

Counts count(const std::string &text)
{
    Counts c;
    std::string word;
    c.bytes = text.size();
    for (unsigned char ch : text) {
        if ((ch & 0xC0) != 0x80)
            c.chars++;
        if (ch == '\n')
            c.lines++;
        if (!is_space(ch)) {
            word.push_back(static_cast<char>(ch));
            continue;
        }
        if (!word.empty()) {
            c.words++;
            std::string w = normalise(word);
            if (!w.empty())
                c.freq[w]++;
            word.clear();
        }
    }
    if (!word.empty()) {
        c.words++;
        std::string w = normalise(word);
        if (!w.empty())
            c.freq[w]++;
    }
    if (!text.empty() && text.back() != '\n')
        c.lines++;
    return c;
}

struct cb_json *top_words(const Counts &c, size_t top)
{
    std::vector<std::pair<std::string, size_t>> v(c.freq.begin(), c.freq.end());
    std::sort(v.begin(), v.end(), [](const auto &a, const auto &b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    struct cb_json *arr = cb_json_new_array();
    for (size_t i = 0; i < v.size() && i < top; i++) {
        struct cb_json *o = cb_json_new_object();
        cb_json_set(o, "word", cb_json_new_stringn(v[i].first.data(), v[i].first.size()));
        cb_json_set(o, "count", cb_json_new_int(static_cast<long long>(v[i].second)));
        cb_json_append(arr, o);
    }
    return arr;
}

struct cb_json *result(const Counts &c, size_t top)
{
    struct cb_json *out = cb_json_new_object();
    cb_json_set(out, "tool", cb_json_new_string("cpp_wordcount"));
    cb_json_set(out, "lines", cb_json_new_int(static_cast<long long>(c.lines)));
    cb_json_set(out, "words", cb_json_new_int(static_cast<long long>(c.words)));
    cb_json_set(out, "chars", cb_json_new_int(static_cast<long long>(c.chars)));
    cb_json_set(out, "bytes", cb_json_new_int(static_cast<long long>(c.bytes)));
    cb_json_set(out, "unique_words", cb_json_new_int(static_cast<long long>(c.freq.size())));
    cb_json_set(out, "top_words", top_words(c, top));
    return out;
}

} // namespace

int main()
{
    struct cb_tool_error err;
    struct cb_json *params;
    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    const struct cb_json *text = cb_json_get(params, "text");
    const struct cb_json *topv = cb_json_get(params, "top");
    long long top = 10;
    if (!cb_json_str(text)) {
        cb_output_error("invalid input: 'text' must be a string");
    } else if (topv && !cb_json_is(topv, CB_JSON_NULL) &&
               (cb_json_integer(topv, &top) || top < 0 || top > 100)) {
        cb_output_error("invalid input: 'top' must be an integer from 0 to 100");
    } else {
        Counts c = count(std::string(text->text, text->text_len));
        struct cb_json *out = result(c, static_cast<size_t>(top));
        cb_output(out);
        cb_json_free(out);
    }
    cb_json_free(params);
    return 0;
}
