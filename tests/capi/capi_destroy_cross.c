/* myriad_runtime_destroy(B) called from a task of another runtime A. The header only forbids
 * destroying a runtime from one of its *own* tasks (MYRIAD_EDEADLOCK); for a foreign runtime's
 * task the ABI promises at least "a status, never a crash". Accepted outcomes: MYRIAD_OK (B is
 * gone), or an error status with B's handle still valid (B is then destroyed from main). */
#include <stdint.h>

#include "check.h"
#include "myriad.h"

static myriad_runtime g_a, g_b;
static myriad_status g_destroy_b = (myriad_status)-1;

static void destroys_other_runtime(void* arg) {
  (void)arg;
  g_destroy_b = myriad_runtime_destroy(g_b);
}

int main(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 1;
  c.report_abandoned = 0;
  REQUIRE(myriad_runtime_create(&c, &g_a) == MYRIAD_OK);
  REQUIRE(myriad_runtime_create(&c, &g_b) == MYRIAD_OK);

  myriad_task h;
  CHECK_ST(myriad_spawn(g_a, destroys_other_runtime, NULL, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  fprintf(stderr, "destroy(B) from a task of A returned %s\n", myriad_strerror(g_destroy_b));
  CHECK(g_destroy_b == MYRIAD_OK || g_destroy_b == MYRIAD_EDEADLOCK || g_destroy_b == MYRIAD_EBUSY);
  uint32_t procs = 0;
  if (g_destroy_b == MYRIAD_OK) {
    CHECK_ST(myriad_runtime_procs(g_b, &procs), MYRIAD_EBADHANDLE);
  } else {
    /* Refused: nothing may have changed. */
    CHECK_ST(myriad_runtime_procs(g_b, &procs), MYRIAD_OK);
    CHECK_ST(myriad_runtime_destroy(g_b), MYRIAD_OK);
  }
  CHECK_ST(myriad_runtime_destroy(g_a), MYRIAD_OK);
  return CHECK_SUMMARY();
}
