// The view table: /proc file names to their renderers (render_view), so a
// front end can serve any view by name. Names are /proc's, in the
// alphabetical order `ls /proc` lists them ("zswap" is debugfs's
// /sys/kernel/debug/zswap directory, one "name value" line per file); "<pid>/maps", "<pid>/status"
// and "<pid>/smaps_rollup" reach a process's views.
#include <array>
#include <utility>

#include "procfs/procfs.h"

namespace mmkit {
namespace {

using Renderer = std::string (*)(Machine&);

constexpr std::array<std::pair<std::string_view, Renderer>, 9> kViews = {{
    {"buddyinfo", [](Machine& m) { return render_buddyinfo(m); }},
    {"meminfo", [](Machine& m) { return render_meminfo(m); }},
    {"pagetypeinfo", [](Machine& m) { return render_pagetypeinfo(m); }},
    {"slabinfo", [](Machine& m) { return render_slabinfo(m); }},
    {"swaps", [](Machine& m) { return render_swaps(m); }},
    {"vmallocinfo", [](Machine& m) { return render_vmallocinfo(m); }},
    {"vmstat", [](Machine& m) { return render_vmstat(m); }},
    {"zoneinfo", [](Machine& m) { return render_zoneinfo(m); }},
    {"zswap", [](Machine& m) { return render_zswap(m); }},
}};

}  // namespace

std::string render_view(Machine& m, std::string_view name) {
  for (const auto& [view, render] : kViews)
    if (view == name) return render(m);
  // "<pid>/<file>": a process's own view.
  const size_t slash = name.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash > 9) return "";
  int pid = 0;
  for (char c : name.substr(0, slash)) {
    if (c < '0' || c > '9') return "";
    pid = pid * 10 + (c - '0');
  }
  const std::string_view file = name.substr(slash + 1);
  if (file == "status") return render_pid_status(m, pid);
  if (file == "maps") return render_pid_maps(m, pid);
  if (file == "smaps_rollup") return render_pid_smaps_rollup(m, pid);
  if (file == "oom_score") return render_pid_oom_score(m, pid);
  if (file == "oom_score_adj") return render_pid_oom_score_adj(m, pid);
  return "";
}

std::vector<std::string_view> view_names() {
  std::vector<std::string_view> names;
  for (const auto& v : kViews) names.push_back(v.first);
  return names;
}

}  // namespace mmkit
