// Tests of the machine description: validate() and the TOML front end.
//
// Every bad config pins the exact one-line message, file and line included,
// because that line is the whole user interface of a broken --machine file:
// it must name the right field and point at the right line. The good configs
// check that values and defaults arrive in MachineConfig unchanged.
#include <stdlib.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "phys/config_toml.h"
#include "phys/toml_util.h"

namespace mmkit {
namespace {

struct BadConfig {
  const char* name;
  const char* toml;
  const char* error;
};

// gtest prints the case by name instead of as raw bytes.
void PrintTo(const BadConfig& c, std::ostream* os) {
  *os << c.name;
}

class BadConfigTest : public testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, ReportsExactError) {
  const BadConfig& c = GetParam();
  auto r = parse_machine_config(c.toml, "t.toml");
  ASSERT_FALSE(r.ok()) << "parsed, but expected: " << c.error;
  EXPECT_EQ(r.error().message, c.error);
}

const BadConfig kBadConfigs[] = {
    {"SyntaxError", "cpus = \n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: syntax: Error while parsing key-value pair: expected value, saw '\\n'"},
    {"ControlCharacter", "[[node]]\nmemory = \"1GiB\"\n\f\n",
     "t.toml:3: syntax: control character 0x0c is not allowed in TOML (use an escape in a "
     "string)"},
    {"NonAsciiOutsideComment", "[[node]]\nmemory = \"1GiB\"\n\xc2\xa7 = 1\n",
     "t.toml:3: syntax: non-ASCII character outside a comment or a one-line string"},
    {"NonAsciiInMultiLineString", "arch = \"\"\"\\\n\xc2\xa7\"\"\"\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:2: syntax: non-ASCII character outside a comment or a one-line string"},
    {"NonAsciiAfterQuoteInBareValue", "[[node]]\nmemory = 2x\"\xcf\xbc\"\n",
     "t.toml:2: syntax: non-ASCII character outside a comment or a one-line string"},
    {"NonAsciiInSizeString",
     "[[node]]\nmemory = \"4\xc2\xb5"
     "B\"\n",
     "t.toml:2: node[0].memory: \"4\xc2\xb5"
     "B\" is not a size (use e.g. \"512MiB\")"},
    {"UnknownTopLevelKey", "cpu = 2\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: cpu: unknown key \"cpu\" at the top level; did you mean \"cpus\"?"},
    {"UnknownTopLevelKeyListsKnownKeys", "\nzzzzzzz = -1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zzzzzzz: unknown key \"zzzzzzz\" at the top level (expected one of arch, cpus, "
     "min_free_kbytes, watermark_scale_factor, lowmem_reserve_ratio, "
     "percpu_pagelist_high_fraction, movablecore, node, fail_page_alloc, failslab, slub_debug, "
     "slab_freelist_hardened, overcommit_memory, overcommit_ratio, overcommit_kbytes, "
     "user_reserve_kbytes, "
     "admin_reserve_kbytes, swap, paging_levels, vmalloc, swappiness, page_cluster, "
     "panic_on_oom, oom_kill_allocating_task, lru_gen, lru_gen_min_ttl_ms, rlimit_as, rlimit_data, "
     "max_map_count, dirty_ratio, "
     "dirty_background_ratio, dirty_bytes, dirty_background_bytes, dirty_expire_centisecs, "
     "dirty_writeback_centisecs, fault_around_bytes, fs, zswap)"},
    {"DirtyRatioAndBytes",
     "dirty_ratio = 10\ndirty_bytes = \"1MiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: dirty_bytes: dirty_ratio and dirty_bytes exclude each other; set one"},
    {"DirtyRatioRange", "dirty_background_ratio = 101\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: dirty_background_ratio: 101 is out of range (0..100)"},
    {"FsRootNotADirectory",
     "[fs]\nroot = \"/nonexistent/mmkit-root\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: fs.root: \"/nonexistent/mmkit-root\" is not a directory (No such file or "
     "directory)"},
    {"FsRootWrongType", "[fs]\nroot = 3\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: fs.root: expected a string, got an integer"},
    {"FsUnknownKey", "[fs]\nroots = \"/tmp\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: fs.roots: unknown key \"roots\" in [fs]; did you mean \"root\"?"},
    {"UnknownNodeKey", "[[node]]\nmemory = \"1GiB\"\n[[node]]\nmemory = \"1GiB\"\nweight = 3\n",
     "t.toml:5: node[1].weight: unknown key \"weight\" in [[node]] (expected one of memory, "
     "online, "
     "cpus, distance, holes, reserved)"},
    {"UnknownNodeKeyWithSuggestion", "[[node]]\nmem = \"1GiB\"\n",
     "t.toml:2: node[0].mem: unknown key \"mem\" in [[node]]; did you mean \"memory\"?"},
    {"UnknownHoleKey", "[[node]]\nmemory = \"2GiB\"\nholes = [{ start = \"0\", sz = 1 }]\n",
     "t.toml:3: node[0].holes[0].sz: unknown key \"sz\" in a range; did you mean \"size\"?"},
    {"UnknownFailPageAllocKey", "[[node]]\nmemory = \"4MiB\"\n[fail_page_alloc]\nprobablity = 1\n",
     "t.toml:4: fail_page_alloc.probablity: unknown key \"probablity\" in [fail_page_alloc]; did "
     "you mean \"probability\"?"},
    {"UnknownKeyIsEscaped", "[[node]]\nmemory = \"4MiB\"\n\"a\\nb\" = 1\n",
     "t.toml:3: node[0].a\\x0ab: unknown key \"a\\x0ab\" in [[node]] (expected one of memory, "
     "online, cpus, distance, holes, reserved)"},
    {"BadArch", "arch = \"arm\"\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: arch: unknown architecture \"arm\"; expected \"x86_64\" or \"i386\""},
    {"ArchNotString", "arch = 64\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: arch: expected a string, got an integer"},
    {"CpusZero", "cpus = 0\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: cpus: 0 is out of range (must be 1..256)"},
    {"Cpus1000", "\n\ncpus = 1000\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:3: cpus: 1000 is out of range (must be 1..256)"},
    {"CpusNegative", "cpus = -1\n[[node]]\nmemory = \"4MiB\"\n", "t.toml:1: cpus: -1 is negative"},
    {"CpusString", "cpus = \"2\"\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: cpus: expected an integer, got a string"},
    {"NoNodes", "cpus = 2\n", "t.toml:1: node: at least one [[node]] is required"},
    {"EmptyNodeArray", "node = []\n", "t.toml:1: node: at least one [[node]] is required"},
    {"NodeNotArray", "node = 5\n",
     "t.toml:1: node: expected an array of tables ([[node]]), got an integer"},
    {"NodeIsPlainTable", "[node]\nmemory = 5\n",
     "t.toml:1: node: expected an array of tables ([[node]]), got a table"},
    {"NodeElementNotTable", "node = [1]\n", "t.toml:1: node[0]: expected a table, got an integer"},
    {"NodeMemoryMissing", "cpus = 2\n\n[[node]]\nmemory = \"1GiB\"\n\n[[node]]\ncpus = 1\n",
     "t.toml:6: node[1].memory: missing (required)"},
    {"MemoryNotASize", "[[node]]\nmemory = \"12XB\"\n",
     "t.toml:2: node[0].memory: \"12XB\" is not a size (use e.g. \"512MiB\")"},
    {"MemoryEmptyString", "[[node]]\nmemory = \"\"\n",
     "t.toml:2: node[0].memory: \"\" is not a size (use e.g. \"512MiB\")"},
    {"MemoryFractional", "[[node]]\nmemory = \"1.5GiB\"\n",
     "t.toml:2: node[0].memory: \"1.5GiB\" is not a whole number of bytes (use a smaller unit, "
     "e.g. \"1536MiB\")"},
    {"MemoryNegative", "[[node]]\nmemory = \"-1GiB\"\n",
     "t.toml:2: node[0].memory: \"-1GiB\" is negative"},
    {"MemoryNegativeInteger", "[[node]]\nmemory = -4096\n",
     "t.toml:2: node[0].memory: -4096 is negative"},
    {"MemoryOverflow", "[[node]]\nmemory = \"99999999TiB\"\n",
     "t.toml:2: node[0].memory: \"99999999TiB\" is too large (at most 2^63 bytes)"},
    {"MemoryFloat", "[[node]]\nmemory = 1.5\n",
     "t.toml:2: node[0].memory: expected a size (bytes as an integer, or a string like "
     "\"512MiB\"), got a float"},
    {"MemoryNot4MiBMultiple", "[[node]]\nmemory = \"6MiB\"\n",
     "t.toml:2: node[0].memory: 6MiB is not a multiple of 4MiB (the MAX_ORDER block size)"},
    {"MemoryZero", "[[node]]\nmemory = 0\n", "t.toml:2: node[0].memory: must be > 0"},
    {"HolePastNodeEnd",
     "[[node]]\nmemory = \"2GiB\"\n[[node]]\nmemory = \"2GiB\"\nholes = [{ start = \"1GiB\", "
     "size = \"64MiB\" },\n  { start = \"2GiB\", size = \"4KiB\" }]\n",
     "t.toml:6: node[1].holes[1].start: hole extends past the node's memory (2GiB)"},
    {"OverlappingHoles",
     "[[node]]\nmemory = \"2GiB\"\nholes = [\n  { start = \"1GiB\", size = \"64MiB\" },\n  { "
     "start = \"1056MiB\", size = \"64MiB\" },\n]\n",
     "t.toml:5: node[0].holes[1]: overlaps node[0].holes[0]"},
    {"UnalignedHole",
     "[[node]]\nmemory = \"2GiB\"\nholes = [{ start = \"1000\", size = \"64MiB\" }]\n",
     "t.toml:3: node[0].holes[0].start: 1000 is not a multiple of the page size (4096)"},
    {"HoleSizeMissing", "[[node]]\nmemory = \"2GiB\"\nholes = [{ start = \"0\" }]\n",
     "t.toml:3: node[0].holes[0].size: missing (required)"},
    {"NodeAllHoles", "[[node]]\nmemory = \"4MiB\"\nholes = [{ start = \"0\", size = \"4MiB\" }]\n",
     "t.toml:3: node[0].holes: the holes cover all of the node's memory"},
    {"ReservedOverlapsHole",
     "[[node]]\nmemory = \"4MiB\"\nholes = [{ start = \"0\", size = \"1MiB\" }]\nreserved = [{ "
     "start = \"512KiB\", size = \"1MiB\" }]\n",
     "t.toml:4: node[0].reserved[0]: overlaps node[0].holes[0]"},
    {"DistanceWrongLength", "[[node]]\nmemory = \"2GiB\"\ndistance = [10, 20]\n",
     "t.toml:3: node[0].distance: 2 entries for 1 node(s); give one distance per node"},
    {"DistanceLocalNot10",
     "[[node]]\nmemory = \"2GiB\"\ndistance = [10, 20]\n[[node]]\nmemory = \"2GiB\"\ndistance = "
     "[20, 11]\n",
     "t.toml:6: node[1].distance[1]: the local distance must be 10, not 11"},
    {"DistanceRemoteUnreachable",
     "[[node]]\nmemory = \"2GiB\"\ndistance = [10, 255]\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:3: node[0].distance[1]: remote distance 255 is out of range (must be 11..254)"},
    {"WatermarkScaleFactorZero", "watermark_scale_factor = 0\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: watermark_scale_factor: 0 is out of range (must be 1..3000)"},
    {"WatermarkScaleFactor5000", "watermark_scale_factor = 5000\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: watermark_scale_factor: 5000 is out of range (must be 1..3000)"},
    {"PercpuPagelistHighFraction3",
     "percpu_pagelist_high_fraction = 3\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: percpu_pagelist_high_fraction: 3 is too small (must be 0 or at least 8)"},
    {"FailPageAllocProbability150",
     "[[node]]\nmemory = \"2GiB\"\n[fail_page_alloc]\nprobability = 150\n",
     "t.toml:4: fail_page_alloc.probability: 150 is out of range (must be 0..100)"},
    {"FailPageAllocTimes", "[[node]]\nmemory = \"4MiB\"\n[fail_page_alloc]\ntimes = -2\n",
     "t.toml:4: fail_page_alloc.times: -2 is out of range (must be -1 for no limit, or >= 0)"},
    {"FailPageAllocMinOrder", "[[node]]\nmemory = \"4MiB\"\n[fail_page_alloc]\nmin_order = 11\n",
     "t.toml:4: fail_page_alloc.min_order: 11 is out of range (must be 0..10)"},
    {"FailPageAllocBoolType",
     "[[node]]\nmemory = \"4MiB\"\n[fail_page_alloc]\nignore_gfp_wait = 1\n",
     "t.toml:4: fail_page_alloc.ignore_gfp_wait: expected true or false, got an integer"},
    {"FailPageAllocNotTable", "fail_page_alloc = 3\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: fail_page_alloc: expected a table, got an integer"},
    {"LowmemReserveRatioWrongLength",
     "lowmem_reserve_ratio = [256, 32]\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: lowmem_reserve_ratio: has 2 entries; it needs exactly 4, one per zone (DMA, "
     "DMA32, Normal, Movable)"},
    {"LowmemReserveRatioWrongLengthI386",
     "arch = \"i386\"\nlowmem_reserve_ratio = [256, 32, 0, 0, 0]\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:2: lowmem_reserve_ratio: has 5 entries; it needs exactly 4, one per zone (DMA, "
     "Normal, HighMem, Movable)"},
    {"MovablecoreTooLarge", "movablecore = \"2GiB\"\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: movablecore: 2GiB is not smaller than the total memory (2GiB)"},
    {"MovablecoreUnaligned", "movablecore = \"1MiB\"\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:1: movablecore: 1MiB is not a multiple of 4MiB (the MAX_ORDER block size)"},
    {"VmallocOnI386", "arch = \"i386\"\nvmalloc = \"64MiB\"\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:2: vmalloc: 64MiB: i386's vmalloc area is fixed by the 896MiB direct map (x86_64 "
     "only)"},
    {"VmallocUnaligned", "vmalloc = 5000\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: vmalloc: 5000 is not a multiple of 4KiB"},
    {"VmallocTooSmall", "vmalloc = \"4KiB\"\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: vmalloc: 4KiB is too small (at least 8KiB)"},
    {"VmallocTooLarge", "vmalloc = \"64TiB\"\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: vmalloc: 64TiB is larger than x86_64's vmalloc area (32TiB)"},
    {"VmallocNotASize", "vmalloc = true\n[[node]]\nmemory = \"1GiB\"\n",
     "t.toml:1: vmalloc: expected a size (bytes as an integer, or a string like \"512MiB\"), got "
     "a boolean"},
    {"NodeCpusNotSumming",
     "cpus = 3\n[[node]]\nmemory = \"2GiB\"\ncpus = 1\n[[node]]\nmemory = \"2GiB\"\ncpus = 1\n",
     "t.toml:1: cpus: 3 but the nodes' cpus add up to 2"},
    {"NodeCpusOnlyOnSome",
     "cpus = 2\n[[node]]\nmemory = \"2GiB\"\ncpus = 1\n[[node]]\nmemory = \"2GiB\"\n",
     "t.toml:5: node[1].cpus: missing; when one node gives cpus, every node must"},
    {"MinFreeKbytesZero", "min_free_kbytes = 0\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: min_free_kbytes: 0 is out of range (must be 1..1024, a quarter of the memory in "
     "KiB)"},
    {"I386OverPaeLimit",
     "arch = \"i386\"\n[[node]]\nmemory = \"48GiB\"\n[[node]]\nmemory = \"48GiB\"\n",
     "t.toml:2: node: the nodes' memory adds up to more than i386 can address (64GiB with PAE)"},
    {"X86_64OverLimit", "[[node]]\nmemory = \"65TiB\"\n",
     "t.toml:1: node: the nodes' memory adds up to more than x86_64 supports here (64TiB)"},
    {"OvercommitMemoryOutOfRange", "\novercommit_memory = 3\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: overcommit_memory: 3 is out of range (must be 0 heuristic, 1 always or 2 never)"},
    {"OvercommitMemoryNegative", "overcommit_memory = -1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: overcommit_memory: -1 is negative"},
    {"OvercommitRatioTooLarge", "overcommit_ratio = 100001\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: overcommit_ratio: 100001 is out of range (must be 0..100000 percent)"},
    {"OvercommitRatioAndKbytes",
     "overcommit_ratio = 50\novercommit_kbytes = 4096\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: overcommit_kbytes: cannot be set together with overcommit_ratio (Linux keeps only "
     "one of them)"},
    {"OvercommitKbytesTooLarge",
     "overcommit_kbytes = 999999999999999\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: overcommit_kbytes: 999999999999999 is too large (at most 137438953472)"},
    {"UserReserveTooLarge", "user_reserve_kbytes = 999999999999999\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: user_reserve_kbytes: 999999999999999 is too large (at most 137438953472)"},
    {"AdminReserveNotAnInteger", "admin_reserve_kbytes = \"8MiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: admin_reserve_kbytes: expected an integer, got a string"},
    {"SwapNotPageMultiple", "swap = 4097\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: swap: 4097 is not a multiple of the page size (4096)"},
    {"SwapTooLarge", "swap = \"65TiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: swap: 65TiB is too large (at most 64TiB)"},
    {"SwapNotASize", "swap = \"lots\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: swap: \"lots\" is not a size (use e.g. \"512MiB\")"},
    {"SwapAreaFileNotAString", "[[swap]]\nfile = 3\nsize = \"8MiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: swap[0].file: expected a string, got an integer"},
    {"SwapAreaFileEmpty", "[[swap]]\nfile = \"\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: swap[0].file: an empty path (omit the key for a temporary file)"},
    {"SwapAreaSizeNotASize", "[[swap]]\nsize = \"lots\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: swap[0].size: \"lots\" is not a size (use e.g. \"512MiB\")"},
    {"SwapAreaUnknownKey", "[[swap]]\nsize = \"8MiB\"\nprioriti = 1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:3: swap[0].prioriti: unknown key \"prioriti\" in [[swap]]; did you mean "
     "\"priority\"?"},
    {"SwapAreaPriorityOutOfRange",
     "[[swap]]\nsize = \"8MiB\"\npriority = 32768\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:3: swap[0].priority: 32768 is out of range (-1..32767)"},
    {"SwapAreaTemporaryWithoutSize", "[[swap]]\npriority = 5\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: swap[0].size: a temporary swap file needs a size"},
    {"SwapAreaTooSmall", "[[swap]]\nsize = \"4KiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: swap[0].size: 4KiB is too small (a header page and a slot)"},
    {"SwapAreaTwiceTheSameFile",
     "[[swap]]\nfile = \"/s\"\nsize = \"8MiB\"\n[[swap]]\nfile = \"/s\"\nsize = "
     "\"8MiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:5: swap[1].file: \"/s\" is already swap[0]"},
    {"SwappinessOutOfRange", "swappiness = 201\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: swappiness: 201 is out of range (0..200)"},
    {"PageClusterOutOfRange", "page_cluster = 32\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: page_cluster: 32 is out of range (0..31)"},
    {"PanicOnOomOutOfRange", "panic_on_oom = 3\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: panic_on_oom: 3 is out of range (0..2)"},
    {"LruGenNotABoolean", "lru_gen = 1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: lru_gen: expected true or false, got an integer"},
    {"LruGenMinTtlNegative",
     "lru_gen = true\nlru_gen_min_ttl_ms = -5\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: lru_gen_min_ttl_ms: -5 is negative"},
    {"LruGenMinTtlTooLarge",
     "lru_gen = true\nlru_gen_min_ttl_ms = 4294967296\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: lru_gen_min_ttl_ms: 4294967296 is too large"},
    {"LruGenMinTtlWithoutLruGen", "lru_gen_min_ttl_ms = 1000\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: lru_gen_min_ttl_ms: needs lru_gen = true"},
    {"OomKillAllocatingTaskNotABoolean",
     "oom_kill_allocating_task = 2\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: oom_kill_allocating_task: expected true or false, got an integer"},
    {"RlimitAsNotASize", "cpus = 1\nrlimit_as = \"lots\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: rlimit_as: \"lots\" is not a size or \"unlimited\" (use e.g. \"4GiB\")"},
    {"RlimitAsUnlimitedIsLowerCase", "rlimit_as = \"Unlimited\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_as: \"Unlimited\" is not a size or \"unlimited\" (use e.g. \"4GiB\")"},
    {"RlimitDataNegative", "rlimit_data = -1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_data: -1 is negative (use \"unlimited\" for no limit)"},
    {"RlimitDataNegativeString", "rlimit_data = \"-1GiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_data: \"-1GiB\" is negative"},
    {"RlimitDataFraction", "rlimit_data = \"1.5GiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_data: \"1.5GiB\" is not a whole number of bytes (use a smaller unit, e.g. "
     "\"1536MiB\")"},
    {"RlimitDataBoolean", "rlimit_data = false\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_data: expected a size (bytes as an integer, or a string like \"4GiB\") or "
     "\"unlimited\", got a boolean"},
    {"RlimitAsTooLarge", "rlimit_as = \"9000000TiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_as: \"9000000TiB\" is too large (at most 2^63 bytes)"},
    {"RlimitAsInsideANodeTable", "[[node]]\nmemory = \"4MiB\"\n\n\nrlimit_as = \"64KiB\"\n",
     "t.toml:5: node[0].rlimit_as: unknown key \"rlimit_as\" in [[node]] (expected one of memory, "
     "online, cpus, distance, holes, reserved)"},
    {"RlimitAsSmallerThanTheInitialStack", "rlimit_as = \"128KiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: rlimit_as: 128KiB is smaller than a process's initial stack (132KiB): no program "
     "could start"},
    {"MaxMapCountZero", "\nmax_map_count = 0\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: max_map_count: 0 is out of range (must be 1..2147483647)"},
    {"MaxMapCountAboveIntMax", "max_map_count = 2147483648\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: max_map_count: 2147483648 is out of range (must be 1..2147483647)"},
    {"MaxMapCountNegative", "max_map_count = -5\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: max_map_count: -5 is negative"},
    {"FaultAroundBytesNotAPowerOfTwo",
     "fault_around_bytes = \"48KiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: fault_around_bytes: 48KiB is not a power of two (Linux would round it down to "
     "32KiB)"},
    {"FaultAroundBytesBelowAPage", "\nfault_around_bytes = 2048\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: fault_around_bytes: 2KiB is out of range (4KiB..2MiB, a page "
     "table's span; 4KiB turns fault-around off)"},
    {"FaultAroundBytesAboveAPageTable",
     "fault_around_bytes = \"4MiB\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: fault_around_bytes: 4MiB is out of range (4KiB..2MiB, a page "
     "table's span; 4KiB turns fault-around off)"},
    {"FaultAroundBytesBoolean", "fault_around_bytes = true\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: fault_around_bytes: expected a size (bytes as an integer, or a string like "
     "\"512MiB\"), got a boolean"},
    {"MaxMapCountString", "max_map_count = \"65530\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: max_map_count: expected an integer, got a string"},
    {"ZswapNotATable", "zswap = true\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:1: zswap: expected a table, got a boolean"},
    {"ZswapUnknownKey", "[zswap]\nenable = true\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.enable: unknown key \"enable\" in [zswap]; did you mean \"enabled\"?"},
    {"ZswapEnabledNotABoolean", "[zswap]\nenabled = 1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.enabled: expected true or false, got an integer"},
    {"ZswapCompressorNotAString", "[zswap]\ncompressor = 4\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.compressor: expected a string, got an integer"},
    {"ZswapCompressorUnknown",
     "[zswap]\nenabled = true\ncompressor = \"lzo\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:3: zswap.compressor: unknown compressor \"lzo\"; expected \"lz4\" or \"zstd\""},
    {"ZswapMaxPoolPercentOutOfRange",
     "[zswap]\nmax_pool_percent = 101\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.max_pool_percent: 101 is out of range (0..100)"},
    {"ZswapMaxPoolPercentNegative", "[zswap]\nmax_pool_percent = -1\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.max_pool_percent: -1 is negative"},
    {"ZswapAcceptThresholdOutOfRange",
     "[zswap]\naccept_threshold_percent = 150\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.accept_threshold_percent: 150 is out of range (0..100)"},
    {"ZswapAcceptThresholdNotAnInteger",
     "[zswap]\naccept_threshold_percent = \"90%\"\n[[node]]\nmemory = \"4MiB\"\n",
     "t.toml:2: zswap.accept_threshold_percent: expected an integer, got a string"},
};

INSTANTIATE_TEST_SUITE_P(Config, BadConfigTest, testing::ValuesIn(kBadConfigs),
                         [](const testing::TestParamInfo<BadConfig>& info) {
                           return std::string(info.param.name);
                         });

constexpr char kExample[] = R"(arch = "x86_64"            # or "i386"
cpus = 2
min_free_kbytes = 8192     # optional
watermark_scale_factor = 10
lowmem_reserve_ratio = [256, 256, 32, 0]   # optional
percpu_pagelist_high_fraction = 0
movablecore = "512MiB"     # optional
[[node]]
memory = "2GiB"
cpus = 1                   # optional
distance = [10, 20]        # optional
holes = [{ start = "1GiB", size = "64MiB" }]
reserved = [{ start = "0", size = "1MiB" }]
[[node]]
memory = 2147483648
cpus = 1
distance = [20, 10]
[fail_page_alloc]
probability = 10
interval = 1
times = -1
space = 0
min_order = 1
ignore_gfp_wait = true
ignore_gfp_highmem = false
seed = 42
)";

TEST(ConfigToml, ZswapKeysParseAndDefaultToLinuxs) {
  auto d = parse_machine_config("[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->zswap.enabled);
  EXPECT_EQ(d->zswap.compressor, "lz4");
  EXPECT_EQ(d->zswap.max_pool_percent, 20u);
  EXPECT_EQ(d->zswap.accept_threshold_percent, 90u);
  auto r = parse_machine_config(
      "[zswap]\nenabled = true\ncompressor = \"zstd\"\nmax_pool_percent = 0\n"
      "accept_threshold_percent = 100\n[[node]]\nmemory = \"64MiB\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->zswap.enabled);
  EXPECT_EQ(r->zswap.compressor, "zstd");
  EXPECT_EQ(r->zswap.max_pool_percent, 0u);
  EXPECT_EQ(r->zswap.accept_threshold_percent, 100u);
}

TEST(ConfigToml, OvercommitKeysParse) {
  auto r = parse_machine_config(
      "overcommit_memory = 2\novercommit_ratio = 80\nuser_reserve_kbytes = 1024\n"
      "admin_reserve_kbytes = 0\nswap = \"1GiB\"\n[[node]]\nmemory = \"64MiB\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->overcommit_memory, 2u);
  EXPECT_EQ(r->overcommit_ratio, 80u);
  EXPECT_EQ(r->overcommit_kbytes, 0u);
  EXPECT_EQ(r->user_reserve_kbytes, 1024u);
  EXPECT_EQ(r->admin_reserve_kbytes, 0u);
  EXPECT_EQ(r->swap, 1ull << 30);
  auto k =
      parse_machine_config("overcommit_kbytes = 4096\n[[node]]\nmemory = \"4MiB\"\n", "t.toml");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->overcommit_kbytes, 4096u);
  EXPECT_FALSE(k->overcommit_ratio.has_value());
}

TEST(ConfigToml, LimitKeysParse) {
  auto dflt = parse_machine_config("[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(dflt.ok()) << dflt.error().message;
  EXPECT_EQ(dflt->rlimit_as, kRlimInfinity);
  EXPECT_EQ(dflt->rlimit_data, kRlimInfinity);
  EXPECT_EQ(dflt->max_map_count, 65530u);
  auto r = parse_machine_config(
      "rlimit_as = \"unlimited\"\nrlimit_data = \"1GiB\"\nmax_map_count = 100\n"
      "[[node]]\nmemory = \"64MiB\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->rlimit_as, kRlimInfinity);
  EXPECT_EQ(r->rlimit_data, 1ull << 30);
  EXPECT_EQ(r->max_map_count, 100u);
  // Bytes as an integer, not page aligned (Linux compares rlimit >> PAGE_SHIFT);
  // RLIMIT_DATA may be 0 (brk and private writable mappings all fail).
  auto bytes = parse_machine_config(
      "rlimit_as = 1000000\nrlimit_data = 0\nmax_map_count = 1\n[[node]]\nmemory = \"4MiB\"\n",
      "t.toml");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(bytes->rlimit_as, 1000000u);
  EXPECT_EQ(bytes->rlimit_data, 0u);
  EXPECT_EQ(bytes->max_map_count, 1u);
}

TEST(ConfigToml, ExampleParses) {
  auto r = parse_machine_config(kExample, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const MachineConfig& c = *r;
  EXPECT_EQ(c.arch, Arch::x86_64);
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.min_free_kbytes, 8192u);
  EXPECT_EQ(c.watermark_scale_factor, 10u);
  EXPECT_EQ(c.lowmem_reserve_ratio, (std::vector<unsigned>{256, 256, 32, 0}));
  EXPECT_EQ(c.percpu_pagelist_high_fraction, 0u);
  EXPECT_EQ(c.movablecore, 512ull << 20);
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[0].memory, 2ull << 30);
  EXPECT_EQ(c.nodes[1].memory, 2ull << 30);
  EXPECT_EQ(c.nodes[0].cpus, 1u);
  EXPECT_EQ(c.nodes[0].distance, (std::vector<int>{10, 20}));
  ASSERT_EQ(c.nodes[0].holes.size(), 1u);
  EXPECT_EQ(c.nodes[0].holes[0].start, 1ull << 30);
  EXPECT_EQ(c.nodes[0].holes[0].size, 64ull << 20);
  ASSERT_EQ(c.nodes[0].reserved.size(), 1u);
  EXPECT_EQ(c.nodes[0].reserved[0].start, 0u);
  EXPECT_EQ(c.nodes[0].reserved[0].size, 1ull << 20);
  EXPECT_TRUE(c.nodes[1].holes.empty());
  EXPECT_EQ(c.fail_page_alloc.fault.probability, 10u);
  EXPECT_EQ(c.fail_page_alloc.fault.interval, 1u);
  EXPECT_EQ(c.fail_page_alloc.fault.times, -1);
  EXPECT_EQ(c.fail_page_alloc.fault.space, 0);
  EXPECT_EQ(c.fail_page_alloc.fault.seed, 42u);
  EXPECT_EQ(c.fail_page_alloc.min_order, 1u);
  EXPECT_TRUE(c.fail_page_alloc.ignore_gfp_wait);
  EXPECT_FALSE(c.fail_page_alloc.ignore_gfp_highmem);
  EXPECT_EQ(validate(c), "");
}

TEST(ConfigToml, MinimalConfigGetsDefaults) {
  auto r = parse_machine_config("[[node]]\nmemory = \"512MiB\"\n", "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->arch, Arch::x86_64);
  EXPECT_EQ(r->cpus, 1u);
  EXPECT_EQ(r->watermark_scale_factor, 10u);
  EXPECT_FALSE(r->min_free_kbytes.has_value());
  EXPECT_TRUE(r->lowmem_reserve_ratio.empty());
  EXPECT_EQ(r->movablecore, 0u);
  ASSERT_EQ(r->nodes.size(), 1u);
  EXPECT_EQ(r->nodes[0].memory, 512ull << 20);
  EXPECT_FALSE(r->nodes[0].cpus.has_value());
  EXPECT_EQ(r->fail_page_alloc.fault.probability, 0u);
  EXPECT_EQ(r->fail_page_alloc.min_order, 1u);
}

TEST(ConfigToml, NonAsciiCommentsAndTrickyStringsAreFine) {
  auto r = parse_machine_config(
      "# M\xc3\xa9moire \"quoted\" 'x'\narch = 'x86_64' # \xc2\xa7\n"
      "[[node]] # \"\"\"\nmemory = \"\"\"4MiB\"\"\" # \xc2\xa7\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->nodes[0].memory, 4ull << 20);
}

TEST(ConfigToml, SizeSuffixes) {
  const struct {
    const char* text;
    uint64_t bytes;
  } kCases[] = {
      {"\"4194304\"", 4ull << 20},  {"\"4096K\"", 4ull << 20}, {"\"4096kb\"", 4ull << 20},
      {"\"4096KiB\"", 4ull << 20},  {"\"4m\"", 4ull << 20},    {"\"4 MiB\"", 4ull << 20},
      {"\"1g\"", 1ull << 30},       {"\"1GB\"", 1ull << 30},   {"\"1t\"", 1ull << 40},
      {"\"4194304B\"", 4ull << 20}, {"4194304", 4ull << 20},
  };
  for (const auto& c : kCases) {
    auto r = parse_machine_config(std::string("[[node]]\nmemory = ") + c.text + "\n", "t.toml");
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().message;
    EXPECT_EQ(r->nodes[0].memory, c.bytes) << c.text;
  }
}

TEST(ConfigToml, I386) {
  auto r = parse_machine_config("arch = \"i386\"\n[[node]]\nmemory = \"64GiB\"\n", "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->arch, Arch::i386);
}

TEST(ConfigToml, ArrayOfTablesForHoles) {
  auto r = parse_machine_config(
      "[[node]]\nmemory = \"1GiB\"\n[[node.holes]]\nstart = \"4MiB\"\nsize = \"4MiB\"\n", "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->nodes[0].holes.size(), 1u);
  EXPECT_EQ(r->nodes[0].holes[0].start, 4ull << 20);
}

TEST(ConfigValidate, DefaultDemoConfigIsValid) {
  const MachineConfig c = default_demo_config();
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(c.arch, Arch::x86_64);
  EXPECT_EQ(c.cpus, 2u);
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[0].memory, 2ull << 30);
  EXPECT_EQ(c.nodes[1].memory, 2ull << 30);
}

TEST(ConfigValidate, TooManyNodes) {
  MachineConfig c;
  c.nodes.resize(65);
  for (NodeConfig& n : c.nodes) n.memory = 4 << 20;
  EXPECT_EQ(validate(c), "node: 65 nodes; at most 64 are supported");
}

TEST(ConfigValidate, FailPageAllocIntervalAndSpace) {
  MachineConfig c = default_demo_config();
  c.fail_page_alloc.fault.interval = 0;
  EXPECT_EQ(validate(c), "fail_page_alloc.interval: must be >= 1");
  c.fail_page_alloc.fault.interval = 1;
  c.fail_page_alloc.fault.space = -1;
  EXPECT_EQ(validate(c), "fail_page_alloc.space: -1 is negative");
}

TEST(ConfigValidate, LowmemReserveRatioBound) {
  MachineConfig c = default_demo_config();
  c.lowmem_reserve_ratio = {256, 256, 32, 0};
  EXPECT_EQ(validate(c), "");
  c.lowmem_reserve_ratio[2] = (1u << 31) + 1;
  EXPECT_EQ(validate(c), "lowmem_reserve_ratio[2]: 2147483649 is too large (at most 2147483648)");
}

TEST(ConfigLoad, UnreadableFile) {
  auto r = load_machine_config("/nonexistent/dir/m.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "/nonexistent/dir/m.toml: cannot read: No such file or directory");
}

TEST(ConfigLoad, ReadsFile) {
  char path[] = "/tmp/mmkit_config_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs("cpus = 2\n[[node]]\nmemory = \"1GiB\"\n[[node]]\nmemory = \"1 gib\"\nmem = 1\n", f);
  std::fclose(f);
  auto r = load_machine_config(path);
  std::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, std::string(path) +
                                   ":6: node[1].mem: unknown key \"mem\" in [[node]]; did you "
                                   "mean \"memory\"?");
}

// Messages quote what they found: well-formed UTF-8 as it is, control
// characters and bytes that are not UTF-8 (a binary file given as a trace
// or config) as \xNN; at most 48 characters, then "...".
TEST(Quoted, EscapesWhatIsNotPrintableUtf8) {
  EXPECT_EQ(quoted("plain \"q\" \\"), R"("plain \"q\" \\")");
  EXPECT_EQ(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(quoted("\x7f\x01\n"), R"("\x7f\x01\x0a")");
  EXPECT_EQ(quoted("\xff\xfe"), R"("\xff\xfe")");
  EXPECT_EQ(quoted("\xc0\xaf"), R"("\xc0\xaf")");          // overlong '/'
  EXPECT_EQ(quoted("\xed\xa0\x80"), R"("\xed\xa0\x80")");  // a surrogate
  EXPECT_EQ(quoted("\xe2\x82"), R"("\xe2\x82")");          // cut short
  EXPECT_EQ(mmkit::quoted(std::string(60, 'a')), "\"" + std::string(48, 'a') + "...\"");
  EXPECT_EQ(mmkit::quoted(std::string(48, 'a')), "\"" + std::string(48, 'a') + "\"");
}

}  // namespace
}  // namespace mmkit

namespace mmkit {
namespace {

TEST(ConfigSlubDebug, ParsesAndValidates) {
  auto ok = parse_machine_config(
      "slub_debug = \"FZP,kmalloc-64,dbg*\"\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->slub_debug, "FZP,kmalloc-64,dbg*");
  auto bad = parse_machine_config("slub_debug = \"FQ\"\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(
      bad.error().message,
      "t.toml:1: slub_debug: unknown flag 'Q' (use F sanity checks, Z red zones, P poisoning, U "
      "user tracking, H hardened)");
  auto empty =
      parse_machine_config("slub_debug = \"Z,,x\"\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "t.toml:1: slub_debug: empty cache name in \"Z,,x\"");
}

TEST(ConfigPagingLevels, ParsesAndValidates) {
  auto dflt = parse_machine_config("[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(dflt.ok()) << dflt.error().message;
  EXPECT_FALSE(dflt->paging_levels.has_value());
  auto la57 = parse_machine_config("paging_levels = 5\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(la57.ok()) << la57.error().message;
  EXPECT_EQ(la57->paging_levels, 5u);
  auto three = parse_machine_config("paging_levels = 3\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_FALSE(three.ok());
  EXPECT_EQ(three.error().message,
            "t.toml:1: paging_levels: 3 is not supported (must be 4, or 5 for LA57)");
  auto i386 = parse_machine_config(
      "arch = \"i386\"\npaging_levels = 4\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_FALSE(i386.ok());
  EXPECT_EQ(i386.error().message,
            "t.toml:2: paging_levels: i386 pages with two levels; the key is for x86_64 (4 or 5)");
  auto str =
      parse_machine_config("paging_levels = \"5\"\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_FALSE(str.ok());
  EXPECT_NE(str.error().message.find("t.toml:1: paging_levels: "), std::string::npos);
}

}  // namespace
TEST(ConfigToml, VmallocSizeIsLinuxsVmallocParameter) {
  auto ok = parse_machine_config("vmalloc = \"64MiB\"\n[[node]]\nmemory = \"64MiB\"\n", "t.toml");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->vmalloc_size, uint64_t{64} << 20);
}

}  // namespace mmkit
