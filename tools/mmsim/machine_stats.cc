// Snapshots and deltas of the machine's counters (see machine_stats.h).
// A gauge (nr_free_pages) can go down over a run, so deltas are signed.
#include "machine_stats.h"

#include <fmt/format.h>

namespace mmsim {

using mmkit::VmEvent;

MachineSnapshot take_snapshot(const mmkit::Machine& m) {
  MachineSnapshot s;
  for (unsigned i = 0; i < mmkit::kNrVmEvents; ++i)
    s.events[i] = m.sum_event(static_cast<VmEvent>(i));
  s.vmstat = mmkit::vmstat_fields(m);
  s.meminfo = mmkit::meminfo_fields(m);
  return s;
}

EventTotals event_totals(const MachineSnapshot& start, const MachineSnapshot& end) {
  auto d = [&](VmEvent e) {
    return end.events[static_cast<unsigned>(e)] - start.events[static_cast<unsigned>(e)];
  };
  EventTotals t;
  t.pgfault = d(VmEvent::PGFAULT);
  t.pgmajfault = d(VmEvent::PGMAJFAULT);
  t.pswpin = d(VmEvent::PSWPIN);
  t.pswpout = d(VmEvent::PSWPOUT);
  t.pgscan_kswapd = d(VmEvent::PGSCAN_KSWAPD);
  t.pgscan_direct = d(VmEvent::PGSCAN_DIRECT);
  t.pgsteal_kswapd = d(VmEvent::PGSTEAL_KSWAPD);
  t.pgsteal_direct = d(VmEvent::PGSTEAL_DIRECT);
  for (VmEvent e : {VmEvent::ALLOCSTALL_DMA, VmEvent::ALLOCSTALL_DMA32, VmEvent::ALLOCSTALL_NORMAL,
                    VmEvent::ALLOCSTALL_HIGH, VmEvent::ALLOCSTALL_MOVABLE})
    t.allocstall += d(e);
  t.oom_kill = d(VmEvent::OOM_KILL);
  return t;
}

namespace {

// The start value of each end line, matched by position when the lists
// agree (they come from the same machine) and by name otherwise.
template <class F>
void for_each_delta(const MachineSnapshot& start, const MachineSnapshot& end, F&& f) {
  for (size_t i = 0; i < end.vmstat.size(); ++i) {
    const mmkit::VmstatField& e = end.vmstat[i];
    uint64_t before = 0;
    if (i < start.vmstat.size() && start.vmstat[i].name == e.name) {
      before = start.vmstat[i].value;
    } else {
      for (const mmkit::VmstatField& s : start.vmstat)
        if (s.name == e.name) before = s.value;
    }
    f(e.name, static_cast<int64_t>(e.value) - static_cast<int64_t>(before));
  }
}

}  // namespace

void write_vmstat_delta(JsonWriter& w, const MachineSnapshot& start, const MachineSnapshot& end) {
  w.key("vmstat").begin_object();
  for_each_delta(start, end, [&](std::string_view name, int64_t d) { w.field(name, d); });
  w.end_object();
}

void write_meminfo(JsonWriter& w, const MachineSnapshot& end) {
  w.key("meminfo").begin_object();
  for (const mmkit::MeminfoField& f : end.meminfo) w.field(f.name(), f.value);
  w.end_object();
}

std::string vmstat_delta_text(const MachineSnapshot& start, const MachineSnapshot& end) {
  std::string out;
  for_each_delta(start, end, [&](std::string_view name, int64_t d) {
    if (d != 0) out += fmt::format("  {:<32} {:>14}\n", name, d);
  });
  return out;
}

}  // namespace mmsim
