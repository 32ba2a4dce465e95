#include "crypto/mac.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/random.h"
#include "crypto/test_util.h"

namespace cfs::crypto {
namespace {

using testing::Hex;
using testing::Secret;

SecretBytes Fill(uint8_t v, size_t n) { return Secret(Bytes(n, v)); }

// RFC 4231 HMAC-SHA-256 test cases 1, 3, 4, 6, 7. Case 2 uses a 4-byte key,
// which MacKey refuses by design (see MacKey.RejectsShortKeys); case 5 is
// the truncation test below.
TEST(MacKey, Rfc4231Vectors) {
  struct Case {
    SecretBytes key;
    Bytes data;
    const char* mac;
  };
  const std::string long_key_data =
      "This is a test using a larger than block-size key and a larger than block-size data. "
      "The key needs to be hashed before being used by the HMAC algorithm.";
  Case cases[] = {
      {Fill(0x0b, 20), Bytes{'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'},
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {Fill(0xaa, 20), Bytes(50, 0xdd),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {testing::SecretHex("0102030405060708090a0b0c0d0e0f10111213141516171819"), Bytes(50, 0xcd),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {Fill(0xaa, 131), Hex("54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
                            "65204b6579202d2048617368204b6579204669727374"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {Fill(0xaa, 131), Bytes(long_key_data.begin(), long_key_data.end()),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.mac);
    MacKey key(c.key);
    Mac mac = key.Compute(c.data);
    EXPECT_EQ(HexEncode(mac), c.mac);
    EXPECT_TRUE(key.Verify(c.data, mac));
  }
}

TEST(MacKey, Rfc4231Case5TruncatedMacVerifies) {
  MacKey key(Fill(0x0c, 20));
  const ByteView data = AsBytes("Test With Truncation");
  const Bytes truncated = Hex("a3b6167473100ee06e0c796c2955552b");
  EXPECT_TRUE(key.Verify(data, truncated));
  Bytes wrong = truncated;
  wrong[15] ^= 1;
  EXPECT_FALSE(key.Verify(data, wrong));
}

TEST(MacKey, VerifyRejectsTooShortTooLongAndFlippedMacs) {
  MacKey key(RandomSecret(32));
  const Bytes data = Hex("00010203040506070809");
  const Mac mac = key.Compute(data);
  EXPECT_FALSE(key.Verify(data, ByteView(mac.data(), 15)));  // below 128 bits
  EXPECT_FALSE(key.Verify(data, ByteView()));
  Bytes longer(mac.begin(), mac.end());
  longer.push_back(0);
  EXPECT_FALSE(key.Verify(data, longer));
  for (size_t bit = 0; bit < mac.size() * 8; ++bit) {
    Mac bad = mac;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(key.Verify(data, bad)) << "bit " << bit;
  }
  Bytes other_data = data;
  other_data[0] ^= 1;
  EXPECT_FALSE(key.Verify(other_data, mac));
}

TEST(MacKey, DifferentKeysGiveDifferentMacs) {
  MacKey a(RandomSecret(32));
  MacKey b(RandomSecret(32));
  const Bytes data = Hex("0102");
  EXPECT_FALSE(b.Verify(data, a.Compute(data)));
}

TEST(MacKeyDeathTest, RejectsShortKeys) {
  EXPECT_DEATH({ MacKey key(Secret(AsBytes("Jefe"))); }, "MacKey needs at least 16");
}

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256(ByteView())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEqual(Hex("0102"), Hex("0102")));
  EXPECT_FALSE(ConstantTimeEqual(Hex("0102"), Hex("0103")));
  EXPECT_FALSE(ConstantTimeEqual(Hex("0102"), Hex("010200")));
  EXPECT_TRUE(ConstantTimeEqual(ByteView(), ByteView()));
}

TEST(Random, BytesDifferAndSecretsHaveTheRightSize) {
  auto a = RandomArray<32>();
  auto b = RandomArray<32>();
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
  SecretBytes s = RandomSecret(64);
  EXPECT_EQ(s.size(), 64u);
  SecretBytes t = RandomSecret(64);
  EXPECT_FALSE(s.Equals(t));
  RandomBytes(nullptr, 0);  // a no-op, not a crash
}

}  // namespace
}  // namespace cfs::crypto
