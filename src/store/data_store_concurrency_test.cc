// Concurrent writers and readers on one file: disjoint ranges (exact
// result), disjoint 512-byte sectors of the same blocks (read-modify-write
// under a block lock), and whole-block races (one writer's block wins).
#include <linux/falloc.h>

#include <atomic>
#include <thread>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::RandomData;
using testing::ReadAll;
using testing::StoreFixture;
using testing::TestSeed;

class ConcurrencyTest : public StoreFixture {};
INSTANTIATE_TEST_SUITE_P(Encryption, ConcurrencyTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

constexpr int kThreads = 8;

TEST_P(ConcurrencyTest, DisjointBlockRangesAreExact) {
  auto f = NewFile("a");
  const uint64_t seed = TestSeed();
  const size_t kPerThread = 20;  // writes per thread, 3 blocks each, interleaved across chunks
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (size_t i = 0; i < kPerThread; ++i) {
        uint64_t slot = i * kThreads + t;  // disjoint 3-block slots
        Bytes data = RandomData(rng, 3 * 4096);
        if (!f->Write(slot * 3 * 4096, data).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  Bytes model(kThreads * kPerThread * 3 * 4096);
  for (int t = 0; t < kThreads; ++t) {
    std::mt19937_64 rng(seed + t);
    for (size_t i = 0; i < kPerThread; ++i) {
      Bytes data = RandomData(rng, 3 * 4096);
      std::copy(data.begin(), data.end(), model.begin() + (i * kThreads + t) * 3 * 4096);
    }
  }
  EXPECT_EQ(ReadAll(*f), model);
  Reopen();
  EXPECT_EQ(ReadAll(*OpenFile("a")), model);
}

TEST_P(ConcurrencyTest, DisjointSectorsOfSharedBlocksAllSurvive) {
  auto f = NewFile("a");
  const int kBlocks = 40;  // crosses chunk boundaries (16 blocks per chunk)
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {  // thread t owns sector t of every block
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (int b = 0; b < kBlocks; ++b) {
          Bytes sector(512, uint8_t(t * 16 + round));
          if (!f->Write(uint64_t(b) * 4096 + t * 512, sector).ok()) ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  Bytes got = ReadAll(*f);
  ASSERT_EQ(got.size(), size_t(kBlocks) * 4096);
  for (int b = 0; b < kBlocks; ++b) {
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < 512; ++i) {
        ASSERT_EQ(got[size_t(b) * 4096 + t * 512 + i], uint8_t(t * 16 + 2)) << "block " << b << " sector " << t;
      }
    }
  }
}

TEST_P(ConcurrencyTest, SameBlockRacesLeaveOneWholeWrite) {
  auto f = NewFile("a");
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, torn_reads{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        Bytes block(2 * 4096, uint8_t(t + 1));  // blocks 5 and 6 of chunk 0
        if (!f->Write(5 * 4096, block).ok()) ++errors;
      }
    });
  }
  std::thread reader([&] {
    Bytes buf(2 * 4096);
    while (!stop) {
      auto n = f->Read(5 * 4096, buf.size(), buf.data());
      if (!n.ok()) {
        ++errors;
        continue;
      }
      if (*n == buf.size() && !std::all_of(buf.begin(), buf.end(), [&](uint8_t x) { return x == buf[0]; })) {
        ++torn_reads;
      }
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  reader.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(torn_reads.load(), 0);
  Bytes got = ReadAll(*f);
  ASSERT_EQ(got.size(), 7 * 4096u);
  uint8_t v = got[5 * 4096];
  EXPECT_GE(v, 1);
  EXPECT_LE(v, kThreads);
  EXPECT_TRUE(std::all_of(got.begin() + 5 * 4096, got.end(), [&](uint8_t x) { return x == v; }));
}

TEST_P(ConcurrencyTest, ExtendingWritersAndTruncateKeepSizeConsistent) {
  auto f = NewFile("a");
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        uint64_t off = uint64_t(i * 4 + t) * 5000;
        if (!f->Write(off, Bytes(5000, uint8_t(t + 1))).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  EXPECT_EQ(f->size(), 120u * 5000);
  Bytes got = ReadAll(*f);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], uint8_t((i / 5000) % 4 + 1)) << i;
}

}  // namespace
}  // namespace cfs::store
