/* Host-driven procs: a runtime with procs == host_procs has no threads of its own and runs
 * tasks only inside myriad_step(). Also: step on a runtime without host procs, step from a
 * task (re-entry), step with a budget, and a host proc held by another thread. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, pthreads under -std=c11 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

static atomic_int g_flag;
static atomic_int g_runs;
static myriad_runtime g_rt;

static void set_flag(void* arg) {
  (void)arg;
  atomic_store(&g_flag, 1);
  atomic_fetch_add(&g_runs, 1);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static myriad_runtime host_runtime(uint32_t procs, uint32_t host_procs) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.host_procs = host_procs;
  myriad_runtime rt;
  rt.bits = 0;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

static void test_tasks_run_only_in_step(void) {
  myriad_runtime rt = host_runtime(1, 1);
  atomic_store(&g_flag, 0);
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, set_flag, NULL, NULL, &h), MYRIAD_OK);
  sleep_ms(50); /* with no runtime thread, nothing may run it meanwhile */
  CHECK(atomic_load(&g_flag) == 0);
  int idle = -1;
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_OK);
  CHECK(atomic_load(&g_flag) == 1);
  CHECK(idle == 1);
  CHECK_ST(myriad_join(h), MYRIAD_OK); /* already finished: returns at once */

  /* A step with nothing to do returns idle at once. */
  idle = -1;
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_OK);
  CHECK(idle == 1);
  CHECK_ST(myriad_step(rt, 0, NULL), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- a budget bounds the step; a chain of tasks completes over several steps ------------- */

static atomic_int g_spins_left;

static void busy_yielder(void* arg) {
  (void)arg;
  while (atomic_fetch_sub(&g_spins_left, 1) > 0) {
    struct timespec ts = {0, 100000}; /* 0.1 ms of "work" per slice */
    nanosleep(&ts, NULL);
    myriad_yield();
  }
  atomic_store(&g_flag, 1);
}

static void test_budget(void) {
  myriad_runtime rt = host_runtime(1, 1);
  atomic_store(&g_flag, 0);
  atomic_store(&g_spins_left, 2000); /* about 200 ms of slices in total */
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, busy_yielder, NULL, NULL, &h), MYRIAD_OK);
  int idle = -1;
  /* 1 ms budget: the step returns because of the budget, not because it ran out of work. */
  CHECK_ST(myriad_step(rt, 1000000, &idle), MYRIAD_OK);
  CHECK(idle == 0);
  CHECK(atomic_load(&g_flag) == 0);
  int steps = 1;
  while (!atomic_load(&g_flag) && steps < 100000) {
    CHECK_ST(myriad_step(rt, 1000000, &idle), MYRIAD_OK);
    ++steps;
  }
  CHECK(atomic_load(&g_flag) == 1);
  CHECK(steps > 2);
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_OK);
  CHECK(idle == 1);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- step where it is not allowed ------------------------------------------------------------ */

static myriad_status g_inner_step;

static void steps_from_task(void* arg) {
  myriad_runtime rt = *(myriad_runtime*)arg;
  int idle = 0;
  g_inner_step = myriad_step(rt, 0, &idle);
}

static void test_step_refused(void) {
  /* No host procs. */
  myriad_runtime rt = host_runtime(1, 0);
  int idle = -1;
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_EBUSY);
  CHECK_ST(myriad_step(rt, 1000, NULL), MYRIAD_EBUSY);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* From a task run by step (re-entry), and from a task run by a runtime thread. */
  rt = host_runtime(1, 1);
  g_inner_step = MYRIAD_OK;
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, steps_from_task, &rt, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(g_inner_step, MYRIAD_EBUSY);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  rt = host_runtime(2, 1);
  g_inner_step = MYRIAD_OK;
  CHECK_ST(myriad_spawn(rt, steps_from_task, &rt, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK); /* the runtime thread runs it */
  CHECK_ST(g_inner_step, MYRIAD_EBUSY);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- the only host proc held by another thread ------------------------------------------- */

static atomic_int g_in_step;
static atomic_int g_release;

static void hold_step(void* arg) {
  (void)arg;
  atomic_store(&g_in_step, 1);
  while (!atomic_load(&g_release)) myriad_yield();
}

static void* stepping_thread(void* arg) {
  (void)arg;
  int idle = 0;
  myriad_status s = myriad_step(g_rt, 0, &idle);
  return (void*)(intptr_t)s;
}

static void test_host_proc_held(void) {
  g_rt = host_runtime(1, 1);
  atomic_store(&g_in_step, 0);
  atomic_store(&g_release, 0);
  myriad_task h;
  CHECK_ST(myriad_spawn(g_rt, hold_step, NULL, NULL, &h), MYRIAD_OK);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, stepping_thread, NULL) == 0);
  while (!atomic_load(&g_in_step)) sleep_ms(1);
  int idle = -1;
  CHECK_ST(myriad_step(g_rt, 0, &idle), MYRIAD_EBUSY); /* the thread holds the host proc */
  atomic_store(&g_release, 1);
  void* ret = NULL;
  REQUIRE(pthread_join(th, &ret) == 0);
  CHECK_ST((myriad_status)(intptr_t)ret, MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(g_rt), MYRIAD_OK);
}

/* ---- many tasks, spawning more, all driven by the host ----------------------------------- */

static myriad_runtime g_fan_rt;

static void fan_out(void* arg) {
  int depth = (int)(intptr_t)arg;
  atomic_fetch_add(&g_runs, 1);
  if (depth > 0)
    for (int i = 0; i < 3; ++i)
      CHECK_ST(myriad_spawn(g_fan_rt, fan_out, (void*)(intptr_t)(depth - 1), NULL, NULL),
               MYRIAD_OK);
}

static void test_host_fan_out(void) {
  g_fan_rt = host_runtime(1, 1);
  atomic_store(&g_runs, 0);
  CHECK_ST(myriad_spawn(g_fan_rt, fan_out, (void*)(intptr_t)6, NULL, NULL), MYRIAD_OK);
  CHECK(atomic_load(&g_runs) == 0);
  int idle = 0;
  CHECK_ST(myriad_step(g_fan_rt, 0, &idle), MYRIAD_OK);
  CHECK(idle == 1);
  CHECK(atomic_load(&g_runs) == 1093); /* 1 + 3 + ... + 3^6 */
  CHECK_ST(myriad_runtime_destroy(g_fan_rt), MYRIAD_OK);
}

/* ---- destroy drains runnable tasks on a host-only runtime -------------------------------- */

static void test_destroy_drains(void) {
  myriad_runtime rt = host_runtime(1, 1);
  atomic_store(&g_runs, 0);
  for (int i = 0; i < 100; ++i) CHECK_ST(myriad_spawn(rt, set_flag, NULL, NULL, NULL), MYRIAD_OK);
  CHECK(atomic_load(&g_runs) == 0);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK(atomic_load(&g_runs) == 100);
}

int main(void) {
  test_tasks_run_only_in_step();
  test_budget();
  test_step_refused();
  test_host_proc_held();
  test_host_fan_out();
  test_destroy_drains();
  return CHECK_SUMMARY();
}
