/* interior_free [SIZE OFFSET]: frees a pointer OFFSET bytes into a malloc'd
 * block of SIZE bytes (default 24 and 8). Without any debugging option the
 * allocator must refuse it and abort, as glibc does ("free(): invalid
 * pointer"): accepted, the pointer would reach a freelist and a later
 * malloc would hand out memory overlapping a live block. An offset that
 * keeps the pointer 16-byte aligned (64 16) is the one a bound CPU's fast
 * path sees. */
#include "debug_victim.h" /* first: it defines _GNU_SOURCE */

int main(int argc, char** argv) {
  victim_require_preload("interior_free");
  const size_t size = argc > 2 ? strtoul(argv[1], NULL, 0) : 24;
  const size_t offset = argc > 2 ? strtoul(argv[2], NULL, 0) : 8;
  char* p = opaque_ptr(malloc(size));
  if (!p) return 1;
  memset(p, 'x', size);
  free(opaque_ptr(p + offset));
  return victim_survived("interior_free");
}
