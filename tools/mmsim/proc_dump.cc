// Writing the /proc views to a directory (see proc_dump.h). Each file is
// written whole, then closed; a write error names the file and errno.
#include "proc_dump.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "procfs/procfs.h"
#include "vm/process.h"

namespace mmsim {
namespace {

std::string write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return fmt::format("cannot write {}: {}", path, std::generic_category().message(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !ok)
    return fmt::format("cannot write {}: {}", path,
                       std::generic_category().message(ok ? errno : err));
  return "";
}

}  // namespace

std::string prepare_proc_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fmt::format("mmsim: --proc {}: {}", dir, ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    return fmt::format("mmsim: --proc {}: not a directory", dir);
  return "";
}

std::string write_proc_views(mmkit::Machine& m, const std::string& dir) {
  for (std::string_view name : mmkit::view_names()) {
    const std::string err = write_file(dir + "/" + std::string(name), mmkit::render_view(m, name));
    if (!err.empty()) return "mmsim: --proc: " + err;
  }
  // Not a /proc file, but what `dmesg` would print: the boot log, swapon
  // lines, OOM reports.
  if (const std::string err = write_file(dir + "/dmesg", mmkit::render_dmesg(m)); !err.empty())
    return "mmsim: --proc: " + err;
  for (mmkit::Process* p : mmkit::processes(m)) {
    const std::string pid_dir = fmt::format("{}/{}", dir, p->pid);
    std::error_code ec;
    std::filesystem::create_directories(pid_dir, ec);
    if (ec) return fmt::format("mmsim: --proc: {}: {}", pid_dir, ec.message());
    for (const char* file : {"status", "maps", "smaps_rollup", "oom_score", "oom_score_adj"}) {
      const std::string err = write_file(pid_dir + "/" + file,
                                         mmkit::render_view(m, fmt::format("{}/{}", p->pid, file)));
      if (!err.empty()) return "mmsim: --proc: " + err;
    }
  }
  return "";
}

}  // namespace mmsim
