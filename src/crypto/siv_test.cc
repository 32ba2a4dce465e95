#include "crypto/siv.h"

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "crypto/siv_internal.h"
#include "crypto/test_util.h"

namespace cfs::crypto {
namespace {

using testing::Hex;
using testing::SecretHex;

// RFC 5297 appendix A.1: AES-SIV (AES-128, 256-bit key), one AD component.
TEST(Siv, Rfc5297DeterministicVector) {
  const SecretBytes key =
      SecretHex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const Bytes ad = Hex("101112131415161718191a1b1c1d1e1f2021222324252627");
  const ByteView aad[] = {ad};
  auto ct = internal::SivEncrypt(key, aad, Hex("112233445566778899aabbccddee"));
  ASSERT_TRUE(ct.ok()) << ct.status().ToString();
  EXPECT_EQ(HexEncode(*ct), "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c");
  auto pt = internal::SivDecrypt(key, aad, *ct);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(HexEncode(*pt), "112233445566778899aabbccddee");
}

// RFC 5297 appendix A.2: two AD components and a nonce (the last component).
TEST(Siv, Rfc5297NonceBasedVector) {
  const SecretBytes key =
      SecretHex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f");
  const Bytes ad1 = Hex(
      "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100");
  const Bytes ad2 = Hex("102030405060708090a0");
  const Bytes nonce = Hex("09f911029d74e35bd84156c5635688c0");
  const ByteView aad[] = {ad1, ad2, nonce};
  const Bytes pt = Hex(
      "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349"
      "562d414553");
  auto ct = internal::SivEncrypt(key, aad, pt);
  ASSERT_TRUE(ct.ok()) << ct.status().ToString();
  EXPECT_EQ(HexEncode(*ct),
            "7bdb6e3b432667eb06f4d14bff2fbd0f"
            "cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829"
            "ea64ad544a272e9c485b62a3fd5c0d");
}

TEST(SivKey, RoundTripIsDeterministic) {
  SivKey key(RandomSecret(64));
  const Bytes dir = Hex("000102030405060708090a0b0c0d0e0f");
  auto a = key.Encrypt(dir, AsBytes("pg_wal"));
  auto b = key.Encrypt(dir, AsBytes("pg_wal"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 16u + 6u);
  auto pt = key.Decrypt(dir, *a);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(AsChars(*pt), "pg_wal");
  auto c = key.Encrypt(dir, AsBytes("pg_xact"));
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(SivKey, DecryptFailsWhenNameMovedToOtherDirectory) {
  SivKey key(RandomSecret(64));
  auto ct = key.Encrypt(Hex("01"), AsBytes("base"));
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(key.Decrypt(Hex("02"), *ct).status().code(), Code::kDataLoss);
  EXPECT_EQ(key.Decrypt(ByteView(), *ct).status().code(), Code::kDataLoss);
}

TEST(SivKey, DecryptFailsOnEveryBitFlip) {
  SivKey key(RandomSecret(64));
  const Bytes dir = Hex("aabbccddeeff00112233445566778899");
  auto ct = key.Encrypt(dir, AsBytes("16384_fsm"));
  ASSERT_TRUE(ct.ok());
  for (size_t bit = 0; bit < ct->size() * 8; ++bit) {
    Bytes bad = *ct;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(key.Decrypt(dir, bad).status().code(), Code::kDataLoss) << "bit " << bit;
  }
  for (size_t bit = 0; bit < dir.size() * 8; ++bit) {
    Bytes bad_dir = dir;
    bad_dir[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(key.Decrypt(bad_dir, *ct).status().code(), Code::kDataLoss) << "aad bit " << bit;
  }
}

TEST(SivKey, DecryptFailsUnderOtherKeyAndOnShortInput) {
  SivKey a(RandomSecret(64));
  SivKey b(RandomSecret(64));
  auto ct = a.Encrypt(Hex("01"), AsBytes("x"));
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(b.Decrypt(Hex("01"), *ct).status().code(), Code::kDataLoss);
  EXPECT_EQ(a.Decrypt(Hex("01"), ByteView(ct->data(), 16)).status().code(), Code::kDataLoss);
  EXPECT_EQ(a.Decrypt(Hex("01"), ByteView()).status().code(), Code::kDataLoss);
}

TEST(SivKey, EmptyPlaintextIsRefused) {
  SivKey key(RandomSecret(64));
  EXPECT_EQ(key.Encrypt(Hex("01"), ByteView()).status().code(), Code::kInvalidArgument);
}

TEST(SivKey, LongNameAndEmptyAadRoundTrip) {
  SivKey key(RandomSecret(64));
  const std::string name(255, 'n');
  auto ct = key.Encrypt(ByteView(), AsBytes(name));
  ASSERT_TRUE(ct.ok());
  auto pt = key.Decrypt(ByteView(), *ct);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(AsChars(*pt), name);
}

TEST(SivKeyDeathTest, RejectsWrongKeySize) {
  EXPECT_DEATH({ SivKey key(RandomSecret(32)); }, "SivKey needs a 64-byte key");
}

}  // namespace
}  // namespace cfs::crypto
