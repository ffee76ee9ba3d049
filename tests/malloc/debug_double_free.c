/* debug_double_free: frees the same block twice, with the free of another
 * block of the same size in between (p, q, p: p is then not simply the head
 * of a free list, the classic way past naive checks). A debugging malloc
 * finds the object already free ("BUG <cache> (Not tainted): Object already
 * free", as SLUB) and aborts; glibc's tcache check happens to catch this one
 * too ("free(): double free detected"), other allocators may not. */
#include "debug_victim.h"

int main(void) {
  victim_require_preload("debug_double_free");
  char* p = opaque_ptr(malloc(64));
  char* q = opaque_ptr(malloc(64));
  if (!p || !q) return 1;
  memset(p, 'x', 64);
  memset(q, 'y', 64);
  char* again = opaque_ptr(p); /* an alias the compiler cannot see */
  free(p);
  free(q);
  free(again); /* the double free */
  for (int i = 0; i < 64; ++i) free(opaque_ptr(malloc(64)));
  return victim_survived("debug_double_free");
}
