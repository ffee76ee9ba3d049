// `mmsim replay`'s trace parsers: both formats' access lines, the lines
// they skip, every bad-line message, format detection, and the streaming
// reader over plain and gzipped files, CRLF endings, long lines and bytes
// a text file should not hold.
#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>
#include <vector>

#include "../support/mmsim_cli.h"
#include "trace_parse.h"

namespace mmsim {
namespace {

using mmkit::test::write_temp;

TraceRecord lackey(const std::string& line) {
  TraceRecord r;
  std::string why;
  EXPECT_EQ(parse_lackey_line(line, &r, &why), LineKind::kAccess) << line << ": " << why;
  return r;
}

std::string lackey_error(const std::string& line) {
  TraceRecord r;
  std::string why;
  EXPECT_EQ(parse_lackey_line(line, &r, &why), LineKind::kBad) << line;
  return why;
}

std::string pages_error(const std::string& line) {
  TraceRecord r;
  std::string why;
  EXPECT_EQ(parse_pages_line(line, &r, &why), LineKind::kBad) << line;
  return why;
}

TEST(MmsimTrace, LackeyAccessLines) {
  TraceRecord r = lackey("I  0401ab70,3");
  EXPECT_EQ(r.addr, 0x401ab70u);
  EXPECT_EQ(r.size, 3u);
  EXPECT_EQ(r.op, TraceOp::kRead);  // an instruction fetch reads, code
  EXPECT_TRUE(r.fetch);
  r = lackey(" S 1fff000628,8");
  EXPECT_EQ(r.addr, 0x1fff000628u);
  EXPECT_EQ(r.op, TraceOp::kWrite);
  EXPECT_FALSE(r.fetch);
  EXPECT_EQ(lackey(" L 04016ec0,8").op, TraceOp::kRead);
  EXPECT_FALSE(lackey(" L 04016ec0,8").fetch);
  EXPECT_EQ(lackey(" M 0421c290,4").op, TraceOp::kModify);
  EXPECT_EQ(lackey(" L 10,16\r").size, 16u);  // CRLF
  EXPECT_EQ(lackey(" L ffffffffffffffff,1").addr, ~uint64_t{0});
  TraceRecord skip;
  std::string why;
  for (const char* line : {"==13120== Lackey, an example Valgrind tool", "", "hello",
                           "Instructions: 5", "L 10,8", "  L 10,8"})
    EXPECT_EQ(parse_lackey_line(line, &skip, &why), LineKind::kSkip) << line;
}

TEST(MmsimTrace, LackeyBadLines) {
  EXPECT_EQ(lackey_error(" L zz,8"), "bad address \"zz\" (expected at most 16 hex digits)");
  EXPECT_EQ(lackey_error("I  "), "bad address \"\" (expected at most 16 hex digits)");
  EXPECT_EQ(lackey_error(" S 11112222333344445,8"),
            "bad address \"11112222333344445\" (expected at most 16 hex digits)");
  EXPECT_EQ(lackey_error(" L 1234"), "expected ',SIZE' after the address, got \"\"");
  EXPECT_EQ(lackey_error(" L 12g4,8"), "expected ',SIZE' after the address, got \"g4,8\"");
  EXPECT_EQ(lackey_error(" S 10,0"),
            "bad size \"0\" (expected a decimal number of bytes, 1..65536)");
  EXPECT_EQ(lackey_error(" S 10,x"),
            "bad size \"x\" (expected a decimal number of bytes, 1..65536)");
  EXPECT_EQ(lackey_error(" S 10,8 junk"),
            "bad size \"8 junk\" (expected a decimal number of bytes, 1..65536)");
  EXPECT_EQ(lackey_error(" S 10,99999999999999999999999"),
            "bad size \"99999999999999999999999\" (expected a decimal number of bytes, 1..65536)");
  EXPECT_EQ(lackey_error(" L ffffffffffffffff,2"),
            "access at 0xffffffffffffffff of 2 bytes runs past the end of the address space");
}

TEST(MmsimTrace, PagesLinesAndTheirErrors) {
  TraceRecord r;
  std::string why;
  r.fetch = true;
  ASSERT_EQ(parse_pages_line("R 1f", &r, &why), LineKind::kAccess);
  EXPECT_FALSE(r.fetch);
  EXPECT_EQ(r.addr, 0x1f000u);
  EXPECT_EQ(r.size, 4096u);
  EXPECT_EQ(r.op, TraceOp::kRead);
  ASSERT_EQ(parse_pages_line("W 0x10\r", &r, &why), LineKind::kAccess);
  EXPECT_EQ(r.addr, 0x10000u);
  EXPECT_EQ(r.op, TraceOp::kWrite);
  ASSERT_EQ(parse_pages_line("  w\t0XABC  ", &r, &why), LineKind::kAccess);
  EXPECT_EQ(r.addr, 0xabc000u);
  for (const char* line : {"", "   ", "# a comment", "  # indented"})
    EXPECT_EQ(parse_pages_line(line, &r, &why), LineKind::kSkip) << line;
  ASSERT_EQ(parse_pages_line("X 2a", &r, &why), LineKind::kAccess);  // a fetch of code
  EXPECT_TRUE(r.fetch);
  EXPECT_EQ(r.op, TraceOp::kRead);
  EXPECT_EQ(r.addr, 0x2a000u);
  ASSERT_EQ(parse_pages_line("x 2b", &r, &why), LineKind::kAccess);
  EXPECT_TRUE(r.fetch);
  ASSERT_EQ(parse_pages_line("R 2b", &r, &why), LineKind::kAccess);
  EXPECT_FALSE(r.fetch);
  EXPECT_EQ(pages_error("F 10"),
            "expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got \"F 10\"");
  EXPECT_EQ(pages_error("R"),
            "expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got \"R\"");
  EXPECT_EQ(pages_error("R10"),
            "expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got \"R10\"");
  EXPECT_EQ(pages_error("R zz"), "bad page number \"zz\" (expected hex digits)");
  EXPECT_EQ(pages_error("W 0x"), "bad page number \"\" (expected hex digits)");
  EXPECT_EQ(pages_error("R 10 20"), "bad page number \"10 20\" (expected hex digits)");
  EXPECT_EQ(pages_error("R 10000000000000"),
            "page number 0x10000000000000 is too large (a page's address must fit in 64 bits)");
}

// Random lines never crash either parser, and a bad line's reason is one line.
TEST(MmsimTrace, RandomLinesAreAccessesSkipsOrOneLineReasons) {
  std::mt19937_64 rng(11);
  const char alphabet[] = "ILSMRWrw ,x0123456789abcdefABCDEFgz=\r\t\x00\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string line;
    const size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) line += alphabet[rng() % (sizeof alphabet - 1)];
    for (auto parse : {parse_lackey_line, parse_pages_line}) {
      TraceRecord r;
      std::string why;
      const LineKind kind = parse(line, &r, &why);
      if (kind == LineKind::kBad) {
        ASSERT_FALSE(why.empty());
        ASSERT_EQ(why.find_first_of("\n\r"), std::string::npos) << why;
      } else if (kind == LineKind::kAccess) {
        ASSERT_GE(r.size, 1u);
        ASSERT_GE(r.addr + (r.size - 1), r.addr);
      }
    }
  }
}

TEST(MmsimTrace, DetectsTheFormatFromAnAccessLine) {
  EXPECT_EQ(detect_format("I  0401ab70,3"), TraceFormat::kLackey);
  EXPECT_EQ(detect_format(" M 10,4"), TraceFormat::kLackey);
  EXPECT_EQ(detect_format("R 10"), TraceFormat::kPages);
  EXPECT_EQ(detect_format("w\t0x10"), TraceFormat::kPages);
  EXPECT_EQ(detect_format("X 10"), TraceFormat::kPages);
  for (const char* line : {"==1== x", "", "# c", "F 1", "RW 1", " R 1"})
    EXPECT_EQ(detect_format(line), TraceFormat::kAuto) << line;
}

// Every access of the trace at `path`, or the reader's error.
struct ReadBack {
  std::vector<TraceRecord> records;
  std::string error;
  TraceFormat format;
};
ReadBack read_all(const std::string& path, TraceFormat format = TraceFormat::kAuto) {
  ReadBack out;
  TraceReader r;
  out.error = r.open(path, format);
  if (!out.error.empty()) return out;
  TraceRecord rec;
  while (r.next(&rec)) out.records.push_back(rec);
  out.error = r.error();
  out.format = r.format();
  return out;
}

TEST(MmsimTrace, ReaderDetectsLackeyAfterItsHeader) {
  const std::string path =
      write_temp("t.lackey",
                 "==1== Lackey, an example Valgrind tool\n==1== \nsome program output\n"
                 "I  0401ab70,3\r\n S 1fff000628,8\n M 10,4\n==1== done");  // no final newline
  const ReadBack r = read_all(path);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.format, TraceFormat::kLackey);
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[1].op, TraceOp::kWrite);
}

TEST(MmsimTrace, ReaderReportsTheLineOfABadAccess) {
  const std::string path = write_temp("t_bad.lackey", "==1== x\nI  10,4\n L 20,4\n S 3x,8\n");
  const ReadBack r = read_all(path);
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.error, path + ":4: expected ',SIZE' after the address, got \"x,8\"");
}

TEST(MmsimTrace, ReaderDetectsPagesAndRefusesWhatItSkippedBefore) {
  const std::string good = write_temp("t.pages", "# pages\n\nR 10\nW 0x11\n");
  ReadBack r = read_all(good);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.format, TraceFormat::kPages);
  EXPECT_EQ(r.records.size(), 2u);
  // A mistake before the first good line is still the pages trace's error.
  const std::string bad = write_temp("t_bad.pages", "# pages\nread 10\nR 10\n");
  r = read_all(bad);
  EXPECT_EQ(r.error,
            bad +
                ":2: expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got "
                "\"read 10\"");
  // --format pages refuses a lackey line, and lackey skips a pages line.
  const std::string lk = write_temp("t_mixed", "I  10,4\nR 10\n");
  r = read_all(lk, TraceFormat::kPages);
  EXPECT_EQ(r.error,
            lk + ":1: expected \"R PAGE\", \"W PAGE\" or \"X PAGE\" (the page number in hex), got "
                 "\"I  10,4\"");
  r = read_all(lk, TraceFormat::kLackey);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records.size(), 1u);
}

TEST(MmsimTrace, ReaderReadsGzip) {
  const std::string path = mmkit::test::temp_path("t.pages.gz");
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  for (int i = 0; i < 1000; ++i) gzprintf(f, "%c %x\n", i % 3 ? 'R' : 'W', i);
  gzclose(f);
  const ReadBack r = read_all(path);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.records.size(), 1000u);
  EXPECT_EQ(r.records[999].addr, 999u << 12);
}

TEST(MmsimTrace, ReaderLongLinesAndBinaryBytes) {
  // A long non-access line is skipped whole; a long access line is refused.
  const std::string long_skip =
      write_temp("t_long", "==1== " + std::string(10000, 'x') + "\nI  10,4\n");
  ReadBack r = read_all(long_skip);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records.size(), 1u);
  const std::string long_access =
      write_temp("t_long2", "I  10,4\n L 10,4" + std::string(5000, ' ') + "\n");
  r = read_all(long_access);
  EXPECT_EQ(r.error, long_access + ":2: line longer than 4096 bytes");
  const std::string nul = write_temp("t_nul", std::string("R 10\nR 1\0"
                                                          "2\nR 3\n",
                                                          14));
  r = read_all(nul);
  EXPECT_EQ(r.error, nul + ":2: bad page number \"1\\x002\" (expected hex digits)");
  EXPECT_EQ(read_all("/nonexistent/trace").error,
            "/nonexistent/trace: cannot read: No such file or directory");
  const ReadBack dir = read_all("/");
  EXPECT_NE(dir.error.find("/:1: cannot read: "), std::string::npos) << dir.error;
}

}  // namespace
}  // namespace mmsim
