/* A tiny test harness for the C ABI tests: plain C11, no dependencies beyond libc.
 *
 *   CHECK(expr)          records a pass, or prints file:line and the expression and records a
 *                        failure (the program then exits non-zero from CHECK_SUMMARY).
 *   CHECK_ST(call, st)   the same for a myriad_status, printing both statuses by name.
 *   REQUIRE(expr)        like CHECK, but a failure ends the program at once (for preconditions
 *                        whose failure would make the rest meaningless or hang).
 *   CHECK_SUMMARY()      prints "N passed, M failed" and returns the exit status for main().
 *
 * The counters are atomic: checks may run in tasks and in several threads at once.
 */
#ifndef MYRIAD_TEST_CHECK_H
#define MYRIAD_TEST_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "myriad.h"

static atomic_int check_passed_;
static atomic_int check_failed_;

static const char* check_status_name_(int s) {
  switch (s) {
    case MYRIAD_OK: return "MYRIAD_OK";
    case MYRIAD_EINVAL: return "MYRIAD_EINVAL";
    case MYRIAD_EBADHANDLE: return "MYRIAD_EBADHANDLE";
    case MYRIAD_ECLOSED: return "MYRIAD_ECLOSED";
    case MYRIAD_ENOMEM: return "MYRIAD_ENOMEM";
    case MYRIAD_ENOTINTASK: return "MYRIAD_ENOTINTASK";
    case MYRIAD_EBUSY: return "MYRIAD_EBUSY";
    case MYRIAD_ENEGATIVE: return "MYRIAD_ENEGATIVE";
    case MYRIAD_ETASKFAILED: return "MYRIAD_ETASKFAILED";
    case MYRIAD_EABANDONED: return "MYRIAD_EABANDONED";
    case MYRIAD_EWRONGRUNTIME: return "MYRIAD_EWRONGRUNTIME";
    case MYRIAD_EDEADLOCK: return "MYRIAD_EDEADLOCK";
    case MYRIAD_ECHANCLOSED: return "MYRIAD_ECHANCLOSED";
    case MYRIAD_EWOULDBLOCK: return "MYRIAD_EWOULDBLOCK";
    case MYRIAD_ETIMEDOUT: return "MYRIAD_ETIMEDOUT";
    case MYRIAD_ECANCELED: return "MYRIAD_ECANCELED";
    case MYRIAD_EALLASLEEP: return "MYRIAD_EALLASLEEP";
    case MYRIAD_ENOTLOCKED: return "MYRIAD_ENOTLOCKED";
    case MYRIAD_ENILCHAN: return "MYRIAD_ENILCHAN";
    case MYRIAD_EIO: return "MYRIAD_EIO";
    case MYRIAD_EFDCLOSED: return "MYRIAD_EFDCLOSED";
    case MYRIAD_ETHREADLIMIT: return "MYRIAD_ETHREADLIMIT";
    case MYRIAD_ENOTSUP: return "MYRIAD_ENOTSUP";
    default: return "(not a myriad_status)";
  }
}

static int check_summary_(void) {
  int p = atomic_load(&check_passed_);
  int f = atomic_load(&check_failed_);
  printf("%d passed, %d failed\n", p, f);
  fflush(stdout);
  return f == 0 && p > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#define CHECK(expr)                                                        \
  do {                                                                     \
    if (expr) {                                                            \
      atomic_fetch_add(&check_passed_, 1);                                 \
    } else {                                                               \
      atomic_fetch_add(&check_failed_, 1);                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
      fflush(stderr);                                                      \
    }                                                                      \
  } while (0)

#define CHECK_ST(call, expected)                                                     \
  do {                                                                               \
    int check_got_ = (int)(call);                                                    \
    int check_want_ = (int)(expected);                                               \
    if (check_got_ == check_want_) {                                                 \
      atomic_fetch_add(&check_passed_, 1);                                           \
    } else {                                                                         \
      atomic_fetch_add(&check_failed_, 1);                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (got %s = %d)\n", __FILE__,     \
              __LINE__, #call, #expected, check_status_name_(check_got_), check_got_); \
      fflush(stderr);                                                                \
    }                                                                                \
  } while (0)

#define REQUIRE(expr)                                                          \
  do {                                                                         \
    if (expr) {                                                                \
      atomic_fetch_add(&check_passed_, 1);                                     \
    } else {                                                                   \
      atomic_fetch_add(&check_failed_, 1);                                     \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #expr); \
      check_summary_();                                                        \
      exit(EXIT_FAILURE);                                                      \
    }                                                                          \
  } while (0)

#define CHECK_SUMMARY() check_summary_()

#endif /* MYRIAD_TEST_CHECK_H */
