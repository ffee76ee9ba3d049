// What every TOML file of the project (machine configs, mmsim's job files)
// needs around toml++ to give every bad input one line and never crash: a
// screen for bytes toml++ must not see, size strings ("512MiB"), quoting for
// messages, node type names and "did you mean" distances. One copy, so a
// job file and a machine file accept the same sizes and refuse the same
// bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace mmkit {

// The first problem with `text` that toml++ should not meet: a raw control
// character (TOML forbids them outside escapes), or a non-ASCII byte outside
// a comment or one-line string (toml++ 3.3 reaches __builtin_unreachable()
// on some code points where it expects whitespace: marzer/tomlplusplus#190,
// #295). Returns false and sets *line and *what when there is one.
bool toml_screen(std::string_view text, uint32_t* line, std::string* what);

// "1GiB", "64MiB", "4096", "2G": bytes (1024-based B, K/KiB/KB, M, G, T
// suffixes in any case), or false with *why set ("\"12XB\" is not a size...").
bool parse_size(std::string_view s, uint64_t* out, std::string* why);

// `s` in double quotes for a one-line message: quotes, backslashes and
// control bytes escaped, long strings shortened.
std::string quoted(std::string_view s);

// toml++'s error descriptions, made sure to be one line.
std::string one_line(std::string_view s);

// "a string", "an integer", ...: what a node is, for "expected X, got Y".
const char* type_name(const toml::node& n);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace mmkit
