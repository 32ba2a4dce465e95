#include "cli/cluster_commands.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "cli/exit_codes.h"
#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"
#include "support/fault_backing.h"

namespace cfs::cli {
namespace {

namespace fsys = std::filesystem;

class ClusterCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fsys::temp_directory_path() / ("clitest-" + std::to_string(::getpid()));
    fsys::remove_all(home_);
    ctx_.config.home = home_;
    ctx_.config.region = "local-1";
    ctx_.account = "123456789012";
    ctx_.out = &out_;
    ctx_.backing = &fault_;
    ctx_.open_kms = [this](const std::string& region) -> Result<std::unique_ptr<keymgr::KeyManager>> {
      keymgr::LocalKeyManagerOptions o{home_ + "/regions/" + region + "/kms", region, ctx_.account, ::geteuid()};
      CFS_ASSIGN_OR_RETURN(auto kms, keymgr::LocalKeyManager::Open(o));
      return std::unique_ptr<keymgr::KeyManager>(std::move(kms));
    };
  }
  void TearDown() override { fsys::remove_all(home_); }

  // Only the finished cluster folders and nothing else (no .creating-*).
  std::vector<std::string> Entries() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fsys::directory_iterator(ClustersDir(ctx_), ec)) names.push_back(e.path().filename());
    return names;
  }

  std::string home_;
  std::ostringstream out_;
  store::PosixBacking posix_;
  test::FaultBacking fault_{&posix_};
  Context ctx_;
};

TEST_F(ClusterCommandsTest, CreateLeavesNothingHalfMadeWhenAnyBackingCallFails) {
  int failures = 0;
  for (uint64_t n = 1; n < 200; ++n) {
    std::string id = "c" + std::to_string(n);
    fault_.FailNth(test::OpKind::kAny, n, EIO);
    Status s = ClusterCreate(ctx_, {id, /*storage_encrypted=*/true, std::nullopt});
    bool injected = fault_.faults_injected() > 0;
    fault_.ClearFaults();
    if (!injected) {  // n exceeds the calls a create makes: done
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_TRUE(LoadCluster(ctx_, id).ok());
      break;
    }
    // Either the create succeeded as a whole (a failed Close may be
    // harmless) or it left nothing behind.
    for (const auto& name : Entries()) EXPECT_EQ(name.rfind('.', 0), std::string::npos) << "left behind: " << name;
    if (s.ok()) {
      EXPECT_TRUE(LoadCluster(ctx_, id).ok()) << "call " << n;
    } else {
      ++failures;
      EXPECT_FALSE(fsys::exists(ClusterDir(ctx_, id))) << "call " << n << ": " << s.ToString();
    }
    fault_.ClearFaults();
  }
  EXPECT_GT(failures, 3);
}

TEST_F(ClusterCommandsTest, RefusedKeyCreatesNothing) {
  Status s = ClusterCreate(ctx_, {"orders", true, std::string("alias/none")});
  EXPECT_EQ(keymgr::KmsErrorOf(s), keymgr::KmsErrorType::kNotFound);
  EXPECT_EQ(ExitCodeFor(s), kExitKmsNotFound);
  EXPECT_TRUE(Entries().empty());
  EXPECT_EQ(ClusterCreate(ctx_, {"Bad--id", false, std::nullopt}).code(), Code::kInvalidArgument);
  EXPECT_EQ(ClusterCreate(ctx_, {"plain", false, std::string("alias/aws/rds")}).code(), Code::kInvalidArgument);
}

TEST_F(ClusterCommandsTest, EncryptedClusterKeyOpensOnlyWithItsArnAsContext) {
  ASSERT_TRUE(ClusterCreate(ctx_, {"orders", true, std::nullopt}).ok());
  auto d = LoadCluster(ctx_, "orders");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->arn, "arn:cipherfs:rds:local-1:123456789012:cluster:orders");
  auto kms = ctx_.open_kms("local-1");
  ASSERT_TRUE(kms.ok());
  auto dk = (*kms)->Decrypt(d->wrapped_data_key, ClusterEncryptionContext(d->arn), d->kms_key_arn);
  ASSERT_TRUE(dk.ok()) << dk.status().ToString();
  EXPECT_EQ(dk->plaintext.size(), 32u);
  auto other = (*kms)->Decrypt(d->wrapped_data_key,
                               ClusterEncryptionContext("arn:cipherfs:rds:local-1:123456789012:cluster:other"));
  EXPECT_EQ(keymgr::KmsErrorOf(other.status()), keymgr::KmsErrorType::kInvalidCiphertext);
  EXPECT_EQ(ClusterCreate(ctx_, {"orders", false, std::nullopt}).code(), Code::kAlreadyExists);
}

TEST_F(ClusterCommandsTest, JsonUsesTheCloudFieldNames) {
  ASSERT_TRUE(ClusterCreate(ctx_, {"scratch", false, std::nullopt}).ok());
  auto j = ClusterJson(*LoadCluster(ctx_, "scratch"));
  EXPECT_EQ(j["DBClusterIdentifier"], "scratch");
  EXPECT_EQ(j["StorageEncrypted"], false);
  EXPECT_FALSE(j.contains("KmsKeyId"));
  EXPECT_EQ(j["Status"], "available");
  EXPECT_TRUE(j.contains("ClusterCreateTime"));
  EXPECT_TRUE(j.contains("DBClusterArn"));
}

TEST(ExitCodesTest, EachClassHasItsOwnCode) {
  std::set<int> codes;
  for (const Status& s : {InvalidArgument("a"), NotFound("a"), AlreadyExists("a"), FailedPrecondition("a"),
                          PermissionDenied("a"), DataLoss("a"), Unimplemented("a"), Unavailable("a"),
                          Status(Code::kIoError, "a"), Internal("a")}) {
    codes.insert(ExitCodeFor(s));
  }
  for (int t = 0; t <= static_cast<int>(keymgr::KmsErrorType::kInternal); ++t) {
    codes.insert(ExitCodeFor(keymgr::KmsError(static_cast<keymgr::KmsErrorType>(t), "m")));
  }
  EXPECT_EQ(codes.size(), 10u + 9u);
  EXPECT_EQ(codes.count(0), 0u);
  EXPECT_EQ(ExitCodeFor(InvalidArgument("x")), 2);
}

TEST(ExitCodesTest, ErrorIsOneLineWithWhatToDo) {
  EXPECT_EQ(ErrorLine(NotFound("cluster x not found; list them")), "cipherfs: cluster x not found; list them");
  std::string generic = ErrorLine(DataLoss("bad\nfile"));
  EXPECT_EQ(generic.find('\n'), std::string::npos);
  EXPECT_NE(generic.find("; "), std::string::npos);
  Status hinted = WithHint(keymgr::KmsError(keymgr::KmsErrorType::kDisabled, "k is disabled."), "enable it");
  EXPECT_EQ(keymgr::KmsErrorOf(hinted), keymgr::KmsErrorType::kDisabled);
  EXPECT_EQ(ErrorLine(hinted), "cipherfs: DisabledException: k is disabled.; enable it");
}

}  // namespace
}  // namespace cfs::cli
