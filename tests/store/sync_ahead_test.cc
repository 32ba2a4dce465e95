// Sync ahead (FileData::SyncAhead / JoinSyncAhead): the chunk flush a log
// write starts before its fdatasync arrives. What must hold: the hint fires
// only for a file synced after every write or two; a finished sync ahead
// leaves the written chunks durable; a datasync joins one in flight only
// when it covers every finished write, and then gets its result; a write
// ending after the sync ahead began is not covered; an error of a sync ahead
// always reaches the application.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "store/backing.h"
#include "store/data_store.h"
#include "store_fixture.h"
#include "support/fault_backing.h"

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

class SyncAheadTest : public ::testing::TestWithParam<bool> {  // param: encrypted
 protected:
  void SetUp() override {
    vol_ = std::make_unique<StoreVolume>(GetParam(), 16);
    auto ds = vol_->Open(&fb_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ds_ = std::move(ds).value();
    auto f = vol_->CreateFile(&fb_, ds_.get(), 0);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    f_ = std::move(f).value();
    // The file's size covers the blocks written below, and a first cycle
    // of one write: the next lone write is a log write.
    ASSERT_TRUE(f_->Write(0, Pattern(1, 64 * 1024)).ok());
    ASSERT_TRUE(f_->Sync(false).ok());
    ASSERT_TRUE(f_->Write(0, Pattern(2, 8192)).ok());
    ASSERT_TRUE(f_->Sync(true).ok());
  }
  void TearDown() override {
    f_.reset();
    if (ds_) {
      EXPECT_TRUE(ds_->CloseClean().ok());
    }
    ds_.reset();
  }
  uint64_t Fsyncs() const { return fb_.calls(OpKind::kFsync); }
  Bytes ReadBack(uint64_t off, size_t n) {
    Bytes out(n);
    auto r = f_->Read(off, n, out.data());
    EXPECT_TRUE(r.ok() && *r == n);
    return out;
  }

  store::PosixBacking posix_;
  FaultBacking fb_{&posix_};
  std::unique_ptr<StoreVolume> vol_;
  std::unique_ptr<store::DataStore> ds_;
  std::shared_ptr<store::FileData> f_;
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
  {
    FsyncLatch latch(&fb_);
    std::thread ahead([&] { f_->SyncAhead(); });
    latch.WaitEntered();
    ASSERT_TRUE(f_->JoinSyncAhead([&](const Status& s) { answered.set_value(s); }));
    EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
        << "answered before the flush ended";
    latch.Release();
    ahead.join();
  }
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(answer.get().ok());
  EXPECT_EQ(Fsyncs(), before + 1);
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(ds_->counters().syncs_joined.load(), 1u);
}

TEST_P(SyncAheadTest, WriteEndingAfterTheSyncAheadBeganIsNotCovered) {
  ASSERT_TRUE(f_->Write(8192, Pattern(9, 8192)).ok());
  {
    FsyncLatch latch(&fb_);
    std::thread ahead([&] { f_->SyncAhead(); });
    latch.WaitEntered();
    ASSERT_TRUE(f_->Write(16384, Pattern(10, 4096)).ok());  // same chunk, after the flush began
    EXPECT_FALSE(f_->JoinSyncAhead([](const Status&) { ADD_FAILURE() << "joined a sync that misses a write"; }));
    latch.Release();
    ahead.join();
  }
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
  {
    FsyncLatch latch(&fb_);
    std::thread ahead([&] { f_->SyncAhead(); });
    latch.WaitEntered();
    EXPECT_FALSE(f_->JoinSyncAhead([](const Status&) { ADD_FAILURE() << "joined without the size"; }));
    latch.Release();
    ahead.join();
  }
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(fb_.unsynced_files(), 0u);
  EXPECT_EQ(f_->size(), 64u * 1024 + 8192);
}

TEST_P(SyncAheadTest, FailedSyncAheadIsReportedToTheJoinedDatasync) {
  ASSERT_TRUE(f_->Write(8192, Pattern(12, 8192)).ok());
  fb_.FailNth(OpKind::kFsync, 1, EIO);
  std::promise<Status> answered;
  auto answer = answered.get_future();
  {
    FsyncLatch latch(&fb_);
    std::thread ahead([&] { f_->SyncAhead(); });
    latch.WaitEntered();
    ASSERT_TRUE(f_->JoinSyncAhead([&](const Status& s) { answered.set_value(s); }));
    latch.Release();
    ahead.join();
  }
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

INSTANTIATE_TEST_SUITE_P(Both, SyncAheadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::test
