/* The drain at destruction: myriad_runtime_destroy() first runs every runnable task until
 * nothing is runnable, and (README: "tasks may still spawn while it drains; foreign threads
 * get `closed`") the runtime's own tasks may keep spawning children meanwhile — through the C
 * ABI they can only do that with the runtime's handle, so the handle must keep working for
 * them until the drain is over. Ten chains of 1000 links, each link spawning the next, are
 * started and the runtime destroyed at once: every link must run. */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "myriad.h"

/* ---- the drain: tasks keep spawning while the runtime is destroyed ----------------------- */

static myriad_runtime g_drain_rt;
static atomic_long g_drain_runs;

static void chain(void* arg) {
  intptr_t left = (intptr_t)arg;
  atomic_fetch_add(&g_drain_runs, 1);
  if (left > 0) {
    myriad_status s = myriad_spawn(g_drain_rt, chain, (void*)(left - 1), NULL, NULL);
    if (s != MYRIAD_OK) {
      static atomic_int reported;
      if (!atomic_exchange(&reported, 1))
        fprintf(stderr, "spawn from a task during the drain: %s\n", myriad_strerror(s));
    }
    CHECK_ST(s, MYRIAD_OK);
  }
}

static void test_drain(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 2;
  REQUIRE(myriad_runtime_create(&c, &g_drain_rt) == MYRIAD_OK);
  atomic_store(&g_drain_runs, 0);
  for (int i = 0; i < 10; ++i)
    CHECK_ST(myriad_spawn(g_drain_rt, chain, (void*)(intptr_t)999, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(g_drain_rt), MYRIAD_OK);
  /* Every chain ran to its end: children spawned by tasks during the drain are drained too. */
  long runs = atomic_load(&g_drain_runs);
  if (runs != 10 * 1000) fprintf(stderr, "drain ran %ld of 10000 chain links\n", runs);
  CHECK(runs == 10 * 1000);
}

int main(void) {
  test_drain();
  return CHECK_SUMMARY();
}
