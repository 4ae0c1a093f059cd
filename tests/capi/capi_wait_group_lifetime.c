/* The canonical wait group life cycle: create, add(1), hand it to someone who calls done(),
 * wait(), destroy() at once. Once wait() has returned and destroy() succeeded, nothing may
 * still be inside the wait group: the last done() must be completely finished with it before
 * wait() can observe zero. Otherwise the done()-er's tail (waking waiters, releasing the
 * waiter-list lock) runs on freed memory, or at least is unordered with the free: ThreadSanitizer
 * reports that as a data race with operator delete, AddressSanitizer (when the timing overlaps)
 * as a heap-use-after-free. The normal build only checks the statuses.
 *
 * Batches of groups are handed to a helper thread, and to tasks, that done() them while the
 * main thread waits for and destroys each group in turn; most of the waits find the group
 * already at zero (wait's fast path), which is the case that must still be safe. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, pthreads under -std=c11 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

enum { kRounds = 100, kBatch = 256 };

static myriad_wait_group g_batch[kBatch];
static atomic_int g_round; /* published by main after filling g_batch; -1 = stop */
static atomic_long g_helper_errors;

static void* helper(void* arg) {
  (void)arg;
  int seen = 0;
  for (;;) {
    int r;
    while ((r = atomic_load(&g_round)) == seen) {
    }
    if (r < 0) return NULL;
    seen = r;
    for (int j = 0; j < kBatch; ++j)
      if (myriad_wait_group_done(g_batch[j]) != MYRIAD_OK) atomic_fetch_add(&g_helper_errors, 1);
  }
}

static long create_batch(void) {
  long errors = 0;
  for (int j = 0; j < kBatch; ++j) {
    if (myriad_wait_group_create(&g_batch[j]) != MYRIAD_OK) ++errors;
    if (myriad_wait_group_add(g_batch[j], 1) != MYRIAD_OK) ++errors;
  }
  return errors;
}

/* On even rounds the main thread lets the done()-ers run ahead before waiting (a sleep, which
 * is no synchronisation): its waits then find the groups at zero, the fast path. On odd rounds
 * it waits at once, racing with them in real time. */
static long wait_and_destroy_batch(int round) {
  if (round % 2 == 0) {
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
  }
  long errors = 0;
  for (int j = 0; j < kBatch; ++j) {
    if (myriad_wait_group_wait(g_batch[j]) != MYRIAD_OK) ++errors;
    if (myriad_wait_group_destroy(g_batch[j]) != MYRIAD_OK) ++errors;
  }
  return errors;
}

static void test_done_from_thread(void) {
  pthread_t th;
  atomic_store(&g_round, 0);
  REQUIRE(pthread_create(&th, NULL, helper, NULL) == 0);
  long errors = 0;
  for (int r = 1; r <= kRounds; ++r) {
    errors += create_batch();
    atomic_store(&g_round, r);
    errors += wait_and_destroy_batch(r);
  }
  atomic_store(&g_round, -1);
  REQUIRE(pthread_join(th, NULL) == 0);
  CHECK(errors == 0);
  CHECK(atomic_load(&g_helper_errors) == 0);
}

static atomic_long g_task_errors;

static void done_task(void* arg) {
  myriad_wait_group wg = {(uint64_t)(uintptr_t)arg};
  if (myriad_wait_group_done(wg) != MYRIAD_OK) atomic_fetch_add(&g_task_errors, 1);
}

static void test_done_from_tasks(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 2;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  long errors = 0;
  for (int r = 0; r < kRounds; ++r) {
    errors += create_batch();
    for (int j = 0; j < kBatch; ++j)
      if (myriad_spawn(rt, done_task, (void*)(uintptr_t)g_batch[j].bits, NULL, NULL) != MYRIAD_OK)
        ++errors;
    errors += wait_and_destroy_batch(r);
  }
  CHECK(errors == 0);
  CHECK(atomic_load(&g_task_errors) == 0);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  test_done_from_thread();
  test_done_from_tasks();
  return CHECK_SUMMARY();
}
