/* Time through the C ABI: myriad_now_ns is CLOCK_MONOTONIC, sleeps park tasks (many sleepers
 * on one proc overlap), timers fire once with the firing time, stop and reset leave no stale
 * value (Go 1.23), tickers tick until stopped, after and after_func, the zero runtime handle,
 * channel handles of timers outliving them, and the errors (EBADHANDLE, EINVAL, ENOTINTASK,
 * ECLOSED after the timer's runtime was destroyed). */
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

static int64_t clock_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- no runtime yet ------------------------------------------------------------------------- */

static void test_no_runtime(void) {
  myriad_timer t;
  myriad_ticker k;
  myriad_chan c;
  myriad_runtime zero = {0};
  CHECK_ST(myriad_timer_create(zero, MS, &t), MYRIAD_ENOTINTASK);
  CHECK_ST(myriad_ticker_create(zero, MS, &k), MYRIAD_ENOTINTASK);
  CHECK_ST(myriad_after(zero, MS, &c), MYRIAD_ENOTINTASK);
  CHECK_ST(myriad_chan_create(sizeof(int), 0, NULL, &c), MYRIAD_OK);
  int v = 0;
  /* A deadline needs a timer, hence a runtime. */
  CHECK_ST(myriad_chan_recv_deadline(c, &v, NULL, myriad_now_ns() + MS), MYRIAD_ENOTINTASK);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  /* Sleeping a plain thread needs none. */
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_sleep_ns(5 * MS), MYRIAD_OK);
  CHECK(myriad_now_ns() - t0 >= 5 * MS);
}

/* ---- clock and sleep ------------------------------------------------------------------------ */

static atomic_int g_sleepers_done;

static void sleeper(void* arg) {
  int64_t ns = (int64_t)(intptr_t)arg;
  int64_t t0 = myriad_now_ns();
  if (myriad_sleep_ns(ns) != MYRIAD_OK) CHECK(0);
  if (myriad_now_ns() - t0 < ns) CHECK(0);
  atomic_fetch_add(&g_sleepers_done, 1);
}

static void test_clock_and_sleep(void) {
  int64_t a = clock_monotonic_ns(), n = myriad_now_ns(), b = clock_monotonic_ns();
  CHECK(a <= n && n <= b);
  int64_t prev = myriad_now_ns(), mono = 1;
  for (int i = 0; i < 10000; ++i) {
    int64_t x = myriad_now_ns();
    if (x < prev) mono = 0;
    prev = x;
  }
  CHECK(mono);
  /* <= 0: at once. */
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_sleep_ns(0), MYRIAD_OK);
  CHECK_ST(myriad_sleep_ns(-5 * MS), MYRIAD_OK);
  CHECK_ST(myriad_sleep_ns(INT64_MIN), MYRIAD_OK);
  CHECK(myriad_now_ns() - t0 < 50 * MS);

  /* 200 tasks sleeping 30 ms on ONE proc: they park, so the whole takes about 30 ms rather
   * than 200 x 30 ms. */
  myriad_runtime rt = make_runtime(1);
  enum { kSleepers = 200 };
  atomic_store(&g_sleepers_done, 0);
  myriad_task h[kSleepers];
  t0 = myriad_now_ns();
  for (int i = 0; i < kSleepers; ++i)
    CHECK_ST(myriad_spawn(rt, sleeper, (void*)(intptr_t)(30 * MS), NULL, &h[i]), MYRIAD_OK);
  for (int i = 0; i < kSleepers; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  int64_t took = myriad_now_ns() - t0;
  CHECK(atomic_load(&g_sleepers_done) == kSleepers);
  CHECK(took >= 30 * MS && took < 2000 * MS);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- timers ---------------------------------------------------------------------------------- */

static void test_timer_fires(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_timer t;
  int64_t t0 = myriad_now_ns();
  REQUIRE(myriad_timer_create(rt, 20 * MS, &t) == MYRIAD_OK);
  myriad_chan c, c2;
  CHECK_ST(myriad_timer_chan(t, &c), MYRIAD_OK);
  CHECK_ST(myriad_timer_chan(t, &c2), MYRIAD_OK); /* a second handle to the same channel */
  CHECK(c.bits != 0 && c2.bits != 0 && c.bits != c2.bits);
  size_t cap = 0;
  CHECK_ST(myriad_chan_cap(c, &cap), MYRIAD_OK);
  CHECK(cap == 1);
  int64_t fired = 0;
  bool ok = false;
  CHECK_ST(myriad_chan_recv(c, &fired, &ok), MYRIAD_OK);
  int64_t t1 = myriad_now_ns();
  CHECK(ok && fired >= t0 + 20 * MS && fired <= t1);
  /* Once only. */
  CHECK_ST(myriad_chan_recv_deadline(c2, &fired, &ok, myriad_now_ns() + 30 * MS), MYRIAD_ETIMEDOUT);
  bool active = true;
  CHECK_ST(myriad_timer_stop(t, &active), MYRIAD_OK);
  CHECK(!active); /* fired and received: nothing to stop */
  /* Receive-only. */
  CHECK_ST(myriad_chan_send(c, &fired), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_try_send(c, &fired), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_send_deadline(c, &fired, myriad_now_ns() + MS), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_close(c), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  /* The other channel handle outlives the timer; it never receives again. */
  CHECK_ST(myriad_chan_try_recv(c2, &fired, &ok), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_chan_destroy(c2), MYRIAD_OK);

  /* A duration <= 0 fires at once. */
  REQUIRE(myriad_timer_create(rt, -1, &t) == MYRIAD_OK);
  CHECK_ST(myriad_timer_chan(t, &c), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv_deadline(c, &fired, &ok, myriad_now_ns() + 1000 * MS), MYRIAD_OK);
  CHECK(ok);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static void test_timer_stop_reset(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_timer t;
  myriad_chan c;
  int64_t v = 0;
  bool ok = false, active = false;

  /* Stopped before it fires: true, and nothing ever arrives; a second stop says false. */
  REQUIRE(myriad_timer_create(rt, 20 * MS, &t) == MYRIAD_OK);
  CHECK_ST(myriad_timer_chan(t, &c), MYRIAD_OK);
  CHECK_ST(myriad_timer_stop(t, &active), MYRIAD_OK);
  CHECK(active);
  CHECK_ST(myriad_timer_stop(t, &active), MYRIAD_OK);
  CHECK(!active);
  CHECK_ST(myriad_timer_stop(t, NULL), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv_deadline(c, &v, &ok, myriad_now_ns() + 50 * MS), MYRIAD_ETIMEDOUT);

  /* Fired but not received: stop discards the value (no stale value) and says true. */
  CHECK_ST(myriad_timer_reset(t, 1 * MS, &active), MYRIAD_OK);
  CHECK(!active); /* it was stopped */
  myriad_sleep_ns(30 * MS);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(c, &len), MYRIAD_OK);
  CHECK(len == 1);
  CHECK_ST(myriad_timer_stop(t, &active), MYRIAD_OK);
  CHECK(active);
  CHECK_ST(myriad_chan_try_recv(c, &v, &ok), MYRIAD_EWOULDBLOCK);

  /* Reset of a fired, unreceived timer: the old value is gone, the new one comes later. */
  CHECK_ST(myriad_timer_reset(t, 1 * MS, NULL), MYRIAD_OK);
  myriad_sleep_ns(30 * MS);
  int64_t before_reset = myriad_now_ns();
  CHECK_ST(myriad_timer_reset(t, 20 * MS, &active), MYRIAD_OK);
  CHECK(active);
  CHECK_ST(myriad_chan_try_recv(c, &v, &ok), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok && v >= before_reset + 20 * MS);

  /* Reset of an active timer postpones it. */
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_timer_reset(t, 10 * MS, &active), MYRIAD_OK);
  CHECK(!active);
  CHECK_ST(myriad_timer_reset(t, 40 * MS, &active), MYRIAD_OK);
  CHECK(active);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok && v >= t0 + 40 * MS);

  /* Destroying an armed timer stops it. */
  CHECK_ST(myriad_timer_reset(t, 10 * MS, NULL), MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv_deadline(c, &v, &ok, myriad_now_ns() + 40 * MS), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* Many tasks each make and wait for their own timer, with the zero runtime handle (the
 * calling task's runtime). */
static atomic_int g_timers_ok;

static void timer_task(void* arg) {
  int64_t ns = (int64_t)(intptr_t)arg;
  myriad_timer t;
  myriad_chan c;
  int64_t t0 = myriad_now_ns(), v = 0;
  bool ok = false;
  if (myriad_timer_create((myriad_runtime){0}, ns, &t) != MYRIAD_OK) return;
  if (myriad_timer_chan(t, &c) == MYRIAD_OK) {
    if (myriad_chan_recv(c, &v, &ok) == MYRIAD_OK && ok && v >= t0 + ns)
      atomic_fetch_add(&g_timers_ok, 1);
    myriad_chan_destroy(c);
  }
  myriad_timer_destroy(t);
}

static void test_many_timers(void) {
  myriad_runtime rt = make_runtime(4);
  enum { kTasks = 1000 };
  atomic_store(&g_timers_ok, 0);
  myriad_task h[kTasks];
  for (int i = 0; i < kTasks; ++i)
    CHECK_ST(myriad_spawn(rt, timer_task, (void*)(intptr_t)((1 + i % 10) * MS), NULL, &h[i]),
             MYRIAD_OK);
  for (int i = 0; i < kTasks; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  CHECK(atomic_load(&g_timers_ok) == kTasks);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- tickers ------------------------------------------------------------------------------- */

static void test_ticker(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_ticker k;
  myriad_chan c;
  CHECK_ST(myriad_ticker_create(rt, 0, &k), MYRIAD_EINVAL);
  CHECK_ST(myriad_ticker_create(rt, -MS, &k), MYRIAD_EINVAL);
  CHECK_ST(myriad_ticker_create(rt, MS, NULL), MYRIAD_EINVAL);
  int64_t t0 = myriad_now_ns();
  REQUIRE(myriad_ticker_create(rt, 5 * MS, &k) == MYRIAD_OK);
  CHECK_ST(myriad_ticker_chan(k, &c), MYRIAD_OK);
  int64_t prev = t0, v = 0;
  bool ok = false;
  int increasing = 1;
  for (int i = 0; i < 5; ++i) {
    CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
    if (!ok || v <= prev) increasing = 0; /* firing times: late ticks do not shift the next */
    prev = v;
  }
  CHECK(increasing);
  CHECK(prev >= t0 + 25 * MS);
  CHECK_ST(myriad_chan_close(c), MYRIAD_EINVAL);
  /* Stopped: no tick, not even one that was already due. */
  CHECK_ST(myriad_ticker_stop(k), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv_deadline(c, &v, &ok, myriad_now_ns() + 30 * MS), MYRIAD_ETIMEDOUT);
  /* Reset: ticks again with the new period, counted from now. */
  CHECK_ST(myriad_ticker_reset(k, 0), MYRIAD_EINVAL);
  int64_t t1 = myriad_now_ns();
  CHECK_ST(myriad_ticker_reset(k, 8 * MS), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok && v >= t1 + 8 * MS);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok && v >= t1 + 16 * MS);
  CHECK_ST(myriad_ticker_destroy(k), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv_deadline(c, &v, &ok, myriad_now_ns() + 30 * MS), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- after, after_func --------------------------------------------------------------------- */

static atomic_int g_func_runs;
static atomic_ullong g_func_task;

static void func(void* arg) {
  /* The task id first: the test reads it as soon as it sees the run counted. */
  atomic_store(&g_func_task, myriad_current_task_id());
  atomic_fetch_add(&g_func_runs, (int)(intptr_t)arg);
}

static void test_after(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_chan c;
  int64_t t0 = myriad_now_ns(), v = 0;
  bool ok = false;
  CHECK_ST(myriad_after(rt, 15 * MS, NULL), MYRIAD_EINVAL);
  REQUIRE(myriad_after(rt, 15 * MS, &c) == MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok && v >= t0 + 15 * MS);
  CHECK_ST(myriad_chan_try_send(c, &v), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  /* The handle may go before the timer fires. */
  REQUIRE(myriad_after(rt, 5 * MS, &c) == MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  /* From a foreign thread the zero runtime handle means the oldest runtime. */
  REQUIRE(myriad_after((myriad_runtime){0}, 1 * MS, &c) == MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(c, &v, &ok), MYRIAD_OK);
  CHECK(ok);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);

  /* after_func: runs in a task of the runtime. */
  myriad_timer t;
  CHECK_ST(myriad_after_func(rt, MS, NULL, NULL, &t), MYRIAD_EINVAL);
  CHECK_ST(myriad_after_func(rt, MS, func, NULL, NULL), MYRIAD_EINVAL);
  atomic_store(&g_func_runs, 0);
  atomic_store(&g_func_task, 0);
  REQUIRE(myriad_after_func(rt, 10 * MS, func, (void*)(intptr_t)1, &t) == MYRIAD_OK);
  myriad_chan none;
  CHECK_ST(myriad_timer_chan(t, &none), MYRIAD_OK);
  CHECK(none.bits == 0); /* no channel: the nil channel */
  for (int i = 0; i < 2000 && atomic_load(&g_func_runs) == 0; ++i) myriad_sleep_ns(MS);
  CHECK(atomic_load(&g_func_runs) == 1);
  CHECK(atomic_load(&g_func_task) != 0);
  /* Reset: runs once more. */
  bool active = true;
  CHECK_ST(myriad_timer_reset(t, 5 * MS, &active), MYRIAD_OK);
  CHECK(!active);
  for (int i = 0; i < 2000 && atomic_load(&g_func_runs) == 1; ++i) myriad_sleep_ns(MS);
  CHECK(atomic_load(&g_func_runs) == 2);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  /* Stopped, or destroyed, before it fires: never runs. */
  REQUIRE(myriad_after_func(rt, 20 * MS, func, (void*)(intptr_t)100, &t) == MYRIAD_OK);
  CHECK_ST(myriad_timer_stop(t, &active), MYRIAD_OK);
  CHECK(active);
  myriad_timer t2;
  REQUIRE(myriad_after_func(rt, 20 * MS, func, (void*)(intptr_t)100, &t2) == MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(t2), MYRIAD_OK);
  myriad_sleep_ns(60 * MS);
  CHECK(atomic_load(&g_func_runs) == 2);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
  myriad_runtime rt = make_runtime(1);
  myriad_runtime dead_rt = make_runtime(1);
  CHECK_ST(myriad_runtime_destroy(dead_rt), MYRIAD_OK);
  myriad_timer t;
  myriad_ticker k;
  myriad_chan c;
  bool b = false;
  CHECK_ST(myriad_timer_create(rt, MS, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_timer_create(dead_rt, MS, &t), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_timer_create((myriad_runtime){77}, MS, &t), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_ticker_create(dead_rt, MS, &k), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_after(dead_rt, MS, &c), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_after_func(dead_rt, MS, func, NULL, &t), MYRIAD_EBADHANDLE);

  REQUIRE(myriad_timer_create(rt, 1000 * MS, &t) == MYRIAD_OK);
  REQUIRE(myriad_ticker_create(rt, 1000 * MS, &k) == MYRIAD_OK);
  CHECK_ST(myriad_timer_chan(t, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_ticker_chan(k, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  CHECK_ST(myriad_ticker_destroy(k), MYRIAD_OK);
  /* Destroyed and forged handles, every function. */
  myriad_timer bad_t[] = {t, {0}, {1}, {t.bits + 1}, {UINT64_MAX}};
  myriad_ticker bad_k[] = {k, {0}, {1}, {k.bits + 1}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof bad_t / sizeof bad_t[0]; ++i) {
    CHECK_ST(myriad_timer_chan(bad_t[i], &c), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_timer_stop(bad_t[i], &b), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_timer_reset(bad_t[i], MS, &b), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_timer_destroy(bad_t[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_ticker_chan(bad_k[i], &c), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_ticker_stop(bad_k[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_ticker_reset(bad_k[i], MS), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_ticker_destroy(bad_k[i]), MYRIAD_EBADHANDLE);
  }

  /* The timer's runtime destroyed: stop and destroy still work, re-arming is refused. */
  REQUIRE(myriad_timer_create(rt, 1000 * MS, &t) == MYRIAD_OK);
  REQUIRE(myriad_ticker_create(rt, 1000 * MS, &k) == MYRIAD_OK);
  myriad_timer f;
  REQUIRE(myriad_after_func(rt, 1000 * MS, func, NULL, &f) == MYRIAD_OK);
  CHECK_ST(myriad_timer_chan(t, &c), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK_ST(myriad_timer_reset(t, MS, &b), MYRIAD_ECLOSED);
  CHECK_ST(myriad_timer_reset(f, MS, &b), MYRIAD_ECLOSED);
  CHECK_ST(myriad_ticker_reset(k, MS), MYRIAD_ECLOSED);
  CHECK_ST(myriad_timer_stop(t, &b), MYRIAD_OK);
  CHECK(!b); /* it can no longer fire */
  CHECK_ST(myriad_ticker_stop(k), MYRIAD_OK);
  int64_t v = 0;
  bool ok = true;
  CHECK_ST(myriad_chan_try_recv(c, &v, &ok), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_chan_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(t), MYRIAD_OK);
  CHECK_ST(myriad_timer_destroy(f), MYRIAD_OK);
  CHECK_ST(myriad_ticker_destroy(k), MYRIAD_OK);
}

int main(void) {
  test_no_runtime();
  test_clock_and_sleep();
  test_timer_fires();
  test_timer_stop_reset();
  test_many_timers();
  test_ticker();
  test_after();
  test_errors();
  return CHECK_SUMMARY();
}
