// What mmsim's own TOML files (job files) need around toml++ to give every
// bad input one line and never crash: a screen for bytes toml++ must not
// see, size strings ("512MiB"), quoting for messages and node type names.
//
// The machine config's loader (src/phys/config_toml.cc) has the same
// helpers in an anonymous namespace; these are mmsim's copies until the core
// exports them, and they accept and refuse exactly what that loader does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace mmsim {

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

}  // namespace mmsim
