// Shared setup for the Boost.Fiber peers: the scheduling algorithm on `procs` threads, a
// WaitGroup built from Boost.Fiber's own mutex/condition_variable (the library has none), and
// the stack allocator.
//
// The configuration can be overridden for exploration through environment variables (the
// defaults are each program's best, see bench/README.md):
//   BENCH_FIBER_ALGO   = ws | shared | rr   (work_stealing, shared_work, round_robin)
//   BENCH_FIBER_LAUNCH = post | dispatch    (queue the new fiber, or switch to it at once)
//   BENCH_FIBER_STACK  = bytes              (fixedsize_stack size)
//   BENCH_FIBER_SUSPEND= 0 | 1              (work_stealing: idle threads sleep instead of spin)
#pragma once

#include <boost/fiber/all.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fiberbench {

struct Options {
  std::string algo;        // "ws", "shared" or "rr"
  boost::fibers::launch launch;
  std::size_t stack_size;
  bool suspend;
};

inline Options options(const char* algo, boost::fibers::launch launch, std::size_t stack,
                       bool suspend = false) {
  Options o{algo, launch, stack, suspend};
  if (const char* v = std::getenv("BENCH_FIBER_ALGO")) o.algo = v;
  if (const char* v = std::getenv("BENCH_FIBER_LAUNCH"))
    o.launch = std::strcmp(v, "dispatch") == 0 ? boost::fibers::launch::dispatch
                                               : boost::fibers::launch::post;
  if (const char* v = std::getenv("BENCH_FIBER_STACK")) o.stack_size = std::strtoull(v, nullptr, 10);
  if (const char* v = std::getenv("BENCH_FIBER_SUSPEND")) o.suspend = std::strcmp(v, "1") == 0;
  return o;
}

// Go's sync.WaitGroup on fiber primitives: only the done() that reaches zero takes the lock.
class WaitGroup {
 public:
  void add(int64_t n) { count_.fetch_add(n, std::memory_order_relaxed); }
  void done() {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::unique_lock<boost::fibers::mutex> lk(m_);
      zero_ = true;
      cv_.notify_all();
    }
  }
  void wait() {
    std::unique_lock<boost::fibers::mutex> lk(m_);
    cv_.wait(lk, [&] { return zero_; });
  }

 private:
  std::atomic<int64_t> count_{0};
  boost::fibers::mutex m_;
  boost::fibers::condition_variable cv_;
  bool zero_ = false;
};

// Installs the algorithm on the calling thread and on procs-1 helper threads. The helpers'
// main fibers sleep on a fiber condition variable, so those threads run (or steal) fibers
// until the Pool is destroyed. work_stealing needs all `procs` threads to install it before
// any of them can run, which its constructor waits for.
class Pool {
 public:
  Pool(const Options& o, unsigned procs) : o_(o), procs_(o.algo == "rr" ? 1 : procs) {
    // work_stealing with a single thread never returns from pick_next() once its queue is
    // empty (it looks for a victim other than itself forever), so one proc means round_robin.
    if (procs_ == 1) o_.algo = "rr";
    for (unsigned i = 1; i < procs_; ++i)
      helpers_.emplace_back([this] {
        install();
        std::unique_lock<boost::fibers::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_; });
      });
    install();
  }
  ~Pool() {
    {
      std::unique_lock<boost::fibers::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : helpers_) t.join();
  }
  // The number of threads actually running fibers (round_robin is one thread).
  unsigned threads() const { return procs_; }

  // Starts f as a detached fiber with the configured launch policy and stack.
  template <class F>
  void spawn(F&& f) {
    boost::fibers::fiber(o_.launch, std::allocator_arg,
                         boost::fibers::fixedsize_stack(o_.stack_size), std::forward<F>(f))
        .detach();
  }

 private:
  void install() {
    if (o_.algo == "ws")
      boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(procs_,
                                                                                 o_.suspend);
    else if (o_.algo == "shared")
      boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>(o_.suspend);
    // "rr": round_robin is the default algorithm, nothing to install.
  }

  Options o_;
  unsigned procs_;
  std::vector<std::thread> helpers_;
  boost::fibers::mutex m_;
  boost::fibers::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace fiberbench
