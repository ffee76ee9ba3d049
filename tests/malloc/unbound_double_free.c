/* unbound_double_free: frees a block twice from a thread that the heap could
 * not give a CPU of its own (every one is held by a thread that allocated
 * before it), so the frees go to the thread's magazine, not to a CPU's
 * sheaf. The allocator must report the second and abort, as it does on a
 * CPU's sheaf and as glibc's tcache does ("free(): double free detected").
 * The holders: as many threads as the heap has CPUs (4 x the host's, at
 * least 32, at most 256; docs/malloc.md), each bound by its first malloc
 * and alive until the victim has run. */
#include "debug_victim.h" /* first: it defines _GNU_SOURCE */

#include <pthread.h>
#include <unistd.h>

static pthread_barrier_t bound; /* every holder has allocated */
static pthread_barrier_t done;  /* the victim has run */

static void* holder(void* arg) {
  (void)arg;
  free(opaque_ptr(malloc(32)));
  pthread_barrier_wait(&bound);
  pthread_barrier_wait(&done);
  return NULL;
}

static void* victim(void* arg) {
  (void)arg;
  char* p = opaque_ptr(malloc(24));
  if (!p) return NULL;
  memset(p, 'x', 24);
  char* again = opaque_ptr(p); /* an alias the compiler cannot see */
  free(p);
  free(again); /* the double free */
  return NULL;
}

int main(void) {
  victim_require_preload("unbound_double_free");
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  long holders = 4 * (ncpu > 0 ? ncpu : 1);
  holders = holders < 32 ? 32 : holders > 256 ? 256 : holders;
  pthread_barrier_init(&bound, NULL, (unsigned)holders + 1);
  pthread_barrier_init(&done, NULL, (unsigned)holders + 1);
  pthread_t* t = calloc((size_t)holders, sizeof *t);
  if (!t) return 1;
  for (long i = 0; i < holders; ++i)
    if (pthread_create(&t[i], NULL, holder, NULL) != 0) return 1;
  pthread_barrier_wait(&bound);
  pthread_t v;
  if (pthread_create(&v, NULL, victim, NULL) != 0) return 1;
  pthread_join(v, NULL);
  pthread_barrier_wait(&done);
  for (long i = 0; i < holders; ++i) pthread_join(t[i], NULL);
  free(t);
  return victim_survived("unbound_double_free");
}
