/* The C ABI without tasks: versions, status texts, config defaults and validation, runtime
 * create/destroy, procs and stats queries, NULL out-pointers and bad handles of every kind. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "myriad.h"

static const myriad_runtime kZeroRuntime = {0};
static const myriad_runtime kForgedRuntime = {0xdeadbeef12345678ULL};
static const myriad_task kZeroTask = {0};
static const myriad_task kForgedTask = {0xdeadbeef12345678ULL};
static const myriad_wait_group kZeroWg = {0};
static const myriad_wait_group kForgedWg = {0xdeadbeef12345678ULL};

static void noop(void* arg) { (void)arg; }

static void test_versions(void) {
  CHECK(myriad_abi_version() == MYRIAD_ABI_VERSION);
  const char* v = myriad_version();
  CHECK(v != NULL);
  if (v) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", MYRIAD_VERSION_MAJOR, MYRIAD_VERSION_MINOR,
             MYRIAD_VERSION_PATCH);
    CHECK(strcmp(v, expected) == 0);
  }
}

static void test_strerror(void) {
  /* Every code has its own non-empty text, distinct from the others and from the unknown one. */
  const char* unknown = myriad_strerror(-1);
  CHECK(unknown != NULL);
  for (int s = MYRIAD_OK; s <= MYRIAD_ENOTSUP; ++s) {
    const char* text = myriad_strerror(s);
    CHECK(text != NULL);
    if (!text) continue;
    CHECK(text[0] != '\0');
    if (unknown) CHECK(strcmp(text, unknown) != 0);
    for (int o = MYRIAD_OK; o < s; ++o) {
      const char* other = myriad_strerror(o);
      if (other) CHECK(strcmp(text, other) != 0);
    }
  }
  const int outside[] = {-1, -2, MYRIAD_ENOTSUP + 1, 23, 100, 1 << 20, INT32_MAX, INT32_MIN};
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; ++i) {
    const char* text = myriad_strerror(outside[i]);
    CHECK(text != NULL);
    if (text && unknown) CHECK(strcmp(text, unknown) == 0);
  }
}

static void test_config_init(void) {
  myriad_config c;
  memset(&c, 0xa5, sizeof c);
  myriad_config_init(&c);
  CHECK(c.size == sizeof(myriad_config));
  CHECK(c.procs == 0);
  CHECK(c.host_procs == 0);
  CHECK(c.stack_size == 64 * 1024);
  CHECK(c.guard_pages == MYRIAD_GUARD_AUTO);
  CHECK(c.on_exception == MYRIAD_EXC_LOG);
  CHECK(c.report_abandoned != 0);
  CHECK(c.detect_deadlock == 1);
  CHECK(c.on_deadlock == NULL && c.on_deadlock_user == NULL);
  CHECK(c.max_threads == 10000);
  CHECK(c.poller == MYRIAD_POLLER_AUTO);
  CHECK(c.blocking_handoff_ns == 20000);
  CHECK(c.preempt_after_ns == 10000000);
  CHECK(c.on_long_running == NULL && c.on_long_running_user == NULL);
  myriad_config_init(NULL); /* documented as harmless: must not crash */
  CHECK(1);
}

static void test_create_destroy(void) {
  myriad_runtime rt;
  uint32_t procs = 0;

  /* NULL config: the defaults (procs = MYRIAD_PROCS or the hardware threads). */
  rt.bits = 0;
  CHECK_ST(myriad_runtime_create(NULL, &rt), MYRIAD_OK);
  CHECK(rt.bits != 0);
  CHECK_ST(myriad_runtime_procs(rt, &procs), MYRIAD_OK);
  CHECK(procs >= 1);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* An explicit config. */
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 3;
  c.host_procs = 1;
  c.stack_size = 128 * 1024;
  c.guard_pages = MYRIAD_GUARD_OFF;
  c.on_exception = MYRIAD_EXC_SILENT;
  c.report_abandoned = 0;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  procs = 0;
  CHECK_ST(myriad_runtime_procs(rt, &procs), MYRIAD_OK);
  CHECK(procs == 3);

  /* Stats: a size field smaller than the first version of the struct is refused; a right one is
   * filled; an older caller's struct (without the appended fields) gets only what it has. */
  myriad_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = offsetof(myriad_stats, guarded_stacks);
  CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_EINVAL);
  stats.size = sizeof stats;
  CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_OK);
  CHECK(stats.tasks_spawned == 0);
  CHECK(stats.size == sizeof stats);
  CHECK(stats.threads == 2); /* the workers: procs - host_procs */
  memset(&stats, 0xa5, sizeof stats);
  stats.size = offsetof(myriad_stats, timers_fired); /* the struct before the appended fields */
  CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_OK);
  CHECK(stats.size == offsetof(myriad_stats, timers_fired));
  CHECK(stats.tasks_spawned == 0 && stats.guarded_stacks != 0xa5a5a5a5a5a5a5a5ull);
  CHECK(stats.timers_fired == 0xa5a5a5a5a5a5a5a5ull); /* not written */
  CHECK(stats.netpoll_ready == 0xa5a5a5a5a5a5a5a5ull);
  /* A size that ends inside a field: only the whole fields before it are written. */
  memset(&stats, 0xa5, sizeof stats);
  stats.size = offsetof(myriad_stats, threads) + 3;
  CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_OK);
  CHECK(stats.proc_handoffs != 0xa5a5a5a5a5a5a5a5ull);
  CHECK(stats.threads == 0xa5a5a5a5a5a5a5a5ull);
  CHECK_ST(myriad_runtime_stats(rt, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_runtime_procs(rt, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* Two live runtimes get different handles. */
  myriad_runtime a, b;
  myriad_config_init(&c);
  c.procs = 1;
  CHECK_ST(myriad_runtime_create(&c, &a), MYRIAD_OK);
  CHECK_ST(myriad_runtime_create(&c, &b), MYRIAD_OK);
  CHECK(a.bits != b.bits);
  CHECK_ST(myriad_runtime_destroy(a), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(b), MYRIAD_OK);

  /* NULL out-pointer. */
  CHECK_ST(myriad_runtime_create(NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_runtime_create(&c, NULL), MYRIAD_EINVAL);
}

static void expect_create_einval(const myriad_config* c, int line) {
  myriad_runtime rt;
  rt.bits = 0xfeedULL;
  myriad_status s = myriad_runtime_create(c, &rt);
  if (s != MYRIAD_EINVAL) fprintf(stderr, "  (config from line %d)\n", line);
  CHECK_ST(s, MYRIAD_EINVAL);
  CHECK(rt.bits == 0); /* the out handle is cleared on failure */
  if (s == MYRIAD_OK) myriad_runtime_destroy(rt);
}

static void test_config_validation(void) {
  myriad_config c;

  /* size field: too small for version 1 of the struct. */
  myriad_config_init(&c);
  c.size = 0;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.size = sizeof(size_t);
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.size = offsetof(myriad_config, report_abandoned); /* misses the last field */
  expect_create_einval(&c, __LINE__);

  /* Enum fields out of range. */
  myriad_config_init(&c);
  c.guard_pages = 2;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.guard_pages = -1;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.on_exception = 3;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.on_exception = -1;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.poller = MYRIAD_POLLER_IO_URING + 1;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.poller = -1;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.blocking_handoff_ns = -1;
  expect_create_einval(&c, __LINE__);

  /* More host procs than procs. */
  myriad_config_init(&c);
  c.procs = 2;
  c.host_procs = 3;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.procs = 1;
  c.host_procs = UINT32_MAX;
  expect_create_einval(&c, __LINE__);

  /* Absurd sizes. */
  myriad_config_init(&c);
  c.procs = 100000;
  expect_create_einval(&c, __LINE__);
  myriad_config_init(&c);
  c.procs = 1;
  c.stack_size = ((size_t)1 << 30) + 1; /* over the 1 GiB cap */
  expect_create_einval(&c, __LINE__);

  /* procs == host_procs is valid (a purely host-driven runtime). */
  myriad_runtime rt;
  myriad_config_init(&c);
  c.procs = 2;
  c.host_procs = 2;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* A caller built before the I/O fields were appended: its size ends at on_deadlock_user, and
   * whatever follows in memory is not read (the defaults apply). */
  myriad_config_init(&c);
  c.procs = 1;
  c.size = offsetof(myriad_config, max_threads);
  c.poller = 99;
  c.blocking_handoff_ns = -5;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* Zero means the default for max_threads, blocking_handoff_ns and preempt_after_ns; a
   * negative preempt_after_ns means never. */
  myriad_config_init(&c);
  c.procs = 1;
  c.max_threads = 0;
  c.blocking_handoff_ns = 0;
  c.preempt_after_ns = 0;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  c.preempt_after_ns = -1;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* stack_size 0 means the default. */
  myriad_config_init(&c);
  c.procs = 1;
  c.stack_size = 0;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static void test_bad_handles(void) {
  uint32_t procs = 0;
  uint64_t id = 0;
  myriad_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  int idle = 0;
  myriad_task out;

  const myriad_runtime bad_rts[] = {kZeroRuntime, kForgedRuntime, {1}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof bad_rts / sizeof bad_rts[0]; ++i) {
    myriad_runtime rt = bad_rts[i];
    CHECK_ST(myriad_runtime_procs(rt, &procs), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_spawn(rt, noop, NULL, NULL, NULL), MYRIAD_EBADHANDLE);
    out.bits = 77;
    CHECK_ST(myriad_spawn(rt, noop, NULL, NULL, &out), MYRIAD_EBADHANDLE);
    CHECK(out.bits == 0);
    CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_EBADHANDLE);
  }

  const myriad_task bad_tasks[] = {kZeroTask, kForgedTask, {1}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof bad_tasks / sizeof bad_tasks[0]; ++i) {
    CHECK_ST(myriad_join(bad_tasks[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_detach(bad_tasks[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_task_handle_id(bad_tasks[i], &id), MYRIAD_EBADHANDLE);
  }

  const myriad_wait_group bad_wgs[] = {kZeroWg, kForgedWg, {1}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof bad_wgs / sizeof bad_wgs[0]; ++i) {
    CHECK_ST(myriad_wait_group_add(bad_wgs[i], 1), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_wait_group_done(bad_wgs[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_wait_group_wait(bad_wgs[i]), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_wait_group_destroy(bad_wgs[i]), MYRIAD_EBADHANDLE);
  }

  /* A destroyed runtime: every call reports a bad handle, including a second destroy. */
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 1;
  myriad_runtime rt;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  CHECK_ST(myriad_spawn(rt, noop, NULL, NULL, NULL), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_spawn(rt, noop, NULL, NULL, &out), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_procs(rt, &procs), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_stats(rt, &stats), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_step(rt, 0, &idle), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_EBADHANDLE);

  /* The slot of the destroyed runtime is reused by the next one; the stale handle must still
   * be recognised (generation check) and must not reach the new runtime. */
  myriad_runtime rt2;
  CHECK_ST(myriad_runtime_create(&c, &rt2), MYRIAD_OK);
  CHECK(rt2.bits != rt.bits);
  CHECK_ST(myriad_runtime_procs(rt, &procs), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_procs(rt2, &procs), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt2), MYRIAD_OK);

  /* A runtime handle is not a task or wait group handle (the tables are separate). */
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);
  myriad_task as_task = {rt.bits};
  myriad_wait_group as_wg = {rt.bits};
  CHECK_ST(myriad_join(as_task), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_wait_group_add(as_wg, 1), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static void test_null_arguments(void) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = 1;
  myriad_runtime rt;
  CHECK_ST(myriad_runtime_create(&c, &rt), MYRIAD_OK);

  myriad_task h;
  h.bits = 5;
  CHECK_ST(myriad_spawn(rt, NULL, NULL, NULL, &h), MYRIAD_EINVAL);
  CHECK(h.bits == 0);
  CHECK_ST(myriad_spawn(rt, NULL, NULL, NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_task_handle_id(kForgedTask, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_wait_group_create(NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_runtime_procs(rt, NULL), MYRIAD_EINVAL);

  /* Spawn options with a bad size field. */
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("bad size");
  o.size = 0;
  CHECK_ST(myriad_spawn(rt, noop, NULL, &o, &h), MYRIAD_EINVAL);
  o.size = offsetof(myriad_spawn_options, function);
  CHECK_ST(myriad_spawn(rt, noop, NULL, &o, &h), MYRIAD_EINVAL);
  /* A stack over the 1 GiB cap. */
  myriad_spawn_options big = MYRIAD_SPAWN_OPTIONS("too big");
  big.stack_size = ((size_t)1 << 30) + 4096;
  CHECK_ST(myriad_spawn(rt, noop, NULL, &big, &h), MYRIAD_EINVAL);

  /* step tolerates a NULL idle_out (host_procs = 0 here, so it is EBUSY either way). */
  CHECK_ST(myriad_step(rt, 0, NULL), MYRIAD_EBUSY);

  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  test_versions();
  test_strerror();
  test_config_init();
  test_create_destroy();
  test_config_validation();
  test_bad_handles();
  test_null_arguments();
  return CHECK_SUMMARY();
}
