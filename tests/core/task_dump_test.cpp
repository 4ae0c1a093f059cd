// The task dump: what list_tasks reports for parked tasks, the grouped text, a dump taken while
// tasks churn, and the signal-triggered dump.
#include "myriad/task_dump.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;
using namespace std::chrono_literals;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::size_t count_of(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(part); pos != std::string::npos; pos = s.find(part, pos + 1)) ++n;
  return n;
}

// Polls list_tasks until `n` of rt's tasks are waiting (or gives up after a minute, which only
// a hang would reach: the check that follows then fails).
std::vector<TaskInfo> wait_until_waiting(Runtime& rt, std::size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    std::vector<TaskInfo> tasks = list_tasks(rt);
    std::size_t waiting = 0;
    for (const TaskInfo& t : tasks) waiting += t.state == TaskState::waiting;
    if (waiting >= n || std::chrono::steady_clock::now() > give_up) return tasks;
    std::this_thread::sleep_for(1ms);
  }
}

// A joined task has completed its join state but may still be on its way out of its slot:
// polls until rt lists no task (or a minute passed, which only a hang would reach).
bool becomes_empty(Runtime& rt) {
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!list_tasks(rt).empty()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

const TaskInfo* find_id(const std::vector<TaskInfo>& tasks, uint64_t id) {
  for (const TaskInfo& t : tasks)
    if (t.id == id) return &t;
  return nullptr;
}

std::string site_text(uint32_t line) {
  return std::string(__FILE__) + ":" + std::to_string(line);
}

std::string pointer_text(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace

TEST(TaskDump, ParkedTasksShowIdentitySiteStateReasonAndAGrowingWait) {
  Runtime rt(Config{.procs = 2});
  WaitGroup gate;
  gate.add(1);
  static constexpr uint32_t kChildLine = __LINE__ + 7;  // the go(...) line below
  std::atomic<uint64_t> child_ids[3] = {};
  std::atomic<int> children_spawned{0};
  auto root_body = [&] {
    std::vector<JoinHandle> children;
    for (int i = 0; i < 3; ++i) {
      const std::string label = "wg-waiter-" + std::to_string(i);
      children.push_back(go([&] { gate.wait(); }, {.label = label.c_str()}));
      child_ids[i] = children.back().id();
    }
    children_spawned = 3;
    children[0].join();  // parks on join while its children park on the wait group
    children[1].join();
    children[2].join();
  };
  static constexpr uint32_t kRootLine = __LINE__ + 1;
  auto root = rt.spawn(root_body, {.label = "root"});
  const uint64_t root_id = root.id();

  std::vector<TaskInfo> tasks = wait_until_waiting(rt, 4);
  ASSERT_EQ(children_spawned.load(), 3);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_TRUE(std::is_sorted(tasks.begin(), tasks.end(),
                             [](const TaskInfo& a, const TaskInfo& b) { return a.id < b.id; }));

  const TaskInfo* r = find_id(tasks, root_id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->parent_id, 0u);  // spawned by this (foreign) thread
  EXPECT_EQ(r->label, "root");
  EXPECT_TRUE(ends_with(r->site.file, "task_dump_test.cpp")) << r->site.file;
  EXPECT_EQ(r->site.line, kRootLine);
  EXPECT_TRUE(contains(r->site.function, "TestBody")) << r->site.function;
  EXPECT_EQ(r->state, TaskState::waiting);
  EXPECT_EQ(r->wait_reason, WaitReason::join);
  EXPECT_GE(r->waited.count(), 0);

  for (int i = 0; i < 3; ++i) {
    const TaskInfo* c = find_id(tasks, child_ids[i].load());
    ASSERT_NE(c, nullptr) << "child " << i;
    EXPECT_EQ(c->parent_id, root_id);
    EXPECT_EQ(c->label, "wg-waiter-" + std::to_string(i));
    EXPECT_TRUE(ends_with(c->site.file, "task_dump_test.cpp")) << c->site.file;
    EXPECT_EQ(c->site.line, kChildLine);
    EXPECT_EQ(c->state, TaskState::waiting);
    EXPECT_EQ(c->wait_reason, WaitReason::wait_group);
    EXPECT_GE(c->waited.count(), 0);
  }

  // The wait never shrinks, and it grows once the (coarse) clock ticks.
  std::map<uint64_t, std::chrono::nanoseconds> first;
  for (const TaskInfo& t : tasks) first[t.id] = t.waited;
  std::map<uint64_t, std::chrono::nanoseconds> last = first;
  bool all_grew = false;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!all_grew && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(2ms);
    std::vector<TaskInfo> again = list_tasks(rt);
    ASSERT_EQ(again.size(), 4u);
    all_grew = true;
    for (const TaskInfo& t : again) {
      ASSERT_EQ(t.state, TaskState::waiting);
      EXPECT_GE(t.waited, last[t.id]) << "task " << t.id;
      last[t.id] = t.waited;
      all_grew = all_grew && t.waited > first[t.id];
    }
  }
  EXPECT_TRUE(all_grew);

  gate.done();
  root.join();
  EXPECT_TRUE(becomes_empty(rt));
}

TEST(TaskDump, TextGroupsBySiteStateAndReasonLargestFirst) {
  Runtime rt(Config{.procs = 2});
  WaitGroup gate_a, gate_b;
  gate_a.add(1);
  gate_b.add(1);
  std::vector<JoinHandle> handles;
  const uint32_t line_a = __LINE__ + 2;
  for (int i = 0; i < 12; ++i) {
    handles.push_back(rt.spawn([&] { gate_a.wait(); }, {.label = ("a-" + std::to_string(i)).c_str()}));
  }
  const uint32_t line_b = __LINE__ + 2;
  for (int i = 0; i < 2; ++i) {
    handles.push_back(rt.spawn([&] { gate_b.wait(); }, {.label = ("b-" + std::to_string(i)).c_str()}));
  }
  JoinHandle* joined = &handles[12];
  const uint32_t line_c = __LINE__ + 1;
  auto joiner = rt.spawn([joined] { joined->join(); });  // no label

  wait_until_waiting(rt, 15);
  const std::string text = dump_tasks(rt);
  SCOPED_TRACE(text);

  // The summary line comes first.
  EXPECT_EQ(text.rfind("myriad runtime " + pointer_text(&rt) + ": 2 procs (0 host), 15 tasks: "
                       "0 running, 0 runnable, 15 waiting\n", 0),
            0u);
  const std::string wg = std::string("waiting on ") + to_string(WaitReason::wait_group);
  const std::string jn = std::string("waiting on ") + to_string(WaitReason::join);
  const std::size_t pos_a = text.find("\n12 tasks " + wg + ", created at " + site_text(line_a) + " in ");
  const std::size_t pos_b = text.find("\n2 tasks " + wg + ", created at " + site_text(line_b) + " in ");
  const std::size_t pos_c = text.find("\n1 task " + jn + ", created at " + site_text(line_c) + " in ");
  ASSERT_NE(pos_a, std::string::npos);
  ASSERT_NE(pos_b, std::string::npos);
  ASSERT_NE(pos_c, std::string::npos);
  EXPECT_LT(pos_a, pos_b);  // largest group first
  EXPECT_LT(pos_b, pos_c);

  // At most 10 tasks per group, by id (= spawn order here); then the rest are counted.
  EXPECT_EQ(count_of(text, "\n    task "), 10u + 2u + 1u);
  EXPECT_TRUE(contains(text, "    ... and 2 more\n"));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(contains(text, "\"a-" + std::to_string(i) + "\""));
  EXPECT_FALSE(contains(text, "\"a-10\""));
  EXPECT_FALSE(contains(text, "\"a-11\""));
  EXPECT_TRUE(contains(text, "\"b-0\", parent none, waiting "));
  EXPECT_TRUE(contains(text, "    task " + std::to_string(joiner.id()) + ", parent none, waiting "));

  // Every live runtime, oldest first, between a header and an end line.
  {
    Runtime second(Config{.procs = 1});
    const std::string all = dump_all_tasks();
    EXPECT_EQ(all.rfind("=== myriad task dump: ", 0), 0u);
    EXPECT_TRUE(ends_with(all, "=== end of myriad task dump ===\n"));
    const std::size_t first_rt = all.find("myriad runtime " + pointer_text(&rt) + ": ");
    const std::size_t second_rt = all.find("myriad runtime " + pointer_text(&second) + ": 1 proc (0 host), 0 tasks: ");
    ASSERT_NE(first_rt, std::string::npos);
    ASSERT_NE(second_rt, std::string::npos);
    EXPECT_LT(first_rt, second_rt);
    EXPECT_TRUE(contains(all, "\n12 tasks " + wg + ", created at " + site_text(line_a)));
  }

  gate_b.done();
  joiner.join();
  gate_a.done();
  for (auto& h : handles)
    if (h.joinable()) h.join();
}

TEST(TaskDump, ATaskListsItselfAsRunning) {
  Runtime rt(Config{.procs = 2});
  auto h = rt.spawn([] {
    const std::vector<TaskInfo> tasks = list_tasks(*Runtime::current());
    const TaskInfo* me = find_id(tasks, this_task::id());
    if (!me) throw std::runtime_error("not listed");
    if (me->state != TaskState::running || me->label != "self" || me->waited.count() != 0)
      throw std::runtime_error("wrong entry");
    if (!contains(dump_tasks(*Runtime::current()), "1 task running, created at "))
      throw std::runtime_error("not in the text");
  }, {.label = "self"});
  EXPECT_NO_THROW(h.join());
}

// Slots are recycled under the walk all the time: every entry must still be one task's own
// consistent fields. Labels encode the parent and the creation site (and vary in length, so a
// label torn between two tasks would show), and the check ties them together. The churn goes
// on until the dumps have seen enough of it (with a deadline that only a bug would reach).
TEST(TaskDump, DumpsWhileThousandsOfTasksSpawnAndExit) {
  Runtime rt(Config{.procs = 4});
  constexpr int kDrivers = 4;
  constexpr int kBatch = 50;  // alive at once: drivers x batch, far below TSan's fiber limit
  static_assert(kDrivers * (kBatch + 1) < test::kTsanLiveTasks);
  const long min_spawns = test::kSanitized ? 4000 : 40000;
  const int min_rounds = static_cast<int>(min_spawns / (kDrivers * kBatch));
  constexpr int kMinDumps = 20;
  constexpr long kMinChildrenSeen = 100;
  std::atomic<int> dumps_taken{0};
  std::atomic<long> children_seen{0};
  std::atomic<long> spawned{0};
  std::atomic<int> drivers_done{0};
  const auto give_up = std::chrono::steady_clock::now() + 120s;

  static constexpr uint32_t kEvenLine = __LINE__ + 16;
  static constexpr uint32_t kOddLine = __LINE__ + 16;
  static constexpr uint32_t kDriverLine = __LINE__ + 22;
  std::vector<JoinHandle> drivers;
  for (int d = 0; d < kDrivers; ++d) {
    auto body = [&] {
      const std::string me = std::to_string(this_task::id());
      for (int round = 0; (round < min_rounds || dumps_taken.load() < kMinDumps ||
                           children_seen.load() < kMinChildrenSeen) &&
                          std::chrono::steady_clock::now() < give_up;
           ++round) {
        WaitGroup batch;
        batch.add(kBatch);
        for (int i = 0; i < kBatch; ++i) {
          const std::string tail(static_cast<std::size_t>((round + i) % 50), 'x');
          auto child = [&batch] { this_task::yield(); batch.done(); };
          if (i % 2 == 0) go(child, {.label = ("e" + me + "-" + tail).c_str()}).detach();
          else go(child, {.label = ("o" + me + "-" + tail).c_str()}).detach();
        }
        spawned.fetch_add(kBatch);
        batch.wait();
      }
      drivers_done.fetch_add(1);
    };
    drivers.push_back(rt.spawn(body, {.label = ("driver-" + std::to_string(d)).c_str()}));
  }

  auto check = [&](const TaskInfo& t) {
    ASSERT_NE(t.id, 0u);
    ASSERT_TRUE(t.state == TaskState::runnable || t.state == TaskState::running ||
                t.state == TaskState::waiting);
    ASSERT_GE(t.waited.count(), 0);
    if (t.state != TaskState::waiting) {
      ASSERT_EQ(t.wait_reason, WaitReason::none);
      ASSERT_EQ(t.waited.count(), 0);
    }
    ASSERT_TRUE(ends_with(t.site.file, "task_dump_test.cpp")) << t.site.file;
    if (t.label.rfind("driver-", 0) == 0) {
      ASSERT_EQ(t.parent_id, 0u);
      ASSERT_EQ(t.site.line, kDriverLine);
      if (t.state == TaskState::waiting) {
        ASSERT_EQ(t.wait_reason, WaitReason::wait_group);
      }
      return;
    }
    ASSERT_GE(t.label.size(), 3u) << t.label;
    ASSERT_EQ(t.site.line, t.label[0] == 'e' ? kEvenLine : kOddLine) << t.label;
    ASSERT_TRUE(t.label[0] == 'e' || t.label[0] == 'o') << t.label;
    const std::size_t dash = t.label.find('-');
    ASSERT_NE(dash, std::string::npos) << t.label;
    ASSERT_EQ(t.label.substr(1, dash - 1), std::to_string(t.parent_id)) << t.label;
    ASSERT_EQ(t.label.find_first_not_of('x', dash + 1), std::string::npos) << t.label;
    ASSERT_NE(t.state, TaskState::waiting) << t.label;  // children only yield
  };

  while (drivers_done.load() < kDrivers) {
    const std::vector<TaskInfo> tasks = list_tasks(rt);
    std::set<uint64_t> ids;
    long children = 0;
    for (const TaskInfo& t : tasks) {
      ASSERT_NO_FATAL_FAILURE(check(t));
      ASSERT_TRUE(ids.insert(t.id).second) << "task " << t.id << " listed twice";
      children += t.label.rfind("driver-", 0) != 0;
    }
    children_seen.fetch_add(children);
    const std::string text = dump_tasks(rt);
    ASSERT_EQ(text.rfind("myriad runtime ", 0), 0u);
    dumps_taken.fetch_add(1);
    // A walk holds the stack pool's lock; back-to-back walks would starve the spawners that
    // need it to refill their slot caches. Leave them a moment.
    std::this_thread::sleep_for(100us);
  }
  for (auto& d : drivers) d.join();
  EXPECT_GE(spawned.load(), min_spawns);
  EXPECT_GE(dumps_taken.load(), kMinDumps);
  EXPECT_GE(children_seen.load(), kMinChildrenSeen);
  EXPECT_TRUE(becomes_empty(rt));
}

namespace {
volatile sig_atomic_t g_previous_handler_ran = 0;
extern "C" void previous_handler(int) { g_previous_handler_ran = 1; }

// Redirects fd 2 into a temporary file for the lifetime of the object.
class CapturedStderr {
 public:
  CapturedStderr() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = dup(STDERR_FILENO);
    dup2(fileno(file_), STDERR_FILENO);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    std::fclose(file_);
  }
  std::string text() const {
    std::string out;
    char buf[4096];
    off_t off = 0;
    for (;;) {
      ssize_t n = pread(fileno(file_), buf, sizeof buf, off);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      off += n;
    }
    return out;
  }
  // Waits (a minute at most: only a hang gets there) until `n` complete dumps are in the file.
  std::string wait_for_dumps(std::size_t n) const {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    std::string t = text();
    while (count_of(t, "=== end of myriad task dump ===\n") < n &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
      t = text();
    }
    return t;
  }

 private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

void (*current_handler(int signo))(int) {
  struct sigaction sa {};
  sigaction(signo, nullptr, &sa);
  return sa.sa_handler;
}
}  // namespace

TEST(TaskDump, SignalWritesTheDumpToStderrAndDisableRestoresTheHandler) {
  struct sigaction mine {};
  mine.sa_handler = previous_handler;
  sigemptyset(&mine.sa_mask);
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGUSR2, &mine, &before), 0);

  Runtime rt(Config{.procs = 1});
  WaitGroup gate;
  gate.add(1);
  auto h = rt.spawn([&] { gate.wait(); }, {.label = "signal-dump-probe"});
  wait_until_waiting(rt, 1);

  {
    CapturedStderr err;
    enable_task_dump_on_signal(SIGUSR2);
    EXPECT_NE(current_handler(SIGUSR2), &previous_handler);
    ASSERT_EQ(raise(SIGUSR2), 0);
    const std::string text = err.wait_for_dumps(1);
    EXPECT_EQ(count_of(text, "=== end of myriad task dump ===\n"), 1u) << text;
    EXPECT_TRUE(contains(text, "=== myriad task dump: ")) << text;
    EXPECT_TRUE(contains(text, "myriad runtime " + pointer_text(&rt) + ": 1 proc (0 host), 1 task: ")) << text;
    EXPECT_TRUE(contains(text, "\n1 task waiting on " + std::string(to_string(WaitReason::wait_group))))
        << text;
    EXPECT_TRUE(contains(text, "\"signal-dump-probe\", parent none, waiting ")) << text;

    disable_task_dump_on_signal();
    EXPECT_EQ(current_handler(SIGUSR2), &previous_handler);
    g_previous_handler_ran = 0;
    ASSERT_EQ(raise(SIGUSR2), 0);
    EXPECT_EQ(g_previous_handler_ran, 1);
    disable_task_dump_on_signal();  // a second disable does nothing

    // Enabled again (a new background thread), it serves signals again.
    enable_task_dump_on_signal(SIGUSR2);
    ASSERT_EQ(raise(SIGUSR2), 0);
    EXPECT_GE(count_of(err.wait_for_dumps(2), "=== end of myriad task dump ===\n"), 2u);
    disable_task_dump_on_signal();
    EXPECT_EQ(current_handler(SIGUSR2), &previous_handler);
  }

  gate.done();
  h.join();
  ASSERT_EQ(sigaction(SIGUSR2, &before, nullptr), 0);
}

TEST(TaskDump, EnableMovesBetweenSignalsAndRefusesUncatchableOnes) {
  const auto quit_before = current_handler(SIGQUIT);
  const auto usr1_before = current_handler(SIGUSR1);
  enable_task_dump_on_signal();  // SIGQUIT
  EXPECT_NE(current_handler(SIGQUIT), quit_before);
  enable_task_dump_on_signal(SIGUSR1);  // moves: SIGQUIT is restored
  EXPECT_EQ(current_handler(SIGQUIT), quit_before);
  EXPECT_NE(current_handler(SIGUSR1), usr1_before);
  disable_task_dump_on_signal();
  EXPECT_EQ(current_handler(SIGUSR1), usr1_before);

  for (int bad : {SIGKILL, SIGSTOP, SIGSEGV, 0, -1, NSIG}) {
    try {
      enable_task_dump_on_signal(bad);
      ADD_FAILURE() << "signal " << bad << " accepted";
      disable_task_dump_on_signal();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
    }
  }
  disable_task_dump_on_signal();  // nothing enabled: nothing to do
}
