/* The task dump through the C ABI: myriad_list_tasks finds labelled tasks parked on a channel
 * with their creation site, parent, state, wait reason and wait time; the two-call pattern
 * (count beyond capacity, nothing written past it, the caller's stride); myriad_dump_tasks
 * text for one runtime and for all, truncated and NUL-terminated with the full length
 * returned; the dump on a signal (stderr captured in a file); the name functions; and the
 * errors. */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

enum { kWorkers = 5 };

static myriad_chan g_gate;         /* the workers block receiving on it */
static myriad_wait_group g_parked; /* done by each worker just before it blocks */
static atomic_ullong g_parent_id, g_child_id;
static myriad_task g_child;

static void worker(void* arg) {
  (void)arg;
  myriad_wait_group_done(g_parked);
  int v = 0;
  myriad_chan_recv(g_gate, &v, NULL);
}

static void parent(void* arg) {
  (void)arg;
  atomic_store(&g_parent_id, myriad_current_task_id());
  myriad_runtime rt = *(myriad_runtime*)arg;
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("child-of-parent");
  if (myriad_spawn(rt, worker, NULL, &o, &g_child) != MYRIAD_OK) CHECK(0);
  uint64_t id = 0;
  myriad_task_handle_id(g_child, &id);
  atomic_store(&g_child_id, id);
  myriad_wait_group_done(g_parked);
  int v = 0;
  myriad_chan_recv(g_gate, &v, NULL);
}

static int find_label(const myriad_task_info* t, size_t n, const char* label) {
  for (size_t i = 0; i < n; ++i)
    if (strcmp(t[i].label, label) == 0) return (int)i;
  return -1;
}

static void test_list_and_dump(void) {
  myriad_runtime rt = make_runtime(2);
  REQUIRE(myriad_chan_create(sizeof(int), 0, NULL, &g_gate) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_create(&g_parked) == MYRIAD_OK);
  CHECK_ST(myriad_wait_group_add(g_parked, kWorkers + 2), MYRIAD_OK);
  myriad_task h[kWorkers];
  uint64_t ids[kWorkers];
  uint32_t spawn_line = 0;
  for (int i = 0; i < kWorkers; ++i) {
    char label[32];
    snprintf(label, sizeof label, "worker-%d", i);
    myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS(label); spawn_line = __LINE__;
    CHECK_ST(myriad_spawn(rt, worker, NULL, &o, &h[i]), MYRIAD_OK);
    CHECK_ST(myriad_task_handle_id(h[i], &ids[i]), MYRIAD_OK);
  }
  myriad_task hp;
  myriad_spawn_options po = MYRIAD_SPAWN_OPTIONS("the-parent");
  CHECK_ST(myriad_spawn(rt, parent, &rt, &po, &hp), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(g_parked), MYRIAD_OK);

  /* Every task is parked on the channel (give the last ones a moment to switch out). */
  myriad_task_info info[16];
  size_t count = 0;
  int all_waiting = 0;
  for (int tries = 0; tries < 2000 && !all_waiting; ++tries) {
    info[0].size = sizeof(myriad_task_info);
    CHECK_ST(myriad_list_tasks(rt, info, 16, &count), MYRIAD_OK);
    all_waiting = count == kWorkers + 2;
    for (size_t i = 0; i < count && i < 16; ++i)
      if (info[i].state != MYRIAD_TASK_WAITING || info[i].wait_reason != MYRIAD_WAIT_CHAN_RECV)
        all_waiting = 0;
    if (!all_waiting) myriad_sleep_ns(MS);
  }
  REQUIRE(all_waiting);
  myriad_sleep_ns(20 * MS);
  info[0].size = sizeof(myriad_task_info);
  CHECK_ST(myriad_list_tasks(rt, info, 16, &count), MYRIAD_OK);
  CHECK(count == kWorkers + 2);
  int sorted = 1, sizes_set = 1;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0 && info[i].id <= info[i - 1].id) sorted = 0;
    if (info[i].size != sizeof(myriad_task_info)) sizes_set = 0;
  }
  CHECK(sorted && sizes_set);
  for (int w = 0; w < kWorkers; ++w) {
    char label[32];
    snprintf(label, sizeof label, "worker-%d", w);
    int i = find_label(info, count, label);
    REQUIRE(i >= 0);
    CHECK(info[i].id == ids[w]);
    CHECK(info[i].parent_id == 0); /* spawned from this thread */
    CHECK(info[i].state == MYRIAD_TASK_WAITING);
    CHECK(info[i].wait_reason == MYRIAD_WAIT_CHAN_RECV);
    CHECK(info[i].waited_ns >= 10 * MS); /* parked for 20 ms+, coarse clock */
    CHECK(info[i].file && strstr(info[i].file, "capi_task_dump.c") != NULL);
    CHECK(info[i].function && strcmp(info[i].function, "test_list_and_dump") == 0);
    CHECK(info[i].line == spawn_line);
  }
  int ip = find_label(info, count, "the-parent");
  int ic = find_label(info, count, "child-of-parent");
  REQUIRE(ip >= 0 && ic >= 0);
  CHECK(info[ip].id == atomic_load(&g_parent_id));
  CHECK(info[ic].id == atomic_load(&g_child_id));
  CHECK(info[ic].parent_id == info[ip].id);
  CHECK(strcmp(info[ic].function, "parent") == 0);

  /* Two calls: the count first, then the array. Capacity smaller than the count: the total is
   * still reported and nothing is written past the capacity. */
  CHECK_ST(myriad_list_tasks(rt, NULL, 0, &count), MYRIAD_OK);
  CHECK(count == kWorkers + 2);
  memset(info, 0x5a, sizeof info);
  info[0].size = sizeof(myriad_task_info);
  CHECK_ST(myriad_list_tasks(rt, info, 3, &count), MYRIAD_OK);
  CHECK(count == kWorkers + 2);
  CHECK(info[2].size == sizeof(myriad_task_info) && info[2].id != 0);
  unsigned char canary[sizeof(myriad_task_info)];
  memset(canary, 0x5a, sizeof canary);
  CHECK(memcmp(&info[3], canary, sizeof canary) == 0);

  /* A newer caller's larger struct: its size is the stride; the library fills what it knows. */
  struct bigger {
    myriad_task_info info;
    char future[40];
  } big[10];
  memset(big, 0x77, sizeof big);
  big[0].info.size = sizeof(struct bigger);
  CHECK_ST(myriad_list_tasks(rt, &big[0].info, 10, &count), MYRIAD_OK);
  CHECK(count == kWorkers + 2);
  int strided = 1;
  for (size_t i = 0; i < count; ++i) {
    if (big[i].info.size != sizeof(myriad_task_info)) strided = 0;
    if (big[i].info.id != info[0].id && i == 0) strided = 0;
    if (big[i].future[0] != 0x77 || big[i].future[39] != 0x77) strided = 0;
    if (big[i].info.state != MYRIAD_TASK_WAITING) strided = 0;
  }
  CHECK(strided);

  /* The text dump. */
  size_t len = 0;
  CHECK_ST(myriad_dump_tasks(rt, NULL, 0, &len), MYRIAD_OK);
  CHECK(len > 100);
  char* text = malloc(len + 1);
  REQUIRE(text != NULL);
  size_t len2 = 0;
  CHECK_ST(myriad_dump_tasks(rt, text, len + 1, &len2), MYRIAD_OK);
  CHECK(len2 == len && strlen(text) == len);
  CHECK(strstr(text, "myriad runtime") != NULL);
  CHECK(strstr(text, "\"worker-3\"") != NULL);
  CHECK(strstr(text, "\"child-of-parent\"") != NULL);
  CHECK(strstr(text, "chan receive") != NULL);
  CHECK(strstr(text, "capi_task_dump.c") != NULL);
  /* Truncated: cap - 1 bytes and a NUL, the full length still returned. */
  char small[16];
  memset(small, 'z', sizeof small);
  CHECK_ST(myriad_dump_tasks(rt, small, 10, &len2), MYRIAD_OK);
  CHECK(len2 == len && strlen(small) == 9 && memcmp(small, text, 9) == 0 && small[10] == 'z');
  CHECK_ST(myriad_dump_tasks(rt, small, 1, NULL), MYRIAD_OK);
  CHECK(small[0] == '\0');
  free(text);

  /* Every runtime: the zero handle. */
  myriad_runtime other = make_runtime(1);
  CHECK_ST(myriad_dump_tasks((myriad_runtime){0}, NULL, 0, &len), MYRIAD_OK);
  text = malloc(len + 1);
  REQUIRE(text != NULL);
  CHECK_ST(myriad_dump_tasks((myriad_runtime){0}, text, len + 1, NULL), MYRIAD_OK);
  CHECK(strstr(text, "2 runtimes") != NULL);
  CHECK(strstr(text, "\"worker-0\"") != NULL);
  CHECK(strstr(text, "end of myriad task dump") != NULL);
  free(text);
  CHECK_ST(myriad_runtime_destroy(other), MYRIAD_OK);

  /* The dump on a signal, to stderr (captured in a file meanwhile). */
  CHECK_ST(myriad_enable_task_dump_on_signal(SIGUSR1), MYRIAD_OK);
  FILE* f = tmpfile();
  REQUIRE(f != NULL);
  fflush(stderr);
  int saved = dup(2);
  REQUIRE(saved >= 0 && dup2(fileno(f), 2) >= 0);
  raise(SIGUSR1);
  char buf[8192];
  int found = 0;
  for (int tries = 0; tries < 3000 && !found; ++tries) {
    myriad_sleep_ns(MS);
    long size = lseek(fileno(f), 0, SEEK_END);
    if (size <= 0) continue;
    size_t n = (size_t)size < sizeof buf - 1 ? (size_t)size : sizeof buf - 1;
    if (pread(fileno(f), buf, n, 0) != (ssize_t)n) continue;
    buf[n] = '\0';
    found = strstr(buf, "end of myriad task dump") != NULL;
  }
  dup2(saved, 2);
  close(saved);
  CHECK(found);
  CHECK(strstr(buf, "\"worker-1\"") != NULL);
  fclose(f);
  CHECK_ST(myriad_disable_task_dump_on_signal(), MYRIAD_OK);
  CHECK_ST(myriad_disable_task_dump_on_signal(), MYRIAD_OK); /* not enabled: nothing to do */

  /* Release everyone. */
  CHECK_ST(myriad_chan_close(g_gate), MYRIAD_OK);
  for (int i = 0; i < kWorkers; ++i) CHECK_ST(myriad_join(h[i]), MYRIAD_OK);
  CHECK_ST(myriad_join(hp), MYRIAD_OK);
  CHECK_ST(myriad_join(g_child), MYRIAD_OK);
  /* A joined task's slot is recycled just after the join returns: poll briefly. */
  for (int tries = 0; tries < 1000; ++tries) {
    CHECK_ST(myriad_list_tasks(rt, NULL, 0, &count), MYRIAD_OK);
    if (count == 0) break;
    myriad_sleep_ns(MS);
  }
  CHECK(count == 0);
  CHECK_ST(myriad_chan_destroy(g_gate), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(g_parked), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

static void test_errors_and_names(void) {
  myriad_runtime rt = make_runtime(1);
  myriad_task_info info[2];
  size_t count = 0;
  info[0].size = sizeof(myriad_task_info);
  CHECK_ST(myriad_list_tasks(rt, info, 2, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_list_tasks(rt, NULL, 2, &count), MYRIAD_EINVAL);
  info[0].size = sizeof(myriad_task_info) - 8;
  CHECK_ST(myriad_list_tasks(rt, info, 2, &count), MYRIAD_EINVAL);
  info[0].size = 0;
  CHECK_ST(myriad_list_tasks(rt, info, 2, &count), MYRIAD_EINVAL);
  info[0].size = sizeof(myriad_task_info);
  CHECK_ST(myriad_list_tasks(rt, info, 2, &count), MYRIAD_OK);
  CHECK(count == 0);
  char buf[8];
  CHECK_ST(myriad_dump_tasks(rt, NULL, 8, NULL), MYRIAD_EINVAL);
  myriad_runtime dead = make_runtime(1);
  CHECK_ST(myriad_runtime_destroy(dead), MYRIAD_OK);
  myriad_runtime bad[] = {dead, {1}, {rt.bits + 1}, {UINT64_MAX}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    CHECK_ST(myriad_list_tasks(bad[i], info, 2, &count), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_dump_tasks(bad[i], buf, sizeof buf, NULL), MYRIAD_EBADHANDLE);
  }
  CHECK_ST(myriad_list_tasks((myriad_runtime){0}, info, 2, &count), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  /* Signals that cannot carry the dump. */
  const int refused[] = {0, -1, SIGKILL, SIGSTOP, SIGSEGV, 100000};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; ++i)
    CHECK_ST(myriad_enable_task_dump_on_signal(refused[i]), MYRIAD_EINVAL);

  CHECK(strcmp(myriad_task_state_name(MYRIAD_TASK_WAITING), "waiting") == 0);
  CHECK(strcmp(myriad_task_state_name(MYRIAD_TASK_RUNNABLE), "runnable") == 0);
  CHECK(strcmp(myriad_task_state_name(MYRIAD_TASK_RUNNING), "running") == 0);
  CHECK(strcmp(myriad_wait_reason_name(MYRIAD_WAIT_CHAN_RECV), "chan receive") == 0);
  CHECK(strcmp(myriad_wait_reason_name(MYRIAD_WAIT_MUTEX), "sync.Mutex.Lock") == 0);
  /* Every known value has its own name; unknown ones get "?". */
  for (int r = MYRIAD_WAIT_NONE; r <= MYRIAD_WAIT_IO_WRITE; ++r) {
    const char* n = myriad_wait_reason_name(r);
    CHECK(n != NULL && strcmp(n, "?") != 0);
    for (int o = MYRIAD_WAIT_NONE; o < r; ++o) CHECK(strcmp(n, myriad_wait_reason_name(o)) != 0);
  }
  for (int s = MYRIAD_TASK_FREE; s <= MYRIAD_TASK_DEAD; ++s)
    CHECK(strcmp(myriad_task_state_name(s), "?") != 0);
  const int outside[] = {-1, MYRIAD_WAIT_IO_WRITE + 1, 100, 255, 256, 1 << 30};
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; ++i)
    CHECK(strcmp(myriad_wait_reason_name(outside[i]), "?") == 0);
  const int outside_states[] = {-1, MYRIAD_TASK_DEAD + 1, 255, 256, 1 << 30};
  for (size_t i = 0; i < sizeof outside_states / sizeof outside_states[0]; ++i)
    CHECK(strcmp(myriad_task_state_name(outside_states[i]), "?") == 0);
}

int main(void) {
  test_list_and_dump();
  test_errors_and_names();
  return CHECK_SUMMARY();
}
