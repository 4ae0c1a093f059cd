/* Sync primitives through the C ABI: mutual exclusion counts with tasks and pthreads (mutex,
 * rwmutex with readers checking an invariant), lock in one task and unlock in another, cond
 * (signal wakes one, broadcast all, a queue with producers and consumers), once (runs exactly
 * once, late callers see its effect), a weighted semaphore bounding concurrency, and the
 * errors: EWOULDBLOCK from the try_ calls, ENOTLOCKED, EBUSY from destroy while held or while a
 * call is in progress, EINVAL, and EBADHANDLE for destroyed and forged handles of each kind. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "myriad.h"

#define MS 1000000LL

static myriad_runtime make_runtime(uint32_t procs) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.report_abandoned = 0;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

/* ---- errors of every kind ------------------------------------------------------------------ */

static void noop(void* arg) { (void)arg; }

static void test_errors(void) {
  CHECK_ST(myriad_mutex_create(NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_rwmutex_create(NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_cond_create(NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_once_create(NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_create(1, NULL), MYRIAD_EINVAL);
  myriad_sem s;
  CHECK_ST(myriad_sem_create(-1, &s), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_create((int64_t)1 << 62, &s), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_create(INT64_MAX, &s), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_create(((int64_t)1 << 62) - 1, &s), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_OK);
  CHECK_ST(myriad_sem_create(0, &s), MYRIAD_OK); /* capacity 0: only n == 0 works */
  CHECK_ST(myriad_sem_acquire(s, 0), MYRIAD_OK);
  CHECK_ST(myriad_sem_acquire(s, 1), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_OK);

  myriad_mutex m;
  myriad_rwmutex rw;
  myriad_cond c;
  myriad_once o;
  REQUIRE(myriad_mutex_create(&m) == MYRIAD_OK);
  REQUIRE(myriad_rwmutex_create(&rw) == MYRIAD_OK);
  REQUIRE(myriad_cond_create(&c) == MYRIAD_OK);
  REQUIRE(myriad_once_create(&o) == MYRIAD_OK);
  REQUIRE(myriad_sem_create(4, &s) == MYRIAD_OK);
  CHECK(m.bits && rw.bits && c.bits && o.bits && s.bits);
  CHECK_ST(myriad_once_call(o, NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_mutex_destroy(m), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_destroy(rw), MYRIAD_OK);
  CHECK_ST(myriad_cond_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_once_destroy(o), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_OK);

  /* A live handle of another kind is not one of these (separate tables). */
  myriad_mutex live_m;
  REQUIRE(myriad_mutex_create(&live_m) == MYRIAD_OK);
  for (int i = 0; i < 5; ++i) {
    uint64_t forged[5] = {m.bits, 0, 1, m.bits + 1, UINT64_MAX};
    myriad_mutex bm = {forged[i]};
    myriad_rwmutex brw = {i == 0 ? rw.bits : forged[i]};
    myriad_cond bc = {i == 0 ? c.bits : forged[i]};
    myriad_once bo = {i == 0 ? o.bits : forged[i]};
    myriad_sem bs = {i == 0 ? s.bits : forged[i]};
    CHECK_ST(myriad_mutex_lock(bm), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_mutex_trylock(bm), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_mutex_unlock(bm), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_mutex_destroy(bm), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_lock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_trylock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_unlock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_rlock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_tryrlock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_runlock(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_rwmutex_destroy(brw), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_cond_wait(bc, live_m), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_cond_wait((myriad_cond){0}, bm), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_cond_signal(bc), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_cond_broadcast(bc), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_cond_destroy(bc), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_once_call(bo, noop, NULL), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_once_destroy(bo), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_sem_acquire(bs, 1), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_sem_try_acquire(bs, 1), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_sem_release(bs, 1), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_sem_destroy(bs), MYRIAD_EBADHANDLE);
  }
  /* A cond wait with a live cond but a bad mutex. */
  myriad_cond live_c;
  REQUIRE(myriad_cond_create(&live_c) == MYRIAD_OK);
  CHECK_ST(myriad_cond_wait(live_c, m), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_cond_destroy(live_c), MYRIAD_OK);
  CHECK_ST(myriad_mutex_destroy(live_m), MYRIAD_OK);
}

/* ---- mutex --------------------------------------------------------------------------------- */

static void test_mutex_states(void) {
  myriad_mutex m;
  REQUIRE(myriad_mutex_create(&m) == MYRIAD_OK);
  CHECK_ST(myriad_mutex_unlock(m), MYRIAD_ENOTLOCKED);
  CHECK_ST(myriad_mutex_trylock(m), MYRIAD_OK);
  CHECK_ST(myriad_mutex_trylock(m), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_mutex_destroy(m), MYRIAD_EBUSY); /* locked */
  CHECK_ST(myriad_mutex_unlock(m), MYRIAD_OK);
  CHECK_ST(myriad_mutex_unlock(m), MYRIAD_ENOTLOCKED);
  CHECK_ST(myriad_mutex_lock(m), MYRIAD_OK);
  CHECK_ST(myriad_mutex_unlock(m), MYRIAD_OK);
  CHECK_ST(myriad_mutex_destroy(m), MYRIAD_OK);
  CHECK_ST(myriad_mutex_lock(m), MYRIAD_EBADHANDLE);
}

enum { kTasks = 8, kThreads = 3, kIters = 5000 };

static myriad_mutex g_m;
static long g_counter; /* plain: only the mutex protects it */
static myriad_wait_group g_wg;

static void bump(void) {
  for (int i = 0; i < kIters; ++i) {
    if (myriad_mutex_lock(g_m) != MYRIAD_OK) CHECK(0);
    long v = g_counter;
    if (i % 64 == 0) myriad_yield(); /* a task yields while holding it (ENOTINTASK for threads) */
    g_counter = v + 1;
    if (myriad_mutex_unlock(g_m) != MYRIAD_OK) CHECK(0);
  }
}

static void bump_task(void* arg) {
  (void)arg;
  bump();
  myriad_wait_group_done(g_wg);
}

static void* bump_thread(void* arg) {
  (void)arg;
  bump();
  myriad_wait_group_done(g_wg);
  return NULL;
}

static void test_mutex_exclusion(void) {
  myriad_runtime rt = make_runtime(4);
  REQUIRE(myriad_mutex_create(&g_m) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_wg) == MYRIAD_OK);
  g_counter = 0;
  CHECK_ST(myriad_wait_group_add(g_wg, kTasks + kThreads), MYRIAD_OK);
  pthread_t t[kThreads];
  for (int i = 0; i < kTasks; ++i)
    CHECK_ST(myriad_spawn(rt, bump_task, NULL, NULL, NULL), MYRIAD_OK);
  for (int i = 0; i < kThreads; ++i) REQUIRE(pthread_create(&t[i], NULL, bump_thread, NULL) == 0);
  CHECK_ST(myriad_wait_group_wait(g_wg), MYRIAD_OK);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  CHECK(g_counter == (long)(kTasks + kThreads) * kIters);
  CHECK_ST(myriad_mutex_destroy(g_m), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_wg), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* Locked by this thread, unlocked by a task (locks are not owned); a waiter counts as busy. */
static myriad_mutex g_handoff;
static atomic_int g_waiter_state;

static void* lock_waiter(void* arg) {
  (void)arg;
  atomic_store(&g_waiter_state, 1);
  if (myriad_mutex_lock(g_handoff) == MYRIAD_OK) atomic_store(&g_waiter_state, 2);
  return NULL;
}

static void unlock_task(void* arg) {
  (void)arg;
  if (myriad_mutex_unlock(g_handoff) != MYRIAD_OK) CHECK(0);
}

static void test_mutex_handoff_and_busy(void) {
  myriad_runtime rt = make_runtime(2);
  REQUIRE(myriad_mutex_create(&g_handoff) == MYRIAD_OK);
  CHECK_ST(myriad_mutex_lock(g_handoff), MYRIAD_OK);
  atomic_store(&g_waiter_state, 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, lock_waiter, NULL) == 0);
  while (atomic_load(&g_waiter_state) == 0) myriad_sleep_ns(MS);
  myriad_sleep_ns(10 * MS);
  CHECK(atomic_load(&g_waiter_state) == 1);
  CHECK_ST(myriad_mutex_destroy(g_handoff), MYRIAD_EBUSY);
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, unlock_task, NULL, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  pthread_join(t, NULL);
  CHECK(atomic_load(&g_waiter_state) == 2);
  CHECK_ST(myriad_mutex_destroy(g_handoff), MYRIAD_EBUSY); /* the waiter holds it now */
  CHECK_ST(myriad_mutex_unlock(g_handoff), MYRIAD_OK);
  CHECK_ST(myriad_mutex_destroy(g_handoff), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- rwmutex ------------------------------------------------------------------------------- */

static void test_rwmutex_states(void) {
  myriad_rwmutex rw;
  REQUIRE(myriad_rwmutex_create(&rw) == MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_unlock(rw), MYRIAD_ENOTLOCKED);
  CHECK_ST(myriad_rwmutex_runlock(rw), MYRIAD_ENOTLOCKED);
  CHECK_ST(myriad_rwmutex_rlock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_tryrlock(rw), MYRIAD_OK); /* two readers */
  CHECK_ST(myriad_rwmutex_trylock(rw), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_rwmutex_unlock(rw), MYRIAD_ENOTLOCKED); /* read-locked, not write-locked */
  CHECK_ST(myriad_rwmutex_destroy(rw), MYRIAD_EBUSY);
  CHECK_ST(myriad_rwmutex_runlock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_destroy(rw), MYRIAD_EBUSY);
  CHECK_ST(myriad_rwmutex_runlock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_runlock(rw), MYRIAD_ENOTLOCKED);
  CHECK_ST(myriad_rwmutex_trylock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_tryrlock(rw), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_rwmutex_trylock(rw), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_rwmutex_runlock(rw), MYRIAD_ENOTLOCKED); /* write-locked, not read-locked */
  CHECK_ST(myriad_rwmutex_destroy(rw), MYRIAD_EBUSY);
  CHECK_ST(myriad_rwmutex_unlock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_lock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_unlock(rw), MYRIAD_OK);
  CHECK_ST(myriad_rwmutex_destroy(rw), MYRIAD_OK);
}

static myriad_rwmutex g_rw;
static long g_x, g_y; /* writers keep x == y; readers check it */
static atomic_int g_torn;
static atomic_long g_reads;

static void rw_body(int writer) {
  for (int i = 0; i < kIters; ++i) {
    if (writer && i % 4 == 0) {
      if (myriad_rwmutex_lock(g_rw) != MYRIAD_OK) CHECK(0);
      ++g_x;
      if (i % 64 == 0) myriad_yield();
      ++g_y;
      if (myriad_rwmutex_unlock(g_rw) != MYRIAD_OK) CHECK(0);
    } else {
      if (myriad_rwmutex_rlock(g_rw) != MYRIAD_OK) CHECK(0);
      if (g_x != g_y) atomic_store(&g_torn, 1);
      atomic_fetch_add(&g_reads, 1);
      if (myriad_rwmutex_runlock(g_rw) != MYRIAD_OK) CHECK(0);
    }
  }
}

static void rw_task(void* arg) {
  rw_body((int)(intptr_t)arg);
  myriad_wait_group_done(g_wg);
}

static void* rw_thread(void* arg) {
  rw_body((int)(intptr_t)arg);
  myriad_wait_group_done(g_wg);
  return NULL;
}

static void test_rwmutex_exclusion(void) {
  myriad_runtime rt = make_runtime(4);
  REQUIRE(myriad_rwmutex_create(&g_rw) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_wg) == MYRIAD_OK);
  g_x = g_y = 0;
  atomic_store(&g_torn, 0);
  atomic_store(&g_reads, 0);
  CHECK_ST(myriad_wait_group_add(g_wg, kTasks + kThreads), MYRIAD_OK);
  pthread_t t[kThreads];
  int writers = 0;
  for (int i = 0; i < kTasks; ++i) {
    writers += i % 2;
    CHECK_ST(myriad_spawn(rt, rw_task, (void*)(intptr_t)(i % 2), NULL, NULL), MYRIAD_OK);
  }
  for (int i = 0; i < kThreads; ++i) {
    writers += i == 0;
    REQUIRE(pthread_create(&t[i], NULL, rw_thread, (void*)(intptr_t)(i == 0)) == 0);
  }
  CHECK_ST(myriad_wait_group_wait(g_wg), MYRIAD_OK);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  CHECK(atomic_load(&g_torn) == 0);
  CHECK(g_x == (long)writers * (kIters / 4) && g_y == g_x);
  CHECK(atomic_load(&g_reads) ==
        (long)(kTasks + kThreads - writers) * kIters + (long)writers * (kIters - kIters / 4));
  CHECK_ST(myriad_rwmutex_destroy(g_rw), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_wg), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- cond ---------------------------------------------------------------------------------- */

static myriad_mutex g_cm;
static myriad_cond g_cv;
static int g_generation;   /* guarded by g_cm */
static int g_waiting;      /* guarded by g_cm */
static atomic_int g_woken;

static void cond_waiter(void* arg) {
  (void)arg;
  if (myriad_mutex_lock(g_cm) != MYRIAD_OK) CHECK(0);
  int gen = g_generation;
  ++g_waiting;
  while (g_generation == gen)
    if (myriad_cond_wait(g_cv, g_cm) != MYRIAD_OK) CHECK(0);
  atomic_fetch_add(&g_woken, 1);
  if (myriad_mutex_unlock(g_cm) != MYRIAD_OK) CHECK(0);
}

static void* cond_waiter_thread(void* arg) {
  cond_waiter(arg);
  return NULL;
}

static int waiting_now(void) {
  myriad_mutex_lock(g_cm);
  int w = g_waiting;
  myriad_mutex_unlock(g_cm);
  return w;
}

static void test_cond(void) {
  myriad_runtime rt = make_runtime(2);
  REQUIRE(myriad_mutex_create(&g_cm) == MYRIAD_OK);
  REQUIRE(myriad_cond_create(&g_cv) == MYRIAD_OK);
  /* The mutex must be locked. */
  CHECK_ST(myriad_cond_wait(g_cv, g_cm), MYRIAD_ENOTLOCKED);
  /* Signal/broadcast with nobody waiting: fine, not remembered. */
  CHECK_ST(myriad_cond_signal(g_cv), MYRIAD_OK);
  CHECK_ST(myriad_cond_broadcast(g_cv), MYRIAD_OK);

  enum { kWaiters = 10 };
  g_generation = 0;
  g_waiting = 0;
  atomic_store(&g_woken, 0);
  myriad_task h[kWaiters];
  pthread_t t;
  for (int i = 0; i < kWaiters - 1; ++i)
    CHECK_ST(myriad_spawn(rt, cond_waiter, NULL, NULL, &h[i]), MYRIAD_OK);
  REQUIRE(pthread_create(&t, NULL, cond_waiter_thread, NULL) == 0);
  while (waiting_now() < kWaiters) myriad_sleep_ns(MS);
  /* Waiters are inside cond_wait with the mutex released: both count as busy. */
  CHECK_ST(myriad_cond_destroy(g_cv), MYRIAD_EBUSY);
  CHECK_ST(myriad_mutex_destroy(g_cm), MYRIAD_EBUSY);
  /* One signal wakes exactly one (the generation changes for all, but only a woken waiter
   * re-checks). */
  myriad_mutex_lock(g_cm);
  ++g_generation;
  myriad_mutex_unlock(g_cm);
  CHECK_ST(myriad_cond_signal(g_cv), MYRIAD_OK);
  for (int i = 0; i < 1000 && atomic_load(&g_woken) < 1; ++i) myriad_sleep_ns(MS);
  myriad_sleep_ns(20 * MS);
  CHECK(atomic_load(&g_woken) == 1);
  /* Broadcast wakes the rest. */
  CHECK_ST(myriad_cond_broadcast(g_cv), MYRIAD_OK);
  for (int i = 0; i < kWaiters - 1; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  pthread_join(t, NULL);
  CHECK(atomic_load(&g_woken) == kWaiters);
  CHECK_ST(myriad_cond_destroy(g_cv), MYRIAD_OK);
  CHECK_ST(myriad_mutex_destroy(g_cm), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* A bounded queue guarded by a mutex and two conds: producers and consumers, counts and sums. */
enum { kQueueCap = 8, kProducers = 4, kConsumers = 4, kPerProducer = 3000 };
static struct {
  myriad_mutex mu;
  myriad_cond not_full, not_empty;
  long items[kQueueCap];
  int head, count, producers_left;
} g_q;
static atomic_long g_q_sum, g_q_count;

static void q_produce(void* arg) {
  long base = (long)(intptr_t)arg * 1000000;
  for (long i = 0; i < kPerProducer; ++i) {
    myriad_mutex_lock(g_q.mu);
    while (g_q.count == kQueueCap) myriad_cond_wait(g_q.not_full, g_q.mu);
    g_q.items[(g_q.head + g_q.count++) % kQueueCap] = base + i;
    myriad_cond_signal(g_q.not_empty);
    myriad_mutex_unlock(g_q.mu);
  }
  myriad_mutex_lock(g_q.mu);
  if (--g_q.producers_left == 0) myriad_cond_broadcast(g_q.not_empty);
  myriad_mutex_unlock(g_q.mu);
}

static void q_consume(void* arg) {
  (void)arg;
  long sum = 0, count = 0;
  for (;;) {
    myriad_mutex_lock(g_q.mu);
    while (g_q.count == 0 && g_q.producers_left > 0) myriad_cond_wait(g_q.not_empty, g_q.mu);
    if (g_q.count == 0) {
      myriad_mutex_unlock(g_q.mu);
      break;
    }
    sum += g_q.items[g_q.head];
    g_q.head = (g_q.head + 1) % kQueueCap;
    --g_q.count;
    ++count;
    myriad_cond_signal(g_q.not_full);
    myriad_mutex_unlock(g_q.mu);
  }
  atomic_fetch_add(&g_q_sum, sum);
  atomic_fetch_add(&g_q_count, count);
}

static void* q_consume_thread(void* arg) {
  q_consume(arg);
  return NULL;
}

static void test_cond_queue(void) {
  myriad_runtime rt = make_runtime(4);
  memset(&g_q, 0, sizeof g_q);
  REQUIRE(myriad_mutex_create(&g_q.mu) == MYRIAD_OK);
  REQUIRE(myriad_cond_create(&g_q.not_full) == MYRIAD_OK);
  REQUIRE(myriad_cond_create(&g_q.not_empty) == MYRIAD_OK);
  g_q.producers_left = kProducers;
  atomic_store(&g_q_sum, 0);
  atomic_store(&g_q_count, 0);
  myriad_task h[kProducers + kConsumers];
  int nh = 0;
  pthread_t t;
  for (int i = 0; i < kProducers; ++i)
    CHECK_ST(myriad_spawn(rt, q_produce, (void*)(intptr_t)i, NULL, &h[nh++]), MYRIAD_OK);
  for (int i = 0; i < kConsumers - 1; ++i)
    CHECK_ST(myriad_spawn(rt, q_consume, NULL, NULL, &h[nh++]), MYRIAD_OK);
  REQUIRE(pthread_create(&t, NULL, q_consume_thread, NULL) == 0);
  for (int i = 0; i < nh; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  pthread_join(t, NULL);
  long want = 0;
  for (long p = 0; p < kProducers; ++p)
    for (long i = 0; i < kPerProducer; ++i) want += p * 1000000 + i;
  CHECK(atomic_load(&g_q_count) == (long)kProducers * kPerProducer);
  CHECK(atomic_load(&g_q_sum) == want);
  CHECK_ST(myriad_cond_destroy(g_q.not_full), MYRIAD_OK);
  CHECK_ST(myriad_cond_destroy(g_q.not_empty), MYRIAD_OK);
  CHECK_ST(myriad_mutex_destroy(g_q.mu), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- once ---------------------------------------------------------------------------------- */

static myriad_once g_once;
static atomic_int g_once_runs;
static int g_once_value; /* written by the once function only */
static atomic_int g_once_seen_ok;
static myriad_status g_destroy_inside = MYRIAD_OK;

static void init_value(void* arg) {
  atomic_fetch_add(&g_once_runs, 1);
  g_destroy_inside = myriad_once_destroy(g_once); /* a call is in progress: refused */
  myriad_sleep_ns(10 * MS); /* late callers must wait for it */
  g_once_value = (int)(intptr_t)arg;
}

static void once_caller(void* arg) {
  if (myriad_once_call(g_once, init_value, arg) != MYRIAD_OK) CHECK(0);
  if (g_once_value != 4242) CHECK(0);
  else atomic_fetch_add(&g_once_seen_ok, 1);
}

static void* once_thread(void* arg) {
  once_caller(arg);
  return NULL;
}

static void test_once(void) {
  myriad_runtime rt = make_runtime(4);
  REQUIRE(myriad_once_create(&g_once) == MYRIAD_OK);
  atomic_store(&g_once_runs, 0);
  atomic_store(&g_once_seen_ok, 0);
  g_once_value = 0;
  enum { kCallers = 50, kOnceThreads = 3 };
  myriad_task h[kCallers];
  pthread_t t[kOnceThreads];
  for (int i = 0; i < kCallers; ++i)
    CHECK_ST(myriad_spawn(rt, once_caller, (void*)(intptr_t)4242, NULL, &h[i]), MYRIAD_OK);
  for (int i = 0; i < kOnceThreads; ++i)
    REQUIRE(pthread_create(&t[i], NULL, once_thread, (void*)(intptr_t)4242) == 0);
  for (int i = 0; i < kCallers; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  for (int i = 0; i < kOnceThreads; ++i) pthread_join(t[i], NULL);
  CHECK(atomic_load(&g_once_runs) == 1);
  CHECK(atomic_load(&g_once_seen_ok) == kCallers + kOnceThreads);
  CHECK_ST(g_destroy_inside, MYRIAD_EBUSY);
  /* Done: later calls return at once without running fn. */
  CHECK_ST(myriad_once_call(g_once, init_value, (void*)(intptr_t)1), MYRIAD_OK);
  CHECK(atomic_load(&g_once_runs) == 1 && g_once_value == 4242);
  CHECK_ST(myriad_once_destroy(g_once), MYRIAD_OK);
  CHECK_ST(myriad_once_call(g_once, init_value, NULL), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- semaphore ----------------------------------------------------------------------------- */

static void test_sem_states(void) {
  myriad_sem s;
  REQUIRE(myriad_sem_create(5, &s) == MYRIAD_OK);
  CHECK_ST(myriad_sem_acquire(s, -1), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_acquire(s, 6), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_try_acquire(s, -1), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_try_acquire(s, 6), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_release(s, 1), MYRIAD_EINVAL); /* nothing held */
  CHECK_ST(myriad_sem_release(s, -1), MYRIAD_EINVAL);
  CHECK_ST(myriad_sem_acquire(s, 3), MYRIAD_OK);
  CHECK_ST(myriad_sem_try_acquire(s, 3), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_sem_try_acquire(s, 2), MYRIAD_OK);
  CHECK_ST(myriad_sem_try_acquire(s, 1), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_sem_try_acquire(s, 0), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_EBUSY); /* units held */
  CHECK_ST(myriad_sem_release(s, 6), MYRIAD_EINVAL); /* more than held: nothing changes */
  CHECK_ST(myriad_sem_release(s, 4), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_EBUSY);
  CHECK_ST(myriad_sem_release(s, 1), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(s), MYRIAD_OK);
}

static myriad_sem g_sem;
static atomic_int g_active, g_max_active;
static atomic_long g_sem_done;

static void limited(void* arg) {
  int64_t n = (int64_t)(intptr_t)arg;
  for (int i = 0; i < 50; ++i) {
    if (myriad_sem_acquire(g_sem, n) != MYRIAD_OK) CHECK(0);
    int a = atomic_fetch_add(&g_active, (int)n) + (int)n;
    int m = atomic_load(&g_max_active);
    while (a > m && !atomic_compare_exchange_weak(&g_max_active, &m, a)) {
    }
    myriad_yield();
    atomic_fetch_sub(&g_active, (int)n);
    if (myriad_sem_release(g_sem, n) != MYRIAD_OK) CHECK(0);
  }
  atomic_fetch_add(&g_sem_done, 1);
}

static void* limited_thread(void* arg) {
  limited(arg);
  return NULL;
}

static void test_sem_bounds(void) {
  myriad_runtime rt = make_runtime(4);
  REQUIRE(myriad_sem_create(3, &g_sem) == MYRIAD_OK);
  atomic_store(&g_active, 0);
  atomic_store(&g_max_active, 0);
  atomic_store(&g_sem_done, 0);
  enum { kLimited = 40 };
  myriad_task h[kLimited];
  for (int i = 0; i < kLimited; ++i)
    CHECK_ST(myriad_spawn(rt, limited, (void*)(intptr_t)(i % 3 == 0 ? 2 : 1), NULL, &h[i]),
             MYRIAD_OK);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, limited_thread, (void*)(intptr_t)3) == 0);
  for (int i = 0; i < kLimited; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  pthread_join(t, NULL);
  CHECK(atomic_load(&g_sem_done) == kLimited + 1);
  CHECK(atomic_load(&g_max_active) <= 3 && atomic_load(&g_max_active) >= 1);
  CHECK(atomic_load(&g_active) == 0);
  CHECK_ST(myriad_sem_destroy(g_sem), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* A waiter in acquire makes the semaphore busy even with no units held. */
static myriad_sem g_sem0;
static atomic_int g_acq_state;

static void* big_acquirer(void* arg) {
  (void)arg;
  atomic_store(&g_acq_state, 1);
  if (myriad_sem_acquire(g_sem0, 2) == MYRIAD_OK) atomic_store(&g_acq_state, 2);
  return NULL;
}

static void test_sem_waiter_busy(void) {
  REQUIRE(myriad_sem_create(2, &g_sem0) == MYRIAD_OK);
  CHECK_ST(myriad_sem_acquire(g_sem0, 1), MYRIAD_OK);
  atomic_store(&g_acq_state, 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, big_acquirer, NULL) == 0);
  while (atomic_load(&g_acq_state) == 0) myriad_sleep_ns(MS);
  myriad_sleep_ns(10 * MS);
  CHECK(atomic_load(&g_acq_state) == 1);
  /* FIFO: a 1-unit try_acquire may not jump the waiting 2-unit request. */
  CHECK_ST(myriad_sem_try_acquire(g_sem0, 1), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_sem_release(g_sem0, 1), MYRIAD_OK);
  pthread_join(t, NULL);
  CHECK(atomic_load(&g_acq_state) == 2);
  CHECK_ST(myriad_sem_destroy(g_sem0), MYRIAD_EBUSY);
  CHECK_ST(myriad_sem_release(g_sem0, 2), MYRIAD_OK);
  CHECK_ST(myriad_sem_destroy(g_sem0), MYRIAD_OK);
}

/* ---- destroy racing calls on the same handle ----------------------------------------------- */

/* Threads lock and unlock a mutex until its handle dies; another thread keeps trying to destroy
 * it. Destroy must say EBUSY while anyone is inside a call or holds the lock, OK exactly once,
 * and afterwards every call EBADHANDLE — never a use of freed memory (ASan/TSan builds). */
enum { kRacers = 4 };
static myriad_mutex g_race_m;
static atomic_int g_race_bad;

static void* racer(void* arg) {
  (void)arg;
  long rounds = 0;
  for (;;) {
    myriad_status st =
        (rounds++ % 2) ? myriad_mutex_trylock(g_race_m) : myriad_mutex_lock(g_race_m);
    if (st == MYRIAD_EBADHANDLE) break;
    if (st == MYRIAD_EWOULDBLOCK) continue;
    if (st != MYRIAD_OK) {
      atomic_fetch_add(&g_race_bad, 1);
      break;
    }
    /* Held: destroy cannot succeed until this unlock. */
    if (myriad_mutex_unlock(g_race_m) != MYRIAD_OK) atomic_fetch_add(&g_race_bad, 1);
    struct timespec pause = {0, 2000}; /* leave windows in which nobody is inside a call */
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void test_destroy_races(void) {
  for (int round = 0; round < 20; ++round) {
    REQUIRE(myriad_mutex_create(&g_race_m) == MYRIAD_OK);
    atomic_store(&g_race_bad, 0);
    pthread_t t[kRacers];
    for (int i = 0; i < kRacers; ++i) REQUIRE(pthread_create(&t[i], NULL, racer, NULL) == 0);
    myriad_sleep_ns(MS / 2);
    int busy = 0;
    myriad_status st;
    while ((st = myriad_mutex_destroy(g_race_m)) == MYRIAD_EBUSY) ++busy;
    CHECK_ST(st, MYRIAD_OK);
    for (int i = 0; i < kRacers; ++i) pthread_join(t[i], NULL);
    CHECK(atomic_load(&g_race_bad) == 0);
    CHECK_ST(myriad_mutex_destroy(g_race_m), MYRIAD_EBADHANDLE);
  }
}

int main(void) {
  test_errors();
  test_mutex_states();
  test_mutex_exclusion();
  test_mutex_handoff_and_busy();
  test_rwmutex_states();
  test_rwmutex_exclusion();
  test_cond();
  test_cond_queue();
  test_once();
  test_sem_states();
  test_sem_bounds();
  test_sem_waiter_busy();
  test_destroy_races();
  return CHECK_SUMMARY();
}
