/* Blocking calls, thread locks and preemption through the C ABI: with procs = 1 a task inside
 * myriad_blocking_enter/leave does not stop 1,000 other tasks (they all finish while it is
 * still in its call); nesting, no-ops outside tasks, MYRIAD_ETHREADLIMIT and MYRIAD_ENOTSUP;
 * a task locked to its thread keeps it across parks (yield, sleep, channel receive) while no
 * other task runs there; the monitor reports a task spinning for 50 ms through
 * on_long_running (id, label, creation site) and myriad_preempt_point honours its request, so
 * a spinning task with procs = 1 lets another task run; the new statistics. No timing
 * thresholds: waits have generous caps that only a broken runtime reaches. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

#define MS 1000000LL
#define CAP_NS (60000 * MS) /* a wait that only a broken runtime reaches */

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  nanosleep(&ts, NULL);
}

static myriad_runtime make_runtime(uint32_t procs, uint32_t host_procs, uint32_t max_threads) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.host_procs = host_procs;
  c.max_threads = max_threads;
  c.report_abandoned = 0;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

static myriad_stats stats_of(myriad_runtime rt) {
  myriad_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  CHECK_ST(myriad_runtime_stats(rt, &s), MYRIAD_OK);
  return s;
}

/* ---- A blocking call hands its proc off ---------------------------------------------------- */

enum { kOthers = 1000 };

static atomic_int g_entered;
static atomic_int g_others_done;
static int g_seen_at_leave;

static void blocker(void* arg) {
  (void)arg;
  CHECK_ST(myriad_blocking_enter(), MYRIAD_OK);
  atomic_store(&g_entered, 1);
  /* A blocking system call (nanosleep) that lasts until the others are done: they can only
   * run if the runtime handed this task's proc to another thread. */
  const int64_t start = myriad_now_ns();
  while (atomic_load(&g_others_done) < kOthers && myriad_now_ns() - start < CAP_NS) sleep_us(1000);
  g_seen_at_leave = atomic_load(&g_others_done);
  myriad_blocking_leave();
  /* Back with a proc: parking is allowed again. */
  CHECK_ST(myriad_yield(), MYRIAD_OK);
  CHECK_ST(myriad_sleep_ns(MS), MYRIAD_OK);
}

static void other(void* arg) {
  (void)arg;
  myriad_yield();
  atomic_fetch_add(&g_others_done, 1);
}

static void test_handoff(void) {
  myriad_runtime rt = make_runtime(1, 0, 0);
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("blocker");
  myriad_task b;
  REQUIRE(myriad_spawn(rt, blocker, NULL, &o, &b) == MYRIAD_OK);
  while (!atomic_load(&g_entered)) sleep_us(100);
  static myriad_task others[kOthers];
  for (int i = 0; i < kOthers; ++i) REQUIRE(myriad_spawn(rt, other, NULL, NULL, &others[i]) == 0);
  CHECK_ST(myriad_join(b), MYRIAD_OK);
  CHECK(g_seen_at_leave == kOthers); /* all of them finished before the call returned */
  for (int i = 0; i < kOthers; ++i) CHECK_ST(myriad_join(others[i]), MYRIAD_OK);
  myriad_stats s = stats_of(rt);
  CHECK(s.blocking_calls >= 1);
  CHECK(s.proc_handoffs >= 1);
  CHECK(s.threads >= 2); /* the blocked one and the one that took its proc */
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Nesting, no-ops, limits ----------------------------------------------------------------- */

struct results {
  myriad_status enter, lock;
  bool locked_after;
};

static void nested(void* arg) {
  (void)arg;
  myriad_blocking_leave(); /* not in a blocking call: nothing happens */
  CHECK_ST(myriad_blocking_enter(), MYRIAD_OK);
  CHECK_ST(myriad_blocking_enter(), MYRIAD_OK); /* nested: nothing more */
  myriad_blocking_leave();                      /* ends the section */
  CHECK_ST(myriad_yield(), MYRIAD_OK);          /* so parking is fine again */
  myriad_blocking_leave();                      /* nothing */
  CHECK_ST(myriad_sleep_ns(MS), MYRIAD_OK);
}

static void try_limits(void* arg) {
  struct results* r = arg;
  r->enter = myriad_blocking_enter();
  if (r->enter == MYRIAD_OK) myriad_blocking_leave();
  r->lock = myriad_thread_lock();
  r->locked_after = myriad_thread_locked();
  if (r->lock == MYRIAD_OK) myriad_thread_unlock();
}

static void test_limits_and_noops(void) {
  /* Outside any task. */
  CHECK_ST(myriad_blocking_enter(), MYRIAD_OK);
  myriad_blocking_leave();
  myriad_blocking_leave();
  CHECK_ST(myriad_thread_lock(), MYRIAD_ENOTINTASK);
  CHECK(!myriad_thread_locked());
  myriad_thread_unlock();
  myriad_preempt_point();

  myriad_runtime rt = make_runtime(2, 0, 0);
  myriad_task t;
  REQUIRE(myriad_spawn(rt, nested, NULL, NULL, &t) == MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* max_threads = procs: no thread to spare for a blocking call or a lock. */
  rt = make_runtime(1, 0, 1);
  struct results r = {(myriad_status)-1, (myriad_status)-1, true};
  REQUIRE(myriad_spawn(rt, try_limits, &r, NULL, &t) == MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(r.enter, MYRIAD_ETHREADLIMIT);
  CHECK_ST(r.lock, MYRIAD_ETHREADLIMIT);
  CHECK(!r.locked_after);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* With one to spare, both work. */
  rt = make_runtime(1, 0, 2);
  REQUIRE(myriad_spawn(rt, try_limits, &r, NULL, &t) == MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(r.enter, MYRIAD_OK);
  CHECK_ST(r.lock, MYRIAD_OK);
  CHECK(r.locked_after);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* A host-driven proc: no thread lock (the host lends its thread for a step only); a blocking
   * call is a no-op there. */
  rt = make_runtime(1, 1, 0);
  REQUIRE(myriad_spawn(rt, try_limits, &r, NULL, &t) == MYRIAD_OK);
  int idle = 0;
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(r.enter, MYRIAD_OK);
  CHECK_ST(r.lock, MYRIAD_ENOTSUP);
  CHECK(!r.locked_after);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Thread locks ------------------------------------------------------------------------------ */

enum { kLockRounds = 60, kGuests = 200 };

struct lock_state {
  myriad_runtime rt;
  myriad_chan ping;
  myriad_wait_group guests;
  pthread_t thread;     /* the locked task's thread, written before `locked` */
  atomic_int locked;
  atomic_int moved;     /* parks after which the locked task was on another thread */
  atomic_int intruders; /* other tasks seen on the locked thread */
  atomic_int ended_locked;
};

static void pinger(void* arg) {
  struct lock_state* s = arg;
  for (int i = 0; i < kLockRounds; ++i) {
    if (i % 4 == 0) myriad_sleep_ns(100000);
    CHECK_ST(myriad_chan_send(s->ping, &i), MYRIAD_OK);
  }
}

static void locked_task(void* arg) {
  struct lock_state* s = arg;
  CHECK(!myriad_thread_locked());
  CHECK_ST(myriad_thread_lock(), MYRIAD_OK);
  CHECK(myriad_thread_locked());
  const pthread_t self = pthread_self();
  s->thread = self;
  atomic_store(&s->locked, 1);
  for (int i = 0; i < kLockRounds; ++i) {
    int v = -1;
    bool ok = false;
    CHECK_ST(myriad_chan_recv(s->ping, &v, &ok), MYRIAD_OK); /* parks until the pinger sends */
    CHECK(ok && v == i);
    if (!pthread_equal(pthread_self(), self)) atomic_fetch_add(&s->moved, 1);
    if (i % 3 == 0) CHECK_ST(myriad_sleep_ns(50000), MYRIAD_OK);
    if (i % 3 == 1) CHECK_ST(myriad_yield(), MYRIAD_OK);
    if (!pthread_equal(pthread_self(), self)) atomic_fetch_add(&s->moved, 1);
  }
  /* Locks nest. */
  CHECK_ST(myriad_thread_lock(), MYRIAD_OK);
  myriad_thread_unlock();
  CHECK(myriad_thread_locked());
  /* Park until the guests, which run meanwhile, are done; still the same thread after. */
  CHECK_ST(myriad_wait_group_wait(s->guests), MYRIAD_OK);
  if (!pthread_equal(pthread_self(), self)) atomic_fetch_add(&s->moved, 1);
  myriad_thread_unlock();
  CHECK(!myriad_thread_locked());
  myriad_thread_unlock(); /* not locked: nothing */
}

static void guest(void* arg) {
  struct lock_state* s = arg;
  for (int i = 0; i < 5; ++i) {
    if (pthread_equal(pthread_self(), s->thread)) atomic_fetch_add(&s->intruders, 1);
    myriad_yield();
  }
  if (pthread_equal(pthread_self(), s->thread)) atomic_fetch_add(&s->intruders, 1);
  myriad_wait_group_done(s->guests);
}

static void lock_and_end(void* arg) {
  struct lock_state* s = arg;
  if (myriad_thread_lock() == MYRIAD_OK) atomic_fetch_add(&s->ended_locked, 1);
  myriad_yield(); /* ends still locked: the runtime unlocks it */
}

static void test_thread_lock(void) {
  static struct lock_state s;
  s.rt = make_runtime(4, 0, 0);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &s.ping) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&s.guests) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_add(s.guests, kGuests) == MYRIAD_OK);
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("locked");
  myriad_task lt, pt;
  REQUIRE(myriad_spawn(s.rt, locked_task, &s, &o, &lt) == MYRIAD_OK);
  while (!atomic_load(&s.locked)) sleep_us(100);
  REQUIRE(myriad_spawn(s.rt, pinger, &s, NULL, &pt) == MYRIAD_OK);
  for (int i = 0; i < kGuests; ++i) REQUIRE(myriad_spawn(s.rt, guest, &s, NULL, NULL) == 0);
  CHECK_ST(myriad_join(pt), MYRIAD_OK);
  CHECK_ST(myriad_join(lt), MYRIAD_OK);
  CHECK(atomic_load(&s.moved) == 0);
  CHECK(atomic_load(&s.intruders) == 0);
  myriad_stats st = stats_of(s.rt);
  CHECK(st.proc_handoffs >= 1); /* the locked task's proc went elsewhere while it waited */

  /* Tasks that end locked: their threads serve again afterwards. */
  enum { kEnders = 8 };
  myriad_task enders[kEnders];
  for (int i = 0; i < kEnders; ++i)
    REQUIRE(myriad_spawn(s.rt, lock_and_end, &s, NULL, &enders[i]) == MYRIAD_OK);
  for (int i = 0; i < kEnders; ++i) CHECK_ST(myriad_join(enders[i]), MYRIAD_OK);
  CHECK(atomic_load(&s.ended_locked) == kEnders);
  myriad_task again;
  REQUIRE(myriad_wait_group_add(s.guests, 1) == MYRIAD_OK);
  REQUIRE(myriad_spawn(s.rt, guest, &s, NULL, &again) == MYRIAD_OK);
  CHECK_ST(myriad_join(again), MYRIAD_OK);

  CHECK_ST(myriad_chan_destroy(s.ping), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(s.guests), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(s.rt), MYRIAD_OK);
}

/* ---- The monitor: long-running tasks, preemption points -------------------------------------- */

struct long_running {
  atomic_int calls; /* reports about the spinner; fields below written before the first */
  uint64_t task_id;
  char label[64];
  char file[256];
  char function[64];
  uint32_t line;
  int64_t running_for_ns;
  size_t size;
  atomic_int other_calls;
};

static void on_long(const myriad_long_running* t, void* user) {
  struct long_running* s = user;
  if (strcmp(t->label, "spinner") != 0) {
    atomic_fetch_add(&s->other_calls, 1);
    return;
  }
  if (atomic_load(&s->calls) == 0) {
    s->task_id = t->task_id;
    snprintf(s->label, sizeof s->label, "%s", t->label);
    snprintf(s->file, sizeof s->file, "%s", t->file);
    snprintf(s->function, sizeof s->function, "%s", t->function);
    s->line = t->line;
    s->running_for_ns = t->running_for_ns;
    s->size = t->size;
  }
  atomic_fetch_add(&s->calls, 1);
}

/* Spins without a yield point for at least 50 ms and until the monitor reported it. */
static void spinner(void* arg) {
  struct long_running* s = arg;
  const int64_t start = myriad_now_ns();
  for (;;) {
    const int64_t ran = myriad_now_ns() - start;
    if (ran >= CAP_NS || (ran >= 50 * MS && atomic_load(&s->calls) > 0)) break;
  }
  myriad_preempt_point(); /* the request is still pending: this yields */
}

static atomic_int g_flag;

static void set_flag(void* arg) {
  (void)arg;
  atomic_store(&g_flag, 1);
}

/* procs = 1: spins until another task sets a flag; only preemption points let it run. */
static void polite_spinner(void* arg) {
  myriad_runtime rt = *(myriad_runtime*)arg;
  myriad_task t;
  REQUIRE(myriad_spawn(rt, set_flag, NULL, NULL, &t) == MYRIAD_OK);
  const int64_t start = myriad_now_ns();
  while (!atomic_load(&g_flag) && myriad_now_ns() - start < CAP_NS) myriad_preempt_point();
  CHECK(atomic_load(&g_flag));
  CHECK_ST(myriad_join(t), MYRIAD_OK);
}

static void test_long_running(void) {
  static struct long_running s;
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 2;
  c.report_abandoned = 0;
  c.on_long_running = on_long;
  c.on_long_running_user = &s;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("spinner"); const uint32_t spawn_line = __LINE__;
  myriad_task t;
  REQUIRE(myriad_spawn(rt, spinner, &s, &o, &t) == MYRIAD_OK);
  uint64_t id = 0;
  CHECK_ST(myriad_task_handle_id(t, &id), MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK(atomic_load(&s.calls) >= 1);
  CHECK(s.task_id == id);
  CHECK(strcmp(s.label, "spinner") == 0);
  CHECK(strstr(s.file, "capi_blocking.c") != NULL);
  CHECK(strcmp(s.function, "test_long_running") == 0);
  CHECK(s.line == spawn_line);
  CHECK(s.running_for_ns >= c.preempt_after_ns);
  CHECK(s.size == sizeof(myriad_long_running));
  myriad_stats st = stats_of(rt);
  CHECK(st.preempt_requests >= 1);
  CHECK(st.preemptions >= 1);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* Preemption points let another task of a single proc run. */
  myriad_config_init(&c);
  c.procs = 1;
  c.report_abandoned = 0;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  REQUIRE(myriad_spawn(rt, polite_spinner, &rt, NULL, &t) == MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  st = stats_of(rt);
  CHECK(st.preemptions >= 1);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* preempt_after_ns < 0: never asked, never reported. */
  static struct long_running quiet;
  myriad_config_init(&c);
  c.procs = 1;
  c.report_abandoned = 0;
  c.preempt_after_ns = -1;
  c.on_long_running = on_long;
  c.on_long_running_user = &quiet;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  atomic_store(&quiet.calls, 1); /* so the spinner stops after its 50 ms */
  REQUIRE(myriad_spawn(rt, spinner, &quiet, &o, &t) == MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK(atomic_load(&quiet.calls) == 1 && atomic_load(&quiet.other_calls) == 0);
  st = stats_of(rt);
  CHECK(st.preempt_requests == 0);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  test_handoff();
  test_limits_and_noops();
  test_thread_lock();
  test_long_running();
  return CHECK_SUMMARY();
}
