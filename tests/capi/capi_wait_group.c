/* Wait groups through the C ABI: the counter rules (negative -> MYRIAD_ENEGATIVE with the
 * counter unchanged), destroy while busy (MYRIAD_EBUSY), use after destroy, and waiting from a
 * foreign thread and from tasks. */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "myriad.h"

static void test_counter_rules(void) {
  myriad_wait_group wg;
  wg.bits = 0;
  CHECK_ST(myriad_wait_group_create(&wg), MYRIAD_OK);
  CHECK(wg.bits != 0);

  /* A fresh group is at zero: wait returns at once, done underflows. */
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_ENEGATIVE);
  CHECK_ST(myriad_wait_group_add(wg, -1), MYRIAD_ENEGATIVE);
  /* Deltas outside the 32-bit counter's range are refused outright (core: |delta| >= 2^31 is
   * an invalid argument). */
  CHECK_ST(myriad_wait_group_add(wg, INT64_MIN), MYRIAD_EINVAL);
  CHECK_ST(myriad_wait_group_add(wg, INT64_MAX), MYRIAD_EINVAL);
  CHECK_ST(myriad_wait_group_add(wg, (int64_t)1 << 31), MYRIAD_EINVAL);
  CHECK_ST(myriad_wait_group_add(wg, -((int64_t)1 << 31)), MYRIAD_EINVAL);
  /* ...and the failed calls left it at zero: still waitable and destroyable, and a later
   * add(1)/done() pair works. */
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(wg, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);

  /* add(0) is a no-op. */
  CHECK_ST(myriad_wait_group_add(wg, 0), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);

  /* From 2, subtracting 3 fails and leaves 2: exactly two done() succeed, the third fails. */
  CHECK_ST(myriad_wait_group_add(wg, 2), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(wg, -3), MYRIAD_ENEGATIVE);
  CHECK_ST(myriad_wait_group_destroy(wg), MYRIAD_EBUSY); /* counter is 2 */
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(wg), MYRIAD_EBUSY); /* counter is 1 */
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_ENEGATIVE);
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);

  /* Large positive deltas and a negative delta that lands exactly on zero. */
  CHECK_ST(myriad_wait_group_add(wg, 1000000), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(wg, -999999), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(wg, -1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_OK);

  /* Destroyed: every use is a bad handle. */
  CHECK_ST(myriad_wait_group_destroy(wg), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(wg, 1), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_done(wg), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_wait(wg), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_destroy(wg), MYRIAD_EBADHANDLE);

  /* A new group may reuse the slot; the stale handle must not reach it. */
  myriad_wait_group wg2;
  CHECK_ST(myriad_wait_group_create(&wg2), MYRIAD_OK);
  CHECK(wg2.bits != wg.bits);
  CHECK_ST(myriad_wait_group_add(wg, 1), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_add(wg2, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(wg), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_done(wg2), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(wg2), MYRIAD_OK);

  /* Many groups at once: all distinct, all destroyable. */
  enum { kGroups = 5000 };
  static myriad_wait_group many[kGroups];
  int created = 0;
  for (int i = 0; i < kGroups; ++i)
    if (myriad_wait_group_create(&many[i]) == MYRIAD_OK) ++created;
  CHECK(created == kGroups);
  int distinct = 1;
  for (int i = 1; i < kGroups; ++i)
    if (many[i].bits == many[i - 1].bits) distinct = 0;
  CHECK(distinct);
  int destroyed = 0;
  for (int i = 0; i < kGroups; ++i)
    if (myriad_wait_group_destroy(many[i]) == MYRIAD_OK) ++destroyed;
  CHECK(destroyed == kGroups);
}

/* ---- waiting -------------------------------------------------------------------------------- */

static myriad_wait_group g_start, g_finish;
static atomic_int g_after_start;

/* Waits on g_start (parking the task), then counts itself and signals g_finish. */
static void waiter_task(void* arg) {
  (void)arg;
  CHECK_ST(myriad_wait_group_wait(g_start), MYRIAD_OK);
  atomic_fetch_add(&g_after_start, 1);
  CHECK_ST(myriad_wait_group_done(g_finish), MYRIAD_OK);
}

static void test_waiting(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 2;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_start) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_finish) == MYRIAD_OK);
  atomic_store(&g_after_start, 0);

  enum { kWaiters = 1000 };
  CHECK_ST(myriad_wait_group_add(g_start, 1), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_finish, kWaiters), MYRIAD_OK);
  myriad_task handles[kWaiters];
  for (int i = 0; i < kWaiters; ++i)
    CHECK_ST(myriad_spawn(rt, waiter_task, NULL, NULL, &handles[i]), MYRIAD_OK);
  /* Nobody gets past g_start while it is up; its destroy is refused. */
  CHECK_ST(myriad_wait_group_destroy(g_start), MYRIAD_EBUSY);
  CHECK(atomic_load(&g_after_start) == 0);
  CHECK_ST(myriad_wait_group_done(g_start), MYRIAD_OK); /* releases every parked waiter */
  CHECK_ST(myriad_wait_group_wait(g_finish), MYRIAD_OK); /* a foreign thread blocks */
  CHECK(atomic_load(&g_after_start) == kWaiters);
  for (int i = 0; i < kWaiters; ++i) CHECK_ST(myriad_join(handles[i]), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_start), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_finish), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  test_counter_rules();
  test_waiting();
  return CHECK_SUMMARY();
}
