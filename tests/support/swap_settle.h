// Test support for the end of a swap test: after the last exit, the slots
// still in use should be only swap-cache copies whose page reclaim had
// locked when its last entry went (free_swap_and_cache leaves those to
// reclaim's next scan). This drops them, retrying while reclaim still holds
// one, so that a test can then require every slot free.
#pragma once

#include <thread>

#include "memcg/lru.h"
#include "swap/swap.h"

namespace mmkit::test {

inline void drop_swap_cache_only_slots(Machine& m) {
  lru_add_drain_all(m);
  for (int i = 0; i < 1000 && swap_free_pages(m) != swap_total_pages(m); ++i) {
    try_to_reclaim_swap_cache(m);
    std::this_thread::yield();
  }
}

}  // namespace mmkit::test
