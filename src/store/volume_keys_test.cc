#include "store/volume_keys.h"

#include <gtest/gtest.h>

#include <string_view>
#include <atomic>
#include <thread>
#include <vector>

#include "crypto/random.h"

namespace cfs::store {
namespace {

constexpr FileId kFileA = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
constexpr FileId kFileB = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};

std::unique_ptr<VolumeKeys> MustDerive(const SecretBytes& data_key, size_t cache = 4096) {
  auto keys = VolumeKeys::Derive(data_key, cache);
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return keys.ok() ? std::move(keys).value() : nullptr;
}

std::shared_ptr<const crypto::GcmKey> MustChunkKey(const VolumeKeys& keys, const FileId& file,
                                                   uint64_t chunk, uint32_t gen) {
  auto key = keys.ChunkKey(file, chunk, gen);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return key.ok() ? *key : nullptr;
}

struct Sealed {
  Bytes ct;
  crypto::Nonce nonce;
  crypto::Tag tag;
};

const Bytes kAad = {0xaa, 0xbb};
const Bytes kBlock(4096, 0x5a);

Sealed SealBlock(const crypto::GcmKey& key) {
  Sealed s{Bytes(kBlock.size()), {}, {}};
  EXPECT_TRUE(key.Seal(kAad, kBlock, s.ct.data(), &s.nonce, &s.tag).ok());
  return s;
}

bool Opens(const crypto::GcmKey& key, const Sealed& s) {
  Bytes out(s.ct.size());
  return key.Open(kAad, s.nonce, s.tag, s.ct, out.data()) && out == kBlock;
}

TEST(VolumeKeys, SameDataKeyDerivesTheSameKeys) {
  const SecretBytes data_key = crypto::RandomSecret(32);
  auto a = MustDerive(data_key);
  auto b = MustDerive(data_key);
  ASSERT_TRUE(a && b);
  const Sealed s = SealBlock(*MustChunkKey(*a, kFileA, 7, 3));
  EXPECT_TRUE(Opens(*MustChunkKey(*b, kFileA, 7, 3), s));

  auto name_a = a->NameKey();
  auto name_b = b->NameKey();
  ASSERT_TRUE(name_a.ok() && name_b.ok());
  auto enc = (*name_a)->Encrypt(kAad, AsBytes("base"));
  ASSERT_TRUE(enc.ok());
  auto dec = (*name_b)->Decrypt(kAad, *enc);
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(AsChars(*dec), "base");

  auto meta_a = a->MetaKey();
  auto meta_b = b->MetaKey();
  ASSERT_TRUE(meta_a.ok() && meta_b.ok());
  EXPECT_TRUE((*meta_b)->Verify(kBlock, (*meta_a)->Compute(kBlock)));
}

SecretBytes FromHex(std::string_view hex) {
  auto b = HexDecode(hex);
  EXPECT_TRUE(b.has_value());
  return b ? SecretBytes(b->data(), b->size()) : SecretBytes();
}

// Pins the on-disk key schedule of docs/format/keys.md. Expected keys were
// computed independently (Python hmac/hashlib HKDF) from data key 00..1f,
// file id a0..af, chunk 0x0102030405060708, generation 3:
//   chunk info = "cipherfs v1 chunk" || 08 07 06 05 04 03 02 01 || 03 00 00 00
TEST(VolumeKeys, DerivationMatchesTheDocumentedFormat) {
  Bytes dk(32);
  for (size_t i = 0; i < dk.size(); ++i) dk[i] = static_cast<uint8_t>(i);
  FileId file;
  for (size_t i = 0; i < file.size(); ++i) file[i] = static_cast<uint8_t>(0xa0 + i);
  auto keys = MustDerive(SecretBytes(dk.data(), dk.size()));
  ASSERT_TRUE(keys);

  const crypto::GcmKey expected_chunk(
      FromHex("d1ec69aa8ceda7f05ad4b2ad364df74a6fbd3516bdb37191dfdc472608f13f4d"));
  const Sealed s = SealBlock(*MustChunkKey(*keys, file, 0x0102030405060708, 3));
  EXPECT_TRUE(Opens(expected_chunk, s));

  const crypto::SivKey expected_names(FromHex(
      "4a4924bc3b1deca3759e517b3349773dc537eabe92837fd6221b4da7a402dc92"
      "d652109c299fd720a2d4b5c6c91bc7e3b70b2859e71e6cd13b927eff5966291c"));
  auto names = keys->NameKey();
  ASSERT_TRUE(names.ok());
  auto got = (*names)->Encrypt(kAad, AsBytes("postgresql.conf"));
  auto want = expected_names.Encrypt(kAad, AsBytes("postgresql.conf"));
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_EQ(*got, *want);

  const crypto::MacKey expected_meta(
      FromHex("18858de8135ea1bcbcb4adc5cd76252b460be8f7cd042d94fa1a66ec28902059"));
  auto meta = keys->MetaKey();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ((*meta)->Compute(kBlock), expected_meta.Compute(kBlock));
}

TEST(VolumeKeys, DecryptFailsUnderOtherChunkGenerationFileOrVolume) {
  const SecretBytes data_key = crypto::RandomSecret(32);
  auto keys = MustDerive(data_key);
  auto other_volume = MustDerive(crypto::RandomSecret(32));
  ASSERT_TRUE(keys && other_volume);
  const Sealed s = SealBlock(*MustChunkKey(*keys, kFileA, 5, 1));
  EXPECT_TRUE(Opens(*MustChunkKey(*keys, kFileA, 5, 1), s));
  EXPECT_FALSE(Opens(*MustChunkKey(*keys, kFileA, 6, 1), s));             // other chunk
  EXPECT_FALSE(Opens(*MustChunkKey(*keys, kFileA, 5, 2), s));             // other generation
  EXPECT_FALSE(Opens(*MustChunkKey(*keys, kFileB, 5, 1), s));             // other file
  EXPECT_FALSE(Opens(*MustChunkKey(*keys, kFileA, uint64_t{5} << 32, 1), s));  // high bits
  EXPECT_FALSE(Opens(*MustChunkKey(*other_volume, kFileA, 5, 1), s));     // other data key
}

TEST(VolumeKeys, NameAndMetaKeysAreIndependentOfEachOther) {
  auto a = MustDerive(crypto::RandomSecret(32));
  auto b = MustDerive(crypto::RandomSecret(32));
  ASSERT_TRUE(a && b);
  auto enc = (*a->NameKey())->Encrypt(kAad, AsBytes("pg_wal"));
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ((*b->NameKey())->Decrypt(kAad, *enc).status().code(), Code::kDataLoss);
  EXPECT_FALSE((*b->MetaKey())->Verify(kBlock, (*a->MetaKey())->Compute(kBlock)));
}

TEST(VolumeKeys, CacheReturnsTheSameKeyObjectUntilEvicted) {
  auto keys = MustDerive(crypto::RandomSecret(32), /*cache=*/2);
  ASSERT_TRUE(keys);
  auto k0 = MustChunkKey(*keys, kFileA, 0, 0);
  EXPECT_EQ(MustChunkKey(*keys, kFileA, 0, 0).get(), k0.get());
  const Sealed s = SealBlock(*k0);
  MustChunkKey(*keys, kFileA, 1, 0);
  MustChunkKey(*keys, kFileA, 2, 0);  // evicts chunk 0 (least recently used)
  auto again = MustChunkKey(*keys, kFileA, 0, 0);
  EXPECT_NE(again.get(), k0.get());
  EXPECT_TRUE(Opens(*again, s));  // a re-derived key is the same key
}

TEST(VolumeKeys, WipeMakesEveryLaterCallFail) {
  auto keys = MustDerive(crypto::RandomSecret(32));
  ASSERT_TRUE(keys);
  ASSERT_TRUE(keys->ChunkKey(kFileA, 0, 0).ok());
  EXPECT_FALSE(keys->wiped());
  keys->Wipe();
  EXPECT_TRUE(keys->wiped());
  EXPECT_EQ(keys->ChunkKey(kFileA, 0, 0).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(keys->ChunkKey(kFileB, 9, 9).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(keys->NameKey().status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(keys->MetaKey().status().code(), Code::kFailedPrecondition);
  keys->Wipe();  // idempotent
  EXPECT_TRUE(keys->wiped());
}

TEST(VolumeKeys, RejectsDataKeyOfWrongSize) {
  EXPECT_EQ(VolumeKeys::Derive(crypto::RandomSecret(16)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(VolumeKeys::Derive(SecretBytes()).status().code(), Code::kInvalidArgument);
}

// Cache sizes 8 (one LRU) and 4096 (sharded).
class VolumeKeysConcurrency : public ::testing::TestWithParam<size_t> {};

TEST_P(VolumeKeysConcurrency, ConcurrentLookupsAndWipeAreSafe) {
  auto keys = MustDerive(crypto::RandomSecret(32), GetParam());
  ASSERT_TRUE(keys);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::atomic<int> sealed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 300; ++i) {
        auto key = keys->ChunkKey(t % 2 ? kFileA : kFileB, (i * 7 + t) % 20, i % 3);
        if (!key.ok()) {
          if (key.status().code() != Code::kFailedPrecondition) ++failures;
          continue;
        }
        const Sealed s = SealBlock(**key);
        if (!Opens(**key, s)) ++failures;
        ++sealed;
      }
    });
  }
  threads.emplace_back([&] {
    while (sealed.load() < 200) std::this_thread::yield();
    keys->Wipe();
  });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(keys->wiped());
  EXPECT_EQ(keys->ChunkKey(kFileA, 0, 0).status().code(), Code::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(CacheSizes, VolumeKeysConcurrency, ::testing::Values(8, 4096));

TEST(VolumeKeys, ShardedCacheKeepsEveryKeyWithinCapacity) {
  auto keys = MustDerive(crypto::RandomSecret(32));  // 4096 entries, sharded
  ASSERT_TRUE(keys);
  std::vector<std::shared_ptr<const crypto::GcmKey>> first;
  for (uint64_t c = 0; c < 200; ++c) first.push_back(MustChunkKey(*keys, kFileA, c, 0));
  for (uint64_t c = 0; c < 200; ++c) {
    EXPECT_EQ(MustChunkKey(*keys, kFileA, c, 0).get(), first[c].get()) << "chunk " << c;
  }
}

}  // namespace
}  // namespace cfs::store
