#include "keymgr/local_key_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "crypto/mac.h"
#include "crypto/random.h"
#include "keymgr/kms_error.h"
#include "keymgr/root_key.h"

namespace cfs::keymgr {
namespace {

class LocalKeyManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kmstest-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    kms_ = Open();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<KeyManager> Open() {
    LocalKeyManagerOptions o;
    o.kms_dir = dir_ + "/kms";
    o.region = "local-1";
    o.account = "123456789012";
    o.caller_uid = ::geteuid();
    auto m = LocalKeyManager::Open(o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }

  std::string dir_;
  std::unique_ptr<KeyManager> kms_;
};

std::optional<KmsErrorType> ErrorOf(const Status& s) { return KmsErrorOf(s); }

TEST_F(LocalKeyManagerTest, CreateAndDescribeByEveryIdentifierForm) {
  auto key = kms_->CreateKey({"orders key"});
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(IsUuid(key->key_id));
  EXPECT_EQ(key->arn, "arn:cipherfs:kms:local-1:123456789012:key/" + key->key_id);
  EXPECT_TRUE(key->enabled);
  EXPECT_EQ(key->key_manager, KeyManagerType::kCustomer);
  EXPECT_EQ(key->current_key_material_id.size(), 64u);
  ASSERT_TRUE(kms_->CreateAlias("alias/orders", key->key_id).ok());
  for (std::string ident : {key->key_id, key->arn, std::string("alias/orders"),
                            std::string("arn:cipherfs:kms:local-1:123456789012:alias/orders")}) {
    auto d = kms_->DescribeKey(ident);
    ASSERT_TRUE(d.ok()) << ident << ": " << d.status().ToString();
    EXPECT_EQ(d->key_id, key->key_id);
    EXPECT_EQ(d->description, "orders key");
  }
  EXPECT_EQ(ErrorOf(kms_->DescribeKey("alias/missing").status()), KmsErrorType::kNotFound);
  EXPECT_EQ(ErrorOf(kms_->DescribeKey(NewUuidV4()).status()), KmsErrorType::kNotFound);
  EXPECT_EQ(ErrorOf(kms_->DescribeKey("arn:cipherfs:kms:other-1:123456789012:key/" + key->key_id).status()),
            KmsErrorType::kNotFound);
  EXPECT_EQ(ErrorOf(kms_->DescribeKey("not a key").status()), KmsErrorType::kNotFound);
  auto list = kms_->ListKeys();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].key_arn, key->arn);
}

TEST_F(LocalKeyManagerTest, DataKeyRoundTripsOnlyWithTheExactContext) {
  auto key = kms_->CreateKey({});
  ASSERT_TRUE(key.ok());
  EncryptionContext ctx{{"cluster-arn", "arn:cipherfs:rds:local-1:123456789012:cluster:orders"}};
  auto dk = kms_->GenerateDataKey(key->key_id, ctx, 32);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_EQ(dk->plaintext.size(), 32u);
  EXPECT_EQ(dk->key_arn, key->arn);
  auto back = kms_->Decrypt(dk->ciphertext_blob, ctx);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->plaintext.Equals(dk->plaintext));
  EXPECT_EQ(back->key_arn, key->arn);

  EncryptionContext other{{"cluster-arn", "arn:cipherfs:rds:local-1:123456789012:cluster:other"}};
  EXPECT_EQ(ErrorOf(kms_->Decrypt(dk->ciphertext_blob, other).status()), KmsErrorType::kInvalidCiphertext);
  EXPECT_EQ(ErrorOf(kms_->Decrypt(dk->ciphertext_blob, {}).status()), KmsErrorType::kInvalidCiphertext);
  EncryptionContext case_changed{{"Cluster-arn", ctx.begin()->second}};
  EXPECT_EQ(ErrorOf(kms_->Decrypt(dk->ciphertext_blob, case_changed).status()), KmsErrorType::kInvalidCiphertext);
}

TEST_F(LocalKeyManagerTest, DecryptFailsWhenAnyBlobByteIsFlipped) {
  auto key = kms_->CreateKey({});
  ASSERT_TRUE(key.ok());
  auto dk = kms_->GenerateDataKey(key->key_id, {{"a", "b"}}, 32);
  ASSERT_TRUE(dk.ok());
  for (size_t i = 0; i < dk->ciphertext_blob.size(); ++i) {
    Bytes bad = dk->ciphertext_blob;
    bad[i] ^= 0x01;
    Status s = kms_->Decrypt(bad, {{"a", "b"}}).status();
    EXPECT_EQ(ErrorOf(s), KmsErrorType::kInvalidCiphertext) << "byte " << i << ": " << s.ToString();
  }
  Bytes truncated(dk->ciphertext_blob.begin(), dk->ciphertext_blob.end() - 1);
  EXPECT_EQ(ErrorOf(kms_->Decrypt(truncated, {{"a", "b"}}).status()), KmsErrorType::kInvalidCiphertext);
}

TEST_F(LocalKeyManagerTest, DisabledKeyRefusesCryptoButStillDescribes) {
  auto key = kms_->CreateKey({});
  ASSERT_TRUE(key.ok());
  auto dk = kms_->GenerateDataKey(key->key_id, {}, 32);
  ASSERT_TRUE(dk.ok());
  ASSERT_TRUE(kms_->DisableKey(key->arn).ok());
  ASSERT_TRUE(kms_->DisableKey(key->key_id).ok());  // idempotent
  Status s = kms_->Decrypt(dk->ciphertext_blob, {}).status();
  EXPECT_EQ(ErrorOf(s), KmsErrorType::kDisabled);
  EXPECT_EQ(s.message(), "DisabledException: " + key->arn + " is disabled.");
  EXPECT_EQ(ErrorOf(kms_->GenerateDataKey(key->key_id, {}, 32).status()), KmsErrorType::kDisabled);
  auto d = kms_->DescribeKey(key->key_id);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->enabled);
  EXPECT_EQ(d->key_state, KeyState::kDisabled);
  ASSERT_TRUE(kms_->EnableKey(key->key_id).ok());
  EXPECT_TRUE(kms_->Decrypt(dk->ciphertext_blob, {}).ok());
  EXPECT_EQ(ErrorOf(kms_->DisableKey("alias/aws/rds")), KmsErrorType::kValidation);
}

TEST_F(LocalKeyManagerTest, ManagedRdsKeyIsCreatedOnFirstUseOnce) {
  auto aliases = kms_->ListAliases(std::nullopt);
  ASSERT_TRUE(aliases.ok());
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].alias_name, "alias/aws/rds");
  EXPECT_FALSE((*aliases)[0].target_key_id.has_value());
  EXPECT_TRUE(kms_->ListKeys()->empty());
  auto a = kms_->DescribeKey("alias/aws/rds");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->key_manager, KeyManagerType::kAws);
  auto b = kms_->GenerateDataKey("arn:cipherfs:kms:local-1:123456789012:alias/aws/rds", {}, 32);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->key_arn, a->arn);
  EXPECT_EQ(kms_->ListKeys()->size(), 1u);
  aliases = kms_->ListAliases(std::nullopt);
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].target_key_id, a->key_id);
}

TEST_F(LocalKeyManagerTest, AliasRulesAreEnforced) {
  auto key = kms_->CreateKey({});
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(ErrorOf(kms_->CreateAlias("orders", key->key_id)), KmsErrorType::kValidation);
  EXPECT_EQ(ErrorOf(kms_->CreateAlias("alias/aws/mine", key->key_id)), KmsErrorType::kValidation);
  EXPECT_EQ(ErrorOf(kms_->CreateAlias("alias/x", NewUuidV4())), KmsErrorType::kNotFound);
  ASSERT_TRUE(kms_->CreateAlias("alias/x", key->key_id).ok());
  EXPECT_EQ(ErrorOf(kms_->CreateAlias("alias/x", key->key_id)), KmsErrorType::kAlreadyExists);
  EXPECT_EQ(ErrorOf(kms_->CreateAlias("alias/y", "alias/x")), KmsErrorType::kValidation);  // target: key id/ARN
  auto mine = kms_->ListAliases(key->arn);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].alias_arn, "arn:cipherfs:kms:local-1:123456789012:alias/x");
}

TEST_F(LocalKeyManagerTest, EncryptReEncryptAndIncorrectKey) {
  auto k1 = kms_->CreateKey({});
  auto k2 = kms_->CreateKey({});
  ASSERT_TRUE(k1.ok() && k2.ok());
  SecretBytes secret = crypto::RandomSecret(100);
  auto enc = kms_->Encrypt(k1->key_id, secret, {{"p", "1"}});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  auto re = kms_->ReEncrypt(enc->ciphertext_blob, {{"p", "1"}}, k2->arn, {{"p", "2"}});
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  EXPECT_EQ(re->source_key_arn, k1->arn);
  EXPECT_EQ(re->key_arn, k2->arn);
  auto dec = kms_->Decrypt(re->ciphertext_blob, {{"p", "2"}});
  ASSERT_TRUE(dec.ok());
  EXPECT_TRUE(dec->plaintext.Equals(secret));
  EXPECT_EQ(dec->key_arn, k2->arn);
  EXPECT_EQ(ErrorOf(kms_->Decrypt(re->ciphertext_blob, {{"p", "2"}}, k1->key_id).status()),
            KmsErrorType::kIncorrectKey);
  EXPECT_EQ(ErrorOf(kms_->ReEncrypt(enc->ciphertext_blob, {{"p", "x"}}, k2->arn, {}).status()),
            KmsErrorType::kInvalidCiphertext);
  EXPECT_EQ(ErrorOf(kms_->Encrypt(k1->key_id, SecretBytes(4097), {}).status()), KmsErrorType::kValidation);
}

TEST_F(LocalKeyManagerTest, BlobsSurviveReopenAndWrongRootKeyIsDataLoss) {
  auto key = kms_->CreateKey({});
  auto dk = kms_->GenerateDataKey(key->key_id, {}, 32);
  ASSERT_TRUE(dk.ok());
  kms_ = Open();
  ASSERT_TRUE(kms_);
  EXPECT_TRUE(kms_->Decrypt(dk->ciphertext_blob, {}).ok());
  SecretBytes other = crypto::RandomSecret(32);
  std::ofstream(dir_ + "/kms/root.key", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(other.UnsafeData()), 32);
  kms_ = Open();
  ASSERT_TRUE(kms_);
  EXPECT_EQ(kms_->Decrypt(dk->ciphertext_blob, {}).status().code(), Code::kDataLoss);
  std::filesystem::remove(dir_ + "/kms/root.key");
  LocalKeyManagerOptions o{dir_ + "/kms", "local-1", "123456789012", 0};
  EXPECT_EQ(LocalKeyManager::Open(o).status().code(), Code::kDataLoss);  // keys exist, root key gone
  o.region = "other-1";
  EXPECT_EQ(LocalKeyManager::Open(o).status().code(), Code::kFailedPrecondition);
}

TEST_F(LocalKeyManagerTest, RootKeyIsOwnerOnlyAndOtherModesAreRefused) {
  std::string path = dir_ + "/kms/root.key";
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto r = LoadOrCreateRootKey(path, true);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos) << r.status().message();
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_EQ(LoadOrCreateRootKey(path, true).status().code(), Code::kPermissionDenied);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(LoadOrCreateRootKey(path, true).ok());
  ASSERT_EQ(::truncate(path.c_str(), 31), 0);
  EXPECT_EQ(LoadOrCreateRootKey(path, true).status().code(), Code::kDataLoss);
  std::string link = dir_ + "/link.key";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_EQ(LoadOrCreateRootKey(link, true).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(LoadOrCreateRootKey(dir_ + "/absent.key", false).status().code(), Code::kNotFound);
}

TEST_F(LocalKeyManagerTest, AuditLogChainsEveryCall) {
  auto key = kms_->CreateKey({});
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(kms_->GenerateDataKey(key->key_id, {{"cluster-arn", "c1"}}, 32).ok());
  ASSERT_FALSE(kms_->Decrypt(Bytes(80, 1), {}).ok());
  std::ifstream in(dir_ + "/kms/audit.log");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u);
  std::string prev_hash(64, '0');
  for (const auto& l : lines) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["prev_hash"], prev_hash);
    prev_hash = HexEncode(crypto::Sha256(AsBytes(l)));
    EXPECT_EQ(j["caller_uid"], ::geteuid());
    EXPECT_TRUE(IsUuid(j["request_id"].get<std::string>()));
  }
  auto gdk = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(gdk["operation"], "GenerateDataKey");
  EXPECT_EQ(gdk["key_arn"], key->arn);
  EXPECT_EQ(gdk["encryption_context"]["cluster-arn"], "c1");
  EXPECT_EQ(gdk["outcome"], "Success");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["outcome"], "InvalidCiphertextException");
}

TEST_F(LocalKeyManagerTest, CorruptKeyStoreIsDataLossNotACrash) {
  ASSERT_TRUE(kms_->CreateKey({}).ok());
  for (std::string text : {"", "{", "[]", "{\"format\":1}", "{\"format\":9}",
                           "{\"format\":1,\"region\":\"local-1\",\"account\":\"1\",\"keys\":[{}],\"aliases\":[]}"}) {
    std::ofstream(dir_ + "/kms/keys.json", std::ios::trunc) << text;
    Status s = kms_->ListKeys().status();
    EXPECT_TRUE(s.code() == Code::kDataLoss || s.code() == Code::kUnimplemented) << text << " " << s.ToString();
  }
}

TEST_F(LocalKeyManagerTest, ConcurrentProcessesNeverLoseAKey) {
  constexpr int kPerProcess = 50;
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto m = Open();
      for (int i = 0; m && i < kPerProcess; ++i) {
        if (!m->CreateKey({"k" + std::to_string(i)}).ok()) ::_exit(2);
      }
      ::_exit(m ? 0 : 3);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto keys = kms_->ListKeys();
  ASSERT_TRUE(keys.ok());
  std::set<std::string> ids;
  for (const auto& k : *keys) ids.insert(k.key_id);
  EXPECT_EQ(ids.size(), 2u * kPerProcess);
}

}  // namespace
}  // namespace cfs::keymgr
