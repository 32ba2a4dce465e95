// Tamper, nonce, concurrency and context-cache tests of GcmKey.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "crypto/aead.h"
#include "crypto/gcm_ctx_cache.h"
#include "crypto/random.h"
#include "crypto/test_util.h"

namespace cfs::crypto {
namespace {

constexpr size_t kBlock = 4096;

struct Sealed {
  Bytes aad;
  Bytes pt;
  Bytes ct;
  Nonce nonce;
  Tag tag;
};

Sealed SealRandom(const GcmKey& key, size_t size, std::mt19937_64& rng) {
  Sealed s;
  s.aad.resize(24);  // file id (16) || block number (8), as the store uses it
  s.pt.resize(size);
  for (auto& b : s.aad) b = static_cast<uint8_t>(rng());
  for (auto& b : s.pt) b = static_cast<uint8_t>(rng());
  s.ct.resize(size);
  EXPECT_TRUE(key.Seal(s.aad, s.pt, s.ct.data(), &s.nonce, &s.tag).ok());
  return s;
}

// Opens and checks the all-or-nothing contract: the plaintext on success,
// all zeros on failure.
bool OpenChecked(const GcmKey& key, const Bytes& aad, const Nonce& nonce, const Tag& tag,
                 const Bytes& ct, const Bytes& expected_pt) {
  Bytes out(ct.size(), 0xcc);
  const bool ok = key.Open(aad, nonce, tag, ct, out.data());
  if (ok) {
    EXPECT_EQ(out, expected_pt);
  } else {
    EXPECT_EQ(out, Bytes(ct.size(), 0)) << "failed Open must leave zeros, not data";
  }
  return ok;
}

void Flip(uint8_t* p, size_t bit) { p[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8)); }

class GcmTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rng_.seed(testing::TestSeed());
    s_ = SealRandom(key_, kBlock, rng_);
    ASSERT_TRUE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, s_.ct, s_.pt));
  }
  GcmKey key_{RandomSecret(kKeySize)};
  std::mt19937_64 rng_;
  Sealed s_;
};

TEST_F(GcmTamperTest, DecryptFailsOnEveryTagBitFlip) {
  for (size_t bit = 0; bit < kTagSize * 8; ++bit) {
    Tag bad = s_.tag;
    Flip(bad.data(), bit);
    EXPECT_FALSE(OpenChecked(key_, s_.aad, s_.nonce, bad, s_.ct, s_.pt)) << "tag bit " << bit;
  }
}

TEST_F(GcmTamperTest, DecryptFailsOnEveryNonceBitFlip) {
  for (size_t bit = 0; bit < kNonceSize * 8; ++bit) {
    Nonce bad = s_.nonce;
    Flip(bad.data(), bit);
    EXPECT_FALSE(OpenChecked(key_, s_.aad, bad, s_.tag, s_.ct, s_.pt)) << "nonce bit " << bit;
  }
}

TEST_F(GcmTamperTest, DecryptFailsWhenBlockMovedToOtherFileOrPosition) {
  // Every bit of the AAD (file id || block number).
  for (size_t bit = 0; bit < s_.aad.size() * 8; ++bit) {
    Bytes bad = s_.aad;
    Flip(bad.data(), bit);
    EXPECT_FALSE(OpenChecked(key_, bad, s_.nonce, s_.tag, s_.ct, s_.pt)) << "aad bit " << bit;
  }
  EXPECT_FALSE(OpenChecked(key_, Bytes(), s_.nonce, s_.tag, s_.ct, s_.pt));
}

TEST_F(GcmTamperTest, DecryptFailsOnCiphertextBitFlips) {
  // The first and last bit of every 64-byte line, plus 512 random positions.
  std::vector<size_t> bits;
  for (size_t byte = 0; byte < kBlock; byte += 64) {
    bits.push_back(byte * 8);
    bits.push_back((byte + 63) * 8 + 7);
  }
  for (int i = 0; i < 512; ++i) bits.push_back(rng_() % (kBlock * 8));
  for (size_t bit : bits) {
    Bytes bad = s_.ct;
    Flip(bad.data(), bit);
    EXPECT_FALSE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, bad, s_.pt)) << "ct bit " << bit;
  }
}

TEST_F(GcmTamperTest, DecryptFailsOnTruncationZeroingAndOtherKey) {
  Bytes shorter(s_.ct.begin(), s_.ct.end() - 1);
  Bytes expected_short(s_.pt.begin(), s_.pt.end() - 1);
  EXPECT_FALSE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, shorter, expected_short));
  EXPECT_FALSE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, Bytes(kBlock, 0), s_.pt));
  EXPECT_FALSE(OpenChecked(key_, s_.aad, Nonce{}, Tag{}, Bytes(kBlock, 0), s_.pt));
  GcmKey other(RandomSecret(kKeySize));
  EXPECT_FALSE(OpenChecked(other, s_.aad, s_.nonce, s_.tag, s_.ct, s_.pt));
  // The context survives failures: the right inputs still open.
  EXPECT_TRUE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, s_.ct, s_.pt));
}

TEST_F(GcmTamperTest, RecoveryDecryptIgnoresTheTag) {
  Bytes out(kBlock);
  key_.DecryptUnauthenticatedForRecovery(s_.nonce, s_.ct, out.data());
  EXPECT_EQ(out, s_.pt);
  // A torn block (one sector new, one old) decrypts to the mix, byte for byte.
  Bytes torn = s_.ct;
  std::fill(torn.begin() + 512, torn.begin() + 1024, 0);
  key_.DecryptUnauthenticatedForRecovery(s_.nonce, torn, out.data());
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 512, s_.pt.begin()));
  EXPECT_TRUE(std::equal(out.begin() + 1024, out.end(), s_.pt.begin() + 1024));
  EXPECT_FALSE(std::equal(out.begin() + 512, out.begin() + 1024, s_.pt.begin() + 512));
  // And the regular Open still refuses it.
  EXPECT_FALSE(OpenChecked(key_, s_.aad, s_.nonce, s_.tag, torn, s_.pt));
}

TEST(GcmKey, SealNeverReusesNonce) {
  GcmKey key(RandomSecret(kKeySize));
  std::set<Nonce> nonces;
  std::set<Tag> tags;
  const Bytes block(kBlock, 0);
  Bytes ct(kBlock);
  for (int i = 0; i < 10000; ++i) {
    Nonce n;
    Tag t;
    ASSERT_TRUE(key.Seal({}, block, ct.data(), &n, &t).ok());
    nonces.insert(n);
    tags.insert(t);
  }
  EXPECT_EQ(nonces.size(), 10000u);
  EXPECT_EQ(tags.size(), 10000u);  // same plaintext, fresh nonce: fresh ciphertext
}

TEST(GcmKey, ParentAndForkedChildNeverShareNonces) {
  GcmKey key(RandomSecret(kKeySize));
  const Bytes block(64, 0);
  Bytes ct(block.size());
  Nonce parent_nonce;
  Tag tag;
  // Fill this thread's nonce batch, so the child inherits unused nonces.
  ASSERT_TRUE(key.Seal({}, block, ct.data(), &parent_nonce, &tag).ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Nonce child_nonce;
    Tag child_tag;
    Bytes child_ct(block.size());
    const bool ok = key.Seal({}, block, child_ct.data(), &child_nonce, &child_tag).ok();
    const bool sent = ok && write(fds[1], child_nonce.data(), child_nonce.size()) ==
                                static_cast<ssize_t>(child_nonce.size());
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  ASSERT_TRUE(key.Seal({}, block, ct.data(), &parent_nonce, &tag).ok());
  Nonce child_nonce{};
  EXPECT_EQ(read(fds[0], child_nonce.data(), child_nonce.size()),
            static_cast<ssize_t>(child_nonce.size()));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(child_nonce, parent_nonce) << "a forked child reused the parent's next nonce";
}

TEST(GcmKey, EmptyAndLargeMessagesRoundTrip) {
  GcmKey key(RandomSecret(kKeySize));
  std::mt19937_64 rng(1);
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{17}, size_t{1} << 20}) {
    SCOPED_TRACE(size);
    Sealed s = SealRandom(key, size, rng);
    EXPECT_TRUE(OpenChecked(key, s.aad, s.nonce, s.tag, s.ct, s.pt));
    Tag bad = s.tag;
    bad[0] ^= 0x80;
    EXPECT_FALSE(OpenChecked(key, s.aad, s.nonce, bad, s.ct, s.pt));
  }
}

TEST(GcmKey, ConcurrentSealOpenWithThreeKeys) {
  const uint64_t seed = testing::TestSeed();
  std::vector<std::unique_ptr<GcmKey>> keys;
  for (int k = 0; k < 3; ++k) keys.push_back(std::make_unique<GcmKey>(RandomSecret(kKeySize)));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 400;
  std::vector<std::vector<Sealed>> sealed(kThreads);
  std::atomic<int> errors{0};
  auto run = [&](auto body) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
    for (auto& th : threads) th.join();
  };
  // Phase 1: every thread seals and opens with all three keys interleaved.
  run([&](int t) {
    std::mt19937_64 rng(seed + t);
    for (int i = 0; i < kPerThread; ++i) {
      const GcmKey& key = *keys[(i + t) % 3];
      Sealed s = SealRandom(key, 64 + rng() % kBlock, rng);
      Bytes out(s.ct.size());
      if (!key.Open(s.aad, s.nonce, s.tag, s.ct, out.data()) || out != s.pt) ++errors;
      const GcmKey& wrong = *keys[(i + t + 1) % 3];
      if (wrong.Open(s.aad, s.nonce, s.tag, s.ct, out.data())) ++errors;
      sealed[t].push_back(std::move(s));
    }
  });
  // Phase 2: each thread verifies another thread's blocks (contexts keyed
  // on a different thread must give the same results).
  run([&](int t) {
    const int src = (t + 1) % kThreads;
    for (int i = 0; i < kPerThread; ++i) {
      const Sealed& s = sealed[src][i];
      Bytes out(s.ct.size());
      if (!keys[(i + src) % 3]->Open(s.aad, s.nonce, s.tag, s.ct, out.data()) || out != s.pt) {
        ++errors;
      }
    }
  });
  EXPECT_EQ(errors.load(), 0);
}

TEST(GcmCtxCache, BoundedPerThread) {
  std::vector<std::unique_ptr<GcmKey>> keys;
  for (size_t k = 0; k < internal::kGcmCtxCacheSize + 8; ++k) {
    keys.push_back(std::make_unique<GcmKey>(RandomSecret(kKeySize)));
    Bytes ct(16);
    Nonce n;
    Tag t;
    ASSERT_TRUE(keys.back()->Seal({}, Bytes(16, 1), ct.data(), &n, &t).ok());
    EXPECT_LE(internal::CachedGcmCtxCountForThisThread(), internal::kGcmCtxCacheSize);
  }
  EXPECT_EQ(internal::CachedGcmCtxCountForThisThread(), internal::kGcmCtxCacheSize);
  // The oldest keys were evicted, the newest is cached, and evicted keys
  // still work (re-keyed on demand).
  EXPECT_EQ(internal::CachedGcmCtxCountForKey(keys.front()->id()), 0u);
  EXPECT_EQ(internal::CachedGcmCtxCountForKey(keys.back()->id()), 1u);
  std::mt19937_64 rng(2);
  Sealed s = SealRandom(*keys.front(), 100, rng);
  EXPECT_TRUE(OpenChecked(*keys.front(), s.aad, s.nonce, s.tag, s.ct, s.pt));
}

TEST(GcmCtxCache, DestroyedKeyLeavesNoContextInAnyThread) {
  auto key = std::make_unique<GcmKey>(RandomSecret(kKeySize));
  const uint64_t id = key->id();
  std::mutex mu;
  std::condition_variable cv;
  bool used = false;
  bool done = false;
  // A worker uses the key, then stays alive (its cache too) until told.
  std::thread worker([&] {
    Bytes ct(32);
    Nonce n;
    Tag t;
    EXPECT_TRUE(key->Seal({}, Bytes(32, 7), ct.data(), &n, &t).ok());
    std::unique_lock<std::mutex> lock(mu);
    used = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return used; });
  }
  Bytes ct(32);
  Nonce n;
  Tag t;
  ASSERT_TRUE(key->Seal({}, Bytes(32, 7), ct.data(), &n, &t).ok());
  EXPECT_EQ(internal::CachedGcmCtxCountForKey(id), 2u);  // main + worker
  key.reset();
  EXPECT_EQ(internal::CachedGcmCtxCountForKey(id), 0u);
  // A new key never inherits the old id (ids are never reused).
  GcmKey fresh(RandomSecret(kKeySize));
  EXPECT_GT(fresh.id(), id);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  worker.join();
}

// A key used by a thread_local destructor that runs after the thread's
// context cache is gone still works (uncached), and leaves nothing cached.
std::atomic<int> g_exit_seal_result{-1};

struct SealsAtThreadExit {
  const GcmKey* key = nullptr;
  ~SealsAtThreadExit() {
    if (key == nullptr) return;
    Bytes pt(100, 9), ct(100), out(100);
    Nonce n;
    Tag t;
    const bool ok = key->Seal({}, pt, ct.data(), &n, &t).ok() &&
                    key->Open({}, n, t, ct, out.data()) && out == pt;
    g_exit_seal_result = ok ? 1 : 0;
  }
};

TEST(GcmCtxCache, KeyUsableFromThreadExitDestructors) {
  GcmKey key(RandomSecret(kKeySize));
  std::thread worker([&] {
    static thread_local SealsAtThreadExit at_exit;  // constructed before the cache
    at_exit.key = &key;
    Bytes ct(16);
    Nonce n;
    Tag t;
    EXPECT_TRUE(key.Seal({}, Bytes(16, 1), ct.data(), &n, &t).ok());  // creates the cache
  });
  worker.join();
  EXPECT_EQ(g_exit_seal_result.load(), 1);
  EXPECT_EQ(internal::CachedGcmCtxCountForKey(key.id()), 0u);
}

TEST(GcmKeyDeathTest, RejectsWrongKeySize) {
  EXPECT_DEATH({ GcmKey key(RandomSecret(16)); }, "GcmKey needs a 32-byte key");
}

}  // namespace
}  // namespace cfs::crypto
