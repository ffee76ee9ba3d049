// libFuzzer target for the machine-description parser.
//
// Any bytes must give either a config that validate() accepts (the parser
// promises never to hand out an invalid one) or exactly one error line that
// starts with the file name; a crash, an escaping exception, a multi-line
// message or an invalid config that slipped through aborts.
//
// Link against the packaged toml++ (pkg-config tomlplusplus), as the library
// does. A header-only toml++ 3.3 built without NDEBUG asserts on some invalid
// inputs it then rejects cleanly in release builds ("[ =", "[1, }]"), which
// would drown real findings.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "phys/config_toml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = mmkit::parse_machine_config(text, "fuzz.toml");
  if (r.ok()) {
    const std::string problem = mmkit::validate(r.value());
    if (!problem.empty()) {
      std::fprintf(stderr, "parsed config fails validate(): %s\n", problem.c_str());
      std::abort();
    }
    return 0;
  }
  const std::string& msg = r.error().message;
  if (msg.rfind("fuzz.toml:", 0) != 0 || msg.find('\n') != std::string::npos) {
    std::fprintf(stderr, "malformed error message: %s\n", msg.c_str());
    std::abort();
  }
  return 0;
}
