#include "store/range_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/fd_cache.h"

namespace cfs::store {
namespace {

using namespace std::chrono_literals;

TEST(RangeLockTest, DisjointExclusiveRangesDoNotWait) {
  RangeLock lock;
  auto a = lock.Lock(0, 9, true);
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto b = lock.Lock(10, 19, true);
    got = true;
  });
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(RangeLockTest, SharedRangesOverlapButExclusiveWaits) {
  RangeLock lock;
  auto r1 = lock.Lock(0, 9, false);
  auto r2 = lock.Lock(5, 15, false);  // shared + shared: no wait
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto w = lock.Lock(9, 9, true);
    got = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(got.load());
  r1.Release();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(got.load());  // still overlaps r2
  r2.Release();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(WriteGateTest, CloseWaitsForWritersAndBlocksNewOnes) {
  WriteGate gate;
  gate.EnterWriter();
  std::atomic<bool> closed{false};
  std::thread barrier([&] {
    gate.Close();
    closed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(closed.load());
  gate.LeaveWriter();
  barrier.join();
  EXPECT_TRUE(closed.load());
  EXPECT_FALSE(gate.TryClose(10));  // already closed
  std::atomic<bool> entered{false};
  std::thread writer([&] {
    gate.EnterWriter();
    entered = true;
    gate.LeaveWriter();
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(entered.load());
  gate.Open();
  writer.join();
  EXPECT_TRUE(entered.load());
}

TEST(WriteGateTest, TryCloseGivesUpWhileAWriterStaysInside) {
  WriteGate gate;
  gate.EnterWriter();
  EXPECT_FALSE(gate.TryClose(20));
  gate.LeaveWriter();
  EXPECT_TRUE(gate.TryClose(20));
  gate.Open();
}

TEST(FdCacheTest, BoundedAndErasedEntriesAreNotHandedOut) {
  PosixBacking backing;
  FdCache cache(&backing, 2);
  FileId id{};
  int opens = 0;
  auto open = [&]() -> Result<int> {
    ++opens;
    return backing.OpenAt(AT_FDCWD, "/dev/null", O_RDONLY, 0);
  };
  auto a = cache.Get(id, 0, open);
  auto b = cache.Get(id, 1, open);
  auto c = cache.Get(id, 2, open);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(opens, 3);
  auto c2 = cache.Get(id, 2, open);
  EXPECT_EQ(opens, 3);  // hit
  EXPECT_EQ(c2->get(), c->get());
  cache.Erase(id, 2);
  auto c3 = cache.Get(id, 2, open);
  EXPECT_EQ(opens, 4);
  EXPECT_NE(c3->get(), c->get());
  // The evicted descriptor stays valid while held.
  EXPECT_GE(fcntl((*a)->fd(), F_GETFD), 0);
}

}  // namespace
}  // namespace cfs::store
