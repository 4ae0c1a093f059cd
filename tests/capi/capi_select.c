/* Select through the C ABI: the default case (index -1), receive and send cases with values
 * passing through, closed channels (!ok with the element zeroed; ECHANCLOSED with the index of
 * a send case), nil channels never ready, a rough check of the uniform choice among ready
 * cases, more cases than the inline arrays hold, blocking selects woken by tasks and threads,
 * a fan-in with counts and sums, and the errors. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
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

static myriad_chan make_chan(size_t elem_size, size_t cap) {
  myriad_chan ch;
  REQUIRE(myriad_chan_create(elem_size, cap, NULL, &ch) == MYRIAD_OK);
  return ch;
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void) {
  myriad_runtime rt = make_runtime(1);
  myriad_chan a = make_chan(sizeof(int), 1);
  int v = 0, index = 7;
  bool ok = true;
  myriad_select_case k = {a, MYRIAD_RECV, &v};
  CHECK_ST(myriad_select(&k, 1, 0, NULL, &ok), MYRIAD_EINVAL);
  CHECK_ST(myriad_select(NULL, 1, 0, &index, &ok), MYRIAD_EINVAL);
  CHECK(index == -1);
  myriad_select_case bad_dir = {a, 0, &v};
  CHECK_ST(myriad_select(&bad_dir, 1, 0, &index, &ok), MYRIAD_EINVAL);
  bad_dir.dir = 3;
  CHECK_ST(myriad_select(&bad_dir, 1, 0, &index, &ok), MYRIAD_EINVAL);
  myriad_select_case null_elem = {a, MYRIAD_SEND, NULL};
  CHECK_ST(myriad_select(&null_elem, 1, 0, &index, &ok), MYRIAD_EINVAL);
  null_elem.dir = MYRIAD_RECV;
  CHECK_ST(myriad_select(&null_elem, 1, 0, &index, &ok), MYRIAD_EINVAL);
  /* Too many cases (the same channel may appear any number of times). */
  static myriad_select_case many[65537];
  for (size_t i = 0; i < 65537; ++i) {
    many[i].chan = a;
    many[i].dir = MYRIAD_RECV;
    many[i].elem = &v;
  }
  CHECK_ST(myriad_select(many, 65537, 0, &index, &ok), MYRIAD_EINVAL);
  CHECK_ST(myriad_select(many, 65536, 0, &index, &ok), MYRIAD_OK); /* the limit itself */
  CHECK(index == -1);
  /* A send case on a receive-only channel (a timer's). */
  myriad_chan after;
  REQUIRE(myriad_after(rt, 1000000000, &after) == MYRIAD_OK);
  int64_t t = 0;
  myriad_select_case to_timer = {after, MYRIAD_SEND, &t};
  CHECK_ST(myriad_select(&to_timer, 1, 0, &index, &ok), MYRIAD_EINVAL);
  /* A bad handle in any position; the calls before it change nothing. */
  myriad_chan dead = make_chan(sizeof(int), 1);
  CHECK_ST(myriad_chan_destroy(dead), MYRIAD_OK);
  v = 5;
  CHECK_ST(myriad_chan_send(a, &v), MYRIAD_OK);
  myriad_select_case with_dead[3] = {{a, MYRIAD_RECV, &v}, {dead, MYRIAD_RECV, &v},
                                     {(myriad_chan){12345}, MYRIAD_RECV, &v}};
  CHECK_ST(myriad_select(with_dead, 3, 1, &index, &ok), MYRIAD_EBADHANDLE);
  with_dead[1] = with_dead[2];
  CHECK_ST(myriad_select(with_dead, 2, 1, &index, &ok), MYRIAD_EBADHANDLE);
  size_t len = 0;
  CHECK_ST(myriad_chan_len(a, &len), MYRIAD_OK);
  CHECK(len == 1);
  CHECK_ST(myriad_chan_destroy(after), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(a), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- default, ready cases, values ---------------------------------------------------------- */

typedef struct pair {
  int64_t a;
  int32_t b;
} pair;

static void test_default_and_ready(void) {
  myriad_chan in = make_chan(sizeof(pair), 2), out = make_chan(sizeof(pair), 1);
  myriad_chan nil = {0};
  pair got = {-1, -1}, sent = {11, 22};
  int index = 5;
  bool ok = true;
  /* No cases: the default at once. */
  CHECK_ST(myriad_select(NULL, 0, 0, &index, &ok), MYRIAD_OK);
  CHECK(index == -1 && !ok);
  /* Nothing ready: the default; only nil channels: the default. */
  myriad_select_case cases[3] = {{in, MYRIAD_RECV, &got}, {nil, MYRIAD_RECV, &got},
                                 {nil, MYRIAD_SEND, &sent}};
  CHECK_ST(myriad_select(cases, 1, 0, &index, &ok), MYRIAD_OK);
  CHECK(index == -1);
  CHECK_ST(myriad_select(cases + 1, 2, 0, &index, &ok), MYRIAD_OK);
  CHECK(index == -1);
  CHECK(got.a == -1 && got.b == -1);
  /* A send case that is ready runs; the value arrives intact. */
  myriad_select_case send = {out, MYRIAD_SEND, &sent};
  CHECK_ST(myriad_select(&send, 1, 0, &index, &ok), MYRIAD_OK);
  CHECK(index == 0 && !ok);
  CHECK_ST(myriad_select(&send, 1, 0, &index, &ok), MYRIAD_OK); /* full now */
  CHECK(index == -1);
  pair back = {0, 0};
  CHECK_ST(myriad_chan_recv(out, &back, &ok), MYRIAD_OK);
  CHECK(ok && back.a == 11 && back.b == 22);
  /* A receive case that is ready, next to nil ones that never are. */
  pair p = {33, 44};
  CHECK_ST(myriad_chan_send(in, &p), MYRIAD_OK);
  for (int round = 0; round < 2; ++round) {
    CHECK_ST(myriad_select(cases, 3, round, &index, &ok), MYRIAD_OK);
    CHECK(index == 0 && ok && got.a == 33 + round && got.b == 44);
    p.a = 34;
    if (round == 0) CHECK_ST(myriad_chan_send(in, &p), MYRIAD_OK);
  }
  /* Closed: a receive case is ready with !ok and the zero value; a send case fails with
   * ECHANCLOSED and says which case it was. */
  CHECK_ST(myriad_chan_close(in), MYRIAD_OK);
  got.a = 99;
  got.b = 99;
  ok = true;
  CHECK_ST(myriad_select(cases, 3, 1, &index, &ok), MYRIAD_OK);
  CHECK(index == 0 && !ok && got.a == 0 && got.b == 0);
  CHECK_ST(myriad_chan_close(out), MYRIAD_OK);
  myriad_select_case two[2] = {{nil, MYRIAD_RECV, &got}, {out, MYRIAD_SEND, &sent}};
  index = -7;
  CHECK_ST(myriad_select(two, 2, 1, &index, &ok), MYRIAD_ECHANCLOSED);
  CHECK(index == 1);
  index = -7;
  CHECK_ST(myriad_select(two, 2, 0, &index, &ok), MYRIAD_ECHANCLOSED);
  CHECK(index == 1);
  /* ok_out may be NULL. */
  CHECK_ST(myriad_select(cases, 1, 1, &index, NULL), MYRIAD_OK);
  CHECK(index == 0);
  CHECK_ST(myriad_chan_destroy(in), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(out), MYRIAD_OK);
}

/* ---- the choice among ready cases is uniform (roughly) ------------------------------------- */

static void test_fairness(void) {
  enum { kRounds = 20000, kCases = 4 };
  myriad_chan ch[kCases];
  for (int i = 0; i < kCases; ++i) ch[i] = make_chan(0, kRounds); /* zero-size, deep buffers */
  for (int i = 0; i < kCases; ++i)
    for (int r = 0; r < kRounds; ++r) REQUIRE(myriad_chan_send(ch[i], NULL) == MYRIAD_OK);
  myriad_select_case cases[kCases];
  for (int i = 0; i < kCases; ++i) {
    cases[i].chan = ch[i];
    cases[i].dir = MYRIAD_RECV;
    cases[i].elem = NULL;
  }
  int hits[kCases] = {0};
  for (int r = 0; r < kRounds; ++r) {
    int index = -1;
    bool ok = false;
    if (myriad_select(cases, kCases, 1, &index, &ok) != MYRIAD_OK || index < 0 || !ok) {
      CHECK(0);
      break;
    }
    ++hits[index];
  }
  /* Each expects 5000; a uniform choice stays well within +-10%. */
  for (int i = 0; i < kCases; ++i) CHECK(hits[i] > 4500 && hits[i] < 5500);
  for (int i = 0; i < kCases; ++i) CHECK_ST(myriad_chan_destroy(ch[i]), MYRIAD_OK);

  /* The same channel twice, next to an empty one: both of its cases get chosen. */
  myriad_chan full = make_chan(sizeof(int), 1000), empty = make_chan(sizeof(int), 1);
  for (int i = 0; i < 1000; ++i) REQUIRE(myriad_chan_send(full, &i) == MYRIAD_OK);
  int v = 0, seen[3] = {0, 0, 0}, next = 0, in_order = 1;
  myriad_select_case dup[3] = {{full, MYRIAD_RECV, &v}, {empty, MYRIAD_RECV, &v},
                               {full, MYRIAD_RECV, &v}};
  for (int i = 0; i < 1000; ++i) {
    int index = -1;
    CHECK_ST(myriad_select(dup, 3, 0, &index, NULL), MYRIAD_OK);
    if (index >= 0) ++seen[index];
    if (v != next++) in_order = 0;
  }
  CHECK(seen[1] == 0 && seen[0] > 400 && seen[2] > 400);
  CHECK(in_order);
  CHECK_ST(myriad_chan_destroy(full), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(empty), MYRIAD_OK);
}

/* ---- more cases than fit inline ------------------------------------------------------------ */

static void test_many_cases(void) {
  enum { kCases = 40 };
  myriad_chan ch[kCases];
  int vals[kCases];
  myriad_select_case cases[kCases];
  for (int i = 0; i < kCases; ++i) {
    ch[i] = make_chan(sizeof(int), 1);
    vals[i] = -1;
    cases[i].chan = ch[i];
    cases[i].dir = MYRIAD_RECV;
    cases[i].elem = &vals[i];
  }
  for (int target = 0; target < kCases; target += 7) {
    int v = 1000 + target, index = -1;
    bool ok = false;
    CHECK_ST(myriad_chan_send(ch[target], &v), MYRIAD_OK);
    CHECK_ST(myriad_select(cases, kCases, 1, &index, &ok), MYRIAD_OK);
    CHECK(index == target && ok && vals[target] == 1000 + target);
  }
  /* Send cases among them: the only one with room is taken. */
  for (int i = 0; i < kCases; ++i) {
    int v = i;
    if (i != 23) CHECK_ST(myriad_chan_send(ch[i], &v), MYRIAD_OK); /* fill all but #23 */
    cases[i].dir = MYRIAD_SEND;
    vals[i] = 500 + i;
  }
  int index = -1;
  CHECK_ST(myriad_select(cases, kCases, 0, &index, NULL), MYRIAD_OK);
  CHECK(index == 23);
  int v = 0;
  CHECK_ST(myriad_chan_recv(ch[23], &v, NULL), MYRIAD_OK);
  CHECK(v == 523);
  for (int i = 0; i < kCases; ++i) CHECK_ST(myriad_chan_destroy(ch[i]), MYRIAD_OK);
}

/* ---- blocking selects woken by tasks, threads, close and timers ---------------------------- */

static myriad_chan g_a, g_b;

static void send_b_later(void* arg) {
  int v = (int)(intptr_t)arg;
  myriad_sleep_ns(5000000);
  myriad_chan_send(g_b, &v);
}

static void close_a_later(void* arg) {
  (void)arg;
  myriad_sleep_ns(5000000);
  myriad_chan_close(g_a);
}

static void test_blocking(void) {
  myriad_runtime rt = make_runtime(2);
  g_a = make_chan(sizeof(int), 0);
  g_b = make_chan(sizeof(int), 0);
  int va = -1, vb = -1, index = -1;
  bool ok = false;
  myriad_select_case cases[2] = {{g_a, MYRIAD_RECV, &va}, {g_b, MYRIAD_RECV, &vb}};
  CHECK_ST(myriad_spawn(rt, send_b_later, (void*)(intptr_t)314, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_select(cases, 2, 1, &index, &ok), MYRIAD_OK);
  CHECK(index == 1 && ok && vb == 314 && va == -1);
  va = 8;
  CHECK_ST(myriad_spawn(rt, close_a_later, NULL, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_select(cases, 2, 1, &index, &ok), MYRIAD_OK);
  CHECK(index == 0 && !ok && va == 0);
  /* A timeout case: an after() channel. */
  myriad_chan timeout;
  int64_t fired = 0, t0 = myriad_now_ns(); /* before arming: the timer fires >= 20 ms after */
  REQUIRE(myriad_after(rt, 20000000, &timeout) == MYRIAD_OK);
  myriad_select_case with_timeout[2] = {{g_b, MYRIAD_RECV, &vb}, {timeout, MYRIAD_RECV, &fired}};
  CHECK_ST(myriad_select(with_timeout, 2, 1, &index, &ok), MYRIAD_OK);
  CHECK(index == 1 && ok && fired >= t0 + 20000000 && myriad_now_ns() >= fired);
  CHECK_ST(myriad_chan_destroy(timeout), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_a), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_b), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- fan-in and fan-out with select, tasks and pthreads ------------------------------------ */

enum { kSources = 4, kPerSource = 4000, kTaskWorkers = 2, kThreadWorkers = 2 };

static myriad_chan g_src[kSources];
static myriad_chan g_quit;
static myriad_chan g_results;
static atomic_llong g_sum;
static atomic_llong g_count;

static void* source_thread(void* arg) {
  int s = (int)(intptr_t)arg;
  for (int i = 0; i < kPerSource; ++i) {
    int64_t v = (int64_t)s * 100000 + i;
    /* Alternate a plain send with a select that also offers the value on the next source. */
    if (i % 2) {
      myriad_select_case c[2] = {{g_src[s], MYRIAD_SEND, &v},
                                 {g_src[(s + 1) % kSources], MYRIAD_SEND, &v}};
      int index = -1;
      if (myriad_select(c, 2, 1, &index, NULL) != MYRIAD_OK || index < 0) CHECK(0);
    } else if (myriad_chan_send(g_src[s], &v) != MYRIAD_OK) {
      CHECK(0);
    }
  }
  return NULL;
}

static void work(void) {
  long long sum = 0, count = 0;
  int64_t v = 0;
  bool ok = false;
  myriad_select_case c[kSources + 1];
  for (int s = 0; s < kSources; ++s) {
    c[s].chan = g_src[s];
    c[s].dir = MYRIAD_RECV;
    c[s].elem = &v;
  }
  c[kSources].chan = g_quit;
  c[kSources].dir = MYRIAD_RECV;
  c[kSources].elem = NULL;
  for (;;) {
    int index = -1;
    if (myriad_select(c, kSources + 1, 1, &index, &ok) != MYRIAD_OK) {
      CHECK(0);
      break;
    }
    if (index == kSources) break; /* quit closed */
    sum += v;
    ++count;
  }
  atomic_fetch_add(&g_sum, sum);
  atomic_fetch_add(&g_count, count);
  myriad_chan_send(g_results, NULL);
}

static void worker_task(void* arg) {
  (void)arg;
  work();
}

static void* worker_thread(void* arg) {
  (void)arg;
  work();
  return NULL;
}

static void test_fan_in(void) {
  myriad_runtime rt = make_runtime(4);
  for (int s = 0; s < kSources; ++s) g_src[s] = make_chan(sizeof(int64_t), s % 2 ? 8 : 0);
  g_quit = make_chan(0, 0);
  g_results = make_chan(0, kTaskWorkers + kThreadWorkers);
  atomic_store(&g_sum, 0);
  atomic_store(&g_count, 0);
  pthread_t workers[kThreadWorkers], sources[kSources];
  for (int i = 0; i < kTaskWorkers; ++i)
    CHECK_ST(myriad_spawn(rt, worker_task, NULL, NULL, NULL), MYRIAD_OK);
  for (int i = 0; i < kThreadWorkers; ++i)
    REQUIRE(pthread_create(&workers[i], NULL, worker_thread, NULL) == 0);
  for (int s = 0; s < kSources; ++s)
    REQUIRE(pthread_create(&sources[s], NULL, source_thread, (void*)(intptr_t)s) == 0);
  for (int s = 0; s < kSources; ++s) pthread_join(sources[s], NULL);
  /* Every value was handed to a worker (the sends completed); now stop the workers. */
  CHECK_ST(myriad_chan_close(g_quit), MYRIAD_OK);
  for (int i = 0; i < kTaskWorkers + kThreadWorkers; ++i)
    CHECK_ST(myriad_chan_recv(g_results, NULL, NULL), MYRIAD_OK);
  for (int i = 0; i < kThreadWorkers; ++i) pthread_join(workers[i], NULL);
  /* Values still buffered in the buffered sources were not consumed if quit won the race:
   * drain them here. */
  long long sum = atomic_load(&g_sum), count = atomic_load(&g_count);
  for (int s = 0; s < kSources; ++s) {
    int64_t v;
    bool ok = false;
    while (myriad_chan_try_recv(g_src[s], &v, &ok) == MYRIAD_OK && ok) {
      sum += v;
      ++count;
    }
  }
  long long want = 0;
  for (int s = 0; s < kSources; ++s)
    for (int i = 0; i < kPerSource; ++i) want += (long long)s * 100000 + i;
  CHECK(count == (long long)kSources * kPerSource);
  CHECK(sum == want);
  for (int s = 0; s < kSources; ++s) CHECK_ST(myriad_chan_destroy(g_src[s]), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_quit), MYRIAD_OK);
  CHECK_ST(myriad_chan_destroy(g_results), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- a task's select with no cases parks forever ------------------------------------------- */

static atomic_int g_no_case_started;

static void select_nothing(void* arg) {
  (void)arg;
  int index = 0;
  atomic_store(&g_no_case_started, 1);
  myriad_select(NULL, 0, 1, &index, NULL);
  atomic_store(&g_no_case_started, 2); /* never */
}

static void test_no_cases_blocks(void) {
  myriad_runtime rt = make_runtime(1);
  CHECK_ST(myriad_spawn(rt, select_nothing, NULL, NULL, NULL), MYRIAD_OK);
  int found = 0;
  for (int tries = 0; tries < 1000 && !found; ++tries) {
    myriad_task_info info;
    info.size = sizeof info;
    size_t count = 0;
    CHECK_ST(myriad_list_tasks(rt, &info, 1, &count), MYRIAD_OK);
    found = count == 1 && info.state == MYRIAD_TASK_WAITING &&
            info.wait_reason == MYRIAD_WAIT_SELECT_NO_CASES;
    if (!found) myriad_sleep_ns(1000000);
  }
  CHECK(found);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK); /* abandons it */
  CHECK(atomic_load(&g_no_case_started) == 1);
}

int main(void) {
  test_errors();
  test_default_and_ready();
  test_fairness();
  test_many_cases();
  test_blocking();
  test_fan_in();
  test_no_cases_blocks();
  return CHECK_SUMMARY();
}
