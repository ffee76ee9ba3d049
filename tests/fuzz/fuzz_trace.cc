// libFuzzer target for `mmsim replay`'s trace reader.
//
// The bytes are written to a memfd and read with TraceReader, in each of the
// three formats (auto, lackey, pages). Every access it hands out must have a
// size of 1 to 65536 bytes (a pages line: one page at a page-aligned
// address); the read must end either cleanly or with exactly one error line
// "FILE:LINE: ..."; a crash or a malformed message aborts. The single-line
// parsers are driven with each line of the input too.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "trace_parse.h"

namespace {

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_trace: %s\n", why.c_str());
  std::abort();
}

void check_record(const mmsim::TraceRecord& r, bool pages) {
  if (r.size < 1 || r.size > 65536) fail("an access of " + std::to_string(r.size) + " bytes");
  if (pages && (r.size != 4096 || r.addr % 4096)) fail("a pages access that is not one page");
  if (r.addr + (r.size - 1) < r.addr) fail("an access past the end of the address space");
}

// A memfd, so no file outlives the run; read through /proc/self/fd.
int trace_fd() {
  static const int fd = memfd_create("fuzz_trace", 0);
  if (fd < 0) fail("cannot make a memfd");
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Each line through both line parsers.
  for (size_t pos = 0; pos <= text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    for (bool pages : {false, true}) {
      mmsim::TraceRecord rec;
      std::string why;
      const mmsim::LineKind k = pages ? mmsim::parse_pages_line(line, &rec, &why)
                                      : mmsim::parse_lackey_line(line, &rec, &why);
      if (k == mmsim::LineKind::kAccess) check_record(rec, pages);
      if (k == mmsim::LineKind::kBad && (why.empty() || why.find('\n') != std::string::npos))
        fail("a bad line without a one-line reason");
    }
    pos = end + 1;
  }
  const int fd = trace_fd();
  if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)))
    fail("cannot write the trace");
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  for (mmsim::TraceFormat fmt :
       {mmsim::TraceFormat::kAuto, mmsim::TraceFormat::kLackey, mmsim::TraceFormat::kPages}) {
    mmsim::TraceReader r;
    if (std::string err = r.open(path, fmt); !err.empty()) fail("open: " + err);
    mmsim::TraceRecord rec;
    uint64_t n = 0;
    while (r.next(&rec)) {
      check_record(rec, r.format() == mmsim::TraceFormat::kPages);
      if (++n > size + 1) fail("more accesses than bytes");
    }
    const std::string& err = r.error();
    if (!err.empty() && (err.rfind(path + ":", 0) != 0 || err.find('\n') != std::string::npos))
      fail("malformed error message: " + err);
  }
  return 0;
}
