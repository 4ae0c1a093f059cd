/* Tasks through the C ABI: many detached tasks counted exactly, join handles and their ids,
 * the current task id, nested spawns, yield, spawn options (label, stack size), join/detach
 * misuse, a task joining a task, a task joining itself. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "myriad.h"

static myriad_runtime g_rt;

/* ---- many detached tasks ------------------------------------------------------------------ */

enum { kManyTasks = 100000 };
static atomic_long g_counter;
static myriad_wait_group g_wg;

static atomic_int g_done_failures;

static void increment(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_counter, 1);
  if (myriad_wait_group_done(g_wg) != MYRIAD_OK) atomic_fetch_add(&g_done_failures, 1);
}

static void test_many_detached(void) {
  atomic_store(&g_counter, 0);
  REQUIRE(myriad_wait_group_create(&g_wg) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_add(g_wg, kManyTasks) == MYRIAD_OK);
  int spawn_failures = 0;
  for (int i = 0; i < kManyTasks; ++i) {
    if (myriad_spawn(g_rt, increment, NULL, NULL, NULL) != MYRIAD_OK) {
      ++spawn_failures;
      myriad_wait_group_done(g_wg);
    }
  }
  CHECK(spawn_failures == 0);
  CHECK_ST(myriad_wait_group_wait(g_wg), MYRIAD_OK);
  CHECK(atomic_load(&g_counter) == kManyTasks - spawn_failures);
  CHECK(atomic_load(&g_done_failures) == 0);
  CHECK_ST(myriad_wait_group_destroy(g_wg), MYRIAD_OK);

  myriad_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  CHECK_ST(myriad_runtime_stats(g_rt, &s), MYRIAD_OK);
  CHECK(s.tasks_spawned >= kManyTasks);
}

/* ---- join handles and ids ----------------------------------------------------------------- */

struct id_probe {
  uint64_t seen_id;
  int ran;
  myriad_wait_group wg; /* done() after recording, when nonzero */
};

static void record_id(void* arg) {
  struct id_probe* p = arg;
  p->seen_id = myriad_current_task_id();
  p->ran = 1;
  if (p->wg.bits) CHECK_ST(myriad_wait_group_done(p->wg), MYRIAD_OK);
}

static void test_join_and_ids(void) {
  CHECK(myriad_current_task_id() == 0); /* not a task */

  struct id_probe probes[8];
  myriad_task handles[8];
  uint64_t ids[8];
  memset(probes, 0, sizeof probes);
  for (int i = 0; i < 8; ++i) {
    handles[i].bits = 0;
    CHECK_ST(myriad_spawn(g_rt, record_id, &probes[i], NULL, &handles[i]), MYRIAD_OK);
    CHECK(handles[i].bits != 0);
    ids[i] = 0;
    CHECK_ST(myriad_task_handle_id(handles[i], &ids[i]), MYRIAD_OK);
    CHECK(ids[i] != 0);
  }
  for (int i = 0; i < 8; ++i) {
    CHECK_ST(myriad_join(handles[i]), MYRIAD_OK);
    CHECK(probes[i].ran == 1);
    /* The id the task saw is the id its handle reported. */
    CHECK(probes[i].seen_id == ids[i]);
    for (int j = 0; j < i; ++j) CHECK(ids[i] != ids[j]);
  }
  /* A joined handle is released: every further use is a bad handle. */
  uint64_t id = 0;
  CHECK_ST(myriad_join(handles[0]), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_detach(handles[0]), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_task_handle_id(handles[0], &id), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_task_handle_id(handles[1], NULL), MYRIAD_EINVAL);

  CHECK(myriad_current_task_id() == 0);
}

static void test_detach(void) {
  struct id_probe p;
  memset(&p, 0, sizeof p);
  REQUIRE(myriad_wait_group_create(&p.wg) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(p.wg, 1), MYRIAD_OK);
  myriad_task h;
  CHECK_ST(myriad_spawn(g_rt, record_id, &p, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_detach(h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_detach(h), MYRIAD_EBADHANDLE);
  uint64_t id;
  CHECK_ST(myriad_task_handle_id(h, &id), MYRIAD_EBADHANDLE);
  /* The detached task still runs. */
  CHECK_ST(myriad_wait_group_wait(p.wg), MYRIAD_OK);
  CHECK(p.ran == 1);
  CHECK(p.seen_id != 0);
  CHECK_ST(myriad_wait_group_destroy(p.wg), MYRIAD_OK);
}

/* ---- nested spawns ------------------------------------------------------------------------ */

static atomic_int g_nested_leaves;

struct nest {
  int depth;
};

static void nested(void* arg) {
  int depth = ((struct nest*)arg)->depth;
  CHECK(myriad_current_task_id() != 0);
  if (depth == 0) {
    atomic_fetch_add(&g_nested_leaves, 1);
    return;
  }
  /* Each level spawns two children with handles (detached spawn is covered above) and joins
   * them: joining from a task parks it. */
  struct nest child = {depth - 1};
  myriad_task h[2];
  for (int i = 0; i < 2; ++i) CHECK_ST(myriad_spawn(g_rt, nested, &child, NULL, &h[i]), MYRIAD_OK);
  for (int i = 0; i < 2; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
}

static void test_nested(void) {
  atomic_store(&g_nested_leaves, 0);
  struct nest root = {8};
  myriad_task h;
  CHECK_ST(myriad_spawn(g_rt, nested, &root, NULL, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(atomic_load(&g_nested_leaves) == 256);
}

/* ---- yield -------------------------------------------------------------------------------- */

static atomic_int g_yield_count;

static void yielder(void* arg) {
  (void)arg;
  uint64_t me = myriad_current_task_id();
  for (int i = 0; i < 100; ++i) {
    CHECK_ST(myriad_yield(), MYRIAD_OK);
    CHECK(myriad_current_task_id() == me); /* still the same task after being resumed */
  }
  atomic_fetch_add(&g_yield_count, 1);
}

static void test_yield(void) {
  CHECK_ST(myriad_yield(), MYRIAD_ENOTINTASK);
  atomic_store(&g_yield_count, 0);
  myriad_task h[16];
  for (int i = 0; i < 16; ++i) CHECK_ST(myriad_spawn(g_rt, yielder, NULL, NULL, &h[i]), MYRIAD_OK);
  for (int i = 0; i < 16; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  CHECK(atomic_load(&g_yield_count) == 16);
  CHECK_ST(myriad_yield(), MYRIAD_ENOTINTASK);
}

/* ---- spawn options ------------------------------------------------------------------------ */

static void deep_stack(void* arg) {
  /* Touches 192 KiB of stack: more than the 64 KiB default, less than the 512 KiB asked for. */
  volatile char buf[192 * 1024];
  for (size_t i = 0; i < sizeof buf; i += 512) buf[i] = (char)i;
  long sum = 0;
  for (size_t i = 0; i < sizeof buf; i += 512) sum += buf[i];
  *(long*)arg = sum + 1;
}

static void test_spawn_options(void) {
  struct id_probe p;
  memset(&p, 0, sizeof p);
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("labelled task");
  CHECK(o.size == sizeof(myriad_spawn_options));
  CHECK(o.file != NULL && o.line != 0 && o.function != NULL);
  myriad_task h;
  CHECK_ST(myriad_spawn(g_rt, record_id, &p, &o, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(p.ran == 1);

  /* A label longer than the 63 bytes kept, and a NULL label. */
  char long_label[200];
  memset(long_label, 'x', sizeof long_label - 1);
  long_label[sizeof long_label - 1] = '\0';
  myriad_spawn_options lo = MYRIAD_SPAWN_OPTIONS(long_label);
  memset(&p, 0, sizeof p);
  CHECK_ST(myriad_spawn(g_rt, record_id, &p, &lo, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(p.ran == 1);
  myriad_spawn_options no = MYRIAD_SPAWN_OPTIONS(NULL);
  no.file = NULL;
  no.function = NULL;
  memset(&p, 0, sizeof p);
  CHECK_ST(myriad_spawn(g_rt, record_id, &p, &no, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(p.ran == 1);

  /* A custom stack size, big enough for a frame the default stack could not hold. */
  myriad_spawn_options big = MYRIAD_SPAWN_OPTIONS("big stack");
  big.stack_size = 512 * 1024;
  long result = 0;
  CHECK_ST(myriad_spawn(g_rt, deep_stack, &result, &big, &h), MYRIAD_OK);
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK(result != 0);

  /* Odd sizes are rounded up (to pages, at least 16 KiB); they must work. */
  const size_t odd[] = {1, 4097, 20000, 100 * 1024 + 3};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; ++i) {
    myriad_spawn_options s = MYRIAD_SPAWN_OPTIONS("odd stack");
    s.stack_size = odd[i];
    memset(&p, 0, sizeof p);
    CHECK_ST(myriad_spawn(g_rt, record_id, &p, &s, &h), MYRIAD_OK);
    CHECK_ST(myriad_join(h), MYRIAD_OK);
    CHECK(p.ran == 1);
  }
}

/* ---- a task joining a task; a task joining itself ----------------------------------------- */

struct joiner_arg {
  myriad_task target;
  myriad_status join_status;
};

static void joiner(void* arg) {
  struct joiner_arg* j = arg;
  j->join_status = myriad_join(j->target);
}

static void test_task_joins_task(void) {
  struct id_probe p;
  memset(&p, 0, sizeof p);
  struct joiner_arg j;
  j.join_status = MYRIAD_EINVAL;
  CHECK_ST(myriad_spawn(g_rt, yielder, NULL, NULL, &j.target), MYRIAD_OK);
  myriad_task jh;
  CHECK_ST(myriad_spawn(g_rt, joiner, &j, NULL, &jh), MYRIAD_OK);
  CHECK_ST(myriad_join(jh), MYRIAD_OK);
  CHECK_ST(j.join_status, MYRIAD_OK);
  /* The task's join consumed the handle. */
  CHECK_ST(myriad_join(j.target), MYRIAD_EBADHANDLE);
}

static _Atomic uint64_t g_self_handle;
static myriad_status g_self_join_status;
static atomic_int g_self_tried;

static void join_self(void* arg) {
  (void)arg;
  uint64_t bits;
  while ((bits = atomic_load(&g_self_handle)) == 0) myriad_yield();
  myriad_task self = {bits};
  g_self_join_status = myriad_join(self);
  atomic_store(&g_self_tried, 1);
}

static void test_join_self(void) {
  atomic_store(&g_self_handle, 0);
  atomic_store(&g_self_tried, 0);
  g_self_join_status = MYRIAD_OK;
  myriad_task h;
  CHECK_ST(myriad_spawn(g_rt, join_self, NULL, NULL, &h), MYRIAD_OK);
  atomic_store(&g_self_handle, h.bits);
  /* Wait for the attempt before joining: our join would take the handle out of the table. */
  while (!atomic_load(&g_self_tried)) {
  }
  /* The refused self-join must leave the handle valid for the real joiner. */
  CHECK_ST(myriad_join(h), MYRIAD_OK);
  CHECK_ST(g_self_join_status, MYRIAD_EDEADLOCK);
}

int main(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 4;
  REQUIRE(myriad_runtime_create(&c, &g_rt) == MYRIAD_OK);

  test_many_detached();
  test_join_and_ids();
  test_detach();
  test_nested();
  test_yield();
  test_spawn_options();
  test_task_joins_task();
  test_join_self();

  CHECK_ST(myriad_runtime_destroy(g_rt), MYRIAD_OK);
  CHECK(myriad_current_task_id() == 0);
  return CHECK_SUMMARY();
}
