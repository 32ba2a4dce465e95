#include "common/encoding.h"

#include <gtest/gtest.h>

namespace cfs {
namespace {

TEST(Encoding, Base64Rfc4648Vectors) {
  const char* in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Base64Encode(AsBytes(in[i])), out[i]);
    auto d = Base64Decode(out[i]);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(AsChars(*d), in[i]);
  }
}

TEST(Encoding, DecodersRejectMalformedInput) {
  EXPECT_FALSE(Base64Decode("Zg=").has_value());
  EXPECT_FALSE(Base64Decode("Z!==").has_value());
  EXPECT_FALSE(Base64Decode("Zh==").has_value());  // non-canonical trailing bits
  EXPECT_FALSE(Base64UrlDecode("a").has_value());
  EXPECT_FALSE(Base64UrlDecode("ab+c").has_value());
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(Encoding, UrlRoundTripAllByteValues) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  for (size_t n = 0; n <= all.size(); n += 7) {
    ByteView v(all.data(), n);
    auto e = Base64UrlEncode(v);
    EXPECT_EQ(e.find_first_of("+/="), std::string::npos);
    auto d = Base64UrlDecode(e);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, Bytes(v.begin(), v.end()));
    EXPECT_EQ(HexDecode(HexEncode(v)), Bytes(v.begin(), v.end()));
  }
}

TEST(Encoding, LittleEndianIntegers) {
  uint8_t b[8];
  PutU64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(GetU64(b), 0x0102030405060708ull);
  PutU32(b, 0xdeadbeef);
  EXPECT_EQ(GetU32(b), 0xdeadbeefu);
}

}  // namespace
}  // namespace cfs
