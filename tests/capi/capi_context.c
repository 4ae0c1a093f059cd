/* Contexts through the C ABI: background, cancellation down the tree (never up), causes,
 * deadlines and timeouts (the earlier one wins), values with shadowing, done channels in a
 * select, channel operations and sleeps that give up (ECANCELED, ETIMEDOUT; a context already
 * cancelled wins over a ready channel), many tasks released by one cancel, destroying a
 * context while another thread is blocked on it, and the errors. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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

static myriad_status err_of(myriad_context ctx) {
  myriad_status e = (myriad_status)-1;
  CHECK_ST(myriad_context_err(ctx, &e), MYRIAD_OK);
  return e;
}

static myriad_status cause_of(myriad_context ctx) {
  myriad_status e = (myriad_status)-1;
  CHECK_ST(myriad_context_cause(ctx, &e), MYRIAD_OK);
  return e;
}

/* True if ctx's done channel is closed now (a receive is ready with !ok). */
static bool done_closed(myriad_context ctx) {
  myriad_chan d;
  if (myriad_context_done(ctx, &d) != MYRIAD_OK) return false;
  bool ok = true;
  myriad_status st = myriad_chan_try_recv(d, NULL, &ok);
  myriad_chan_destroy(d);
  return st == MYRIAD_OK && !ok;
}

/* ---- background, cancel, causes ------------------------------------------------------------ */

static void test_tree(void) {
  myriad_context bg, a, b, v, c;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  CHECK(err_of(bg) == MYRIAD_OK);
  myriad_chan d;
  CHECK_ST(myriad_context_done(bg, &d), MYRIAD_OK);
  CHECK(d.bits == 0); /* never cancelled: the nil channel */
  CHECK_ST(myriad_chan_destroy(d), MYRIAD_OK);
  int64_t dl = 0;
  bool has = true;
  CHECK_ST(myriad_context_deadline(bg, &dl, &has), MYRIAD_OK);
  CHECK(!has && dl == INT64_MAX);
  CHECK_ST(myriad_context_cancel(bg, MYRIAD_OK), MYRIAD_EINVAL); /* nothing to cancel it with */

  /* bg <- a <- b <- v(value) <- c */
  REQUIRE(myriad_context_with_cancel(bg, &a) == MYRIAD_OK);
  REQUIRE(myriad_context_with_cancel(a, &b) == MYRIAD_OK);
  static const char key = 'k';
  REQUIRE(myriad_context_with_value(b, &key, (void*)"payload", &v) == MYRIAD_OK);
  REQUIRE(myriad_context_with_cancel(v, &c) == MYRIAD_OK);
  CHECK(err_of(a) == MYRIAD_OK && err_of(b) == MYRIAD_OK && err_of(c) == MYRIAD_OK);
  CHECK(cause_of(b) == MYRIAD_OK);
  CHECK(!done_closed(b) && !done_closed(c));
  CHECK_ST(myriad_context_cancel(v, MYRIAD_OK), MYRIAD_EINVAL); /* a value context has none */

  /* Cancel b with a cause: b, v and c are cancelled, a is not. */
  CHECK_ST(myriad_context_cancel(b, MYRIAD_ECHANCLOSED), MYRIAD_OK);
  CHECK(err_of(b) == MYRIAD_ECANCELED && err_of(v) == MYRIAD_ECANCELED &&
        err_of(c) == MYRIAD_ECANCELED);
  CHECK(cause_of(b) == MYRIAD_ECHANCLOSED && cause_of(c) == MYRIAD_ECHANCLOSED);
  CHECK(done_closed(b) && done_closed(v) && done_closed(c));
  CHECK(err_of(a) == MYRIAD_OK && !done_closed(a));
  /* A second cancel is a no-op: the first cause stays. */
  CHECK_ST(myriad_context_cancel(b, MYRIAD_ETIMEDOUT), MYRIAD_OK);
  CHECK(cause_of(b) == MYRIAD_ECHANCLOSED);
  /* Cancelling c itself now changes nothing either. */
  CHECK_ST(myriad_context_cancel(c, MYRIAD_OK), MYRIAD_OK);
  CHECK(cause_of(c) == MYRIAD_ECHANCLOSED);
  /* A child of a cancelled context is born cancelled, with its parent's cause. */
  myriad_context late;
  REQUIRE(myriad_context_with_cancel(c, &late) == MYRIAD_OK);
  CHECK(err_of(late) == MYRIAD_ECANCELED && cause_of(late) == MYRIAD_ECHANCLOSED);
  CHECK(done_closed(late));
  /* Without a cause: the cause is the err. */
  CHECK_ST(myriad_context_cancel(a, MYRIAD_OK), MYRIAD_OK);
  CHECK(err_of(a) == MYRIAD_ECANCELED && cause_of(a) == MYRIAD_ECANCELED);
  /* A done channel is receive-only. */
  CHECK_ST(myriad_context_done(a, &d), MYRIAD_OK);
  CHECK(d.bits != 0);
  CHECK_ST(myriad_chan_close(d), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_send(d, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_destroy(d), MYRIAD_OK);

  /* Values: the nearest wins; missing keys give NULL; cancellable children see them. */
  static const char key2 = 'q';
  myriad_context v2, c2;
  REQUIRE(myriad_context_with_value(c, &key, (void*)"shadow", &v2) == MYRIAD_OK);
  REQUIRE(myriad_context_with_value(v2, &key2, NULL, &c2) == MYRIAD_OK);
  void* got = (void*)1;
  CHECK_ST(myriad_context_value(c, &key, &got), MYRIAD_OK);
  CHECK(got && strcmp(got, "payload") == 0);
  CHECK_ST(myriad_context_value(c2, &key, &got), MYRIAD_OK);
  CHECK(got && strcmp(got, "shadow") == 0);
  CHECK_ST(myriad_context_value(c2, &key2, &got), MYRIAD_OK);
  CHECK(got == NULL); /* stored NULL: looks absent, as in Go */
  CHECK_ST(myriad_context_value(b, &key, &got), MYRIAD_OK);
  CHECK(got == NULL); /* above the value: absent */
  CHECK_ST(myriad_context_value(bg, &key, &got), MYRIAD_OK);
  CHECK(got == NULL);

  /* Handles are independent of the tree: destroy in any order. */
  CHECK_ST(myriad_context_destroy(a), MYRIAD_OK);
  CHECK(err_of(b) == MYRIAD_ECANCELED); /* b lives on */
  myriad_context all[] = {bg, b, v, c, late, v2, c2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    CHECK_ST(myriad_context_destroy(all[i]), MYRIAD_OK);
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static void test_deadlines(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_context bg, t, child, past, none;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  int64_t t0 = myriad_now_ns();
  REQUIRE(myriad_context_with_timeout_ns(rt, bg, 30 * MS, &t) == MYRIAD_OK);
  int64_t dl = 0;
  bool has = false;
  CHECK_ST(myriad_context_deadline(t, &dl, &has), MYRIAD_OK);
  CHECK(has && dl >= t0 + 30 * MS && dl <= myriad_now_ns() + 30 * MS);
  CHECK_ST(myriad_context_deadline(t, &dl, NULL), MYRIAD_OK);
  /* A child asking for a later deadline keeps the parent's. */
  REQUIRE(myriad_context_with_deadline_ns(rt, t, dl + 1000 * MS, &child) == MYRIAD_OK);
  int64_t cdl = 0;
  CHECK_ST(myriad_context_deadline(child, &cdl, &has), MYRIAD_OK);
  CHECK(has && cdl == dl);
  CHECK(err_of(t) == MYRIAD_OK);
  /* Wait on the done channel: closed when the deadline passes, err ETIMEDOUT. */
  myriad_chan d;
  REQUIRE(myriad_context_done(child, &d) == MYRIAD_OK);
  bool ok = true;
  CHECK_ST(myriad_chan_recv(d, NULL, &ok), MYRIAD_OK);
  CHECK(!ok);
  CHECK(myriad_now_ns() >= dl);
  CHECK(err_of(t) == MYRIAD_ETIMEDOUT && err_of(child) == MYRIAD_ETIMEDOUT);
  CHECK(cause_of(child) == MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_chan_destroy(d), MYRIAD_OK);
  /* A deadline already passed: born timed out. INT64_MAX: no deadline. */
  REQUIRE(myriad_context_with_deadline_ns(rt, bg, myriad_now_ns() - 1, &past) == MYRIAD_OK);
  CHECK(err_of(past) == MYRIAD_ETIMEDOUT && done_closed(past));
  REQUIRE(myriad_context_with_deadline_ns(rt, bg, INT64_MAX, &none) == MYRIAD_OK);
  CHECK_ST(myriad_context_deadline(none, &dl, &has), MYRIAD_OK);
  CHECK(!has);
  CHECK_ST(myriad_context_cancel(none, MYRIAD_OK), MYRIAD_OK);
  CHECK(err_of(none) == MYRIAD_ECANCELED);
  /* Cancelled before its deadline: ECANCELED, and the deadline no longer matters. */
  myriad_context early;
  REQUIRE(myriad_context_with_timeout_ns((myriad_runtime){0}, bg, 20 * MS, &early) == MYRIAD_OK);
  CHECK_ST(myriad_context_cancel(early, MYRIAD_OK), MYRIAD_OK);
  myriad_sleep_ns(40 * MS);
  CHECK(err_of(early) == MYRIAD_ECANCELED);
  myriad_context all[] = {bg, t, child, past, none, early};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    CHECK_ST(myriad_context_destroy(all[i]), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- channel operations and sleeps with a context ------------------------------------------ */

static myriad_context g_to_cancel;

static void cancel_later(void* arg) {
  myriad_sleep_ns((int64_t)(intptr_t)arg);
  myriad_context_cancel(g_to_cancel, MYRIAD_OK);
}

static void test_ops(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_context bg, live, dead, timed;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  REQUIRE(myriad_context_with_cancel(bg, &live) == MYRIAD_OK);
  REQUIRE(myriad_context_with_cancel(bg, &dead) == MYRIAD_OK);
  CHECK_ST(myriad_context_cancel(dead, MYRIAD_OK), MYRIAD_OK);
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(int), 1, NULL, &ch) == MYRIAD_OK);
  int v = 7;
  bool ok = false;
  /* Ready and live: done at once; with background: a plain operation. */
  CHECK_ST(myriad_chan_send_ctx(ch, &v, live), MYRIAD_OK);
  v = 0;
  CHECK_ST(myriad_chan_recv_ctx(ch, &v, &ok, bg), MYRIAD_OK);
  CHECK(ok && v == 7);
  /* Cancelled on entry wins over a ready channel: nothing is taken. */
  v = 8;
  CHECK_ST(myriad_chan_send(ch, &v), MYRIAD_OK);
  v = 0;
  CHECK_ST(myriad_chan_recv_ctx(ch, &v, &ok, dead), MYRIAD_ECANCELED);
  CHECK(!ok && v == 0);
  CHECK_ST(myriad_chan_send_ctx(ch, &v, dead), MYRIAD_ECANCELED);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 1);
  /* Full: a send waits until the context is cancelled by a task. */
  g_to_cancel = live;
  int64_t t0 = myriad_now_ns(); /* before the spawn: the canceller's 10 ms may start at once */
  CHECK_ST(myriad_spawn(rt, cancel_later, (void*)(intptr_t)(10 * MS), NULL, NULL), MYRIAD_OK);
  v = 9;
  CHECK_ST(myriad_chan_send_ctx(ch, &v, live), MYRIAD_ECANCELED);
  CHECK(myriad_now_ns() - t0 >= 10 * MS);
  /* Empty: a receive times out with a timeout context. */
  CHECK_ST(myriad_chan_recv(ch, &v, &ok), MYRIAD_OK);
  CHECK(ok && v == 8);
  REQUIRE(myriad_context_with_timeout_ns(rt, bg, 20 * MS, &timed) == MYRIAD_OK);
  v = 3;
  CHECK_ST(myriad_chan_recv_ctx(ch, &v, &ok, timed), MYRIAD_ETIMEDOUT);
  CHECK(!ok && v == 3);
  /* The nil channel: only the context ends the wait. */
  CHECK_ST(myriad_chan_recv_ctx((myriad_chan){0}, &v, &ok, timed), MYRIAD_ETIMEDOUT);
  /* Closed: a receive reports !ok with the zero value, a send ECHANCLOSED. */
  myriad_context live2;
  REQUIRE(myriad_context_with_cancel(bg, &live2) == MYRIAD_OK);
  CHECK_ST(myriad_chan_close(ch), MYRIAD_OK);
  v = 5;
  ok = true;
  CHECK_ST(myriad_chan_recv_ctx(ch, &v, &ok, live2), MYRIAD_OK);
  CHECK(!ok && v == 0);
  CHECK_ST(myriad_chan_send_ctx(ch, &v, live2), MYRIAD_ECHANCLOSED);
  CHECK_ST(myriad_chan_recv_ctx(ch, NULL, &ok, live2), MYRIAD_EINVAL);

  /* Sleeps. */
  t0 = myriad_now_ns();
  CHECK_ST(myriad_sleep_ns_ctx(15 * MS, live2), MYRIAD_OK);
  CHECK(myriad_now_ns() - t0 >= 15 * MS);
  t0 = myriad_now_ns();
  CHECK_ST(myriad_sleep_ns_ctx(10000 * MS, dead), MYRIAD_ECANCELED); /* at once */
  CHECK_ST(myriad_sleep_ns_ctx(10000 * MS, timed), MYRIAD_ETIMEDOUT);
  CHECK(myriad_now_ns() - t0 < 5000 * MS);
  g_to_cancel = live2;
  t0 = myriad_now_ns(); /* before the spawn: the canceller's 10 ms may start at once */
  CHECK_ST(myriad_spawn(rt, cancel_later, (void*)(intptr_t)(10 * MS), NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_sleep_ns_ctx(10000 * MS, live2), MYRIAD_ECANCELED);
  CHECK(myriad_now_ns() - t0 >= 10 * MS && myriad_now_ns() - t0 < 5000 * MS);
  CHECK_ST(myriad_sleep_ns_ctx(0, bg), MYRIAD_OK);

  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  myriad_context all[] = {bg, live, dead, timed, live2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    CHECK_ST(myriad_context_destroy(all[i]), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- many waiters released by one cancel; select on done ----------------------------------- */

enum { kWaiters = 200 };
static myriad_context g_ctx;
static myriad_chan g_never;
static atomic_int g_released;

static void waiter(void* arg) {
  int v = 0;
  if ((intptr_t)arg % 2) {
    if (myriad_chan_recv_ctx(g_never, &v, NULL, g_ctx) == MYRIAD_ECANCELED)
      atomic_fetch_add(&g_released, 1);
    return;
  }
  /* The other half select on the done channel next to a channel that never delivers. */
  myriad_chan d;
  if (myriad_context_done(g_ctx, &d) != MYRIAD_OK) return;
  myriad_select_case cases[2] = {{g_never, MYRIAD_RECV, &v}, {d, MYRIAD_RECV, NULL}};
  int index = -1;
  bool ok = true;
  if (myriad_select(cases, 2, 1, &index, &ok) == MYRIAD_OK && index == 1 && !ok) {
    myriad_status e = MYRIAD_OK;
    myriad_context_err(g_ctx, &e);
    if (e == MYRIAD_ECANCELED) atomic_fetch_add(&g_released, 1);
  }
  myriad_chan_destroy(d);
}

static void* waiter_thread(void* arg) {
  waiter(arg);
  return NULL;
}

static void test_many_waiters(void) {
  myriad_runtime rt = make_runtime(4);
  myriad_context bg;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  REQUIRE(myriad_context_with_cancel(bg, &g_ctx) == MYRIAD_OK);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_never) == MYRIAD_OK);
  atomic_store(&g_released, 0);
  myriad_task h[kWaiters];
  for (int i = 0; i < kWaiters; ++i)
    CHECK_ST(myriad_spawn(rt, waiter, (void*)(intptr_t)i, NULL, &h[i]), MYRIAD_OK);
  pthread_t t[2];
  for (int i = 0; i < 2; ++i)
    REQUIRE(pthread_create(&t[i], NULL, waiter_thread, (void*)(intptr_t)i) == 0);
  myriad_sleep_ns(20 * MS);
  CHECK(atomic_load(&g_released) == 0);
  CHECK_ST(myriad_context_cancel(g_ctx, MYRIAD_OK), MYRIAD_OK);
  for (int i = 0; i < kWaiters; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
  CHECK(atomic_load(&g_released) == kWaiters + 2);
  CHECK_ST(myriad_chan_destroy(g_never), MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(g_ctx), MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(bg), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- destroy while another thread is blocked on the context -------------------------------- */

typedef struct blocked {
  myriad_chan ch;
  myriad_context ctx;
  atomic_int started;
  myriad_status st;
} blocked;

static void* blocked_receiver(void* arg) {
  blocked* b = arg;
  int v = 0;
  atomic_store(&b->started, 1);
  b->st = myriad_chan_recv_ctx(b->ch, &v, NULL, b->ctx);
  return NULL;
}

static void test_destroy_while_blocked(void) {
  myriad_runtime rt = make_runtime(2);
  blocked b;
  memset(&b, 0, sizeof b);
  myriad_context bg;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  REQUIRE(myriad_context_with_timeout_ns(rt, bg, 60 * MS, &b.ctx) == MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(bg), MYRIAD_OK); /* the child keeps its parent */
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &b.ch) == MYRIAD_OK);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, blocked_receiver, &b) == 0);
  while (!atomic_load(&b.started)) myriad_sleep_ns(MS);
  myriad_sleep_ns(10 * MS);
  CHECK_ST(myriad_context_destroy(b.ctx), MYRIAD_OK);
  myriad_status e;
  CHECK_ST(myriad_context_err(b.ctx, &e), MYRIAD_EBADHANDLE);
  pthread_join(t, NULL);
  CHECK_ST(b.st, MYRIAD_ETIMEDOUT); /* the blocked call completed normally */
  CHECK_ST(myriad_chan_destroy(b.ch), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
  myriad_runtime rt = make_runtime(1);
  myriad_context bg, c, dead;
  static const int key = 1;
  CHECK_ST(myriad_context_background(NULL), MYRIAD_EINVAL);
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  CHECK_ST(myriad_context_with_cancel(bg, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_with_timeout_ns(rt, bg, MS, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_with_deadline_ns(rt, bg, 0, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_with_value(bg, NULL, NULL, &c), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_with_value(bg, &key, NULL, NULL), MYRIAD_EINVAL);
  REQUIRE(myriad_context_with_cancel(bg, &c) == MYRIAD_OK);
  CHECK_ST(myriad_context_cancel(c, (myriad_status)-1), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_cancel(c, (myriad_status)(MYRIAD_ENOTSUP + 1)), MYRIAD_EINVAL);
  CHECK(err_of(c) == MYRIAD_OK); /* refused: nothing happened */
  CHECK_ST(myriad_context_err(c, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_cause(c, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_done(c, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_deadline(c, NULL, NULL), MYRIAD_EINVAL);
  void* val;
  CHECK_ST(myriad_context_value(c, &key, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_context_value(c, NULL, &val), MYRIAD_EINVAL);
  /* A destroyed runtime for the deadline timer. */
  myriad_runtime dead_rt = make_runtime(1);
  CHECK_ST(myriad_runtime_destroy(dead_rt), MYRIAD_OK);
  CHECK_ST(myriad_context_with_timeout_ns(dead_rt, bg, MS, &dead), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_context_with_deadline_ns(dead_rt, bg, myriad_now_ns() + MS, &dead),
           MYRIAD_EBADHANDLE);

  REQUIRE(myriad_context_with_cancel(bg, &dead) == MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(dead), MYRIAD_OK);
  myriad_context bad[] = {dead, {0}, {1}, {c.bits + 1}, {UINT64_MAX}};
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(int), 1, NULL, &ch) == MYRIAD_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    myriad_context out;
    myriad_status e;
    myriad_chan d;
    int64_t dl;
    int v = 1;
    CHECK_ST(myriad_context_with_cancel(bad[i], &out), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_with_timeout_ns(rt, bad[i], MS, &out), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_with_deadline_ns(rt, bad[i], 0, &out), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_with_value(bad[i], &key, NULL, &out), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_destroy(bad[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_cancel(bad[i], MYRIAD_OK), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_err(bad[i], &e), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_cause(bad[i], &e), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_done(bad[i], &d), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_deadline(bad[i], &dl, NULL), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_context_value(bad[i], &key, &val), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_chan_send_ctx(ch, &v, bad[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_chan_recv_ctx(ch, &v, NULL, bad[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_sleep_ns_ctx(MS, bad[i]), MYRIAD_EBADHANDLE);
  }
  /* A bad channel with a good context. */
  myriad_chan dead_ch;
  REQUIRE(myriad_chan_create(sizeof(int), 1, NULL, &dead_ch) == MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(dead_ch), MYRIAD_OK);
  int v = 0;
  CHECK_ST(myriad_chan_send_ctx(dead_ch, &v, c), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_recv_ctx(dead_ch, &v, NULL, c), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_send_ctx(ch, NULL, c), MYRIAD_EINVAL);
  size_t len = 9;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 0);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(c), MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(bg), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  test_tree();
  test_deadlines();
  test_ops();
  test_many_waiters();
  test_destroy_while_blocked();
  test_errors();
  return CHECK_SUMMARY();
}
