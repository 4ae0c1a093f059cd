#include "stack_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "stack_pool.hpp"
#include "task_impl.hpp"

namespace myriad::detail {
namespace {

struct sigaction g_previous;

// Async-signal-safe output helpers (no stdio in a signal handler).
void put(const char* s) noexcept {
  ssize_t r = write(STDERR_FILENO, s, std::strlen(s));
  (void)r;
}
void put_u64(unsigned long long v) noexcept {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  put(buf + i);
}

void describe(const Task* t, const char* why) noexcept {
  put("myriad: stack overflow in task ");
  put_u64(t->id);
  put(" \"");
  put(t->label);
  put("\" spawned at ");
  put(t->site.file ? t->site.file : "?");
  put(":");
  put_u64(t->site.line);
  put(" (");
  put(why);
  put("; usable stack ");
  put_u64(static_cast<unsigned long long>(reinterpret_cast<const char*>(t) - t->stack_limit));
  put(" bytes: raise Config::stack_size or SpawnOptions::stack_size)\n");
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  if (const Task* t = StackPool::task_for_guard_fault(info->si_addr)) {
    describe(t, "it touched its guard page");
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  // Not ours: hand over to whoever was there before.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) {
      g_previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action: reinstall it and return; the faulting instruction faults again.
  signal(SIGSEGV, SIG_DFL);
}

constexpr std::size_t kAltStackSize = 64 * 1024;  // AT_MINSIGSTKSZ is ~12 KiB with AMX state

}  // namespace

void install_overflow_handler() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous);
  });
}

AltSignalStack::AltSignalStack() noexcept {
  stack_t old;
  if (sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;  // has one
  void* p = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return;
  stack_t ss;
  ss.ss_sp = p;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(p, kAltStackSize);
    return;
  }
  mem_ = p;
  size_ = kAltStackSize;
}

AltSignalStack::~AltSignalStack() {
  if (!mem_) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem_, size_);
}

void report_stack_overflow_and_abort(const Task* t, const char* why) noexcept {
  describe(t, why);
  abort();
}

}  // namespace myriad::detail
