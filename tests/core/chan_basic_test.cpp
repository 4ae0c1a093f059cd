// Smoke tests of channels and select across procs (the full rule-by-rule suites are
// chan_semantics_test.cpp, select_test.cpp and chan_model_test.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

namespace {

using myriad::Chan;

TEST(ChanBasic, PingPongBetweenTasksAcrossProcs) {
  for (unsigned procs : {1u, 2u, 4u}) {
    myriad::Runtime rt({.procs = procs});
    Chan<long> ping(0), pong(0);
    const long rounds = myriad::test::scaled(100000);
    auto a = rt.spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        ping.send(i);
        EXPECT_EQ(pong.recv().value(), i + 1);
      }
      ping.close();
    });
    auto b = rt.spawn([&] {
      while (auto v = ping.recv()) pong.send(*v + 1);
    });
    a.join();
    b.join();
  }
}

TEST(ChanBasic, BufferedManyProducersConsumersCountAndSum) {
  myriad::Runtime rt({.procs = 4});
  Chan<long> c(64);
  const long per = myriad::test::scaled(50000);
  const int producers = 4, consumers = 4;
  std::atomic<long> sum{0}, count{0};
  myriad::WaitGroup prod, cons;
  prod.add(producers);
  cons.add(consumers);
  for (int p = 0; p < producers; ++p)
    rt.spawn_detached([&, p] {
      for (long i = 0; i < per; ++i) c.send(p * per + i);
      prod.done();
    });
  for (int k = 0; k < consumers; ++k)
    rt.spawn_detached([&] {
      long s = 0, n = 0;
      while (auto v = c.recv()) {
        s += *v;
        ++n;
      }
      sum += s;
      count += n;
      cons.done();
    });
  prod.wait();
  c.close();
  cons.wait();
  const long total = producers * per;
  EXPECT_EQ(count.load(), total);
  EXPECT_EQ(sum.load(), total * (total - 1) / 2);
}

TEST(ChanBasic, SelectOverTwoChannelsFromForeignThreadAndTasks) {
  myriad::Runtime rt({.procs = 2});
  Chan<int> a(0), b(4);
  const int per = static_cast<int>(myriad::test::scaled(20000));
  rt.spawn_detached([&] {
    for (int i = 0; i < per; ++i) a.send(1);
  });
  std::thread t([&] {
    for (int i = 0; i < per; ++i) b.send(2);
  });
  long sum = 0;
  for (int i = 0; i < 2 * per; ++i) {
    int x = 0, y = 0;
    auto r = myriad::select(myriad::recv_case(a, x), myriad::recv_case(b, y));
    ASSERT_TRUE(r.ok);
    sum += r.index == 0 ? x : y;
  }
  t.join();
  EXPECT_EQ(sum, 3L * per);
}

}  // namespace
