/* Spawning past config.max_stacks is refused with MYRIAD_ENOMEM, and the runtime keeps working. */
#include <stdint.h>

#include "check.h"

static myriad_wait_group gate;
static myriad_wait_group parked;

static void park_until_gate(void* arg) {
  (void)arg;
  CHECK_ST(myriad_wait_group_wait(gate), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_done(parked), MYRIAD_OK);
}

static void noop(void* arg) { *(int*)arg = 1; }

int main(void) {
  myriad_config cfg;
  myriad_config_init(&cfg);
  CHECK(cfg.max_stacks == 0);
  cfg.procs = 1;
  cfg.max_stacks = 50;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&cfg, &rt) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&gate) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&parked) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(gate, 1), MYRIAD_OK);

  /* From this (foreign) thread: 50 parked tasks fill every slot; the 51st spawn is refused. */
  int accepted = 0;
  myriad_status last = MYRIAD_OK;
  for (int i = 0; i < 60; i++) {
    CHECK_ST(myriad_wait_group_add(parked, 1), MYRIAD_OK);
    last = myriad_spawn(rt, park_until_gate, NULL, NULL, NULL);
    if (last != MYRIAD_OK) {
      CHECK_ST(myriad_wait_group_done(parked), MYRIAD_OK);
      break;
    }
    accepted++;
  }
  CHECK_ST(last, MYRIAD_ENOMEM);
  CHECK(accepted == 50);

  CHECK_ST(myriad_wait_group_done(gate), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(parked), MYRIAD_OK);

  /* The slots come back: the runtime is usable at its limit. */
  int ran = 0;
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, noop, &ran, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(ran == 1);

  CHECK_ST(myriad_wait_group_destroy(gate), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(parked), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  return CHECK_SUMMARY();
}
