// Sync ahead (FileData::SyncAhead / JoinSyncAhead): the chunk flush a log
// write starts before its fdatasync arrives. What must hold: the hint fires
// only for a file synced after every write or two; a finished sync ahead
// leaves the written chunks durable; a datasync joins one in flight only
// when it covers every finished write, and then gets its result; a write
// ending after the sync ahead began is not covered; an error of a sync ahead
// always reaches the application.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "fault_file_fixture.h"

namespace cfs::test {
namespace {

Bytes Pattern(uint8_t seed, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + i * 7);
  return b;
}

// Holds the next Fsync of a FaultBacking until Release().
class FsyncLatch {
 public:
  explicit FsyncLatch(FaultBacking* fb) : fb_(fb) {
    fb_->SetFsyncHook([this] {
      std::unique_lock<std::mutex> l(mu_);
      if (used_) return;
      used_ = entered_ = true;
      cv_.notify_all();
      cv_.wait(l, [this] { return released_; });
    });
  }
  ~FsyncLatch() {
    Release();
    fb_->SetFsyncHook(nullptr);
  }
  void WaitEntered() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  FaultBacking* fb_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool used_ = false, entered_ = false, released_ = false;
};

class SyncAheadTest : public FaultFileTest {
 protected:
  void SetUp() override {
    FaultFileTest::SetUp();
    // The file's size covers the blocks written below, and a first cycle
    // of one write: the next lone write is a log write.
    ASSERT_TRUE(f_->Write(0, Pattern(1, 64 * 1024)).ok());
    ASSERT_TRUE(f_->Sync(false).ok());
    ASSERT_TRUE(f_->Write(0, Pattern(2, 8192)).ok());
    ASSERT_TRUE(f_->Sync(true).ok());
  }
  Bytes ReadBack(uint64_t off, size_t n) {
    Bytes out(n);
    auto r = f_->Read(off, n, out.data());
    EXPECT_TRUE(r.ok() && *r == n);
    return out;
  }
  // Runs SyncAhead on another thread, holds its first flush, runs `act`,
  // then lets the flush go and waits for the sync ahead to end.
  void WithSyncAheadHeld(const std::function<void()>& act) {
    FsyncLatch latch(&fb_);
    std::thread ahead([&] { f_->SyncAhead(); });
    latch.WaitEntered();
    act();
    latch.Release();
    ahead.join();
  }
};

TEST_P(SyncAheadTest, WantedOnlyForTheFirstWriteAfterASmallSyncCycle) {
  EXPECT_FALSE(f_->WantsSyncAhead()) << "no write since the last sync";
  ASSERT_TRUE(f_->Write(8192, Pattern(3, 8192)).ok());
  EXPECT_TRUE(f_->WantsSyncAhead());
  ASSERT_TRUE(f_->Write(16384, Pattern(4, 8192)).ok());
  EXPECT_FALSE(f_->WantsSyncAhead()) << "second write of the cycle";
  ASSERT_TRUE(f_->Write(24576, Pattern(5, 8192)).ok());
  ASSERT_TRUE(f_->Sync(true).ok());  // a cycle of three writes: not a log
  ASSERT_TRUE(f_->Write(0, Pattern(6, 8192)).ok());
  EXPECT_FALSE(f_->WantsSyncAhead());
}

TEST_P(SyncAheadTest, FinishedSyncAheadLeavesTheChunkDurableAndTheDatasyncFree) {
  ASSERT_TRUE(f_->Write(8192, Pattern(7, 8192)).ok());
  ASSERT_GT(fb_.unsynced_files(), 0u);
  uint64_t before = Fsyncs();
  f_->SyncAhead();
  EXPECT_EQ(Fsyncs(), before + 1);
  EXPECT_EQ(fb_.unsynced_files(), 0u) << "the write is durable once the sync ahead ended";
  EXPECT_EQ(ds_->counters().syncs_ahead.load(), 1u);
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(Fsyncs(), before + 1) << "the datasync found nothing left to flush";
  EXPECT_EQ(ReadBack(8192, 8192), Pattern(7, 8192));
}

TEST_P(SyncAheadTest, DatasyncJoinsTheSyncInFlightAndGetsItsResult) {
  ASSERT_TRUE(f_->Write(8192, Pattern(8, 8192)).ok());
  uint64_t before = Fsyncs();
  std::promise<Status> answered;
  auto answer = answered.get_future();
  WithSyncAheadHeld([&] {
    ASSERT_TRUE(f_->JoinSyncAhead([&](const Status& s) { answered.set_value(s); }));
    EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
        << "answered before the flush ended";
  });
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(answer.get().ok());
  EXPECT_EQ(Fsyncs(), before + 1);
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(ds_->counters().syncs_joined.load(), 1u);
}

TEST_P(SyncAheadTest, WriteEndingAfterTheSyncAheadBeganIsNotCovered) {
  ASSERT_TRUE(f_->Write(8192, Pattern(9, 8192)).ok());
  WithSyncAheadHeld([&] {
    ASSERT_TRUE(f_->Write(16384, Pattern(10, 4096)).ok());  // same chunk, after the flush began
    EXPECT_FALSE(f_->JoinSyncAhead([](const Status&) { ADD_FAILURE() << "joined a sync that misses a write"; }));
  });
  // (The held fdatasync ran after that write, so the host made it durable;
  // the store cannot know, and must flush again.)
  uint64_t before = Fsyncs();
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(Fsyncs(), before + 1) << "the datasync trusted a sync that began before its last write";
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(ds_->counters().syncs_joined.load(), 0u);
}

TEST_P(SyncAheadTest, NoJoinWhenTheSizeMustBeSyncedToo) {
  ASSERT_TRUE(f_->Write(64 * 1024, Pattern(11, 8192)).ok());  // extends the file
  WithSyncAheadHeld([&] {
    EXPECT_FALSE(f_->JoinSyncAhead([](const Status&) { ADD_FAILURE() << "joined without the size"; }));
  });
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(f_->size(), 64u * 1024 + 8192);
}

TEST_P(SyncAheadTest, FailedSyncAheadIsReportedToTheJoinedDatasync) {
  ASSERT_TRUE(f_->Write(8192, Pattern(12, 8192)).ok());
  fb_.FailNth(OpKind::kFsync, 1, EIO);
  std::promise<Status> answered;
  auto answer = answered.get_future();
  WithSyncAheadHeld([&] { ASSERT_TRUE(f_->JoinSyncAhead([&](const Status& s) { answered.set_value(s); })); });
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  Status s = answer.get();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.sys_errno(), EIO);
}

TEST_P(SyncAheadTest, FailedSyncAheadWithoutJoinerFailsTheNextSync) {
  ASSERT_TRUE(f_->Write(8192, Pattern(13, 8192)).ok());
  fb_.FailNth(OpKind::kFsync, 1, EIO);
  f_->SyncAhead();
  Status s = f_->Sync(true);
  EXPECT_FALSE(s.ok()) << "a flush error of the sync ahead was swallowed";
  EXPECT_EQ(s.sys_errno(), EIO);
  // The retry after it verified the blocks and flushed them.
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(ReadBack(8192, 8192), Pattern(13, 8192));
}

INSTANTIATE_TEST_SUITE_P(Both, SyncAheadTest, ::testing::Bool(), EncryptedName);

}  // namespace
}  // namespace cfs::test
