// The trace formats' line parsers and the streaming reader (see
// trace_parse.h). Parsing is by hand, a character at a time: a million
// lines must go by in well under a second.
#include "trace_parse.h"
#include "phys/toml_util.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace mmsim {

using mmkit::quoted;
namespace {

constexpr size_t kMaxLine = 4096;  // longer access lines are refused
constexpr uint64_t kMaxAccessSize = 65536;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

bool is_pages_op(char c) {
  return c == 'R' || c == 'W' || c == 'X' || c == 'r' || c == 'w' || c == 'x';
}

// Hex digits at s[*i...] into *v; false if there are none or more than 16.
bool parse_hex(std::string_view s, size_t* i, uint64_t* v) {
  size_t n = 0;
  *v = 0;
  for (; *i < s.size() && hex_digit(s[*i]) >= 0; ++*i, ++n) {
    if (n == 16) return false;
    *v = *v << 4 | static_cast<uint64_t>(hex_digit(s[*i]));
  }
  return n > 0;
}

bool only_blanks_from(std::string_view s, size_t i) {
  for (; i < s.size(); ++i)
    if (!is_blank(s[i])) return false;
  return true;
}

}  // namespace

const char* format_name(TraceFormat f) {
  switch (f) {
    case TraceFormat::kLackey:
      return "lackey";
    case TraceFormat::kPages:
      return "pages";
    case TraceFormat::kAuto:
      break;
  }
  return "auto";
}

TraceFormat detect_format(std::string_view line) {
  if (line.size() >= 2 && line[0] == 'I' && line[1] == ' ') return TraceFormat::kLackey;
  if (line.size() >= 3 && line[0] == ' ' && (line[1] == 'L' || line[1] == 'S' || line[1] == 'M') &&
      line[2] == ' ')
    return TraceFormat::kLackey;
  if (line.size() >= 2 && is_pages_op(line[0]) && is_blank(line[1])) return TraceFormat::kPages;
  return TraceFormat::kAuto;
}

LineKind parse_lackey_line(std::string_view line, TraceRecord* rec, std::string* why) {
  if (detect_format(line) != TraceFormat::kLackey) return LineKind::kSkip;
  size_t i;
  rec->fetch = line[0] == 'I';
  if (rec->fetch) {
    rec->op = TraceOp::kRead;
    i = 1;
  } else {
    rec->op = line[1] == 'L' ? TraceOp::kRead : line[1] == 'S' ? TraceOp::kWrite : TraceOp::kModify;
    i = 2;
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const size_t addr_at = i;
  if (!parse_hex(line, &i, &rec->addr)) {
    const size_t end = line.find(',', addr_at);
    *why = fmt::format(
        "bad address {} (expected at most 16 hex digits)",
        quoted(line.substr(addr_at, end == std::string_view::npos ? end : end - addr_at)));
    return LineKind::kBad;
  }
  if (i >= line.size() || line[i] != ',') {
    *why = fmt::format("expected ',SIZE' after the address, got {}", quoted(line.substr(i)));
    return LineKind::kBad;
  }
  ++i;
  const size_t size_at = i;
  uint64_t size = 0;
  for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
    size = size * 10 + static_cast<uint64_t>(line[i] - '0');
    if (size > kMaxAccessSize) break;
  }
  if (i == size_at || !only_blanks_from(line, i) || size == 0 || size > kMaxAccessSize) {
    *why = fmt::format("bad size {} (expected a decimal number of bytes, 1..{})",
                       quoted(line.substr(size_at)), kMaxAccessSize);
    return LineKind::kBad;
  }
  if (rec->addr + (size - 1) < rec->addr) {
    *why = fmt::format("access at {:#x} of {} bytes runs past the end of the address space",
                       rec->addr, size);
    return LineKind::kBad;
  }
  rec->size = size;
  return LineKind::kAccess;
}

LineKind parse_pages_line(std::string_view line, TraceRecord* rec, std::string* why) {
  size_t i = 0;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i == line.size() || line[i] == '#') return LineKind::kSkip;
  const char op = line[i];
  if (!is_pages_op(op) || i + 1 >= line.size() || !is_blank(line[i + 1])) {
    *why = fmt::format(
        "expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got {}",
        quoted(line));
    return LineKind::kBad;
  }
  rec->op = op == 'W' || op == 'w' ? TraceOp::kWrite : TraceOp::kRead;
  rec->fetch = op == 'X' || op == 'x';
  ++i;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i + 1 < line.size() && line[i] == '0' && (line[i + 1] == 'x' || line[i + 1] == 'X')) i += 2;
  const size_t page_at = i;
  uint64_t page = 0;
  if (!parse_hex(line, &i, &page) || !only_blanks_from(line, i)) {
    *why = fmt::format("bad page number {} (expected hex digits)", quoted(line.substr(page_at)));
    return LineKind::kBad;
  }
  if (page >> 52) {
    *why =
        fmt::format("page number {:#x} is too large (a page's address must fit in 64 bits)", page);
    return LineKind::kBad;
  }
  rec->addr = page << 12;
  rec->size = 4096;
  return LineKind::kAccess;
}

TraceReader::~TraceReader() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

std::string TraceReader::open(const std::string& path, TraceFormat format) {
  path_ = path;
  format_ = format;
  gzFile f = path == "-" ? gzdopen(dup(0), "rb") : gzopen(path.c_str(), "rb");
  if (!f) {
    const int err = errno ? errno : ENOMEM;
    return fmt::format("{}: cannot read: {}", path, std::generic_category().message(err));
  }
  gzbuffer(f, 1 << 17);
  gz_ = f;
  buf_ = std::make_unique<char[]>(kBufBytes);
  return "";
}

bool TraceReader::refill() {
  gzFile f = static_cast<gzFile>(gz_);
  pos_ = len_ = 0;
  if (eof_) return false;
  const int n = gzread(f, buf_.get(), kBufBytes);
  if (n < 0) {
    int errnum = 0;
    const char* msg = gzerror(f, &errnum);
    error_ = fmt::format("{}:{}: cannot read: {}", path_, line_no_ + 1,
                         errnum == Z_ERRNO ? std::generic_category().message(errno) : msg);
    eof_ = true;
    return false;
  }
  if (n == 0) {
    eof_ = true;
    // A gzip stream cut short reads as a short file unless asked: zlib
    // keeps Z_BUF_ERROR for the end of input inside a stream.
    int errnum = 0;
    gzerror(f, &errnum);
    if (errnum == Z_BUF_ERROR) {
      error_ = fmt::format("{}:{}: unexpected end of compressed data (the file is truncated)",
                           path_, line_no_ + 1);
      return false;
    }
  }
  len_ = static_cast<size_t>(n);
  return n > 0;
}

bool TraceReader::read_line() {
  line_.clear();
  size_t total = 0;
  bool any = false;
  for (;;) {
    if (pos_ == len_ && !refill()) break;
    const char* start = buf_.get() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
    const size_t n = nl ? static_cast<size_t>(nl - start) : len_ - pos_;
    any = true;
    if (line_.size() < kMaxLine) line_.append(start, std::min(n, kMaxLine - line_.size()));
    total += n;
    pos_ += n + (nl ? 1 : 0);
    if (nl) break;
  }
  if (!any || !error_.empty()) return false;
  truncated_ = total > kMaxLine;
  ++line_no_;
  return true;
}

bool TraceReader::fail(uint64_t line, const std::string& what) {
  error_ = fmt::format("{}:{}: {}", path_, line, what);
  return false;
}

bool TraceReader::next(TraceRecord* rec) {
  if (!error_.empty()) return false;
  while (read_line()) {
    if (format_ == TraceFormat::kAuto) {
      format_ = detect_format(line_);
      if (format_ == TraceFormat::kAuto) {
        // Not an access line of either format: lackey's header, or a
        // mistake in a pages trace (reported if the trace turns out so).
        const std::string_view l = line_;
        const bool pages_skip = l.find_first_not_of(" \t\r") == std::string_view::npos ||
                                l[l.find_first_not_of(" \t\r")] == '#';
        if (!pages_skip && !l.starts_with("==") && first_odd_line_ == 0) {
          first_odd_line_ = line_no_;
          first_odd_text_ = line_;
        }
        continue;
      }
      if (format_ == TraceFormat::kPages && first_odd_line_ != 0) {
        std::string why;
        parse_pages_line(first_odd_text_, rec, &why);
        return fail(first_odd_line_, why);
      }
    }
    std::string why;
    const LineKind k = format_ == TraceFormat::kLackey ? parse_lackey_line(line_, rec, &why)
                                                       : parse_pages_line(line_, rec, &why);
    if (k == LineKind::kSkip) continue;
    if (truncated_) return fail(line_no_, fmt::format("line longer than {} bytes", kMaxLine));
    if (k == LineKind::kBad) return fail(line_no_, why);
    return true;
  }
  return false;
}

}  // namespace mmsim
