/* Go's "all goroutines are asleep - deadlock!" through the C ABI: a pthread blocked on a
 * channel (receive, send, select, the nil channel) while the only task is parked gets
 * MYRIAD_EALLASLEEP and the report reaches on_deadlock with its user pointer; the channels still
 * work afterwards; a pending deadline is no deadlock; detect_deadlock = 0 turns it off; and an
 * older caller's smaller myriad_config gets the defaults for the appended fields. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

#define MS 1000000LL

struct reports {
  atomic_int count;
  atomic_int mentions_label;
  atomic_int mentions_deadlock;
  atomic_int mentions_reason;
};

static void on_deadlock(const char* report, void* user) {
  struct reports* r = user;
  atomic_fetch_add(&r->count, 1);
  if (strstr(report, "\"stuck-receiver\"")) atomic_store(&r->mentions_label, 1);
  if (strstr(report, "deadlock")) atomic_store(&r->mentions_deadlock, 1);
  if (strstr(report, "chan receive")) atomic_store(&r->mentions_reason, 1);
}

static myriad_chan g_never; /* the parked task waits on it; closed at the end */
static atomic_int g_stuck_started;

static void stuck_receiver(void* arg) {
  (void)arg;
  int v = 0;
  atomic_store(&g_stuck_started, 1);
  myriad_chan_recv(g_never, &v, NULL);
}

static myriad_runtime start(myriad_config* c, myriad_task* stuck) {
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_never) == MYRIAD_OK);
  atomic_store(&g_stuck_started, 0);
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("stuck-receiver");
  REQUIRE(myriad_spawn(rt, stuck_receiver, NULL, &o, stuck) == MYRIAD_OK);
  while (!atomic_load(&g_stuck_started)) myriad_sleep_ns(MS);
  return rt;
}

static void finish(myriad_runtime rt, myriad_task stuck) {
  CHECK_ST(myriad_chan_close(g_never), MYRIAD_OK); /* releases the parked task */
  CHECK_ST(myriad_join(stuck), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_never), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static myriad_chan g_a, g_b;

static void send_a(void* arg) {
  int v = (int)(intptr_t)arg;
  myriad_chan_send(g_a, &v);
}

static void test_reported(void) {
  struct reports r;
  memset(&r, 0, sizeof r);
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 2;
  c.on_deadlock = on_deadlock;
  c.on_deadlock_user = &r;
  myriad_task stuck;
  myriad_runtime rt = start(&c, &stuck);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_a) == MYRIAD_OK);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_b) == MYRIAD_OK);

  /* A receive nobody will ever match. */
  int v = 5;
  bool ok = true;
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_chan_recv(g_a, &v, &ok), MYRIAD_EALLASLEEP);
  CHECK(myriad_now_ns() - t0 >= 100 * MS); /* confirmed over the grace period */
  CHECK(!ok && v == 5);
  CHECK(atomic_load(&r.count) >= 1);
  CHECK(atomic_load(&r.mentions_label) && atomic_load(&r.mentions_deadlock) &&
        atomic_load(&r.mentions_reason));
  /* A send, a select and the nil channel too. */
  CHECK_ST(myriad_chan_send(g_a, &v), MYRIAD_EALLASLEEP);
  int index = 9;
  myriad_select_case cases[2] = {{g_a, MYRIAD_RECV, &v}, {g_b, MYRIAD_SEND, &v}};
  CHECK_ST(myriad_select(cases, 2, 1, &index, &ok), MYRIAD_EALLASLEEP);
  CHECK(index == -1);
  CHECK_ST(myriad_select(NULL, 0, 1, &index, &ok), MYRIAD_EALLASLEEP);
  CHECK_ST(myriad_chan_recv((myriad_chan){0}, &v, &ok), MYRIAD_EALLASLEEP);
  CHECK(atomic_load(&r.count) >= 5);
  /* The withdrawn waiters left nothing behind: the channel still works. */
  CHECK_ST(myriad_spawn(rt, send_a, (void*)(intptr_t)31, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(g_a, &v, &ok), MYRIAD_OK);
  CHECK(ok && v == 31);
  /* A pending deadline is no deadlock: the timer will wake the waiter. */
  int before = atomic_load(&r.count);
  t0 = myriad_now_ns();
  CHECK_ST(myriad_chan_recv_deadline(g_a, &v, &ok, t0 + 150 * MS), MYRIAD_ETIMEDOUT);
  CHECK(atomic_load(&r.count) == before);
  CHECK_ST(myriad_chan_destroy(g_a), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_b), MYRIAD_OK);
  finish(rt, stuck);
}

/* ---- turned off ---------------------------------------------------------------------------- */

static myriad_chan g_result;

static void* late_feeder(void* arg) {
  (void)arg;
  struct timespec ts = {0, 200 * MS}; /* invisible to the check: never touched myriad yet */
  nanosleep(&ts, NULL);
  int v = 77;
  myriad_chan_send(g_result, &v);
  return NULL;
}

static void test_turned_off(void) {
  struct reports r;
  memset(&r, 0, sizeof r);
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 1;
  c.detect_deadlock = 0;
  c.on_deadlock = on_deadlock;
  c.on_deadlock_user = &r;
  myriad_task stuck;
  myriad_runtime rt = start(&c, &stuck);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_result) == MYRIAD_OK);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, late_feeder, NULL) == 0);
  int v = 0;
  bool ok = false;
  CHECK_ST(myriad_chan_recv(g_result, &v, &ok), MYRIAD_OK);
  CHECK(ok && v == 77);
  pthread_join(t, NULL);
  CHECK(atomic_load(&r.count) == 0);
  CHECK_ST(myriad_chan_destroy(g_result), MYRIAD_OK);
  finish(rt, stuck);
}

/* ---- an older caller's smaller config ------------------------------------------------------ */

static void test_old_config_size(void) {
  /* A caller built before detect_deadlock existed: its struct ends at max_stacks. Whatever
   * lies beyond is not read: detection stays on (the default) and the report goes to stderr,
   * not to a callback the caller never set. */
  myriad_config c;
  myriad_config_init(&c);
  c.size = offsetof(myriad_config, max_stacks) + sizeof(uint64_t);
  c.procs = 1;
  c.detect_deadlock = 0;               /* beyond the old size: ignored */
  c.on_deadlock = on_deadlock;         /* ignored */
  struct reports r;
  memset(&r, 0, sizeof r);
  c.on_deadlock_user = &r;
  myriad_task stuck;
  myriad_runtime rt = start(&c, &stuck);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_a) == MYRIAD_OK);
  int v = 0;
  CHECK_ST(myriad_chan_recv(g_a, &v, NULL), MYRIAD_EALLASLEEP);
  CHECK(atomic_load(&r.count) == 0);
  CHECK_ST(myriad_chan_destroy(g_a), MYRIAD_OK);
  finish(rt, stuck);

  /* One that knows detect_deadlock but not on_deadlock: the flag is read, the rest is not. */
  myriad_config_init(&c);
  c.size = offsetof(myriad_config, detect_deadlock) + sizeof(int32_t);
  c.procs = 1;
  c.detect_deadlock = 0;
  c.on_deadlock = on_deadlock;
  rt = start(&c, &stuck);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_result) == MYRIAD_OK);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, late_feeder, NULL) == 0);
  bool ok = false;
  CHECK_ST(myriad_chan_recv(g_result, &v, &ok), MYRIAD_OK); /* off: no false report */
  CHECK(ok && v == 77);
  pthread_join(t, NULL);
  CHECK_ST(myriad_chan_destroy(g_result), MYRIAD_OK);
  finish(rt, stuck);

  /* Sizes below the first version are refused. */
  myriad_config_init(&c);
  c.size = offsetof(myriad_config, max_stacks);
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_EINVAL);
}

int main(void) {
  test_reported();
  test_turned_off();
  test_old_config_size();
  return CHECK_SUMMARY();
}
