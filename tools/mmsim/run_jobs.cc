// The job-file parser (see run_jobs.h for the schema): toml_screen() refuses
// bytes toml++ must not see, toml++ checks the syntax, then each [[job]]
// table is walked key by key against the schema. Every value is judged
// where it is read, so a message names the key's own line. Internally a
// failure is thrown and caught at the top; nothing leaves this file.
#include "run_jobs.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "memcg/memcontrol.h"
#include "phys/toml_util.h"

namespace mmsim {

using mmkit::edit_distance;
using mmkit::one_line;
using mmkit::parse_size;
using mmkit::quoted;
using mmkit::toml_screen;
using mmkit::type_name;
namespace {

struct JobError {
  uint32_t line;
  std::string field;  // "job[0].size"; "" for a syntax error
  std::string what;
};

constexpr std::string_view kJobKeys[] = {"name",
                                         "kind",
                                         "processes",
                                         "size",
                                         "pattern",
                                         "passes",
                                         "seconds",
                                         "write_ratio",
                                         "fork",
                                         "oom_score_adj",
                                         "memory_max",
                                         "memory_high",
                                         "memory_swap_max",
                                         "memory_zswap_max",
                                         "memory_zswap_writeback",
                                         "fsync_every",
                                         "verify"};
constexpr size_t kMaxJobFile = 1 << 20;

// "an anon", "a read", "an mmap-shared": the kind with its article.
std::string a_kind(JobKind k) {
  return (k == JobKind::kRead || k == JobKind::kWrite || k == JobKind::kShmem ? "a " : "an ") +
         std::string(kind_name(k));
}

uint32_t line_of(const toml::node& n) {
  return n.source().begin.line;
}

[[noreturn]] void fail(uint32_t line, std::string field, std::string what) {
  throw JobError{line, std::move(field), std::move(what)};
}
[[noreturn]] void fail(const toml::node& n, std::string field, std::string what) {
  fail(line_of(n), std::move(field), std::move(what));
}

// One [[job]] table's reader: `prefix` is "job[I]".
class JobReader {
 public:
  JobReader(const toml::table& t, std::string prefix) : t_(t), prefix_(std::move(prefix)) {}

  JobSpec read() {
    check_keys();
    JobSpec j;
    j.name = name();
    if (const toml::node* n = t_.get("kind")) j.kind = kind(*n);
    if (is_file_job(j) && (j.name == "." || j.name == ".."))
      fail(*t_.get("name"), field("name"),
           quoted(j.name) + " cannot name a file (" +
               (is_mmap_job(j) ? std::string("an ") + kind_name(j.kind) + " job's"
                               : std::string("a read or write job's")) +
               " files are named after it)");
    if (const toml::node* n = t_.get("processes"))
      j.processes = static_cast<unsigned>(integer(*n, "processes", 1, kMaxProcesses));
    const toml::node* size_node = t_.get("size");
    if (!size_node) fail(t_, field("size"), "missing (required), e.g. size = \"64MiB\"");
    j.size = size(*size_node, "size");
    if (j.size == 0) fail(*size_node, field("size"), "must be at least 4KiB");
    if (j.size > kMaxJobSize) fail(*size_node, field("size"), "is larger than 1TiB");
    if (const toml::node* n = t_.get("pattern")) pattern(*n, &j);
    passes_or_seconds(&j);
    if (j.kind == JobKind::kWrite) j.write_ratio = 1;
    if (j.kind == JobKind::kRead) j.write_ratio = 0;
    if (const toml::node* n = t_.get("write_ratio")) {
      if (j.kind == JobKind::kRead)
        fail(*n, field("write_ratio"),
             "a read job only reads (write_ratio is for anon, write and mmap jobs)");
      j.write_ratio = number(*n, "write_ratio");
      if (!(j.write_ratio >= 0 && j.write_ratio <= 1))
        fail(*n, field("write_ratio"), fmt::format("{} is out of range (0..1)", j.write_ratio));
    }
    if (const toml::node* n = t_.get("fork")) {
      j.fork = boolean(*n, "fork");
      if (j.fork && is_file_job(j))
        fail(*n, field("fork"), "fork applies to anon jobs (this is " + a_kind(j.kind) + " job)");
    }
    if (const toml::node* n = t_.get("oom_score_adj"))
      j.oom_score_adj = static_cast<int>(integer(*n, "oom_score_adj", -1000, 1000));
    if (const toml::node* n = t_.get("memory_max")) j.memory_max = limit(*n, "memory_max", 4096);
    if (const toml::node* n = t_.get("memory_high")) j.memory_high = limit(*n, "memory_high", 4096);
    // 0 is a swap limit too: the group's pages never go to swap.
    if (const toml::node* n = t_.get("memory_swap_max"))
      j.memory_swap_max = limit(*n, "memory_swap_max", 0);
    // And 0 a zswap limit: its pages go to the swap file, never to zswap.
    if (const toml::node* n = t_.get("memory_zswap_max"))
      j.memory_zswap_max = limit(*n, "memory_zswap_max", 0);
    if (const toml::node* n = t_.get("memory_zswap_writeback"))
      j.memory_zswap_writeback = boolean(*n, "memory_zswap_writeback");
    if (const toml::node* n = t_.get("fsync_every")) {
      if (!writes_file(j))
        fail(*n, field("fsync_every"),
             "only write and mmap-shared jobs fsync (this is " + a_kind(j.kind) + " job" +
                 (j.kind == JobKind::kMmapPrivate ? ", whose writes never reach its file)"
                  : j.kind == JobKind::kShmem     ? ", whose memory is a memfd's)"
                                                  : ")"));
      j.fsync_every = size(*n, "fsync_every");
      if (j.fsync_every == 0) fail(*n, field("fsync_every"), "must be at least 4KiB");
    }
    if (const toml::node* n = t_.get("verify")) {
      if (j.kind != JobKind::kRead)
        fail(*n, field("verify"),
             "only read jobs verify a file (this is " + a_kind(j.kind) +
                 (j.kind == JobKind::kAnon ? " job)"
                                           : " job, whose reads always check its writes)"));
      j.verify = boolean(*n, "verify");
    }
    return j;
  }

 private:
  std::string field(std::string_view key) const { return prefix_ + "." + std::string(key); }

  // The unknown key that comes first in the file, with a suggestion when a
  // known key is close.
  void check_keys() const {
    const toml::key* bad = nullptr;
    for (const auto& [key, value] : t_) {
      if (std::find(std::begin(kJobKeys), std::end(kJobKeys), key.str()) != std::end(kJobKeys))
        continue;
      if (!bad || key.source().begin.line < bad->source().begin.line) bad = &key;
    }
    if (!bad) return;
    std::string_view best;
    size_t best_distance = 3;
    for (std::string_view k : kJobKeys) {
      const std::string_view b = bad->str();
      const bool prefix = b.size() >= 3 && (k.starts_with(b) || b.starts_with(k));
      const size_t d = prefix ? 1 : edit_distance(b, k);
      if (d < best_distance) best = k, best_distance = d;
    }
    std::string what = "unknown key " + quoted(bad->str()) + " in [[job]]";
    if (!best.empty()) {
      what += "; did you mean " + quoted(best) + "?";
    } else {
      what += " (expected one of";
      for (std::string_view k : kJobKeys)
        what += std::string(k == kJobKeys[0] ? " " : ", ") + std::string(k);
      what += ")";
    }
    const std::string shown = quoted(bad->str());
    fail(bad->source().begin.line, prefix_ + "." + shown.substr(1, shown.size() - 2), what);
  }

  std::string name() const {
    const toml::node* n = t_.get("name");
    if (!n) fail(t_, field("name"), "missing (required), e.g. name = \"hot\"");
    const auto* s = n->as_string();
    if (!s) fail(*n, field("name"), std::string("expected a string, got ") + type_name(*n));
    const std::string& v = s->get();
    if (v.empty()) fail(*n, field("name"), "is empty");
    if (v.size() > kMaxJobName)
      fail(*n, field("name"),
           fmt::format("{} is longer than {} characters", quoted(v), kMaxJobName));
    for (char c : v) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.';
      if (!ok)
        fail(*n, field("name"),
             quoted(v) + " has a character other than letters, digits, '_', '-' and '.'");
    }
    return v;
  }

  JobKind kind(const toml::node& n) const {
    const auto* s = n.as_string();
    if (!s) fail(n, field("kind"), std::string("expected a string, got ") + type_name(n));
    const std::string& v = s->get();
    if (v == "anon") return JobKind::kAnon;
    if (v == "read") return JobKind::kRead;
    if (v == "write") return JobKind::kWrite;
    if (v == "mmap-shared") return JobKind::kMmapShared;
    if (v == "mmap-private") return JobKind::kMmapPrivate;
    if (v == "shmem") return JobKind::kShmem;
    fail(n, field("kind"),
         "unknown kind " + quoted(v) +
             " (expected \"anon\", \"read\", \"write\", \"mmap-shared\", \"mmap-private\" or "
             "\"shmem\")");
  }

  bool boolean(const toml::node& n, std::string_view key) const {
    const auto* b = n.as_boolean();
    if (!b) fail(n, field(key), std::string("expected true or false, got ") + type_name(n));
    return b->get();
  }

  int64_t integer(const toml::node& n, std::string_view key, int64_t lo, int64_t hi) const {
    const auto* v = n.as_integer();
    if (!v) fail(n, field(key), std::string("expected an integer, got ") + type_name(n));
    if (v->get() < lo || v->get() > hi)
      fail(n, field(key), fmt::format("{} is out of range ({}..{})", v->get(), lo, hi));
    return v->get();
  }

  double number(const toml::node& n, std::string_view key) const {
    if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
    if (const auto* f = n.as_floating_point()) {
      if (!std::isfinite(f->get())) fail(n, field(key), "must be a finite number");
      return f->get();
    }
    fail(n, field(key), std::string("expected a number, got ") + type_name(n));
  }

  // A cgroup limit: "max" (mmkit::kMemMax) or a size of at least `least`
  // bytes.
  uint64_t limit(const toml::node& n, std::string_view key, uint64_t least) const {
    if (const auto* s = n.as_string(); s && s->get() == "max") return mmkit::kMemMax;
    const uint64_t bytes = size(n, key);
    if (bytes < least)
      fail(n, field(key), fmt::format("must be at least {}KiB (or \"max\")", least >> 10));
    return bytes;
  }

  uint64_t size(const toml::node& n, std::string_view key) const {
    uint64_t bytes = 0;
    if (const auto* i = n.as_integer()) {
      if (i->get() < 0) fail(n, field(key), std::to_string(i->get()) + " is negative");
      bytes = static_cast<uint64_t>(i->get());
    } else if (const auto* s = n.as_string()) {
      std::string why;
      if (!parse_size(s->get(), &bytes, &why)) fail(n, field(key), why);
    } else {
      fail(n, field(key),
           std::string("expected a size (bytes as an integer, or a string like \"64MiB\"), got ") +
               type_name(n));
    }
    if ((key == "size" || key == "fsync_every") && bytes % 4096 != 0)
      fail(n, field(key), fmt::format("{} is not a multiple of 4KiB", bytes));
    return bytes;
  }

  void pattern(const toml::node& n, JobSpec* j) const {
    const auto* s = n.as_string();
    if (!s) fail(n, field("pattern"), std::string("expected a string, got ") + type_name(n));
    const std::string& v = s->get();
    if (v == "seq") {
      j->pattern = Pattern::kSeq;
    } else if (v == "random") {
      j->pattern = Pattern::kRandom;
    } else if (v == "loop") {
      j->pattern = Pattern::kLoop;
    } else if (v.rfind("zipf:", 0) == 0) {
      const std::string theta = v.substr(5);
      // A plain decimal: strtod alone would take "inf", "0x1p3" or leading blanks.
      const bool decimal = !theta.empty() && theta.size() <= 32 &&
                           theta.find_first_not_of("0123456789.") == std::string::npos &&
                           theta.find_first_of("0123456789") != std::string::npos &&
                           theta.find('.') == theta.rfind('.');
      if (!decimal)
        fail(n, field("pattern"),
             quoted(v) + ": zipf's theta must be a decimal number, e.g. \"zipf:0.9\"");
      j->zipf_theta = std::strtod(theta.c_str(), nullptr);
      if (!(j->zipf_theta > 0 && j->zipf_theta <= kMaxZipfTheta))
        fail(n, field("pattern"),
             fmt::format("zipf theta {} is out of range (must be > 0 and at most {})", theta,
                         kMaxZipfTheta));
      j->pattern = Pattern::kZipf;
    } else {
      fail(n, field("pattern"),
           "unknown pattern " + quoted(v) + " (expected seq, random, zipf:THETA or loop)");
    }
  }

  void passes_or_seconds(JobSpec* j) const {
    const toml::node* passes = t_.get("passes");
    const toml::node* seconds = t_.get("seconds");
    if (passes && seconds) {
      const toml::node& later = line_of(*seconds) >= line_of(*passes) ? *seconds : *passes;
      fail(later, field(&later == seconds ? "seconds" : "passes"),
           "give passes or seconds, not both");
    }
    if (!passes && !seconds)
      fail(t_, field("passes"), "missing: give passes = N or seconds = S (exactly one)");
    if (passes) {
      j->passes = static_cast<uint64_t>(integer(*passes, "passes", 1, kMaxPasses));
    } else {
      j->seconds = number(*seconds, "seconds");
      if (!(j->seconds > 0 && j->seconds <= kMaxSeconds))
        fail(*seconds, field("seconds"),
             fmt::format("{} is out of range (more than 0, at most {})", j->seconds, kMaxSeconds));
    }
  }

  const toml::table& t_;
  std::string prefix_;
};

bool is_verify_read(const JobSpec& j) {
  return j.kind == JobKind::kRead && j.verify;
}

// Names are unique, except that one read job with verify = true may share
// its name with one write or mmap-shared job: true when `j` (job `i`, table `t`) makes
// such a pair with an earlier job, which must then match it in processes
// and size (the message goes on the read job's key). Any other repeated
// name is an error on `j`'s name.
bool pair_with_earlier(const std::vector<JobSpec>& out,
                       const std::vector<const toml::table*>& tables, const JobSpec& j,
                       const toml::table& t, size_t i, const toml::node& name_node) {
  std::vector<size_t> same;
  for (size_t k = 0; k < out.size(); ++k)
    if (out[k].name == j.name) same.push_back(k);
  if (same.empty()) return false;
  const JobSpec& other = out[same[0]];
  const bool pair = same.size() == 1 && ((is_verify_read(j) && writes_file(other)) ||
                                         (writes_file(j) && is_verify_read(other)));
  if (!pair) {
    std::string what = quoted(j.name) + " is already the name of another job (names must be unique";
    if (is_file_job(j) && is_file_job(other))
      what += ", except that a read job with verify = true may share its write job's name";
    fail(name_node, "job[" + std::to_string(i) + "].name", what + ")");
  }
  const bool read_is_j = is_verify_read(j);
  const JobSpec& read = read_is_j ? j : other;
  const JobSpec& write = read_is_j ? other : j;
  const size_t read_index = read_is_j ? i : same[0];
  const size_t write_index = read_is_j ? same[0] : i;
  const toml::table& read_table = read_is_j ? t : *tables[same[0]];
  const std::string read_prefix = "job[" + std::to_string(read_index) + "]";
  auto mismatch = [&](std::string_view key, uint64_t mine, uint64_t theirs) {
    const toml::node* n = read_table.get(key);
    fail(n ? line_of(*n) : line_of(read_table), read_prefix + "." + std::string(key),
         fmt::format("{}, but job[{}] {}, the {} job whose files this read job verifies, has {} "
                     "(the two must have the same processes and size)",
                     mine, write_index, quoted(write.name), kind_name(write.kind), theirs));
  };
  if (read.processes != write.processes) mismatch("processes", read.processes, write.processes);
  if (read.size != write.size) mismatch("size", read.size, write.size);
  return true;
}

std::vector<JobSpec> parse_root(const toml::table& root) {
  for (const auto& [key, value] : root) {
    if (key.str() == "job") continue;
    const std::string shown = quoted(key.str());
    fail(key.source().begin.line, shown.substr(1, shown.size() - 2),
         "unknown key " + shown + " at the top level (a job file holds [[job]] tables)");
  }
  const toml::node* jobs = root.get("job");
  if (!jobs) fail(1, "job", "no [[job]] table (a job file needs at least one)");
  const auto* a = jobs->as_array();
  if (!a)
    fail(*jobs, "job",
         std::string("expected an array of tables ([[job]]), got ") + type_name(*jobs));
  if (a->empty()) fail(*jobs, "job", "no [[job]] table (a job file needs at least one)");
  std::vector<JobSpec> out;
  std::vector<const toml::table*> tables;
  // Every file job's files so far: file name -> (job, process).
  std::map<std::string, std::pair<size_t, unsigned>, std::less<>> files;
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string prefix = "job[" + std::to_string(i) + "]";
    const auto* t = (*a)[i].as_table();
    if (!t) fail((*a)[i], prefix, std::string("expected a table, got ") + type_name((*a)[i]));
    JobSpec j = JobReader(*t, prefix).read();
    const toml::node& name_node = *t->get("name");
    const bool paired = pair_with_earlier(out, tables, j, *t, i, name_node);
    if (is_file_job(j) && !paired) {
      for (unsigned p = 0; p < j.processes; ++p) {
        const std::string f = job_file_name(j, p);
        const auto [it, fresh] = files.try_emplace(f, i, p);
        if (fresh) continue;
        const JobSpec& other = out[it->second.first];
        fail(name_node, prefix + ".name",
             fmt::format("{} would use the file {}, which is already {} of job[{}] {}",
                         quoted(j.name), quoted(f),
                         other.processes == 1 ? std::string("the file")
                                              : fmt::format("process {}'s file", it->second.second),
                         it->second.first, quoted(other.name)));
      }
    }
    out.push_back(std::move(j));
    tables.push_back(t);
  }
  return out;
}

mmkit::Error located(std::string_view file, uint32_t line, const std::string& message) {
  return mmkit::Error{std::string(file) + ":" + std::to_string(line == 0 ? 1 : line) + ": " +
                      message};
}

}  // namespace

const char* kind_name(JobKind k) {
  switch (k) {
    case JobKind::kAnon:
      return "anon";
    case JobKind::kRead:
      return "read";
    case JobKind::kWrite:
      return "write";
    case JobKind::kMmapShared:
      return "mmap-shared";
    case JobKind::kMmapPrivate:
      return "mmap-private";
    case JobKind::kShmem:
      return "shmem";
  }
  return "?";
}

std::string job_file_name(const JobSpec& j, unsigned index) {
  return j.processes == 1 ? j.name : j.name + "." + std::to_string(index);
}

std::string pattern_name(const JobSpec& j) {
  switch (j.pattern) {
    case Pattern::kSeq:
      return "seq";
    case Pattern::kRandom:
      return "random";
    case Pattern::kLoop:
      return "loop";
    case Pattern::kZipf:
      return fmt::format("zipf:{}", j.zipf_theta);
  }
  return "?";
}

mmkit::Result<std::vector<JobSpec>> parse_job_file(std::string_view text,
                                                   std::string_view file_name) {
  try {
    uint32_t line = 0;
    std::string what;
    if (!toml_screen(text, &line, &what)) return located(file_name, line, "syntax: " + what);
    const toml::table root = toml::parse(text, file_name);
    return parse_root(root);
  } catch (const toml::parse_error& e) {
    return located(file_name, e.source().begin.line, "syntax: " + one_line(e.description()));
  } catch (const JobError& e) {
    return located(file_name, e.line, e.field + ": " + e.what);
  } catch (const std::exception& e) {
    return located(file_name, 1, "internal: " + one_line(e.what()));
  } catch (...) {
    return located(file_name, 1, "internal: unknown exception");
  }
}

mmkit::Result<std::vector<JobSpec>> load_job_file(const std::string& path) {
  auto cannot_read = [&](int err) {
    return mmkit::Error{path + ": cannot read: " + std::generic_category().message(err)};
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return cannot_read(errno);
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && text.size() <= kMaxJobFile)
    text.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return cannot_read(err);
  if (text.size() > kMaxJobFile)
    return mmkit::Error{path + ": larger than 1 MiB, too large for a job file"};
  return parse_job_file(text, path);
}

}  // namespace mmsim
