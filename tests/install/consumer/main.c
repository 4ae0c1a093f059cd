/* A minimal consumer of the installed package: only <myriad.h> and libmyriad. */
#include <stdio.h>

#include <myriad.h>

static void set_value(void* arg) { *(int*)arg = 42; }

int main(void) {
  if (myriad_abi_version() != MYRIAD_ABI_VERSION) return 1;
  myriad_runtime rt;
  myriad_task task;
  int value = 0;
  if (myriad_runtime_create(NULL, &rt) != MYRIAD_OK) return 2;
  if (myriad_spawn(rt, set_value, &value, NULL, &task) != MYRIAD_OK) return 3;
  if (myriad_join(task) != MYRIAD_OK) return 4;
  if (myriad_runtime_destroy(rt) != MYRIAD_OK) return 5;
  if (value != 42) return 6;
  printf("OK myriad %s value=%d\n", myriad_version(), value);
  return 0;
}
