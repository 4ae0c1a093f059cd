#include "registry.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

namespace myriad::detail {
namespace {

// Never destroyed (a runtime may outlive static destructors: a static Runtime in user code).
struct Registry {
  std::mutex mu;
  std::vector<Scheduler*> live;  // creation order
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

void register_scheduler(Scheduler* s) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  r.live.push_back(s);
}

void unregister_scheduler(Scheduler* s) noexcept {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  r.live.erase(std::remove(r.live.begin(), r.live.end(), s), r.live.end());
}

void for_each_scheduler(const std::function<bool(Scheduler*)>& fn) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  for (Scheduler* s : r.live)
    if (!fn(s)) return;
}

}  // namespace myriad::detail
