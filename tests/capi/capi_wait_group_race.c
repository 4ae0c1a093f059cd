/* A refused negative add racing with valid adds. The header promises that an add that would
 * take the counter below zero fails with MYRIAD_ENEGATIVE and leaves the counter unchanged, so
 * it must be invisible to other threads:
 *  - a concurrent valid add/done must never fail (the true counter never drops below 1 here);
 *  - a waiter must never be released while the true counter is above zero.
 * Thread A repeatedly tries add(-1001) (always refused: the true counter is at most 1000);
 * thread B does add(999) / add(-999) pairs (always valid: the main thread holds 1 throughout);
 * thread W waits and checks, when released, that the main thread really let go. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, pthreads under -std=c11 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

static myriad_wait_group g_wg;
static atomic_int g_stop;
static atomic_int g_released; /* set by main just before its done() */
static atomic_long g_a_wrong, g_b_wrong, g_b_ops;
static atomic_int g_early_wake;

static void* thread_a(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop))
    if (myriad_wait_group_add(g_wg, -1001) != MYRIAD_ENEGATIVE) atomic_fetch_add(&g_a_wrong, 1);
  return NULL;
}

static void* thread_b(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    if (myriad_wait_group_add(g_wg, 999) != MYRIAD_OK) {
      atomic_fetch_add(&g_b_wrong, 1);
      continue;
    }
    /* Retried until accepted, so that the counter is back at 1 when the threads stop. */
    while (myriad_wait_group_add(g_wg, -999) != MYRIAD_OK) atomic_fetch_add(&g_b_wrong, 1);
    atomic_fetch_add(&g_b_ops, 2);
  }
  return NULL;
}

static void* thread_w(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    if (myriad_wait_group_wait(g_wg) != MYRIAD_OK) break;
    if (!atomic_load(&g_released)) atomic_fetch_add(&g_early_wake, 1);
    break;
  }
  return NULL;
}

int main(void) {
  REQUIRE(myriad_wait_group_create(&g_wg) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_add(g_wg, 1) == MYRIAD_OK);
  pthread_t a, b, w;
  REQUIRE(pthread_create(&w, NULL, thread_w, NULL) == 0);
  REQUIRE(pthread_create(&a, NULL, thread_a, NULL) == 0);
  REQUIRE(pthread_create(&b, NULL, thread_b, NULL) == 0);
  struct timespec ts = {0, 500 * 1000000L};
  nanosleep(&ts, NULL);
  atomic_store(&g_stop, 1);
  REQUIRE(pthread_join(a, NULL) == 0);
  REQUIRE(pthread_join(b, NULL) == 0);
  atomic_store(&g_released, 1);
  CHECK_ST(myriad_wait_group_done(g_wg), MYRIAD_OK); /* the counter must be exactly 1 here */
  REQUIRE(pthread_join(w, NULL) == 0);

  fprintf(stderr, "B: %ld ops, %ld spuriously refused; A: %ld wrongly accepted; %d early wake\n",
          atomic_load(&g_b_ops), atomic_load(&g_b_wrong), atomic_load(&g_a_wrong),
          atomic_load(&g_early_wake));
  CHECK(atomic_load(&g_b_ops) > 0);
  CHECK(atomic_load(&g_a_wrong) == 0);
  CHECK(atomic_load(&g_b_wrong) == 0);
  CHECK(atomic_load(&g_early_wake) == 0);
  CHECK_ST(myriad_wait_group_add(g_wg, -1), MYRIAD_ENEGATIVE);
  CHECK_ST(myriad_wait_group_destroy(g_wg), MYRIAD_OK);
  return CHECK_SUMMARY();
}
