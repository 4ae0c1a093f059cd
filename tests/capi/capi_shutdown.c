/* Runtime destruction: runnable tasks are drained, parked tasks are abandoned (their handles
 * join with MYRIAD_EABANDONED after the runtime is gone), and a task may not destroy its own
 * runtime (MYRIAD_EDEADLOCK). The drain itself is in capi_shutdown_drain.c. */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "myriad.h"

static myriad_config quiet_config(uint32_t procs) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.report_abandoned = 0;
  return c;
}

/* ---- a parked task is abandoned ------------------------------------------------------------ */

static myriad_wait_group g_never;   /* its counter never reaches zero */
static myriad_wait_group g_parked;  /* done() by the task just before it parks */
static myriad_status g_wait_status = MYRIAD_OK;
static atomic_int g_woke;

static void parks_forever(void* arg) {
  (void)arg;
  myriad_wait_group_done(g_parked);
  g_wait_status = myriad_wait_group_wait(g_never);
  atomic_store(&g_woke, 1); /* never reached */
}

static void test_abandoned(void) {
  myriad_config c = quiet_config(2);
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_never) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_parked) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_never, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_parked, 3), MYRIAD_OK);

  myriad_task h[3];
  uint64_t ids[3];
  for (int i = 0; i < 3; ++i) {
    CHECK_ST(myriad_spawn(rt, parks_forever, NULL, NULL, &h[i]), MYRIAD_OK);
    CHECK_ST(myriad_task_handle_id(h[i], &ids[i]), MYRIAD_OK);
  }
  /* A detached parked task too: abandoned without anyone to tell. */
  CHECK_ST(myriad_wait_group_add(g_parked, 1), MYRIAD_OK);
  CHECK_ST(myriad_spawn(rt, parks_forever, NULL, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(g_parked), MYRIAD_OK);

  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK(atomic_load(&g_woke) == 0);

  /* The runtime is gone; the handles are still valid, and joining reports the abandonment. */
  for (int i = 0; i < 3; ++i) {
    uint64_t id = 0;
    CHECK_ST(myriad_task_handle_id(h[i], &id), MYRIAD_OK);
    CHECK(id == ids[i]);
    CHECK_ST(myriad_join(h[i]), MYRIAD_EABANDONED);
    CHECK_ST(myriad_join(h[i]), MYRIAD_EBADHANDLE);
  }
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_EBADHANDLE);
  /* g_never still counts 1 (and lists the abandoned waiters): it is deliberately leaked. */
  CHECK_ST(myriad_wait_group_destroy(g_never), MYRIAD_EBUSY);
  CHECK_ST(myriad_wait_group_destroy(g_parked), MYRIAD_OK);
}

/* A task parked in a join of another parked task: both are abandoned, and waking the joiner
 * (whose waiter lives on its abandoned stack) must not touch freed memory. */
struct join_arg {
  myriad_task target;
  myriad_status status;
};

static void joins_then_parks(void* arg) {
  struct join_arg* j = arg;
  myriad_wait_group_done(g_parked);
  j->status = myriad_join(j->target);
  atomic_store(&g_woke, 1); /* never reached */
}

static void test_abandoned_joiner(void) {
  myriad_config c = quiet_config(2);
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_never) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_parked) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_never, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_parked, 2), MYRIAD_OK);
  static struct join_arg j;
  j.status = MYRIAD_OK;
  CHECK_ST(myriad_spawn(rt, parks_forever, NULL, NULL, &j.target), MYRIAD_OK);
  myriad_task joiner;
  CHECK_ST(myriad_spawn(rt, joins_then_parks, &j, NULL, &joiner), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(g_parked), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK(atomic_load(&g_woke) == 0);
  CHECK_ST(myriad_join(joiner), MYRIAD_EABANDONED);
  /* The joiner's join removed the target's handle before it parked. */
  CHECK_ST(myriad_join(j.target), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_destroy(g_parked), MYRIAD_OK);
}

/* A handle detached before destroy, and a handle whose task finished normally, next to an
 * abandoned one. */
static void quick(void* arg) { (void)arg; }

static void test_mixed_outcomes(void) {
  myriad_config c = quiet_config(1);
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_never) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_parked) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_never, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_parked, 2), MYRIAD_OK);
  myriad_task parked, detached, finished;
  CHECK_ST(myriad_spawn(rt, parks_forever, NULL, NULL, &parked), MYRIAD_OK);
  CHECK_ST(myriad_spawn(rt, parks_forever, NULL, NULL, &detached), MYRIAD_OK);
  CHECK_ST(myriad_spawn(rt, quick, NULL, NULL, &finished), MYRIAD_OK);
  CHECK_ST(myriad_detach(detached), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(g_parked), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK_ST(myriad_join(finished), MYRIAD_OK);
  CHECK_ST(myriad_join(parked), MYRIAD_EABANDONED);
  CHECK_ST(myriad_join(detached), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_destroy(g_parked), MYRIAD_OK);
}

/* ---- destroy from inside one of the runtime's own tasks ----------------------------------- */

static myriad_runtime g_self_rt;
static myriad_status g_self_destroy = MYRIAD_OK;
static myriad_status g_procs_after = MYRIAD_EINVAL;

static void destroys_own_runtime(void* arg) {
  (void)arg;
  g_self_destroy = myriad_runtime_destroy(g_self_rt);
  uint32_t procs = 0;
  g_procs_after = myriad_runtime_procs(g_self_rt, &procs); /* handle must still be valid */
}

static void test_destroy_from_own_task(void) {
  myriad_config c = quiet_config(2);
  REQUIRE(myriad_runtime_create(&c, &g_self_rt) == MYRIAD_OK);
  myriad_task h;
  CHECK_ST(myriad_spawn(g_self_rt, destroys_own_runtime, NULL, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(g_self_destroy, MYRIAD_EDEADLOCK);
  CHECK_ST(g_procs_after, MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(g_self_rt), MYRIAD_OK); /* the refused destroy changed nothing */

  /* The same on a host-driven runtime, where the task runs inside myriad_step. */
  c = quiet_config(1);
  c.host_procs = 1;
  REQUIRE(myriad_runtime_create(&c, &g_self_rt) == MYRIAD_OK);
  g_self_destroy = MYRIAD_OK;
  g_procs_after = MYRIAD_EINVAL;
  CHECK_ST(myriad_spawn(g_self_rt, destroys_own_runtime, NULL, NULL, &h), MYRIAD_OK);
  int idle = 0;
  CHECK_ST(myriad_step(g_self_rt, 0, &idle), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(g_self_destroy, MYRIAD_EDEADLOCK);
  CHECK_ST(g_procs_after, MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(g_self_rt), MYRIAD_OK);
}

int main(void) {
  test_abandoned();
  test_abandoned_joiner();
  test_mixed_outcomes();
  test_destroy_from_own_task();
  return CHECK_SUMMARY();
}
