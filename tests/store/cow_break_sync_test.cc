// A copy-on-write break syncs its copy before the rename (a power cut must
// never leave the chunk's name on a copy whose data did not reach the disk)
// but leaves the directory to the file's next sync, which must then sync it
// (else an acknowledged write to the copy could come back as the shared
// original after a power cut). Counted through FaultBacking.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_file_fixture.h"

namespace cfs::test {
namespace {

class CowBreakSyncTest : public FaultFileTest {
 protected:
  void SetUp() override {
    FaultFileTest::SetUp();
    ASSERT_TRUE(f_->Write(0, Bytes(32 * 1024, 0x11)).ok());
    ASSERT_TRUE(f_->Sync(false).ok());
  }
  // What a snapshot does to chunk 0: a second link, and a new cow epoch.
  void ShareChunk0() {
    std::string chunk = vol_->ChunkPath(f_->id(), 0);
    ds_->BeginWriteBarrier();
    ASSERT_EQ(link(chunk.c_str(), (vol_->path() + "/snapchunk").c_str()), 0);
    ds_->BumpCowEpoch();
    ds_->EndWriteBarrier();
  }
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

INSTANTIATE_TEST_SUITE_P(Both, CowBreakSyncTest, ::testing::Bool(), EncryptedName);

}  // namespace
}  // namespace cfs::test
