// Test support for checks that run while kswapd may still be at work. A
// check that counts pages on lists and compares them with a counter can
// catch reclaim between the two: the counts disagree for a moment and then
// agree again. An inconsistency the code made stays. So the check is taken
// again until it passes or a second has gone by, and the last result
// returned: a real error still fails the test.
#pragma once

#include <chrono>
#include <string>
#include <thread>

namespace mmkit::test {

template <class Check>
std::string settled_check(Check&& check) {
  std::string err = check();
  for (int i = 0; i < 200 && !err.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    err = check();
  }
  return err;
}

}  // namespace mmkit::test
