// The TOML front end of MachineConfig, on toml++.
//
// screen() refuses bytes that TOML forbids or that trip toml++ 3.3 bugs;
// toml++ checks the syntax; Parser walks the document against the schema (in
// config_toml.h), rejecting wrong types and unknown keys, and records the
// source line of every field it reads. validate() then judges the values; its
// "field: ..." message is mapped back to that field's line, so every error,
// whichever layer finds it, reads "FILE:LINE: field: what". Internally a
// failure is thrown and caught at the top; no exception leaves this file.
#include "phys/config_toml.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "phys/toml_util.h"

namespace mmkit {
namespace {

// A parse failure: where, which field, what is wrong.
struct ConfigError {
  uint32_t line;
  std::string field;
  std::string what;
};

// A problem found before toml++ runs (see screen()).
struct SyntaxError {
  uint32_t line;
  std::string what;
};

[[noreturn]] void fail_at(uint32_t line, std::string what) {
  throw SyntaxError{line, std::move(what)};
}

class Parser {
 public:
  explicit Parser(std::map<std::string, uint32_t>* lines) : lines_(*lines) {}

  MachineConfig parse(const toml::table& root) {
    MachineConfig c;
    check_keys(root, "", "at the top level",
               {"arch",
                "cpus",
                "min_free_kbytes",
                "watermark_scale_factor",
                "lowmem_reserve_ratio",
                "percpu_pagelist_high_fraction",
                "movablecore",
                "node",
                "fail_page_alloc",
                "failslab",
                "slub_debug",
                "slab_freelist_hardened",
                "overcommit_memory",
                "overcommit_ratio",
                "overcommit_kbytes",
                "user_reserve_kbytes",
                "admin_reserve_kbytes",
                "swap",
                "paging_levels",
                "vmalloc",
                "swappiness",
                "page_cluster",
                "panic_on_oom",
                "oom_kill_allocating_task",
                "lru_gen",
                "lru_gen_min_ttl_ms",
                "rlimit_as",
                "rlimit_data",
                "max_map_count",
                "dirty_ratio",
                "dirty_background_ratio",
                "dirty_bytes",
                "dirty_background_bytes",
                "dirty_expire_centisecs",
                "dirty_writeback_centisecs",
                "fault_around_bytes",
                "fs",
                "zswap"});
    for (const auto& [key, value] : root) note(std::string(key.str()), value);

    if (const toml::node* n = root.get("arch")) {
      const auto* s = n->as_string();
      if (!s) fail(*n, "arch", std::string("expected a string, got ") + type_name(*n));
      if (s->get() == "x86_64") {
        c.arch = Arch::x86_64;
      } else if (s->get() == "i386") {
        c.arch = Arch::i386;
      } else {
        fail(*n, "arch",
             "unknown architecture " + quoted(s->get()) + "; expected \"x86_64\" or \"i386\"");
      }
    }
    if (const toml::node* n = root.get("cpus")) c.cpus = get_uint<unsigned>(*n, "cpus");
    if (const toml::node* n = root.get("min_free_kbytes")) {
      c.min_free_kbytes = get_uint<uint64_t>(*n, "min_free_kbytes");
    }
    if (const toml::node* n = root.get("watermark_scale_factor")) {
      c.watermark_scale_factor = get_uint<unsigned>(*n, "watermark_scale_factor");
    }
    if (const toml::node* n = root.get("lowmem_reserve_ratio")) {
      const toml::array& a = get_array(*n, "lowmem_reserve_ratio", "integers");
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string field = "lowmem_reserve_ratio[" + std::to_string(i) + "]";
        note(field, a[i]);
        c.lowmem_reserve_ratio.push_back(get_uint<unsigned>(a[i], field));
      }
    }
    if (const toml::node* n = root.get("percpu_pagelist_high_fraction")) {
      c.percpu_pagelist_high_fraction = get_uint<unsigned>(*n, "percpu_pagelist_high_fraction");
    }
    if (const toml::node* n = root.get("movablecore")) c.movablecore = get_size(*n, "movablecore");
    if (const toml::node* n = root.get("node")) {
      const auto* a = n->as_array();
      if (!a) {
        fail(*n, "node",
             std::string("expected an array of tables ([[node]]), got ") + type_name(*n));
      }
      for (size_t i = 0; i < a->size(); ++i) {
        c.nodes.push_back(get_node((*a)[i], "node[" + std::to_string(i) + "]"));
      }
      // The array's own position may be unknown; the first node stands for it.
      if (!a->empty() && line_of(*n) == 0) lines_["node"] = line_of((*a)[0]);
    }
    if (const toml::node* n = root.get("failslab")) get_failslab(*n, &c.failslab);
    if (const toml::node* n = root.get("slub_debug")) {
      const auto* s = n->as_string();
      if (!s) fail(*n, "slub_debug", std::string("expected a string, got ") + type_name(*n));
      c.slub_debug = s->get();
    }
    if (const toml::node* n = root.get("slab_freelist_hardened"))
      c.slab_freelist_hardened = get_bool(*n, "slab_freelist_hardened");
    if (const toml::node* n = root.get("fail_page_alloc")) {
      get_fail_page_alloc(*n, &c.fail_page_alloc);
    }
    if (const toml::node* n = root.get("overcommit_memory"))
      c.overcommit_memory = get_uint<unsigned>(*n, "overcommit_memory");
    if (const toml::node* n = root.get("overcommit_ratio"))
      c.overcommit_ratio = get_uint<unsigned>(*n, "overcommit_ratio");
    if (const toml::node* n = root.get("overcommit_kbytes"))
      c.overcommit_kbytes = get_uint<uint64_t>(*n, "overcommit_kbytes");
    if (const toml::node* n = root.get("user_reserve_kbytes"))
      c.user_reserve_kbytes = get_uint<uint64_t>(*n, "user_reserve_kbytes");
    if (const toml::node* n = root.get("admin_reserve_kbytes"))
      c.admin_reserve_kbytes = get_uint<uint64_t>(*n, "admin_reserve_kbytes");
    if (const toml::node* n = root.get("swap")) {
      if (const auto* a = n->as_array(); a && (a->empty() || (*a)[0].is_table())) {
        for (size_t i = 0; i < a->size(); ++i)
          c.swap_areas.push_back(get_swap_area((*a)[i], "swap[" + std::to_string(i) + "]"));
        if (!a->empty() && line_of(*n) == 0) lines_["swap"] = line_of((*a)[0]);
      } else {
        c.swap = get_size(*n, "swap");
        c.swap_line = line_of(*n);
      }
    }
    if (const toml::node* n = root.get("swappiness"))
      c.swappiness = get_uint<unsigned>(*n, "swappiness");
    if (const toml::node* n = root.get("page_cluster"))
      c.page_cluster = get_uint<unsigned>(*n, "page_cluster");
    if (const toml::node* n = root.get("panic_on_oom"))
      c.panic_on_oom = get_uint<unsigned>(*n, "panic_on_oom");
    if (const toml::node* n = root.get("oom_kill_allocating_task"))
      c.oom_kill_allocating_task = get_bool(*n, "oom_kill_allocating_task");
    if (const toml::node* n = root.get("lru_gen")) c.lru_gen = get_bool(*n, "lru_gen");
    if (const toml::node* n = root.get("lru_gen_min_ttl_ms"))
      c.lru_gen_min_ttl_ms = get_uint<unsigned>(*n, "lru_gen_min_ttl_ms");
    if (const toml::node* n = root.get("vmalloc")) c.vmalloc_size = get_size(*n, "vmalloc");
    if (const toml::node* n = root.get("paging_levels")) {
      c.paging_levels = get_uint<unsigned>(*n, "paging_levels");
    }
    if (const toml::node* n = root.get("rlimit_as")) c.rlimit_as = get_rlimit(*n, "rlimit_as");
    if (const toml::node* n = root.get("rlimit_data"))
      c.rlimit_data = get_rlimit(*n, "rlimit_data");
    if (const toml::node* n = root.get("max_map_count"))
      c.max_map_count = get_uint<unsigned>(*n, "max_map_count");
    if (const toml::node* n = root.get("dirty_ratio"))
      c.dirty_ratio = get_uint<unsigned>(*n, "dirty_ratio");
    if (const toml::node* n = root.get("dirty_background_ratio"))
      c.dirty_background_ratio = get_uint<unsigned>(*n, "dirty_background_ratio");
    if (const toml::node* n = root.get("dirty_bytes")) c.dirty_bytes = get_size(*n, "dirty_bytes");
    if (const toml::node* n = root.get("dirty_background_bytes"))
      c.dirty_background_bytes = get_size(*n, "dirty_background_bytes");
    if (const toml::node* n = root.get("dirty_expire_centisecs"))
      c.dirty_expire_centisecs = get_uint<unsigned>(*n, "dirty_expire_centisecs");
    if (const toml::node* n = root.get("dirty_writeback_centisecs"))
      c.dirty_writeback_centisecs = get_uint<unsigned>(*n, "dirty_writeback_centisecs");
    if (const toml::node* n = root.get("fault_around_bytes"))
      c.fault_around_bytes = get_size(*n, "fault_around_bytes");
    if (const toml::node* n = root.get("fs")) get_fs(*n, &c);
    if (const toml::node* n = root.get("zswap")) get_zswap(*n, &c.zswap);
    return c;
  }

 private:
  static uint32_t line_of(const toml::node& n) { return n.source().begin.line; }

  [[noreturn]] static void fail(uint32_t line, std::string field, std::string what) {
    throw ConfigError{line, std::move(field), std::move(what)};
  }
  [[noreturn]] static void fail(const toml::node& n, std::string field, std::string what) {
    fail(line_of(n), std::move(field), std::move(what));
  }

  void note(const std::string& field, const toml::node& n) {
    if (line_of(n) != 0) lines_[field] = line_of(n);
  }

  // Rejects the unknown key that comes first in the file, suggesting the
  // closest known key when there is one, else listing the known keys.
  void check_keys(const toml::table& t, const std::string& prefix, const char* where,
                  std::initializer_list<std::string_view> known) {
    const toml::key* bad = nullptr;
    for (const auto& [key, value] : t) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      if (!bad || key.source().begin.line < bad->source().begin.line) bad = &key;
    }
    if (!bad) return;
    std::string_view best;
    size_t best_distance = 3;  // suggest only close matches
    for (std::string_view k : known) {
      // A typo, or a shortened or lengthened name ("mem", "cpus_count").
      const std::string_view b = bad->str();
      const bool prefix = b.size() >= 3 && (k.starts_with(b) || b.starts_with(k));
      const size_t d = prefix ? 1 : edit_distance(b, k);
      if (d < best_distance) best = k, best_distance = d;
    }
    std::string what = "unknown key " + quoted(bad->str()) + " " + where;
    if (!best.empty()) {
      what += "; did you mean " + quoted(best) + "?";
    } else {
      what += " (expected one of";
      for (std::string_view k : known)
        what += std::string(k == *known.begin() ? " " : ", ") + std::string(k);
      what += ")";
    }
    std::string key_text = quoted(bad->str());
    fail(bad->source().begin.line, prefix + key_text.substr(1, key_text.size() - 2), what);
  }

  static int64_t get_int(const toml::node& n, const std::string& field) {
    const auto* v = n.as_integer();
    if (!v) fail(n, field, std::string("expected an integer, got ") + type_name(n));
    return v->get();
  }

  template <class T>
  static T get_uint(const toml::node& n, const std::string& field) {
    const int64_t v = get_int(n, field);
    if (v < 0) fail(n, field, std::to_string(v) + " is negative");
    if (static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) {
      fail(n, field, std::to_string(v) + " is too large");
    }
    return static_cast<T>(v);
  }

  static bool get_bool(const toml::node& n, const std::string& field) {
    const auto* v = n.as_boolean();
    if (!v) fail(n, field, std::string("expected true or false, got ") + type_name(n));
    return v->get();
  }

  static uint64_t get_size(const toml::node& n, const std::string& field) {
    if (const auto* i = n.as_integer()) {
      if (i->get() < 0) fail(n, field, std::to_string(i->get()) + " is negative");
      return static_cast<uint64_t>(i->get());
    }
    if (const auto* s = n.as_string()) {
      uint64_t bytes = 0;
      std::string why;
      if (!parse_size(s->get(), &bytes, &why)) fail(n, field, why);
      return bytes;
    }
    fail(n, field,
         std::string("expected a size (bytes as an integer, or a string like \"512MiB\"), got ") +
             type_name(n));
  }

  // An rlimit: a size, or "unlimited" (RLIM_INFINITY, as `ulimit` spells it).
  static uint64_t get_rlimit(const toml::node& n, const std::string& field) {
    if (const auto* s = n.as_string()) {
      if (s->get() == "unlimited") return kRlimInfinity;
      uint64_t bytes = 0;
      std::string why;
      if (!parse_size(s->get(), &bytes, &why)) {
        if (why.find(" is not a size") != std::string::npos)
          why = quoted(s->get()) + " is not a size or \"unlimited\" (use e.g. \"4GiB\")";
        fail(n, field, why);
      }
      return bytes;
    }
    if (const auto* i = n.as_integer(); i && i->get() < 0)
      fail(n, field, std::to_string(i->get()) + " is negative (use \"unlimited\" for no limit)");
    if (!n.as_integer())
      fail(n, field,
           std::string("expected a size (bytes as an integer, or a string like \"4GiB\") or "
                       "\"unlimited\", got ") +
               type_name(n));
    return get_size(n, field);
  }

  static const toml::array& get_array(const toml::node& n, const std::string& field,
                                      const char* of) {
    const auto* a = n.as_array();
    if (!a) fail(n, field, std::string("expected an array of ") + of + ", got " + type_name(n));
    return *a;
  }

  std::vector<MemRange> get_ranges(const toml::node& n, const std::string& field) {
    const toml::array& a = get_array(n, field, "{ start, size } tables");
    std::vector<MemRange> ranges;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string name = field + "[" + std::to_string(i) + "]";
      const auto* t = a[i].as_table();
      if (!t) {
        fail(a[i], name,
             std::string("expected a table like { start = \"1GiB\", size = \"64MiB\" }, got ") +
                 type_name(a[i]));
      }
      note(name, *t);
      check_keys(*t, name + ".", "in a range", {"start", "size"});
      MemRange r;
      for (const char* key : {"start", "size"}) {
        const toml::node* v = t->get(key);
        if (!v) fail(*t, name + "." + key, "missing (required)");
        note(name + "." + key, *v);
        (std::string_view(key) == "start" ? r.start : r.size) = get_size(*v, name + "." + key);
      }
      ranges.push_back(r);
    }
    return ranges;
  }

  NodeConfig get_node(const toml::node& n, const std::string& field) {
    const auto* t = n.as_table();
    if (!t) fail(n, field, std::string("expected a table, got ") + type_name(n));
    note(field, *t);
    check_keys(*t, field + ".", "in [[node]]",
               {"memory", "online", "cpus", "distance", "holes", "reserved"});
    for (const auto& [key, value] : *t) note(field + "." + std::string(key.str()), value);

    NodeConfig node;
    const toml::node* memory = t->get("memory");
    if (!memory) fail(*t, field + ".memory", "missing (required)");
    node.memory = get_size(*memory, field + ".memory");
    if (const toml::node* v = t->get("online")) node.online = get_size(*v, field + ".online");
    if (const toml::node* v = t->get("cpus")) node.cpus = get_uint<unsigned>(*v, field + ".cpus");
    if (const toml::node* v = t->get("distance")) {
      const toml::array& a = get_array(*v, field + ".distance", "integers");
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string name = field + ".distance[" + std::to_string(i) + "]";
        note(name, a[i]);
        const int64_t d = get_int(a[i], name);
        if (d < std::numeric_limits<int>::min() || d > std::numeric_limits<int>::max()) {
          fail(a[i], name, std::to_string(d) + " is out of range (must be 10..254)");
        }
        node.distance.push_back(static_cast<int>(d));
      }
    }
    if (const toml::node* v = t->get("holes")) node.holes = get_ranges(*v, field + ".holes");
    if (const toml::node* v = t->get("reserved")) {
      node.reserved = get_ranges(*v, field + ".reserved");
    }
    return node;
  }

  void get_fail_page_alloc(const toml::node& n, FailPageAllocConfig* f) {
    const auto* t = n.as_table();
    if (!t) fail(n, "fail_page_alloc", std::string("expected a table, got ") + type_name(n));
    check_keys(*t, "fail_page_alloc.", "in [fail_page_alloc]",
               {"probability", "interval", "times", "space", "min_order", "ignore_gfp_wait",
                "ignore_gfp_highmem", "seed"});
    for (const auto& [key, value] : *t) note("fail_page_alloc." + std::string(key.str()), value);
    auto field = [&](const char* key) { return std::string("fail_page_alloc.") + key; };
    if (const toml::node* v = t->get("probability")) {
      f->fault.probability = get_uint<unsigned>(*v, field("probability"));
    }
    if (const toml::node* v = t->get("interval")) {
      f->fault.interval = get_uint<unsigned>(*v, field("interval"));
    }
    if (const toml::node* v = t->get("times")) f->fault.times = get_int(*v, field("times"));
    if (const toml::node* v = t->get("space")) f->fault.space = get_int(*v, field("space"));
    if (const toml::node* v = t->get("min_order")) {
      f->min_order = get_uint<unsigned>(*v, field("min_order"));
    }
    if (const toml::node* v = t->get("ignore_gfp_wait")) {
      f->ignore_gfp_wait = get_bool(*v, field("ignore_gfp_wait"));
    }
    if (const toml::node* v = t->get("ignore_gfp_highmem")) {
      f->ignore_gfp_highmem = get_bool(*v, field("ignore_gfp_highmem"));
    }
    if (const toml::node* v = t->get("seed")) f->fault.seed = get_uint<uint64_t>(*v, field("seed"));
  }

  SwapAreaConfig get_swap_area(const toml::node& n, const std::string& name) {
    const auto* t = n.as_table();
    if (!t) fail(n, name, std::string("expected a table ([[swap]]), got ") + type_name(n));
    check_keys(*t, name + ".", "in [[swap]]", {"file", "size", "priority"});
    for (const auto& [key, value] : *t) note(name + "." + std::string(key.str()), value);
    SwapAreaConfig a;
    a.line = line_of(n);
    if (const toml::node* v = t->get("file")) {
      const auto* s = v->as_string();
      if (!s) fail(*v, name + ".file", std::string("expected a string, got ") + type_name(*v));
      if (s->get().empty())
        fail(*v, name + ".file", "an empty path (omit the key for a temporary file)");
      a.file = s->get();
    }
    if (const toml::node* v = t->get("size")) a.size = get_size(*v, name + ".size");
    if (const toml::node* v = t->get("priority"))
      a.priority = static_cast<int>(get_int(*v, name + ".priority"));
    return a;
  }

  // [fs]: the host directory the machine's file system lives in.
  void get_fs(const toml::node& n, MachineConfig* c) {
    const auto* t = n.as_table();
    if (!t) fail(n, "fs", std::string("expected a table, got ") + type_name(n));
    check_keys(*t, "fs.", "in [fs]", {"root"});
    for (const auto& [key, value] : *t) note("fs." + std::string(key.str()), value);
    if (const toml::node* v = t->get("root")) {
      const auto* s = v->as_string();
      if (!s) fail(*v, "fs.root", std::string("expected a string, got ") + type_name(*v));
      if (s->get().empty())
        fail(*v, "fs.root", "an empty path; leave the key out for a temporary directory");
      c->fs_root = s->get();
    }
  }

  // [zswap]: mm/zswap.c's module parameters.
  void get_zswap(const toml::node& n, ZswapConfig* z) {
    const auto* t = n.as_table();
    if (!t) fail(n, "zswap", std::string("expected a table, got ") + type_name(n));
    check_keys(*t, "zswap.", "in [zswap]",
               {"enabled", "compressor", "max_pool_percent", "accept_threshold_percent"});
    for (const auto& [key, value] : *t) note("zswap." + std::string(key.str()), value);
    if (const toml::node* v = t->get("enabled")) z->enabled = get_bool(*v, "zswap.enabled");
    if (const toml::node* v = t->get("compressor")) {
      const auto* s = v->as_string();
      if (!s) fail(*v, "zswap.compressor", std::string("expected a string, got ") + type_name(*v));
      z->compressor = s->get();
    }
    if (const toml::node* v = t->get("max_pool_percent"))
      z->max_pool_percent = get_uint<unsigned>(*v, "zswap.max_pool_percent");
    if (const toml::node* v = t->get("accept_threshold_percent"))
      z->accept_threshold_percent = get_uint<unsigned>(*v, "zswap.accept_threshold_percent");
  }

  void get_failslab(const toml::node& n, FailSlabConfig* f) {
    const auto* t = n.as_table();
    if (!t) fail(n, "failslab", std::string("expected a table, got ") + type_name(n));
    check_keys(*t, "failslab.", "in [failslab]",
               {"probability", "interval", "times", "space", "ignore_gfp_wait", "seed"});
    for (const auto& [key, value] : *t) note("failslab." + std::string(key.str()), value);
    auto field = [&](const char* key) { return std::string("failslab.") + key; };
    if (const toml::node* v = t->get("probability"))
      f->fault.probability = get_uint<unsigned>(*v, field("probability"));
    if (const toml::node* v = t->get("interval"))
      f->fault.interval = get_uint<unsigned>(*v, field("interval"));
    if (const toml::node* v = t->get("times")) f->fault.times = get_int(*v, field("times"));
    if (const toml::node* v = t->get("space")) f->fault.space = get_int(*v, field("space"));
    if (const toml::node* v = t->get("ignore_gfp_wait"))
      f->ignore_gfp_wait = get_bool(*v, field("ignore_gfp_wait"));
    if (const toml::node* v = t->get("seed")) f->fault.seed = get_uint<uint64_t>(*v, field("seed"));
  }

  std::map<std::string, uint32_t>& lines_;
};

// Screens the text before toml++ sees it (toml_screen: control characters
// and non-ASCII bytes where toml++ 3.3 must not meet them).
void screen(std::string_view text) {
  uint32_t line = 0;
  std::string what;
  if (!toml_screen(text, &line, &what)) fail_at(line, what);
}

// The line of `field`, or of the nearest enclosing field that has one
// ("node[1].holes[0].start" -> "node[1].holes[0]" -> ... -> "node"), else 1.
uint32_t line_for(const std::map<std::string, uint32_t>& lines, std::string field) {
  while (!field.empty()) {
    if (auto it = lines.find(field); it != lines.end() && it->second != 0) return it->second;
    const size_t cut = field.find_last_of(".[");
    if (cut == std::string::npos) break;
    field.resize(cut);
  }
  return 1;
}

Error located(std::string_view file, uint32_t line, const std::string& message) {
  return Error{std::string(file) + ":" + std::to_string(line == 0 ? 1 : line) + ": " + message};
}

}  // namespace

Result<MachineConfig> parse_machine_config(std::string_view text, std::string_view file_name) {
  std::map<std::string, uint32_t> lines;
  MachineConfig config;
  try {
    screen(text);
    const toml::table root = toml::parse(text, file_name);
    config = Parser(&lines).parse(root);
  } catch (const toml::parse_error& e) {
    return located(file_name, e.source().begin.line, "syntax: " + one_line(e.description()));
  } catch (const ConfigError& e) {
    return located(file_name, e.line, e.field + ": " + e.what);
  } catch (const SyntaxError& e) {
    return located(file_name, e.line, "syntax: " + e.what);
  } catch (const std::exception& e) {
    return located(file_name, 1, "internal: " + one_line(e.what()));
  } catch (...) {
    return located(file_name, 1, "internal: unknown exception");
  }
  const std::string problem = validate(config);
  if (!problem.empty()) {
    return located(file_name, line_for(lines, problem.substr(0, problem.find(": "))), problem);
  }
  return config;
}

Result<MachineConfig> load_machine_config(const std::string& path) {
  auto cannot_read = [&](int err) {
    return Error{path + ": cannot read: " + std::generic_category().message(err)};
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return cannot_read(errno);
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return cannot_read(err);
  return parse_machine_config(text, path);
}

}  // namespace mmkit
