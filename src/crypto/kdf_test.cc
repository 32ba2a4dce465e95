#include "crypto/kdf.h"

#include <gtest/gtest.h>

#include "crypto/test_util.h"

namespace cfs::crypto {
namespace {

using testing::Hex;
using testing::SecretHex;

std::string HexOf(const SecretBytes& s) { return HexEncode(s.UnsafeSpan()); }

Bytes Sequence(uint8_t first, uint8_t last) {
  Bytes b;
  for (int v = first; v <= last; ++v) b.push_back(static_cast<uint8_t>(v));
  return b;
}

// RFC 5869 appendix A, test cases 1-3 (SHA-256).
TEST(Hkdf, Rfc5869Case1) {
  auto okm = HkdfSha256(SecretHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                        Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexOf(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, Rfc5869Case2LongInputs) {
  const Bytes ikm = Sequence(0x00, 0x4f);
  auto okm = HkdfSha256(testing::Secret(ikm), Sequence(0x60, 0xaf), Sequence(0xb0, 0xff), 82);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexOf(*okm),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(Hkdf, Rfc5869Case3EmptySaltAndInfo) {
  auto okm = HkdfSha256(SecretHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), ByteView(),
                        ByteView(), 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexOf(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(Hkdf, RejectsBadLengthsAndEmptyKey) {
  const SecretBytes ikm = SecretHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 255 * 32 + 1).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(HkdfSha256(ikm, {}, {}, 255 * 32).ok());
  EXPECT_EQ(HkdfSha256(SecretBytes(), {}, {}, 32).status().code(), Code::kInvalidArgument);
}

TEST(Hkdf, InfoSeparatesOutputs) {
  const SecretBytes ikm = SecretHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto a = HkdfSha256(ikm, {}, AsBytes("cipherfs v1 names"), 32);
  auto b = HkdfSha256(ikm, {}, AsBytes("cipherfs v1 meta"), 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->Equals(*b));
}

// RFC 7914 section 12, the first two vectors (the others take seconds).
TEST(Scrypt, Rfc7914EmptyPasswordAndSalt) {
  auto dk = Scrypt("", ByteView(), ScryptParams{16, 1, 1}, 64);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_EQ(HexOf(*dk),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
            "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
}

TEST(Scrypt, Rfc7914PasswordNaCl) {
  auto dk = Scrypt("password", AsBytes("NaCl"), ScryptParams{1024, 8, 16}, 64);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_EQ(HexOf(*dk),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

TEST(Scrypt, DefaultParamsWork) {
  // The default N = 2^17, r = 8 needs 128 MiB: maxmem must allow it.
  auto dk = Scrypt("correct horse", AsBytes("salt"), ScryptParams{}, 32);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_EQ(dk->size(), 32u);
}

TEST(Scrypt, RejectsBadParams) {
  EXPECT_EQ(Scrypt("p", {}, ScryptParams{1000, 8, 1}, 32).status().code(),
            Code::kInvalidArgument);  // N not a power of two
  EXPECT_EQ(Scrypt("p", {}, ScryptParams{16, 0, 1}, 32).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Scrypt("p", {}, ScryptParams{16, 1, 0}, 32).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Scrypt("p", {}, ScryptParams{uint64_t{1} << 40, 8, 1}, 32).status().code(),
            Code::kInvalidArgument);  // would need 128 TiB
  EXPECT_EQ(Scrypt("p", {}, ScryptParams{16, 1, 1}, 0).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cfs::crypto
