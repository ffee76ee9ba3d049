/* Shared by the debug-malloc victims (debug_*.c): each makes one classic heap
 * error that a debugging malloc (libmmkit-malloc.so with MMKIT_DEBUG=FZPU,
 * like SLUB's slub_debug) must report and abort on. Without such an
 * allocator the victims may well run to the end and exit 0.
 *
 * The compiler must not "optimise" the error away: stores to a block that is
 * freed next are dead stores to it, and it may track a pointer's provenance.
 * opaque_ptr() hides where a pointer came from (an alias taken before the
 * free is not known to be the freed pointer), and the bad writes go through a
 * volatile pointer. */
#ifndef MMKIT_TESTS_MALLOC_DEBUG_VICTIM_H
#define MMKIT_TESTS_MALLOC_DEBUG_VICTIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* RTLD_DEFAULT; include this header first */
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void* opaque_ptr(void* p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

/* MMKIT_EXPECT_PRELOAD=1: exit 2 unless libmmkit-malloc.so is loaded, so a
 * missing preload is not mistaken for a missed detection. */
static inline void victim_require_preload(const char* name) {
  const char* want = getenv("MMKIT_EXPECT_PRELOAD");
  if (want && strcmp(want, "1") == 0 && !dlsym(RTLD_DEFAULT, "mmkit_malloc_version")) {
    fprintf(stderr, "%s: MMKIT_EXPECT_PRELOAD=1 but libmmkit-malloc.so is not loaded\n", name);
    exit(2);
  }
}

/* Reached only if the allocator noticed nothing. */
static inline int victim_survived(const char* name) {
  printf("%s: survived: the allocator did not catch the error\n", name);
  return 0;
}

#endif
