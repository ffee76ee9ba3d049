// slub_debug: the checks and reports of mm/slub.c's debug half, over
// mmkit's SLUB (see slab_debug.h for the layout and what each check does).
//
// A report is built as one string (slab_bug's banner, the INFO line, the
// slab and object trailer with hex dumps as print_hex_dump prints them,
// slab_fix's FIX lines) and handed to Machine::warn in one call. Damaged
// bytes are restored as Linux's restore_bytes() does; a corrupt free
// pointer is cut, and where that loses objects of a slab's own freelist the
// slab's counters are adjusted so objects == inuse + free keeps holding.
//
// Free objects of a slab are on its own freelist (the SlabWord) or, when a
// CPU holds the slab as its active one, on that CPU's private freelist. The
// caller's own CPU is read directly; another CPU only while no thread holds
// it, taken for the moment with its owner token as flush_all() does.
#include "slab/slab_debug.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "page_alloc/page_alloc.h"

namespace mmkit {

namespace {

// One report under construction; emit() hands it to Machine::warn.
// With `hold` set (a lock is held), emit() keeps the reports for flush().
struct Report {
  KmemCache* s;
  std::string text;
  int errors = 0;
  bool hold = false;
  std::vector<std::string> held;
  explicit Report(KmemCache* c) : s(c) {}
  void emit() {
    if (text.empty()) return;
    if (hold)
      held.push_back(std::move(text));
    else
      s->machine->warn(text);
    text.clear();
  }
  void flush() {
    emit();
    for (const std::string& t : held) s->machine->warn(t);
    held.clear();
  }
};

std::string ptr(const void* p) {
  return fmt::format("0x{:016x}", reinterpret_cast<uintptr_t>(p));
}

// --- layout ---------------------------------------------------------------------------------
bool object_poison(const KmemCache* s) {  // __OBJECT_POISON: not with a constructor
  return (s->flags & SLAB_POISON) && !s->ctor;
}
bool freeptr_outside_object(const KmemCache* s) {
  return s->offset >= s->inuse;
}
unsigned get_info_end(const KmemCache* s) {
  return freeptr_outside_object(s) ? s->inuse + static_cast<unsigned>(sizeof(void*)) : s->inuse;
}
// The end of the metadata after the object: the free pointer, the tracks,
// the requested size (the padding check starts here).
unsigned get_meta_end(const KmemCache* s) {
  if (s->orig_size_offset) return s->orig_size_offset + static_cast<unsigned>(sizeof(unsigned));
  return get_info_end(s) + ((s->flags & SLAB_STORE_USER) ? 2 * kSlabTrackBytes : 0);
}

// --- owner tracking (SLAB_STORE_USER) ---------------------------------------------------------
struct Track {
  uint64_t addr;     // the call site
  uint64_t when_ns;  // monotonic clock
  int32_t cpu;       // the machine's CPU, -1 unbound
  int32_t pid;       // the host thread
  uint64_t unused;
};
static_assert(sizeof(Track) == kSlabTrackBytes);
enum TrackItem { TRACK_ALLOC = 0, TRACK_FREE = 1 };
thread_local const void* t_track_caller = nullptr;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
Track get_track(const KmemCache* s, const char* p, TrackItem item) {
  Track t;
  std::memcpy(&t, p + get_info_end(s) + item * kSlabTrackBytes, sizeof t);
  return t;
}
void set_track(const KmemCache* s, char* p, TrackItem item, const void* addr) {
  if (!(s->flags & SLAB_STORE_USER)) return;
  const CpuState* cpu = this_cpu(*s->machine);
  const Track t{reinterpret_cast<uint64_t>(t_track_caller ? t_track_caller : addr), now_ns(),
                cpu ? cpu->id : -1, static_cast<int32_t>(gettid()), 0};
  std::memcpy(p + get_info_end(s) + item * kSlabTrackBytes, &t, sizeof t);
}
void init_tracking(const KmemCache* s, char* p) {
  if (s->flags & SLAB_STORE_USER) std::memset(p + get_info_end(s), 0, 2 * kSlabTrackBytes);
}
// "%pS": symbol+0xoff/0xsize, or the object file and offset, or the address.
std::string symbolize(uint64_t addr) {
  Dl_info info;
  if (addr && dladdr(reinterpret_cast<void*>(addr), &info)) {
    if (info.dli_sname && info.dli_saddr)
      return fmt::format("{}+{:#x}", info.dli_sname,
                         addr - reinterpret_cast<uint64_t>(info.dli_saddr));
    if (info.dli_fname && info.dli_fbase)
      return fmt::format("{}+{:#x}", info.dli_fname,
                         addr - reinterpret_cast<uint64_t>(info.dli_fbase));
  }
  return fmt::format("{:#x}", addr);
}
// print_tracking(): both tracks, as SLUB prints them (age in milliseconds,
// Linux's jiffies at HZ=1000).
void print_tracking(std::string& text, const KmemCache* s, const char* p) {
  if (!(s->flags & SLAB_STORE_USER)) return;
  const uint64_t now = now_ns();
  for (auto [item, what] : {std::pair{TRACK_ALLOC, "Allocated"}, std::pair{TRACK_FREE, "Freed"}}) {
    const Track t = get_track(s, p, item);
    if (!t.addr) continue;
    text += fmt::format("INFO: {} in {} age={} cpu={} pid={}\n", what, symbolize(t.addr),
                        (now - std::min(now, t.when_ns)) / 1000000, t.cpu, t.pid);
  }
}
unsigned get_orig_size(const KmemCache* s, const char* p) {
  if (!s->orig_size_offset) return s->object_size;
  unsigned v;
  std::memcpy(&v, p + s->orig_size_offset, sizeof v);
  return v;
}
void set_orig_size(const KmemCache* s, char* p, unsigned size) {
  if (s->orig_size_offset) std::memcpy(p + s->orig_size_offset, &size, sizeof size);
}
unsigned size_from_object(const KmemCache* s) {
  return (s->flags & SLAB_RED_ZONE) ? s->size - s->red_left_pad : s->size;
}
char* first_object(const KmemCache* s, const Page* slab) {
  return slab_base(*s->machine, slab) + slab->mapcount.load(std::memory_order_relaxed) +
         s->red_left_pad;
}
SlabWord load_word(Page* slab) {
  return SlabWord::unpack(slab_word(slab).load(std::memory_order_acquire));
}
void* word_head(const KmemCache* s, Page* slab, const SlabWord& w) {
  return w.head ? slab_base(*s->machine, slab) + w.head - 1 : nullptr;
}
size_t slab_len(const Page* slab) {
  return PAGE_SIZE << slab->compound_order();
}
// A quarantined object of a cache whose free pointer lies outside the object
// points to itself (no freelist entry can), so a later free of it is refused.
bool is_quarantined(const KmemCache* s, void* obj) {
  return freeptr_outside_object(s) && get_freepointer(s, obj) == obj;
}

const uint8_t* memchr_inv(const uint8_t* p, uint8_t v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != v) return p + i;
  return nullptr;
}

// --- report pieces (slab_bug, slab_fix, print_section, print_trailer, ...) --------------------
void slab_bug(Report& r, std::string_view what) {
  r.errors++;
  r.text += fmt::format(
      "=============================================================================\n"
      "BUG {} (Not tainted): {}\n"
      "-----------------------------------------------------------------------------\n\n",
      r.s->name, what);
}

void slab_fix(Report& r, std::string_view what) {
  r.text += fmt::format("FIX {}: {}\n", r.s->name, what);
}

// print_hex_dump(KERN_ERR, text, DUMP_PREFIX_ADDRESS, 16, 1, addr, len, true).
void print_section(Report& r, const char* text, const void* addr, size_t len) {
  const auto* b = static_cast<const uint8_t*>(addr);
  for (size_t off = 0; off < len; off += 16) {
    const size_t n = std::min<size_t>(16, len - off);
    std::string hex, ascii;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t c = b[off + i];
      if (i) hex += ' ';
      hex += fmt::format("{:02x}", c);
      ascii += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
    }
    r.text += fmt::format("{}{}: {:<49}{}\n", text, ptr(b + off), hex, ascii);
  }
}

void print_slab_info(Report& r, KmemCache* s, Page* slab) {
  const SlabWord w = load_word(slab);
  r.text +=
      fmt::format("Slab {} objects={} used={} fp={} flags={:#x}\n", ptr(slab), w.objects, w.inuse,
                  ptr(word_head(s, slab, w)), slab->flags.load(std::memory_order_relaxed));
}

// print_trailer(): the slab, the object's place and free pointer, and the
// object with its red zones and padding.
void print_trailer(Report& r, KmemCache* s, Page* slab, const char* p) {
  const char* addr = slab_base(*s->machine, slab);
  print_tracking(r.text, s, p);
  print_slab_info(r, s, slab);
  r.text += fmt::format("Object {} @offset={} fp={}\n\n", ptr(p), p - addr,
                        ptr(get_freepointer(s, const_cast<char*>(p))));
  if (s->flags & SLAB_RED_ZONE)
    print_section(r, "Redzone  ", p - s->red_left_pad, s->red_left_pad);
  else if (p > addr + 16)
    print_section(r, "Bytes b4 ", p - 16, 16);
  print_section(r, "Object   ", p, std::min<size_t>(s->object_size, PAGE_SIZE));
  if (s->flags & SLAB_RED_ZONE)
    print_section(r, "Redzone  ", p + s->object_size, s->inuse - s->object_size);
  const unsigned off = get_meta_end(s);
  if (off < size_from_object(s)) print_section(r, "Padding  ", p + off, size_from_object(s) - off);
}

void object_err(Report& r, Page* slab, const void* obj, std::string_view reason) {
  slab_bug(r, reason);
  print_trailer(r, r.s, slab, static_cast<const char*>(obj));
}

void slab_err(Report& r, Page* slab, std::string_view reason) {
  slab_bug(r, reason);
  print_slab_info(r, r.s, slab);
}

void restore_bytes(Report& r, std::string_view what, uint8_t data, uint8_t* from, uint8_t* to) {
  slab_fix(r, fmt::format("Restoring {} {}-{}={:#x}", what, ptr(from), ptr(to - 1), data));
  std::memset(from, data, to - from);
}

// check_bytes_and_report(): [start, start + bytes) must all be `value`.
bool check_bytes_and_report(Report& r, Page* slab, char* object, std::string_view what, char* start,
                            uint8_t value, size_t bytes) {
  auto* s8 = reinterpret_cast<uint8_t*>(start);
  const uint8_t* f = memchr_inv(s8, value, bytes);
  if (!f) return true;
  uint8_t* fault = s8 + (f - s8);
  uint8_t* end = s8 + bytes;
  while (end > fault && end[-1] == value) --end;
  const char* addr = slab_base(*r.s->machine, slab);
  slab_bug(r, fmt::format("{} overwritten", what));
  r.text += fmt::format("INFO: {}-{} @offset={}. First byte {:#x} instead of {:#x}\n", ptr(fault),
                        ptr(end - 1), reinterpret_cast<char*>(fault) - addr, fault[0], value);
  print_trailer(r, r.s, slab, object);
  restore_bytes(r, what, value, fault, end);
  return false;
}

void set_redzones(const KmemCache* s, char* p, uint8_t val) {
  std::memset(p - s->red_left_pad, val, s->red_left_pad);
  std::memset(p + s->object_size, val, s->inuse - s->object_size);
}

// init_object(): red zones to `val`, the object poisoned.
void init_object(const KmemCache* s, char* p, uint8_t val) {
  if (object_poison(s)) {
    std::memset(p, POISON_FREE, s->object_size - 1);
    p[s->object_size - 1] = static_cast<char>(POISON_END);
  }
  if (s->flags & SLAB_RED_ZONE) set_redzones(s, p, val);
}

// check_pad_bytes(): the padding after the metadata is POISON_INUSE.
bool check_pad_bytes(Report& r, Page* slab, char* p) {
  const unsigned off = get_meta_end(r.s);
  if (off >= size_from_object(r.s)) return true;
  return check_bytes_and_report(r, slab, p, "Object padding", p + off, POISON_INUSE,
                                size_from_object(r.s) - off);
}

// check_object(): red zones of `val` (active: in use, inactive: free), a free
// object's poison and free pointer, the padding. False on damage that makes
// the object unusable (the bytes are restored either way).
bool check_object(Report& r, Page* slab, char* p, uint8_t val) {
  const KmemCache* s = r.s;
  char* endobject = p + s->object_size;
  if (s->flags & SLAB_RED_ZONE) {
    if (!check_bytes_and_report(r, slab, p, "Left Redzone", p - s->red_left_pad, val,
                                s->red_left_pad))
      return false;
    if (!check_bytes_and_report(r, slab, p, "Right Redzone", endobject, val,
                                s->inuse - s->object_size))
      return false;
    // The bytes past the size asked for, in an object in use.
    if (val == SLUB_RED_ACTIVE && s->orig_size_offset) {
      const unsigned orig = std::min(get_orig_size(s, p), s->object_size);
      if (orig < s->object_size && !check_bytes_and_report(r, slab, p, "kmalloc Redzone", p + orig,
                                                           val, s->object_size - orig))
        return false;
    }
  } else if ((s->flags & SLAB_POISON) && s->object_size < s->inuse) {
    check_bytes_and_report(r, slab, p, "Alignment padding", endobject, POISON_INUSE,
                           s->inuse - s->object_size);
  }
  if (s->flags & SLAB_POISON) {
    if (val != SLUB_RED_ACTIVE && object_poison(s)) {
      if (!check_bytes_and_report(r, slab, p, "Poison", p, POISON_FREE, s->object_size - 1))
        return false;
      if (!check_bytes_and_report(r, slab, p, "End Poison", endobject - 1, POISON_END, 1))
        return false;
    }
    check_pad_bytes(r, slab, p);  // restores on its own
  }
  if (val == SLUB_RED_ACTIVE) return true;  // an object in use has no free pointer yet
  if (!check_valid_pointer(s, slab, get_freepointer(s, p))) {
    object_err(r, slab, p, "Freepointer corrupt");
    set_freepointer(s, p, nullptr);  // the rest of this freelist is lost
    slab_fix(r, "Isolate corrupted freechain");
    return false;
  }
  return true;
}

// slab_pad_check(): with SLAB_POISON the bytes of the slab outside its
// objects (a colour offset, the tail) stay POISON_INUSE.
bool slab_pad_check(Report& r, Page* slab) {
  const KmemCache* s = r.s;
  if (!(s->flags & SLAB_POISON)) return true;
  char* base = slab_base(*s->machine, slab);
  char* objs = first_object(s, slab) - s->red_left_pad;
  char* objs_end = objs + static_cast<size_t>(load_word(slab).objects) * s->size;
  char* end = base + slab_len(slab);
  if (objs_end > end) objs_end = end;
  bool ok = true;
  for (auto [from, to] : {std::pair{base, objs}, std::pair{objs_end, end}}) {
    auto* f8 = reinterpret_cast<uint8_t*>(from);
    const uint8_t* f = memchr_inv(f8, POISON_INUSE, to - from);
    if (!f) continue;
    uint8_t* fault = f8 + (f - f8);
    auto* e = reinterpret_cast<uint8_t*>(to);
    while (e > fault && e[-1] == POISON_INUSE) --e;
    slab_err(r, slab,
             fmt::format("Padding overwritten. {}-{} @offset={}", ptr(fault), ptr(e - 1),
                         reinterpret_cast<char*>(fault) - base));
    // The padding around the damage (a slab's padding can be long).
    const size_t row = static_cast<size_t>(reinterpret_cast<char*>(fault) - from) & ~size_t{15};
    print_section(r, "Padding  ", from + row, std::min<size_t>(to - from - row, 128));
    restore_bytes(r, "slab padding", POISON_INUSE, fault, e);
    ok = false;
  }
  return ok;
}

// quarantine: the object stays counted as in use by its slab and is never
// handed out again; it looks like an object in use to kmem_cache_validate.
void quarantine(Report& r, char* obj) {
  KmemCache* s = r.s;
  if (s->flags & SLAB_RED_ZONE) set_redzones(s, obj, SLUB_RED_ACTIVE);
  set_orig_size(s, obj, s->object_size);
  if (freeptr_outside_object(s)) set_freepointer(s, obj, obj);
  s->quarantined.fetch_add(1, std::memory_order_relaxed);
  slab_fix(r, "Marking object as quarantined");
}

// --- freelist walks ---------------------------------------------------------------------------
struct Walk {
  unsigned count = 0;  // objects visited
  bool found = false;  // visit() returned true
  bool cut = false;    // a corrupt next pointer was cut
};

// Follows the freelist of `slab` from `head` (already known valid), calling
// visit(p) on each object until it returns true. A next pointer that is not
// an object of the slab, or a chain longer than the slab (a cycle), is
// reported and cut after the last good object.
template <class F>
Walk walk_freelist(Report& r, Page* slab, void* head, F&& visit) {
  KmemCache* s = r.s;
  Walk w;
  const unsigned limit = load_word(slab).objects;
  for (void* p = head; p;) {
    if (visit(p)) {
      w.found = true;
      return w;
    }
    ++w.count;
    void* next = get_freepointer(s, p);
    const bool valid = check_valid_pointer(s, slab, next);
    if (!valid || (next && w.count >= limit)) {
      object_err(r, slab, p, valid ? "Freechain cycle" : "Freechain corrupt");
      set_freepointer(s, p, nullptr);
      slab_fix(r, "Isolate corrupted freechain");
      w.cut = true;
      return w;
    }
    p = next;
  }
  return w;
}

// After a cut of a slab's own freelist: inuse = objects - what is left on
// it (the lost objects stay in use). Caller holds the node's list_lock.
void fix_slab_counts(Report& r, Page* slab) {
  std::atomic<uint64_t>& word = slab_word(slab);
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    const SlabWord w = SlabWord::unpack(old);
    const unsigned free =
        walk_freelist(r, slab, word_head(r.s, slab, w), [](void*) { return false; }).count;
    if (w.objects - w.inuse == free) return;
    SlabWord nw = w;
    nw.inuse = w.objects - free;
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) {
      slab_fix(r, fmt::format("Object count adjusted: inuse {} -> {} ({} lost)", w.inuse, nw.inuse,
                              nw.inuse - w.inuse));
      return;
    }
  }
}

// Walks the slab's own freelist under the node's list_lock, fixing the
// counts after a cut.
template <class F>
Walk walk_slab_freelist(Report& r, Page* slab, F&& visit) {
  Machine& m = *r.s->machine;
  KmemCacheNode* n = r.s->node[m.page_zone(slab)->node].get();
  SpinGuard g(n->list_lock);
  const SlabWord w = load_word(slab);
  void* head = word_head(r.s, slab, w);
  if (!check_valid_pointer(r.s, slab, head)) {  // the word is the allocator's own: never
    slab_err(r, slab, "Freepointer corrupt (slab freelist head)");
    return Walk{};
  }
  Walk res = walk_freelist(r, slab, head, visit);
  if (res.cut) fix_slab_counts(r, slab);
  return res;
}

// Walks a CPU's private freelist (its objects count as in use: a cut needs
// no count fix). The caller may look at the CPU (see for_each_quiet_cpu).
template <class F>
Walk walk_cpu_freelist(Report& r, KmemCacheCpu& c, F&& visit) {
  if (!c.slab || !c.freelist) return Walk{};
  if (!check_valid_pointer(r.s, c.slab, c.freelist)) {
    slab_err(r, c.slab, fmt::format("Freepointer corrupt: cpu freelist {}", ptr(c.freelist)));
    c.freelist = nullptr;
    slab_fix(r, "Isolate corrupted freechain");
    Walk w;
    w.cut = true;
    return w;
  }
  return walk_freelist(r, c.slab, c.freelist, visit);
}

// Runs f(c) on the per-CPU state of s of each CPU the caller may look at:
// its own, and each CPU no thread holds (taken for the moment with the
// drainer token, as flush_all() does). False if some CPU was busy.
template <class F>
bool for_each_quiet_cpu(KmemCache* s, F&& f) {
  Machine& m = *s->machine;
  CpuState* self = this_cpu(m);
  bool all = true;
  for (unsigned i = 0; i < m.nr_cpus(); ++i) {
    CpuState& cpu = m.cpu(static_cast<int>(i));
    if (&cpu == self) {
      f(s->cpu_slab[i]);
      continue;
    }
    uint64_t expected = 0;
    if (cpu.owner.compare_exchange_strong(expected, kDrainerToken, std::memory_order_acquire)) {
      f(s->cpu_slab[i]);
      cpu.owner.store(0, std::memory_order_release);
    } else {
      all = false;
    }
  }
  return all;
}

// on_freelist(): is obj free already, on the slab's freelist or on the
// private freelist of the CPU holding the slab?
bool on_freelist(Report& r, Page* slab, void* obj) {
  auto is_obj = [obj](void* p) { return p == obj; };
  if (walk_slab_freelist(r, slab, is_obj).found) return true;
  if (!load_word(slab).frozen) return false;  // no CPU holds it: no private freelist
  bool found = false;
  for_each_quiet_cpu(r.s, [&](KmemCacheCpu& c) {
    if (!found && c.slab == slab) found = walk_cpu_freelist(r, c, is_obj).found;
  });
  return found;
}

// --- slub_debug names ------------------------------------------------------------------------
bool name_matches(std::string_view list, std::string_view name) {
  bool any = false;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view e = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!e.empty() && e.front() == ' ') e.remove_prefix(1);
    while (!e.empty() && e.back() == ' ') e.remove_suffix(1);
    if (e.empty()) continue;
    any = true;
    if (const size_t glob = e.find('*'); glob != std::string_view::npos) {
      if (name.substr(0, glob) == e.substr(0, glob)) return true;
    } else if (e == name) {
      return true;
    }
  }
  return !any;  // an empty list names every cache
}

bool cache_unused(const KmemCache* s) {
  for (const auto& n : s->node)
    if (n->nr_slabs() != 0) return false;
  for (unsigned i = 0; i < s->machine->nr_cpus(); ++i)
    if (s->cpu_slab[i].slab || s->cpu_slab[i].partial || s->cpu_slab[i].sheaf_size) return false;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
bool check_valid_pointer(const KmemCache* s, Page* slab, const void* p) {
  if (!p) return true;
  const char* c = static_cast<const char*>(p);
  const char* first = first_object(s, slab);
  return c >= first &&
         slab_offset_is_object(s, static_cast<uint64_t>(c - first), load_word(slab).objects);
}

void* get_freepointer_checked_slow(const KmemCache* cs, Page* slab, void* obj) {
  auto* s = const_cast<KmemCache*>(cs);  // for the report
  if (!slab) slab = s->machine->virt_to_page(obj)->head();
  void* next = get_freepointer(s, obj);
  if (check_valid_pointer(s, slab, next)) [[likely]]
    return next;
  Report r(s);
  object_err(r, slab, obj, "Freepointer corrupt");
  set_freepointer(s, obj, nullptr);
  slab_fix(
      r, fmt::format("Isolate corrupted freechain: the objects after {} stay allocated", ptr(obj)));
  r.emit();
  return nullptr;
}

void setup_object_debug_slow(KmemCache* s, void* obj) {
  char* p = static_cast<char*>(obj);
  if (s->flags & SLAB_POISON) {
    // setup_slab_debug(): the slab's first object fills the whole slab with
    // POISON_INUSE, so its padding can be checked later.
    Page* slab = s->machine->virt_to_page(obj)->head();
    if (p == first_object(s, slab))
      std::memset(slab_base(*s->machine, slab), POISON_INUSE, slab_len(slab));
  }
  init_object(s, p, SLUB_RED_INACTIVE);
  init_tracking(s, p);
}

void slab_set_track_caller(const void* addr) {
  t_track_caller = addr;
}

bool alloc_debug_processing(KmemCache* s, Page* slab, void* obj) {
  Report r(s);
  char* p = static_cast<char*>(obj);
  if (!slab->test(PG_slab) || slab_cache(slab) != s) {
    r.text += fmt::format("SLUB {}: object {} handed out from a page that is not its slab\n",
                          s->name, ptr(obj));
    r.emit();
    return false;
  }
  if (!check_valid_pointer(s, slab, obj)) {
    slab_err(r, slab, fmt::format("Freelist Pointer check fails: {}", ptr(obj)));
    r.emit();
    return false;
  }
  // The object's successor now heads this CPU's freelist; the slow path
  // read it through get_freepointer_checked(), this catches any other way.
  if (CpuState* cpu = this_cpu(*s->machine)) {
    KmemCacheCpu& c = s->cpu_slab[cpu->id];
    if (c.slab == slab && !check_valid_pointer(s, slab, c.freelist)) {
      object_err(r, slab, obj, "Freepointer corrupt");
      c.freelist = nullptr;
      set_freepointer(s, obj, nullptr);
      slab_fix(r, "Isolate corrupted freechain");
    }
  }
  slab_pad_check(r, slab);  // restores on its own
  if (!check_object(r, slab, p, SLUB_RED_INACTIVE)) {
    quarantine(r, p);
    r.emit();
    return false;
  }
  if (s->flags & SLAB_RED_ZONE) set_redzones(s, p, SLUB_RED_ACTIVE);
  set_orig_size(s, p, s->object_size);  // the whole object until the caller says less
  set_track(s, p, TRACK_ALLOC, __builtin_return_address(0));
  r.emit();
  return true;
}

void kmem_cache_set_orig_size(KmemCache* s, void* obj, unsigned size) {
  if (!s->orig_size_offset || size >= s->object_size) return;
  char* p = static_cast<char*>(obj);
  set_orig_size(s, p, size);
  std::memset(p + size, SLUB_RED_ACTIVE, s->object_size - size);
}

unsigned kmem_cache_orig_size(const KmemCache* s, const void* obj) {
  return std::min(get_orig_size(s, static_cast<const char*>(obj)), s->object_size);
}

bool free_debug_processing(KmemCache* s, Page* slab, void* obj) {
  Report r(s);
  char* p = static_cast<char*>(obj);
  auto refuse = [&] {
    slab_fix(r, fmt::format("Object at {} not freed", ptr(obj)));
    r.emit();
    return false;
  };
  if (!check_valid_pointer(s, slab, obj)) {
    slab_err(r, slab, fmt::format("Invalid object pointer {}", ptr(obj)));
    return refuse();
  }
  if (is_quarantined(s, obj)) {
    object_err(r, slab, obj, "Object is quarantined (it failed a check when allocated)");
    return refuse();
  }
  if (on_freelist(r, slab, obj)) {
    object_err(r, slab, obj, "Object already free");
    return refuse();
  }
  // Damaged red zones or padding are reported and restored. With
  // consistency checks the free then fails, as free_consistency_checks()
  // makes it fail in Linux, and the object is quarantined: whatever wrote
  // past it may still hold it. Without them the object is freed.
  if (!check_object(r, slab, p, SLUB_RED_ACTIVE) && (s->flags & SLAB_CONSISTENCY_CHECKS)) {
    quarantine(r, p);
    return refuse();
  }
  set_track(s, p, TRACK_FREE, __builtin_return_address(0));
  init_object(s, p, SLUB_RED_INACTIVE);
  r.emit();
  return true;
}

void slab_report(KmemCache* s, const char* what, const void* obj) {
  Machine& m = *s->machine;
  Report r(s);
  slab_bug(r, what);
  r.text += fmt::format("INFO: Object {} given to cache {} (object size {})\n", ptr(obj), s->name,
                        s->object_size);
  if (!m.is_direct_mapped(obj)) {
    r.text += "INFO: the address is outside the direct map\n";
    r.emit();
    return;
  }
  const char* c = static_cast<const char*>(obj);
  Page* head = m.virt_to_page(obj)->head();
  if (head->test(PG_slab) && head->mapping) {
    KmemCache* o = slab_cache(head);
    if (o != s)
      r.text += fmt::format("INFO: Wrong slab cache. {} but object is from {}\n", s->name, o->name);
    const char* first = first_object(o, head);
    const size_t objects = load_word(head).objects;
    if (c >= first && c < first + objects * o->size) {
      const char* p = first + static_cast<size_t>(c - first) / o->size * o->size;
      if (p != c) r.text += fmt::format("INFO: {} bytes into object {}\n", c - p, ptr(p));
      print_trailer(r, o, head, p);  // in the owning cache's layout
    } else {
      print_slab_info(r, o, head);
      r.text += "INFO: the address is outside the slab's objects\n";
    }
  } else {
    r.text += fmt::format("INFO: page flags {:#x}: not a slab page\n",
                          head->flags.load(std::memory_order_relaxed));
    const char* page_start = static_cast<const char*>(m.page_address(m.virt_to_page(obj)));
    if (c >= page_start + 16) print_section(r, "Bytes b4 ", c - 16, 16);
    print_section(r, "Object   ", c, std::min<size_t>(64, page_start + PAGE_SIZE - c));
  }
  r.emit();
}

int kmem_cache_validate(KmemCache* s) {
  Machine& m = *s->machine;
  Report r(s);
  // The CPUs' private freelists: which objects of their active slabs are free.
  std::unordered_map<Page*, std::unordered_set<void*>> cpu_free;
  const bool all_cpus = for_each_quiet_cpu(s, [&](KmemCacheCpu& c) {
    if (!c.slab) return;
    auto& objs = cpu_free[c.slab];  // present even when empty: the slab is accounted for
    walk_cpu_freelist(r, c, [&](void* p) {
      objs.insert(p);
      return false;
    });
    r.emit();
  });
  std::vector<Page*> slabs;
  m.for_each_zone([&](Zone& z) {
    for (uint64_t pfn = z.zone_start_pfn; pfn < z.end_pfn(); ++pfn) {
      Page* p = m.pfn_to_page(pfn);
      if (p->test(PG_slab) && !p->is_tail() && slab_cache(p) == s) slabs.push_back(p);
    }
  });
  std::vector<bool> is_free;
  // validate_slab(), under the node's list_lock (reports held until it is dropped).
  auto validate_slab = [&](Page* slab) {
    const SlabWord w = load_word(slab);
    const auto cf = cpu_free.find(slab);
    if (w.frozen && cf == cpu_free.end() && !all_cpus) return;  // a busy CPU may hold it
    const unsigned expect = slab->compound_order() == s->order ? s->objects : s->min_objects;
    if (w.objects != expect || w.inuse > w.objects) {
      slab_err(r, slab,
               fmt::format("Wrong object counts: objects {} (should be {}), inuse {}", w.objects,
                           expect, w.inuse));
      r.emit();
      return;
    }
    slab_pad_check(r, slab);
    r.emit();
    char* first = first_object(s, slab);
    is_free.assign(w.objects, false);
    auto mark = [&](void* p) {
      is_free[static_cast<size_t>(static_cast<char*>(p) - first) / s->size] = true;
      return false;
    };
    const SlabWord now = load_word(slab);
    if (void* head = word_head(s, slab, now); check_valid_pointer(s, slab, head)) {
      if (walk_freelist(r, slab, head, mark).cut) {
        fix_slab_counts(r, slab);
        is_free.assign(w.objects, false);  // walk again what is left
        walk_freelist(r, slab, word_head(s, slab, load_word(slab)), mark);
      }
    } else {
      slab_err(r, slab, "Freepointer corrupt (slab freelist head)");
    }
    if (cf != cpu_free.end())
      for (void* p : cf->second) mark(p);
    r.emit();
    for (unsigned i = 0; i < w.objects; ++i) {
      char* p = first + static_cast<size_t>(i) * s->size;
      check_object(r, slab, p, is_free[i] ? SLUB_RED_INACTIVE : SLUB_RED_ACTIVE);
      r.emit();
    }
  };
  for (Page* slab : slabs) {
    KmemCacheNode* n = s->node[m.page_zone(slab)->node].get();
    r.hold = true;
    {
      SpinGuard g(n->list_lock);
      validate_slab(slab);
    }
    r.hold = false;
    r.flush();
  }
  r.flush();
  return r.errors;
}

uint64_t kmem_cache_quarantined(const KmemCache* s) {
  return s->quarantined.load(std::memory_order_relaxed);
}

slab_flags_t slub_debug_flags_for(const SlabState& st, std::string_view name) {
  if (!st.slub_debug_flags || !name_matches(st.slub_debug_caches, name)) return 0;
  return st.slub_debug_flags;
}

namespace {

void set_slub_debug_on(Machine& m, SlabState& st, slab_flags_t flags,
                       std::string_view cache_names_csv) {
  constexpr slab_flags_t kDebugFlags = SLAB_DEBUG_FLAGS | SLAB_FREELIST_HARDENED;
  if (flags & ~kDebugFlags) {
    m.warn(fmt::format("slub_debug: flags {:#x} are not debug flags, ignored\n",
                       flags & ~kDebugFlags));
    flags &= kDebugFlags;
  }
  std::lock_guard<std::mutex> g(st.slab_mutex);
  st.slub_debug_flags = flags;
  st.slub_debug_caches = std::string(cache_names_csv);
  if (!flags) return;
  for (KmemCache* s : st.caches) {
    if ((s->flags & flags) == flags || !name_matches(cache_names_csv, s->name)) continue;
    if (!cache_unused(s)) {
      m.warn(
          fmt::format("slub_debug: cache {} is in use; its flags stay {:#x}\n", s->name, s->flags));
      continue;
    }
    // A cache without slabs is laid out anew (kmem_cache_open), as if created now.
    const slab_flags_t old = s->flags;
    s->flags |= flags;
    free_kmem_cache_nodes(s);
    if (!kmem_cache_open(s, st.percpu)) {
      m.warn(fmt::format("slub_debug: cache {} cannot hold its debug metadata; flags stay {:#x}\n",
                         s->name, old));
      s->flags = old;
      free_kmem_cache_nodes(s);
      kmem_cache_open(s, st.percpu);
    }
  }
}

}  // namespace

void set_slub_debug(Machine& m, slab_flags_t flags, std::string_view cache_names_csv) {
  set_slub_debug_on(m, slab_state(m), flags, cache_names_csv);
}

void apply_slub_debug_param(Machine& m, SlabState& st) {
  const std::string& param = m.config().slub_debug;
  const size_t comma = param.find(',');
  slab_flags_t flags = 0;
  for (char ch : param.substr(0, comma)) {
    switch (ch) {
      case 'F':
        flags |= SLAB_CONSISTENCY_CHECKS;
        break;
      case 'Z':
        flags |= SLAB_RED_ZONE;
        break;
      case 'P':
        flags |= SLAB_POISON;
        break;
      case 'U':
        flags |= SLAB_STORE_USER;
        break;
      case 'H':
        flags |= SLAB_FREELIST_HARDENED;
        break;
      default:
        break;  // '-' and 'T': nothing to turn on
    }
  }
  if (param.substr(0, comma).empty())
    flags = SLAB_DEBUG_FLAGS & ~SLAB_STORE_USER;  // "slub_debug" alone: FZP
  set_slub_debug_on(m, st, flags,
                    comma == std::string::npos ? "" : std::string_view(param).substr(comma + 1));
}

}  // namespace mmkit
