// Shared helpers for the core tests.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_THREAD__)
#define MYRIAD_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MYRIAD_TEST_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MYRIAD_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MYRIAD_TEST_SANITIZED 1
#endif
#endif

namespace myriad::test {

#if MYRIAD_TEST_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

#if MYRIAD_TEST_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// TSan counts every task as a fiber and dies past 8,128 of them alive at once: tests that keep
// many tasks parked at the same time stay under this under TSan.
inline constexpr long kTsanLiveTasks = 4000;

// Sizes of the stress tests. Sanitized builds run the same code on a tenth of the volume
// (TSan multiplies the cost of every atomic by ~10-50x); the behaviour checked is identical.
inline constexpr long scaled(long n) { return kSanitized ? n / 10 : n; }

}  // namespace myriad::test
