// The view table: /proc file names to their renderers (render_view), so a
// front end can serve any view by name. Names are /proc's, in the
// alphabetical order `ls /proc` lists them.
#include <array>
#include <utility>

#include "procfs/procfs.h"

namespace mmkit {
namespace {

using Renderer = std::string (*)(Machine&);

constexpr std::array<std::pair<std::string_view, Renderer>, 7> kViews = {{
    {"buddyinfo", [](Machine& m) { return render_buddyinfo(m); }},
    {"meminfo", [](Machine& m) { return render_meminfo(m); }},
    {"pagetypeinfo", [](Machine& m) { return render_pagetypeinfo(m); }},
    {"slabinfo", [](Machine& m) { return render_slabinfo(m); }},
    {"vmallocinfo", [](Machine& m) { return render_vmallocinfo(m); }},
    {"vmstat", [](Machine& m) { return render_vmstat(m); }},
    {"zoneinfo", [](Machine& m) { return render_zoneinfo(m); }},
}};

}  // namespace

std::string render_view(Machine& m, std::string_view name) {
  for (const auto& [view, render] : kViews)
    if (view == name) return render(m);
  return "";
}

std::vector<std::string_view> view_names() {
  std::vector<std::string_view> names;
  for (const auto& v : kViews) names.push_back(v.first);
  return names;
}

}  // namespace mmkit
