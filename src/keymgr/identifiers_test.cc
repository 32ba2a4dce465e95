#include "keymgr/identifiers.h"

#include <gtest/gtest.h>

#include <set>

#include "keymgr/ciphertext_blob.h"
#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

TEST(KmsErrorTest, NameTravelsInStatusAndMapsToCode) {
  Status s = KmsError(KmsErrorType::kDisabled, "arn is disabled.");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "DisabledException: arn is disabled.");
  EXPECT_EQ(KmsErrorOf(s), KmsErrorType::kDisabled);
  EXPECT_EQ(KmsErrorOf(KmsError(KmsErrorType::kInvalidCiphertext, "")).value(), KmsErrorType::kInvalidCiphertext);
  EXPECT_FALSE(KmsErrorOf(NotFound("NotFoundExceptionally: x")).has_value());
  EXPECT_FALSE(KmsErrorOf(DataLoss("NotFoundException: wrong code")).has_value());
}

TEST(EncryptionContextTest, EncodingIsUnambiguous) {
  auto a = EncodeEncryptionContext({{"ab", "c"}});
  auto b = EncodeEncryptionContext({{"a", "bc"}});
  auto c = EncodeEncryptionContext({{"a", ""}, {"b", "c"}});
  auto d = EncodeEncryptionContext({{"a", "\0\0\0\x01b"}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  std::set<Bytes> all{*a, *b, *c, *d, *EncodeEncryptionContext({})};
  EXPECT_EQ(all.size(), 5u);
  // Order of insertion does not matter; the empty map encodes as N = 0.
  EXPECT_EQ(*EncodeEncryptionContext({{"y", "1"}, {"x", "2"}}), *EncodeEncryptionContext({{"x", "2"}, {"y", "1"}}));
  EXPECT_EQ(*EncodeEncryptionContext({}), Bytes({0, 0, 0, 0}));
  Bytes expect = {0, 0, 0, 1, 0, 0, 0, 1, 'k', 0, 0, 0, 2, 'v', 'w'};
  EXPECT_EQ(*EncodeEncryptionContext({{"k", "vw"}}), expect);
}

TEST(EncryptionContextTest, RejectsEmptyKeyBadUtf8AndOversize) {
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"", "v"}}).status()), KmsErrorType::kValidation);
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"k", "\xff"}}).status()), KmsErrorType::kValidation);
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"k", "\xc0\x80"}}).status()), KmsErrorType::kValidation);
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"k", "\xed\xa0\x80"}}).status()), KmsErrorType::kValidation);
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"k", "\xe2\x82"}}).status()), KmsErrorType::kValidation);
  EXPECT_TRUE(EncodeEncryptionContext({{"k", "caf\xc3\xa9 \xf0\x9f\x94\x91"}}).ok());
  EXPECT_EQ(KmsErrorOf(EncodeEncryptionContext({{"k", std::string(9000, 'v')}}).status()),
            KmsErrorType::kValidation);
}

TEST(IdentifierTest, UuidV4) {
  std::string id = NewUuidV4();
  EXPECT_TRUE(IsUuid(id)) << id;
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(id, NewUuidV4());
  EXPECT_FALSE(IsUuid("1234abcd-12ab-34cd-56ef-1234567890aG"));
  EXPECT_FALSE(IsUuid("1234abcd12ab34cd56ef1234567890ab"));
}

TEST(IdentifierTest, ParsesAllFourFormsAndRejectsOthers) {
  const std::string id = "1234abcd-12ab-34cd-56ef-1234567890ab";
  auto r = ParseKeyIdentifier(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->form, KeyRef::Form::kKeyId);
  r = ParseKeyIdentifier("arn:cipherfs:kms:local-1:123456789012:key/" + id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->form, KeyRef::Form::kKeyArn);
  EXPECT_EQ(r->key_id, id);
  EXPECT_EQ(r->region, "local-1");
  EXPECT_EQ(r->account, "123456789012");
  r = ParseKeyIdentifier("alias/orders");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->form, KeyRef::Form::kAliasName);
  r = ParseKeyIdentifier("arn:cipherfs:kms:local-1:123456789012:alias/aws/rds");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->form, KeyRef::Form::kAliasArn);
  EXPECT_EQ(r->alias_name, "alias/aws/rds");
  for (std::string bad : std::vector<std::string>{"", "orders", "alias/", "arn:aws:kms:us-east-1:1:key/" + id,
                          "arn:cipherfs:kms:local-1:123456789012:key/nope", "arn:cipherfs:kms::1:key/" + id,
                          "alias/bad name", id + "x"}) {
    EXPECT_EQ(KmsErrorOf(ParseKeyIdentifier(bad).status()), KmsErrorType::kNotFound) << bad;
  }
}

TEST(IdentifierTest, AliasRules) {
  EXPECT_TRUE(ValidateAliasName("alias/orders-key_1:x/y", false).ok());
  EXPECT_EQ(KmsErrorOf(ValidateAliasName("orders", false)), KmsErrorType::kValidation);
  EXPECT_NE(ValidateAliasName("orders", false).message().find("alias/"), std::string::npos);
  EXPECT_EQ(KmsErrorOf(ValidateAliasName("alias/aws/mine", false)), KmsErrorType::kValidation);
  EXPECT_TRUE(ValidateAliasName("alias/aws/rds", true).ok());
  EXPECT_TRUE(ValidateAliasName("alias/awsome", false).ok());  // only alias/aws/ is reserved
  EXPECT_FALSE(ValidateAliasName("alias/" + std::string(251, 'a'), false).ok());
  EXPECT_FALSE(ValidateAliasName("alias/a b", false).ok());
}

TEST(CiphertextBlobTest, ParseRejectsMalformed) {
  CiphertextBlob b;
  b.key_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
  b.material_version = 7;
  b.nonce.fill(3);
  b.ciphertext = Bytes(32, 9);
  b.tag.fill(5);
  Bytes bytes = SerializeCiphertextBlob(b);
  EXPECT_EQ(bytes.size(), kBlobHeaderSize + 32 + 16);
  auto back = ParseCiphertextBlob(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->key_id, b.key_id);
  EXPECT_EQ(back->material_version, 7u);
  EXPECT_EQ(back->ciphertext, b.ciphertext);
  EXPECT_EQ(back->tag, b.tag);
  Bytes bad = bytes;
  bad[0] = 'X';
  EXPECT_EQ(KmsErrorOf(ParseCiphertextBlob(bad).status()), KmsErrorType::kInvalidCiphertext);
  bad = bytes;
  bad[4] = 2;
  EXPECT_EQ(KmsErrorOf(ParseCiphertextBlob(bad).status()), KmsErrorType::kInvalidCiphertext);
  EXPECT_FALSE(ParseCiphertextBlob(ByteView(bytes).first(kBlobHeaderSize + 16)).ok());
  EXPECT_FALSE(ParseCiphertextBlob(Bytes(kBlobHeaderSize + 4096 + 17, 0)).ok());
}

}  // namespace
}  // namespace cfs::keymgr
