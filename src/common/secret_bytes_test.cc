#include "common/secret_bytes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/secret_pool.h"

namespace cfs {
namespace {

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

SecretBytes Filled(size_t size, uint8_t byte) {
  SecretBytes s(size);
  for (size_t i = 0; i < size; ++i) s.UnsafeData()[i] = byte;
  return s;
}

TEST(SecretBytesTest, NewSecretIsZeroFilledAtEverySizeBoundary) {
  for (size_t size : {1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 4095, 4096, 4097}) {
    SecretBytes s(size);
    ASSERT_EQ(s.size(), size);
    ASSERT_NE(s.UnsafeData(), nullptr);
    EXPECT_TRUE(AllZero(s.UnsafeData(), size)) << size;
    // The whole requested range is writable.
    for (size_t i = 0; i < size; ++i) s.UnsafeData()[i] = 0xA5;
  }
}

TEST(SecretBytesTest, SlotSizesFollowTheClasses) {
  EXPECT_EQ(secret_pool::SlotSizeFor(1), 32u);
  EXPECT_EQ(secret_pool::SlotSizeFor(32), 32u);
  EXPECT_EQ(secret_pool::SlotSizeFor(33), 64u);
  EXPECT_EQ(secret_pool::SlotSizeFor(64), 64u);
  EXPECT_EQ(secret_pool::SlotSizeFor(65), 128u);
  EXPECT_EQ(secret_pool::SlotSizeFor(129), 256u);
  EXPECT_EQ(secret_pool::SlotSizeFor(256), 256u);
}

TEST(SecretBytesTest, EmptySecretHasNoStorage) {
  SecretBytes s(0);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.UnsafeData(), nullptr);
  EXPECT_TRUE(s.Equals(SecretBytes()));
  EXPECT_TRUE(s.Clone().empty());
}

TEST(SecretBytesTest, ReleasedSlotIsWipedThroughTheWholeSlot) {
  for (size_t size : {1, 32, 40, 64, 100, 128, 200, 256}) {
    const size_t slot = secret_pool::SlotSizeFor(size);
    SecretBytes s(size);
    uint8_t* p = s.UnsafeData();
    // Also dirty the slack behind the secret: Release must wipe it too.
    for (size_t i = 0; i < slot; ++i) p[i] = 0x5C;
    std::vector<uint8_t> before(slot);
    ASSERT_TRUE(secret_pool::CopySlotForTest(p, slot, before.data()));
    EXPECT_EQ(before[0], 0x5C);
    s.Wipe();
    EXPECT_TRUE(s.empty());
    std::vector<uint8_t> after(slot, 0xFF);
    ASSERT_TRUE(secret_pool::CopySlotForTest(p, slot, after.data())) << size;
    EXPECT_TRUE(AllZero(after.data(), slot)) << "slot of " << size << " bytes not wiped";
  }
}

TEST(SecretBytesTest, DestructorWipesAndReissuedSlotReadsAsZeros) {
  uint8_t* first = nullptr;
  {
    SecretBytes s = Filled(32, 0xEE);
    first = s.UnsafeData();
  }
  uint8_t copy[32];
  ASSERT_TRUE(secret_pool::CopySlotForTest(first, sizeof copy, copy));
  EXPECT_TRUE(AllZero(copy, sizeof copy));
  // LIFO free list: the next 32-byte secret of this thread gets that slot.
  SecretBytes again(32);
  EXPECT_EQ(again.UnsafeData(), first);
  EXPECT_TRUE(AllZero(again.UnsafeData(), 32));
}

TEST(SecretBytesTest, LargeSecretsAreNotPooled) {
  SecretBytes big(257);
  uint8_t tmp[1];
  EXPECT_FALSE(secret_pool::CopySlotForTest(big.UnsafeData(), 1, tmp));
  SecretBytes small(256);
  EXPECT_TRUE(secret_pool::CopySlotForTest(small.UnsafeData(), 1, tmp));
}

TEST(SecretBytesTest, MoveTransfersOwnershipAndAssignmentReleasesTheOld) {
  SecretBytes a = Filled(32, 1);
  const uint8_t* p = a.UnsafeData();
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.UnsafeData(), nullptr);
  EXPECT_EQ(b.UnsafeData(), p);
  SecretBytes c = Filled(64, 2);
  uint8_t* old_c = c.UnsafeData();
  c = std::move(b);
  EXPECT_EQ(c.UnsafeData(), p);
  EXPECT_EQ(c.size(), 32u);
  uint8_t copy[64];
  ASSERT_TRUE(secret_pool::CopySlotForTest(old_c, sizeof copy, copy));
  EXPECT_TRUE(AllZero(copy, sizeof copy));
  c = std::move(c);  // self-move keeps the value
  EXPECT_EQ(c.size(), 32u);
}

TEST(SecretBytesTest, CloneIsEqualButSeparate) {
  for (size_t size : {32, 256, 5000}) {
    SecretBytes a = Filled(size, 7);
    SecretBytes b = a.Clone();
    EXPECT_NE(a.UnsafeData(), b.UnsafeData());
    EXPECT_TRUE(a.Equals(b));
    b.UnsafeData()[size - 1] = 8;
    EXPECT_FALSE(a.Equals(b));
    EXPECT_FALSE(a.Equals(Filled(size + 1, 7)));
  }
}

TEST(SecretBytesTest, ResultDereferenceOfRvalueMoves) {
  Result<SecretBytes> r(Filled(32, 3));
  const uint8_t* p = r->UnsafeData();
  SecretBytes taken = *std::move(r);
  EXPECT_EQ(taken.UnsafeData(), p);
  EXPECT_TRUE(r->empty());  // NOLINT(bugprone-use-after-move): moved-from
}

unsigned Seed() {
  const char* env = std::getenv("CIPHERFS_SEED");
  unsigned seed = env != nullptr ? static_cast<unsigned>(std::strtoul(env, nullptr, 10))
                                 : std::random_device{}();
  std::printf("CIPHERFS_SEED=%u\n", seed);
  return seed;
}

// Threads allocate, fill with their own pattern, verify and free secrets of
// random sizes across all classes; a slot handed to two owners at once, or
// not wiped on reuse, breaks a pattern or the zero check.
TEST(SecretBytesConcurrencyTest, ThreadsAllocateAndFreeConcurrently) {
  const unsigned seed = Seed();
  constexpr int kThreads = 8;
  constexpr int kRounds = 3000;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed + t);
      std::vector<std::pair<SecretBytes, uint8_t>> live;
      for (int i = 0; i < kRounds; ++i) {
        if (live.size() > 40 || (!live.empty() && rng() % 3 == 0)) {
          size_t k = rng() % live.size();
          auto& [s, tag] = live[k];
          for (size_t j = 0; j < s.size(); ++j) {
            if (s.UnsafeData()[j] != tag) ++errors;
          }
          live.erase(live.begin() + static_cast<long>(k));
          continue;
        }
        size_t size = 1 + rng() % 300;  // also crosses into unpooled sizes
        SecretBytes s(size);
        if (!AllZero(s.UnsafeData(), size)) ++errors;
        uint8_t tag = static_cast<uint8_t>(1 + (t * 31 + i) % 255);
        for (size_t j = 0; j < size; ++j) s.UnsafeData()[j] = tag;
        live.emplace_back(std::move(s), tag);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  // Every slot is back: the pool does not lose slots under contention.
  secret_pool::Stats st = secret_pool::StatsForTest();
  for (size_t i = 0; i < st.total_slots.size(); ++i) {
    EXPECT_EQ(st.free_slots[i], st.total_slots[i]) << "class " << secret_pool::kClassSizes[i];
  }
}

}  // namespace
}  // namespace cfs
