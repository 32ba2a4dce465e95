// NameCodec tests: round trips, binding to the directory id, long names,
// symlink targets, xattr names and values, and tampering.
#include "store/names.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "crypto/random.h"

namespace cfs::store {
namespace {

class NamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_key_ = crypto::RandomSecret(32);
    auto keys = VolumeKeys::Derive(data_key_);
    ASSERT_TRUE(keys.ok());
    keys_ = std::move(*keys);
    auto codec = NameCodec::CreateEncrypted(keys_.get(), data_key_);
    ASSERT_TRUE(codec.ok());
    codec_ = std::move(*codec);
  }
  DirId Dir(uint8_t b) {
    DirId d{};
    d.fill(b);
    return d;
  }
  SecretBytes data_key_;
  std::unique_ptr<VolumeKeys> keys_;
  std::unique_ptr<NameCodec> codec_;
};

TEST_F(NamesTest, RoundTripIsDeterministicAndNeverStartsWithDot) {
  for (const std::string& name : std::vector<std::string>{"a", ".hidden", "pg_wal", std::string(175, 'x'), std::string("\xc3\xa9t\xc3\xa9")}) {
    auto s1 = codec_->EncodeName(Dir(1), name);
    auto s2 = codec_->EncodeName(Dir(1), name);
    ASSERT_TRUE(s1.ok()) << s1.status().ToString();
    EXPECT_EQ(s1->host_name, s2->host_name);
    EXPECT_TRUE(s1->long_name.empty());
    EXPECT_NE(s1->host_name[0], '.');
    EXPECT_LE(s1->host_name.size(), kMaxHostName);
    if (name.size() >= 6) {
      EXPECT_EQ(s1->host_name.find(name), std::string::npos);
    }
    auto back = codec_->DecodeName(Dir(1), s1->host_name);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, name);
  }
}

TEST_F(NamesTest, DecryptFailsWhenNameMovedToOtherDirectory) {
  auto s = codec_->EncodeName(Dir(1), "secret");
  ASSERT_TRUE(s.ok());
  EXPECT_NE(codec_->EncodeName(Dir(2), "secret")->host_name, s->host_name);
  auto moved = codec_->DecodeName(Dir(2), s->host_name);
  EXPECT_FALSE(moved.ok());
  EXPECT_EQ(moved.status().code(), Code::kDataLoss);
}

TEST_F(NamesTest, DecryptFailsOnEveryBitFlipOfStoredName) {
  auto s = codec_->EncodeName(Dir(3), "relation-16384");
  ASSERT_TRUE(s.ok());
  for (size_t i = 0; i < s->host_name.size(); ++i) {
    std::string bad = s->host_name;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(codec_->DecodeName(Dir(3), bad).ok()) << i;
  }
  EXPECT_FALSE(codec_->DecodeName(Dir(3), "not*base64").ok());
  EXPECT_FALSE(codec_->DecodeName(Dir(3), "").ok());
}

TEST_F(NamesTest, LongNamesAreHashedWithSidecar) {
  std::string name(255, 'n');
  auto s = codec_->EncodeName(Dir(4), name);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(IsLongHostName(s->host_name));
  EXPECT_LE(s->host_name.size(), kMaxHostName);
  EXPECT_FALSE(s->long_name.empty());
  EXPECT_TRUE(NameCodec::SidecarMatches(s->host_name, s->long_name));
  EXPECT_FALSE(NameCodec::SidecarMatches(s->host_name, s->long_name + "A"));
  EXPECT_EQ(SidecarName(s->host_name).substr(0, kSidecarPrefix.size()), kSidecarPrefix);
  auto back = codec_->DecodeName(Dir(4), s->long_name);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, name);
}

TEST_F(NamesTest, BadNamesAreRefused) {
  EXPECT_EQ(codec_->EncodeName(Dir(1), std::string(256, 'x')).status().sys_errno(), ENAMETOOLONG);
  EXPECT_EQ(codec_->EncodeName(Dir(1), "a/b").status().sys_errno(), EINVAL);
  EXPECT_EQ(codec_->EncodeName(Dir(1), "..").status().sys_errno(), EINVAL);
  EXPECT_EQ(codec_->EncodeName(Dir(1), "").status().sys_errno(), EINVAL);
}

TEST_F(NamesTest, SymlinkTargetsAreRandomizedAndSized) {
  std::string target = "../../pg_tblspc/16385";
  auto a = codec_->EncodeSymlink(target);
  auto b = codec_->EncodeSymlink(target);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // same target, different stored form
  EXPECT_EQ(*codec_->DecodeSymlink(*a), target);
  EXPECT_EQ(codec_->SymlinkSize(a->size()), target.size());
  std::string bad = *a;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(codec_->DecodeSymlink(bad).ok());
  EXPECT_FALSE(codec_->EncodeSymlink(std::string(kMaxSymlinkTarget + 1, 't')).ok());
  auto longest = codec_->EncodeSymlink(std::string(kMaxSymlinkTarget, 't'));
  ASSERT_TRUE(longest.ok());
  EXPECT_LT(longest->size(), 4096u);
}

TEST_F(NamesTest, XattrNamesAndValues) {
  auto host = codec_->EncodeXattrName("user.mime_type");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->rfind(kHostXattrPrefix, 0), 0u);
  EXPECT_EQ(host->find("mime"), std::string::npos);
  EXPECT_EQ(*codec_->DecodeXattrName(*host), "user.mime_type");
  EXPECT_EQ(codec_->DecodeXattrName("security.selinux").status().code(), Code::kNotFound);
  EXPECT_EQ(codec_->EncodeXattrName("trusted.x").status().sys_errno(), EOPNOTSUPP);
  std::string v = "value bytes";
  auto sealed = codec_->SealXattrValue(*host, AsBytes(v));
  ASSERT_TRUE(sealed.ok());
  auto opened = codec_->OpenXattrValue(*host, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(std::string(opened->begin(), opened->end()), v);
  // A value moved to another attribute does not open.
  auto other = codec_->EncodeXattrName("user.other");
  EXPECT_FALSE(codec_->OpenXattrValue(*other, *sealed).ok());
  Bytes flipped = *sealed;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_FALSE(codec_->OpenXattrValue(*host, flipped).ok());
}

TEST_F(NamesTest, WipedKeysFailCleanly) {
  keys_->Wipe();
  codec_->Wipe();
  EXPECT_FALSE(codec_->EncodeName(Dir(1), "a").ok());
  EXPECT_FALSE(codec_->SealXattrValue("user.cfs.x.a", AsBytes(std::string("v"))).ok());
}

TEST(PlainNamesTest, PassThrough) {
  auto codec = NameCodec::CreatePlain();
  DirId d{};
  EXPECT_EQ(codec->EncodeName(d, "plain")->host_name, "plain");
  EXPECT_EQ(*codec->DecodeName(d, "plain"), "plain");
  EXPECT_EQ(*codec->EncodeSymlink("t"), "t");
  EXPECT_EQ(*codec->EncodeXattrName("user.k"), "user.cfs.x.user.k");
}

}  // namespace
}  // namespace cfs::store
