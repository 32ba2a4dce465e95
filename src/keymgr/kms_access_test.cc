// Policies and grants for local users, the audit chain's tamper cases, the
// key store's crash sweep, and two processes hammering one key.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/kdf.h"
#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {
namespace {

class KmsAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kmsacc-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    admin_ = Open(std::nullopt);
    ASSERT_NE(admin_, nullptr);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<LocalKeyManager> Open(std::optional<Caller> caller) {
    LocalKeyManagerOptions o;
    o.kms_dir = dir_ + "/kms";
    o.region = "local-1";
    o.account = "123456789012";
    o.caller_uid = ::geteuid();
    o.caller = caller;
    auto m = LocalKeyManager::Open(o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }
  std::unique_ptr<LocalKeyManager> User(const std::string& name) {
    return Open(Caller{static_cast<uid_t>(40000 + name.size()), name, false});
  }
  std::string AuditPath() const { return dir_ + "/kms/audit.log"; }
  std::vector<std::string> AuditLines() {
    std::ifstream in(AuditPath());
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  void WriteAudit(const std::vector<std::string>& lines, bool final_newline = true) {
    std::ofstream out(AuditPath(), std::ios::trunc);
    for (size_t i = 0; i < lines.size(); ++i) out << lines[i] << (i + 1 < lines.size() || final_newline ? "\n" : "");
  }

  std::string dir_;
  std::unique_ptr<LocalKeyManager> admin_;
};

std::optional<KmsErrorType> E(const Status& s) { return KmsErrorOf(s); }

SecretBytes Plain() {
  SecretBytes b(4);
  b.UnsafeData()[0] = 7;
  return b;
}

TEST_F(KmsAccessTest, LocalUserNeedsAGrantOrThePolicy) {
  auto key = admin_->CreateKey({"pg"});
  ASSERT_TRUE(key.ok());
  EncryptionContext ec{{"cluster-arn", "arn:cipherfs:rds:local-1:1:cluster:pg"}};
  auto blob = admin_->Encrypt(key->key_id, Plain(), ec);
  ASSERT_TRUE(blob.ok());
  auto alice = User("alice");
  Status denied = alice->Decrypt(blob->ciphertext_blob, ec, std::nullopt).status();
  EXPECT_EQ(E(denied), KmsErrorType::kAccessDenied);
  EXPECT_NE(denied.message().find("arn:cipherfs:iam::123456789012:user/alice is not authorized to perform: "
                                  "kms:Decrypt on resource: " + key->arn),
            std::string::npos)
      << denied.message();
  EXPECT_EQ(E(alice->ListKeys().status()), KmsErrorType::kAccessDenied);
  EXPECT_EQ(E(alice->CreateKey({}).status()), KmsErrorType::kAccessDenied);
  EXPECT_EQ(E(alice->DisableKey(key->key_id)), KmsErrorType::kAccessDenied);
  // A grant for Decrypt with an encryption context constraint.
  CreateGrantRequest g{key->key_id, "alice", "", {"Decrypt", "DescribeKey"}, std::nullopt, ec, "pg-mount"};
  auto grant = admin_->CreateGrant(g);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  auto again = admin_->CreateGrant(g);  // same name and parameters: the same grant
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->grant_id, grant->grant_id);
  EXPECT_EQ(admin_->ListGrants(key->key_id)->size(), 1u);
  EXPECT_TRUE(alice->Decrypt(blob->ciphertext_blob, ec, std::nullopt).ok());
  EXPECT_TRUE(alice->DescribeKey(key->key_id).ok());
  EXPECT_EQ(E(alice->Encrypt(key->key_id, Plain(), ec).status()), KmsErrorType::kAccessDenied);
  auto other_ec_blob = admin_->Encrypt(key->key_id, Plain(), {{"cluster-arn", "other"}});
  EXPECT_EQ(E(alice->Decrypt(other_ec_blob->ciphertext_blob, {{"cluster-arn", "other"}}, std::nullopt).status()),
            KmsErrorType::kAccessDenied);
  EXPECT_EQ(E(User("bob")->Decrypt(blob->ciphertext_blob, ec, std::nullopt).status()), KmsErrorType::kAccessDenied);
  // Alice may not retire it (not the retiring principal, no RetireGrant op); revoking is losing access.
  EXPECT_EQ(E(alice->RetireGrant({grant->grant_token, std::nullopt, std::nullopt})), KmsErrorType::kAccessDenied);
  ASSERT_TRUE(admin_->RevokeGrant(key->key_id, grant->grant_id).ok());
  EXPECT_EQ(E(admin_->RevokeGrant(key->key_id, grant->grant_id)), KmsErrorType::kNotFound);
  EXPECT_EQ(E(alice->Decrypt(blob->ciphertext_blob, ec, std::nullopt).status()), KmsErrorType::kAccessDenied);
  // Retire by token as the retiring principal.
  auto g2 = admin_->CreateGrant({key->key_id, "alice", "bob", {"Encrypt"}, std::nullopt, std::nullopt, ""});
  ASSERT_TRUE(g2.ok());
  EXPECT_TRUE(alice->Encrypt(key->key_id, Plain(), {}).ok());
  EXPECT_TRUE(User("bob")->RetireGrant({g2->grant_token, std::nullopt, std::nullopt}).ok());
  EXPECT_EQ(E(admin_->RetireGrant({g2->grant_token, std::nullopt, std::nullopt})), KmsErrorType::kInvalidGrantToken);
  EXPECT_EQ(E(alice->Encrypt(key->key_id, Plain(), {}).status()), KmsErrorType::kAccessDenied);
  // Invalid grants.
  EXPECT_EQ(E(admin_->CreateGrant({key->key_id, "alice", "", {"Sign"}, {}, {}, ""}).status()), KmsErrorType::kValidation);
  EXPECT_EQ(E(admin_->CreateGrant({key->key_id, "alice", "", {"CreateGrant"}, {}, {}, ""}).status()),
            KmsErrorType::kValidation);
  EXPECT_EQ(E(admin_->CreateGrant({key->key_id, "no body", "", {"Decrypt"}, {}, {}, ""}).status()),
            KmsErrorType::kValidation);
  EXPECT_EQ(E(admin_->CreateGrant({"alias/x", "alice", "", {"Decrypt"}, {}, {}, ""}).status()),
            KmsErrorType::kValidation);
}

TEST_F(KmsAccessTest, KeyPolicyAllowsDeniesAndHasALockoutCheck) {
  auto key = admin_->CreateKey({"p"});
  ASSERT_TRUE(key.ok());
  std::string root = "arn:cipherfs:iam::123456789012:root";
  std::string alice = "arn:cipherfs:iam::123456789012:user/alice";
  std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Sid":"admin","Effect":"Allow","Principal":{"AWS":")" + root + R"("},"Action":"kms:*","Resource":"*"},
    {"Sid":"use","Effect":"Allow","Principal":{"AWS":[")" + alice + R"("]},"Action":["kms:Encrypt","kms:Generate*"],"Resource":"*"},
    {"Sid":"no","Effect":"Deny","Principal":{"AWS":")" + alice + R"("},"Action":"kms:Decrypt","Resource":"*"}]})";
  ASSERT_TRUE(admin_->PutKeyPolicy(key->key_id, policy).ok());
  EXPECT_EQ(admin_->GetKeyPolicy(key->key_id).value(), policy);
  auto u = User("alice");
  auto dk = u->GenerateDataKey(key->key_id, {}, 32);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_TRUE(u->GenerateDataKeyWithoutPlaintext(key->key_id, {}, 32).ok());
  ASSERT_TRUE(admin_->CreateGrant({key->key_id, "alice", "", {"Decrypt"}, {}, {}, ""}).ok());
  Status s = u->Decrypt(dk->ciphertext_blob, {}, std::nullopt).status();  // explicit deny beats the grant
  EXPECT_EQ(E(s), KmsErrorType::kAccessDenied);
  EXPECT_NE(s.message().find("explicit deny"), std::string::npos);
  EXPECT_EQ(E(u->PutKeyPolicy(key->key_id, policy)), KmsErrorType::kAccessDenied);
  // Lockout: a policy that would keep the caller from changing it again.
  std::string only_alice = R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":")" + alice +
                           R"("},"Action":"kms:*","Resource":"*"}]})";
  EXPECT_EQ(E(admin_->PutKeyPolicy(key->key_id, only_alice)), KmsErrorType::kMalformedPolicyDocument);
  EXPECT_EQ(E(admin_->PutKeyPolicy(key->key_id, "{not json")), KmsErrorType::kMalformedPolicyDocument);
  EXPECT_EQ(E(admin_->PutKeyPolicy(key->key_id, R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*",
    "Resource":"*","Condition":{"Bool":{"x":"y"}}}]})")),
            KmsErrorType::kMalformedPolicyDocument);
  EXPECT_EQ(E(admin_->PutKeyPolicy(key->key_id, std::string(33000, ' '))), KmsErrorType::kMalformedPolicyDocument);
}

TEST_F(KmsAccessTest, AuditLinesNameTheCallerAndVerify) {
  auto key = admin_->CreateKey({"a"});
  ASSERT_TRUE(key.ok());
  (void)User("alice")->Decrypt(Bytes(60, 1), {{"k", "v"}}, std::nullopt);
  ASSERT_TRUE(admin_->DisableKey(key->key_id).ok());
  auto lines = AuditLines();
  ASSERT_GE(lines.size(), 3u);
  auto rec = ParseAuditLine(lines[1]);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->event.operation, "Decrypt");
  EXPECT_EQ(rec->event.user_name, "alice");
  EXPECT_EQ(rec->event.outcome, "InvalidCiphertextException");
  EXPECT_EQ(rec->event.encryption_context.at("k"), "v");
  EXPECT_EQ(rec->event.request_id.size(), 36u);
  auto report = admin_->VerifyAuditLog();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_EQ(report->lines, lines.size());
  EXPECT_EQ(E(User("alice")->VerifyAuditLog().status()), KmsErrorType::kAccessDenied);
}

// Each tamper case on a copy of a good log must be reported.
TEST_F(KmsAccessTest, AuditVerifyDetectsEditRemoveReorderTruncate) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(admin_->CreateKey({"k" + std::to_string(i)}).ok());
  const auto good = AuditLines();
  ASSERT_EQ(good.size(), 5u);
  auto expect_bad = [&](const char* what, const std::vector<std::string>& lines, bool newline = true) {
    WriteAudit(lines, newline);
    auto r = admin_->VerifyAuditLog();
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->ok()) << what << " was not detected";
    WriteAudit(good);
  };
  auto edited = good;
  edited[2].replace(edited[2].find("CreateKey"), 9, "DeleteKey");
  expect_bad("an edited middle line", edited);
  auto edited_last = good;
  edited_last[4].replace(edited_last[4].find("Success"), 7, "Failure");
  expect_bad("an edited last line", edited_last);
  auto removed = good;
  removed.erase(removed.begin() + 1);
  expect_bad("a removed line", removed);
  auto reordered = good;
  std::swap(reordered[1], reordered[2]);
  expect_bad("two swapped lines", reordered);
  auto truncated = good;
  truncated.pop_back();
  const auto truncated_by_one = truncated;
  expect_bad("a log truncated by a line", truncated);
  truncated.pop_back();
  expect_bad("a log truncated by two lines", truncated);
  auto cut = good;
  cut[4] = cut[4].substr(0, cut[4].size() / 2);
  expect_bad("a line cut in half", cut, false);
  expect_bad("an emptied log", {});
  auto r = admin_->VerifyAuditLog();
  EXPECT_TRUE(r.ok() && r->ok());
  // A forged head is refused, and a tampered log stops further appends.
  WriteAudit(truncated_by_one);
  EXPECT_FALSE(admin_->CreateKey({"x"}).ok());
  WriteAudit(good);
  EXPECT_TRUE(admin_->CreateKey({"x"}).ok());
  std::ofstream(dir_ + "/kms/audit.head") << "cipherfs-audit-head v1\n6\n" << std::string(64, 'a') << "\n"
                                          << std::string(64, 'b') << "\n";
  EXPECT_FALSE(admin_->VerifyAuditLog()->ok());
}

TEST_F(KmsAccessTest, CrashAtAnyPointOfAKeyStoreWriteLeavesOldOrNew) {
  auto key = admin_->CreateKey({"base"});
  ASSERT_TRUE(key.ok());
  KeyStore probe(dir_ + "/kms");
  const std::string old_text = SerializeKeyStore(probe.Read().value());
  for (int step = 0; step < KeyStore::kCrashPoints; ++step) {
    KeyStore store(dir_ + "/kms");
    store.SetCrashPointForTest(step);
    std::string alias = "alias/crash" + std::to_string(step);
    Status s = store.Update([&](KeyStoreData* d) {
      d->aliases.push_back({alias, key->key_id, 1, 1});
      return Status::Ok();
    });
    EXPECT_EQ(s.code(), Code::kInternal) << "step " << step;
    auto after = KeyStore(dir_ + "/kms").Read();
    ASSERT_TRUE(after.ok()) << "step " << step << ": " << after.status().ToString();
    bool is_new = after->FindAlias(alias) != nullptr;
    if (step < 4) {
      EXPECT_FALSE(is_new) << "step " << step;
      EXPECT_EQ(SerializeKeyStore(*after), old_text) << "step " << step;
    } else {
      EXPECT_TRUE(is_new) << "step 4 is after the rename";
      ASSERT_TRUE(admin_->DeleteAlias(alias).ok());
    }
    // The next writer works and sweeps the temp file the crash left.
    ASSERT_TRUE(admin_->CreateAlias("alias/next" + std::to_string(step), key->key_id).ok());
    ASSERT_TRUE(admin_->DeleteAlias("alias/next" + std::to_string(step)).ok());
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/kms")) {
      EXPECT_EQ(e.path().filename().string().find("keys.json.tmp"), std::string::npos) << "step " << step;
    }
  }
}

// Two processes change the same key record at once (aliases and grants):
// every change must survive (no lost update under the flock).
TEST_F(KmsAccessTest, TwoProcessesHammeringOneKeyLoseNothing) {
  auto key = admin_->CreateKey({"hammer"});
  ASSERT_TRUE(key.ok());
  constexpr int kEach = 20;
  pid_t pids[2];
  for (int p = 0; p < 2; ++p) {
    pids[p] = ::fork();
    ASSERT_GE(pids[p], 0);
    if (pids[p] == 0) {
      auto kms = Open(std::nullopt);
      int bad = kms ? 0 : 1;
      for (int i = 0; kms && i < kEach; ++i) {
        std::string tag = std::to_string(p) + "-" + std::to_string(i);
        bad += !kms->CreateAlias("alias/h" + tag, key->key_id).ok();
        bad += !kms->CreateGrant({key->key_id, "u" + tag, "", {"Decrypt"}, {}, {}, ""}).ok();
      }
      ::_exit(bad == 0 ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(admin_->ListAliases(key->key_id)->size(), 2u * kEach);
  EXPECT_EQ(admin_->ListGrants(key->key_id)->size(), 2u * kEach);
  auto report = admin_->VerifyAuditLog();
  EXPECT_TRUE(report.ok() && report->ok()) << "interleaved audit appends must keep the chain";
}

}  // namespace
}  // namespace cfs::keymgr
