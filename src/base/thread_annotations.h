// Clang thread-safety annotations (no-ops elsewhere): fields say which lock
// guards them and the compiler checks it, as Zircon's TA_GUARDED does.
#pragma once

#if defined(__clang__)
#define MMKIT_TA(x) __attribute__((x))
#else
#define MMKIT_TA(x)
#endif

#define CAPABILITY(x) MMKIT_TA(capability(x))
#define GUARDED_BY(x) MMKIT_TA(guarded_by(x))
#define REQUIRES(...) MMKIT_TA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) MMKIT_TA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) MMKIT_TA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) MMKIT_TA(try_acquire_capability(__VA_ARGS__))
#define SCOPED_CAPABILITY MMKIT_TA(scoped_lockable)
#define NO_THREAD_SAFETY_ANALYSIS MMKIT_TA(no_thread_safety_analysis)
