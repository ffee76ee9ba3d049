// Page-access traces for `mmsim replay`, read as a stream (a line at a
// time, gzip or plain; zlib reads both), so a trace of any length replays
// in constant host memory.
//
//   lackey  what `valgrind --tool=lackey --trace-mem=yes` prints:
//             I  04016ec0,3        an instruction fetch (a read, of code)
//              L 1ffefffd68,8      a load
//              S 1ffefffd68,8      a store
//              M 0421c290,4        a modify: a load, then a store
//           hex address, decimal size (1..65536); an access that straddles
//           a page boundary touches every page it covers. Lines starting
//           with "==" (Valgrind's own) and any other line that is not an
//           access are skipped.
//   pages   one access per line: "R PAGE" (a read), "W PAGE" (a write) or
//           "X PAGE" (an instruction fetch, lackey's I), the page number in
//           hex with an optional 0x (lower case too); blank lines and lines
//           starting with '#' are skipped.
//
// Without a format the first access line decides. A line that starts like
// an access but is not one is an error, "FILE:LINE: what is wrong".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mmsim {

enum class TraceFormat : uint8_t { kAuto, kLackey, kPages };
enum class TraceOp : uint8_t { kRead, kWrite, kModify };

struct TraceRecord {
  uint64_t addr = 0;
  uint64_t size = 0;  // bytes, at least 1
  TraceOp op = TraceOp::kRead;
  bool fetch = false;  // a lackey instruction fetch ("I"): a read of code
};

enum class LineKind : uint8_t { kAccess, kSkip, kBad };

// One line (without its newline) of each format; *why says what is wrong
// for kBad.
LineKind parse_lackey_line(std::string_view line, TraceRecord* rec, std::string* why);
LineKind parse_pages_line(std::string_view line, TraceRecord* rec, std::string* why);
// The format whose access syntax `line` starts with, or kAuto for neither.
TraceFormat detect_format(std::string_view line);
const char* format_name(TraceFormat f);

// A streaming reader over a file ("-": standard input).
class TraceReader {
 public:
  TraceReader() = default;
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // "" or "PATH: cannot read: why".
  std::string open(const std::string& path, TraceFormat format);
  // The next access: false at the end of the trace or on an error (then
  // error() is "FILE:LINE: what is wrong").
  bool next(TraceRecord* rec);
  const std::string& error() const { return error_; }
  TraceFormat format() const { return format_; }

 private:
  // The next line into line_ (its first kMaxLine bytes); false at the end
  // or on a read error.
  bool read_line();
  bool refill();
  bool fail(uint64_t line, const std::string& what);

  static constexpr size_t kBufBytes = 1 << 16;
  void* gz_ = nullptr;  // gzFile
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
  std::string path_;
  TraceFormat format_ = TraceFormat::kAuto;
  std::string line_;
  bool truncated_ = false;  // line_ holds only the start of a longer line
  uint64_t line_no_ = 0;
  // Auto-detection: the first line skipped before the format was known
  // that a pages trace would not have skipped.
  uint64_t first_odd_line_ = 0;
  std::string first_odd_text_;
  std::string error_;
};

}  // namespace mmsim
