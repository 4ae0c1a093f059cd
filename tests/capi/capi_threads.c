/* Foreign threads: several pthreads spawn into one runtime and join their tasks concurrently,
 * detached spawns are counted through a shared wait group, and handles are passed from the
 * thread that spawned them to another thread (and to tasks) that joins them. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, pthreads under -std=c11 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "myriad.h"

enum { kThreads = 8, kPerThread = 2000 };

static myriad_runtime g_rt;
static myriad_wait_group g_wg;
static atomic_long g_sum;
static atomic_long g_detached_ran;

static void add_arg(void* arg) { atomic_fetch_add(&g_sum, (long)(intptr_t)arg); }

static void detached_body(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_detached_ran, 1);
  myriad_wait_group_done(g_wg);
}

struct thread_result {
  int spawn_failures;
  int join_failures;
  int id_failures;
  long expected_sum;
};

static void* spawner_thread(void* arg) {
  struct thread_result* r = arg;
  memset(r, 0, sizeof *r);
  if (myriad_current_task_id() != 0) ++r->id_failures;
  /* Interleave: spawn a batch with handles, a detached one, then join the batch. */
  myriad_task batch[16];
  for (int i = 0; i < kPerThread; i += 16) {
    for (int j = 0; j < 16; ++j) {
      intptr_t v = (intptr_t)(i + j + 1);
      r->expected_sum += (long)v;
      if (myriad_spawn(g_rt, add_arg, (void*)v, NULL, &batch[j]) != MYRIAD_OK) {
        ++r->spawn_failures;
        batch[j].bits = 0;
        r->expected_sum -= (long)v;
      }
      uint64_t id = 0;
      if (batch[j].bits && (myriad_task_handle_id(batch[j], &id) != MYRIAD_OK || id == 0))
        ++r->id_failures;
    }
    if (myriad_wait_group_add(g_wg, 1) != MYRIAD_OK) ++r->spawn_failures;
    if (myriad_spawn(g_rt, detached_body, NULL, NULL, NULL) != MYRIAD_OK) {
      ++r->spawn_failures;
      myriad_wait_group_done(g_wg);
    }
    for (int j = 0; j < 16; ++j) {
      if (!batch[j].bits) continue;
      if (myriad_join(batch[j]) != MYRIAD_OK) ++r->join_failures;
      /* joined: a second join from this thread must be refused */
      if (myriad_join(batch[j]) != MYRIAD_EBADHANDLE) ++r->join_failures;
    }
  }
  return NULL;
}

static void test_concurrent_spawn_join(void) {
  atomic_store(&g_sum, 0);
  atomic_store(&g_detached_ran, 0);
  REQUIRE(myriad_wait_group_create(&g_wg) == MYRIAD_OK);
  pthread_t threads[kThreads];
  struct thread_result results[kThreads];
  for (int t = 0; t < kThreads; ++t)
    REQUIRE(pthread_create(&threads[t], NULL, spawner_thread, &results[t]) == 0);
  long expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(pthread_join(threads[t], NULL) == 0);
    CHECK(results[t].spawn_failures == 0);
    CHECK(results[t].join_failures == 0);
    CHECK(results[t].id_failures == 0);
    expected += results[t].expected_sum;
  }
  /* Every task with a handle was joined, so its increment is visible. */
  CHECK(atomic_load(&g_sum) == expected);
  CHECK_ST(myriad_wait_group_wait(g_wg), MYRIAD_OK);
  CHECK(atomic_load(&g_detached_ran) == (long)kThreads * (kPerThread / 16));
  CHECK_ST(myriad_wait_group_destroy(g_wg), MYRIAD_OK);
}

/* ---- racing double joins: exactly one joiner wins ------------------------------------------ */

enum { kRacers = 4, kRaceTasks = 500 };
static myriad_task g_race_handles[kRaceTasks];
static atomic_int g_race_ok, g_race_bad, g_race_other;
static atomic_int g_race_go;

static void short_task(void* arg) {
  (void)arg;
  myriad_yield();
}

static void* racer_thread(void* arg) {
  (void)arg;
  while (!atomic_load(&g_race_go)) {
  }
  for (int i = 0; i < kRaceTasks; ++i) {
    myriad_status s = myriad_join(g_race_handles[i]);
    if (s == MYRIAD_OK)
      atomic_fetch_add(&g_race_ok, 1);
    else if (s == MYRIAD_EBADHANDLE)
      atomic_fetch_add(&g_race_bad, 1);
    else
      atomic_fetch_add(&g_race_other, 1);
  }
  return NULL;
}

static void test_racing_joins(void) {
  atomic_store(&g_race_ok, 0);
  atomic_store(&g_race_bad, 0);
  atomic_store(&g_race_other, 0);
  atomic_store(&g_race_go, 0);
  for (int i = 0; i < kRaceTasks; ++i)
    CHECK_ST(myriad_spawn(g_rt, short_task, NULL, NULL, &g_race_handles[i]), MYRIAD_OK);
  pthread_t threads[kRacers];
  for (int t = 0; t < kRacers; ++t)
    REQUIRE(pthread_create(&threads[t], NULL, racer_thread, NULL) == 0);
  atomic_store(&g_race_go, 1);
  for (int t = 0; t < kRacers; ++t) REQUIRE(pthread_join(threads[t], NULL) == 0);
  CHECK(atomic_load(&g_race_ok) == kRaceTasks);
  CHECK(atomic_load(&g_race_bad) == (kRacers - 1) * kRaceTasks);
  CHECK(atomic_load(&g_race_other) == 0);
}

/* ---- handles cross threads: spawned on one thread, joined by a task spawned on another ----- */

static myriad_task g_cross[64];
static atomic_int g_cross_join_ok;

static void joins_cross(void* arg) {
  int i = (int)(intptr_t)arg;
  if (myriad_join(g_cross[i]) == MYRIAD_OK) atomic_fetch_add(&g_cross_join_ok, 1);
}

static void* cross_spawner(void* arg) {
  (void)arg;
  for (int i = 0; i < 64; ++i)
    if (myriad_spawn(g_rt, short_task, NULL, NULL, &g_cross[i]) != MYRIAD_OK) g_cross[i].bits = 0;
  return NULL;
}

static void test_cross_thread_handles(void) {
  atomic_store(&g_cross_join_ok, 0);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, cross_spawner, NULL) == 0);
  REQUIRE(pthread_join(th, NULL) == 0);
  myriad_task joiners[64];
  for (int i = 0; i < 64; ++i)
    CHECK_ST(myriad_spawn(g_rt, joins_cross, (void*)(intptr_t)i, NULL, &joiners[i]), MYRIAD_OK);
  for (int i = 0; i < 64; ++i) CHECK_ST(myriad_join(joiners[i]), MYRIAD_OK);
  CHECK(atomic_load(&g_cross_join_ok) == 64);
}

int main(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 4;
  REQUIRE(myriad_runtime_create(&c, &g_rt) == MYRIAD_OK);
  test_concurrent_spawn_join();
  test_racing_joins();
  test_cross_thread_handles();
  CHECK_ST(myriad_runtime_destroy(g_rt), MYRIAD_OK);
  return CHECK_SUMMARY();
}
