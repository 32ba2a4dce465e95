// DirtyLog: file ids logged ahead of use (NewFileId) keep the crash
// contract (their records are durable before the id is handed out and
// survive compaction until used) at one log commit per kReserve new files.
#include "store/dirty_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/secret_bytes.h"
#include "crypto/mac.h"

namespace cfs::store {
namespace {

class DirtyLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cfs_dirty_log_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    dirfd_ = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dirfd_, 0);
    uint8_t raw[32];
    for (int i = 0; i < 32; ++i) raw[i] = uint8_t(0x51 + i);
    SecretBytes key(raw, sizeof raw);
    auth_ = std::make_unique<format::MetaAuth>(std::make_shared<const crypto::MacKey>(key));
  }
  void TearDown() override {
    log_.reset();
    unlinkat(dirfd_, "dirty.log", 0);
    unlinkat(dirfd_, "dirty.log.tmp", 0);
    close(dirfd_);
    rmdir(dir_.c_str());
  }
  std::unique_ptr<DirtyLog> Open(bool read_only = false, uint64_t compact_after = 4096) {
    auto log = DirtyLog::Open(&backing_, dirfd_, auth_.get(), read_only, compact_after, &commits_);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }
  static bool Covers(const std::vector<format::LogRecord>& records, const FileId& id, uint64_t chunk) {
    for (const auto& r : records) {
      if (r.id == id && r.first <= chunk && chunk < r.first + r.count) return true;
    }
    return false;
  }

  std::string dir_;
  int dirfd_ = -1;
  PosixBacking backing_;
  std::unique_ptr<format::MetaAuth> auth_;
  std::atomic<uint64_t> commits_{0};
  std::unique_ptr<DirtyLog> log_;
};

TEST_F(DirtyLogTest, NewFileIdsCostOneCommitPerReserveAndNeedNoCommitToWrite) {
  log_ = Open();
  ASSERT_TRUE(log_);
  std::set<FileId> ids;
  for (size_t i = 0; i < DirtyLog::kReserve; ++i) {
    auto id = log_->NewFileId();
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), DirtyLog::kReserve);  // distinct
  EXPECT_EQ(commits_.load(), 1u);
  for (const FileId& id : ids) {
    for (uint64_t c : {uint64_t{0}, uint64_t{DirtyLog::kWindow - 1}}) {
      auto state = log_->Ensure(id, c);
      ASSERT_TRUE(state.ok()) << state.status().ToString();
    }
  }
  EXPECT_EQ(commits_.load(), 1u) << "writing a new file's first chunks committed the log again";
  ASSERT_TRUE(log_->NewFileId().ok());
  EXPECT_EQ(commits_.load(), 2u) << "the pool was empty: one commit refills it";
  auto past = log_->Ensure(*ids.begin(), DirtyLog::kWindow);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(commits_.load(), 3u) << "a chunk past the logged window needs its own record";
}

TEST_F(DirtyLogTest, ReservedIdsAreDurableBeforeUseAndRefilledAfterCompaction) {
  log_ = Open(false, /*compact_after=*/1);
  ASSERT_TRUE(log_);
  auto used = log_->NewFileId();
  ASSERT_TRUE(used.ok());
  auto spare = log_->NewFileId();  // handed out, never written
  ASSERT_TRUE(spare.ok());
  ASSERT_TRUE(log_->Ensure(*used, 0).ok());
  ASSERT_TRUE(log_->WantsCompaction());
  ASSERT_TRUE(log_->Compact().ok());  // everything clean: the log keeps nothing, the reserve is gone
  uint64_t commits = commits_.load();
  auto after = log_->NewFileId();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(commits_.load(), commits + 1) << "the reserve was not logged again after the compaction";
  ASSERT_TRUE(log_->Ensure(*after, 3).ok());
  EXPECT_EQ(commits_.load(), commits + 1);
  log_.reset();  // never marked clean: like a kill
  log_ = Open(/*read_only=*/true);
  ASSERT_TRUE(log_);
  ASSERT_TRUE(log_->unclean());
  auto previous = log_->PreviousRecords();
  EXPECT_TRUE(Covers(previous, *after, 3));
  EXPECT_TRUE(Covers(previous, *after, 0));
  EXPECT_FALSE(Covers(previous, *used, 0));  // clean before the compaction: dropped
}

TEST_F(DirtyLogTest, MarkCleanForgetsTheReserve) {
  log_ = Open();
  ASSERT_TRUE(log_);
  ASSERT_TRUE(log_->NewFileId().ok());
  EXPECT_EQ(commits_.load(), 1u);
  ASSERT_TRUE(log_->MarkClean().ok());
  auto id = log_->NewFileId();  // the old reserve's records are gone with the clean log
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(commits_.load(), 2u);
  log_.reset();
  log_ = Open(/*read_only=*/true);
  ASSERT_TRUE(log_);
  EXPECT_TRUE(Covers(log_->PreviousRecords(), *id, 0));
}

}  // namespace
}  // namespace cfs::store
