#include "crypto/aead.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "crypto/aead_internal.h"
#include "crypto/gcm_ctx_cache.h"
#include "crypto/random.h"
#include "crypto/test_util.h"

namespace cfs::crypto {
namespace {

using testing::Hex;
using testing::SecretHex;

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* pt;
  const char* ct;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B,
// the AES-256 test cases with 96-bit IVs (13-16). Cases 17 and 18 use 64-bit
// and 480-bit IVs, which cipherfs never uses (Nonce is 96 bits).
constexpr char kKeyF[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr char kPt64[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
constexpr char kCt64[] =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const GcmVector kGcmVectors[] = {
    {"case13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"case15", kKeyF, "cafebabefacedbaddecaf888", "", kPt64, kCt64,
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"case16", kKeyF, "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     // The 64-byte vectors cut to 60 bytes (120 hex digits).
     nullptr, nullptr, "76fc6ece0f4e1768cddf8853bb2d551b"},
};

GcmVector Resolve(GcmVector v) {
  static const std::string pt60 = std::string(kPt64).substr(0, 120);
  static const std::string ct60 = std::string(kCt64).substr(0, 120);
  if (v.pt == nullptr) v.pt = pt60.c_str();
  if (v.ct == nullptr) v.ct = ct60.c_str();
  return v;
}

Nonce ToNonce(const Bytes& b) {
  Nonce n{};
  EXPECT_EQ(b.size(), n.size());
  std::memcpy(n.data(), b.data(), std::min(b.size(), n.size()));
  return n;
}

Tag ToTag(const Bytes& b) {
  Tag t{};
  EXPECT_EQ(b.size(), t.size());
  std::memcpy(t.data(), b.data(), std::min(b.size(), t.size()));
  return t;
}

TEST(GcmKey, SealMatchesNistVectors) {
  for (GcmVector v : kGcmVectors) {
    v = Resolve(v);
    SCOPED_TRACE(v.name);
    GcmKey key(SecretHex(v.key));
    const Bytes pt = Hex(v.pt);
    Bytes ct(pt.size());
    Tag tag{};
    ASSERT_TRUE(internal::GcmKeyInternal::SealWithNonce(key, ToNonce(Hex(v.iv)), Hex(v.aad), pt,
                                                        ct.data(), &tag)
                    .ok());
    EXPECT_EQ(HexEncode(ct), v.ct);
    EXPECT_EQ(HexEncode(tag), v.tag);
  }
}

TEST(GcmKey, OpenMatchesNistVectors) {
  for (GcmVector v : kGcmVectors) {
    v = Resolve(v);
    SCOPED_TRACE(v.name);
    GcmKey key(SecretHex(v.key));
    const Bytes ct = Hex(v.ct);
    Bytes pt(ct.size(), 0xee);
    ASSERT_TRUE(key.Open(Hex(v.aad), ToNonce(Hex(v.iv)), ToTag(Hex(v.tag)), ct, pt.data()));
    EXPECT_EQ(HexEncode(pt), v.pt);
  }
}

TEST(GcmKey, SealThenOpenRoundTripsInPlace) {
  GcmKey key(RandomSecret(kKeySize));
  const Bytes aad = Hex("0102030405060708");
  Bytes block(4096);
  RandomBytes(block.data(), block.size());
  const Bytes original = block;
  Nonce nonce;
  Tag tag;
  ASSERT_TRUE(key.Seal(aad, block, block.data(), &nonce, &tag).ok());
  EXPECT_NE(block, original);
  ASSERT_TRUE(key.Open(aad, nonce, tag, block, block.data()));
  EXPECT_EQ(block, original);
}

TEST(GcmKey, MovedKeyBytesGiveTheSameKey) {
  SecretBytes bytes = RandomSecret(kKeySize);
  GcmKey copied(bytes);
  GcmKey moved(std::move(bytes));
  EXPECT_TRUE(bytes.empty());  // NOLINT(bugprone-use-after-move): taken over
  auto blob = copied.SealBlob({}, Hex("0102"));
  ASSERT_TRUE(blob.ok());
  EXPECT_TRUE(moved.OpenBlob({}, *blob).ok());
  EXPECT_NE(copied.id(), moved.id());
}

TEST(GcmKey, BlobRoundTripAndRejectsWrongAad) {
  GcmKey key(RandomSecret(kKeySize));
  const Bytes secret = Hex("00112233445566778899aabbccddeeff");
  auto blob = key.SealBlob(AsBytes("ctx"), secret);
  ASSERT_TRUE(blob.ok());
  ASSERT_EQ(blob->size(), kNonceSize + secret.size() + kTagSize);
  auto opened = key.OpenBlob(AsBytes("ctx"), *blob);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(Bytes(opened->UnsafeSpan().begin(), opened->UnsafeSpan().end()), secret);
  EXPECT_EQ(key.OpenBlob(AsBytes("other"), *blob).status().code(), Code::kDataLoss);
  EXPECT_EQ(key.OpenBlob(AsBytes("ctx"), ByteView(blob->data(), 27)).status().code(),
            Code::kDataLoss);
}

}  // namespace
}  // namespace cfs::crypto
