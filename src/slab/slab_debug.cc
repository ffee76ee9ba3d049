// slub_debug hooks. Placeholder behaviour: no metadata checks yet.
#include "slab/slab_debug.h"

namespace mmkit {

void setup_object_debug(KmemCache* s, void* obj) {}
bool alloc_debug_processing(KmemCache* s, Page* slab, void* obj) {
  return true;
}
bool free_debug_processing(KmemCache* s, Page* slab, void* obj) {
  return true;
}

}  // namespace mmkit
