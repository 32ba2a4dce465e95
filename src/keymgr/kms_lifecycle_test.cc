// Key lifecycle of LocalKeyManager: deletion window and purge, rotation,
// alias changes, managed key refusals, passphrase root key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {
namespace {

constexpr int64_t kDay = 86400;

class KmsLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kmslife-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    kms_ = Open();
    ASSERT_NE(kms_, nullptr);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<LocalKeyManager> Open(std::optional<std::string> passphrase = std::nullopt) {
    LocalKeyManagerOptions o;
    o.kms_dir = dir_ + "/kms";
    o.region = "local-1";
    o.account = "123456789012";
    o.caller_uid = ::geteuid();
    o.clock = [this] { return now_; };
    o.passphrase = passphrase;
    o.scrypt_for_new_root.n = 1 << 12;  // fast for the test; the file records it
    auto m = LocalKeyManager::Open(o);
    last_open_ = m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }

  std::string NewKey() {
    auto k = kms_->CreateKey({"test"});
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return k.ok() ? k->key_id : "";
  }

  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/kms/" + name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
  int64_t now_ = 1'800'000'000;
  Status last_open_;
  std::unique_ptr<LocalKeyManager> kms_;
};

std::optional<KmsErrorType> E(const Status& s) { return KmsErrorOf(s); }

SecretBytes Bytes3() {
  SecretBytes b(3);
  b.UnsafeData()[0] = 'a';
  return b;
}

TEST_F(KmsLifecycleTest, DeletionWindowIsSevenToThirtyDaysAndCancelLeavesDisabled) {
  std::string id = NewKey();
  EncryptionContext ec{{"purpose", "test"}};
  auto blob = kms_->Encrypt(id, Bytes3(), ec);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(E(kms_->ScheduleKeyDeletion(id, 6).status()), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->ScheduleKeyDeletion(id, 31).status()), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->CancelKeyDeletion(id).status()), KmsErrorType::kInvalidState);  // not pending
  auto m = kms_->ScheduleKeyDeletion(id, 7);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->key_state, KeyState::kPendingDeletion);
  EXPECT_EQ(*m->deletion_date, now_ + 7 * kDay);
  // Every refusal of a key pending deletion.
  EXPECT_EQ(E(kms_->ScheduleKeyDeletion(id, 7).status()), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->EnableKey(id)), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->DisableKey(id)), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->Encrypt(id, Bytes3(), ec).status()), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->Decrypt(blob->ciphertext_blob, ec, std::nullopt).status()), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->GenerateDataKey(id, ec, 32).status()), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->CreateAlias("alias/pending", id)), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->EnableKeyRotation(id, std::nullopt)), KmsErrorType::kInvalidState);
  EXPECT_EQ(E(kms_->CreateGrant({id, "postgres", "", {"Decrypt"}, {}, {}, ""}).status()), KmsErrorType::kInvalidState);
  EXPECT_TRUE(kms_->DescribeKey(id).ok());
  EXPECT_TRUE(kms_->GetKeyPolicy(id).ok());
  auto c = kms_->CancelKeyDeletion(id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->key_state, KeyState::kDisabled);
  EXPECT_FALSE(c->deletion_date.has_value());
  EXPECT_EQ(E(kms_->Decrypt(blob->ciphertext_blob, ec, std::nullopt).status()), KmsErrorType::kDisabled);
  ASSERT_TRUE(kms_->EnableKey(id).ok());
  EXPECT_TRUE(kms_->Decrypt(blob->ciphertext_blob, ec, std::nullopt).ok());
}

TEST_F(KmsLifecycleTest, KeyIsPurgedWithMaterialAndAliasesWhenTheWindowEnds) {
  std::string id = NewKey();
  std::string other = NewKey();
  ASSERT_TRUE(kms_->CreateAlias("alias/doomed", id).ok());
  auto blob = kms_->Encrypt(id, Bytes3(), {});
  ASSERT_TRUE(blob.ok());
  ASSERT_TRUE(kms_->ScheduleKeyDeletion(id, 7).ok());
  now_ += 7 * kDay - 1;  // one second early: still there
  kms_ = Open();
  ASSERT_NE(kms_, nullptr);
  EXPECT_TRUE(kms_->DescribeKey(id).ok());
  now_ += 1;
  kms_ = Open();
  ASSERT_NE(kms_, nullptr);
  EXPECT_EQ(E(kms_->DescribeKey(id).status()), KmsErrorType::kNotFound);
  EXPECT_EQ(E(kms_->DescribeKey("alias/doomed").status()), KmsErrorType::kNotFound);
  EXPECT_EQ(E(kms_->Decrypt(blob->ciphertext_blob, {}, std::nullopt).status()), KmsErrorType::kInvalidCiphertext);
  EXPECT_TRUE(kms_->DescribeKey(other).ok());
  std::string store = Read("keys.json");
  EXPECT_EQ(store.find(id), std::string::npos) << "the purged key's record (and wrapped material) must be gone";
  std::string audit = Read("audit.log");
  EXPECT_NE(audit.find("\"operation\":\"DeleteKey\""), std::string::npos);
  EXPECT_NE(audit.find("AwsServiceEvent"), std::string::npos);
}

TEST_F(KmsLifecycleTest, RotationAddsVersionsAndOldBlobsStillDecrypt) {
  std::string id = NewKey();
  auto before = kms_->Encrypt(id, Bytes3(), {});
  ASSERT_TRUE(before.ok());
  auto rotated = kms_->RotateKeyOnDemand(id);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(*rotated, id);
  auto after = kms_->Encrypt(id, Bytes3(), {});
  ASSERT_TRUE(after.ok());
  EXPECT_NE(before->key_material_id, after->key_material_id);
  auto d1 = kms_->Decrypt(before->ciphertext_blob, {}, std::nullopt);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(d1->key_material_id, before->key_material_id);
  EXPECT_EQ(kms_->DescribeKey(id)->current_key_material_id, after->key_material_id);
  for (int i = 1; i < 25; ++i) ASSERT_TRUE(kms_->RotateKeyOnDemand(id).ok()) << i;
  EXPECT_EQ(E(kms_->RotateKeyOnDemand(id).status()), KmsErrorType::kLimitExceeded);
  EXPECT_TRUE(kms_->Decrypt(before->ciphertext_blob, {}, std::nullopt).ok());
}

TEST_F(KmsLifecycleTest, AutomaticRotationComesDueAndIsReported) {
  std::string id = NewKey();
  auto status = kms_->GetKeyRotationStatus(id);
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->rotation_enabled);
  EXPECT_EQ(E(kms_->EnableKeyRotation(id, 89)), KmsErrorType::kValidation);
  ASSERT_TRUE(kms_->EnableKeyRotation(id, 90).ok());
  status = kms_->GetKeyRotationStatus(id);
  EXPECT_TRUE(status->rotation_enabled);
  EXPECT_EQ(*status->rotation_period_days, 90u);
  EXPECT_EQ(*status->next_rotation_date, now_ + 90 * kDay);
  std::string material = kms_->DescribeKey(id)->current_key_material_id;
  now_ += 90 * kDay;
  kms_ = Open();
  ASSERT_NE(kms_, nullptr);
  EXPECT_NE(kms_->DescribeKey(id)->current_key_material_id, material);
  EXPECT_EQ(*kms_->GetKeyRotationStatus(id)->next_rotation_date, now_ + 90 * kDay);
  ASSERT_TRUE(kms_->DisableKey(id).ok());
  EXPECT_EQ(E(kms_->EnableKeyRotation(id, std::nullopt)), KmsErrorType::kDisabled);
  EXPECT_EQ(E(kms_->DisableKeyRotation(id)), KmsErrorType::kDisabled);
  EXPECT_EQ(E(kms_->RotateKeyOnDemand(id).status()), KmsErrorType::kDisabled);
}

TEST_F(KmsLifecycleTest, AliasUpdateAndDeleteFollowTheRules) {
  std::string a = NewKey(), b = NewKey(), c = NewKey();
  ASSERT_TRUE(kms_->CreateAlias("alias/app", a).ok());
  EXPECT_EQ(E(kms_->CreateAlias("alias/app", b)), KmsErrorType::kAlreadyExists);
  EXPECT_EQ(E(kms_->UpdateAlias("app", b)), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->UpdateAlias("alias/none", b)), KmsErrorType::kNotFound);
  EXPECT_EQ(E(kms_->UpdateAlias("alias/app", "alias/app")), KmsErrorType::kValidation);  // target: key id/ARN only
  ASSERT_TRUE(kms_->UpdateAlias("alias/app", b).ok());
  EXPECT_EQ(kms_->DescribeKey("alias/app")->key_id, b);
  ASSERT_TRUE(kms_->ScheduleKeyDeletion(c, 7).ok());
  EXPECT_EQ(E(kms_->UpdateAlias("alias/app", c)), KmsErrorType::kInvalidState);
  ASSERT_TRUE(kms_->ScheduleKeyDeletion(b, 7).ok());  // the source pending deletion: update still allowed
  EXPECT_TRUE(kms_->UpdateAlias("alias/app", a).ok());
  ASSERT_TRUE(kms_->DeleteAlias("alias/app").ok());
  EXPECT_EQ(E(kms_->DescribeKey("alias/app").status()), KmsErrorType::kNotFound);
  EXPECT_EQ(E(kms_->DeleteAlias("alias/app")), KmsErrorType::kNotFound);
  EXPECT_TRUE(kms_->DescribeKey(a).ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(kms_->CreateAlias("alias/n" + std::to_string(i), a).ok()) << i;
  EXPECT_EQ(E(kms_->CreateAlias("alias/n50", a)), KmsErrorType::kLimitExceeded);
}

TEST_F(KmsLifecycleTest, ManagedKeyCannotBeChangedByUsers) {
  auto rds = kms_->DescribeKey("alias/aws/rds");
  ASSERT_TRUE(rds.ok());
  EXPECT_EQ(rds->key_manager, KeyManagerType::kAws);
  EXPECT_EQ(E(kms_->DisableKey(rds->key_id)), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->ScheduleKeyDeletion(rds->key_id, 7).status()), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->PutKeyPolicy(rds->key_id, kms_->GetKeyPolicy(rds->key_id).value())), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->DisableKeyRotation(rds->key_id)), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->DeleteAlias("alias/aws/rds")), KmsErrorType::kValidation);
  EXPECT_EQ(E(kms_->UpdateAlias("alias/aws/rds", NewKey())), KmsErrorType::kValidation);
  EXPECT_TRUE(kms_->GetKeyRotationStatus(rds->key_id)->rotation_enabled);  // yearly, not configurable
  EXPECT_TRUE(kms_->DescribeKey("alias/aws/rds")->enabled);
}

TEST_F(KmsLifecycleTest, PassphraseRootKeyOpensOnlyWithThePassphrase) {
  kms_.reset();
  std::filesystem::remove_all(dir_);
  dir_ += "-pass";
  std::filesystem::remove_all(dir_);
  auto kms = Open(std::string("correct horse battery"));
  ASSERT_NE(kms, nullptr) << last_open_.ToString();
  auto key = kms->CreateKey({"p"});
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto blob = kms->Encrypt(key->key_id, Bytes3(), {});
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/kms/root.key"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/kms/root.scrypt"));
  EXPECT_EQ(Read("root.scrypt").find("correct"), std::string::npos);
  kms = Open(std::string("correct horse battery"));
  ASSERT_NE(kms, nullptr) << last_open_.ToString();
  EXPECT_TRUE(kms->Decrypt(blob->ciphertext_blob, {}, std::nullopt).ok());
  EXPECT_EQ(Open(std::string("wrong horse battery")), nullptr);
  EXPECT_EQ(last_open_.code(), Code::kPermissionDenied);
  EXPECT_EQ(Open(), nullptr);  // no passphrase given: refused, never a fresh root.key
  EXPECT_EQ(last_open_.code(), Code::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/kms/root.key"));
  std::filesystem::permissions(dir_ + "/kms/root.scrypt", std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(Open(std::string("correct horse battery")), nullptr);
  EXPECT_EQ(last_open_.code(), Code::kPermissionDenied);
}

}  // namespace
}  // namespace cfs::keymgr
