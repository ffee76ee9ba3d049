// The project's TOML helpers (see toml_util.h).
#include "phys/toml_util.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace mmkit {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC
// 3629: no overlongs, no surrogates, nothing past U+10FFFF), 0 if none.
size_t utf8_sequence(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if ((byte(i) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

// Control characters and bytes that are not well-formed UTF-8 are shown as
// \xNN, so a message never carries raw binary to the terminal.
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 48;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t i = 0;
  for (size_t shown = 0; i < s.size() && shown < kMaxShown; ++shown) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (const size_t n = ch >= 0x80 ? utf8_sequence(s.substr(i)) : 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      out += "\\x";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
    ++i;
  }
  if (i < s.size()) out += "...";
  return out + "\"";
}

std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  return out;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

bool parse_size(std::string_view s, uint64_t* out, std::string* why) {
  constexpr uint64_t kMaxSize = 1ull << 63;
  const std::string shown = quoted(s);
  const std::string garbage = shown + " is not a size (use e.g. \"512MiB\")";
  if (s.empty()) return *why = garbage, false;
  if (s[0] == '-') return *why = shown + " is negative", false;
  size_t i = 0;
  uint64_t v = 0;
  bool overflow = false;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) overflow = true;
    if (!overflow) v = v * 10 + d;
  }
  if (i == 0) return *why = garbage, false;
  if (i < s.size() && s[i] == '.') {
    *why = shown + " is not a whole number of bytes (use a smaller unit, e.g. \"1536MiB\")";
    return false;
  }
  while (i < s.size() && s[i] == ' ') ++i;
  std::string suffix;
  for (; i < s.size(); ++i) {
    const char ch = s[i];
    suffix += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
  }
  static constexpr struct {
    const char* name;
    int shift;
  } kSuffixes[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
                   {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
                   {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
  int shift = -1;
  for (const auto& suf : kSuffixes)
    if (suffix == suf.name) shift = suf.shift;
  if (shift < 0) return *why = garbage, false;
  if (overflow || v > (kMaxSize >> shift)) {
    *why = shown + " is too large (at most 2^63 bytes)";
    return false;
  }
  *out = v << shift;
  return true;
}

bool toml_screen(std::string_view text, uint32_t* line_out, std::string* what) {
  enum class In { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral } in = In::kCode;
  uint32_t line = 1;
  bool escaped = false;  // the previous character was a backslash in a basic string
  auto run = [&](size_t i, char quote) {
    size_t n = 0;
    while (i + n < text.size() && text[i + n] == quote) ++n;
    return n;
  };
  auto fail = [&](std::string why) {
    *line_out = line;
    *what = std::move(why);
    return false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      return fail(std::string("control character 0x") + kHex[ch >> 4] + kHex[ch & 15] +
                  " is not allowed in TOML (use an escape in a string)");
    }
    if (ch >= 0x80 && in != In::kComment && in != In::kBasic && in != In::kLiteral)
      return fail("non-ASCII character outside a comment or a one-line string");
    if (ch == '\n') {
      ++line;
      escaped = false;
      if (in == In::kComment || in == In::kBasic || in == In::kLiteral) in = In::kCode;
      continue;
    }
    if (escaped) {
      // toml++ classifies the character after a backslash, whitespace included.
      if (ch >= 0x80) return fail("non-ASCII character after a backslash");
      escaped = false;
      continue;
    }
    switch (in) {
      case In::kCode:
        if (ch == '#') {
          in = In::kComment;
        } else if ((ch == '"' || ch == '\'') &&
                   (i == 0 ||
                    std::string_view(" \t\r\n=[{,.").find(text[i - 1]) != std::string_view::npos)) {
          // A quote opens a string only where TOML allows one (a key or a
          // value); inside a bare token toml++ reads on, and so must we.
          const bool multi = run(i, static_cast<char>(ch)) >= 3;
          if (multi) i += 2;
          in = ch == '"' ? (multi ? In::kMultiBasic : In::kBasic)
                         : (multi ? In::kMultiLiteral : In::kLiteral);
        }
        break;
      case In::kComment:
        break;
      case In::kBasic:
      case In::kMultiBasic:
      case In::kLiteral:
      case In::kMultiLiteral: {
        const bool basic = in == In::kBasic || in == In::kMultiBasic;
        const char quote = basic ? '"' : '\'';
        if (basic && ch == '\\') {
          escaped = true;
        } else if (text[i] == quote) {
          if (in == In::kBasic || in == In::kLiteral) {
            in = In::kCode;
          } else if (const size_t n = run(i, quote); n >= 3) {
            // """"" closes with up to two quotes of content before the delimiter.
            i += std::min<size_t>(n, 5) - 1;
            in = In::kCode;
          }
        }
        break;
      }
    }
  }
  return true;
}

}  // namespace mmkit
