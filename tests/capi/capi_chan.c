/* Channels through the C ABI: values pass through unchanged and in FIFO order, close semantics
 * (drain, then ok == false with the element zeroed; ECHANCLOSED for send and double close),
 * the nil channel, zero-size elements, elem_dtor on elements left buffered, counts and sums
 * with several tasks and pthreads, deadlines, destroy while another thread is blocked on the
 * channel, and every error code of the channel functions. */
#define _POSIX_C_SOURCE 200809L /* pthreads, nanosleep under -std=c11 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "myriad.h"

static myriad_runtime make_runtime(uint32_t procs) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.report_abandoned = 0;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

typedef struct record {
  uint64_t id;
  double weight;
  char name[12];
} record;

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
  myriad_chan ch;
  CHECK_ST(myriad_chan_create(4, 1, NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_create(MYRIAD_CHAN_MAX_ELEM_SIZE + 1, 0, NULL, &ch), MYRIAD_EINVAL);
  CHECK(ch.bits == 0);
  CHECK_ST(myriad_chan_create(1024, ((size_t)1 << 40) / 1024 + 1, NULL, &ch), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_create(8, SIZE_MAX, NULL, &ch), MYRIAD_EINVAL);
  /* The limits themselves are fine (zero-size elements: any capacity, no buffer at all). */
  CHECK_ST(myriad_chan_create(MYRIAD_CHAN_MAX_ELEM_SIZE, 0, NULL, &ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_create(0, SIZE_MAX, NULL, &ch), MYRIAD_OK);
  size_t cap = 0;
  CHECK_ST(myriad_chan_cap(ch, &cap), MYRIAD_OK);
  CHECK(cap == SIZE_MAX);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);

  REQUIRE(myriad_chan_create(sizeof(int), 2, NULL, &ch) == MYRIAD_OK);
  int v = 7;
  bool ok = true;
  /* NULL element pointers with a non-zero element size; NULL out-pointers. */
  CHECK_ST(myriad_chan_send(ch, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_try_send(ch, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_recv(ch, NULL, &ok), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_try_recv(ch, NULL, &ok), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_send_deadline(ch, NULL, myriad_now_ns() + 1000000), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_recv_deadline(ch, NULL, &ok, myriad_now_ns() + 1000000), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_len(ch, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_chan_cap(ch, NULL), MYRIAD_EINVAL);
  size_t len = 99;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 0); /* the refused calls changed nothing */

  /* Destroyed: every function says EBADHANDLE, also after the slot is reused. */
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_send(ch, &v), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_try_send(ch, &v), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_recv(ch, &v, &ok), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_try_recv(ch, &v, &ok), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_send_deadline(ch, &v, myriad_now_ns() + 1000000), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_recv_deadline(ch, &v, &ok, myriad_now_ns() + 1000000), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_close(ch), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_cap(ch, &cap), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_EBADHANDLE);
  myriad_chan again;
  REQUIRE(myriad_chan_create(sizeof(int), 2, NULL, &again) == MYRIAD_OK);
  CHECK(again.bits != ch.bits);
  CHECK_ST(myriad_chan_send(ch, &v), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_chan_len(again, &len), MYRIAD_OK);
  CHECK(len == 0);
  /* Forged handles: never valid (not the nil channel, which is exactly zero). */
  myriad_chan forged[] = {{1}, {(uint64_t)1 << 32}, {again.bits + 1},
                          {again.bits ^ ((uint64_t)1 << 40)}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof forged / sizeof forged[0]; ++i) {
    CHECK_ST(myriad_chan_send(forged[i], &v), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_chan_try_recv(forged[i], &v, &ok), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_chan_close(forged[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_chan_destroy(forged[i]), MYRIAD_EBADHANDLE);
  }
  CHECK_ST(myriad_chan_destroy(again), MYRIAD_OK);
}

/* ---- buffered: FIFO, values intact, try_ operations, len/cap -------------------------------- */

static void test_buffered_fifo(void) {
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(record), 16, NULL, &ch) == MYRIAD_OK);
  size_t len = 0, cap = 0;
  CHECK_ST(myriad_chan_cap(ch, &cap), MYRIAD_OK);
  CHECK(cap == 16);
  for (int i = 0; i < 16; ++i) {
    record r;
    memset(&r, 0, sizeof r);
    r.id = 1000 + (uint64_t)i;
    r.weight = i * 0.5;
    snprintf(r.name, sizeof r.name, "rec-%d", i);
    CHECK_ST(i % 2 ? myriad_chan_send(ch, &r) : myriad_chan_try_send(ch, &r), MYRIAD_OK);
  }
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 16);
  record extra = {1, 1.0, "extra"};
  CHECK_ST(myriad_chan_try_send(ch, &extra), MYRIAD_EWOULDBLOCK);
  int in_order = 1;
  for (int i = 0; i < 16; ++i) {
    record r;
    bool ok = false;
    char want[12];
    snprintf(want, sizeof want, "rec-%d", i);
    CHECK_ST(i % 2 ? myriad_chan_recv(ch, &r, &ok) : myriad_chan_try_recv(ch, &r, &ok), MYRIAD_OK);
    if (!ok || r.id != 1000 + (uint64_t)i || r.weight != i * 0.5 || strcmp(r.name, want) != 0)
      in_order = 0;
  }
  CHECK(in_order);
  record r = {5, 5.0, "untouched"};
  bool ok = true;
  CHECK_ST(myriad_chan_try_recv(ch, &r, &ok), MYRIAD_EWOULDBLOCK);
  CHECK(!ok);
  CHECK(r.id == 5 && strcmp(r.name, "untouched") == 0); /* a failed receive leaves it alone */
  /* ok may be NULL. */
  CHECK_ST(myriad_chan_send(ch, &extra), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(ch, &r, NULL), MYRIAD_OK);
  CHECK(r.id == 1 && strcmp(r.name, "extra") == 0);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
}

/* ---- close --------------------------------------------------------------------------------- */

static void test_close(void) {
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(record), 4, NULL, &ch) == MYRIAD_OK);
  record a = {1, 1.5, "one"}, b = {2, 2.5, "two"};
  CHECK_ST(myriad_chan_send(ch, &a), MYRIAD_OK);
  CHECK_ST(myriad_chan_send(ch, &b), MYRIAD_OK);
  CHECK_ST(myriad_chan_close(ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_close(ch), MYRIAD_ECHANCLOSED);
  CHECK_ST(myriad_chan_send(ch, &a), MYRIAD_ECHANCLOSED);
  CHECK_ST(myriad_chan_try_send(ch, &a), MYRIAD_ECHANCLOSED);
  CHECK_ST(myriad_chan_send_deadline(ch, &a, myriad_now_ns() + 1000000000), MYRIAD_ECHANCLOSED);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 2);
  /* The buffer drains first... */
  record r;
  bool ok = false;
  CHECK_ST(myriad_chan_recv(ch, &r, &ok), MYRIAD_OK);
  CHECK(ok && r.id == 1 && strcmp(r.name, "one") == 0);
  CHECK_ST(myriad_chan_try_recv(ch, &r, &ok), MYRIAD_OK);
  CHECK(ok && r.id == 2);
  /* ...then every receive says !ok at once, with Go's zero value in the element. */
  record zero;
  memset(&zero, 0, sizeof zero);
  for (int i = 0; i < 3; ++i) {
    memset(&r, 0xab, sizeof r);
    ok = true;
    CHECK_ST(myriad_chan_recv(ch, &r, &ok), MYRIAD_OK);
    CHECK(!ok && memcmp(&r, &zero, sizeof r) == 0);
    memset(&r, 0xab, sizeof r);
    ok = true;
    CHECK_ST(myriad_chan_try_recv(ch, &r, &ok), MYRIAD_OK);
    CHECK(!ok && memcmp(&r, &zero, sizeof r) == 0);
    memset(&r, 0xab, sizeof r);
    ok = true;
    CHECK_ST(myriad_chan_recv_deadline(ch, &r, &ok, myriad_now_ns() + 1000000000), MYRIAD_OK);
    CHECK(!ok && memcmp(&r, &zero, sizeof r) == 0);
  }
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
}

/* Blocked receivers get !ok and blocked senders ECHANCLOSED when the channel is closed. */
static myriad_chan g_block_ch;
static atomic_int g_closed_recv, g_closed_send, g_blocked_started;

static void blocked_receiver(void* arg) {
  (void)arg;
  int v = 42;
  bool ok = true;
  atomic_fetch_add(&g_blocked_started, 1);
  if (myriad_chan_recv(g_block_ch, &v, &ok) == MYRIAD_OK && !ok && v == 0)
    atomic_fetch_add(&g_closed_recv, 1);
}

static void blocked_sender(void* arg) {
  (void)arg;
  int v = 1;
  atomic_fetch_add(&g_blocked_started, 1);
  if (myriad_chan_send(g_block_ch, &v) == MYRIAD_ECHANCLOSED) atomic_fetch_add(&g_closed_send, 1);
}

static void test_close_wakes_blocked(void) {
  myriad_runtime rt = make_runtime(2);
  enum { kEach = 50 };
  /* Receivers on an empty unbuffered channel. */
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_block_ch) == MYRIAD_OK);
  atomic_store(&g_blocked_started, 0);
  myriad_task h[kEach];
  for (int i = 0; i < kEach; ++i)
    CHECK_ST(myriad_spawn(rt, blocked_receiver, NULL, NULL, &h[i]), MYRIAD_OK);
  while (atomic_load(&g_blocked_started) < kEach) myriad_sleep_ns(1000000);
  myriad_sleep_ns(20000000); /* let them park */
  CHECK_ST(myriad_chan_close(g_block_ch), MYRIAD_OK);
  for (int i = 0; i < kEach; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  CHECK(atomic_load(&g_closed_recv) == kEach);
  CHECK_ST(myriad_chan_destroy(g_block_ch), MYRIAD_OK);

  /* Senders on a full buffered channel. */
  REQUIRE(myriad_chan_create(sizeof(int), 1, NULL, &g_block_ch) == MYRIAD_OK);
  int one = 1;
  CHECK_ST(myriad_chan_send(g_block_ch, &one), MYRIAD_OK);
  atomic_store(&g_blocked_started, 0);
  for (int i = 0; i < kEach; ++i)
    CHECK_ST(myriad_spawn(rt, blocked_sender, NULL, NULL, &h[i]), MYRIAD_OK);
  while (atomic_load(&g_blocked_started) < kEach) myriad_sleep_ns(1000000);
  myriad_sleep_ns(20000000);
  CHECK_ST(myriad_chan_close(g_block_ch), MYRIAD_OK);
  for (int i = 0; i < kEach; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  CHECK(atomic_load(&g_closed_send) == kEach);
  /* The value buffered before the close is still there. */
  int v = 0;
  bool ok = false;
  CHECK_ST(myriad_chan_recv(g_block_ch, &v, &ok), MYRIAD_OK);
  CHECK(ok && v == 1);
  CHECK_ST(myriad_chan_destroy(g_block_ch), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- the nil channel ----------------------------------------------------------------------- */

static atomic_int g_nil_parked;

static void nil_receiver(void* arg) {
  (void)arg;
  myriad_chan nil = {0};
  int v = 0;
  atomic_store(&g_nil_parked, 1);
  myriad_chan_recv(nil, &v, NULL); /* blocks forever: abandoned when the runtime goes */
  atomic_store(&g_nil_parked, 2);   /* never reached */
}

static void test_nil(void) {
  myriad_chan nil = {0};
  int v = 5;
  bool ok = true;
  CHECK_ST(myriad_chan_try_send(nil, &v), MYRIAD_EWOULDBLOCK);
  CHECK_ST(myriad_chan_try_recv(nil, &v, &ok), MYRIAD_EWOULDBLOCK);
  CHECK(!ok && v == 5);
  CHECK_ST(myriad_chan_close(nil), MYRIAD_ENILCHAN);
  size_t len = 9, cap = 9;
  CHECK_ST(myriad_chan_len(nil, &len), MYRIAD_OK);
  CHECK_ST(myriad_chan_cap(nil, &cap), MYRIAD_OK);
  CHECK(len == 0 && cap == 0);
  CHECK_ST(myriad_chan_destroy(nil), MYRIAD_OK); /* a no-op */

  myriad_runtime rt = make_runtime(2);
  /* With a deadline, only the deadline ends the wait. */
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_chan_recv_deadline(nil, &v, &ok, t0 + 20000000), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_chan_send_deadline(nil, &v, myriad_now_ns() + 20000000), MYRIAD_ETIMEDOUT);
  CHECK(myriad_now_ns() - t0 >= 40000000);
  /* A task blocked on it stays parked, waiting on "nil chan". */
  atomic_store(&g_nil_parked, 0);
  CHECK_ST(myriad_spawn(rt, nil_receiver, NULL, NULL, NULL), MYRIAD_OK);
  while (atomic_load(&g_nil_parked) == 0) myriad_sleep_ns(1000000);
  int found = 0;
  for (int tries = 0; tries < 500 && !found; ++tries) {
    myriad_task_info info[4];
    info[0].size = sizeof(myriad_task_info);
    size_t count = 0;
    CHECK_ST(myriad_list_tasks(rt, info, 4, &count), MYRIAD_OK);
    for (size_t i = 0; i < count && i < 4; ++i)
      if (info[i].state == MYRIAD_TASK_WAITING && info[i].wait_reason == MYRIAD_WAIT_NIL_CHAN)
        found = 1;
    if (!found) myriad_sleep_ns(1000000);
  }
  CHECK(found);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK(atomic_load(&g_nil_parked) == 1);
}

/* ---- zero-size elements -------------------------------------------------------------------- */

static myriad_chan g_signal;
static atomic_int g_signals_got;

static void signal_receiver(void* arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; ++i) {
    bool ok = false;
    if (myriad_chan_recv(g_signal, NULL, &ok) == MYRIAD_OK && ok)
      atomic_fetch_add(&g_signals_got, 1);
  }
}

static void test_zero_size(void) {
  myriad_chan ch;
  REQUIRE(myriad_chan_create(0, 3, NULL, &ch) == MYRIAD_OK);
  for (int i = 0; i < 3; ++i) CHECK_ST(myriad_chan_send(ch, NULL), MYRIAD_OK);
  CHECK_ST(myriad_chan_try_send(ch, NULL), MYRIAD_EWOULDBLOCK);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 3);
  char dummy = 'x';
  bool ok = false;
  CHECK_ST(myriad_chan_recv(ch, NULL, &ok), MYRIAD_OK);
  CHECK(ok);
  CHECK_ST(myriad_chan_try_recv(ch, &dummy, &ok), MYRIAD_OK); /* a pointer is fine too */
  CHECK(ok && dummy == 'x');                                  /* and never written */
  CHECK_ST(myriad_chan_close(ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(ch, NULL, &ok), MYRIAD_OK);
  CHECK(ok);
  CHECK_ST(myriad_chan_recv(ch, &dummy, &ok), MYRIAD_OK);
  CHECK(!ok && dummy == 'x'); /* zeroing a zero-size element writes nothing */
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);

  /* Unbuffered zero-size signals from this thread to a task. */
  myriad_runtime rt = make_runtime(2);
  REQUIRE(myriad_chan_create(0, 0, NULL, &g_signal) == MYRIAD_OK);
  atomic_store(&g_signals_got, 0);
  myriad_task h;
  CHECK_ST(myriad_spawn(rt, signal_receiver, (void*)(intptr_t)1000, NULL, &h), MYRIAD_OK);
  for (int i = 0; i < 1000; ++i) CHECK_ST(myriad_chan_send(g_signal, NULL), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(atomic_load(&g_signals_got) == 1000);
  CHECK_ST(myriad_chan_destroy(g_signal), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- elem_dtor ----------------------------------------------------------------------------- */

static atomic_int g_dtor_calls;
static atomic_long g_dtor_sum;

/* Elements are heap pointers: the destructor frees what a buffered element owns. */
static void free_boxed(void* elem) {
  long* box = *(long**)elem;
  atomic_fetch_add(&g_dtor_calls, 1);
  atomic_fetch_add(&g_dtor_sum, *box);
  free(box);
}

static long* box_of(long v) {
  long* p = malloc(sizeof *p);
  REQUIRE(p != NULL);
  *p = v;
  return p;
}

static void test_elem_dtor(void) {
  atomic_store(&g_dtor_calls, 0);
  atomic_store(&g_dtor_sum, 0);
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(long*), 8, free_boxed, &ch) == MYRIAD_OK);
  for (long i = 1; i <= 5; ++i) {
    long* p = box_of(i);
    CHECK_ST(myriad_chan_send(ch, &p), MYRIAD_OK);
  }
  /* Received elements are the receiver's: the destructor never sees them. */
  for (int i = 0; i < 2; ++i) {
    long* p = NULL;
    bool ok = false;
    CHECK_ST(myriad_chan_recv(ch, &p, &ok), MYRIAD_OK);
    CHECK(ok && p && *p == i + 1);
    free(p);
  }
  /* A failed send leaves the element with the caller. */
  CHECK_ST(myriad_chan_close(ch), MYRIAD_OK);
  long* rejected = box_of(100);
  CHECK_ST(myriad_chan_send(ch, &rejected), MYRIAD_ECHANCLOSED);
  free(rejected);
  CHECK(atomic_load(&g_dtor_calls) == 0);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK(atomic_load(&g_dtor_calls) == 3);
  CHECK(atomic_load(&g_dtor_sum) == 3 + 4 + 5);

  /* Wrapping around the ring buffer: the destructor sees exactly the ones left. */
  atomic_store(&g_dtor_calls, 0);
  atomic_store(&g_dtor_sum, 0);
  REQUIRE(myriad_chan_create(sizeof(long*), 3, free_boxed, &ch) == MYRIAD_OK);
  for (long i = 1; i <= 10; ++i) {
    long* p = box_of(i);
    CHECK_ST(myriad_chan_send(ch, &p), MYRIAD_OK);
    if (i <= 8) {
      long* q = NULL;
      CHECK_ST(myriad_chan_recv(ch, &q, NULL), MYRIAD_OK);
      free(q);
    }
  }
  const long expect_sum = 9 + 10;
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK(atomic_load(&g_dtor_calls) == 2);
  CHECK(atomic_load(&g_dtor_sum) == expect_sum);
}

/* Zero-size elements with a destructor: called once per element left. */
static atomic_int g_unit_dtor_calls;
static void count_unit(void* elem) {
  (void)elem;
  atomic_fetch_add(&g_unit_dtor_calls, 1);
}

static void test_elem_dtor_zero_size(void) {
  myriad_chan ch;
  atomic_store(&g_unit_dtor_calls, 0);
  REQUIRE(myriad_chan_create(0, 5, count_unit, &ch) == MYRIAD_OK);
  for (int i = 0; i < 4; ++i) CHECK_ST(myriad_chan_send(ch, NULL), MYRIAD_OK);
  CHECK_ST(myriad_chan_recv(ch, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK(atomic_load(&g_unit_dtor_calls) == 3);
}

/* ---- many producers and consumers: tasks and pthreads -------------------------------------- */

enum { kProducers = 6, kPerProducer = 5000, kTaskConsumers = 3, kThreadConsumers = 3 };

static myriad_chan g_work;
static myriad_wait_group g_producers_done;
static atomic_llong g_consumed_sum, g_consumed_count;

typedef struct item {
  int32_t producer;
  int32_t seq;
  int64_t payload;
} item;

static void produce(int p) {
  for (int i = 0; i < kPerProducer; ++i) {
    item it = {p, i, (int64_t)p * 1000003 + i};
    if (myriad_chan_send(g_work, &it) != MYRIAD_OK) CHECK(0);
  }
}

static void producer_task(void* arg) {
  produce((int)(intptr_t)arg);
  myriad_wait_group_done(g_producers_done);
}

static void* producer_thread(void* arg) {
  produce((int)(intptr_t)arg);
  myriad_wait_group_done(g_producers_done);
  return NULL;
}

/* Per-producer order must hold for each consumer (FIFO channel, one consumer sees a
 * subsequence of every producer's stream in order). */
static void consume(void) {
  int last[kProducers];
  for (int p = 0; p < kProducers; ++p) last[p] = -1;
  long long sum = 0, count = 0;
  int ordered = 1;
  for (;;) {
    item it;
    bool ok = false;
    if (myriad_chan_recv(g_work, &it, &ok) != MYRIAD_OK) {
      CHECK(0);
      break;
    }
    if (!ok) break;
    if (it.payload != (int64_t)it.producer * 1000003 + it.seq) ordered = 0;
    if (it.seq <= last[it.producer]) ordered = 0;
    last[it.producer] = it.seq;
    sum += it.payload;
    ++count;
  }
  CHECK(ordered);
  atomic_fetch_add(&g_consumed_sum, sum);
  atomic_fetch_add(&g_consumed_count, count);
}

static void consumer_task(void* arg) {
  (void)arg;
  consume();
}

static void* consumer_thread(void* arg) {
  (void)arg;
  consume();
  return NULL;
}

static void run_many(size_t capacity) {
  myriad_runtime rt = make_runtime(4);
  REQUIRE(myriad_chan_create(sizeof(item), capacity, NULL, &g_work) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_producers_done) == MYRIAD_OK);
  atomic_store(&g_consumed_sum, 0);
  atomic_store(&g_consumed_count, 0);
  CHECK_ST(myriad_wait_group_add(g_producers_done, kProducers), MYRIAD_OK);
  myriad_task consumers[kTaskConsumers];
  pthread_t threads[kThreadConsumers + kProducers];
  int nthreads = 0;
  for (int i = 0; i < kTaskConsumers; ++i)
    CHECK_ST(myriad_spawn(rt, consumer_task, NULL, NULL, &consumers[i]), MYRIAD_OK);
  for (int i = 0; i < kThreadConsumers; ++i)
    REQUIRE(pthread_create(&threads[nthreads++], NULL, consumer_thread, NULL) == 0);
  for (int p = 0; p < kProducers; ++p) {
    if (p % 2)
      CHECK_ST(myriad_spawn(rt, producer_task, (void*)(intptr_t)p, NULL, NULL), MYRIAD_OK);
    else
      REQUIRE(pthread_create(&threads[nthreads++], NULL, producer_thread, (void*)(intptr_t)p) == 0);
  }
  CHECK_ST(myriad_wait_group_wait(g_producers_done), MYRIAD_OK);
  CHECK_ST(myriad_chan_close(g_work), MYRIAD_OK);
  for (int i = 0; i < kTaskConsumers; ++i) CHECK_ST(myriad_join(consumers[i]), MYRIAD_OK);
  for (int i = 0; i < nthreads; ++i) pthread_join(threads[i], NULL);
  long long want = 0;
  for (int p = 0; p < kProducers; ++p)
    for (int i = 0; i < kPerProducer; ++i) want += (long long)p * 1000003 + i;
  CHECK(atomic_load(&g_consumed_count) == (long long)kProducers * kPerProducer);
  CHECK(atomic_load(&g_consumed_sum) == want);
  CHECK_ST(myriad_chan_destroy(g_work), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_producers_done), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static void test_many_producers_consumers(void) {
  run_many(0);   /* unbuffered: every value is a rendezvous */
  run_many(64);  /* buffered */
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static myriad_chan g_late;

static void late_sender(void* arg) {
  int v = (int)(intptr_t)arg;
  myriad_sleep_ns(10000000);
  myriad_chan_send(g_late, &v);
}

static void test_deadlines(void) {
  myriad_runtime rt = make_runtime(2);
  myriad_chan ch;
  REQUIRE(myriad_chan_create(sizeof(int), 1, NULL, &ch) == MYRIAD_OK);
  int v = 3;
  bool ok = true;
  /* Empty: a receive times out no earlier than its deadline, and leaves the element. */
  int64_t t0 = myriad_now_ns();
  CHECK_ST(myriad_chan_recv_deadline(ch, &v, &ok, t0 + 30000000), MYRIAD_ETIMEDOUT);
  CHECK(myriad_now_ns() - t0 >= 30000000);
  CHECK(!ok && v == 3);
  /* Ready: completes at once. */
  CHECK_ST(myriad_chan_send_deadline(ch, &v, myriad_now_ns() + 1000000000), MYRIAD_OK);
  /* Full: a send times out. */
  t0 = myriad_now_ns();
  int w = 4;
  CHECK_ST(myriad_chan_send_deadline(ch, &w, t0 + 30000000), MYRIAD_ETIMEDOUT);
  CHECK(myriad_now_ns() - t0 >= 30000000);
  /* A deadline already passed: timed out without attempting the operation (Go's net
   * deadlines), even though a value is ready. */
  CHECK_ST(myriad_chan_recv_deadline(ch, &v, &ok, myriad_now_ns() - 1), MYRIAD_ETIMEDOUT);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(ch, &len), MYRIAD_OK);
  CHECK(len == 1);
  v = 0;
  CHECK_ST(myriad_chan_recv_deadline(ch, &v, &ok, myriad_now_ns() + 1000000000), MYRIAD_OK);
  CHECK(ok && v == 3);
  /* A value that arrives before the deadline wins the race (the sender is a task). */
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_late) == MYRIAD_OK);
  CHECK_ST(myriad_spawn(rt, late_sender, (void*)(intptr_t)77, NULL, NULL), MYRIAD_OK);
  v = 0;
  CHECK_ST(myriad_chan_recv_deadline(g_late, &v, &ok, myriad_now_ns() + 5000000000LL), MYRIAD_OK);
  CHECK(ok && v == 77);
  CHECK_ST(myriad_chan_destroy(g_late), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(ch), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- destroy while another thread is blocked on the channel --------------------------------- */

typedef struct blocked_op {
  myriad_chan ch;
  myriad_chan stop; /* a second channel the select also waits on */
  atomic_int started;
  myriad_status st;
  int index;
} blocked_op;

static void* blocked_sender_thread(void* arg) {
  blocked_op* op = arg;
  long* p = box_of(99);
  int64_t fired = 0;
  myriad_select_case cases[2] = {{op->ch, MYRIAD_SEND, &p}, {op->stop, MYRIAD_RECV, &fired}};
  atomic_store(&op->started, 1);
  bool ok = false;
  op->st = myriad_select(cases, 2, 1, &op->index, &ok);
  if (op->index != 0) free(p); /* not sent: still ours */
  return NULL;
}

static void test_destroy_while_blocked(void) {
  myriad_runtime rt = make_runtime(2);
  atomic_store(&g_dtor_calls, 0);
  atomic_store(&g_dtor_sum, 0);
  blocked_op op;
  memset(&op, 0, sizeof op);
  REQUIRE(myriad_chan_create(sizeof(long*), 2, free_boxed, &op.ch) == MYRIAD_OK);
  /* The select's other case: closed by this thread once the checks below are done (a timer
   * here made the test depend on the machine being fast enough to finish them in time). */
  REQUIRE(myriad_chan_create(sizeof(int64_t), 0, NULL, &op.stop) == MYRIAD_OK);
  for (long i = 1; i <= 2; ++i) {
    long* p = box_of(i);
    CHECK_ST(myriad_chan_send(op.ch, &p), MYRIAD_OK); /* full now */
  }
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, blocked_sender_thread, &op) == 0);
  while (!atomic_load(&op.started)) myriad_sleep_ns(1000000);
  myriad_sleep_ns(10000000);
  /* The blocked select holds the channel: destroying the handle is allowed, the handle is
   * dead at once, and the channel (with its two buffered elements) lives on. */
  CHECK_ST(myriad_chan_destroy(op.ch), MYRIAD_OK);
  CHECK_ST(myriad_chan_try_send(op.ch, &op), MYRIAD_EBADHANDLE);
  CHECK(atomic_load(&g_dtor_calls) == 0);
  CHECK_ST(myriad_chan_close(op.stop), MYRIAD_OK);
  pthread_join(t, NULL);
  /* The select completed normally through its other case, and its release freed the
   * channel, running the destructor on the two elements left. */
  CHECK_ST(op.st, MYRIAD_OK);
  CHECK(op.index == 1);
  CHECK(atomic_load(&g_dtor_calls) == 2);
  CHECK(atomic_load(&g_dtor_sum) == 3);
  CHECK_ST(myriad_chan_destroy(op.stop), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* Many threads create, use and destroy channels while others hammer stale handles: stale uses
 * must say EBADHANDLE, never touch freed memory (run under ASan/TSan). */
enum { kChurnThreads = 4, kChurnRounds = 3000 };
static _Atomic uint64_t g_last_handle;

static void* churn_thread(void* arg) {
  (void)arg;
  for (int i = 0; i < kChurnRounds; ++i) {
    myriad_chan ch;
    if (myriad_chan_create(sizeof(int), 1, NULL, &ch) != MYRIAD_OK) {
      CHECK(0);
      continue;
    }
    atomic_store(&g_last_handle, ch.bits);
    int v = i;
    myriad_chan_try_send(ch, &v);
    /* someone else's (possibly destroyed) channel */
    myriad_chan other = {atomic_load(&g_last_handle)};
    int w = 0;
    myriad_status st = myriad_chan_try_recv(other, &w, NULL);
    if (st != MYRIAD_OK && st != MYRIAD_EWOULDBLOCK && st != MYRIAD_EBADHANDLE) CHECK(0);
    st = myriad_chan_try_send(other, &w);
    if (st != MYRIAD_OK && st != MYRIAD_EWOULDBLOCK && st != MYRIAD_EBADHANDLE) CHECK(0);
    if (myriad_chan_destroy(ch) != MYRIAD_OK) CHECK(0);
  }
  return NULL;
}

static void test_handle_churn(void) {
  pthread_t t[kChurnThreads];
  for (int i = 0; i < kChurnThreads; ++i)
    REQUIRE(pthread_create(&t[i], NULL, churn_thread, NULL) == 0);
  for (int i = 0; i < kChurnThreads; ++i) pthread_join(t[i], NULL);
  CHECK(1);
}

int main(void) {
  test_errors();
  test_buffered_fifo();
  test_close();
  test_close_wakes_blocked();
  test_nil();
  test_zero_size();
  test_elem_dtor();
  test_elem_dtor_zero_size();
  test_many_producers_consumers();
  test_deadlines();
  test_destroy_while_blocked();
  test_handle_churn();
  return CHECK_SUMMARY();
}
