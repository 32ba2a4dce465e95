// A copy-on-write break syncs its copy before the rename (a power cut must
// never leave the chunk's name on a copy whose data did not reach the disk)
// but leaves the directory to the file's next sync, which must then sync it
// (else an acknowledged write to the copy could come back as the shared
// original after a power cut). Counted through FaultBacking.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backing.h"
#include "store/data_store.h"
#include "store_fixture.h"
#include "support/fault_backing.h"

namespace cfs::test {
namespace {

class CowBreakSyncTest : public ::testing::TestWithParam<bool> {  // param: encrypted
 protected:
  void SetUp() override {
    vol_ = std::make_unique<StoreVolume>(GetParam(), 16);
    auto ds = vol_->Open(&fb_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ds_ = std::move(ds).value();
    auto f = vol_->CreateFile(&fb_, ds_.get(), 0);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    f_ = std::move(f).value();
    ASSERT_TRUE(f_->Write(0, Bytes(32 * 1024, 0x11)).ok());
    ASSERT_TRUE(f_->Sync(false).ok());
  }
  void TearDown() override {
    f_.reset();
    if (ds_) {
      EXPECT_TRUE(ds_->CloseClean().ok());
    }
  }
  // What a snapshot does to chunk 0: a second link, and a new cow epoch.
  void ShareChunk0() {
    std::string chunk = vol_->ChunkPath(f_->id(), 0);
    ds_->BeginWriteBarrier();
    ASSERT_EQ(link(chunk.c_str(), (vol_->path() + "/snapchunk").c_str()), 0);
    ds_->BumpCowEpoch();
    ds_->EndWriteBarrier();
  }
  uint64_t Fsyncs() const { return fb_.calls(OpKind::kFsync); }

  store::PosixBacking posix_;
  FaultBacking fb_{&posix_};
  std::unique_ptr<StoreVolume> vol_;
  std::unique_ptr<store::DataStore> ds_;
  std::shared_ptr<store::FileData> f_;
};

TEST_P(CowBreakSyncTest, TheBreakSyncsTheCopyAndTheNextSyncTheDirectory) {
  ShareChunk0();
  uint64_t before = Fsyncs();
  ASSERT_TRUE(f_->Write(100, Bytes(10, 0x22)).ok());
  ASSERT_EQ(ds_->counters().cow_breaks.load(), 1u);
  EXPECT_EQ(Fsyncs(), before + 1) << "the break must sync its copy (and only that) before the write";
  struct stat st;
  ASSERT_EQ(stat(vol_->ChunkPath(f_->id(), 0).c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);

  before = Fsyncs();
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(Fsyncs(), before + 2) << "the chunk and its directory (the rename)";
  EXPECT_EQ(fb_.unsynced_files(), 0u);

  // The directory is clean again: a later write costs the chunk's flush alone.
  ASSERT_TRUE(f_->Write(200, Bytes(10, 0x33)).ok());
  before = Fsyncs();
  ASSERT_TRUE(f_->Sync(true).ok());
  EXPECT_EQ(Fsyncs(), before + 1);
}

INSTANTIATE_TEST_SUITE_P(Both, CowBreakSyncTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::test
